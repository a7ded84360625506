package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driveway/driveway/signing"
)

// TestSmallThings (issue 17's small things): each message a new user met, as it reads now.
func TestSmallThings(t *testing.T) {
	work, _, catalog, key := liveExample(t)
	if code, stdout, _ := runCLI(nil, "help", "help"); code != 0 || !strings.Contains(stdout, "Usage") {
		t.Errorf("help help: exit %d\n%s", code, stdout)
	}
	// serve --catalog of a directory that is not there fails at once, in one line.
	if code, _, stderr := runCLI(nil, "serve", "--catalog", filepath.Join(work, "nonexistent"), "--key", key+".pub"); code != 1 ||
		!strings.Contains(stderr, "is not a directory: give the --out of driveway build") {
		t.Errorf("serve --catalog nonexistent: exit %d, %s", code, stderr)
	}
	// A failure once the edge logs JSON is a JSON line too (address already in use).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, _, stderr := runCLI(nil, "serve", "--catalog", catalog, "--key", key+".pub", "--listen", ln.Addr().String(), "--state", filepath.Join(work, "state.json"))
	if code != 1 || !strings.Contains(stderr, "address already in use") {
		t.Errorf("serve on a taken port: exit %d, %s", code, stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("serve on a taken port: a line that is not JSON: %s", line)
		}
	}
	// build given the public key says which file it wants.
	if code, _, stderr := runCLI(nil, "build", "--labels", filepath.Join(work, "examples", "contoso"), "--out", catalog, "--key", key+".pub", "--now", testNow()); code != 1 ||
		!strings.Contains(stderr, "is a public key, which verifies; signing needs the private key ("+key+".key") {
		t.Errorf("build --key .pub: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCLI([]byte("not json"), "offer", "--catalog", catalog, "--key", key+".pub", "--now", testNow()); code == 0 || !strings.Contains(stderr, "not JSON: a request is a JSON object") {
		t.Errorf("offer of 'not json': exit %d, %s", code, stderr)
	}
	// inspect --label speaks text unless asked for JSON, and its JSON has the project's
	// member names.
	code, stdout, stderr := runCLI(nil, "inspect", "--catalog", catalog, "--label", "1152921504606978202", "--json")
	if code != 0 || strings.Contains(stdout, `"Name"`) || !strings.Contains(stdout, `"infs"`) || !strings.Contains(stdout, `"version"`) {
		t.Errorf("inspect --label --json: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(nil, "inspect", "--catalog", catalog, "--label", "1152921504606978202")
	if code != 0 || strings.HasPrefix(stdout, "{") || !strings.HasPrefix(stdout, "label 1152921504606978202: ") || !strings.Contains(stdout, "\ninf ") || !strings.Contains(stdout, "\ncontrol: ") {
		t.Errorf("inspect --label: exit %d\n%s%s", code, stdout, stderr)
	}
	if got := count(1, "error") + ", " + count(0, "warning") + ", " + count(2, "row"); got != "1 error, 0 warnings, 2 rows" {
		t.Errorf("count: %s", got)
	}
}

// TestServeTLSAndAdminFlags: the TLS pair goes together and must load; a taken admin
// address fails the start, in one line.
func TestServeTLSAndAdminFlags(t *testing.T) {
	work, _, catalog, key := liveExample(t)
	if code, _, stderr := runCLI(nil, "serve", "--catalog", catalog, "--key", key+".pub", "--tls-cert", filepath.Join(work, "edge.crt")); code != 1 ||
		!strings.Contains(stderr, "TLSCert and TLSKey go together") {
		t.Errorf("serve --tls-cert alone: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCLI(nil, "serve", "--catalog", catalog, "--key", key+".pub", "--tls-cert", filepath.Join(work, "edge.crt"), "--tls-key", filepath.Join(work, "edge.key")); code != 1 ||
		!strings.Contains(stderr, "give --tls-cert a PEM certificate chain") {
		t.Errorf("serve with a missing TLS pair: exit %d, %s", code, stderr)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if code, _, stderr := runCLI(nil, "serve", "--catalog", catalog, "--key", key+".pub", "--listen", "127.0.0.1:0", "--admin-listen", taken.Addr().String(),
		"--state", filepath.Join(work, "state.json")); code != 1 || !strings.Contains(stderr, "--admin-listen") || !strings.Contains(stderr, "address already in use") {
		t.Errorf("serve --admin-listen on a taken port: exit %d, %s", code, stderr)
	}
}

// TestKeygenEncryptsByDefault: without a password and without a terminal keygen refuses,
// writing nothing; with DRIVEWAY_KEY_PASSWORD the key is encrypted and build signs with it;
// --unencrypted writes it in the clear, and contradicts a password.
func TestKeygenEncryptsByDefault(t *testing.T) {
	work := t.TempDir()
	t.Setenv(signing.PasswordEnv, "")
	os.Unsetenv(signing.PasswordEnv)
	key := filepath.Join(work, "k")
	if code, _, stderr := runCLI(nil, "keygen", "--out", key); code != 1 || !strings.Contains(stderr, "set "+signing.PasswordEnv) || !strings.Contains(stderr, "--unencrypted") {
		t.Errorf("keygen without a password: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(key + ".key"); err == nil {
		t.Error("keygen without a password wrote a key")
	}
	t.Setenv(signing.PasswordEnv, "correct horse")
	if code, _, stderr := runCLI(nil, "keygen", "--out", key); code != 0 || !strings.Contains(stderr, "encrypted with "+signing.PasswordEnv) {
		t.Fatalf("keygen with a password: exit %d, %s", code, stderr)
	}
	if _, err := signing.LoadSigner(context.Background(), key+".key", nil); err == nil {
		t.Error("the encrypted key loads without its password")
	}
	if _, err := signing.LoadSigner(context.Background(), key+".key", signing.PasswordFromEnv()); err != nil {
		t.Errorf("the encrypted key does not load with its password: %v", err)
	}
	if code, _, stderr := runCLI(nil, "keygen", "--unencrypted", "--out", filepath.Join(work, "k2")); code != exitUsage || !strings.Contains(stderr, "exclude each other") {
		t.Errorf("keygen --unencrypted with a password: exit %d, %s", code, stderr)
	}
	os.Unsetenv(signing.PasswordEnv)
	if code, _, stderr := runCLI(nil, "keygen", "--unencrypted", "--out", filepath.Join(work, "k3")); code != 0 || !strings.Contains(stderr, "unencrypted") {
		t.Errorf("keygen --unencrypted: exit %d, %s", code, stderr)
	}
}
