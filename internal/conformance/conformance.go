// Package conformance reads the conformance scenarios for driveway's tests and writes a
// scenario's labels as a label tree.
//
// The scenarios are the files of testdata/conformance/scenarios at the root of the module, a
// copy of shared/conformance kept in sync with it. Each file is one case of the product spec,
// in the format testdata/conformance/README.md describes:
//
//	{ "name", "about", "now",
//	  "labels":   { "<path in the LABELS tree>": <JSON document>, ... },
//	  "build":    { "ok", "flags"?, "codes"? },
//	  "requests": [ { "name", "now"?, "request": <offer request>,
//	                  "offers": [ { "instanceId", "kind", "labelId" }, ... ] } ] }
//
// The tests of catalogs (validation), serve (the edge over HTTP), client and the command line
// (build and offer as run.py runs them) load them through this package, so that the
// scenario type, its loader and the tree writer exist once.
//
// Only tests import this package. It imports no package of the module: the tests of
// catalogs, which everything else imports, use it too.
package conformance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Scenario is one conformance scenario.
type Scenario struct {
	Name  string `json:"name"`
	About string `json:"about"`
	// Now is the scenario's clock (RFC 3339): the build's --now, and each request's unless
	// the request has its own.
	Now string `json:"now"`
	// Labels maps a slash-separated path in the label tree to the file's JSON document.
	Labels   map[string]json.RawMessage `json:"labels"`
	Build    Build                      `json:"build"`
	Requests []Request                  `json:"requests"`
}

// Build is what a scenario's build must do: succeed (OK) or fail, with the flags it is run
// with, reporting exactly the L-codes of Codes when Codes is given.
type Build struct {
	OK    bool     `json:"ok"`
	Flags []string `json:"flags"`
	Codes []string `json:"codes"`
}

// Request is one offer request of a scenario and the offers it must be answered with, in any
// order.
type Request struct {
	Name    string          `json:"name"`
	Now     string          `json:"now"` // "": the scenario's Now
	Request json.RawMessage `json:"request"`
	Offers  []Offer         `json:"offers"`
}

// Offer is what a scenario compares of an offer.
type Offer struct {
	InstanceID string `json:"instanceId"`
	Kind       string `json:"kind"`
	LabelID    string `json:"labelId"`
}

// Dir returns the directory of the scenarios, found from the working directory (a test's is
// its package's) by going up to the module's go.mod.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata", "conformance", "scenarios")
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("conformance: no go.mod above the working directory; run the tests inside the module")
		}
		dir = up
	}
}

// Load reads every scenario, keyed by its file name ("01-forward-and-floor.json"). A
// scenario that cannot be read or decoded, or finding none, fails the test.
func Load(t testing.TB) map[string]Scenario {
	t.Helper()
	dir := Dir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		t.Fatalf("no scenarios in %s", dir)
	}
	out := map[string]Scenario{}
	for _, f := range files {
		out[filepath.Base(f)] = read(t, f)
	}
	return out
}

// LoadOne reads the scenario of one file name ("09-automatic-vs-optional.json").
func LoadOne(t testing.TB, name string) Scenario {
	t.Helper()
	return read(t, filepath.Join(Dir(t), name))
}

func read(t testing.TB, file string) Scenario {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var sc Scenario
	if err := json.Unmarshal(b, &sc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return sc
}

// WriteTree writes labels (a scenario's Labels) as a label tree in dir, creating dir and the
// directories of the files.
func WriteTree(t testing.TB, dir string, labels map[string]json.RawMessage) {
	t.Helper()
	for rel, doc := range labels {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
