package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/driveway/driveway/diff"
)

// The example's clock: its dates are absolute, so the diff tests run every command at it
// (an injected clock, never the calendar date).
var exampleClock = func() time.Time { t, _ := time.Parse(time.RFC3339, exampleNow); return t }

const (
	nicOld = "1152921504606978201" // 2.5GbE 12.19.1.37, RS5 row offered forward
	nicNew = "1152921504606978202" // 2.5GbE 12.19.2.45, in gradual rollout (10% at the example's clock)
	nicHW  = `PCI\\VEN_8086&DEV_15F3&SUBSYS_00008086&REV_03`
)

// nicPC is a Windows 11 23H2 PC whose one device is the example's 2.5GbE NIC with the
// installed driver of (date, version).
func nicPC(id, date, version string) string {
	return fmt.Sprintf(`{"deviceId":%q,"os":{"build":22631,"arch":"amd64"},"devices":[{"instanceId":"%s\\3&11583659&0&FE","hardwareIds":["%s","PCI\\VEN_8086&DEV_15F3&SUBSYS_00008086"],"compatibleIds":["PCI\\VEN_8086&DEV_15F3&REV_03","PCI\\VEN_8086&DEV_15F3"],"driver":{"date":%q,"version":%q}}]}`,
		id, nicHW, nicHW, date, version)
}

// bucket is a device's rollout bucket for a label (spec/offers.md).
func bucket(label, device string) uint64 { return xxhash.Sum64String(label+"\x00"+device) % 10000 }

// diffWorld is the example built as release 1 at its clock, a copy of its tree in which
// nicNew is cancelled with rollback, and a population.
type diffWorld struct {
	work, tree, cancelled, catalog, key, population string
	inRollout                                       []string // PCs offered nicNew in release 1: they switch to nicOld
	rollback                                        string   // the PC with nicNew's driver: it gains a rollback to nicOld
	pcs                                             int
}

func newDiffWorld(t *testing.T) *diffWorld {
	t.Helper()
	w := &diffWorld{work: t.TempDir()}
	w.tree = filepath.Join(w.work, "contoso")
	w.cancelled = filepath.Join(w.work, "cancelled", "contoso")
	for _, dir := range []string{w.tree, w.cancelled} {
		if err := copyFS(examplesFS(), "contoso", dir); err != nil {
			t.Fatal(err)
		}
	}
	label := filepath.Join(w.cancelled, "products/1152921504606847201/submissions/1152921504621442202/shippingLabels", nicNew+".json")
	b, err := os.ReadFile(label)
	if err != nil {
		t.Fatal(err)
	}
	const rollout = `"rollout": {`
	if !strings.Contains(string(b), rollout) {
		t.Fatalf("%s has no rollout to put the cancel beside", label)
	}
	b = []byte(strings.Replace(string(b), rollout, `"cancelled": {"at": "2026-11-21T08:00:00Z", "rollback": true, "reason": "link drops after resume"}, `+rollout, 1))
	if err := os.WriteFile(label, b, 0o644); err != nil {
		t.Fatal(err)
	}
	w.key = filepath.Join(w.work, "k")
	w.catalog = filepath.Join(w.work, "catalog")
	if code, _, stderr := runCLIAt(exampleClock, nil, "keygen", "--unencrypted", "--out", w.key); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := runCLIAt(exampleClock, nil, "build", "--labels", w.tree, "--out", w.catalog, "--key", w.key+".key", "--quiet"); code != 0 {
		t.Fatal(stderr)
	}

	// 40 PCs with an old driver: those whose bucket of nicNew is under 10% get it now; the
	// others get nicOld. One PC runs nicNew's driver (offered nothing: nothing beats it). A
	// toaster and the README's Contoso laptop (nicNew blocked on it) change nothing.
	var lines []string
	for i := range 40 {
		id := fmt.Sprintf("pc-%02d", i)
		lines = append(lines, nicPC(id, "2023-05-01", "12.18.0.3"))
		if bucket(nicNew, id) < 1000 {
			w.inRollout = append(w.inRollout, id)
		}
	}
	w.rollback = "pc-runs-new"
	lines = append(lines, nicPC(w.rollback, "2025-09-30", "12.19.2.45"), "",
		`{"deviceId":"toaster","os":{"build":22631},"devices":[{"instanceId":"HID\\TOASTER&COL02\\7&1&0","hardwareIds":["HID\\TOASTER&COL02"]}]}`)
	laptop, err := os.ReadFile(filepath.Join("..", "..", "catalogs", "examples", "requests", "contoso-model-b13.json"))
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, laptop); err != nil {
		t.Fatal(err)
	}
	lines = append(lines, compact.String())
	w.pcs = 43
	if len(w.inRollout) == 0 || len(w.inRollout) == 40 {
		t.Fatalf("%d of 40 PCs in nicNew's 10%%: the population tests nothing", len(w.inRollout))
	}
	w.population = filepath.Join(w.work, "pcs.ndjson")
	if err := os.WriteFile(w.population, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// publishCancel publishes the cancel as release 2 of w.catalog (control-only).
func (w *diffWorld) publishCancel(t *testing.T, extra ...string) (int, string) {
	t.Helper()
	args := append([]string{"build", "--labels", w.cancelled, "--out", w.catalog, "--key", w.key + ".key", "--quiet", "--control-only", "--label", nicNew}, extra...)
	code, _, stderr := runCLIAt(exampleClock, nil, args...)
	return code, stderr
}

// TestDiffCancel: after a cancel of nicNew, the diff lists exactly the PCs that were offered
// it, each switching to nicOld (the previous driver; verdicts offered → cancelled and
// outranked → offered), and the PC running nicNew's driver gaining a rollback to nicOld;
// nothing else. --to the published release and --labels the tree before publishing agree.
func TestDiffCancel(t *testing.T) {
	w := newDiffWorld(t)
	code, _, stderr := runCLIAt(exampleClock, nil, "diff", "--from", w.catalog, "--labels", w.cancelled, "--population", w.population, "--json", "--examples", "50", "--key", w.key+".pub")
	if code != exitOK {
		t.Fatalf("diff --labels: exit %d\n%s", code, stderr)
	}
	if c, stderr := w.publishCancel(t); c != 0 {
		t.Fatal(stderr)
	}
	var reports []*diff.Report
	for _, args := range [][]string{
		{"--from", w.catalog, "--from-sequence", "1", "--labels", w.cancelled},
		{"--from", w.catalog, "--from-sequence", "1", "--to", w.catalog},
	} {
		code, stdout, stderr := runCLIAt(exampleClock, nil, append(append([]string{"diff"}, args...), "--population", w.population, "--json", "--examples", "50", "--key", w.key+".pub")...)
		if code != exitOK {
			t.Fatalf("diff %v: exit %d\n%s", args, code, stderr)
		}
		if strings.Contains(stderr, "NOT verified") {
			t.Errorf("diff %v with --key: %s", args, stderr)
		}
		var rep diff.Report
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("diff %v --json: %v\n%s", args, err, stdout)
		}
		reports = append(reports, &rep)
	}
	for i, rep := range reports {
		if rep.Format != diff.Format || rep.PCs != w.pcs || rep.Changed != len(w.inRollout)+1 || rep.Unchanged != rep.PCs-rep.Changed {
			t.Errorf("report %d: %s, %d PCs, %d changed, %d unchanged; want %s, %d, %d, %d", i, rep.Format, rep.PCs, rep.Changed, rep.Unchanged,
				diff.Format, w.pcs, len(w.inRollout)+1, w.pcs-len(w.inRollout)-1)
		}
		if rep.Switch != len(w.inRollout) || rep.Gain != 1 || rep.Lose != 0 {
			t.Errorf("report %d: %d switch, %d gain, %d lose; want %d, 1, 0", i, rep.Switch, rep.Gain, rep.Lose, len(w.inRollout))
		}
		if len(rep.Changes) != 2 {
			t.Fatalf("report %d: %d changes, want 2: %+v", i, len(rep.Changes), rep.Changes)
		}
		hw := strings.ReplaceAll(nicHW, `\\`, `\`)
		sw, gain := rep.Changes[0], rep.Changes[1]
		if len(w.inRollout) == 1 { // one PC each: the order is by change
			sw, gain = gain, sw
		}
		want := diff.Change{Change: "switch", PCs: len(w.inRollout), HardwareID: hw, OS: sw.OS,
			From: &diff.Offer{Label: nicNew, Kind: "automatic", Verdict: "cancelled"},
			To:   &diff.Offer{Label: nicOld, Kind: "automatic", Verdict: "outranked"}}
		if sw.Change != want.Change || sw.PCs != want.PCs || sw.HardwareID != hw || *sw.From != *want.From || *sw.To != *want.To || !strings.HasPrefix(sw.OS, "amd64/client ") {
			t.Errorf("report %d: change %+v from %+v to %+v; want %+v from %+v to %+v", i, sw, sw.From, sw.To, want, want.From, want.To)
		}
		var got []string
		for _, e := range sw.Examples {
			got = append(got, e.DeviceID)
			if !strings.HasPrefix(e.FromDetail, "cancelled 2026-11-21T08:00:00Z: link drops after resume") || e.ToDetail != "outranked by "+nicNew {
				t.Errorf("report %d: example %s: details %q, %q", i, e.DeviceID, e.FromDetail, e.ToDetail)
			}
		}
		if !slices.Equal(got, w.inRollout) {
			t.Errorf("report %d: the PCs that switch are %v; want exactly %v (in nicNew's rollout)", i, got, w.inRollout)
		}
		if gain.Change != "gain" || gain.PCs != 1 || gain.From != nil || gain.To == nil || *gain.To != (diff.Offer{Label: nicOld, Kind: "rollback", Verdict: "not-better"}) ||
			len(gain.Examples) != 1 || gain.Examples[0].DeviceID != w.rollback || gain.Examples[0].Line != 41 {
			t.Errorf("report %d: gain %+v to %+v; want %s gaining a rollback to %s (not-better before)", i, gain, gain.To, w.rollback, nicOld)
		}
		wantLabels := []diff.Label{{Label: nicOld, Gain: 1, SwitchTo: len(w.inRollout)}, {Label: nicNew, SwitchFrom: len(w.inRollout)}}
		if len(w.inRollout) == 1 {
			wantLabels[0], wantLabels[1] = wantLabels[1], wantLabels[0]
		}
		if !slices.Equal(rep.Labels, wantLabels) {
			t.Errorf("report %d: labels %+v; want %+v", i, rep.Labels, wantLabels)
		}
	}
	if reports[0].To.Sequence != 1 || reports[1].To.Sequence != 2 || reports[0].From != reports[1].From {
		t.Errorf("releases: %+v → %+v and %+v → %+v", reports[0].From, reports[0].To, reports[1].From, reports[1].To)
	}

	// The text: the totals, then the two changes, the switch with its examples.
	code, stdout, stderr := runCLIAt(exampleClock, nil, "diff", "--from", w.catalog, "--from-sequence", "1", "--to", w.catalog, "--population", w.population, "--examples", "2")
	if code != exitOK || !strings.Contains(stderr, "NOT verified") {
		t.Fatalf("diff: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		fmt.Sprintf("%d PCs replayed, %d changed (%s), %d unchanged\n", w.pcs, len(w.inRollout)+1, diff.Percent(len(w.inRollout)+1, w.pcs), w.pcs-len(w.inRollout)-1),
		fmt.Sprintf("%s (automatic) → %s (automatic)\n", nicNew, nicOld),
		fmt.Sprintf("        %s: offered → cancelled; %s: outranked → offered\n", nicNew, nicOld),
		fmt.Sprintf("        e.g. %s (line ", w.inRollout[0]),
		fmt.Sprintf("gain    1 PC  %s (rollback)\n", nicOld),
		fmt.Sprintf("        e.g. %s (line 41, ", w.rollback),
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("diff text lacks %q:\n%s", want, stdout)
		}
	}
	if n := strings.Count(stdout, "e.g. "); n != min(2, len(w.inRollout))+1 {
		t.Errorf("diff --examples 2: %d examples:\n%s", n, stdout)
	}
}

// TestDiffNoChange: a release against itself, and the tree it was built from: 0 changed,
// exit 0, even with --max-changed 0.
func TestDiffNoChange(t *testing.T) {
	w := newDiffWorld(t)
	for _, other := range [][]string{{"--to", w.catalog}, {"--labels", w.tree}} {
		args := append(append([]string{"diff", "--from", w.catalog}, other...), "--population", w.population, "--max-changed", "0")
		code, stdout, stderr := runCLIAt(exampleClock, nil, args...)
		want := fmt.Sprintf("%d PCs replayed, 0 changed (0%%), %d unchanged\n", w.pcs, w.pcs)
		if code != exitOK || !strings.Contains(stdout, want) || strings.Contains(stdout, "label ") {
			t.Errorf("diff %v: exit %d\n%s%s\nwant exit 0 and %q", other, code, stdout, stderr, want)
		}
	}
}

// TestDiffGate: the exit status a pipeline gates on.
func TestDiffGate(t *testing.T) {
	w := newDiffWorld(t)
	if c, stderr := w.publishCancel(t); c != 0 {
		t.Fatal(stderr)
	}
	changed := len(w.inRollout) + 1
	base := []string{"diff", "--from", w.catalog, "--from-sequence", "1", "--to", w.catalog, "--population", w.population}
	for _, tc := range []struct {
		flags []string
		code  int
		msg   string
	}{
		{nil, exitOK, ""},
		{[]string{"--max-changed", fmt.Sprint(changed)}, exitOK, ""},
		{[]string{"--max-changed", fmt.Sprint(changed - 1)}, exitFailure, fmt.Sprintf("driveway diff: outside the limits: %d of %d PCs change (%s), more than the limit of %d PCs\n", changed, w.pcs, diff.Percent(changed, w.pcs), changed-1)},
		{[]string{"--max-changed", "100%"}, exitOK, ""},
		{[]string{"--max-changed", "0%"}, exitFailure, "more than the limit of 0% (0 PCs)"},
		{[]string{"--max-changed", "1%", "--json"}, exitFailure, "more than the limit of 1% (0 PCs)"},
		{[]string{"--allow-label", nicNew}, exitFailure, "driveway diff: outside the limits: 1 labels outside the allowed ones change: " + nicOld + "\n"},
		{[]string{"--allow-label", nicNew + "," + nicOld}, exitOK, ""},
		{[]string{"--allow-label", nicNew, "--allow-label", nicOld, "--max-changed", "0"}, exitFailure, "more than the limit of 0 PCs"},
		{[]string{"--max-changed", "5 %%"}, exitUsage, "--max-changed"},
		{[]string{"--max-changed", "-3"}, exitUsage, "is not a number of PCs"},
		{[]string{"--examples", "-1"}, exitUsage, "--examples"},
		{[]string{"--labels", w.tree}, exitUsage, "give one of --to CATALOG and --labels DIR"},
		{[]string{"--from-sequence", "7"}, exitFailure, "holds no release 7"},
	} {
		code, stdout, stderr := runCLIAt(exampleClock, nil, append(slices.Clone(base), tc.flags...)...)
		if code != tc.code || (tc.msg != "" && !strings.Contains(stderr, tc.msg)) || (tc.msg == "" && strings.Contains(stderr, "outside")) {
			t.Errorf("diff %v: exit %d\n%s\nwant exit %d and %q", tc.flags, code, stderr, tc.code, tc.msg)
		}
		if tc.code == exitFailure && slices.Contains(tc.flags, "--json") {
			var rep diff.Report
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.Changed != changed {
				t.Errorf("diff %v: the report still prints when over the limit: %v\n%s", tc.flags, err, stdout)
			}
		}
	}
	for _, args := range [][]string{
		{"diff", "--from", w.catalog, "--to", w.catalog},
		{"diff", "--population", w.population, "--to", w.catalog},
		{"diff", "--from", w.catalog, "--population", w.population},
	} {
		if code, _, stderr := runCLIAt(exampleClock, nil, args...); code != exitUsage || !strings.HasPrefix(stderr, "driveway diff: ") {
			t.Errorf("%v: exit %d\n%s; want exit 2", args, code, stderr)
		}
	}
}

// TestDiffPopulationErrors: a malformed line is named by file:line and field, exit 1.
func TestDiffPopulationErrors(t *testing.T) {
	w := newDiffWorld(t)
	b, _ := os.ReadFile(w.population)
	lines := strings.Split(string(b), "\n")
	lines[4] = `{"deviceId":"bad","os":{"build":22631,"arch":"sparc"},"devices":[]}`
	bad := filepath.Join(w.work, "bad.ndjson")
	os.WriteFile(bad, []byte(strings.Join(lines, "\n")), 0o644)
	code, stdout, stderr := runCLIAt(exampleClock, nil, "diff", "--from", w.catalog, "--to", w.catalog, "--population", bad, "--key", w.key+".pub")
	want := "driveway diff: " + bad + ":5: bad-value at /os/arch: "
	if code != exitFailure || stdout != "" || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("diff of a bad population: exit %d\n%s%s\nwant exit 1 and one line starting %q", code, stdout, stderr, want)
	}
	code, _, stderr = runCLIAt(exampleClock, nil, "diff", "--from", w.catalog, "--to", w.catalog, "--population", filepath.Join(w.work, "none.ndjson"))
	if code != exitFailure || !strings.Contains(stderr, "--population: open") {
		t.Errorf("diff of a missing population: exit %d\n%s", code, stderr)
	}
	code, stdout, _ = runCLIAt(exampleClock, b, "diff", "--from", w.catalog, "--to", w.catalog, "--population", "-")
	if code != exitOK || !strings.Contains(stdout, fmt.Sprintf("%d PCs replayed", w.pcs)) {
		t.Errorf("diff --population - (stdin): exit %d\n%s", code, stdout)
	}
}

// TestBuildPopulation: build --population refuses a cancel that changes more PCs than
// --max-changed, writing nothing, and publishes it with --allow-change or a higher limit; a
// full build is gated as a control-only one is.
func TestBuildPopulation(t *testing.T) {
	w := newDiffWorld(t)
	before := snapshot(t, w.catalog)
	changed := len(w.inRollout) + 1
	share := fmt.Sprintf("%d of %d PCs of %s change (%s) against release 1", changed, w.pcs, w.population, diff.Percent(changed, w.pcs))

	code, stderr := w.publishCancel(t, "--population", w.population, "--max-changed", "1%")
	want := "driveway build: the release would change the offers of too many PCs: " + share + ", more than --max-changed 1%; see which with driveway diff --from " + w.catalog +
		" --labels " + w.cancelled + " --population " + w.population + ", and pass --allow-change if this is meant; nothing was written\n"
	if code != exitFailure || stderr != want {
		t.Errorf("build --control-only --population --max-changed 1%%: exit %d\n%s\nwant exit 1 and\n%s", code, stderr, want)
	}
	unchanged(t, "a refused build", w.catalog, before)
	for _, full := range []bool{false, true} {
		args := []string{"build", "--labels", w.cancelled, "--out", w.catalog, "--key", w.key + ".key", "--quiet", "--population", w.population}
		if !full {
			args = append(args, "--control-only", "--label", nicNew)
		}
		if code, _, stderr := runCLIAt(exampleClock, nil, args...); code != exitFailure || !strings.Contains(stderr, share+", more than --max-changed 5%") {
			t.Errorf("build (full %v) --population (default 5%%): exit %d\n%s", full, code, stderr)
		}
		unchanged(t, "a refused build", w.catalog, before)
	}
	if code, stderr := w.publishCancel(t, "--population", w.population, "--max-changed", "1%", "--allow-change"); code != exitOK || stderr != "" {
		t.Errorf("build --population --allow-change: exit %d\n%s", code, stderr)
	}
	if m := newest(t, w.catalog); m.Sequence != 2 {
		t.Errorf("after --allow-change the newest release is %d, want 2", m.Sequence)
	}
	// Release 2 against the same tree changes nothing: a full build passes at --max-changed 0.
	code, _, stderr = runCLIAt(exampleClock, nil, "build", "--labels", w.cancelled, "--out", w.catalog, "--key", w.key+".key", "--population", w.population, "--max-changed", "0")
	if code != exitOK || !strings.Contains(stderr, fmt.Sprintf("--population: 0 of %d PCs of %s change (0%%) against release 2, within --max-changed 0\n", w.pcs, w.population)) {
		t.Errorf("build --population of an unchanged tree: exit %d\n%s", code, stderr)
	}
	if m := newest(t, w.catalog); m.Sequence != 3 {
		t.Errorf("the newest release is %d, want 3", m.Sequence)
	}
	for _, flags := range [][]string{{"--max-changed", "5%"}, {"--allow-change"}, {"--population", w.population, "--max-changed", "x"}} {
		args := append([]string{"build", "--labels", w.tree, "--out", w.catalog, "--key", w.key + ".key"}, flags...)
		if code, _, stderr := runCLIAt(exampleClock, nil, args...); code != exitUsage {
			t.Errorf("build %v: exit %d\n%s; want 2", flags, code, stderr)
		}
	}
	// A bad population line refuses the build too.
	bad := filepath.Join(w.work, "bad.ndjson")
	os.WriteFile(bad, []byte("{}\n"), 0o644)
	before = snapshot(t, w.catalog)
	code, _, stderr = runCLIAt(exampleClock, nil, "build", "--labels", w.tree, "--out", w.catalog, "--key", w.key+".key", "--population", bad)
	if code != exitFailure || !strings.Contains(stderr, bad+":1: missing") {
		t.Errorf("build --population of a bad file: exit %d\n%s", code, stderr)
	}
	unchanged(t, "a build with a bad population", w.catalog, before)
}
