package rolloutsim_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/bench/rolloutsim"
	"github.com/driveway/driveway/rollout"
)

// TestRolloutSim is the simulation's short form: two thousand PCs over 16 days (the default
// ladder takes 12 days, and the last rollout starts on day 3), the default policy with its minimum populations scaled. The
// bad label is stopped (paused or cancelled) while still at its first stage, every good label
// reaches 100%, every offer request is answered 200, and a second run with the same seed
// over the first days gives the same timeline (the simulation is causal, so a shorter run's
// timeline is a prefix of a longer one's).
func TestRolloutSim(t *testing.T) {
	opts := rolloutsim.Options{PCs: 2000, Days: 16, BadFailureRate: 0.25, Seed: 7}
	start := time.Now()
	res, err := rolloutsim.Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	res.WriteText(&text, false)
	t.Logf("first run in %v:\n%s", time.Since(start).Round(time.Millisecond), text.String())

	if res.OfferRequests < int64(opts.PCs*opts.Days) || res.OfferFailures != 0 {
		t.Errorf("%d offer requests, %d failed; want %d (every PC scans daily), none failed", res.OfferRequests, res.OfferFailures, opts.PCs*opts.Days)
	}
	if res.Minimums.Label >= rollout.DefaultPolicy.MinLabelMachines {
		t.Errorf("minimum label population %d not scaled down for %d PCs", res.Minimums.Label, opts.PCs)
	}
	bad := 0
	for _, l := range res.Labels {
		switch {
		case l.Bad:
			bad++
			if len(l.Stops) == 0 || !(l.Paused || l.Cancelled) || l.Stages != 1 || l.Percent != 0 {
				t.Errorf("bad label %s (%s): %+v; want it paused or cancelled at its first stage", l.ID, l.Name, l)
			}
			for _, e := range l.Stops {
				if e.Percent != res.Policy.Ladder[0] {
					t.Errorf("bad label stopped at %g%%, want the first stage (%g%%)", e.Percent, res.Policy.Ladder[0])
				}
			}
		case l.Percent != 100 || l.CompletedDay < 0 || l.Paused || l.Cancelled || l.Stages != len(res.Policy.Ladder):
			t.Errorf("good label %s (%s) did not complete: %+v", l.ID, l.Name, l)
		}
	}
	if bad != 1 || len(res.Labels) != 4 {
		t.Errorf("%d labels, %d bad; want 4 and 1", len(res.Labels), bad)
	}
	if res.Releases == 0 || res.Reports == 0 || res.ReportsDropped != 0 {
		t.Errorf("releases %d, reports %d (%d dropped)", res.Releases, res.Reports, res.ReportsDropped)
	}
	if svg := res.SVG(); !strings.HasPrefix(string(svg), "<svg") || strings.Count(string(svg), "<svg") != 3 {
		t.Errorf("plot: %.200s", svg)
	}

	short := opts
	short.Days = 4
	again, err := rolloutsim.Run(t.Context(), short)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Timeline) == 0 || len(again.Timeline) >= len(res.Timeline) || len(again.Points) >= len(res.Points) {
		t.Fatalf("a %d-day run made %d decisions, the %d-day run %d", short.Days, len(again.Timeline), opts.Days, len(res.Timeline))
	}
	for i, e := range again.Timeline {
		if !reflect.DeepEqual(e, res.Timeline[i]) {
			t.Fatalf("decision %d differs between two runs with seed %d:\n%+v\n%+v", i, opts.Seed, res.Timeline[i], e)
		}
	}
	if !reflect.DeepEqual(again.Points, res.Points[:len(again.Points)]) {
		t.Errorf("the plotted points differ between two runs with seed %d", opts.Seed)
	}
}

// TestRolloutSimForgedReports (issue 14): the forged-report attack of `bench rollout-sim
// --forged-reports`. Reports with made-up tokens are all refused; the attacker's way round
// (offers under made-up ids, crash reports with their tokens) is taken by the edge but comes
// from one network, so the controller holds the good driver as uncorroborated instead of
// cancelling it, and the bad driver is still stopped at its first stage. The same attack
// against a policy without corroboration (MinFailureSources 1) stops the good driver: the
// attack is real, and the policy knob is what defeats it.
func TestRolloutSimForgedReports(t *testing.T) {
	run := func(minSources int) *rolloutsim.Result {
		p := rollout.DefaultPolicy
		p.MinFailureSources = minSources
		res, err := rolloutsim.Run(t.Context(), rolloutsim.Options{PCs: 2000, Days: 5, BadFailureRate: 0.25, Seed: 7,
			ForgedReports: 200, Policy: &p})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := run(rollout.DefaultPolicy.MinFailureSources)
	var text strings.Builder
	res.WriteText(&text, false)
	t.Logf("with the default policy:\n%s", text.String())
	a := res.Attack
	if a == nil {
		t.Fatal("no attack in the result")
	}
	if a.ForgedSent != 200 || a.ForgedRefused != 200 {
		t.Errorf("reports with made-up tokens: %d sent, %d refused; want 200 and 200", a.ForgedSent, a.ForgedRefused)
	}
	if a.Offers != 200 || a.ReportsSent != 200 || a.ReportsTaken+a.ReportsLimited != 200 || a.ReportsTaken == 0 {
		t.Errorf("made-up devices: %d offers, %d reports sent, %d taken, %d limited; want 200 offers and reports", a.Offers, a.ReportsSent, a.ReportsTaken, a.ReportsLimited)
	}
	if a.Stopped || a.HeldUncorroborated == 0 {
		t.Errorf("the good driver under attack: stopped %v, held as uncorroborated %d times; want held, not stopped", a.Stopped, a.HeldUncorroborated)
	}
	for _, l := range res.Labels {
		if l.Bad && (len(l.Stops) == 0 || l.Stages != 1) {
			t.Errorf("bad label %s: %+v; want it stopped at its first stage", l.Name, l)
		}
		if !l.Bad && (l.Paused || l.Cancelled || len(l.Stops) > 0) {
			t.Errorf("good label %s stopped: %+v", l.Name, l)
		}
	}
	if !strings.Contains(text.String(), "the good driver was not paused or cancelled") {
		t.Errorf("the summary does not say the good driver was not stopped")
	}

	if naive := run(1).Attack; !naive.Stopped {
		t.Errorf("without corroboration the attack did not stop the good driver: %+v (the attack is not a test of anything)", naive)
	}
}

// TestRolloutSimCohort (issue 20, scenario cohort): a driver that fails only on one PC model
// running one OS release is held on that cohort within its first stage (a targeted hold, not
// a pause or cancel of the label), and reaches 100% everywhere else; the good drivers too.
// The first stage is the policy's 1%: the even first ring (30 machines of each cluster of
// 120 or more) is what lets the cohort show in it.
func TestRolloutSimCohort(t *testing.T) {
	p := rollout.DefaultPolicy
	p.Ladder = []float64{1, 50, 100}
	res, err := rolloutsim.Run(t.Context(), rolloutsim.Options{PCs: 4000, Days: 10, BadFailureRate: 0.5, Seed: 3,
		Scenario: "cohort", Policy: &p})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	res.WriteText(&text, false)
	t.Logf("%s", text.String())
	for _, l := range res.Labels {
		if len(l.Stops) > 0 || l.Paused || l.Cancelled || l.Percent != 100 {
			t.Errorf("%s: %+v; want it at 100%%, never paused or cancelled", l.Name, l)
		}
		switch {
		case l.Bad && (len(l.Holds) != 1 || l.Holds[0].Percent != p.Ladder[0]):
			t.Errorf("the bad label's holds %+v; want one, at its first stage", l.Holds)
		case !l.Bad && len(l.Holds) != 0:
			t.Errorf("good label %s held a cohort: %+v", l.Name, l.Holds)
		}
	}
	if !strings.Contains(text.String(), "held a cohort on day") || !strings.Contains(text.String(), "scenario cohort: PASSED") || !res.OK {
		t.Errorf("the summary does not show the hold and the outcome: %s", res.Outcome)
	}
	for _, l := range res.Labels {
		if l.Bad && (len(l.Rings) == 0 || l.Rings[0].Percent != p.Ladder[0]) {
			t.Errorf("%s: no first ring at its first stage: %+v", l.Name, l.Rings)
		}
	}
	if _, err := rolloutsim.Run(t.Context(), rolloutsim.Options{PCs: 10, Days: 1, Scenario: "somewhere"}); err == nil {
		t.Error("an unknown scenario was taken")
	}
}

// TestRolloutSimEverywhere (scenario everywhere, named): the driver bad everywhere is stopped
// at stage 1 and the summary says so.
func TestRolloutSimEverywhere(t *testing.T) {
	res, err := rolloutsim.Run(t.Context(), rolloutsim.Options{PCs: 2000, Days: 16, BadFailureRate: 0.25, Seed: 7, Scenario: "everywhere"})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	res.WriteText(&text, false)
	if !res.OK || !strings.Contains(text.String(), "scenario everywhere: PASSED: the driver bad everywhere was stopped at stage 1") {
		t.Errorf("outcome %q\n%s", res.Outcome, text.String())
	}
}

// TestRolloutSimBackground (scenario background): a small cohort with kernel crashes
// unrelated to any driver, before and after the new ones, stops or holds no driver when the
// controller judges over the baseline (the default); with "baseline": "none" the same world
// holds a good driver's cohort — the false alarm is real, and the baseline is what prevents
// it.
func TestRolloutSimBackground(t *testing.T) {
	run := func(p *rollout.Policy) *rolloutsim.Result {
		res, err := rolloutsim.Run(t.Context(), rolloutsim.Options{PCs: 4000, Days: 16, Seed: 1, Scenario: "background", Policy: p})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := run(nil)
	var text strings.Builder
	res.WriteText(&text, false)
	t.Logf("%s", text.String())
	if !res.OK || res.BackgroundReports == 0 || !strings.Contains(text.String(), "scenario background: PASSED: no driver was paused, cancelled or held") {
		t.Errorf("outcome %q, %d background reports", res.Outcome, res.BackgroundReports)
	}
	done := 0
	for _, l := range res.Labels {
		if l.Bad {
			t.Errorf("%s is bad in scenario background", l.Name)
		}
		if l.CompletedDay >= 0 {
			done++
		}
	}
	if done < 3 {
		t.Errorf("%d of 4 good drivers reached 100%% in 16 days", done)
	}
	p := rollout.DefaultPolicy
	p.Baseline = rollout.BaselineNone
	if naive := run(&p); naive.OK {
		t.Errorf("without the baseline the background crashes raised no alarm: %s (the scenario tests nothing)", naive.Outcome)
	}
}

// TestRolloutSimThrottle (scenario throttle): with a count throttle of 400 new machines a day
// per label on 8,000 PCs, each label's daily new machines stay within 10% of it on the days
// the throttle paces it (at least 8 days in 10, the mean within 10%).
func TestRolloutSimThrottle(t *testing.T) {
	res, err := rolloutsim.Run(t.Context(), rolloutsim.Options{PCs: 8000, Days: 9, Seed: 1, Scenario: "throttle", ThrottlePerDay: 400})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	res.WriteText(&text, false)
	t.Logf("%s", text.String())
	if !res.OK || !strings.Contains(text.String(), "scenario throttle: PASSED") {
		t.Errorf("outcome %q", res.Outcome)
	}
	for _, l := range res.Labels {
		th := l.Throttle
		if th == nil || th.Limit != 400 || th.Days < 4 {
			t.Errorf("%s: throttle %+v", l.Name, th)
			continue
		}
		for d := th.FromDay; d < th.ToDay; d++ {
			if n := l.DailyNew[d]; n < 300 || n > 500 {
				t.Errorf("%s: %d new machines on day %d (limit 400)", l.Name, n, d)
			}
		}
	}
}
