package releaselog

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/driveway/driveway/internal/atomicfile"
	"github.com/driveway/driveway/internal/testclock"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/statement"
)

var update = flag.Bool("update", false, "rewrite testdata/ from the test's entries")

const catalog = "contoso-example"

func logKey(t testing.TB) (*Key, note.Verifier) {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, "contoso-example-log")
	if err != nil {
		t.Fatal(err)
	}
	s, v, err := ParseSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{s, v}, v
}

func releaseKey(t testing.TB) *signing.Signer {
	t.Helper()
	s, err := signing.LoadSigner(context.Background(), "../signing/testdata/openssl-ed25519.key", nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stmt signs a statement of release seq created at at; salt changes its tree hash (another
// release under the same sequence).
func stmt(t testing.TB, k *signing.Signer, cat string, seq uint64, at time.Time, salt byte) []byte {
	t.Helper()
	st := &statement.Statement{Catalog: cat, Sequence: seq, Created: at, Expires: at.Add(7 * 24 * time.Hour), Records: int64(seq)}
	st.TreeHash[0], st.TreeHash[1] = byte(seq), salt
	env, err := statement.Sign(st, k)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func appendN(t testing.TB, dir string, k *signing.Signer, s *Key, v note.Verifier, from, to uint64, salt byte) []Checkpoint {
	t.Helper()
	var cps []Checkpoint
	for seq := from; seq <= to; seq++ {
		cp, err := Append(dir, &Entry{Catalog: catalog, Sequence: seq, Statement: stmt(t, k, catalog, seq, testclock.Now(), salt)}, s)
		if err != nil {
			t.Fatalf("append %d: %v", seq, err)
		}
		cps = append(cps, cp)
	}
	return cps
}

func TestAppendReadProve(t *testing.T) {
	dir := t.TempDir()
	k := releaseKey(t)
	s, v := logKey(t)
	cps := appendN(t, dir, k, s, v, 1, 260, 0) // past one full tile of 256
	l, err := Read(DirSource(dir), v)
	if err != nil {
		t.Fatal(err)
	}
	if l.Checkpoint != cps[len(cps)-1] || l.Checkpoint.Size != 260 || len(l.Entries()) != 260 {
		t.Fatalf("read %s, %d entries; want %s", l.Checkpoint, len(l.Entries()), cps[len(cps)-1])
	}
	if err := l.CheckStatements(1, k.Verifier()); err != nil {
		t.Fatal(err)
	}
	for i, old := range cps { // every older checkpoint is a prefix, provable from the files
		if err := l.Extends(old); err != nil {
			t.Fatalf("checkpoint %d: %v", i+1, err)
		}
	}
	for _, seq := range []uint64{1, 2, 255, 256, 257, 259, 260} {
		e := l.Entries()[seq-1]
		for _, prev := range []*Checkpoint{nil, &cps[0], &cps[seq-1], &cps[255], &cps[259]} {
			cp, err := CheckRelease(DirSource(dir), v, catalog, seq, e.Statement, prev)
			if err != nil {
				t.Fatalf("release %d, prev %v: %v", seq, prev, err)
			}
			if cp != l.Checkpoint {
				t.Fatalf("CheckRelease returned %s, want %s", cp, l.Checkpoint)
			}
		}
	}
	// Superseded partial entry tiles are gone: the full tile 0 and its last partial, and the
	// current and previous partials of tile 1.
	var data []string
	filepath.WalkDir(filepath.Join(dir, Dir, "tile", "8", "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(filepath.Join(dir, Dir), p)
			data = append(data, filepath.ToSlash(rel))
		}
		return nil
	})
	if want := "tile/8/data/000 tile/8/data/000.p/255 tile/8/data/001.p/3 tile/8/data/001.p/4"; strings.Join(data, " ") != want {
		t.Errorf("entry tiles %q, want %q", data, want)
	}
	// The tree is tlog's: the checkpoint's hash is tlog.TreeHash of the record hashes.
	var leaves []tlog.Hash
	for _, text := range l.texts {
		leaves = append(leaves, tlog.RecordHash(text))
	}
	tr, err := statement.NewTree(leaves)
	if err != nil || tr.Root() != l.Checkpoint.Hash {
		t.Fatalf("statement.NewTree of the entries: %v, %v; want %s", tr.Root(), err, l.Checkpoint.Hash)
	}
}

// A split view: two directories of the same catalog, both logs signed by the log key, that
// share three releases and then differ. Whoever saw one checkpoint refuses the other.
func TestSplitView(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	k := releaseKey(t)
	s, v := logKey(t)
	appendN(t, a, k, s, v, 1, 3, 0)
	appendN(t, b, k, s, v, 1, 3, 0)
	cpA := appendN(t, a, k, s, v, 4, 5, 'a')
	cpB := appendN(t, b, k, s, v, 4, 6, 'b')
	la, err := Read(DirSource(a), v)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := Read(DirSource(b), v)
	if err != nil {
		t.Fatal(err) // each history verifies on its own
	}
	if err := lb.Extends(cpA[1]); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("B extends A's checkpoint: %v", err)
	}
	if err := la.Extends(cpB[0]); !errors.Is(err, ErrInconsistent) { // same size 4, other hash
		t.Fatalf("A extends B's checkpoint of 4: %v", err)
	}
	if err := lb.Extends(cpA[0]); !errors.Is(err, ErrInconsistent) {
		t.Fatal("B extends A's checkpoint of 4")
	}
	e6 := lb.Entries()[5]
	_, err = CheckRelease(DirSource(b), v, catalog, 6, e6.Statement, &cpA[1])
	if !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), "split view") {
		t.Fatalf("an edge that saw A's checkpoint given B's release 6: %v", err)
	}
	if _, err := CheckRelease(DirSource(b), v, catalog, 6, e6.Statement, &cpB[0]); err != nil {
		t.Fatalf("B's own history: %v", err)
	}
}

func TestReleaseNotLogged(t *testing.T) {
	dir := t.TempDir()
	k := releaseKey(t)
	s, v := logKey(t)
	appendN(t, dir, k, s, v, 1, 3, 0)
	_, err := CheckRelease(DirSource(dir), v, catalog, 4, stmt(t, k, catalog, 4, testclock.Now(), 0), nil)
	if !errors.Is(err, ErrNotLogged) || !strings.Contains(err.Error(), "release 4 is not in the log") {
		t.Fatalf("a release after the log: %v", err)
	}
	// Release 2 signed again with other records: a release under a logged sequence.
	_, err = CheckRelease(DirSource(dir), v, catalog, 2, stmt(t, k, catalog, 2, testclock.Now(), 'x'), nil)
	if !errors.Is(err, ErrNotLogged) || !strings.Contains(err.Error(), "another statement") {
		t.Fatalf("another release 2: %v", err)
	}
	if _, err := CheckRelease(DirSource(dir), v, "fabrikam", 2, stmt(t, k, "fabrikam", 2, testclock.Now(), 0), nil); err == nil {
		t.Fatal("a release of another catalog passed")
	}
	_, other := logKey(t)
	if _, err := CheckRelease(DirSource(dir), other, catalog, 3, stmt(t, k, catalog, 3, testclock.Now(), 0), nil); err == nil || !strings.Contains(err.Error(), "not signed by log key") {
		t.Fatalf("another log key: %v", err)
	}
}

// A past entry rewritten: first by someone without the log key (files only), then by a
// holder of the stolen log key who rebuilds the tiles and re-signs the checkpoint.
func TestRewrittenEntry(t *testing.T) {
	dir := t.TempDir()
	k := releaseKey(t)
	s, v := logKey(t)
	cps := appendN(t, dir, k, s, v, 1, 5, 0)
	l, _ := Read(DirSource(dir), v)
	tile := filepath.Join(dir, Dir, filepath.FromSlash(dataTile(0, 5).Path()))
	data, _ := os.ReadFile(tile)
	forged, _ := (&Entry{Catalog: catalog, Sequence: 2, Statement: stmt(t, k, catalog, 2, testclock.Now(), 'x')}).Marshal()
	orig := l.texts[1]
	if err := os.WriteFile(tile, bytes.Replace(data, orig, forged, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(DirSource(dir), v); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("Read of a rewritten entry: %v", err)
	}
	_, err := CheckRelease(DirSource(dir), v, catalog, 2, stmt(t, k, catalog, 2, testclock.Now(), 'x'), nil)
	if !errors.Is(err, ErrNotLogged) {
		t.Fatalf("CheckRelease of the rewritten entry: %v", err)
	}
	if _, err := Append(dir, &Entry{Catalog: catalog, Sequence: 6, Statement: stmt(t, k, catalog, 6, testclock.Now(), 0)}, s); err == nil ||
		!strings.Contains(err.Error(), "does not verify, so nothing is appended") {
		t.Fatalf("Append to a rewritten log: %v", err)
	}

	// The log key stolen: the history rewritten from entry 1 on, every file consistent.
	dir2 := t.TempDir()
	appendN(t, dir2, k, s, v, 1, 1, 0)
	appendN(t, dir2, k, s, v, 2, 6, 'x')
	l2, err := Read(DirSource(dir2), v)
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Extends(cps[4]); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("a re-signed rewritten history extends the one seen: %v", err)
	}
}

func TestRollback(t *testing.T) {
	dir := t.TempDir()
	k := releaseKey(t)
	s, v := logKey(t)
	appendN(t, dir, k, s, v, 1, 5, 0)
	oldNote, _ := os.ReadFile(filepath.Join(dir, Dir, CheckpointFile))
	cp6 := appendN(t, dir, k, s, v, 6, 6, 0)[0]
	// The origin serves the previous checkpoint again (its files are all still there).
	os.WriteFile(filepath.Join(dir, Dir, CheckpointFile), oldNote, 0o644)
	l, err := Read(DirSource(dir), v)
	if err != nil || l.Checkpoint.Size != 5 {
		t.Fatalf("the old checkpoint: %v, %v", l, err)
	}
	if err := l.Extends(cp6); !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("Extends: %v", err)
	}
	_, err = CheckRelease(DirSource(dir), v, catalog, 5, l.Entries()[4].Statement, &cp6)
	if !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), "fewer than the 6") {
		t.Fatalf("CheckRelease: %v", err)
	}
	// Truncated: the newest entry tile cut to hold fewer entries than the checkpoint says.
	os.WriteFile(filepath.Join(dir, Dir, CheckpointFile), must(SignCheckpoint(cp6, s.Signer)), 0o644)
	p := filepath.Join(dir, Dir, filepath.FromSlash(dataTile(0, 6).Path()))
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[:bytes.LastIndex(b[:len(b)-2], []byte("\n\n"))+2], 0o644)
	if _, err := Read(DirSource(dir), v); err == nil || !strings.Contains(err.Error(), "holds 5 entries") {
		t.Fatalf("a truncated entry tile: %v", err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// Every byte of every file of a small log changed in turn: Read refuses each, and so does
// CheckRelease of the newest release when the byte is in a file it reads.
func TestByteFlips(t *testing.T) {
	dir := t.TempDir()
	k := releaseKey(t)
	s, v := logKey(t)
	appendN(t, dir, k, s, v, 1, 3, 0)
	l, err := Read(DirSource(dir), v)
	if err != nil {
		t.Fatal(err)
	}
	last := l.Entries()[2]
	files := map[string][]byte{}
	filepath.WalkDir(filepath.Join(dir, Dir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(filepath.Join(dir, Dir), p)
			files[filepath.ToSlash(rel)], _ = os.ReadFile(p)
		}
		return nil
	})
	current := map[string]bool{CheckpointFile: true, dataTile(0, 3).Path(): true, tlog.Tile{H: TileHeight, L: 0, N: 0, W: 3}.Path(): true}
	flips := 0
	for name, orig := range files {
		for i := range orig {
			b := bytes.Clone(orig)
			b[i] ^= 0x01
			src := func(n string, limit int64) ([]byte, error) {
				if n == name {
					return b, nil
				}
				return DirSource(dir)(n, limit)
			}
			if !current[name] {
				continue // a partial tile of an older size: no current check reads it
			}
			flips++
			if _, err := Read(src, v); err == nil {
				t.Fatalf("%s with byte %d changed: Read passed", name, i)
			}
			// CheckRelease reads entry 3 alone of the entry tile: a change to entries 1 and 2
			// does not touch what it proves (Read is what audits them).
			inLast := name != dataTile(0, 3).Path() || i >= len(orig)-len(l.texts[2])-1
			if _, err := CheckRelease(src, v, catalog, 3, last.Statement, nil); err == nil && inLast {
				t.Fatalf("%s with byte %d changed: CheckRelease passed", name, i)
			}
		}
	}
	if flips < 1000 {
		t.Fatalf("only %d flips", flips)
	}
}

// A writer stopped after the tiles and before the checkpoint (or after some tiles) leaves the
// previous checkpoint valid, and the next append goes on from it.
func TestCrashBetweenSteps(t *testing.T) {
	k := releaseKey(t)
	s, v := logKey(t)
	for stop := 0; ; stop++ {
		dir := t.TempDir()
		cps := appendN(t, dir, k, s, v, 1, 4, 0)
		files, _, err := prepareAppend(dir, &Entry{Catalog: catalog, Sequence: 5, Statement: stmt(t, k, catalog, 5, testclock.Now(), 'c')}, s.Signer, v)
		if err != nil {
			t.Fatal(err)
		}
		if stop >= len(files) {
			break
		}
		if files[len(files)-1].name != CheckpointFile {
			t.Fatal("the checkpoint is not written last")
		}
		for _, f := range files[:stop] { // the writer dies before file number stop
			if err := atomicfile.Write(filepath.Join(dir, Dir, filepath.FromSlash(f.name)), f.data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		l, err := Read(DirSource(dir), v)
		if err != nil || l.Checkpoint != cps[3] {
			t.Fatalf("stopped before file %d: %v, %v", stop, l, err)
		}
		// A different release 5 is appended after the restart: the stale tiles are replaced.
		cp, err := Append(dir, &Entry{Catalog: catalog, Sequence: 5, Statement: stmt(t, k, catalog, 5, testclock.Now(), 0)}, s)
		if err != nil {
			t.Fatalf("append after a stop before file %d: %v", stop, err)
		}
		l, err = Read(DirSource(dir), v)
		if err != nil || l.Checkpoint != cp || l.Extends(cps[3]) != nil {
			t.Fatalf("after the restart: %v, %v", l, err)
		}
	}
}

// A first append stopped before its checkpoint: the log starts again.
func TestCrashFirstAppend(t *testing.T) {
	k := releaseKey(t)
	s, v := logKey(t)
	dir := t.TempDir()
	files, _, err := prepareAppend(dir, &Entry{Catalog: catalog, Sequence: 1, Statement: stmt(t, k, catalog, 1, testclock.Now(), 'c')}, s.Signer, v)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files[:len(files)-1] {
		atomicfile.Write(filepath.Join(dir, Dir, filepath.FromSlash(f.name)), f.data, 0o644)
	}
	os.WriteFile(filepath.Join(dir, Dir, ".tmp-checkpoint-123"), []byte("half"), 0o644)
	appendN(t, dir, k, s, v, 1, 2, 0)
	if l, err := Read(DirSource(dir), v); err != nil || l.Checkpoint.Size != 2 {
		t.Fatalf("after a stopped first append: %v, %v", l, err)
	}
}

func TestAppendRefuses(t *testing.T) {
	dir := t.TempDir()
	k := releaseKey(t)
	s, v := logKey(t)
	appendN(t, dir, k, s, v, 1, 3, 0)
	for _, c := range []struct {
		e    Entry
		want string
	}{
		{Entry{Catalog: catalog, Sequence: 3, Statement: stmt(t, k, catalog, 3, testclock.Now(), 0)}, "not after release 3"},
		{Entry{Catalog: catalog, Sequence: 2, Statement: stmt(t, k, catalog, 2, testclock.Now(), 0)}, "not after release 3"},
		{Entry{Catalog: "fabrikam", Sequence: 9, Statement: stmt(t, k, "fabrikam", 9, testclock.Now(), 0)}, `catalog "fabrikam"`},
		{Entry{Catalog: catalog, Sequence: 9}, "no statement"},
	} {
		if _, err := Append(dir, &c.e, s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("append %+v: %v, want %q", c.e.Sequence, err, c.want)
		}
	}
	_, other := logKey(t)
	if _, err := Append(dir, &Entry{Catalog: catalog, Sequence: 4, Statement: stmt(t, k, catalog, 4, testclock.Now(), 0)}, &Key{s.Signer, other}); err == nil {
		t.Error("append with another verifier than the signer")
	}
	os.Remove(filepath.Join(dir, Dir, CheckpointFile))
	if _, err := Append(dir, &Entry{Catalog: catalog, Sequence: 4, Statement: stmt(t, k, catalog, 4, testclock.Now(), 0)}, s); err == nil ||
		!strings.Contains(err.Error(), "no checkpoint") {
		t.Errorf("append to a log without its checkpoint: %v", err)
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	if err := WriteKeyPair(filepath.Join(dir, "log"), "contoso-example-log"); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPair(filepath.Join(dir, "log"), "contoso-example-log"); err == nil {
		t.Fatal("a key pair overwritten")
	}
	key, err := LoadKey(filepath.Join(dir, "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	s, v := key.Signer, key.Verifier
	pub, err := LoadVerifier(filepath.Join(dir, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != pub.Name() || v.KeyHash() != pub.KeyHash() || s.KeyHash() != pub.KeyHash() {
		t.Fatal("the verifier derived from the private key differs from the .pub")
	}
	msg := must(SignCheckpoint(Checkpoint{Catalog: catalog}, s))
	if _, err := OpenCheckpoint(msg, pub); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadVerifier(filepath.Join(dir, "log.key")); err == nil || !strings.Contains(err.Error(), "private") {
		t.Fatalf("the private key as a verifier: %v", err)
	}
	if _, err := LoadKey(filepath.Join(dir, "log.pub")); err == nil {
		t.Fatal("the public key as a signer")
	}
	if fi, _ := os.Stat(filepath.Join(dir, "log.key")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("log.key mode %v", fi.Mode())
	}
}

// TestVectors rebuilds testdata/log from testdata/entries.txt with testdata's keys and
// compares every file byte for byte (go test -run TestVectors -update rewrites them).
func TestVectors(t *testing.T) {
	skey, err := os.ReadFile("testdata/log-private-key.txt")
	if err != nil {
		t.Fatal(err)
	}
	s, v, err := ParseSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadVerifier("testdata/log.pub")
	if err != nil || pub.KeyHash() != v.KeyHash() {
		t.Fatalf("testdata/log.pub: %v", err)
	}
	k := releaseKey(t)
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) // fixed: these are vectors, not a clock
	dir := t.TempDir()
	var texts []byte
	for seq := uint64(1); seq <= 3; seq++ {
		e := &Entry{Catalog: catalog, Sequence: seq, Statement: stmt(t, k, catalog, seq, at.Add(time.Duration(seq)*time.Hour), 0)}
		if _, err := Append(dir, e, &Key{s, v}); err != nil {
			t.Fatal(err)
		}
		b, _ := e.Marshal()
		texts = append(append(texts, b...), '\n')
	}
	got := map[string][]byte{"entries.txt": texts}
	filepath.WalkDir(filepath.Join(dir, Dir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			got[filepath.ToSlash(rel)], _ = os.ReadFile(p)
		}
		return nil
	})
	for name, b := range got {
		path := filepath.Join("testdata", filepath.FromSlash(name))
		if *update {
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(want, b) {
			t.Errorf("%s differs from the vector (%v); run go test -run TestVectors -update if the format changed on purpose", path, err)
		}
	}
	// The stored vectors verify on their own, statements included.
	l, err := Read(DirSource("testdata"), pub)
	if err != nil {
		t.Fatal(err)
	}
	rv, err := signing.LoadVerifier("../signing/testdata/openssl-ed25519.pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CheckStatements(1, rv); err != nil || l.Checkpoint.Size != 3 {
		t.Fatalf("vectors: %v (%d entries)", err, l.Checkpoint.Size)
	}
}

func FuzzParseEntry(f *testing.F) {
	f.Add([]byte("driveway release log entry 1\ncatalog contoso-example\nsequence 42\nstatement eyJ9\n"))
	f.Add([]byte("driveway release log entry 1\ncatalog a\nsequence 01\nstatement AA==\n"))
	f.Add([]byte("driveway release log entry 1\ncatalog a b\nsequence 1\nstatement AA==\n\n"))
	if b, err := os.ReadFile("testdata/entries.txt"); err == nil {
		f.Add(b[:bytes.Index(b, []byte("\n\n"))+1])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEntry(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("an error without ErrMalformed: %v", err)
			}
			return
		}
		again, err := e.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("parsed %q, marshals to %q (%v)", b, again, err)
		}
	})
}

func FuzzCheckpoint(f *testing.F) {
	s, v := logKey(f)
	good := must(SignCheckpoint(Checkpoint{Catalog: catalog, Size: 3, Hash: tlog.Hash{1}}, s.Signer))
	f.Add(good)
	f.Add([]byte("driveway release log 1 x\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
	f.Add(bytes.Replace(good, []byte("\n3\n"), []byte("\n-3\n"), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := ParseCheckpoint(b); err == nil {
			if !bytes.Equal(c.Text(), b) {
				t.Fatalf("parsed %q, formats as %q", b, c.Text())
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("an error without ErrMalformed: %v", err)
		}
		c, err := OpenCheckpoint(b, v)
		if err == nil && !bytes.Contains(b, c.Text()) {
			t.Fatalf("opened %q as %s", b, c)
		}
	})
}

// FuzzLogFiles replaces the checkpoint or the entry tile of a valid log with the fuzzer's
// bytes: Read and CheckRelease must return (an error, or a log that still verifies).
func FuzzLogFiles(f *testing.F) {
	dir := f.TempDir()
	k := releaseKey(f)
	s, v := logKey(f)
	appendN(f, dir, k, s, v, 1, 3, 0)
	l, err := Read(DirSource(dir), v)
	if err != nil {
		f.Fatal(err)
	}
	tile := dataTile(0, 3).Path()
	data, _ := DirSource(dir)(tile, 1<<20)
	cp, _ := DirSource(dir)(CheckpointFile, 1<<20)
	f.Add(false, data)
	f.Add(true, cp)
	f.Add(false, data[:len(data)/2])
	f.Add(false, append(bytes.Clone(data), data...))
	f.Fuzz(func(t *testing.T, checkpoint bool, b []byte) {
		name := tile
		if checkpoint {
			name = CheckpointFile
		}
		src := func(n string, limit int64) ([]byte, error) {
			if n == name {
				if int64(len(b)) > limit {
					return nil, fmt.Errorf("more than %d bytes", limit)
				}
				return b, nil
			}
			return DirSource(dir)(n, limit)
		}
		if got, err := Read(src, v); err == nil && got.Checkpoint != l.Checkpoint {
			t.Fatalf("another log verified: %s", got.Checkpoint)
		}
		CheckRelease(src, v, catalog, 3, l.Entries()[2].Statement, &l.Checkpoint)
	})
}
