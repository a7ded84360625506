package rollout

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBaseline (issue 20, scenario background): a cohort with background kernel crashes on
// the driver a rollout replaces as much as on the new one is not held (nor is the label kept
// from advancing by them) when the controller judges over the baseline, and is held with
// "baseline": "none" (the false alarm the baseline prevents); a new driver that crashes that
// cohort three times as often as the baseline is still held.
func TestBaseline(t *testing.T) {
	dir := t.TempDir()
	old := t0.Add(-10 * 24 * time.Hour)
	tree := stepTree(t, dir, rolloutAt(stage(old, "1")), `{}`)
	// 3001 is the newer driver; 3002 (fully live, the same hardware ID) its baseline.
	os.WriteFile(filepath.Join(dir, "products", "1001", "submissions", "2001", "driverMetadata.json"),
		[]byte(`{"BundleInfoMap":{"b":{"InfInfoMap":{"a.inf":{"InfClass":"Net","DriverVersion":"1.0.0.2","DriverDate":"2025-06-01","OSPnPInfoMap":{}}}}}}`), 0o644)
	tree = stepTree(t, dir)
	run := func(newRate int, p *Policy) []Decision {
		a := NewAggregator(MeasureOptions{})
		for i := range 6000 {
			a.Add(report(fmt.Sprint("a", i), "3001", "installed", 22631, modelA))
			a.Add(report(fmt.Sprint("base-a", i), "3002", "installed", 22631, modelA))
		}
		for i := range 200 { // model B on 24H2: 5% of machines crash on the baseline
			res := "installed"
			if i < 10 {
				res = "kernel-crash-after-install"
			}
			a.Add(report(fmt.Sprint("base-b", i), "3002", res, 26100, modelB))
			res = "installed"
			if i < newRate {
				res = "kernel-crash-after-install"
			}
			a.Add(report(fmt.Sprint("b", i), "3001", res, 26100, modelB))
		}
		m := a.Measures(t0)
		return Step(tree, &m, p, t0)
	}
	ds := run(10, &DefaultPolicy)
	if actions(ds) != "3001 advance" || !strings.Contains(ds[0].Reason, "judged over the baseline, label 3002 (6200 machines") {
		t.Errorf("background crashes as on the baseline: %s %v", actions(ds), ds)
	}
	none := DefaultPolicy
	none.Baseline = BaselineNone
	if ds := run(10, &none); actions(ds) != "3001 hold-cohort, 3001 advance" {
		t.Errorf("baseline none: %s %v", actions(ds), ds)
	}
	if ds := run(30, &DefaultPolicy); actions(ds) != "3001 hold-cohort, 3001 advance" || !strings.Contains(ds[0].Reason, "kernel crashes 15.00% >") {
		t.Errorf("three times the baseline: %s %v", actions(ds), ds)
	}
	if _, err := ParsePolicy([]byte(`{"baseline": "yesterday"}`)); err == nil || !strings.Contains(err.Error(), `"previous"`) {
		t.Errorf("an unknown baseline: %v", err)
	}
}
