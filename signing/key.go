package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// PasswordEnv names the environment variable that holds the password of an
// encrypted private key.
const PasswordEnv = "DRIVEWAY_KEY_PASSWORD"

// KeyType is a kind of signing key.
type KeyType string

// The supported key types.
const (
	Ed25519   KeyType = "ed25519"    // deterministic signatures; the default choice
	ECDSAP256 KeyType = "ecdsa-p256" // ECDSA on NIST P-256 with SHA-256
)

// A Signer signs with one private key, held in memory or in a KMS.
// It is safe for concurrent use.
type Signer struct {
	s signature.Signer
	v *Verifier // the public half
}

// KeyID returns the key's id: the hex SHA-256 of its PKIX public key.
func (s *Signer) KeyID() string { return s.v.keyID }

// Verifier returns a Verifier for the signer's public key.
func (s *Signer) Verifier() *Verifier { return s.v }

// Sigstore returns the signer as a sigstore signature.Signer, for formats that sign through
// sigstore's interface (TUF metadata, package trust). It signs as [Sign] does: pure Ed25519,
// or ECDSA P-256 over SHA-256.
func (s *Signer) Sigstore() signature.Signer { return s.s }

// A Verifier checks signatures with one public key.
// It is safe for concurrent use.
type Verifier struct {
	v     signature.Verifier
	keyID string
}

// KeyID returns the key's id: the hex SHA-256 of its PKIX public key.
func (v *Verifier) KeyID() string { return v.keyID }

// PublicKey returns the verifier's public key (ed25519.PublicKey or *ecdsa.PublicKey).
func (v *Verifier) PublicKey() crypto.PublicKey {
	pub, _ := v.v.PublicKey() // sigstore's in-memory verifiers never fail here
	return pub
}

// NewVerifier makes a Verifier for a public key: Ed25519 or ECDSA P-256.
func NewVerifier(pub crypto.PublicKey) (*Verifier, error) {
	v, err := newVerifier(pub)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return v, nil
}

// GenerateKey makes a new key pair of type t and returns it PEM-encoded:
// the private key as PKCS#8 "PRIVATE KEY", or, when password is not nil,
// encrypted with it as "ENCRYPTED SIGSTORE PRIVATE KEY"; the public key as
// PKIX "PUBLIC KEY". A non-nil password must not be empty.
func GenerateKey(t KeyType, password []byte) (privPEM, pubPEM []byte, err error) {
	var priv crypto.Signer
	switch t {
	case Ed25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case ECDSAP256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, nil, fmt.Errorf("signing: unknown key type %q: use %q or %q", t, Ed25519, ECDSAP256)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("signing: generate %s key: %w", t, err)
	}
	if pubPEM, err = cryptoutils.MarshalPublicKeyToPEM(priv.Public()); err != nil {
		return nil, nil, fmt.Errorf("signing: encode public key: %w", err)
	}
	switch {
	case password == nil:
		privPEM, err = cryptoutils.MarshalPrivateKeyToPEM(priv)
	case len(password) == 0:
		return nil, nil, errors.New("signing: empty password: give a password, or none for an unencrypted key")
	default:
		var der []byte
		der, err = cryptoutils.MarshalPrivateKeyToEncryptedDER(priv, cryptoutils.StaticPasswordFunc(password))
		privPEM = cryptoutils.PEMEncode(cryptoutils.EncryptedSigstorePrivateKeyPEMType, der)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("signing: encode private key: %w", err)
	}
	return privPEM, pubPEM, nil
}

// WriteKeyPair generates a key pair with GenerateKey and writes the private
// key to prefix+".key" (mode 0600) and the public key to prefix+".pub"
// (mode 0644). It refuses to overwrite either file.
func WriteKeyPair(prefix string, t KeyType, password []byte) error {
	privPEM, pubPEM, err := GenerateKey(t, password)
	if err != nil {
		return err
	}
	keyPath, pubPath := prefix+".key", prefix+".pub"
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("signing: %s already exists; not overwriting it", p)
		}
	}
	if err := writeNew(keyPath, privPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(pubPath, pubPEM, 0o644); err != nil {
		os.Remove(keyPath) // we created it just now
		return err
	}
	return nil
}

// writeNew writes data to a file that must not exist yet.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("signing: %s already exists; not overwriting it", path)
	}
	if err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("signing: write %s: %w", path, err)
	}
	return nil
}

// PasswordFromEnv returns a password function that reads PasswordEnv when
// called. The function fails if the variable is unset; an empty value is an
// empty password.
func PasswordFromEnv() func() ([]byte, error) {
	return func() ([]byte, error) {
		pw, ok := os.LookupEnv(PasswordEnv)
		if !ok {
			return nil, errPasswordUnset
		}
		return []byte(pw), nil
	}
}

var errPasswordUnset = errors.New("signing: " + PasswordEnv + " is not set")

// LoadSigner loads a private key. ref is either a PEM file (see the package
// doc for the formats) or a KMS key reference: awskms://, gcpkms://,
// azurekms://, hashivault:// (or openbao://), each available only in a
// binary built with its tag (kms_aws, kms_gcp, kms_azure, kms_hashivault).
// Other schemes go to sigstore's KMS registry, which looks for a plugin
// executable named sigstore-kms-SCHEME on $PATH.
//
// An encrypted PEM key calls password once for its password; password may be
// nil for unencrypted keys. Decrypting takes about 0.2 s: load once.
// Loading a KMS key asks the KMS for its public key, using ctx; signing with
// it later calls the KMS without a context.
func LoadSigner(ctx context.Context, ref string, password func() ([]byte, error)) (*Signer, error) {
	if strings.Contains(ref, "://") {
		return loadKMS(ctx, ref)
	}
	data, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("signing: %s: no PEM private key found", ref)
	}
	if block.Type == "PUBLIC KEY" {
		priv := strings.TrimSuffix(ref, ".pub") + ".key"
		return nil, fmt.Errorf("signing: %s is a public key, which verifies; signing needs the private key (%s, made by driveway keygen beside it)", ref, priv)
	}
	var pf cryptoutils.PassFunc
	if isEncrypted(block) {
		if password == nil {
			return nil, fmt.Errorf("signing: %s is encrypted: set %s", ref, PasswordEnv)
		}
		pw, err := password()
		if errors.Is(err, errPasswordUnset) {
			return nil, fmt.Errorf("signing: %s is encrypted: set %s", ref, PasswordEnv)
		}
		if err != nil {
			return nil, fmt.Errorf("signing: %s is encrypted: reading its password (%s): %w", ref, PasswordEnv, err)
		}
		if pw == nil {
			pw = []byte{} // sigstore skips decryption on a nil password
		}
		pf = cryptoutils.StaticPasswordFunc(pw)
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(data, pf)
	if err != nil {
		if pf != nil && isWrongPassword(err) {
			return nil, fmt.Errorf("signing: %s: wrong password (from %s)", ref, PasswordEnv)
		}
		return nil, fmt.Errorf("signing: %s: %w", ref, err)
	}
	k, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signing: %s: unsupported private key type %T", ref, priv)
	}
	v, err := newVerifier(k.Public())
	if err != nil {
		return nil, fmt.Errorf("signing: %s: %w", ref, err)
	}
	s, err := signature.LoadSigner(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing: %s: %w", ref, err)
	}
	return &Signer{s: s, v: v}, nil
}

// isEncrypted reports whether a PEM private key needs a password.
func isEncrypted(b *pem.Block) bool {
	switch b.Type {
	case string(cryptoutils.EncryptedSigstorePrivateKeyPEMType),
		"ENCRYPTED COSIGN PRIVATE KEY", // cosign's older name for the same format
		"ENCRYPTED PRIVATE KEY":        // PKCS#8 PBES2, as written by openssl
		return true
	}
	return strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") // legacy OpenSSL PEM encryption
}

// isWrongPassword reports whether err from sigstore's key decoder means the
// password did not decrypt the key. The decoders have no sentinel errors, so
// this matches their messages.
func isWrongPassword(err error) bool {
	if errors.Is(err, x509.IncorrectPasswordError) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "decryption failed") || // sigstore/cosign secretbox
		strings.Contains(msg, "incorrect password") // PKCS#8 PBES2
}

// LoadVerifier reads a PEM public key file (see ParseVerifier).
func LoadVerifier(path string) (*Verifier, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	v, err := ParseVerifier(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return v, nil
}

// ParseVerifier parses the first PEM block of pemBytes, which must be a PKIX
// "PUBLIC KEY" for ECDSA P-256 or Ed25519.
func ParseVerifier(pemBytes []byte) (*Verifier, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("signing: no PEM public key found")
	}
	if block.Type != "PUBLIC KEY" {
		if strings.Contains(block.Type, "PRIVATE") {
			return nil, fmt.Errorf("signing: PEM block is a %s, not a PUBLIC KEY: use the .pub file", block.Type)
		}
		return nil, fmt.Errorf("signing: PEM block is %q, want PUBLIC KEY", block.Type)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing: parse public key: %w", err)
	}
	v, err := newVerifier(pub)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return v, nil
}

// newVerifier checks that pub is a supported key and computes its id.
// Its errors are not prefixed.
func newVerifier(pub crypto.PublicKey) (*Verifier, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("bad Ed25519 public key length %d", len(k))
		}
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return nil, errors.New("empty ECDSA public key")
		}
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("unsupported ECDSA curve %s: want P-256", k.Curve.Params().Name)
		}
	default:
		return nil, fmt.Errorf("unsupported key type %T: want ECDSA P-256 or Ed25519", pub)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &Verifier{v: v, keyID: hex.EncodeToString(sum[:])}, nil
}
