package rollout

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/catalogs"
)

const (
	modelA = "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814"
	modelB = "458d93b5-c0e0-5e41-9675-36c6d93dae68"
)

// TestTargetedHold (issue 20, item 1): a driver that fails on one model and OS release while
// the label as a whole is not shown unhealthy is held on that cohort alone (a block in
// blocks.json: the label, the model's CHID, the release's builds), and the rest of the
// rollout advances, judged without the held machines; the next step changes nothing. A
// cohort that cannot be targeted (neither release nor model known) stops the label, as a
// label-wide breach does.
func TestTargetedHold(t *testing.T) {
	dir := t.TempDir()
	old := t0.Add(-10 * 24 * time.Hour)
	tree := stepTree(t, dir, rolloutAt(stage(old, "1")), rolloutAt(stage(old, "1")))
	a := NewAggregator(MeasureOptions{})
	for i := range 3000 { // healthy everywhere but model B on 24H2
		a.Add(report(fmt.Sprint("a", i), "3001", "installed", 22631, modelA))
		a.Add(report(fmt.Sprint("c", i), "3002", "installed", 22631, modelA))
	}
	for i := range 200 {
		res := "installed"
		if i < 10 {
			res = "kernel-crash-after-install"
		}
		a.Add(report(fmt.Sprint("b", i), "3001", res, 26100, modelB))
		a.Add(report(fmt.Sprint("d", i), "3002", res, 0, "")) // no build, no model: not targetable
	}
	m := a.Measures(t0)
	ds := Step(tree, &m, &DefaultPolicy, t0)
	var got []string
	for _, d := range ds {
		got = append(got, d.Label+" "+string(d.Action))
	}
	if fmt.Sprint(got) != "[3001 hold-cohort 3001 advance 3002 cancel]" {
		t.Fatalf("decisions %v:\n%v", got, ds)
	}
	hold, adv := ds[0], ds[1]
	b := hold.Block
	if b == nil || b.ID != CohortBlockID("3001", "GE", modelB) || len(b.Labels) != 1 || b.Labels[0] != "3001" || len(b.CHIDs) != 1 || b.CHIDs[0].String() != modelB ||
		b.MinBuild != 26100 || !strings.Contains(b.Reason, "held cohort GE/"+modelB+" of label 3001: kernel crashes 5.00% > 2.00%") {
		t.Errorf("the hold: %+v, block %+v", hold, b)
	}
	if adv.To != 500 || !strings.Contains(adv.Reason, "over 3000 machines (without the 1 held cohort(s))") {
		t.Errorf("the rest of the rollout: %v", adv)
	}
	if d := ds[2]; !strings.Contains(d.Reason, "cohort unknown/unknown") {
		t.Errorf("the untargetable cohort: %v", d)
	}

	changed, err := Apply(dir, ds)
	if err != nil || fmt.Sprint(changed) != "[3001 3002]" {
		t.Fatalf("apply: %v, %v", changed, err)
	}
	tree2, probs, err := catalogs.Load(dir, nil)
	if err != nil || probs.Errors() > 0 || len(tree2.Blocks) != 1 || tree2.Blocks[0].ID != b.ID || tree2.Blocks[0].MinBuild != 26100 {
		t.Fatalf("the tree after the step: %v, %v, blocks %+v", err, probs, tree2.Blocks)
	}
	for _, d := range Step(tree2, &m, &DefaultPolicy, t0) {
		if d.Changed() {
			t.Errorf("second step: %v", d)
		}
	}
	// Applying the same hold again adds no second block.
	if _, err := Apply(dir, ds[:1]); err != nil {
		t.Fatal(err)
	}
	if blocks, _ := os.ReadFile(filepath.Join(dir, "blocks.json")); strings.Count(string(blocks), b.ID) != 1 {
		t.Errorf("blocks.json after a second apply:\n%s", blocks)
	}
}
