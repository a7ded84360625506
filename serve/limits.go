package serve

// What one device and one network may report, and where a report came from.
//
// An edge counts the install reports it takes per device id and per source network (the
// client's /24 or /48) in fixed windows of its clock, and answers 429 with Retry-After (the
// rest of the window) to a request that would take either past its limit; nothing of that
// request is kept. The counts live in two count-min sketches of fixed size (memory does not
// grow with the devices seen; a sketch can only over-count, so a limit is never exceeded,
// and its hash is seeded per edge, so that no one can aim collisions at someone else's
// device). Each edge counts on its own: a fleet's limit is each edge's times the edges a
// client reaches.
//
// The source network is the peer's address, or, when the peer is one of
// Config.TrustedProxies (the load balancers in front of the edge), the nearest address of
// X-Forwarded-For that is not itself a trusted proxy. The spool keeps only a pseudonym of
// the network (rollout.SourcePseudonym), which measures count so that failures from one
// place cannot pause or cancel a driver alone (the policy's MinFailureSources).

import (
	"bytes"
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// ReportLimits bound what an edge takes from one device and one network. Zero fields take
// the defaults; a negative count turns that limit off.
type ReportLimits struct {
	PerDevice    int           // reports per device id per DeviceWindow; default 120
	DeviceWindow time.Duration // default 1 h
	PerSource    int           // reports per source network per SourceWindow; default 6,000
	SourceWindow time.Duration // default 1 min
}

// Defaults of ReportLimits: a PC reports a few outcomes per offered driver, so 120 an hour is
// far above what an honest one sends, and 6,000 a minute lets a /24 of NAT'ed offices report
// after a patch day while one host minting device ids is slowed to 100 reports a second.
const (
	DefaultReportsPerDevice = 120
	DefaultReportsPerSource = 6000
)

func (l *ReportLimits) setDefaults() {
	if l.PerDevice == 0 {
		l.PerDevice = DefaultReportsPerDevice
	}
	if l.DeviceWindow <= 0 {
		l.DeviceWindow = time.Hour
	}
	if l.PerSource == 0 {
		l.PerSource = DefaultReportsPerSource
	}
	if l.SourceWindow <= 0 {
		l.SourceWindow = time.Minute
	}
}

// windowLimiter counts takes per key in the current window of the clock: a count-min sketch
// of two rows, indexed by two halves of a seeded 64-bit hash.
type windowLimiter struct {
	limit  uint32
	window time.Duration
	seed   maphash.Seed
	mask   uint64

	mu   sync.Mutex
	cur  int64 // the window the counts are of (Unix time / window)
	rows [2][]uint32
}

// newWindowLimiter makes a limiter of limit per window with 1<<bits counters per row; nil
// when limit is negative (no limit).
func newWindowLimiter(limit int, window time.Duration, bits int) *windowLimiter {
	if limit < 0 {
		return nil
	}
	l := &windowLimiter{limit: uint32(min(limit, 1<<31)), window: window, seed: maphash.MakeSeed(), mask: 1<<bits - 1}
	for i := range l.rows {
		l.rows[i] = make([]uint32, 1<<bits)
	}
	return l
}

func (l *windowLimiter) slots(key string) (uint64, uint64) {
	h := maphash.String(l.seed, key)
	return h & l.mask, (h >> 32) & l.mask
}

// take counts weight for each key (a key given twice counts twice) if none of them goes
// past the limit, and reports whether it did; when it did not, it counts nothing and says
// how long until the window ends.
func (l *windowLimiter) take(keys []string, weight uint32, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	w := now.UnixNano() / int64(l.window)
	l.mu.Lock()
	defer l.mu.Unlock()
	if w != l.cur {
		l.cur = w
		clear(l.rows[0])
		clear(l.rows[1])
	}
	for i, k := range keys {
		a, b := l.slots(k)
		if min(l.rows[0][a], l.rows[1][b])+weight > l.limit {
			for _, k := range keys[:i] {
				a, b := l.slots(k)
				l.rows[0][a] -= weight
				l.rows[1][b] -= weight
			}
			return false, time.Duration((w+1)*int64(l.window) - now.UnixNano())
		}
		l.rows[0][a] += weight
		l.rows[1][b] += weight
	}
	return true, 0
}

// giveBack uncounts what take counted (a request refused by a later limit).
func (l *windowLimiter) giveBack(keys []string, weight uint32, now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.UnixNano()/int64(l.window) != l.cur {
		return // counted in a window that is over
	}
	for _, k := range keys {
		a, b := l.slots(k)
		l.rows[0][a] -= min(weight, l.rows[0][a])
		l.rows[1][b] -= min(weight, l.rows[1][b])
	}
}

// clientAddr is the address a request came from (see the file's comment).
func (s *Server) clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	peer, _ := netip.AddrFromSlice(ctx.RemoteIP())
	peer = peer.Unmap()
	if !trusted(s.cfg.TrustedProxies, peer) {
		return peer
	}
	hops := ctx.Request.Header.PeekAll(fasthttp.HeaderXForwardedFor)
	for h := len(hops) - 1; h >= 0; h-- {
		list := hops[h]
		for len(list) > 0 {
			var hop []byte
			if i := bytes.LastIndexByte(list, ','); i >= 0 {
				hop, list = list[i+1:], list[:i]
			} else {
				hop, list = list, nil
			}
			a, err := netip.ParseAddr(string(bytes.TrimSpace(hop)))
			if err != nil {
				return peer // not an address: the nearest trusted hop is all that is known
			}
			a = a.Unmap()
			if !trusted(s.cfg.TrustedProxies, a) {
				return a
			}
			peer = a
		}
	}
	return peer
}

func trusted(proxies []netip.Prefix, a netip.Addr) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
