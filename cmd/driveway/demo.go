package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/driveway/driveway/catalogs/examples"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
)

func cmdDemo(e *env, args []string) int {
	fs := e.flags("demo", `
Demo runs the whole pipeline on the bundled example catalog, with nothing but this binary:
it writes the example label tree into a directory, makes a signing key, validates and builds
the tree into a signed release, verifies the release offline, answers the bundled example
request (a Contoso laptop with a NIC, its firmware and a toaster) with --explain from the
command line, then starts the edge on a loopback port and asks it the same request over HTTP.
Each step is printed as the command you would run yourself. With --serve the edge keeps
running until Ctrl-C.

The example's dates are absolute (go-live dates through 2026, a rollout staged from
2026-11-10 to 2026-12-01), so the demo runs every step at the example's own clock, --now
(default `+exampleNow+`): the release is built, verified, opened and served at that time, and
the answers are the README's whatever today's date is. The demo never reads the system clock.`)
	dir := fs.String("dir", "", "work in this `DIR` (default: a new temporary directory, kept for you to explore)")
	now := fs.String("now", exampleNow, "the `TIME` (RFC 3339) every step runs at: build, verify, offer and the edge's clock")
	keepServing := fs.Bool("serve", false, "keep the edge running after the demo (Ctrl-C stops it)")
	listen := fs.String("listen", "127.0.0.1:0", "the edge's `ADDR` (port 0: any free port)")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	at, err := e.parseNow(*now)
	if err != nil {
		return e.usageError("demo", err.Error())
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "driveway-demo-")
		if err != nil {
			return e.fail("demo", err)
		}
		*dir = d
	}
	labels := filepath.Join(*dir, "labels")
	if err := copyFS(examplesFS(), "contoso", labels); err != nil {
		return e.fail("demo", err)
	}
	request := filepath.Join(*dir, "request.json")
	req, err := examples.Requests.ReadFile("requests/contoso-model-b13.json")
	if err != nil {
		return e.fail("demo", err)
	}
	if err := os.WriteFile(request, req, 0o644); err != nil {
		return e.fail("demo", err)
	}
	key := filepath.Join(*dir, "key")
	catalog := filepath.Join(*dir, "catalog")
	fmt.Fprintf(e.stderr, "# the example label tree is in %s\n", labels)
	fmt.Fprintf(e.stderr, "# every step runs at the example's clock, %s (its dates are absolute; --now moves it)\n", *now)
	steps := [][]string{
		{"keygen", "--unencrypted", "--out", key},
		{"validate", "--labels", labels},
		{"build", "--labels", labels, "--out", catalog, "--key", key + ".key", "--now", *now},
		{"verify", "--catalog", catalog, "--key", key + ".pub", "--now", *now},
		{"offer", "--catalog", catalog, "--key", key + ".pub", "--now", *now, "--explain", "--indent", "--request", request},
	}
	for _, s := range steps {
		if s[0] == "keygen" {
			if _, err := os.Stat(key + ".key"); err == nil {
				continue // a --dir used before keeps its key
			}
		}
		fmt.Fprintf(e.stderr, "\n$ driveway %s\n", strings.Join(s, " "))
		if code := run(s, e.stdin, e.stdout, e.stderr); code != exitOK {
			return code
		}
	}
	fmt.Fprintf(e.stderr, "\n# try: driveway inspect --catalog %s --hwid 'HID\\TOASTER&COL02'\n", catalog)
	return demoEdge(e, catalog, key+".pub", request, at, *listen, *keepServing)
}

// exampleNow is the time the bundled example describes: its releases are built and its
// requests answered at it.
const exampleNow = "2026-11-21T12:00:00Z"

// demoEdge starts the edge on the demo's catalog, asks it the example request over HTTP and
// prints the answer; with keepServing it then serves until interrupted.
func demoEdge(e *env, catalog, pub, request string, now time.Time, listen string, keepServing bool) int {
	v, err := signing.LoadVerifier(pub)
	if err != nil {
		return e.fail("demo", err)
	}
	clock := func() time.Time { return now } // the example's clock, for the edge too
	srv, err := serve.New(serve.Config{Catalog: catalog, Keys: []*signing.Verifier{v}, Clock: clock})
	if err != nil {
		return e.fail("demo", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return e.fail("demo", err)
	}
	go srv.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	url := fmt.Sprintf("http://%s/v1/offers", ln.Addr())
	fmt.Fprintf(e.stderr, "\n# the edge, in this process at the example's clock (a real edge runs at the system clock and\n"+
		"# refuses this release after it expires, %s):\n", expiresOf(catalog))
	fmt.Fprintf(e.stderr, "$ driveway serve --catalog %s --key %s --listen %s &\n", catalog, pub, ln.Addr())
	fmt.Fprintf(e.stderr, "$ curl -s -H 'Content-Type: application/json' --data-binary @%s '%s'\n", request, url)
	body, err := os.ReadFile(request)
	if err != nil {
		return e.fail("demo", err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return e.fail("demo", err)
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return e.fail("demo", err)
	}
	if resp.StatusCode != http.StatusOK {
		return e.fail("demo", fmt.Errorf("the edge answered %s: %s", resp.Status, answer))
	}
	var indented bytes.Buffer
	if json.Indent(&indented, answer, "", "  ") == nil {
		answer = indented.Bytes()
	}
	e.stdout.Write(answer)
	if !keepServing {
		fmt.Fprintf(e.stderr, "# the edge answered over HTTP; run 'driveway demo --serve' to keep it running\n")
		return exitOK
	}
	fmt.Fprintf(e.stderr, "# the edge is serving on http://%s (metrics: /metrics, release: /v1/release); Ctrl-C stops it\n", ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return exitOK
}

// expiresOf names the expiry of the newest release in catalog, or "" if it cannot be read.
func expiresOf(catalog string) string {
	_, env, err := index.Latest(catalog)
	if err != nil {
		return "?"
	}
	payload, err := signing.Payload(env, index.ManifestType)
	if err != nil {
		return "?"
	}
	m, err := index.ParseManifest(payload)
	if err != nil {
		return "?"
	}
	return m.Expires.UTC().Format(time.RFC3339)
}

// copyFS writes the tree under root of an embedded file system into dir.
func copyFS(src fs.FS, root, dir string) error {
	return fs.WalkDir(src, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		target := filepath.Join(dir, filepath.FromSlash(rel))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// examplesFS is the embedded example tree (a function so tests read it the same way).
func examplesFS() fs.FS { return examples.Contoso }
