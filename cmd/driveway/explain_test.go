package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/catalogs/examples"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata (check the diff)")

// explainAt is the time of the explain golden tests: the example's own clock, after its
// rollout would have reached 100%.
const explainAt = "2026-12-02T00:00:00Z"

// explainExample builds the bundled example with the NIC label 1152921504606978202 paused
// (and still named by block 41235678) and the older NIC label 1152921504606978201 cancelled
// with a reason: the cases issue 16 found explain silent about.
func explainExample(t *testing.T) string {
	t.Helper()
	work := t.TempDir()
	labels := filepath.Join(work, "labels")
	if err := copyFS(examplesFS(), "contoso", labels); err != nil {
		t.Fatal(err)
	}
	editLabel(t, labels, "1152921504606978202", func(l map[string]any) {
		l["distribution"].(map[string]any)["rollout"].(map[string]any)["paused"] = true
	})
	editLabel(t, labels, "1152921504606978201", func(l map[string]any) {
		d, _ := l["distribution"].(map[string]any)
		if d == nil {
			d = map[string]any{}
			l["distribution"] = d
		}
		d["cancelled"] = map[string]any{"at": "2026-11-25T00:00:00Z", "rollback": false, "reason": "link drops after resume on Model B 13"}
	})
	clock := func() time.Time { return time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC) } // the example's own clock
	key := filepath.Join(work, "k")
	if code, _, stderr := runCLIAt(clock, nil, "keygen", "--unencrypted", "--out", key); code != 0 {
		t.Fatal(stderr)
	}
	catalog := filepath.Join(work, "catalog")
	if code, _, stderr := runCLIAt(clock, nil, "build", "--labels", labels, "--out", catalog, "--key", key+".key", "--quiet"); code != 0 {
		t.Fatal(stderr)
	}
	return catalog
}

func editLabel(t *testing.T, tree, id string, change func(map[string]any)) {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(tree, "products", "*", "submissions", "*", "shippingLabels", id+".json"))
	if len(paths) != 1 {
		t.Fatalf("label %s: %d files", id, len(paths))
	}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	var l map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // ids are 64-bit
	if err := dec.Decode(&l); err != nil {
		t.Fatal(err)
	}
	change(l)
	if b, err = json.MarshalIndent(l, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(paths[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// explainRequest is the example's request with one more device, none of whose IDs any
// label publishes.
func explainRequest(t *testing.T) []byte {
	t.Helper()
	b, err := fs.ReadFile(examples.Requests, "requests/contoso-model-b13.json")
	if err != nil {
		t.Fatal(err)
	}
	var req map[string]any
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	req["devices"] = append(req["devices"].([]any), map[string]any{
		"instanceId":    `USB\VID_046D&PID_C52B\5&2A1B3C4D&0&2`,
		"hardwareIds":   []any{`USB\VID_046D&PID_C52B&REV_2411`, `USB\VID_046D&PID_C52B`},
		"compatibleIds": []any{`USB\Class_03&SubClass_01`, `USB\Class_03`},
	})
	if b, err = json.Marshal(req); err != nil {
		t.Fatal(err)
	}
	return b
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("output differs from %s (run with -update after checking the diff):\n%s", path, got)
	}
}

// TestExplainGolden: offer --format table and --format explain, and inspect --hwid, on the
// changed example. Beside the golden files, the facts the issue asked for are asserted.
func TestExplainGolden(t *testing.T) {
	catalog := explainExample(t)
	req := explainRequest(t)

	code, table, stderr := runCLI(req, "offer", "--catalog", catalog, "--now", explainAt, "--format", "table")
	if code != 0 {
		t.Fatalf("offer --format table: exit %d: %s", code, stderr)
	}
	golden(t, "explain.txt", table)
	for _, want := range []string{
		"cancelled: cancelled 2026-11-25T00:00:00Z: link drops after resume on Model B 13", // the cancel's reason
		"blocked: blocked by 41235678: Link drops after resume",                            // the block's reason
		"also fails paused: rollout paused",                                                // not only the first check
		"control: rollout paused",                                                          // the label's control state
		"none of this device's 4 IDs is in release 1",                                      // no candidates, said so
		"row: the label's grid row", "rank: 8 hex digits",                                  // the words for row and rank
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}

	code, js, stderr := runCLI(req, "offer", "--catalog", catalog, "--now", explainAt, "--format", "explain")
	if code != 0 {
		t.Fatalf("offer --format explain: exit %d: %s", code, stderr)
	}
	golden(t, "explain.json", js)
	var x struct {
		Devices []struct {
			Note       string
			Candidates []struct {
				LabelID string
				Verdict string
				Failing []struct{ Verdict string }
				Control string
			}
		}
	}
	if err := json.Unmarshal([]byte(js), &x); err != nil {
		t.Fatalf("--format explain is not JSON: %v\n%s", err, js)
	}
	found := false
	for _, c := range x.Devices[0].Candidates {
		if c.LabelID == "1152921504606978202" {
			found = true
			if c.Verdict != "blocked" || len(c.Failing) != 2 || c.Failing[1].Verdict != "paused" || !strings.Contains(c.Control, "paused") {
				t.Errorf("label 1152921504606978202: %+v, want blocked, then paused, and a paused control state", c)
			}
		}
	}
	if !found || len(x.Devices) != 4 || x.Devices[3].Note == "" || len(x.Devices[3].Candidates) != 0 {
		t.Errorf("explain JSON: want label 1152921504606978202 on device 0 and a note on device 3 with no candidates:\n%s", js)
	}

	// The default format is still the edge's response.
	code, edge, _ := runCLI(req, "offer", "--catalog", catalog, "--now", explainAt, "--explain")
	if code != 0 || !strings.HasPrefix(edge, `{"release":{"sequence":1`) || !strings.Contains(edge, `"explain":[`) {
		t.Errorf("offer --explain no longer answers the edge's JSON: exit %d\n%s", code, edge)
	}

	code, inspect, stderr := runCLI(nil, "inspect", "--catalog", catalog, "--now", explainAt, "--hwid", `PCI\VEN_8086&DEV_15F3&SUBSYS_0A5417AA&REV_03`)
	if code != 0 {
		t.Fatalf("inspect --hwid: exit %d: %s", code, stderr)
	}
	golden(t, "inspect-hwid.txt", inspect)
	for _, want := range []string{"added; cancelled", "added; paused (stages at 100%), blocked by 41235678 where it matches"} {
		if !strings.Contains(inspect, want) {
			t.Errorf("inspect --hwid lacks %q:\n%s", want, inspect)
		}
	}
	if strings.Contains(inspect, "added (expanded)  ") {
		t.Errorf("inspect shows a bare state for a row whose label is not fully live:\n%s", inspect)
	}
}

func TestOfferFormatMisuse(t *testing.T) {
	if code, _, stderr := runCLI(nil, "offer", "--catalog", t.TempDir(), "--format", "yaml"); code != exitUsage || !strings.Contains(stderr, "want json, table or explain") {
		t.Errorf("offer --format yaml: exit %d, %s", code, stderr)
	}
}
