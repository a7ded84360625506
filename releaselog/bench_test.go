package releaselog

import (
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/driveway/driveway/internal/testclock"
)

// The costs of a log of 1,000 releases (a release a day for almost three years):
// go test ./releaselog -run '^$' -bench . -benchtime 20x

const benchEntries = 1000

func benchLog(b *testing.B) (string, *Key, *Log) {
	b.Helper()
	dir := b.TempDir()
	k := releaseKey(b)
	key, v := logKey(b)
	appendN(b, dir, k, key, v, 1, benchEntries, 0)
	l, err := Read(DirSource(dir), v)
	if err != nil {
		b.Fatal(err)
	}
	return dir, key, l
}

// BenchmarkCheckRelease is the edge's check at each load: inclusion of the newest release
// and consistency with a checkpoint 10 entries older, from the files.
func BenchmarkCheckRelease(b *testing.B) {
	dir, key, l := benchLog(b)
	last := l.Entries()[benchEntries-1]
	prev := Checkpoint{Catalog: catalog, Size: benchEntries - 10}
	var err error
	if prev.Hash, err = treeHashAt(l, prev.Size); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := CheckRelease(DirSource(dir), key.Verifier, catalog, last.Sequence, last.Statement, &prev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead is a full audit (driveway log verify without statements).
func BenchmarkRead(b *testing.B) {
	dir, key, _ := benchLog(b)
	b.ResetTimer()
	for range b.N {
		if _, err := Read(DirSource(dir), key.Verifier); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend is what a build adds: the whole log read and checked, one entry appended.
func BenchmarkAppend(b *testing.B) {
	dir, key, _ := benchLog(b)
	k := releaseKey(b)
	b.ResetTimer()
	for i := range b.N {
		seq := uint64(benchEntries + 1 + i)
		if _, err := Append(dir, &Entry{Catalog: catalog, Sequence: seq, Statement: stmt(b, k, catalog, seq, testclock.Now(), 0)}, key); err != nil {
			b.Fatal(err)
		}
	}
}

// treeHashAt is the tree hash of the log's first n entries.
func treeHashAt(l *Log, n int64) (tlog.Hash, error) { return tlog.TreeHash(n, l) }
