package build

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
)

// subsetFS is the part of a label tree that a control-only release reads: the files added
// to it, the directories above them and products/. catalogs.LoadFS over it loads a tree of
// just those files, read where they are; a subset of no label is still a label tree, of no
// product.
type subsetFS struct {
	fsys  fs.FS
	shown map[string]bool // the slash-separated names shown: files and their directories
}

func newSubsetFS(fsys fs.FS) *subsetFS {
	return &subsetFS{fsys: fsys, shown: map[string]bool{".": true, "products": true}}
}

// add shows the file name (slash-separated) and its directories. A name that does not
// exist is left out: the loader reports the missing files a tree needs itself.
func (s *subsetFS) add(name string) error {
	st, err := fs.Stat(s.fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if st.IsDir() {
		return fmt.Errorf("build: %s in the label tree is a directory; it must be a file", name)
	}
	for n := name; n != "."; n = path.Dir(n) {
		s.shown[n] = true
	}
	return nil
}

// addSubmission shows what label id of submission sub of product product is compiled
// with: the product's product.json, the submission's submission.json and
// driverMetadata.json, and every file of its shippingLabels/ (rules that span a
// submission's labels need them all). dir is the tree on disk, for the listing.
func (s *subsetFS) addSubmission(dir, id, product, sub string) error {
	base := path.Join("products", product, "submissions", sub)
	for _, name := range []string{path.Join("products", product, "product.json"), path.Join(base, "submission.json"), path.Join(base, "driverMetadata.json")} {
		if err := s.add(name); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(base), "shippingLabels"))
	if err != nil {
		return fmt.Errorf("build: label %s: %w", id, err)
	}
	for _, e := range entries {
		if e.IsDir() { // not a label: the loader skips it too
			continue
		}
		if err := s.add(path.Join(base, "shippingLabels", e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// Open opens a file or directory of the subset; a directory lists only what is shown.
func (s *subsetFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if !s.shown[name] {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	f, err := s.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.IsDir() {
		return f, nil
	}
	entries, err := s.ReadDir(name)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &subsetDir{File: f, entries: entries}, nil
}

// ReadDir lists what the subset shows of directory name, sorted by name (fs.ReadDirFS).
func (s *subsetFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !s.shown[name] {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	entries, err := fs.ReadDir(s.fsys, name)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(entries, func(e fs.DirEntry) bool { return !s.shown[path.Join(name, e.Name())] }), nil
}

// subsetDir is an open directory of a subsetFS: the directory's own Stat and Close, and
// the entries the subset shows.
type subsetDir struct {
	fs.File
	entries []fs.DirEntry
}

// ReadDir returns the next n entries (all that are left for n <= 0), as fs.ReadDirFile.
func (d *subsetDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if n <= 0 {
		e := d.entries
		d.entries = nil
		return e, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.entries))
	e := d.entries[:n]
	d.entries = d.entries[n:]
	return e, nil
}
