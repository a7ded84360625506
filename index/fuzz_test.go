package index

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to the reader: OpenBytes, Check, Get and
// Scan must never panic or hang, and every error they return for a
// damaged shard must wrap ErrCorrupt. Seeds: the golden shards, the base
// of the corruption tests and testdata/*.shard.
func FuzzOpen(f *testing.F) {
	f.Add(tinyRaw)
	f.Add(tinyZstd)
	base, _ := corruptBase(f)
	f.Add(base)
	files, err := filepath.Glob(filepath.Join("testdata", "*.shard"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("f"), []byte("i"), []byte("key00"), []byte("key05"), []byte("absent")}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A small MaxBlock keeps each input cheap; a small budget
		// exercises both the cached and the uncached paths.
		s, err := OpenBytes(data, &Options{MaxBlock: 64 << 10, Cache: NewCacheBudget(1 << 10)})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("OpenBytes: %v; want ErrCorrupt", err)
			}
			return
		}
		defer s.Close()
		checkErr := s.Check()
		if checkErr != nil && !errors.Is(checkErr, ErrCorrupt) {
			t.Fatalf("Check: %v; want nil or ErrCorrupt", checkErr)
		}
		var scanned [][]byte
		scanErr := s.Scan(func(key, value []byte) error {
			if len(scanned) < 8 {
				scanned = append(scanned, slices.Clone(key))
			}
			return nil
		})
		if scanErr != nil && !errors.Is(scanErr, ErrCorrupt) {
			t.Fatalf("Scan: %v; want nil or ErrCorrupt", scanErr)
		}
		if checkErr == nil && scanErr != nil {
			t.Fatalf("Check passed but Scan failed: %v", scanErr)
		}
		for _, k := range append(keys, scanned...) {
			v, ok, err := s.Get(k)
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Get(%q): %v; want nil or ErrCorrupt", k, err)
			}
			if checkErr == nil && err != nil {
				t.Fatalf("Check passed but Get(%q) failed: %v", k, err)
			}
			if checkErr == nil && slices.ContainsFunc(scanned, func(sk []byte) bool { return string(sk) == string(k) }) && !ok {
				t.Fatalf("Check passed but Get(%q) misses a scanned key (value %q)", k, v)
			}
		}
	})
}
