package serve_test

import (
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/rollout"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
)

// BenchmarkReports measures POST /v1/reports with durable acknowledgements (every 202 after
// the group commit's write and fsync, on the file system of the test's temporary
// directory) through fasthttp's whole request path on an in-memory listener, with 64
// clients (or one) posting at once, and beside it the latency of offers that one more client
// asks for back to back meanwhile. Sub-benchmarks: reports per request (1, 64), the commit
// window (the default 2 ms, or none), and offers alone (the baseline of their latency).
// ns/op is per report request.
//
//	go test -run '^$' -bench BenchmarkReports -benchtime 5s ./serve
func BenchmarkReports(b *testing.B) {
	k := newKey(b)
	sc := conformance.LoadOne(b, "01-forward-and-floor.json")
	work := b.TempDir()
	conformance.WriteTree(b, filepath.Join(work, "labels"), sc.Labels)
	now := mustTime(b, sc.Now)
	buildRelease(b, filepath.Join(work, "labels"), filepath.Join(work, "catalog"), k, now, 0)
	clock := newClock(now)
	offerReq := sc.Requests[1].Request
	for _, c := range []struct {
		name    string
		batch   int // reports per request; 0: no reports at all
		window  time.Duration
		clients int // 64 or 1
	}{
		{"offersOnly", 0, 0, 0},
		{"1report/window2ms", 1, 0, 64}, // the default window
		{"1report/nowindow", 1, -1, 64},
		{"64reports/window2ms", 64, 0, 64},
		{"64reports/nowindow", 64, -1, 64},
		{"1report/1client/window2ms", 1, 0, 1},
		{"1report/1client/nowindow", 1, -1, 1},
	} {
		b.Run(c.name, func(b *testing.B) {
			spool := b.TempDir()
			srv, err := serve.New(serve.Config{Catalog: filepath.Join(work, "catalog"), Keys: []*signing.Verifier{k.verifier}, Clock: clock.now,
				DisableInotify: true, Poll: time.Hour, MaxConns: 1 << 16,
				Spool: testSpoolOptions(rollout.SpoolOptions{Dir: spool, SyncEvery: c.window, MaxWaiting: 1 << 16}), ReportLimits: noLimits})
			if err != nil {
				b.Fatal(err)
			}
			ln := fasthttputil.NewInmemoryListener()
			go srv.Serve(ln)
			defer func() { ln.Close(); srv.Shutdown(b.Context()) }()
			client := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxConnsPerHost: 1 << 16}
			body := benchBatch(c.batch)

			// The offers beside: one client, back to back, until the reports are done.
			stop := make(chan struct{})
			var lat []time.Duration
			var wg sync.WaitGroup
			wg.Go(func() {
				rq, rs := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(rq)
				defer fasthttp.ReleaseResponse(rs)
				rq.Header.SetMethod("POST")
				rq.SetRequestURI("http://edge/v1/offers")
				rq.Header.SetContentType("application/json")
				rq.SetBody(offerReq)
				for {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now()
					if err := client.Do(rq, rs); err != nil || rs.StatusCode() != 200 {
						b.Errorf("offer: %v %d", err, rs.StatusCode())
						return
					}
					lat = append(lat, time.Since(start))
					if c.batch == 0 && len(lat) >= b.N {
						return
					}
				}
			})
			b.ResetTimer()
			start := time.Now()
			post := func(next func() bool) {
				rq, rs := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(rq)
				defer fasthttp.ReleaseResponse(rs)
				rq.Header.SetMethod("POST")
				rq.SetRequestURI("http://edge/v1/reports")
				rq.Header.SetContentType("application/json")
				rq.SetBody(body)
				for next() {
					if err := client.Do(rq, rs); err != nil || rs.StatusCode() != 202 {
						b.Fatalf("%v %d %s", err, rs.StatusCode(), rs.Body())
					}
				}
			}
			switch {
			case c.batch == 0:
				wg.Wait()
			case c.clients == 1:
				i := 0
				post(func() bool { i++; return i <= b.N })
			default:
				b.SetParallelism(c.clients / runtime.GOMAXPROCS(0))
				b.RunParallel(func(pb *testing.PB) { post(pb.Next) })
			}
			elapsed := time.Since(start)
			b.StopTimer()
			close(stop)
			wg.Wait()
			if c.batch > 0 {
				b.ReportMetric(float64(b.N*c.batch)/elapsed.Seconds(), "reports/s")
				st := srv.SpoolStats()
				if st.Commits > 0 {
					b.ReportMetric(float64(st.Written)/float64(st.Commits), "reports/commit")
				}
			}
			if len(lat) > 0 {
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "offer-p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "offer-p99-µs")
			}
		})
	}
}

// benchBatch is a request of n reports (n ≥ 1), each of its own device.
func benchBatch(n int) []byte {
	if n == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("[")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(reportJSON(fmt.Sprint("bench-pc-", i), "installed"))
	}
	b.WriteString("]")
	return []byte(b.String())
}
