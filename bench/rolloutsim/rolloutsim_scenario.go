package rolloutsim

// The rollout simulation's scenarios (Options.Scenario): their policy, the census the
// controller steps with, and each scenario's verdict.

import (
	"fmt"
	"math"
	"strings"

	"github.com/driveway/driveway/catalogs/ostable"
	ro "github.com/driveway/driveway/rollout"
)

// simScenarioPolicy is the policy a scenario runs with: scenario cohort gets an even first
// ring and scenario throttle a count throttle, when the policy has none (its classes too).
func simScenarioPolicy(p *ro.Policy, opts Options) *ro.Policy {
	set := func(q *ro.Policy) *ro.Policy {
		out := *q
		switch opts.Scenario {
		case "cohort":
			if out.FirstRing == nil {
				out.FirstRing = &ro.FirstRing{MinMachines: 30, MaxPercent: 25}
			}
		case "throttle":
			if out.Throttle == nil {
				out.Throttle = &ro.Throttle{MaxNewMachinesPerDay: opts.ThrottlePerDay}
			}
		}
		return &out
	}
	out := set(p)
	if len(p.Classes) > 0 {
		out.Classes = map[string]*ro.Policy{}
		for name, c := range p.Classes {
			out.Classes[name] = set(c)
		}
	}
	return out
}

// simBuildRelease is the OS release code of a build ("GE" for 26100).
func simBuildRelease(build int) string {
	code := "unknown"
	for _, r := range ostable.Default().Releases() {
		if r.Build <= build {
			code = r.Code
		}
	}
	return code
}

// simCensus is the census an edge's request sample would give of the simulated fleet: per
// new label, the PCs with its chip, by OS release and model.
func simCensus(pcs []*simPC, chips []*simChip) *ro.Census {
	c := &ro.Census{Generated: Start}
	for _, chip := range chips {
		lc := ro.LabelCensus{Label: chip.newLabel}
		idx := map[[2]string]int{}
		for _, pc := range pcs {
			for k := range pc.devices {
				if pc.devices[k].chip != chip {
					continue
				}
				lc.Machines++
				key := [2]string{simBuildRelease(pc.build), pc.chid}
				i, ok := idx[key]
				if !ok {
					i = len(lc.Clusters)
					idx[key] = i
					lc.Clusters = append(lc.Clusters, ro.ClusterCensus{Release: key[0], CHID: key[1]})
				}
				lc.Clusters[i].Machines++
			}
		}
		c.Labels = append(c.Labels, lc)
	}
	return c
}

// inbox puts the device on an older in-box driver, not in the catalog (scenario background):
// its first scan is offered the baseline driver, whose reports then come with tokens.
func (d *simDevice) inbox() {
	d.label, d.date, d.version = "", "2024-01-15", "1.0.0.0"
}

// simThrottleStats is how label l's daily new machines kept to throttle t: over the whole
// days from the day after its first throttled advance to the day before it reached 100%
// (or the end).
func simThrottleStats(l *Label, timeline []Event, t *ro.Throttle) *Throttle {
	if t == nil {
		return nil
	}
	st := &Throttle{Limit: t.MaxNewMachinesPerDay, FromDay: -1, Min: math.MaxInt}
	for _, e := range timeline {
		if e.Label == l.ID && e.Action == ro.Advance && strings.Contains(e.Reason, "throttle of") {
			st.FromDay = int(math.Floor(e.Day)) + 1
			break
		}
	}
	if st.FromDay < 0 {
		st.Min = 0
		return st
	}
	st.ToDay = len(l.DailyNew)
	if l.CompletedDay >= 0 {
		st.ToDay = min(st.ToDay, int(math.Floor(l.CompletedDay)))
	}
	sum := 0
	for d := st.FromDay; d < st.ToDay; d++ {
		n := l.DailyNew[d]
		st.Days++
		sum += n
		st.Min, st.Max = min(st.Min, n), max(st.Max, n)
		if math.Abs(float64(n-st.Limit)) <= 0.1*float64(st.Limit) {
			st.Within++
		}
	}
	if st.Days == 0 {
		st.Min = 0
		return st
	}
	st.Mean = float64(sum) / float64(st.Days)
	return st
}

// simOutcome is a scenario's verdict (see Options.Scenario).
func simOutcome(r *Result) (string, bool) {
	var bad []string
	ok := true
	fail := func(format string, args ...any) {
		ok = false
		bad = append(bad, fmt.Sprintf(format, args...))
	}
	for i := range r.Labels {
		l := &r.Labels[i]
		stopped := len(l.Stops) > 0 || l.Paused || l.Cancelled
		switch {
		case r.Scenario == "everywhere" && l.Bad:
			if !stopped || l.Stages != 1 {
				fail("the bad driver %s was not stopped at its first stage (stages %d, stops %d)", l.Name, l.Stages, len(l.Stops))
			}
		case r.Scenario == "cohort" && l.Bad:
			switch {
			case stopped:
				fail("the bad driver %s was paused or cancelled as a whole", l.Name)
			case len(l.Holds) == 0 || l.Holds[0].Percent != r.Policy.Ladder[0]:
				fail("the bad driver %s had no cohort held within its first stage (holds: %d)", l.Name, len(l.Holds))
			case l.CompletedDay < 0:
				fail("the bad driver %s did not reach 100%% elsewhere", l.Name)
			}
		default:
			if stopped || len(l.Holds) > 0 {
				fail("the good driver %s was stopped or held (stops %d, holds %d)", l.Name, len(l.Stops), len(l.Holds))
			}
		}
		if t := l.Throttle; t != nil {
			if t.Days == 0 {
				fail("the throttle never paced %s", l.Name)
			} else if math.Abs(t.Mean-float64(t.Limit)) > 0.1*float64(t.Limit) || t.Within*10 < t.Days*8 {
				fail("%s's daily new machines were within 10%% of %d on %d of %d days (mean %.0f)", l.Name, t.Limit, t.Within, t.Days, t.Mean)
			}
		}
	}
	var what string
	switch r.Scenario {
	case "everywhere":
		done := 0
		for _, l := range r.Labels {
			if !l.Bad && l.CompletedDay >= 0 {
				done++
			}
		}
		what = fmt.Sprintf("the driver bad everywhere was stopped at stage 1; no good driver was stopped or held, %d of %d reached 100%%", done, len(r.Labels)-1)
	case "cohort":
		what = "the driver bad on one cohort had that cohort held within its first stage and reached 100% elsewhere; no good driver was held"
	case "background":
		done := 0
		for _, l := range r.Labels {
			if l.CompletedDay >= 0 {
				done++
			}
		}
		what = fmt.Sprintf("no driver was paused, cancelled or held by the background crashes of cohort %s (%d reports); %d of %d reached 100%%", r.BackgroundCohort, r.BackgroundReports, done, len(r.Labels))
	case "throttle":
		var parts []string
		for _, l := range r.Labels {
			if t := l.Throttle; t != nil {
				parts = append(parts, fmt.Sprintf("%s %d of %d days (mean %.0f)", l.Name, t.Within, t.Days, t.Mean))
			}
		}
		limit := 0
		if len(r.Labels) > 0 && r.Labels[0].Throttle != nil {
			limit = r.Labels[0].Throttle.Limit
		}
		what = fmt.Sprintf("daily new machines within 10%% of the limit of %d: %s", limit, strings.Join(parts, ", "))
	}
	if ok {
		return "PASSED: " + what, true
	}
	return "FAILED: " + strings.Join(bad, "; ") + " (want: " + what + ")", false
}
