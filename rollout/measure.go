package rollout

import (
	"fmt"
	"sort"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/ostable"
)

// MeasureOptions configure Measure. Zero values take the defaults.
type MeasureOptions struct {
	MinLabelMachines  int       // below this a label measure is "not enough data"; default 100
	MinCohortMachines int       // likewise for a cohort; default 500
	Since, Until      time.Time // only reports whose time is in [Since, Until); zero: unbounded
	// Retention bounds Since: reports older than Retention before Until (MeasureSpools: its
	// now when Until is zero) are never counted, whatever Since says. Default
	// DefaultRetention, the window edges keep reports for.
	Retention time.Duration
	OS        *ostable.Table
}

// Measures are the health measures of every label that has reports.
type Measures struct {
	Generated time.Time      `json:"generated"`
	Since     time.Time      `json:"since,omitzero"`
	Until     time.Time      `json:"until,omitzero"`
	Read      ReadStats      `json:"read"`
	Labels    []LabelMeasure `json:"labels"` // by label id
}

// LabelMeasure is one label's measure and its cohorts' (OS release × CHID cluster).
type LabelMeasure struct {
	Label string `json:"label"`
	Measure
	Cohorts []Cohort `json:"cohorts"`
}

// Cohort is the measure of one OS release and CHID cluster (the PC's model) of a label.
type Cohort struct {
	Release string `json:"release"` // release code of the reports' build, or "unknown"
	CHID    string `json:"chid"`    // the reports' chid, or "unknown"
	Measure
}

// Measure counts machines (distinct device ids) by what they reported for one label. A
// machine counts as failed when it reported any failure, whatever else it reported.
type Measure struct {
	Machines    int `json:"machines"`
	Installed   int `json:"installed"`
	Failed      int `json:"failed"`
	RolledBack  int `json:"rolledBack"`
	KernelCrash int `json:"kernelCrash"`
	PnPError    int `json:"pnpError"`
	// Percentages of machines (judge them only when Enough).
	SuccessPercent  float64 `json:"successPercent"`  // machines without a failure
	KernelCrashRate float64 `json:"kernelCrashRate"` // machines with a kernel crash after install
	PnPErrorRate    float64 `json:"pnpErrorRate"`    // machines with a PnP error after install
	Enough          bool    `json:"enough"`
	// FailureSources is how many networks (the spool's source pseudonyms) the failed
	// machines reported from, and FailedUnsourced how many failed machines reported through
	// an edge that recorded none: a pause or cancel needs corroboration (the policy's
	// MinFailureSources), not a burst from one place.
	FailureSources  int    `json:"failureSources"`
	FailedUnsourced int    `json:"failedUnsourced,omitempty"`
	Note            string `json:"note,omitempty"` // "not enough data: 37 machines, 100 needed"
}

type machine struct {
	installed, failed, rolledBack, kernel, pnp bool
	failSource                                 string    // the source of its earliest failure report ("": none known)
	failAt                                     time.Time // when an edge received that report
}

func (m *machine) add(r *Report) {
	if r.Failed() && (!m.failed || r.Received.Before(m.failAt)) { // the earliest received, whatever the file order
		m.failSource, m.failAt = r.Source, r.Received
	}
	switch r.Result {
	case "installed":
		m.installed = true
	case "failed":
		m.failed = true
	case "rolled-back":
		m.failed, m.rolledBack = true, true
	case "kernel-crash-after-install":
		m.failed, m.kernel = true, true
	case "pnp-error-after-install":
		m.failed, m.pnp = true, true
	}
}

type tally map[string]*machine // by device id

func (t tally) measure(min int) Measure {
	var m Measure
	sources := map[string]bool{}
	for _, d := range t {
		m.Machines++
		if d.failed {
			if d.failSource != "" {
				sources[d.failSource] = true
			} else {
				m.FailedUnsourced++
			}
		}
		if d.installed {
			m.Installed++
		}
		if d.failed {
			m.Failed++
		}
		if d.rolledBack {
			m.RolledBack++
		}
		if d.kernel {
			m.KernelCrash++
		}
		if d.pnp {
			m.PnPError++
		}
	}
	m.FailureSources = len(sources)
	if m.Machines > 0 {
		pct := func(n int) float64 { return float64(int64(10000*float64(n)/float64(m.Machines)+0.5)) / 100 }
		m.SuccessPercent = pct(m.Machines - m.Failed)
		m.KernelCrashRate = pct(m.KernelCrash)
		m.PnPErrorRate = pct(m.PnPError)
	}
	m.Enough = m.Machines >= min
	if !m.Enough {
		m.Note = fmt.Sprintf("not enough data: %d machines, %d needed", m.Machines, min)
	}
	return m
}

// Aggregator builds measures from reports fed one at a time.
type Aggregator struct {
	opts    MeasureOptions
	labels  map[string]tally
	cohorts map[string]map[[2]string]tally
}

// NewAggregator returns an empty aggregator.
func NewAggregator(opts MeasureOptions) *Aggregator {
	if opts.MinLabelMachines <= 0 {
		opts.MinLabelMachines = 100
	}
	if opts.MinCohortMachines <= 0 {
		opts.MinCohortMachines = 500
	}
	if opts.OS == nil {
		opts.OS = ostable.Default()
	}
	if !opts.Until.IsZero() {
		opts.retain(opts.Until)
	}
	return &Aggregator{opts: opts, labels: map[string]tally{}, cohorts: map[string]map[[2]string]tally{}}
}

// Add counts one report (outside the window it is ignored).
//
// The window is on the edge's clock: a report counts by when an edge received it (the
// PC's own time only for a report that carries no "received").
func (a *Aggregator) Add(r *Report) {
	at := r.Received
	if at.IsZero() {
		at = r.Time
	}
	if (!a.opts.Since.IsZero() && at.Before(a.opts.Since)) || (!a.opts.Until.IsZero() && !at.Before(a.opts.Until)) {
		return
	}
	t := a.labels[r.LabelID]
	if t == nil {
		t = tally{}
		a.labels[r.LabelID] = t
		a.cohorts[r.LabelID] = map[[2]string]tally{}
	}
	m := t[r.DeviceID]
	if m == nil {
		m = &machine{}
		t[r.DeviceID] = m
	}
	m.add(r)
	key := [2]string{"unknown", "unknown"}
	if s, ok := a.opts.OS.SlotOf(r.Build); ok && r.Build > 0 {
		key[0] = a.opts.OS.SlotName(s)
	}
	if r.CHID != "" {
		key[1] = r.CHID
	}
	ct := a.cohorts[r.LabelID][key]
	if ct == nil {
		ct = tally{}
		a.cohorts[r.LabelID][key] = ct
	}
	cm := ct[r.DeviceID]
	if cm == nil {
		cm = &machine{}
		ct[r.DeviceID] = cm
	}
	cm.add(r)
}

// Measures returns the measures of everything added, sorted.
func (a *Aggregator) Measures(now time.Time) Measures {
	out := Measures{Generated: now, Since: a.opts.Since, Until: a.opts.Until, Labels: []LabelMeasure{}}
	for id, t := range a.labels {
		lm := LabelMeasure{Label: id, Measure: t.measure(a.opts.MinLabelMachines), Cohorts: []Cohort{}}
		for key, ct := range a.cohorts[id] {
			lm.Cohorts = append(lm.Cohorts, Cohort{Release: key[0], CHID: key[1], Measure: ct.measure(a.opts.MinCohortMachines)})
		}
		sort.Slice(lm.Cohorts, func(i, j int) bool {
			if lm.Cohorts[i].Release != lm.Cohorts[j].Release {
				return lm.Cohorts[i].Release < lm.Cohorts[j].Release
			}
			return lm.Cohorts[i].CHID < lm.Cohorts[j].CHID
		})
		out.Labels = append(out.Labels, lm)
	}
	sort.Slice(out.Labels, func(i, j int) bool { return catalogs.CompareIDs(out.Labels[i].Label, out.Labels[j].Label) < 0 })
	return out
}

// retain moves Since up to Retention before end.
func (o *MeasureOptions) retain(end time.Time) {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if floor := end.Add(-o.Retention); o.Since.Before(floor) {
		o.Since = floor
	}
}

// MeasureSpools reads the spools under dirs and aggregates them: only reports within the
// retention window before Until (or now) count.
func MeasureSpools(dirs []string, opts MeasureOptions, now time.Time) (Measures, error) {
	if opts.Until.IsZero() {
		opts.retain(now)
	}
	a := NewAggregator(opts)
	st, err := ReadSpools(dirs, a.Add)
	m := a.Measures(now)
	m.Read = st
	return m, err
}

// Label returns the measure of a label, if it has reports.
func (m *Measures) Label(id string) (*LabelMeasure, bool) {
	for i := range m.Labels {
		if m.Labels[i].Label == id {
			return &m.Labels[i], true
		}
	}
	return nil, false
}
