package atomicfile

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "state.json")
	if err := Write(path, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("two, longer"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "two, longer" {
		t.Fatalf("read %q, %v; want the second content", b, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v; want 0600", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 {
		t.Errorf("the directory holds %v (%v); want the file alone, no temporary left", entries, err)
	}
}

// TestWriteFails: a path that cannot be written (its directory is a file) fails with the
// path in the error, and leaves the old file as it was.
func TestWriteFails(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := Write(file, []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(file, "x"), []byte("no"), 0o644); err == nil {
		t.Error("writing below a file: no error")
	}
	// Renaming over a directory fails: the directory stays, and no temporary is left.
	sub := filepath.Join(dir, "d")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(sub, []byte("no"), 0o644); err == nil {
		t.Error("writing over a directory: no error")
	}
	if b, _ := os.ReadFile(file); string(b) != "kept" {
		t.Errorf("the old file reads %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("the directory holds %v; want f and d only", entries)
	}
	// A directory that cannot be fsynced is an error where directories can be (the rename
	// would not be durable); Windows has nothing to do.
	if err := SyncDir(filepath.Join(dir, "missing")); (err == nil) != (runtime.GOOS == "windows") {
		t.Errorf("SyncDir of a missing directory: %v", err)
	}
}
