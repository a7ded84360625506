package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/driveway/driveway/bench"
	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/signing"
)

// encoded is a label's rows as compiledLabel holds them.
func encoded(rs ...hwidRow) ([]byte, int) {
	var b []byte
	for _, r := range rs {
		b = appendHWIDRow(b, r.hwid, r.row)
	}
	return b, len(rs)
}

func spillRow(label uint64, inf uint16) compiled.Row {
	return compiled.Row{Label: label, INF: inf, Slot: 3, Family: 1, Score: 0xff, Flags: compiled.RowLive}
}

// TestSpillRoundTrip: the rows a build spills come back from their shard grouped by hardware
// ID, less the skipped labels' and the void units', and the shard's file is gone after.
func TestSpillRoundTrip(t *testing.T) {
	out := filepath.Join(t.TempDir(), "cat")
	s, err := newRowSpill(out, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer s.remove()
	ids := []string{`PCI\VEN_8086&DEV_1234`, `USB\VID_046D&PID_C52B`, `ACPI\PNP0A08`, `HID\VID_1&PID_2`}
	var labels []compiledLabel
	for l := uint64(1); l <= 4; l++ {
		cl := compiledLabel{id: strconv.FormatUint(l, 10), value: []byte{1}}
		var rs []hwidRow
		for i, hwid := range ids {
			rs = append(rs, hwidRow{hwid, spillRow(l, uint16(i))})
		}
		cl.rows, cl.nrows = encoded(rs...)
		labels = append(labels, cl)
	}
	// A fifth label, of a unit that is void (a cached entry whose summary did not decode).
	void := compiledLabel{id: "5", value: []byte{1}}
	void.rows, void.nrows = encoded(hwidRow{ids[0], spillRow(5, 9)})
	for i, part := range [][]compiledLabel{labels[:2], labels[2:], {void}} {
		if err := s.add(i, part); err != nil {
			t.Fatal(err)
		}
	}
	s.voidUnit(2)
	for _, l := range labels {
		if l.rows != nil {
			t.Fatalf("label %s keeps its rows after the spill", l.id)
		}
	}
	got := map[string][]compiled.Row{}
	total := 0
	for n := range s.shards {
		hwids, groups, kept, err := s.rows(n, map[uint64]bool{3: true})
		if err != nil {
			t.Fatal(err)
		}
		total += kept
		for i, h := range hwids {
			if _, dup := got[h]; dup {
				t.Fatalf("%s in two groups", h)
			}
			got[h] = groups[i]
		}
		if _, err := os.Stat(filepath.Join(s.dir, "0")); n == 0 && !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("shard 0's spill file is still there after it was read: %v", err)
		}
	}
	if total != 12 || len(got) != len(ids) {
		t.Fatalf("%d rows kept in %d groups, want 12 (3 labels × 4 IDs) in %d", total, len(got), len(ids))
	}
	for i, h := range ids {
		rs := got[h]
		if len(rs) != 3 {
			t.Fatalf("%s: %d rows, want 3", h, len(rs))
		}
		for _, r := range rs {
			if r.Label == 3 || r.INF != uint16(i) || r != spillRow(r.Label, uint16(i)) {
				t.Fatalf("%s: row %+v", h, r)
			}
		}
	}
}

// TestSpillDamaged: a spill file changed under the build (truncated, or with a row more) is
// an error naming the shard, never a panic or a release missing rows.
func TestSpillDamaged(t *testing.T) {
	for _, damage := range []struct {
		name string
		do   func(b []byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)-3] }},
		{"a row more", func(b []byte) []byte { return append(b, b[:len(b)/2]...) }},
		{"emptied", func(b []byte) []byte { return nil }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			s, err := newRowSpill(filepath.Join(t.TempDir(), "cat"), 1)
			if err != nil {
				t.Fatal(err)
			}
			defer s.remove()
			l := compiledLabel{id: "7"}
			l.rows, l.nrows = encoded(hwidRow{`PCI\VEN_1`, spillRow(7, 0)}, hwidRow{`PCI\VEN_2`, spillRow(7, 1)})
			if err := s.add(0, []compiledLabel{l}); err != nil {
				t.Fatal(err)
			}
			sh := &s.shards[0]
			if err := sh.w.Flush(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(sh.f.Name())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(sh.f.Name(), damage.do(b), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := s.rows(0, nil); err == nil || !strings.Contains(err.Error(), "HWID shard 0") {
				t.Fatalf("a damaged spill read as %v", err)
			}
		})
	}
}

// TestSpillSkipsByCanonicalID: the attack on skipping by IDValue. A label whose id the
// loader refused (L002 makes it "") has IDValue 0, as label "0" has: with --skip-invalid the
// invalid label is left out, and label 0 must keep its rows (it did before the spill, when
// rows were left out by the id's string).
func TestSpillSkipsByCanonicalID(t *testing.T) {
	s, err := newRowSpill(filepath.Join(t.TempDir(), "cat"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.remove()
	units := [][]compiledLabel{{{id: "", value: []byte{1}}, {id: "0", value: []byte{2}}}}
	units[0][0].rows, units[0][0].nrows = encoded(hwidRow{`PCI\VEN_BAD`, spillRow(0, 0)})
	units[0][1].rows, units[0][1].nrows = encoded(hwidRow{`PCI\VEN_GOOD`, spillRow(0, 0)})
	if err := s.add(0, units[0]); err != nil {
		t.Fatal(err)
	}
	c, err := assemble(&catalogs.Tree{}, units, map[string][]string{"": {"L002"}}, testNow, 1)
	if err != nil {
		t.Fatal(err)
	}
	hwids, _, kept, err := s.rows(0, c.skipIDs)
	if err != nil {
		t.Fatal(err)
	}
	if kept != 1 || len(hwids) != 1 || hwids[0] != `PCI\VEN_GOOD` {
		t.Fatalf("rows kept for %v (%d), want label 0's PCI\\VEN_GOOD alone", hwids, kept)
	}
}

// TestBuildLeavesNoSpill: the spill directory beside --out is gone after a build, published
// or refused.
func TestBuildLeavesNoSpill(t *testing.T) {
	labels := filepath.Join(t.TempDir(), "labels")
	if _, err := bench.GenerateLabels(labels, bench.LabelOptions{Labels: 30, Seed: 9, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	s, _ := testKey(t)
	parent := t.TempDir()
	out := filepath.Join(parent, "cat")
	build := func() error {
		_, err := Build(context.Background(), Options{Labels: labels, Out: out, Signers: []*signing.Signer{s}, Now: testNow, SkipInvalid: true, AllowShrink: true})
		return err
	}
	left := func(when string) {
		t.Helper()
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.Contains(e.Name(), "build-spill") {
				t.Fatalf("%s: %s left beside --out", when, e.Name())
			}
		}
	}
	if err := build(); err != nil {
		t.Fatal(err)
	}
	left("after a published build")
	// An error in a catalog-wide file cannot be skipped: the build is refused after the
	// spill was made.
	if err := os.WriteFile(filepath.Join(labels, "catalog.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := build(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a broken catalog.json built: %v", err)
	}
	left("after a refused build")
}
