package rollout

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/ostable"
	"github.com/driveway/driveway/internal/atomicfile"
)

// blocksFile is the tree's blocks file, relative to it.
const blocksFile = "blocks.json"

// Action is what a decision does to a label in rollout: Advance, Hold, Pause, Cancel,
// HoldCohort, LiftCohort, FirstRingSet or Expedited, written as their text in the decision's
// JSON and in the audit log.
type Action string

// Actions a step takes for a label in rollout.
const (
	Advance Action = "advance"
	Hold    Action = "hold"
	Pause   Action = "pause"
	Cancel  Action = "cancel"
)

// Decision is what one step decided for one label, and why.
type Decision struct {
	Label  string `json:"label"`
	Action Action `json:"action"`
	From   int    `json:"fromBasisPoints"` // the scheduled percent now
	To     int    `json:"toBasisPoints"`   // after the step (advance)
	Reason string `json:"reason"`
	By     string `json:"by,omitempty"` // who, for an operator's decision (Expedite)
	// Block is a targeted hold's block (HoldCohort), added to the tree's blocks.json by Apply.
	Block   *catalogs.Block `json:"-"`
	BlockID string          `json:"blockId,omitempty"`
	// Lift is a lifted hold's record (LiftCohort), appended to the tree's lifts.json by
	// Apply, which takes the block BlockID out of blocks.json.
	Lift *Lift `json:"lift,omitempty"`
	// Ring is the label's first-ring thresholds after the step, when the step changes them
	// (ring.go).
	Ring []RingCluster `json:"firstRing,omitempty"`

	dist catalogs.Distribution // the label's distribution after the step
	file string                // the label file, relative to the tree
}

// Changed reports whether the decision changes the label's distribution.
func (d *Decision) Changed() bool { return d.Action != Hold }

// String is the one-line explanation: "3009 advance 5% -> 25%: success 99.80% over 812 machines".
func (d Decision) String() string {
	s := fmt.Sprintf("%s %s %s%%", d.Label, d.Action, catalogs.FormatBasisPoints(d.From))
	if d.Action == LiftCohort {
		s = fmt.Sprintf("%s %s %s", d.Label, d.Action, d.BlockID)
	}
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
//
// Targeted holds. When the label without a cohort (OS release × model CHID) is not shown
// to break a pause or cancel bound (the label with it, when the rest has fewer than
// minLabelMachines machines) but that cohort is, and the failures are corroborated,
// Step holds that cohort alone: a HoldCohort decision whose Block (blocks.json: the label,
// the cohort's CHID, the release's builds) stops its offers to similar devices, published
// like any step, while the rest of the rollout goes on, judged without the held cohorts'
// machines (their counts taken out of the label's; a machine that reported from two
// cohorts is taken out once per cohort). A cohort whose release and CHID are both unknown
// cannot be targeted and pauses or cancels the label, as a label-wide breach does. A hold
// stays until a newer driver for its cohort is live or an operator lifts it (lift.go): a
// LiftCohort decision, and a cohort whose hold of a label was lifted is not held alone again
// for that label.
func Step(tree *catalogs.Tree, measures *Measures, policy *Policy, now time.Time) []Decision {
	return StepWith(tree, measures, policy, now, StepInputs{})
}

// StepInputs are Step's inputs besides the tree, the measures and the policy.
type StepInputs struct {
	Lifts  []Lift  // the tree's lifts.json (LoadLifts)
	Census *Census // counts of machines per label and cluster (census.go); nil: estimated from the reports
}

// StepWith is Step with the tree's lifts and a census.
func StepWith(tree *catalogs.Tree, measures *Measures, policy *Policy, now time.Time, in StepInputs) []Decision {
	var out []Decision
	st := stepper{tree: tree, blocks: map[string]bool{}, lifted: map[string]bool{}, tab: tree.OS, census: in.Census, now: now}
	for _, b := range tree.Blocks {
		st.blocks[b.ID] = true
	}
	for _, l := range in.Lifts {
		st.lifted[l.BlockID] = true
	}
	if st.tab == nil {
		st.tab = ostable.Default()
	}
	out = append(out, st.autoLifts(now)...)
	for _, l := range tree.Labels() {
		if ds, ok := st.label(l, measures, policy.For(labelClass(l)), now, false); ok {
			out = append(out, ds...)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return catalogs.CompareIDs(out[i].Label, out[j].Label) < 0 })
	return out
}

// stepper is what Step knows besides a label: the blocks that exist and the OS table.
type stepper struct {
	tree   *catalogs.Tree
	blocks map[string]bool // ids of the tree's blocks
	lifted map[string]bool // ids of the blocks of holds lifted (lifts.json)
	tab    *ostable.Table
	census *Census
	now    time.Time
}

// stepLabel is Step's decision for one label under its class's policy p, if it is in
// rollout, without targeted holds; unscheduled judges it as if the publisher had no stages
// still to come (Expedite).
func stepLabel(l *catalogs.Label, measures *Measures, p *Policy, now time.Time, unscheduled bool) (Decision, bool) {
	st := stepper{blocks: map[string]bool{}, lifted: map[string]bool{}, tab: ostable.Default()}
	ds, ok := st.label(l, measures, p, now, unscheduled)
	if !ok {
		return Decision{}, false
	}
	for _, d := range ds {
		if d.Action != HoldCohort {
			return d, true
		}
	}
	return Decision{}, false
}

// HoldCohort is the action of a targeted hold (Decision.Block).
const HoldCohort Action = "hold-cohort"

// CohortBlockID is the blocks.json id of the controller's hold of a label's cohort: 18
// digits from the first bytes of SHA-256 of "hold", the label, the release and the CHID.
func CohortBlockID(label, release, chid string) string {
	sum := sha256.Sum256([]byte("hold\x00" + label + "\x00" + release + "\x00" + chid))
	return strconv.FormatUint(7e17+binary.BigEndian.Uint64(sum[:8])%1e17, 10)
}

// cohortBlock is the block that holds cohort c of label id, or nil when it cannot be
// targeted (neither its release nor its CHID is known).
func (st *stepper) cohortBlock(id string, c *Cohort, why string) *catalogs.Block {
	b := &catalogs.Block{ID: CohortBlockID(id, c.Release, c.CHID), Labels: []string{id}}
	if g, err := chid.Parse(c.CHID); err == nil {
		b.CHIDs = []chid.ID{g}
	}
	rels := st.tab.Releases()
	for i, r := range rels {
		if r.Code == c.Release {
			b.MinBuild = r.Build
			if i+1 < len(rels) {
				b.MaxBuild = rels[i+1].Build - 1
			}
		}
	}
	if b.CHIDs == nil && b.MinBuild == 0 {
		return nil
	}
	b.Reason = fmt.Sprintf("rollout controller: held cohort %s/%s of label %s: %s", c.Release, c.CHID, id, why)
	return b
}

// without is m with the counts of cohorts taken out (see Step's comment).
func without(m Measure, cs []*Cohort) Measure {
	if len(cs) == 0 {
		return m
	}
	out := Measure{Machines: m.Machines, Failed: m.Failed, KernelCrash: m.KernelCrash, PnPError: m.PnPError, RolledBack: m.RolledBack, Installed: m.Installed,
		FailureSources: m.FailureSources, FailedUnsourced: m.FailedUnsourced}
	for _, c := range cs {
		out.Machines -= min(out.Machines, c.Machines)
		out.Failed -= min(out.Failed, c.Failed)
		out.KernelCrash -= min(out.KernelCrash, c.KernelCrash)
		out.PnPError -= min(out.PnPError, c.PnPError)
		out.RolledBack -= min(out.RolledBack, c.RolledBack)
		out.Installed -= min(out.Installed, c.Installed)
	}
	if out.Machines > 0 {
		pct := func(n int) float64 { return float64(int64(10000*float64(n)/float64(out.Machines)+0.5)) / 100 }
		out.SuccessPercent = pct(out.Machines - out.Failed)
		out.KernelCrashRate = pct(out.KernelCrash)
		out.PnPErrorRate = pct(out.PnPError)
	}
	return out
}

// label is Step's decisions for one label: its own, after its targeted holds.
func (st *stepper) label(l *catalogs.Label, measures *Measures, p *Policy, now time.Time, unscheduled bool) ([]Decision, bool) {
	dist := l.Distribution
	r := dist.Rollout
	if l.Destination != "windowsUpdate" || r == nil || len(r.Stages) == 0 {
		return nil, false
	}
	if c := dist.Cancelled; c != nil && !now.Before(c.At) {
		return nil, false
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
		return nil, false // finished
	}
	d := Decision{Label: l.ID, From: cur, To: cur, file: l.File}
	var lm Measure
	var cohorts []Cohort
	if m, ok := measures.Label(l.ID); ok {
		lm, cohorts = m.Measure, m.Cohorts
	}
	// The stop gates' z: a pause (reversible by a person) at PauseConfidence, a cancel at
	// Confidence; 0 judges raw percentages.
	zAt := func(c float64) float64 {
		if c > 0.5 {
			return zFor(c)
		}
		return 0
	}
	zPause, zCancel := zAt(p.PauseConfidence), zAt(p.Confidence)
	zOf := func(t *Thresholds) float64 {
		if t == p.Pause {
			return zPause
		}
		return zCancel
	}
	// The cohorts held already leave the measure.
	var held, open []*Cohort
	for i := range cohorts {
		if st.blocks[CohortBlockID(l.ID, cohorts[i].Release, cohorts[i].CHID)] {
			held = append(held, &cohorts[i])
		} else {
			open = append(open, &cohorts[i])
		}
	}
	lm = without(lm, held)
	// The baseline (baseline.go) moves every bound by what the replaced driver shows: its
	// lower ends for the stop gates, its upper ends for the raw checks (holds, advancing).
	base, baseID := st.baseline(l, measures, p)
	var baseLabel *Measure
	if base != nil {
		baseLabel = &base.Measure
	}
	zBase := zPause
	// check judges m against t moved by the baseline's rates (lo: the stop gates', hi: the
	// raw checks'): shown at the z of t (a stop gate), or raw.
	const shown, raw = true, false
	check := func(t *Thresholds, asShown bool, m *Measure, min int, lo, hi *rates) string {
		if asShown {
			return t.by(lo).shown(m, zOf(t), min, p.MinFailureSources)
		}
		return t.by(hi).breaks(m, min)
	}
	labelRates := func(upper bool) *rates { return base.mixed(open, zBase, upper) }
	cohortRates := func(c *Cohort, upper bool) *rates {
		if b := base.cohortOf(c); b != nil {
			r := shownRates(b, zBase, upper)
			return &r
		}
		return nil
	}
	onLabel := func(t *Thresholds, asShown bool) string {
		if why := check(t, asShown, &lm, p.MinLabelMachines, labelRates(false), labelRates(true)); why != "" {
			return fmt.Sprintf("%s over %d machines", why, lm.Machines)
		}
		return ""
	}
	onCohort := func(t *Thresholds, c *Cohort, asShown bool) string {
		if why := check(t, asShown, &c.Measure, p.MinCohortMachines, cohortRates(c, false), cohortRates(c, true)); why != "" {
			return fmt.Sprintf("%s over %d machines of cohort %s/%s", why, c.Machines, c.Release, c.CHID)
		}
		return ""
	}
	// breach: a bound the label or a cohort is shown to break (stop gates); suspect: one
	// its raw percentages break, of a label or cohort with enough machines.
	judge := func(t *Thresholds, asShown bool) string {
		if why := onLabel(t, asShown); why != "" {
			return why
		}
		for _, c := range open {
			if why := onCohort(t, c, asShown); why != "" {
				return why
			}
		}
		return ""
	}
	breach := func(t *Thresholds) string { return judge(t, shown) }
	suspect := func(t *Thresholds) string { return judge(t, raw) }
	next := cloneDistribution(dist)
	var out []Decision
	uncorroborated := lm.FailedUnsourced == 0 && lm.FailureSources < p.MinFailureSources
	// labelWide: the label without these cohorts is still shown to break a bound, or has
	// fewer than minLabelMachines machines and the label with them is.
	unhealthy := func(m *Measure) bool {
		lo := labelRates(false)
		return check(p.Cancel, shown, m, p.MinLabelMachines, lo, nil) != "" || check(p.Pause, shown, m, p.MinLabelMachines, lo, nil) != ""
	}
	labelWide := func(cs []*Cohort) bool {
		rest := without(lm, cs)
		if rest.Machines < p.MinLabelMachines {
			return unhealthy(&lm)
		}
		return unhealthy(&rest)
	}
	if !uncorroborated && !r.Paused {
		// Targeted holds: the cohorts shown to break a bound while the rest of the label is
		// not (a first ring lets a small cohort weigh on the label's first-stage measure).
		var newly []*Cohort
		for _, c := range open {
			why := onCohort(p.Cancel, c, shown)
			if why == "" {
				why = onCohort(p.Pause, c, shown)
			}
			if why == "" || labelWide(append(slices.Clone(newly), c)) {
				continue
			}
			b := st.cohortBlock(l.ID, c, why)
			if b == nil {
				continue // untargetable: the breach pauses the label below
			}
			if st.lifted[b.ID] {
				continue // lifted before: judged with the label from then on
			}
			out = append(out, Decision{Label: l.ID, Action: HoldCohort, From: cur, To: cur, Reason: why + ": held on that cohort alone (block " + b.ID + ")",
				Block: b, BlockID: b.ID, file: blocksFile})
			newly = append(newly, c)
		}
		if len(newly) > 0 {
			held = append(held, newly...)
			lm = without(lm, newly)
			var rest []*Cohort
			for _, c := range open {
				if !slices.Contains(newly, c) {
					rest = append(rest, c)
				}
			}
			open = rest
		}
	}
	switch why := breach(p.Cancel); {
	case uncorroborated && (why != "" || breach(p.Pause) != ""):
		if why == "" {
			why = breach(p.Pause)
		}
		d.Action, d.Reason = Hold, fmt.Sprintf("%s, but the failures come from %d network(s), %d needed before a pause or cancel (policy minFailureSources): held as uncorroborated",
			why, lm.FailureSources, p.MinFailureSources)
	case why != "":
		d.Action, d.Reason = Cancel, why
		next.Cancelled = &catalogs.Cancelled{At: now, Rollback: p.Cancel.Rollback, Reason: "rollout controller: " + why}
	default:
		if why := breach(p.Pause); why != "" {
			if r.Paused {
				d.Action, d.Reason = Hold, "paused; still "+why
			} else {
				d.Action, d.Reason = Pause, why
				next.Rollout.Paused = true
			}
			break
		}
		if why := suspect(p.Pause); why != "" && zPause > 0 && !r.Paused {
			d.Action, d.Reason = Hold, fmt.Sprintf("not enough data to pause: %s, but not shown at %s confidence (the interval reaches below the bound)",
				why, p.Pause.confidence(zPause))
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
		case p.Throttle == nil && now.Sub(last.At) < p.MinDwell.Duration:
			d.Action, d.Reason = Hold, fmt.Sprintf("at %s%% since %s; dwell until %s", catalogs.FormatBasisPoints(cur),
				last.At.UTC().Format(time.RFC3339), last.At.Add(p.MinDwell.Duration).UTC().Format(time.RFC3339))
		default:
			if why := p.Advance.by(labelRates(true)).breaks(&lm, p.MinLabelMachines); why != "" {
				d.Action, d.Reason = Hold, "not healthy enough to advance: "+why
				break
			}
			to := nextStage(p.Ladder, cur)
			d.Action, d.To = Advance, to
			d.Reason = fmt.Sprintf("success %.2f%%, kernel crashes %.2f%%, PnP errors %.2f%% over %d machines",
				lm.SuccessPercent, lm.KernelCrashRate, lm.PnPErrorRate, lm.Machines) + baselineNote(baseID, baseLabel)
			if p.Throttle != nil {
				var v stagesView
				for _, s := range r.Stages {
					v = append(v, stageAt{s.At, s.BasisPoints})
				}
				t, why, ok := throttleTo(p.Throttle, l.ID, &lm, v, st.census, now)
				if !ok {
					d.Action, d.To, d.Reason = Hold, cur, why
					break
				}
				to, d.To, d.Reason = t, t, d.Reason+"; "+why
			}
			next.Rollout.Stages = append(next.Rollout.Stages, catalogs.Stage{At: now, BasisPoints: to})
		}
	}
	if len(held) > 0 && d.Action != Cancel && d.Action != Pause {
		d.Reason += fmt.Sprintf(" (without the %d held cohort(s))", len(held))
	}
	if (d.Action == Hold || d.Action == Advance) && !r.Paused {
		rcur := cur
		if d.Action == Advance {
			rcur = d.To
		}
		var open []Cohort
		for _, c := range cohorts {
			if !st.blocks[CohortBlockID(l.ID, c.Release, c.CHID)] {
				open = append(open, c)
			}
		}
		if clusters, shown, why, ok := st.ring(l, p, open, r, rcur, now); ok {
			next.Rollout.Clusters = clusters
			d.Ring = shown
			if d.Action == Hold {
				d.Action = FirstRingSet
			}
			d.Reason = why + "; " + d.Reason
		}
	}
	d.dist = next
	return append(out, d), true
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
	var blocks []*catalogs.Block
	var blockLabels []string
	for _, d := range decisions {
		if d.Block != nil {
			blocks, blockLabels = append(blocks, d.Block), append(blockLabels, d.Label)
		}
	}
	if len(blocks) > 0 {
		if err := appendBlocks(filepath.Join(dir, blocksFile), blocks); err != nil {
			return nil, err
		}
		changed = append(changed, blockLabels...)
	}
	lifted := map[string]bool{}
	var lifts []Lift
	for _, d := range decisions {
		if d.Lift != nil {
			lifted[d.Lift.BlockID] = true
			lifts = append(lifts, *d.Lift)
			if !slices.Contains(changed, d.Label) {
				changed = append(changed, d.Label)
			}
		}
	}
	if len(lifts) > 0 {
		if err := removeBlocks(filepath.Join(dir, blocksFile), lifted); err != nil {
			return changed, err
		}
		if err := appendLifts(filepath.Join(dir, liftsFile), lifts); err != nil {
			return changed, err
		}
	}
	for _, d := range decisions {
		if !d.Changed() || d.Block != nil || d.Lift != nil {
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
		if err := atomicfile.Write(path, out, 0o644); err != nil {
			return changed, fmt.Errorf("rollout: %w", err)
		}
		if !slices.Contains(changed, d.Label) {
			changed = append(changed, d.Label)
		}
	}
	return changed, nil
}

// appendBlocks adds blocks to a blocks.json (created when missing; blocks whose id is in it
// already are left out), rewritten atomically with its other entries (re-indented).
func appendBlocks(path string, blocks []*catalogs.Block) error {
	var entries []json.RawMessage
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &entries); err != nil {
			return fmt.Errorf("rollout: %s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("rollout: %w", err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		var x struct {
			ID json.Number `json:"id"`
		}
		if json.Unmarshal(e, &x) == nil {
			have[x.ID.String()] = true
		}
	}
	for _, bl := range blocks {
		if have[bl.ID] {
			continue
		}
		have[bl.ID] = true
		v := map[string]any{"id": bl.ID, "reason": bl.Reason, "labels": bl.Labels}
		if len(bl.CHIDs) > 0 {
			ids := make([]string, len(bl.CHIDs))
			for i, c := range bl.CHIDs {
				ids[i] = c.String()
			}
			v["chids"] = ids
		}
		if bl.MinBuild > 0 {
			v["minBuild"] = bl.MinBuild
		}
		if bl.MaxBuild > 0 {
			v["maxBuild"] = bl.MaxBuild
		}
		e, _ := json.Marshal(v)
		entries = append(entries, e)
	}
	out, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return fmt.Errorf("rollout: %s: %w", path, err)
	}
	if err := atomicfile.Write(path, append(out, '\n'), 0o644); err != nil {
		return fmt.Errorf("rollout: %w", err)
	}
	return nil
}
