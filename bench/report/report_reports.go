package report

// Install reports with durable acks: a second edge over the measured release, with a spool,
// takes reports (POST /v1/reports) and answers 202 only after the spool's group commit has
// written and fsynced them. The stages get report tokens the way PCs do (from the offers of
// 1-device requests), then measure, interleaved: offers alone at a fixed open-loop rate (the
// baseline), then single reports and 64-report batches in closed loops with the same offers
// running beside them. The edge's CPU (/proc/PID/stat) and its spool counters (/metrics) are
// read before and after each run.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/driveway/driveway/bench/load"
	ro "github.com/driveway/driveway/rollout"
)

// ReportsFigures are the install-report runs against an edge with a spool.
type ReportsFigures struct {
	Labels      int               `json:"labels"`
	URL         string            `json:"url"`               // the edge's POST /v1/reports
	SpoolFS     string            `json:"spoolFs,omitempty"` // the file system of the spool directory (its fsyncs)
	Requests    int               `json:"requests"`          // 1-device offer requests sent to get tokens
	Tokens      int               `json:"tokens"`            // offers that came with a report token
	Devices     int               `json:"devices"`           // distinct devices among them
	Bodies1     int               `json:"bodies1"`           // single-report bodies
	Bodies64    int               `json:"bodies64"`          // batch bodies
	Batch       int               `json:"batch"`             // reports in each batch body
	BatchSize   int               `json:"batchBytes"`        // a batch body's size, on average
	OfferRate   float64           `json:"offerRate"`         // the offers' open loop, requests/s, in every run
	InFlight    int               `json:"inFlight"`          // its most requests in flight
	Rounds      int               `json:"rounds"`            // the runs were interleaved this many times
	RunSecs     float64           `json:"runSeconds"`        // each run's duration
	Concurrency int               `json:"concurrency"`       // the reports' closed loop
	Commands    map[string]string `json:"commands"`          // by row kind: what reproduces it
	Rows        []ReportsRow      `json:"rows"`              // offers, single, batch
}

// ReportsRow is one kind of run, summed over its interleaved rounds.
type ReportsRow struct {
	Kind    string `json:"kind"`    // reportsOffers, reportsSingle or reportsBatch
	PerBody int    `json:"perBody"` // reports per request body; 0: offers alone
	Runs    int    `json:"runs"`
	// Window is the wall time between the readings of the edge's CPU and counters, around
	// each run (the sum over the runs); EdgeCPU the edge's CPU time (user + system) in it,
	// 0 when it could not be read.
	Window  float64 `json:"windowSeconds"`
	EdgeCPU float64 `json:"edgeCpuSeconds"`
	// The offers' open loop, over every run of the row: its requests, answers with an
	// offer response, late sends, and latency (from the intended send times).
	OfferRequests int64               `json:"offerRequests"`
	OfferOK       int64               `json:"offerOk"`
	OfferLate     int64               `json:"offerLate"`
	OfferErrors   map[string]int64    `json:"offerErrors,omitempty"`
	OfferLatency  load.LatencySummary `json:"offerLatencyMs"`
	// OfferHandler is the edge's own time to answer those offers (its handler histogram).
	OfferHandler *HandlerLatency `json:"offerHandler,omitempty"`
	// The reports' closed loop: request bodies sent, their answers by status, and the time
	// from its start to its last answer (the sum over the runs).
	ReportRequests int64               `json:"reportRequests"`
	ReportStatuses map[int]int64       `json:"reportStatuses,omitempty"`
	ReportErrors   int64               `json:"reportErrors"` // requests without an answer (connect, timeout…)
	ReportSeconds  float64             `json:"reportSeconds"`
	ReportLatency  load.LatencySummary `json:"reportLatencyMs"` // of the report requests: each one's wait for its commit
	// Accepted are the reports answered 202 (202 answers × PerBody); EdgeAccepted, Written
	// and Commits the edge's own counters over the same runs (driveway_edge_reports_accepted_total,
	// driveway_edge_reports_written_total, driveway_edge_spool_commits_total).
	Accepted     int64 `json:"accepted"`
	EdgeAccepted int64 `json:"edgeAccepted"`
	Written      int64 `json:"written"`
	Commits      int64 `json:"commits"`
}

// The kinds of ReportsRow, in the order they run and are listed.
const (
	reportsOffers = "offers"
	reportsSingle = "single"
	reportsBatch  = "batch"
)

// The edge's spool counters the runs read.
const (
	metricAccepted = "driveway_edge_reports_accepted_total"
	metricWritten  = "driveway_edge_reports_written_total"
	metricCommits  = "driveway_edge_spool_commits_total"
)

// reportsBatchSize is the reports in a batch body: the most a request may carry.
const reportsBatchSize = ro.MaxBatch

// ReportsPerSecond is the reports answered 202 per second of the reports' loop.
func (r *ReportsRow) ReportsPerSecond() float64 {
	if r.ReportSeconds <= 0 {
		return 0
	}
	return float64(r.Accepted) / r.ReportSeconds
}

// PerFsync is the reports written per group commit (one write and fsync each); 0 unknown.
func (r *ReportsRow) PerFsync() float64 {
	if r.Commits <= 0 {
		return 0
	}
	return float64(r.Written) / float64(r.Commits)
}

// Cores is the edge's CPU over the runs, in cores (CPU seconds per second); 0 unknown.
func (r *ReportsRow) Cores() float64 {
	if r.Window <= 0 || r.EdgeCPU <= 0 {
		return 0
	}
	return r.EdgeCPU / r.Window
}

// row returns the row of a kind, nil if not measured.
func (f *ReportsFigures) row(kind string) *ReportsRow {
	for i := range f.Rows {
		if f.Rows[i].Kind == kind {
			return &f.Rows[i]
		}
	}
	return nil
}

// PerCore is a report row's reports/s per core of the edge's CPU that the reports added: the
// row's cores less those of the offers-alone baseline, which serves the same offers; 0 when
// either is unknown or the difference is not positive.
func (f *ReportsFigures) PerCore(r *ReportsRow) float64 {
	base := f.row(reportsOffers)
	if base == nil || r.PerBody == 0 || r.Cores() == 0 || base.Cores() == 0 {
		return 0
	}
	extra := r.Cores() - base.Cores()
	if extra <= 0 {
		return 0
	}
	return r.ReportsPerSecond() / extra
}

// check reports the figures that do not add up: per row, the reports counted from the
// answers must be the 202 answers times the reports per body and what the edge counted
// accepted; the spool cannot have written fewer than it acknowledged, nor committed more
// often than it wrote; the answers cannot outnumber the requests.
func (f *ReportsFigures) check() error {
	var errs []error
	if f.row(reportsOffers) == nil {
		errs = append(errs, errors.New("no offers-alone baseline row"))
	}
	for i := range f.Rows {
		r := &f.Rows[i]
		var answered int64
		for _, n := range r.ReportStatuses {
			answered += n
		}
		switch {
		case r.Accepted != r.ReportStatuses[202]*int64(r.PerBody):
			errs = append(errs, fmt.Errorf("%s: %d reports accepted, but %d answers 202 of %d reports each", r.Kind, r.Accepted, r.ReportStatuses[202], r.PerBody))
		case r.EdgeAccepted != r.Accepted:
			errs = append(errs, fmt.Errorf("%s: the generator counted %d reports accepted, the edge %d", r.Kind, r.Accepted, r.EdgeAccepted))
		case r.Written < r.Accepted:
			errs = append(errs, fmt.Errorf("%s: %d reports acknowledged but only %d written", r.Kind, r.Accepted, r.Written))
		case r.Commits > r.Written:
			errs = append(errs, fmt.Errorf("%s: %d commits for %d reports", r.Kind, r.Commits, r.Written))
		case answered+r.ReportErrors != r.ReportRequests:
			errs = append(errs, fmt.Errorf("%s: %d report requests, %d answered and %d failed", r.Kind, r.ReportRequests, answered, r.ReportErrors))
		case r.OfferOK > r.OfferRequests:
			errs = append(errs, fmt.Errorf("%s: %d offer answers of %d requests", r.Kind, r.OfferOK, r.OfferRequests))
		case r.OfferHandler != nil && int64(r.OfferHandler.Requests) != r.OfferOK:
			errs = append(errs, fmt.Errorf("%s: the generator got %d offer answers, the edge's histogram counted %d", r.Kind, r.OfferOK, r.OfferHandler.Requests))
		}
	}
	return errors.Join(errs...)
}

// tokenOffer is an offer a PC got with its report token.
type tokenOffer struct {
	device, instance, label, token string
	build                          int
}

// collectTokens posts each 1-device request to the edge at offersURL, as a PC does, and
// returns the offers that came with a report token.
func collectTokens(ctx context.Context, offersURL string, bodies [][]byte) ([]tokenOffer, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	var out []tokenOffer
	for i, body := range bodies {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var pc struct {
			DeviceID string `json:"deviceId"`
			OS       struct {
				Build int `json:"build"`
			} `json:"os"`
		}
		if err := json.Unmarshal(body, &pc); err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		req.Reset()
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI(offersURL)
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(body)
		if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
			return nil, fmt.Errorf("POST %s: %w", offersURL, err)
		}
		if resp.StatusCode() != fasthttp.StatusOK {
			return nil, fmt.Errorf("POST %s: request %d answered %d: %s", offersURL, i, resp.StatusCode(), oneLineText(string(resp.Body())))
		}
		var ans struct {
			Offers []struct {
				InstanceID  string `json:"instanceId"`
				LabelID     string `json:"labelId"`
				ReportToken string `json:"reportToken"`
			} `json:"offers"`
		}
		if err := json.Unmarshal(resp.Body(), &ans); err != nil {
			return nil, fmt.Errorf("POST %s: request %d: the answer: %w", offersURL, i, err)
		}
		for _, o := range ans.Offers {
			if o.ReportToken == "" {
				return nil, fmt.Errorf("POST %s: request %d: an offer of label %s without a reportToken (is the edge's spool on?)", offersURL, i, o.LabelID)
			}
			out = append(out, tokenOffer{device: pc.DeviceID, instance: o.InstanceID, label: o.LabelID, token: o.ReportToken, build: pc.OS.Build})
		}
	}
	return out, nil
}

// appendReport appends the "installed" report of an offer, dated now, in rollout's format.
func appendReport(dst []byte, o *tokenOffer, now string) []byte {
	str := func(dst []byte, s string) []byte {
		b, _ := json.Marshal(s) // strings: cannot fail
		return append(dst, b...)
	}
	dst = append(dst, `{"deviceId":`...)
	dst = str(dst, o.device)
	dst = append(dst, `,"labelId":`...)
	dst = str(dst, o.label)
	dst = append(dst, `,"instanceId":`...)
	dst = str(dst, o.instance)
	dst = append(dst, `,"result":"installed","time":`...)
	dst = str(dst, now)
	if o.build > 0 {
		dst = append(dst, `,"build":`...)
		dst = strconv.AppendInt(dst, int64(o.build), 10)
	}
	dst = append(dst, `,"reportToken":`...)
	dst = str(dst, o.token)
	return append(dst, '}')
}

// reportBodies makes the report request bodies of the offers, dated now: one body per offer
// with its report alone, and bodies of batch reports each (consecutive offers, wrapping
// around: a batch mixes devices, each report with its own device's token), at least 16 of
// them and enough to hold every offer once.
func reportBodies(offers []tokenOffer, now time.Time, batch int) (singles, batches [][]byte, err error) {
	if len(offers) == 0 {
		return nil, nil, errors.New("no offer came with a report token")
	}
	stamp := now.UTC().Format(time.RFC3339)
	for i := range offers {
		singles = append(singles, appendReport(nil, &offers[i], stamp))
	}
	n := max(16, (len(offers)+batch-1)/batch)
	for j := range n {
		b := []byte{'['}
		for k := range batch {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendReport(b, &offers[(j*batch+k)%len(offers)], stamp)
		}
		b = append(b, ']')
		if len(b) > ro.MaxBodySize {
			return nil, nil, fmt.Errorf("a batch of %d reports is %d bytes, over the %d a request may carry", batch, len(b), ro.MaxBodySize)
		}
		batches = append(batches, b)
	}
	return singles, batches, nil
}

// writeBodies writes bodies one a line, for `driveway bench load --population`.
func writeBodies(path string, bodies [][]byte) error {
	var b bytes.Buffer
	for _, body := range bodies {
		b.Write(body)
		b.WriteByte('\n')
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// scrapeCounters reads unlabelled counters from the Prometheus text at url.
func scrapeCounters(url string, names ...string) (map[string]int64, error) {
	code, body, err := fasthttp.GetTimeout(nil, url, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", url, err)
	}
	if code != fasthttp.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, code)
	}
	return parseCounters(body, names...)
}

func parseCounters(text []byte, names ...string) (map[string]int64, error) {
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for _, want := range names {
			if name == want {
				v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
				if err != nil {
					return nil, fmt.Errorf("metrics line %q: %v", sc.Text(), err)
				}
				out[name] = int64(v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, want := range names {
		if _, ok := out[want]; !ok {
			return nil, fmt.Errorf("metrics: no %s (is the edge's spool on?)", want)
		}
	}
	return out, nil
}

// procCPU is a process's CPU time so far, user and system, from /proc/PID/stat (in clock
// ticks of 1/100 s, Linux's USER_HZ); false where there is none.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	return parseProcCPU(b)
}

func parseProcCPU(b []byte) (time.Duration, bool) {
	i := bytes.LastIndexByte(b, ')') // the command name may hold spaces and parentheses
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// After the name: state (field 3) … utime (14), stime (15).
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(u+s) * (time.Second / 100), true
}

// fsType is the type of the file system holding dir, from /proc/self/mounts; "" unknown.
func fsType(dir string) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return ""
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return ""
	}
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	best, typ := -1, ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mnt := strings.ReplaceAll(f[1], `\040`, " ")
		if (dir == mnt || mnt == "/" || strings.HasPrefix(dir, mnt+"/")) && len(mnt) >= best {
			best, typ = len(mnt), f[2]
		}
	}
	return typ
}

// reportsEdge is what measureReports needs of the edge under test.
type reportsEdge struct {
	addr string                       // host:port
	cpu  func() (time.Duration, bool) // its CPU time so far; nil: not measured
	ship func() error                 // after each run, takes the closed spool files away; nil: none
}

// shipSpool removes the closed files of the spool in dir (those a shipper would take: every
// file but the one open), so that a long run never reaches the spool's size cap.
func shipSpool(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".open") {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// reportsPlan is how measureReports runs.
type reportsPlan struct {
	rounds      int
	run         time.Duration // each run
	offerRate   float64       // the offers' open loop
	inFlight    int           // its most requests in flight
	concurrency int           // the reports' closed loop
}

// measureReports runs, rounds times in turn: offers alone at the plan's rate; single reports
// in a closed loop beside the same offers; batches likewise. It fills f.Rows.
func measureReports(ctx context.Context, edge reportsEdge, f *ReportsFigures, one, singles, batches [][]byte, pl reportsPlan, logf func(string, ...any)) error {
	offersURL := "http://" + edge.addr + "/v1/offers"
	reportsURL := "http://" + edge.addr + "/v1/reports"
	metrics := "http://" + edge.addr + "/metrics"
	kinds := []struct {
		kind    string
		perBody int
		bodies  [][]byte
	}{{reportsOffers, 0, nil}, {reportsSingle, 1, singles}, {reportsBatch, f.Batch, batches}}
	f.OfferRate, f.InFlight, f.Concurrency, f.Rounds, f.RunSecs = pl.offerRate, pl.inFlight, pl.concurrency, pl.rounds, pl.run.Seconds()
	rows := make([]ReportsRow, len(kinds))
	cpuMissing := make([]bool, len(kinds)) // a reading failed: no CPU figure for the row
	hists := make([]*load.Histogram, len(kinds))
	rhists := make([]*load.Histogram, len(kinds))
	handler := make([]bucketCounts, len(kinds)) // the edge's own offer times, summed over the rounds
	for i, k := range kinds {
		rows[i] = ReportsRow{Kind: k.kind, PerBody: k.perBody, OfferErrors: map[string]int64{}, ReportStatuses: map[int]int64{}}
		hists[i], rhists[i] = new(load.Histogram), new(load.Histogram)
	}
	for round := range pl.rounds {
		for i, k := range kinds {
			before, err := scrapeCounters(metrics, metricAccepted, metricWritten, metricCommits)
			if err != nil {
				return err
			}
			hBefore, err := scrapeHandler(metrics)
			if err != nil {
				return err
			}
			var cpu0 time.Duration
			cpuOK := edge.cpu != nil
			if cpuOK {
				cpu0, cpuOK = edge.cpu()
			}
			t0 := time.Now()
			type result struct {
				res load.Result
				err error
			}
			offersDone := make(chan result, 1)
			go func() {
				res, err := load.Run(ctx, load.Options{URL: offersURL, Bodies: one, Rate: pl.offerRate, Concurrency: pl.inFlight, Duration: pl.run})
				offersDone <- result{res, err}
			}()
			var rep *load.Result
			var repErr error
			if k.bodies != nil {
				res, err := load.Run(ctx, load.Options{URL: reportsURL, Bodies: k.bodies, Concurrency: pl.concurrency, Duration: pl.run})
				rep, repErr = &res, err
			}
			off := <-offersDone
			window := time.Since(t0)
			var cpu1 time.Duration
			if cpuOK {
				cpu1, cpuOK = edge.cpu()
			}
			if off.err != nil {
				return off.err
			}
			if repErr != nil {
				return repErr
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			after, err := scrapeCounters(metrics, metricAccepted, metricWritten, metricCommits)
			if err != nil {
				return err
			}
			hAfter, err := scrapeHandler(metrics)
			if err != nil {
				return err
			}
			run, err := hAfter.since(hBefore)
			if err != nil {
				return err
			}
			if handler[i], err = handler[i].plus(run); err != nil {
				return err
			}
			r := &rows[i]
			r.Runs++
			r.Window += window.Seconds()
			if cpuOK {
				r.EdgeCPU += (cpu1 - cpu0).Seconds()
			} else {
				cpuMissing[i] = true
			}
			r.OfferRequests += off.res.Requests
			r.OfferOK += off.res.OK
			r.OfferLate += off.res.Late
			for e, n := range off.res.Errors {
				r.OfferErrors[e] += n
			}
			hists[i].Merge(off.res.Hist)
			r.EdgeAccepted += after[metricAccepted] - before[metricAccepted]
			r.Written += after[metricWritten] - before[metricWritten]
			r.Commits += after[metricCommits] - before[metricCommits]
			line := fmt.Sprintf("  round %d, %-6s: offers %5.0f req/s p50 %.3f ms p99 %.3f ms", round+1, k.kind, off.res.RPS, off.res.Latency.P50, off.res.Latency.P99)
			if rep != nil {
				r.ReportRequests += rep.Requests
				r.ReportSeconds += rep.Seconds
				for code, n := range rep.Statuses {
					r.ReportStatuses[code] += n
				}
				for e, n := range rep.Errors {
					if !strings.HasPrefix(e, "status ") && e != load.ErrorBadBody { // the answers are in Statuses
						r.ReportErrors += n
					}
				}
				r.Accepted += rep.Statuses[202] * int64(k.perBody)
				rhists[i].Merge(rep.Hist)
				line += fmt.Sprintf("; reports %6.0f/s (%d answers 202, %d others)", float64(rep.Statuses[202]*int64(k.perBody))/rep.Seconds, rep.Statuses[202], rep.Requests-rep.Statuses[202])
			}
			if cpuOK {
				line += fmt.Sprintf("; edge CPU %.2f cores", (cpu1-cpu0).Seconds()/window.Seconds())
			}
			logf("%s", line)
			if edge.ship != nil {
				if err := edge.ship(); err != nil {
					return err
				}
			}
		}
	}
	for i := range rows {
		if cpuMissing[i] {
			rows[i].EdgeCPU = 0
		}
		rows[i].OfferLatency = hists[i].Summary()
		if len(handler[i].counts) > 0 && handler[i].counts[len(handler[i].counts)-1] > 0 {
			h := handler[i].latency()
			rows[i].OfferHandler = &h
		}
		if rows[i].PerBody > 0 {
			rows[i].ReportLatency = rhists[i].Summary()
		} else {
			rows[i].ReportStatuses = nil
		}
		if len(rows[i].OfferErrors) == 0 {
			rows[i].OfferErrors = nil
		}
	}
	f.Rows = rows
	return nil
}

// reportsPlan is the plan of the report runs: a quarter of the edge's 1-device maximum for
// the offers, at most 2,000 requests/s.
func (r *reporter) reportsPlan(p loadPlan) reportsPlan {
	rate := 2000.0
	if e := r.res.Edge; e != nil && e.Max["edge-1"] > 0 {
		rate = min(rate, math.Round(e.Max["edge-1"]/4/100)*100)
	}
	pl := reportsPlan{rounds: 3, run: p.point, offerRate: max(rate, 100), inFlight: p.inFlight, concurrency: 64}
	if r.o.Quick {
		pl.rounds = 2
	}
	return pl
}

// reports runs the install-report stages over the release in cat: a second edge with a
// spool, tokens from its offers, and the interleaved runs.
func (r *reporter) reports(ctx context.Context, cat, pcsFile string, one [][]byte, p loadPlan) {
	pl := r.reportsPlan(p)
	f := &ReportsFigures{Labels: r.res.Release, Batch: reportsBatchSize, Requests: len(one), Commands: map[string]string{}}
	var edge *server
	defer func() { edge.stop() }() // the edge started below (defer edge.stop() would stop the nil it is now)
	addr, err := freeAddr()
	if err != nil {
		r.res.Stages = append(r.res.Stages, &Stage{Name: "reports: start the edge with a spool", Status: stageFailed, Reason: err.Error()})
		return
	}
	spool := filepath.Join(r.work, "spool")
	secret := filepath.Join(r.work, "report-secret")
	args := []string{"serve", "--catalog", cat, "--key", r.key + ".pub", "--listen", addr, "--spool", spool, "--report-secret-file", secret,
		"--report-limit-device", "off", "--report-limit-source", "off"}
	st := r.stage(ctx, "reports: start the edge with a spool", "head -c 32 /dev/urandom | base64 > "+shellQuote(secret)+"; "+r.cmd(args...)+" # then poll GET /readyz until 200",
		time.Minute, 40*time.Second, func(ctx context.Context, st *Stage) error {
			if err := os.WriteFile(secret, []byte(randomSecret()+"\n"), 0o600); err != nil {
				return err
			}
			if err := os.MkdirAll(spool, 0o755); err != nil {
				return err
			}
			var err error
			if edge, err = startServer("the reports edge", filepath.Join(r.work, "reports-edge.log"), r.o.Driveway, args...); err != nil {
				return err
			}
			_, err = edge.waitReady(ctx, "http://"+addr+"/readyz", fasthttp.MethodGet)
			return err
		})
	if st.Status != stageOK {
		return
	}
	f.URL = "http://" + addr + "/v1/reports"
	f.SpoolFS = fsType(spool)
	file1, file64 := filepath.Join(r.work, "reports-1.ndjson"), filepath.Join(r.work, "reports-64.ndjson")
	var singles, batches [][]byte
	st = r.stage(ctx, "reports: tokens from offers", fmt.Sprintf("(in this process) POST each of the %d 1-device requests to http://%s/v1/offers; each offer's labelId and reportToken, with the request's deviceId, make a report; written to %s and %s", len(one), addr, file1, file64),
		time.Minute, 35*time.Second, func(ctx context.Context, st *Stage) error {
			offers, err := collectTokens(ctx, "http://"+addr+"/v1/offers", one)
			if err != nil {
				return err
			}
			devices := map[string]bool{}
			for _, o := range offers {
				devices[o.device] = true
			}
			f.Tokens, f.Devices = len(offers), len(devices)
			now := time.Now() // the edge checks report times against its clock: the wall clock
			if singles, batches, err = reportBodies(offers, now, f.Batch); err != nil {
				return err
			}
			f.Bodies1, f.Bodies64 = len(singles), len(batches)
			total := 0
			for _, b := range batches {
				total += len(b)
			}
			f.BatchSize = total / len(batches)
			if err := writeBodies(file1, singles); err != nil {
				return err
			}
			return writeBodies(file64, batches)
		})
	if st.Status != stageOK {
		return
	}
	offerCmd := fmt.Sprintf("driveway bench load --url http://%s/v1/offers --population %s --devices 1 --rate %.0f --concurrency %d --duration %s",
		addr, shellQuote(pcsFile), pl.offerRate, pl.inFlight, pl.run)
	repCmd := func(file string) string {
		return fmt.Sprintf("driveway bench load --url %s --population %s --concurrency %d --duration %s", f.URL, shellQuote(file), pl.concurrency, pl.run)
	}
	f.Commands[reportsOffers] = offerCmd
	f.Commands[reportsSingle] = repCmd(file1) + " & " + offerCmd
	f.Commands[reportsBatch] = repCmd(file64) + " & " + offerCmd
	limit := time.Duration(pl.rounds*3)*(pl.run+3*time.Second) + 10*time.Second
	r.stage(ctx, "reports: offers alone, single reports, 64-report batches", fmt.Sprintf("%d rounds of: %s; %s; %s (GET /metrics and /proc/EDGE_PID/stat before and after each; after each, the closed spool files removed, as a shipper does)",
		pl.rounds, f.Commands[reportsOffers], f.Commands[reportsSingle], f.Commands[reportsBatch]), limit, 30*time.Second,
		func(ctx context.Context, st *Stage) error {
			pid := edge.pid()
			e := reportsEdge{addr: addr, cpu: func() (time.Duration, bool) { return procCPU(pid) }, ship: func() error { return shipSpool(spool) }}
			if err := measureReports(ctx, e, f, one, singles, batches, pl, r.logf); err != nil {
				return err
			}
			r.res.Reports = f
			if err := f.check(); err != nil {
				return fmt.Errorf("the counts do not add up: %w", err)
			}
			return nil
		})
}

// randomSecret is a fleet report secret for the run: 32 random bytes in base64, as the docs
// make one.
func randomSecret() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.StdEncoding.EncodeToString(b[:])
}
