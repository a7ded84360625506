package report

// REPORT.md and its plots, from a ReportResult.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/driveway/driveway/bench/load"
	"github.com/driveway/driveway/bench/plot"
	ro "github.com/driveway/driveway/rollout"
)

// write writes REPORT.md and the plots into Out.
func (r *reporter) write() error {
	res := r.res
	plots := res.plots()
	res.Files = nil
	for _, name := range sortedKeys(plots) {
		if err := os.WriteFile(filepath.Join(r.o.Out, name), plots[name], 0o644); err != nil {
			return fmt.Errorf("bench: report: %w", err)
		}
		res.Files = append(res.Files, name)
	}
	md := res.Markdown(plots)
	if err := os.WriteFile(filepath.Join(r.o.Out, "REPORT.md"), md, 0o644); err != nil {
		return fmt.Errorf("bench: report: %w", err)
	}
	res.Files = append(res.Files, "REPORT.md")
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Target values (the earlier issues' targets on this 2-core machine).
const (
	targetValidate10k   = 10.0           // s, "well under"
	targetBuild100k     = 60.0           // s
	targetBuildRSS100k  = int64(1 << 30) // bytes (issue 19; the earlier target was 2 GiB)
	targetBuild1M       = 300.0          // s (issue 19)
	targetBuildRSS1M    = int64(4 << 30) // bytes (issue 19)
	targetRebuild100k   = 3.0            // s (issue 19)
	targetControlOnly   = 1.0            // s
	targetLookupNanos   = 1000.0         // warm
	targetDecide1Micros = 5.0
	targetDecide20Micro = 50.0
	targetFixedRatio    = 0.60
	targetHalfP99Ms     = 2.0
	targetEdgeRSS       = int64(150 << 20)
	targetSwapMs        = 100.0
	// Whole PCs (the scale issue): the edge's CPU per request, and its throughput against
	// the fixed-answer server fed the same bodies and answering as many bytes.
	targetWholeCPUMicros = 250.0
	targetWholeRatio     = 0.30
	// A realistic request (20 devices, ~200 IDs): the edge's CPU over the floor of the same
	// bodies plus the HTTP share (the fixed server fed them, answering as many bytes).
	targetTwentyVsFloor = 1.5

	// baselineBytes is the body of the fixed-answer baseline and of nginx's static file: the
	// edge issue's "fasthttp handler that returns a fixed 500-byte answer".
	baselineBytes = 500
)

// TargetRow is one line of the report's summary: a target of an earlier issue and what this
// run measured.
type TargetRow struct {
	What, Target, Measured string
	Verdict                string // "met", "missed", "not measured"
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

func (res *ReportResult) build(n int) *BuildFigure {
	for _, b := range res.Builds {
		if b.Labels == n {
			return b
		}
	}
	return nil
}

func (res *ReportResult) decideFig(devices, goroutines int) *DecideFigure {
	for i := range res.Decide {
		if res.Decide[i].Devices == devices && res.Decide[i].Goroutines == goroutines {
			return &res.Decide[i]
		}
	}
	return nil
}

// stageNamed returns the stage of that name.
func (res *ReportResult) stageNamed(name string) *Stage {
	for _, s := range res.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// whyNot says why a figure is missing: the reason of the stage that should have made it.
func (res *ReportResult) whyNot(stages ...string) string {
	for _, name := range stages {
		if s := res.stageNamed(name); s != nil && s.Status != stageOK {
			return "not measured: " + s.Name + " " + s.Status + " (" + s.Reason + ")"
		}
	}
	return "not measured"
}

// Targets evaluates every target against this run's figures.
func (res *ReportResult) Targets() []TargetRow {
	var rows []TargetRow
	add := func(what, target string, measured string, ok bool, have bool, why string) {
		row := TargetRow{What: what, Target: target, Measured: measured, Verdict: verdict(ok)}
		if !have {
			row.Measured, row.Verdict = why, "not measured"
		}
		rows = append(rows, row)
	}
	rel := ""
	if res.Release != 0 && res.Release != 100_000 {
		rel = fmt.Sprintf(" (on the %s release)", sizeName(res.Release))
	}

	v := res.Validate
	add("validate 10,000 labels", "well under 10 s", func() string {
		if v == nil {
			return ""
		}
		return fmt.Sprintf("%.1f s", v.Seconds)
	}(), v != nil && v.Seconds < targetValidate10k, v != nil && v.Status == stageOK, res.whyNot("validate 10,000 labels", "generate 10,000 labels"))

	b := res.build(100_000)
	why := "not measured (the quick run builds 10,000 labels only)"
	if !res.Quick {
		why = res.whyNot("generate 100,000 labels", "build 100,000 labels")
	}
	add("build 100,000 labels", "under 60 s", func() string {
		if b == nil {
			return ""
		}
		return fmt.Sprintf("%.1f s", b.Seconds)
	}(), b != nil && b.Seconds < targetBuild100k, b != nil && b.Seconds > 0, why)
	add("build 100,000 labels: peak RSS", "under 1 GiB", func() string {
		if b == nil {
			return ""
		}
		s := gib(b.PeakRSS)
		if b.Seconds == 0 {
			s += " before it was stopped"
		}
		return s
	}(), b != nil && b.Seconds > 0 && b.PeakRSS < targetBuildRSS100k, b != nil && b.PeakRSS > 0, why)
	m := res.build(1_000_000)
	whyM := "not measured (the quick run builds 10,000 labels only)"
	if !res.Quick {
		whyM = res.whyNot("generate 1,000,000 labels", "build 1,000,000 labels")
	}
	add("build 1,000,000 labels", fmt.Sprintf("under %.0f min, peak RSS under %s", targetBuild1M/60, gib(targetBuildRSS1M)), func() string {
		if m == nil {
			return ""
		}
		return fmt.Sprintf("%.1f min, peak RSS %s", m.Seconds/60, gib(m.PeakRSS))
	}(), m != nil && m.Seconds > 0 && m.Seconds < targetBuild1M && m.PeakRSS < targetBuildRSS1M, m != nil && m.Seconds > 0, whyM)
	rb := (*RebuildFigure)(nil)
	if b != nil {
		rb = b.Rebuild
	}
	add("rebuild 100,000 labels after one label changed", fmt.Sprintf("under %.0f s", targetRebuild100k), func() string {
		if rb == nil || rb.Seconds == 0 {
			return ""
		}
		return fmt.Sprintf("%.1f s (listing and stat-ing the tree alone: %.1f s)", rb.Seconds, rb.FloorSeconds)
	}(), rb != nil && rb.Seconds > 0 && rb.Seconds < targetRebuild100k, rb != nil && rb.Seconds > 0, res.whyNot("rebuild 100,000 labels after one label changed", "build 100,000 labels"))

	e := res.Edge
	have := e != nil && e.ControlSec > 0
	add("control-only release"+rel, "under 1 s", func() string {
		if !have {
			return ""
		}
		return fmt.Sprintf("%.2f s", e.ControlSec)
	}(), have && e.ControlSec < targetControlOnly, have, res.whyNot("control-only release and swap"))

	l := res.Lookups
	add("lookup of one key, warm"+rel, "under 1 µs", func() string {
		if l == nil {
			return ""
		}
		return fmt.Sprintf("%.0f ns (cold: %.1f µs)", l.WarmNanos, l.ColdNanos/1000)
	}(), l != nil && l.WarmNanos < targetLookupNanos, l != nil, res.whyNot("lookups"))

	for _, c := range []struct {
		devices int
		target  float64
	}{{1, targetDecide1Micros}, {20, targetDecide20Micro}} {
		d := res.decideFig(c.devices, 1)
		add(fmt.Sprintf("decode + decide + encode, %d-device request%s", c.devices, rel), fmt.Sprintf("under %.0f µs", c.target), func() string {
			if d == nil {
				return ""
			}
			return fmt.Sprintf("%.1f µs", d.MicrosPerRequest)
		}(), d != nil && d.MicrosPerRequest < c.target, d != nil, res.whyNot("decide in-process"))
	}

	have = e != nil && e.Max["edge-1"] > 0 && e.Max["fixed"] > 0
	add("edge, 1-device requests/s vs the fixed-answer ceiling"+rel, "at least 60%", func() string {
		if !have {
			return ""
		}
		return fmt.Sprintf("%.0f%% (%s vs %s req/s)", 100*e.Max["edge-1"]/e.Max["fixed"], groupInt(int64(e.Max["edge-1"])), groupInt(int64(e.Max["fixed"])))
	}(), have && e.Max["edge-1"]/e.Max["fixed"] >= targetFixedRatio, have, res.whyNot("closed loops", "start the fixed-answer baseline", "start the edge"))

	var h *LoadPoint
	if e != nil {
		h = e.half("edge-1")
	}
	add("edge p99 at half of its maximum, 1 device"+rel, "under 2 ms", func() string {
		if h == nil {
			return ""
		}
		m := fmt.Sprintf("%.2f ms at %s req/s", h.Result.Latency.P99, groupInt(int64(h.Result.RPS)))
		if h.Handler != nil && h.Handler.Requests > 0 {
			m += fmt.Sprintf(" (the edge's own time: p99 ≤ %s ms)", boundMs(h.Handler.P99Ms))
		}
		return m
	}(), h != nil && h.Result.Latency.P99 < targetHalfP99Ms, h != nil, res.whyNot("open loops at half load", "closed loops", "start the edge"))

	var wholeCPU float64
	if e != nil {
		wholeCPU = e.bestCPU("edge-whole")
	}
	add("edge, whole-PC request: server CPU per request"+rel, fmt.Sprintf("under %.0f µs", targetWholeCPUMicros), func() string {
		if wholeCPU == 0 {
			return ""
		}
		m := fmt.Sprintf("%.0f µs (/proc, at its best closed loop)", wholeCPU)
		if f := e.bestCPU("fixed-whole"); f > 0 {
			m += fmt.Sprintf("; the fixed server on the same bodies %.0f µs", f)
		}
		return m
	}(), wholeCPU > 0 && wholeCPU < targetWholeCPUMicros, wholeCPU > 0, res.whyNot("closed loops", "start the edge"))

	var twentyCPU, twentyFixed, twentyFloor float64
	if e != nil {
		twentyCPU, twentyFixed = e.bestCPU("edge-20"), e.bestCPU("fixed-20")
	}
	for _, f := range res.Floor {
		if f.Devices == 20 {
			twentyFloor = f.MicrosPerRequest
		}
	}
	have = twentyCPU > 0 && twentyFixed > 0 && twentyFloor > 0
	add("edge, 20-device request (~200 IDs): server CPU vs the floor"+rel, fmt.Sprintf("at most %.1f×", targetTwentyVsFloor), func() string {
		if !have {
			return ""
		}
		return fmt.Sprintf("%.1f× (%.0f µs vs the floor %.0f µs + the HTTP share %.0f µs)", twentyCPU/(twentyFloor+twentyFixed), twentyCPU, twentyFloor, twentyFixed)
	}(), have && twentyCPU/(twentyFloor+twentyFixed) <= targetTwentyVsFloor, have, res.whyNot("closed loops", "start the fixed-answer baseline for 20-device requests", "start the edge"))

	have = e != nil && e.Max["edge-whole"] > 0 && e.Max["fixed-whole"] > 0
	add("edge, whole-PC requests/s vs the fixed server on the same bodies"+rel, fmt.Sprintf("at least %.0f%%", 100*targetWholeRatio), func() string {
		if !have {
			return ""
		}
		return fmt.Sprintf("%.0f%% (%s vs %s req/s)", 100*e.Max["edge-whole"]/e.Max["fixed-whole"], groupInt(int64(e.Max["edge-whole"])), groupInt(int64(e.Max["fixed-whole"])))
	}(), have && e.Max["edge-whole"]/e.Max["fixed-whole"] >= targetWholeRatio, have, res.whyNot("closed loops", "start the fixed-answer baseline for whole PCs", "start the edge"))

	have = e != nil && e.RSS > 0
	add("edge RSS with the release served"+rel, "under 150 MiB", func() string {
		if !have {
			return ""
		}
		return fmt.Sprintf("%s (peak %s)", mib(e.RSS), mib(e.PeakRSS))
	}(), have && e.RSS < targetEdgeRSS && e.PeakRSS < targetEdgeRSS, have, res.whyNot("edge memory", "start the edge"))

	have = e != nil && e.SwapMs > 0
	add("swap after the release appears"+rel, "under 100 ms", func() string {
		if !have {
			return ""
		}
		return fmt.Sprintf("%.1f ms after the manifest was written", e.SwapMs)
	}(), have && e.SwapMs < targetSwapMs, have, res.whyNot("control-only release and swap", "start the edge"))
	return rows
}

// percentilesPlotted are the points of the latency distribution plot.
var percentilesPlotted = []float64{1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97, 98, 99, 99.5, 99.9, 99.95, 99.99, 100}

// plots renders the SVGs, by file name. Every plot is a plot.Chart.
func (res *ReportResult) plots() map[string][]byte {
	out := map[string][]byte{}
	if e := res.Edge; e != nil && len(e.Half) > 0 {
		c := &plot.Chart{Title: fmt.Sprintf("Latency at half of each server's maximum (open loop, %s release)", sizeName(e.Labels)),
			XLabel: "latency (ms, from the intended send time)", YLabel: "percentile", LogX: true}
		for _, name := range targetsOrder {
			p := e.half(name)
			if p == nil || p.Result.Hist == nil {
				continue
			}
			s := plot.Series{Name: fmt.Sprintf("%s @ %s/s", name, shortCount(p.Result.Rate))}
			for _, q := range percentilesPlotted {
				s.X = append(s.X, float64(p.Result.Hist.Percentile(q))/1e6)
				s.Y = append(s.Y, q)
			}
			c.Series = append(c.Series, s)
		}
		out["latency.svg"] = c.SVG()
	}
	if e := res.Edge; e != nil && len(e.Closed) > 0 {
		c := &plot.Chart{Title: fmt.Sprintf("Throughput vs concurrency (closed loop, %s release)", sizeName(e.Labels)),
			XLabel: "concurrent requests (connections)", YLabel: "requests/s", LogX: true}
		for _, name := range targetsOrder {
			pts := e.closedBy(name)
			if len(pts) == 0 {
				continue
			}
			s := plot.Series{Name: name}
			for _, p := range pts {
				s.X = append(s.X, float64(p.Result.Concurrency))
				s.Y = append(s.Y, p.Result.RPS)
			}
			c.Series = append(c.Series, s)
		}
		out["throughput.svg"] = c.SVG()
	}
	var build, gen, rss plot.Series
	build.Name, gen.Name, rss.Name = "build", "generate the tree", "build peak RSS"
	for _, b := range res.Builds {
		if b.GenSeconds > 0 && b.TreeFiles > 0 {
			gen.X, gen.Y = append(gen.X, float64(b.Labels)), append(gen.Y, b.GenSeconds)
		}
		if b.Seconds > 0 {
			build.X, build.Y = append(build.X, float64(b.Labels)), append(build.Y, b.Seconds)
		}
		if b.PeakRSS > 0 {
			rss.X, rss.Y = append(rss.X, float64(b.Labels)), append(rss.Y, float64(b.PeakRSS)/(1<<30))
		}
	}
	if len(build.X) > 0 {
		c := &plot.Chart{Title: "Build time vs catalog size", XLabel: "shipping labels", YLabel: "seconds", LogX: true, LogY: true,
			Series: []plot.Series{build, gen}}
		out["build.svg"] = c.SVG()
	}
	if len(rss.X) > 0 {
		c := &plot.Chart{Title: "Build peak memory vs catalog size", XLabel: "shipping labels", YLabel: "GiB resident", LogX: true, LogY: true,
			Series: []plot.Series{rss}}
		out["build-memory.svg"] = c.SVG()
	}
	return out
}

// shortCount prints 20402 as 20.4k.
func shortCount(v float64) string {
	if v >= 1000 {
		return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", v/1000), ".0"), ".") + "k"
	}
	return fmt.Sprintf("%.0f", v)
}

func ms(v float64) string { return fmt.Sprintf("%.3f", v) }

// errorsText lists a load result's errors by kind.
func errorsText(r *load.Result) string {
	if len(r.Errors) == 0 {
		return "0"
	}
	var parts []string
	for _, k := range sortedKeys(r.Errors) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, r.Errors[k]))
	}
	return strings.Join(parts, ", ")
}

// Markdown renders the report. plots names the SVGs written beside it.
func (res *ReportResult) Markdown(plots map[string][]byte) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := res.Machine
	kind := "full run: 10,000, 100,000 and 1,000,000 labels"
	if res.Quick {
		kind = "quick run: 10,000 labels, short load runs"
	}
	p("# driveway benchmark report\n\n")
	p("Written by `%s` on %s (%s), in %s. Every figure below comes from this run, with the command that reproduces it; the machine is described [at the end](#machine).\n\n",
		res.Command, res.Started.UTC().Format("2006-01-02 15:04 MST"), kind, (time.Duration(res.Seconds) * time.Second).Round(time.Second))
	p("On %s × %d (%s), load average %.2f at the start and %.2f at the end.", m.CPU, m.CPUs, gib(m.MemTotal), m.LoadStart[0], m.LoadEnd[0])
	if busy := m.LoadStart[0] > 0.5*float64(m.CPUs); busy {
		p(" **The machine was busy when the run started** (load average %.2f on %d cores): other work shared its cores, so throughput is low and tails long compared with an idle machine.", m.LoadStart[0], m.CPUs)
	}
	p(" The load generator, the edge and the baselines share the same cores over loopback, so every throughput includes the generator's share of the CPU.\n\n")
	if res.Quick {
		p("This is a quick run: the targets are for the 100,000-label release, and here the release is %s labels, so the figures are indicative only.\n\n", groupInt(int64(res.Release)))
	}

	p("## Targets\n\n| target | goal | measured | |\n|---|---|---|---|\n")
	for _, t := range res.Targets() {
		mark := map[string]string{"met": "met", "missed": "**missed**", "not measured": "not measured"}[t.Verdict]
		p("| %s | %s | %s | %s |\n", t.What, t.Target, t.Measured, mark)
	}
	p("\n")
	res.writeHeadline(&b)
	res.writeStages(&b)
	res.writeBuilds(&b, plots)
	res.writeInProcess(&b)
	res.writeEdge(&b, plots)
	res.writeReports(&b)
	res.writeMachine(&b)
	return b.Bytes()
}

func (res *ReportResult) writeHeadline(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	e := res.Edge
	if e == nil {
		return
	}
	p("## The %s-label release in brief\n\n", groupInt(int64(e.Labels)))
	ratio := func(a, base string) string {
		if e.Max[a] == 0 || e.Max[base] == 0 {
			if why := e.Missing[base]; why != "" {
				return base + ": not measured (" + why + ")"
			}
			return base + ": not measured"
		}
		return fmt.Sprintf("%.0f%% of %s (%s req/s)", 100*e.Max[a]/e.Max[base], base, groupInt(int64(e.Max[base])))
	}
	for _, t := range []struct{ name, what string }{{"edge-1", "1-device"}, {"edge-20", "20-device"}} {
		if e.Max[t.name] == 0 {
			continue
		}
		p("- Edge, %s requests: at most %s req/s, %s, %s", t.what, groupInt(int64(e.Max[t.name])), ratio(t.name, "fixed"), ratio(t.name, "nginx"))
		if t.name == "edge-20" && e.Max["fixed-20"] > 0 {
			p("; %s fed the same bodies and answering as many bytes (%s)", ratio(t.name, "fixed-20"), groupInt(int64(e.TwentyResponseBytes)))
		}
		p(".")
		if h := e.half(t.name); h != nil {
			p(" At half of that (%s req/s asked, open loop): p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms.", groupInt(int64(h.Result.Rate)),
				h.Result.Latency.P50, h.Result.Latency.P99, h.Result.Latency.P999)
		}
		p("\n")
	}
	if e.Max["edge-whole"] > 0 {
		p("- Edge, whole PCs (%.0f devices, %s bytes per request on average, most of them known to no label; `bench gen-devices --whole-pc`): at most %s req/s, %s answering the same bodies with as many bytes (%s).",
			e.WholeDevices, groupInt(int64(e.WholeBytes)), groupInt(int64(e.Max["edge-whole"])), ratio("edge-whole", "fixed-whole"), groupInt(int64(e.WholeResponseBytes)))
		if h := e.half("edge-whole"); h != nil {
			p(" At half of that (open loop): p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms.", h.Result.Latency.P50, h.Result.Latency.P99, h.Result.Latency.P999)
		}
		p("\n")
	}
	if bf := res.build(e.Labels); bf != nil && bf.Seconds > 0 {
		p("- Build: %.1f s, peak RSS %s; %s of shards and a %s manifest.\n", bf.Seconds, gib(bf.PeakRSS), mibf(bf.ShardBytes), mibf(bf.ManifestBytes))
	}
	if f := res.Reports; f != nil {
		single, batch, base := f.row(reportsSingle), f.row(reportsBatch), f.row(reportsOffers)
		if single != nil && batch != nil && base != nil {
			p("- Install reports with durable acks (202 after fsync): %s reports/s in %d-report batches (%.0f per fsync), %s reports/s one to a request; beside them the offers' p99 was %.3f and %.3f ms (%.3f ms alone, at %s req/s).\n",
				groupInt(int64(batch.ReportsPerSecond())), f.Batch, batch.PerFsync(), groupInt(int64(single.ReportsPerSecond())),
				batch.OfferLatency.P99, single.OfferLatency.P99, base.OfferLatency.P99, groupInt(int64(f.OfferRate)))
		}
	}
	if e.OpenSeconds > 0 {
		p("- Edge open: %.2f s from process start to `/readyz` 200 (its own load and verification of the release: %.0f ms); RSS %s after the load runs.\n",
			e.OpenSeconds, e.LoadMs, mib(e.RSS))
	}
	p("\n")
}

func (res *ReportResult) writeStages(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Stages\n\nIn the order they ran. `driveway` is the binary that wrote this report; WORK paths are those of this run.\n\n")
	p("| # | stage | status | time | command |\n|---|---|---|---:|---|\n")
	for i, s := range res.Stages {
		status := s.Status
		if s.Status != stageOK {
			status = "**" + s.Status + "**: " + mdEscape(s.Reason)
		} else if s.Reason != "" {
			status += ": " + mdEscape(s.Reason)
		}
		cmd := ""
		if s.Command != "" {
			cmd = "`" + strings.ReplaceAll(s.Command, "|", `\|`) + "`"
		}
		p("| %d | %s | %s | %.1f s | %s |\n", i+1, s.Name, status, s.Seconds, cmd)
	}
	p("\n")
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func (res *ReportResult) writeBuilds(b *bytes.Buffer, plots map[string][]byte) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	if len(res.Builds) == 0 {
		return
	}
	p("## Catalog builds\n\nEach tree is written by `driveway bench gen-labels --compact` (deterministic: seed 1) and built by `driveway build` as a child process: wall time, and peak RSS from getrusage (what `/usr/bin/time -v` reports as maximum resident set size). A build is stopped if its resident memory comes within 1 GiB of exhausting the machine.\n\n")
	p("| labels | generate | tree files | tree bytes | build | peak RSS | shards | manifest | rows | HWIDs |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, f := range res.Builds {
		dash := func(ok bool, s string) string {
			if ok {
				return s
			}
			return "—"
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", groupInt(int64(f.Labels)),
			dash(f.TreeFiles > 0, fmt.Sprintf("%.1f s", f.GenSeconds)), dash(f.TreeFiles > 0, groupInt(int64(f.TreeFiles))), dash(f.TreeBytes > 0, mibf(f.TreeBytes)),
			dash(f.Seconds > 0, fmt.Sprintf("%.1f s", f.Seconds)), dash(f.PeakRSS > 0, gib(f.PeakRSS)), dash(f.ShardBytes > 0, mibf(f.ShardBytes)),
			dash(f.ManifestBytes > 0, mibf(f.ManifestBytes)), dash(f.Rows > 0, groupInt(int64(f.Rows))), dash(f.HWIDs > 0, groupInt(int64(f.HWIDs))))
	}
	p("\n")
	for _, f := range res.Builds {
		if f.Err != "" {
			p("- %s labels: %s\n", groupInt(int64(f.Labels)), mdEscape(f.Err))
		}
		if len(f.Phases) > 0 {
			var parts []string
			for _, ph := range f.Phases {
				parts = append(parts, fmt.Sprintf("%s %.1f s", ph.Name, ph.Seconds))
			}
			p("- %s labels, build phases: %s.\n", groupInt(int64(f.Labels)), strings.Join(parts, ", "))
		}
		if rb := f.Rebuild; rb != nil && rb.Err != "" {
			p("- %s labels, rebuild after one label changed: %s\n", groupInt(int64(f.Labels)), mdEscape(rb.Err))
		} else if rb != nil && f.Seconds > 0 {
			var parts []string
			for _, ph := range rb.Phases {
				parts = append(parts, fmt.Sprintf("%s %.1f s", ph.Name, ph.Seconds))
			}
			p("- %s labels, rebuild after one label changed (the build's cache): %.1f s, %.2f× the full build, peak RSS %s; %d product%s built, %s reused, %d shard%s written; phases: %s. Listing the tree and stat-ing every file, which any rebuild that checks each file costs here: %.1f s.\n",
				groupInt(int64(f.Labels)), rb.Seconds, rb.Seconds/f.Seconds, gib(rb.PeakRSS), rb.ProductsBuilt, plural(rb.ProductsBuilt), groupInt(int64(rb.ProductsReused)),
				rb.ShardsWritten, plural(rb.ShardsWritten), strings.Join(parts, ", "), rb.FloorSeconds)
		}
	}
	p("\n")
	for _, name := range []string{"build.svg", "build-memory.svg"} {
		if plots[name] != nil {
			p("![%s](%s)\n\n", strings.TrimSuffix(name, ".svg"), name)
		}
	}
}

func (res *ReportResult) writeInProcess(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	if res.Lookups == nil && len(res.Decide) == 0 {
		return
	}
	p("## Lookups and decide, in process (%s release)\n\n", groupInt(int64(res.Release)))
	if l := res.Lookups; l != nil {
		evicted := "the shard files dropped from the page cache first"
		if !l.Evicted {
			evicted = "the page cache could NOT be dropped, so the cold pass is warmer than it says"
		}
		p("Lookups (`driveway bench lookups`, see Stages): %s random HWID lookups over the release's %s keys, routed and probed as the edge does, with the edge's 64 MiB block cache: cold (%s, nothing decoded yet) %.1f µs each, warm (the same keys again) %.0f ns each.\n\n",
			groupInt(int64(l.Lookups)), groupInt(int64(l.Keys)), evicted, l.ColdNanos/1000, l.WarmNanos)
	}
	if len(res.Decide) > 0 {
		p("Decide: decode + decide + encode of the same requests the edge gets below, in this process over the verified release (64 MiB block cache, warmed by one pass), no HTTP. One goroutine gives the time per request; GOMAXPROCS goroutines the throughput of this machine.\n\n")
		p("| request | goroutines | requests | µs per request | requests/s | offers per request |\n|---|---:|---:|---:|---:|---:|\n")
		for _, d := range res.Decide {
			p("| %s | %d | %s | %.2f | %s | %.2f |\n", requestName(d.Devices), d.Goroutines, groupInt(d.Requests), d.MicrosPerRequest,
				groupInt(int64(d.RPS)), d.OffersPerRequest)
		}
		p("\n")
	}
	if len(res.Floor) > 0 {
		p("The floor: what any server must do with the same bodies, in this process on one goroutine: offer's decoder (a fast JSON parse, no allocation) and, for every hardware and compatible ID, hash, route and Bloom test, and for the IDs that pass it the probe and the record read; nothing decided or encoded. *vs floor* is decode + decide + encode (one goroutine, above) over it.\n\n")
		p("| request | IDs per request | past the Bloom filter | floor µs per request | decide µs per request | vs floor |\n|---|---:|---:|---:|---:|---:|\n")
		for _, f := range res.Floor {
			decide := "—"
			vs := "—"
			for _, d := range res.Decide {
				if d.Goroutines == 1 && d.Devices == f.Devices && f.MicrosPerRequest > 0 {
					decide = fmt.Sprintf("%.2f", d.MicrosPerRequest)
					vs = fmt.Sprintf("%.1f×", d.MicrosPerRequest/f.MicrosPerRequest)
				}
			}
			p("| %s | %.0f | %.1f | %.2f | %s | %s |\n", requestName(f.Devices), f.IDsPerRequest, f.ProbedPerRequest, f.MicrosPerRequest, decide, vs)
		}
		p("\n")
	}
}

// requestName names a kind of request by its devices: "1 device", "20 devices", and for 0
// "whole PC".
func requestName(devices int) string {
	if devices == 0 {
		return "whole PC"
	}
	return fmt.Sprintf("%d device%s", devices, plural(devices))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// writeServerCPU writes what each server spent per request at its best closed loop, beside
// the fixed server fed the same bodies and the floor of those bodies plus that HTTP share.
func (res *ReportResult) writeServerCPU(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	e := res.Edge
	floor := map[int]float64{} // by devices per request
	for _, f := range res.Floor {
		floor[f.Devices] = f.MicrosPerRequest
	}
	// fixed is the fixed-answer server fed the same bodies ("": none), devices the bodies'
	// kind, as the floor's.
	rows := []struct {
		name, fixed string
		devices     int
	}{
		{"edge-1", "fixed", 1}, {"edge-20", "fixed-20", 20}, {"edge-whole", "fixed-whole", 0},
		{"fixed", "", 1}, {"fixed-20", "", 20}, {"fixed-whole", "", 0},
	}
	var lines []string
	for _, r := range rows {
		cpu := e.bestCPU(r.name)
		if cpu == 0 {
			continue
		}
		vsFixed, vsFloor := "—", "—"
		if f := e.bestCPU(r.fixed); r.fixed != "" && f > 0 {
			vsFixed = fmt.Sprintf("%.1f× (%.1f µs)", cpu/f, f)
			if fl := floor[r.devices]; fl > 0 {
				vsFloor = fmt.Sprintf("%.1f× (%.1f + %.1f µs)", cpu/(fl+f), fl, f)
			}
		}
		lines = append(lines, fmt.Sprintf("| %s | %s | %.1f | %s | %s |\n", r.name, groupInt(int64(e.Max[r.name])), cpu, vsFixed, vsFloor))
	}
	if len(lines) == 0 {
		return
	}
	p("### Server CPU per request\n\nEach server's CPU (user + system, from `/proc/PID/stat`, which counts in 10 ms ticks) over its best closed-loop run, per request. *vs fixed* divides it by the fixed-answer server's fed the same bodies and answering as many bytes: the HTTP share of such a request on this machine. *vs floor* divides it by that HTTP share plus the floor of the same bodies (decode and the lookups, in process; see Lookups and decide).\n\n")
	p("| target | best req/s | CPU µs per request | vs fixed | vs floor |\n|---|---:|---:|---:|---:|\n")
	for _, l := range lines {
		p("%s", l)
	}
	p("\n")
}

func (res *ReportResult) writeEdge(b *bytes.Buffer, plots map[string][]byte) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	e := res.Edge
	if e == nil {
		return
	}
	p("## The edge under load (%s release)\n\n", groupInt(int64(e.Labels)))
	p("`driveway serve` on a loopback port, driven by this process's load generator (`driveway bench load`: fasthttp client, one connection per worker, latencies in an HDR-style histogram). Requests: %s PCs of `driveway bench gen-devices` cut to their first device (edge-1), and the %s PCs with 20 devices or more cut to 20 (edge-20), sent in turn.\n\n",
		groupInt(int64(e.Bodies1)), groupInt(int64(e.Bodies20)))
	p("Beside it, the two ceilings a user would compare against, fed the 1-device requests: **fixed**, fasthttp with the edge's listener settings answering every request with the same %d-byte body and no work (`driveway bench fixed-answer --bytes %d`); and **nginx** serving a static file of the same %d bytes to the same POSTs (configuration below). The edge's own 1-device answers were %d bytes on average.",
		e.BaselineBytes, e.BaselineBytes, e.BaselineBytes, e.ResponseBytes)
	for _, name := range sortedKeys(e.Missing) {
		p(" **%s was not measured**: %s.", name, mdEscape(e.Missing[name]))
	}
	if len(e.URLs) > 0 {
		var parts []string
		for _, name := range targetsOrder {
			if u := e.URLs[name]; u != "" {
				parts = append(parts, name+" "+u)
			}
		}
		p(" URLs of this run: %s.", strings.Join(parts, ", "))
	}
	p("\n\n")

	p("### Maximum throughput (closed loop)\n\n| target | max req/s | at concurrency | vs fixed | vs nginx |\n|---|---:|---:|---:|---:|\n")
	for _, name := range targetsOrder {
		if e.Max[name] == 0 {
			continue
		}
		at := 0
		for _, pt := range e.closedBy(name) {
			if pt.Result.RPS == e.Max[name] {
				at = pt.Result.Concurrency
			}
		}
		vs := func(base string) string {
			if name == "edge-whole" && base == "fixed" {
				base = "fixed-whole" // the same bodies, answered with as many bytes
			}
			if name == "edge-20" && base == "fixed" && e.Max["fixed-20"] > 0 {
				base = "fixed-20"
			}
			if e.Max[base] == 0 || strings.HasPrefix(name, "fixed") || (name == "fixed-whole" && base == "nginx") {
				return "—"
			}
			return fmt.Sprintf("%.0f%%", 100*e.Max[name]/e.Max[base])
		}
		p("| %s | %s | %d | %s | %s |\n", name, groupInt(int64(e.Max[name])), at, vs("fixed"), vs("nginx"))
	}
	p("\n")
	res.writeServerCPU(b)
	if len(e.Closed) > 0 {
		d := time.Duration(e.Closed[0].Result.Seconds * float64(time.Second)).Round(100 * time.Millisecond)
		p("Every run: `driveway bench load --url URL --population PCS --devices 1|20 --concurrency C --duration %s` (the commands are in Stages).\n\n", d)
		p("| concurrency | target | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | offers/request |\n|---:|---|---:|---:|---:|---:|---:|---:|---|---:|\n")
		for _, pt := range e.Closed {
			r := &pt.Result
			p("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %.2f |\n", r.Concurrency, pt.Target, groupInt(int64(r.RPS)), ms(r.Latency.P50), ms(r.Latency.P90),
				ms(r.Latency.P99), ms(r.Latency.P999), ms(r.Latency.Max), errorsText(r), r.OffersPerRequest)
		}
		p("\n")
	}
	if plots["throughput.svg"] != nil {
		p("![throughput vs concurrency](throughput.svg)\n\n")
	}
	if len(e.Half) > 0 {
		p("### Latency at half load (open loop)\n\nEach server at half of its own maximum above, requests sent at fixed intended times whatever the answers, latency measured from the intended time (coordinated omission corrected: a stall shows in every request it delayed). *Late* counts requests sent more than 1 ms after their time, when the generator or its connections could not keep up.")
		if eng := e.Half[0].Result.Engine; eng == load.EngineEpoll {
			p(" The generator is `bench load`'s epoll engine: one thread, every connection in one epoll set, no allocation per request, so that it takes as little as it can of the cores it shares with the servers.")
		} else if eng != "" {
			p(" The generator is `bench load`'s %s engine.", eng)
		}
		p("\n\n")
		p("| target | asked req/s | done req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | late | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, name := range targetsOrder {
			pt := e.half(name)
			if pt == nil {
				continue
			}
			r := &pt.Result
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, groupInt(int64(r.Rate)), groupInt(int64(r.RPS)), ms(r.Latency.P50), ms(r.Latency.P90),
				ms(r.Latency.P99), ms(r.Latency.P999), ms(r.Latency.Max), groupInt(r.Late), errorsText(r))
		}
		p("\n")
		for _, name := range targetsOrder {
			if pt := e.half(name); pt != nil && pt.Handler != nil && pt.Handler.Requests > 0 {
				h := pt.Handler
				p("- %s, the edge's own time to answer (its `%s` histogram over the same run, from the request read to the response built; bounds of the histogram's buckets): p50 ≤ %s ms, p99 ≤ %s ms, p99.9 ≤ %s ms of %s requests. The rest of the latency above is loopback, the kernel's queues and the generator sharing the cores.\n",
					name, handlerMetric, boundMs(h.P50Ms), boundMs(h.P99Ms), boundMs(h.P999Ms), groupInt(int64(h.Requests)))
			}
		}
		if sp := res.Machine.Stalls; sp != nil {
			p("- The machine itself, just before these runs (%s): %s\n", stallsWhere(sp), stallsText(sp))
		}
		for _, name := range targetsOrder {
			if pt := e.half(name); pt != nil && pt.Result.Requests > 0 && float64(pt.Result.Late) > 0.01*float64(pt.Result.Requests) {
				p("- %s: %.1f%% of the requests went out late: the generator, sharing the cores, did not keep the schedule; their latency still counts from their intended time.\n",
					name, 100*float64(pt.Result.Late)/float64(pt.Result.Requests))
			}
		}
		p("\n")
	}
	if plots["latency.svg"] != nil {
		p("![latency distribution at half load](latency.svg)\n\n")
	}
	p("### Memory, open and swap\n\n")
	if e.OpenSeconds > 0 {
		p("- Open: %.3f s from starting `driveway serve` to `/readyz` answering 200; the edge's own load of the release (verification of the signature and of every shard's sha256 and structure, mapping) took %.1f ms by its log.\n", e.OpenSeconds, e.LoadMs)
	}
	if e.RSS > 0 {
		p("- Resident memory after the load runs: %s (peak %s), with the release mapped and the decoded-block cache (64 MiB budget) in use.\n", mibf(e.RSS), mibf(e.PeakRSS))
	}
	if e.SwapMs > 0 {
		p("- Swap: `driveway build --control-only` published a new manifest in %.2f s (the whole process); the edge served it %.1f ms after the manifest was written (its mtime), %.1f ms after the build exited; its own load of it took %.1f ms.\n",
			e.ControlSec, e.SwapMs, e.SwapExitMs, e.SwapLoadMs)
	}
	p("\nnginx's configuration (PREFIX is its directory in WORK):\n\n```nginx\n%s```\n\n", fmt.Sprintf(nginxConf, "PREFIX", "user root root;  # when run as root", "127.0.0.1:PORT"))
}

// reportsWhat names the rows of the install-reports table.
func (f *ReportsFigures) reportsWhat(r *ReportsRow) string {
	switch r.Kind {
	case reportsOffers:
		return fmt.Sprintf("offers alone (baseline), %s req/s", groupInt(int64(f.OfferRate)))
	case reportsSingle:
		return fmt.Sprintf("single reports, %d workers, + offers", f.Concurrency)
	case reportsBatch:
		return fmt.Sprintf("%d-report batches, %d workers, + offers", r.PerBody, f.Concurrency)
	}
	return r.Kind
}

func (res *ReportResult) writeReports(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	f := res.Reports
	if f == nil || len(f.Rows) == 0 {
		return
	}
	dash := func(ok bool, s string) string {
		if ok {
			return s
		}
		return "—"
	}
	p("## Install reports with durable acks (%s-label release)\n\n", groupInt(int64(f.Labels)))
	p("A 202 from `POST /v1/reports` means stored: the edge answers it only after the spool's group commit has written the request's reports to the spool file and fsynced it, so an acknowledged report survives a crash of the edge or of its machine (until the 202 the PC keeps the report, and sends it again after a 503).\n\n")
	fs := ""
	if f.SpoolFS != "" {
		fs = ", on " + f.SpoolFS
	}
	p("The edge here is a second `driveway serve` over the same release, with a spool in WORK%s (its command is in Stages; the group commit at its default window of %s; the per-device and per-network limits off, since the whole load comes from one loopback address and %s devices). ",
		fs, ro.DefaultSyncEvery, groupInt(int64(f.Devices)))
	if f.SpoolFS == "tmpfs" || f.SpoolFS == "ramfs" {
		p("**The spool is in memory (%s): its fsyncs cost nothing, so these are not the figures of a disk.** ", f.SpoolFS)
	}
	p("The reports are made the way a PC makes them: the %s 1-device requests were POSTed to its `/v1/offers`, and each of the %s offers that came back with a `reportToken` gave an `installed` report (the request's deviceId, the offer's labelId, instanceId and reportToken, the OS build, the time now), sent alone (%s bodies) or %d to a request (%s bodies of about %s KiB, each mixing devices, every report with its own device's token).\n\n",
		groupInt(int64(f.Requests)), groupInt(int64(f.Tokens)), groupInt(int64(f.Bodies1)), f.Batch, groupInt(int64(f.Bodies64)), fmt.Sprintf("%.1f", float64(f.BatchSize)/1024))
	p("Each row is %d runs of %s, interleaved with the other rows' (round after round: offers alone, single reports, batches). In every run an open loop sends 1-device offer requests at %s req/s (at most %d in flight; latency from the intended send times); beside it, in the report rows, a closed loop of %d workers sends report requests back to back. *Reports/s* counts the reports answered 202; *reports per fsync* is the edge's `%s` over its `%s`; *edge CPU* is the edge process's user + system time (`/proc/PID/stat`) over the runs' wall time; *reports/s per core* divides reports/s by the cores the reports added to the baseline's (the edge CPU of the row less that of the offers alone). After each run the closed spool files are removed, as a log shipper does, so that the spool never reaches its size cap.\n\n",
		f.Rounds, time.Duration(f.RunSecs*float64(time.Second)), groupInt(int64(f.OfferRate)), f.InFlight, f.Concurrency, metricWritten, metricCommits)
	most := 0.0
	for i := range f.Rows {
		most = max(most, f.Rows[i].Cores())
	}
	if most > 0 && res.Machine.CPUs > 0 {
		p("The load generator (this process: the report and offer loops) shares the machine's %d logical CPUs with the edge, which used at most %.2f cores in these runs: reports/s is what the machine did with both on it, where reports/s per core is the edge's own cost.\n\n",
			res.Machine.CPUs, most)
	}
	p("| what | reports/s | reports per fsync | edge CPU | reports/s per core | offer p50 ms | offer p99 ms |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, kind := range []string{reportsOffers, reportsSingle, reportsBatch} {
		r := f.row(kind)
		if r == nil {
			continue
		}
		reports := r.PerBody > 0
		p("| %s | %s | %s | %s | %s | %s | %s |\n", f.reportsWhat(r), dash(reports, groupInt(int64(r.ReportsPerSecond()))),
			dash(reports && r.Commits > 0, fmt.Sprintf("%.1f", r.PerFsync())), dash(r.Cores() > 0, fmt.Sprintf("%.2f cores", r.Cores())),
			dash(f.PerCore(r) > 0, groupInt(int64(f.PerCore(r)))), ms(r.OfferLatency.P50), ms(r.OfferLatency.P99))
	}
	p("\n")
	for _, kind := range []string{reportsOffers, reportsSingle, reportsBatch} {
		r := f.row(kind)
		if r == nil {
			continue
		}
		p("- %s: offers: %s requests, %s answered with an offer response, %s sent late, errors %s", f.reportsWhat(r), groupInt(r.OfferRequests), groupInt(r.OfferOK),
			groupInt(r.OfferLate), offerErrorsText(r.OfferErrors))
		if h := r.OfferHandler; h != nil && h.Requests > 0 {
			p("; the edge's own time to answer them (`%s`) p50 ≤ %s ms, p99 ≤ %s ms", handlerMetric, boundMs(h.P50Ms), boundMs(h.P99Ms))
		}
		p(".")
		if r.OfferRequests > 0 && float64(r.OfferLate) > 0.01*float64(r.OfferRequests) {
			p(" %.1f%% of the offer requests went out late (the generator, sharing the cores, did not keep the schedule); their latency still counts from their intended time.",
				100*float64(r.OfferLate)/float64(r.OfferRequests))
		}
		if r.PerBody > 0 {
			var others []string
			for _, code := range sortedInts(r.ReportStatuses) {
				if code != 202 {
					others = append(others, fmt.Sprintf("%d × %d", r.ReportStatuses[code], code))
				}
			}
			if r.ReportErrors > 0 {
				others = append(others, fmt.Sprintf("%d without an answer", r.ReportErrors))
			}
			other := "no other answer"
			if len(others) > 0 {
				other = "**other answers: " + strings.Join(others, ", ") + "**"
			}
			p(" Reports: %s requests in %.1f s, %s answered 202 (%s reports; %s); the edge counted %s reports accepted, and its spool wrote %s in %s commits. A report request waited for its 202 %.3f ms at p50, %.3f ms at p99.",
				groupInt(r.ReportRequests), r.ReportSeconds, groupInt(r.ReportStatuses[202]), groupInt(r.Accepted), other, groupInt(r.EdgeAccepted), groupInt(r.Written), groupInt(r.Commits),
				r.ReportLatency.P50, r.ReportLatency.P99)
		}
		if cmd := f.Commands[kind]; cmd != "" {
			p(" Reproduce: `%s`", cmd)
		}
		p("\n")
	}
	p("\nThe report bodies (`WORK/reports-1.ndjson`, `WORK/reports-64.ndjson`: one request body a line) carry tokens of this run's edge and secret, good for %.0f days: to run a row again, keep the run's data (`--keep-work`) and start the same edge. `bench load` counts a 202 as a *bad body* (it is not an offer response); its status counts are the 202s.\n\n",
		ro.DefaultTokenTTL.Hours()/24)
}

// offerErrorsText lists errors by kind, or "0".
func offerErrorsText(errs map[string]int64) string {
	if len(errs) == 0 {
		return "0"
	}
	var parts []string
	for _, k := range sortedKeys(errs) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, errs[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedInts[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

func (res *ReportResult) writeMachine(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	m := res.Machine
	p("## Machine\n\n")
	p("- CPU: %s, %d logical CPUs\n", m.CPU, m.CPUs)
	p("- Memory: %s (%s available at the start)\n", gib(m.MemTotal), gib(m.MemAvailable))
	p("- Kernel: %s\n", m.Kernel)
	p("- Go: %s; driveway revision %s\n", m.Go, m.Revision)
	if m.Nginx != "" {
		p("- nginx: %s\n", m.Nginx)
	} else {
		p("- nginx: not installed\n")
	}
	p("- Load average (1, 5, 15 min): %.2f %.2f %.2f at the start, %.2f %.2f %.2f at the end (the end includes this run's own load)\n",
		m.LoadStart[0], m.LoadStart[1], m.LoadStart[2], m.LoadEnd[0], m.LoadEnd[1], m.LoadEnd[2])
	p("- Free disk in WORK (%s) at the start: %s\n", res.Work, gib(m.DiskFree))
	if sp := m.Stalls; sp != nil {
		p("- Stalls (%s): %s\n", stallsWhere(sp), stallsText(sp))
	}
	p("\n## Reproduce\n\nFrom the repository root:\n\n```sh\ngo build -o driveway ./cmd/driveway\n./%s\n```\n\nor any stage alone with its command from the Stages table (in order: later stages use the files of earlier ones, in WORK).\n",
		strings.TrimPrefix(res.Command, "./"))
}

func stallsWhere(sp *StallProbe) string {
	return fmt.Sprintf("the `machine stalls` stage: %d threads, one per CPU, each reading the clock for %.0f s", sp.Threads, sp.Seconds)
}

// stallsText says what the stall probe saw and what it means for the tails.
func stallsText(sp *StallProbe) string {
	if sp.Over05 == 0 {
		return "no thread was stopped for more than 0.5 ms."
	}
	return fmt.Sprintf("busy threads were stopped %s times for more than 0.5 ms, %s times for more than 2 ms and %s times for more than 5 ms (worst %.1f ms, %.0f ms lost in all, about %.2f%% of their time). "+
		"Every such stop of the server's or the generator's thread delays every request due meanwhile, so a p99 measured under load here cannot be much below the stops that happen as often.",
		groupInt(sp.Over05), groupInt(sp.Over2), groupInt(sp.Over5), sp.WorstMs, sp.LostMs, 100*sp.LostMs/(1000*sp.Seconds*float64(sp.Threads)))
}
