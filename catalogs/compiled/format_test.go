package compiled

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/ostable"
)

func slot(t *testing.T, name string) ostable.Slot {
	t.Helper()
	tab := ostable.Default()
	for s := ostable.Slot(0); int(s) < tab.NumSlots(); s++ {
		if tab.SlotName(s) == name {
			return s
		}
	}
	t.Fatalf("no slot %s", name)
	return 0
}

// The worked example of the package doc, byte for byte.
func TestHWIDGolden(t *testing.T) {
	tab := ostable.Default()
	b, err := AppendHWID(nil, []Row{{Label: 3001, Slot: slot(t, "RS5"), Family: ostable.AMD64Client, Score: 0xFF, Flags: RowLive}}, tab)
	if err != nil {
		t.Fatal(err)
	}
	want := "0101" + "010907" + strings.Repeat("00000100", 7) + "0100" + "b90b000000000000" + "0000" + "0901ff01" + "0000"
	if got := hex.EncodeToString(b); got != want {
		t.Errorf("record\n got %s\nwant %s", got, want)
	}
}

func TestHWIDCells(t *testing.T) {
	tab := ostable.Default()
	rows := []Row{
		{Label: 30, Slot: slot(t, "VB"), Family: ostable.AMD64Client, Flags: RowLive},
		{Label: 10, Slot: slot(t, "RS1"), Family: ostable.AMD64Client, Flags: RowLive},
		{Label: 20, Slot: slot(t, "RS1"), Family: ostable.AMD64Client, Flags: RowLive},
		{Label: 40, Slot: slot(t, "WIN7"), Family: ostable.AMD64Client, Flags: RowLive},
		{Label: 50, Slot: slot(t, "RS4"), Family: ostable.ARM64Client, Flags: RowLive},
	}
	b, err := AppendHWID(nil, rows, tab)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHWID(b)
	if err != nil {
		t.Fatal(err)
	}
	labels := func(f ostable.Family, s string) string {
		start, n := h.Cell(f, slot(t, s))
		var out []string
		for i := start; i < start+n; i++ {
			out = append(out, itoa(h.Row(i).Label))
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		f    ostable.Family
		slot string
		want string
	}{
		{ostable.AMD64Client, "WIN7", "40"},   // an era: its own rows only
		{ostable.AMD64Client, "WIN81", ""},    // never forward from WIN7
		{ostable.AMD64Client, "TH2", ""},      // below every release row
		{ostable.AMD64Client, "RS1", "10,20"}, // the row's own release
		{ostable.AMD64Client, "RS5", "10,20"}, // offered forward
		{ostable.AMD64Client, "VB", "10,20,30"},
		{ostable.AMD64Client, "GE", "10,20,30"}, // up to the newest release
		{ostable.ARM64Client, "RS3", ""},
		{ostable.ARM64Client, "GE", "50"},
		{ostable.X86Client, "GE", ""}, // a family the record lacks
	} {
		if got := labels(tc.f, tc.slot); got != tc.want {
			t.Errorf("cell (%s, %s) = [%s], want [%s]", tc.f, tc.slot, got, tc.want)
		}
	}
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestLabelRoundTrip(t *testing.T) {
	ext := chid.ID{1, 2, 3}
	d := &LabelData{ID: 1152921504606978422, Product: 7, Submission: 8, GoLive: 1767225600, Flags: FlagWindowsUpdate | FlagAutoApplicable,
		FloorSlot: 7, CeilSlot: ostable.NoSlot, FloorBuild: 0, CeilBuild: 27000, PackageSize: 1843200,
		URL: "https://cdn.example/x.cab", Name: "NIC", Audiences: []chid.ID{{9}, {1}}, CHIDs: []chid.ID{{5}, {3}, {4}},
		INFs: []INFData{{Name: "a.inf", Class: "Net", Date: 20000, Version: 1<<48 | 2, CHIDs: []chid.ID{{7}}}, {Name: "e.inf", Class: "Extension", Extension: &ext}}}
	d.PackageSHA256[0] = 0xab
	b, err := AppendLabel(nil, d)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseLabel(b)
	if err != nil {
		t.Fatal(err)
	}
	if l.Product != 7 || l.Submission != 8 || l.GoLive != 1767225600 || l.CeilBuild != 27000 || l.FloorSlot != 7 || l.CeilSlot != ostable.NoSlot ||
		string(l.URL) != d.URL || string(l.Name) != "NIC" || l.PackageSHA256[0] != 0xab || l.PackageSize != 1843200 {
		t.Errorf("fixed fields: %+v", l)
	}
	if l.Audiences.Len() != 2 || l.Audiences.At(0) != (chid.ID{1}) || !l.CHIDs.Contains(chid.ID{4}) || l.CHIDs.Contains(chid.ID{6}) {
		t.Errorf("ids not sorted or not found: %x %x", []byte(l.Audiences), []byte(l.CHIDs))
	}
	if d.CHIDs[0] != (chid.ID{5}) {
		t.Error("AppendLabel reordered the caller's slice")
	}
	inf, ok := l.INF(1)
	if !ok || string(inf.Name) != "e.inf" || !inf.HasExtension || inf.Extension != ext {
		t.Errorf("INF(1) = %+v, %v", inf, ok)
	}
	inf, ok = l.INF(0)
	if !ok || inf.Date != 20000 || inf.Version != 1<<48|2 || !inf.CHIDs.Contains(chid.ID{7}) || inf.HasExtension {
		t.Errorf("INF(0) = %+v, %v", inf, ok)
	}
	if _, ok := l.INF(2); ok {
		t.Error("INF(2) exists")
	}
	if n := testing.AllocsPerRun(100, func() { ParseLabel(b) }); n != 0 {
		t.Errorf("ParseLabel allocates %v", n)
	}
	// Every truncation and every extension is corrupt, never a panic.
	for i := 0; i < len(b); i++ {
		if _, err := ParseLabel(b[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("ParseLabel(first %d bytes) = %v, want ErrCorrupt", i, err)
		}
	}
	if _, err := ParseLabel(append(bytes.Clone(b), 0)); !errors.Is(err, ErrCorrupt) {
		t.Error("a trailing byte is accepted")
	}
}

func TestHWIDCorrupt(t *testing.T) {
	tab := ostable.Default()
	b, _ := AppendHWID(nil, []Row{{Label: 1, Slot: 5, Family: ostable.AMD64Client, Flags: RowLive}, {Label: 2, Slot: 8, Family: ostable.X86Client}}, tab)
	for i := 0; i < len(b); i++ {
		if _, err := ParseHWID(b[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("ParseHWID(first %d bytes) = %v, want ErrCorrupt", i, err)
		}
	}
	bad := bytes.Clone(b)
	bad[6] = 0xff // the first cell's start, beyond the rows
	if _, err := ParseHWID(bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("cell beyond rows: %v", err)
	}
}

func FuzzParseRecords(f *testing.F) {
	tab := ostable.Default()
	h, _ := AppendHWID(nil, []Row{{Label: 1, Slot: 5, Family: ostable.AMD64Client, Flags: RowLive}}, tab)
	l, _ := AppendLabel(nil, &LabelData{URL: "u", INFs: []INFData{{Name: "a.inf"}}})
	f.Add(h)
	f.Add(l)
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := ParseHWID(b); err == nil {
			for fam := ostable.Family(0); fam < ostable.NumFamilies; fam++ {
				for s := 0; s < 256; s++ {
					start, n := r.Cell(fam, ostable.Slot(s))
					for i := start; i < start+n; i++ {
						r.Row(i)
					}
				}
			}
		}
		if lab, err := ParseLabel(b); err == nil {
			for i := 0; i <= lab.NumINFs(); i++ {
				lab.INF(i)
			}
			lab.CHIDs.Contains(chid.ID{})
		}
	})
}

// TestIDsContains checks the binary search against a scan of sorted runs of 0–9 IDs built
// from few byte values, so IDs share prefixes and differ in either half, in every byte.
func TestIDsContains(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	id := func() chid.ID {
		var v chid.ID
		for i := range v {
			v[i] = []byte{0, 1, 0x80, 0xff}[rng.IntN(4)]
		}
		if rng.IntN(2) == 0 { // most differ in one byte only
			v = chid.ID{}
			v[rng.IntN(16)] = byte(rng.IntN(3))
		}
		return v
	}
	for round := 0; round < 5000; round++ {
		set := map[chid.ID]bool{}
		for n := rng.IntN(10); len(set) < n; {
			set[id()] = true
		}
		sorted := make([]chid.ID, 0, len(set))
		for v := range set {
			sorted = append(sorted, v)
		}
		slices.SortFunc(sorted, func(a, b chid.ID) int { return bytes.Compare(a[:], b[:]) })
		var run IDs
		for _, v := range sorted {
			run = append(run, v[:]...)
		}
		for k := 0; k < 20; k++ {
			q := id()
			if k < len(sorted) {
				q = sorted[k]
			}
			if got := run.Contains(q); got != set[q] {
				t.Fatalf("%x.Contains(%x) = %v; want %v", []byte(run), q, got, set[q])
			}
		}
	}
}
