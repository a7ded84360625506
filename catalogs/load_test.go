package catalogs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// TestLoadNotATree: a directory without products/ is not a label tree (a typo'd --labels, an
// empty export), and Load says so, naming the subdirectory that is one; it never returns an
// empty tree for it, which a build would publish as a release without labels.
func TestLoadNotATree(t *testing.T) {
	parent := t.TempDir()
	tree := filepath.Join(parent, "contoso")
	for _, p := range []string{"products/1001/product.json", "catalog.json"} {
		if err := os.MkdirAll(filepath.Join(tree, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, p), []byte(`{"id": 1001}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(tree, "catalog.json"), []byte(`{"name": "contoso"}`), 0o644)
	os.MkdirAll(filepath.Join(parent, "notes"), 0o755) // a subdirectory that is no tree
	os.WriteFile(filepath.Join(parent, "README"), []byte("x"), 0o644)
	twoTrees := t.TempDir()
	for _, sub := range []string{"b", "a", "c"} {
		os.MkdirAll(filepath.Join(twoTrees, sub, "products"), 0o755)
	}
	empty := t.TempDir()
	emptyProducts := t.TempDir()
	os.MkdirAll(filepath.Join(emptyProducts, "products"), 0o755)

	for _, c := range []struct{ dir, want string }{
		{parent, fmt.Sprintf("catalogs: %s has no products/ directory, so it is not a label tree; did you mean %s?", parent, tree)},
		{filepath.Join(tree, "products"), fmt.Sprintf("catalogs: %s has no products/ directory, so it is not a label tree; did you mean %s?",
			filepath.Join(tree, "products"), tree)},
		{twoTrees, fmt.Sprintf("catalogs: %s has no products/ directory, so it is not a label tree; did you mean %s, %s or %s?",
			twoTrees, filepath.Join(twoTrees, "a"), filepath.Join(twoTrees, "b"), filepath.Join(twoTrees, "c"))},
		{empty, fmt.Sprintf("catalogs: %s has no products/ directory, so it is not a label tree", empty)},
	} {
		got, probs, err := Load(c.dir, nil)
		if err == nil || err.Error() != c.want {
			n := -1
			if got != nil {
				n = len(got.Labels())
			}
			t.Errorf("Load(%s): tree of %d labels, %d problems, error %v\nwant error %s", c.dir, n, len(probs), err, c.want)
		}
		if !errors.Is(err, ErrNotATree) || !errors.Is(CheckTree(c.dir), ErrNotATree) {
			t.Errorf("Load(%s): %v is not ErrNotATree", c.dir, err)
		}
	}

	// products/ alone, empty, is a tree (of no labels): the build's guards decide about it.
	got, probs, err := Load(emptyProducts, nil)
	if err != nil || len(got.Labels()) != 0 || len(probs) != 0 {
		t.Errorf("an empty products/: %v, %d problems", err, len(probs))
	}
	// The tree itself loads.
	if _, _, err := Load(tree, nil); err != nil || CheckTree(tree) != nil {
		t.Errorf("Load(%s): %v", tree, err)
	}
	// A file where products/ should be is no tree either, and not a missing directory.
	notDir := t.TempDir()
	os.WriteFile(filepath.Join(notDir, "products"), nil, 0o644)
	if _, _, err := Load(notDir, nil); err == nil || err.Error() != "catalogs: "+filepath.Join(notDir, "products")+" is not a directory" {
		t.Errorf("products/ a file: %v", err)
	}

	// LoadFS too: a file system without products/, with and without a tree below it.
	fsys := fstest.MapFS{"contoso/products/1001/product.json": {Data: []byte(`{"id": 1001}`)}, "README": {Data: []byte("x")}}
	if _, _, err := LoadFS(fsys, nil); err == nil || err.Error() != "catalogs: the tree has no products/ directory, so it is not a label tree; did you mean contoso?" {
		t.Errorf("LoadFS without products/: %v", err)
	}
	if _, _, err := LoadFS(fstest.MapFS{}, nil); err == nil || err.Error() != "catalogs: the tree has no products/ directory, so it is not a label tree" {
		t.Errorf("LoadFS of nothing: %v", err)
	}
}

// TestLoadProgress: Progress is called once per product directory, counting up to the number
// of them, with no two calls at once.
func TestLoadProgress(t *testing.T) {
	fsys := fstest.MapFS{}
	const products = 37
	for i := range products {
		fsys[fmt.Sprintf("products/%d/product.json", 1000+i)] = &fstest.MapFile{Data: []byte(`{}`)}
	}
	var calls, last, inside int
	var overlap bool
	_, _, err := LoadFS(fsys, &LoadOptions{Workers: 4, Progress: func(done, total int) {
		inside++
		if inside > 1 {
			overlap = true
		}
		calls++
		if done != last+1 || total != products {
			t.Errorf("progress %d/%d after %d", done, total, last)
		}
		last = done
		inside--
	}})
	if err != nil {
		t.Fatal(err)
	}
	if calls != products || last != products || overlap {
		t.Errorf("%d calls, last %d, overlapping %v; want %d calls up to %d, none at once", calls, last, overlap, products, products)
	}
}
