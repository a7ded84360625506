package bench

import (
	"io"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkGenerateLabels10k generates a tree of 10,000 labels (compact) per iteration.
func BenchmarkGenerateLabels10k(b *testing.B) {
	base := b.TempDir()
	var st LabelStats
	i := 0
	for b.Loop() {
		var err error
		st, err = GenerateLabels(filepath.Join(base, strconv.Itoa(i)), LabelOptions{Labels: 10000, Compact: true})
		if err != nil {
			b.Fatal(err)
		}
		if st.Labels != 10000 {
			b.Fatalf("wrote %d labels, want 10000", st.Labels)
		}
		i++
	}
	b.SetBytes(st.Bytes)
	b.ReportMetric(float64(st.Files), "files/op")
}

// BenchmarkGenerateDevices generates 1,000 PCs per iteration from a tree of 2,000 labels
// (the tree is generated once, outside the timing).
func BenchmarkGenerateDevices(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "labels")
	if _, err := GenerateLabels(dir, LabelOptions{Labels: 2000, Compact: true}); err != nil {
		b.Fatal(err)
	}
	var st DeviceStats
	for b.Loop() {
		var err error
		if st, err = GenerateDevices(io.Discard, DeviceOptions{PCs: 1000, Labels: dir}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(st.Bytes)
}
