package build

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/releaselog"
	"github.com/driveway/driveway/signing"
)

func testLogKey(t testing.TB) *releaselog.Key {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, "test-log")
	if err != nil {
		t.Fatal(err)
	}
	s, v, err := releaselog.ParseSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &releaselog.Key{Signer: s, Verifier: v}
}

// Full and control-only releases append their statements to the log; a catalog with a log
// refuses a build without its key, and a log that does not verify stops the build before
// anything is published.
func TestBuildLogs(t *testing.T) {
	labels, out := t.TempDir(), t.TempDir()
	writeTree(t, labels, 20, nil)
	s, v := testKey(t)
	lk := testLogKey(t)
	signers := []*signing.Signer{s}
	rep, err := Build(context.Background(), Options{Labels: labels, Out: out, Signers: signers, Now: testNow, LogKey: lk})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.SplitN(rep.Log, ":", 2)[0], "@1") {
		t.Fatalf("report's log %q", rep.Log)
	}
	crep, err := Control(context.Background(), ControlOptions{Labels: labels, Out: out, Signers: signers, Now: testNow.Add(time.Hour), LogKey: lk})
	if err != nil {
		t.Fatal(err)
	}
	l, err := releaselog.Read(releaselog.DirSource(out), lk.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CheckStatements(1, v); err != nil {
		t.Fatal(err)
	}
	es := l.Entries()
	if len(es) != 2 || es[0].Sequence != rep.Sequence || es[1].Sequence != crep.Sequence {
		t.Fatalf("log entries %d; want releases %d and %d", len(es), rep.Sequence, crep.Sequence)
	}
	rel := openRelease(t, out, v)
	if string(es[1].Statement) != string(rel.Manifest.Statement) {
		t.Fatal("the logged statement is not the newest release's")
	}
	// Without the key: refused before anything is written.
	before := dirFiles(t, filepath.Join(out, index.ReleasesDir))
	_, err = Build(context.Background(), Options{Labels: labels, Out: out, Signers: signers, Now: testNow.Add(2 * time.Hour)})
	if err == nil || !strings.Contains(err.Error(), "--log-key") {
		t.Fatalf("a build without the log key: %v", err)
	}
	if _, err = Control(context.Background(), ControlOptions{Labels: labels, Out: out, Signers: signers, Now: testNow.Add(2 * time.Hour)}); err == nil {
		t.Fatal("a control-only release without the log key")
	}
	// Another log key: the log does not verify with it.
	if _, err = Build(context.Background(), Options{Labels: labels, Out: out, Signers: signers, Now: testNow.Add(2 * time.Hour), LogKey: testLogKey(t)}); err == nil ||
		!strings.Contains(err.Error(), "nothing published") {
		t.Fatalf("a build with another log key: %v", err)
	}
	// A damaged tile: refused, nothing published.
	tile := filepath.Join(out, releaselog.Dir, "tile", "8", "0", "000.p", "2")
	b, _ := os.ReadFile(tile)
	b[5] ^= 1
	os.WriteFile(tile, b, 0o644)
	if _, err = Build(context.Background(), Options{Labels: labels, Out: out, Signers: signers, Now: testNow.Add(2 * time.Hour), LogKey: lk}); err == nil ||
		!strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("a build onto a damaged log: %v", err)
	}
	if after := dirFiles(t, filepath.Join(out, index.ReleasesDir)); len(after) != len(before) {
		t.Fatalf("releases %d -> %d after refused builds", len(before), len(after))
	}
	b[5] ^= 1
	os.WriteFile(tile, b, 0o644)
	if _, err = Build(context.Background(), Options{Labels: labels, Out: out, Signers: signers, Now: testNow.Add(2 * time.Hour), LogKey: lk}); err != nil {
		t.Fatalf("after the repair: %v", err)
	}
}
