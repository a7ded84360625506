package client_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/client"
)

// TestStateVectors: every file in testdata/state parses (ok-*) or is refused (bad-*) with
// the member named; ok-full.json is byte for byte what AppendState writes.
func TestStateVectors(t *testing.T) {
	files, _ := filepath.Glob("testdata/state/*.json")
	if len(files) < 10 {
		t.Fatalf("%d vectors", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := client.ParseState(b)
		name := filepath.Base(f)
		switch {
		case strings.HasPrefix(name, "ok-") && err != nil:
			t.Errorf("%s: %v", name, err)
		case strings.HasPrefix(name, "bad-") && err == nil:
			t.Errorf("%s: accepted as %+v", name, s)
		case strings.HasPrefix(name, "bad-"):
			t.Logf("%s: %v", name, err)
		}
	}
	want := client.State{Catalog: "contoso-example", Sequence: 42, Verified: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	b, _ := os.ReadFile("testdata/state/ok-full.json")
	if got := client.AppendState(nil, want); string(got) != string(b) {
		t.Errorf("AppendState:\n%s\nwant testdata/state/ok-full.json:\n%s", got, b)
	}
	if s, _ := client.ParseState(b); s != want {
		t.Errorf("ParseState(ok-full.json) = %+v", s)
	}
	b, _ = os.ReadFile("testdata/state/ok-log.json")
	if s, err := client.ParseState(b); err != nil || s.Log == nil || s.Log.Size != 2 || s.Log.Catalog != "contoso-example" {
		t.Errorf("ParseState(ok-log.json) = %+v, %v", s, err)
	} else if got := client.AppendState(nil, s); string(got) != string(b) {
		t.Errorf("AppendState of ok-log.json:\n%s\nwant:\n%s", got, b)
	}
	for name, member := range map[string]string{"bad-format.json": `"format"`, "bad-no-sequence.json": `"sequence"`, "bad-zero-sequence.json": `"sequence"`,
		"bad-no-catalog.json": `"catalog"`, "bad-empty-catalog.json": `"catalog"`, "bad-log.json": `"log"`, "bad-log-size.json": `"log"`} {
		b, _ := os.ReadFile("testdata/state/" + name)
		if _, err := client.ParseState(b); err == nil || !strings.Contains(err.Error(), member) {
			t.Errorf("%s: %v does not name %s", name, err, member)
		}
	}
}

// TestStateFiles: a missing file is a new PC; SaveState replaces the file whole and leaves
// no temporary file; a broken file is an error naming it, not a reset.
func TestStateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pc")
	s, err := client.LoadState(dir)
	if err != nil || s != (client.State{}) {
		t.Fatalf("missing state: %+v, %v", s, err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		if err := client.SaveState(dir, client.State{Catalog: "c", Sequence: seq}); err != nil {
			t.Fatal(err)
		}
		if s, err := client.LoadState(dir); err != nil || s.Sequence != seq {
			t.Fatalf("after saving %d: %+v, %v", seq, s, err)
		}
	}
	es, _ := os.ReadDir(dir)
	if len(es) != 1 || es[0].Name() != client.StateFile {
		t.Fatalf("state directory holds %v", es)
	}
	if err := client.SaveState(dir, client.State{}); err == nil {
		t.Fatal("saved an empty state")
	}
	os.WriteFile(filepath.Join(dir, client.StateFile), []byte(`{"format":"driveway-client-state/1","catalog":"c"`), 0o644)
	if _, err := client.LoadState(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, client.StateFile)) {
		t.Fatalf("broken state: %v", err)
	}
	os.WriteFile(filepath.Join(dir, client.StateFile), make([]byte, client.MaxState+1), 0o644)
	if _, err := client.LoadState(dir); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("huge state: %v", err)
	}
}

// FuzzState: ParseState never panics, and what it accepts is written back by AppendState
// as a file that parses to the same state.
func FuzzState(f *testing.F) {
	files, _ := filepath.Glob("testdata/state/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := client.ParseState(b)
		if err != nil {
			return
		}
		if s.Sequence == 0 || s.Catalog == "" {
			t.Fatalf("accepted %+v", s)
		}
		again, err := client.ParseState(client.AppendState(nil, s))
		if err != nil || again.Catalog != s.Catalog || again.Sequence != s.Sequence || !again.Verified.Equal(s.Verified) ||
			(again.Log == nil) != (s.Log == nil) || (s.Log != nil && *again.Log != *s.Log) {
			t.Fatalf("round trip of %+v: %+v, %v", s, again, err)
		}
	})
}
