package catalogs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/driveway/driveway/internal/conformance"
)

// summarized is what the build does with a tree (build/build.go): every product read,
// validated on its own and turned into its summary, and the rules that span labels run over
// the summaries. It returns the problems, sorted, and Invalid's verdict over the summaries.
func summarized(t testing.TB, fsys fs.FS, vopts *ValidateOptions) (Problems, map[string][]string, bool) {
	t.Helper()
	tree, probs, dirs, err := OpenFS(fsys, &LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		p, ps := tree.ReadProduct(fsys, dir)
		ps = append(ps, tree.ValidateProduct(p, vopts)...)
		b := AppendSummary(nil, p, ps)
		sp, sps, err := ReadSummary(b)
		if err != nil {
			t.Fatalf("products/%s: %v", dir, err)
		}
		if again := AppendSummary(nil, sp, sps); string(again) != string(b) {
			t.Fatalf("products/%s: a summary read back does not encode to the same bytes", dir)
		}
		tree.Products = append(tree.Products, sp)
		probs = append(probs, sps...)
	}
	tree.SortProducts()
	probs = append(probs, tree.CheckReferences()...)
	// As the build does, with the rows dropped once read (the problems are compared with
	// the full tree's, which keeps its rows).
	wopts := ValidateOptions{DropRows: true}
	if vopts != nil {
		wopts = *vopts
		wopts.DropRows = true
	}
	warnings := tree.WarnAcross(&wopts)
	if n := warnings.Errors(); n > 0 {
		t.Fatalf("WarnAcross gave %d errors; the build decides which labels are invalid without it", n)
	}
	for _, l := range tree.Labels() {
		if l.Rows != nil {
			t.Fatalf("%s: WarnAcross with DropRows kept its rows", l)
		}
	}
	probs = append(probs, tree.CheckUniqueIDs()...)
	probs = append(probs, warnings...)
	probs.Sort()
	skip, fatal := tree.Invalid(probs)
	return probs, skip, fatal
}

// checkSummarized fails t unless the summarized tree gives the problems and invalid labels
// of the full one: the rules that span labels read nothing a summary leaves out.
func checkSummarized(t testing.TB, fsys fs.FS, vopts *ValidateOptions) {
	t.Helper()
	tree, probs, err := LoadFS(fsys, &LoadOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	probs = append(probs, tree.Validate(vopts)...)
	probs.Sort()
	skip, fatal := tree.Invalid(probs)
	sprobs, sskip, sfatal := summarized(t, fsys, vopts)
	if a, b := problemLines(probs), problemLines(sprobs); a != b {
		t.Fatalf("summaries give other problems than the full tree:\nfull:\n%s\nsummaries:\n%s", a, b)
	}
	if fatal != sfatal || !reflect.DeepEqual(skip, sskip) {
		t.Fatalf("summaries invalidate %v (fatal %v), the full tree %v (fatal %v)", sskip, sfatal, skip, fatal)
	}
}

func problemLines(ps Problems) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s [%d %s %s %s]\n", p, p.scope.level, p.scope.product, p.scope.submission, p.scope.label)
	}
	return b.String()
}

// TestSummarizedConformance: every conformance scenario's tree gives the same problems from
// summaries as from the full tree (the rule tests check it for each rule's fixture, through
// check, and FuzzLabelTree for arbitrary files).
func TestSummarizedConformance(t *testing.T) {
	for _, name := range slices.Sorted(maps.Keys(conformance.Load(t))) {
		sc := conformance.Load(t)[name]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			conformance.WriteTree(t, dir, sc.Labels)
			checkSummarized(t, os.DirFS(dir), nil)
		})
	}
}

func TestReadSummaryRefusesDamage(t *testing.T) {
	dir := baseFixture().write(t)
	tree, _, dirs, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, ps := tree.ReadProduct(os.DirFS(dir), dirs[0])
	ps = append(ps, tree.ValidateProduct(p, nil)...)
	b := AppendSummary(nil, p, ps)
	if _, _, err := ReadSummary(b); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{nil, b[:3], b[:len(b)-1], append(slices.Clone(b), 0), append([]byte("DWS2"), b[4:]...)} {
		if _, _, err := ReadSummary(bad); !errors.Is(err, ErrBadSummary) {
			t.Errorf("ReadSummary(%d bytes) = %v, want ErrBadSummary", len(bad), err)
		}
	}
}

// FuzzReadSummary: arbitrary bytes never panic ReadSummary, and whatever it accepts encodes
// back to the same bytes.
func FuzzReadSummary(f *testing.F) {
	dir := baseFixture().write(f)
	tree, _, dirs, err := Open(dir, nil)
	if err != nil {
		f.Fatal(err)
	}
	p, ps := tree.ReadProduct(os.DirFS(dir), dirs[0])
	ps = append(ps, tree.ValidateProduct(p, nil)...)
	f.Add(AppendSummary(nil, p, ps))
	f.Add([]byte("DWS1\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ps, err := ReadSummary(b)
		if err != nil {
			return
		}
		// The bytes may differ from b (a string table with unused entries), but what b
		// decodes to has one canonical form: it decodes and encodes to itself.
		canon := AppendSummary(nil, p, ps)
		p2, ps2, err := ReadSummary(canon)
		if err != nil {
			t.Fatalf("an accepted summary does not re-encode: %v", err)
		}
		if again := AppendSummary(nil, p2, ps2); !bytes.Equal(again, canon) {
			t.Fatalf("the canonical form of a summary changes when decoded and encoded again")
		}
	})
}
