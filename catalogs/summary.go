package catalogs

// A product summary is what the rules that span products read of one product directory,
// with the problems its own files and rules gave, in a compact binary form. The build
// caches one per product directory (build/cache.go) and runs the rules that span labels
// (CheckReferences, ValidateAcross, Invalid) over a tree of summaries, so that a product
// whose files did not change is neither read nor validated again. It runs them over
// summaries in a clean build too: both builds see the same data, which is what makes an
// incremental build byte-identical to a clean one.
//
// A summary keeps, of a validated (expanded) product:
//
//   - the product's id, file and isFlightSign;
//   - each submission's id, productId, file and isExtensionInf, and of its driver metadata
//     only the INFs a live row names (bundle, name, class, date, version, extension id,
//     CHIDs), each with only the grid entries live rows name;
//   - each label's ids, destination, file, publishing specifications, floors and ceilings,
//     audiences, live CHIDs and distribution (flight, rollout stages and pause, cancel);
//     its rows keep their positions (problems point at them by index) but only the live
//     ones keep their fields.
//
// A rule that spans labels and reads anything else must add it here. Two tests catch a
// field left out: checkSummarized (summary_test.go), which every rule test, conformance
// scenario and FuzzLabelTree input goes through, and the build's TestIncrementalIdentical,
// which compares a build's problems with the whole tree's Validate over random edits of a
// generated tree.
//
// The encoding: "DWS1", then a string table (uvarint count; each string a uvarint length and
// its bytes), then everything else with strings as uvarint indexes into the table:
//
//	summary    = "DWS1" strings problems product
//	problems   = n { code file pointer message level:byte product submission label }
//	product    = id file isFlightSign:byte n{ submission }
//	submission = id productId file isExtensionInf:byte n{ inf } n{ label }
//	inf        = bundle name class date:varint version:uvarint extensionId:opt16 n{ chid:16 } n{ code hwid score:byte extended:byte }
//	label      = id productId submissionId destination file publishing:opt rows n{ chid:16 } n{ audience:16 }
//	             floor ceiling floorBuild ceilingBuild flags:byte flight:opt rollout:opt cancelled:opt
//	publishing = goLive:time flags:byte
//	rows       = n { live:byte [bundle inf osCode hwid] }
//	flight     = n{ channel } start:time approved:time
//	rollout    = paused:byte n{ at:time basisPoints:uvarint }
//	cancelled  = at:time rollback:byte reason
//	time       = zero:byte [unixSeconds:varint nanoseconds:uvarint zoneOffsetSeconds:varint]
//
// opt is a byte 0 (absent) or 1 followed by the value; n is a uvarint count. ReadSummary
// refuses anything else: a truncated or damaged summary is an error, never a panic (see
// FuzzReadSummary).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/driveway/driveway/catalogs/chid"
)

const summaryMagic = "DWS1"

// AppendSummary appends the summary of p, a product ValidateProduct has validated, with
// probs (the problems of its files and of ValidateProduct) to dst.
func AppendSummary(dst []byte, p *Product, probs Problems) []byte {
	e := &summaryEncoder{index: map[string]uint64{}}
	e.problems(probs)
	e.product(p)
	dst = append(dst, summaryMagic...)
	dst = binary.AppendUvarint(dst, uint64(len(e.strings)))
	for _, s := range e.strings {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return append(dst, e.body...)
}

type summaryEncoder struct {
	strings []string
	index   map[string]uint64
	body    []byte
}

func (e *summaryEncoder) str(s string) {
	i, ok := e.index[s]
	if !ok {
		i = uint64(len(e.strings))
		e.strings = append(e.strings, s)
		e.index[s] = i
	}
	e.uint(i)
}

func (e *summaryEncoder) uint(n uint64) { e.body = binary.AppendUvarint(e.body, n) }
func (e *summaryEncoder) int(n int64)   { e.body = binary.AppendVarint(e.body, n) }
func (e *summaryEncoder) byte(b byte)   { e.body = append(e.body, b) }

func (e *summaryEncoder) bool(b bool) {
	if b {
		e.byte(1)
	} else {
		e.byte(0)
	}
}

func (e *summaryEncoder) chids(ids []chid.ID) {
	e.uint(uint64(len(ids)))
	for _, id := range ids {
		e.body = append(e.body, id[:]...)
	}
}

func (e *summaryEncoder) time(t time.Time) {
	if t.IsZero() {
		e.byte(0)
		return
	}
	e.byte(1)
	_, offset := t.Zone()
	e.int(t.Unix())
	e.uint(uint64(t.Nanosecond()))
	e.int(int64(offset))
}

func (e *summaryEncoder) problems(ps Problems) {
	e.uint(uint64(len(ps)))
	for _, p := range ps {
		e.str(p.Code)
		e.str(p.File)
		e.str(p.Pointer)
		e.str(p.Message)
		e.byte(byte(p.scope.level))
		e.str(p.scope.product)
		e.str(p.scope.submission)
		e.str(p.scope.label)
	}
}

func (e *summaryEncoder) product(p *Product) {
	e.str(p.ID)
	e.str(p.File)
	e.bool(p.IsFlightSign)
	e.uint(uint64(len(p.Submissions)))
	for _, s := range p.Submissions {
		e.submission(s)
	}
}

// liveEntry is a grid entry a live row names.
type liveEntry struct {
	code, hwid string
	pnp        PnP
}

func (e *summaryEncoder) submission(s *Submission) {
	e.str(s.ID)
	e.str(s.ProductID)
	e.str(s.File)
	e.bool(s.IsExtensionInf)
	// The INFs live rows name, with the entries they name, in metadata order.
	named := map[*INF][]liveEntry{}
	for _, l := range s.Labels {
		for _, r := range l.Rows {
			if !r.Live() {
				continue
			}
			inf := s.INF(r.Bundle, r.INF)
			if inf == nil {
				continue
			}
			es := named[inf]
			if es == nil {
				es = []liveEntry{} // named, even with no entry
			}
			if pnp, ok := inf.Entry(r.OSCode, r.HWID); ok {
				es = append(es, liveEntry{r.OSCode, r.HWID, pnp})
			}
			named[inf] = es
		}
	}
	var infs []*INF
	if s.Metadata != nil {
		for _, b := range s.Metadata.Bundles {
			for _, inf := range b.INFs {
				if named[inf] != nil {
					infs = append(infs, inf)
				}
			}
		}
	}
	e.uint(uint64(len(infs)))
	for _, inf := range infs {
		e.str(inf.Bundle)
		e.str(inf.Name)
		e.str(inf.Class)
		e.int(int64(inf.Date))
		e.uint(inf.Version)
		if inf.ExtensionID != nil {
			e.byte(1)
			e.body = append(e.body, inf.ExtensionID[:]...)
		} else {
			e.byte(0)
		}
		e.chids(inf.CHIDs)
		// Sorted by OS code and hardware ID, each once (a sealed grid has one entry per
		// pair), so that ReadSummary builds the grid sealed, without a map.
		es := named[inf]
		sort.Slice(es, func(i, j int) bool {
			if es[i].code != es[j].code {
				return es[i].code < es[j].code
			}
			return es[i].hwid < es[j].hwid
		})
		es = slices.CompactFunc(es, func(a, b liveEntry) bool { return a.code == b.code && a.hwid == b.hwid })
		e.uint(uint64(len(es)))
		for _, x := range es {
			e.str(x.code)
			e.str(x.hwid)
			e.byte(x.pnp.FeatureScore)
			e.bool(x.pnp.Extended)
		}
	}
	e.uint(uint64(len(s.Labels)))
	for _, l := range s.Labels {
		e.label(l)
	}
}

func (e *summaryEncoder) label(l *Label) {
	e.str(l.ID)
	e.str(l.ProductID)
	e.str(l.SubmissionID)
	e.str(l.Destination)
	e.str(l.File)
	if pub := l.Publishing; pub != nil {
		e.byte(1)
		e.time(pub.GoLive)
		e.byte(flags(pub.AutoDU, pub.AutoApplicable, pub.Manual, pub.Windows10S, pub.CoEngineered, pub.HasUISoftware))
	} else {
		e.byte(0)
	}
	e.uint(uint64(len(l.Rows)))
	for _, r := range l.Rows {
		if !r.Live() {
			e.byte(0)
			continue
		}
		e.byte(1)
		e.str(r.Bundle)
		e.str(r.INF)
		e.str(r.OSCode)
		e.str(r.HWID)
	}
	e.chids(l.LiveCHIDs())
	e.chids(l.Audiences)
	e.str(l.Floor)
	e.str(l.Ceiling)
	e.uint(uint64(l.FloorBuild))
	e.uint(uint64(l.CeilingBuild))
	e.byte(flags(l.HasInService, l.HasCoEng))
	d := l.Distribution
	if f := d.Flight; f != nil {
		e.byte(1)
		e.uint(uint64(len(f.Channels)))
		for _, c := range f.Channels {
			e.str(c)
		}
		e.time(f.Start)
		e.time(f.Approved)
	} else {
		e.byte(0)
	}
	if r := d.Rollout; r != nil {
		e.byte(1)
		e.bool(r.Paused)
		e.uint(uint64(len(r.Stages)))
		for _, s := range r.Stages {
			e.time(s.At)
			e.uint(uint64(s.BasisPoints))
		}
	} else {
		e.byte(0)
	}
	if c := d.Cancelled; c != nil {
		e.byte(1)
		e.time(c.At)
		e.bool(c.Rollback)
		e.str(c.Reason)
	} else {
		e.byte(0)
	}
}

func flags(bits ...bool) byte {
	var b byte
	for i, on := range bits {
		if on {
			b |= 1 << i
		}
	}
	return b
}

// ErrBadSummary is what ReadSummary's errors are (errors.Is).
var ErrBadSummary = errors.New("catalogs: malformed product summary")

// ReadSummary decodes a summary AppendSummary wrote: the product (its submissions, labels
// and INFs holding what a summary keeps, already expanded) and its problems. Anything else
// is an error wrapping ErrBadSummary.
func ReadSummary(b []byte) (*Product, Problems, error) {
	d := &summaryDecoder{b: b}
	if len(b) < len(summaryMagic) || string(b[:len(summaryMagic)]) != summaryMagic {
		return nil, nil, fmt.Errorf("%w: no %s header", ErrBadSummary, summaryMagic)
	}
	d.b = d.b[len(summaryMagic):]
	n := d.count(1)
	d.table = make([][]byte, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		d.table = append(d.table, d.bytes(d.count(1)))
	}
	d.strings = make([]string, n)
	d.made = make([]uint8, n)
	probs := d.problems()
	p := d.product()
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the product", len(d.b))
	}
	if d.err != nil {
		return nil, nil, d.err
	}
	return p, probs, nil
}

type summaryDecoder struct {
	b       []byte
	table   [][]byte // the string table, in b
	strings []string // made from table on first use (str, shared)
	made    []uint8  // per string: 0 not made, 1 a copy, 2 interned
	err     error
}

func (d *summaryDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadSummary, fmt.Sprintf(format, args...))
	}
}

func (d *summaryDecoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	n, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.fail("truncated number")
		return 0
	}
	d.b = d.b[k:]
	return n
}

func (d *summaryDecoder) int() int64 {
	if d.err != nil {
		return 0
	}
	n, k := binary.Varint(d.b)
	if k <= 0 {
		d.fail("truncated number")
		return 0
	}
	d.b = d.b[k:]
	return n
}

// count reads a count of items of at least size bytes each, bounded by what is left.
func (d *summaryDecoder) count(size int) int {
	n := d.uint()
	if n > uint64(len(d.b)/size) {
		d.fail("a count of %d is more than the %d bytes left hold", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *summaryDecoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.fail("truncated")
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *summaryDecoder) byte() byte {
	b := d.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (d *summaryDecoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("a flag is neither 0 nor 1")
	return false
}

func (d *summaryDecoder) opt() bool { return d.bool() }

// str reads a string of this product (an id, a file path, a message): made once per
// summary.
func (d *summaryDecoder) str() string { return d.string(1) }

// shared reads a string that repeats across products (hardware IDs, OS codes, INF and
// bundle names, release names, problem codes): interned, so the tree holds it once.
// Interning the rest would cost memory (the interning table's entries) for nothing.
func (d *summaryDecoder) shared() string { return d.string(2) }

func (d *summaryDecoder) string(how uint8) string {
	i := d.uint()
	if d.err != nil {
		return ""
	}
	if i >= uint64(len(d.table)) {
		d.fail("string %d of a table of %d", i, len(d.table))
		return ""
	}
	if d.made[i] < how {
		if how == 2 {
			d.strings[i] = intern(string(d.table[i]))
		} else {
			d.strings[i] = string(d.table[i])
		}
		d.made[i] = how
	}
	return d.strings[i]
}

func (d *summaryDecoder) chid() chid.ID {
	var id chid.ID
	copy(id[:], d.bytes(16))
	return id
}

func (d *summaryDecoder) chids() []chid.ID {
	n := d.count(16)
	if n == 0 {
		return nil
	}
	ids := make([]chid.ID, n)
	for i := range ids {
		ids[i] = d.chid()
	}
	return ids
}

func (d *summaryDecoder) time() time.Time {
	if !d.opt() {
		return time.Time{}
	}
	sec, nsec, offset := d.int(), d.uint(), d.int()
	if nsec >= 1e9 || offset <= -86400 || offset >= 86400 {
		d.fail("a time out of range")
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if offset != 0 {
		t = t.In(time.FixedZone("", int(offset)))
	}
	return t
}

func (d *summaryDecoder) problems() Problems {
	n := d.count(8)
	var ps Problems
	for i := 0; i < n && d.err == nil; i++ {
		p := Problem{Code: d.shared(), File: d.str(), Pointer: d.str(), Message: d.str()}
		level := scopeLevel(d.byte())
		if level > scopeNone {
			d.fail("problem scope %d", level)
		}
		p.scope = scope{level: level, product: d.str(), submission: d.str(), label: d.str()}
		ps = append(ps, p)
	}
	return ps
}

func (d *summaryDecoder) product() *Product {
	p := &Product{ID: d.str(), File: d.str(), IsFlightSign: d.bool(), expanded: true}
	n := d.count(5)
	for i := 0; i < n && d.err == nil; i++ {
		p.Submissions = append(p.Submissions, d.submission(p))
	}
	return p
}

func (d *summaryDecoder) submission(p *Product) *Submission {
	s := &Submission{ID: d.str(), ProductID: d.str(), File: d.str(), IsExtensionInf: d.bool(), Product: p}
	n := d.count(8)
	if n > 0 {
		s.Metadata = &Metadata{}
	}
	for i := 0; i < n && d.err == nil; i++ {
		inf := &INF{Bundle: d.shared(), Name: d.shared(), Class: d.shared(), Date: int32(d.int()), Version: d.uint()}
		if d.opt() {
			id := d.chid()
			inf.ExtensionID = &id
		}
		inf.CHIDs = d.chids()
		d.grid(&inf.grid)
		bs := s.Metadata.Bundles
		if len(bs) == 0 || bs[len(bs)-1].ID != inf.Bundle {
			s.Metadata.Bundles = append(bs, &Bundle{ID: inf.Bundle})
		}
		b := s.Metadata.Bundles[len(s.Metadata.Bundles)-1]
		b.INFs = append(b.INFs, inf)
	}
	n = d.count(16)
	for i := 0; i < n && d.err == nil; i++ {
		l := d.label()
		l.Submission, l.Product = s, p
		s.Labels = append(s.Labels, l)
	}
	return s
}

// grid reads an INF's entries, sorted by OS code and hardware ID and each once, into a
// sealed grid (an ID listed on several codes is in hwids once per code: lookups compare the
// strings, not the indexes).
func (d *summaryDecoder) grid(g *grid) {
	m := d.count(4)
	if m == 0 {
		return
	}
	g.hwids = make([]string, 0, m)
	var prevCode, prevHWID string
	for j := 0; j < m && d.err == nil; j++ {
		code, hwid := d.shared(), d.shared()
		e := gridEntry{hwid: int32(len(g.hwids)), score: d.byte(), extended: d.bool()}
		if j > 0 && (code < prevCode || (code == prevCode && hwid <= prevHWID)) {
			d.fail("grid entries out of order")
			return
		}
		prevCode, prevHWID = code, hwid
		g.hwids = append(g.hwids, hwid)
		if n := len(g.codes); n == 0 || g.codes[n-1].code != code {
			g.codes = append(g.codes, gridCode{code: code})
		}
		c := &g.codes[len(g.codes)-1]
		c.entries = append(c.entries, e)
	}
}

func (d *summaryDecoder) label() *Label {
	l := &Label{ID: d.str(), ProductID: d.str(), SubmissionID: d.str(), Destination: d.shared(), File: d.str()}
	if d.opt() {
		pub := &Publishing{GoLive: d.time()}
		f := d.byte()
		pub.AutoDU, pub.AutoApplicable, pub.Manual = f&1 != 0, f&2 != 0, f&4 != 0
		pub.Windows10S, pub.CoEngineered, pub.HasUISoftware = f&8 != 0, f&16 != 0, f&32 != 0
		l.Publishing = pub
	}
	n := d.count(1)
	if n > 0 {
		l.Rows = make([]Row, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		if d.bool() {
			l.Rows[i] = Row{Bundle: d.shared(), INF: d.shared(), OSCode: d.shared(), HWID: d.shared(), State: "added"}
		}
	}
	for _, id := range d.chids() {
		l.CHIDs = append(l.CHIDs, LabelCHID{ID: id, State: "added"})
	}
	l.Audiences = d.chids()
	l.Floor, l.Ceiling = d.shared(), d.shared()
	l.FloorBuild, l.CeilingBuild = d.build(), d.build()
	f := d.byte()
	l.HasInService, l.HasCoEng = f&1 != 0, f&2 != 0
	if d.opt() {
		fl := &Flight{}
		m := d.count(1)
		for i := 0; i < m && d.err == nil; i++ {
			fl.Channels = append(fl.Channels, d.shared())
		}
		fl.Start, fl.Approved = d.time(), d.time()
		l.Distribution.Flight = fl
	}
	if d.opt() {
		r := &Rollout{Paused: d.bool()}
		m := d.count(2)
		for i := 0; i < m && d.err == nil; i++ {
			r.Stages = append(r.Stages, Stage{At: d.time(), BasisPoints: int(d.build())})
		}
		l.Distribution.Rollout = r
	}
	if d.opt() {
		l.Distribution.Cancelled = &Cancelled{At: d.time(), Rollback: d.bool(), Reason: d.str()}
	}
	return l
}

// build reads a non-negative int that fits 32 bits (builds, basis points).
func (d *summaryDecoder) build() int {
	n := d.uint()
	if n > 1<<31-1 {
		d.fail("a number of %d is out of range", n)
		return 0
	}
	return int(n)
}
