package build

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/catalogs/ostable"
	"github.com/driveway/driveway/index"
)

// record is one key and value of a shard.
type record struct {
	key, value []byte
}

// compiledTree is a label tree compiled into records, routed to shards and sorted by key,
// plus the control table for the manifest.
type compiledTree struct {
	// The grid rows are in the build's spill (spill.go), routed by HWID shard; a shard's
	// records are encoded from them when it is written (hwidRecords), one shard at a time
	// per worker, so neither the rows nor the encoded records of the whole release are in
	// memory at once. skipIDs are the labels (by IDValue) whose rows are left out.
	spill       *rowSpill
	skipIDs     map[uint64]bool
	labelShards [][]record
	os          *ostable.Table // the table the rows' slots are of
	control     compiled.Control
	labels      int // label records
	rows        int // grid rows written (set by writeShards)
	hwids       int // distinct normalised hardware IDs (HWID records; set by writeShards)
}

// compiledLabel is one label compiled on its own: its label record and its grid rows, or
// nothing when the label is not offered (another destination, no publishing specifications,
// no row that compiles). The build caches these with the label's product (cache.go).
type compiledLabel struct {
	id    string // the label id (the build leaves out the labels an error invalidates)
	err   string // why the label record could not be written; the build fails on it if the label is in
	value []byte // the label record; nil: not offered
	// rows are the label's grid rows, encoded as in a cache entry (nrows × hwid:str
	// row:14 bytes, appendHWIDRow), until the build spills them (rowSpill.add): one
	// allocation a label, not one a row, and a cached entry's rows are copied, not decoded.
	rows    []byte
	nrows   int
	control labelControl
}

// hwidRow is one grid row of a label, for the HWID record of its hardware ID.
type hwidRow struct {
	hwid string
	row  compiled.Row
}

// appendHWIDRow appends a grid row in the encoding of compiledLabel.rows.
func appendHWIDRow(b []byte, hwid string, r compiled.Row) []byte {
	b = binary.AppendUvarint(b, uint64(len(hwid)))
	return appendRow(append(b, hwid...), r)
}

// nextHWIDRow splits the first row appendHWIDRow wrote off b: the row's bytes (hwid and
// row included), its hardware ID and its 14-byte row; ok is false when b does not start
// with a whole row.
func nextHWIDRow(b []byte) (whole, hwid, row, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) || len(b)-k-int(n) < rowSize {
		return nil, nil, nil, b, false
	}
	end := k + int(n) + rowSize
	return b[:end], b[k : k+int(n)], b[k+int(n) : end], b[end:], true
}

// labelControl is what a label's control entry is made of before the release time decides
// which of it still applies (controlAt).
type labelControl struct {
	Flight       *compiled.Flight    `json:"flight,omitempty"`
	AlwaysFlight bool                `json:"alwaysFlight,omitempty"` // co-engineered or flight-signed: offered to Insiders only
	Rollout      *compiled.Rollout   `json:"rollout,omitempty"`
	Cancelled    *compiled.Cancelled `json:"cancelled,omitempty"`
}

// compileProduct compiles the Windows Update labels of a validated product, in label order.
// Labels of other destinations are not offered and not compiled.
func compileProduct(t *catalogs.Tree, p *catalogs.Product) []compiledLabel {
	var out []compiledLabel
	for _, s := range p.Submissions {
		for _, l := range s.Labels {
			out = append(out, compileLabel(t, l))
		}
	}
	return out
}

func compileLabel(t *catalogs.Tree, l *catalogs.Label) compiledLabel {
	cl := compiledLabel{id: l.ID}
	if l.Destination != "windowsUpdate" || len(l.Rows) == 0 || l.Publishing == nil {
		return cl
	}
	id := catalogs.IDValue(l.ID)
	// The label's INF table, by (bundle, name): INF indexes do not depend on the order
	// of rows in the file.
	var infs []*catalogs.INF
	seenINF := map[*catalogs.INF]bool{}
	for _, r := range l.Rows {
		if inf := l.Submission.INF(r.Bundle, r.INF); inf != nil && !seenINF[inf] {
			seenINF[inf] = true
			infs = append(infs, inf)
		}
	}
	sort.Slice(infs, func(i, j int) bool {
		if infs[i].Bundle != infs[j].Bundle {
			return infs[i].Bundle < infs[j].Bundle
		}
		return infs[i].Name < infs[j].Name
	})
	infIndex := map[*catalogs.INF]uint16{}
	for i, inf := range infs {
		infIndex[inf] = uint16(i)
	}
	var rows []hwidRow
	for _, r := range l.Rows {
		code, ok := t.OS.LookupOSCode(r.OSCode)
		inf := l.Submission.INF(r.Bundle, r.INF)
		if !ok || code.Retired || inf == nil {
			continue // retired codes are never offered; unknown ones failed validation
		}
		pnp, ok := inf.Entry(r.OSCode, r.HWID)
		if !ok {
			continue
		}
		rows = append(rows, hwidRow{r.HWID, compiled.Row{
			Label: id, INF: infIndex[inf], Slot: code.Slot, Family: code.Family, Score: pnp.FeatureScore, Flags: rowFlags(r, pnp),
		}})
	}
	if len(rows) == 0 {
		return cl
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].hwid != rows[j].hwid {
			return rows[i].hwid < rows[j].hwid
		}
		a, b := rows[i].row, rows[j].row
		if a.Family != b.Family {
			return a.Family < b.Family
		}
		if a.Slot != b.Slot {
			return a.Slot < b.Slot
		}
		return a.INF < b.INF
	})
	digest := sha256.New()
	var buf [16]byte
	for i, r := range rows {
		if i > 0 && r.hwid == rows[i-1].hwid && r.row == rows[i-1].row {
			continue // a row listed twice is one row
		}
		digest.Write([]byte(r.hwid))
		binary.LittleEndian.PutUint16(buf[:], r.row.INF)
		buf[2], buf[3], buf[4], buf[5] = byte(r.row.Slot), byte(r.row.Family), r.row.Score, r.row.Flags
		digest.Write(buf[:6])
		cl.rows = appendHWIDRow(cl.rows, r.hwid, r.row)
		cl.nrows++
	}
	data := labelData(t, l, id, infs)
	copy(data.RowsDigest[:], digest.Sum(nil))
	value, err := compiled.AppendLabel(nil, data)
	if err != nil {
		return compiledLabel{id: l.ID, err: fmt.Sprintf("%s: %v", l, err)}
	}
	cl.value = value
	cl.control = controlOf(l)
	return cl
}

// assemble routes the label records of a tree's products (units, in the order of
// t.Products), less those in skip, into sorted label shards, with the control table at now.
// Every output is sorted, so the same tree gives the same records. The labels' grid rows are
// not assemble's: the build spills them (rowSpill) and writeShards reads them back.
func assemble(t *catalogs.Tree, units [][]compiledLabel, skip map[string][]string, now time.Time, labelShards int) (*compiledTree, error) {
	c := &compiledTree{labelShards: make([][]record, labelShards), os: t.OS, skipIDs: map[uint64]bool{}}
	for id := range skip {
		if catalogs.ValidID(id) { // else its rows were not spilled (rowSpill.add)
			c.skipIDs[catalogs.IDValue(id)] = true
		}
	}
	for _, labels := range units {
		for i := range labels {
			cl := &labels[i]
			if skip[cl.id] != nil || (cl.value == nil && cl.err == "") {
				continue
			}
			if cl.err != "" {
				return nil, fmt.Errorf("build: %s", cl.err)
			}
			key := compiled.LabelKey(catalogs.IDValue(cl.id))
			shard := index.Route(key[:], labelShards)
			c.labelShards[shard] = append(c.labelShards[shard], record{key[:], cl.value})
			c.labels++
			if lc, ok := controlAt(cl.id, cl.control, now); ok {
				c.control.Labels = append(c.control.Labels, lc)
			}
		}
	}
	for _, shard := range c.labelShards {
		sortRecords(shard)
	}
	sort.Slice(c.control.Labels, func(i, j int) bool {
		return catalogs.CompareIDs(c.control.Labels[i].Label, c.control.Labels[j].Label) < 0
	})
	c.control.Blocks = blocks(t)
	c.control.Audiences = audiences(t)
	return c, nil
}

// hwidRecords encodes the HWID records of one shard's rows (hwids[i]'s are groups[i]),
// sorted by key.
func hwidRecords(hwids []string, groups [][]compiled.Row, tab *ostable.Table) ([]record, error) {
	recs := make([]record, 0, len(hwids))
	for i, hwid := range hwids {
		value, err := compiled.AppendHWID(nil, groups[i], tab)
		if err != nil {
			return nil, fmt.Errorf("build: hardware ID %s: %w", hwid, err)
		}
		recs = append(recs, record{[]byte(hwid), value})
	}
	sortRecords(recs)
	return recs, nil
}

func sortRecords(rs []record) {
	slices.SortFunc(rs, func(a, b record) int { return bytes.Compare(a.key, b.key) })
}

func rowFlags(r catalogs.Row, pnp catalogs.PnP) uint8 {
	f := compiled.StateFlags(r.State)
	if pnp.Extended {
		f |= compiled.RowExtended
	}
	return f
}

func labelData(t *catalogs.Tree, l *catalogs.Label, id uint64, infs []*catalogs.INF) *compiled.LabelData {
	s, p, pub := l.Submission, l.Product, l.Publishing
	d := &compiled.LabelData{
		ID: id, Product: catalogs.IDValue(p.ID), Submission: catalogs.IDValue(s.ID),
		GoLive:    pub.GoLive.Unix(),
		FloorSlot: ostable.NoSlot, CeilSlot: ostable.NoSlot,
		FloorBuild: uint32(l.FloorBuild), CeilBuild: uint32(l.CeilingBuild),
		Name: l.Name, Audiences: l.Audiences, CHIDs: l.LiveCHIDs(),
	}
	flags := map[uint16]bool{
		compiled.FlagWindowsUpdate:  true,
		compiled.FlagAutoApplicable: pub.AutoApplicable,
		compiled.FlagAutoDU:         pub.AutoDU,
		compiled.FlagManual:         pub.Manual,
		compiled.FlagWindows10S:     pub.Windows10S,
		compiled.FlagCoEngineered:   pub.CoEngineered,
		compiled.FlagFlightSigned:   p.IsFlightSign,
		compiled.FlagExtensionINF:   s.IsExtensionInf,
	}
	for f, on := range flags {
		if on {
			d.Flags |= f
		}
	}
	if slot, ok := t.OS.ReleaseSlot(l.Floor); ok {
		d.FloorSlot = slot
	}
	if slot, ok := t.OS.ReleaseSlot(l.Ceiling); ok {
		d.CeilSlot = slot
	}
	if pkg := s.Package; pkg != nil {
		d.URL, d.PackageSize, d.PackageSHA256 = pkg.URL, uint64(pkg.Size), pkg.SHA256
	}
	if d.URL == "" {
		d.URL = s.SignedPackageURL
	}
	for _, inf := range infs {
		d.INFs = append(d.INFs, compiled.INFData{
			Name: inf.Name, Class: inf.Class, Date: inf.Date, Version: inf.Version, Extension: inf.ExtensionID, CHIDs: inf.CHIDs,
		})
	}
	return d
}

// controlOf is what a label's control entry is made of (see controlAt).
func controlOf(l *catalogs.Label) labelControl {
	var lc labelControl
	d := l.Distribution
	lc.AlwaysFlight = l.Publishing.CoEngineered || l.Product.IsFlightSign
	if f := d.Flight; f != nil {
		lc.Flight = &compiled.Flight{Channels: f.Channels, Start: f.Start, Approved: f.Approved}
	}
	if r := d.Rollout; r != nil {
		ro := &compiled.Rollout{Paused: r.Paused}
		for _, s := range r.Stages {
			ro.Stages = append(ro.Stages, compiled.Stage{At: s.At, BasisPoints: s.BasisPoints})
		}
		for _, c := range r.Clusters {
			ro.Clusters = append(ro.Clusters, compiled.ClusterStage{CHID: c.CHID.String(), MinBuild: c.MinBuild, MaxBuild: c.MaxBuild,
				HardwareID: c.HWID, BasisPoints: c.BasisPoints})
		}
		lc.Rollout = ro
	}
	if c := d.Cancelled; c != nil {
		lc.Cancelled = &compiled.Cancelled{At: c.At, Rollback: c.Rollback, Reason: c.Reason}
	}
	return lc
}

// controlAt returns a label's control entry at now, or false when the label is fully live
// then (see compiled.Control): a flight not yet approved (or any, for a label offered to
// Insiders only), a rollout not done, a cancel.
func controlAt(label string, in labelControl, now time.Time) (compiled.LabelControl, bool) {
	lc := compiled.LabelControl{Label: label}
	if f := in.Flight; f != nil && (in.AlwaysFlight || f.Approved.IsZero() || now.Before(f.Approved)) {
		lc.Flight = f
	} else if f == nil && in.AlwaysFlight {
		lc.Flight = &compiled.Flight{Channels: []string{}}
	}
	if ro := in.Rollout; ro != nil && !ro.Done(now) {
		lc.Rollout = ro
	}
	lc.Cancelled = in.Cancelled
	return lc, lc.Flight != nil || lc.Rollout != nil || lc.Cancelled != nil
}

func blocks(t *catalogs.Tree) []compiled.Block {
	out := make([]compiled.Block, 0, len(t.Blocks))
	for _, b := range t.Blocks {
		cb := compiled.Block{ID: b.ID, Reason: b.Reason, Labels: b.Labels, HardwareIDs: b.HardwareIDs, MinBuild: b.MinBuild, MaxBuild: b.MaxBuild}
		for _, id := range b.CHIDs {
			cb.CHIDs = append(cb.CHIDs, id.String())
		}
		out = append(out, cb)
	}
	sort.Slice(out, func(i, j int) bool { return catalogs.CompareIDs(out[i].ID, out[j].ID) < 0 })
	return out
}

func audiences(t *catalogs.Tree) []compiled.Audience {
	out := make([]compiled.Audience, 0, len(t.Audiences))
	for _, a := range t.Audiences {
		out = append(out, compiled.Audience{ID: a.ID.String(), Name: a.Name, TargetRing: a.TargetRing, Audience: a.Audience})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// compile compiles the label records and control table of a whole validated tree (less the
// labels in skip): compileProduct for each product, then assemble. It is a control-only
// release's, which writes no HWID shard: the rows are not kept.
func compile(t *catalogs.Tree, skip map[string][]string, now time.Time, labelShards int) (*compiledTree, error) {
	units := make([][]compiledLabel, len(t.Products))
	for i, p := range t.Products {
		units[i] = compileProduct(t, p)
	}
	return assemble(t, units, skip, now, labelShards)
}
