package serve

// The request sample.
//
// With Config.Sample, the edge writes one in Sample.Every of the offer requests it decodes
// to Sample.Out, one JSON object per line: a population that `driveway diff --population`
// and `build --population` replay, as the field sends it. What is kept and what is not:
//
//	deviceId     replaced by "sample:" and 16 bytes of HMAC-SHA256 of it (hex) under the
//	             sample secret: stable for one device within one secret, not reversible,
//	             not linkable to report pseudonyms (another key)
//	instanceId   replaced by "SAMPLE\<n>" (n = the device's place in the request): instance
//	             paths name a machine's ports and serial numbers
//	the rest     as sent: OS, hardware and compatible IDs, installed drivers, CHIDs, SMBIOS
//	             fields, audiences (what the offer decision reads, model-level data)
//
// Picking is a counter (every Nth decoded request), so the hot path adds one atomic add and
// copies a body only when it is picked; the copy is rewritten and written by a goroutine of
// its own, and dropped (counted) when that goroutine is behind. Lines are flushed every
// second and at Shutdown.

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// SampleOptions configure the request sample.
type SampleOptions struct {
	Out    io.Writer // where the lines go; nil: no sample
	Every  int       // one request in Every (default 1000)
	Secret []byte    // keys the device id hash; nil: a random key of this process
}

type sampler struct {
	every   uint64
	n       atomic.Uint64
	secret  []byte
	queue   chan []byte
	w       *bufio.Writer
	dropped atomic.Uint64
	written atomic.Uint64
	s       *Server
}

func newSampler(s *Server, o SampleOptions) (*sampler, error) {
	if o.Every <= 0 {
		o.Every = 1000
	}
	secret := o.Secret
	if len(secret) == 0 {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("serve: sample secret: %w", err)
		}
	}
	return &sampler{every: uint64(o.Every), secret: secret, queue: make(chan []byte, 256), w: bufio.NewWriterSize(o.Out, 64<<10), s: s}, nil
}

// offer picks every Nth body; a picked one is copied and queued.
func (p *sampler) offer(body []byte) {
	if p.n.Add(1)%p.every != 0 {
		return
	}
	select {
	case p.queue <- append([]byte(nil), body...):
	default:
		p.dropped.Add(1)
	}
}

// run writes queued bodies until ctx ends, flushing every second, then drains and flushes.
func (p *sampler) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case b := <-p.queue:
			p.write(b)
		case <-t.C:
			p.flush()
		case <-ctx.Done():
			for {
				select {
				case b := <-p.queue:
					p.write(b)
				default:
					p.flush()
					return
				}
			}
		}
	}
}

func (p *sampler) flush() {
	if err := p.w.Flush(); err != nil {
		p.s.log.Error("the request sample cannot be written; lines are dropped", "error", err.Error())
		p.w.Reset(io.Discard)
	}
}

// write rewrites one body (see the format above) and writes it as a line.
func (p *sampler) write(body []byte) {
	line, err := p.rewrite(body)
	if err != nil {
		p.dropped.Add(1)
		return
	}
	p.w.Write(append(line, '\n'))
	p.written.Add(1)
}

func (p *sampler) rewrite(body []byte) ([]byte, error) {
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	var id string
	if raw, ok := req["deviceId"]; ok && json.Unmarshal(raw, &id) == nil && id != "" {
		m := hmac.New(sha256.New, p.secret)
		m.Write([]byte(id))
		req["deviceId"], _ = json.Marshal("sample:" + hex.EncodeToString(m.Sum(nil)[:16]))
	}
	var devices []map[string]json.RawMessage
	if raw, ok := req["devices"]; ok {
		if err := json.Unmarshal(raw, &devices); err != nil {
			return nil, err
		}
		for i, d := range devices {
			d["instanceId"], _ = json.Marshal(fmt.Sprintf(`SAMPLE\%d`, i))
		}
		req["devices"], _ = json.Marshal(devices)
	}
	return json.Marshal(req)
}
