package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/kms/fake"
)

const testType = "application/vnd.driveway.test+json"

var testPayload = []byte(`{"format":"driveway-release/1","sequence":7}` + "\n")

// seededKey returns a fixed Ed25519 key, so that envelopes in the fuzz
// corpus stay valid from run to run.
func seededKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// signerFor writes priv as an unencrypted PKCS#8 PEM file and loads it.
func signerFor(t testing.TB, priv crypto.PrivateKey) *Signer {
	t.Helper()
	pemBytes, err := cryptoutils.MarshalPrivateKeyToPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "k.key")
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newECDSA(t testing.TB) *Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signerFor(t, k)
}

func mustSign(t testing.TB, signers ...*Signer) []byte {
	t.Helper()
	env, err := Sign(testType, testPayload, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// wantUnverified checks that err wraps ErrUnverified and mentions reason.
func wantUnverified(t *testing.T, err error, reason string) {
	t.Helper()
	if !errors.Is(err, ErrUnverified) {
		t.Fatalf("err = %v; want an error wrapping ErrUnverified", err)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Fatalf("err = %q; want it to mention %q", err, reason)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, kt := range []KeyType{Ed25519, ECDSAP256} {
		for _, pw := range []string{"", "correct horse"} {
			name := string(kt) + "/plain"
			if pw != "" {
				name = string(kt) + "/encrypted"
			}
			t.Run(name, func(t *testing.T) {
				prefix := filepath.Join(t.TempDir(), "release")
				var password []byte
				if pw != "" {
					password = []byte(pw)
				}
				if err := WriteKeyPair(prefix, kt, password); err != nil {
					t.Fatal(err)
				}
				privPEM, err := os.ReadFile(prefix + ".key")
				if err != nil {
					t.Fatal(err)
				}
				wantType := "-----BEGIN PRIVATE KEY-----"
				if pw != "" {
					wantType = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"
				}
				if !bytes.HasPrefix(privPEM, []byte(wantType)) {
					t.Fatalf("private key starts %.50q; want %s", privPEM, wantType)
				}

				t.Setenv(PasswordEnv, pw)
				s, err := LoadSigner(context.Background(), prefix+".key", PasswordFromEnv())
				if err != nil {
					t.Fatal(err)
				}
				v, err := LoadVerifier(prefix + ".pub")
				if err != nil {
					t.Fatal(err)
				}
				if s.KeyID() != v.KeyID() || len(v.KeyID()) != 64 {
					t.Fatalf("KeyID: signer %q, verifier %q; want equal 64-digit hex", s.KeyID(), v.KeyID())
				}
				if s.Verifier().KeyID() != v.KeyID() {
					t.Fatalf("Signer.Verifier().KeyID() = %q; want %q", s.Verifier().KeyID(), v.KeyID())
				}

				env := mustSign(t, s)
				got, err := Open(env, testType, 1, v)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, testPayload) {
					t.Fatalf("Open = %q; want %q", got, testPayload)
				}
				checkEnvelopeJSON(t, env, s.KeyID())
			})
		}
	}
}

// checkEnvelopeJSON checks the envelope is plain DSSE JSON with standard
// padded base64, independently of the package's own decoder.
func checkEnvelopeJSON(t *testing.T, env []byte, keyIDs ...string) {
	t.Helper()
	var m struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []struct {
			KeyID string `json:"keyid"`
			Sig   string `json:"sig"`
		} `json:"signatures"`
	}
	dec := json.NewDecoder(bytes.NewReader(env))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("envelope is not DSSE JSON: %v\n%s", err, env)
	}
	if m.PayloadType != testType {
		t.Errorf("payloadType = %q; want %q", m.PayloadType, testType)
	}
	if m.Payload != base64.StdEncoding.EncodeToString(testPayload) {
		t.Errorf("payload = %q; want standard base64 of the payload", m.Payload)
	}
	if len(m.Signatures) != len(keyIDs) {
		t.Fatalf("%d signatures; want %d", len(m.Signatures), len(keyIDs))
	}
	for i, s := range m.Signatures {
		if s.KeyID != keyIDs[i] {
			t.Errorf("signatures[%d].keyid = %q; want %q", i, s.KeyID, keyIDs[i])
		}
		if _, err := base64.StdEncoding.DecodeString(s.Sig); err != nil || s.Sig == "" {
			t.Errorf("signatures[%d].sig = %q: not standard base64 (%v)", i, s.Sig, err)
		}
	}
}

func TestPAE(t *testing.T) {
	if got, want := string(pae("t", []byte("hi"))), "DSSEv1 1 t 2 hi"; got != want {
		t.Errorf("pae = %q; want %q", got, want)
	}
	// Compare with the DSSE reference implementation in Go.
	for _, c := range []struct{ typ, body string }{
		{"", ""}, {testType, string(testPayload)}, {"ü", "multi\nline body "}, {"x", strings.Repeat("z", 1000)},
	} {
		if got, want := pae(c.typ, []byte(c.body)), ssldsse.PAE(c.typ, []byte(c.body)); !bytes.Equal(got, want) {
			t.Errorf("pae(%q, %q) = %q; want %q", c.typ, c.body, got, want)
		}
	}
}

func TestDeterministicEd25519(t *testing.T) {
	s := signerFor(t, seededKey(1))
	a, b := mustSign(t, s), mustSign(t, s)
	if !bytes.Equal(a, b) {
		t.Fatalf("Ed25519 envelopes differ:\n%s\n%s", a, b)
	}
	// ECDSA is randomised, but both signatures verify.
	e := newECDSA(t)
	for _, env := range [][]byte{mustSign(t, e), mustSign(t, e)} {
		if _, err := Open(env, testType, 1, e.Verifier()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEncryptedKeyErrors(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "enc")
	if err := WriteKeyPair(prefix, Ed25519, []byte("right")); err != nil {
		t.Fatal(err)
	}
	key := prefix + ".key"
	ctx := context.Background()

	_, err := LoadSigner(ctx, key, nil)
	if err == nil || !strings.Contains(err.Error(), "is encrypted: set "+PasswordEnv) {
		t.Errorf("nil password func: err = %v; want it to say the key is encrypted and name %s", err, PasswordEnv)
	}

	t.Setenv(PasswordEnv, "")
	os.Unsetenv(PasswordEnv) // t.Setenv restores it afterwards
	_, err = LoadSigner(ctx, key, PasswordFromEnv())
	if err == nil || !strings.Contains(err.Error(), "is encrypted: set "+PasswordEnv) {
		t.Errorf("%s unset: err = %v; want it to name %s", PasswordEnv, err, PasswordEnv)
	}
	if _, err := PasswordFromEnv()(); err == nil || !strings.Contains(err.Error(), PasswordEnv) {
		t.Errorf("PasswordFromEnv()() with %s unset: err = %v; want an error naming it", PasswordEnv, err)
	}

	boom := errors.New("keyring locked")
	_, err = LoadSigner(ctx, key, func() ([]byte, error) { return nil, boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), PasswordEnv) {
		t.Errorf("failing password func: err = %v; want it to wrap %v and name %s", err, boom, PasswordEnv)
	}

	t.Setenv(PasswordEnv, "wrong")
	_, err = LoadSigner(ctx, key, PasswordFromEnv())
	if err == nil || !strings.Contains(err.Error(), "wrong password") {
		t.Errorf("wrong password: err = %v; want it to say so", err)
	}

	// A plain key never asks for a password.
	plain := filepath.Join(t.TempDir(), "plain")
	if err := WriteKeyPair(plain, Ed25519, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigner(ctx, plain+".key", func() ([]byte, error) {
		t.Error("password requested for an unencrypted key")
		return nil, boom
	}); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateKeyErrors(t *testing.T) {
	if _, _, err := GenerateKey("rsa", nil); err == nil || !strings.Contains(err.Error(), "unknown key type") {
		t.Errorf("GenerateKey(rsa) err = %v; want unknown key type", err)
	}
	if _, _, err := GenerateKey(Ed25519, []byte{}); err == nil || !strings.Contains(err.Error(), "empty password") {
		t.Errorf("GenerateKey with empty password: err = %v; want empty password error", err)
	}
}

func TestWriteKeyPair(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	if err := WriteKeyPair(prefix, Ed25519, nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(prefix + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("private key mode = %v; want 0600", m)
	}
	if _, err := LoadVerifier(prefix + ".pub"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(prefix + ".key")
	err = WriteKeyPair(prefix, Ed25519, nil)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second WriteKeyPair: err = %v; want refusal", err)
	}
	if after, _ := os.ReadFile(prefix + ".key"); !bytes.Equal(before, after) {
		t.Fatal("second WriteKeyPair changed the private key")
	}

	// An existing .pub alone also blocks it, and no .key is left behind.
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other+".pub", []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPair(other, ECDSAP256, nil); err == nil {
		t.Fatal("WriteKeyPair over an existing .pub succeeded")
	}
	if _, err := os.Stat(other + ".key"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat %s.key: %v; want it absent", other, err)
	}
}

// The testdata keys were made with OpenSSL 3.0:
//
//	openssl genpkey -algorithm ed25519 -out openssl-ed25519.key
//	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out openssl-p256.key
//	openssl ecparam -name prime256v1 -genkey -noout -out openssl-p256-sec1.key
//	openssl genpkey -algorithm ed25519 -aes-256-cbc -pass pass:hunter2 -out openssl-ed25519-enc.key
//	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out openssl-p384.key
//	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out openssl-rsa.key
//	openssl pkey -in X.key -pubout -out X.pub
//
// and the key ids with: openssl pkey -pubin -in X.pub -outform DER | sha256sum
func TestOpenSSLKeys(t *testing.T) {
	t.Setenv(PasswordEnv, "hunter2")
	for _, c := range []struct{ name, keyID string }{
		{"openssl-ed25519", "f898eeba9b9853b9407ae3c9c23fed51fd2834e1f2fd56d7bf9be53c08c356c0"},
		{"openssl-p256", "2f9f96ca549f63992efdff3ebcc992fa002bf84e42bdfe3905dd71b4bcdccd85"},
		{"openssl-p256-sec1", "1669a849ce95d3bf0fc5433b7ed382154b037a3488772a7ad4c9092005460c8e"},
		{"openssl-ed25519-enc", "2ab7f8aa062f537c632de073b3d26af2bd929a4fb1af44ca342040c023383cca"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := LoadSigner(context.Background(), filepath.Join("testdata", c.name+".key"), PasswordFromEnv())
			if err != nil {
				t.Fatal(err)
			}
			v, err := LoadVerifier(filepath.Join("testdata", c.name+".pub"))
			if err != nil {
				t.Fatal(err)
			}
			if s.KeyID() != c.keyID || v.KeyID() != c.keyID {
				t.Fatalf("KeyID: signer %s, verifier %s; want %s", s.KeyID(), v.KeyID(), c.keyID)
			}
			if _, err := Open(mustSign(t, s), testType, 1, v); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Setenv(PasswordEnv, "hunter3")
	_, err := LoadSigner(context.Background(), "testdata/openssl-ed25519-enc.key", PasswordFromEnv())
	if err == nil || !strings.Contains(err.Error(), "wrong password") {
		t.Errorf("OpenSSL key, wrong password: err = %v; want it to say so", err)
	}

	for _, name := range []string{"openssl-p384", "openssl-rsa"} {
		if _, err := LoadSigner(context.Background(), "testdata/"+name+".key", nil); err == nil || !strings.Contains(err.Error(), "unsupported") {
			t.Errorf("LoadSigner(%s.key) err = %v; want unsupported key", name, err)
		}
		if _, err := LoadVerifier("testdata/" + name + ".pub"); err == nil || !strings.Contains(err.Error(), "unsupported") {
			t.Errorf("LoadVerifier(%s.pub) err = %v; want unsupported key", name, err)
		}
	}
}

func TestParseVerifierErrors(t *testing.T) {
	priv, _ := os.ReadFile("testdata/openssl-ed25519.key")
	for _, c := range []struct {
		in   []byte
		want string
	}{
		{nil, "no PEM"},
		{[]byte("ssh-ed25519 AAAA"), "no PEM"},
		{priv, "use the .pub file"},
		{[]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "want PUBLIC KEY"},
		{[]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), "parse public key"},
	} {
		if _, err := ParseVerifier(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseVerifier(%.30q) err = %v; want %q", c.in, err, c.want)
		}
	}
	if _, err := LoadSigner(context.Background(), "testdata/nonexistent.key", nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadSigner(missing file) err = %v; want ErrNotExist", err)
	}
}

// editEnvelope decodes env, applies f and re-encodes it.
func editEnvelope(t *testing.T, env []byte, f func(e *envelope)) []byte {
	t.Helper()
	e, err := parseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	f(e)
	out, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRejections(t *testing.T) {
	a, b := signerFor(t, seededKey(1)), signerFor(t, seededKey(2))
	va, vb := a.Verifier(), b.Verifier()
	env := mustSign(t, a)
	std := base64.StdEncoding
	flip := func(s string) string {
		raw, err := std.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)/2] ^= 1
		return std.EncodeToString(raw)
	}

	for _, c := range []struct {
		name      string
		env       []byte
		typ       string // defaults to testType
		threshold int    // defaults to 1
		keys      []*Verifier
		reason    string
	}{
		{name: "tampered payload", reason: "0 of 1 keys verified",
			env: editEnvelope(t, env, func(e *envelope) { e.Payload = std.EncodeToString([]byte(`{"sequence":8}`)) })},
		{name: "payload bit flip", reason: "0 of 1 keys verified",
			env: editEnvelope(t, env, func(e *envelope) { e.Payload = flip(e.Payload) })},
		{name: "tampered signature", reason: "0 of 1 keys verified",
			env: editEnvelope(t, env, func(e *envelope) { e.Signatures[0].Sig = flip(e.Signatures[0].Sig) })},
		{name: "truncated signature", reason: "0 of 1 keys verified",
			env: editEnvelope(t, env, func(e *envelope) { e.Signatures[0].Sig = e.Signatures[0].Sig[:8] })},
		{name: "wrong payloadType asked", env: env, typ: "application/other", reason: "payload type"},
		{name: "payloadType edited", reason: "payload type",
			env: editEnvelope(t, env, func(e *envelope) { e.PayloadType = "application/other" })},
		{name: "payloadType edited and asked", typ: "application/other", reason: "0 of 1 keys verified",
			env: editEnvelope(t, env, func(e *envelope) { e.PayloadType = "application/other" })},
		{name: "wrong key", env: env, keys: []*Verifier{vb}, reason: "0 of 1 keys verified"},
		{name: "threshold not met", env: env, threshold: 2, keys: []*Verifier{va, vb}, reason: "threshold not met: 1 of 2 keys verified"},
		{name: "duplicate signatures", env: mustSign(t, a, a), threshold: 2, keys: []*Verifier{va, vb}, reason: "1 of 2 keys verified"},
		{name: "duplicate signatures, empty key ids", threshold: 2, keys: []*Verifier{va, vb}, reason: "1 of 2 keys verified",
			env: editEnvelope(t, mustSign(t, a, a), func(e *envelope) { e.Signatures[0].KeyID, e.Signatures[1].KeyID = "", "" })},
		{name: "duplicate verifiers", env: mustSign(t, a, b), threshold: 2, keys: []*Verifier{va, va}, reason: "only 1 distinct keys"},
		{name: "threshold zero", env: env, threshold: -1, reason: "at least 1"},
		{name: "no verifiers", env: env, keys: []*Verifier{}, reason: "only 0 distinct keys"},
		{name: "nil verifier", env: env, keys: []*Verifier{nil}, reason: "nil Verifier"},
		{name: "no signatures", reason: "no signatures",
			env: editEnvelope(t, env, func(e *envelope) { e.Signatures = nil })},
		{name: "empty", env: []byte{}, reason: "malformed"},
		{name: "empty object", env: []byte(`{}`), reason: "payload type"},
		{name: "null", env: []byte(`null`), reason: "payload type"},
		{name: "not JSON", env: []byte("hello"), reason: "malformed"},
		{name: "trailing data", env: append(slices.Clip(env), "{}"...), reason: "malformed"},
		{name: "signatures not an array", env: []byte(`{"payloadType":"` + testType + `","payload":"","signatures":{}}`), reason: "not an array"},
		{name: "signature not an object", env: []byte(`{"payloadType":"` + testType + `","payload":"","signatures":[1]}`), reason: "malformed"},
		{name: "payload bad base64", reason: "malformed envelope: payload",
			env: editEnvelope(t, env, func(e *envelope) { e.Payload = "!!" + e.Payload[2:] })},
		{name: "payload unpadded", reason: "malformed envelope: payload",
			env: editEnvelope(t, env, func(e *envelope) { e.Payload = "YQ" })}, // "YQ==" is "a"
		{name: "payload with line break", reason: "line break",
			env: editEnvelope(t, env, func(e *envelope) { e.Payload = e.Payload[:4] + "\n" + e.Payload[4:] })},
		{name: "payload non-canonical padding bits", reason: "malformed envelope: payload",
			env: editEnvelope(t, env, func(e *envelope) { e.Payload = "YR==" })}, // "YQ==" is "a"
		{name: "signature bad base64", reason: "malformed envelope: signature 0",
			env: editEnvelope(t, env, func(e *envelope) { e.Signatures[0].Sig = "*" + e.Signatures[0].Sig[1:] })},
		{name: "signature URL-safe base64", reason: "malformed envelope: signature 0",
			env: editEnvelope(t, env, func(e *envelope) { e.Signatures[0].Sig = "-_" + e.Signatures[0].Sig[2:] })},
		{name: "too many signatures", reason: "more than 16 signatures",
			env: editEnvelope(t, env, func(e *envelope) {
				for len(e.Signatures) <= MaxSignatures {
					e.Signatures = append(e.Signatures, e.Signatures[0])
				}
			})},
		{name: "oversized", env: bytes.Repeat([]byte(" "), MaxEnvelopeSize+1), reason: "limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			typ, threshold, keys := c.typ, c.threshold, c.keys
			if typ == "" {
				typ = testType
			}
			if threshold == 0 {
				threshold = 1
			}
			if keys == nil {
				keys = []*Verifier{va}
			}
			got, err := Open(c.env, typ, threshold, keys...)
			if got != nil {
				t.Errorf("Open returned payload %q with error", got)
			}
			wantUnverified(t, err, c.reason)
		})
	}
}

func TestSignErrors(t *testing.T) {
	a := signerFor(t, seededKey(1))
	if _, err := Sign(testType, testPayload); err == nil {
		t.Error("Sign with no signers succeeded")
	}
	if _, err := Sign(testType, testPayload, a, nil); err == nil {
		t.Error("Sign with a nil signer succeeded")
	}
	many := make([]*Signer, MaxSignatures+1)
	for i := range many {
		many[i] = a
	}
	if _, err := Sign(testType, testPayload, many...); err == nil {
		t.Errorf("Sign with %d signers succeeded", len(many))
	}
	if _, err := Sign(testType, make([]byte, MaxEnvelopeSize), a); err == nil || !strings.Contains(err.Error(), "exceed") {
		t.Errorf("Sign of an oversized payload: err = %v; want size error", err)
	}
}

// TestEveryByteChange mangles valid envelopes one byte at a time, as
// sumdb/note's tests do. Only a change inside a key id or the "keyid" name
// may still verify (the id is an unsigned hint: an unknown id makes Open try
// every key), and then it must return the original payload. Every other
// change, and every proper prefix, must be rejected.
func TestEveryByteChange(t *testing.T) {
	a, e := signerFor(t, seededKey(1)), newECDSA(t)
	keyIDSpan := regexp.MustCompile(`"keyid":"[0-9a-f]*"`)
	for _, c := range []struct {
		name      string
		env       []byte
		threshold int
	}{
		{"ed25519", mustSign(t, a), 1},
		{"ed25519+ecdsa", mustSign(t, a, e), 2},
	} {
		spans := keyIDSpan.FindAllIndex(c.env, -1)
		inKeyID := func(i int) bool {
			return slices.ContainsFunc(spans, func(s []int) bool { return s[0] <= i && i < s[1] })
		}
		still := 0
		for i := range c.env {
			for _, delta := range []byte{1, 255} { // b[i]++ and b[i]--
				b := bytes.Clone(c.env)
				b[i] += delta
				got, err := Open(b, testType, c.threshold, a.Verifier(), e.Verifier())
				if err != nil {
					if !errors.Is(err, ErrUnverified) {
						t.Fatalf("%s: byte %d: err = %v; want ErrUnverified", c.name, i, err)
					}
					continue
				}
				still++
				if !inKeyID(i) {
					t.Errorf("%s: byte %d (%q) changed to %q and still verifies", c.name, i, c.env[i], b[i])
				}
				if !bytes.Equal(got, testPayload) {
					t.Fatalf("%s: byte %d changed: verified payload %q; want %q", c.name, i, got, testPayload)
				}
			}
		}
		if still == 0 {
			t.Errorf("%s: no key id change verifies; the unknown-key-id fallback is not exercised", c.name)
		}
		for i := range c.env {
			if _, err := Open(c.env[:i], testType, c.threshold, a.Verifier(), e.Verifier()); err == nil {
				t.Fatalf("%s: prefix of %d bytes verified", c.name, i)
			}
		}
	}
}

func TestRotation(t *testing.T) {
	old, cur, other := signerFor(t, seededKey(1)), newECDSA(t), signerFor(t, seededKey(3))
	vo, vc := old.Verifier(), cur.Verifier()
	both := mustSign(t, old, cur)
	checkEnvelopeJSON(t, both, old.KeyID(), cur.KeyID())

	ok := func(name string, env []byte, threshold int, keys ...*Verifier) {
		t.Helper()
		got, err := Open(env, testType, threshold, keys...)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if !bytes.Equal(got, testPayload) {
			t.Errorf("%s: payload %q; want %q", name, got, testPayload)
		}
	}
	ok("threshold 1, old key", both, 1, vo)
	ok("threshold 1, new key", both, 1, vc)
	ok("threshold 2, both keys", both, 2, vo, vc)
	ok("threshold 2, both keys reversed", both, 2, vc, vo)
	ok("unknown extra signature skipped", mustSign(t, other, old, cur), 2, vo, vc)

	noIDs := editEnvelope(t, both, func(e *envelope) {
		for i := range e.Signatures {
			e.Signatures[i].KeyID = ""
		}
	})
	ok("empty key ids, threshold 2", noIDs, 2, vo, vc)
	unknownIDs := editEnvelope(t, both, func(e *envelope) {
		for i := range e.Signatures {
			e.Signatures[i].KeyID = "not-a-key-id"
		}
	})
	ok("unknown key ids, threshold 2", unknownIDs, 2, vc, vo)

	_, err := Open(mustSign(t, old), testType, 2, vo, vc)
	wantUnverified(t, err, "1 of 2 keys verified")
	_, err = Open(both, testType, 2, vo)
	wantUnverified(t, err, "only 1 distinct keys")
}

// TestInterop checks envelopes against the DSSE implementation sigstore
// wraps (secure-systems-lab/go-securesystemslib), in both directions.
//
// That library skips a signature whose keyid differs from its verifier's
// key id, and sigstore's wrappers set that id to the SSH SHA256 fingerprint
// of the key, not ours. So a third-party verifier either uses our key ids
// (first check) or has them removed (second check).
func TestInterop(t *testing.T) {
	a, e := signerFor(t, seededKey(1)), newECDSA(t)
	env := mustSign(t, a, e)
	adapter := func(s *Signer) ssldsse.Verifier {
		pub, err := s.s.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		v, err := signature.LoadVerifier(pub, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		return &sigdsse.VerifierAdapter{SignatureVerifier: v, Pub: pub, PubKeyID: s.KeyID()}
	}
	ev, err := ssldsse.NewMultiEnvelopeVerifier(2, adapter(a), adapter(e))
	if err != nil {
		t.Fatal(err)
	}
	var theirEnv ssldsse.Envelope
	if err := json.Unmarshal(env, &theirEnv); err != nil {
		t.Fatal(err)
	}
	_, got, err := ev.VerifyAndDecode(context.Background(), &theirEnv)
	if err != nil {
		t.Fatalf("go-securesystemslib rejects our envelope: %v", err)
	}
	if !bytes.Equal(got, testPayload) {
		t.Fatalf("go-securesystemslib decoded %q; want %q", got, testPayload)
	}

	var sv []signature.Verifier
	for _, s := range []*Signer{a, e} {
		sv = append(sv, adapter(s).(*sigdsse.VerifierAdapter).SignatureVerifier)
	}
	noIDs := editEnvelope(t, env, func(e *envelope) {
		for i := range e.Signatures {
			e.Signatures[i].KeyID = ""
		}
	})
	got = nil
	if err := sigdsse.WrapMultiVerifierWithOpts(testType, 2, sv, sigdsse.WithDecodedPayload(&got)).VerifySignature(bytes.NewReader(noIDs), nil); err != nil {
		t.Fatalf("sigstore dsse rejects our envelope without key ids: %v", err)
	}
	if !bytes.Equal(got, testPayload) {
		t.Fatalf("sigstore dsse decoded %q; want %q", got, testPayload)
	}

	theirs, err := sigdsse.WrapMultiSigner(testType, a.s, e.s).SignMessage(bytes.NewReader(testPayload))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(theirs, testType, 2, a.Verifier(), e.Verifier()); err != nil {
		t.Fatalf("Open rejects sigstore dsse's envelope %s: %v", theirs, err)
	}
}

func TestKMS(t *testing.T) {
	ctx := context.Background()

	// fakekms:// with a key we know: the file public key verifies it.
	priv := seededKey(4)
	s, err := LoadSigner(context.WithValue(ctx, fake.KmsCtxKey{}, crypto.PrivateKey(priv)), "fakekms://release", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := signerFor(t, priv).KeyID(); s.KeyID() != want {
		t.Fatalf("fakekms KeyID = %s; want %s", s.KeyID(), want)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParseVerifier(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(mustSign(t, s), testType, 1, v); err != nil {
		t.Fatal(err)
	}

	// fakekms:// with its own random ECDSA P-256 key.
	s, err = LoadSigner(ctx, "fakekms://random", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(mustSign(t, s), testType, 1, s.Verifier()); err != nil {
		t.Fatal(err)
	}

	// A KMS key of an unsupported type is refused at load time.
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LoadSigner(context.WithValue(ctx, fake.KmsCtxKey{}, crypto.PrivateKey(p384)), "fakekms://p384", nil)
	if err == nil || !strings.Contains(err.Error(), "P-384") {
		t.Errorf("fakekms P-384 key: err = %v; want unsupported curve", err)
	}

	// Providers not linked name their build tag.
	linked := kms.SupportedProviders()
	for _, c := range []struct{ ref, scheme, tag string }{
		{"awskms:///alias/driveway", "awskms://", "kms_aws"},
		{"gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k", "gcpkms://", "kms_gcp"},
		{"azurekms://vault.example/key", "azurekms://", "kms_azure"},
		{"hashivault://driveway", "hashivault://", "kms_hashivault"},
	} {
		if slices.Contains(linked, c.scheme) {
			continue // built with this provider's tag
		}
		_, err := LoadSigner(ctx, c.ref, nil)
		if err == nil || !strings.Contains(err.Error(), "-tags "+c.tag) {
			t.Errorf("LoadSigner(%s) err = %v; want it to name -tags %s", c.ref, err, c.tag)
		}
	}
	if _, err := LoadSigner(ctx, "nosuchkms://key", nil); err == nil || !strings.Contains(err.Error(), "no KMS provider") {
		t.Errorf("LoadSigner(nosuchkms://key) err = %v; want no KMS provider", err)
	}
}

func FuzzOpen(f *testing.F) {
	a, b := signerFor(f, seededKey(1)), signerFor(f, seededKey(2))
	payloads := [][]byte{testPayload, {}, []byte("x")}
	for _, p := range payloads {
		for _, signers := range [][]*Signer{{a}, {b}, {a, b}, {b, a, a}} {
			env, err := Sign(testType, p, signers...)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(env)
		}
	}
	for _, s := range []string{"", "{}", "null", "[]", `{"signatures":[{}]}`, `{"payloadType":"` + testType + `","payload":"","signatures":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, env []byte) {
		for threshold := 1; threshold <= 2; threshold++ {
			got, err := Open(env, testType, threshold, a.Verifier(), b.Verifier())
			if err != nil {
				if !errors.Is(err, ErrUnverified) || got != nil {
					t.Fatalf("Open = %q, %v; want nil, ErrUnverified", got, err)
				}
				continue
			}
			// Only the seeded payloads were ever signed: anything else
			// verifying is a forgery.
			if !slices.ContainsFunc(payloads, func(p []byte) bool { return bytes.Equal(p, got) }) {
				t.Fatalf("Open verified an unsigned payload %q", got)
			}
		}
	})
}
