package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/driveway/driveway/catalogs/examples"
)

func cmdDemo(e *env, args []string) int {
	fs := e.flags("demo", `
Demo runs the whole pipeline on the bundled example catalog, with nothing but this binary:
it writes the example label tree into a directory, makes a signing key, validates and builds
the tree into a signed release, verifies the release offline, and answers the bundled example
request (a Contoso laptop with a NIC, its firmware and a toaster) with --explain. Each step is
printed as the command you would run yourself.`)
	dir := fs.String("dir", "", "work in this `DIR` (default: a new temporary directory, kept for you to explore)")
	now := fs.String("now", "2026-11-21T12:00:00Z", "the build and request `TIME` (RFC 3339)")
	if code, ok := e.parse(fs, args); !ok {
		return code
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
	steps := [][]string{
		{"keygen", "--out", key},
		{"validate", "--labels", labels},
		{"build", "--labels", labels, "--out", catalog, "--key", key + ".key", "--now", *now, "--expires-after", "87600h"},
		{"verify", "--catalog", catalog, "--key", key + ".pub"},
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
	return exitOK
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
