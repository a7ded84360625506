// Package flight builds the flight report of one label: what the hardware dashboard gives a
// publisher after a flight ("a report of your driver's performance … to evaluate its
// critical functionality and update scenarios"), from the same spool lines, policy and
// arithmetic as the rollout controller (package rollout), and writes it as one
// self-contained HTML page (html.go) or as JSON (the Report type, below).
//
// What it holds:
//
//   - The timeline: the percent offered (the label's rollout stages; 0 while paused, after a
//     pause in the audit log, and after a cancel) and the machines that installed or failed,
//     cumulative, by received time, in at most maxBuckets buckets of 1, 3, 6, 12 or 24
//     hours, with every decision of the audit log (rollout step/expedite/lift --audit)
//     marked.
//   - Per stage of the rollout ([its time, the next stage's time or now)), the measure of
//     the reports received in it, and the first advance, pause and cancel bound of the
//     policy it breaks (raw rates, over at least the policy's minLabelMachines: the
//     controller's gate adds a confidence interval and corroboration on top, so a breach
//     here is a warning, not the controller's verdict).
//   - Per cohort (OS release × CHID) over the whole flight, the same, over at least
//     minCohortMachines.
//   - The error codes failed machines sent most (spools keep numeric codes only).
//   - The devices that rolled back (their spool pseudonyms: the report holds no PC's id),
//     the first maxDevices by time.
//
// The whole flight is every report of the label received in the retention window before
// Now (rollout.DefaultRetention), which is also the most a spool holds.
package flight

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/ostable"
	"github.com/driveway/driveway/rollout"
)

// Options say what to report on.
type Options struct {
	Label  string          // the label id (required)
	Tree   *catalogs.Tree  // the label tree the controller steps (required)
	Spools []string        // spool directories (required: at least one)
	Policy *rollout.Policy // default rollout.DefaultPolicy
	Audit  string          // the controller's audit log (NDJSON of rollout.AuditRecord); "" for none
	Now    time.Time       // the report's time (required)
	OS     *ostable.Table  // default ostable.Default()
	// MaxDevices bounds the rolled-back devices listed (default 100); RolledBackDevices
	// counts them all.
	MaxDevices int
}

// maxBuckets bounds the timeline's points; bucketSizes are the sizes tried, smallest first.
const maxBuckets = 120

var bucketSizes = []time.Duration{time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// maxErrorCodes is how many error codes the report lists.
const maxErrorCodes = 10

// Report is a label's flight report.
type Report struct {
	Generated time.Time    `json:"generated"`
	Label     Label        `json:"label"`
	Policy    PolicyBounds `json:"policy"`
	Since     time.Time    `json:"since"` // the whole flight: reports received in [Since, Generated)
	// Reports is how many reports of the label were read in the flight; Machines, over the
	// whole flight, with its verdicts.
	Reports   int          `json:"reports"`
	Flight    Judged       `json:"flight"`
	Timeline  Timeline     `json:"timeline"`
	Decisions []Decision   `json:"decisions"`
	Stages    []Stage      `json:"stages"`
	Cohorts   []Cohort     `json:"cohorts"`
	Errors    []ErrorCount `json:"errorCodes"`
	// RolledBack lists the first devices that rolled back, by time; RolledBackDevices
	// counts them all.
	RolledBack        []Device `json:"rolledBack"`
	RolledBackDevices int      `json:"rolledBackDevices"`
}

// Label is what the report says of the label itself.
type Label struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	File    string `json:"file"` // relative to the tree
	INF     string `json:"inf,omitempty"`
	Class   string `json:"class,omitempty"`
	Version string `json:"driverVersion,omitempty"`
	Date    string `json:"driverDate,omitempty"`
	// State is its rollout now: "rollout at 5%", "paused at 5%", "cancelled", "fully
	// offered", "no rollout".
	State string `json:"state"`
}

// PolicyBounds are the bounds of the label's policy (its class's) the report judges by.
type PolicyBounds struct {
	Class             string              `json:"class,omitempty"`
	Advance           *rollout.Thresholds `json:"advance,omitempty"`
	Pause             *rollout.Thresholds `json:"pause,omitempty"`
	Cancel            *rollout.Thresholds `json:"cancel,omitempty"`
	MinLabelMachines  int                 `json:"minLabelMachines"`
	MinCohortMachines int                 `json:"minCohortMachines"`
}

// Judged is a measure with the first bound of each gate it breaks ("" for none).
type Judged struct {
	rollout.Measure
	BreaksAdvance string `json:"breaksAdvance,omitempty"` // below what advancing needs
	BreaksPause   string `json:"breaksPause,omitempty"`
	BreaksCancel  string `json:"breaksCancel,omitempty"`
}

// Timeline is the percent offered and the machines over time. Point i covers
// [Start + i·Bucket, Start + (i+1)·Bucket); its values are those at its end.
type Timeline struct {
	Start  time.Time `json:"start"`
	Bucket string    `json:"bucket"` // "1h", "3h", "6h", "12h" or "24h"
	Points []Point   `json:"points"`
}

// Point is one bucket of the timeline.
type Point struct {
	End         time.Time `json:"end"`
	BasisPoints int       `json:"offeredBasisPoints"` // percent offered at End, in basis points
	Installed   int       `json:"installed"`          // machines with an install report received before End
	Failed      int       `json:"failed"`             // machines with a failure report received before End
	Reports     int       `json:"reports"`            // reports received in the bucket
}

// Decision is one decision of the audit log for the label.
type Decision struct {
	At      time.Time      `json:"at"`
	Action  rollout.Action `json:"action"`
	From    int            `json:"fromBasisPoints"`
	To      int            `json:"toBasisPoints"`
	Reason  string         `json:"reason"`
	By      string         `json:"by,omitempty"`
	BlockID string         `json:"blockId,omitempty"`
}

// Stage is one stage of the rollout and what its machines reported.
type Stage struct {
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"` // the next stage's start, or the report's time
	BasisPoints int       `json:"basisPoints"`
	Planned     bool      `json:"planned,omitempty"` // it starts after the report's time: no measure
	Judged
}

// Cohort is the measure of one OS release and CHID over the whole flight.
type Cohort struct {
	Release string `json:"release"`
	CHID    string `json:"chid"`
	Judged
}

// ErrorCount is one error code failed machines reported.
type ErrorCount struct {
	Code     string `json:"code"`
	Machines int    `json:"machines"`
	Reports  int    `json:"reports"`
}

// Device is a device that rolled back.
type Device struct {
	Device    string    `json:"device"` // its spool pseudonym
	At        time.Time `json:"at"`     // its first rollback report's received time
	Release   string    `json:"release"`
	CHID      string    `json:"chid"`
	ErrorCode string    `json:"errorCode,omitempty"`
}

// Build reads the label's reports and audit records and builds its report.
func Build(o Options) (*Report, error) {
	if o.Label == "" || o.Tree == nil || len(o.Spools) == 0 || o.Now.IsZero() {
		return nil, errors.New("flight: a label, its tree, spool directories and a time are required")
	}
	var l *catalogs.Label
	for _, c := range o.Tree.Labels() {
		if c.ID == o.Label {
			l = c
			break
		}
	}
	if l == nil {
		return nil, fmt.Errorf("flight: label %s is not in the tree", o.Label)
	}
	if o.OS == nil {
		o.OS = ostable.Default()
	}
	if o.MaxDevices <= 0 {
		o.MaxDevices = 100
	}
	if o.Policy == nil {
		o.Policy = &rollout.DefaultPolicy
	}
	inf := firstINF(l)
	class := ""
	if inf != nil {
		class = inf.Class
	}
	p := o.Policy.For(class)
	rep := &Report{
		Generated: o.Now.UTC(),
		Label:     Label{ID: l.ID, Name: l.Name, File: l.File, State: state(l, o.Now)},
		Policy: PolicyBounds{Class: class, Advance: p.Advance, Pause: p.Pause, Cancel: p.Cancel,
			MinLabelMachines: p.MinLabelMachines, MinCohortMachines: p.MinCohortMachines},
		Since:      o.Now.Add(-rollout.DefaultRetention).UTC(),
		Decisions:  []Decision{},
		Stages:     []Stage{},
		Cohorts:    []Cohort{},
		Errors:     []ErrorCount{},
		RolledBack: []Device{},
	}
	if inf != nil {
		rep.Label.INF, rep.Label.Class, rep.Label.Version, rep.Label.Date = inf.Name, inf.Class, inf.VersionText, inf.DateText
	}

	var reports []rollout.Report
	if _, err := rollout.ReadSpools(o.Spools, func(r *rollout.Report) {
		at := received(r)
		if r.LabelID == o.Label && !at.Before(rep.Since) && at.Before(o.Now) {
			reports = append(reports, *r)
		}
	}); err != nil {
		return nil, fmt.Errorf("flight: %w", err)
	}
	sort.SliceStable(reports, func(i, j int) bool { return received(&reports[i]).Before(received(&reports[j])) })
	rep.Reports = len(reports)
	if o.Audit != "" {
		ds, err := readAudit(o.Audit, o.Label)
		if err != nil {
			return nil, err
		}
		rep.Decisions = ds
	}

	measure := func(since, until time.Time) *rollout.LabelMeasure {
		a := rollout.NewAggregator(rollout.MeasureOptions{MinLabelMachines: p.MinLabelMachines, MinCohortMachines: p.MinCohortMachines,
			Since: since, Until: until, OS: o.OS})
		for i := range reports {
			a.Add(&reports[i])
		}
		ms := a.Measures(o.Now)
		if lm, ok := ms.Label(o.Label); ok {
			return lm
		}
		return &rollout.LabelMeasure{Label: o.Label, Cohorts: []rollout.Cohort{}}
	}
	whole := measure(rep.Since, o.Now)
	rep.Flight = judge(whole.Measure, p, p.MinLabelMachines)
	for _, c := range whole.Cohorts {
		rep.Cohorts = append(rep.Cohorts, Cohort{Release: c.Release, CHID: c.CHID, Judged: judge(c.Measure, p, p.MinCohortMachines)})
	}
	sort.SliceStable(rep.Cohorts, func(i, j int) bool { return rep.Cohorts[i].Machines > rep.Cohorts[j].Machines })

	if r := l.Distribution.Rollout; r != nil {
		for i, s := range r.Stages {
			st := Stage{Start: s.At.UTC(), End: o.Now.UTC(), BasisPoints: s.BasisPoints}
			if i+1 < len(r.Stages) && r.Stages[i+1].At.Before(o.Now) {
				st.End = r.Stages[i+1].At.UTC()
			}
			if !s.At.Before(o.Now) {
				st.Planned, st.End = true, st.Start
				if i+1 < len(r.Stages) {
					st.End = r.Stages[i+1].At.UTC()
				}
			} else {
				st.Judged = judge(measure(s.At, st.End).Measure, p, p.MinLabelMachines)
			}
			rep.Stages = append(rep.Stages, st)
		}
	}
	rep.Timeline = timeline(l, reports, rep.Decisions, o.Now)
	rep.Errors = errorCodes(reports)
	rep.RolledBack, rep.RolledBackDevices = rolledBack(reports, o.OS, o.MaxDevices)
	return rep, nil
}

// received is when an edge received the report (its own time for one that has none).
func received(r *rollout.Report) time.Time {
	if r.Received.IsZero() {
		return r.Time
	}
	return r.Received
}

// firstINF is the INF of the label's first row that names one.
func firstINF(l *catalogs.Label) *catalogs.INF {
	for _, r := range l.Rows {
		if inf := l.Submission.INF(r.Bundle, r.INF); inf != nil {
			return inf
		}
	}
	return nil
}

// state says where the label's rollout is at now.
func state(l *catalogs.Label, now time.Time) string {
	d := l.Distribution
	switch {
	case d.Cancelled != nil && !now.Before(d.Cancelled.At):
		return "cancelled: " + d.Cancelled.Reason
	case d.Rollout == nil || len(d.Rollout.Stages) == 0:
		return "no rollout"
	}
	bp := scheduled(d.Rollout.Stages, now)
	switch {
	case d.Rollout.Paused:
		return "paused at " + catalogs.FormatBasisPoints(bp) + "%"
	case bp >= 10000:
		return "fully offered"
	}
	return "rollout at " + catalogs.FormatBasisPoints(bp) + "%"
}

// scheduled is the basis points of the last stage whose time has come by t (0 before the
// first).
func scheduled(stages []catalogs.Stage, t time.Time) int {
	bp := 0
	for _, s := range stages {
		if !s.At.After(t) {
			bp = s.BasisPoints
		}
	}
	return bp
}

// judge adds the first bound of each gate a measure of at least min machines breaks.
func judge(m rollout.Measure, p *rollout.Policy, min int) Judged {
	return Judged{Measure: m, BreaksAdvance: p.Advance.Breaks(&m, min), BreaksPause: p.Pause.Breaks(&m, min), BreaksCancel: p.Cancel.Breaks(&m, min)}
}

// readAudit reads the label's decisions from an audit log, in time order.
func readAudit(path, label string) ([]Decision, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("flight: audit log %s does not exist (rollout step --audit FILE writes it)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("flight: %w", err)
	}
	defer f.Close()
	out := []Decision{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r rollout.AuditRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Time.IsZero() || r.Label == "" || r.Action == "" {
			if err == nil {
				err = errors.New("time, label and action are required")
			}
			return nil, fmt.Errorf("flight: audit log %s line %d is not an audit record: %v", path, n, err)
		}
		if r.Label == label {
			out = append(out, Decision{At: r.Time.UTC(), Action: r.Action, From: r.From, To: r.To, Reason: r.Reason, By: r.By, BlockID: r.BlockID})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("flight: audit log %s: %w", path, err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// offered is the percent offered at t, in basis points: the scheduled stage, 0 after a
// cancel, and 0 from a pause in the audit log until the next decision that moves the
// rollout on (a rollout paused now without a pause in the log: 0 at now only).
func offered(l *catalogs.Label, decisions []Decision, t, now time.Time) int {
	d := l.Distribution
	switch {
	case d.Cancelled != nil && !t.Before(d.Cancelled.At):
		return 0
	case d.Rollout == nil:
		return 10000
	case d.Rollout.Paused && !t.Before(now):
		return 0
	}
	paused := false
	for _, dec := range decisions {
		if dec.At.After(t) {
			break
		}
		switch dec.Action {
		case rollout.Pause, rollout.Cancel:
			paused = true
		case rollout.Advance, rollout.Expedited:
			paused = false
		}
	}
	if paused {
		return 0
	}
	return scheduled(d.Rollout.Stages, t)
}

// timeline buckets the machines' first install and failure by received time.
func timeline(l *catalogs.Label, reports []rollout.Report, decisions []Decision, now time.Time) Timeline {
	start := now
	if r := l.Distribution.Rollout; r != nil && len(r.Stages) > 0 && r.Stages[0].At.Before(start) {
		start = r.Stages[0].At
	}
	if len(reports) > 0 && received(&reports[0]).Before(start) {
		start = received(&reports[0])
	}
	if len(decisions) > 0 && decisions[0].At.Before(start) {
		start = decisions[0].At
	}
	size := bucketSizes[len(bucketSizes)-1]
	for _, s := range bucketSizes {
		if now.Sub(start) <= time.Duration(maxBuckets)*s {
			size = s
			break
		}
	}
	start = start.UTC().Truncate(size)
	if span := time.Duration(maxBuckets) * size; now.Sub(start) > span { // older than the widest buckets show
		start = now.UTC().Add(-span).Truncate(size)
	}
	n := int((now.Sub(start) + size - 1) / size)
	if n < 1 {
		n = 1
	}
	tl := Timeline{Start: start, Bucket: fmt.Sprintf("%dh", int(size/time.Hour)), Points: make([]Point, n)}
	installed, failed := map[string]bool{}, map[string]bool{}
	i := 0
	for b := range tl.Points {
		end := start.Add(time.Duration(b+1) * size)
		for ; i < len(reports) && received(&reports[i]).Before(end); i++ {
			r := &reports[i]
			if received(r).Before(start) {
				continue
			}
			tl.Points[b].Reports++
			if r.Failed() {
				failed[r.DeviceID] = true
			} else {
				installed[r.DeviceID] = true
			}
		}
		at := end
		if at.After(now) {
			at = now
		}
		tl.Points[b].End = at.UTC()
		tl.Points[b].BasisPoints = offered(l, decisions, at, now)
		tl.Points[b].Installed, tl.Points[b].Failed = len(installed), len(failed)
	}
	return tl
}

// errorCodes counts the codes of failure reports, most machines first.
func errorCodes(reports []rollout.Report) []ErrorCount {
	type count struct {
		machines map[string]bool
		reports  int
	}
	by := map[string]*count{}
	for i := range reports {
		r := &reports[i]
		if !r.Failed() || r.ErrorCode == "" {
			continue
		}
		c := by[r.ErrorCode]
		if c == nil {
			c = &count{machines: map[string]bool{}}
			by[r.ErrorCode] = c
		}
		c.machines[r.DeviceID] = true
		c.reports++
	}
	out := []ErrorCount{}
	for code, c := range by {
		out = append(out, ErrorCount{Code: code, Machines: len(c.machines), Reports: c.reports})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Machines != out[j].Machines {
			return out[i].Machines > out[j].Machines
		}
		return out[i].Code < out[j].Code
	})
	if len(out) > maxErrorCodes {
		out = out[:maxErrorCodes]
	}
	return out
}

// rolledBack lists the devices whose reports say rolled back, by their first such report.
func rolledBack(reports []rollout.Report, os *ostable.Table, max int) ([]Device, int) {
	seen := map[string]bool{}
	out := []Device{}
	n := 0
	for i := range reports {
		r := &reports[i]
		if r.Result != "rolled-back" || seen[r.DeviceID] {
			continue
		}
		seen[r.DeviceID] = true
		n++
		if len(out) == max {
			continue
		}
		d := Device{Device: r.DeviceID, At: received(r).UTC(), Release: "unknown", CHID: "unknown", ErrorCode: r.ErrorCode}
		if s, ok := os.SlotOf(r.Build); ok && r.Build > 0 {
			d.Release = os.SlotName(s)
		}
		if r.CHID != "" {
			d.CHID = r.CHID
		}
		out = append(out, d)
	}
	return out, n
}
