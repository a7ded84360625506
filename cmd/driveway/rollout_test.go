package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/testclock"
	"github.com/driveway/driveway/rollout"
)

// TestRolloutExpedite: `driveway rollout expedite` refuses a label the measures do not show
// healthy (pointing at --force), and with --force moves it to 100% now: the line names who,
// the label file gets the 100% stage, the audit log the decision, and the catalog a
// control-only release.
func TestRolloutExpedite(t *testing.T) {
	work, tree, catalog, key := liveExample(t)
	const label = "1152921504606978202" // in gradual rollout in the example
	file := filepath.Join(tree, "products", "1152921504606847201", "submissions", "1152921504621442202", "shippingLabels", label+".json")
	// At 5% since an hour ago, the publisher's 25% two days ahead (at the tests' clock,
	// whatever the example's dates).
	now := testclock.Now()
	b, err := os.ReadFile(file)
	if err == nil {
		b, err = catalogs.SetDistribution(b, catalogs.Distribution{Rollout: &catalogs.Rollout{Stages: []catalogs.Stage{
			{At: now.Add(-time.Hour), BasisPoints: 500}, {At: now.Add(48 * time.Hour), BasisPoints: 2500}}}})
	}
	if err == nil {
		err = os.WriteFile(file, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	measures := filepath.Join(work, "measures.json")
	if err := os.WriteFile(measures, []byte(`{"generated":"`+testNow()+`","read":{},"labels":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	audit := filepath.Join(work, "audit.ndjson")
	args := []string{"rollout", "expedite", "--labels", tree, "--label", label, "--by", "alice@example.com", "--reason", "the dock fix",
		"--now", testNow(), "--out", catalog, "--key", key + ".key", "--audit", audit}
	if code, _, stderr := runCLI(nil, append(args, "--measures", measures)...); code != 1 || !strings.Contains(stderr, "--force to expedite anyway") {
		t.Fatalf("no data: exit %d, %s; want 1 and the --force hint", code, stderr)
	}
	if code, _, stderr := runCLI(nil, args...); code != 2 || !strings.Contains(stderr, "needs --measures") {
		t.Errorf("neither --measures nor --force: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := runCLI(nil, append(args, "--force")...)
	if code != 0 || !strings.Contains(stdout, label+" expedite 5%") || !strings.Contains(stdout, "-> 100% by alice@example.com: expedited: the dock fix (forced") {
		t.Fatalf("forced: exit %d\n%s\n%s", code, stdout, stderr)
	}
	b, _ = os.ReadFile(file)
	if bytes.Contains(b, []byte(`"percent": 25`)) || !bytes.Contains(b, []byte(`"at": "`+testNow()+`"`)) || !bytes.Contains(b, []byte(`"percent": 100`)) {
		t.Errorf("the label file has no 100%% stage at %s in place of the 25%% one:\n%s", testNow(), b)
	}
	log, _ := os.ReadFile(audit)
	if bytes.Count(log, []byte("\n")) != 1 || !bytes.Contains(log, []byte(`"by":"alice@example.com"`)) || !bytes.Contains(log, []byte(`"action":"expedite"`)) {
		t.Errorf("audit log:\n%s", log)
	}
	if seq, _, err := index.Latest(catalog); err != nil || seq != 2 {
		t.Errorf("the catalog's newest release: %d, %v; want the control-only release 2", seq, err)
	}
}

// TestRolloutLift: an operator lifts the controller's hold of a cohort: the block leaves
// blocks.json, lifts.json records who and why, the audit log has the lift, and a
// control-only release publishes it; a lift without a reason is a usage error.
func TestRolloutLift(t *testing.T) {
	work, tree, catalog, key := liveExample(t)
	const label = "1152921504606978202"
	id := rollout.CohortBlockID(label, "GE", "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814")
	blocks := `[{"id": ` + id + `, "reason": "rollout controller: held cohort GE/8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814 of label ` + label +
		`: kernel crashes 5.00% > 2.00%", "labels": ["` + label + `"], "chids": ["8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814"], "minBuild": 26100}]`
	if err := os.WriteFile(filepath.Join(tree, "blocks.json"), []byte(blocks), 0o644); err != nil {
		t.Fatal(err)
	}
	audit := filepath.Join(work, "audit.ndjson")
	args := []string{"rollout", "lift", "--labels", tree, "--block", id, "--by", "alice@example.com", "--now", testNow()}
	if code, _, stderr := runCLI(nil, args...); code != 2 || !strings.Contains(stderr, "--reason") {
		t.Errorf("no reason: exit %d, %s", code, stderr)
	}
	args = append(args, "--reason", "the OEM's BIOS 1.08 fixes it", "--out", catalog, "--key", key+".key", "--audit", audit)
	code, stdout, stderr := runCLI(nil, args...)
	if code != 0 || !strings.Contains(stdout, label+" lift-cohort "+id+" by alice@example.com: lifted: the OEM's BIOS 1.08 fixes it") {
		t.Fatalf("lift: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(tree, "blocks.json")); bytes.Contains(b, []byte(id)) {
		t.Errorf("blocks.json still holds the block:\n%s", b)
	}
	lifts, err := rollout.LoadLifts(tree)
	if err != nil || len(lifts) != 1 || lifts[0].By != "alice@example.com" || lifts[0].BlockID != id || lifts[0].Release != "GE" {
		t.Errorf("lifts.json: %+v %v", lifts, err)
	}
	if log, _ := os.ReadFile(audit); !bytes.Contains(log, []byte(`"action":"lift-cohort"`)) {
		t.Errorf("audit log:\n%s", log)
	}
	if seq, _, err := index.Latest(catalog); err != nil || seq != 2 {
		t.Errorf("the catalog's newest release: %d, %v; want the control-only release 2", seq, err)
	}
	if code, _, stderr := runCLI(nil, args...); code != 1 || !strings.Contains(stderr, "no block "+id) {
		t.Errorf("lifting it again: exit %d, %s", code, stderr)
	}
}
