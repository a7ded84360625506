package flight

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/rollout"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata (check the diff)")

// flightAt is the report's time in the tests: a constant, so the golden file holds the same
// times whatever the date (nothing in the package reads the system clock).
var flightAt = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

const (
	labelID = "3001"
	chidA   = "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814"
	chidB   = "0b9c52a7-1d0e-5c6b-8a3f-9f0e1d2c3b4a"
	chidC   = "5f3e2d1c-0b0a-5948-8776-655443322110"
	// xss is what a hostile label name or decision reason might carry.
	xss = `</title><script>window.injected=1</script><img src=x onerror="window.injected=2">`
)

// fixture is a flight of label 3001 over eight days: 1% from day 0, 5% from day 3, 25% from
// day 6 (now is day 8), with the controller's decisions in an audit log. Stage by stage:
// 150 machines with 2 failures (0x80070002), then 600 with 15 failed machines (8 kernel
// crashes on model B, 0x0000009f; 4 failures, 0x80070002; 3 rollbacks, 43), then 1,200 with
// 40 kernel crashes on model B. The policy judges cohorts from 300 machines.
type fixture struct {
	tree   *catalogs.Tree
	spools string
	audit  string
}

func day(d float64) time.Time { return flightAt.Add(time.Duration((d - 8) * 24 * float64(time.Hour))) }

func makeFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{spools: filepath.Join(dir, "spool"), audit: filepath.Join(dir, "audit.ndjson")}
	labels := filepath.Join(dir, "labels")
	sub := filepath.Join(labels, "products", "1001", "submissions", "2001")
	must(t, os.MkdirAll(filepath.Join(sub, "shippingLabels"), 0o755))
	must(t, os.WriteFile(filepath.Join(labels, "products", "1001", "product.json"), []byte(`{"id":1001}`), 0o644))
	must(t, os.WriteFile(filepath.Join(sub, "submission.json"), []byte(`{"id":2001}`), 0o644))
	must(t, os.WriteFile(filepath.Join(sub, "driverMetadata.json"), []byte(`{"BundleInfoMap":{"b":{"InfInfoMap":{"contoso.inf":{"InfClass":"Net","DriverVersion":"2.4.0.7","DriverDate":"2026-10-01","OSPnPInfoMap":{}}}}}}`), 0o644))
	name, _ := json.Marshal("Contoso NIC " + xss)
	stages := fmt.Sprintf(`[{"at":%q,"percent":1},{"at":%q,"percent":5},{"at":%q,"percent":25},{"at":%q,"percent":50}]`,
		day(0).Format(time.RFC3339), day(3).Format(time.RFC3339), day(6).Format(time.RFC3339), day(9).Format(time.RFC3339))
	label := fmt.Sprintf(`{"id":%s,"productId":1001,"submissionId":2001,"name":%s,"destination":"windowsUpdate",
 "targeting":{"hardwareIds":[{"bundleId":"b","infId":"contoso.inf","operatingSystemCode":"WINDOWS_v100_X64_VB_FULL","pnpString":"pci\\ven_8086&dev_15f3","distributionState":"added"}]},
 "publishingSpecifications":{"goLiveDate":%q},
 "distribution":{"rollout":{"stages":%s}}}`, labelID, name, day(-30).Format(time.RFC3339), stages)
	must(t, os.WriteFile(filepath.Join(sub, "shippingLabels", labelID+".json"), []byte(label), 0o644))
	tree, _, err := catalogs.Load(labels, nil)
	must(t, err)
	f.tree = tree

	now := day(0)
	sp, err := rollout.OpenSpool(rollout.SpoolOptions{Dir: f.spools, Secret: []byte(strings.Repeat("s", 32)),
		Clock: func() time.Time { return now }, MinFreeBytes: -1, MinFreePercent: -1})
	must(t, err)
	pc := 0
	// stage sends n machines' reports spread over [from, to) days; fail(i) gives machine
	// i's result and error code.
	stage := func(from, to float64, n int, fail func(i int) (string, string)) {
		var batch []rollout.Report
		flush := func(at time.Time) {
			if len(batch) == 0 {
				return
			}
			now = at
			c, err := sp.Append(batch, at)
			if err == nil {
				err = c.Wait()
			}
			must(t, err)
			batch = batch[:0]
		}
		for i := 0; i < n; i++ {
			at := day(from + (to-from)*float64(i)/float64(n))
			res, code := fail(i)
			chid := []string{chidA, chidB, chidC}[i%3]
			build := []int{22631, 19045}[i%2]
			batch = append(batch, rollout.Report{DeviceID: fmt.Sprintf("pc-%d", pc), LabelID: labelID, InstanceID: "x", Result: res,
				Time: at, ErrorCode: code, Build: build, CHID: chid, Source: fmt.Sprintf("%016x", pc%5)})
			pc++
			if len(batch) == rollout.MaxBatch {
				flush(at)
			}
		}
		flush(day(to).Add(-time.Second))
	}
	stage(0, 3, 150, func(i int) (string, string) {
		if i < 6 && i%3 == 0 {
			return "failed", "0x80070002"
		}
		return "installed", ""
	})
	stage(3, 6, 600, func(i int) (string, string) {
		switch {
		case i < 24 && i%3 == 1: // model B
			return "kernel-crash-after-install", "0x9F"
		case i >= 24 && i < 36 && i%3 == 0:
			return "failed", "0x80070002"
		case i >= 36 && i < 45 && i%3 == 2:
			return "rolled-back", "43"
		}
		return "installed", ""
	})
	stage(6, 8, 1200, func(i int) (string, string) {
		if i < 120 && i%3 == 1 {
			return "kernel-crash-after-install", "0x0000009F"
		}
		return "installed", "a PC's free text, not kept"
	})
	must(t, sp.Close())

	decisions := []rollout.AuditRecord{
		{Time: day(3), Decision: rollout.Decision{Label: labelID, Action: rollout.Advance, From: 100, To: 500, Reason: "success 98.67% over 150 machines"}},
		{Time: day(6), Decision: rollout.Decision{Label: labelID, Action: rollout.Advance, From: 500, To: 2500, Reason: "success 96.17% over 600 machines " + xss}},
		{Time: day(7.5), Decision: rollout.Decision{Label: labelID, Action: rollout.HoldCohort, From: 2500, To: 2500, Reason: "kernel crashes on model B", BlockID: "rollout-3001-b"}},
		{Time: day(7), Decision: rollout.Decision{Label: "3002", Action: rollout.Pause, From: 100, To: 100, Reason: "another label"}},
	}
	var audit []byte
	for _, d := range decisions {
		b, _ := json.Marshal(d)
		audit = append(append(audit, b...), '\n')
	}
	must(t, os.WriteFile(f.audit, audit, 0o644))
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) report(t *testing.T) *Report {
	t.Helper()
	p, err := rollout.ParsePolicy([]byte(`{"minCohortMachines": 300}`))
	must(t, err)
	r, err := Build(Options{Label: labelID, Tree: f.tree, Spools: []string{f.spools}, Audit: f.audit, Now: flightAt, Policy: p})
	must(t, err)
	return r
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		must(t, os.MkdirAll("testdata", 0o755))
		must(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("the report differs from %s (run with -update after checking the diff):\n%s", path, got)
	}
}

// TestReportGolden: the report's data, as --json prints it, against the golden file; and
// beside it the facts the fixture was built to show.
func TestReportGolden(t *testing.T) {
	r := makeFixture(t).report(t)
	b, err := json.MarshalIndent(r, "", "  ")
	must(t, err)
	golden(t, "flight.json", append(b, '\n'))

	if r.Reports != 1950 || r.Flight.Machines != 1950 {
		t.Errorf("%d reports, %d machines; want 1950 each", r.Reports, r.Flight.Machines)
	}
	if r.Label.State != "rollout at 25%" || r.Label.Class != "Net" || r.Label.Version != "2.4.0.7" {
		t.Errorf("label %+v", r.Label)
	}
	if len(r.Stages) != 4 || !r.Stages[3].Planned || r.Stages[0].Machines != 150 || r.Stages[1].Machines != 600 || r.Stages[2].Machines != 1200 {
		t.Fatalf("stages %+v; want 150, 600 and 1,200 machines and a planned 50%%", r.Stages)
	}
	if r.Stages[0].BreaksPause != "" || r.Stages[1].BreaksPause == "" || r.Stages[2].BreaksCancel == "" {
		t.Errorf("stage verdicts: %q / %q / %q; want none, a pause, a cancel", r.Stages[0].BreaksPause, r.Stages[1].BreaksPause, r.Stages[2].BreaksCancel)
	}
	if len(r.Decisions) != 3 || r.Decisions[2].Action != rollout.HoldCohort {
		t.Errorf("decisions %+v; want this label's 3, in time order", r.Decisions)
	}
	if len(r.Errors) != 3 || r.Errors[0] != (ErrorCount{Code: "0x0000009f", Machines: 48, Reports: 48}) ||
		r.Errors[1] != (ErrorCount{Code: "0x80070002", Machines: 6, Reports: 6}) || r.Errors[2].Code != "43" {
		t.Errorf("error codes %+v", r.Errors)
	}
	if r.RolledBackDevices != 3 || len(r.RolledBack) != 3 {
		t.Errorf("rolled back %d %+v; want 3", r.RolledBackDevices, r.RolledBack)
	}
	var worst Cohort
	for _, c := range r.Cohorts {
		if c.KernelCrashRate > worst.KernelCrashRate {
			worst = c
		}
	}
	if worst.CHID != chidB {
		t.Errorf("the worst cohort is %s, want model B", worst.CHID)
	}
	last := r.Timeline.Points[len(r.Timeline.Points)-1]
	if last.Installed+last.Failed != r.Flight.Machines || !last.End.Equal(flightAt) || last.BasisPoints != 2500 {
		t.Errorf("last point %+v; want every machine, at now, 25%%", last)
	}
	sum := 0
	for _, p := range r.Timeline.Points {
		sum += p.Reports
	}
	if sum != r.Reports || len(r.Timeline.Points) > maxBuckets {
		t.Errorf("timeline holds %d reports in %d points; want %d in at most %d", sum, len(r.Timeline.Points), r.Reports, maxBuckets)
	}
}

// TestReportLimits: the device list is cut at MaxDevices while the count stays whole; a
// label not in the tree, a broken audit log and missing inputs are precise errors.
func TestReportLimits(t *testing.T) {
	f := makeFixture(t)
	r, err := Build(Options{Label: labelID, Tree: f.tree, Spools: []string{f.spools}, Now: flightAt, MaxDevices: 2})
	must(t, err)
	if len(r.RolledBack) != 2 || r.RolledBackDevices != 3 || len(r.Decisions) != 0 {
		t.Errorf("MaxDevices 2: %d listed of %d, %d decisions", len(r.RolledBack), r.RolledBackDevices, len(r.Decisions))
	}
	if _, err := Build(Options{Label: "9999", Tree: f.tree, Spools: []string{f.spools}, Now: flightAt}); err == nil || !strings.Contains(err.Error(), "9999 is not in the tree") {
		t.Errorf("unknown label: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "audit.ndjson")
	must(t, os.WriteFile(bad, []byte("{\"time\":\"2026-11-20T00:00:00Z\",\"label\":\"3001\",\"action\":\"advance\"}\n{not json\n"), 0o644))
	if _, err := Build(Options{Label: labelID, Tree: f.tree, Spools: []string{f.spools}, Audit: bad, Now: flightAt}); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("broken audit log: %v", err)
	}
	if _, err := Build(Options{Label: labelID, Tree: f.tree, Now: flightAt}); err == nil {
		t.Error("no spools: no error")
	}
	// A month later every report is past the retention window: an empty flight, not an error.
	r, err = Build(Options{Label: labelID, Tree: f.tree, Spools: []string{f.spools}, Now: flightAt.Add(40 * 24 * time.Hour)})
	must(t, err)
	if r.Reports != 0 || r.Flight.Machines != 0 || len(r.Timeline.Points) == 0 || len(r.Timeline.Points) > maxBuckets {
		t.Errorf("a month later: %d reports, %d points", r.Reports, len(r.Timeline.Points))
	}
	var html bytes.Buffer
	must(t, r.WriteHTML(&html))
}

// TestHTMLEscapes (the attack): a label name and a decision reason that carry markup
// appear as text; the page holds exactly its own two script elements, and its data parses
// back to the report.
func TestHTMLEscapes(t *testing.T) {
	r := makeFixture(t).report(t)
	var b bytes.Buffer
	must(t, r.WriteHTML(&b))
	page := b.String()
	if strings.Contains(page, "<script>window.injected") || strings.Contains(page, "<img") || strings.Count(page, "<script") != 2 {
		t.Errorf("the page carries the injected markup:\n%s", page)
	}
	if !strings.Contains(page, "&lt;script&gt;window.injected=1&lt;/script&gt;") {
		t.Error("the hostile name is not shown escaped")
	}
	for _, plot := range []string{"timeline", "stage-failures", "stage-kernel", "stage-pnp", "cohort-failures", "cohort-kernel", "cohort-pnp", "error-codes"} {
		if !strings.Contains(page, `data-plot="`+plot+`"`) {
			t.Errorf("plot %s missing", plot)
		}
	}
	start := strings.Index(page, `<script type="application/json" id="flight-data">`)
	end := strings.Index(page[start:], "</script>")
	var back Report
	if start < 0 || end < 0 || json.Unmarshal([]byte(page[start+len(`<script type="application/json" id="flight-data">`):start+end]), &back) != nil {
		t.Fatal("the page's data does not parse")
	}
	want, _ := json.Marshal(r)
	got, _ := json.Marshal(&back)
	if !bytes.Equal(want, got) {
		t.Error("the page's data is not the report")
	}
}

// FuzzAudit: any audit log is read or refused with its line number, never a crash, and
// what is read is the asked label's, in time order.
func FuzzAudit(f *testing.F) {
	f.Add([]byte(`{"time":"2026-11-20T00:00:00Z","label":"3001","action":"advance","fromBasisPoints":100,"toBasisPoints":500,"reason":"ok"}` + "\n"))
	f.Add([]byte("\n\n{\"time\":\"2026-11-20T00:00:00Z\",\"label\":\"3002\",\"action\":\"pause\"}\n{\"time\":\"2026-11-19T00:00:00Z\",\"label\":\"3001\",\"action\":\"cancel\"}"))
	f.Add([]byte(`{"time":"x"}`))
	f.Add([]byte("{\"time\":\"2026-11-20T00:00:00Z\",\"label\":\"3001\",\"action\":\"lift-cohort\",\"lift\":{\"by\":\"a\"}}\n[]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "audit.ndjson")
		must(t, os.WriteFile(path, b, 0o644))
		ds, err := readAudit(path, labelID)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error without the file: %v", err)
			}
			return
		}
		for i, d := range ds {
			if d.Action == "" || d.At.IsZero() || (i > 0 && d.At.Before(ds[i-1].At)) {
				t.Errorf("decision %d: %+v", i, d)
			}
		}
	})
}
