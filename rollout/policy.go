package rollout

// Policy file.
//
// A policy says how fast a rollout may move and what stops it, for a whole catalog with
// optional overrides per INF class:
//
//	{
//	  "ladder": [1, 5, 25, 50, 100],          // the stages, in percent
//	  "minDwell": "72h",                      // the least time at a stage before advancing
//	  "window": "720h",                       // reports older than this are not counted
//	  "minLabelMachines": 100,                // below this: not enough data (no advance)
//	  "minCohortMachines": 500,
//	  "minFailureSources": 3,                 // networks the failures must come from to stop a driver
//	  "confidence": 0.95,                     // of the cancel gate (stats.go); 0.5: raw percentages
//	  "pauseConfidence": 0.8,                 // of the pause gate
//	  "advance": {"minSuccessPercent": 99.0, "maxKernelCrashRate": 0.1, "maxPnPErrorRate": 0.5},
//	  "pause":   {"minSuccessPercent": 97.0, "maxKernelCrashRate": 0.5, "maxPnPErrorRate": 2.0},
//	  "cancel":  {"minSuccessPercent": 90.0, "maxKernelCrashRate": 2.0, "maxPnPErrorRate": 5.0, "rollback": true},
//	  "classes": {"Firmware": {"ladder": [1, 2, 5, 10, 25, 50, 100], "minDwell": "168h"}},
//	  "throttle": {"maxNewMachinesPerDay": 500},  // a count throttle (throttle.go); none by default
//	  "firstRing": {"minMachines": 20, "maxPercent": 25}, // an even first ring (ring.go); none by default
//	  "baseline": "previous"                  // bounds over the replaced driver's rates (baseline.go), or "none"
//	}
//
// Rates are percentages of machines. A rollout advances only when its label has enough data
// (minLabelMachines) and meets every "advance" bound. It is paused when the label, or any of
// its cohorts, is shown at pauseConfidence to break a "pause" bound (the lower end of
// the rate's Wilson interval is past it: stats.go; no minimum population, since a small
// sample proves nothing), and cancelled (with rollback if set) when shown at confidence to
// break a "cancel" bound; a breach the data do not yet show holds the rollout ("not enough data to
// pause"). With "confidence": 0.5 the bounds are judged on the raw percentages of labels and
// cohorts with minLabelMachines and minCohortMachines, as before confidence bounds. Omitted fields take the defaults, modelled on the dashboard's gradual rollout (1% to
// 100% over a 30-day monitoring window). Unknown fields are errors.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"time"
)

// Thresholds bound the measures. A zero bound is not checked.
type Thresholds struct {
	MinSuccessPercent  float64 `json:"minSuccessPercent,omitempty"`
	MaxKernelCrashRate float64 `json:"maxKernelCrashRate,omitempty"`
	MaxPnPErrorRate    float64 `json:"maxPnPErrorRate,omitempty"`
	Rollback           bool    `json:"rollback,omitempty"` // cancel only: offer the previous driver back
}

// Policy is a rollout policy (see the file format above).
type Policy struct {
	Ladder            []float64 `json:"ladder,omitempty"`
	MinDwell          Duration  `json:"minDwell,omitzero"`
	Window            Duration  `json:"window,omitzero"`
	MinLabelMachines  int       `json:"minLabelMachines,omitempty"`
	MinCohortMachines int       `json:"minCohortMachines,omitempty"`
	// MinFailureSources is how many distinct networks (the edges' source pseudonyms) the
	// failed machines must have reported from before the controller pauses or cancels:
	// failures that appear from fewer are held as uncorroborated (forged reports from one
	// place cannot stop a good driver). Failures reported through edges that record no
	// source count as corroborated.
	MinFailureSources int `json:"minFailureSources,omitempty"`
	// Confidence is the one-sided confidence at which the cancel gate must show a bound
	// broken (default 0.95), PauseConfidence the pause gate's (default 0.8: a pause is
	// undone by a person, a cancel is not, and a rollout held at its stage gets no more
	// data); 0.5 judges raw percentages.
	Confidence      float64            `json:"confidence,omitempty"`
	PauseConfidence float64            `json:"pauseConfidence,omitempty"`
	Advance         *Thresholds        `json:"advance,omitempty"`
	Pause           *Thresholds        `json:"pause,omitempty"`
	Cancel          *Thresholds        `json:"cancel,omitempty"`
	Classes         map[string]*Policy `json:"classes,omitempty"`
	// Throttle, when set, paces the rollout by a count of new machines a day instead of
	// the ladder's dwell (throttle.go).
	Throttle *Throttle `json:"throttle,omitempty"`
	// FirstRing, when set, makes the first stage reach every targeting cluster (ring.go).
	FirstRing *FirstRing `json:"firstRing,omitempty"`
	// Baseline is what the bounds are judged against (baseline.go): "previous" (the
	// default), the rates of the driver the rollout replaces, or "none": absolute rates.
	Baseline string `json:"baseline,omitempty"`
}

// Throttle is a count throttle: at most MaxNewMachinesPerDay machines a day start reporting
// on the label (throttle.go).
type Throttle struct {
	MaxNewMachinesPerDay int `json:"maxNewMachinesPerDay"`
}

// FirstRing is an even first ring: while a label is at its first stage, each targeting
// cluster of its census with at least MinMachines × 100 / MaxPercent machines gets a
// threshold of its own so that at least MinMachines of its machines are in (ring.go).
type FirstRing struct {
	MinMachines int     `json:"minMachines"`
	MaxPercent  float64 `json:"maxPercent,omitempty"` // default 25
}

// Duration is a time.Duration written as "72h" in JSON.
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string like \"72h\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a duration like \"72h\"", s)
	}
	d.Duration = v
	return nil
}

// DefaultPolicy is the policy when a file leaves things out.
var DefaultPolicy = Policy{
	Ladder:            []float64{1, 5, 25, 50, 100},
	MinDwell:          Duration{72 * time.Hour},
	Window:            Duration{720 * time.Hour},
	MinLabelMachines:  100,
	MinCohortMachines: 500,
	MinFailureSources: 3,
	Confidence:        0.95,
	PauseConfidence:   0.8,
	Advance:           &Thresholds{MinSuccessPercent: 99, MaxKernelCrashRate: 0.1, MaxPnPErrorRate: 0.5},
	Pause:             &Thresholds{MinSuccessPercent: 97, MaxKernelCrashRate: 0.5, MaxPnPErrorRate: 2},
	Cancel:            &Thresholds{MinSuccessPercent: 90, MaxKernelCrashRate: 2, MaxPnPErrorRate: 5, Rollback: true},
	Baseline:          BaselinePrevious,
}

// LoadPolicy reads a policy file; ParsePolicy reads its bytes.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("rollout: %s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy reads a policy and fills in the defaults.
func ParsePolicy(b []byte) (*Policy, error) {
	var p Policy
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	out := p.withDefaults(&DefaultPolicy)
	if err := out.check("policy"); err != nil {
		return nil, err
	}
	classes := map[string]*Policy{}
	for name, c := range p.Classes {
		if c == nil {
			continue
		}
		if c.Classes != nil {
			return nil, fmt.Errorf("policy: class %s: classes do not nest", name)
		}
		cp := c.withDefaults(out)
		if err := cp.check("policy: class " + name); err != nil {
			return nil, err
		}
		classes[strings.ToUpper(name)] = cp
	}
	out.Classes = classes
	return out, nil
}

// withDefaults fills what p leaves out from d.
func (p *Policy) withDefaults(d *Policy) *Policy {
	out := *p
	if len(out.Ladder) == 0 {
		out.Ladder = d.Ladder
	}
	if out.MinDwell.Duration == 0 {
		out.MinDwell = d.MinDwell
	}
	if out.Window.Duration == 0 {
		out.Window = d.Window
	}
	if out.MinLabelMachines == 0 {
		out.MinLabelMachines = d.MinLabelMachines
	}
	if out.MinCohortMachines == 0 {
		out.MinCohortMachines = d.MinCohortMachines
	}
	if out.MinFailureSources == 0 {
		out.MinFailureSources = d.MinFailureSources
	}
	if out.Confidence == 0 {
		out.Confidence = d.Confidence
	}
	if out.PauseConfidence == 0 {
		out.PauseConfidence = d.PauseConfidence
	}
	if out.Advance == nil {
		out.Advance = d.Advance
	}
	if out.Pause == nil {
		out.Pause = d.Pause
	}
	if out.Cancel == nil {
		out.Cancel = d.Cancel
	}
	if out.Throttle == nil {
		out.Throttle = d.Throttle
	}
	if out.Baseline == "" {
		out.Baseline = d.Baseline
	}
	if out.FirstRing == nil {
		out.FirstRing = d.FirstRing
	}
	if out.FirstRing != nil && out.FirstRing.MaxPercent == 0 {
		fr := *out.FirstRing
		fr.MaxPercent = 25
		out.FirstRing = &fr
	}
	out.Classes = nil
	return &out
}

func (p *Policy) check(where string) error {
	prev := 0.0
	for _, v := range p.Ladder {
		if v <= prev || v > 100 || float64(int(v*100)) != v*100 {
			return fmt.Errorf("%s: ladder %v must increase, above 0, at most 100, two decimals", where, p.Ladder)
		}
		prev = v
	}
	if prev != 100 {
		return fmt.Errorf("%s: ladder %v must end at 100", where, p.Ladder)
	}
	for _, c := range []struct {
		name string
		v    float64
	}{{"confidence", p.Confidence}, {"pauseConfidence", p.PauseConfidence}} {
		if c.v < 0.5 || c.v >= 1 {
			return fmt.Errorf("%s: %s %v must be at least 0.5 (raw percentages) and below 1, such as 0.95", where, c.name, c.v)
		}
	}
	if p.Baseline != BaselinePrevious && p.Baseline != BaselineNone {
		return fmt.Errorf("%s: baseline %q must be \"previous\" (judge over the replaced driver's rates) or \"none\"", where, p.Baseline)
	}
	if t := p.Throttle; t != nil && t.MaxNewMachinesPerDay <= 0 {
		return fmt.Errorf("%s: throttle.maxNewMachinesPerDay %d must be above 0 (leave the throttle out for none)", where, t.MaxNewMachinesPerDay)
	}
	if r := p.FirstRing; r != nil && (r.MinMachines <= 0 || r.MaxPercent <= 0 || r.MaxPercent > 100) {
		return fmt.Errorf("%s: firstRing needs minMachines above 0 and maxPercent in (0, 100], such as {\"minMachines\": 20, \"maxPercent\": 25}", where)
	}
	return nil
}

// For returns the policy of an INF class (case-insensitive), or the catalog's.
func (p *Policy) For(class string) *Policy {
	if c, ok := p.Classes[strings.ToUpper(class)]; ok {
		return c
	}
	return p
}

// shown reports the first bound a measure is shown to break at z (the lower end of its
// rate's Wilson interval past the bound, over at least minFailed failed machines: one
// unlucky crash in a small cohort is not a pattern; with z 0, the raw rate of a measure of
// at least min machines), as text, or "".
func (t *Thresholds) shown(m *Measure, z float64, min, minFailed int) string {
	if t == nil || m.Machines == 0 || (z == 0 && m.Machines < min) {
		return ""
	}
	past := func(what string, k int, bound float64, rate float64) string {
		lo, hi := wilson(k, m.Machines, z)
		if lo*100 <= bound || (z > 0 && k < minFailed) {
			return ""
		}
		if z == 0 {
			return fmt.Sprintf("%s %.2f%% > %.2f%%", what, rate, bound)
		}
		return fmt.Sprintf("%s %.2f%% > %.2f%% (%.2f–%.2f%% at %s confidence)", what, rate, bound, 100*lo, 100*hi, t.confidence(z))
	}
	if t.MinSuccessPercent > 0 {
		if why := past("failure rate", m.Failed, 100-t.MinSuccessPercent, 100-m.SuccessPercent); why != "" {
			return fmt.Sprintf("success %.2f%% < %.2f%%: %s", m.SuccessPercent, t.MinSuccessPercent, why)
		}
	}
	if t.MaxKernelCrashRate > 0 {
		if why := past("kernel crashes", m.KernelCrash, t.MaxKernelCrashRate, m.KernelCrashRate); why != "" {
			return why
		}
	}
	if t.MaxPnPErrorRate > 0 {
		if why := past("PnP errors", m.PnPError, t.MaxPnPErrorRate, m.PnPErrorRate); why != "" {
			return why
		}
	}
	return ""
}

func (*Thresholds) confidence(z float64) string {
	return fmt.Sprintf("%.4g%%", 100*(0.5+0.5*math.Erf(z/math.Sqrt2)))
}

// Breaks reports the first bound a measure of at least min machines breaks, by its raw
// rates, as text, or "" (the flight report's warnings; the controller's gates add
// confidence and corroboration).
func (t *Thresholds) Breaks(m *Measure, min int) string { return t.breaks(m, min) }

// breaks reports the first bound a measure of at least min machines breaks, as text, or "".
func (t *Thresholds) breaks(m *Measure, min int) string {
	switch {
	case t == nil || m.Machines < min:
		return ""
	case t.MinSuccessPercent > 0 && m.SuccessPercent < t.MinSuccessPercent:
		return fmt.Sprintf("success %.2f%% < %.2f%%", m.SuccessPercent, t.MinSuccessPercent)
	case t.MaxKernelCrashRate > 0 && m.KernelCrashRate > t.MaxKernelCrashRate:
		return fmt.Sprintf("kernel crashes %.2f%% > %.2f%%", m.KernelCrashRate, t.MaxKernelCrashRate)
	case t.MaxPnPErrorRate > 0 && m.PnPErrorRate > t.MaxPnPErrorRate:
		return fmt.Sprintf("PnP errors %.2f%% > %.2f%%", m.PnPErrorRate, t.MaxPnPErrorRate)
	}
	return ""
}
