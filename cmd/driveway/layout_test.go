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
	// forbidden[p] lists what package p (and its subpackages without a row of their own)
	// must not import; an entry forbids that package and its subpackages.
	forbidden := map[string][]string{
		"catalogs": {"index", "signing", "offer", "build", "serve", "bench", "cmd"},
		"signing":  {"catalogs", "index", "offer", "build", "serve", "bench", "cmd", "trust"},
		"trust":    {"catalogs", "index", "offer", "build", "serve", "bench", "cmd", "rollout"},
		"index":    {"catalogs", "offer", "build", "serve", "bench", "cmd", "trust"},
		"offer":    {"build", "serve", "bench", "cmd", "signing"},
		"build":    {"offer", "serve", "bench", "cmd"},
		"serve":    {"build", "bench", "cmd"},
		// bench is split by job, and nothing imports back up: the generators at the bottom
		// (catalogs only); the load generator, the baseline and the plots beside them; the
		// report on top of those (it runs servers and builds as child processes). Only the
		// rollout simulation runs an edge in process.
		"bench":            {"index", "offer", "signing", "build", "serve", "cmd", "trust", "rollout", "bench/load", "bench/baseline", "bench/plot", "bench/report", "bench/rolloutsim"},
		"bench/load":       {"build", "serve", "cmd", "bench/baseline", "bench/report", "bench/rolloutsim"},
		"bench/baseline":   {"build", "serve", "cmd", "bench/load", "bench/report", "bench/rolloutsim"},
		"bench/plot":       {"catalogs", "index", "offer", "signing", "build", "serve", "cmd", "trust", "rollout", "bench"},
		"bench/report":     {"build", "serve", "cmd", "bench/rolloutsim"},
		"bench/rolloutsim": {"cmd", "bench/load", "bench/baseline", "bench/report"},
		"diff":             {"build", "serve", "bench", "cmd", "rollout", "signing"},
		"statement":        {"index", "offer", "build", "serve", "bench", "cmd", "trust", "rollout"},
		"client":           {"index", "offer", "build", "serve", "bench", "cmd", "trust", "rollout"},
		"releaselog":       {"catalogs", "index", "offer", "build", "serve", "bench", "cmd", "trust", "rollout", "client"},
		"rollout":          {"index", "offer", "build", "serve", "bench", "cmd", "signing", "trust", "client", "releaselog", "diff", "statement"},
		// The internal packages import no package of the module: the tests' own (testclock,
		// conformance), imported by the tests of the packages at the bottom (catalogs), and
		// atomicfile, which every package that replaces files uses.
		"internal": {"catalogs", "index", "offer", "build", "serve", "bench", "cmd", "signing", "trust", "rollout", "diff", "statement", "client", "releaselog", "scripts"},
		"scripts":  {"cmd"},
		"cmd":      {},
	}
	within := func(pkg, p string) bool { return pkg == p || strings.HasPrefix(pkg, p+"/") }
	// rowOf is the key of pkg's row: the longest key that is pkg or one of its parents.
	rowOf := func(pkg string) string {
		row := ""
		for k := range forbidden {
			if within(pkg, k) && len(k) > len(row) {
				row = k
			}
		}
		return row
	}
	checked := 0
	used := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		row := rowOf(pkg)
		used[row] = true
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			checked++
			target := strings.TrimPrefix(imp, mod)
			for _, bad := range forbidden[row] {
				if within(target, bad) {
					t.Errorf("%s imports %s", pkg, target)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no project imports seen; the check checked nothing")
	}
	for k := range forbidden {
		if !used[k] {
			t.Errorf("the row %q names no package of the module: a typo, or a package that moved", k)
		}
	}
}
