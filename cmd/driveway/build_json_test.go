package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/internal/testclock"
)

// TestBuildJSON: build --json prints the report document on stdout, for a release built, a
// tree with errors and a failure before any report; the summary's label counts add up.
func TestBuildJSON(t *testing.T) {
	work, tree, catalog, key := liveExample(t)
	type report struct {
		OK                                 bool
		Sequence                           uint64
		Labels, LabelsBuilt, LabelsSkipped int
		Errors                             int
		Problems                           []map[string]any
		Error                              string
	}
	decode := func(what, stdout string) report {
		t.Helper()
		var r report
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("%s: stdout is not one JSON document: %v\n%s", what, err, stdout)
		}
		return r
	}
	later := testclock.Now().Add(time.Minute).Format(time.RFC3339)
	code, stdout, stderr := runCLI(nil, "build", "--labels", tree, "--out", catalog, "--key", key+".key", "--now", later, "--json")
	if r := decode("a build", stdout); code != exitOK || !r.OK || r.Sequence != 2 || r.LabelsBuilt == 0 || r.Labels != r.LabelsBuilt+r.LabelsSkipped {
		t.Errorf("build --json: exit %d, %+v; stderr %s", code, r, stderr)
	}
	if strings.Contains(stderr, "release 2 of") {
		t.Errorf("build --json also printed the summary: %s", stderr)
	}
	// A tree with an error: the report says so, with its problems; stderr has the problem lines.
	bad := filepath.Join(work, "bad")
	if err := copyFS(examplesFS(), "contoso", bad); err != nil {
		t.Fatal(err)
	}
	file := firstShippingLabel(t, bad)
	if err := os.WriteFile(file, []byte(`{"not": "a label"`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(nil, "build", "--labels", bad, "--out", filepath.Join(work, "out2"), "--key", key+".key", "--now", later, "--json")
	if r := decode("an invalid tree", stdout); code != exitFailure || r.OK || r.Errors == 0 || len(r.Problems) != r.Errors || !strings.Contains(stderr, "nothing was written") {
		t.Errorf("build --json of an invalid tree: exit %d, %+v; stderr %s", code, r, stderr)
	}
	// A failure before any report (the key is missing): {"ok": false, "error": …}.
	code, stdout, _ = runCLI(nil, "build", "--labels", tree, "--out", catalog, "--key", filepath.Join(work, "nokey.key"), "--now", later, "--json")
	if r := decode("a missing key", stdout); code != exitFailure || r.OK || !strings.Contains(r.Error, "nokey.key") {
		t.Errorf("build --json without its key: exit %d, %+v", code, r)
	}
	// The human summary's counts add up.
	code, _, stderr = runCLI(nil, "build", "--labels", tree, "--out", filepath.Join(work, "out3"), "--key", key+".key", "--now", later)
	if code != exitOK || !strings.Contains(stderr, " labels: ") || !strings.Contains(stderr, " built, ") || !strings.Contains(stderr, "left out as invalid") {
		t.Errorf("build summary: exit %d, %s", code, stderr)
	}
}

// TestBuildProgressLines: with stderr a file (a CI log), build writes each phase as a line.
func TestBuildProgressLines(t *testing.T) {
	work, tree, catalog, key := liveExample(t)
	f, err := os.Create(filepath.Join(work, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	later := testclock.Now().Add(time.Minute).Format(time.RFC3339)
	code := runAt(testclock.Now, []string{"build", "--labels", tree, "--out", catalog, "--key", key + ".key", "--now", later}, strings.NewReader(""), os.Stdout, f)
	b, _ := os.ReadFile(f.Name())
	if code != exitOK {
		t.Fatalf("build: exit %d: %s", code, b)
	}
	var phases []string
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "driveway build: "); ok {
			phases = append(phases, p)
		}
	}
	want := []string{"load", "validate", "compile", "compare"}
	if len(phases) < len(want) || strings.Join(phases[:len(want)], " ") != strings.Join(want, " ") {
		t.Errorf("progress lines %q; want them to start %q", phases, want)
	}
	if strings.Contains(string(b), "\r") {
		t.Errorf("a progress bar drawn into a file: %q", b)
	}
}

// firstShippingLabel is the path of a shipping label file of a label tree.
func firstShippingLabel(t *testing.T, tree string) string {
	t.Helper()
	var found string
	filepath.WalkDir(tree, func(path string, d os.DirEntry, err error) error {
		if err == nil && found == "" && !d.IsDir() && filepath.Base(filepath.Dir(path)) == "shippingLabels" {
			found = path
		}
		return nil
	})
	if found == "" {
		t.Fatal("no shipping label in " + tree)
	}
	return found
}

// TestDashIsStdio: "-" names stdout for build --report and stdin for rollout step --measures,
// not a file called "-".
func TestDashIsStdio(t *testing.T) {
	work, tree, _, key := liveExample(t)
	t.Chdir(work)
	code, stdout, stderr := runCLI(nil, "build", "--labels", tree, "--out", filepath.Join(work, "out-dash"), "--key", key+".key", "--now", testNow(), "--quiet", "--report", "-")
	var r struct{ OK bool }
	if code != exitOK || json.Unmarshal([]byte(stdout), &r) != nil || !r.OK {
		t.Errorf("build --report -: exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(work, "-")); err == nil {
		t.Error("build --report - wrote a file named -")
	}
	code, _, stderr = runCLI([]byte("not measures"), "rollout", "step", "--labels", tree, "--measures", "-", "--out", filepath.Join(work, "out-dash"), "--key", key+".key", "--now", testNow())
	if code == exitOK || strings.Contains(stderr, "no such file") {
		t.Errorf("rollout step --measures - with garbage on stdin: exit %d, %s; want it read stdin and refuse it", code, stderr)
	}
}
