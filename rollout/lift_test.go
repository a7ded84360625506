package rollout

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/catalogs"
)

// holdMeasures: label 3001 healthy on model A, failing on model B on 24H2 (10 of 200
// machines with kernel crashes).
func holdMeasures() *Measures {
	a := NewAggregator(MeasureOptions{})
	for i := range 3000 {
		a.Add(report(fmt.Sprint("a", i), "3001", "installed", 22631, modelA))
	}
	for i := range 200 {
		res := "installed"
		if i < 10 {
			res = "kernel-crash-after-install"
		}
		a.Add(report(fmt.Sprint("b", i), "3001", res, 26100, modelB))
	}
	m := a.Measures(t0)
	return &m
}

func actions(ds []Decision) string {
	var got []string
	for _, d := range ds {
		got = append(got, d.Label+" "+string(d.Action))
	}
	return strings.Join(got, ", ")
}

// holdOn steps the tree at dir once (label 3001 gets its cohort held), applies it and
// returns the tree after it and the hold.
func holdOn(t *testing.T, dir string, tree *catalogs.Tree, m *Measures) (*catalogs.Tree, Decision) {
	t.Helper()
	ds := Step(tree, m, &DefaultPolicy, t0)
	if len(ds) == 0 || ds[0].Action != HoldCohort {
		t.Fatalf("no hold: %v", ds)
	}
	if _, err := Apply(dir, ds); err != nil {
		t.Fatal(err)
	}
	tree, _, err := catalogs.Load(dir, nil)
	if err != nil || len(tree.Blocks) != 1 {
		t.Fatalf("%v, blocks %+v", err, tree.Blocks)
	}
	return tree, ds[0]
}

// TestAutoLift (issue 20, item 1): a targeted hold is lifted by the controller when a newer
// driver for that cohort goes live (a label of the same hardware ID with a later driver
// date, fully live), not before (an older or same driver, one still in rollout, one not yet
// live); the lift is a lift-cohort decision in the step's output, Apply removes the block
// and records the lift in lifts.json, and the cohort is not held alone again.
func TestAutoLift(t *testing.T) {
	dir := t.TempDir()
	old := t0.Add(-10 * 24 * time.Hour)
	// 3002: the same driver (same date and version), fully live.
	tree := stepTree(t, dir, rolloutAt(stage(old, "1")), `{}`)
	m := holdMeasures()
	_, hold := holdOn(t, dir, tree, m)

	step := func() []Decision {
		t.Helper()
		tree, _, err := catalogs.Load(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		lifts, err := LoadLifts(dir)
		if err != nil {
			t.Fatal(err)
		}
		return StepWith(tree, m, &DefaultPolicy, t0, StepInputs{Lifts: lifts})
	}
	if got := actions(step()); strings.Contains(got, string(LiftCohort)) {
		t.Fatalf("lifted for a driver no newer: %s", got)
	}
	// 3002 gets a newer driver but is in rollout at 5%, then not yet live, then live.
	meta := filepath.Join(dir, "products", "1002", "submissions", "2002", "driverMetadata.json")
	os.WriteFile(meta, []byte(`{"BundleInfoMap":{"b":{"InfInfoMap":{"a.inf":{"InfClass":"Net","DriverVersion":"1.0.0.2","DriverDate":"2025-03-01","OSPnPInfoMap":{}}}}}}`), 0o644)
	label := filepath.Join(dir, "products", "1002", "submissions", "2002", "shippingLabels", "3002.json")
	setDist := func(dist string) {
		t.Helper()
		b, _ := os.ReadFile(label)
		var d catalogs.Distribution
		tr := stepTree(t, t.TempDir(), dist)
		d = tr.Labels()[0].Distribution
		out, err := catalogs.SetDistribution(b, d)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(label, out, 0o644)
	}
	setDist(rolloutAt(stage(old, "5")))
	if got := actions(step()); strings.Contains(got, string(LiftCohort)) {
		t.Fatalf("lifted for a newer driver at 5%%: %s", got)
	}
	setDist(rolloutAt(stage(t0.Add(time.Hour), "100")))
	if got := actions(step()); strings.Contains(got, string(LiftCohort)) {
		t.Fatalf("lifted for a newer driver not yet at 100%%: %s", got)
	}
	setDist(rolloutAt(stage(old, "1"), stage(old.Add(time.Hour), "100")))
	ds := step()
	if actions(ds) != "3001 lift-cohort, 3001 hold" {
		t.Fatalf("decisions: %s\n%v", actions(ds), ds)
	}
	lift := ds[0]
	if lift.BlockID != hold.BlockID || lift.By != ControllerName || !strings.Contains(lift.Reason, "a newer driver for cohort GE/"+modelB+" is live: label 3002 (1.0.0.2") ||
		lift.Lift == nil || lift.Lift.Release != "GE" || lift.Lift.CHID != modelB || !lift.Changed() {
		t.Errorf("the lift: %+v %+v", lift, lift.Lift)
	}
	js, _ := json.Marshal(ds)
	if !strings.Contains(string(js), `"action":"lift-cohort"`) || !strings.Contains(string(js), `"blockId":"`+hold.BlockID+`"`) {
		t.Errorf("the step's JSON has no lift: %s", js)
	}
	changed, err := Apply(dir, ds)
	if err != nil || !strings.Contains(fmt.Sprint(changed), "3001") {
		t.Fatalf("apply: %v %v", changed, err)
	}
	tree, _, err = catalogs.Load(dir, nil)
	if err != nil || len(tree.Blocks) != 0 {
		t.Fatalf("blocks after the lift: %v %+v", err, tree.Blocks)
	}
	lifts, err := LoadLifts(dir)
	if err != nil || len(lifts) != 1 || lifts[0].BlockID != hold.BlockID || !lifts[0].At.Equal(t0.UTC()) {
		t.Fatalf("lifts.json: %+v %v", lifts, err)
	}
	// Not held again (the same measures still show the cohort failing), nothing lifted twice.
	for _, d := range step() {
		if d.Action == HoldCohort || d.Action == LiftCohort {
			t.Errorf("after the lift: %v", d)
		}
	}
}

// TestLiftHold: an operator lifts a targeted hold with who and why (the record says both);
// a block that is not the controller's, an unknown id, and a lift without who or why are
// refused with what to do.
func TestLiftHold(t *testing.T) {
	dir := t.TempDir()
	old := t0.Add(-10 * 24 * time.Hour)
	tree := stepTree(t, dir, rolloutAt(stage(old, "1")))
	tree, hold := holdOn(t, dir, tree, holdMeasures())
	if _, err := LiftHold(tree, hold.BlockID, t0, LiftOptions{By: "alice"}); err == nil || !strings.Contains(err.Error(), "--reason") {
		t.Errorf("a lift without a reason: %v", err)
	}
	if _, err := LiftHold(tree, "123", t0, LiftOptions{By: "alice", Reason: "x"}); err == nil || !strings.Contains(err.Error(), "no block 123") {
		t.Errorf("an unknown block: %v", err)
	}
	d, err := LiftHold(tree, hold.BlockID, t0, LiftOptions{By: "alice@example.com", Reason: "the OEM's BIOS 1.08 fixes it"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != LiftCohort || d.By != "alice@example.com" || d.Lift.Reason != "lifted: the OEM's BIOS 1.08 fixes it" || d.Label != "3001" {
		t.Errorf("the lift: %+v %+v", d, d.Lift)
	}
	if s := d.String(); !strings.Contains(s, "3001 lift-cohort") || !strings.Contains(s, "by alice@example.com") {
		t.Errorf("the line: %s", s)
	}
	audit := filepath.Join(dir, "audit.ndjson")
	if _, err := Apply(dir, []Decision{d}); err != nil {
		t.Fatal(err)
	}
	if err := AppendAudit(audit, []Decision{d}, t0); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(audit); !strings.Contains(string(b), `"action":"lift-cohort"`) || !strings.Contains(string(b), `"by":"alice@example.com"`) {
		t.Errorf("audit: %s", b)
	}
	// A person's block is not the controller's to lift.
	os.WriteFile(filepath.Join(dir, "blocks.json"), []byte(`[{"id": 42, "reason": "BIOS bug", "labels": ["3001"], "minBuild": 26100}]`), 0o644)
	tree, _, err = catalogs.Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LiftHold(tree, "42", t0, LiftOptions{By: "a", Reason: "b"}); err == nil || !strings.Contains(err.Error(), "edit blocks.json") {
		t.Errorf("a person's block: %v", err)
	}
}

func TestParseLifts(t *testing.T) {
	for _, bad := range []string{``, `{}`, `[{"label":"1"}]`, `[{"blockId":"1","label":"2","colour":1}]`, `[] []`} {
		if _, err := ParseLifts([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if l, err := ParseLifts([]byte(`[{"blockId":"1","label":"2","at":"2026-12-01T00:00:00Z","by":"a","reason":"b"}]`)); err != nil || len(l) != 1 {
		t.Errorf("%v %v", l, err)
	}
}

func FuzzParseLifts(f *testing.F) {
	f.Add([]byte(`[{"blockId":"1","label":"2","release":"GE","chid":"x","at":"2026-12-01T00:00:00Z","by":"a","reason":"b"}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLifts(b)
		if err == nil {
			for _, x := range l {
				if x.BlockID == "" || x.Label == "" {
					t.Fatalf("accepted %+v", x)
				}
			}
		}
	})
}
