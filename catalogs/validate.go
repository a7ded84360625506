package catalogs

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/ostable"
)

// ValidateOptions configure Validate. A nil *ValidateOptions is valid.
type ValidateOptions struct {
	// RequireFlight makes an automatic label that never went through a flight an error
	// (L065) instead of a warning (W065).
	RequireFlight bool
	// Now is the time the tree is validated at: W005 leaves alone a cancel already in
	// effect then (a finished rollout), and dominance (W001) looks from then on. Zero: the
	// tree is judged as of no particular time (every cancel is a plan).
	Now time.Time
	// Partial says the tree holds only some of the catalog's labels (a control-only build's
	// copy of the labels it changes): the checks that need every label of the catalog to be
	// right (W006, a block that matches nothing) are skipped.
	Partial bool
	// DropRows lets WarnAcross set each label's Rows to nil as soon as the rules that read
	// rows are done with them, before the analysis's second half: for a caller that needs
	// nothing of the rows afterwards (a build's tree of product summaries, where the rows
	// are half of the memory and the analysis runs beside the release's assembly). The
	// tree's rows are gone then: Label.Live and the rules are wrong on it.
	DropRows bool
}

// DefaultClassRules is the class rules table when catalog.json has none: firmware must
// target CHIDs, display drivers must not.
var DefaultClassRules = map[string]string{"FIRMWARE": "require", "DISPLAY": "forbid"}

// Validate applies driver expansion and every rule of labels.md to the tree and returns the
// problems, sorted. It changes the tree only by expansion (extended grid entries), once.
// It is ValidateProduct for each product, then ValidateAcross.
func (t *Tree) Validate(opts *ValidateOptions) Problems {
	var ps Problems
	for _, p := range t.Products {
		ps = append(ps, t.ValidateProduct(p, opts)...)
	}
	ps = append(ps, t.ValidateAcross(opts)...)
	ps.Sort()
	return ps
}

// ValidateProduct applies driver expansion (once) and the rules that look at one product
// only to p: those of its submissions and of each of its labels, which read nothing else of
// t than its catalog-wide settings (catalog.json, partners.json, audiences.json, the OS
// table). Products can be validated in parallel. The problems are unsorted.
func (t *Tree) ValidateProduct(p *Product, opts *ValidateOptions) Problems {
	if opts == nil {
		opts = &ValidateOptions{}
	}
	v := &validator{t: t, opts: opts, sink: &problemSink{}}
	if !p.expanded {
		t.expand(v.sink, p)
		p.expanded = true
	}
	for _, s := range p.Submissions {
		v.submission(s)
		for _, l := range s.Labels {
			v.label(l)
		}
	}
	return v.sink.list
}

// ValidateAcross applies the rules that span labels of different products to t: unique
// label ids (L004, CheckUniqueIDs), ties (W002, W004) and the static analysis (W001
// dominance and OS ranges, W005, W006; see analysis.go). It reads of each label only what a
// Summary keeps, so a tree of summaries (ReadSummary) gives the same problems as the full
// tree. The products must have been validated (ValidateProduct expands them). The problems
// are unsorted.
func (t *Tree) ValidateAcross(opts *ValidateOptions) Problems {
	return append(t.CheckUniqueIDs(), t.WarnAcross(opts)...)
}

// CheckUniqueIDs reports label ids used twice (L004): releases key labels by id. It is the
// one rule that spans labels and gives errors (with CheckReferences); the others are
// WarnAcross's.
func (t *Tree) CheckUniqueIDs() Problems {
	v := &validator{t: t, opts: &ValidateOptions{}, sink: &problemSink{}}
	v.uniqueLabels()
	return v.sink.list
}

// WarnAcross is ValidateAcross less CheckUniqueIDs: ties and the static analysis, which give
// warnings only, so a build knows which labels are invalid without waiting for them.
func (t *Tree) WarnAcross(opts *ValidateOptions) Problems {
	if opts == nil {
		opts = &ValidateOptions{}
	}
	// ties and the analysis's first half read the tree only, so they run side by side (the
	// second half skips the pairs ties reported).
	v := &validator{t: t, opts: opts, sink: &problemSink{}}
	vt := &validator{t: t, opts: opts, sink: &problemSink{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		vt.ties()
	}()
	prepared := v.prepareAnalysis()
	<-done
	if opts.DropRows {
		for _, l := range prepared.labels {
			l.Rows = nil
		}
	}
	v.tied = vt.tied
	v.finishAnalysis(prepared)
	return append(vt.sink.list, v.sink.list...)
}

type validator struct {
	t    *Tree
	opts *ValidateOptions
	sink *problemSink
	tied map[[2]*Label]bool // label pairs ties reported (W002, W004), by smaller id first
}

func labelScope(l *Label) scope {
	return scope{level: scopeLabel, product: l.Product.ID, submission: l.Submission.ID, label: l.ID}
}

func (v *validator) add(l *Label, code, ptr, format string, args ...any) {
	v.sink.add(code, l.File, ptr, labelScope(l), format, args...)
}

// uniqueLabels reports label ids used twice: releases key labels by id.
func (v *validator) uniqueLabels() {
	seen := map[string]*Label{}
	for _, l := range v.t.Labels() {
		if first, dup := seen[l.ID]; dup {
			v.add(l, "L004", "/id", "label id %s is also the id of %s; label ids are unique in a catalog", l.ID, first.File)
			continue
		}
		seen[l.ID] = l
	}
}

// submission checks the rules that span a submission's labels: L029.
func (v *validator) submission(s *Submission) {
	type at struct {
		l   *Label
		row int
	}
	var first [2]*at // the first pre-Windows 10 and the first Windows 10+ row, in label and row order
	for _, l := range s.Labels {
		if l.Destination != "windowsUpdate" {
			continue
		}
		for i, r := range l.Rows {
			if r.State != "added" && r.State != "pendingAdd" {
				continue
			}
			c, ok := v.t.OS.LookupOSCode(r.OSCode)
			if !ok {
				continue
			}
			k := 1
			if c.Legacy {
				k = 0
			}
			if first[k] == nil {
				first[k] = &at{l, i}
			}
		}
	}
	if first[0] == nil || first[1] == nil {
		return
	}
	// Report where the mix appears second: the row that broke the rule. Labels are in id
	// order, rows in file order.
	later, other := first[1], first[0]
	if c := CompareIDs(first[0].l.ID, first[1].l.ID); c > 0 || (c == 0 && first[0].row > first[1].row) {
		later, other = first[0], first[1]
	}
	v.sink.add("L029", later.l.File, pointerIndex("/targeting/hardwareIds", later.row)+"/operatingSystemCode",
		scope{level: scopeSubmission, product: s.Product.ID, submission: s.ID},
		"submission %s targets both pre-Windows 10 and Windows 10+ OS codes (see also label %s); publish them from separate submissions", s.ID, other.l.ID)
}

// labelFacts are what several rules need to know about a label's live rows.
type labelFacts struct {
	live         bool // destination windowsUpdate and a live row
	liveRows     int
	minRel       ostable.Slot // lowest / highest release of live Windows 10+ rows
	maxRel       ostable.Slot
	hasModern    bool
	hasLegacy    bool // a live pre-Windows 10 row (retired ones included)
	allRetired   bool
	liveCHIDs    []chid.ID
	classes      []string // INF classes of the live rows, sorted, distinct
	allExtension bool     // every live row is of an extension INF (the submission's flag or an ExtensionId)
}

func (v *validator) facts(l *Label) labelFacts {
	f := labelFacts{minRel: ostable.NoSlot, allRetired: true, allExtension: true, liveCHIDs: l.LiveCHIDs()}
	classSeen := map[string]bool{}
	for _, r := range l.Rows {
		if !r.Live() {
			continue
		}
		f.liveRows++
		c, ok := v.t.OS.LookupOSCode(r.OSCode)
		if !ok {
			f.allRetired = false
			continue
		}
		if !c.Retired {
			f.allRetired = false
		}
		if c.Legacy {
			f.hasLegacy = true
		} else {
			f.hasModern = true
			if f.minRel == ostable.NoSlot || c.Slot < f.minRel {
				f.minRel = c.Slot
			}
			if c.Slot > f.maxRel {
				f.maxRel = c.Slot
			}
		}
		if inf := l.Submission.INF(r.Bundle, r.INF); inf != nil {
			if cl := strings.ToUpper(inf.Class); !classSeen[cl] {
				classSeen[cl] = true
				f.classes = append(f.classes, cl)
			}
			if inf.ExtensionID == nil && !l.Submission.IsExtensionInf {
				f.allExtension = false
			}
		} else {
			f.allExtension = false
		}
	}
	sort.Strings(f.classes)
	f.live = l.Destination == "windowsUpdate" && f.liveRows > 0
	if f.liveRows == 0 {
		f.allRetired, f.allExtension = false, false
	}
	return f
}

func (v *validator) label(l *Label) {
	s, p := l.Submission, l.Product
	f := v.facts(l)
	wu := l.Destination == "windowsUpdate"
	pub := l.Publishing

	// Shape.
	if wu && pub == nil {
		v.add(l, "L010", "/publishingSpecifications", "a label published to windowsUpdate needs publishingSpecifications")
	}
	if l.Destination == "anotherPartner" && l.Recipient == nil {
		v.add(l, "L010", "/recipientSpecifications", "a label shared with anotherPartner needs recipientSpecifications")
	}
	if pub != nil {
		auto := pub.AutoApplicable || pub.AutoDU
		if auto && pub.Manual {
			v.add(l, "L011", "/publishingSpecifications/manualAcquisition", "manualAcquisition must be false when an auto-install flag is set")
		}
		if !auto && !pub.Manual && wu {
			v.add(l, "L011", "/publishingSpecifications/manualAcquisition", "manualAcquisition must be true when neither auto-install flag is set")
		}
	}
	if l.HasInService && l.HasCoEng {
		v.add(l, "L012", "/targeting/coEngDriverPublishInfo", "inServicePublishInfo and coEngDriverPublishInfo are both set; a label has release floors/ceilings or build ones, not both")
	}
	v.rows(l)
	if f.live && (s.Package == nil || !s.Package.HasSHA || s.Package.Size <= 0 || (s.Package.URL == "" && s.SignedPackageURL == "")) {
		v.sink.add("L014", s.File, "/package", labelScope(l),
			"label %s publishes submission %s to Windows Update, but the submission has no package with url, sha256 and size", l.ID, s.ID)
	}

	v.osTargeting(l, f)
	v.chidsAndClasses(l, f)
	v.shares(l, f)
	v.hardwareIDs(l, f)

	// Delivery, audiences, signing.
	if wu && s.IsExtensionInf && pub != nil && (pub.Manual || !(pub.AutoApplicable || pub.AutoDU)) {
		v.add(l, "L060", "/publishingSpecifications/manualAcquisition", "submission %s is an extension INF; extension INFs are published as automatic, not manual", s.ID)
	}
	if wu && p.TestHarness == "attestation" && len(l.Audiences) == 0 {
		v.add(l, "L061", "/targeting/restrictedToAudiences", "product %s is attestation-signed; restrict the label to a test audience", p.ID)
	}
	if wu && p.IsTestSign {
		v.add(l, "L062", "/destination", "product %s is test-signed; test-signed drivers cannot be published to Windows Update", p.ID)
	}
	if pub != nil && pub.Windows10S && pub.HasUISoftware {
		v.add(l, "L063", "/publishingSpecifications/publishToWindows10s", "a driver with UI software cannot be published to Windows 10 in S mode")
	}
	for i, a := range l.Audiences {
		if !v.audienceDefined(a) {
			v.add(l, "L064", pointerIndex("/targeting/restrictedToAudiences", i), "audience %s is not defined in audiences.json", a)
		}
	}
	if wu && l.Auto() && (l.Distribution.Flight == nil || l.Distribution.Flight.Approved.IsZero()) {
		code := "W065"
		if v.opts.RequireFlight {
			code = "L065"
		}
		v.add(l, code, "/distribution/flight", "automatic label never went through a flight (no distribution.flight with approved)")
	}
	v.neverOffered(l, f)
}

func (v *validator) audienceDefined(id chid.ID) bool {
	for _, a := range v.t.Audiences {
		if a.ID == id {
			return true
		}
	}
	return false
}

// rows checks that each grid row names a real (bundle, INF, OS code, pnpString) of the
// submission's driver metadata, after expansion (L013).
func (v *validator) rows(l *Label) {
	s := l.Submission
	for i, r := range l.Rows {
		ptr := pointerIndex("/targeting/hardwareIds", i)
		if r.OSCode != "" {
			if _, ok := v.t.OS.LookupOSCode(r.OSCode); !ok {
				v.add(l, "L013", ptr+"/operatingSystemCode", "unknown OS code %s", r.OSCode)
				continue
			}
		}
		if s.Metadata == nil || r.Bundle == "" || r.INF == "" || r.OSCode == "" || r.PnP == "" {
			continue // missing metadata or fields are reported where they are
		}
		inf := s.INF(r.Bundle, r.INF)
		switch {
		case inf == nil:
			v.add(l, "L013", ptr+"/infId", "submission %s has no INF %s in bundle %s", s.ID, r.INF, r.Bundle)
		case !inf.Lists(r.OSCode):
			v.add(l, "L013", ptr+"/operatingSystemCode", "INF %s does not list OS code %s%s", r.INF, r.OSCode, expansionHint(s))
		default:
			if _, ok := inf.Entry(r.OSCode, r.HWID); !ok {
				v.add(l, "L013", ptr+"/pnpString", "INF %s does not list %s on %s", r.INF, r.PnP, r.OSCode)
			}
		}
	}
}

func expansionHint(s *Submission) string {
	if s.Expansion == nil {
		return "; rows below the certified OS need driver expansion of the submission"
	}
	return ""
}

// osTargeting checks floors and ceilings (L020–L028).
func (v *validator) osTargeting(l *Label, f labelFacts) {
	const isp, cep = "/targeting/inServicePublishInfo", "/targeting/coEngDriverPublishInfo"
	os := v.t.OS
	partner := v.t.Partners[l.Publisher()]
	floor, floorOK := ostable.NoSlot, false
	ceil, ceilOK := ostable.NoSlot, false
	if l.Floor != "" {
		if floor, floorOK = os.ReleaseSlot(l.Floor); !floorOK {
			v.add(l, "L020", isp+"/flooring", "flooring %q is not a release code (TH, TH2, RS1 … %s)", l.Floor, os.SlotName(os.LastSlot()))
		}
	}
	if l.Ceiling != "" {
		if ceil, ceilOK = os.ReleaseSlot(l.Ceiling); !ceilOK {
			v.add(l, "L020", isp+"/ceiling", "ceiling %q is not a release code (TH, TH2, RS1 … %s)", l.Ceiling, os.SlotName(os.LastSlot()))
		}
	}
	if (l.HasInService || l.HasCoEng) && f.liveRows == 0 {
		ptr := isp
		if !l.HasInService {
			ptr = cep
		}
		v.add(l, "L024", ptr, "floor or ceiling set while no grid row is live")
	}
	if floorOK && f.hasModern && floor < f.minRel {
		v.add(l, "L021", isp+"/flooring", "floor %s is below the implied floor %s of this label (its lowest published OS release); raise the floor or expand the submission",
			os.SlotName(floor), os.SlotName(f.minRel))
	}
	if ceilOK && f.hasModern && ceil > f.maxRel {
		v.add(l, "L022", isp+"/ceiling", "ceiling %s is above %s, the highest OS release this label publishes; lower the ceiling or publish a row on %s",
			os.SlotName(ceil), os.SlotName(f.maxRel), os.SlotName(ceil))
	}
	if floorOK && ceilOK && floor > ceil {
		v.add(l, "L023", isp+"/flooring", "floor %s is above ceiling %s", os.SlotName(floor), os.SlotName(ceil))
	}
	if l.FloorBuild != 0 && l.CeilingBuild != 0 && l.FloorBuild > l.CeilingBuild {
		v.add(l, "L023", cep+"/flooringBuildNumber", "build floor %d is above build ceiling %d", l.FloorBuild, l.CeilingBuild)
	}
	if l.Ceiling != "" && (partner == nil || !partner.CeilingAccess) {
		v.add(l, "L025", isp+"/ceiling", "partner %s has no ceiling access (partners.json ceilingAccess)", l.Publisher())
	}
	if l.HasCoEng {
		coEng := l.Publishing != nil && l.Publishing.CoEngineered
		switch {
		case !coEng:
			v.add(l, "L026", cep, "build-number floors and ceilings are for co-engineered labels; this label is not co-engineered (additionalInfoForMsApproval.isCoEngineered)")
		case partner == nil || !partner.CoEngineering:
			v.add(l, "L026", cep, "partner %s has no co-engineering entitlement (partners.json coEngineering), which build-number floors and ceilings need", l.Publisher())
		}
		for _, b := range []struct {
			name  string
			build int
		}{{"flooringBuildNumber", l.FloorBuild}, {"ceilingBuildNumber", l.CeilingBuild}} {
			if b.build != 0 && (b.build < 10000 || b.build > 99999 || b.build <= os.NewestBuild()) {
				v.add(l, "L027", cep+"/"+b.name, "build %d must be a five-digit build above %d, the newest released build", b.build, os.NewestBuild())
			}
		}
	}
	if a := l.Distribution.Author; (l.HasInService || l.HasCoEng) && a != nil && a.Role != "" {
		switch a.Role {
		case "administrator", "shippingLabelOwner", "shippingLabelPromoter":
		default:
			ptr := isp
			if !l.HasInService {
				ptr = cep
			}
			v.add(l, "L028", ptr, "floors and ceilings were set by role %s; only an administrator, shipping label owner or shipping label promoter may set them", a.Role)
		}
	}
}

// chidsAndClasses checks L040, L041 and L044.
func (v *validator) chidsAndClasses(l *Label, f labelFacts) {
	if !f.live {
		return
	}
	if len(f.liveCHIDs) > 0 && f.hasLegacy {
		v.add(l, "L040", "/targeting/chids", "CHIDs cannot target a label that publishes pre-Windows 10 OS codes")
	}
	rules := v.t.Settings.ClassRules
	if rules == nil {
		rules = DefaultClassRules
	}
	for _, class := range f.classes {
		switch rules[class] {
		case "require":
			if len(f.liveCHIDs) == 0 {
				v.add(l, "L041", "/targeting/chids", "%s class drivers must target CHIDs (class rules); add the CHIDs of the systems this is for", titleCase(class))
			}
		case "forbid":
			if len(f.liveCHIDs) > 0 {
				v.add(l, "L041", "/targeting/chids", "%s class drivers must not target CHIDs (class rules); remove them", titleCase(class))
			}
		}
	}
	if partner := v.t.Partners[l.Publisher()]; partner != nil && partner.CHIDRelationships != nil {
		for i, c := range l.CHIDs {
			if c.State == "added" && !slices.Contains(partner.CHIDRelationships, c.ID) {
				v.add(l, "L044", pointerIndex("/targeting/chids", i)+"/chid", "partner %s has no relationship for CHID %s (partners.json chidRelationships)", l.Publisher(), c.ID)
			}
		}
	}
}

func titleCase(upper string) string {
	if upper == "" {
		return upper
	}
	return upper[:1] + strings.ToLower(upper[1:])
}

// shares checks the receiver of a shared driver (L042, L043). A label is a receiver's when
// its publisher is not the product owner and a share label (destination anotherPartner) of
// the same submission names that publisher; the newest share (highest label id) governs.
func (v *validator) shares(l *Label, f labelFacts) {
	publisher := l.Publisher()
	if publisher == "" || publisher == l.Product.OwnerSellerID {
		return
	}
	var share *Label
	for _, o := range l.Submission.Labels {
		if o.Destination == "anotherPartner" && o.Recipient != nil && o.Recipient.ReceiverPublisherID == publisher &&
			(share == nil || CompareIDs(o.ID, share.ID) > 0) && o != l {
			share = o
		}
	}
	if share == nil {
		return
	}
	if l.Destination == "anotherPartner" {
		v.add(l, "L043", "/destination", "partner %s received this driver from label %s and cannot share it again", publisher, share.ID)
		return
	}
	if !f.live {
		return
	}
	if share.Recipient.EnforceCHIDs && len(f.liveCHIDs) == 0 {
		v.add(l, "L042", "/targeting/chids", "share %s enforces CHID targeting; target the CHIDs of your systems", share.ID)
	}
	shared := map[string]bool{}
	for _, r := range share.Rows {
		if r.State == "added" {
			shared[r.HWID] = true
		}
	}
	for i, r := range l.Rows {
		if r.Live() && !shared[r.HWID] {
			v.add(l, "L043", pointerIndex("/targeting/hardwareIds", i)+"/pnpString", "%s is not in share %s, the newest share partner %s received", r.PnP, share.ID, publisher)
		}
	}
}

// hardwareIDs applies the HWID rules (L050–L053) to rows that are or will be live.
func (v *validator) hardwareIDs(l *Label, f labelFacts) {
	if l.Destination != "windowsUpdate" {
		return
	}
	partner := v.t.Partners[l.Publisher()]
	for i, r := range l.Rows {
		if r.State != "added" && r.State != "pendingAdd" {
			continue
		}
		ptr := pointerIndex("/targeting/hardwareIds", i) + "/pnpString"
		if code, msg := CheckHWID(r.HWID); code != "" {
			v.add(l, code, ptr, "%s: %s", r.PnP, msg)
			continue
		}
		if len(f.liveCHIDs) == 0 && isTwoPart(r.HWID) {
			v.add(l, "L050", ptr, "%s has no SUBSYS_ and the label no CHIDs, so it reaches every OEM's systems with this chip; use the four-part ID or target CHIDs", r.PnP)
		}
		if partner != nil && partner.HWIDVendors != nil {
			if vendor := hwidVendor(r.HWID); vendor != "" && !slices.Contains(partner.HWIDVendors, vendor) {
				v.add(l, "L053", ptr, "vendor %s is not among partner %s's hardware vendors (%s)", vendor, l.Publisher(), strings.Join(partner.HWIDVendors, ", "))
			}
		}
	}
}

// neverOffered warns about labels that no device can ever be offered (W001).
func (v *validator) neverOffered(l *Label, f labelFacts) {
	if l.Destination != "windowsUpdate" {
		return
	}
	os := v.t.OS
	switch {
	case len(l.Rows) > 0 && f.liveRows == 0:
		v.add(l, "W001", "/targeting/hardwareIds", "no grid row is live (distributionState added), so nothing is offered")
	case f.allRetired:
		v.add(l, "W001", "/targeting/hardwareIds", "every live row is on a retired OS (XP, Vista, 2003, 2008, IA64, RT), which is never offered")
	case f.allExtension && l.Publishing != nil && !l.Publishing.AutoApplicable && !l.Publishing.AutoDU:
		v.add(l, "W001", "/publishingSpecifications/manualAcquisition", "every live row is an extension INF, and extension INFs are offered only from automatic labels")
	case f.hasModern && !f.hasLegacy && l.Ceiling != "":
		if c, ok := os.ReleaseSlot(l.Ceiling); ok && c < f.minRel {
			v.add(l, "W001", "/targeting/inServicePublishInfo/ceiling", "ceiling %s is below every row (lowest %s)", os.SlotName(c), os.SlotName(f.minRel))
		}
	}
	if c := l.Distribution.Cancelled; c != nil && l.Publishing != nil && !c.At.IsZero() && !c.At.After(l.Publishing.GoLive) {
		v.add(l, "W001", "/distribution/cancelled/at", "cancelled at %s, not after go-live %s", c.At.Format(time.RFC3339), l.Publishing.GoLive.Format(time.RFC3339))
	}
}

// ties warns when two labels tie on rank, date and version for the same hardware ID and OS
// code (W002): the order falls back to go-live and label id, which someone should look at.
// When their go-live ties too, the order is decided by the label id alone (W004).
func (v *validator) ties() {
	type key struct{ hwid, os string }
	type cand struct {
		l       *Label
		ext     bool // an extension INF: ranked apart from base drivers (offers.md step 7)
		score   uint8
		date    int32
		version uint64
	}
	labels := v.t.Labels()
	// candidates calls f with label l's candidates: its first live row of each (hardware
	// ID, OS code) whose INF lists it.
	seen := map[key]bool{} // of one label, cleared for the next
	candidates := func(l *Label, f func(k key, c cand)) {
		clear(seen)
		for _, r := range l.Rows {
			if !r.Live() {
				continue
			}
			inf := l.Submission.INF(r.Bundle, r.INF)
			if inf == nil {
				continue
			}
			e, ok := inf.Entry(r.OSCode, r.HWID)
			k := key{r.HWID, r.OSCode}
			if !ok || seen[k] {
				continue
			}
			seen[k] = true
			f(k, cand{l, l.Submission.IsExtensionInf || inf.ExtensionID != nil, e.FeatureScore, inf.Date, inf.Version})
		}
	}
	// Two candidates tie only if they agree on all of hardware ID, OS code, extension,
	// rank, date and version: a first pass hashes those of every candidate, in order, and
	// only the candidates whose hash is shared are grouped (a collision only adds a
	// candidate that compares unequal), in a second pass over the labels that have such a
	// candidate. Most rows tie with nothing, and a map of strings is the cost. The shared
	// hashes are found by sorting a copy of the hashes, not by counting them in a map: a
	// tree has millions of candidates, and the map cost 120 MB at 100,000 labels where the
	// two slices cost 32.
	seed := maphash.MakeSeed()
	tieHash := func(k key, c cand) uint64 {
		var h maphash.Hash
		h.SetSeed(seed)
		h.WriteString(k.hwid)
		h.WriteByte(0)
		h.WriteString(k.os)
		var b [14]byte
		binary.LittleEndian.PutUint64(b[:], c.version)
		binary.LittleEndian.PutUint32(b[8:], uint32(c.date))
		b[12] = c.score
		if c.ext {
			b[13] = 1
		}
		h.Write(b[:])
		return h.Sum64()
	}
	rows := 0
	for _, l := range labels {
		rows += len(l.Rows)
	}
	hashes := make([]uint64, 0, rows) // a label has at most a candidate per row
	ends := make([]int, len(labels))  // label i's hashes end there
	for i, l := range labels {
		if l.Destination == "windowsUpdate" {
			candidates(l, func(k key, c cand) {
				hashes = append(hashes, tieHash(k, c))
			})
		}
		ends[i] = len(hashes)
	}
	// sharedHashes: each hash that two candidates or more have, once, sorted.
	sorted := slices.Clone(hashes)
	slices.Sort(sorted)
	var sharedHashes []uint64
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] && (len(sharedHashes) == 0 || sharedHashes[len(sharedHashes)-1] != sorted[i]) {
			sharedHashes = append(sharedHashes, sorted[i])
		}
	}
	shared := func(h uint64) bool {
		_, found := slices.BinarySearch(sharedHashes, h)
		return found
	}
	groups := map[key][]cand{}
	for i, l := range labels {
		begin := 0
		if i > 0 {
			begin = ends[i-1]
		}
		if !slices.ContainsFunc(hashes[begin:ends[i]], shared) {
			continue
		}
		candidates(l, func(k key, c cand) {
			if shared(tieHash(k, c)) {
				groups[k] = append(groups[k], c)
			}
		})
	}
	hashes = nil
	keys := make([]key, 0, len(groups)/8)
	for k, cs := range groups {
		if len(cs) > 1 { // one label alone ties with nothing
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].hwid != keys[j].hwid {
			return keys[i].hwid < keys[j].hwid
		}
		return keys[i].os < keys[j].os
	})
	reported := map[[2]*Label]bool{}
	v.tied = reported
	for _, k := range keys {
		cs := groups[k]
		for i := 0; i < len(cs); i++ {
			for j := i + 1; j < len(cs); j++ {
				a, b := cs[i], cs[j]
				if a.score != b.score || a.date != b.date || a.version != b.version || a.l == b.l || a.ext != b.ext || disjointCHIDs(a.l, b.l) {
					continue
				}
				if CompareIDs(a.l.ID, b.l.ID) > 0 {
					a, b = b, a
				}
				if reported[[2]*Label{a.l, b.l}] {
					continue
				}
				reported[[2]*Label{a.l, b.l}] = true
				if pa, pb := a.l.Publishing, b.l.Publishing; pa != nil && pb != nil && pa.GoLive.Equal(pb.GoLive) {
					v.add(b.l, "W004", "/targeting/hardwareIds", "ties with label %s on everything the order of offers compares but the label id (rank, date %s, version %s, go-live %s) for %s on %s; label %s wins only by its smaller id: give the one meant to win a newer date or higher version",
						a.l.ID, DateOfDays(a.date).Format("2006-01-02"), FormatVersion(a.version), pa.GoLive.Format(time.RFC3339), k.hwid, k.os, a.l.ID)
					continue
				}
				v.add(b.l, "W002", "/targeting/hardwareIds", "ties with label %s on rank, date (%s) and version (%s) for %s on %s; the later go-live, then the smaller label id, wins",
					a.l.ID, DateOfDays(a.date).Format("2006-01-02"), FormatVersion(a.version), k.hwid, k.os)
			}
		}
	}
}

// disjointCHIDs reports whether two labels both target CHIDs and share none: no device can
// be offered both, so they cannot tie.
func disjointCHIDs(a, b *Label) bool {
	ca, cb := a.LiveCHIDs(), b.LiveCHIDs()
	if len(ca) == 0 || len(cb) == 0 {
		return false
	}
	for _, x := range ca {
		if slices.Contains(cb, x) {
			return false
		}
	}
	return true
}

// Invalid resolves error problems to the labels they invalidate, for --skip-invalid, with
// the distinct codes that concern each label, sorted. fatal is true when an error concerns the
// whole catalog (catalog-wide files), which no label can be left out to fix.
func (t *Tree) Invalid(ps Problems) (labels map[string][]string, fatal bool) {
	labels = map[string][]string{}
	mark := func(id, code string) {
		for _, c := range labels[id] {
			if c == code {
				return
			}
		}
		labels[id] = append(labels[id], code)
		sort.Strings(labels[id])
	}
	for _, p := range ps {
		if p.Warning() {
			continue
		}
		sc := p.scope
		switch sc.level {
		case scopeCatalog:
			fatal = true
		case scopeLabel:
			mark(sc.label, p.Code)
		case scopeProduct, scopeSubmission:
			for _, l := range t.Labels() {
				if l.Product.ID == sc.product && (sc.level == scopeProduct || l.Submission.ID == sc.submission) {
					mark(l.ID, p.Code)
				}
			}
		}
	}
	return labels, fatal
}

// String describes a label for messages: "label 3001 (products/1001/…/3001.json)".
func (l *Label) String() string { return fmt.Sprintf("label %s (%s)", l.ID, l.File) }
