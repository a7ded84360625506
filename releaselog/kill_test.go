package releaselog

import (
	"bytes"
	crand "crypto/rand"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/driveway/driveway/internal/testclock"
)

// TestKilledAppend kills a process appending to a log in a loop, at arbitrary moments, and
// checks after each kill that the log verifies and extends the checkpoint seen before it. It
// asserts what the files hold, not how fast: a slow machine gets more and longer rounds.
func TestKilledAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	skey, _, err := note.GenerateKey(crand.Reader, "kill-test-log")
	if err != nil {
		t.Fatal(err)
	}
	_, v, err := ParseSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var seen Checkpoint
	grew := 0
	rounds := 0
	for round := 0; round < 60 && grew < 10; round++ { // until 10 kills hit a growing log; slower machines wait longer
		rounds++
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAppendLoop$", "-test.count=1")
		cmd.Env = append(os.Environ(), "RELEASELOG_HELPER_DIR="+dir, "RELEASELOG_HELPER_KEY="+skey)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+rand.IntN(120)+10*round) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		if bytes.Contains(out.Bytes(), []byte("--- FAIL")) { // (a kill's exit status differs by system)
			t.Fatalf("round %d: the appending process failed by itself (an append refused after a kill?):\n%s", round, out.String())
		}
		l, err := Read(DirSource(dir), v)
		if err != nil {
			if seen.Size == 0 && errors.Is(err, fs.ErrNotExist) {
				continue // killed before its first checkpoint
			}
			t.Fatalf("round %d: the log does not verify after a kill: %v", round, err)
		}
		if err := l.Extends(seen); seen.Size > 0 && err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if l.Checkpoint.Size > seen.Size {
			grew++
		}
		seen = l.Checkpoint
	}
	if grew == 0 {
		t.Fatalf("the helper appended nothing in %d rounds", rounds)
	}
	t.Logf("%d entries after %d kills, grown in %d rounds", seen.Size, rounds, grew)
}

// TestHelperAppendLoop is TestKilledAppend's child: it appends until it is killed.
func TestHelperAppendLoop(t *testing.T) {
	dir := os.Getenv("RELEASELOG_HELPER_DIR")
	if dir == "" {
		t.Skip("run by TestKilledAppend")
	}
	s, v, err := ParseSigner(os.Getenv("RELEASELOG_HELPER_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	key := &Key{s, v}
	k := releaseKey(t)
	for range 100000 { // bounded: the parent kills it long before
		seq := uint64(1)
		if l, err := Read(DirSource(dir), v); err == nil && l.Checkpoint.Size > 0 {
			seq = l.Entries()[l.Checkpoint.Size-1].Sequence + 1
		}
		if _, err := Append(dir, &Entry{Catalog: catalog, Sequence: seq, Statement: stmt(t, k, catalog, seq, testclock.Now(), 0)}, key); err != nil {
			t.Fatal(err)
		}
	}
}
