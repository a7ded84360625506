package releaselog

// Reading, checking and appending to a log (formats in releaselog.go).

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/driveway/driveway/internal/atomicfile"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/statement"
)

// Source reads a log file by its name under log/ ("checkpoint", "tile/8/0/000", …), at most
// limit bytes (more is an error). A missing file is an error wrapping fs.ErrNotExist.
type Source func(name string, limit int64) ([]byte, error)

// DirSource reads the log of a catalog directory.
func DirSource(dir string) Source {
	return func(name string, limit int64) ([]byte, error) {
		return readCapped(filepath.Join(dir, Dir, filepath.FromSlash(name)), limit)
	}
}

// Log is a log read in full and checked (Read): every entry, and every stored hash
// recomputed from the entries.
type Log struct {
	Checkpoint Checkpoint
	Note       []byte // the signed checkpoint as read
	texts      [][]byte
	entries    []*Entry
	hashes     []tlog.Hash // tlog's stored hashes, by tlog.StoredHashIndex
}

// ReadHashes implements tlog.HashReader over the recomputed hashes.
func (l *Log) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("releaselog: stored hash %d of %d", x, len(l.hashes))
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

// Entries returns the log's entries in order.
func (l *Log) Entries() []*Entry { return l.entries }

// OpenCheckpoint checks a signed checkpoint with the log key and parses it.
func OpenCheckpoint(msg []byte, key note.Verifier) (Checkpoint, error) {
	if len(msg) > MaxCheckpointSize {
		return Checkpoint{}, fmt.Errorf("releaselog: checkpoint of %d bytes, more than %d: %w", len(msg), MaxCheckpointSize, ErrMalformed)
	}
	n, err := note.Open(msg, note.VerifierList(key))
	if err != nil {
		var unknown *note.UnknownVerifierError
		if errors.As(err, &unknown) || errors.As(err, new(*note.UnverifiedNoteError)) {
			return Checkpoint{}, fmt.Errorf("releaselog: the checkpoint is not signed by log key %s (%v): give the log's own key, or the log was signed by someone else", key.Name(), err)
		}
		return Checkpoint{}, fmt.Errorf("releaselog: the checkpoint does not verify with log key %s: %v", key.Name(), err)
	}
	for _, sig := range append(n.Sigs, n.UnverifiedSigs...) {
		// note decodes signatures leniently: a changed unused bit of the last base64
		// character still verifies. A checkpoint has one spelling.
		if _, err := base64.StdEncoding.Strict().DecodeString(sig.Base64); err != nil {
			return Checkpoint{}, fmt.Errorf("releaselog: the checkpoint's signature by %s is not canonical base64: %w", sig.Name, ErrMalformed)
		}
	}
	return ParseCheckpoint([]byte(n.Text))
}

// SignCheckpoint signs a checkpoint with the log key.
func SignCheckpoint(c Checkpoint, signer note.Signer) ([]byte, error) {
	b, err := note.Sign(&note.Note{Text: string(c.Text())}, signer)
	if err != nil {
		return nil, fmt.Errorf("releaselog: sign the checkpoint: %w", err)
	}
	return b, nil
}

// readCheckpoint reads and opens the checkpoint of src.
func readCheckpoint(src Source, key note.Verifier) (Checkpoint, []byte, error) {
	b, err := src(CheckpointFile, MaxCheckpointSize)
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, nil, fmt.Errorf("releaselog: no log here: the checkpoint cannot be read (%w); a catalog's log is started by driveway build --log-key", err)
	}
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("releaselog: the checkpoint: %w", err)
	}
	c, err := OpenCheckpoint(b, key)
	return c, b, err
}

// dataTile is the entry tile n of a tree of size size.
func dataTile(n, size int64) tlog.Tile {
	w := min(int64(1)<<TileHeight, size-n<<TileHeight)
	return tlog.Tile{H: TileHeight, L: -1, N: n, W: int(w)}
}

// Read reads a whole log from src and checks it: the checkpoint's signature (key), every
// entry tile (each entry parses, is of the checkpoint's catalog, and comes after the one
// before it in sequence), the tree hash of the entries against the checkpoint's, and every
// hash tile of the checkpoint's tree against the hashes recomputed from the entries. It does
// not check the statements' signatures: see CheckStatements.
func Read(src Source, key note.Verifier) (*Log, error) {
	cp, raw, err := readCheckpoint(src, key)
	if err != nil {
		return nil, err
	}
	l := &Log{Checkpoint: cp, Note: raw, hashes: make([]tlog.Hash, 0, tlog.StoredHashCount(cp.Size))}
	for n := int64(0); n<<TileHeight < cp.Size; n++ {
		t := dataTile(n, cp.Size)
		b, err := src(t.Path(), int64(t.W)*(MaxEntrySize+1))
		if err != nil {
			return nil, fmt.Errorf("releaselog: entry tile %s of checkpoint %s: %w", t.Path(), cp, err)
		}
		texts, err := splitEntries(b, t.W)
		if err != nil {
			return nil, fmt.Errorf("releaselog: %s: %w", t.Path(), err)
		}
		for _, text := range texts {
			if err := l.add(text); err != nil {
				return nil, fmt.Errorf("releaselog: %s: %w", t.Path(), err)
			}
		}
	}
	if cp.Size > 0 {
		root, err := tlog.TreeHash(cp.Size, l)
		if err != nil {
			return nil, err
		}
		if root != cp.Hash {
			return nil, fmt.Errorf("releaselog: the %d entries hash to %s, the checkpoint says %s: an entry was changed, or the checkpoint is of another history: %w",
				cp.Size, root, cp.Hash, ErrInconsistent)
		}
	}
	for _, t := range tlog.NewTiles(TileHeight, 0, cp.Size) {
		want, err := tlog.ReadTileData(t, l)
		if err != nil {
			return nil, err
		}
		got, err := src(t.Path(), int64(len(want)))
		if err != nil {
			return nil, fmt.Errorf("releaselog: hash tile %s of checkpoint %s: %w", t.Path(), cp, err)
		}
		if !bytes.Equal(got, want) {
			i := 0
			for i < len(got) && i < len(want) && got[i] == want[i] {
				i++
			}
			return nil, fmt.Errorf("releaselog: hash tile %s differs from the hashes of the entries at byte %d (%d bytes, want %d): %w",
				t.Path(), i, len(got), len(want), ErrInconsistent)
		}
	}
	return l, nil
}

// add appends an entry's text to the log being read or built, checking it.
func (l *Log) add(text []byte) error {
	i := int64(len(l.entries))
	e, err := ParseEntry(text)
	if err != nil {
		return fmt.Errorf("entry %d: %w", i, err)
	}
	if e.Catalog != l.Checkpoint.Catalog {
		return fmt.Errorf("entry %d is of catalog %q, the log's is %q", i, e.Catalog, l.Checkpoint.Catalog)
	}
	if i > 0 && e.Sequence <= l.entries[i-1].Sequence {
		return fmt.Errorf("entry %d is release %d, not after release %d of entry %d: %w", i, e.Sequence, l.entries[i-1].Sequence, i-1, ErrInconsistent)
	}
	hs, err := tlog.StoredHashes(i, text, l)
	if err != nil {
		return err
	}
	l.texts = append(l.texts, text)
	l.entries = append(l.entries, e)
	l.hashes = append(l.hashes, hs...)
	return nil
}

// CheckStatements checks every entry's statement: signed by threshold of keys, of the
// entry's catalog and sequence. Keys must include every key that signed a release in the log
// (after a rotation, the old keys too).
func (l *Log) CheckStatements(threshold int, keys ...*signing.Verifier) error {
	for i, e := range l.entries {
		st, err := statement.Open(e.Statement, threshold, keys...)
		if err != nil {
			return fmt.Errorf("releaselog: entry %d (release %d): %w", i, e.Sequence, err)
		}
		if st.Catalog != e.Catalog || st.Sequence != e.Sequence {
			return fmt.Errorf("releaselog: entry %d says release %d of %q, its statement is of release %d of %q", i, e.Sequence, e.Catalog, st.Sequence, st.Catalog)
		}
	}
	return nil
}

// Extends checks that the log's tree extends an older checkpoint: the same catalog, at least
// as many entries, and the first old.Size entries hashing to old.Hash. Anything else is a
// fork (two histories signed by the log key), a rewritten entry or a rollback.
func (l *Log) Extends(old Checkpoint) error {
	cp := l.Checkpoint
	switch {
	case old.Catalog != cp.Catalog:
		return fmt.Errorf("releaselog: the older checkpoint is of catalog %q, this log of %q", old.Catalog, cp.Catalog)
	case old.Size > cp.Size:
		return fmt.Errorf("releaselog: the log has %d entries, fewer than the %d of the checkpoint seen before (rolled back or truncated): %w", cp.Size, old.Size, ErrInconsistent)
	case old.Size == 0:
		return nil
	}
	h, err := tlog.TreeHash(old.Size, l)
	if err != nil {
		return err
	}
	if h != old.Hash {
		return fmt.Errorf("releaselog: the log's first %d entries hash to %s, the checkpoint seen before says %s: the log forked (a split view, or a past entry rewritten): %w",
			old.Size, h, old.Hash, ErrInconsistent)
	}
	return nil
}

// Append appends a release statement to the log of catalog directory dir: Prepare, then
// Write.
func Append(dir string, e *Entry, key *Key) (Checkpoint, error) {
	p, err := Prepare(dir, e, key)
	if err != nil {
		return Checkpoint{}, err
	}
	return p.Write()
}

// Pending is an append prepared and not yet written.
type Pending struct {
	dir   string
	seq   uint64
	files []logFile
	cp    Checkpoint
}

// Prepare reads and checks the whole log of catalog directory dir with the key's verifier
// (Read) and makes the files that appending e writes. It refuses a log that does not verify,
// an entry of another catalog, or a sequence not after the last entry's; a directory without
// log/ starts a log. It writes nothing.
func Prepare(dir string, e *Entry, key *Key) (*Pending, error) {
	files, cp, err := prepareAppend(dir, e, key.Signer, key.Verifier)
	if err != nil {
		return nil, err
	}
	return &Pending{dir: dir, seq: e.Sequence, files: files, cp: cp}, nil
}

// Checkpoint is the checkpoint Write makes.
func (p *Pending) Checkpoint() Checkpoint { return p.cp }

// Write writes the append's new tiles, then the new checkpoint, each atomically. The log must
// not have changed since Prepare (one writer at a time: the build's).
func (p *Pending) Write() (Checkpoint, error) {
	for _, f := range p.files {
		if err := atomicfile.Write(filepath.Join(p.dir, Dir, filepath.FromSlash(f.name)), f.data, 0o644); err != nil {
			return Checkpoint{}, fmt.Errorf("releaselog: append release %d: %w (the previous checkpoint stands)", p.seq, err)
		}
	}
	p.prune()
	return p.cp, nil
}

// prune removes the partial entry tiles of the new size's entry tile that are older than the
// previous checkpoint's: each holds a copy of entries the newer tiles hold, and keeping them
// all would store a tile's entries 128 times over. The previous checkpoint's tile stays, for a
// reader that fetched that checkpoint a moment ago. Hash tiles (32 bytes an entry) all stay.
// A failure leaves files behind, nothing worse.
func (p *Pending) prune() {
	t := dataTile((p.cp.Size-1)>>TileHeight, p.cp.Size)
	full := tlog.Tile{H: t.H, L: t.L, N: t.N, W: 1 << TileHeight}.Path()
	dir := filepath.Join(p.dir, Dir, filepath.FromSlash(full)+".p")
	for w := t.W - 2; w >= 1; w-- {
		if err := os.Remove(filepath.Join(dir, fmt.Sprint(w))); errors.Is(err, fs.ErrNotExist) {
			break // removed by an earlier append
		}
	}
}

// Exists reports whether catalog directory dir has a log (its log/ directory).
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, Dir))
	return err == nil
}

type logFile struct {
	name string
	data []byte
}

// prepareAppend returns the files an append writes, in the order it writes them (the
// checkpoint last), and the new checkpoint.
func prepareAppend(dir string, e *Entry, signer note.Signer, verifier note.Verifier) ([]logFile, Checkpoint, error) {
	if signer.Name() != verifier.Name() || signer.KeyHash() != verifier.KeyHash() {
		return nil, Checkpoint{}, fmt.Errorf("releaselog: the log signer %s and verifier %s are different keys", signer.Name(), verifier.Name())
	}
	l, err := Read(DirSource(dir), verifier)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(filepath.Join(dir, Dir, CheckpointFile)); !errors.Is(serr, fs.ErrNotExist) {
			return nil, Checkpoint{}, fmt.Errorf("releaselog: the log in %s does not verify: %w; restore it from a copy (driveway log verify shows what is wrong)", dir, err)
		}
		if !onlyFirstAppend(filepath.Join(dir, Dir)) {
			return nil, Checkpoint{}, fmt.Errorf("releaselog: %s holds files but no checkpoint: restore the checkpoint, or move the directory away to start a new log (edges that saw the old one will refuse it)",
				filepath.Join(dir, Dir))
		}
		l, err = &Log{Checkpoint: Checkpoint{Catalog: e.Catalog}}, nil
	}
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("releaselog: the log in %s does not verify, so nothing is appended: %w; restore it from a copy (driveway log verify shows what is wrong)", dir, err)
	}
	text, err := e.Marshal()
	if err != nil {
		return nil, Checkpoint{}, err
	}
	old := l.Checkpoint.Size
	if old >= MaxEntries {
		return nil, Checkpoint{}, fmt.Errorf("releaselog: the log holds %d entries, the most a log may", old)
	}
	if err := l.add(text); err != nil {
		return nil, Checkpoint{}, fmt.Errorf("releaselog: cannot append to the log in %s: %w", dir, err)
	}
	size := old + 1
	root, err := tlog.TreeHash(size, l)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	var files []logFile
	for _, t := range tlog.NewTiles(TileHeight, old, size) {
		data, err := tlog.ReadTileData(t, l)
		if err != nil {
			return nil, Checkpoint{}, err
		}
		files = append(files, logFile{t.Path(), data})
	}
	dt := dataTile((size-1)>>TileHeight, size)
	var data []byte
	for _, text := range l.texts[dt.N<<TileHeight : size] {
		data = append(append(data, text...), '\n')
	}
	files = append(files, logFile{dt.Path(), data})
	cp := Checkpoint{Catalog: l.Checkpoint.Catalog, Size: size, Hash: root}
	signed, err := SignCheckpoint(cp, signer)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	files = append(files, logFile{CheckpointFile, signed})
	return files, cp, nil
}

// onlyFirstAppend reports whether a log directory without a checkpoint holds nothing, or
// nothing but what a first append stopped before its checkpoint leaves (the tiles of a log of
// one entry, temporary files): such a log starts again. Anything else is a log whose
// checkpoint was lost, which is not quietly restarted.
func onlyFirstAppend(dir string) bool {
	first := map[string]bool{
		tlog.Tile{H: TileHeight, L: 0, N: 0, W: 1}.Path():  true,
		tlog.Tile{H: TileHeight, L: -1, N: 0, W: 1}.Path(): true,
	}
	ok := true
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if !first[filepath.ToSlash(rel)] && !strings.HasPrefix(d.Name(), ".tmp-") {
			ok = false
			return filepath.SkipAll
		}
		return nil
	})
	return ok
}
