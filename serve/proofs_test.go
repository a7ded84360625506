package serve

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/statement"
)

// TestProofCache holds the cached proofs to the attestation's: for more labels than the
// cache has slots (so entries are replaced), asked for in random order from two goroutines,
// every proof is the attestation's byte for byte, appended after what dst held; a label
// without a record gets the attestation's "proof":null.
func TestProofCache(t *testing.T) {
	const labels = 3 << proofCacheBits
	var b statement.Builder
	recs := make([]compiled.Label, labels)
	for i := range recs {
		id := uint64(1152924505206846976 + 7*i)
		d := compiled.LabelData{ID: id, Product: uint64(i), Submission: uint64(2 * i), Flags: compiled.FlagWindowsUpdate,
			PackageSize: uint64(1000 + i), URL: fmt.Sprintf("https://packages.example/%d.cab", i),
			INFs: []compiled.INFData{{Name: "a.inf", Class: "Net", Date: int32(19000 + i%100), Version: uint64(i)}}}
		rec, err := compiled.AppendLabel(nil, &d)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Add(id, rec); err != nil {
			t.Fatal(err)
		}
		if recs[i], err = compiled.ParseLabel(rec); err != nil {
			t.Fatal(err)
		}
	}
	records, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	att := &statement.Attestation{Envelope: []byte(`{}`), Records: records}
	c := newProofCache(att)
	if got, want := string(c.AppendStatement(nil)), string(att.AppendStatement(nil)); got != want {
		t.Fatalf("statement %s; want %s", got, want)
	}
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			var dst []byte
			for range 4 * labels {
				i := rng.IntN(labels + 1)
				id, rec := uint64(1152924505206846976+7*i), (*compiled.Label)(nil)
				if i < labels {
					rec = &recs[i]
				} // else no such label: "proof":null
				dst = append(dst[:0], `{"x":1,`...)
				got := string(c.AppendProof(dst, id, rec))
				want := string(att.AppendProof([]byte(`{"x":1,`), id, rec))
				if got != want {
					t.Errorf("label %d: %s; want %s", id, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
