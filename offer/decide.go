package offer

// This file runs the decision procedure of spec/offers.md ("The decision procedure") for
// one request, without allocating once a Result has warmed up (TestDecideAllocs). The spec's
// steps and the functions that implement them:
//
//   - 0. Effective OS: effectiveOS (build, release, family, scan; buildVB turns devmgr into
//     user). deviceCHIDs and deviceAudiences gather the rest of the request step 2 reads.
//   - 1. Candidates: decideDevice, which probes the release's shards with each device ID
//     (hwidShard, hwidRecord in engine.go) and takes the rows of the device's cell (every
//     row, with explain).
//   - 2. Applicability: applicable, checks 1 to 10 in the spec's order, the first failing
//     one the verdict (inAudience, bestLevel, blocked and blockMatches, Bucket and
//     ringPercent serve it); then keepMostSpecificCHID on builds below buildRS3.
//   - 3. Rank: applicable sets each candidate's rank; outrankSameLabel keeps a label's best
//     row, in rowBefore's order.
//   - 4. Order: better; beatsInstalled compares with the installed driver.
//   - 5. Pools: cand.pools.
//   - 6. Choose: choose, each pick made by best.
//   - 7. Extension INFs: extensions, each group ordered by extBetter.
//   - 8. Rollback: choose, which looks for it first: a rollback takes the place of step 6.
//
// Result.offer writes an offer. Why a candidate got its verdict is in its detail, written
// out by response.go (appendDetail) and explain.go.

import (
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/catalogs/ostable"
	"github.com/driveway/driveway/index"
)

// The builds and the revision at which the decision procedure changes (spec/offers.md).
// They are the spec's, not the OS table's: the table maps builds to releases and may be
// replaced, while these are where Windows Update itself behaves differently.
const (
	// buildRS3 is Windows 10 1709 (release RS3). Below it only the most specific CHID level
	// of the surviving rows stays (step 2) and a throttled label waits for 100% (step 2.10);
	// from it a devmgr scan bypasses the throttle for automatic labels, up to buildVB.
	buildRS3 = 16299
	// buildVB is Windows 10 2004 (release VB). From it a devmgr scan is a user scan (Device
	// Manager stopped asking Windows Update, step 0) and a scheduled or user scan is offered
	// an optional driver beside the automatic one (step 6); below it a manual driver is
	// offered as automatic when nothing automatic applies and the device has no driver or a
	// generic one.
	buildVB = 19041
	// revisionRS3Extensions is the first revision of buildRS3 (16299.192) that is offered
	// extension INFs; every later build is (step 7).
	revisionRS3Extensions = 192
)

// Kind is what a PC should do with an offer.
type Kind uint8

// The offer kinds.
const (
	KindAutomatic Kind = iota
	KindOptional
	KindDynamic
	KindExtension
	KindRollback
)

var kindNames = [...]string{"automatic", "optional", "dynamic", "extension", "rollback"}

func (k Kind) String() string { return kindNames[k] }

// Verdict is what the procedure concluded about one candidate row (spec/offers.md).
type Verdict uint8

// The verdicts, a closed list.
const (
	Offered Verdict = iota
	NotLive
	NotYet
	Cancelled
	OSFamily
	BelowFloor
	AboveCeiling
	SMode
	Audience
	Flight
	FlightEnded
	CHID
	CHIDLessSpecific
	Blocked
	Paused
	Rollout
	Category
	Outranked
	NotBetter
	numVerdicts
)

var verdictNames = [numVerdicts]string{"offered", "not-live", "not-yet", "cancelled", "os-family", "below-floor",
	"above-ceiling", "smode", "audience", "flight", "flight-ended", "chid", "chid-less-specific", "blocked", "paused",
	"rollout", "category", "outranked", "not-better"}

func (v Verdict) String() string { return verdictNames[v] }

// Offer is one driver offered to one device. Byte fields alias the request and the release:
// they are valid until the Result is reused and the release released.
type Offer struct {
	Device      int // index in Request.Devices
	Kind        Kind
	Label       uint64
	Manual      bool // category manual (else automatic)
	Product     uint64
	Submission  uint64
	INF, Class  []byte
	HardwareID  []byte
	Rank        uint32
	Date        int32
	Version     uint64
	URL, SHA256 []byte
	Size        uint64
	Throttled   bool // a rollout throttle applied: Bucket and BasisPoints are set
	Bucket      int
	BasisPoints int
	// Record is the label record the offer was decided from (valid as long as the Engine):
	// an edge writes the offer's package record from it (package statement).
	Record *compiled.Label
	// ReportToken, when the caller sets it after Decide (an edge with install reports: see
	// rollout's report tokens), is answered as "reportToken". Decide leaves it empty.
	ReportToken []byte
}

// Candidate is one candidate row of one device, with its verdict: the explain output.
type Candidate struct {
	Device     int
	Label      uint64
	HardwareID []byte
	Row        compiled.Row
	Rank       uint32
	Verdict    Verdict
	detail     detail
}

// detail holds the facts a verdict's one-line explanation prints (formatted at encoding
// time, so deciding does not allocate). Each field means one thing, for the verdicts named
// beside it; the others leave it zero. What a check compared with is the device's own, in
// Result.eff (its release, build and scan), so it is not copied here.
type detail struct {
	// text names the check that failed where a verdict has several ("row", "floor",
	// "ceiling" or "build" for below-floor and above-ceiling; "label" or "INF" for chid; "old"
	// for rollout and paused below buildRS3; "extension" for below-floor, category and
	// not-better), or is what the line quotes: the row's state (not-live), the
	// cancellation's reason (cancelled), the block's id (blocked).
	text string
	// at is a time, Unix seconds: the go-live (not-yet), the cancellation (cancelled), the
	// end of a co-engineered flight (flight-ended).
	at      int64
	label   uint64         // the label that outranks the candidate (outranked)
	version uint64         // the installed driver's version (not-better)
	build   uint32         // the label's floor or ceiling build (below-floor and above-ceiling "build")
	date    int32          // the installed driver's date, days since 1970-01-01 (not-better)
	bucket  int32          // the device's bucket in the label's rollout, 0–9999 (rollout, paused)
	percent int32          // the rollout's percent now, in basis points (rollout, paused)
	kind    Kind           // the kind offered (offered)
	family  ostable.Family // the row's family (os-family)
	// slot is the release the device's was compared with: the row's (os-family, below-floor
	// "row"), the label's floor (below-floor "floor") or its ceiling (above-ceiling "ceiling").
	slot     ostable.Slot
	channels Channel // the channels the label is in flight to (flight)
	insider  Channel // the device's insider channels (flight)
	level    int8    // the best CHID level the candidate matches on (chid-less-specific)
	best     int8    // the more specific level another candidate matches on (chid-less-specific)
}

// Result is the answer to one request; reuse it across requests (Decide resets it).
type Result struct {
	Sequence uint64
	ID       string
	Offers   []Offer
	Explain  bool
	Cands    []Candidate // every candidate row, when Explain

	// per-request state, kept for its capacity
	eff       effective
	globalHit []bool // per device: which blocks naming no label match it
	devCand   []cand
	probes    []probe // step 1: the device IDs its Bloom filters did not rule out
	devIDs    [chid.NumLevels]chid.ID
	devMask   uint16
	inAud     []chid.ID
	chidH     chid.Hasher
	smbiosKey []byte
	detail    []byte // scratch for explain's detail lines
}

// effective is step 0: the OS the request is judged on.
type effective struct {
	build        uint32
	revision     uint32
	slot         ostable.Slot
	slotOK       bool
	family       ostable.Family
	scan         Scan
	devmgrBypass bool // a devmgr scan on buildRS3 to buildVB-1: the throttle does not apply to automatic labels
}

// cand is one candidate row of the device being decided. A device has a few dozen and
// every step walks them, so it is kept small (two cache lines): the matching ID is found
// again from ident, and the go-live date, which only ties of rank, date and version reach,
// from the label record.
type cand struct {
	l        *labelEntry
	inf      *compiled.INF // in l.infs
	row      compiled.Row
	version  uint64
	rank     uint32
	date     int32
	bucket   int16  // the device's rollout bucket, 0–9999, when throttle (else -1)
	bp       int16  // the rollout's percent in basis points, when throttle
	ident    uint16 // the matching ID: see Device.id
	level    int8   // best matching CHID level, -1 when the row is not CHID-targeted
	verdict  Verdict
	ext      bool
	inCell   bool
	offered  bool
	throttle bool

	// step 6's verdict for a survivor it does not offer (Offered: none), assigned once
	// all are judged
	later Verdict

	detail detail // read only to explain, so after the fields every step reads
}

// probe is a device ID that may be in the release, hashed and routed.
type probe struct {
	h     uint64
	shard *index.Shard
	ident uint16
}

// Candidate IDs: ident is an index in HardwareIDs, or compatibleBase plus an index in
// CompatibleIDs (a rank's low 16 bits, so hardware IDs rank ahead of compatible IDs).
const compatibleBase = 0x2000

// id returns the device ID an ident names.
func (dev *Device) id(ident uint16) []byte {
	if ident >= compatibleBase {
		return dev.CompatibleIDs[ident-compatibleBase]
	}
	return dev.HardwareIDs[ident]
}

// Decide runs the decision procedure for a request at a time and fills res. With explain,
// res.Cands lists every candidate row with its verdict.
func (e *Engine) Decide(req *Request, now time.Time, explain bool, res *Result) {
	res.Sequence, res.ID = e.src.Sequence, e.src.ID
	res.Offers = res.Offers[:0]
	res.Cands = res.Cands[:0]
	res.Explain = explain
	e.effectiveOS(req, &res.eff)
	e.deviceCHIDs(req, res)
	e.deviceAudiences(req, res)
	for d := range req.Devices {
		e.decideDevice(req, d, unix(now), res)
	}
}

// Step 0.
func (e *Engine) effectiveOS(req *Request, eff *effective) {
	eff.build, eff.revision, eff.scan, eff.family = req.Build, req.Revision, req.Scan, req.Family
	if req.Scan == ScanUpgrade {
		eff.build, eff.revision = req.TargetBuild, 0
	}
	s, ok := e.src.OS.SlotOf(int(eff.build))
	eff.slot, eff.slotOK = s, ok
	eff.devmgrBypass = false
	if req.Scan == ScanDevmgr {
		if eff.build >= buildVB {
			eff.scan = ScanUser // Device Manager stopped asking Windows Update in 2004
		} else if eff.build >= buildRS3 {
			eff.devmgrBypass = true
		}
	}
}

// deviceCHIDs collects the request's CHIDs: "chids" when given, else computed from smbios.
func (e *Engine) deviceCHIDs(req *Request, res *Result) {
	switch {
	case req.HasCHIDs:
		res.devIDs, res.devMask = req.CHIDs, req.CHIDMask
	case req.HasSMBIOS:
		e.computeCHIDs(&req.SMBIOS, res)
	default:
		res.devMask = 0
	}
}

// deviceAudiences lists the audiences the device is in.
func (e *Engine) deviceAudiences(req *Request, res *Result) {
	res.inAud = res.inAud[:0]
	for _, a := range e.audience {
		in := a.targetRing != "" && string(req.TargetRing) == a.targetRing
		if !in && a.name != "" {
			for _, name := range req.Audiences {
				if string(name) == a.name {
					in = true
					break
				}
			}
		}
		if in {
			res.inAud = append(res.inAud, a.id)
		}
	}
}

func (e *Engine) decideDevice(req *Request, d int, now int64, res *Result) {
	dev := &req.Devices[d]
	eff := &res.eff
	cands := res.devCand[:0]
	// Step 1: candidates, one probe per device ID. Most IDs are in no label, and the shards'
	// Bloom filters say so from one cache line each: all the IDs are tested first, in a loop
	// whose reads do not depend on each other and so overlap, and only the few that may be
	// in the release are looked up.
	probes := res.probes[:0]
	maybe := func(ids [][]byte, base uint16) {
		for i, id := range ids {
			h := index.Hash(id)
			if s := e.hwidShard(h); s.MayContain(h) {
				probes = append(probes, probe{h: h, shard: s, ident: base + uint16(i)})
			}
		}
	}
	maybe(dev.HardwareIDs, 0)
	maybe(dev.CompatibleIDs, compatibleBase)
	kept := probes[:0] // the same for the hash table's first slot
	for _, p := range probes {
		if !p.shard.StartsEmpty(p.h) {
			kept = append(kept, p)
		}
	}
	for _, p := range kept {
		rec, ok := e.hwidRecord(dev.id(p.ident), p.h, p.shard)
		if !ok {
			continue
		}
		start, count := 0, 0
		if eff.slotOK {
			start, count = rec.Cell(eff.family, eff.slot)
		}
		// Without explain only the rows of the device's cell are candidates.
		from, to := start, start+count
		if res.Explain {
			from, to = 0, rec.NumRows()
		}
		for r := from; r < to; r++ {
			inCell := r >= start && r < start+count
			row := rec.Row(r)
			cands = append(cands, cand{row: row, ident: p.ident, inCell: inCell, level: -1, bucket: -1})
		}
	}
	res.probes = probes[:0]
	if len(cands) == 0 {
		// Most devices of a whole PC: no ID is in the release, so every later step would
		// find nothing to judge (with explain too, which lists only candidates).
		return
	}
	// Blocks that name no label apply to every candidate: match them once per device.
	res.globalHit = res.globalHit[:0]
	for _, i := range e.global {
		res.globalHit = append(res.globalHit, e.blockMatches(&e.blocks[i], dev, eff.build, res))
	}
	// The rows' labels, in a pass of their own: each is a read of the label cache that
	// depends on no other, so they overlap too.
	for i := range cands {
		cands[i].l = e.label(cands[i].row.Label)
	}

	// Step 2: applicability, first failing check is the verdict.
	for i := range cands {
		e.applicable(req, dev, &cands[i], now, res)
	}
	if eff.build < buildRS3 {
		keepMostSpecificCHID(cands)
	}
	// Step 3.
	outrankSameLabel(cands)
	e.choose(dev, d, cands, res)
	e.extensions(dev, d, cands, res)
	if res.Explain {
		for i := range cands {
			c := &cands[i]
			res.Cands = append(res.Cands, Candidate{Device: d, Label: c.l.id, HardwareID: dev.id(c.ident), Row: c.row, Rank: c.rank, Verdict: c.verdict, detail: c.detail})
		}
	}
	res.devCand = cands[:0]
}

// keepMostSpecificCHID ends step 2 on builds below RS3: among the CHID-targeted rows that
// survived, only those whose best CHID level is the most specific (lowest) stay. Extension
// INFs are left to step 7.
func keepMostSpecificCHID(cands []cand) {
	best := int8(-1)
	for i := range cands {
		c := &cands[i]
		if c.verdict == Offered && c.level >= 0 && !c.ext && (best < 0 || c.level < best) {
			best = c.level
		}
	}
	for i := range cands {
		c := &cands[i]
		if c.verdict == Offered && c.level > best && !c.ext {
			c.verdict, c.detail = CHIDLessSpecific, detail{level: c.level, best: best}
		}
	}
}

// outrankSameLabel runs step 3: a label matching through several rows takes its lowest rank;
// its other rows are outranked by itself. Extension INFs are left to step 7 (rank does not
// count there, and a label's extension INFs may belong to different groups). rowBefore is a
// total order, so exactly the first row of each label's group in it stays: the group's
// first candidate finds it and outranks the others, which later passes then skip.
func outrankSameLabel(cands []cand) {
	for i := range cands {
		c := &cands[i]
		if c.verdict != Offered || c.ext {
			continue
		}
		best, more := i, false
		for j := i + 1; j < len(cands); j++ {
			if o := &cands[j]; o.l == c.l && o.verdict == Offered && !o.ext {
				more = true
				if rowBefore(o, &cands[best], j, best) {
					best = j
				}
			}
		}
		for j := i; more && j < len(cands); j++ {
			if o := &cands[j]; j != best && o.l == c.l && o.verdict == Offered && !o.ext {
				o.verdict, o.detail = Outranked, detail{label: c.l.id, text: "same label, better row"}
			}
		}
	}
}

// applicable runs step 2 for one candidate row and sets its verdict (Offered if it survives)
// and what later steps need.
func (e *Engine) applicable(req *Request, dev *Device, c *cand, now int64, res *Result) {
	eff := &res.eff
	li := c.l
	rec := &li.rec
	c.verdict = Offered
	set := func(v Verdict, d detail) { c.verdict, c.detail = v, d }
	if !li.ok {
		set(NotLive, detail{text: "label record missing from the release"})
		return
	}
	inf, ok := li.inf(int(c.row.INF))
	if !ok {
		set(NotLive, detail{text: "INF missing from the label record"})
		return
	}
	c.inf, c.date, c.version = inf, inf.Date, inf.Version
	c.ext = rec.Flags&compiled.FlagExtensionINF != 0 || inf.HasExtension
	c.rank = uint32(c.row.Score)<<16 | uint32(c.ident)
	// 1. live
	if !c.row.Live() || rec.Flags&compiled.FlagWindowsUpdate == 0 {
		set(NotLive, detail{text: c.row.State()})
		return
	}
	// 2. go-live and cancel
	if now < rec.GoLive {
		set(NotYet, detail{at: rec.GoLive})
		return
	}
	if li.ctl != nil && li.ctl.cancelled != nil && now >= unix(li.ctl.cancelled.At) {
		set(Cancelled, detail{at: unix(li.ctl.cancelled.At), text: li.ctl.cancelled.Reason})
		return
	}
	// 3. OS family and the row's own release (rows outside the cell: explain only)
	if !c.inCell {
		tab := e.src.OS
		if c.row.Family != eff.family || !eff.slotOK || !tab.IsRelease(c.row.Slot) || !tab.IsRelease(eff.slot) {
			set(OSFamily, detail{family: c.row.Family, slot: c.row.Slot})
		} else {
			set(BelowFloor, detail{slot: c.row.Slot, text: "row"})
		}
		return
	}
	// 4. floors and ceilings
	switch {
	case rec.FloorSlot != ostable.NoSlot && eff.slot < rec.FloorSlot:
		set(BelowFloor, detail{slot: rec.FloorSlot, text: "floor"})
		return
	case rec.FloorBuild != 0 && eff.build < rec.FloorBuild:
		set(BelowFloor, detail{build: rec.FloorBuild, text: "build"})
		return
	case rec.CeilSlot != ostable.NoSlot && eff.slot > rec.CeilSlot:
		set(AboveCeiling, detail{slot: rec.CeilSlot, text: "ceiling"})
		return
	case rec.CeilBuild != 0 && eff.build > rec.CeilBuild:
		set(AboveCeiling, detail{build: rec.CeilBuild, text: "build"})
		return
	}
	// 5. S mode
	if req.SMode && rec.Flags&compiled.FlagWindows10S == 0 {
		set(SMode, detail{})
		return
	}
	// 6. audiences
	if rec.Audiences.Len() > 0 && !e.inAudience(rec, res) {
		set(Audience, detail{})
		return
	}
	// 7. flights
	alwaysFlight := rec.Flags&(compiled.FlagCoEngineered|compiled.FlagFlightSigned) != 0
	var fl *compiled.Flight
	var channels Channel
	if li.ctl != nil {
		fl, channels = li.ctl.flight, li.ctl.channels
	}
	if alwaysFlight || (fl != nil && (fl.Approved.IsZero() || now < unix(fl.Approved))) {
		if rec.Flags&compiled.FlagCoEngineered != 0 && fl != nil && !fl.Start.IsZero() && now >= unix(fl.Start)+60*86400 {
			set(FlightEnded, detail{at: unix(fl.Start) + 60*86400})
			return
		}
		if req.Insider == 0 || channels&req.Insider == 0 {
			set(Flight, detail{channels: channels, insider: req.Insider})
			return
		}
	}
	// 8. CHIDs: the label's, then the INF's
	if rec.CHIDs.Len() > 0 {
		lv := res.bestLevel(rec.CHIDs)
		if lv < 0 {
			set(CHID, detail{text: "label"})
			return
		}
		c.level = int8(lv)
	}
	if inf.CHIDs.Len() > 0 {
		lv := res.bestLevel(inf.CHIDs)
		if lv < 0 {
			set(CHID, detail{text: "INF"})
			return
		}
		if c.level < 0 || int8(lv) < c.level {
			c.level = int8(lv)
		}
	}
	// 9. blocks
	if id, ok := e.blocked(li, dev, eff.build, res); ok {
		set(Blocked, detail{text: id})
		return
	}
	// 10. the rollout throttle (audience-restricted labels are never throttled)
	if li.ctl != nil && li.ctl.rollout != nil && rec.Audiences.Len() == 0 {
		ro := li.ctl.rollout
		p := ro.Percent(time.Unix(now, 0))
		automatic := rec.Flags&compiled.FlagManual == 0
		switch {
		case eff.devmgrBypass && automatic:
			// Device Manager on RS3 to 19H1 (builds below VB) bypasses the throttle, even a pause.
		case eff.build < buildRS3:
			if ro.Paused || p < 10000 {
				v := Rollout
				if ro.Paused {
					v = Paused
				}
				set(v, detail{percent: int32(p), text: "old"})
				return
			}
		default:
			b := Bucket(li.id, req.DeviceID)
			if p > 0 && len(li.ctl.clusters) > 0 { // an even first ring
				p = li.ctl.ringPercent(p, dev, c.ident, eff.build, res)
			}
			if b >= p {
				v := Rollout
				if ro.Paused {
					v = Paused
				}
				set(v, detail{bucket: int32(b), percent: int32(p)})
				return
			}
			c.throttle, c.bucket, c.bp = true, int16(b), int16(p)
		}
	}
}

// bestLevel returns the lowest N whose HardwareID-N of the device is in ids, or -1.
func (res *Result) bestLevel(ids compiled.IDs) int {
	for n := 0; n < chid.NumLevels; n++ {
		if res.devMask&(1<<n) != 0 && ids.Contains(res.devIDs[n]) {
			return n
		}
	}
	return -1
}

func (e *Engine) inAudience(rec *compiled.Label, res *Result) bool {
	for _, a := range res.inAud {
		if rec.Audiences.Contains(a) {
			return true
		}
	}
	return false
}

// blocked returns the id of the first block that matches the device for a label: one that
// names the label, or one that names no label (matched once per device in res.globalHit).
func (e *Engine) blocked(l *labelEntry, dev *Device, build uint32, res *Result) (string, bool) {
	for _, i := range l.blocks {
		if b := &e.blocks[i]; e.blockMatches(b, dev, build, res) {
			return b.id, true
		}
	}
	for k, hit := range res.globalHit {
		if hit {
			return e.blocks[e.global[k]].id, true
		}
	}
	return "", false
}

func (e *Engine) blockMatches(b *block, dev *Device, build uint32, res *Result) bool {
	if b.min != 0 && build < b.min || b.max != 0 && build > b.max {
		return false
	}
	if b.hwids != nil && !b.namesAny(dev.HardwareIDs) && !b.namesAny(dev.CompatibleIDs) {
		return false
	}
	if b.chids != nil {
		hit := false
		for n := 0; n < chid.NumLevels && !hit; n++ {
			if res.devMask&(1<<n) != 0 {
				for _, id := range b.chids {
					if id == res.devIDs[n] {
						hit = true
					}
				}
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

// namesAny reports whether the block names one of ids.
func (b *block) namesAny(ids [][]byte) bool {
	for _, id := range ids {
		if b.hwidLens.has(len(id)) && b.hwids[string(id)] {
			return true
		}
	}
	return false
}

// Bucket is a device's fixed place, 0–9999, in a label's rollout: xxhash64 of the label id's
// decimal string, a NUL byte and the device id, mod 10000 (spec/offers.md).
func Bucket(label uint64, deviceID []byte) int {
	var buf [20]byte
	n := len(buf)
	for v := label; ; v /= 10 {
		n--
		buf[n] = byte('0' + v%10)
		if v < 10 {
			break
		}
	}
	var d xxhash.Digest
	d.Reset()
	d.Write(buf[n:])
	d.Write([]byte{0})
	d.Write(deviceID)
	return int(d.Sum64() % 10000)
}

// better reports whether a is ahead of b in step 4's order: lower rank, newer date, higher
// version, later go-live, smaller label id.
func better(a, b *cand, la, lb uint64) bool {
	switch {
	case a.rank != b.rank:
		return a.rank < b.rank
	case a.date != b.date:
		return a.date > b.date
	case a.version != b.version:
		return a.version > b.version
	case a.l.rec.GoLive != b.l.rec.GoLive:
		return a.l.rec.GoLive > b.l.rec.GoLive
	}
	return la < lb
}

// rowBefore orders two rows of one label (step 3): lower rank, then step 4's order (two
// INFs of the label for one ID), then the INF name, then the row order. The INF name
// comes before the row order because rows are stored in the order of the label's INF
// table, which follows the order of rows in the label file.
func rowBefore(a, b *cand, ia, ib int) bool {
	switch {
	case better(a, b, 0, 0):
		return true
	case better(b, a, 0, 0):
		return false
	case string(a.inf.Name) != string(b.inf.Name):
		return string(a.inf.Name) < string(b.inf.Name)
	}
	return ia < ib
}

// beatsInstalled reports whether a candidate must replace the installed driver: under step
// 4's order with the installed rank when given, else by date then version. A generic or
// absent driver is beaten by anything.
func beatsInstalled(c *cand, drv *Driver) bool {
	if !drv.Present || drv.Generic {
		return true
	}
	if drv.HasRank && c.rank != drv.Rank {
		return c.rank < drv.Rank
	}
	if c.date != drv.Date {
		return c.date > drv.Date
	}
	return c.version > drv.Version
}

// pool membership (step 5)
const (
	poolAuto = 1 << iota
	poolDU
	poolOpt
)

// pools returns the pools of step 5 that a candidate's label is in.
func (c *cand) pools() int {
	f := c.l.rec.Flags
	p := 0
	if f&compiled.FlagAutoApplicable != 0 {
		p |= poolAuto
	} else {
		p |= poolOpt
	}
	if f&compiled.FlagAutoDU != 0 {
		p |= poolDU
	}
	return p
}

// best returns the best surviving base (non-extension) candidate in any of pools that beats
// the installed driver drv (nil: no such condition) and, when than >= 0, candidate than; -1
// when there is none. Step 6's "each pick must be better than installed" is a condition of
// the choice: the pick is the best candidate that meets it.
func (res *Result) best(cands []cand, pools int, drv *Driver, than int) int {
	b := -1
	for i := range cands {
		c := &cands[i]
		if c.verdict != Offered || c.ext || c.pools()&pools == 0 {
			continue
		}
		if (drv != nil && !beatsInstalled(c, drv)) || (than >= 0 && !better(c, &cands[than], c.l.id, cands[than].l.id)) {
			continue
		}
		if b < 0 || better(c, &cands[b], c.l.id, cands[b].l.id) {
			b = i
		}
	}
	return b
}

// choose runs steps 5, 6 and 8 for one device.
func (e *Engine) choose(dev *Device, d int, cands []cand, res *Result) {
	eff := &res.eff
	drv := &dev.Driver
	picked := [2]int{-1, -1} // offered base drivers
	var kinds [2]Kind
	considered := 0

	// Step 8: rollback of a cancelled driver the device has.
	rollback := false
	if drv.Present && !drv.Generic {
		for i := range cands {
			c := &cands[i]
			li := c.l
			// Only rows for the device's OS (in its cell): explain adds the others as
			// candidates, and they must not change the answer.
			if c.verdict == Cancelled && c.inCell && li.ctl != nil && li.ctl.cancelled.Rollback && c.date == drv.Date && c.version == drv.Version {
				rollback = true
			}
		}
	}
	switch {
	case rollback: // the best remaining driver, even if it ranks below the installed one
		considered = poolAuto | poolOpt
		picked[0], kinds[0] = res.best(cands, considered, nil, -1), KindRollback
	case eff.scan == ScanUpgrade:
		considered = poolDU | poolAuto
		picked[0], kinds[0] = res.best(cands, considered, drv, -1), KindDynamic
	case eff.scan == ScanOptional:
		considered = poolOpt
		picked[0], kinds[0] = res.best(cands, considered, drv, -1), KindOptional
	case eff.scan == ScanDevmgr: // builds below VB (effectiveOS turned the others into user)
		considered = poolAuto | poolOpt
		picked[0], kinds[0] = res.best(cands, considered, drv, -1), KindAutomatic
	default: // scheduled, user, plugin
		considered = poolAuto
		picked[0], kinds[0] = res.best(cands, poolAuto, drv, -1), KindAutomatic
		switch {
		case eff.build < buildVB:
			// Manual drivers install only when nothing automatic applies and the device has
			// no driver or only a generic one.
			if picked[0] < 0 && (!drv.Present || drv.Generic) {
				considered |= poolOpt
				picked[0] = res.best(cands, poolOpt, drv, -1)
			}
		case eff.scan != ScanPlugin:
			considered |= poolOpt
			picked[1], kinds[1] = res.best(cands, poolOpt, drv, picked[0]), KindOptional
		}
	}
	for k, i := range picked {
		if i >= 0 {
			res.offer(dev, d, &cands[i], kinds[k])
		}
	}
	// Every other surviving base candidate: outranked, not-better or category, judged
	// against the survivors as they stand after the picks (so in two passes: a verdict
	// must not depend on which candidate was judged first; its detail, read only with a
	// verdict, is set at once).
	for i := range cands {
		c := &cands[i]
		c.later = Offered
		if c.verdict != Offered || c.ext || i == picked[0] || i == picked[1] {
			continue
		}
		if c.pools()&considered == 0 {
			c.later, c.detail = Category, detail{}
			continue
		}
		// Not better than the installed driver, or behind a pick.
		if !rollback && !beatsInstalled(c, drv) {
			c.later, c.detail = NotBetter, detail{date: drv.Date, version: drv.Version}
			continue
		}
		winner := -1
		for _, p := range picked {
			if p >= 0 && (winner < 0 || better(&cands[p], &cands[winner], cands[p].l.id, cands[winner].l.id)) &&
				better(&cands[p], c, cands[p].l.id, c.l.id) {
				winner = p
			}
		}
		if winner < 0 { // cannot happen: a candidate that meets the conditions and was not picked is behind a pick
			winner = res.best(cands, c.pools()&considered, nil, -1)
		}
		c.later, c.detail = Outranked, detail{label: cands[winner].l.id}
	}
	for i := range cands {
		if c := &cands[i]; c.later != Offered {
			c.verdict = c.later
		}
	}
}

// extensions runs step 7 for one device: the best extension INF of each extension id.
func (e *Engine) extensions(dev *Device, d int, cands []cand, res *Result) {
	eff := &res.eff
	oldBuild := eff.build < buildRS3 || (eff.build == buildRS3 && eff.revision < revisionRS3Extensions)
	for i := range cands {
		c := &cands[i]
		if c.verdict != Offered || !c.ext {
			continue
		}
		f := c.l.rec.Flags
		switch {
		case oldBuild:
			c.verdict, c.detail = BelowFloor, detail{text: "extension"}
		case f&compiled.FlagAutoApplicable == 0 && !(eff.scan == ScanUpgrade && f&compiled.FlagAutoDU != 0):
			c.verdict, c.detail = Category, detail{text: "extension"}
		}
	}
	for i := range cands {
		c := &cands[i]
		if c.verdict != Offered || !c.ext {
			continue
		}
		// c is a survivor; is it the best of its group? (A full tie, one INF matching through
		// two IDs, goes to the first candidate.)
		best := i
		for j := range cands {
			o := &cands[j]
			if j != best && o.verdict == Offered && o.ext && o.inf.Extension == c.inf.Extension &&
				(extBetter(o, &cands[best]) || (j < best && !extBetter(&cands[best], o))) {
				best = j
			}
		}
		if best != i {
			c.verdict, c.detail = Outranked, detail{label: cands[best].l.id}
			continue
		}
		newer := true
		for _, x := range dev.Extensions {
			if x.ID == c.inf.Extension && !(c.date > x.Date || (c.date == x.Date && c.version > x.Version)) {
				newer = false
			}
		}
		if !newer {
			c.verdict, c.detail = NotBetter, detail{text: "extension"}
			continue
		}
	}
	// Offer the survivors in extension id order, after the base driver.
	for {
		next := -1
		for i := range cands {
			c := &cands[i]
			if c.verdict == Offered && c.ext && !c.offered && (next < 0 || string(c.inf.Extension[:]) < string(cands[next].inf.Extension[:])) {
				next = i
			}
		}
		if next < 0 {
			break
		}
		res.offer(dev, d, &cands[next], KindExtension)
	}
}

// offer appends an offer for a candidate of device d.
func (res *Result) offer(dev *Device, d int, c *cand, kind Kind) {
	c.offered, c.detail = true, detail{kind: kind}
	li := c.l
	rec := &li.rec
	res.Offers = append(res.Offers, Offer{
		Device: d, Kind: kind, Label: li.id, Manual: rec.Flags&compiled.FlagManual != 0,
		Product: rec.Product, Submission: rec.Submission, INF: c.inf.Name, Class: c.inf.Class,
		HardwareID: dev.id(c.ident), Rank: c.rank, Date: c.date, Version: c.version,
		URL: rec.URL, SHA256: rec.PackageSHA256, Size: rec.PackageSize,
		Throttled: c.throttle, Bucket: int(c.bucket), BasisPoints: int(c.bp), Record: rec,
	})
}

// extBetter orders extension INFs of one group: newer date, higher version, later go-live,
// smaller label id, smaller INF name (rank and CHID level do not count).
func extBetter(a, b *cand) bool {
	switch {
	case a.date != b.date:
		return a.date > b.date
	case a.version != b.version:
		return a.version > b.version
	case a.l.rec.GoLive != b.l.rec.GoLive:
		return a.l.rec.GoLive > b.l.rec.GoLive
	case a.l != b.l:
		return a.l.id < b.l.id
	}
	return string(a.inf.Name) < string(b.inf.Name)
}
