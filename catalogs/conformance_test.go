package catalogs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

// scenario is the part of a conformance scenario (testdata/conformance/README.md) that
// concerns validation.
type scenario struct {
	Name   string                     `json:"name"`
	Labels map[string]json.RawMessage `json:"labels"`
	Build  struct {
		OK    bool     `json:"ok"`
		Flags []string `json:"flags"`
		Codes []string `json:"codes"`
	} `json:"build"`
}

// writeTree writes a scenario's labels as a label tree in a new directory.
func writeTree(t *testing.T, labels map[string]json.RawMessage) string {
	t.Helper()
	dir := t.TempDir()
	for rel, doc := range labels {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestConformanceBuild checks every scenario's build expectation against Load+Validate:
// exactly the listed L-codes, and no error when the build must succeed without flags.
func TestConformanceBuild(t *testing.T) {
	files, _ := filepath.Glob("../testdata/conformance/scenarios/*.json")
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata/conformance/scenarios")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var sc scenario
		if err := json.Unmarshal(b, &sc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		t.Run(sc.Name, func(t *testing.T) {
			tree, probs, err := Load(writeTree(t, sc.Labels), nil)
			if err != nil {
				t.Fatal(err)
			}
			probs = append(probs, tree.Validate(nil)...)
			var codes []string
			for _, c := range probs.Codes() {
				if c[0] == 'L' {
					codes = append(codes, c)
				}
			}
			want := append([]string(nil), sc.Build.Codes...)
			sort.Strings(want)
			for _, p := range probs {
				t.Log(p)
			}
			if len(want) == 0 && len(codes) == 0 {
				return
			}
			if !reflect.DeepEqual(codes, want) {
				for _, p := range probs {
					t.Log(p)
				}
				t.Errorf("codes %v, want %v", codes, want)
			}
		})
	}
}
