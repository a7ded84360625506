package load

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestParseAnswerHeader(t *testing.T) {
	for _, c := range []struct {
		head    string
		code    int
		closing bool
		length  int // -1: not readable by the epoll engine
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", 200, false, 12},
		{"HTTP/1.1 400 Bad Request\r\nserver: x\r\ncontent-length:0\r\n\r\n", 400, false, 0},
		{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\n", 200, true, 3},
		{"HTTP/1.1 200 OK\r\nCONNECTION:  Close \r\nContent-Length: 3\r\n\r\n", 200, true, 3},
		{"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n", 200, false, 3},
		{"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", 200, true, 3},
		{"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n", 200, false, 3},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 200, false, -1},
		{"HTTP/1.1 200 OK\r\n\r\n", 200, false, -1},
		{"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", 200, false, -1},
		{"HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\n", 200, false, -1},
		{"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", 200, false, -1},
		{"HTTP/1.1 200 OK\r\nX-Content-Length: 3\r\n\r\n", 200, false, -1},
		{"HTTP/1.1 20x OK\r\nContent-Length: 3\r\n\r\n", 0, false, 3},
		{"SPDY/3 200 OK\r\nContent-Length: 3\r\n\r\n", 0, false, 3},
		{"HTTP/1.1 503\r\nContent-Length: 1\r\n\r\n", 503, false, 1},
	} {
		code, closing := parseStatus([]byte(c.head))
		n, ok := contentLength([]byte(c.head))
		if !ok {
			n = -1
		}
		if code != c.code || closing != c.closing || n != c.length {
			t.Errorf("%q: status %d, closing %v, length %d; want %d, %v, %d", c.head, code, closing, n, c.code, c.closing, c.length)
		}
	}
}

// rawServer answers each request on a plain TCP listener with answer(i), i counting the
// requests of all connections, written by write (which may split it); close after an answer
// when closeAfter says so.
func rawServer(t *testing.T, answer func(i int) string, write func(net.Conn, string) error, closeAfter func(i int) bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	var mu sync.Mutex
	n := 0
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(r)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					mu.Lock()
					i := n
					n++
					mu.Unlock()
					if write(c, answer(i)) != nil || closeAfter(i) {
						return
					}
				}
			})
		}
	})
	return "http://" + ln.Addr().String()
}

func offerAnswer(extra string, offers int) string {
	body := `{"release":{"sequence":1,"id":"sha256:0"},"offers":[` + strings.Repeat(`{"kind":"automatic"},`, offers)
	body = strings.TrimSuffix(body, ",") + "]}"
	return "HTTP/1.1 200 OK\r\n" + extra + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func writeAll(c net.Conn, s string) error { _, err := io.WriteString(c, s); return err }

// TestEpollEngineReadsSplitAnswers: answers arriving a few bytes at a time, in pieces
// that cut the header's end and the body anywhere, are each read whole.
func TestEpollEngineReadsSplitAnswers(t *testing.T) {
	dribble := func(c net.Conn, s string) error {
		for len(s) > 0 {
			k := min(len(s), 1+len(s)%7)
			if _, err := io.WriteString(c, s[:k]); err != nil {
				return err
			}
			s = s[k:]
			time.Sleep(50 * time.Microsecond)
		}
		return nil
	}
	url := rawServer(t, func(i int) string { return offerAnswer("", i%4) }, dribble, func(int) bool { return false })
	res, err := Run(context.Background(), Options{URL: url, Bodies: [][]byte{[]byte(`{}`)}, Rate: 2000, Concurrency: 4,
		Requests: 200, Engine: EngineEpoll})
	if err != nil {
		t.Fatal(err)
	}
	// answers i%4 offers each: 0+1+2+3 per four requests
	if res.Requests != 200 || res.OK != 200 || res.Offers != 300 || len(res.Errors) != 0 {
		t.Errorf("%d requests, %d OK, %d offers, errors %v; want 200 OK with 300 offers", res.Requests, res.OK, res.Offers, res.Errors)
	}
}

// TestEpollEngineConnections: a server that closes after some answers (Connection: close,
// HTTP/1.0) gets its next requests on new connections; one that resets mid-answer or
// answers chunked gets those requests counted as errors, and the run goes on.
func TestEpollEngineConnections(t *testing.T) {
	url := rawServer(t, func(i int) string {
		switch i % 5 {
		case 1:
			return offerAnswer("Connection: close\r\n", 1)
		case 2:
			return strings.Replace(offerAnswer("", 1), "HTTP/1.1", "HTTP/1.0", 1)
		case 3:
			return offerAnswer("", 1)[:40] // then the connection closes: a torn answer
		case 4:
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
		}
		return offerAnswer("", 1)
	}, writeAll, func(i int) bool { return i%5 == 1 || i%5 == 2 || i%5 == 3 })
	res, err := Run(context.Background(), Options{URL: url, Bodies: [][]byte{[]byte(`{}`)}, Rate: 1000, Concurrency: 1,
		Requests: 100, Engine: EngineEpoll})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 100 || res.OK != 60 || res.Errors["connection"] != 20 || res.Errors["other"] != 20 {
		t.Errorf("%d requests, %d OK, errors %v; want 60 OK, 20 connection and 20 other errors", res.Requests, res.OK, res.Errors)
	}
}

// TestEpollEngineLargeRequests: a request larger than the socket's buffer is written in
// pieces as the server reads it.
func TestEpollEngineLargeRequests(t *testing.T) {
	var got sync.Map
	srv := &fasthttp.Server{MaxRequestBodySize: 64 << 20, Handler: func(ctx *fasthttp.RequestCtx) {
		got.Store(len(ctx.PostBody()), true)
		ctx.SetBodyString(`{"release":{"sequence":1,"id":"sha256:0"},"offers":[]}`)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown()
	big := []byte(`{"x":"` + strings.Repeat("a", 8<<20) + `"}`)
	res, err := Run(context.Background(), Options{URL: "http://" + ln.Addr().String(), Bodies: [][]byte{big}, Rate: 20,
		Concurrency: 2, Requests: 4, Engine: EngineEpoll})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Load(len(big)); res.OK != 4 || !ok {
		t.Errorf("%d OK of %d, errors %v, server got the whole body: %v; want 4 OK", res.OK, res.Requests, res.Errors, ok)
	}
}

// TestEpollEngineAllocs: the epoll engine's request path allocates nothing (the server in
// this process neither, in steady state): 20,000 more requests, no more allocations.
func TestEpollEngineAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyString(`{"release":{"sequence":1,"id":"sha256:0"},"offers":[{"kind":"automatic"}]}`)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown()
	bodies := [][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`)}
	mallocs := func(n int64) uint64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		res, err := Run(context.Background(), Options{URL: "http://" + ln.Addr().String(), Bodies: bodies, Concurrency: 4,
			Rate: 100000, Requests: n, Engine: EngineEpoll})
		if err != nil || res.OK != n || res.Offers != n {
			t.Fatalf("%d OK, %d offers of %d, %v", res.OK, res.Offers, n, err)
		}
		runtime.ReadMemStats(&ms)
		return ms.Mallocs - before
	}
	mallocs(1000)
	small, large := mallocs(5000), mallocs(25000)
	// An allocation on the request path is one per request (or one every few, for a
	// pooled buffer that grows): 20,000 more requests, thousands more allocations. What the
	// process allocates by the clock instead (the server's date, the runtime's timers and
	// GC) grows with how long the longer run took, which a loaded CI machine stretches: a
	// few dozen a second, well under one per fifty requests.
	if per := (float64(large) - float64(small)) / 20000; per > 0.02 {
		t.Errorf("%.4f allocations per request (%d for 5,000 requests, %d for 25,000); want 0", per, small, large)
	}
}

// TestEpollEnginePinned: pinned to one CPU, the engine runs and leaves its thread free to
// run anywhere again.
func TestEpollEnginePinned(t *testing.T) {
	url := rawServer(t, func(int) string { return offerAnswer("", 1) }, writeAll, func(int) bool { return false })
	res, err := Run(context.Background(), Options{URL: url, Bodies: [][]byte{[]byte(`{}`)}, Rate: 1000, Requests: 50,
		Engine: EngineEpoll, CPUs: []int{runtime.NumCPU() - 1}})
	if err != nil || res.OK != 50 {
		t.Fatalf("pinned: %d OK of %d, %v", res.OK, res.Requests, err)
	}
	if _, err := Run(context.Background(), Options{URL: url, Bodies: [][]byte{[]byte(`{}`)}, Rate: 1000, Requests: 5,
		Engine: EngineEpoll, CPUs: []int{1023}}); err == nil {
		t.Errorf("pinned to CPU 1023: no error")
	}
}
