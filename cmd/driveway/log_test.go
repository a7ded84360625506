package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/internal/testclock"
)

// logExample builds the example with a transparency log and returns the catalog, the
// release key prefix and the log key prefix.
func logExample(t *testing.T) (catalog, key, logKey string) {
	t.Helper()
	dir := t.TempDir()
	logKey = filepath.Join(dir, "log")
	if code, _, stderr := runCLI(nil, "keygen", "--type", "log", "--name", "contoso-example-log", "--out", logKey); code != 0 {
		t.Fatal(stderr)
	}
	catalog, key = buildExample(t, testNow(), "--log-key", logKey+".key")
	return catalog, key, logKey
}

func controlOnly(t *testing.T, catalog, key, logKey string, at time.Time) {
	t.Helper()
	code, _, stderr := runCLIAt(func() time.Time { return at }, nil, "build", "--control-only", "--labels", filepath.Join(filepath.Dir(catalog), "labels"), "--out", catalog,
		"--key", key+".key", "--log-key", logKey+".key", "--now", at.Format(time.RFC3339), "--quiet")
	if code != 0 {
		t.Fatal(stderr)
	}
}

func TestLogVerify(t *testing.T) {
	catalog, key, logKey := logExample(t)
	controlOnly(t, catalog, key, logKey, testclock.Now().Add(time.Hour))
	seen := filepath.Join(t.TempDir(), "seen")
	code, stdout, stderr := runCLI(nil, "log", "verify", "--catalog", catalog, "--key", logKey+".pub", "--release-key", key+".pub", "--save", seen)
	if code != 0 || strings.Count(stdout, "ok    ") != 2 || !strings.Contains(stderr, "2 entries, the newest release 2") {
		t.Fatalf("verify: %d\n%s%s", code, stdout, stderr)
	}
	controlOnly(t, catalog, key, logKey, testclock.Now().Add(2*time.Hour))
	code, stdout, stderr = runCLI(nil, "log", "verify", "--log", filepath.Join(catalog, "log"), "--key", logKey+".pub", "--since", seen, "--json")
	var out struct {
		OK      bool  `json:"ok"`
		Size    int64 `json:"size"`
		Entries []struct {
			Sequence uint64 `json:"sequence"`
		} `json:"entries"`
		Checks []struct {
			OK bool `json:"ok"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || code != 0 || !out.OK || out.Size != 3 || len(out.Entries) != 3 || out.Entries[2].Sequence != 3 || len(out.Checks) != 2 {
		t.Fatalf("verify --since --json: %d %v\n%s%s", code, err, stdout, stderr)
	}

	// Over HTTP, as a monitor reads the origin (a static file server on loopback).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(catalog)), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + ln.Addr().String() + "/log"
	if code, stdout, stderr := runCLI(nil, "log", "verify", "--log", url, "--key", logKey+".pub", "--since", seen, "--release-key", key+".pub"); code != 0 {
		t.Fatalf("verify over HTTP: %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := runCLI(nil, "log", "verify", "--log", "http://"+ln.Addr().String()+"/nothing", "--key", logKey+".pub"); code != 1 || !strings.Contains(stderr, "does not verify") {
		t.Fatalf("a URL without a log: %d %s", code, stderr)
	}
}

// A split view: two copies of a catalog given different releases after the first, both logs
// signed by the log key. An auditor that saw one checkpoint fails the other history.
func TestLogVerifySplitView(t *testing.T) {
	a, key, logKey := logExample(t)
	b := filepath.Join(copyDir(t, filepath.Dir(a)), "catalog") // labels and catalog, side by side
	controlOnly(t, a, key, logKey, testclock.Now().Add(time.Hour))
	controlOnly(t, b, key, logKey, testclock.Now().Add(2*time.Hour))
	controlOnly(t, b, key, logKey, testclock.Now().Add(3*time.Hour))
	seenA := filepath.Join(t.TempDir(), "a.checkpoint")
	if code, _, stderr := runCLI(nil, "log", "verify", "--catalog", a, "--key", logKey+".pub", "--save", seenA); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := runCLI(nil, "log", "verify", "--catalog", b, "--key", logKey+".pub", "--release-key", key+".pub"); code != 0 {
		t.Fatalf("B alone: %s", stderr) // each history verifies on its own
	}
	code, stdout, _ := runCLI(nil, "log", "verify", "--catalog", b, "--key", logKey+".pub", "--since", seenA)
	if code != 1 || !strings.Contains(stdout, "FAIL  the log extends the checkpoint of 2 entries") || !strings.Contains(stdout, "forked") {
		t.Fatalf("B since A: %d\n%s", code, stdout)
	}
	// Rolled back: A's older checkpoint put back after a newer one was seen.
	old, _ := os.ReadFile(filepath.Join(a, "log", "checkpoint"))
	controlOnly(t, a, key, logKey, testclock.Now().Add(4*time.Hour))
	if code, _, stderr := runCLI(nil, "log", "verify", "--catalog", a, "--key", logKey+".pub", "--save", seenA); code != 0 {
		t.Fatal(stderr)
	}
	os.WriteFile(filepath.Join(a, "log", "checkpoint"), old, 0o644)
	if code, stdout, _ := runCLI(nil, "log", "verify", "--catalog", a, "--key", logKey+".pub", "--since", seenA); code != 1 || !strings.Contains(stdout, "rolled back") {
		t.Fatalf("a rolled-back log: %d\n%s", code, stdout)
	}
}

func TestLogVerifyDamage(t *testing.T) {
	catalog, key, logKey := logExample(t)
	tile := filepath.Join(catalog, "log", "tile", "8", "0", "000.p", "1")
	b, err := os.ReadFile(tile)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x80
	os.WriteFile(tile, b, 0o644)
	code, stdout, stderr := runCLI(nil, "log", "verify", "--catalog", catalog, "--key", logKey+".pub")
	if code != 1 || !strings.Contains(stdout, "hash tile tile/8/0/000.p/1 differs") || !strings.Contains(stderr, "does not verify") {
		t.Fatalf("a damaged tile: %d\n%s%s", code, stdout, stderr)
	}
	// A release key that did not sign the statements.
	b[0] ^= 0x80
	os.WriteFile(tile, b, 0o644)
	other := filepath.Join(t.TempDir(), "other")
	runCLI(nil, "keygen", "--unencrypted", "--out", other)
	if code, stdout, _ := runCLI(nil, "log", "verify", "--catalog", catalog, "--key", logKey+".pub", "--release-key", other+".pub"); code != 1 || !strings.Contains(stdout, "FAIL  every entry's statement") {
		t.Fatalf("another release key: %d\n%s", code, stdout)
	}
	// The release key given as the log key, and misuse.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"log", "verify", "--catalog", catalog, "--key", key + ".pub"}, 1, "public log key"},
		{[]string{"log", "verify", "--catalog", catalog, "--key", logKey + ".key"}, 1, "private log key"},
		{[]string{"log", "verify", "--key", logKey + ".pub"}, 2, "one of --catalog and --log"},
		{[]string{"log", "verify", "--catalog", catalog}, 2, "--key"},
		{[]string{"log", "audit"}, 2, "unknown subcommand"},
		{[]string{"log"}, 2, "Usage: driveway log verify"},
		{[]string{"serve", "--catalog", catalog, "--key", key + ".pub", "--log-key", key + ".pub", "--listen", "127.0.0.1:0"}, 1, "public log key"},
		{[]string{"build", "--labels", "x", "--out", catalog, "--key", key + ".key", "--log-key", logKey + ".pub"}, 1, "not a private log key"},
	} {
		code, _, stderr := runCLI(nil, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: %d %q; want %d %q", c.args, code, stderr, c.code, c.want)
		}
	}
	if code, stdout, _ := runCLI(nil, "help", "log", "verify"); code != 0 || !strings.Contains(stdout, "--since") {
		t.Errorf("help log verify: %d %s", code, stdout)
	}
	// A build without the log key into a catalog that has a log is refused.
	code, _, stderr = runCLI(nil, "build", "--labels", filepath.Join(filepath.Dir(catalog), "labels"), "--out", catalog, "--key", key+".key", "--now", testNow(), "--quiet")
	if code != 1 || !strings.Contains(stderr, "--log-key") {
		t.Fatalf("a build without --log-key: %d %s", code, stderr)
	}
}
