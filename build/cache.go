package build

// The build cache: what a build compiled of each product directory, kept so that the next
// build reads, validates and compiles only the products whose files changed.
//
// A product's work depends on its own files (products/<id>/…), on the catalog-wide files
// that the rules of one product read (catalog.json, partners.json, audiences.json), on the
// OS table, on Options.RequireFlight and on the build's own code. Its entry is named by the
// product key: SHA-256 over the entry format, the build version (Options.CacheVersion; the
// driveway command passes the SHA-256 of its own executable, so a new binary never reuses an
// old one's entries), the OS table, RequireFlight, those three catalog-wide files and every
// file under the product directory (path and the SHA-256 of its content). blocks.json is not
// in the key: only the rules that span labels read it, and they run in every build.
//
// An entry holds the product's summary (catalogs.AppendSummary: what the rules that span
// labels read of it, and its problems) and its compiled labels (label records, grid rows,
// control inputs). A build always runs the rules that span labels and assembles the shards
// from the entries, fresh or cached alike, so an incremental build is byte-identical to a
// clean one (TestIncrementalIdentical).
//
// Layout, under Options.Cache:
//
//	v1/products/<key[:2]>/<key>   one entry per product directory
//	v1/files                      the file index: each input file's stat and content hash
//
// Entry:
//
//	"driveway build cache entry v1\n" key:32 n:uvarint summary n:uvarint { label } sha256:32
//	label = id:str err:str value:bytes control:bytes(JSON) n:uvarint { hwid:str row:compiled.Row(14 bytes) }
//
// str and bytes are a uvarint length and the bytes. The trailing SHA-256 covers everything
// before it. An entry that is truncated, fails its checksum, names another key than its
// file's (copied from elsewhere) or does not decode is damaged or foreign: the build says so
// in the report, ignores it and builds the product from its files.
//
// The file index lets a build skip reading files that did not change, as git's index does: a
// file whose size, modification time, change time and inode are those recorded with its hash
// keeps that hash, unless it was modified less than two seconds before the index was
// written (a change within the same tick of a coarse clock would not show in its times);
// every other file is read and hashed. Directories are recorded the same way with their
// listing: adding, removing or renaming an entry changes a directory's modification time, so
// an unchanged directory is not read again (on a slow file system, listing the tree's
// directories costs more than stat-ing its files). Index: "driveway build file index v1\n",
// then n:uvarint { path:str size:uvarint mtime:varint ctime:varint inode:uvarint sha256:32 },
// then n:uvarint { path:str mtime:varint ctime:varint inode:uvarint n:uvarint { name:str
// dir:byte } }, then the SHA-256 of what precedes. A damaged index is ignored: every file is
// hashed and every directory read.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/catalogs/ostable"
	"github.com/driveway/driveway/internal/atomicfile"
)

const (
	entryMagic = "driveway build cache entry v1\n"
	indexMagic = "driveway build file index v1\n"
	cacheTree  = "v1"
	// racyWindow: a file modified this close before the file index was written is hashed
	// again (see above).
	racyWindow = 2 * time.Second
)

// CacheReport is what a build did with its cache (Options.Cache).
type CacheReport struct {
	Dir          string   `json:"dir"`
	Reused       int      `json:"reused"`       // product directories taken from the cache
	Built        int      `json:"built"`        // product directories read, validated and compiled
	FilesHashed  int      `json:"filesHashed"`  // input files read to hash them (the others were unchanged since the index was written)
	FilesIndexed int      `json:"filesIndexed"` // input files whose hash the index gave
	DirsRead     int      `json:"dirsRead"`     // directories listed (the others' listing was the index's)
	DirsIndexed  int      `json:"dirsIndexed"`
	Ignored      []string `json:"ignored"` // damaged or foreign entries, with why
	Removed      int      `json:"removed"` // entries no product of this tree uses any more
	WriteError   string   `json:"writeError,omitempty"`
}

// productCache is one build's view of the cache. Its methods are safe for concurrent use.
type productCache struct {
	dir    string // Options.Cache/v1
	labels string // the tree
	prefix []byte // the key material every product shares

	index       map[string]fileStat // as read
	dirs        map[string]dirStat  // as read
	trustBefore int64               // mtime (ns) below which an indexed file's hash (a directory's listing) is trusted

	mu        sync.Mutex
	fresh     map[string]fileStat // the index to write
	freshDirs map[string]dirStat
	used      map[string]bool // entry names this build used or wrote
	report    *CacheReport
}

// fileStat is one file of the index.
type fileStat struct {
	size, mtime, ctime int64
	inode              uint64
	sum                [32]byte
}

// dirStat is one directory of the index, with its listing.
type dirStat struct {
	mtime, ctime int64
	inode        uint64
	entries      []dirEntry // in name order, as os.ReadDir lists them
	read         bool       // listed by this build (not written to the index)
}

type dirEntry struct {
	name string
	dir  bool
}

// openCache opens the cache at opts.Cache for the tree t (opened, with no products yet).
func openCache(opts Options, t *catalogs.Tree) (*productCache, error) {
	dir := filepath.Join(opts.Cache, cacheTree)
	version := opts.CacheVersion
	if version == "" {
		v, err := executableVersion()
		if err != nil {
			return nil, fmt.Errorf("build: the cache needs the build's version: %w (pass Options.CacheVersion)", err)
		}
		version = v
	}
	h := sha256.New()
	osJSON, err := json.Marshal(t.OS)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(h, "%s\x00%s\x00requireFlight=%v\x00", entryMagic, version, opts.RequireFlight)
	writeField(h, osJSON)
	for _, name := range []string{"catalog.json", "partners.json", "audiences.json"} {
		b, err := os.ReadFile(filepath.Join(opts.Labels, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fmt.Fprintf(h, "%s absent\x00", name)
		case err != nil:
			return nil, fmt.Errorf("build: %w", err)
		default:
			fmt.Fprintf(h, "%s\x00", name)
			writeField(h, b)
		}
	}
	c := &productCache{dir: dir, labels: opts.Labels, prefix: h.Sum(nil), used: map[string]bool{},
		report: &CacheReport{Dir: opts.Cache, Ignored: []string{}}}
	c.index, c.dirs, c.trustBefore = readIndex(filepath.Join(dir, "files"))
	// The index to write is about the one read: sized for it, it is not grown (and rehashed)
	// entry by entry under the lock the workers share.
	c.fresh, c.freshDirs = make(map[string]fileStat, len(c.index)), make(map[string]dirStat, len(c.dirs))
	return c, nil
}

func writeField(w io.Writer, b []byte) {
	var n [binary.MaxVarintLen64]byte
	w.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
	w.Write(b)
}

// executableVersion is the SHA-256 of the running executable: a rebuilt driveway, whatever
// it changed, never reads an older one's entries.
func executableVersion() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// key returns the product key of products/<dirName>, hashing the files that changed since
// the index was written, and the files it read (slash-separated paths in the tree), so that
// a product that must be built is read once. An error (a file that cannot be read) means the
// product is not cached: the loader reports it.
func (c *productCache) key(dirName string) (string, map[string][]byte, error) {
	read := map[string][]byte{}
	root := filepath.Join(c.labels, "products", dirName)
	type file struct {
		rel string
		st  fileStat
	}
	var files []file
	hashed, indexed := 0, 0
	dirs := map[string]dirStat{}
	var walk func(path, rel string) error
	walk = func(path, rel string) error {
		entries, err := c.readDir(path, rel, dirs)
		if err != nil {
			return err
		}
		for _, e := range entries {
			p, r := filepath.Join(path, e.name), rel+"/"+e.name
			if e.dir {
				if err := walk(p, r); err != nil {
					return err
				}
				continue
			}
			info, err := os.Stat(p) // a symbolic link is read through, as the loader reads it
			if err != nil {
				return err
			}
			if info.IsDir() {
				continue // a link to a directory: the loader lists it by name only
			}
			st := statOf(info)
			if old, ok := c.index[r]; ok && old.size == st.size && old.mtime == st.mtime && old.ctime == st.ctime &&
				old.inode == st.inode && st.mtime < c.trustBefore {
				st.sum = old.sum
				indexed++
			} else {
				sum, b, err := hashFile(p, info.Size())
				if err != nil {
					return err
				}
				st.sum = sum
				if b != nil {
					read[r] = b
				}
				hashed++
			}
			files = append(files, file{r, st})
		}
		return nil
	}
	if err := walk(root, "products/"+dirName); err != nil {
		return "", nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	h := sha256.New()
	h.Write(c.prefix)
	fmt.Fprintf(h, "%s\x00%d\x00", dirName, len(files))
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00", f.rel)
		h.Write(f.st.sum[:])
	}
	c.mu.Lock()
	for _, f := range files {
		c.fresh[f.rel] = f.st
	}
	for rel, d := range dirs {
		if d.read {
			c.report.DirsRead++
		} else {
			c.report.DirsIndexed++
		}
		d.read = false
		c.freshDirs[rel] = d
	}
	c.report.FilesHashed += hashed
	c.report.FilesIndexed += indexed
	c.mu.Unlock()
	return hex.EncodeToString(h.Sum(nil)), read, nil
}

// readDir lists a directory of the tree (rel: its slash-separated path), from the index when
// the directory's times and inode are those recorded with its listing: adding, removing or
// renaming an entry changes a directory's modification time, so only a directory that
// changed is read again (with the racy window of files). The listing is recorded in dirs.
func (c *productCache) readDir(path, rel string, dirs map[string]dirStat) ([]dirEntry, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	st := statOf(info)
	if old, ok := c.dirs[rel]; ok && old.mtime == st.mtime && old.ctime == st.ctime && old.inode == st.inode && st.mtime < c.trustBefore {
		dirs[rel] = old
		old.read = false
		return old.entries, nil
	}
	des, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	d := dirStat{mtime: st.mtime, ctime: st.ctime, inode: st.inode, entries: make([]dirEntry, len(des)), read: true}
	for i, de := range des {
		d.entries[i] = dirEntry{de.Name(), de.IsDir()}
	}
	dirs[rel] = d
	return d.entries, nil
}

// hashFile returns the SHA-256 of a file's content and, unless it is larger than the loader
// reads (catalogs.MaxFileSize), the content.
func hashFile(path string, size int64) ([32]byte, []byte, error) {
	if size <= catalogs.MaxFileSize {
		b, err := os.ReadFile(path)
		if err != nil {
			return [32]byte{}, nil, err
		}
		if int64(len(b)) <= catalogs.MaxFileSize {
			return sha256.Sum256(b), b, nil
		}
		return sha256.Sum256(b), nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, nil, err
	}
	return [32]byte(h.Sum(nil)), nil, nil
}

// readFS is a file system whose files already read (to hash them) are served from memory:
// a product built after its key was computed is read from disk once.
type readFS struct {
	base  fs.FS
	files map[string][]byte
}

func (r readFS) Open(name string) (fs.File, error) {
	if b, ok := r.files[name]; ok {
		return &memFile{name: name, Reader: bytes.NewReader(b), size: int64(len(b))}, nil
	}
	return r.base.Open(name)
}

type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *memFile) Stat() (fs.FileInfo, error) { return memInfo{f}, nil }
func (f *memFile) Close() error               { return nil }

type memInfo struct{ f *memFile }

func (i memInfo) Name() string       { return filepath.Base(i.f.name) }
func (i memInfo) Size() int64        { return i.f.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

func (c *productCache) entryPath(key string) string {
	return filepath.Join(c.dir, "products", key[:2], key)
}

// get returns the cached unit of a product key, or false. A damaged or foreign entry is
// reported and ignored.
func (c *productCache) get(key string) (*unit, bool) {
	b, err := os.ReadFile(c.entryPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	var u *unit
	if err == nil {
		u, err = decodeEntry(b, key)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.report.Ignored = append(c.report.Ignored, fmt.Sprintf("%s: %v", c.entryPath(key), err))
		return nil, false
	}
	c.used[key] = true
	c.report.Reused++
	return u, true
}

// ignore reports a reused entry as damaged after all (its summary does not decode): the
// build builds the product from its files and puts the entry again.
func (c *productCache) ignore(key string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.report.Ignored = append(c.report.Ignored, fmt.Sprintf("%s: %v", c.entryPath(key), err))
	c.report.Reused--
}

// put writes the entry of a unit built from its files. A cache that cannot be written slows
// the next build down, nothing else: the error is in the report.
func (c *productCache) put(key string, u *unit) {
	b := encodeEntry(key, u)
	path := c.entryPath(key)
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
		if err = os.WriteFile(tmp, b, 0o644); err == nil {
			if err = os.Rename(tmp, path); err != nil {
				os.Remove(tmp)
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used[key] = true
	c.report.Built++
	if err != nil && c.report.WriteError == "" {
		c.report.WriteError = err.Error()
	}
}

// finish writes the file index and removes the entries this build did not use: the cache
// holds one tree's products, not every version of them.
func (c *productCache) finish() *CacheReport {
	if err := writeIndex(filepath.Join(c.dir, "files"), c.fresh, c.freshDirs); err != nil && c.report.WriteError == "" {
		c.report.WriteError = err.Error()
	}
	buckets, _ := os.ReadDir(filepath.Join(c.dir, "products"))
	for _, b := range buckets {
		entries, _ := os.ReadDir(filepath.Join(c.dir, "products", b.Name()))
		for _, e := range entries {
			if !c.used[e.Name()] {
				if os.Remove(filepath.Join(c.dir, "products", b.Name(), e.Name())) == nil {
					c.report.Removed++
				}
			}
		}
	}
	return c.report
}

// unit is one product directory's work: its summary (the product as the rules that span
// labels see it, with its problems) and its compiled labels.
type unit struct {
	seq     int    // the unit's number in the spill (rowSpill)
	dir     string // the product directory, under products/
	key     string // its cache key; "" without a cache
	summary []byte // until decoded (decodeSummaries)
	product *catalogs.Product
	probs   catalogs.Problems
	labels  []compiledLabel
}

func encodeEntry(key string, u *unit) []byte {
	raw, _ := hex.DecodeString(key)
	b := append([]byte(entryMagic), raw...)
	b = appendBytes(b, u.summary)
	b = binary.AppendUvarint(b, uint64(len(u.labels)))
	for _, l := range u.labels {
		b = appendBytes(b, []byte(l.id))
		b = appendBytes(b, []byte(l.err))
		b = appendBytes(b, l.value)
		ctl, _ := json.Marshal(l.control)
		b = appendBytes(b, ctl)
		b = binary.AppendUvarint(b, uint64(l.nrows))
		b = append(b, l.rows...)
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

const rowSize = 14 // label:8 inf:2 slot family score flags

func appendRow(b []byte, r compiled.Row) []byte {
	b = binary.LittleEndian.AppendUint64(b, r.Label)
	b = binary.LittleEndian.AppendUint16(b, r.INF)
	return append(b, byte(r.Slot), byte(r.Family), r.Score, r.Flags)
}

// decodeRow is appendRow's inverse, of rowSize bytes.
func decodeRow(r []byte) compiled.Row {
	return compiled.Row{Label: binary.LittleEndian.Uint64(r), INF: binary.LittleEndian.Uint16(r[8:]),
		Slot: ostable.Slot(r[10]), Family: ostable.Family(r[11]), Score: r[12], Flags: r[13]}
}

var errEntry = errors.New("damaged entry")

// decodeEntry decodes an entry file for key.
func decodeEntry(b []byte, key string) (*unit, error) {
	n := len(entryMagic) + 32 + 32
	if len(b) < n || string(b[:len(entryMagic)]) != entryMagic {
		return nil, fmt.Errorf("%w: not a cache entry of this format", errEntry)
	}
	body, sum := b[:len(b)-32], b[len(b)-32:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("%w: checksum mismatch", errEntry)
	}
	if hex.EncodeToString(body[len(entryMagic):len(entryMagic)+32]) != key {
		return nil, fmt.Errorf("%w: the entry is for another product key (foreign)", errEntry)
	}
	d := &entryDecoder{b: body[len(entryMagic)+32:]}
	// The summary is decoded after the load (decodeSummaries); it is copied out of the
	// entry, which holds the labels too.
	u := &unit{summary: bytes.Clone(d.bytes())}
	nl := d.count(5)
	for i := 0; i < nl && d.err == nil; i++ {
		l := compiledLabel{id: string(d.bytes()), err: string(d.bytes())}
		if v := d.bytes(); len(v) > 0 {
			l.value = bytes.Clone(v) // not a slice of the entry: the build keeps values, not entries
		}
		if ctl := d.bytes(); d.err == nil {
			if err := json.Unmarshal(ctl, &l.control); err != nil {
				return nil, fmt.Errorf("%w: label %s: control: %v", errEntry, l.id, err)
			}
		}
		// The rows are checked and kept encoded, a slice of the entry: the build spills
		// them right after (rowSpill.add), and the entry goes with them.
		nr := d.count(1 + rowSize)
		rows := d.b
		for j := 0; j < nr && d.err == nil; j++ {
			d.bytes()
			d.take(rowSize)
		}
		if d.err == nil && nr > 0 {
			l.rows, l.nrows = rows[:len(rows)-len(d.b)], nr
		}
		u.labels = append(u.labels, l)
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%w: %d bytes after the labels", errEntry, len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return u, nil
}

type entryDecoder struct {
	b   []byte
	err error
}

func (d *entryDecoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	n, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.err = fmt.Errorf("%w: truncated", errEntry)
		return 0
	}
	d.b = d.b[k:]
	return n
}

func (d *entryDecoder) count(size int) int {
	n := d.uint()
	if n > uint64(len(d.b)/size) {
		if d.err == nil {
			d.err = fmt.Errorf("%w: a count of %d past the end", errEntry, n)
		}
		return 0
	}
	return int(n)
}

func (d *entryDecoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.err = fmt.Errorf("%w: truncated", errEntry)
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *entryDecoder) bytes() []byte { return d.take(d.count(1)) }

// readIndex reads the file index; a missing or damaged one is empty. trustBefore is its
// modification time less racyWindow.
func readIndex(path string) (map[string]fileStat, map[string]dirStat, int64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, 0
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, nil, 0
	}
	files, dirs := parseIndex(b)
	if files == nil {
		return nil, nil, 0
	}
	return files, dirs, info.ModTime().Add(-racyWindow).UnixNano()
}

// parseIndex decodes a file index; nil when it is damaged.
func parseIndex(b []byte) (map[string]fileStat, map[string]dirStat) {
	if len(b) < len(indexMagic)+32 || string(b[:len(indexMagic)]) != indexMagic {
		return nil, nil
	}
	body, sum := b[:len(b)-32], b[len(b)-32:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, nil
	}
	d := &entryDecoder{b: body[len(indexMagic):]}
	n := d.count(1 + 4 + 32)
	files := make(map[string]fileStat, n)
	for i := 0; i < n && d.err == nil; i++ {
		rel := string(d.bytes())
		st := fileStat{size: int64(d.uint())}
		st.mtime, st.ctime = d.varint(), d.varint()
		st.inode = d.uint()
		copy(st.sum[:], d.take(32))
		files[rel] = st
	}
	n = d.count(5)
	dirs := make(map[string]dirStat, n)
	for i := 0; i < n && d.err == nil; i++ {
		rel := string(d.bytes())
		ds := dirStat{mtime: d.varint(), ctime: d.varint(), inode: d.uint()}
		m := d.count(2)
		ds.entries = make([]dirEntry, 0, m)
		for j := 0; j < m && d.err == nil; j++ {
			name := string(d.bytes())
			isDir := d.take(1)
			if d.err == nil && isDir[0] > 1 {
				d.err = fmt.Errorf("%w: directory %s: entry %q has the flag %d (0: a file, 1: a directory)", errEntry, rel, name, isDir[0])
			}
			if d.err == nil {
				ds.entries = append(ds.entries, dirEntry{name, isDir[0] == 1})
			}
		}
		dirs[rel] = ds
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, nil
	}
	return files, dirs
}

func (d *entryDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	n, k := binary.Varint(d.b)
	if k <= 0 {
		d.err = fmt.Errorf("%w: truncated", errEntry)
		return 0
	}
	d.b = d.b[k:]
	return n
}

func writeIndex(path string, files map[string]fileStat, dirs map[string]dirStat) error {
	b := []byte(indexMagic)
	b = binary.AppendUvarint(b, uint64(len(files)))
	for _, rel := range slices.Sorted(maps.Keys(files)) {
		st := files[rel]
		b = appendBytes(b, []byte(rel))
		b = binary.AppendUvarint(b, uint64(st.size))
		b = binary.AppendVarint(b, st.mtime)
		b = binary.AppendVarint(b, st.ctime)
		b = binary.AppendUvarint(b, st.inode)
		b = append(b, st.sum[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(dirs)))
	for _, rel := range slices.Sorted(maps.Keys(dirs)) {
		d := dirs[rel]
		b = appendBytes(b, []byte(rel))
		b = binary.AppendVarint(b, d.mtime)
		b = binary.AppendVarint(b, d.ctime)
		b = binary.AppendUvarint(b, d.inode)
		b = binary.AppendUvarint(b, uint64(len(d.entries)))
		for _, e := range d.entries {
			b = appendBytes(b, []byte(e.name))
			if e.dir {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	}
	sum := sha256.Sum256(b)
	return atomicfile.Write(path, append(b, sum[:]...), 0o644)
}

// String is the one line a build prints about its cache.
func (r *CacheReport) String() string {
	s := fmt.Sprintf("cache %s: %d products reused, %d built; %d files hashed, %d unchanged; %d directories listed, %d unchanged",
		r.Dir, r.Reused, r.Built, r.FilesHashed, r.FilesIndexed, r.DirsRead, r.DirsIndexed)
	if len(r.Ignored) > 0 {
		s += fmt.Sprintf("; %d damaged or foreign entries ignored (%s)", len(r.Ignored), strings.Join(r.Ignored, "; "))
	}
	return s
}
