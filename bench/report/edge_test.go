package report

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/bench"
	"github.com/driveway/driveway/bench/load"
	"github.com/driveway/driveway/build"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
	"github.com/valyala/fasthttp"
)

// testEdge is an edge served on loopback over a release of a small generated tree, with
// requests drawn from the tree's PCs.
type testEdge struct {
	url           string
	one, all, bad [][]byte // 1-device requests, whole PCs, requests the edge answers 400
}

func startTestEdge(t *testing.T) *testEdge { return startTestEdgeWith(t, nil) }

// startTestEdgeWith is startTestEdge with the edge's configuration changed by config (nil:
// none), given the test's temporary directory.
func startTestEdgeWith(t *testing.T, config func(cfg *serve.Config, dir string)) *testEdge {
	t.Helper()
	dir := t.TempDir()
	tree := filepath.Join(dir, "labels")
	if _, err := bench.GenerateLabels(tree, bench.LabelOptions{Labels: 300, Seed: 3, Compact: true}); err != nil {
		t.Fatal(err)
	}
	priv, pub, err := signing.GenerateKey(signing.Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "k.key")
	if err := os.WriteFile(keyFile, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := signing.LoadSigner(context.Background(), keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := signing.ParseVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	catalog := filepath.Join(dir, "catalog")
	if _, err := build.Build(context.Background(), build.Options{Labels: tree, Out: catalog, Signers: []*signing.Signer{signer},
		Now: bench.WorldNow()}); err != nil { // the generated world's clock: its dates are absolute
		t.Fatal(err)
	}
	cfg := serve.Config{Catalog: catalog, Keys: []*signing.Verifier{verifier}, DisableInotify: true, Poll: time.Hour,
		Clock: bench.WorldNow}
	if config != nil {
		config(&cfg, dir)
	}
	srv, err := serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})

	var pcs bytes.Buffer
	if _, err := bench.GenerateDevices(&pcs, bench.DeviceOptions{PCs: 60, Seed: 3, Labels: tree}); err != nil {
		t.Fatal(err)
	}
	e := &testEdge{url: "http://" + ln.Addr().String()}
	if e.one, err = load.ReadRequests(bytes.NewReader(pcs.Bytes()), 1); err != nil {
		t.Fatal(err)
	}
	if e.all, err = load.ReadRequests(bytes.NewReader(pcs.Bytes()), 0); err != nil {
		t.Fatal(err)
	}
	e.bad = [][]byte{[]byte(`{"deviceId":`), []byte(`{"deviceId":"x","os":{"build":0},"devices":[]}`)}
	return e
}

// scrape reads the edge's counters of POST /v1/offers by status, and its offers.
func (e *testEdge) scrape(t *testing.T) (byStatus map[int]int64, offers int64) {
	t.Helper()
	code, body, err := fasthttp.Get(nil, e.url+"/metrics")
	if err != nil || code != 200 {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	byStatus = map[int]int64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		switch {
		case strings.HasPrefix(name, `driveway_edge_requests_total{path="/v1/offers",status="`):
			s := strings.TrimSuffix(strings.TrimPrefix(name, `driveway_edge_requests_total{path="/v1/offers",status="`), `"}`)
			code, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("metrics line %q: status %q", line, s)
			}
			byStatus[code] += int64(n)
		case strings.HasPrefix(name, "driveway_edge_offers_total{"):
			offers += int64(n)
		}
	}
	return byStatus, offers
}

// TestLoadCountsMatchEdge runs the generator closed- and open-loop against a real edge and
// checks that what it counted is what the edge counted: requests by status and offers.
func TestLoadCountsMatchEdge(t *testing.T) {
	e := startTestEdge(t)
	var bodies [][]byte
	for i, b := range e.all { // one bad request in every 10
		bodies = append(bodies, b)
		if i%9 == 0 {
			bodies = append(bodies, e.bad[i%len(e.bad)])
		}
	}
	bodies = append(bodies, e.one...)
	want := map[int]int64{}
	var wantOffers int64
	for _, o := range []load.Options{
		{Concurrency: 4, Duration: 700 * time.Millisecond},
		{Concurrency: 3, Requests: 333},
		{Rate: 800, Concurrency: 8, Duration: 700 * time.Millisecond, Engine: load.EngineFasthttp},
		{Rate: 5000, Requests: 250, Engine: load.EngineFasthttp},
		{Rate: 800, Concurrency: 8, Duration: 700 * time.Millisecond}, // the default engine: epoll on Linux
		{Rate: 5000, Requests: 250},
	} {
		o.URL, o.Bodies = e.url, bodies
		before, err := scrapeHandler(metricsURL(e.url + "/v1/offers"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := load.Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		// The edge's handler histogram, as the report reads it, saw each 200 of this loop.
		after, err := scrapeHandler(metricsURL(e.url + "/v1/offers"))
		if err != nil {
			t.Fatal(err)
		}
		run, err := after.since(before)
		if err != nil {
			t.Fatal(err)
		}
		if h := run.latency(); int64(h.Requests) != res.Statuses[200] || !(h.P50Ms > 0 && h.P50Ms <= h.P99Ms && h.P99Ms <= h.P999Ms) {
			t.Errorf("%s loop: the edge's handler histogram %+v; want %d requests and ordered percentiles", res.Mode, h, res.Statuses[200])
		}
		t.Logf("%s", res.String())
		if res.Requests == 0 || res.OK == 0 || res.Offers == 0 {
			t.Fatalf("%s loop: %d requests, %d OK, %d offers; want some of each", res.Mode, res.Requests, res.OK, res.Offers)
		}
		if o.Requests > 0 && res.Requests != o.Requests {
			t.Errorf("%s loop bounded to %d requests sent %d", res.Mode, o.Requests, res.Requests)
		}
		for k, n := range res.Errors {
			if k != "status 400" {
				t.Errorf("%s loop: %d errors %q", res.Mode, n, k)
			}
		}
		if res.Hist.Count() != uint64(res.Requests) || res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P99 {
			t.Errorf("%s loop: %d latencies for %d requests, %+v", res.Mode, res.Hist.Count(), res.Requests, res.Latency)
		}
		for code, n := range res.Statuses {
			want[code] += n
		}
		wantOffers += res.Offers
		got, offers := e.scrape(t)
		for code := range want {
			if got[code] != want[code] {
				t.Errorf("after the %s loop: the edge counted %d answers %d; the generator %d", res.Mode, got[code], code, want[code])
			}
		}
		for code, n := range got {
			if want[code] != n {
				t.Errorf("after the %s loop: the edge counted %d answers %d; the generator %d", res.Mode, n, code, want[code])
			}
		}
		if offers != wantOffers {
			t.Errorf("after the %s loop: the edge counted %d offers; the generator %d", res.Mode, offers, wantOffers)
		}
	}
	if want[400] == 0 || want[200] == 0 {
		t.Errorf("statuses %v: want both 200 and 400 answers", want)
	}
}

// stallServer answers every request with an empty offer response, except that requests
// arriving during [from, to) after the first request wait until to (a stall of the whole
