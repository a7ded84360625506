package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// inspectAt is the clock of the inspect golden test: the example's own, in its NIC's
// rollout.
var inspectAt = time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)

// releaseID is a release id in inspect's output: it hashes the envelope, whose signature is
// by the test's new key.
var releaseID = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// TestInspectGolden: inspect's views of the bundled example catalog built at a fixed clock
// (the release, one label) against testdata/inspect.golden; -update rewrites it.
func TestInspectGolden(t *testing.T) {
	work := t.TempDir()
	labels := filepath.Join(work, "labels")
	if err := copyFS(examplesFS(), "contoso", labels); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return inspectAt }
	key := filepath.Join(work, "k")
	if code, _, stderr := runCLIAt(clock, nil, "keygen", "--unencrypted", "--out", key); code != 0 {
		t.Fatal(stderr)
	}
	catalog := filepath.Join(work, "catalog")
	if code, _, stderr := runCLIAt(clock, nil, "build", "--labels", labels, "--out", catalog, "--key", key+".key", "--quiet"); code != 0 {
		t.Fatal(stderr)
	}
	var got string
	for _, args := range []string{
		"--catalog CATALOG --key KEY.pub",
		"--catalog CATALOG --label 1152921504606978202",
	} {
		argv := append([]string{"inspect"}, strings.Fields(strings.NewReplacer("CATALOG", catalog, "KEY", key).Replace(args))...)
		code, stdout, stderr := runCLIAt(clock, nil, argv...)
		if code != 0 {
			t.Fatalf("inspect %s: exit %d: %s", args, code, stderr)
		}
		got += "$ driveway inspect " + args + "\n" + releaseID.ReplaceAllString(stdout, "sha256:RELEASE-ID") + "\n"
	}
	golden(t, "inspect.golden", got)
}
