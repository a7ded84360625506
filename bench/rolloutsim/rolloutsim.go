// Package rolloutsim is `driveway bench rollout-sim`: the health loop of gradual rollouts
// run end to end on one machine over simulated days, against a real edge (package serve)
// and the real controller (package rollout, build.Control).
//
// Run builds a small catalog of its own (four network chips, each with a baseline
// driver at 100% and a new driver in gradual rollout; the new driver of one chip is bad),
// starts an edge over it (serve.New on a loopback port; the PCs reach it over HTTP only),
// and then, every Step of simulated time:
//
//  1. the controller steps exactly as `driveway rollout step` does: ro.MeasureSpools
//     over the edge's report spool with the policy's window, ro.Step, ro.Apply to
//     the label files, and build.Control into the catalog; the edge picks the control-only
//     release up (the simulation waits, bounded, until GET /v1/release shows it);
//  2. the PCs whose daily scan falls in this step ask the edge (POST /v1/offers?now=T, each
//     with its own deviceId, so rollout buckets decide who gets a label); a PC offered a
//     driver it has not tried installs it and reports the outcome (POST /v1/reports): the
//     bad driver fails on BadFailureRate of the PCs (some at once: failed, rolled back;
//     most after install: a kernel crash or a PnP error, reported at the PC's next scan);
//     from then on the PC's requests carry the driver it has. A PC offered a rollback (a
//     cancelled driver) goes back to its baseline driver.
//
// Every offer request must be answered 200. Time is simulated: requests carry ?now= and the
// edge's clock is the simulation's (release expiry, the reports' "received"); the wall clock
// only paces the run.
package rolloutsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/driveway/driveway/bench"
	"github.com/driveway/driveway/build"
	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/index"
	ro "github.com/driveway/driveway/rollout"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/trust"
)

// Start is the simulated time at which every simulation starts. The new drivers' rollouts
// begin at their first stage then and on the three following days, one a day (the bad one
// second).
var Start = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// Options configure Run. Zero values take the defaults.
type Options struct {
	Logger         *slog.Logger  // the edge's warnings and errors; nil: none
	PCs            int           // simulated PCs; default 20,000
	Days           int           // simulated days; default 30
	BadFailureRate float64       // share of the bad driver's installs that fail; default 0.08
	Seed           int64         // the population and the failures; default 1
	Policy         *ro.Policy    // nil: ro.DefaultPolicy; its minimum populations are scaled (ScalePolicy)
	Step           time.Duration // simulated time between controller steps; default 6h, at most 24h
	Workers        int           // PCs asking at once; default 4 × GOMAXPROCS
	Dir            string        // work directory (labels, catalog, spool, key); default a temporary one, removed
	// ForgedReports, when positive, adds the forged-report attack (simAttack): on day 1 an
	// attacker on one network makes up that many devices, gets offers of a good driver
	// for them, and reports each as a kernel crash.
	ForgedReports int
	// Scenario is the world the controller faces:
	//   - "everywhere" (the default): the bad driver fails on BadFailureRate of the PCs that
	//     install it; it should be stopped at its first stage;
	//   - "cohort": the bad driver fails only on one PC model running Windows 11 24H2, at
	//     BadFailureRate of those; the controller should hold that cohort alone, within the
	//     first stage (the policy gets an even first ring, firstRing {30, 25%}, unless it has
	//     one), and take the driver to 100% elsewhere;
	//   - "background": every driver is good, but one small cohort (one PC model on Windows
	//     10 22H2) has kernel crashes unrelated to any driver, BackgroundCrashRate of its PCs
	//     a day, before and after the new drivers: the PCs start on an older in-box driver,
	//     are offered the baseline drivers on their first scan, and report the crashes
	//     against whatever driver they run; no driver should be paused, cancelled or held
	//     (the controller judges over the baseline: rollout/baseline.go);
	//   - "throttle": every driver is good and the policy has a count throttle of
	//     ThrottlePerDay new machines a day (unless it has one); each label's daily new
	//     machines should stay within 10% of it.
	Scenario string
	// BackgroundCrashRate is the background cohort's daily kernel crashes (scenario
	// background): the share of its PCs that crash on a day; default 0.03.
	BackgroundCrashRate float64
	// ThrottlePerDay is the throttle of scenario throttle; default PCs / 40.
	ThrottlePerDay int
	Progress       func(step, steps int)
}

// Label is one label in rollout and how it ended.
type Label struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"` // the chip
	Bad        bool    `json:"bad"`
	Population int     `json:"population"` // PCs with the chip
	Percent    float64 `json:"percent"`    // offered at the end (0 while paused or cancelled)
	Stages     int     `json:"stages"`     // stages it went through (1: never advanced)
	Paused     bool    `json:"paused"`
	Cancelled  bool    `json:"cancelled"`
	// Stops are its pause and cancel decisions, in order; Holds its targeted holds (a
	// cohort held alone), Lifts the holds lifted, Rings its first-ring decisions.
	Stops []Event `json:"stops"`
	Holds []Event `json:"holds"`
	Lifts []Event `json:"lifts"`
	Rings []Event `json:"rings"`
	// DailyNew is how many machines installed the label on each simulated day (index: day).
	DailyNew []int `json:"dailyNew"`
	// Throttle is how the daily new machines kept to the throttle (scenario throttle).
	Throttle *Throttle `json:"throttle,omitempty"`
	// CompletedDay is the simulated day the label reached 100%; -1 if it did not.
	CompletedDay float64 `json:"completedDay"`
	Machines     int     `json:"machines"` // machines that reported on it (in the last measure)
	Success      float64 `json:"successPercent"`
}

// Throttle is how one label's daily new machines kept to a count throttle, over the days
// the throttle paced it (from the day of its first throttled advance to the last day before
// it reached 100%).
type Throttle struct {
	Limit    int     `json:"limit"`
	FromDay  int     `json:"fromDay"`
	ToDay    int     `json:"toDay"` // exclusive
	Days     int     `json:"days"`
	Within   int     `json:"within10Percent"` // days within 10% of the limit
	Mean     float64 `json:"mean"`
	Min, Max int
}

// Event is one controller decision.
type Event struct {
	Time     time.Time `json:"time"`
	Day      float64   `json:"day"`
	Label    string    `json:"label"`
	Name     string    `json:"name"`
	Percent  float64   `json:"percent"` // the scheduled percent when the step ran
	To       float64   `json:"to,omitempty"`
	Machines int       `json:"machines"`
	Success  float64   `json:"successPercent"` // of machines without a failure (0 without machines)
	Failure  float64   `json:"failurePercent"` // 100 − success, 0 without machines
	Action   ro.Action `json:"action"`
	Reason   string    `json:"reason"`
}

// Point is one label's state after one step, for the plot.
type Point struct {
	Day      float64 `json:"day"`
	Label    string  `json:"label"`
	Percent  float64 `json:"percent"` // offered: 0 while paused or cancelled
	Machines int     `json:"machines"`
	Failure  float64 `json:"failurePercent"`
}

// Minimums are the policy's minimum populations and what the simulation used.
type Minimums struct {
	Factor             float64 `json:"factor"`
	Label              int     `json:"label"`  // machines a label measure needs, as used
	Cohort             int     `json:"cohort"` // machines a cohort measure needs, as used
	PolicyLabel        int     `json:"policyLabel"`
	PolicyCohort       int     `json:"policyCohort"`
	FirstStageMachines int     `json:"firstStageMachines"` // expected machines of the smallest label at the first stage
}

// Result is what a simulation did.
type Result struct {
	Start          time.Time `json:"start"`
	End            time.Time `json:"end"`
	PCs            int       `json:"pcs"`
	Days           int       `json:"days"`
	Step           string    `json:"step"`
	Seed           int64     `json:"seed"`
	BadFailureRate float64   `json:"badFailureRate"`
	Scenario       string    `json:"scenario"`
	Policy         ro.Policy `json:"policy"` // as used, minimums scaled
	Minimums       Minimums  `json:"minimums"`
	Labels         []Label   `json:"labels"`
	Timeline       []Event   `json:"timeline"` // every decision of every step
	Points         []Point   `json:"points"`

	OfferRequests  int64  `json:"offerRequests"`
	OfferFailures  int64  `json:"offerFailures"` // not answered 200
	Offers         int64  `json:"offers"`        // offers the PCs acted on
	ReportRequests int64  `json:"reportRequests"`
	Reports        int64  `json:"reports"`
	ReportsDropped int64  `json:"reportsDropped"`
	Releases       int    `json:"releases"` // control-only releases published
	Rollbacks      int64  `json:"rollbacks"`
	Elapsed        string `json:"elapsed"` // wall time

	Attack *Attack `json:"attack,omitempty"` // with ForgedReports

	// Outcome says whether the scenario did what it shows (see Options.Scenario), in a
	// sentence; OK is its verdict.
	Outcome string `json:"outcome"`
	OK      bool   `json:"ok"`
	// BackgroundCohort is the background scenario's cohort ("VB/<chid>") and its crash
	// reports.
	BackgroundCohort    string  `json:"backgroundCohort,omitempty"`
	BackgroundCrashRate float64 `json:"backgroundCrashRate,omitempty"`
	BackgroundReports   int64   `json:"backgroundReports,omitempty"`
}

// ScalePolicy returns a copy of p whose minimum populations (label and cohort, of p and of
// its classes) are scaled by the same factor, so that the smallest label's expected machines
// at p's first stage (firstStage) are twice the label minimum: a population of simulated PCs
// is far smaller than the field the policy's numbers are meant for. The factor is at most 1
// (a large simulation uses the policy's own numbers), and no minimum drops below 1.
func ScalePolicy(p *ro.Policy, firstStage float64) (*ro.Policy, Minimums) {
	m := Minimums{PolicyLabel: p.MinLabelMachines, PolicyCohort: p.MinCohortMachines, FirstStageMachines: int(math.Round(firstStage))}
	m.Factor = math.Min(1, firstStage/(2*float64(p.MinLabelMachines)))
	scale := func(n int) int { return max(1, int(math.Round(float64(n)*m.Factor))) }
	out := *p
	out.MinLabelMachines, out.MinCohortMachines = scale(p.MinLabelMachines), scale(p.MinCohortMachines)
	if len(p.Classes) > 0 {
		out.Classes = map[string]*ro.Policy{}
		for name, c := range p.Classes {
			cc := *c
			cc.MinLabelMachines, cc.MinCohortMachines = scale(c.MinLabelMachines), scale(c.MinCohortMachines)
			out.Classes[name] = &cc
		}
	}
	m.Label, m.Cohort = out.MinLabelMachines, out.MinCohortMachines
	return &out, m
}

// simClock is the simulated time, shared with the edge.
type simClock struct{ ns atomic.Int64 }

func (c *simClock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *simClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }

// simDuration prints whole hours as "6h", others as time.Duration does.
func simDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

func simDay(t time.Time) float64  { return t.Sub(Start).Hours() / 24 }
func simPercent(bp int) float64   { return float64(bp) / 100 }
func simRound2(v float64) float64 { return math.Round(v*100) / 100 }
func simFailure(m *ro.Measure) float64 {
	if m.Machines == 0 {
		return 0
	}
	return simRound2(100 - m.SuccessPercent)
}

// sim is one run's state.
type sim struct {
	opts    Options
	policy  *ro.Policy
	census  *ro.Census
	chips   []*simChip
	pcs     []*simPC
	labels  string // label tree
	catalog string
	spool   string
	signers []*signing.Signer
	clock   simClock
	url     string
	client  *http.Client
	res     Result

	sentReports atomic.Int64     // accepted by the edge (the spool must hold them all)
	newByDay    map[string][]int // label → installs per simulated day (under errMu)
	firstErr    error
	errMu       sync.Mutex
}

// Run runs the simulation (see the file's comment). It returns an error when the
// setup fails, the edge fails, or any offer request was not answered 200 (the result then
// says how many).
func Run(ctx context.Context, opts Options) (*Result, error) {
	started := time.Now()
	if opts.PCs <= 0 {
		opts.PCs = 20000
	}
	if opts.Days <= 0 {
		opts.Days = 30
	}
	if opts.BadFailureRate == 0 {
		opts.BadFailureRate = 0.08
	}
	if opts.BadFailureRate < 0 || opts.BadFailureRate > 1 {
		return nil, fmt.Errorf("rollout-sim: bad failure rate %v: want 0 to 1", opts.BadFailureRate)
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Step <= 0 {
		opts.Step = 6 * time.Hour
	}
	if opts.Step > 24*time.Hour || (24*time.Hour)%opts.Step != 0 {
		return nil, fmt.Errorf("rollout-sim: step %v: want a divisor of 24h", opts.Step)
	}
	if opts.Workers <= 0 {
		opts.Workers = 4 * runtime.GOMAXPROCS(0)
	}
	switch opts.Scenario {
	case "":
		opts.Scenario = "everywhere"
	case "everywhere", "cohort", "background", "throttle":
	default:
		return nil, fmt.Errorf("rollout-sim: scenario %q: want everywhere, cohort, background or throttle", opts.Scenario)
	}
	if opts.BackgroundCrashRate == 0 {
		opts.BackgroundCrashRate = 0.03
	}
	if opts.BackgroundCrashRate < 0 || opts.BackgroundCrashRate > 1 {
		return nil, fmt.Errorf("rollout-sim: background crash rate %v: want 0 to 1", opts.BackgroundCrashRate)
	}
	if opts.ThrottlePerDay <= 0 {
		opts.ThrottlePerDay = max(1, opts.PCs/40)
	}
	policy := opts.Policy
	if policy == nil {
		policy = &ro.DefaultPolicy
	}
	policy = simScenarioPolicy(policy, opts)
	if opts.Dir == "" {
		dir, err := os.MkdirTemp("", "driveway-rollout-sim-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		opts.Dir = dir
	} else if entries, _ := os.ReadDir(opts.Dir); len(entries) > 0 {
		return nil, fmt.Errorf("%w: %s", bench.ErrNotEmpty, opts.Dir)
	}
	s := &sim{opts: opts, chips: simChips(), newByDay: map[string][]int{}}
	if opts.Scenario == "background" || opts.Scenario == "throttle" {
		for _, c := range s.chips {
			c.bad = false
		}
	}
	s.labels, s.catalog, s.spool = filepath.Join(opts.Dir, "labels"), filepath.Join(opts.Dir, "catalog"), filepath.Join(opts.Dir, "spool")

	// The world, the policy and the catalog.
	ladder := policy.For("Net").Ladder
	expires := build.DefaultExpiresAfter // a week: the pipeline re-signs the release (refresh)
	if err := writeSimTree(s.labels, s.chips, Start, ladder[0], expires); err != nil {
		return nil, fmt.Errorf("rollout-sim: %w", err)
	}
	slots := int(24 * time.Hour / opts.Step)
	s.pcs = makeSimPCs(opts.PCs, opts.Seed, s.chips, slots)
	if opts.Scenario == "background" {
		for _, pc := range s.pcs {
			pc.background = pc.chid == simGUID(opts.Seed, "model", "1") && pc.build == simBuilds[2].build
			for k := range pc.devices {
				pc.devices[k].inbox() // the PCs start on an older in-box driver
			}
		}
	}
	s.census = simCensus(s.pcs, s.chips)
	pop := map[*simChip]int{}
	for _, pc := range s.pcs {
		for k := range pc.devices {
			pop[pc.devices[k].chip]++
		}
	}
	smallest := opts.PCs
	for _, c := range s.chips {
		smallest = min(smallest, pop[c])
	}
	var mins Minimums
	s.policy, mins = ScalePolicy(policy, float64(smallest)*ladder[0]/100)
	s.res = Result{Start: Start, End: Start.Add(time.Duration(opts.Days) * 24 * time.Hour), PCs: opts.PCs, Days: opts.Days,
		Step: simDuration(opts.Step), Seed: opts.Seed, BadFailureRate: opts.BadFailureRate, Scenario: opts.Scenario, Policy: *s.policy, Minimums: mins,
		Timeline: []Event{}, Points: []Point{}}
	for _, c := range s.chips {
		s.res.Labels = append(s.res.Labels, Label{ID: c.newLabel, Name: c.name, Bad: c.bad, Population: pop[c], Stages: 1, CompletedDay: -1,
			Stops: []Event{}, Holds: []Event{}, Lifts: []Event{}, Rings: []Event{}})
	}

	prefix := filepath.Join(opts.Dir, "sim")
	if err := signing.WriteKeyPair(prefix, signing.Ed25519, nil); err != nil {
		return nil, fmt.Errorf("rollout-sim: %w", err)
	}
	signer, err := signing.LoadSigner(ctx, prefix+".key", nil)
	if err != nil {
		return nil, fmt.Errorf("rollout-sim: %w", err)
	}
	verifier, err := signing.LoadVerifier(prefix + ".pub")
	if err != nil {
		return nil, fmt.Errorf("rollout-sim: %w", err)
	}
	s.signers = []*signing.Signer{signer}
	rep, err := build.Build(ctx, build.Options{Labels: s.labels, Out: s.catalog, Signers: s.signers, Now: Start, ExpiresAfter: expires})
	if err != nil {
		return nil, fmt.Errorf("rollout-sim: building the simulation's catalog: %w", err)
	}

	// The edge.
	s.clock.set(Start)
	// PCs reach it from loopback and say where they are in X-Forwarded-For, as behind a load
	// balancer; ?now= lets each request carry the simulated time.
	url, stop, err := startEdge(serve.Config{Catalog: s.catalog, Keys: []*signing.Verifier{verifier}, Clock: s.clock.now,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
		Spool: ro.SpoolOptions{Dir: s.spool, SyncEvery: 5 * time.Millisecond, Clock: s.clock.now,
			Secret: []byte("the rollout simulation's fleet secret, not secret")},
		AllowTimeOverride: true, Poll: 50 * time.Millisecond, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("rollout-sim: starting the edge: %w", err)
	}
	s.url = url
	s.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: opts.Workers, MaxIdleConns: opts.Workers}}
	defer s.client.CloseIdleConnections()
	runErr := s.waitRelease(ctx, rep.Sequence)

	// The loop.
	steps := opts.Days * slots
	for k := 0; k < steps && runErr == nil; k++ {
		now := Start.Add(time.Duration(k) * opts.Step)
		s.clock.set(now)
		if runErr = ctx.Err(); runErr != nil {
			break
		}
		if runErr = s.refresh(ctx, now); runErr != nil {
			break
		}
		if runErr = s.controllerStep(ctx, now); runErr != nil {
			break
		}
		if runErr = s.scan(ctx, now, k%slots); runErr != nil {
			break
		}
		if opts.ForgedReports > 0 && k == slots { // the first step of day 1
			runErr = s.attack(ctx, now)
		}
		if opts.Progress != nil {
			opts.Progress(k+1, steps)
		}
	}
	// A last measure at the end, for the labels' final numbers.
	if runErr == nil {
		s.clock.set(s.res.End)
		if err := s.waitSpool(ctx); err != nil {
			runErr = err
		} else if m, err := s.measure(s.res.End); err != nil {
			runErr = err
		} else {
			s.finish(&m)
		}
	}
	if err := stop(); err != nil && runErr == nil {
		runErr = fmt.Errorf("rollout-sim: stopping the edge: %w", err)
	}
	s.res.Elapsed = time.Since(started).Round(time.Millisecond).String()
	if runErr == nil && s.res.OfferFailures > 0 {
		runErr = fmt.Errorf("rollout-sim: %d of %d offer requests failed: %w", s.res.OfferFailures, s.res.OfferRequests, s.firstErr)
	}
	return &s.res, runErr
}

// refresh does what a pipeline does on a schedule: it re-signs the timestamp of the newest
// release (driveway timestamp; edges serve nothing once it has expired), and, when the
// release itself expires within two days, publishes it again with a fresh expiry (a
// control-only build naming no label).
func (s *sim) refresh(ctx context.Context, now time.Time) error {
	_, env, err := index.Latest(s.catalog)
	if err != nil {
		return fmt.Errorf("rollout-sim: %w", err)
	}
	payload, err := signing.Payload(env, index.ManifestType)
	if err != nil {
		return fmt.Errorf("rollout-sim: %w", err)
	}
	m, err := index.ParseManifest(payload)
	if err != nil {
		return fmt.Errorf("rollout-sim: %w", err)
	}
	if m.Expires.Sub(now) < 48*time.Hour {
		rep, err := build.Control(ctx, build.ControlOptions{Labels: s.labels, Out: s.catalog, Signers: s.signers, Now: now})
		if err != nil {
			return fmt.Errorf("rollout-sim: re-signing the release: %w", err)
		}
		s.res.Releases++
		return s.waitRelease(ctx, rep.Sequence)
	}
	validity := max(trust.DefaultTimestampValidity, 3*s.opts.Step)
	if _, err := trust.Stamp(s.catalog, m.Catalog, m.Sequence, env, now, now.Add(validity), s.signers...); err != nil {
		return fmt.Errorf("rollout-sim: re-signing the timestamp: %w", err)
	}
	return nil
}

// measure reads the spool as `driveway rollout measure` does, over the policy's window.
func (s *sim) measure(now time.Time) (ro.Measures, error) {
	return ro.MeasureSpools([]string{s.spool}, ro.MeasureOptions{MinLabelMachines: s.policy.MinLabelMachines,
		MinCohortMachines: s.policy.MinCohortMachines, Since: now.Add(-s.policy.Window.Duration), Until: now}, now)
}

// controllerStep is `driveway rollout step` at now: measure, step, apply, publish a
// control-only release, and wait for the edge to serve it.
func (s *sim) controllerStep(ctx context.Context, now time.Time) error {
	if err := s.waitSpool(ctx); err != nil {
		return err
	}
	m, err := s.measure(now)
	if err != nil {
		return fmt.Errorf("rollout-sim: measure: %w", err)
	}
	tree, probs, err := catalogs.Load(s.labels, nil)
	if err != nil {
		return fmt.Errorf("rollout-sim: %w", err)
	}
	if n := probs.Errors(); n > 0 {
		return fmt.Errorf("rollout-sim: the simulation's label tree has %d errors: %v", n, probs[0])
	}
	lifts, err := ro.LoadLifts(s.labels)
	if err != nil {
		return fmt.Errorf("rollout-sim: %w", err)
	}
	decisions := ro.StepWith(tree, &m, s.policy, now, ro.StepInputs{Lifts: lifts, Census: s.census})
	names := map[string]string{}
	for _, c := range s.chips {
		names[c.newLabel] = c.name
	}
	for _, d := range decisions {
		ev := Event{Time: now, Day: simRound2(simDay(now)), Label: d.Label, Name: names[d.Label], Percent: simPercent(d.From),
			Action: d.Action, Reason: d.Reason}
		if d.Action == ro.Advance {
			ev.To = simPercent(d.To)
		}
		if lm, ok := m.Label(d.Label); ok {
			ev.Machines, ev.Success, ev.Failure = lm.Machines, lm.SuccessPercent, simFailure(&lm.Measure)
		}
		s.res.Timeline = append(s.res.Timeline, ev)
		if a := s.res.Attack; a != nil && d.Label == a.Label && d.Action == ro.Hold && strings.Contains(d.Reason, "uncorroborated") {
			a.HeldUncorroborated++
		}
		for i := range s.res.Labels {
			l := &s.res.Labels[i]
			if l.ID != d.Label {
				continue
			}
			switch d.Action {
			case ro.Pause, ro.Cancel:
				l.Stops = append(l.Stops, ev)
			case ro.HoldCohort:
				l.Holds = append(l.Holds, ev)
			case ro.LiftCohort:
				l.Lifts = append(l.Lifts, ev)
			case ro.FirstRingSet:
				l.Rings = append(l.Rings, ev)
			case ro.Advance:
				l.Stages++
				if d.To >= 10000 {
					l.CompletedDay = ev.Day
				}
			}
		}
	}
	changed, err := ro.Apply(s.labels, decisions)
	if err != nil {
		return fmt.Errorf("rollout-sim: %w", err)
	}
	if len(changed) > 0 {
		rep, err := build.Control(ctx, build.ControlOptions{Labels: s.labels, Out: s.catalog, Signers: s.signers, Now: now, LabelIDs: changed})
		if err != nil {
			return fmt.Errorf("rollout-sim: publishing the step's control-only release: %w", err)
		}
		s.res.Releases++
		if err := s.waitRelease(ctx, rep.Sequence); err != nil {
			return err
		}
		if tree, _, err = catalogs.Load(s.labels, nil); err != nil {
			return fmt.Errorf("rollout-sim: %w", err)
		}
	}
	// The plot's points: what each label is offered at from now on, and its failure rate.
	for _, c := range s.chips {
		p := Point{Day: simRound2(simDay(now)), Label: c.newLabel, Percent: simOffered(tree, c.newLabel, now)}
		if lm, ok := m.Label(c.newLabel); ok {
			p.Machines, p.Failure = lm.Machines, simFailure(&lm.Measure)
		}
		s.res.Points = append(s.res.Points, p)
	}
	return nil
}

// simOffered is a label's rollout percent at now: 0 when paused or cancelled.
func simOffered(tree *catalogs.Tree, id string, now time.Time) float64 {
	for _, l := range tree.Labels() {
		if l.ID != id {
			continue
		}
		d := l.Distribution
		if d.Cancelled != nil && !now.Before(d.Cancelled.At) {
			return 0
		}
		if d.Rollout == nil {
			return 100
		}
		if d.Rollout.Paused {
			return 0
		}
		bp := 0
		for _, st := range d.Rollout.Stages {
			if !now.Before(st.At) {
				bp = st.BasisPoints
			}
		}
		return simPercent(bp)
	}
	return 0
}

// finish fills the labels' final state from the tree and the last measure.
func (s *sim) finish(m *ro.Measures) {
	tree, _, err := catalogs.Load(s.labels, nil)
	if err != nil {
		return
	}
	for i := range s.res.Labels {
		l := &s.res.Labels[i]
		l.Percent = simOffered(tree, l.ID, s.res.End)
		for _, tl := range tree.Labels() {
			if tl.ID == l.ID {
				l.Paused = tl.Distribution.Rollout != nil && tl.Distribution.Rollout.Paused
				l.Cancelled = tl.Distribution.Cancelled != nil
			}
		}
		if lm, ok := m.Label(l.ID); ok {
			l.Machines, l.Success = lm.Machines, lm.SuccessPercent
		}
		if a := s.res.Attack; a != nil && a.Label == l.ID {
			a.Stopped = l.Paused || l.Cancelled || len(l.Stops) > 0 || len(l.Holds) > 0 // a held cohort is stopped too
		}
		l.DailyNew = append([]int{}, s.newByDay[l.ID]...)
		for len(l.DailyNew) < s.opts.Days {
			l.DailyNew = append(l.DailyNew, 0)
		}
		if s.opts.Scenario == "throttle" {
			l.Throttle = simThrottleStats(l, s.res.Timeline, s.policy.For("Net").Throttle)
		}
	}
	if s.opts.Scenario == "background" {
		s.res.BackgroundCohort = simBuildRelease(simBuilds[2].build) + "/" + simGUID(s.opts.Seed, "model", "1")
		s.res.BackgroundCrashRate = s.opts.BackgroundCrashRate
	}
	s.res.Outcome, s.res.OK = simOutcome(&s.res)
}

// waitRelease waits until the edge serves release seq (at most 30 s).
func (s *sim) waitRelease(ctx context.Context, seq uint64) error {
	deadline := time.Now().Add(30 * time.Second)
	var last uint64
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/v1/release", nil)
		resp, err := s.client.Do(req)
		if err == nil {
			var r struct {
				Sequence uint64 `json:"sequence"`
			}
			if resp.StatusCode == http.StatusOK {
				err = json.NewDecoder(resp.Body).Decode(&r)
			}
			resp.Body.Close()
			if err == nil && r.Sequence >= seq {
				return nil
			}
			last = r.Sequence
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rollout-sim: the edge did not pick release %d up within 30 s (serving %d)", seq, last)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitSpool waits until the spool's files hold every report the edge accepted (at most
// 30 s): the edge writes them in batches, and the controller must see them all.
func (s *sim) waitSpool(ctx context.Context) error {
	want := s.sentReports.Load()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := simSpoolLines(s.spool)
		if err != nil {
			return err
		}
		if n >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rollout-sim: the spool holds %d of the %d reports the edge accepted after 30 s", n, want)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// simSpoolLines counts the complete lines of the spool's files.
func simSpoolLines(dir string) (int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("rollout-sim: %w", err)
	}
	var n int64
	buf := make([]byte, 256<<10)
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // renamed while listing: counted under its new name next time
		}
		for {
			k, err := f.Read(buf)
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			if err != nil {
				break
			}
		}
		f.Close()
	}
	return n, nil
}

// scan has the PCs whose daily scan falls in this step (slot) ask the edge and act.
func (s *sim) scan(ctx context.Context, now time.Time, slot int) error {
	work := make(chan *simPC, 256)
	var wg sync.WaitGroup
	var fatal atomic.Pointer[error]
	for range s.opts.Workers {
		wg.Go(func() {
			w := &simWorker{s: s, nowParam: now.Format(time.RFC3339)}
			for pc := range work {
				if fatal.Load() != nil {
					continue
				}
				if err := w.visit(ctx, pc, now); err != nil {
					fatal.CompareAndSwap(nil, &err)
				}
			}
			w.flush()
		})
	}
	for _, pc := range s.pcs {
		if pc.slot == slot {
			work <- pc
		}
	}
	close(work)
	wg.Wait()
	if p := fatal.Load(); p != nil {
		return *p
	}
	return nil
}

// simWorker asks for PCs one at a time, with its own buffers and counts.
type simWorker struct {
	s        *sim
	nowParam string
	req      []byte
	reports  []ro.Report
	body     bytes.Buffer
	// counts, added to the result at flush
	requests, failures, offers, reportReqs, accepted, dropped, rollbacks, background int64
	newAt                                                                            map[string]map[int]int // label → day → installs of the new driver
}

// simResponse is the part of an offer response a PC reads.
type simResponse struct {
	Offers []struct {
		InstanceID    string `json:"instanceId"`
		Kind          string `json:"kind"`
		LabelID       string `json:"labelId"`
		DriverDate    string `json:"driverDate"`
		DriverVersion string `json:"driverVersion"`
		ReportToken   string `json:"reportToken"`
	} `json:"offers"`
}

// Failure results of the bad driver and their shares of its failures: most show after the
// install (reported at the PC's next scan); some at once.
var simFailures = []struct {
	result string
	share  float64
	later  bool
}{
	{"kernel-crash-after-install", 0.35, true},
	{"pnp-error-after-install", 0.35, true},
	{"failed", 0.2, false},
	{"rolled-back", 0.1, false},
}

// visit is one PC's scan: report what it noticed since, ask, install what it is offered,
// report.
func (w *simWorker) visit(ctx context.Context, pc *simPC, now time.Time) error {
	s := w.s
	w.reports = w.reports[:0]
	report := func(d *simDevice, label, result, token string, at time.Time) {
		w.reports = append(w.reports, ro.Report{DeviceID: pc.id, LabelID: label, InstanceID: d.instanceID, Result: result,
			Time: at, Build: pc.build, CHID: pc.chid, ReportToken: token})
	}
	for k := range pc.devices {
		if d := &pc.devices[k]; d.pending != nil {
			report(d, d.pending.label, d.pending.result, d.pending.token, now)
			d.pending = nil
		}
	}
	// A background crash since the last scan (scenario background), reported against the
	// drivers the PC runs, whatever they are.
	if pc.background && simUnit(s.opts.Seed, pc.id, now.Format(time.RFC3339), "background") < s.opts.BackgroundCrashRate {
		for k := range pc.devices {
			if d := &pc.devices[k]; d.label != "" && d.token != "" {
				report(d, d.label, "kernel-crash-after-install", d.token, now)
				w.background++
			}
		}
	}
	w.req = pc.appendRequest(w.req[:0])
	w.requests++
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/v1/offers?now="+w.nowParam, bytes.NewReader(w.req))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", pc.addr)
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.fail(fmt.Errorf("POST /v1/offers: %w", err))
		return nil
	}
	w.body.Reset()
	_, err = w.body.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		w.fail(fmt.Errorf("POST /v1/offers: %d %v: %.200s", resp.StatusCode, err, w.body.Bytes()))
		return nil
	}
	var r simResponse
	if err := json.Unmarshal(w.body.Bytes(), &r); err != nil {
		w.fail(fmt.Errorf("POST /v1/offers: %w", err))
		return nil
	}
	installed := now.Add(30 * time.Minute) // installs take a while; reports carry the PC's time
	for _, o := range r.Offers {
		var d *simDevice
		for k := range pc.devices {
			if pc.devices[k].instanceID == o.InstanceID {
				d = &pc.devices[k]
			}
		}
		if d == nil || d.label == o.LabelID {
			continue
		}
		switch o.Kind {
		case "rollback": // a cancelled driver: back to the best remaining one
			w.rollbacks++
		case "automatic":
			if o.LabelID == d.chip.newLabel {
				if d.tried {
					continue // it failed here once; a PC does not retry
				}
				d.tried = true
			}
		default:
			continue
		}
		w.offers++
		result := "installed"
		if o.LabelID == d.chip.newLabel && d.chip.bad && s.failsHere(pc) && simUnit(s.opts.Seed, pc.id, o.LabelID, "fails") < s.opts.BadFailureRate {
			u := simUnit(s.opts.Seed, pc.id, o.LabelID, "how")
			for _, f := range simFailures {
				result = f.result
				if u < f.share {
					if f.later {
						d.pending = &simPendingFail{o.LabelID, f.result, o.ReportToken}
						result = "installed"
					}
					break
				}
				u -= f.share
			}
		}
		report(d, o.LabelID, result, o.ReportToken, installed)
		if result == "installed" {
			d.label, d.date, d.version, d.token = o.LabelID, o.DriverDate, o.DriverVersion, o.ReportToken
		}
		if o.Kind == "automatic" && o.LabelID == d.chip.newLabel {
			if w.newAt == nil {
				w.newAt = map[string]map[int]int{}
			}
			if w.newAt[o.LabelID] == nil {
				w.newAt[o.LabelID] = map[int]int{}
			}
			w.newAt[o.LabelID][int(simDay(now))]++
		}
	}
	if len(w.reports) == 0 {
		return nil
	}
	body, _ := json.Marshal(w.reports)
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/v1/reports", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", pc.addr)
	w.reportReqs++
	resp, err = s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("rollout-sim: POST /v1/reports: %w", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var a struct{ Accepted, Dropped int64 }
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &a) != nil {
		return fmt.Errorf("rollout-sim: POST /v1/reports: %d %.200s", resp.StatusCode, b)
	}
	w.accepted += a.Accepted
	w.dropped += a.Dropped
	s.sentReports.Add(a.Accepted)
	return nil
}

// failsHere reports whether the bad driver can fail on pc: anywhere, or (scenario cohort)
// only on the first PC model running the newest build.
func (s *sim) failsHere(pc *simPC) bool {
	return s.opts.Scenario != "cohort" || pc.chid == simGUID(s.opts.Seed, "model", "0") && pc.build == simBuilds[0].build
}

func (w *simWorker) fail(err error) {
	w.failures++
	w.s.errMu.Lock()
	if w.s.firstErr == nil {
		w.s.firstErr = err
	}
	w.s.errMu.Unlock()
}

func (w *simWorker) flush() {
	s := w.s
	s.errMu.Lock()
	defer s.errMu.Unlock()
	s.res.OfferRequests += w.requests
	s.res.OfferFailures += w.failures
	s.res.Offers += w.offers
	s.res.ReportRequests += w.reportReqs
	s.res.Reports += w.accepted
	s.res.ReportsDropped += w.dropped
	s.res.Rollbacks += w.rollbacks
	s.res.BackgroundReports += w.background
	for label, days := range w.newAt {
		for day, n := range days {
			for len(s.newByDay[label]) <= day {
				s.newByDay[label] = append(s.newByDay[label], 0)
			}
			s.newByDay[label][day] += n
		}
	}
}

// startEdge serves cfg on 127.0.0.1:0. It returns the edge's base URL
// ("http://127.0.0.1:port") and a function that shuts it down (closing its spool).
func startEdge(cfg serve.Config) (url string, stop func() error, err error) {
	srv, err := serve.New(cfg)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Shutdown(context.Background())
		return "", nil, err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			return err
		}
		return <-done
	}, nil
}
