package client

// Downloading a verified offer's package.
//
// A package is fetched into the state directory's downloads/<sha256>.part, the name being
// the sha256 the signed record gives. A partial file left by an interrupted download is
// resumed with an HTTP Range request (bytes=N-): a 206 whose Content-Range starts at N is
// appended; a 200 (a server that ignores Range) starts the file over. Nothing past the
// record's size is read. When the file has the record's size, its sha256 (over the partial
// bytes and the new ones) is compared with the record's; only then is it renamed into
// packages/<sha256><ext>, the only place an install hook is pointed at. A file of the
// wrong size or hash is deleted, so the next attempt starts from nothing.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/driveway/driveway/internal/atomicfile"
)

// Errors of a download, wrapped by Get's errors.
var (
	ErrDownload = errors.New("client: download failed")                 // the package server unreachable, a status, a cut transfer
	ErrHash     = errors.New("client: package differs from its record") // size or sha256
)

// Directories in the state directory.
const (
	DownloadsDir = "downloads" // partial files, <sha256>.part
	PackagesDir  = "packages"  // verified packages, <sha256><ext>: what install hooks get
)

// Download is what fetching one package did.
type Download struct {
	Path    string // the verified package (in PackagesDir)
	Resumed int64  // bytes a partial file already held (0: a new download)
	Fetched int64  // bytes received in this attempt
	Cached  bool   // the verified package was already there: nothing fetched
}

// download fetches o's package with hc into state's directories and checks it.
func download(ctx context.Context, hc *http.Client, state string, o *Offer) (*Download, error) {
	want, err := hex.DecodeString(o.SHA256)
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("%w: sha256 %q", ErrHash, o.SHA256) // Verify refuses these already
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: package URL %q is not an http or https URL", ErrDownload, o.URL)
	}
	name := o.SHA256 + packageExt(u.Path)
	final := filepath.Join(state, PackagesDir, name)
	if ok, err := fileHas(final, o.Size, want); err == nil && ok {
		return &Download{Path: final, Cached: true}, nil
	}
	for _, d := range []string{DownloadsDir, PackagesDir} {
		if err := os.MkdirAll(filepath.Join(state, d), 0o755); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrState, err)
		}
	}
	part := filepath.Join(state, DownloadsDir, o.SHA256+".part")
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	defer f.Close()
	d := &Download{Path: final}
	h := sha256.New()
	// What the partial file holds counts if it is not longer than the package.
	have, err := io.Copy(h, io.LimitReader(f, int64(o.Size)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrState, part, err)
	}
	if have > int64(o.Size) {
		have = 0
		h.Reset()
	}
	if have < int64(o.Size) {
		if have, err = fetch(ctx, hc, o, f, h, have, d); err != nil {
			return d, err
		}
	}
	if have != int64(o.Size) {
		f.Close()
		os.Remove(part)
		return d, fmt.Errorf("%w: %s: %d bytes, the record says %d", ErrHash, o.URL, have, o.Size)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		f.Close()
		os.Remove(part)
		return d, fmt.Errorf("%w: %s: sha256 %x, the record says %s (the package server sent other bytes; the file is deleted)", ErrHash, o.URL, got, o.SHA256)
	}
	if err := f.Sync(); err != nil {
		return d, fmt.Errorf("%w: %v", ErrState, err)
	}
	f.Close()
	if err := os.Rename(part, final); err != nil {
		return d, fmt.Errorf("%w: %v", ErrState, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(final)); err != nil {
		return d, fmt.Errorf("%w: %v", ErrState, err)
	}
	return d, nil
}

// fetch requests o's package from byte have on, writes it to f (truncated to have, or to 0
// when the server sends the whole file) and h, and returns the file's new length.
func fetch(ctx context.Context, hc *http.Client, o *Offer, f *os.File, h hash.Hash, have int64, d *Download) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.URL, nil)
	if err != nil {
		return have, fmt.Errorf("%w: %v", ErrDownload, err)
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return have, fmt.Errorf("%w: %v", ErrDownload, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return have, fmt.Errorf("%w: %s answered bytes %q to a request from byte %d", ErrDownload, o.URL, resp.Header.Get("Content-Range"), have)
		}
		d.Resumed = have
	case resp.StatusCode == http.StatusOK:
		have = 0
		h.Reset()
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return have, fmt.Errorf("%w: %s: 416 for bytes from %d: the server's file is shorter than the record's %d bytes", ErrHash, o.URL, have, o.Size)
	default:
		return have, fmt.Errorf("%w: %s: %s", ErrDownload, o.URL, resp.Status)
	}
	if err := f.Truncate(have); err != nil {
		return have, fmt.Errorf("%w: %v", ErrState, err)
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return have, fmt.Errorf("%w: %v", ErrState, err)
	}
	// One byte past the record's size is enough to know the server's file is too long.
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, int64(o.Size)-have+1))
	d.Fetched = n
	have += n
	if err != nil {
		return have, fmt.Errorf("%w: %s: cut after %d of %d bytes: %v (run again to resume)", ErrDownload, o.URL, have, o.Size, err)
	}
	return have, nil
}

// contentRangeStart reads the first byte position of "bytes START-END/TOTAL".
func contentRangeStart(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	s, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

// fileHas reports whether the file at p has size bytes whose sha256 is want.
func fileHas(p string, size uint64, want []byte) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, int64(size)+1))
	if err != nil {
		return false, err
	}
	return n == int64(size) && bytes.Equal(h.Sum(nil), want), nil
}

// packageExt is the extension a package keeps from its URL (".cab"): 1 to 8 letters or
// digits, else none.
func packageExt(p string) string {
	ext := path.Ext(p)
	if len(ext) < 2 || len(ext) > 9 {
		return ""
	}
	for _, c := range ext[1:] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return ""
		}
	}
	return strings.ToLower(ext)
}
