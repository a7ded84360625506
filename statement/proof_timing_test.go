package statement_test

import (
	"fmt"
	"testing"

	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/statement"
)

// BenchmarkAppendProof writes the proof of an offer, as an edge does for a label whose proof
// it has not cached (serve's proofCache): the record's text, escaped for JSON, and the
// inclusion proof of a tree of 100,000 records. Labels have 1 to 3 INFs.
func BenchmarkAppendProof(b *testing.B) {
	const n = 100000
	var bl statement.Builder
	recs := make([]compiled.Label, 64)
	for i := range n {
		d := compiled.LabelData{ID: uint64(1e18) + uint64(i), Product: 1152921505206846976 + uint64(i), Submission: 1152923505206846976 + uint64(i),
			Flags: compiled.FlagWindowsUpdate | compiled.FlagAutoApplicable, PackageSize: 1 << 20,
			URL: fmt.Sprintf("https://packages.example/p/%d/driver-%d.cab", i, i)}
		for k := range 1 + i%3 {
			d.INFs = append(d.INFs, compiled.INFData{Name: fmt.Sprintf("drv%d.inf", k), Class: "Net", Date: int32(18000 + i%2000), Version: 10<<48 | uint64(i)})
		}
		rec, err := compiled.AppendLabel(nil, &d)
		if err != nil {
			b.Fatal(err)
		}
		if err := bl.Add(d.ID, rec); err != nil {
			b.Fatal(err)
		}
		if i < len(recs) {
			if recs[i], err = compiled.ParseLabel(rec); err != nil {
				b.Fatal(err)
			}
		}
	}
	records, err := bl.Finish()
	if err != nil {
		b.Fatal(err)
	}
	att := &statement.Attestation{Envelope: []byte(`{}`), Records: records}
	var dst []byte
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i % len(recs)
		dst = att.AppendProof(dst[:0], uint64(1e18)+uint64(k), &recs[k])
		i++
	}
	b.ReportMetric(float64(len(dst)), "bytes")
}
