package load

// The load generator: offer requests over HTTP (fasthttp's client) against an edge, in a
// closed loop (N workers back to back) or an open loop (requests at fixed intended times,
// whatever the answers), with latencies in a Histogram.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Options configure Run. URL and Bodies are required; zero values of the others take
// the defaults written on them.
type Options struct {
	// URL is where the requests go: http://HOST:PORT/PATH; an empty path means /v1/offers.
	URL string
	// Bodies are the request bodies, POSTed in turn (request i sends Bodies[i % len]). They
	// are read, never modified, and must not change during the run.
	Bodies [][]byte
	// ContentType of the requests; default application/json.
	ContentType string

	// Rate, when positive, makes an open loop: request i is due at start + i/Rate, whatever
	// happened to the earlier ones, and its latency is measured from that intended time, so
	// a stall of the server shows in the latencies of every request it delayed (coordinated
	// omission corrected). Zero makes a closed loop: Concurrency workers, each sending its
	// next request when the previous one is answered. On Linux an open loop's pacer keeps a
	// P while it sleeps (load_linux.go), so GOMAXPROCS is one more while open loops run.
	Rate float64
	// Concurrency is the number of workers, each with at most one request in flight and its
	// own connection: closed loop, the load itself; open loop, the most requests in flight
	// (when all are busy, due requests wait and count as Late). Default 16 closed, 64 open.
	Concurrency int

	// Duration bounds the run: closed loop, no request starts after it; open loop, requests
	// are due during it. Requests bounds the number of requests. The run stops at the
	// first bound reached; with neither, Duration is 10 s. Requests in flight finish.
	Duration time.Duration
	Requests int64
	// MaxDuration is the hard cap: past it nothing more is sent, whatever Duration and
	// Requests say (due requests not yet sent count as Unsent); default Duration + 1 min,
	// or 10 min with Requests alone.
	MaxDuration time.Duration
	// Timeout bounds each request, from sending to the whole answer; default 5 s.
	Timeout time.Duration
	// LateAfter: open loop, a request sent more than this after its intended time counts as
	// Late (the generator or its connections did not keep up); default 1 ms.
	LateAfter time.Duration

	// Dial makes connections; nil: TCP. Tests use in-memory listeners.
	Dial fasthttp.DialFunc

	// Engine sends the requests: EngineFasthttp (goroutines with fasthttp's client) or
	// EngineEpoll (an open loop on one thread, Linux; load_epoll_linux.go). Default: epoll
	// for open loops over TCP to http URLs where it exists, fasthttp otherwise.
	Engine string
	// CPUs, when set, pins the epoll engine's thread to these CPUs (sched_setaffinity), so
	// that a generator and a server on one machine can be given cores of their own.
	CPUs []int
}

// The load engines.
const (
	EngineFasthttp = "fasthttp"
	EngineEpoll    = "epoll"
)

// Result is what a run measured.
type Result struct {
	Mode        string  `json:"mode"`   // "closed" or "open"
	Engine      string  `json:"engine"` // EngineFasthttp or EngineEpoll
	URL         string  `json:"url"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate,omitempty"` // open loop: the rate asked for, requests/s
	Seconds     float64 `json:"seconds"`        // from the start to the last answer
	Stopped     string  `json:"stopped"`        // what ended the run: duration, requests, max-duration, canceled

	Requests int64   `json:"requests"` // requests sent and finished (answered or failed)
	OK       int64   `json:"ok"`       // 2xx answers whose body is an offer response
	RPS      float64 `json:"rps"`      // Requests / Seconds
	// Statuses counts the answers by HTTP status (2xx included).
	Statuses map[int]int64 `json:"statuses"`
	// Errors counts the failed requests by kind: "connect" (no connection), "timeout" (no
	// whole answer within Timeout), "connection" (closed or reset before the answer),
	// "other", "status NNN" (an answer outside 2xx), "bad body" (a 2xx whose body is not
	// an offer response).
	Errors map[string]int64 `json:"errors"`
	// Late and Unsent: open loop, requests sent more than LateAfter after their intended
	// time, and requests due but never sent (the hard cap or ctx ended the run).
	Late   int64 `json:"late"`
	Unsent int64 `json:"unsent"`

	Offers           int64   `json:"offers"` // offers in the OK answers
	OffersPerRequest float64 `json:"offersPerRequest"`
	ResponseBytes    int64   `json:"responseBytes"` // body bytes of every answer

	Latency LatencySummary `json:"latencyMs"` // of every finished request, failures included
	Hist    *Histogram     `json:"-"`
}

// LatencySummary is a latency distribution in milliseconds.
type LatencySummary struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Summary reads a LatencySummary from h.
func (h *Histogram) Summary() LatencySummary {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return LatencySummary{P50: ms(h.Percentile(50)), P90: ms(h.Percentile(90)), P99: ms(h.Percentile(99)),
		P999: ms(h.Percentile(99.9)), Max: ms(h.Max()), Mean: ms(h.Mean())}
}

// Error kinds, the order of workerStats.errs.
const (
	errConnect = iota
	errTimeout
	errConnection
	errOther
	errBadBody
	numErrKinds
)

// ErrorBadBody is Result.Errors' key for a 2xx answer whose body is not an offer response
// (the answer is counted in Statuses too).
const ErrorBadBody = "bad body"

var errKindNames = [numErrKinds]string{"connect", "timeout", "connection", "other", ErrorBadBody}

// workerStats are one worker's counts, merged at the end: nothing is shared on the hot path
// but the request counter.
type workerStats struct {
	hist     Histogram
	statuses [600]int64 // by status; 0: outside 100..599
	errs     [numErrKinds]int64
	requests int64
	ok       int64
	offers   int64
	bytes    int64
	late     int64
	unsent   int64
}

var (
	offersPrefix = []byte(`{"release":`)
	offersList   = []byte(`"offers":[`)
	kindKey      = []byte(`"kind":`)
)

// CountOffers reports whether body is an offer response (spec/offers.md: it starts with the
// release and has an offers list) and how many offers it holds, by counting the "kind"
// members rather than decoding it.
func CountOffers(body []byte) (int, bool) {
	if !bytes.HasPrefix(body, offersPrefix) || !bytes.Contains(body, offersList) {
		return 0, false
	}
	return bytes.Count(body, kindKey), true
}

// errKind classifies a failed request.
func errKind(err error) int {
	var op *net.OpError
	switch {
	case errors.Is(err, fasthttp.ErrDialTimeout), errors.Is(err, fasthttp.ErrNoFreeConns),
		errors.As(err, &op) && op.Op == "dial", errors.Is(err, syscall.ECONNREFUSED):
		return errConnect
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return errTimeout
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return errConnection
	}
	return errOther
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// record counts one finished request of the fasthttp engine.
func (w *workerStats) record(lat time.Duration, err error, resp *fasthttp.Response) {
	if err != nil {
		w.requests++
		w.hist.Record(lat)
		w.errs[errKind(err)]++
		return
	}
	w.answer(lat, resp.StatusCode(), resp.Body())
}

// answer counts one request answered with status code and body.
func (w *workerStats) answer(lat time.Duration, code int, body []byte) {
	w.requests++
	w.hist.Record(lat)
	if code >= 100 && code < len(w.statuses) {
		w.statuses[code]++
	} else {
		w.statuses[0]++
	}
	w.bytes += int64(len(body))
	if code < 200 || code > 299 {
		return // counted as "status NNN" when merged
	}
	n, ok := CountOffers(body)
	if !ok {
		w.errs[errBadBody]++
		return
	}
	w.ok++
	w.offers += int64(n)
}

// Run runs one load test and returns what it measured. It fails only on bad options; the
// failures of requests are counted in the result. It returns when every request sent has
// finished, and ends early when ctx does. Runs may go on at the same time, each with its
// own connections.
func Run(ctx context.Context, opts Options) (Result, error) {
	o, hc, uri, err := loadSetup(opts)
	if err != nil {
		return Result{}, err
	}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, o.MaxDuration)
	defer cancel()
	if o.Engine == EngineEpoll {
		return epollLoad(ctx, o, uri, hc.Addr)
	}

	stats := make([]*workerStats, o.Concurrency)
	for i := range stats {
		stats[i] = new(workerStats)
	}
	newReq := func() *fasthttp.Request {
		req := fasthttp.AcquireRequest()
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI(uri)
		req.Header.SetContentType(o.ContentType)
		return req
	}
	var wg sync.WaitGroup
	var issued atomic.Int64 // requests claimed so far: the next body and the Requests bound
	var stoppedBy atomic.Value
	stop := func(why string) { stoppedBy.CompareAndSwap(nil, why) }
	start := time.Now()

	if o.Rate <= 0 {
		end := start.Add(o.Duration)
		for w := range o.Concurrency {
			wg.Go(func() {
				st := stats[w]
				req, resp := newReq(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				for {
					t0 := time.Now()
					if !t0.Before(end) {
						stop("duration")
						return
					}
					if done(ctx) {
						stop(ctxReason(ctx))
						return
					}
					i := issued.Add(1) - 1
					if o.Requests > 0 && i >= o.Requests {
						stop("requests")
						return
					}
					req.SetBodyRaw(o.Bodies[i%int64(len(o.Bodies))])
					err := hc.DoTimeout(req, resp, o.Timeout)
					st.record(time.Since(t0), err, resp)
				}
			})
		}
		wg.Wait()
	} else {
		due := make(chan int64, o.Concurrency)
		perReq := float64(time.Second) / o.Rate
		intended := func(i int64) time.Time { return start.Add(time.Duration(float64(i) * perReq)) }
		for w := range o.Concurrency {
			wg.Go(func() {
				st := stats[w]
				req, resp := newReq(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				for i := range due {
					if done(ctx) {
						st.unsent++
						continue
					}
					at := intended(i)
					if time.Since(at) > o.LateAfter {
						st.late++
					}
					req.SetBodyRaw(o.Bodies[i%int64(len(o.Bodies))])
					err := hc.DoTimeout(req, resp, o.Timeout)
					st.record(time.Since(at), err, resp)
				}
			})
		}
		stop(schedule(ctx, due, o.Duration, o.Requests, perReq, start))
		close(due)
		wg.Wait()
	}
	elapsed := time.Since(start)
	why, _ := stoppedBy.Load().(string)
	return mergeStats(o, uri, elapsed, why, stats), nil
}

// mergeStats sums the workers' counts into the result of a run.
func mergeStats(o Options, uri string, elapsed time.Duration, stopped string, stats []*workerStats) Result {
	res := Result{Mode: "closed", Engine: o.Engine, URL: uri, Concurrency: o.Concurrency, Seconds: elapsed.Seconds(),
		Stopped: stopped, Statuses: map[int]int64{}, Errors: map[string]int64{}, Hist: new(Histogram)}
	if o.Rate > 0 {
		res.Mode, res.Rate = "open", o.Rate
	}
	for _, st := range stats {
		res.Hist.Merge(&st.hist)
		res.Requests += st.requests
		res.OK += st.ok
		res.Offers += st.offers
		res.ResponseBytes += st.bytes
		res.Late += st.late
		res.Unsent += st.unsent
		for code, n := range st.statuses {
			if n > 0 {
				res.Statuses[code] += n
				if code < 200 || code > 299 {
					res.Errors[fmt.Sprintf("status %d", code)] += n
				}
			}
		}
		for k, n := range st.errs {
			if n > 0 {
				res.Errors[errKindNames[k]] += n
			}
		}
	}
	if res.Seconds > 0 {
		res.RPS = float64(res.Requests) / res.Seconds
	}
	if res.OK > 0 {
		res.OffersPerRequest = float64(res.Offers) / float64(res.OK)
	}
	res.Latency = res.Hist.Summary()
	return res
}

// schedule sends the indexes of due requests on due at their intended times (start +
// i·perReq) until the duration or the request count is reached or ctx ends, and returns
// which. When every worker is busy the send blocks; the requests due meanwhile go out as
// soon as workers free up, their latency still counted from their intended times.
func schedule(ctx context.Context, due chan<- int64, dur time.Duration, requests int64, perReq float64, start time.Time) string {
	pacer := newPacer()
	defer pacer.close()
	for i := int64(0); ; i++ {
		if requests > 0 && i >= requests {
			return "requests"
		}
		at := time.Duration(float64(i) * perReq)
		if at >= dur {
			return "duration"
		}
		for wait := at - time.Since(start); wait > 0; wait = at - time.Since(start) {
			pacer.sleep(wait)
		}
		select {
		case due <- i:
		case <-ctx.Done():
			return ctxReason(ctx)
		}
	}
}

// done reports whether ctx has ended, without taking its lock (ctx.Err does).
func done(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

func ctxReason(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "max-duration"
	}
	return "canceled"
}

// loadSetup checks the options, fills the defaults and makes the client.
func loadSetup(o Options) (Options, *fasthttp.HostClient, string, error) {
	if len(o.Bodies) == 0 {
		return o, nil, "", errors.New("bench: load: no request bodies")
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return o, nil, "", fmt.Errorf("bench: load: URL %q: want http://HOST:PORT/PATH", o.URL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/offers"
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	switch {
	case o.Rate < 0 || o.Concurrency < 0 || o.Duration < 0 || o.Requests < 0 || o.MaxDuration < 0 || o.Timeout < 0:
		return o, nil, "", errors.New("bench: load: negative rate, concurrency, duration, requests or timeout")
	}
	if o.ContentType == "" {
		o.ContentType = "application/json"
	}
	if o.Concurrency == 0 {
		o.Concurrency = 16
		if o.Rate > 0 {
			o.Concurrency = 64
		}
	}
	if o.Duration == 0 && o.Requests == 0 {
		o.Duration = 10 * time.Second
	}
	if o.MaxDuration == 0 {
		o.MaxDuration = o.Duration + time.Minute
		if o.Duration == 0 {
			o.MaxDuration = 10 * time.Minute
		}
	}
	if o.Duration == 0 {
		o.Duration = o.MaxDuration // Requests alone: the hard cap is the only time bound
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.LateAfter == 0 {
		o.LateAfter = time.Millisecond
	}
	epollOK := epollEngineAvailable && o.Rate > 0 && o.Dial == nil && u.Scheme == "http"
	switch o.Engine {
	case "":
		o.Engine = EngineFasthttp
		if epollOK {
			o.Engine = EngineEpoll
		}
	case EngineFasthttp:
	case EngineEpoll:
		if !epollOK {
			return o, nil, "", errors.New("bench: load: the epoll engine runs open loops (a rate) to http URLs over TCP, on Linux")
		}
	default:
		return o, nil, "", fmt.Errorf("bench: load: engine %q: want %s or %s", o.Engine, EngineFasthttp, EngineEpoll)
	}
	if len(o.CPUs) > 0 && o.Engine != EngineEpoll {
		return o, nil, "", errors.New("bench: load: CPUs pins the epoll engine only")
	}
	hc := &fasthttp.HostClient{
		Addr:                      addr,
		IsTLS:                     u.Scheme == "https",
		Dial:                      o.Dial,
		Name:                      "driveway-bench",
		MaxConns:                  o.Concurrency,
		MaxConnWaitTimeout:        o.Timeout,
		ReadTimeout:               o.Timeout,
		WriteTimeout:              o.Timeout,
		MaxResponseBodySize:       64 << 20,
		MaxIdemponentCallAttempts: 1,
		// Never retry: a failure is a failure to count, not to hide.
		RetryIfErr: func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}
	return o, hc, u.String(), nil
}

// ReadRequests reads offer requests, one JSON object per line (GenerateDevices' output),
// skipping blank lines. With devices > 0 each request's device list is cut to its first
// devices and requests with fewer are left out; the other members are kept as they are.
func ReadRequests(r io.Reader, devices int) ([][]byte, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20)
	var out [][]byte
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if devices <= 0 {
			out = append(out, bytes.Clone(line))
			continue
		}
		body, ok, err := cutDevices(line, devices)
		if err != nil {
			return nil, fmt.Errorf("bench: requests line %d: %w", n, err)
		}
		if ok {
			out = append(out, body)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bench: reading requests: %w", err)
	}
	return out, nil
}

// cutDevices returns the request with only its first n devices, false when it has fewer.
func cutDevices(line []byte, n int) ([]byte, bool, error) {
	var pc map[string]json.RawMessage
	if err := json.Unmarshal(line, &pc); err != nil {
		return nil, false, err
	}
	raw, ok := pc["devices"]
	if !ok {
		return nil, false, errors.New(`no "devices" member`)
	}
	var devs []json.RawMessage
	if err := json.Unmarshal(raw, &devs); err != nil {
		return nil, false, fmt.Errorf("devices: %w", err)
	}
	if len(devs) < n {
		return nil, false, nil
	}
	cut := append([]byte{'['}, bytes.Join(bytesOf(devs[:n]), []byte{','})...)
	cut = append(cut, ']')
	// Splice the cut list where the list was, keeping the other members as they are.
	if i := bytes.Index(line, raw); i >= 0 {
		out := append(append(bytes.Clone(line[:i]), cut...), line[i+len(raw):]...)
		return out, true, nil
	}
	pc["devices"] = cut
	out, err := json.Marshal(pc)
	return out, err == nil, err
}

func bytesOf(raws []json.RawMessage) [][]byte {
	out := make([][]byte, len(raws))
	for i, r := range raws {
		out[i] = r
	}
	return out
}

// Answered is the number of requests that got an answer, of any status.
func (r *Result) Answered() int64 {
	var n int64
	for _, c := range r.Statuses {
		n += c
	}
	return n
}

// MeanResponse is the average body size of the answers, in bytes.
func (r *Result) MeanResponse() float64 {
	if n := r.Answered(); n > 0 {
		return float64(r.ResponseBytes) / float64(n)
	}
	return 0
}

// String formats a result as a few lines of text, as `driveway bench load` prints it.
func (r *Result) String() string {
	var b bytes.Buffer
	if r.Mode == "open" {
		fmt.Fprintf(&b, "open loop at %.0f req/s (at most %d in flight) against %s, %.1f s (stopped by %s)\n", r.Rate, r.Concurrency, r.URL, r.Seconds, r.Stopped)
	} else {
		fmt.Fprintf(&b, "closed loop, %d workers against %s, %.1f s (stopped by %s)\n", r.Concurrency, r.URL, r.Seconds, r.Stopped)
	}
	fmt.Fprintf(&b, "requests: %d, %.0f req/s; %d OK", r.Requests, r.RPS, r.OK)
	if r.Mode == "open" {
		fmt.Fprintf(&b, "; %d sent late", r.Late)
		if r.Unsent > 0 {
			fmt.Fprintf(&b, ", %d never sent", r.Unsent)
		}
	}
	b.WriteString("\nerrors: ")
	if len(r.Errors) == 0 {
		b.WriteString("none")
	}
	kinds := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for i, k := range kinds {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, r.Errors[k])
	}
	l := r.Latency
	fmt.Fprintf(&b, "\nlatency (ms): p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f\n", l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	fmt.Fprintf(&b, "offers per request: %.2f; response body %.0f bytes on average\n", r.OffersPerRequest, r.MeanResponse())
	return b.String()
}
