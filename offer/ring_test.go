package offer_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/offer"
)

// ringRollout is a rollout at pct from 2026-11-01 with first-ring clusters ("chid=percent"
// or "chid@minBuild-maxBuild=percent").
func ringRollout(paused bool, pct string, clusters ...string) map[string]any {
	r := rollout(paused, day("2026-11-01")+"="+pct)
	var cs []map[string]any
	for _, c := range clusters {
		key, p, _ := strings.Cut(c, "=")
		m := map[string]any{"percent": json.Number(p)}
		id, builds, ok := strings.Cut(key, "@")
		m["chid"] = id
		if ok {
			var lo, hi int
			fmt.Sscanf(builds, "%d-%d", &lo, &hi)
			m["minBuild"], m["maxBuild"] = lo, hi
		}
		cs = append(cs, m)
	}
	r["clusters"] = cs
	return r
}

// ringOffered counts, of n devices with chid c (none when "") on build, those offered label
// 42, and returns which.
func ringOffered(t *testing.T, eng *offer.Engine, n int, c string, build int) map[int]bool {
	t.Helper()
	in := map[int]bool{}
	for i := range n {
		rq := q(build)
		rq.DeviceID = fmt.Sprint("pc-", i)
		if c != "" {
			rq.CHIDs = chids("", "", "", c)
		}
		d := decide(t, eng, rq, decideAt)
		for _, o := range d.Offers {
			if o.LabelID == "42" {
				in[i] = true
			}
		}
	}
	return in
}

// TestFirstRing (issue 20, item 2): a rollout's cluster thresholds let a cluster's devices
// in up to the cluster's percent while the others stay at the stages' percent; a cluster
// bounded by builds reaches only those builds; a paused rollout or one whose first stage has
// not begun lets nobody in; the explain detail gives the threshold that applied.
func TestFirstRing(t *testing.T) {
	const n = 2000
	model := gid(7)
	eng := release(t, labels(L{ID: "42", Dist: dist("rollout", ringRollout(false, "1", model+"@19041-19045=30"))}))
	inCluster := len(ringOffered(t, eng, n, model, 19045))
	others := len(ringOffered(t, eng, n, gid(8), 19045))
	otherBuild := len(ringOffered(t, eng, n, model, 22631))
	// 30% and 1% of 2,000 devices: binomial, far from each other.
	if inCluster < 500 || inCluster > 700 || others > 45 || otherBuild > 45 {
		t.Errorf("offered: %d of %d in the cluster (want about 600), %d with another model, %d on another build (want about 20)", inCluster, n, others, otherBuild)
	}
	rq := q(19045)
	rq.DeviceID, rq.CHIDs = "pc-3", chids("", "", "", model)
	d := decide(t, eng, rq, decideAt)
	if txt := d.explainText(); !strings.Contains(txt, "(30%)") {
		t.Errorf("the explain does not give the cluster's threshold:\n%s", txt)
	}
	paused := release(t, labels(L{ID: "42", Dist: dist("rollout", ringRollout(true, "1", model+"=30"))}))
	if got := len(ringOffered(t, paused, 200, model, 19045)); got != 0 {
		t.Errorf("paused: %d offered", got)
	}
	future := release(t, labels(L{ID: "42", Dist: dist("rollout", map[string]any{"stages": []map[string]any{{"at": day("2026-12-01"), "percent": json.Number("1")}},
		"clusters": []map[string]any{{"chid": model, "percent": json.Number("30")}}})}))
	if got := len(ringOffered(t, future, 200, model, 19045)); got != 0 {
		t.Errorf("before the first stage: %d offered", got)
	}
}

// TestFirstRingSticky: buckets stay sticky across the controller's releases — a device in
// at one release (1% with a 20% cluster, then 5% with the cluster at 25%, then 25% with the
// cluster gone below the stage, then 50%) is in at every later one, in and out of the
// cluster.
func TestFirstRingSticky(t *testing.T) {
	model := gid(7)
	releases := []map[string]any{
		ringRollout(false, "1", model+"=20"),
		ringRollout(false, "5", model+"=25"),
		ringRollout(false, "25"),
		ringRollout(false, "50"),
	}
	const n = 600
	for _, c := range []string{model, gid(9)} {
		var prev map[int]bool
		for k, r := range releases {
			in := ringOffered(t, release(t, labels(L{ID: "42", Dist: dist("rollout", r)})), n, c, 19045)
			for i := range prev {
				if !in[i] {
					t.Errorf("chid %s: device pc-%d was in at release %d and is out at release %d", c, i, k-1, k)
				}
			}
			if k > 0 && len(in) < len(prev) {
				t.Errorf("chid %s: %d devices at release %d, %d before", c, len(in), k, len(prev))
			}
			prev = in
		}
		if len(prev) < n/3 {
			t.Errorf("chid %s: only %d of %d in at 50%%", c, len(prev), n)
		}
	}
}

// TestControlVersion: a control table of a version the edge does not know is refused with
// what to do; version 2 is written only when a rollout has clusters.
func TestControlVersion(t *testing.T) {
	c := compiled.Control{Version: compiled.ControlVersion + 1}
	if err := c.CheckVersion(); err == nil || !strings.Contains(err.Error(), "upgrade the edge") {
		t.Errorf("version %d: %v", c.Version, err)
	}
	plain, _ := json.Marshal(compiled.Control{Labels: []compiled.LabelControl{{Label: "1", Rollout: &compiled.Rollout{}}}})
	ring, _ := json.Marshal(compiled.Control{Labels: []compiled.LabelControl{{Label: "1", Rollout: &compiled.Rollout{Clusters: []compiled.ClusterStage{{CHID: gid(1), BasisPoints: 5}}}}}})
	if strings.Contains(string(plain), `"version"`) || !strings.Contains(string(ring), `"version":2`) {
		t.Errorf("versions written: %s / %s", plain, ring)
	}
}

// TestFirstRingAllocs: the ring's thresholds cost the hot path no allocation.
func TestFirstRingAllocs(t *testing.T) {
	model := gid(7)
	eng := release(t, labels(L{ID: "42", Dist: dist("rollout", ringRollout(false, "1", gid(5)+"=10", model+"@19041-19045=30", gid(6)+"=40"))}))
	rq := q(19045)
	rq.DeviceID, rq.CHIDs = "pc-1", chids("", "", "", model)
	body, _ := json.Marshal(rq)
	var req offer.Request
	if e := offer.NewDecoder(offer.DefaultLimits).Decode(body, &req); e != nil {
		t.Fatal(e)
	}
	var res offer.Result
	var out []byte
	run := func() {
		eng.Decide(&req, decideAt, false, &res)
		out = offer.AppendResponse(out[:0], &req, &res, eng.OS())
	}
	run()
	if n := testing.AllocsPerRun(50, run); n != 0 {
		t.Errorf("Decide with a first ring allocates %v times; want 0", n)
	}
}
