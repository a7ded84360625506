// Package report is `driveway bench report`: one run of the whole benchmark suite on this
// machine, written as bench/REPORT.md with SVG plots (bench/plot). It generates the
// workloads with bench, builds and serves them as child processes of the driveway binary
// (the edge, the fixed-answer baseline of bench/baseline, nginx), drives them with
// bench/load and reads their CPU and memory from /proc. Every stage is bounded in time and
// records the command that reproduces it; a stage that fails or cannot run is reported as
// such and the run goes on.
package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/driveway/driveway/bench/load"
)

// ReportOptions configure Report. Driveway is required; zero values of the others take the
// defaults written on them.
type ReportOptions struct {
	// Driveway is the driveway binary the stages run (generators, builds, edges): the CLI
	// passes itself (os.Executable).
	Driveway string
	// Out is where REPORT.md and the plots are written; default "bench".
	Out string
	// Work holds the data of the run (label trees, releases, logs); default a new temporary
	// directory. Everything the run creates in it is removed at the end unless Keep.
	Work string
	Keep bool
	// Quick is the short suite: 10,000 labels only and short load runs, in under 3 minutes.
	// The full suite builds 10,000, 100,000 and 1,000,000 labels in under 30 minutes.
	Quick bool
	// Budget bounds the whole run; default 30 min, 3 min with Quick. Stages that would
	// not fit in what is left are skipped (and reported so).
	Budget time.Duration
	// Command is the command line that reproduces the report, written into it; default
	// "driveway bench report" (with --quick).
	Command string
	// Nginx is the nginx binary of the static-file baseline; default nginx from PATH or
	// /usr/sbin. Without one, the baseline is reported as missing.
	Nginx string
	// Log receives one line per stage as the run goes; nil: nothing.
	Log io.Writer
}

// Stage is one step of a report run.
type Stage struct {
	Name    string  `json:"name"`
	Command string  `json:"command,omitempty"` // the command that reproduces it
	Status  string  `json:"status"`            // "ok", "failed" or "skipped"
	Reason  string  `json:"reason,omitempty"`  // why it failed or was skipped
	Seconds float64 `json:"seconds"`
}

// Stage statuses.
const (
	stageOK      = "ok"
	stageFailed  = "failed"
	stageSkipped = "skipped"
)

// BuildFigure is one catalog size: its label tree and its release.
type BuildFigure struct {
	Labels        int     `json:"labels"`
	GenSeconds    float64 `json:"genSeconds"`
	TreeFiles     int     `json:"treeFiles"`
	TreeBytes     int64   `json:"treeBytes"`
	Seconds       float64 `json:"seconds"` // the build, 0 when it did not complete
	PeakRSS       int64   `json:"peakRss"` // bytes
	ShardBytes    int64   `json:"shardBytes"`
	ManifestBytes int64   `json:"manifestBytes"`
	LabelsBuilt   int     `json:"labelsBuilt"`
	Rows          int     `json:"rows"`
	HWIDs         int     `json:"hwids"`
	Phases        []struct {
		Name    string  `json:"name"`
		Seconds float64 `json:"seconds"`
	} `json:"phases"`
	Err     string         `json:"err,omitempty"` // why there is no build figure
	Rebuild *RebuildFigure `json:"rebuild,omitempty"`
}

// RebuildFigure is an incremental build: the tree rebuilt with the build's cache after one
// label's name changed (then the label is put back), beside the file-system floor of any
// rebuild that checks every file: listing the tree and stat-ing each file, measured in the
// same stage.
type RebuildFigure struct {
	Seconds        float64 `json:"seconds"`
	PeakRSS        int64   `json:"peakRss"`
	ProductsBuilt  int     `json:"productsBuilt"`
	ProductsReused int     `json:"productsReused"`
	ShardsWritten  int     `json:"shardsWritten"`
	FloorSeconds   float64 `json:"floorSeconds"`
	Phases         []struct {
		Name    string  `json:"name"`
		Seconds float64 `json:"seconds"`
	} `json:"phases"`
	Err string `json:"err,omitempty"`
}

// DecideFigure is in-process decide throughput: decode, decide and encode of offer
// requests, one goroutine or GOMAXPROCS.
type DecideFigure struct {
	Devices          int     `json:"devices"` // per request; 0: whole PCs
	Goroutines       int     `json:"goroutines"`
	Requests         int64   `json:"requests"`
	Seconds          float64 `json:"seconds"`
	MicrosPerRequest float64 `json:"microsPerRequest"` // wall time per request of one goroutine
	RPS              float64 `json:"rps"`
	OffersPerRequest float64 `json:"offersPerRequest"`
}

// FloorFigure is the physical floor of a kind of request, in this process: a fast JSON
// parse of the same bodies (offer's decoder) and, for every hardware and compatible ID, what
// any lookup must do (hash, route, Bloom test, and for the IDs that pass it, the probe and the
// record read), without deciding or encoding anything. One goroutine.
type FloorFigure struct {
	Devices          int     `json:"devices"` // per request, as DecideFigure's
	Requests         int64   `json:"requests"`
	IDsPerRequest    float64 `json:"idsPerRequest"`
	ProbedPerRequest float64 `json:"probedPerRequest"` // IDs that passed the Bloom test
	MicrosPerRequest float64 `json:"microsPerRequest"`
}

// LoadPoint is one load run against one target.
type LoadPoint struct {
	Target  string          `json:"target"` // edge-1, edge-20, fixed, nginx
	Result  load.Result     `json:"result"`
	Handler *HandlerLatency `json:"handler,omitempty"` // the edge's own time, from its /metrics
	// ServerCPUMicros is the server process's CPU (user + system, /proc/PID/stat) over the
	// run, per request answered; 0 when not read (nginx's workers are other processes).
	ServerCPUMicros float64 `json:"serverCpuMicros,omitempty"`
}

// EdgeFigures are the edge's figures over the release of EdgeLabels labels.
type EdgeFigures struct {
	Labels        int     `json:"labels"`
	OpenSeconds   float64 `json:"openSeconds"`   // process start to /readyz 200
	LoadMs        float64 `json:"loadMs"`        // the edge's own load of the release (its log)
	RSS           int64   `json:"rss"`           // after the load runs
	PeakRSS       int64   `json:"peakRss"`       // VmHWM
	ResponseBytes int     `json:"responseBytes"` // the edge's 1-device answer, on average
	BaselineBytes int     `json:"baselineBytes"` // the fixed answer and nginx's file
	Bodies1       int     `json:"bodies1"`       // distinct 1-device requests
	Bodies20      int     `json:"bodies20"`      // distinct 20-device requests
	BodiesWhole   int     `json:"bodiesWhole"`   // distinct whole-PC requests (gen-devices --whole-pc)
	WholeDevices  float64 `json:"wholeDevices"`  // devices per whole-PC request, on average
	WholeBytes    float64 `json:"wholeBytes"`    // bytes per whole-PC request, on average
	// WholeResponseBytes is the edge's whole-PC answer, on average: the fixed-answer
	// baseline for whole PCs answers that many bytes.
	WholeResponseBytes  int                `json:"wholeResponseBytes"`
	TwentyResponseBytes int                `json:"twentyResponseBytes"` // the 20-device answer, on average: the fixed-answer baseline's for those bodies
	ControlSec          float64            `json:"controlSeconds"`
	SwapMs              float64            `json:"swapMs"`            // manifest written → served
	SwapExitMs          float64            `json:"swapExitMs"`        // build exited → served
	SwapLoadMs          float64            `json:"swapLoadMs"`        // the edge's load of it (its log)
	Closed              []LoadPoint        `json:"closed"`            // by concurrency, then target
	Half                []LoadPoint        `json:"half"`              // open loop at half of each target's maximum
	Max                 map[string]float64 `json:"max"`               // requests/s, the best closed-loop run
	Missing             map[string]string  `json:"missing,omitempty"` // targets not measured, and why
	URLs                map[string]string  `json:"urls"`              // where each target was
}

// Machine describes where the report ran.
type Machine struct {
	CPU          string     `json:"cpu"`
	CPUs         int        `json:"cpus"`
	MemTotal     int64      `json:"memTotal"`
	MemAvailable int64      `json:"memAvailable"`
	Kernel       string     `json:"kernel"`
	Go           string     `json:"go"`
	Revision     string     `json:"revision"`
	Nginx        string     `json:"nginx"`
	LoadStart    [3]float64 `json:"loadStart"`
	LoadEnd      [3]float64 `json:"loadEnd"`
	DiskFree     int64      `json:"diskFree"` // in Work, at the start
	// Stalls: what the machine takes from a busy thread, measured before the open loops.
	Stalls *StallProbe `json:"stalls,omitempty"`
}

// ReportResult is everything a report run measured; Report writes it as REPORT.md.
type ReportResult struct {
	Started  time.Time          `json:"started"`
	Seconds  float64            `json:"seconds"`
	Quick    bool               `json:"quick"`
	Command  string             `json:"command"`
	Work     string             `json:"work"`
	Machine  Machine            `json:"machine"`
	Stages   []*Stage           `json:"stages"`
	Builds   []*BuildFigure     `json:"builds"`
	Validate *Stage             `json:"validate"` // 10,000 labels
	Lookups  *load.LookupResult `json:"lookups"`
	Decide   []DecideFigure     `json:"decide"`
	Floor    []FloorFigure      `json:"floor,omitempty"`
	Edge     *EdgeFigures       `json:"edge"`
	Release  int                `json:"release"` // labels of the release the lookup, decide and edge figures are of
	Files    []string           `json:"files"`   // what Report wrote into Out
	// Reports: install reports with durable acks, against a second edge with a spool.
	Reports *ReportsFigures `json:"reports,omitempty"`
}

// Report runs the benchmark suite and writes Out/REPORT.md and its plots. It fails only when
// it cannot run at all (no binary, Out not writable); failing stages are recorded in the
// report, which is written whatever happens.
func Report(ctx context.Context, opts ReportOptions) (*ReportResult, error) {
	r, err := newReporter(opts)
	if err != nil {
		return nil, err
	}
	defer r.cleanup()
	r.run(ctx)
	r.res.Machine.LoadEnd = loadAverage()
	r.res.Seconds = time.Since(r.res.Started).Seconds()
	if err := r.write(); err != nil {
		return r.res, err
	}
	return r.res, nil
}

// reporter is one run of Report.
type reporter struct {
	o        ReportOptions
	res      *ReportResult
	deadline time.Time
	work     string
	made     []string // what to remove at the end
	key      string   // the signing key prefix in work
	sizes    []int
	trees    map[int]string // labels → tree directory
	catalogs map[int]string // labels → catalog directory
	// removed is the largest removal of the run so far, for estimating the next one.
	removed struct {
		files   int
		seconds float64
	}
}

func newReporter(o ReportOptions) (*reporter, error) {
	if o.Driveway == "" {
		return nil, errors.New("bench: report: no driveway binary")
	}
	if _, err := os.Stat(o.Driveway); err != nil {
		return nil, fmt.Errorf("bench: report: %w", err)
	}
	if o.Out == "" {
		o.Out = "bench"
	}
	if o.Budget == 0 {
		o.Budget = 30 * time.Minute
		if o.Quick {
			o.Budget = 3 * time.Minute
		}
	}
	if o.Command == "" {
		o.Command = "driveway bench report"
		if o.Quick {
			o.Command += " --quick"
		}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("bench: report: %w", err)
	}
	r := &reporter{o: o, trees: map[int]string{}, catalogs: map[int]string{}}
	if o.Work == "" {
		dir, err := os.MkdirTemp("", "driveway-report-")
		if err != nil {
			return nil, fmt.Errorf("bench: report: %w", err)
		}
		r.work = dir
		r.made = append(r.made, dir)
	} else {
		if err := os.MkdirAll(o.Work, 0o755); err != nil {
			return nil, fmt.Errorf("bench: report: %w", err)
		}
		dir, err := os.MkdirTemp(o.Work, "run-")
		if err != nil {
			return nil, fmt.Errorf("bench: report: %w", err)
		}
		r.work = dir
		r.made = append(r.made, dir)
	}
	r.sizes = []int{10_000, 100_000, 1_000_000}
	if o.Quick {
		r.sizes = []int{10_000}
	}
	now := time.Now()
	r.deadline = now.Add(o.Budget)
	r.res = &ReportResult{Started: now, Quick: o.Quick, Command: o.Command, Work: r.work}
	return r, nil
}

func (r *reporter) cleanup() {
	if r.o.Keep {
		fmt.Fprintf(r.o.Log, "bench report: the run's data is kept in %s\n", r.work)
		return
	}
	start := time.Now()
	for _, p := range r.made {
		removeAll(p)
	}
	r.logf("removed the run's data in %.1f s", time.Since(start).Seconds())
}

func (r *reporter) logf(format string, args ...any) {
	fmt.Fprintf(r.o.Log, "bench report: "+format+"\n", args...)
}

// left is the time left in the budget.
func (r *reporter) left() time.Duration { return time.Until(r.deadline) }

// stage runs f as a stage bounded by limit and by the budget (keeping reserve for the
// stages after it), recording its outcome. f returns the stage's error; errSkip(reason)
// marks it skipped.
func (r *reporter) stage(ctx context.Context, name, command string, limit, reserve time.Duration, f func(ctx context.Context, st *Stage) error) *Stage {
	st := &Stage{Name: name, Command: command, Status: stageOK}
	r.res.Stages = append(r.res.Stages, st)
	avail := r.left() - reserve
	if avail < limit {
		limit = avail
	}
	if limit <= 0 || ctx.Err() != nil {
		st.Status, st.Reason = stageSkipped, "no time left in the run's budget"
		if ctx.Err() != nil {
			st.Reason = "the run was interrupted"
		}
		r.logf("%s: skipped (%s)", name, st.Reason)
		return st
	}
	sctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	r.logf("%s ...", name)
	err := f(sctx, st)
	st.Seconds = time.Since(start).Seconds()
	var skip skipError
	switch {
	case errors.As(err, &skip):
		st.Status, st.Reason = stageSkipped, skip.reason
	case err != nil && sctx.Err() != nil && ctx.Err() == nil:
		st.Status, st.Reason = stageFailed, fmt.Sprintf("stopped after its time limit of %s: %v", limit.Round(time.Second), err)
	case err != nil:
		st.Status, st.Reason = stageFailed, oneLineText(err.Error())
	}
	if st.Status == stageOK {
		r.logf("%s: %.1f s", name, st.Seconds)
	} else {
		r.logf("%s: %s after %.1f s: %s", name, st.Status, st.Seconds, st.Reason)
	}
	return st
}

type skipError struct{ reason string }

func (e skipError) Error() string { return e.reason }

func oneLineText(s string) string { return strings.Join(strings.Fields(s), " ") }

// run runs every stage in order. The 1M-label build comes last: it gets what time is left.
func (r *reporter) run(ctx context.Context) {
	r.res.Machine = describeMachine(r.work, r.o.Nginx)
	r.logf("machine: %s × %d, load average %.2f; data in %s", r.res.Machine.CPU, r.res.Machine.CPUs, r.res.Machine.LoadStart[0], r.work)

	r.key = filepath.Join(r.work, "key")
	keyStage := r.stage(ctx, "signing key", r.cmd("keygen", "--unencrypted", "--out", r.key), time.Minute, 0, func(ctx context.Context, st *Stage) error {
		return r.child(ctx, 0, nil, "keygen", "--unencrypted", "--out", r.key).err
	})
	if keyStage.Status != stageOK {
		return
	}
	// The sizes below 1M, then the release everything else is measured on.
	for _, n := range r.sizes {
		if n >= 1_000_000 {
			continue
		}
		r.buildSize(ctx, n, r.reserveAfterBuild(n))
	}
	if n := 10_000; r.trees[n] != "" {
		r.res.Validate = r.stage(ctx, "validate 10,000 labels", r.cmd("validate", "--labels", r.trees[n]), 2*time.Minute, r.reserveEdge(),
			func(ctx context.Context, st *Stage) error {
				return r.child(ctx, 0, nil, "validate", "--labels", r.trees[n]).err
			})
	}
	rel := 0
	for _, n := range []int{100_000, 10_000} {
		if r.catalogs[n] != "" && (n == 10_000 || !r.o.Quick) {
			rel = n
			break
		}
	}
	if rel == 0 {
		r.res.Stages = append(r.res.Stages, &Stage{Name: "edge and decide", Status: stageSkipped, Reason: "no release was built"})
	} else {
		if rel != 10_000 {
			r.removeSize(ctx, 10_000) // done with: its removal times the next ones
		}
		r.res.Release = rel
		r.measureRelease(ctx, rel)
	}
	for _, n := range r.sizes {
		if n >= 1_000_000 {
			if rel != 0 {
				r.removeSize(ctx, rel)
			}
			r.buildLarge(ctx, n)
		}
	}
}

// removeSize removes the tree and release of n labels (unless the run keeps its data),
// timing it: millions of files take minutes to remove, and the 1M stage must keep time for
// it.
func (r *reporter) removeSize(ctx context.Context, n int) {
	dirs := []string{r.trees[n], r.catalogs[n]}
	delete(r.trees, n)
	delete(r.catalogs, n)
	if r.o.Keep {
		return
	}
	files := 0
	for _, b := range r.res.Builds {
		if b.Labels == n {
			files = b.TreeFiles
		}
	}
	var named []string
	for _, d := range dirs {
		if d != "" {
			named = append(named, d)
		}
	}
	if len(named) == 0 {
		return
	}
	st := r.stage(context.WithoutCancel(ctx), "remove the "+sizeName(n)+" tree and release", "rm -rf "+shellJoin(named), time.Hour, -time.Hour,
		func(ctx context.Context, st *Stage) error {
			var errs []error
			for _, d := range named {
				errs = append(errs, removeAll(d))
			}
			return errors.Join(errs...)
		})
	if st.Status == stageOK && files > r.removed.files {
		r.removed.files, r.removed.seconds = files, st.Seconds
	}
}

// removeEstimate is how long removing a tree of files files will take: at the rate of the
// largest removal so far, with a margin (a tree the page cache no longer holds is slower to
// remove), or 10 minutes per million files when nothing was removed yet.
func (r *reporter) removeEstimate(files int) time.Duration {
	if r.o.Keep {
		return 0
	}
	perFile := 600.0 / 1e6
	if r.removed.files > 10_000 {
		perFile = r.removed.seconds / float64(r.removed.files)
	}
	return time.Duration(2.5 * perFile * float64(files) * float64(time.Second))
}

// removeAll is os.RemoveAll over a tree's subdirectories by several goroutines at once:
// unlinking millions of small files is bound by the file system's latency, not by a CPU,
// and goes about twice as fast this way.
func removeAll(dir string) error {
	var subdirs []string
	var walk func(d string, depth int)
	walk = func(d string, depth int) {
		entries, err := os.ReadDir(d)
		if err != nil {
			return
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			if p := filepath.Join(d, e.Name()); depth < 1 {
				walk(p, depth+1)
			} else {
				subdirs = append(subdirs, p)
			}
		}
	}
	walk(dir, 0)
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for d := range work {
				os.RemoveAll(d)
			}
		})
	}
	for _, d := range subdirs {
		work <- d
	}
	close(work)
	wg.Wait()
	return os.RemoveAll(dir) // what is left, and the errors
}

// reserveAfterBuild is the time kept for the stages after building n labels.
func (r *reporter) reserveAfterBuild(n int) time.Duration {
	if n < 100_000 && !r.o.Quick && len(r.sizes) > 1 {
		return 4*time.Minute + r.reserveEdge() // the 100k tree and build
	}
	return r.reserveEdge()
}

// reserveEdge is the time kept for the release's stages (decide, lookups, the edge, the
// install reports).
func (r *reporter) reserveEdge() time.Duration {
	if r.o.Quick {
		return 90 * time.Second
	}
	return 6 * time.Minute
}

// cmd formats a driveway command line, as the report prints it.
func (r *reporter) cmd(args ...string) string {
	return "driveway " + shellJoin(args)
}

func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = shellQuote(a)
	}
	return strings.Join(out, " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=@%+,-]+$`)

func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sizeName is 10k, 100k, 1M.
func sizeName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

var genSummary = regexp.MustCompile(`(\d+) files, ([\d,]+) bytes`)

// genTree generates a label tree of n labels into the work directory.
func (r *reporter) genTree(ctx context.Context, n int, fig *BuildFigure, limit, reserve time.Duration) bool {
	dir := filepath.Join(r.work, "labels-"+sizeName(n))
	args := []string{"bench", "gen-labels", "--out", dir, "--labels", strconv.Itoa(n), "--compact"}
	st := r.stage(ctx, fmt.Sprintf("generate %s labels", groupInt(int64(n))), r.cmd(args...), limit, reserve, func(ctx context.Context, st *Stage) error {
		c := r.child(ctx, 0, nil, args...)
		if c.err != nil {
			return c.err
		}
		if m := genSummary.FindStringSubmatch(string(c.stderr)); m != nil {
			fig.TreeFiles, _ = strconv.Atoi(m[1])
			fig.TreeBytes, _ = strconv.ParseInt(strings.ReplaceAll(m[2], ",", ""), 10, 64)
		}
		return nil
	})
	fig.GenSeconds = st.Seconds
	if st.Status != stageOK {
		fig.Err = "the label tree was not generated: " + st.Reason
		return false // what was written goes with the run's data
	}
	r.trees[n] = dir
	return true
}

// buildTree builds the tree of n labels into a catalog, measuring time and peak RSS; a
// build whose resident memory would exhaust the machine is stopped.
func (r *reporter) buildTree(ctx context.Context, n int, fig *BuildFigure, limit, reserve time.Duration) {
	out := filepath.Join(r.work, "catalog-"+sizeName(n))
	rep := filepath.Join(r.work, "build-"+sizeName(n)+".json")
	args := []string{"build", "--labels", r.trees[n], "--out", out, "--key", r.key + ".key", "--quiet", "--report", rep}
	st := r.stage(ctx, fmt.Sprintf("build %s labels", groupInt(int64(n))), "/usr/bin/time -v "+r.cmd(args...), limit, reserve, func(ctx context.Context, st *Stage) error {
		memLimit := memoryLimit()
		c := r.child(ctx, memLimit, nil, args...)
		fig.PeakRSS = c.maxRSS
		if c.killedFor != "" {
			return errors.New(c.killedFor)
		}
		if c.err != nil {
			return c.err
		}
		b, err := os.ReadFile(rep)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, fig); err != nil {
			return fmt.Errorf("the build's report: %w", err)
		}
		if fi, err := os.Stat(filepath.Join(out, "manifest")); err == nil {
			fig.ManifestBytes = fi.Size()
		}
		fig.Seconds = c.wall.Seconds()
		return nil
	})
	if st.Status != stageOK {
		fig.Err = "the build did not complete: " + st.Reason
		fig.Seconds = 0
		return
	}
	r.catalogs[n] = out
}

// buildSize generates and builds n labels.
func (r *reporter) buildSize(ctx context.Context, n int, reserve time.Duration) {
	fig := &BuildFigure{Labels: n}
	r.res.Builds = append(r.res.Builds, fig)
	limit := 3 * time.Minute
	if n >= 100_000 {
		limit = 8 * time.Minute
	}
	if r.genTree(ctx, n, fig, limit, reserve) {
		r.buildTree(ctx, n, fig, limit, reserve)
		if r.catalogs[n] != "" {
			r.rebuildTree(ctx, n, fig, limit, reserve)
		}
	}
}

// rebuildTree changes one label of the tree of n labels, rebuilds it with the cache the build
// wrote, and puts the label back.
func (r *reporter) rebuildTree(ctx context.Context, n int, fig *BuildFigure, limit, reserve time.Duration) {
	rb := &RebuildFigure{}
	fig.Rebuild = rb
	rep := filepath.Join(r.work, "rebuild-"+sizeName(n)+".json")
	args := []string{"build", "--labels", r.trees[n], "--out", r.catalogs[n], "--key", r.key + ".key", "--quiet", "--report", rep}
	st := r.stage(ctx, fmt.Sprintf("rebuild %s labels after one label changed", groupInt(int64(n))), "/usr/bin/time -v "+r.cmd(args...), limit, reserve, func(ctx context.Context, st *Stage) error {
		label, err := firstLabel(r.trees[n])
		if err != nil {
			return err
		}
		orig, err := os.ReadFile(label)
		if err != nil {
			return err
		}
		changed := strings.Replace(string(orig), `"name":"`, `"name":"(fixed) `, 1)
		if changed == string(orig) {
			return fmt.Errorf("%s has no \"name\" to change", label)
		}
		if err := os.WriteFile(label, []byte(changed), 0o644); err != nil {
			return err
		}
		defer os.WriteFile(label, orig, 0o644)
		start := time.Now()
		if err := statTree(r.trees[n]); err != nil {
			return err
		}
		rb.FloorSeconds = time.Since(start).Seconds()
		c := r.child(ctx, memoryLimit(), nil, args...)
		rb.PeakRSS = c.maxRSS
		if c.killedFor != "" {
			return errors.New(c.killedFor)
		}
		if c.err != nil {
			return c.err
		}
		b, err := os.ReadFile(rep)
		if err != nil {
			return err
		}
		var doc struct {
			ShardsWritten int `json:"shardsWritten"`
			Cache         *struct {
				Reused int `json:"reused"`
				Built  int `json:"built"`
			} `json:"cache"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("the rebuild's report: %w", err)
		}
		if err := json.Unmarshal(b, rb); err != nil {
			return fmt.Errorf("the rebuild's report: %w", err)
		}
		if doc.Cache == nil {
			return errors.New("the rebuild's report has no cache section: the build did not use a cache")
		}
		rb.Seconds, rb.ShardsWritten = c.wall.Seconds(), doc.ShardsWritten
		rb.ProductsBuilt, rb.ProductsReused = doc.Cache.Built, doc.Cache.Reused
		return nil
	})
	if st.Status != stageOK {
		rb.Err = "the rebuild did not complete: " + st.Reason
		rb.Seconds = 0
	}
}

// firstLabel is the first shipping label file of a tree, in path order.
func firstLabel(tree string) (string, error) {
	var found string
	err := filepath.WalkDir(filepath.Join(tree, "products"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && filepath.Base(filepath.Dir(p)) == "shippingLabels" && strings.HasSuffix(p, ".json") {
			found = p
			return fs.SkipAll
		}
		return nil
	})
	if err == nil && found == "" {
		err = fmt.Errorf("%s has no shipping label", tree)
	}
	return found, err
}

// statTree lists every directory of a tree and stats every file: what any rebuild that
// checks each file for changes costs on this file system.
func statTree(tree string) error {
	return filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			_, err = os.Stat(p)
		}
		return err
	})
}

// buildLarge is buildSize for the 1M tree: only if the disk can hold it (estimated from the
// largest tree generated so far) and the budget can fit it; the tree and its release are
// removed afterwards.
func (r *reporter) buildLarge(ctx context.Context, n int) {
	fig := &BuildFigure{Labels: n}
	r.res.Builds = append(r.res.Builds, fig)
	var ref *BuildFigure
	for _, b := range r.res.Builds {
		if b.Labels < n && b.TreeFiles > 0 && (ref == nil || b.Labels > ref.Labels) {
			ref = b
		}
	}
	var removeEst time.Duration // kept for removing the tree at the end
	check := r.stage(ctx, "room for "+groupInt(int64(n))+" labels", "df -B1 "+r.work, time.Minute, 0, func(ctx context.Context, st *Stage) error {
		if ref == nil {
			return skipError{"no smaller tree was generated to estimate its size from"}
		}
		scale := float64(n) / float64(ref.Labels)
		removeEst = r.removeEstimate(int(scale * float64(ref.TreeFiles)))
		// Files take whole 4 KiB blocks; the build writes its shards once more as
		// temporary files.
		need := int64(scale * 1.2 * float64(ref.TreeBytes+int64(ref.TreeFiles)*4096+2*ref.ShardBytes))
		free := diskFree(r.work)
		if free < need {
			return skipError{fmt.Sprintf("%s free in %s, and the tree and its release need about %s (estimated from the %s tree)",
				gib(free), r.work, gib(need), sizeName(ref.Labels))}
		}
		genEst := time.Duration(scale * 1.2 * ref.GenSeconds * float64(time.Second))
		buildMin := time.Duration(scale * ref.Seconds * float64(time.Second)) // at best linear
		if left := r.left(); left < removeEst+genEst+buildMin {
			return skipError{fmt.Sprintf("%s left in the run's budget (--budget), and generating the tree, building it and removing it take at least %s, %s and %s (estimated from the %s tree)",
				left.Round(time.Second), genEst.Round(time.Second), buildMin.Round(time.Second), removeEst.Round(time.Second), sizeName(ref.Labels))}
		}
		st.Reason = fmt.Sprintf("%s free; %s kept for removing the tree at the end", gib(free), removeEst.Round(time.Second))
		return nil
	})
	if check.Status != stageOK {
		fig.Err = check.Reason
		return
	}
	tree := filepath.Join(r.work, "labels-"+sizeName(n))
	out := filepath.Join(r.work, "catalog-"+sizeName(n))
	defer func() {
		r.trees[n], r.catalogs[n] = tree, out // whatever exists of them
		r.removeSize(ctx, n)
	}()
	reserve := removeEst + 30*time.Second
	if r.genTree(ctx, n, fig, r.left(), reserve) {
		r.buildTree(ctx, n, fig, r.left(), reserve)
	}
}

func groupInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func gib(b int64) string  { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }
func mib(b int64) string  { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
func mibf(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// targetsOrder is the order of the load targets in tables and plots.
var targetsOrder = []string{"edge-1", "edge-20", "edge-whole", "fixed", "fixed-20", "fixed-whole", "nginx"}

// meanDevices is the mean number of devices and of bytes of request bodies.
func meanDevices(bodies [][]byte) (devices, size float64) {
	if len(bodies) == 0 {
		return 0, 0
	}
	for _, b := range bodies {
		devices += float64(bytes.Count(b, []byte(`"instanceId"`)))
		size += float64(len(b))
	}
	return devices / float64(len(bodies)), size / float64(len(bodies))
}

// closedBy returns the closed-loop points of a target, by concurrency.
func (e *EdgeFigures) closedBy(target string) []LoadPoint {
	var out []LoadPoint
	for _, p := range e.Closed {
		if p.Target == target {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Result.Concurrency < out[j].Result.Concurrency })
	return out
}

// bestCPU is the server CPU per request of target's best closed-loop run (0: not read).
func (e *EdgeFigures) bestCPU(target string) float64 {
	cpu, best := 0.0, 0.0
	for _, p := range e.Closed {
		if p.Target == target && p.Result.RPS > best && p.ServerCPUMicros > 0 {
			cpu, best = p.ServerCPUMicros, p.Result.RPS
		}
	}
	return cpu
}

func (e *EdgeFigures) half(target string) *LoadPoint {
	for i := range e.Half {
		if e.Half[i].Target == target {
			return &e.Half[i]
		}
	}
	return nil
}
