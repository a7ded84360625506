package build

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/catalogs/ostable"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/testclock"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/statement"
)

// testNow is the tests' clock (testclock: CI also runs it ten years ahead and back); the
// builds are made at it or a few hours after, and verified at verifyAt.
var testNow = testclock.Now()

// verifyAt is when the tests open the releases they built: after the last of their builds.
var verifyAt = testNow.Add(3 * time.Hour)

// writeTree writes a synthetic label tree of n labels: one product, submission and label
// each, with a few four-part PCI IDs, some shared between labels, on two OS codes.
func writeTree(t testing.TB, dir string, n int, mutate func(i int, label map[string]any)) {
	t.Helper()
	writeTreeOf(t, dir, 0, n, mutate)
}

// writeTreeOf writes labels from to n-1 of writeTree's tree of n labels.
func writeTreeOf(t testing.TB, dir string, from, n int, mutate func(i int, label map[string]any)) {
	t.Helper()
	for i := from; i < n; i++ {
		pid, sid, lid := 100000+i, 200000+i, 300000+i
		base := filepath.Join(dir, "products", fmt.Sprint(pid))
		sub := filepath.Join(base, "submissions", fmt.Sprint(sid))
		var hwids []string
		for k := 0; k < 1+i%5; k++ {
			hwids = append(hwids, fmt.Sprintf(`pci\ven_8086&dev_%04x&subsys_%04x17aa`, 0x1000+(i+k*7)%(n/2+1), k))
		}
		grid := map[string]any{}
		for _, code := range []string{"WINDOWS_v100_X64_RS5_FULL", "WINDOWS_v100_X64_VB_FULL"} {
			ids := map[string]any{}
			for _, h := range hwids {
				ids[h] = map[string]any{"FeatureScore": nil}
			}
			grid[code] = ids
		}
		var rows []any
		for _, h := range hwids {
			rows = append(rows, map[string]any{"bundleId": "amd64", "infId": "n.inf", "operatingSystemCode": "WINDOWS_v100_X64_RS5_FULL", "pnpString": h, "distributionState": "added"})
		}
		label := map[string]any{"id": lid, "productId": pid, "submissionId": sid, "name": fmt.Sprintf("label %d", lid), "destination": "windowsUpdate",
			"targeting": map[string]any{"hardwareIds": rows, "chids": []any{}, "restrictedToAudiences": []any{}},
			"publishingSpecifications": map[string]any{"goLiveDate": at("2026-01-01T00:00:00Z"), "isAutoInstallOnApplicableSystems": true,
				"isAutoInstallDuringOSUpgrade": false, "manualAcquisition": false},
			"distribution": map[string]any{"flight": map[string]any{"channels": []any{"Dev"}, "start": at("2025-12-01T00:00:00Z"), "approved": at("2025-12-15T00:00:00Z")}},
		}
		if mutate != nil {
			mutate(i, label)
		}
		files := map[string]any{
			filepath.Join(base, "product.json"): map[string]any{"id": pid, "productName": "p", "ownerSellerId": "100", "testHarness": "hlk"},
			filepath.Join(sub, "submission.json"): map[string]any{"id": sid, "productId": pid, "name": "s",
				"package": map[string]any{"url": fmt.Sprintf("https://cdn.example/%d.cab", sid), "sha256": strings.Repeat("cd", 32), "size": 1000 + i}},
			filepath.Join(sub, "driverMetadata.json"): map[string]any{"BundleInfoMap": map[string]any{"amd64": map[string]any{"InfInfoMap": map[string]any{
				"n.inf": map[string]any{"InfClass": "Net", "DriverVersion": fmt.Sprintf("1.0.%d.0", i), "DriverDate": "2025-01-01T00:00:00", "OSPnPInfoMap": grid}}}}},
			filepath.Join(sub, "shippingLabels", fmt.Sprintf("%d.json", lid)): label,
		}
		for p, doc := range files {
			os.MkdirAll(filepath.Dir(p), 0o755)
			b, _ := json.MarshalIndent(doc, "", " ")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func testKey(t testing.TB) (*signing.Signer, *signing.Verifier) {
	t.Helper()
	priv, _, err := signing.GenerateKey(signing.Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "k.key")
	os.WriteFile(p, priv, 0o600)
	s, err := signing.LoadSigner(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.Verifier()
}

func mustBuild(t testing.TB, labels, out string, s *signing.Signer, now time.Time) *Report {
	t.Helper()
	rep, err := Build(context.Background(), Options{Labels: labels, Out: out, Signers: []*signing.Signer{s}, Now: now})
	if err != nil {
		if rep != nil {
			for _, p := range rep.Problems {
				t.Log(p)
			}
		}
		t.Fatal(err)
	}
	return rep
}

func openRelease(t testing.TB, out string, v *signing.Verifier) *index.Release {
	t.Helper()
	rel, err := index.OpenRelease(out, &index.VerifyOptions{Keys: []*signing.Verifier{v}, Now: verifyAt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rel.Close() })
	return rel
}

// TestRoundTrip: every live row of the tree is found through its HWID record, in the cells of
// its family from its release up, and every label through its label record.
func TestRoundTrip(t *testing.T) {
	labels, out := t.TempDir(), t.TempDir()
	writeTree(t, labels, 300, nil)
	s, v := testKey(t)
	rep := mustBuild(t, labels, out, s, testNow)
	rel := openRelease(t, out, v)
	tree, _, err := catalogs.Load(labels, nil)
	if err != nil {
		t.Fatal(err)
	}
	tab := ostable.Default()
	if rep.LabelsBuilt != 300 || rel.Manifest.Counts.Labels != 300 {
		t.Fatalf("built %d labels, manifest says %d; want 300", rep.LabelsBuilt, rel.Manifest.Counts.Labels)
	}
	rows := 0
	for _, l := range tree.Labels() {
		id := catalogs.IDValue(l.ID)
		key := compiled.LabelKey(id)
		v, ok, err := rel.Label[index.Route(key[:], len(rel.Label))].Get(key[:])
		if err != nil || !ok {
			t.Fatalf("label %s not found: %v", l.ID, err)
		}
		rec, err := compiled.ParseLabel(v)
		if err != nil || fmt.Sprint(rec.Product) != l.ProductID || string(rec.URL) != l.Submission.Package.URL {
			t.Fatalf("label %s record %+v, %v", l.ID, rec, err)
		}
		for _, r := range l.Rows {
			rows++
			hv, ok, err := rel.HWID[index.Route([]byte(r.HWID), len(rel.HWID))].Get([]byte(r.HWID))
			if err != nil || !ok {
				t.Fatalf("%s of label %s not found: %v", r.HWID, l.ID, err)
			}
			h, err := compiled.ParseHWID(hv)
			if err != nil {
				t.Fatal(err)
			}
			code, _ := tab.LookupOSCode(r.OSCode)
			for s := ostable.Slot(0); int(s) < tab.NumSlots(); s++ {
				start, n := h.Cell(code.Family, s)
				found := false
				for i := start; i < start+n; i++ {
					found = found || h.Row(i).Label == id
				}
				if want := tab.IsRelease(s) && s >= code.Slot; found != want {
					t.Fatalf("%s label %s in cell %s = %v, want %v", r.HWID, l.ID, tab.SlotName(s), found, want)
				}
			}
		}
	}
	if rows != rel.Manifest.Counts.Rows {
		t.Errorf("tree has %d rows, manifest %d", rows, rel.Manifest.Counts.Rows)
	}
}

func dirFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			out[rel] = b
		}
		return nil
	})
	return out
}

// TestDeterministic: two builds of one tree with one key and one --now are byte-identical,
// manifest included (Ed25519 signs deterministically).
func TestDeterministic(t *testing.T) {
	labels := t.TempDir()
	writeTree(t, labels, 200, nil)
	s, _ := testKey(t)
	a, b := t.TempDir(), t.TempDir()
	mustBuild(t, labels, a, s, testNow)
	mustBuild(t, labels, b, s, testNow)
	fa, fb := dirFiles(t, a), dirFiles(t, b)
	if len(fa) != len(fb) || len(fa) < 3 {
		t.Fatalf("%d files vs %d", len(fa), len(fb))
	}
	for name, data := range fa {
		if !bytes.Equal(data, fb[name]) {
			t.Errorf("%s differs between two builds", name)
		}
	}
}

// TestIncremental: changing one label rewrites only the shards holding its keys; a change of
// rollout state alone rewrites no shard at all (a control-only release).
func TestIncremental(t *testing.T) {
	labels, out := t.TempDir(), t.TempDir()
	writeTree(t, labels, 200, nil)
	s, v := testKey(t)
	first := mustBuild(t, labels, out, s, testNow)
	if first.ShardsWritten != DefaultHWIDShards+DefaultLabelShards {
		t.Fatalf("first build wrote %d shards", first.ShardsWritten)
	}
	before := openRelease(t, out, v).Manifest

	// A new package URL for label 300007: only its label shard changes.
	writeTree(t, labels, 200, nil) // rewrite unchanged
	sub := filepath.Join(labels, "products", "100007", "submissions", "200007", "submission.json")
	b, _ := os.ReadFile(sub)
	os.WriteFile(sub, bytes.Replace(b, []byte("200007.cab"), []byte("200007-v2.cab"), 1), 0o644)
	rep := mustBuild(t, labels, out, s, testNow.Add(time.Hour))
	key := compiled.LabelKey(300007)
	if rep.ShardsWritten != 1 || rep.ControlOnly {
		t.Errorf("a new package URL wrote %d shards, want 1 (label shard %d)", rep.ShardsWritten, index.Route(key[:], DefaultLabelShards))
	}
	after := openRelease(t, out, v).Manifest
	changed := 0
	for i := range before.Shards {
		if before.Shards[i].Name != after.Shards[i].Name {
			changed++
			if before.Shards[i].Kind != index.KindLabel || before.Shards[i].Shard != index.Route(key[:], DefaultLabelShards) {
				t.Errorf("shard %s %d changed", before.Shards[i].Kind, before.Shards[i].Shard)
			}
		}
	}
	if changed != 1 {
		t.Errorf("%d shards changed names, want 1", changed)
	}
	if after.Sequence != before.Sequence+1 {
		t.Errorf("sequence %d after %d", after.Sequence, before.Sequence)
	}

	// A rollout stage: no shard changes, a new manifest with a control entry.
	writeTree(t, labels, 200, func(i int, l map[string]any) {
		if i == 7 {
			l["distribution"].(map[string]any)["rollout"] = map[string]any{"stages": []any{map[string]any{"at": at("2026-11-20T00:00:00Z"), "percent": 5}}}
		}
	})
	os.WriteFile(sub, bytes.Replace(b, []byte("200007.cab"), []byte("200007-v2.cab"), 1), 0o644)
	rep = mustBuild(t, labels, out, s, testNow.Add(2*time.Hour))
	if rep.ShardsWritten != 0 || !rep.ControlOnly || rep.ControlLabels != 1 {
		t.Errorf("a rollout change: %d shards written, control-only %v, %d control entries; want 0, true, 1", rep.ShardsWritten, rep.ControlOnly, rep.ControlLabels)
	}
}

// TestKeep: only the newest releases are kept, with exactly the shards they name.
func TestKeep(t *testing.T) {
	labels, out := t.TempDir(), t.TempDir()
	s, v := testKey(t)
	for i := 0; i < 4; i++ {
		writeTree(t, labels, 20+i*5, nil) // each build changes shards
		rep, err := Build(context.Background(), Options{Labels: labels, Out: out, Signers: []*signing.Signer{s}, Now: testNow.Add(time.Duration(i) * time.Minute), Keep: 2})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sequence != uint64(i+1) {
			t.Errorf("build %d has sequence %d", i, rep.Sequence)
		}
	}
	seqs, _ := index.Sequences(out)
	if fmt.Sprint(seqs) != "[3 4]" {
		t.Errorf("kept releases %v, want [3 4]", seqs)
	}
	used := map[string]bool{}
	for _, seq := range seqs {
		env, _ := os.ReadFile(index.ReleasePath(out, seq))
		payload, err := signing.Open(env, index.ManifestType, 1, v)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := index.ParseManifest(payload)
		for _, sh := range m.Shards {
			used[sh.Name] = true
		}
	}
	entries, _ := os.ReadDir(filepath.Join(out, index.ShardsDir))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if !used[e.Name()] {
			t.Errorf("shard %s is kept but no kept release names it", e.Name())
		}
	}
	if len(names) != len(used) {
		t.Errorf("%d shard files for %d named shards", len(names), len(used))
	}
}

// TestNeedsAClock: the build never reads the system clock: without a creation time a build
// and a control-only build fail, naming the option, and write nothing.
func TestNeedsAClock(t *testing.T) {
	labels, out := t.TempDir(), t.TempDir()
	writeTree(t, labels, 3, nil)
	s, _ := testKey(t)
	if _, err := Build(context.Background(), Options{Labels: labels, Out: out, Signers: []*signing.Signer{s}}); err == nil || !strings.Contains(err.Error(), "Options.Now") {
		t.Errorf("Build without Now: %v", err)
	}
	if _, err := Control(context.Background(), ControlOptions{Labels: labels, Out: out, Signers: []*signing.Signer{s}}); err == nil || !strings.Contains(err.Error(), "ControlOptions.Now") {
		t.Errorf("Control without Now: %v", err)
	}
	if files := dirFiles(t, out); len(files) != 0 {
		t.Errorf("%d files written without a clock", len(files))
	}
}

// TestInvalidWritesNothing: a tree with an error fails and writes nothing; with SkipInvalid
// the bad label is left out and reported.
func TestInvalidWritesNothing(t *testing.T) {
	labels, out := t.TempDir(), t.TempDir()
	writeTree(t, labels, 10, func(i int, l map[string]any) {
		if i == 3 {
			l["targeting"].(map[string]any)["inServicePublishInfo"] = map[string]any{"flooring": "RS3"} // L021
		}
	})
	s, _ := testKey(t)
	rep, err := Build(context.Background(), Options{Labels: labels, Out: out, Signers: []*signing.Signer{s}, Now: testNow})
	if err == nil || rep.Errors != 1 {
		t.Fatalf("err %v, errors %d; want ErrInvalid with 1 error", err, rep.Errors)
	}
	if files := dirFiles(t, out); len(files) != 0 {
		t.Errorf("a failed build wrote %d files", len(files))
	}
	rep, err = Build(context.Background(), Options{Labels: labels, Out: out, Signers: []*signing.Signer{s}, Now: testNow, SkipInvalid: true})
	if err != nil || rep.LabelsBuilt != 9 || len(rep.Rejected) != 1 || rep.Rejected[0].Label != "300003" || fmt.Sprint(rep.Rejected[0].Codes) != "[L021]" {
		t.Errorf("skip-invalid: err %v, built %d, rejected %+v", err, rep.LabelsBuilt, rep.Rejected)
	}
}

// TestKilledBuild: a build killed at any moment leaves the previous release intact and
// verifiable. The build runs in a child process (this test binary) that prints its
// progress; the parent kills it with SIGKILL at a chosen point: while compiling, after one
// shard, after most shards, just before the manifest is published, just before pruning.
func TestKilledBuild(t *testing.T) {
	if os.Getenv("DRIVEWAY_CHILD_BUILD") != "" {
		childBuild()
		return
	}
	if testing.Short() {
		t.Skip("spawns builds")
	}
	labels, out := t.TempDir(), t.TempDir()
	writeTree(t, labels, 50, nil)
	s, v := testKey(t)
	mustBuild(t, labels, out, s, testNow)
	bigger := filepath.Join(t.TempDir(), filepath.Base(labels)) // the same catalog, grown
	writeTree(t, bigger, 400, nil)
	keyFile := filepath.Join(t.TempDir(), "k.key")
	priv, _, _ := signing.GenerateKey(signing.Ed25519, nil)
	os.WriteFile(keyFile, priv, 0o600)
	for _, at := range []string{"compile 0/1", "shards 1/20", "shards 15/20", "publish 0/1", "prune 0/1"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledBuild$")
		cmd.Env = append(os.Environ(), "DRIVEWAY_CHILD_BUILD=1", "CHILD_LABELS="+bigger, "CHILD_OUT="+out, "CHILD_KEY="+keyFile)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		reached := false
		for sc.Scan() {
			if sc.Text() == at {
				cmd.Process.Signal(syscall.SIGKILL)
				reached = true
				break
			}
		}
		err := cmd.Wait()
		if !reached || err == nil {
			t.Fatalf("the child build did not stop at %q (reached %v, exit %v)", at, reached, err)
		}
		tmps, _ := filepath.Glob(filepath.Join(out, index.ShardsDir, ".tmp-*"))
		seqs, _ := index.Sequences(out)
		t.Logf("killed at %q: %d temporary shard files left; releases %v", at, len(tmps), seqs)

		// The newest release verifies: still release 1 (killed before its manifest), or the
		// child's release 2 (killed while pruning), signed by the child's key.
		key := v
		if seqs[len(seqs)-1] > 1 {
			key = childVerifier(t, keyFile)
		}
		if _, err := index.Verify(out, &index.VerifyOptions{Keys: []*signing.Verifier{key}, Now: verifyAt}, func(index.Step) {}); err != nil {
			t.Fatalf("after a kill at %q: %v", at, err)
		}
		if at != "prune 0/1" && fmt.Sprint(seqs) != "[1]" {
			t.Errorf("killed at %q before publishing, yet releases are %v", at, seqs)
		}
		rel, err := index.OpenEnvelope(out, mustRead(t, index.ReleasePath(out, 1)), &index.VerifyOptions{Keys: []*signing.Verifier{v}, Now: verifyAt})
		if err != nil {
			t.Fatalf("release 1 after a kill at %q: %v", at, err)
		}
		rel.Close()
		if seqs[len(seqs)-1] > 1 {
			os.Remove(index.ReleasePath(out, seqs[len(seqs)-1])) // back to release 1 for the next kill
		}
	}
	// The next build completes and clears what the killed ones left behind.
	mustBuild(t, labels, out, s, testNow.Add(time.Hour))
	if tmps, _ := filepath.Glob(filepath.Join(out, index.ShardsDir, ".tmp-*")); len(tmps) != 0 {
		t.Errorf("%d temporary shard files survive a complete build", len(tmps))
	}
}

func mustRead(t testing.TB, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func childVerifier(t *testing.T, keyFile string) *signing.Verifier {
	s, err := signing.LoadSigner(context.Background(), keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s.Verifier()
}

// childBuild is the killed build: it prints every progress step and waits a moment after
// each, so the parent's SIGKILL lands at that step.
func childBuild() {
	s, err := signing.LoadSigner(context.Background(), os.Getenv("CHILD_KEY"), nil)
	if err != nil {
		os.Exit(3)
	}
	_, err = Build(context.Background(), Options{Labels: os.Getenv("CHILD_LABELS"), Out: os.Getenv("CHILD_OUT"), Signers: []*signing.Signer{s},
		Now: testNow.Add(time.Hour), Keep: 1, Workers: 1,
		Progress: func(phase string, done, total int) {
			fmt.Printf("%s %d/%d\n", phase, done, total)
			if phase != "shards" { // during the shards the kill lands mid-write
				time.Sleep(50 * time.Millisecond)
			}
		}})
	if err != nil {
		os.Exit(4)
	}
	os.Exit(0)
}

// TestControlTable: what goes into the control table, and what does not.
func TestControlTable(t *testing.T) {
	labels, out := t.TempDir(), t.TempDir()
	writeTree(t, labels, 6, func(i int, l map[string]any) {
		d := l["distribution"].(map[string]any)
		switch i {
		case 1: // a finished rollout: fully live
			d["rollout"] = map[string]any{"stages": []any{map[string]any{"at": at("2026-10-01T00:00:00Z"), "percent": 10}, map[string]any{"at": at("2026-11-01T00:00:00Z"), "percent": 100}}}
		case 2: // a rollout with a future stage
			d["rollout"] = map[string]any{"stages": []any{map[string]any{"at": at("2026-11-01T00:00:00Z"), "percent": 10}, map[string]any{"at": at("2026-12-01T00:00:00Z"), "percent": 100}}}
		case 3: // a finished rollout, paused
			d["rollout"] = map[string]any{"stages": []any{map[string]any{"at": at("2026-11-01T00:00:00Z"), "percent": 100}}, "paused": true}
		case 4: // a flight approved in the future
			d["flight"].(map[string]any)["approved"] = at("2026-12-24T00:00:00Z")
		case 5: // a cancel
			d["cancelled"] = map[string]any{"at": at("2026-11-20T00:00:00Z"), "rollback": true}
		}
	})
	s, v := testKey(t)
	mustBuild(t, labels, out, s, testNow)
	var c compiled.Control
	if err := json.Unmarshal(openRelease(t, out, v).Manifest.Control, &c); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, lc := range c.Labels {
		got = append(got, lc.Label)
	}
	sort.Strings(got)
	if want := "[300002 300003 300004 300005]"; fmt.Sprint(got) != want {
		t.Errorf("control entries %v, want %s", got, want)
	}
	if len(c.Audiences) != 1 || c.Audiences[0].Name != "Test_Registry_Key" {
		t.Errorf("audiences %+v, want the built-in Test Registry Key", c.Audiences)
	}
}

// TestControl: a control-only release changes the control table without touching a shard,
// and refuses a label that changed beyond its control state.
func TestControl(t *testing.T) {
	labels, out := t.TempDir(), t.TempDir()
	writeTree(t, labels, 50, nil)
	s, v := testKey(t)
	first := mustBuild(t, labels, out, s, testNow)
	writeTree(t, labels, 50, func(i int, l map[string]any) {
		if i == 7 {
			l["distribution"].(map[string]any)["rollout"] = map[string]any{"stages": []any{map[string]any{"at": at("2026-11-20T00:00:00Z"), "percent": 5}}, "paused": true}
		}
	})
	shardsBefore := dirFiles(t, filepath.Join(out, index.ShardsDir))
	rep, err := Control(context.Background(), ControlOptions{Labels: labels, Out: out, Signers: []*signing.Signer{s}, Now: testNow.Add(time.Hour), LabelIDs: []string{"300007"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sequence != first.Sequence+1 || rep.ControlLabels != 1 {
		t.Errorf("sequence %d, %d control entries", rep.Sequence, rep.ControlLabels)
	}
	rel := openRelease(t, out, v)
	var c compiled.Control
	json.Unmarshal(rel.Manifest.Control, &c)
	if len(c.Labels) != 1 || c.Labels[0].Label != "300007" || c.Labels[0].Rollout == nil || !c.Labels[0].Rollout.Paused {
		t.Errorf("control table %+v", c.Labels)
	}
	if after := dirFiles(t, filepath.Join(out, index.ShardsDir)); len(after) != len(shardsBefore) {
		t.Errorf("shard files %d -> %d", len(shardsBefore), len(after))
	}
	// The release statement is signed again for the new sequence and times, over the same
	// tree (the label records did not change); edges refuse a release without one.
	st, err := statement.Open(rel.Manifest.Statement, 1, v)
	if err != nil || st.Sequence != rep.Sequence || !st.Created.Equal(rel.Manifest.Created) || !st.Expires.Equal(rel.Manifest.Expires) || st.Records == 0 {
		t.Errorf("the control-only release's statement: %+v, %v", st, err)
	}
	// The same tree through a full build gives the same control table (the fast path and the
	// full build agree) and reuses every shard.
	full := mustBuild(t, labels, t.TempDir(), s, testNow.Add(time.Hour))
	if full.ControlLabels != 1 {
		t.Errorf("full build: %d control entries", full.ControlLabels)
	}

	// A label whose rows changed needs a full build.
	writeTree(t, labels, 50, func(i int, l map[string]any) {
		if i == 7 {
			rows := l["targeting"].(map[string]any)["hardwareIds"].([]any)
			rows[0].(map[string]any)["distributionState"] = "pendingRemove"
		}
	})
	if _, err := Control(context.Background(), ControlOptions{Labels: labels, Out: out, Signers: []*signing.Signer{s}, Now: testNow.Add(2 * time.Hour), LabelIDs: []string{"300007"}}); !errors.Is(err, ErrNeedsFullBuild) {
		t.Errorf("a changed row: %v, want ErrNeedsFullBuild", err)
	}
	if _, err := Control(context.Background(), ControlOptions{Labels: labels, Out: out, Signers: []*signing.Signer{s}, Now: testNow.Add(2 * time.Hour), LabelIDs: []string{"999999"}}); !errors.Is(err, ErrNeedsFullBuild) {
		t.Errorf("an unknown label: %v, want ErrNeedsFullBuild", err)
	}
	// No labels: a re-signed manifest with a fresh expiry.
	rep, err = Control(context.Background(), ControlOptions{Labels: labels, Out: out, Signers: []*signing.Signer{s}, Now: testNow.Add(48 * time.Hour), ExpiresAfter: time.Hour})
	if err != nil || !rep.Expires.Equal(testNow.Add(49*time.Hour)) {
		t.Errorf("re-sign: %v, expires %v", err, rep.Expires)
	}
}

// at is a fixture's date moved with the tests' clock, so that it keeps its place beside testNow.
func at(rfc3339 string) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		panic(err)
	}
	return testclock.Shift(t).Format(time.RFC3339)
}

// guardBuild builds with opts over the fixed test key and clock fields filled in.
func guardBuild(s *signing.Signer, labels, out string, now time.Time, opts Options) (*Report, error) {
	opts.Labels, opts.Out, opts.Signers, opts.Now = labels, out, []*signing.Signer{s}, now
	return Build(context.Background(), opts)
}

// refused checks that a build failed with exactly want and left out as it was.
func refused(t *testing.T, what string, err error, want string, out string, before map[string][]byte) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Errorf("%s: error %v\nwant %s", what, err, want)
	}
	after := dirFiles(t, out)
	if len(after) != len(before) {
		t.Errorf("%s: %d files in --out, %d before", what, len(after), len(before))
	}
	for name, data := range before {
		if !bytes.Equal(after[name], data) {
			t.Errorf("%s: %s changed", what, name)
		}
	}
}

// TestGuardNotATree: --labels naming the parent of the tree (catalogs/examples for
// catalogs/examples/contoso), the tree's products/ directory or an empty directory is refused
// by the load, before anything is written: it would otherwise publish a release without
// labels, which every edge would swap in and answer every PC with nothing.
func TestGuardNotATree(t *testing.T) {
	parent, out := t.TempDir(), t.TempDir()
	tree := filepath.Join(parent, "contoso")
	writeTree(t, tree, 6, nil)
	s, _ := testKey(t)
	mustBuild(t, tree, out, s, testNow)
	before := dirFiles(t, out)
	empty := t.TempDir()
	notATree := "catalogs: %s has no products/ directory, so it is not a label tree"
	for _, c := range []struct{ labels, want string }{
		{parent, fmt.Sprintf(notATree+"; did you mean %s?", parent, tree)},
		{filepath.Join(tree, "products"), fmt.Sprintf(notATree+"; did you mean %s?", filepath.Join(tree, "products"), tree)},
		{empty, fmt.Sprintf(notATree, empty)},
	} {
		_, err := guardBuild(s, c.labels, out, testNow.Add(time.Hour), Options{})
		refused(t, "--labels "+c.labels, err, c.want, out, before)
		// Control-only releases read the same tree: refused alike.
		_, err = Control(context.Background(), ControlOptions{Labels: c.labels, Out: out, Signers: []*signing.Signer{s}, Now: testNow.Add(time.Hour)})
		refused(t, "--control-only --labels "+c.labels, err, c.want, out, before)
	}
	// Into a new --out too: nothing is created.
	fresh := filepath.Join(t.TempDir(), "catalog")
	_, err := guardBuild(s, empty, fresh, testNow, Options{})
	refused(t, "an empty directory into a new --out", err, fmt.Sprintf(notATree, empty), fresh, nil)
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused build created %s: %v", fresh, err)
	}
}

// TestGuardShrink: a release that drops more than 10% of the previous release's labels, by
// label id and not by count, is refused and writes nothing; one that drops none, or 10%, is
// published.
func TestGuardShrink(t *testing.T) {
	work, out := t.TempDir(), t.TempDir()
	s, v := testKey(t)
	tree := func(name string, from, to int, drop ...int) string {
		dir := filepath.Join(work, name, "labels") // every tree is catalog "labels"
		writeTreeOf(t, dir, from, to, nil)
		for _, i := range drop {
			os.RemoveAll(filepath.Join(dir, "products", fmt.Sprint(100000+i)))
		}
		return dir
	}
	mustBuild(t, tree("six", 0, 6), out, s, testNow) // release 1: labels 0..5
	before := dirFiles(t, out)

	// Two of six dropped.
	_, err := guardBuild(s, tree("four", 0, 4), out, testNow.Add(time.Hour), Options{})
	refused(t, "dropping 2 of 6", err, "build: release 2 would drop 2 of the 6 labels of release 1 (33.3% > 10%); pass --allow-shrink if this is meant", out, before)
	// As many labels as before, two of them new: still two of the six dropped.
	_, err = guardBuild(s, tree("swapped", 0, 8, 2, 3), out, testNow.Add(time.Hour), Options{})
	refused(t, "replacing 2 of 6", err, "build: release 2 would drop 2 of the 6 labels of release 1 (33.3% > 10%); pass --allow-shrink if this is meant", out, before)
	// Every label dropped.
	noLabels := filepath.Join(work, "none", "labels")
	os.MkdirAll(filepath.Join(noLabels, "products"), 0o755)
	_, err = guardBuild(s, noLabels, out, testNow.Add(time.Hour), Options{})
	refused(t, "dropping all 6", err, "build: release 2 would drop 6 of the 6 labels of release 1 (100% > 10%); pass --allow-shrink if this is meant", out, before)
	// Every label invalid and skipped: no label is left either.
	invalid := filepath.Join(work, "invalid", "labels")
	writeTree(t, invalid, 6, func(i int, l map[string]any) {
		l["targeting"].(map[string]any)["inServicePublishInfo"] = map[string]any{"flooring": "RS3"} // L021
	})
	_, err = guardBuild(s, invalid, out, testNow.Add(time.Hour), Options{SkipInvalid: true})
	refused(t, "skipping all 6", err, "build: release 2 would drop 6 of the 6 labels of release 1 (100% > 10%); pass --allow-shrink if this is meant", out, before)
	var re *RefusedError
	if !errors.As(err, &re) || len(re.Reasons) != 1 {
		t.Errorf("a refusal is %T %v, want a *RefusedError of one reason", err, err)
	}
	if rep, _ := guardBuild(s, invalid, out, testNow.Add(time.Hour), Options{SkipInvalid: true}); rep == nil || rep.OK ||
		fmt.Sprint(rep.Refused) != "[release 2 would drop 6 of the 6 labels of release 1 (100% > 10%); pass --allow-shrink if this is meant]" {
		t.Errorf("the report of a refused build: %+v", rep)
	}
	// A limit above the share, or none, publishes; NoDrop refuses any drop.
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{MaxDropPercent: 33.3}, "build: release 2 would drop 2 of the 6 labels of release 1 (33.33% > 33.3%); pass --allow-shrink if this is meant"},
		{Options{MaxDropPercent: NoDrop}, "build: release 2 would drop 2 of the 6 labels of release 1 (33.3% > 0%); pass --allow-shrink if this is meant"},
		{Options{MaxDropPercent: 34}, ""},
		{Options{AllowShrink: true}, ""},
	} {
		scratch := copyDir(t, out)
		rep, err := guardBuild(s, tree("four", 0, 4), scratch, testNow.Add(time.Hour), c.opts)
		if c.want != "" {
			refused(t, fmt.Sprintf("dropping 2 of 6 with %+v", c.opts), err, c.want, scratch, before)
		} else if err != nil || rep.Sequence != 2 || rep.LabelsBuilt != 4 {
			t.Errorf("dropping 2 of 6 with %+v: %v", c.opts, err)
		}
	}
	if rep, err := guardBuild(s, noLabels, copyDir(t, out), testNow.Add(time.Hour), Options{AllowShrink: true}); err != nil || rep.LabelsBuilt != 0 {
		t.Errorf("dropping all 6 with AllowShrink: %v", err)
	}

	// None dropped, two added: published.
	rep, err := guardBuild(s, tree("eight", 0, 8), out, testNow.Add(time.Hour), Options{})
	if err != nil || rep.Sequence != 2 || rep.LabelsBuilt != 8 {
		t.Fatalf("adding 2 labels: %v (release %d of %d labels)", err, rep.Sequence, rep.LabelsBuilt)
	}
	// Ten labels, then nine: 1 of 10 is 10%, which is not more than 10%; then 1 of 9 is.
	mustBuild(t, tree("ten", 0, 10), out, s, testNow.Add(2*time.Hour))
	rep, err = guardBuild(s, tree("nine", 0, 10, 9), out, testNow.Add(3*time.Hour), Options{})
	if err != nil || rep.Sequence != 4 || rep.LabelsBuilt != 9 {
		t.Fatalf("dropping 1 of 10: %v", err)
	}
	before = dirFiles(t, out)
	_, err = guardBuild(s, tree("eight-of-nine", 0, 10, 8, 9), out, testNow.Add(3*time.Hour), Options{})
	refused(t, "dropping 1 of 9", err, "build: release 5 would drop 1 of the 9 labels of release 4 (11.1% > 10%); pass --allow-shrink if this is meant", out, before)
	if m := openRelease(t, out, v).Manifest; m.Sequence != 4 || m.Counts.Labels != 9 {
		t.Errorf("the newest release is %d of %d labels, want 4 of 9", m.Sequence, m.Counts.Labels)
	}
}

// copyDir copies a catalog directory to a new one.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestGuardUnreadablePrevious: a previous release whose label shards are gone cannot be
// compared with: the build fails, naming the flags that publish without comparing.
func TestGuardUnreadablePrevious(t *testing.T) {
	labels, out := t.TempDir(), t.TempDir()
	writeTree(t, labels, 6, nil)
	s, v := testKey(t)
	mustBuild(t, labels, out, s, testNow)
	for _, ref := range openRelease(t, out, v).Manifest.ShardsOf(index.KindLabel) {
		os.Remove(filepath.Join(out, index.ShardsDir, ref.Name))
	}
	before := dirFiles(t, out)
	_, err := guardBuild(s, labels, out, testNow.Add(time.Hour), Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "build: cannot compare with the newest release of "+out+": release 1: index: shard ") ||
		!strings.HasSuffix(err.Error(), "(pass --allow-shrink and --allow-catalog-change to publish without comparing)") {
		t.Errorf("a previous release without its label shards: %v", err)
	}
	refused(t, "a previous release without its label shards", err, err.Error(), out, before)
	if rep, err := guardBuild(s, labels, out, testNow.Add(time.Hour), Options{AllowShrink: true, AllowCatalogChange: true}); err != nil || rep.Sequence != 2 {
		t.Errorf("with both overrides: %v", err)
	}
}

// TestGuardNoLabels: a first build into an empty --out has no release to shrink from, but a
// release of no labels is still refused.
func TestGuardNoLabels(t *testing.T) {
	labels := filepath.Join(t.TempDir(), "labels")
	os.MkdirAll(filepath.Join(labels, "products"), 0o755)
	s, _ := testKey(t)
	out := filepath.Join(t.TempDir(), "catalog")
	_, err := guardBuild(s, labels, out, testNow, Options{})
	refused(t, "a tree of no labels", err, "build: release 1 would hold no labels (0 in the tree, 0 left out as invalid); pass --allow-shrink if this is meant", out, nil)
	writeTree(t, labels, 3, func(i int, l map[string]any) { l["destination"] = "notSet" }) // not offered: not compiled
	_, err = guardBuild(s, labels, out, testNow, Options{})
	refused(t, "a tree of no Windows Update labels", err, "build: release 1 would hold no labels (3 in the tree, 0 left out as invalid); pass --allow-shrink if this is meant", out, nil)
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused build created %s: %v", out, err)
	}
	if rep, err := guardBuild(s, labels, t.TempDir(), testNow, Options{AllowShrink: true}); err != nil || rep.Sequence != 1 || rep.LabelsBuilt != 0 {
		t.Errorf("a tree of no Windows Update labels with AllowShrink: %v", err)
	}
	// The first build of a real tree is not a shrink.
	os.RemoveAll(labels)
	writeTree(t, labels, 3, nil)
	if rep, err := guardBuild(s, labels, out, testNow, Options{}); err != nil || rep.LabelsBuilt != 3 {
		t.Errorf("a first build: %v", err)
	}
}

// TestGuardCatalogChange: a release of another catalog than the previous release's (named by
// catalog.json, or by the tree's directory without one) is refused.
func TestGuardCatalogChange(t *testing.T) {
	work, out := t.TempDir(), t.TempDir()
	labels := filepath.Join(work, "labels")
	writeTree(t, labels, 6, nil)
	setName := func(name string) {
		os.WriteFile(filepath.Join(labels, "catalog.json"), []byte(fmt.Sprintf(`{"name": %q}`, name)), 0o644)
	}
	setName("alpha")
	s, v := testKey(t)
	mustBuild(t, labels, out, s, testNow)
	before := dirFiles(t, out)
	setName("beta")
	_, err := guardBuild(s, labels, out, testNow.Add(time.Hour), Options{})
	refused(t, "alpha to beta", err, "build: release 2 would rename catalog alpha (release 1) to beta; pass --allow-catalog-change if this is meant", out, before)
	// A control-only release keeps the release's catalog: a tree that names another one is
	// not this catalog's tree.
	_, err = Control(context.Background(), ControlOptions{Labels: labels, Out: out, Signers: []*signing.Signer{s}, Now: testNow.Add(time.Hour)})
	refused(t, "control-only alpha to beta", err, fmt.Sprintf("build: the label tree %s is catalog beta, release 1 is catalog alpha; a control-only release cannot change the catalog", labels), out, before)
	// Without catalog.json the directory names the catalog.
	os.Remove(filepath.Join(labels, "catalog.json"))
	_, err = guardBuild(s, labels, out, testNow.Add(time.Hour), Options{})
	refused(t, "alpha to labels", err, "build: release 2 would rename catalog alpha (release 1) to labels; pass --allow-catalog-change if this is meant", out, before)
	// A rename and a shrink at once: both are named, on one line.
	setName("beta")
	os.RemoveAll(filepath.Join(labels, "products", "100005"))
	_, err = guardBuild(s, labels, out, testNow.Add(time.Hour), Options{})
	refused(t, "a rename and a shrink", err, "build: release 2 would rename catalog alpha (release 1) to beta; pass --allow-catalog-change if this is meant; "+
		"release 2 would drop 1 of the 6 labels of release 1 (16.7% > 10%); pass --allow-shrink if this is meant", out, before)
	if m := openRelease(t, out, v).Manifest; m.Sequence != 1 || m.Catalog != "alpha" {
		t.Errorf("the newest release is %d of %s, want 1 of alpha", m.Sequence, m.Catalog)
	}
	// AllowCatalogChange lets the rename through, not the shrink; both flags, both.
	_, err = guardBuild(s, labels, out, testNow.Add(time.Hour), Options{AllowCatalogChange: true})
	refused(t, "a rename and a shrink with AllowCatalogChange", err, "build: release 2 would drop 1 of the 6 labels of release 1 (16.7% > 10%); pass --allow-shrink if this is meant", out, before)
	writeTree(t, labels, 6, nil)
	rep, err := guardBuild(s, labels, out, testNow.Add(time.Hour), Options{AllowCatalogChange: true})
	if err != nil || rep.Sequence != 2 || rep.Catalog != "beta" {
		t.Fatalf("a rename with AllowCatalogChange: %v", err)
	}
	if m := openRelease(t, out, v).Manifest; m.Sequence != 2 || m.Catalog != "beta" {
		t.Errorf("the newest release is %d of %s, want 2 of beta", m.Sequence, m.Catalog)
	}
	// Now beta's control-only releases go through, and keep the name.
	rep, err = Control(context.Background(), ControlOptions{Labels: labels, Out: out, Signers: []*signing.Signer{s}, Now: testNow.Add(2 * time.Hour)})
	if err != nil || rep.Sequence != 3 || rep.Catalog != "beta" {
		t.Errorf("control-only of beta: %v", err)
	}
}
