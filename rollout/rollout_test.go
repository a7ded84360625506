package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/internal/testclock"
)

var t0 = testclock.Now() // the tests' clock; CI runs them ten years ahead and back too

func TestDecodeReports(t *testing.T) {
	good := `{"deviceId":"pc-1","labelId":"3009","instanceId":"PCI\\X\\1","result":"installed","time":"2026-11-21T12:00:00Z","build":22631,"chid":"8DC9B7C5-F5D5-5850-9AB3-BD6F0549D814"}`
	rs, err := DecodeReports([]byte(good), DecodeOptions{})
	if err != nil || len(rs) != 1 || rs[0].CHID != "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814" || rs[0].Build != 22631 {
		t.Fatalf("%+v %v", rs, err)
	}
	if rs, err := DecodeReports([]byte("["+good+","+good+"]"), DecodeOptions{}); err != nil || len(rs) != 2 {
		t.Fatalf("batch: %v %v", rs, err)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"deviceId":"pc-1","labelId":"3009","instanceId":"i","result":"exploded","time":"2026-11-21T12:00:00Z"}`, "/result"},
		{`{"deviceId":"","labelId":"3009","instanceId":"i","result":"failed","time":"2026-11-21T12:00:00Z"}`, "/deviceId"},
		{`{"deviceId":"pc","labelId":"03009","instanceId":"i","result":"failed","time":"2026-11-21T12:00:00Z"}`, "/labelId"},
		{`{"deviceId":"pc","labelId":"3009","instanceId":"i","result":"failed"}`, "/time"},
		{`{"deviceId":"pc","labelId":"3009","instanceId":"i","result":"failed","time":"2026-11-21T12:00:00Z","chid":"x"}`, "/chid"},
		{`{"deviceId":"pc","labelId":"3009","instanceId":"i","result":"failed","time":"2026-11-21T12:00:00Z","received":"2026-11-21T12:00:00Z"}`, "/received"},
		{`{"deviceId":"pc","labelId":"3009","instanceId":"i","result":"failed","time":"2026-11-21T12:00:00Z","build":"x"}`, "/build"},
		{`[` + strings.Repeat(good+",", MaxBatch) + good + `]`, ""},
		{`{"deviceId":"pc","labelId":"3009","instanceId":"i","result":"failed","time":"2026-11-21T12:00:00Z","colour":1}`, "/colour"},
		{`[{"deviceId":"pc"}]`, "/0/instanceId"},
		{`{`, ""},
	} {
		_, err := DecodeReports([]byte(tc.body), DecodeOptions{})
		var re *Error
		if !errors.As(err, &re) {
			t.Errorf("%.60s: %v, want an *Error", tc.body, err)
			continue
		}
		if tc.field != "" && re.Field != tc.field {
			t.Errorf("%.60s: field %q, want %q (%v)", tc.body, re.Field, tc.field, err)
		}
	}
}

func report(dev, label, result string, build int, chid string) *Report {
	return &Report{DeviceID: dev, LabelID: label, InstanceID: "i", Result: result, Time: t0, Build: build, CHID: chid}
}

func TestMeasureArithmetic(t *testing.T) {
	a := NewAggregator(MeasureOptions{MinLabelMachines: 100, MinCohortMachines: 500})
	// 200 machines: 196 installed; 3 of them later report a kernel crash; 1 other fails.
	for i := 0; i < 196; i++ {
		a.Add(report(fmt.Sprint("pc", i), "7", "installed", 22631, ""))
		a.Add(report(fmt.Sprint("pc", i), "7", "installed", 22631, "")) // repeats count once
	}
	for i := 0; i < 3; i++ {
		a.Add(report(fmt.Sprint("pc", i), "7", "kernel-crash-after-install", 22631, ""))
	}
	for i := 196; i < 200; i++ {
		a.Add(report(fmt.Sprint("pc", i), "7", "failed", 19045, ""))
	}
	m := a.Measures(t0)
	lm, ok := m.Label("7")
	if !ok {
		t.Fatal("no measure")
	}
	want := Measure{Machines: 200, Installed: 196, Failed: 7, KernelCrash: 3, SuccessPercent: 96.5, KernelCrashRate: 1.5, Enough: true, FailedUnsourced: 7}
	if lm.Measure != want {
		t.Errorf("measure\n got %+v\nwant %+v", lm.Measure, want)
	}
	if len(lm.Cohorts) != 2 || lm.Cohorts[0].Release != "NI" || lm.Cohorts[1].Release != "VB" || lm.Cohorts[0].Machines != 196 || lm.Cohorts[0].Enough {
		t.Errorf("cohorts %+v", lm.Cohorts)
	}
}

func TestMinimumPopulation(t *testing.T) {
	for _, tc := range []struct {
		machines      int
		label, cohort bool
	}{{99, false, false}, {100, true, false}, {499, true, false}, {500, true, true}} {
		a := NewAggregator(MeasureOptions{})
		for i := 0; i < tc.machines; i++ {
			a.Add(report(fmt.Sprint("pc", i), "1", "installed", 22631, "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814"))
		}
		ms := a.Measures(t0)
		lm, _ := ms.Label("1")
		if lm.Enough != tc.label || lm.Cohorts[0].Enough != tc.cohort {
			t.Errorf("%d machines: label enough %v, cohort enough %v; want %v, %v", tc.machines, lm.Enough, lm.Cohorts[0].Enough, tc.label, tc.cohort)
		}
		if !lm.Enough && !strings.Contains(lm.Note, "not enough data") {
			t.Errorf("%d machines: note %q", tc.machines, lm.Note)
		}
	}
	// The window leaves out old reports.
	a := NewAggregator(MeasureOptions{Since: t0.Add(-time.Hour)})
	old := report("pc", "1", "failed", 0, "")
	old.Time = t0.Add(-2 * time.Hour)
	a.Add(old)
	if ms := a.Measures(t0); len(ms.Labels) != 0 {
		t.Error("a report before the window counted")
	}
}

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy([]byte(`{"ladder":[1,10,100],"classes":{"firmware":{"minDwell":"168h"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.MinDwell.Duration != 72*time.Hour || len(p.Ladder) != 3 || p.For("Firmware").MinDwell.Duration != 168*time.Hour ||
		len(p.For("FIRMWARE").Ladder) != 3 || p.For("Net") != p {
		t.Errorf("policy %+v", p)
	}
	for _, bad := range []string{`{"ladder":[1,5]}`, `{"ladder":[5,1,100]}`, `{"ladder":[1.234,100]}`, `{"minDwell":"soon"}`, `{"colour":1}`, `{"classes":{"x":{"classes":{}}}}`} {
		if _, err := ParsePolicy([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// stepTree writes a label tree with one label per entry of rollouts (label ids 3001, …) and
// loads it.
func stepTree(t *testing.T, dir string, dists ...string) *catalogs.Tree {
	t.Helper()
	for i, dist := range dists {
		pid, sid, lid := 1001+i, 2001+i, 3001+i
		sub := filepath.Join(dir, "products", fmt.Sprint(pid), "submissions", fmt.Sprint(sid))
		os.MkdirAll(filepath.Join(sub, "shippingLabels"), 0o755)
		os.WriteFile(filepath.Join(dir, "products", fmt.Sprint(pid), "product.json"), []byte(fmt.Sprintf(`{"id":%d}`, pid)), 0o644)
		os.WriteFile(filepath.Join(sub, "submission.json"), []byte(fmt.Sprintf(`{"id":%d}`, sid)), 0o644)
		os.WriteFile(filepath.Join(sub, "driverMetadata.json"), []byte(`{"BundleInfoMap":{"b":{"InfInfoMap":{"a.inf":{"InfClass":"Net","DriverVersion":"1.0.0.1","DriverDate":"2025-01-01","OSPnPInfoMap":{}}}}}}`), 0o644)
		label := fmt.Sprintf("{\n  \"id\": %d,\n  \"productId\": %d,\n  \"submissionId\": %d,\n  \"destination\": \"windowsUpdate\",\n  \"targeting\": {\"hardwareIds\": [{\"bundleId\":\"b\",\"infId\":\"a.inf\",\"operatingSystemCode\":\"WINDOWS_v100_X64_VB_FULL\",\"pnpString\":\"x\\\\y\",\"distributionState\":\"added\"}]},\n  \"publishingSpecifications\": {\"goLiveDate\": %q},\n  \"distribution\": %s\n}\n", lid, pid, sid, t0.AddDate(-1, 0, 0).Format(time.RFC3339), dist)
		os.WriteFile(filepath.Join(sub, "shippingLabels", fmt.Sprintf("%d.json", lid)), []byte(label), 0o644)
	}
	tree, _, err := catalogs.Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func rolloutAt(stages ...string) string {
	return `{"rollout": {"stages": [` + strings.Join(stages, ",") + `]}}`
}

func stage(at time.Time, pct string) string {
	return fmt.Sprintf(`{"at": %q, "percent": %s}`, at.Format(time.RFC3339), pct)
}

// measures builds measures where each label has n machines, failed of which failed with
// result, and optionally a bad cohort.
func measures(per map[string][3]int) *Measures {
	a := NewAggregator(MeasureOptions{})
	for label, v := range per {
		n, failed, kernel := v[0], v[1], v[2]
		for i := 0; i < n; i++ {
			res := "installed"
			switch {
			case i < kernel:
				res = "kernel-crash-after-install"
			case i < kernel+failed:
				res = "failed"
			}
			a.Add(report(fmt.Sprint("pc", i), label, res, 22631, ""))
		}
	}
	m := a.Measures(t0)
	return &m
}

func TestStepBranches(t *testing.T) {
	old := t0.Add(-10 * 24 * time.Hour)
	recent := t0.Add(-time.Hour)
	dists := []string{
		rolloutAt(stage(old, "1")),    // 3001 healthy, dwelt: advance 1 -> 5
		rolloutAt(stage(recent, "5")), // 3002 healthy, recent stage: hold (dwell)
		rolloutAt(stage(old, "1")),    // 3003 few machines: hold (not enough data)
		rolloutAt(stage(old, "1")),    // 3004 2% failed: hold (not healthy enough to advance)
		rolloutAt(stage(old, "1")),    // 3005 5% failed: pause
		rolloutAt(stage(old, "1")),    // 3006 kernel crashes 3%: cancel
		`{"rollout": {"stages": [` + stage(old, "1") + `], "paused": true}}`,                                          // 3007 paused, healthy: hold
		rolloutAt(stage(old, "1"), stage(t0.Add(24*time.Hour), "100")),                                                // 3008 future stage: hold (schedule)
		rolloutAt(stage(old, "100")),                                                                                  // 3009 finished: no decision
		`{"rollout": {"stages": [` + stage(old, "1") + `]}, "cancelled": {"at": "` + old.Format(time.RFC3339) + `"}}`, // 3010 cancelled: none
		`{"rollout": {"stages": [` + stage(old, "1") + `], "paused": true}}`,                                          // 3011 paused, still failing: hold
	}
	tree := stepTree(t, t.TempDir(), dists...)
	m := measures(map[string][3]int{
		"3001": {1000, 0, 0}, "3002": {1000, 0, 0}, "3003": {40, 0, 0}, "3004": {1000, 20, 0}, "3005": {1000, 50, 0},
		"3006": {1000, 0, 30}, "3007": {1000, 0, 0}, "3008": {1000, 0, 0}, "3009": {1000, 0, 0}, "3010": {1000, 900, 0}, "3011": {1000, 50, 0},
	})
	got := map[string]Decision{}
	for _, d := range Step(tree, m, &DefaultPolicy, t0) {
		got[d.Label] = d
	}
	for label, want := range map[string]struct {
		action Action
		reason string
	}{
		"3001": {Advance, "success 100.00%"}, "3002": {Hold, "dwell until"}, "3003": {Hold, "not enough data"},
		"3004": {Hold, "not healthy enough to advance: success 98.00%"}, "3005": {Pause, "success 95.00% < 97.00%"},
		"3006": {Cancel, "kernel crashes 3.00% > 2.00%"}, "3007": {Hold, "resume it by hand"}, "3008": {Hold, "publisher's schedule"},
		"3011": {Hold, "paused; still success 95.00%"},
	} {
		d, ok := got[label]
		if !ok || d.Action != want.action || !strings.Contains(d.Reason, want.reason) {
			t.Errorf("%s: %v, want %s (%s)", label, d, want.action, want.reason)
		}
	}
	if d := got["3001"]; d.To != 500 {
		t.Errorf("3001 advanced to %d bp, want 500", d.To)
	}
	for _, label := range []string{"3009", "3010"} {
		if d, ok := got[label]; ok {
			t.Errorf("%s: decided %v, want nothing (not in rollout)", label, d)
		}
	}
}

// TestStepIdempotent: after applying a step, the same step with the same measures and time
// changes nothing, and files keep every byte but the distribution.
func TestStepIdempotent(t *testing.T) {
	dir := t.TempDir()
	old := t0.Add(-10 * 24 * time.Hour)
	tree := stepTree(t, dir, rolloutAt(stage(old, "1")), rolloutAt(stage(old, "1")), rolloutAt(stage(old, "1")))
	m := measures(map[string][3]int{"3001": {1000, 0, 0}, "3002": {1000, 50, 0}, "3003": {1000, 0, 30}})
	file := filepath.Join(dir, filepath.FromSlash(tree.Labels()[0].File))
	before, _ := os.ReadFile(file)
	changed, err := Apply(dir, Step(tree, m, &DefaultPolicy, t0))
	if err != nil || fmt.Sprint(changed) != "[3001 3002 3003]" {
		t.Fatalf("first step changed %v, %v", changed, err)
	}
	after, _ := os.ReadFile(file)
	if !bytes.HasPrefix(after, before[:bytes.Index(before, []byte(`"distribution"`))]) {
		t.Errorf("bytes before the distribution changed:\n%s\n%s", before, after)
	}
	tree2, probs, _ := catalogs.Load(dir, nil)
	for _, p := range probs {
		t.Errorf("after the step: %v", p)
	}
	d2 := Step(tree2, m, &DefaultPolicy, t0)
	for _, d := range d2 {
		if d.Changed() {
			t.Errorf("second step: %v", d)
		}
	}
	if changed, _ := Apply(dir, d2); len(changed) != 0 {
		t.Errorf("second step changed %v", changed)
	}
	l := tree2.Labels()
	if len(l[0].Distribution.Rollout.Stages) != 2 || !l[1].Distribution.Rollout.Paused || l[2].Distribution.Cancelled == nil || !l[2].Distribution.Cancelled.Rollback {
		t.Errorf("applied state: %+v / %+v / %+v", l[0].Distribution.Rollout, l[1].Distribution.Rollout, l[2].Distribution.Cancelled)
	}
}

func TestMeasuresJSON(t *testing.T) {
	m := measures(map[string][3]int{"3001": {5, 0, 0}})
	b, err := json.Marshal(m)
	if err != nil || !strings.Contains(string(b), `"note":"not enough data: 5 machines, 100 needed"`) {
		t.Errorf("%s %v", b, err)
	}
}

// TestReadSpoolsRotatedMeanwhile: a file listed while open and renamed (rotated) before it is
// read is read under its final name.
func TestReadSpoolsRotatedMeanwhile(t *testing.T) {
	dir := t.TempDir()
	line := `{"deviceId":"pc","labelId":"7","instanceId":"i","result":"installed","time":"2026-11-21T12:00:00Z","received":"2026-11-21T12:00:00Z"}` + "\n"
	open := filepath.Join(dir, "reports-20261121T120000.000000000Z.ndjson.open")
	os.WriteFile(strings.TrimSuffix(open, ".open"), []byte(line), 0o644) // already rotated
	var st ReadStats
	n := 0
	if err := readSpool(open, &st, func(*Report) { n++ }); err != nil || n != 1 {
		t.Errorf("read %d reports, %v; want the rotated file's 1", n, err)
	}
}

// TestCorroboration: failures that come from one network (a burst of forged reports) hold a
// rollout instead of cancelling it; the same failures from many networks cancel it; and
// failures reported without a source (edges that record none) count as corroborated.
func TestCorroboration(t *testing.T) {
	old := t0.Add(-10 * 24 * time.Hour)
	tree := stepTree(t, t.TempDir(), rolloutAt(stage(old, "1")), rolloutAt(stage(old, "1")), rolloutAt(stage(old, "1")))
	a := NewAggregator(MeasureOptions{})
	for i := 0; i < 1000; i++ {
		for k, label := range []string{"3001", "3002", "3003"} {
			r := report(fmt.Sprint("pc", i), label, "installed", 22631, "")
			if i < 100 { // 10% kernel crashes: a cancel, if believed
				r.Result = "kernel-crash-after-install"
				switch k {
				case 0:
					r.Source = "one-network"
				case 1:
					r.Source = fmt.Sprint("net-", i%7)
				}
			}
			a.Add(r)
		}
	}
	m := a.Measures(t0)
	got := map[string]Decision{}
	for _, d := range Step(tree, &m, &DefaultPolicy, t0) {
		got[d.Label] = d
	}
	if d := got["3001"]; d.Action != Hold || !strings.Contains(d.Reason, "uncorroborated") {
		t.Errorf("failures from one network: %v, want a hold as uncorroborated", d)
	}
	if d := got["3002"]; d.Action != Cancel {
		t.Errorf("failures from 7 networks: %v, want a cancel", d)
	}
	if d := got["3003"]; d.Action != Cancel {
		t.Errorf("failures without sources: %v, want a cancel", d)
	}
	if lm, _ := m.Label("3002"); lm.FailureSources != 7 || lm.FailedUnsourced != 0 {
		t.Errorf("3002: %d sources, %d unsourced; want 7, 0", lm.FailureSources, lm.FailedUnsourced)
	}
}

// TestMeasureWindowOnEdgeClock: the window counts a report by when the edge received it, not
// by the time the PC wrote (a PC's clock cannot move a report in or out of the window).
func TestMeasureWindowOnEdgeClock(t *testing.T) {
	a := NewAggregator(MeasureOptions{Since: t0.Add(-time.Hour), Until: t0})
	in := report("pc-in", "7", "installed", 0, "")
	in.Time, in.Received = t0.Add(-48*time.Hour), t0.Add(-time.Minute) // PC clock two days behind
	out := report("pc-out", "7", "installed", 0, "")
	out.Time, out.Received = t0.Add(-time.Minute), t0.Add(-48*time.Hour) // received long ago
	a.Add(in)
	a.Add(out)
	m := a.Measures(t0)
	if lm, ok := m.Label("7"); !ok || lm.Machines != 1 {
		t.Errorf("measured %+v; want the one report received in the window", lm)
	}
}
