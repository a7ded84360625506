package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/driveway/driveway/releaselog"
	"github.com/driveway/driveway/signing"
)

func cmdKeygen(e *env, args []string) int {
	fs := e.flags("keygen", `
Keygen writes a signing key pair: PREFIX.key (private, mode 0600) and PREFIX.pub (public),
both PEM. It never overwrites. When DRIVEWAY_KEY_PASSWORD is set, the private key is
encrypted with it (scrypt + secretbox) and every command that signs reads the password from
the same variable. Ed25519 (the default) signs deterministically, so identical builds give
byte-identical manifests; ECDSA P-256 signatures are randomised.

--type log writes a transparency log key instead (driveway build --log-key, driveway serve
--log-key, driveway log verify --key): an Ed25519 key in the text encoding of Go's signed
notes (golang.org/x/mod/sumdb/note), named --name (default: PREFIX's base name). It is
never encrypted; keep PREFIX.key on the pipeline host like the release key.`)
	out := fs.String("out", "", "the key pair's path `PREFIX` (required)")
	typ := fs.String("type", string(signing.Ed25519), "key type: ed25519, ecdsa-p256, or log (a transparency log key)")
	name := fs.String("name", "", "with --type log: the key's `NAME` (default: PREFIX's base name)")
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
		password = []byte(pw)
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
