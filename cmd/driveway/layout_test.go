package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportGraph enforces the package layering of docs/architecture.md: the domain and the
// formats at the bottom, build and serve never importing each other, the edge never
// importing the build, and nothing importing cmd.
func TestImportGraph(t *testing.T) {
	const mod = "github.com/driveway/driveway/"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"...").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	// forbidden[p] lists what package p (and its subpackages) must not import.
	forbidden := map[string][]string{
		"catalogs":   {"index", "signing", "offer", "build", "serve", "bench", "cmd"},
		"signing":    {"catalogs", "index", "offer", "build", "serve", "bench", "cmd", "trust"},
		"trust":      {"catalogs", "index", "offer", "build", "serve", "bench", "cmd", "rollout"},
		"index":      {"catalogs", "offer", "build", "serve", "bench", "cmd", "trust"},
		"offer":      {"build", "serve", "bench", "cmd", "signing"},
		"build":      {"offer", "serve", "bench", "cmd"},
		"serve":      {"build", "bench", "cmd"},
		"bench":      {"serve", "cmd"},
		"diff":       {"build", "serve", "bench", "cmd", "rollout", "signing"},
		"statement":  {"index", "offer", "build", "serve", "bench", "cmd", "trust", "rollout"},
		"client":     {"index", "offer", "build", "serve", "bench", "cmd", "trust", "rollout"},
		"releaselog": {"catalogs", "index", "offer", "build", "serve", "bench", "cmd", "trust", "rollout", "client"},
		"rollout":    {"index", "offer", "build", "serve", "bench", "cmd", "signing", "trust", "client", "releaselog", "diff", "statement"},
		// The tests' own packages (testclock, conformance) import no package of the module:
		// the tests of the packages at the bottom (catalogs) import them.
		"internal": {"catalogs", "index", "offer", "build", "serve", "bench", "cmd", "signing", "trust", "rollout", "diff", "statement", "client", "releaselog", "scripts"},
		"scripts":  {"cmd"},
		"cmd":      {},
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		top, _, _ := strings.Cut(pkg, "/")
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			checked++
			target, _, _ := strings.Cut(strings.TrimPrefix(imp, mod), "/")
			for _, bad := range forbidden[top] {
				if target == bad {
					t.Errorf("%s imports %s", pkg, strings.TrimPrefix(imp, mod))
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no project imports seen; the check checked nothing")
	}
}
