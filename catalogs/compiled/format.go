// Package compiled defines the compiled forms of labels that a release carries: the HWID
// records and label records stored as values in shards, and the control table (rollout,
// flight and cancel state, blocks, audiences) stored in the signed manifest. The build
// writes them; the offer procedure reads them. Shards themselves (package index) know
// nothing of this: to them a record is a value under a key.
//
// # HWID record
//
// Key: the normalised hardware ID (catalogs.NormalizeHWID), routed to a HWID shard.
// Value, all integers little-endian:
//
//	version     [1]  = 1
//	nfam        [1]  families present, 1..5
//	families    nfam × family
//	nrows       [2]
//	rows        nrows × row
//
//	family:
//	  family    [1]  ostable.Family
//	  first     [1]  the first slot that has a cell
//	  ncells    [1]  cells for slots first .. first+ncells-1; slots outside have no rows
//	  cells     ncells × ( start [2], count [2] )   a run of rows: rows[start : start+count]
//
//	row (16 bytes):
//	  label     [8]  label id
//	  inf       [2]  index of the row's INF in the label record's INF table
//	  slot      [1]  the slot of the row's own OS code
//	  family    [1]  the family of the row's own OS code
//	  score     [1]  the INF's FeatureScore for this hardware ID on this OS code
//	  flags     [1]  bit 0: live (distributionState added); bit 1: extended by driver
//	                 expansion; bits 2-3: state (0 added, 1 pendingAdd, 2 pendingRemove, 3 notSet)
//	  reserved  [2]  zero
//
// One cell per (HWID, family, slot): "offered forward" is expanded here. Rows are sorted by
// (family, slot, label, inf); a Windows 10+ release's cell is the run of every row of that
// family whose release is at or below it, and an era's cell (WIN7, WIN8, WIN81) the rows of
// exactly that era, so the edge answers (HWID, family, release) with one probe and one cell.
// Worked example, one row of label 3001 on WINDOWS_v100_X64_RS5_FULL (amd64/client, slot
// 9 in the default table: WIN7 WIN8 WIN81 TH1 TH2 RS1 RS2 RS3 RS4 RS5 …), live:
//
//	01 01                    version 1, one family
//	01 09 07                 amd64/client, cells for slots 9..15 (RS5 … GE)
//	0000 0100 × 7            each cell: start 0, count 1
//	0100                     one row
//	b90b000000000000 0000 09 01 ff 01 0000   label 3001, INF 0, slot 9, amd64/client, score 0xFF, live
//
// # Label record
//
// Key: the label id as 8 bytes big-endian (so keys sort numerically), routed to a label
// shard. Value:
//
//	version     [1]  = 1
//	product     [8]  product id
//	submission  [8]  submission id
//	goLive      [8]  unix seconds
//	flags       [2]  see the Flag* constants
//	floorSlot   [1]  0xFF: none      ceilSlot [1]  0xFF: none
//	floorBuild  [4]  0: none         ceilBuild [4] 0: none
//	pkgSize     [8]
//	pkgSHA256   [32]
//	rowsDigest  [16] the first 16 bytes of the sha256 of the label's rows as compiled (change detection only)
//	url         len [2] + bytes
//	name        len [2] + bytes
//	audiences   n [1] + n × [16]   GUIDs, sorted
//	chids       n [2] + n × [16]   live CHIDs, sorted
//	infs        n [2] + n × inf
//
//	inf:
//	  name      len [1] + bytes
//	  class     len [1] + bytes
//	  date      [4]  days since 1970-01-01 (signed)
//	  version   [8]  w<<48 | x<<32 | y<<16 | z
//	  extension [1] 0/1, then [16] the ExtensionId when 1
//	  chids     n [2] + n × [16]   InstallationComputerHardwareIds, sorted
//
// # Compatibility
//
// A reader checks the version byte of every record; a future incompatible encoding changes
// it (and the manifest's format line). Trailing bytes after a record are an error, so a
// record cannot be quietly extended.
package compiled

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/ostable"
)

// Version is the version byte of both record kinds.
const Version = 1

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("compiled: corrupt record")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrCorrupt)
}

const (
	rowSize     = 16
	cellSize    = 4
	familyHead  = 3
	maxRows     = 1<<16 - 1
	noSlot      = uint8(ostable.NoSlot)
	labelFixed  = 1 + 8 + 8 + 8 + 2 + 1 + 1 + 4 + 4 + 8 + 32 + 16
	maxINFName  = 255
	maxListSize = 1<<16 - 1
)

// Row flags.
const (
	RowLive     = 1 << 0
	RowExtended = 1 << 1
	rowState    = 3 << 2
)

// Row states (flags bits 2-3).
var rowStates = [4]string{"added", "pendingAdd", "pendingRemove", "notSet"}

// Row is one compiled grid row.
type Row struct {
	Label  uint64
	INF    uint16
	Slot   ostable.Slot
	Family ostable.Family
	Score  uint8
	Flags  uint8
}

// Live reports whether the row is offered (distributionState added).
func (r Row) Live() bool { return r.Flags&RowLive != 0 }

// State is the row's distributionState.
func (r Row) State() string { return rowStates[r.Flags&rowState>>2] }

// StateFlags returns the flag bits of a distributionState.
func StateFlags(state string) uint8 {
	for i, s := range rowStates {
		if s == state {
			f := uint8(i) << 2
			if i == 0 {
				f |= RowLive
			}
			return f
		}
	}
	return 3 << 2
}

// AppendHWID appends the HWID record of rows (any order; a sorted copy is written) over the
// slots of tab: a family's cells run from the slot of its first row to the slot of its last,
// or to tab.LastSlot() when that is a release (a release row is offered forward, up to the
// newest release). It reports an error for no rows, and for more rows than a record holds.
func AppendHWID(dst []byte, rows []Row, tab *ostable.Table) ([]byte, error) {
	if len(rows) == 0 || len(rows) > maxRows {
		return dst, fmt.Errorf("compiled: a HWID record holds 1 to %d rows, not %d", maxRows, len(rows))
	}
	rows = append([]Row(nil), rows...)
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Family != b.Family {
			return a.Family < b.Family
		}
		if a.Slot != b.Slot {
			return a.Slot < b.Slot
		}
		if a.Label != b.Label {
			return a.Label < b.Label
		}
		return a.INF < b.INF
	})
	var fams []ostable.Family
	for i, r := range rows {
		if i == 0 || r.Family != rows[i-1].Family {
			fams = append(fams, r.Family)
		}
	}
	dst = append(dst, Version, byte(len(fams)))
	for _, f := range fams {
		start, end := -1, 0
		for i, r := range rows {
			if r.Family == f {
				if start < 0 {
					start = i
				}
				end = i + 1
			}
		}
		famRows := rows[start:end]
		first := famRows[0].Slot
		last := famRows[len(famRows)-1].Slot
		if tab.IsRelease(last) {
			last = tab.LastSlot() // offered forward up to the newest release
		}
		dst = append(dst, byte(f), byte(first), byte(last-first+1))
		for s := first; s <= last; s++ {
			var from, count int
			if tab.IsRelease(s) {
				// Every release row of the family at or below s: a run starting at the first
				// release row.
				from = -1
				for i, r := range famRows {
					if tab.IsRelease(r.Slot) && r.Slot <= s {
						if from < 0 {
							from = i
						}
						count++
					}
				}
			} else {
				from = -1
				for i, r := range famRows {
					if r.Slot == s {
						if from < 0 {
							from = i
						}
						count++
					}
				}
			}
			if count == 0 {
				from = 0
			}
			dst = binary.LittleEndian.AppendUint16(dst, uint16(start+from))
			dst = binary.LittleEndian.AppendUint16(dst, uint16(count))
		}
	}
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(rows)))
	for _, r := range rows {
		dst = binary.LittleEndian.AppendUint64(dst, r.Label)
		dst = binary.LittleEndian.AppendUint16(dst, r.INF)
		dst = append(dst, byte(r.Slot), byte(r.Family), r.Score, r.Flags, 0, 0)
	}
	return dst, nil
}

// HWID is a view of a HWID record. It does not copy: it is valid as long as its bytes.
type HWID struct {
	b     []byte
	fams  []byte // the family section
	nfam  int
	rows  []byte
	nrows int
}

// ParseHWID checks a record's structure (every offset in bounds, cells within the rows)
// and returns a view of it. It does not allocate.
func ParseHWID(b []byte) (HWID, error) {
	if len(b) < 2 || b[0] != Version {
		return HWID{}, corrupt("HWID record: bad version or too short")
	}
	h := HWID{b: b, nfam: int(b[1])}
	if h.nfam < 1 || h.nfam > int(ostable.NumFamilies) {
		return HWID{}, corrupt("HWID record: %d families", h.nfam)
	}
	off := 2
	for i := 0; i < h.nfam; i++ {
		if len(b) < off+familyHead {
			return HWID{}, corrupt("HWID record: truncated family %d", i)
		}
		n := int(b[off+2])
		if n == 0 {
			return HWID{}, corrupt("HWID record: family %d has no cells", i)
		}
		off += familyHead + n*cellSize
	}
	if len(b) < off+2 {
		return HWID{}, corrupt("HWID record: truncated before rows")
	}
	h.fams = b[2:off]
	h.nrows = int(binary.LittleEndian.Uint16(b[off:]))
	h.rows = b[off+2:]
	if h.nrows == 0 || len(h.rows) != h.nrows*rowSize {
		return HWID{}, corrupt("HWID record: %d rows in %d bytes", h.nrows, len(h.rows))
	}
	for f := h.fams; len(f) > 0; {
		n := int(f[2])
		for c := 0; c < n; c++ {
			cell := f[familyHead+c*cellSize:]
			start, count := int(binary.LittleEndian.Uint16(cell)), int(binary.LittleEndian.Uint16(cell[2:]))
			if start+count > h.nrows {
				return HWID{}, corrupt("HWID record: cell beyond the rows")
			}
		}
		f = f[familyHead+n*cellSize:]
	}
	return h, nil
}

// Cell returns the rows a device of family f on slot s is offered from: the run of rows of
// the (HWID, f, s) cell. It is empty when the record has none.
func (h *HWID) Cell(f ostable.Family, s ostable.Slot) (start, count int) {
	for fam := h.fams; len(fam) >= familyHead; {
		n := int(fam[2])
		if ostable.Family(fam[0]) == f {
			first := ostable.Slot(fam[1])
			if s < first || int(s-first) >= n {
				return 0, 0
			}
			cell := fam[familyHead+int(s-first)*cellSize:]
			return int(binary.LittleEndian.Uint16(cell)), int(binary.LittleEndian.Uint16(cell[2:]))
		}
		fam = fam[familyHead+n*cellSize:]
	}
	return 0, 0
}

// NumRows is the number of rows of the record (every family and slot).
func (h *HWID) NumRows() int { return h.nrows }

// Row returns row i, 0 <= i < NumRows.
func (h *HWID) Row(i int) Row {
	r := h.rows[i*rowSize : i*rowSize+rowSize]
	return Row{
		Label:  binary.LittleEndian.Uint64(r),
		INF:    binary.LittleEndian.Uint16(r[8:]),
		Slot:   ostable.Slot(r[10]),
		Family: ostable.Family(r[11]),
		Score:  r[12],
		Flags:  r[13],
	}
}

// LabelKey is the shard key of a label id: 8 bytes big-endian.
func LabelKey(id uint64) [8]byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], id)
	return k
}

// Label flags.
const (
	FlagWindowsUpdate  = 1 << iota // destination windowsUpdate
	FlagAutoApplicable             // isAutoInstallOnApplicableSystems
	FlagAutoDU                     // isAutoInstallDuringOSUpgrade
	FlagManual                     // manualAcquisition
	FlagWindows10S                 // publishToWindows10s
	FlagCoEngineered               // additionalInfoForMsApproval.isCoEngineered
	FlagFlightSigned               // the product is flight-signed
	FlagExtensionINF               // the submission is an extension INF
)

// LabelData is everything a label record holds, for the writer.
type LabelData struct {
	ID, Product, Submission uint64
	GoLive                  int64 // unix seconds
	Flags                   uint16
	FloorSlot, CeilSlot     ostable.Slot // ostable.NoSlot: none
	FloorBuild, CeilBuild   uint32
	PackageSize             uint64
	PackageSHA256           [32]byte
	RowsDigest              [16]byte
	URL, Name               string
	Audiences               []chid.ID
	CHIDs                   []chid.ID
	INFs                    []INFData
}

// INFData is one INF of a label record.
type INFData struct {
	Name, Class string
	Date        int32
	Version     uint64
	Extension   *chid.ID
	CHIDs       []chid.ID
}

// AppendLabel appends the label record of d.
func AppendLabel(dst []byte, d *LabelData) ([]byte, error) {
	if len(d.URL) > maxListSize || len(d.Name) > maxListSize || len(d.Audiences) > 255 ||
		len(d.CHIDs) > maxListSize || len(d.INFs) > maxListSize {
		return dst, fmt.Errorf("compiled: label %d is too large for a record", d.ID)
	}
	dst = append(dst, Version)
	dst = binary.LittleEndian.AppendUint64(dst, d.Product)
	dst = binary.LittleEndian.AppendUint64(dst, d.Submission)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(d.GoLive))
	dst = binary.LittleEndian.AppendUint16(dst, d.Flags)
	dst = append(dst, byte(d.FloorSlot), byte(d.CeilSlot))
	dst = binary.LittleEndian.AppendUint32(dst, d.FloorBuild)
	dst = binary.LittleEndian.AppendUint32(dst, d.CeilBuild)
	dst = binary.LittleEndian.AppendUint64(dst, d.PackageSize)
	dst = append(dst, d.PackageSHA256[:]...)
	dst = append(dst, d.RowsDigest[:]...)
	dst = appendString16(dst, d.URL)
	dst = appendString16(dst, d.Name)
	dst = append(dst, byte(len(d.Audiences)))
	dst = appendIDs(dst, d.Audiences)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(d.CHIDs)))
	dst = appendIDs(dst, d.CHIDs)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(d.INFs)))
	for _, inf := range d.INFs {
		if len(inf.Name) > maxINFName || len(inf.Class) > maxINFName || len(inf.CHIDs) > maxListSize {
			return dst, fmt.Errorf("compiled: label %d: INF %q is too large for a record", d.ID, inf.Name)
		}
		dst = append(dst, byte(len(inf.Name)))
		dst = append(dst, inf.Name...)
		dst = append(dst, byte(len(inf.Class)))
		dst = append(dst, inf.Class...)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(inf.Date))
		dst = binary.LittleEndian.AppendUint64(dst, inf.Version)
		if inf.Extension != nil {
			dst = append(dst, 1)
			dst = append(dst, inf.Extension[:]...)
		} else {
			dst = append(dst, 0)
		}
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(inf.CHIDs)))
		dst = appendIDs(dst, inf.CHIDs)
	}
	return dst, nil
}

func appendString16(dst []byte, s string) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

// appendIDs appends GUIDs sorted (callers' slices are not reordered).
func appendIDs(dst []byte, ids []chid.ID) []byte {
	start := len(dst)
	for _, id := range ids {
		dst = append(dst, id[:]...)
	}
	sortIDs(dst[start:])
	return dst
}

// sortIDs sorts a run of 16-byte ids in place (insertion sort: lists are short).
func sortIDs(b []byte) {
	var tmp [16]byte
	n := len(b) / 16
	for i := 1; i < n; i++ {
		for j := i; j > 0 && string(b[(j-1)*16:j*16]) > string(b[j*16:(j+1)*16]); j-- {
			copy(tmp[:], b[j*16:(j+1)*16])
			copy(b[j*16:(j+1)*16], b[(j-1)*16:j*16])
			copy(b[(j-1)*16:j*16], tmp[:])
		}
	}
}

// Label is a view of a label record. Its byte fields alias the record.
type Label struct {
	Product, Submission   uint64
	GoLive                int64
	Flags                 uint16
	FloorSlot, CeilSlot   ostable.Slot
	FloorBuild, CeilBuild uint32
	PackageSize           uint64
	PackageSHA256         []byte // 32 bytes
	RowsDigest            []byte // 16 bytes
	URL, Name             []byte
	Audiences             IDs
	CHIDs                 IDs
	infs                  []byte
	ninfs                 int
}

// IDs is a sorted run of 16-byte GUIDs in a record.
type IDs []byte

// Len is the number of ids.
func (ids IDs) Len() int { return len(ids) / 16 }

// At returns id i.
func (ids IDs) At(i int) chid.ID { return chid.ID(ids[i*16 : i*16+16]) }

// Contains reports whether id is in the run (binary search). IDs compare as two big-endian
// 64-bit halves, which is their byte order.
func (ids IDs) Contains(id chid.ID) bool {
	hi, lo := binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:])
	a, b := 0, ids.Len()
	for a < b {
		m := int(uint(a+b) >> 1)
		e := ids[m*16 : m*16+16]
		eh, el := binary.BigEndian.Uint64(e[:8]), binary.BigEndian.Uint64(e[8:])
		switch {
		case eh == hi && el == lo:
			return true
		case eh < hi || eh == hi && el < lo:
			a = m + 1
		default:
			b = m
		}
	}
	return false
}

// INF is a view of one INF of a label record.
type INF struct {
	Name, Class  []byte
	Date         int32
	Version      uint64
	HasExtension bool
	Extension    chid.ID
	CHIDs        IDs
}

// cursor decodes a record front to back; the first failure sticks.
type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) take(n int) []byte {
	if c.bad || n < 0 || len(c.b) < n {
		c.bad = true
		return nil
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) u8() uint8 {
	if v := c.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (c *cursor) u16() uint16 {
	if v := c.take(2); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

func (c *cursor) u32() uint32 {
	if v := c.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (c *cursor) u64() uint64 {
	if v := c.take(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

// ParseLabel decodes a label record without copying or allocating. Every length is checked
// against the record, and the INF table is walked once.
func ParseLabel(b []byte) (Label, error) {
	c := cursor{b: b}
	if c.u8() != Version {
		return Label{}, corrupt("label record: bad version")
	}
	var l Label
	l.Product, l.Submission, l.GoLive = c.u64(), c.u64(), int64(c.u64())
	l.Flags = c.u16()
	l.FloorSlot, l.CeilSlot = ostable.Slot(c.u8()), ostable.Slot(c.u8())
	l.FloorBuild, l.CeilBuild = c.u32(), c.u32()
	l.PackageSize = c.u64()
	l.PackageSHA256, l.RowsDigest = c.take(32), c.take(16)
	l.URL = c.take(int(c.u16()))
	l.Name = c.take(int(c.u16()))
	l.Audiences = IDs(c.take(int(c.u8()) * 16))
	l.CHIDs = IDs(c.take(int(c.u16()) * 16))
	l.ninfs = int(c.u16())
	start := c.b
	for i := 0; i < l.ninfs && !c.bad; i++ {
		var inf INF
		skipINF(&c, &inf)
	}
	if c.bad {
		return Label{}, corrupt("label record: truncated")
	}
	if len(c.b) != 0 {
		return Label{}, corrupt("label record: %d trailing bytes", len(c.b))
	}
	l.infs = start
	return l, nil
}

func skipINF(c *cursor, inf *INF) {
	inf.Name = c.take(int(c.u8()))
	inf.Class = c.take(int(c.u8()))
	inf.Date = int32(c.u32())
	inf.Version = c.u64()
	if c.u8() == 1 {
		inf.HasExtension = true
		copy(inf.Extension[:], c.take(16))
	}
	inf.CHIDs = IDs(c.take(int(c.u16()) * 16))
}

// NumINFs is the number of INFs in the record.
func (l *Label) NumINFs() int { return l.ninfs }

// INF returns INF i of the label's table (rows name it by index); ok is false when there is
// no such INF.
func (l *Label) INF(i int) (INF, bool) {
	if i < 0 || i >= l.ninfs {
		return INF{}, false
	}
	c := cursor{b: l.infs}
	var inf INF
	for k := 0; k <= i; k++ {
		skipINF(&c, &inf)
	}
	return inf, !c.bad
}
