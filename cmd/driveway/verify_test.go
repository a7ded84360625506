package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/testclock"
	"github.com/driveway/driveway/signing"
)

// buildExample builds the bundled example into a new catalog directory and returns the
// directory and the key prefix.
func buildExample(t *testing.T, now string, extra ...string) (catalog, key string) {
	return buildExampleWith(t, nil, now, extra...)
}

// buildExampleWith lets change change the example tree before the build.
func buildExampleWith(t *testing.T, change func(labels string), now string, extra ...string) (catalog, key string) {
	t.Helper()
	work := t.TempDir()
	if err := copyFS(examplesFS(), "contoso", filepath.Join(work, "labels")); err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(filepath.Join(work, "labels"))
	}
	key = filepath.Join(work, "k")
	if code, _, stderr := runCLI(nil, "keygen", "--unencrypted", "--out", key); code != 0 {
		t.Fatal(stderr)
	}
	catalog = filepath.Join(work, "catalog")
	args := append([]string{"build", "--labels", filepath.Join(work, "labels"), "--out", catalog, "--key", key + ".key", "--now", now, "--quiet"}, extra...)
	if code, _, stderr := runCLI(nil, args...); code != 0 {
		t.Fatal(stderr)
	}
	return catalog, key
}

// shardPath returns the file of a release's shard of a kind and number.
func shardPath(t *testing.T, catalog, kind string, num int) string {
	t.Helper()
	_, env, err := index.Latest(catalog)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := signing.Payload(env, index.ManifestType)
	m, err := index.ParseManifest(payload)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Shards {
		if s.Kind == kind && s.Shard == num {
			return filepath.Join(catalog, index.ShardsDir, s.Name)
		}
	}
	t.Fatalf("no %s shard %d", kind, num)
	return ""
}

// nonEmptyShard returns a shard file with keys.
func nonEmptyShard(t *testing.T, catalog string) string {
	for i := 0; i < 16; i++ {
		p := shardPath(t, catalog, index.KindHWID, i)
		if fi, _ := os.Stat(p); fi.Size() > 200 {
			return p
		}
	}
	t.Fatal("no non-empty shard")
	return ""
}

func TestVerifyCorruptions(t *testing.T) {
	now := testNow()
	ok, okKey := buildExample(t, now)
	if code, out, stderr := runCLI(nil, "verify", "--catalog", ok, "--key", okKey+".pub"); code != 0 || strings.Contains(out, "FAIL") {
		t.Fatalf("a fresh build does not verify: %s %s", out, stderr)
	}
	other, _ := buildExampleWith(t, func(labels string) { // one label less: other shards
		os.RemoveAll(filepath.Join(labels, "products", "1152921504606847401"))
	}, now)
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, catalog, key string)
		want    string // in the FAIL line
		args    []string
	}{
		{"flipped byte in a shard", func(t *testing.T, c, _ string) {
			p := nonEmptyShard(t, c)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x40
			os.WriteFile(p, b, 0o644)
		}, "sha256", nil},
		{"truncated label shard", func(t *testing.T, c, _ string) {
			p := shardPath(t, c, index.KindLabel, 0)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-10], 0o644)
		}, "bytes, the manifest says", nil},
		{"missing shard", func(t *testing.T, c, _ string) { os.Remove(shardPath(t, c, index.KindHWID, 3)) }, "no such file", nil},
		{"shard from another release", func(t *testing.T, c, _ string) {
			// Same kind and number, other content, put under this release's name.
			for i := 0; i < 16; i++ {
				mine, theirs := shardPath(t, c, index.KindLabel, i%4), shardPath(t, other, index.KindLabel, i%4)
				if filepath.Base(mine) != filepath.Base(theirs) {
					b, _ := os.ReadFile(theirs)
					os.WriteFile(mine, b, 0o644)
					return
				}
			}
			t.Fatal("the two releases share every label shard")
		}, "sha256", nil},
		{"tampered manifest", func(t *testing.T, c, _ string) {
			p := index.ReleasePath(c, 1)
			b, _ := os.ReadFile(p)
			i := strings.Index(string(b), `"payload":"`) + 40
			b[i] ^= 0x01
			os.WriteFile(p, b, 0o644)
		}, "signature", nil},
		{"not a manifest", func(t *testing.T, c, _ string) { os.WriteFile(index.ReleasePath(c, 1), []byte("{oops"), 0o644) }, "signature", nil},
		{"wrong key", func(t *testing.T, c, _ string) {}, "signature", []string{"--key", "OTHERKEY"}},
		{"structure (re-signed over a corrupt shard)", func(t *testing.T, c, key string) {
			// The hash cannot catch this one: the manifest is signed over the corrupt
			// bytes. Only the structural walk does.
			p := nonEmptyShard(t, c)
			b, _ := os.ReadFile(p)
			b[60] ^= 0xff // inside the first block (after the 56-byte header)
			_, env, _ := index.Latest(c)
			payload, _ := signing.Payload(env, index.ManifestType)
			m, _ := index.ParseManifest(payload)
			sum := sha256.Sum256(b)
			for i := range m.Shards {
				if m.Shards[i].Name == filepath.Base(p) {
					m.Shards[i].SHA256 = hex.EncodeToString(sum[:])
					m.Shards[i].Name = m.Shards[i].SHA256 + ".shard"
				}
			}
			os.WriteFile(filepath.Join(c, index.ShardsDir, hex.EncodeToString(sum[:])+".shard"), b, 0o644)
			s, err := signing.LoadSigner(context.Background(), key+".key", nil)
			if err != nil {
				t.Fatal(err)
			}
			m.Sequence = 2
			if _, _, err := index.Publish(c, m, s); err != nil {
				t.Fatal(err)
			}
		}, "corrupt shard", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := copyDir(t, ok)
			tc.corrupt(t, c, okKey)
			key := okKey + ".pub"
			args := []string{"verify", "--catalog", c, "--key", key}
			if tc.args != nil {
				otherKey := filepath.Join(t.TempDir(), "other")
				runCLI(nil, "keygen", "--unencrypted", "--out", otherKey)
				args = []string{"verify", "--catalog", c, "--key", otherKey + ".pub"}
			}
			code, out, stderr := runCLI(nil, args...)
			if code != exitFailure {
				t.Fatalf("verify exited %d, want 1:\n%s%s", code, out, stderr)
			}
			var fail string
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "FAIL") {
					fail = line
					break
				}
			}
			if !strings.Contains(fail, tc.want) {
				t.Errorf("first FAIL line %q does not mention %q:\n%s", fail, tc.want, out)
			}
		})
	}
}

func TestVerifyExpiry(t *testing.T) {
	built := testclock.Now().AddDate(-1, 0, 0) // expired after catalog.json's 720h, long before the tests' now
	c, key := buildExample(t, built.Format(time.RFC3339))
	code, out, _ := runCLI(nil, "verify", "--catalog", c, "--key", key+".pub")
	if code != exitFailure || !strings.Contains(out, "FAIL  expiry") {
		t.Errorf("an expired release: exit %d\n%s", code, out)
	}
	// --now asks about another time: within its 720 h the release verifies.
	if code, out, _ := runCLI(nil, "verify", "--catalog", c, "--key", key+".pub", "--now", built.Add(time.Hour).Format(time.RFC3339)); code != 0 {
		t.Errorf("--now within the release's validity: exit %d\n%s", code, out)
	}
	if code, out, _ := runCLI(nil, "verify", "--catalog", c, "--key", key+".pub", "--ignore-expiry"); code != 0 {
		t.Errorf("--ignore-expiry: exit %d\n%s", code, out)
	}
}

// copyDir copies a directory tree to a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}
