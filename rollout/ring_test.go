package rollout

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/catalogs"
)

// TestFirstRing (issue 20, item 2): at its first stage a label gets a threshold per census
// cluster large enough (ceil(minMachines / machines)), none for a small cluster or one the
// stage covers; Apply writes them into the label file and the tree reads them back; the next
// step with the same census changes nothing; a smaller census never lowers a threshold;
// advancing past a threshold takes it out; without a census the cohorts' estimates are used.
func TestFirstRing(t *testing.T) {
	dir := t.TempDir()
	start := t0.Add(-2 * time.Hour)
	tree := stepTree(t, dir, rolloutAt(stage(start, "1")))
	p := DefaultPolicy
	p.FirstRing = &FirstRing{MinMachines: 50, MaxPercent: 25}
	census := &Census{Labels: []LabelCensus{{Label: "3001", Machines: 100000, Clusters: []ClusterCensus{
		{Release: "GE", CHID: modelA, Machines: 1000},   // 5%
		{Release: "NI", CHID: modelA, Machines: 3000},   // 1.67%
		{Release: "GE", CHID: modelB, Machines: 150},    // below 200 (50 × 100 / 25): none
		{Release: "VB", CHID: modelB, Machines: 20000},  // 0.25%: the stage covers it
		{Release: "XX", CHID: modelB, Machines: 100000}, // not a release: none
	}}}}
	m := measures(map[string][3]int{"3001": {10, 0, 0}})
	ds := StepWith(tree, m, &p, t0, StepInputs{Census: census})
	if len(ds) != 1 || ds[0].Action != FirstRingSet || !strings.Contains(ds[0].Reason, "first ring: 2 cluster(s) at 1.67–5% so that each has at least 50 machines in; not enough data") {
		t.Fatalf("%v", ds)
	}
	js, _ := json.Marshal(ds[0])
	if !strings.Contains(string(js), `"firstRing":[`) || !strings.Contains(string(js), `"percent":5,"machines":1000`) {
		t.Errorf("json: %s", js)
	}
	if _, err := Apply(dir, ds); err != nil {
		t.Fatal(err)
	}
	tree, probs, err := catalogs.Load(dir, nil)
	if err != nil || probs.Errors() > 0 {
		t.Fatal(err, probs)
	}
	cs := tree.Labels()[0].Distribution.Rollout.Clusters
	if fmt.Sprint(len(cs)) != "2" || cs[0].CHID.String() != modelA || cs[0].MinBuild != 22621 || cs[0].BasisPoints != 167 || cs[1].MinBuild != 26100 || cs[1].BasisPoints != 500 {
		t.Fatalf("clusters read back: %+v", cs)
	}
	if ds := StepWith(tree, m, &p, t0, StepInputs{Census: census}); ds[0].Action != Hold {
		t.Errorf("second step: %v", ds)
	}
	// A census with the GE cluster doubled would lower its threshold: kept; the NI cluster
	// shrunk to 1,200 machines raises its own (4.17%, more than a tenth above 1.67%).
	census.Labels[0].Clusters[0].Machines = 2000
	census.Labels[0].Clusters[1].Machines = 1200
	ds = StepWith(tree, m, &p, t0, StepInputs{Census: census})
	if ds[0].Action != FirstRingSet || len(ds[0].Ring) != 2 || ds[0].Ring[0].Percent != 4.17 || ds[0].Ring[1].Percent != 5 {
		t.Errorf("a changed census: %v %+v", ds[0], ds[0].Ring)
	}
	// Advancing past 5%: with the policy's ladder 1 → 5 the 4.17% threshold goes, the 5% one
	// too (the stage covers them).
	old := t0.Add(-10 * 24 * time.Hour)
	dir2 := t.TempDir()
	tree2 := stepTree(t, dir2, `{"rollout": {"stages": [`+stage(old, "1")+`], "clusters": [{"chid": "`+modelA+`", "minBuild": 26100, "maxBuild": 26199, "percent": 5}, {"chid": "`+modelB+`", "percent": 7}]}}`)
	ds = StepWith(tree2, measures(map[string][3]int{"3001": {400, 0, 0}}), &p, t0, StepInputs{})
	if ds[0].Action != Advance || ds[0].To != 500 || len(ds[0].Ring) != 1 || ds[0].Ring[0].Percent != 7 {
		t.Errorf("advance to 5%%: %v %+v", ds[0], ds[0].Ring)
	}
	// Without a census: the cohorts' machines over the average percent of the last day.
	a := NewAggregator(MeasureOptions{})
	for i := range 2 {
		a.Add(report(fmt.Sprint("b", i), "3001", "installed", 26100, modelB))
	}
	mm := a.Measures(t0)
	p.FirstRing = &FirstRing{MinMachines: 10, MaxPercent: 25}
	dir3 := t.TempDir()
	tree3 := stepTree(t, dir3, rolloutAt(stage(start, "1")))
	ds = StepWith(tree3, &mm, &p, t0, StepInputs{})
	// 2 machines / (1% × 2/24) = 2,400 machines → 10 / 2,400 = 0.42%: covered; none.
	if ds[0].Action != Hold {
		t.Errorf("estimated, covered: %v", ds[0])
	}
	p.FirstRing = &FirstRing{MinMachines: 100, MaxPercent: 25}
	ds = StepWith(tree3, &mm, &p, t0, StepInputs{})
	if ds[0].Action != FirstRingSet || len(ds[0].Ring) != 1 || ds[0].Ring[0].Percent != 4.17 || ds[0].Ring[0].Machines != 2400 {
		t.Errorf("estimated: %v %+v", ds[0], ds[0].Ring)
	}
	if _, err := ParsePolicy([]byte(`{"firstRing": {"minMachines": 0}}`)); err == nil {
		t.Error("a first ring of 0 machines was taken")
	}
	if pp, err := ParsePolicy([]byte(`{"firstRing": {"minMachines": 30}}`)); err != nil || pp.FirstRing.MaxPercent != 25 {
		t.Errorf("default maxPercent: %+v %v", pp.FirstRing, err)
	}
}

// TestFirstRingClustersRefused: a label file's rollout clusters that are not a CHID, a
// percent or a build range are refused by the loader at their JSON pointer.
func TestFirstRingClustersRefused(t *testing.T) {
	for _, tc := range []struct{ clusters, ptr string }{
		{`[{"chid": "nope", "percent": 5}]`, "/distribution/rollout/clusters/0/chid"},
		{`[{"chid": "` + modelA + `", "percent": 500}]`, "/distribution/rollout/clusters/0/percent"},
		{`[{"chid": "` + modelA + `"}]`, "/distribution/rollout/clusters/0"},
		{`[{"chid": "` + modelA + `", "percent": 5, "minBuild": 26100, "maxBuild": 22000}]`, "/distribution/rollout/clusters/0/minBuild"},
		{`[{"chid": "` + modelA + `", "percent": 5, "colour": 1}]`, "/distribution/rollout/clusters/0/colour"},
		{`{}`, "/distribution/rollout/clusters"},
	} {
		dir := t.TempDir()
		stepTree(t, dir, `{"rollout": {"stages": [`+stage(t0, "1")+`], "clusters": `+tc.clusters+`}}`)
		_, probs, err := catalogs.Load(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range probs {
			if strings.Contains(p.String(), tc.ptr) {
				found = true
			}
		}
		if probs.Errors() == 0 || !found {
			t.Errorf("%s: problems %v, want an error at %s", tc.clusters, probs, tc.ptr)
		}
	}
}
