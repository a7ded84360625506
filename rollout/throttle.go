package rollout

// Count throttles.
//
// A policy's "throttle": {"maxNewMachinesPerDay": N} paces a label by machines instead of
// the ladder: once the label has enough data (minLabelMachines) and meets the advance
// bounds, every step sets its percent to what keeps N new machines a day coming, with no
// dwell and no ladder (the stop gates judge it as always). Edges keep no count: the
// controller turns the count into percents from a census of the label's machines, and
// corrects it at every step from the reports.
//
// The model. PCs scan about once a day, so a machine whose bucket the percent passes at t
// reports within a day of t. At a step at now, with M machines reporting on the label:
//
//   - the label's population is estimated from the reports as M over the average percent
//     of the last 24 hours (every machine in the bucket a day ago has reported, and of those
//     let in since, the share that has scanned grows linearly: the expectation is exactly
//     that average); before any report it is the census's count (StepInputs.Census), and
//     with both the census counts as the reports of 100 machines would: (M + 100) / (avg +
//     100 / census). The reports are the correction: a census that is off by half is
//     outweighed once a few hundred machines report, and a handful of early reports does
//     not throw a good census away;
//   - machines let in report within a day, so the machines that start reporting over the
//     next day are about those let in over the last 24 hours. The step sets the percent to
//     the percent of 24 hours ago plus N / pop: the machines let in over the last day are N,
//     whatever the steps' spacing (with steps every 6 hours, it lets in a day's worth once
//     a day and holds in between). It never lowers the percent, works in whole basis points,
//     and stops at 100%.
//
// Held cohorts' machines leave M and the population alike (they are no longer offered).

import (
	"fmt"
	"time"
)

// censusWeight is how many machines' reports a census counts for in the estimate.
const censusWeight = 100

// throttleTo is the percent (basis points) a throttled label goes to at now, with the
// reason, or ok false (with why) when it stays.
func throttleTo(t *Throttle, id string, lm *Measure, r stagesView, census *Census, now time.Time) (to int, why string, ok bool) {
	cur := r.at(now)
	avg := r.averageLastDay(now)
	var pop float64
	var from string
	switch lc, ok := census.Label(id); {
	case lm.Machines > 0 && avg > 0 && ok && lc.Machines > 0:
		// The census as a prior worth censusWeight machines: a handful of reports does not
		// throw it away, a few hundred outweigh it.
		pop = (float64(lm.Machines) + censusWeight) / (avg/10000 + censusWeight/float64(lc.Machines))
		from = fmt.Sprintf("%d machines reporting at %.2f%% on average over the last day, and the census's %d", lm.Machines, avg/100, lc.Machines)
	case lm.Machines > 0 && avg > 0:
		pop, from = float64(lm.Machines)*10000/avg, fmt.Sprintf("%d machines reporting at %.2f%% on average over the last day", lm.Machines, avg/100)
	case ok && lc.Machines > 0:
		pop, from = float64(lc.Machines), "the census"
	default:
		return cur, fmt.Sprintf("throttle of %d new machines a day: no census of label %s and no reports yet, so no estimate of its machines (rollout step --census FILE)", t.MaxNewMachinesPerDay, id), false
	}
	n := float64(t.MaxNewMachinesPerDay)
	dayAgo := r.at(now.Add(-24 * time.Hour))
	bp := min(dayAgo+int(10000*n/pop), 10000)
	if bp <= cur {
		return cur, fmt.Sprintf("throttle of %d new machines a day: %.0f machines estimated (%s); %.0f let in over the last day; at %.2f%% until a day after the last increase",
			t.MaxNewMachinesPerDay, pop, from, pop*float64(cur-dayAgo)/10000, float64(cur)/100), false
	}
	return bp, fmt.Sprintf("throttle of %d new machines a day: %.0f machines estimated (%s); %.2f%% a day ago",
		t.MaxNewMachinesPerDay, pop, from, float64(dayAgo)/100), true
}

// stagesView reads a rollout's stages.
type stagesView []stageAt

type stageAt struct {
	at time.Time
	bp int
}

// at is the percent at t (basis points).
func (v stagesView) at(t time.Time) int {
	bp := 0
	for _, s := range v {
		if t.Before(s.at) {
			break
		}
		bp = s.bp
	}
	return bp
}

// lastAt is the time of the last stage at or before t (the zero time before the first).
func (v stagesView) lastAt(t time.Time) time.Time {
	var last time.Time
	for _, s := range v {
		if t.Before(s.at) {
			break
		}
		last = s.at
	}
	return last
}

// averageLastDay is the average percent (basis points) over [t − 24h, t].
func (v stagesView) averageLastDay(t time.Time) float64 {
	from := t.Add(-24 * time.Hour)
	var sum float64
	at, bp := from, v.at(from)
	for _, s := range v {
		if !s.at.After(from) || s.at.After(t) {
			continue
		}
		sum += float64(bp) * s.at.Sub(at).Hours()
		at, bp = s.at, s.bp
	}
	sum += float64(bp) * t.Sub(at).Hours()
	return sum / 24
}
