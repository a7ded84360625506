package main

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/term"

	"github.com/driveway/driveway/releaselog"
	"github.com/driveway/driveway/signing"
)

func cmdKeygen(e *env, args []string) int {
	fs := e.flags("keygen", `
Keygen writes a signing key pair: PREFIX.key (private, mode 0600) and PREFIX.pub (public),
both PEM. It never overwrites. The private key is encrypted (scrypt + secretbox) with the
password in DRIVEWAY_KEY_PASSWORD, which every command that signs reads too; on a terminal
without the variable, keygen asks for one (set the variable for the commands that sign).
--unencrypted writes it in the clear, for a key protected otherwise (a secrets manager, a
throwaway test key); without a password and without --unencrypted keygen refuses. Ed25519 (the default) signs deterministically, so identical builds give
byte-identical manifests; ECDSA P-256 signatures are randomised.

--type log writes a transparency log key instead (driveway build --log-key, driveway serve
--log-key, driveway log verify --key): an Ed25519 key in the text encoding of Go's signed
notes (golang.org/x/mod/sumdb/note), named --name (default: PREFIX's base name). It is
never encrypted; keep PREFIX.key on the pipeline host like the release key.`)
	out := fs.String("out", "", "the key pair's path `PREFIX` (required)")
	typ := fs.String("type", string(signing.Ed25519), "key type: ed25519, ecdsa-p256, or log (a transparency log key)")
	name := fs.String("name", "", "with --type log: the key's `NAME` (default: PREFIX's base name)")
	unencrypted := fs.Bool("unencrypted", false, "write the private key unencrypted (a key kept in a secrets manager, a test key)")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if *out == "" {
		return e.usageError("keygen", "--out is required")
	}
	if *typ == "log" {
		n := *name
		if n == "" {
			n = filepath.Base(*out)
		}
		if err := releaselog.WriteKeyPair(*out, n); err != nil {
			return e.fail("keygen", err)
		}
		fmt.Fprintf(e.stderr, "wrote %s.key (transparency log key %q, unencrypted) and %s.pub\n", *out, n, *out)
		return exitOK
	}
	if *name != "" {
		return e.usageError("keygen", "--name goes with --type log")
	}
	kt := signing.KeyType(*typ)
	if kt != signing.Ed25519 && kt != signing.ECDSAP256 {
		return e.usageError("keygen", fmt.Sprintf("--type %q: want ed25519, ecdsa-p256 or log", *typ))
	}
	var password []byte
	if pw, ok := os.LookupEnv(signing.PasswordEnv); ok && pw != "" {
		if *unencrypted {
			return e.usageError("keygen", "--unencrypted and "+signing.PasswordEnv+" exclude each other")
		}
		password = []byte(pw)
	} else if !*unencrypted {
		var err error
		if password, err = e.askPassword(); err != nil {
			return e.fail("keygen", err)
		}
	}
	if err := signing.WriteKeyPair(*out, kt, password); err != nil {
		return e.fail("keygen", err)
	}
	enc := "unencrypted"
	if password != nil {
		enc = "encrypted with " + signing.PasswordEnv
	}
	fmt.Fprintf(e.stderr, "wrote %s.key (%s, %s) and %s.pub\n", *out, kt, enc, *out)
	return exitOK
}

// askPassword reads a new password twice from the terminal on stdin; without a terminal it
// says how to give one.
func (e *env) askPassword() ([]byte, error) {
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, fmt.Errorf("the private key is written encrypted: set %s to its password (every command that signs reads it), run keygen on a terminal to type one, or pass --unencrypted for a key protected otherwise", signing.PasswordEnv)
	}
	fmt.Fprint(e.stderr, "password for the private key: ")
	a, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return nil, err
	}
	fmt.Fprint(e.stderr, "again: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return nil, err
	}
	if len(a) == 0 || string(a) != string(b) {
		return nil, fmt.Errorf("the passwords are empty or differ; nothing was written")
	}
	fmt.Fprintf(e.stderr, "set %s to this password for the commands that sign with the key\n", signing.PasswordEnv)
	return a, nil
}
