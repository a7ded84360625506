package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/rollout"
)

// TestRolloutReport: `rollout report` on the bundled example's NIC label in rollout, with a
// spool of reports: the HTML page to a file, the JSON to stdout, and the usage errors.
// The example is dated, so the test runs at a fixed time on it (as the explain tests do).
func TestRolloutReport(t *testing.T) {
	const label = "1152921504606978202"
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	work := t.TempDir()
	labels, spool := filepath.Join(work, "labels"), filepath.Join(work, "spool")
	if err := copyFS(examplesFS(), "contoso", labels); err != nil {
		t.Fatal(err)
	}
	sp, err := rollout.OpenSpool(rollout.SpoolOptions{Dir: spool, Secret: []byte(strings.Repeat("k", 32)), Clock: func() time.Time { return at },
		MinFreeBytes: -1, MinFreePercent: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		r := rollout.Report{DeviceID: fmt.Sprintf("pc-%d", i), LabelID: label, InstanceID: "x", Result: "installed", Time: at.Add(-time.Duration(i+1) * time.Hour), Build: 22631}
		if i%10 == 0 {
			r.Result, r.ErrorCode = "rolled-back", "0x80070002"
		}
		c, err := sp.Append([]rollout.Report{r}, r.Time)
		if err == nil {
			err = c.Wait()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	now := at.Format(time.RFC3339)
	page := filepath.Join(work, "flight.html")
	code, stdout, stderr := runCLI(nil, "rollout", "report", "--label", label, "--labels", labels, "--reports", spool, "--out", page, "--json", "--now", now)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "40 reports from 40 machines") || !strings.Contains(stderr, "4 devices rolled back") {
		t.Errorf("stderr: %s", stderr)
	}
	var r struct {
		Reports int `json:"reports"`
		Label   struct {
			State string `json:"state"`
		} `json:"label"`
		ErrorCodes []struct {
			Code     string `json:"code"`
			Machines int    `json:"machines"`
		} `json:"errorCodes"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if r.Reports != 40 || len(r.ErrorCodes) != 1 || r.ErrorCodes[0].Code != "0x80070002" || r.ErrorCodes[0].Machines != 4 || !strings.HasPrefix(r.Label.State, "rollout at") {
		t.Errorf("--json: %+v", r)
	}
	b, err := os.ReadFile(page)
	if err != nil || !strings.Contains(string(b), `data-plot="timeline"`) || !strings.Contains(string(b), "Flight report: label "+label) {
		t.Errorf("the page: %v\n%.300s", err, b)
	}
	code, stdout, _ = runCLI(nil, "rollout", "report", "--label", label, "--labels", labels, "--reports", spool, "--out", "-", "--now", now)
	if code != exitOK || !strings.HasPrefix(stdout, "<!DOCTYPE html>") {
		t.Errorf("--out -: exit %d, %.100s", code, stdout)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--labels", labels, "--reports", spool, "--out", page}, exitUsage, "needs --label"},
		{[]string{"--label", label, "--labels", labels, "--reports", spool}, exitUsage, "needs --out"},
		{[]string{"--label", label, "--labels", labels, "--reports", spool, "--out", "-", "--json"}, exitUsage, "choose one"},
		{[]string{"--label", "9", "--labels", labels, "--reports", spool, "--json"}, exitFailure, "label 9 is not in the tree"},
		{[]string{"--label", label, "--labels", labels, "--reports", filepath.Join(work, "none"), "--json"}, exitFailure, "is not a directory"},
		{[]string{"--label", label, "--labels", labels, "--reports", spool, "--json", "--audit", filepath.Join(work, "none")}, exitFailure, "audit log"},
	} {
		code, _, stderr := runCLI(nil, append([]string{"rollout", "report", "--now", now}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %s; want %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}
