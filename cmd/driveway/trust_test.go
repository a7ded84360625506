package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/testclock"
	"github.com/driveway/driveway/trust"
)

// TestVerifyWhatEdgesRead: verify checks the files edges and mirrors read besides the
// newest envelope: DIR/manifest, the names under releases/, the timestamp. Before, each of
// these tamperings verified (exit 0): verify read only releases/N.dsse.
func TestVerifyWhatEdgesRead(t *testing.T) {
	at := testclock.Now()
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, c string)
		check  string // the failing check's name
	}{
		{"manifest replaced with garbage", func(t *testing.T, c string) {
			os.WriteFile(filepath.Join(c, index.ManifestFile), []byte("garbage"), 0o644)
		}, "manifest-file"},
		{"manifest replaced with the older release", func(t *testing.T, c string) {
			copyFile(t, index.ReleasePath(c, 1), filepath.Join(c, index.ManifestFile))
		}, "manifest-file"},
		{"an older release copied in under a newer name", func(t *testing.T, c string) {
			copyFile(t, index.ReleasePath(c, 1), index.ReleasePath(c, 3))
		}, "sequence"},
		{"an older release copied over the newest", func(t *testing.T, c string) {
			copyFile(t, index.ReleasePath(c, 1), index.ReleasePath(c, 2))
		}, "sequence"},
		{"timestamp removed", func(t *testing.T, c string) {
			os.Remove(filepath.Join(c, trust.TimestampFile))
		}, "timestamp"},
		{"timestamp of the older release", func(t *testing.T, c string) {
			os.WriteFile(filepath.Join(c, trust.TimestampFile), mustReadFile(t, filepath.Join(c, "ts1.json")), 0o644)
		}, "timestamp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, key := buildExample(t, at.Format(time.RFC3339))
			copyFile(t, filepath.Join(c, trust.TimestampFile), filepath.Join(c, "ts1.json"))
			if code, _, stderr := runCLI(nil, "build", "--labels", filepath.Join(filepath.Dir(c), "labels"), "--out", c, "--key", key+".key",
				"--now", at.Add(time.Minute).Format(time.RFC3339), "--quiet"); code != 0 {
				t.Fatal(stderr)
			}
			if code, out, _ := runCLI(nil, "verify", "--catalog", c, "--key", key+".pub"); code != 0 {
				t.Fatalf("untampered: exit %d\n%s", code, out)
			}
			tc.tamper(t, c)
			code, out, _ := runCLI(nil, "verify", "--catalog", c, "--key", key+".pub", "--json")
			var res struct {
				OK     bool
				Checks []struct {
					Name, Check, File, Error string
					OK                       bool
				}
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("--json: %v\n%s", err, out)
			}
			failed := map[string]bool{}
			for _, ch := range res.Checks {
				if !ch.OK {
					failed[ch.Name] = true
					if ch.Error == "" || ch.Name == "" {
						t.Errorf("a failed check without a name or an error: %+v", ch)
					}
				}
			}
			if code != exitFailure || res.OK || !failed[tc.check] {
				t.Errorf("exit %d, ok %v, failed checks %v; want %q among them\n%s", code, res.OK, failed, tc.check, out)
			}
		})
	}
}

// TestTimestampCommand: a release's timestamp expires after a day; driveway timestamp
// re-signs it (a later version), and verify accepts it again.
func TestTimestampCommand(t *testing.T) {
	at := testclock.Now()
	c, key := buildExample(t, at.Format(time.RFC3339))
	later := at.Add(25 * time.Hour).Format(time.RFC3339)
	if code, out, _ := runCLI(nil, "verify", "--catalog", c, "--key", key+".pub", "--now", later); code != exitFailure || !strings.Contains(out, "FAIL  timestamp") {
		t.Fatalf("a day later: exit %d\n%s", code, out)
	}
	code, _, stderr := runCLI(nil, "timestamp", "--catalog", c, "--key", key+".key", "--now", at.Add(24*time.Hour).Format(time.RFC3339))
	if code != 0 || !strings.Contains(stderr, "release 1 of contoso-example is the newest") {
		t.Fatalf("timestamp: exit %d: %s", code, stderr)
	}
	if code, out, _ := runCLI(nil, "verify", "--catalog", c, "--key", key+".pub", "--now", later); code != 0 {
		t.Errorf("after driveway timestamp: exit %d\n%s", code, out)
	}
	if code, _, _ := runCLI(nil, "timestamp", "--catalog", c, "--key", key+".key", "--expires-after", "8760h"); code != exitUsage {
		t.Errorf("a year-long timestamp: exit %d, want %d", code, exitUsage)
	}
}

// TestRotateCommand: the owners rotate from the old key to a new one; verify, given the old
// public key, follows the chain and accepts releases signed by the new key, and refuses a
// release signed by the old (now revoked) key alone.
func TestRotateCommand(t *testing.T) {
	at := testclock.Now()
	c, old := buildExample(t, at.Format(time.RFC3339))
	newKey := filepath.Join(t.TempDir(), "new")
	if code, _, stderr := runCLI(nil, "keygen", "--unencrypted", "--out", newKey); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := runCLI(nil, "rotate", "--catalog", c, "--key", old+".key", "--new-key", newKey+".key"); code != 0 || !strings.Contains(stderr, "root 2") {
		t.Fatalf("rotate: exit %d: %s", code, stderr)
	}
	labels := filepath.Join(filepath.Dir(c), "labels")
	build := func(key string, minutes int) {
		t.Helper()
		if code, _, stderr := runCLI(nil, "build", "--labels", labels, "--out", c, "--key", key+".key", "--now", at.Add(time.Duration(minutes)*time.Minute).Format(time.RFC3339), "--quiet"); code != 0 {
			t.Fatal(stderr)
		}
	}
	build(newKey, 1)
	if code, out, _ := runCLI(nil, "verify", "--catalog", c, "--key", old+".pub"); code != 0 || !strings.Contains(out, "root: version 2") {
		t.Errorf("verify from the old key after the rotation: exit %d\n%s", code, out)
	}
	if code, _, stderr := runCLI(nil, "inspect", "--catalog", c, "--key", old+".pub"); code != 0 {
		t.Errorf("inspect from the old key after the rotation: exit %d: %s", code, stderr)
	}
	// Nor a timestamp: an hourly job left on the old key fails loudly instead of writing a
	// timestamp every edge refuses.
	if code, _, stderr := runCLI(nil, "timestamp", "--catalog", c, "--key", old+".key"); code != exitFailure || !strings.Contains(stderr, "timestamp role") {
		t.Errorf("timestamp with the revoked key: exit %d: %s", code, stderr)
	}
	// The pipeline cannot sign with the revoked key by mistake: build refuses before writing.
	if code, _, stderr := runCLI(nil, "build", "--labels", labels, "--out", c, "--key", old+".key", "--now", at.Add(2*time.Minute).Format(time.RFC3339), "--quiet"); code != exitFailure || !strings.Contains(stderr, "root 2's targets role") {
		t.Errorf("build with the revoked key: exit %d: %s", code, stderr)
	}
	// An attacker with the old key (who hides root/ while building) gets a release that
	// verify refuses once the root is back.
	hidden := filepath.Join(t.TempDir(), "root")
	if err := os.Rename(filepath.Join(c, trust.RootDir), hidden); err != nil {
		t.Fatal(err)
	}
	build(old, 2)
	if err := os.Rename(hidden, filepath.Join(c, trust.RootDir)); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runCLI(nil, "verify", "--catalog", c, "--key", old+".pub"); code != exitFailure || !strings.Contains(out, "FAIL  signature") {
		t.Errorf("a release signed by the revoked key: exit %d\n%s", code, out)
	}
	// A rotation signed by the new key alone is refused.
	other := filepath.Join(t.TempDir(), "other")
	runCLI(nil, "keygen", "--unencrypted", "--out", other)
	if code, _, _ := runCLI(nil, "rotate", "--catalog", c, "--key", other+".key", "--new-key", other+".key"); code != exitFailure {
		t.Errorf("a rotation by a key the catalog never trusted: exit %d", code)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.WriteFile(dst, mustReadFile(t, src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
