package catalogs

import (
	"reflect"
	"sort"
	"testing"

	"github.com/driveway/driveway/internal/conformance"
)

// TestConformanceBuild checks every scenario's build expectation against Load+Validate:
// exactly the listed L-codes, and no error when the build must succeed without flags.
func TestConformanceBuild(t *testing.T) {
	for _, sc := range conformance.Load(t) {
		t.Run(sc.Name, func(t *testing.T) {
			dir := t.TempDir()
			conformance.WriteTree(t, dir, sc.Labels)
			tree, probs, err := Load(dir, nil)
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
