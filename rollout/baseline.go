package rollout

// The baseline: the driver a rollout replaces.
//
// Machines crash, and PnP devices fail, for reasons that have nothing to do with a new
// driver: a model with a buggy BIOS, an OS release with a known bug. Such background
// failures are there before the new driver and after it, and a rollout that reaches that
// cohort sees them in its reports. Gates on absolute rates would hold or pause a good driver
// on them (a false alarm), and "not healthy enough to advance" would keep it from 100%.
//
// So the controller judges a label against its baseline (policy "baseline": "previous", the
// default): the driver the rollout replaces, that is another Windows Update label of the same
// hardware ID with an older driver, fully live at the step (lift.go's fullyLive), that has
// measures (its machines report on it as well). Every bound — advance, pause and cancel, for
// the label and for each cohort — is moved by the rate the baseline is shown to have on the
// same machines (the label's, or the same cohort's: OS release × model CHID): the lower end
// of the baseline's Wilson interval at the pause confidence for the pause and cancel bounds
// (its raw rate with confidence 0.5), so that a baseline of few machines, whose rate the
// data do not show, cannot mask a regression; the upper end for the advance bounds and for
// the raw check that holds a rollout as "not enough data to pause", so that a driver as good
// as the one it replaces advances, whatever one unlucky crash does to the raw rates of a few
// hundred machines (the stop gates still catch a real regression). A driver that fails more than the one it replaces, by more than the
// policy's margin, is still held, paused or cancelled; one that fails as much does not.
// The baseline's machines have run it for the whole window and the new driver's for less,
// so the comparison leans towards tolerance of background failures; a regression of the new
// driver shows as its own rate over the baseline's. "baseline": "none" judges absolute rates.

import (
	"fmt"

	"github.com/driveway/driveway/catalogs"
)

// Baseline values of a policy.
const (
	BaselinePrevious = "previous"
	BaselineNone     = "none"
)

// baseline is the measure of the driver label l's rollout replaces, if the policy compares
// against one and it has measures.
func (st *stepper) baseline(l *catalogs.Label, measures *Measures, p *Policy) (*LabelMeasure, string) {
	if p.Baseline == BaselineNone || st.tree == nil {
		return nil, ""
	}
	var best *catalogs.Label
	for _, b := range st.tree.Labels() {
		if b.ID == l.ID || b.Destination != "windowsUpdate" || !fullyLive(b, st.now) || !sharesHWID(b, l) || !newerDriver(l, b) {
			continue
		}
		if _, ok := measures.Label(b.ID); !ok {
			continue
		}
		if best == nil || newerDriver(b, best) {
			best = b
		}
	}
	if best == nil {
		return nil, ""
	}
	m, _ := measures.Label(best.ID)
	return m, best.ID
}

// cohortOf is the baseline's measure of the same cohort as c.
func (b *LabelMeasure) cohortOf(c *Cohort) *Measure {
	if b == nil {
		return nil
	}
	for i := range b.Cohorts {
		if b.Cohorts[i].Release == c.Release && b.Cohorts[i].CHID == c.CHID {
			return &b.Cohorts[i].Measure
		}
	}
	return nil
}

// rates is a baseline's shown rates, in percent of machines.
type rates struct{ failed, kernel, pnp float64 }

// shownRates is what baseline measure b shows at z: the lower (or upper) ends of its
// rates' Wilson intervals; raw rates at z 0.
func shownRates(b *Measure, z float64, upper bool) rates {
	if b == nil || b.Machines == 0 {
		return rates{}
	}
	f := func(k int) float64 {
		if z == 0 {
			return 100 * float64(k) / float64(b.Machines)
		}
		lo, hi := wilson(k, b.Machines, z)
		if upper {
			return 100 * hi
		}
		return 100 * lo
	}
	return rates{f(b.Failed), f(b.KernelCrash), f(b.PnPError)}
}

// mixed is the baseline's rates for a label whose machines fall in cohorts cs: each
// cohort's baseline rates (the baseline label's where it has no such cohort) weighted by the
// label's machines in it, so that a label whose sample happens to hold a cohort that fails
// for reasons of its own is compared with what that mix of machines does on the baseline.
func (b *LabelMeasure) mixed(cs []*Cohort, z float64, upper bool) *rates {
	if b == nil {
		return nil
	}
	var sum rates
	n := 0
	for _, c := range cs {
		r := shownRates(b.cohortOf(c), z, upper)
		if b.cohortOf(c) == nil {
			r = shownRates(&b.Measure, z, upper)
		}
		w := float64(c.Machines)
		sum.failed, sum.kernel, sum.pnp = sum.failed+w*r.failed, sum.kernel+w*r.kernel, sum.pnp+w*r.pnp
		n += c.Machines
	}
	if n == 0 {
		r := shownRates(&b.Measure, z, upper)
		return &r
	}
	return &rates{sum.failed / float64(n), sum.kernel / float64(n), sum.pnp / float64(n)}
}

// by returns t with its bounds moved by r; t itself when r is nil or zero.
func (t *Thresholds) by(r *rates) *Thresholds {
	if t == nil || r == nil || *r == (rates{}) {
		return t
	}
	out := *t
	if t.MinSuccessPercent > 0 {
		out.MinSuccessPercent = max(0.01, t.MinSuccessPercent-r.failed)
	}
	if t.MaxKernelCrashRate > 0 {
		out.MaxKernelCrashRate += r.kernel
	}
	if t.MaxPnPErrorRate > 0 {
		out.MaxPnPErrorRate += r.pnp
	}
	return &out
}

// baselineNote says what the baseline is, for an advance's reason.
func baselineNote(id string, b *Measure) string {
	if b == nil {
		return ""
	}
	return fmt.Sprintf("; judged over the baseline, label %s (%d machines: success %.2f%%, kernel crashes %.2f%%, PnP errors %.2f%%)",
		id, b.Machines, b.SuccessPercent, b.KernelCrashRate, b.PnPErrorRate)
}
