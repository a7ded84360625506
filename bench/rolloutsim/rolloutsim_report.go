package rolloutsim

// The rollout simulation's output: the timeline as text and the plot.

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/driveway/driveway/bench/plot"
	ro "github.com/driveway/driveway/rollout"
)

// label returns the simulation's label with that id.
func (r *Result) label(id string) *Label {
	for i := range r.Labels {
		if r.Labels[i].ID == id {
			return &r.Labels[i]
		}
	}
	return nil
}

func (l *Label) title() string {
	if l.Bad {
		return l.Name + " (bad)"
	}
	return l.Name
}

// simHoldKind is what a hold's reason says without its numbers ("not enough data: ", "at ").
func simHoldKind(reason string) string {
	if i := strings.IndexAny(reason, "0123456789"); i >= 0 {
		return reason[:i]
	}
	return reason
}

// Printed reports whether the text timeline shows the decision: every advance, pause and
// cancel, and a hold when its reason differs in kind from the label's previous decision.
func (r *Result) printed() []bool {
	out := make([]bool, len(r.Timeline))
	last := map[string]string{}
	for i, e := range r.Timeline {
		kind := string(e.Action)
		if e.Action == ro.Hold {
			kind += ": " + simHoldKind(e.Reason)
		}
		out[i] = e.Action != ro.Hold || last[e.Label] != kind
		last[e.Label] = kind
	}
	return out
}

// WriteText writes the simulation's setup, its timeline (all decisions with all, else those
// that change something and holds whose reason changes) and a summary.
func (r *Result) WriteText(w io.Writer, all bool) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "rollout-sim: %s PCs, %d days from %s in steps of %s, seed %d\n", simGroup(r.PCs), r.Days,
		r.Start.Format("2006-01-02"), r.Step, r.Seed)
	fmt.Fprintf(&b, "labels in rollout (every PC has a wired and a wireless chip, with the baseline driver installed):\n")
	for _, l := range r.Labels {
		bad := ""
		if l.Bad {
			bad = fmt.Sprintf("  bad: %g%% of its installs fail", 100*r.BadFailureRate)
			if r.Scenario == "cohort" {
				bad = fmt.Sprintf("  bad on one cohort: %g%% of its installs on one PC model running build %d fail, none elsewhere", 100*r.BadFailureRate, simBuilds[0].build)
			}
		}
		if r.Scenario == "background" && len(bad) == 0 && l.ID == r.Labels[0].ID {
			bad = "  (scenario background: every driver good)"
		}
		fmt.Fprintf(&b, "  %s  %-17s %7s PCs%s\n", l.ID, l.Name, simGroup(l.Population), bad)
	}
	p := &r.Policy
	fmt.Fprintf(&b, "policy: ladder %s%%, dwell %s, window %s; advance %s; pause %s; cancel %s\n",
		strings.Trim(fmt.Sprint(p.Ladder), "[]"), simDuration(p.MinDwell.Duration), simDuration(p.Window.Duration), simThresholds(p.Advance), simThresholds(p.Pause), simThresholds(p.Cancel))
	if p.Throttle != nil {
		fmt.Fprintf(&b, "throttle: at most %d new machines a day per label\n", p.Throttle.MaxNewMachinesPerDay)
	}
	if p.FirstRing != nil {
		fmt.Fprintf(&b, "first ring: at least %d machines of each targeting cluster in the first stage (clusters of %d machines or more, up to %g%%)\n",
			p.FirstRing.MinMachines, int(math.Ceil(float64(p.FirstRing.MinMachines)*100/p.FirstRing.MaxPercent)), p.FirstRing.MaxPercent)
	}
	if r.BackgroundCohort != "" {
		fmt.Fprintf(&b, "background: cohort %s has kernel crashes unrelated to any driver on %g%% of its PCs a day; baseline: %s\n",
			r.BackgroundCohort, 100*r.BackgroundCrashRate, p.Baseline)
	}
	m := r.Minimums
	fmt.Fprintf(&b, "minimum populations scaled by %.3g to the simulation (the smallest label has about %d machines at the first stage):\n"+
		"  %d machines per label (policy: %d), %d per cohort (policy: %d)\n\n", m.Factor, m.FirstStageMachines, m.Label, m.PolicyLabel, m.Cohort, m.PolicyCohort)

	fmt.Fprintf(&b, "%6s  %-17s  %-22s %8s  %8s  %8s  %-7s  %s\n", "day", "time", "label", "percent", "machines", "success", "action", "reason")
	show := r.printed()
	for i, e := range r.Timeline {
		if !all && !show[i] {
			continue
		}
		name := e.Name
		if l := r.label(e.Label); l != nil {
			name = l.title()
		}
		success := "-"
		if e.Machines > 0 {
			success = fmt.Sprintf("%.2f%%", e.Success)
		}
		pct := fmt.Sprintf("%g%%", e.Percent)
		if e.Action == ro.Advance {
			pct = fmt.Sprintf("%g→%g%%", e.Percent, e.To)
		}
		fmt.Fprintf(&b, "%6.2f  %-17s  %-22s %8s  %8d  %8s  %-7s  %s\n", e.Day, e.Time.Format("2006-01-02 15:04Z"), name, pct, e.Machines, success, e.Action, e.Reason)
	}
	fmt.Fprintf(&b, "\nscenario %s: %s\n", r.Scenario, r.Outcome)
	b.WriteString("summary:\n")
	for _, l := range r.Labels {
		fmt.Fprintf(&b, "  %s: %s\n", l.title(), l.outcome(len(r.Policy.Ladder)))
	}
	fmt.Fprintf(&b, "  offer requests: %s, ", simGroup64(r.OfferRequests))
	if r.OfferFailures == 0 {
		b.WriteString("all answered 200\n")
	} else {
		fmt.Fprintf(&b, "%s FAILED\n", simGroup64(r.OfferFailures))
	}
	fmt.Fprintf(&b, "  installs: %s (%s rollbacks); install reports: %s in %s requests, %s dropped; control-only releases: %d\n",
		simGroup64(r.Offers), simGroup64(r.Rollbacks), simGroup64(r.Reports), simGroup64(r.ReportRequests), simGroup64(r.ReportsDropped), r.Releases)
	if a := r.Attack; a != nil {
		verdict := "not paused or cancelled (held at its stage while the forged failures are in the window)"
		if a.Stopped {
			verdict = "STOPPED (paused, cancelled or a cohort held) by the forged reports"
		}
		fmt.Fprintf(&b, "  forged-report attack on day %.2f against %s (%s) from one network, %s, with %s made-up devices:\n"+
			"    reports with made-up tokens: %s sent, %s refused (403)\n"+
			"    offers got under made-up ids in the first stage's buckets: %s; their crash reports: %s sent, %s taken, %s refused by the per-network limit (429)\n"+
			"    the controller held the label as uncorroborated %d times; the good driver was %s\n",
			a.Day, a.Name, a.Label, a.Network, simGroup(a.Devices), simGroup(a.ForgedSent), simGroup(a.ForgedRefused),
			simGroup(a.Offers), simGroup(a.ReportsSent), simGroup(a.ReportsTaken), simGroup(a.ReportsLimited), a.HeldUncorroborated, verdict)
	}
	fmt.Fprintf(&b, "  wall time: %s\n", r.Elapsed)
	_, err := w.Write(b.Bytes())
	return err
}

// outcome says how a label ended, in a phrase.
func (l *Label) outcome(stages int) string {
	var s string
	switch {
	case len(l.Stops) > 0:
		for i, e := range l.Stops {
			verb := "paused"
			if e.Action == ro.Cancel {
				verb = "cancelled"
			}
			if i > 0 {
				s += ", then "
			}
			s += fmt.Sprintf("%s on day %.2f at %g%% (stage %d of %d) with %d machines reporting, failure rate %.2f%% (%s)",
				verb, e.Day, e.Percent, l.Stages, stages, e.Machines, e.Failure, e.Reason)
		}
	case l.CompletedDay >= 0:
		s = fmt.Sprintf("reached 100%% on day %.2f", l.CompletedDay)
	case l.Stages > stages: // a throttle's stages
		s = fmt.Sprintf("at %g%% (%d stages, throttled) at the end", l.Percent, l.Stages)
	default:
		s = fmt.Sprintf("at %g%% (stage %d of %d) at the end", l.Percent, l.Stages, stages)
	}
	for _, h := range l.Holds {
		s += fmt.Sprintf("; held a cohort on day %.2f at %g%% (%s)", h.Day, h.Percent, h.Reason)
	}
	for _, h := range l.Lifts {
		s += fmt.Sprintf("; lifted a hold on day %.2f (%s)", h.Day, h.Reason)
	}
	if len(l.Rings) > 0 {
		s += fmt.Sprintf("; first ring set on day %.2f (%s)", l.Rings[0].Day, l.Rings[0].Reason)
	}
	if t := l.Throttle; t != nil && t.Days > 0 {
		s += fmt.Sprintf("; throttled days %d–%d: new machines a day %d–%d, mean %.0f, within 10%% of %d on %d of %d days", t.FromDay, t.ToDay-1, t.Min, t.Max, t.Mean, t.Limit, t.Within, t.Days)
	}
	return s + fmt.Sprintf("; at the end %g%% offered, %s machines reporting, success %.2f%%", l.Percent, simGroup(l.Machines), l.Success)
}

func simThresholds(t *ro.Thresholds) string {
	if t == nil {
		return "-"
	}
	var parts []string
	if t.MinSuccessPercent > 0 {
		parts = append(parts, fmt.Sprintf("success ≥ %g%%", t.MinSuccessPercent))
	}
	if t.MaxKernelCrashRate > 0 {
		parts = append(parts, fmt.Sprintf("kernel crashes ≤ %g%%", t.MaxKernelCrashRate))
	}
	if t.MaxPnPErrorRate > 0 {
		parts = append(parts, fmt.Sprintf("PnP errors ≤ %g%%", t.MaxPnPErrorRate))
	}
	if t.Rollback {
		parts = append(parts, "with rollback")
	}
	return strings.Join(parts, ", ")
}

func simGroup(n int) string { return simGroup64(int64(n)) }

// simGroup64 prints 1234567 as 1,234,567.
func simGroup64(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + simGroup64(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// SVG plots each label's offered percent and failure rate over the simulated days, as two
// charts one above the other in one SVG.
func (r *Result) SVG() []byte {
	pct := plot.Chart{Title: "Gradual rollouts: percent of PCs offered the new driver", XLabel: "simulated day", YLabel: "percent offered",
		Width: 760, Height: 360}
	fail := plot.Chart{Title: "Failure rate of machines reporting on the new driver", XLabel: "simulated day", YLabel: "% of machines with a failure",
		Width: 760, Height: 360}
	for _, l := range r.Labels {
		ps := plot.Series{Name: l.title()}
		fs := plot.Series{Name: l.title()}
		for _, p := range r.Points {
			if p.Label != l.ID {
				continue
			}
			ps.X, ps.Y = append(ps.X, p.Day), append(ps.Y, p.Percent)
			if p.Machines > 0 {
				fs.X, fs.Y = append(fs.X, p.Day), append(fs.Y, p.Failure)
			}
		}
		pct.Series, fail.Series = append(pct.Series, ps), append(fail.Series, fs)
	}
	// The policy's bounds on success, as failure rates.
	end := float64(r.Days)
	for _, b := range []struct {
		name string
		t    *ro.Thresholds
	}{{"pause", r.Policy.Pause}, {"cancel", r.Policy.Cancel}} {
		if b.t != nil && b.t.MinSuccessPercent > 0 {
			v := 100 - b.t.MinSuccessPercent
			fail.Series = append(fail.Series, plot.Series{Name: fmt.Sprintf("%s above %g%%", b.name, v), X: []float64{0, end}, Y: []float64{v, v}})
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="760" height="740" viewBox="0 0 760 740">`+"\n")
	fmt.Fprintf(&b, "<!-- driveway bench rollout-sim: %d PCs, %d days, seed %d, bad failure rate %g -->\n", r.PCs, r.Days, r.Seed, r.BadFailureRate)
	b.Write(bytes.Replace(pct.SVG(), []byte("<svg "), []byte(`<svg x="0" y="0" `), 1))
	b.Write(bytes.Replace(fail.SVG(), []byte("<svg "), []byte(`<svg x="0" y="370" `), 1))
	b.WriteString("</svg>\n")
	return b.Bytes()
}
