package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateWarningsAndStrict: a warning of the static analysis (here W006, a block naming
// a label the tree does not have) is printed and counted, leaves validate's exit status 0, and
// fails it with --strict; the bundled example itself is clean.
func TestValidateWarningsAndStrict(t *testing.T) {
	labels := filepath.Join(t.TempDir(), "labels")
	if err := copyFS(examplesFS(), "contoso", labels); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := runCLI(nil, "validate", "--labels", labels, "--strict", "--now", "2026-12-02T00:00:00Z"); code != 0 || out != "" {
		t.Fatalf("the example: exit %d\n%s%s", code, out, stderr)
	}
	blocks := `[{"id": "41235678", "reason": "Link drops after resume", "labels": ["1152921504606978299"]}]`
	if err := os.WriteFile(filepath.Join(labels, "blocks.json"), []byte(blocks), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(nil, "validate", "--labels", labels, "--now", "2026-12-02T00:00:00Z")
	if code != 0 || !strings.HasPrefix(out, "W006 blocks.json#/0/labels: block 41235678 matches nothing") || !strings.Contains(stderr, "0 errors, 1 warning") {
		t.Errorf("a block naming no label: exit %d\n%s%s", code, out, stderr)
	}
	if code, _, _ := runCLI(nil, "validate", "--labels", labels, "--now", "2026-12-02T00:00:00Z", "--strict"); code != exitFailure {
		t.Errorf("--strict with a warning: exit %d, want %d", code, exitFailure)
	}
	if code, out, _ := runCLI(nil, "validate", "--labels", labels, "--json"); code != 0 || !strings.Contains(out, `"code": "W006"`) || !strings.Contains(out, `"severity": "warning"`) {
		t.Errorf("--json: exit %d\n%s", code, out)
	}
	if code, _, stderr := runCLI(nil, "validate", "--labels", labels, "--now", "yesterday"); code != exitUsage {
		t.Errorf("--now yesterday: exit %d (%s), want %d", code, stderr, exitUsage)
	}
}
