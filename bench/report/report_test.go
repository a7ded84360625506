package report

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/bench"
	"github.com/driveway/driveway/bench/load"
	ro "github.com/driveway/driveway/rollout"
	"github.com/driveway/driveway/serve"
)

// fakeResult is a full run's result in which the 1M build was stopped for memory and nginx
// was missing.
func fakeResult() *ReportResult {
	hist := func(base time.Duration) *load.Histogram {
		h := new(load.Histogram)
		for i := range 1000 {
			h.Record(base + time.Duration(i)*base/200)
		}
		return h
	}
	loadRun := func(c int, rps float64, rate float64, base time.Duration) load.Result {
		h := hist(base)
		return load.Result{Mode: "closed", Concurrency: c, Rate: rate, Seconds: 5, Requests: int64(rps * 5), OK: int64(rps * 5), RPS: rps,
			Statuses: map[int]int64{200: int64(rps * 5)}, Errors: map[string]int64{}, Latency: h.Summary(), Hist: h, OffersPerRequest: 0.4}
	}
	res := &ReportResult{
		Started: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), Seconds: 1500, Command: "driveway bench report", Work: "/tmp/w", Release: 100_000,
		Machine: Machine{CPU: "AMD EPYC", CPUs: 2, MemTotal: 24 << 30, MemAvailable: 22 << 30, Kernel: "Linux 6", Go: "go1.26.8",
			Revision: "abc", Nginx: "nginx/1.22.1", LoadStart: [3]float64{3.5, 3, 3}, LoadEnd: [3]float64{2, 2, 2}, DiskFree: 70 << 30,
			Stalls: &StallProbe{Seconds: 5, Threads: 2, Over05: 40, Over2: 14, Over5: 9, LostMs: 126, WorstMs: 12.7}},
		Stages: []*Stage{
			{Name: "generate 10,000 labels", Status: stageOK, Seconds: 12, Command: "driveway bench gen-labels --out /tmp/w/labels-10k --labels 10000 --compact"},
			{Name: "validate 10,000 labels", Status: stageOK, Seconds: 2.9},
			{Name: "build 1,000,000 labels", Status: stageFailed, Seconds: 200, Reason: "stopped when its resident memory reached 21.0 GiB"},
			{Name: "start nginx", Status: stageSkipped, Reason: "nginx is not installed"},
		},
		Builds: []*BuildFigure{
			{Labels: 10_000, GenSeconds: 12, TreeFiles: 24172, TreeBytes: 109 << 20, Seconds: 4, PeakRSS: 350 << 20, ShardBytes: 4 << 20, ManifestBytes: 170 << 10},
			{Labels: 100_000, GenSeconds: 40, TreeFiles: 243250, TreeBytes: 1 << 30, Seconds: 43, PeakRSS: 3400 << 20, ShardBytes: 40 << 20, ManifestBytes: 1700 << 10,
				Rebuild: &RebuildFigure{Seconds: 12.9, PeakRSS: 2 << 30, ProductsBuilt: 1, ProductsReused: 14025, ShardsWritten: 2, FloorSeconds: 3.4}},
			{Labels: 1_000_000, GenSeconds: 400, TreeFiles: 2432500, TreeBytes: 10 << 30, PeakRSS: 21 << 30, Err: "the build did not complete: stopped when its resident memory reached 21.0 GiB"},
		},
		Lookups: &load.LookupResult{Keys: 326057, Lookups: 200000, ColdNanos: 3100, WarmNanos: 420, Evicted: true},
		Decide: []DecideFigure{{Devices: 1, Goroutines: 1, MicrosPerRequest: 4.2, RPS: 238000, Requests: 700000},
			{Devices: 20, Goroutines: 1, MicrosPerRequest: 61, RPS: 16000, Requests: 48000},
			{Devices: 0, Goroutines: 1, MicrosPerRequest: 120, RPS: 8000, Requests: 24000}},
		Floor: []FloorFigure{{Devices: 1, Requests: 900000, IDsPerRequest: 8, ProbedPerRequest: 3, MicrosPerRequest: 1.5},
			{Devices: 20, Requests: 90000, IDsPerRequest: 200, ProbedPerRequest: 40, MicrosPerRequest: 20},
			{Devices: 0, Requests: 60000, IDsPerRequest: 1100, ProbedPerRequest: 90, MicrosPerRequest: 40}},
		Edge: &EdgeFigures{Labels: 100_000, OpenSeconds: 0.41, LoadMs: 324, RSS: 68 << 20, PeakRSS: 70 << 20, ResponseBytes: 512, BaselineBytes: 500, TwentyResponseBytes: 4100,
			Bodies1: 2000, Bodies20: 625, ControlSec: 0.3, SwapMs: 49, SwapExitMs: 0.7, SwapLoadMs: 48,
			Max:     map[string]float64{"edge-1": 40804, "edge-20": 13409, "fixed": 64414, "edge-whole": 1200, "fixed-whole": 30000, "fixed-20": 50000},
			Missing: map[string]string{"nginx": "nginx is not installed"}},
	}
	res.Validate = res.Stages[1]
	res.Reports = fakeReports()
	for _, c := range []int{16, 64} {
		res.Edge.Closed = append(res.Edge.Closed,
			LoadPoint{Target: "edge-1", Result: loadRun(c, 40804*float64(c)/64, 0, time.Millisecond)},
			LoadPoint{Target: "edge-20", Result: loadRun(c, 13409*float64(c)/64, 0, 4*time.Millisecond)},
			LoadPoint{Target: "fixed", Result: loadRun(c, 64414*float64(c)/64, 0, 500*time.Microsecond)},
			// The best runs (c=64): the edge 300 µs per whole PC, the fixed server 30 µs on
			// the same bodies; the edge 26 µs per 1-device request, the fixed server 13 µs.
			LoadPoint{Target: "edge-whole", Result: loadRun(c, 1200*float64(c)/64, 0, 8*time.Millisecond), ServerCPUMicros: 300 + float64(64-c)},
			LoadPoint{Target: "fixed-whole", Result: loadRun(c, 30000*float64(c)/64, 0, time.Millisecond), ServerCPUMicros: 30 + float64(64-c)})
		res.Edge.Closed[len(res.Edge.Closed)-5].ServerCPUMicros = 26 + float64(64-c)
		res.Edge.Closed[len(res.Edge.Closed)-3].ServerCPUMicros = 13 + float64(64-c)
		res.Edge.Closed[len(res.Edge.Closed)-4].ServerCPUMicros = 100 + float64(64-c) // edge-20
		res.Edge.Closed = append(res.Edge.Closed, LoadPoint{Target: "fixed-20", Result: loadRun(c, 50000*float64(c)/64, 0, time.Millisecond), ServerCPUMicros: 15 + float64(64-c)})
	}
	res.Edge.Half = []LoadPoint{
		{Target: "edge-1", Result: loadRun(64, 20400, 20402, 300*time.Microsecond), Handler: &HandlerLatency{Requests: 163216, P50Ms: 0.05, P99Ms: 0.25, P999Ms: 1}},
		{Target: "edge-20", Result: loadRun(64, 6700, 6704, 800*time.Microsecond), Handler: &HandlerLatency{Requests: 53600, P50Ms: 0.5, P99Ms: 1, P999Ms: 2.5}},
		{Target: "fixed", Result: loadRun(64, 32000, 32207, 200*time.Microsecond)},
	}
	return res
}

// fakeReports are install-report figures whose counts add up: 3 rounds of 4 s; the edge at
// 0.2 cores for the offers alone, 1.2 with single reports (10,000/s), 1.0 with batches
// (32,000/s).
func fakeReports() *ReportsFigures {
	lat := func(p50, p99 float64) load.LatencySummary {
		return load.LatencySummary{P50: p50, P90: p50 * 2, P99: p99, P999: p99 * 2, Max: p99 * 4, Mean: p50}
	}
	return &ReportsFigures{Labels: 100_000, URL: "http://127.0.0.1:4000/v1/reports", SpoolFS: "ext4", Requests: 2000, Tokens: 720, Devices: 700,
		Bodies1: 720, Bodies64: 16, Batch: 64, BatchSize: 20 << 10, OfferRate: 2000, InFlight: 64, Rounds: 3, RunSecs: 4, Concurrency: 64,
		Commands: map[string]string{
			reportsOffers: "driveway bench load --url http://127.0.0.1:4000/v1/offers --population PCS --devices 1 --rate 2000 --concurrency 64 --duration 4s",
			reportsSingle: "driveway bench load --url http://127.0.0.1:4000/v1/reports --population WORK/reports-1.ndjson --concurrency 64 --duration 4s & OFFERS",
			reportsBatch:  "driveway bench load --url http://127.0.0.1:4000/v1/reports --population WORK/reports-64.ndjson --concurrency 64 --duration 4s & OFFERS",
		},
		Rows: []ReportsRow{
			{Kind: reportsOffers, Runs: 3, Window: 12, EdgeCPU: 2.4, OfferRequests: 24000, OfferOK: 24000, OfferLatency: lat(0.2, 0.9)},
			{Kind: reportsSingle, PerBody: 1, Runs: 3, Window: 12, EdgeCPU: 14.4, OfferRequests: 24000, OfferOK: 24000, OfferLatency: lat(0.3, 2.5),
				ReportRequests: 120000, ReportStatuses: map[int]int64{202: 120000}, ReportSeconds: 12, ReportLatency: lat(4, 9),
				Accepted: 120000, EdgeAccepted: 120000, Written: 120000, Commits: 4000},
			{Kind: reportsBatch, PerBody: 64, Runs: 3, Window: 12, EdgeCPU: 12, OfferRequests: 24000, OfferOK: 23990, OfferLate: 30,
				OfferErrors: map[string]int64{"timeout": 10}, OfferLatency: lat(0.4, 3.1), OfferHandler: &HandlerLatency{Requests: 23990, P50Ms: 0.05, P99Ms: 0.5, P999Ms: 1},
				ReportRequests: 6001, ReportStatuses: map[int]int64{202: 6000}, ReportErrors: 1, ReportSeconds: 12, ReportLatency: lat(100, 200),
				Accepted: 384000, EdgeAccepted: 384000, Written: 384000, Commits: 3000},
		},
	}
}

func TestReportTargets(t *testing.T) {
	res := fakeResult()
	got := map[string]TargetRow{}
	for _, row := range res.Targets() {
		got[row.What] = row
	}
	for what, want := range map[string]string{
		"validate 10,000 labels":                                           "met",
		"build 100,000 labels":                                             "met",
		"build 100,000 labels: peak RSS":                                   "missed",
		"control-only release":                                             "met",
		"lookup of one key, warm":                                          "met",
		"decode + decide + encode, 1-device request":                       "met",
		"decode + decide + encode, 20-device request":                      "missed",
		"edge, 1-device requests/s vs the fixed-answer ceiling":            "met",
		"edge p99 at half of its maximum, 1 device":                        "met",
		"edge RSS with the release served":                                 "met",
		"swap after the release appears":                                   "met",
		"edge, whole-PC request: server CPU per request":                   "missed",
		"edge, whole-PC requests/s vs the fixed server on the same bodies": "missed",
	} {
		row, ok := got[what]
		if !ok {
			t.Errorf("no target row %q; rows: %v", what, got)
			continue
		}
		if row.Verdict != want {
			t.Errorf("%s: %s (%s); want %s", what, row.Verdict, row.Measured, want)
		}
	}
	if m := got["edge, 1-device requests/s vs the fixed-answer ceiling"].Measured; !strings.HasPrefix(m, "63%") {
		t.Errorf("edge vs fixed: %q; want 63%%", m)
	}
	if m := got["edge, whole-PC request: server CPU per request"].Measured; !strings.HasPrefix(m, "300 µs") || !strings.Contains(m, "same bodies 30 µs") {
		t.Errorf("whole-PC CPU: %q; want the best run's 300 µs beside the fixed server's 30 µs", m)
	}
	if m := got["edge, whole-PC requests/s vs the fixed server on the same bodies"].Measured; !strings.HasPrefix(m, "4%") {
		t.Errorf("whole-PC throughput: %q; want 4%%", m)
	}

	// What was not measured says why; a quick run says its release.
	res.Edge, res.Lookups, res.Decide = nil, nil, nil
	res.Stages = append(res.Stages, &Stage{Name: "lookups", Status: stageFailed, Reason: "boom"})
	for _, row := range res.Targets() {
		if row.What == "lookup of one key, warm" && (row.Verdict != "not measured" || !strings.Contains(row.Measured, "boom")) {
			t.Errorf("lookups failed: %+v; want not measured, with the reason", row)
		}
	}
	q := fakeResult()
	q.Quick, q.Release = true, 10_000
	q.Builds = q.Builds[:1]
	for _, row := range q.Targets() {
		if strings.HasPrefix(row.What, "build 100,000") && row.Verdict != "not measured" {
			t.Errorf("quick: %+v; want not measured", row)
		}
		if strings.HasPrefix(row.What, "edge p99") && !strings.Contains(row.What, "10k release") {
			t.Errorf("quick: %q does not name the release it was measured on", row.What)
		}
	}
}

func TestReportMarkdown(t *testing.T) {
	res := fakeResult()
	plots := res.plots()
	for _, name := range []string{"latency.svg", "throughput.svg", "build.svg", "build-memory.svg"} {
		svg, ok := plots[name]
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		if err := xml.Unmarshal(svg, new(struct{})); err != nil {
			t.Errorf("%s is not well-formed: %v", name, err)
		}
	}
	md := string(res.Markdown(plots))
	for _, want := range []string{
		"# driveway benchmark report",
		"## Targets",
		"- Edge, whole PCs (",
		"4% of fixed-whole (30,000 req/s)",
		"| edge-whole | 1,200 |",
		"- 100,000 labels, rebuild after one label changed (the build's cache): 12.9 s, 0.30× the full build, peak RSS 2.0 GiB; 1 product built, 14,025 reused, 2 shards written",
		"stat-ing every file, which any rebuild that checks each file costs here: 3.4 s.",
		"| rebuild 100,000 labels after one label changed | under 3 s | 12.9 s (listing and stat-ing the tree alone: 3.4 s) |",
		"### Server CPU per request",
		"| edge-whole | 1,200 | 300.0 | 10.0× (30.0 µs) | 4.3× (40.0 + 30.0 µs) |",
		"| edge-1 | 40,804 | 26.0 | 2.0× (13.0 µs) | 1.8× (1.5 + 13.0 µs) |",
		"| whole PC | 1100 | 90.0 | 40.00 | 120.00 | 3.0× |",
		"| whole PC | 1 | 24,000 | 120.00 |",
		"| build 100,000 labels: peak RSS | under 1 GiB | 3.3 GiB | **missed** |",
		"| build 1,000,000 labels | under 5 min, peak RSS under 4.0 GiB | not measured: build 1,000,000 labels failed (stopped when its resident memory reached 21.0 GiB) | not measured |",
		"| edge, 20-device request (~200 IDs): server CPU vs the floor | at most 1.5× | 2.9× (100 µs vs the floor 20 µs + the HTTP share 15 µs) | **missed** |",
		"| edge-20 | 13,409 | 100.0 | 6.7× (15.0 µs) | 2.9× (20.0 + 15.0 µs) |",
		"; 27% of fixed-20 (50,000 req/s) fed the same bodies and answering as many bytes (4,100).",
		"**The machine was busy when the run started**",
		"## Stages",
		"| 3 | build 1,000,000 labels | **failed**: stopped when its resident memory reached 21.0 GiB |",
		"**skipped**: nginx is not installed",
		"- 1,000,000 labels: the build did not complete: stopped when its resident memory reached 21.0 GiB",
		"63% of fixed (64,414 req/s), nginx: not measured (nginx is not installed)",
		"**nginx was not measured**: nginx is not installed.",
		"- edge-1, the edge's own time to answer (its `driveway_edge_offer_duration_seconds` histogram over the same run, from the request read to the response built; bounds of the histogram's buckets): p50 ≤ 0.05 ms, p99 ≤ 0.25 ms, p99.9 ≤ 1 ms of 163,216 requests.",
		"(the edge's own time: p99 ≤ 0.25 ms)",
		"![throughput vs concurrency](throughput.svg)",
		"![latency distribution at half load](latency.svg)",
		"![build](build.svg)",
		"## Machine",
		"- CPU: AMD EPYC, 2 logical CPUs",
		"- Stalls (the `machine stalls` stage: 2 threads, one per CPU, each reading the clock for 5 s): busy threads were stopped 40 times for more than 0.5 ms, 14 times for more than 2 ms and 9 times for more than 5 ms (worst 12.7 ms, 126 ms lost in all, about 1.26% of their time).",
		"- The machine itself, just before these runs (the `machine stalls` stage",
		"./driveway bench report\n",
		"## Install reports with durable acks (100,000-label release)",
		"A 202 from `POST /v1/reports` means stored: the edge answers it only after the spool's group commit has written the request's reports to the spool file and fsynced it",
		"| what | reports/s | reports per fsync | edge CPU | reports/s per core | offer p50 ms | offer p99 ms |",
		"| offers alone (baseline), 2,000 req/s | — | — | 0.20 cores | — | 0.200 | 0.900 |",
		"| single reports, 64 workers, + offers | 10,000 | 30.0 | 1.20 cores | 10,000 | 0.300 | 2.500 |",
		"| 64-report batches, 64 workers, + offers | 32,000 | 128.0 | 1.00 cores | 40,000 | 0.400 | 3.100 |",
		"6,000 answered 202 (384,000 reports; **other answers: 1 without an answer**); the edge counted 384,000 reports accepted, and its spool wrote 384,000 in 3,000 commits",
		"errors timeout: 10; the edge's own time to answer them (`driveway_edge_offer_duration_seconds`) p50 ≤ 0.05 ms, p99 ≤ 0.5 ms.",
		"which used at most 1.20 cores in these runs",
		"Reproduce: `driveway bench load --url http://127.0.0.1:4000/v1/reports --population WORK/reports-64.ndjson --concurrency 64 --duration 4s & OFFERS`",
		"- Install reports with durable acks (202 after fsync): 32,000 reports/s in 64-report batches (128 per fsync), 10,000 reports/s one to a request; beside them the offers' p99 was 3.100 and 2.500 ms (0.900 ms alone, at 2,000 req/s).",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("REPORT.md lacks %q", want)
		}
	}
	if strings.Contains(md, "NaN") || strings.Contains(md, "Inf") || strings.Contains(md, "%!") {
		t.Errorf("REPORT.md has a formatting fault:\n%s", md)
	}
}

func TestReportStage(t *testing.T) {
	r := &reporter{o: ReportOptions{Log: &strings.Builder{}}, res: &ReportResult{}, deadline: time.Now().Add(time.Hour)}
	ctx := context.Background()
	st := r.stage(ctx, "slow", "sleep", 50*time.Millisecond, 0, func(ctx context.Context, st *Stage) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if st.Status != stageFailed || !strings.Contains(st.Reason, "time limit") {
		t.Errorf("a stage over its limit: %+v", st)
	}
	st = r.stage(ctx, "skip", "", time.Second, 0, func(ctx context.Context, st *Stage) error { return skipError{"no room"} })
	if st.Status != stageSkipped || st.Reason != "no room" {
		t.Errorf("a skipped stage: %+v", st)
	}
	st = r.stage(ctx, "fails", "", time.Second, 0, func(ctx context.Context, st *Stage) error { return errors.New("bad\nthing") })
	if st.Status != stageFailed || st.Reason != "bad thing" {
		t.Errorf("a failing stage: %+v", st)
	}
	r.deadline = time.Now().Add(time.Second)
	ran := false
	st = r.stage(ctx, "late", "", time.Minute, 2*time.Second, func(ctx context.Context, st *Stage) error { ran = true; return nil })
	if ran || st.Status != stageSkipped {
		t.Errorf("a stage beyond the budget ran: %+v", st)
	}
	if len(r.res.Stages) != 4 {
		t.Errorf("%d stages recorded; want 4", len(r.res.Stages))
	}
}

// TestChildWatchdog: a child whose resident memory goes over the limit is stopped, and its
// peak is reported.
func TestChildWatchdog(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("needs python3 to make a process that grows")
	}
	r := &reporter{o: ReportOptions{Driveway: py}}
	c := r.child(context.Background(), 100<<20, nil, "-c", "import time\nx = b'x' * (400 << 20)\ntime.sleep(10)")
	if c.killedFor == "" || c.err == nil || c.wall > 8*time.Second {
		t.Fatalf("a 400 MB child under a 100 MB limit: killed %q, err %v, after %s", c.killedFor, c.err, c.wall)
	}
	if c.maxRSS < 100<<20 {
		t.Errorf("peak RSS %d; want over the limit", c.maxRSS)
	}
	// The parent's own peak must not show as the child's: Linux folds the memory a vforked
	// child leaves at exec into its ru_maxrss, and CI's test binary had grown to 400 MB.
	ballast := make([]byte, 300<<20)
	for i := range ballast {
		ballast[i] = byte(i)
	}
	c = r.child(context.Background(), 0, nil, "-c", "import time\nx = b'x' * (50 << 20)\ntime.sleep(1)")
	if c.err != nil || c.maxRSS < 50<<20 || c.maxRSS > 200<<20 {
		t.Errorf("a 50 MB child of a 300 MB parent: err %v, peak RSS %d", c.err, c.maxRSS)
	}
	runtime.KeepAlive(ballast)
	c = r.child(context.Background(), 0, nil, "-c", "import sys; sys.stderr.write('first\\nit broke\\n'); sys.exit(3)")
	if c.err == nil || !strings.Contains(c.err.Error(), "it broke") {
		t.Errorf("a failing child: %v; want its last line of stderr", c.err)
	}
}

func TestReportHelpers(t *testing.T) {
	for n, want := range map[int]string{10_000: "10k", 100_000: "100k", 1_000_000: "1M", 1234: "1234"} {
		if got := sizeName(n); got != want {
			t.Errorf("sizeName(%d) = %q; want %q", n, got, want)
		}
	}
	if got := shellJoin([]string{"build", "--out", "/tmp/a b", "it's", "x|y"}); got != `build --out '/tmp/a b' 'it'\''s' 'x|y'` {
		t.Errorf("shellJoin = %s", got)
	}
	if got := kbField([]byte("VmPeak:\t  1000 kB\nVmRSS:\t   2048 kB\n"), "VmRSS"); got != 2048<<10 {
		t.Errorf("kbField = %d", got)
	}
	if _, err := Report(context.Background(), ReportOptions{}); err == nil {
		t.Error("Report without a binary: no error")
	}
}

// TestHandlerHistogram reads the edge's histogram as /metrics writes it, takes a run's share
// of it and finds the bucket of each percentile.
func TestHandlerHistogram(t *testing.T) {
	text := func(counts ...int) []byte {
		bounds := []string{"2.5e-05", "5e-05", "0.0001", "0.00025", "0.001", "+Inf"}
		var b strings.Builder
		b.WriteString("# HELP driveway_edge_offer_duration_seconds Time to answer.\n# TYPE driveway_edge_offer_duration_seconds histogram\n")
		b.WriteString("driveway_edge_requests_total{path=\"/v1/offers\",status=\"200\"} 7\n")
		for i, n := range counts {
			fmt.Fprintf(&b, "driveway_edge_offer_duration_seconds_bucket{le=%q} %d\n", bounds[i], n)
		}
		b.WriteString("driveway_edge_offer_duration_seconds_sum 0.5\ndriveway_edge_offer_duration_seconds_count 5\n")
		return []byte(b.String())
	}
	before, err := parseHistogram(text(0, 1, 2, 2, 2, 2), handlerMetric)
	if err != nil {
		t.Fatal(err)
	}
	// 1000 more: 400 ≤ 25 µs, 500 in (25, 50], 90 in (50, 100], 9 in (100, 250], 1 over 1 ms.
	after, err := parseHistogram(text(400, 901, 992, 1001, 1001, 1002), handlerMetric)
	if err != nil {
		t.Fatal(err)
	}
	run, err := after.since(before)
	if err != nil {
		t.Fatal(err)
	}
	got := run.latency()
	if want := (HandlerLatency{Requests: 1000, P50Ms: 0.05, P99Ms: 0.1, P999Ms: 0.25}); got != want {
		t.Errorf("latency = %+v; want %+v", got, want)
	}
	if both, err := run.plus(run); err != nil || both.latency().Requests != 2000 || both.latency().P99Ms != 0.1 {
		t.Errorf("a run's histogram plus itself: %+v, %v; want 2000 requests, the same percentiles", both.latency(), err)
	}
	if q := run.quantile(1); !math.IsInf(q, 1) {
		t.Errorf("p100 = %g; want +Inf (one observation over the last finite bound)", q)
	}
	if _, err := before.since(after); err == nil || !strings.Contains(err.Error(), "restart") {
		t.Errorf("a histogram that went back: %v; want an error naming a restart", err)
	}
	for _, bad := range [][]byte{
		[]byte("nothing here\n"),
		[]byte("driveway_edge_offer_duration_seconds_bucket{le=\"0.001\"} 3\n"), // no +Inf
		[]byte("driveway_edge_offer_duration_seconds_bucket{le=\"0.001\"} 3\ndriveway_edge_offer_duration_seconds_bucket{le=\"+Inf\"} 2\n"),
		[]byte("driveway_edge_offer_duration_seconds_bucket{le=\"x\"} 3\n"),
	} {
		if _, err := parseHistogram(bad, handlerMetric); err == nil {
			t.Errorf("parseHistogram(%q) succeeded", bad)
		}
	}
}

// TestProbeStalls: a thread that is stopped shows as a gap. The probe's threads here are
// one more than the CPUs, so the kernel must take turns between them: each is stopped
// for whole time slices, milliseconds, many times a second.
func TestProbeStalls(t *testing.T) {
	sp := probeStalls(300*time.Millisecond, runtime.NumCPU()+1)
	if sp.Threads != runtime.NumCPU()+1 || sp.Seconds != 0.3 {
		t.Errorf("probe %+v: want %d threads for 0.3 s", sp, runtime.NumCPU()+1)
	}
	if sp.Over05 == 0 || sp.LostMs < 0.5*float64(sp.Over05) || sp.WorstMs <= 0.5 {
		t.Errorf("probe %+v: want the threads taking turns to show gaps over 0.5 ms", sp)
	}
}

// TestReportsFiguresCheck: the figures of the install-report runs add up, and a figure that
// does not is caught.
func TestReportsFiguresCheck(t *testing.T) {
	f := fakeReports()
	if err := f.check(); err != nil {
		t.Fatalf("consistent figures: %v", err)
	}
	if got := f.row(reportsSingle).ReportsPerSecond(); got != 10000 {
		t.Errorf("single reports/s = %g; want 10000", got)
	}
	if got := f.PerCore(f.row(reportsBatch)); got != 40000 {
		t.Errorf("batch reports/s per core = %g; want 40000 (32,000/s over the 0.8 cores the reports added)", got)
	}
	if got := f.PerCore(f.row(reportsOffers)); got != 0 {
		t.Errorf("the baseline's reports/s per core = %g; want none", got)
	}
	for name, spoil := range map[string]func(f *ReportsFigures){
		"no baseline":               func(f *ReportsFigures) { f.Rows = f.Rows[1:] },
		"accepted not 202 × 64":     func(f *ReportsFigures) { f.row(reportsBatch).Accepted-- },
		"the edge counted others":   func(f *ReportsFigures) { f.row(reportsSingle).EdgeAccepted++ },
		"written below acked":       func(f *ReportsFigures) { f.row(reportsSingle).Written = 100 },
		"more commits than lines":   func(f *ReportsFigures) { f.row(reportsSingle).Commits = 200000 },
		"answers beyond requests":   func(f *ReportsFigures) { f.row(reportsBatch).ReportRequests = 5000 },
		"the edge saw other offers": func(f *ReportsFigures) { f.row(reportsBatch).OfferHandler.Requests++ },
	} {
		g := fakeReports()
		spoil(g)
		if err := g.check(); err == nil {
			t.Errorf("%s: check passed", name)
		}
	}
	// Without CPU readings the table says so rather than dividing by nothing.
	g := fakeReports()
	for i := range g.Rows {
		g.Rows[i].EdgeCPU = 0
	}
	res := fakeResult()
	res.Reports = g
	md := string(res.Markdown(nil))
	if want := "| single reports, 64 workers, + offers | 10,000 | 30.0 | — | — | 0.300 | 2.500 |"; !strings.Contains(md, want) {
		t.Errorf("REPORT.md without CPU readings lacks %q", want)
	}
	if strings.Contains(md, "NaN") || strings.Contains(md, "Inf") || strings.Contains(md, "%!") {
		t.Errorf("REPORT.md has a formatting fault")
	}
}

// TestReportsMeasure runs the install-report stages' measurement against an edge with a
// spool: tokens got from its offers, report bodies the edge takes (each checked here too),
// and runs whose counts agree with the edge's and with the lines on disk. Durations are
// short and nothing is asserted on speed.
func TestReportsMeasure(t *testing.T) {
	secret := bytes.Repeat([]byte("s"), ro.MinSecretBytes)
	var spool string
	e := startTestEdgeWith(t, func(cfg *serve.Config, dir string) {
		spool = filepath.Join(dir, "spool")
		cfg.Spool = ro.SpoolOptions{Dir: spool, Secret: secret, Clock: bench.WorldNow, MinFreeBytes: -1, MinFreePercent: -1}
		cfg.ReportLimits = serve.ReportLimits{PerDevice: -1, PerSource: -1}
	})
	ctx := context.Background()
	offers, err := collectTokens(ctx, e.url+"/v1/offers", e.one)
	if err != nil {
		t.Fatal(err)
	}
	if len(offers) == 0 {
		t.Fatal("no offer with a report token")
	}
	singles, batches, err := reportBodies(offers, bench.WorldNow(), ro.MaxBatch)
	if err != nil {
		t.Fatal(err)
	}
	if len(singles) != len(offers) || len(batches) < 16 || len(batches)*ro.MaxBatch < len(offers) {
		t.Fatalf("%d single bodies and %d batches for %d offers", len(singles), len(batches), len(offers))
	}
	tokens, err := ro.NewReportTokens(secret)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range append(append([][]byte{}, singles...), batches...) {
		rs, err := ro.DecodeReports(b, ro.DecodeOptions{Now: bench.WorldNow(), Tokens: tokens})
		if err != nil {
			t.Fatalf("body %d does not decode as the edge decodes it: %v\n%s", i, err, b)
		}
		if want := map[bool]int{true: 1, false: ro.MaxBatch}[i < len(singles)]; len(rs) != want || rs[0].Result != "installed" {
			t.Fatalf("body %d: %d reports (%+v); want %d installed", i, len(rs), rs[0], want)
		}
	}

	f := &ReportsFigures{Batch: ro.MaxBatch}
	edge := reportsEdge{addr: strings.TrimPrefix(e.url, "http://"), cpu: func() (time.Duration, bool) { return procCPU(os.Getpid()) }}
	pl := reportsPlan{rounds: 2, run: 250 * time.Millisecond, offerRate: 400, inFlight: 8, concurrency: 4}
	if err := measureReports(ctx, edge, f, e.one, singles, batches, pl, t.Logf); err != nil {
		t.Fatal(err)
	}
	if err := f.check(); err != nil {
		t.Fatal(err)
	}
	if len(f.Rows) != 3 {
		t.Fatalf("%d rows; want the baseline, single reports and batches", len(f.Rows))
	}
	var written int64
	for _, r := range f.Rows {
		if r.OfferHandler == nil || int64(r.OfferHandler.Requests) != r.OfferOK {
			t.Errorf("%s: the edge's handler histogram %+v; want the %d offers answered", r.Kind, r.OfferHandler, r.OfferOK)
		}
		if r.Runs != pl.rounds || r.OfferRequests == 0 || r.OfferOK != r.OfferRequests || r.OfferLatency.P50 <= 0 {
			t.Errorf("%s: %d runs, offers %d of %d answered, p50 %g ms; want %d runs, every offer answered", r.Kind, r.Runs, r.OfferOK, r.OfferRequests, r.OfferLatency.P50, pl.rounds)
		}
		if _, ok := procCPU(os.Getpid()); ok && r.EdgeCPU <= 0 {
			t.Errorf("%s: no CPU time read", r.Kind)
		}
		if r.PerBody == 0 {
			if r.Accepted != 0 || r.Written != 0 || r.ReportRequests != 0 {
				t.Errorf("offers alone: %+v; want no reports", r)
			}
			continue
		}
		if r.Accepted == 0 || r.ReportStatuses[202] != r.ReportRequests || r.Written != r.Accepted || r.Commits == 0 || r.PerFsync() < 1 {
			t.Errorf("%s: %d requests, statuses %v, %d accepted, %d written in %d commits; want every request 202, each report written", r.Kind,
				r.ReportRequests, r.ReportStatuses, r.Accepted, r.Written, r.Commits)
		}
		written += r.Written
	}
	// What the edge said it wrote is on disk, one line a report.
	var lines, size int64
	entries, err := os.ReadDir(spool)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range entries {
		b, err := os.ReadFile(filepath.Join(spool, d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines += int64(bytes.Count(b, []byte("\n")))
		size += int64(len(b))
	}
	t.Logf("the spool: %d lines, %d bytes", lines, size)
	if lines != written {
		t.Errorf("the spool holds %d lines; the runs wrote %d reports", lines, written)
	}
	res := fakeResult()
	res.Reports = f
	md := string(res.Markdown(nil))
	for _, want := range []string{"## Install reports with durable acks", "| offers alone (baseline), 400 req/s | — | — |"} {
		if !strings.Contains(md, want) {
			t.Errorf("REPORT.md lacks %q", want)
		}
	}
}

func TestReportsHelpers(t *testing.T) {
	stat := []byte("4242 (driveway (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 100 1000000 2000 18446744073709551615\n")
	if d, ok := parseProcCPU(stat); !ok || d != 3250*time.Millisecond {
		t.Errorf("parseProcCPU = %s, %v; want 3.25s (250 + 75 ticks)", d, ok)
	}
	if _, ok := parseProcCPU([]byte("garbage")); ok {
		t.Error("parseProcCPU of garbage succeeded")
	}
	text := []byte("# HELP driveway_edge_reports_written_total x\ndriveway_edge_reports_written_total 1.2e+06\ndriveway_edge_spool_commits_total 300\n" +
		"driveway_edge_reports_limited_total{by=\"device\"} 5\n")
	got, err := parseCounters(text, metricWritten, metricCommits)
	if err != nil || got[metricWritten] != 1_200_000 || got[metricCommits] != 300 {
		t.Errorf("parseCounters = %v, %v", got, err)
	}
	if _, err := parseCounters(text, metricAccepted); err == nil {
		t.Error("parseCounters of a missing counter: no error")
	}
	if _, _, err := reportBodies(nil, bench.WorldNow(), 64); err == nil {
		t.Error("reportBodies without offers: no error")
	}
	dir := t.TempDir()
	for _, name := range []string{"reports-1.ndjson", "reports-2.ndjson", "reports-3.ndjson.open"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := shipSpool(dir); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 1 || filepath.Base(left[0]) != "reports-3.ndjson.open" {
		t.Errorf("after shipSpool: %v; want the open file only", left)
	}
}
