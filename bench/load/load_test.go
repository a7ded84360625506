package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

func TestCountOffers(t *testing.T) {
	for _, c := range []struct {
		body string
		n    int
		ok   bool
	}{
		{`{"release":{"sequence":1,"id":"sha256:0"},"offers":[]}` + "\n", 0, true},
		{`{"release":{"sequence":1,"id":"x"},"offers":[{"instanceId":"A","kind":"automatic"},{"instanceId":"B\"kind\":","kind":"extension"}]}`, 2, true},
		{`{"release":{"sequence":1},"offers":[],"pad":"xxxx"}`, 0, true}, // the fixed-answer baseline's shape
		{`{"error":{"code":"bad-json","message":"…","field":""}}`, 0, false},
		{`<html>`, 0, false},
		{``, 0, false},
	} {
		n, ok := CountOffers([]byte(c.body))
		if n != c.n || ok != c.ok {
			t.Errorf("CountOffers(%s) = %d, %v; want %d, %v", c.body, n, ok, c.n, c.ok)
		}
	}
}

func TestReadRequests(t *testing.T) {
	in := `{"deviceId":"a","os":{"build":22631},"devices":[{"instanceId":"1"},{"instanceId":"2"},{"instanceId":"3"}],"scan":"user"}

{"deviceId":"b","devices":[{"instanceId":"1"}],"os":{"build":19045}}
`
	all, err := ReadRequests(strings.NewReader(in), 0)
	if err != nil || len(all) != 2 {
		t.Fatalf("ReadRequests(0) = %d requests, %v; want 2", len(all), err)
	}
	one, err := ReadRequests(strings.NewReader(in), 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"deviceId":"a","os":{"build":22631},"devices":[{"instanceId":"1"}],"scan":"user"}`,
		`{"deviceId":"b","devices":[{"instanceId":"1"}],"os":{"build":19045}}`,
	}
	if len(one) != 2 || string(one[0]) != want[0] || string(one[1]) != want[1] {
		t.Errorf("ReadRequests(1) =\n%s\nwant\n%s", bytes.Join(one, []byte("\n")), strings.Join(want, "\n"))
	}
	three, err := ReadRequests(strings.NewReader(in), 3)
	if err != nil || len(three) != 1 || !bytes.Contains(three[0], []byte(`"instanceId":"3"`)) {
		t.Errorf("ReadRequests(3) = %q, %v; want the first request whole", three, err)
	}
	if _, err := ReadRequests(strings.NewReader("{\"devices\":[\n"), 1); err == nil {
		t.Error("a broken line: no error")
	}
}

// request the server sees, so a slow start of the generator does not move it out of the run.
func stallServer(t *testing.T, from, to time.Duration) (url string) {
	t.Helper()
	var mu sync.Mutex
	var t0 time.Time
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		if t0.IsZero() {
			t0 = time.Now()
		}
		begin := t0
		mu.Unlock()
		if since := time.Since(begin); since >= from && since < to {
			time.Sleep(to - since)
		}
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"release":{"sequence":1,"id":"sha256:0"},"offers":[]}` + "\n")
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown() })
	return "http://" + ln.Addr().String()
}

// TestLoadOpenLoopSeesStall: a server stalls for 200 ms in the middle of a 1-second run at
// 1,000 requests/s. The open loop measures from the intended send times, so the requests due
// during the stall all show it; a closed loop against the same stall sees it in only the few
// requests in flight.
//
// Nothing here depends on how fast the machine is. The server's sleep sets a lower bound: a
// request due in the first half of the stall waits at least until its end, 100 ms or more
// after its intended time, however slowly it was sent (a late send only adds to it). So at
// least a tenth of the run is at >= 100 ms and p99 must show it, and the requests due while
// every connection is held are sent late. The counts are exact: 1,000 requests are due and
// every one is sent and answered (the hard cap is a minute away).
func TestLoadOpenLoopSeesStall(t *testing.T) {
	for _, engine := range []string{EngineFasthttp, epollIfAny()} {
		t.Run(engine, func(t *testing.T) { testOpenLoopSeesStall(t, engine) })
	}
}

func testOpenLoopSeesStall(t *testing.T, engine string) {
	body := [][]byte{[]byte(`{}`)}
	url := stallServer(t, 300*time.Millisecond, 500*time.Millisecond)
	open, err := Run(context.Background(), Options{URL: url, Bodies: body, Rate: 1000, Concurrency: 8, Duration: time.Second, Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	if open.Engine != engine {
		t.Errorf("the run used engine %q; asked for %q", open.Engine, engine)
	}
	t.Logf("%s", open.String())
	if open.Requests != 1000 || open.OK != open.Requests || open.Unsent != 0 || len(open.Errors) != 0 {
		t.Errorf("open loop: %d requests, %d OK, %d unsent, errors %v; want all 1,000 due requests sent and answered",
			open.Requests, open.OK, open.Unsent, open.Errors)
	}
	if open.Latency.P99 < 100 || open.Latency.Max < 100 {
		t.Errorf("open loop: p99 %.1f ms, max %.1f ms; want the stall in p99 (>= 100 ms)", open.Latency.P99, open.Latency.Max)
	}
	if open.Late < 100 {
		t.Errorf("open loop: %d requests late; want the ~200 due during the stall", open.Late)
	}

	url = stallServer(t, 300*time.Millisecond, 500*time.Millisecond)
	closed, err := Run(context.Background(), Options{URL: url, Bodies: body, Concurrency: 8, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", closed.String())
	if closed.OK != closed.Requests || closed.Requests == 0 {
		t.Errorf("closed loop: %d requests, %d OK; want every one answered", closed.Requests, closed.OK)
	}
	if closed.Requests > 2000 && closed.Latency.P99 >= 100 {
		t.Errorf("closed loop: p99 %.1f ms over %d requests; expected the stall hidden (this test's premise is wrong)", closed.Latency.P99, closed.Requests)
	}
}

// TestLoadErrors: a port nobody listens on gives connect errors; a server slower than the
// timeout gives timeouts; a hard cap ends a run that would go on; bad options fail.
func TestLoadErrors(t *testing.T) {
	body := [][]byte{[]byte(`{}`)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	ln.Close()
	res, err := Run(context.Background(), Options{URL: closedURL, Bodies: body, Concurrency: 2, Requests: 20})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 20 || res.Errors["connect"] != 20 || res.OK != 0 {
		t.Errorf("closed port: %d requests, errors %v; want 20 connect errors", res.Requests, res.Errors)
	}

	slow := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { time.Sleep(300 * time.Millisecond) }}
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go slow.Serve(sln)
	defer slow.Shutdown()
	res, err = Run(context.Background(), Options{URL: "http://" + sln.Addr().String() + "/", Bodies: body, Concurrency: 2,
		Duration: time.Hour, MaxDuration: 250 * time.Millisecond, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != "max-duration" || res.Errors["timeout"] == 0 || res.Errors["timeout"] != res.Requests || res.Seconds > 60 {
		t.Errorf("slow server under a hard cap: stopped by %q after %.2f s, %d requests, errors %v; want timeouts only, stopped by max-duration",
			res.Stopped, res.Seconds, res.Requests, res.Errors)
	}
	for _, engine := range []string{EngineFasthttp, epollIfAny()} {
		// The open loop under the hard cap: what was due and never sent is counted.
		res, err = Run(context.Background(), Options{URL: "http://" + sln.Addr().String(), Bodies: body, Rate: 1000, Concurrency: 2,
			Duration: time.Hour, MaxDuration: 300 * time.Millisecond, Timeout: 100 * time.Millisecond, Engine: engine})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stopped != "max-duration" || res.Unsent == 0 || res.Late == 0 || res.Errors["timeout"] == 0 || res.Seconds > 60 {
			t.Errorf("%s open loop under a hard cap: stopped by %q after %.2f s, %d unsent, %d late, errors %v; want some of each, timeouts",
				engine, res.Stopped, res.Seconds, res.Unsent, res.Late, res.Errors)
		}
		// The open loop to a closed port: every request a connect error.
		res, err = Run(context.Background(), Options{URL: closedURL, Bodies: body, Rate: 2000, Concurrency: 2, Requests: 20, Engine: engine})
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests != 20 || res.Errors["connect"] != 20 || res.OK != 0 || res.Stopped != "requests" {
			t.Errorf("%s open loop to a closed port: %d requests, errors %v, stopped by %q; want 20 connect errors", engine, res.Requests, res.Errors, res.Stopped)
		}
	}

	for _, o := range []Options{
		{URL: closedURL},
		{URL: "ftp://x", Bodies: body},
		{URL: "127.0.0.1:8080", Bodies: body},
		{URL: closedURL, Bodies: body, Rate: -1},
		{URL: closedURL, Bodies: body, Engine: "wrk"},
		{URL: closedURL, Bodies: body, Engine: EngineFasthttp, CPUs: []int{0}},
		{URL: closedURL, Bodies: body, Engine: EngineEpoll}, // a closed loop
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v): no error", o)
		}
	}
}

func TestErrKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{fasthttp.ErrTimeout, errTimeout},
		{fasthttp.ErrDialTimeout, errConnect},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, errConnect},
		{fasthttp.ErrConnectionClosed, errConnection},
		{io.EOF, errConnection},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), errConnection},
		{errors.New("something else"), errOther},
	} {
		if got := errKind(c.err); got != c.want {
			t.Errorf("errKind(%v) = %s; want %s", c.err, errKindNames[got], errKindNames[c.want])
		}
	}
}

// TestLoadAllocs holds the generator's request path to zero allocations: a run of 20,000
// more requests allocates no more than a few objects more, closed or open loop.
func TestLoadAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyString(`{"release":{"sequence":1,"id":"sha256:0"},"offers":[{"kind":"automatic"}]}`)
	}}
	go srv.Serve(ln)
	defer ln.Close()
	dial := func(string) (net.Conn, error) { return ln.Dial() }
	bodies := [][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`)}
	for _, rate := range []float64{0, 50000} {
		mallocs := func(n int64) uint64 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.Mallocs
			res, err := Run(context.Background(), Options{URL: "http://edge.test", Bodies: bodies, Concurrency: 4, Rate: rate, Requests: n, Dial: dial})
			if err != nil || res.OK != n || res.Offers != n {
				t.Fatalf("rate %v: %d OK, %d offers of %d, %v", rate, res.OK, res.Offers, n, err)
			}
			runtime.ReadMemStats(&ms)
			return ms.Mallocs - before
		}
		// Warm up the pools. fasthttp's body buffers come from bytebufferpool, which keeps
		// only buffers up to a size it recalibrates every 42,000 returns from the sizes it
		// saw: after other tests' larger answers, this test's buffers are dropped until it
		// has seen 42,000 of its own.
		warm := int64(200)
		if rate == 0 {
			warm = 45000
		}
		mallocs(warm)
		// Each run opens its connections afresh (a few dozen allocations each, whatever
		// the number of requests): compare runs long enough to open all of them.
		small, large := mallocs(5000), mallocs(25000)
		// A per-request allocation shows as 1 or more; the tolerance is for what the runtime
		// and fasthttp's timers allocate in the background meanwhile (a few dozen in a run).
		if per := (float64(large) - float64(small)) / 20000; per > 0.02 {
			t.Errorf("rate %v: %.4f allocations per request (%d for 5,000 requests, %d for 25,000); want 0", rate, per, small, large)
		}
	}
}

// epollIfAny is the epoll engine where it exists (Linux), else fasthttp's: the tests that run
// both then run fasthttp's twice.
func epollIfAny() string {
	if epollEngineAvailable {
		return EngineEpoll
	}
	return EngineFasthttp
}
