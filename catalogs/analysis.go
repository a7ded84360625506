package catalogs

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/ostable"
)

// The static analysis of a tree: warnings about labels and blocks that cannot do what their
// author meant, found from the tree alone (no device, no release).
//
//   - W001 (here): a live label none of whose rows can ever be offered, because no OS
//     release of the row's family lies within its floor and ceiling, or because wherever it
//     applies another live label of the same hardware ID wins the order of offers (offers.md
//     step 4) and applies at least as widely ("dominated").
//   - W004 (in ties): two labels tie on everything the order compares except the label id.
//   - W005: a rollout that cannot reach 100% before its label is cancelled.
//   - W006: a block that matches nothing the tree offers.
//
// Dominance is decided conservatively: M dominates a row of L only when M applies to every
// device and time L's row applies to, and then beats it. So M must be live on Windows Update,
// in the same offer pools (the same auto-install flags), not an extension INF, with a row on
// the same hardware ID and family whose OS range (row release offered forward, floor,
// ceiling, build bounds) contains the row's; live no later than L and cancelled no earlier;
// not restricted by anything L is not restricted by (audiences, CHIDs — label and INF —, S
// mode, a flight, a block naming M and not L); and with its rollout at 100% and not paused
// by the time L goes live. The cost is one pass over the rows grouped by hardware ID, sorted
// by the order of offers: only an earlier entry can beat a row.

// analysis holds what the checks need to know of each label, computed once.
type analysis struct {
	v      *validator
	now    time.Time
	labels map[*Label]*labelInfo
	named  map[string][]int            // label id -> the blocks (indexes in Tree.Blocks) that name it
	famHas [ostable.NumFamilies][]bool // by slot: the family has an OS code for that release
}

// labelInfo is one live Windows Update label as the order of offers sees it.
type labelInfo struct {
	l         *Label
	start     time.Time // go-live, or now when later
	golive    time.Time
	cancel    time.Time // zero: never
	canLead   bool      // no rollout, flight or CHID/audience gate beyond L's own (see dominates)
	floor     ostable.Slot
	ceil      ostable.Slot
	chids     []chid.ID
	rows      []rowInfo // the live rows, in file order
	offerable int       // rows with an OS release in their range
	dominated int       // offerable rows another label always beats
	firstBeat *rowInfo  // the first dominated row, for the message
}

// rowInfo is one live row of a live label. A tree has millions: the fields are ordered to
// pack into 64 bytes (the INF's CHIDs are read through inf).
type rowInfo struct {
	li       *labelInfo
	inf      *INF
	beatenBy *rowInfo
	hwid     string
	version  uint64
	index    int32
	date     int32
	family   ostable.Family
	slot     ostable.Slot
	lower    ostable.Slot // the releases the row applies on (modern rows)
	upper    ostable.Slot
	score    uint8
	legacy   bool
	inRange  bool // some release of the family lies within [lower, upper] (always for legacy)
	ext      bool
}

// Analyse runs the static analysis alone and returns its warnings, unsorted: W001 for labels
// no device can reach (dominance, OS ranges), W005 and W006 (W004 is Validate's, with the
// ties of W002). Validate runs it too; it is here for measuring it (bench's
// BenchmarkAnalysis). The tree must have been validated once (Validate applies expansion).
func (t *Tree) Analyse(opts *ValidateOptions) Problems {
	if opts == nil {
		opts = &ValidateOptions{}
	}
	v := &validator{t: t, opts: opts, sink: &problemSink{}}
	v.analyse()
	return v.sink.list
}

// analyse runs the static analysis after the per-label rules and ties.
func (v *validator) analyse() {
	v.finishAnalysis(v.prepareAnalysis())
}

// prepareAnalysis computes what the analysis knows of each label and groups the rows by
// hardware ID. It reads the tree only, so it can run beside ties; finishAnalysis needs the
// pairs ties reported (v.tied).
func (v *validator) prepareAnalysis() *preparedAnalysis {
	a := &analysis{v: v, now: v.opts.Now, labels: make(map[*Label]*labelInfo, len(v.t.Products)*8), named: map[string][]int{}}
	tab := v.t.OS
	for f := range a.famHas {
		a.famHas[f] = make([]bool, tab.NumSlots())
		for s := tab.FirstRelease(); int(s) < tab.NumSlots(); s++ {
			_, a.famHas[f][s] = tab.OSCodeFor(ostable.Family(f), tab.SlotName(s))
		}
	}
	for i, b := range v.t.Blocks {
		for _, id := range b.Labels {
			a.named[id] = append(a.named[id], i)
		}
	}
	labels := v.t.Labels()
	rows := 0
	for _, l := range labels {
		rows += len(l.Rows)
	}
	// The rows are grouped by hardware ID in one slice, group after group: a first pass
	// numbers the groups and counts their rows, a second places each row (a map of slices
	// costs three times the memory, a tree having millions of rows).
	group := make(map[string]int32, rows/4) // a hardware ID is on a few rows
	var sizes []int32
	var of []int32 // each grouped row's group, in order
	var infos []*labelInfo
	for _, l := range labels {
		li := a.info(l)
		if li == nil {
			continue
		}
		infos = append(infos, li)
		for i := range li.rows {
			if r := &li.rows[i]; r.inRange && !r.ext {
				g, ok := group[r.hwid]
				if !ok {
					g = int32(len(sizes))
					group[r.hwid] = g
					sizes = append(sizes, 0)
				}
				sizes[g]++
				of = append(of, g)
			}
		}
	}
	flat := make([]*rowInfo, len(of))
	groups := make([][]*rowInfo, len(sizes))
	at := 0
	for g, n := range sizes {
		groups[g] = flat[at : at : at+int(n)]
		at += int(n)
	}
	k := 0
	for _, li := range infos {
		for i := range li.rows {
			if r := &li.rows[i]; r.inRange && !r.ext {
				groups[of[k]] = append(groups[of[k]], r)
				k++
			}
		}
	}
	return &preparedAnalysis{a, labels, groups}
}

// preparedAnalysis is prepareAnalysis's result.
type preparedAnalysis struct {
	a      *analysis
	labels []*Label
	groups [][]*rowInfo // the rows of each hardware ID (in range, not extension INFs), in label order
}

// finishAnalysis finds the dominated rows and reports.
func (v *validator) finishAnalysis(p *preparedAnalysis) {
	a := p.a
	a.v = v
	a.dominance(p.groups)
	for _, l := range p.labels {
		if li := a.labels[l]; li != nil {
			a.report(li)
		}
		a.rolloutVersusCancel(l)
	}
	if !v.opts.Partial {
		a.blocks()
	}
}

// info computes a label's labelInfo, or nil when the label is not live on Windows Update.
func (a *analysis) info(l *Label) *labelInfo {
	if l.Destination != "windowsUpdate" || l.Publishing == nil || !l.Live() {
		return nil
	}
	tab := a.v.t.OS
	li := &labelInfo{l: l, golive: l.Publishing.GoLive, start: l.Publishing.GoLive, floor: ostable.NoSlot, ceil: ostable.NoSlot, chids: l.LiveCHIDs()}
	if a.now.After(li.start) {
		li.start = a.now
	}
	if c := l.Distribution.Cancelled; c != nil {
		li.cancel = c.At
	}
	if l.Floor != "" {
		li.floor, _ = tab.ReleaseSlot(l.Floor)
	}
	if l.Ceiling != "" {
		li.ceil, _ = tab.ReleaseSlot(l.Ceiling)
	}
	li.canLead = a.canLead(li)
	a.labels[l] = li
	for i, r := range l.Rows {
		if !r.Live() {
			continue
		}
		c, ok := tab.LookupOSCode(r.OSCode)
		if !ok || c.Retired {
			continue
		}
		inf := l.Submission.INF(r.Bundle, r.INF)
		if inf == nil {
			continue
		}
		e, ok := inf.Entry(r.OSCode, r.HWID)
		if !ok {
			continue
		}
		if li.rows == nil {
			li.rows = make([]rowInfo, 0, len(l.Rows)) // never grown again: groups point into it
		}
		li.rows = append(li.rows, rowInfo{li: li, inf: inf, index: int32(i), hwid: r.HWID, family: c.Family, slot: c.Slot, legacy: c.Legacy,
			score: e.FeatureScore, date: inf.Date, version: inf.Version,
			ext: l.Submission.IsExtensionInf || inf.ExtensionID != nil})
		ri := &li.rows[len(li.rows)-1]
		a.bounds(ri)
		if ri.inRange {
			li.offerable++
		}
	}
	return li
}

// canLead reports whether a label is free of the gates no other label's restriction can
// match: a co-engineered or flight-signed label is offered to Insiders only, and a flight not
// approved by the time the other label starts holds it for Insiders until it is. (Rollouts,
// CHIDs, audiences and blocks are compared per pair in dominates.)
func (a *analysis) canLead(li *labelInfo) bool {
	l := li.l
	if l.Publishing.CoEngineered || l.Product.IsFlightSign {
		return false
	}
	if f := l.Distribution.Flight; f != nil && (f.Approved.IsZero() || f.Approved.After(li.start)) {
		return false
	}
	return true
}

// bounds sets the releases a row applies on: from its own release (offered forward) and the
// label's floor, to the label's ceiling, build bounds included, and whether the row's family
// has a release there.
func (a *analysis) bounds(r *rowInfo) {
	tab := a.v.t.OS
	l := r.li.l
	if r.legacy {
		// Pre-Windows 10 codes match their own era only; a release floor keeps them out.
		r.lower, r.upper, r.inRange = r.slot, r.slot, r.li.floor == ostable.NoSlot && l.FloorBuild == 0
		return
	}
	r.lower, r.upper = r.slot, tab.LastSlot()
	if r.li.floor != ostable.NoSlot && r.li.floor > r.lower {
		r.lower = r.li.floor
	}
	if l.FloorBuild != 0 {
		if s, ok := tab.SlotOf(l.FloorBuild); ok && s > r.lower {
			r.lower = s
		}
	}
	if r.li.ceil != ostable.NoSlot && r.li.ceil < r.upper {
		r.upper = r.li.ceil
	}
	if l.CeilingBuild != 0 {
		if s, ok := tab.SlotOf(l.CeilingBuild); ok && s < r.upper {
			r.upper = s
		}
	}
	for s := r.lower; s <= r.upper && int(s) < len(a.famHas[r.family]); s++ {
		if a.famHas[r.family][s] {
			r.inRange = true
			return
		}
	}
}

// orderBefore is offers.md step 4 for two rows of the same hardware ID (the same device
// position, so rank is the feature score): lower rank, newer date, higher version, later
// go-live, smaller label id. It returns which field decided, or "" when a does not come first.
func orderBefore(a, b *rowInfo) string {
	switch {
	case a.score != b.score:
		return when(a.score < b.score, "a lower rank")
	case a.date != b.date:
		return when(a.date > b.date, "a newer driver date")
	case a.version != b.version:
		return when(a.version > b.version, "a higher driver version")
	case !a.li.golive.Equal(b.li.golive):
		return when(a.li.golive.After(b.li.golive), "a later go-live")
	}
	return when(CompareIDs(a.li.l.ID, b.li.l.ID) < 0, "a smaller label id")
}

// first is orderBefore as a comparison, for sorting.
func first(a, b *rowInfo) bool {
	switch {
	case a.score != b.score:
		return a.score < b.score
	case a.date != b.date:
		return a.date > b.date
	case a.version != b.version:
		return a.version > b.version
	case !a.li.golive.Equal(b.li.golive):
		return a.li.golive.After(b.li.golive)
	}
	return CompareIDs(a.li.l.ID, b.li.l.ID) < 0
}

func when(cond bool, s string) string {
	if cond {
		return s
	}
	return ""
}

// dominance finds, for every row, an earlier row of its hardware ID (in the order of offers)
// that dominates it. Dominance is transitive, so only the leaders — rows no earlier row
// dominates — are tried, and of those only the ones whose restrictions can contain the
// row's: unrestricted leaders for every row, leaders targeting CHIDs for rows that target
// one of theirs, the rest for rows restricted by audiences or INF CHIDs. (Missing a
// dominator through this can only leave a warning out, never add one.)
func (a *analysis) dominance(groups [][]*rowInfo) {
	var buckets []leaders // reused from group to group
	for _, g := range groups {
		if len(g) < 2 {
			continue
		}
		sort.Slice(g, func(i, j int) bool { return first(g[i], g[j]) })
		a.forwardTies(g)
		n := 0
		for _, r := range g {
			pub := r.li.l.Publishing
			k := bucketKey{r.family, r.legacy, pub.AutoApplicable, pub.AutoDU}
			var ls *leaders
			for i := range buckets[:n] {
				if buckets[i].key == k {
					ls = &buckets[i]
					break
				}
			}
			if ls == nil {
				if n == len(buckets) {
					buckets = append(buckets, leaders{})
				}
				ls = &buckets[n]
				n++
				ls.key, ls.free, ls.other = k, ls.free[:0], ls.other[:0]
				clear(ls.byCHID)
			}
			restricted := len(r.li.l.Audiences) > 0 || len(r.inf.CHIDs) > 0
			if !a.tryLeaders(ls.free, r) && !(len(r.li.chids) > 0 && a.tryLeaders(ls.byCHID[r.li.chids[0]], r)) && restricted {
				a.tryLeaders(ls.other, r)
			}
			if r.beatenBy != nil {
				r.li.dominated++
				if r.li.firstBeat == nil || r.index < r.li.firstBeat.index {
					r.li.firstBeat = r
				}
				continue
			}
			if !r.li.canLead {
				continue
			}
			switch {
			case len(r.li.chids) > 0:
				if ls.byCHID == nil {
					ls.byCHID = map[chid.ID][]*rowInfo{}
				}
				for _, c := range r.li.chids {
					ls.byCHID[c] = append(ls.byCHID[c], r)
				}
			case restricted:
				ls.other = append(ls.other, r)
			default:
				ls.free = append(ls.free, r)
			}
		}
	}
}

// forwardTies finds, in a hardware ID's rows sorted by the order of offers, two labels
// whose rows are on different releases of one family but meet on a later one (offered
// forward) and tie there on everything but the label id (W004). Rows on the same OS code are
// the ties check's (W002, W004); a pair it reported is not reported again.
func (a *analysis) forwardTies(g []*rowInfo) {
	for i := 0; i < len(g); {
		j := i + 1
		for j < len(g) && sameKey(g[i], g[j]) {
			j++
		}
		for x := i; x < j; x++ {
			for y := x + 1; y < j; y++ {
				p, q := g[x], g[y] // p has the smaller label id
				if p.li == q.li || p.legacy || q.legacy || p.family != q.family || p.slot == q.slot ||
					max(p.lower, q.lower) > min(p.upper, q.upper) || disjointCHIDs(p.li.l, q.li.l) {
					continue
				}
				pair := [2]*Label{p.li.l, q.li.l}
				if a.v.tied[pair] {
					continue
				}
				if a.v.tied == nil {
					a.v.tied = map[[2]*Label]bool{}
				}
				a.v.tied[pair] = true
				tab := a.v.t.OS
				a.v.add(q.li.l, "W004", pointerIndex("/targeting/hardwareIds", int(q.index)),
					"ties with label %s on everything the order of offers compares but the label id (rank, date %s, version %s, go-live %s) for %s on %s from %s on (this row is on %s, label %s's on %s, both offered forward); label %s wins only by its smaller id: give the one meant to win a newer date or higher version",
					p.li.l.ID, DateOfDays(p.date).Format("2006-01-02"), FormatVersion(p.version), p.li.golive.Format(time.RFC3339), p.hwid, p.family,
					tab.SlotName(max(p.lower, q.lower)), tab.SlotName(q.slot), p.li.l.ID, tab.SlotName(p.slot), p.li.l.ID)
			}
		}
		i = j
	}
}

// sameKey reports whether two rows tie on everything the order compares but the label id.
func sameKey(a, b *rowInfo) bool {
	return a.score == b.score && a.date == b.date && a.version == b.version && a.li.golive.Equal(b.li.golive)
}

// bucketKey is what two rows must share for one to dominate the other: family, era or
// release, and offer pools.
type bucketKey struct {
	family         ostable.Family
	legacy, au, du bool
}

// leaders are the rows of a bucket no earlier row dominates, by the restrictions they carry.
type leaders struct {
	key    bucketKey
	free   []*rowInfo             // no audience, no CHIDs of the label or the INF
	byCHID map[chid.ID][]*rowInfo // targeting CHIDs: under each of them
	other  []*rowInfo             // audiences or INF CHIDs without label CHIDs
}

// tryLeaders sets r.beatenBy to the first of ms that dominates r.
func (a *analysis) tryLeaders(ms []*rowInfo, r *rowInfo) bool {
	for _, m := range ms {
		if m.li != r.li && a.dominates(m, r) {
			r.beatenBy = m
			return true
		}
	}
	return false
}

// dominates reports whether row m (which comes first in the order) applies to every device
// and at every time row r does. See the comment at the top of the file.
func (a *analysis) dominates(m, r *rowInfo) bool {
	ml, rl := m.li.l, r.li.l
	switch {
	case m.ext || m.family != r.family || m.legacy != r.legacy:
		return false
	case ml.Publishing.AutoApplicable != rl.Publishing.AutoApplicable || ml.Publishing.AutoDU != rl.Publishing.AutoDU:
		return false
	case m.lower > r.lower || m.upper < r.upper:
		return false
	case ml.FloorBuild != 0 && (rl.FloorBuild == 0 || ml.FloorBuild > rl.FloorBuild):
		return false
	case ml.CeilingBuild != 0 && (rl.CeilingBuild == 0 || ml.CeilingBuild < rl.CeilingBuild):
		return false
	case m.li.golive.After(r.li.start):
		return false
	case !m.li.cancel.IsZero() && (r.li.cancel.IsZero() || m.li.cancel.Before(r.li.cancel)):
		return false
	case rl.Publishing.Windows10S && !ml.Publishing.Windows10S:
		return false
	case !subset(r.li.chids, m.li.chids) || !subset(r.inf.CHIDs, m.inf.CHIDs):
		return false
	case len(ml.Audiences) > 0 && (len(rl.Audiences) == 0 || !subset(rl.Audiences, ml.Audiences)):
		return false
	}
	if ro := ml.Distribution.Rollout; ro != nil && len(ml.Audiences) == 0 {
		if ro.Paused || len(ro.Stages) == 0 {
			return false
		}
		full := false
		for _, s := range ro.Stages {
			if s.BasisPoints == 10000 && !s.At.After(r.li.start) {
				full = true
			}
		}
		if !full {
			return false
		}
	}
	for _, b := range a.named[ml.ID] {
		if !slices.Contains(a.v.t.Blocks[b].Labels, rl.ID) {
			return false
		}
	}
	return true
}

// subset reports whether a restriction to the CHIDs in small is at most as wide as one to
// those in big: big is empty (no restriction), or small is non-empty and within big.
func subset(small, big []chid.ID) bool {
	if len(big) == 0 {
		return true
	}
	if len(small) == 0 {
		return false
	}
	for _, x := range small {
		if !slices.Contains(big, x) {
			return false
		}
	}
	return true
}

// report warns about a label whose rows can never be offered (W001).
func (a *analysis) report(li *labelInfo) {
	l, tab := li.l, a.v.t.OS
	if len(li.rows) == 0 {
		return // only retired OS codes or broken rows: reported elsewhere
	}
	if li.offerable == 0 {
		f := labelFacts{}
		if f = a.v.facts(l); f.hasModern && !f.hasLegacy && li.ceil != ostable.NoSlot && li.ceil < f.minRel {
			return // "ceiling below every row", reported by neverOffered
		}
		ptr, bounds := "/targeting/inServicePublishInfo", fmt.Sprintf("floor %s and ceiling %s", orNone(l.Floor), orNone(l.Ceiling))
		if l.HasCoEng {
			ptr, bounds = "/targeting/coEngDriverPublishInfo", fmt.Sprintf("build floor %s and build ceiling %s", buildOrNone(l.FloorBuild), buildOrNone(l.CeilingBuild))
		}
		r := &li.rows[0]
		v := fmt.Sprintf("%s %s", r.family, tab.SlotName(r.slot))
		if r.legacy {
			v += " (pre-Windows 10 rows match only their own version, which a release floor excludes)"
		}
		a.v.add(l, "W001", ptr, "no OS release lies within %s for any live row (row 0 is %s), so nothing is offered; move the floor or ceiling", bounds, v)
		return
	}
	if li.dominated < li.offerable || li.firstBeat == nil {
		return
	}
	if !a.now.IsZero() && !li.cancel.IsZero() && !a.now.Before(li.cancel) {
		return // cancelled already: off on purpose, whatever outranks it
	}
	r, m := li.firstBeat, li.firstBeat.beatenBy
	a.v.add(l, "W001", pointerIndex("/targeting/hardwareIds", int(r.index)),
		"every row is outranked wherever it applies: %s on %s %s loses to label %s (%s, and it applies at least as widely)%s; raise this driver's rank, date or version, or retire the label",
		r.hwid, r.family, a.v.t.OS.SlotName(r.slot), m.li.l.ID, orderBefore(m, r), moreRows(li.dominated-1))
}

func moreRows(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return "; so does its other row"
	}
	return fmt.Sprintf("; so do its %d other rows", n)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func buildOrNone(b int) string {
	if b == 0 {
		return "(none)"
	}
	return fmt.Sprint(b)
}

// rolloutVersusCancel warns about a rollout that cannot reach 100% before its label's cancel
// (W005): the stages from the cancel on never apply. A cancel already in effect at the
// validation time (ValidateOptions.Now) is a finished rollout, not a plan, and is left alone.
func (a *analysis) rolloutVersusCancel(l *Label) {
	ro, c := l.Distribution.Rollout, l.Distribution.Cancelled
	if l.Destination != "windowsUpdate" || ro == nil || c == nil || c.At.IsZero() || len(ro.Stages) == 0 {
		return
	}
	if !a.now.IsZero() && !a.now.Before(c.At) {
		return
	}
	for _, s := range ro.Stages {
		if s.BasisPoints == 10000 {
			if s.At.Before(c.At) {
				return
			}
			a.v.add(l, "W005", "/distribution/cancelled/at", "the rollout reaches 100%% at %s, not before the label is cancelled at %s; move the cancel or the stages",
				s.At.Format(time.RFC3339), c.At.Format(time.RFC3339))
			return
		}
	}
	last := ro.Stages[len(ro.Stages)-1]
	a.v.add(l, "W005", "/distribution/rollout/stages", "the rollout never reaches 100%% (its last stage is %s%% at %s) before the label is cancelled at %s; add a 100%% stage before the cancel, or drop the cancel",
		FormatBasisPoints(last.BasisPoints), last.At.Format(time.RFC3339), c.At.Format(time.RFC3339))
}

// blocks warns about blocks that match nothing the tree offers (W006): every label they
// name is missing or not live, none of their hardware IDs is on a live row of the labels
// they apply to, or their build range misses every release those labels are offered on.
func (a *analysis) blocks() {
	tab := a.v.t.OS
	byID := map[string]*labelInfo{}
	for _, li := range a.labels {
		byID[li.l.ID] = li
	}
	for i, b := range a.v.t.Blocks {
		ptr := pointerIndex("", i) // its index in blocks.json when no entry before it was malformed (L-codes)
		warn := func(field, format string, args ...any) {
			a.v.sink.add("W006", "blocks.json", ptr+field, scope{}, "block %s matches nothing: "+format, append([]any{b.ID}, args...)...)
		}
		var applies []*labelInfo
		if len(b.Labels) > 0 {
			for _, id := range b.Labels {
				if li := byID[id]; li != nil {
					applies = append(applies, li)
				}
			}
			if len(applies) == 0 {
				warn("/labels", "none of the labels it names (%s) is a live Windows Update label of this tree; correct the ids or remove the block", joinIDs(b.Labels))
				continue
			}
		} else {
			for _, l := range a.v.t.Labels() {
				if li := a.labels[l]; li != nil {
					applies = append(applies, li)
				}
			}
			if len(applies) == 0 {
				continue // an empty tree: nothing to say about its blocks
			}
		}
		if len(b.HardwareIDs) > 0 && !rowsName(applies, b.HardwareIDs) {
			warn("/hardwareIds", "none of its hardware IDs is on a live row of %s (a device would need one of them as well as an ID a label offers); check the IDs", labelsWord(b.Labels))
			continue
		}
		if (b.MinBuild != 0 || b.MaxBuild != 0) && !buildsMeet(tab, applies, b) {
			warn("/minBuild", "its builds (%s to %s) are outside every release %s is offered on; check minBuild and maxBuild",
				buildOrNone(b.MinBuild), buildOrNone(b.MaxBuild), labelsWord(b.Labels))
		}
	}
}

func labelsWord(named []string) string {
	if len(named) == 0 {
		return "any label"
	}
	if len(named) == 1 {
		return "label " + named[0]
	}
	return "the labels it names"
}

func joinIDs(ids []string) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ", "
		}
		s += id
	}
	return s
}

func rowsName(ls []*labelInfo, hwids []string) bool {
	for _, li := range ls {
		for i := range li.rows {
			if slices.Contains(hwids, li.rows[i].hwid) {
				return true
			}
		}
	}
	return false
}

// buildsMeet reports whether a block's build range meets a build some row of the labels is
// offered on. A pre-Windows 10 row, whose era the table gives no build range for here, meets
// any range.
func buildsMeet(tab *ostable.Table, ls []*labelInfo, b Block) bool {
	rels := tab.Releases()
	first := int(tab.FirstRelease())
	lo, hi := b.MinBuild, b.MaxBuild
	if hi == 0 {
		hi = 1<<31 - 1
	}
	for _, li := range ls {
		for i := range li.rows {
			r := &li.rows[i]
			if !r.inRange {
				continue
			}
			if r.legacy {
				return true
			}
			from := rels[int(r.lower)-first].Build
			to := 1<<31 - 1
			if int(r.upper)-first+1 < len(rels) {
				to = rels[int(r.upper)-first+1].Build - 1
			}
			if l := li.l; l.FloorBuild > from {
				from = l.FloorBuild
			}
			if l := li.l; l.CeilingBuild != 0 && l.CeilingBuild < to {
				to = l.CeilingBuild
			}
			if from <= hi && lo <= to {
				return true
			}
		}
	}
	return false
}
