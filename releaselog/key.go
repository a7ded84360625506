package releaselog

// The log key.
//
// The checkpoint is signed with a key of its own: an Ed25519 key in sumdb/note's text
// encoding, so any note tool can check a checkpoint. The private key file holds
// "PRIVATE+KEY+<name>+<hash>+<base64>" and a newline; the public key file holds
// "<name>+<hash>+<base64>" and a newline (note.GenerateKey's two strings). The name is the
// operator's choice (e.g. "contoso-example-log"); it names the signature line.
//
// Why not the release keys: a release key may be ECDSA P-256 or in a KMS, and note's
// verifiers are Ed25519; more to the point, a key of its own means that a stolen release key
// alone cannot get a release past an edge that checks the log, and that the log can be held
// by someone other than the release pipeline (a second team, a witness host), as a checksum
// database is held apart from module authors.
//
// Who holds it: the pipeline host that runs driveway build (it appends each release). What
// a stolen log key allows: signing a checkpoint of a forked history. An edge that has seen
// the genuine log refuses it (the fork is inconsistent with its saved checkpoint), an
// auditor running `driveway log verify --since` sees it, and the fork still cannot hold a
// release the release keys did not sign; a fresh edge with no state and no auditor watching
// could be shown the fork. Both keys stolen together allow a release no PC can tell from a
// genuine one except by comparing checkpoints with others: that is the point of monitoring.

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

const privatePrefix = "PRIVATE+KEY+"

// WriteKeyPair writes a new log key named name: prefix.key (mode 0600) and prefix.pub. It
// never overwrites.
func WriteKeyPair(prefix, name string) error {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return fmt.Errorf("releaselog: log key name %q: %w (a name is printable, without spaces or '+')", name, err)
	}
	for _, p := range []string{prefix + ".key", prefix + ".pub"} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("releaselog: %s exists; keys are never overwritten", p)
		}
	}
	if err := writeNew(prefix+".key", []byte(skey+"\n"), 0o600); err != nil {
		return err
	}
	return writeNew(prefix+".pub", []byte(vkey+"\n"), 0o644)
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("releaselog: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("releaselog: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("releaselog: %w", err)
	}
	return f.Close()
}

// ParseSigner parses a private log key and returns its signer and its verifier.
func ParseSigner(skey string) (note.Signer, note.Verifier, error) {
	skey = strings.TrimSpace(skey)
	if !strings.HasPrefix(skey, privatePrefix) {
		return nil, nil, errors.New("releaselog: not a private log key (want PRIVATE+KEY+NAME+HASH+KEY, written by driveway keygen --type log)")
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, nil, fmt.Errorf("releaselog: private log key: %w", err)
	}
	// PRIVATE+KEY+name+hash+base64(alg || seed): the verifier is derived from the seed.
	parts := strings.SplitN(skey, "+", 5) // the key's base64 may hold "+"
	raw, err := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, nil, errors.New("releaselog: private log key: not an Ed25519 note key")
	}
	vkey, err := note.NewEd25519VerifierKey(s.Name(), ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey))
	if err != nil {
		return nil, nil, fmt.Errorf("releaselog: private log key: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, nil, fmt.Errorf("releaselog: private log key: %w", err)
	}
	return s, v, nil
}

// ParseVerifier parses a public log key.
func ParseVerifier(vkey string) (note.Verifier, error) {
	vkey = strings.TrimSpace(vkey)
	if strings.HasPrefix(vkey, privatePrefix) {
		return nil, errors.New("releaselog: this is the private log key; give its .pub")
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("releaselog: public log key: %w (want NAME+HASH+KEY, written by driveway keygen --type log)", err)
	}
	return v, nil
}

// Key is a private log key: its signer and its verifier.
type Key struct {
	Signer   note.Signer
	Verifier note.Verifier
}

// LoadKey reads a private log key file.
func LoadKey(path string) (*Key, error) {
	b, err := readCapped(path, 4096)
	if err != nil {
		return nil, err
	}
	s, v, err := ParseSigner(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Key{s, v}, nil
}

// LoadVerifier reads a public log key file.
func LoadVerifier(path string) (note.Verifier, error) {
	b, err := readCapped(path, 4096)
	if err != nil {
		return nil, err
	}
	v, err := ParseVerifier(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// readCapped reads a file of at most limit bytes.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("releaselog: %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("releaselog: %s is more than %d bytes", path, limit)
	}
	return b, nil
}
