package offer_test

import (
	"encoding/json"
	"math/rand"
	"strings"
	"testing"

	"github.com/driveway/driveway/offer"
)

// TestExplainFirstFailure: Explain runs step 2's checks again without stopping; on generated
// catalogs and requests its first failing check is, for every candidate, exactly the verdict
// and detail Decide reached (or none, for a candidate that survived step 2), and the
// explanation's list of failing checks starts with that verdict.
func TestExplainFirstFailure(t *testing.T) {
	t.Parallel()
	nLabels, nRequests := propSizes()
	r := rand.New(rand.NewSource(16))
	eng := release(t, genTree(r, nLabels))
	step2 := map[string]bool{}
	for _, v := range strings.Fields("not-live not-yet cancelled os-family below-floor above-ceiling smode audience flight flight-ended chid blocked paused rollout") {
		step2[v] = true
	}
	checked, several := 0, 0
	for n := 0; n < nRequests; n++ {
		body, err := json.Marshal(genRequest(r, nil))
		if err != nil {
			t.Fatal(err)
		}
		var req offer.Request
		if e := offer.NewDecoder(offer.DefaultLimits).Decode(body, &req); e != nil {
			t.Fatal(e)
		}
		now := genNow(r)
		var res offer.Result
		eng.Decide(&req, now, true, &res)
		first := eng.FirstFailures(&req, now, &res)
		x := eng.Explain(&req, now, &res)
		var cands []offer.CandidateExplanation
		for _, d := range x.Devices {
			cands = append(cands, d.Candidates...)
		}
		if len(cands) != len(res.Cands) {
			t.Fatalf("request %d: %d candidates explained, %d decided", n, len(cands), len(res.Cands))
		}
		for i, k := range res.Cands {
			want := eng.DetailOf(&res, i)
			v := k.Verdict.String()
			stage2 := step2[v] && !(v == "below-floor" && strings.HasPrefix(want, "below-floor: extension INFs"))
			switch {
			case stage2 && first[i] != want:
				t.Fatalf("request %d, candidate %d: Explain's checks first fail %q, Decide says %q\nrequest: %s", n, i, first[i], want, body)
			case !stage2 && first[i] != "":
				t.Fatalf("request %d, candidate %d (%s): Explain's checks fail %q on a row that passed step 2\nrequest: %s", n, i, want, first[i], body)
			case stage2 && (len(cands[i].Failing) == 0 || cands[i].Failing[0].Verdict != v):
				t.Fatalf("request %d, candidate %d: failing %v does not start with the verdict %s", n, i, cands[i].Failing, v)
			}
			if stage2 {
				checked++
				if len(cands[i].Failing) > 1 {
					several++
				}
			}
		}
	}
	if checked == 0 || several == 0 {
		t.Fatalf("%d candidates failed step 2, %d of them more than one check: the generated cases do not exercise Explain", checked, several)
	}
	t.Logf("%d candidates failing step 2, %d failing more than one check", checked, several)
}
