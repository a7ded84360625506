package trust

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/internal/testclock"
	"github.com/driveway/driveway/signing"
)

func newSigner(t testing.TB, typ signing.KeyType) *signing.Signer {
	t.Helper()
	priv, _, err := signing.GenerateKey(typ, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "k.key")
	if err := os.WriteFile(p, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := signing.LoadSigner(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var envelope = []byte(`{"payloadType":"application/vnd.driveway.release+json","payload":"e30=","signatures":[]}`)

// TestTimestamp: a timestamp signed by the root's keys verifies and names its release; one
// signed by another key, or changed in any byte, does not.
func TestTimestamp(t *testing.T) {
	now := testclock.Now()
	for _, typ := range []signing.KeyType{signing.Ed25519, signing.ECDSAP256} {
		s := newSigner(t, typ)
		root, err := FromKeys([]*signing.Verifier{s.Verifier()}, 1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := SignTimestamp("contoso", 3, 42, envelope, now.Add(24*time.Hour), s)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := root.VerifyTimestamp(b)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if ts.Version != 3 || ts.Sequence != 42 || ts.Catalog != "contoso" || !ts.Expires.Equal(now.Add(24*time.Hour)) {
			t.Errorf("%s: %+v", typ, ts)
		}
		if err := ts.Names(envelope); err != nil {
			t.Error(err)
		}
		if err := ts.Names(append([]byte(nil), envelope[1:]...)); err == nil {
			t.Error("another envelope is named")
		}
		other, _ := FromKeys([]*signing.Verifier{newSigner(t, typ).Verifier()}, 1)
		if _, err := other.VerifyTimestamp(b); !errors.Is(err, ErrUntrusted) {
			t.Errorf("%s: another key's root verifies it: %v", typ, err)
		}
		// Every change of a byte of the signed part or the signature is refused.
		for i := range b {
			c := append([]byte(nil), b...)
			c[i] ^= 0x01
			if got, err := root.VerifyTimestamp(c); err == nil && (got.Sequence != 42 || got.Version != 3 || got.SHA256 != ts.SHA256) {
				t.Fatalf("%s: byte %d flipped: a different statement verified: %+v", typ, i, got)
			}
		}
	}
}

// TestRules: the freshness rules refuse an expired timestamp, one valid for too long, one for
// another catalog, and every kind of rollback.
func TestRules(t *testing.T) {
	now := testclock.Now()
	ts := func(v int64, seq uint64, sha string, exp time.Duration, cat string) *Timestamp {
		return &Timestamp{Version: v, Sequence: seq, SHA256: sha, Expires: now.Add(exp), Catalog: cat}
	}
	seen := &State{Catalog: "c", TimestampVersion: 5, Sequence: 9, ReleaseSHA256: "aa"}
	for _, tc := range []struct {
		name string
		t    *Timestamp
		st   *State
		want string
	}{
		{"fresh, newer", ts(6, 10, "bb", time.Hour, "c"), seen, ""},
		{"same statement again", ts(5, 9, "aa", time.Hour, "c"), seen, ""},
		{"re-signed, same release", ts(6, 9, "aa", time.Hour, "c"), seen, ""},
		{"expired", ts(6, 10, "bb", -time.Second, "c"), seen, "expired"},
		{"valid for ten years", ts(6, 10, "bb", 10*365*24*time.Hour, "c"), seen, "more than"},
		{"other catalog", ts(6, 10, "bb", time.Hour, "d"), seen, "catalog"},
		{"older version", ts(4, 10, "bb", time.Hour, "c"), seen, "rollback"},
		{"older release", ts(6, 8, "bb", time.Hour, "c"), seen, "rollback"},
		{"same sequence, other envelope", ts(6, 9, "cc", time.Hour, "c"), seen, "another envelope"},
		{"same version, other release", ts(5, 10, "bb", time.Hour, "c"), seen, "another release"},
		{"first ever", ts(1, 1, "aa", time.Hour, "x"), &State{}, ""},
	} {
		err := Rules{}.Check(tc.t, now, tc.st)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := (Rules{Grace: time.Hour}).Check(ts(6, 10, "bb", -time.Minute, "c"), now, seen); err != nil {
		t.Errorf("within the grace: %v", err)
	}
}

// TestRotation: root 2 signed by the old and the new keys is accepted on top of root 1 (the
// old key), and then only the new key signs timestamps; a root signed by the new key alone,
// a root that skips a version, and a root from another root's keys are refused.
func TestRotation(t *testing.T) {
	now := testclock.Now()
	oldKey, newKey, tsKey := newSigner(t, signing.Ed25519), newSigner(t, signing.ECDSAP256), newSigner(t, signing.Ed25519)
	r1, _ := FromKeys([]*signing.Verifier{oldKey.Verifier()}, 1)
	rk := func(s ...*signing.Signer) RootKeys {
		var vs []*signing.Verifier
		for _, x := range s {
			vs = append(vs, x.Verifier())
		}
		return RootKeys{Keys: vs}
	}
	b2, err := NewRoot(r1, "contoso", now.AddDate(1, 0, 0), rk(newKey), rk(newKey), rk(tsKey), oldKey, newKey)
	if err != nil {
		t.Fatal(err)
	}
	files := map[int64][]byte{2: b2}
	get := func(n int64) ([]byte, error) {
		if b, ok := files[n]; ok {
			return b, nil
		}
		return nil, os.ErrNotExist
	}
	r2, err := Update(r1, get)
	if err != nil || r2.Version() != 2 || r2.Catalog() != "contoso" {
		t.Fatalf("update: root %d, %v", r2.Version(), err)
	}
	keys, th, _ := r2.Keys(RoleTargets)
	if len(keys) != 1 || th != 1 || keys[0].KeyID() != newKey.KeyID() {
		t.Errorf("root 2's targets keys: %d keys, threshold %d", len(keys), th)
	}
	tsOld, _ := SignTimestamp("contoso", 1, 1, envelope, now.Add(time.Hour), oldKey)
	if _, err := r2.VerifyTimestamp(tsOld); err == nil {
		t.Error("the revoked key still signs timestamps")
	}
	tsNew, _ := SignTimestamp("contoso", 1, 1, envelope, now.Add(time.Hour), tsKey)
	if _, err := r2.VerifyTimestamp(tsNew); err != nil {
		t.Errorf("the new timestamp key: %v", err)
	}
	// The new root signed by the new key alone: the old root did not agree.
	if _, err := NewRoot(r1, "contoso", now.AddDate(1, 0, 0), rk(newKey), rk(newKey), rk(newKey), newKey); err == nil {
		t.Error("a root not signed by the previous root's keys was made")
	}
	// Root 3 from root 2's keys, then offered on top of root 1: a skipped version.
	b3, err := NewRoot(r2, "contoso", now.AddDate(1, 0, 0), rk(newKey), rk(newKey), rk(newKey), newKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r1.Next(b3); err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("root 3 on top of root 1: %v", err)
	}
	files[3] = b3
	if r, err := Update(r1, get); err != nil || r.Version() != 3 {
		t.Errorf("walk 1 -> 3: root %d, %v", r.Version(), err)
	}
	// A root for another catalog does not follow a root for this one.
	r3, _ := r2.Next(b3)
	other, err := NewRoot(r3, "fabrikam", now.AddDate(1, 0, 0), rk(newKey), rk(newKey), rk(newKey), newKey)
	if err == nil {
		t.Errorf("a root for another catalog was made: %d bytes", len(other))
	}
}

// TestState: a state round-trips through its file, a missing file is the empty state, and a
// file of another format is refused.
func TestState(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	st, err := LoadState(p)
	if err != nil || st.Sequence != 0 {
		t.Fatalf("missing file: %+v %v", st, err)
	}
	st.Saw(&Timestamp{Version: 4, Sequence: 7, SHA256: "ab", Catalog: "c"})
	if err := st.Save(p); err != nil {
		t.Fatal(err)
	}
	back, err := LoadState(p)
	if err != nil || back.Sequence != 7 || back.TimestampVersion != 4 || back.ReleaseSHA256 != "ab" || back.Catalog != "c" {
		t.Errorf("round trip: %+v, %v; want %+v", back, err, st)
	}
	os.WriteFile(p, []byte(`{"format":"something else"}`), 0o644)
	if _, err := LoadState(p); err == nil {
		t.Error("another format was read")
	}
}

func FuzzVerifyTimestamp(f *testing.F) {
	s := newSigner(f, signing.Ed25519)
	root, _ := FromKeys([]*signing.Verifier{s.Verifier()}, 1)
	good, _ := SignTimestamp("contoso", 3, 42, envelope, testclock.Now().Add(time.Hour), s)
	f.Add(good)
	f.Add([]byte(`{"signed":{"_type":"timestamp"},"signatures":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := root.VerifyTimestamp(b)
		if err == nil && (ts.Sequence < 1 || ts.Version < 1 || ts.Catalog == "" || len(ts.SHA256) != 64) {
			t.Fatalf("a malformed statement verified: %+v", ts)
		}
		r2, err := root.Next(b)
		if err == nil {
			t.Fatalf("an unsigned root %d verified", r2.Version())
		}
	})
}
