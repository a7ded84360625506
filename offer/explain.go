package offer

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/catalogs/ostable"
)

// An Explanation is an explained decision written for the publisher who asks "why did that
// PC get what it got": for every device its offers and every candidate row with its verdict,
// as the response's explain does, and besides:
//
//   - every check of step 2 the candidate fails, not only the first (its verdict);
//   - the label's control state (flight, rollout and its percent now, pause, cancel with its
//     reason, the blocks that name it) and, for a block, the block's reason;
//   - what the row and the rank mean, in words;
//   - for a device with no candidate, that none of its IDs is in the release.
//
// It is a separate path from Decide's (which stays allocation-free): Explain runs after an
// explained Decide and allocates freely. Its JSON is `driveway offer --format explain`;
// its text `--format table`.
type Explanation struct {
	Release uint64              `json:"release"`
	Now     string              `json:"now"`
	OS      string              `json:"os"` // "amd64/client NI (build 22631.2861), scheduled scan"
	Devices []DeviceExplanation `json:"devices"`
	Terms   []string            `json:"terms"` // what row and rank mean, once
}

// ExplainTerms say what a candidate's row and rank are.
var ExplainTerms = []string{
	"row: the label's grid row that matched, as OS family and release: a Windows 10 or later row is offered forward, to its release and every later one (within the label's floor and ceiling); a row before Windows 10 only to its own version",
	"rank: 8 hex digits, the INF's feature score for the hardware ID (FF by default) then which of the device's IDs matched (hardware ID i counts i-1, compatible ID j counts 2000+j-1, hex); lower wins, then the newer driver date, the higher version, the later go-live, the smaller label id",
}

// DeviceExplanation is one device of an Explanation.
type DeviceExplanation struct {
	InstanceID string                 `json:"instanceId"`
	IDs        int                    `json:"ids"` // hardware and compatible IDs the device sent
	Offers     []string               `json:"offers"`
	Note       string                 `json:"note,omitempty"`
	Candidates []CandidateExplanation `json:"candidates"`
}

// CandidateExplanation is one candidate row, explained.
type CandidateExplanation struct {
	Label      string  `json:"labelId"`
	HardwareID string  `json:"hardwareId"`
	Matched    string  `json:"matched"` // "hardware ID 1 of 3", "compatible ID 2 of 4"
	Row        string  `json:"row"`
	RowMeans   string  `json:"rowMeans"`
	Rank       string  `json:"rank"`
	RankMeans  string  `json:"rankMeans"`
	Verdict    string  `json:"verdict"`
	Detail     string  `json:"detail"`
	Failing    []Check `json:"failing,omitempty"` // every failing check of step 2, in the procedure's order
	Control    string  `json:"control,omitempty"` // the label's control state
}

// Check is one failing check: its verdict code and what failed.
type Check struct {
	Verdict string `json:"verdict"`
	Detail  string `json:"detail"`
}

// Explain explains res, which Decide must have filled with explain for req at now.
func (e *Engine) Explain(req *Request, now time.Time, res *Result) *Explanation {
	tab := e.src.OS
	x := &Explanation{Release: res.Sequence, Now: now.UTC().Format(time.RFC3339), OS: e.describeOS(req, &res.eff), Terms: ExplainTerms}
	c := 0
	for d := range req.Devices {
		dev := &req.Devices[d]
		dx := DeviceExplanation{InstanceID: string(dev.InstanceID), IDs: len(dev.HardwareIDs) + len(dev.CompatibleIDs), Offers: []string{}, Candidates: []CandidateExplanation{}}
		for i := range res.Offers {
			if o := &res.Offers[i]; o.Device == d {
				dx.Offers = append(dx.Offers, fmt.Sprintf("label %d as %s: %s %s (%s)", o.Label, o.Kind, o.INF,
					catalogs.FormatVersion(o.Version), catalogs.DateOfDays(o.Date).Format("2006-01-02")))
			}
		}
		for ; c < len(res.Cands) && res.Cands[c].Device == d; c++ {
			k := &res.Cands[c]
			li := e.label(k.Label)
			cx := CandidateExplanation{
				Label:      strconv.FormatUint(k.Label, 10),
				HardwareID: string(k.HardwareID),
				Matched:    matched(dev, uint16(k.Rank)),
				Row:        k.Row.Family.String() + " " + tab.SlotName(k.Row.Slot),
				RowMeans:   rowMeans(tab, k.Row),
				Rank:       string(appendRank(nil, k.Rank)),
				RankMeans:  rankMeans(dev, k.Rank),
				Verdict:    k.Verdict.String(),
				Detail:     e.detailText(k.Verdict, k.detail, res),
				Control:    e.controlState(li, now),
			}
			if isStep2(k.Verdict) && !(k.Verdict == BelowFloor && k.detail.text == "") {
				fails := e.failing(req, dev, k, li, unix(now), res)
				// The first failing check is the verdict Decide reached; the rest are what
				// would still stop the row once it is fixed.
				cx.Failing = append(cx.Failing, Check{k.Verdict.String(), cx.Detail})
				for _, f := range fails {
					if f.v != k.Verdict || f.d != k.detail {
						cx.Failing = append(cx.Failing, Check{f.v.String(), e.detailText(f.v, f.d, res)})
					}
				}
			}
			dx.Candidates = append(dx.Candidates, cx)
		}
		if len(dx.Candidates) == 0 {
			dx.Note = fmt.Sprintf("none of this device's %d IDs is in release %d: no label publishes them", dx.IDs, res.Sequence)
			if dx.IDs == 1 {
				dx.Note = fmt.Sprintf("this device's one ID is in no label of release %d", res.Sequence)
			}
		} else if len(dx.Offers) == 0 {
			dx.Note = fmt.Sprintf("%d candidate rows, none offered: see each verdict", len(dx.Candidates))
		}
		x.Devices = append(x.Devices, dx)
	}
	return x
}

// isStep2 reports whether a verdict is one of step 2's checks (or the throttle).
func isStep2(v Verdict) bool {
	return v >= NotLive && v <= Blocked && v != CHIDLessSpecific || v == Paused || v == Rollout
}

// fail is a failing check with its detail, before formatting.
type fail struct {
	v Verdict
	d detail
}

// failing runs every check of step 2 on a candidate, not stopping at the first, in the
// order of applicable (which it mirrors; TestExplainFirstFailure holds them together). It
// runs after Decide, on the request state Decide left in res (effective OS, device CHIDs,
// audiences). The throttle here uses the rollout's percent without an even first ring's
// cluster thresholds, which only Decide applies: for the first failing check its verdict
// is used, never this one.
func (e *Engine) failing(req *Request, dev *Device, k *Candidate, li *labelEntry, now int64, res *Result) []fail {
	eff := &res.eff
	tab := e.src.OS
	var out []fail
	add := func(v Verdict, d detail) { out = append(out, fail{v, d}) }
	if !li.ok {
		return []fail{{NotLive, detail{text: "label record missing from the release"}}}
	}
	rec := &li.rec
	inf, ok := li.inf(int(k.Row.INF))
	if !ok {
		return []fail{{NotLive, detail{text: "INF missing from the label record"}}}
	}
	if !k.Row.Live() || rec.Flags&compiled.FlagWindowsUpdate == 0 {
		add(NotLive, detail{text: k.Row.State()})
	}
	if now < rec.GoLive {
		add(NotYet, detail{at: rec.GoLive})
	}
	if li.ctl != nil && li.ctl.cancelled != nil && now >= unix(li.ctl.cancelled.At) {
		add(Cancelled, detail{at: unix(li.ctl.cancelled.At), text: li.ctl.cancelled.Reason})
	}
	// 3. the row's family and release: in the device's cell or not
	row := k.Row
	inCell := row.Family == eff.family && eff.slotOK &&
		(tab.IsRelease(row.Slot) && tab.IsRelease(eff.slot) && row.Slot <= eff.slot || !tab.IsRelease(row.Slot) && row.Slot == eff.slot)
	if !inCell {
		if row.Family != eff.family || !eff.slotOK || !tab.IsRelease(row.Slot) || !tab.IsRelease(eff.slot) {
			add(OSFamily, detail{family: row.Family, slot: row.Slot})
		} else {
			add(BelowFloor, detail{slot: row.Slot, text: "row"})
		}
	}
	// 4. floors and ceilings, each
	if rec.FloorSlot != ostable.NoSlot && eff.slot < rec.FloorSlot {
		add(BelowFloor, detail{slot: rec.FloorSlot, text: "floor"})
	}
	if rec.FloorBuild != 0 && eff.build < rec.FloorBuild {
		add(BelowFloor, detail{build: rec.FloorBuild, text: "build"})
	}
	if rec.CeilSlot != ostable.NoSlot && eff.slot > rec.CeilSlot {
		add(AboveCeiling, detail{slot: rec.CeilSlot, text: "ceiling"})
	}
	if rec.CeilBuild != 0 && eff.build > rec.CeilBuild {
		add(AboveCeiling, detail{build: rec.CeilBuild, text: "build"})
	}
	if req.SMode && rec.Flags&compiled.FlagWindows10S == 0 {
		add(SMode, detail{})
	}
	if rec.Audiences.Len() > 0 && !e.inAudience(rec, res) {
		add(Audience, detail{})
	}
	alwaysFlight := rec.Flags&(compiled.FlagCoEngineered|compiled.FlagFlightSigned) != 0
	var fl *compiled.Flight
	var channels Channel
	if li.ctl != nil {
		fl, channels = li.ctl.flight, li.ctl.channels
	}
	if alwaysFlight || (fl != nil && (fl.Approved.IsZero() || now < unix(fl.Approved))) {
		if rec.Flags&compiled.FlagCoEngineered != 0 && fl != nil && !fl.Start.IsZero() && now >= unix(fl.Start)+60*86400 {
			add(FlightEnded, detail{at: unix(fl.Start) + 60*86400})
		} else if req.Insider == 0 || channels&req.Insider == 0 {
			add(Flight, detail{channels: channels, insider: req.Insider})
		}
	}
	if rec.CHIDs.Len() > 0 && res.bestLevel(rec.CHIDs) < 0 {
		add(CHID, detail{text: "label"})
	}
	if inf.CHIDs.Len() > 0 && res.bestLevel(inf.CHIDs) < 0 {
		add(CHID, detail{text: "INF"})
	}
	// 9. every block that matches, not only the first
	for _, i := range li.blocks {
		if e.blockMatches(&e.blocks[i], dev, eff.build, res) {
			add(Blocked, detail{text: e.blocks[i].id})
		}
	}
	for _, i := range e.global {
		if e.blockMatches(&e.blocks[i], dev, eff.build, res) {
			add(Blocked, detail{text: e.blocks[i].id})
		}
	}
	// 10. the throttle
	if li.ctl != nil && li.ctl.rollout != nil && rec.Audiences.Len() == 0 {
		ro := li.ctl.rollout
		p := ro.Percent(time.Unix(now, 0))
		automatic := rec.Flags&compiled.FlagManual == 0
		v := Rollout
		if ro.Paused {
			v = Paused
		}
		switch {
		case eff.devmgrBypass && automatic:
		case eff.build < buildRS3:
			if ro.Paused || p < 10000 {
				add(v, detail{percent: int32(p), text: "old"})
			}
		default:
			if b := Bucket(li.id, req.DeviceID); b >= p {
				add(v, detail{bucket: int32(b), percent: int32(p)})
			}
		}
	}
	return out
}

// detailText is a verdict's one-line detail as the response writes it, with a block's
// reason after its id.
func (e *Engine) detailText(v Verdict, d detail, res *Result) string {
	k := Candidate{Verdict: v, detail: d}
	s := string(appendDetail(nil, &k, res, e.src.OS))
	if v == Blocked {
		if r := e.blockReason(d.text); r != "" {
			s += ": " + r
		}
	}
	return s
}

func (e *Engine) blockReason(id string) string {
	for _, b := range e.src.Control.Blocks {
		if b.ID == id {
			return b.Reason
		}
	}
	return ""
}

// controlState describes a label's control entry and the blocks that name it: "" for a
// label fully live and unblocked.
func (e *Engine) controlState(li *labelEntry, now time.Time) string {
	var parts []string
	if c := li.ctl; c != nil {
		if f := c.flight; f != nil {
			s := "flight to " + string(appendChannels(nil, c.channels))
			if f.Approved.IsZero() {
				s += ", not approved"
			} else {
				s += ", approved " + f.Approved.UTC().Format(time.RFC3339)
			}
			parts = append(parts, s)
		}
		if r := c.rollout; r != nil {
			s := "rollout at " + catalogs.FormatBasisPoints(r.Scheduled(now)) + "% now"
			if r.Paused {
				s = "rollout paused (0% offered; its stages give " + catalogs.FormatBasisPoints(r.Scheduled(now)) + "% now)"
			}
			var st []string
			for _, x := range r.Stages {
				st = append(st, catalogs.FormatBasisPoints(x.BasisPoints)+"% from "+x.At.UTC().Format("2006-01-02"))
			}
			if len(st) > 0 {
				s += ", stages " + strings.Join(st, " → ")
			}
			parts = append(parts, s)
		}
		if x := c.cancelled; x != nil {
			s := "cancelled from " + x.At.UTC().Format(time.RFC3339)
			if now.Before(x.At) {
				s = "to be cancelled at " + x.At.UTC().Format(time.RFC3339)
			}
			if x.Rollback {
				s += " with rollback"
			}
			if x.Reason != "" {
				s += ": " + x.Reason
			}
			parts = append(parts, s)
		}
	}
	if len(li.blocks) > 0 {
		var ids []string
		for _, i := range li.blocks {
			ids = append(ids, e.src.Control.Blocks[i].ID)
		}
		parts = append(parts, "named by block "+strings.Join(ids, ", ")+" (blocked where it matches)")
	}
	return strings.Join(parts, "; ")
}

// describeOS is step 0 in words.
func (e *Engine) describeOS(req *Request, eff *effective) string {
	tab := e.src.OS
	rel := "a build the OS table does not know"
	if eff.slotOK {
		rel = tab.SlotName(eff.slot)
	}
	s := fmt.Sprintf("%s %s (build %d", eff.family, rel, eff.build)
	if eff.revision != 0 {
		s += fmt.Sprintf(".%d", eff.revision)
	}
	s += "), " + eff.scan.String() + " scan"
	if req.Scan == ScanUpgrade {
		s += fmt.Sprintf(" from build %d", req.Build)
	}
	if req.Scan == ScanDevmgr && eff.scan != ScanDevmgr {
		s += " (Device Manager asks as a user scan from build 19041 on)"
	}
	return s
}

// matched says which of the device's IDs a candidate matched on.
func matched(dev *Device, ident uint16) string {
	if ident >= compatibleBase {
		return fmt.Sprintf("compatible ID %d of %d", ident-compatibleBase+1, len(dev.CompatibleIDs))
	}
	return fmt.Sprintf("hardware ID %d of %d", ident+1, len(dev.HardwareIDs))
}

// rowMeans says what a row's "family release" means.
func rowMeans(tab *ostable.Table, r compiled.Row) string {
	name := tab.SlotName(r.Slot)
	if tab.IsRelease(r.Slot) {
		return fmt.Sprintf("%s PCs on %s and later", r.Family, name)
	}
	return fmt.Sprintf("%s PCs on %s only", r.Family, name)
}

// rankMeans says what a rank is made of.
func rankMeans(dev *Device, rank uint32) string {
	return fmt.Sprintf("feature score %02X, %s", rank>>16, matched(dev, uint16(rank)))
}
