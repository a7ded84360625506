package index

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/internal/atomicfile"
	"github.com/driveway/driveway/signing"
)

func validManifest() *Manifest {
	m := &Manifest{Format: FormatLine, Catalog: "t", Sequence: 3,
		Created: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), Expires: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
		Routing: Routing{Hash: "xxhash64", HWIDShards: 2, LabelShards: 1},
		OSTable: json.RawMessage(`{}`), Control: json.RawMessage(`{}`)}
	for i, k := range []string{KindHWID, KindHWID, KindLabel} {
		sum := strings.Repeat(string("abc"[i]), 64)
		m.Shards = append(m.Shards, ShardRef{Name: sum + ".shard", Kind: k, Shard: i % 2, Size: 100, SHA256: sum, Keys: 1, Blocks: 1})
	}
	m.Shards[2].Shard = 0
	return m
}

func TestParseManifest(t *testing.T) {
	b, _ := validManifest().Marshal()
	if _, err := ParseManifest(b); err != nil {
		t.Fatalf("a valid manifest: %v", err)
	}
	for name, change := range map[string]func(m *Manifest){
		"format":             func(m *Manifest) { m.Format = "driveway release 2" },
		"hash":               func(m *Manifest) { m.Routing.Hash = "fnv" },
		"seed":               func(m *Manifest) { m.Routing.Seed = 7 },
		"no shards":          func(m *Manifest) { m.Routing.HWIDShards = 0 },
		"too many shards":    func(m *Manifest) { m.Routing.LabelShards = 1 << 20 },
		"count mismatch":     func(m *Manifest) { m.Shards = m.Shards[:2] },
		"duplicate shard":    func(m *Manifest) { m.Shards[1].Shard = 0 },
		"shard out of range": func(m *Manifest) { m.Shards[2].Shard = 1 },
		"unknown kind":       func(m *Manifest) { m.Shards[0].Kind = "blob" },
		"name not sha":       func(m *Manifest) { m.Shards[0].Name = strings.Repeat("f", 64) + ".shard" },
		"path in name":       func(m *Manifest) { m.Shards[0].Name = "../" + m.Shards[0].Name },
		"bad sha":            func(m *Manifest) { m.Shards[0].SHA256 = "xyz"; m.Shards[0].Name = "xyz.shard" },
		"zero size":          func(m *Manifest) { m.Shards[0].Size = 0 },
		"expires first":      func(m *Manifest) { m.Expires = m.Created.Add(-time.Hour) },
	} {
		m := validManifest()
		change(m)
		b, _ := m.Marshal()
		if _, err := ParseManifest(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseManifest([]byte(`{"format": "driveway release 1"`)); err == nil {
		t.Error("truncated JSON accepted")
	}
}

// Every single-byte change of a signed manifest is refused, or verifies to the very same
// manifest (a change the envelope's JSON ignores, such as inside a key id).
func TestVerifyEnvelopeByteFlips(t *testing.T) {
	priv, _, _ := signing.GenerateKey(signing.Ed25519, nil)
	dir := t.TempDir()
	atomicfile.Write(dir+"/k", priv, 0o600)
	s, err := signing.LoadSigner(t.Context(), dir+"/k", nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := validManifest().Marshal()
	env, err := signing.Sign(ManifestType, payload, s)
	if err != nil {
		t.Fatal(err)
	}
	opts := &VerifyOptions{Keys: []*signing.Verifier{s.Verifier()}, Now: validManifest().Created}
	if _, err := VerifyEnvelope(env, opts, func(Step) {}); err != nil {
		t.Fatal(err)
	}
	for i := range env {
		b := []byte(string(env))
		b[i]++
		m, err := VerifyEnvelope(b, opts, func(Step) {})
		if err == nil {
			got, _ := m.Marshal()
			if string(got) != string(payload) {
				t.Fatalf("byte %d changed: a different manifest verified", i)
			}
		} else if !errors.Is(err, signing.ErrUnverified) && !strings.Contains(err.Error(), "manifest") {
			t.Fatalf("byte %d: unexpected error %v", i, err)
		}
	}
}

// TestVerifyNeedsAClock: the index never reads the system clock. A verification without a
// time to check expiry at fails (it would otherwise pass or fail by the calendar date);
// with IgnoreExpiry it needs none; expiry is checked at the time given, not today.
func TestVerifyNeedsAClock(t *testing.T) {
	priv, _, _ := signing.GenerateKey(signing.Ed25519, nil)
	dir := t.TempDir()
	atomicfile.Write(dir+"/k", priv, 0o600)
	s, err := signing.LoadSigner(t.Context(), dir+"/k", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := validManifest()
	payload, _ := m.Marshal()
	env, err := signing.Sign(ManifestType, payload, s)
	if err != nil {
		t.Fatal(err)
	}
	keys := []*signing.Verifier{s.Verifier()}
	if _, err := VerifyEnvelope(env, &VerifyOptions{Keys: keys}, func(Step) {}); err == nil || !strings.Contains(err.Error(), "VerifyOptions.Now") {
		t.Errorf("no clock: %v, want an error naming VerifyOptions.Now", err)
	}
	if _, err := VerifyEnvelope(env, &VerifyOptions{Keys: keys, IgnoreExpiry: true}, func(Step) {}); err != nil {
		t.Errorf("no clock, IgnoreExpiry: %v", err)
	}
	if _, err := VerifyEnvelope(env, &VerifyOptions{Keys: keys, Now: m.Expires.Add(-time.Second)}, func(Step) {}); err != nil {
		t.Errorf("a second before expiry: %v", err)
	}
	if _, err := VerifyEnvelope(env, &VerifyOptions{Keys: keys, Now: m.Expires.Add(time.Second)}, func(Step) {}); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("a second after expiry: %v, want expired", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	b, _ := validManifest().Marshal()
	f.Add(b)
	f.Add([]byte(`{"format":"driveway release 1","routing":{"hash":"xxhash64","hwidShards":1,"labelShards":1},"shards":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		for _, kind := range []string{KindHWID, KindLabel} {
			for _, ref := range m.ShardsOf(kind) {
				if ref.Name != ref.SHA256+".shard" {
					t.Fatalf("accepted shard %+v", ref)
				}
			}
		}
	})
}
