package offer

import (
	"math/rand/v2"
	"testing"

	"github.com/driveway/driveway/catalogs/compiled"
)

// TestOutrankSameLabel checks step 3's one-pass-per-label implementation against the rule as
// offers.md states it: a surviving base row is outranked when another surviving base row of
// the same label comes before it. Random candidates, with few labels and few distinct
// values so that ties in every key of rowBefore occur.
func TestOutrankSameLabel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	labels := []*labelEntry{{id: 1}, {id: 2}, {id: 3}}
	infs := []compiled.INF{{Name: []byte("a.inf")}, {Name: []byte("b.inf")}}
	verdicts := []Verdict{Offered, Offered, Offered, CHID, Blocked}
	outranked := 0
	for round := 0; round < 20000; round++ {
		cands := make([]cand, rng.IntN(12))
		for i := range cands {
			cands[i] = cand{
				l:       labels[rng.IntN(len(labels))],
				inf:     &infs[rng.IntN(len(infs))],
				rank:    uint32(rng.IntN(3)),
				date:    int32(rng.IntN(2)),
				version: uint64(rng.IntN(2)),
				verdict: verdicts[rng.IntN(len(verdicts))],
				ext:     rng.IntN(6) == 0,
			}
		}
		// The rule, evaluated on the verdicts before step 3.
		want := make([]bool, len(cands))
		for i := range cands {
			c := &cands[i]
			if c.verdict != Offered || c.ext {
				continue
			}
			for j := range cands {
				o := &cands[j]
				if j != i && o.verdict == Offered && !o.ext && o.l == c.l && rowBefore(o, c, j, i) {
					want[i] = true
				}
			}
		}
		before := append([]cand(nil), cands...)
		outrankSameLabel(cands)
		for i := range cands {
			c, was := &cands[i], &before[i]
			switch {
			case want[i]:
				outranked++
				if c.verdict != Outranked || c.detail.label != c.l.id || c.detail.text != "same label, better row" {
					t.Fatalf("round %d: row %d of label %d: verdict %v %+v; want outranked by its own label\n%+v",
						round, i, c.l.id, c.verdict, c.detail, before)
				}
			case c.verdict != was.verdict || c.detail != was.detail:
				t.Fatalf("round %d: row %d of label %d: verdict %v %+v; want it unchanged (%v)\n%+v",
					round, i, c.l.id, c.verdict, c.detail, was.verdict, before)
			}
		}
	}
	if outranked == 0 {
		t.Fatal("no row was outranked: the generator makes no groups")
	}
}
