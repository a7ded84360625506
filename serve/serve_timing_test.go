package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/driveway/driveway/bench/baseline"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/rollout"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/statement"
)

// benchEdge is a server over a release and requests of 1 and 20 devices. By default the
// release is conformance scenario 01 (its device repeated for 20); with
// DRIVEWAY_BENCH_CATALOG, DRIVEWAY_BENCH_KEY (the public key file) and DRIVEWAY_BENCH_REQ1,
// DRIVEWAY_BENCH_REQ20 (request files) it is that release (e.g. the 100,000-label one of
// scripts/bench-edge.sh). benchWhole is the whole-PC request beside them.
func benchEdge(tb testing.TB) (srv *serve.Server, req1, req20 []byte) {
	tb.Helper()
	if dir := os.Getenv("DRIVEWAY_BENCH_CATALOG"); dir != "" {
		v, err := signing.LoadVerifier(os.Getenv("DRIVEWAY_BENCH_KEY"))
		if err != nil {
			tb.Fatal(err)
		}
		if req1, err = os.ReadFile(os.Getenv("DRIVEWAY_BENCH_REQ1")); err != nil {
			tb.Fatal(err)
		}
		if req20, err = os.ReadFile(os.Getenv("DRIVEWAY_BENCH_REQ20")); err != nil {
			tb.Fatal(err)
		}
		// A catalog the user built for this run, at the system clock: benchmarks only.
		srv, err = serve.New(serve.Config{Catalog: dir, Keys: []*signing.Verifier{v}, DisableInotify: true, Poll: time.Hour, Clock: time.Now})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { srv.Shutdown(context.Background()) })
		return srv, req1, req20
	}
	return scenarioEdge(tb, serve.Config{})
}

// scenarioEdge is benchEdge's default: conformance scenario 01 served with cfg's other fields.
func scenarioEdge(tb testing.TB, cfg serve.Config) (srv *serve.Server, req1, req20 []byte) {
	tb.Helper()
	k := newKey(tb)
	sc := conformance.LoadOne(tb, "01-forward-and-floor.json")
	work := tb.TempDir()
	conformance.WriteTree(tb, filepath.Join(work, "labels"), sc.Labels)
	now := mustTime(tb, sc.Now)
	buildRelease(tb, filepath.Join(work, "labels"), filepath.Join(work, "catalog"), k, now, 0)
	clock := newClock(now)
	cfg.Catalog, cfg.Keys, cfg.Clock, cfg.DisableInotify, cfg.Poll = filepath.Join(work, "catalog"), []*signing.Verifier{k.verifier}, clock.now, true, time.Hour
	srv, err := serve.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Shutdown(context.Background()) })
	req1 = sc.Requests[1].Request
	return srv, req1, repeatDevices(tb, req1, 20)
}

// benchWhole is a whole-PC request for benchEdge's server: the file DRIVEWAY_BENCH_REQWHOLE
// (one line of `driveway bench gen-devices --whole-pc`: 100 to 200 device nodes, most of
// their IDs known to no label), else req1's device repeated 150 times.
func benchWhole(tb testing.TB, req1 []byte) []byte {
	tb.Helper()
	file := os.Getenv("DRIVEWAY_BENCH_REQWHOLE")
	if file == "" {
		return repeatDevices(tb, req1, 150)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

// repeatDevices makes a request of n devices from one's first device.
func repeatDevices(tb testing.TB, req []byte, n int) []byte {
	var m map[string]any
	if err := json.Unmarshal(req, &m); err != nil {
		tb.Fatal(err)
	}
	dev := m["devices"].([]any)[0].(map[string]any)
	var devs []any
	for i := range n {
		d := map[string]any{}
		for k, v := range dev {
			d[k] = v
		}
		d["instanceId"] = fmt.Sprintf("%s\\%d", dev["instanceId"], i)
		devs = append(devs, d)
	}
	m["devices"] = devs
	b, _ := json.Marshal(m)
	return b
}

// offersCtx is a RequestCtx holding POST /v1/offers with body.
func offersCtx(body []byte) *fasthttp.RequestCtx {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/v1/offers")
	ctx.Request.Header.SetContentType("application/json")
	ctx.Request.SetBody(body)
	return &ctx
}

// TestOffersAllocs holds the steady-state handler of POST /v1/offers to zero allocations.
func TestOffersAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	srv, req1, req20 := benchEdge(t)
	whole := benchWhole(t, req1)
	// An edge with install reports adds a report token to every offer (of its own release,
	// which is not benchEdge's with DRIVEWAY_BENCH_CATALOG).
	withReports, _, reports20 := scenarioEdge(t, serve.Config{Spool: testSpoolOptions(rollout.SpoolOptions{Dir: t.TempDir()})})
	for _, c := range []struct {
		name string
		srv  *serve.Server
		body []byte
	}{{"1 device", srv, req1}, {"20 devices", srv, req20}, {"whole PC", srv, whole}, {"20 devices, report tokens", withReports, reports20}} {
		h := c.srv.Handler()
		ctx := offersCtx(c.body)
		// Warm up: pools, decoder arena, block cache, and fasthttp's body buffers, which
		// bytebufferpool keeps only up to a size it recalibrates every 42,000 returns from
		// the sizes it saw: after other tests' smaller answers (a storm of 503s), this
		// test's larger bodies are dropped until it has seen 42,000 of its own.
		for range 43000 {
			ctx.Response.Reset()
			h(ctx)
		}
		if ctx.Response.StatusCode() != 200 {
			t.Fatalf("%s: %d %s", c.name, ctx.Response.StatusCode(), ctx.Response.Body())
		}
		if tokens := bytes.Count(ctx.Response.Body(), []byte(`"reportToken":"`)); (c.srv == withReports) != (tokens > 0) {
			t.Fatalf("%s: %d report tokens in %s", c.name, tokens, ctx.Response.Body())
		}
		// Every offer carries its proof, and the response the release statement.
		if body := ctx.Response.Body(); !bytes.Contains(body, []byte(`"statement":{`)) || bytes.Count(body, []byte(`"proof":{"index":`)) != bytes.Count(body, []byte(`"labelId":`)) {
			t.Fatalf("%s: a statement and a proof per offer missing in %s", c.name, body)
		}
		n := testing.AllocsPerRun(1000, func() {
			ctx.Response.Reset()
			h(ctx)
		})
		t.Logf("%s: %v allocations per request", c.name, n)
		if n != 0 {
			t.Errorf("%s: the handler allocates %v times per request", c.name, n)
		}
	}
}

// BenchmarkHandler is the handler alone, with a reused RequestCtx.
func BenchmarkHandler(b *testing.B) {
	srv, req1, req20 := benchEdge(b)
	h := srv.Handler()
	for _, c := range []struct {
		name     string
		body     []byte
		noProofs bool
	}{{"1device", req1, false}, {"20devices", req20, false}, {"wholepc", nil, false},
		{"1device-noproofs", req1, true}, {"20devices-noproofs", req20, true}, {"wholepc-noproofs", nil, true}} {
		b.Run(c.name, func(b *testing.B) {
			if c.body == nil {
				c.body = benchWhole(b, req1)
			}
			srv.SetNoProofs(c.noProofs)
			defer srv.SetNoProofs(false)
			size := offersCtx(c.body)
			h(size)
			b.ReportMetric(float64(len(size.Response.Body())), "resp-bytes")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := offersCtx(c.body)
				for pb.Next() {
					ctx.Response.Reset()
					h(ctx)
					if ctx.Response.StatusCode() != 200 {
						b.Fatalf("status %d", ctx.Response.StatusCode())
					}
				}
			})
		})
	}
}

// BenchmarkInmemory serves the edge on an in-memory listener (fasthttp's whole request path,
// no network stack), against fasthttp with the same settings and a fixed 500-byte answer as
// the ceiling (bench/baseline).
func BenchmarkInmemory(b *testing.B) {
	srv, req1, req20 := benchEdge(b)
	fixed := baseline.NewFixedAnswer(500)
	for _, c := range []struct {
		name string
		srv  interface{ Serve(net.Listener) error }
		body []byte
	}{{"fixed500", fixed, req1}, {"1device", srv, req1}, {"20devices", srv, req20}} {
		b.Run(c.name, func(b *testing.B) {
			ln := fasthttputil.NewInmemoryListener()
			go c.srv.Serve(ln)
			defer ln.Close()
			client := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxConnsPerHost: 1024}
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				rq, rs := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(rq)
				defer fasthttp.ReleaseResponse(rs)
				rq.Header.SetMethod("POST")
				rq.SetRequestURI("http://edge/v1/offers")
				rq.Header.SetContentType("application/json")
				rq.SetBody(c.body)
				for pb.Next() {
					if err := client.Do(rq, rs); err != nil || rs.StatusCode() != 200 {
						b.Fatalf("%v %d", err, rs.StatusCode())
					}
				}
			})
		})
	}
	fixed.Shutdown(context.Background())
}

// BenchmarkLoadStatement is what the release statement adds to a load: the package records
// of every label record, their tree, and the statement's check (DRIVEWAY_BENCH_CATALOG's
// release; skipped without it). It reports the memory the records hold.
func BenchmarkLoadStatement(b *testing.B) {
	dir := os.Getenv("DRIVEWAY_BENCH_CATALOG")
	if dir == "" {
		b.Skip("DRIVEWAY_BENCH_CATALOG is not set")
	}
	v, err := signing.LoadVerifier(os.Getenv("DRIVEWAY_BENCH_KEY"))
	if err != nil {
		b.Fatal(err)
	}
	rel, err := index.OpenRelease(dir, &index.VerifyOptions{Keys: []*signing.Verifier{v}, IgnoreExpiry: true, Shallow: true})
	if err != nil {
		b.Fatal(err)
	}
	defer rel.Close()
	st, err := statement.Open(rel.Manifest.Statement, 1, v)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		recs, err := serve.ReleaseRecords(rel)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Matches(rel.Manifest.Catalog, rel.Manifest.Sequence, rel.Manifest.Created, rel.Manifest.Expires, recs.Tree()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(recs.Bytes())/(1<<20), "records-MiB")
		b.ReportMetric(float64(recs.Tree().Len()), "records")
	}
}
