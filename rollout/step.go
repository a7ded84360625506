package rollout

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/driveway/driveway/catalogs"
)

// Actions a step takes for a label in rollout.
const (
	Advance  = "advance"
	Hold     = "hold"
	PauseIt  = "pause"
	CancelIt = "cancel"
)

// Decision is what one step decided for one label, and why.
type Decision struct {
	Label  string `json:"label"`
	Action string `json:"action"`
	From   int    `json:"fromBasisPoints"` // the scheduled percent now
	To     int    `json:"toBasisPoints"`   // after the step (advance)
	Reason string `json:"reason"`
	By     string `json:"by,omitempty"` // who, for an operator's decision (Expedite)

	dist catalogs.Distribution // the label's distribution after the step
	file string                // the label file, relative to the tree
}

// Changed reports whether the decision changes the label's distribution.
func (d *Decision) Changed() bool { return d.Action != Hold }

// String is the one-line explanation: "3009 advance 5% -> 25%: success 99.80% over 812 machines".
func (d Decision) String() string {
	s := fmt.Sprintf("%s %s %s%%", d.Label, d.Action, catalogs.FormatBasisPoints(d.From))
	if d.Action == Advance || d.Action == Expedited {
		s += " -> " + catalogs.FormatBasisPoints(d.To) + "%"
	}
	if d.By != "" {
		s += " by " + d.By
	}
	return s + ": " + d.Reason
}

// Step decides, for every Windows Update label whose rollout is under way at now (it has
// stages, is not finished and not cancelled), whether to advance, hold, pause or cancel it,
// from its measures and the policy of its class. It is a pure function of its inputs: running
// it again after applying its decisions, with the same measures and time, holds everything.
func Step(tree *catalogs.Tree, measures *Measures, policy *Policy, now time.Time) []Decision {
	var out []Decision
	for _, l := range tree.Labels() {
		if d, ok := stepLabel(l, measures, policy.For(labelClass(l)), now, false); ok {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return catalogs.CompareIDs(out[i].Label, out[j].Label) < 0 })
	return out
}

// stepLabel is Step's decision for one label under its class's policy p, if it is in
// rollout; unscheduled judges it as if the publisher had no stages still to come (Expedite).
func stepLabel(l *catalogs.Label, measures *Measures, p *Policy, now time.Time, unscheduled bool) (Decision, bool) {
	dist := l.Distribution
	r := dist.Rollout
	if l.Destination != "windowsUpdate" || r == nil || len(r.Stages) == 0 {
		return Decision{}, false
	}
	if c := dist.Cancelled; c != nil && !now.Before(c.At) {
		return Decision{}, false
	}
	cur := scheduled(r, now)
	last := r.Stages[len(r.Stages)-1]
	if unscheduled {
		for _, st := range r.Stages {
			if !now.Before(st.At) {
				last = st
			}
		}
	}
	if cur >= 10000 && !r.Paused && !now.Before(last.At) {
		return Decision{}, false // finished
	}
	d := Decision{Label: l.ID, From: cur, To: cur, file: l.File}
	var lm Measure
	var cohorts []Cohort
	if m, ok := measures.Label(l.ID); ok {
		lm, cohorts = m.Measure, m.Cohorts
	}
	z := 0.0
	if p.Confidence > 0.5 {
		z = zFor(p.Confidence)
	}
	// breach: a bound the label or a cohort is shown to break (stop gates); suspect: one
	// its raw percentages break, of a label or cohort with enough machines.
	judge := func(t *Thresholds, f func(t *Thresholds, m *Measure, min int) string) string {
		if why := f(t, &lm, p.MinLabelMachines); why != "" {
			return fmt.Sprintf("%s over %d machines", why, lm.Machines)
		}
		for i := range cohorts {
			if why := f(t, &cohorts[i].Measure, p.MinCohortMachines); why != "" {
				return fmt.Sprintf("%s over %d machines of cohort %s/%s", why, cohorts[i].Machines, cohorts[i].Release, cohorts[i].CHID)
			}
		}
		return ""
	}
	breach := func(t *Thresholds) string {
		return judge(t, func(t *Thresholds, m *Measure, min int) string { return t.shown(m, z, min, p.MinFailureSources) })
	}
	suspect := func(t *Thresholds) string { return judge(t, (*Thresholds).breaks) }
	next := cloneDistribution(dist)
	uncorroborated := lm.FailedUnsourced == 0 && lm.FailureSources < p.MinFailureSources
	switch why := breach(p.Cancel); {
	case uncorroborated && (why != "" || breach(p.Pause) != ""):
		if why == "" {
			why = breach(p.Pause)
		}
		d.Action, d.Reason = Hold, fmt.Sprintf("%s, but the failures come from %d network(s), %d needed before a pause or cancel (policy minFailureSources): held as uncorroborated",
			why, lm.FailureSources, p.MinFailureSources)
	case why != "":
		d.Action, d.Reason = CancelIt, why
		next.Cancelled = &catalogs.Cancelled{At: now, Rollback: p.Cancel.Rollback, Reason: "rollout controller: " + why}
	default:
		if why := breach(p.Pause); why != "" {
			if r.Paused {
				d.Action, d.Reason = Hold, "paused; still "+why
			} else {
				d.Action, d.Reason = PauseIt, why
				next.Rollout.Paused = true
			}
			break
		}
		if why := suspect(p.Pause); why != "" && z > 0 && !r.Paused {
			d.Action, d.Reason = Hold, fmt.Sprintf("not enough data to pause: %s, but not shown at %s confidence (the interval reaches below the bound)",
				why, p.Pause.confidence(z))
			break
		}
		switch {
		case r.Paused:
			d.Action, d.Reason = Hold, "paused; resume it by hand (distribution.rollout.paused)"
		case now.Before(last.At):
			d.Action, d.Reason = Hold, fmt.Sprintf("following the publisher's schedule: %s%% from %s",
				catalogs.FormatBasisPoints(last.BasisPoints), last.At.UTC().Format(time.RFC3339))
		case lm.Machines < p.MinLabelMachines:
			d.Action, d.Reason = Hold, fmt.Sprintf("not enough data: %d machines, %d needed", lm.Machines, p.MinLabelMachines)
		case now.Sub(last.At) < p.MinDwell.Duration:
			d.Action, d.Reason = Hold, fmt.Sprintf("at %s%% since %s; dwell until %s", catalogs.FormatBasisPoints(cur),
				last.At.UTC().Format(time.RFC3339), last.At.Add(p.MinDwell.Duration).UTC().Format(time.RFC3339))
		default:
			if why := p.Advance.breaks(&lm, p.MinLabelMachines); why != "" {
				d.Action, d.Reason = Hold, "not healthy enough to advance: "+why
				break
			}
			to := nextStage(p.Ladder, cur)
			d.Action, d.To = Advance, to
			d.Reason = fmt.Sprintf("success %.2f%%, kernel crashes %.2f%%, PnP errors %.2f%% over %d machines",
				lm.SuccessPercent, lm.KernelCrashRate, lm.PnPErrorRate, lm.Machines)
			next.Rollout.Stages = append(next.Rollout.Stages, catalogs.Stage{At: now, BasisPoints: to})
		}
	}
	d.dist = next
	return d, true
}

// scheduled is a rollout's percent at now ignoring a pause (basis points).
func scheduled(r *catalogs.Rollout, now time.Time) int {
	bp := 0
	for _, s := range r.Stages {
		if now.Before(s.At) {
			break
		}
		bp = s.BasisPoints
	}
	return bp
}

func nextStage(ladder []float64, cur int) int {
	for _, p := range ladder {
		if bp := int(p*100 + 0.5); bp > cur {
			return bp
		}
	}
	return 10000
}

// labelClass is the INF class of the label's first live row (the policy's class key).
func labelClass(l *catalogs.Label) string {
	for _, r := range l.Rows {
		if inf := l.Submission.INF(r.Bundle, r.INF); inf != nil {
			return inf.Class
		}
	}
	return ""
}

func cloneDistribution(d catalogs.Distribution) catalogs.Distribution {
	out := d
	if d.Rollout != nil {
		r := *d.Rollout
		r.Stages = append([]catalogs.Stage(nil), d.Rollout.Stages...)
		out.Rollout = &r
	}
	return out
}

// Apply writes the changed decisions into the label files of the tree at dir (each file
// rewritten atomically, only its "distribution" member changed) and returns the ids of the
// labels it changed, for a control-only build.
func Apply(dir string, decisions []Decision) ([]string, error) {
	var changed []string
	for _, d := range decisions {
		if !d.Changed() {
			continue
		}
		path := filepath.Join(dir, filepath.FromSlash(d.file))
		b, err := os.ReadFile(path)
		if err != nil {
			return changed, fmt.Errorf("rollout: %w", err)
		}
		out, err := catalogs.SetDistribution(b, d.dist)
		if err != nil {
			return changed, fmt.Errorf("rollout: %s: %w", d.file, err)
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, out, 0o644); err != nil {
			return changed, fmt.Errorf("rollout: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return changed, fmt.Errorf("rollout: %w", err)
		}
		changed = append(changed, d.Label)
	}
	return changed, nil
}
