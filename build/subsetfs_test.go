package build

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/driveway/driveway/signing"
)

// TestSubsetFS: a subset shows the files added, their directories and products/, and
// nothing else of the tree; it is a valid fs.FS (fstest.TestFS).
func TestSubsetFS(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"catalog.json", "blocks.json", "products/1/product.json", "products/1/submissions/2/submission.json",
		"products/1/submissions/2/shippingLabels/3.json", "products/1/submissions/2/shippingLabels/4.json", "products/5/product.json"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := newSubsetFS(os.DirFS(dir))
	for _, name := range []string{"catalog.json", "audiences.json", "products/1/submissions/2/shippingLabels/3.json"} {
		if err := s.add(name); err != nil {
			t.Fatal(err)
		}
	}
	if err := fstest.TestFS(s, "catalog.json", "products/1/submissions/2/shippingLabels/3.json"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"blocks.json", "audiences.json", "products/5", "products/1/product.json", "products/1/submissions/2/shippingLabels/4.json"} {
		if _, err := fs.Stat(s, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want fs.ErrNotExist", name, err)
		}
	}
	if err := s.add("products/1"); err == nil {
		t.Error("a directory was added as a file")
	}
}

// TestControlCancelled: Control stops between the named labels when its context is done,
// and publishes nothing.
func TestControlCancelled(t *testing.T) {
	labels, out := t.TempDir(), t.TempDir()
	writeTree(t, labels, 3, nil)
	s, _ := testKey(t)
	mustBuild(t, labels, out, s, testNow)
	before := dirFiles(t, out)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Control(ctx, ControlOptions{Labels: labels, Out: out, Signers: []*signing.Signer{s}, Now: testNow.Add(time.Hour), LabelIDs: []string{"300001"}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled control-only release: %v, want context.Canceled", err)
	}
	if after := dirFiles(t, out); len(after) != len(before) {
		t.Errorf("files %d -> %d", len(before), len(after))
	}
}
