package signing_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/driveway/driveway/signing"
)

func ExampleSign() {
	dir, err := os.MkdirTemp("", "signing-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// driveway keygen: release.key (0600) and release.pub. With a non-nil
	// password the private key is encrypted, and LoadSigner reads the
	// password from DRIVEWAY_KEY_PASSWORD.
	prefix := filepath.Join(dir, "release")
	if err := signing.WriteKeyPair(prefix, signing.Ed25519, nil); err != nil {
		log.Fatal(err)
	}

	// The build signs the manifest.
	const manifestType = "application/vnd.driveway.release+json"
	manifest := []byte(`{"format":"driveway-release/1","sequence":42}`)
	signer, err := signing.LoadSigner(context.Background(), prefix+".key", signing.PasswordFromEnv())
	if err != nil {
		log.Fatal(err)
	}
	envelope, err := signing.Sign(manifestType, manifest, signer)
	if err != nil {
		log.Fatal(err)
	}

	// An edge, or driveway verify, trusts the public key only.
	pub, err := signing.LoadVerifier(prefix + ".pub")
	if err != nil {
		log.Fatal(err)
	}
	got, err := signing.Open(envelope, manifestType, 1, pub)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("verified: %s\n", got)

	// Any other type, or any change to payload or signature, is refused.
	_, err = signing.Open(envelope, "application/vnd.other+json", 1, pub)
	fmt.Println(errors.Is(err, signing.ErrUnverified))
	// Output:
	// verified: {"format":"driveway-release/1","sequence":42}
	// true
}
