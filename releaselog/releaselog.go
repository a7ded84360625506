// Package releaselog is the transparency log of a catalog's releases: every release
// statement (package statement) the pipeline publishes is appended to a Merkle log kept as
// static files beside the releases, the way Go's checksum database keeps go.sum lines
// (golang.org/x/mod/sumdb/tlog for the tree, tiles and proofs, sumdb/note for the signed
// checkpoint). Edges and auditors check that every release they see is in the log and that
// every checkpoint they see extends the one they saw before, so a split view (one edge or one
// region shown a history the others are not) is detectable.
//
// # Log entry format
//
// A log entry (a tlog record; its leaf hash is tlog.RecordHash of these exact bytes) is four
// lines of text, each ending in a newline:
//
//	driveway release log entry 1
//	catalog contoso-example
//	sequence 42
//	statement <standard base64 of the release statement's DSSE envelope, as in the manifest>
//
// The first line is EntryFormat; any other line, count or order is refused, so any change of
// the entry changes the first line (a reader can tell the versions apart). The catalog is
// the statement's catalog (printable ASCII without spaces), the sequence its sequence in
// decimal without leading zeros, and the statement the very envelope the release's manifest
// carries, so anyone holding the release keys can check each entry's signature without the
// release, which catalogs and edges prune. An entry is at most MaxEntrySize bytes.
//
// # Checkpoint format
//
// The checkpoint is a signed note (golang.org/x/mod/sumdb/note) whose text is three lines:
//
//	driveway release log 1 contoso-example
//	6
//	<standard base64 of the tree hash: tlog.TreeHash of the 6 entries>
//
// The first line is CheckpointFormat, a space and the catalog (the log's origin line); the
// second the number of entries in decimal; the third the root of the RFC 6962 tree over the
// entries' record hashes. Unknown further lines are refused. The note is signed with the
// log key (key.go): an Ed25519 note key of its own, not a release key.
//
// # Directory layout
//
// Beside a catalog directory's releases (index/release.go's layout), under log/:
//
//	log/checkpoint                 the signed checkpoint of the newest tree
//	log/tile/8/<L>/<N>[.p/<W>]     hash tiles of height 8, paths per tlog.Tile.Path
//	log/tile/8/data/<N>[.p/<W>]    entry tiles: the entries with indexes N·256 … N·256+W-1
//
// An entry tile is the concatenation of its W entries, each followed by one empty line (so
// the tile is split on "\n\n"; an entry holds no empty line). Tiles never change once
// written: a tree of size n is read from the full tiles below it and the partial tiles of
// width exactly what n leaves (".p/<W>"), written when the log had n entries. Hash tiles all
// stay, so every older tree stays provable from the current files (consistency proofs read
// the current tree's tiles only). Partial entry tiles are removed once two newer
// checkpoints exist (each holds copies of entries a newer one holds): the current and the
// previous checkpoint can be read in full, an older one only through the current tree.
//
// Appending (Append) writes the new tiles first, each to a temporary file that is fsynced and
// renamed, and the checkpoint last the same way: a writer stopped at any point leaves the
// previous checkpoint and every tile it names intact. An append first reads and checks the
// whole log (Read) and refuses to extend one whose files do not verify.
//
// testdata/ holds a log of three entries (log/), its log key (log.pub, and
// log-private-key.txt: a test key, not a secret), the text of its entries (entries.txt,
// each followed by an empty line), whose statements are signed by
// signing/testdata/openssl-ed25519.key: TestVectors rebuilds the files from the entries and
// compares them byte for byte, and checks the stored files verify.
package releaselog

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// Formats, names and limits.
const (
	EntryFormat      = "driveway release log entry 1"
	CheckpointFormat = "driveway release log 1"
	// Dir is the log's directory in a catalog directory.
	Dir = "log"
	// CheckpointFile is the checkpoint's name in Dir.
	CheckpointFile = "checkpoint"
	// TileHeight is the height of every tile.
	TileHeight = 8
	// MaxEntrySize bounds one entry (a statement envelope is well under 2 KiB).
	MaxEntrySize = 64 << 10
	// MaxCheckpointSize bounds the checkpoint note.
	MaxCheckpointSize = 16 << 10
	// MaxEntries bounds the entries a log may hold (a release a minute for 20 years is 10^7).
	MaxEntries = 1 << 30
)

// ErrMalformed marks an entry, checkpoint or tile that does not parse.
var ErrMalformed = errors.New("releaselog: malformed")

// ErrInconsistent marks a log that does not extend a tree seen before: a fork (split view),
// a rewritten entry or a rolled-back log.
var ErrInconsistent = errors.New("releaselog: inconsistent")

// ErrNotLogged marks a release whose statement is not in the log.
var ErrNotLogged = errors.New("releaselog: not in the log")

// Entry is one log entry: a release statement envelope with its catalog and sequence.
type Entry struct {
	Catalog   string
	Sequence  uint64
	Statement []byte // the DSSE envelope of the release statement
}

// Marshal returns the entry's text.
func (e *Entry) Marshal() ([]byte, error) {
	if err := checkCatalogName(e.Catalog); err != nil {
		return nil, err
	}
	if len(e.Statement) == 0 {
		return nil, fmt.Errorf("releaselog: entry of release %d: no statement", e.Sequence)
	}
	b := fmt.Appendf(nil, "%s\ncatalog %s\nsequence %d\nstatement %s\n", EntryFormat, e.Catalog, e.Sequence,
		base64.StdEncoding.EncodeToString(e.Statement))
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("releaselog: entry of release %d is %d bytes, more than %d", e.Sequence, len(b), MaxEntrySize)
	}
	return b, nil
}

// ParseEntry parses an entry's text; it must be exactly what Marshal writes.
func ParseEntry(text []byte) (*Entry, error) {
	if len(text) > MaxEntrySize {
		return nil, fmt.Errorf("releaselog: entry of %d bytes, more than %d: %w", len(text), MaxEntrySize, ErrMalformed)
	}
	lines := strings.SplitAfter(string(text), "\n")
	if len(lines) != 5 || lines[4] != "" {
		return nil, fmt.Errorf("releaselog: an entry is 4 lines ending in a newline, not %q: %w", clip(text), ErrMalformed)
	}
	for i := range 4 {
		lines[i] = strings.TrimSuffix(lines[i], "\n")
	}
	if lines[0] != EntryFormat {
		return nil, fmt.Errorf("releaselog: entry format %q, want %q: %w", clip([]byte(lines[0])), EntryFormat, ErrMalformed)
	}
	cat, ok := strings.CutPrefix(lines[1], "catalog ")
	if !ok || checkCatalogName(cat) != nil {
		return nil, fmt.Errorf("releaselog: entry line 2 %q is not \"catalog NAME\": %w", clip([]byte(lines[1])), ErrMalformed)
	}
	s, ok := strings.CutPrefix(lines[2], "sequence ")
	seq, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil || strconv.FormatUint(seq, 10) != s {
		return nil, fmt.Errorf("releaselog: entry line 3 %q is not \"sequence N\": %w", clip([]byte(lines[2])), ErrMalformed)
	}
	s, ok = strings.CutPrefix(lines[3], "statement ")
	env, err := base64.StdEncoding.Strict().DecodeString(s)
	if !ok || err != nil || len(env) == 0 {
		return nil, fmt.Errorf("releaselog: entry of release %d: line 4 is not \"statement BASE64\": %w", seq, ErrMalformed)
	}
	return &Entry{Catalog: cat, Sequence: seq, Statement: env}, nil
}

// Checkpoint is a tree of the log: its catalog, size and hash.
type Checkpoint struct {
	Catalog string
	Size    int64
	Hash    tlog.Hash
}

// Text returns the checkpoint's note text.
func (c Checkpoint) Text() []byte {
	return fmt.Appendf(nil, "%s %s\n%d\n%s\n", CheckpointFormat, c.Catalog, c.Size, base64.StdEncoding.EncodeToString(c.Hash[:]))
}

// String is "catalog@size:hash" for messages.
func (c Checkpoint) String() string { return fmt.Sprintf("%s@%d:%s", c.Catalog, c.Size, c.Hash) }

// ParseCheckpoint parses a checkpoint's note text (not the signed note: see OpenCheckpoint).
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	var c Checkpoint
	lines := strings.SplitAfter(string(text), "\n")
	if len(lines) != 4 || lines[3] != "" {
		return c, fmt.Errorf("releaselog: a checkpoint is 3 lines ending in a newline, not %q: %w", clip(text), ErrMalformed)
	}
	for i := range 3 {
		lines[i] = strings.TrimSuffix(lines[i], "\n")
	}
	cat, ok := strings.CutPrefix(lines[0], CheckpointFormat+" ")
	if !ok || checkCatalogName(cat) != nil {
		return c, fmt.Errorf("releaselog: checkpoint line 1 %q is not %q and a catalog name: %w", clip([]byte(lines[0])), CheckpointFormat, ErrMalformed)
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || n > MaxEntries || strconv.FormatInt(n, 10) != lines[1] {
		return c, fmt.Errorf("releaselog: checkpoint line 2 %q is not a size from 0 to %d: %w", clip([]byte(lines[1])), MaxEntries, ErrMalformed)
	}
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return c, fmt.Errorf("releaselog: checkpoint line 3 is not base64 of %d bytes: %w", tlog.HashSize, ErrMalformed)
	}
	c.Catalog, c.Size = cat, n
	copy(c.Hash[:], h)
	if n == 0 && c.Hash != (tlog.Hash{}) {
		return c, fmt.Errorf("releaselog: checkpoint of 0 entries with a nonzero hash: %w", ErrMalformed)
	}
	return c, nil
}

// checkCatalogName accepts what can stand on a line after a space: printable ASCII, no space.
func checkCatalogName(s string) error {
	if s == "" || len(s) > 256 {
		return fmt.Errorf("releaselog: catalog name %q: want 1 to 256 characters: %w", clip([]byte(s)), ErrMalformed)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return fmt.Errorf("releaselog: catalog name %q: only printable ASCII without spaces can be logged: %w", clip([]byte(s)), ErrMalformed)
		}
	}
	return nil
}

// splitEntries splits an entry tile into its entries: each ends in "\n" and is followed by
// one empty line. want is the tile's width.
func splitEntries(tile []byte, want int) ([][]byte, error) {
	out := make([][]byte, 0, want)
	for len(tile) > 0 {
		i := bytes.Index(tile, []byte("\n\n"))
		if i < 0 {
			return nil, fmt.Errorf("releaselog: entry %d of an entry tile is not followed by an empty line: %w", len(out), ErrMalformed)
		}
		if len(out) == want {
			return nil, fmt.Errorf("releaselog: an entry tile of width %d holds more entries: %w", want, ErrMalformed)
		}
		out = append(out, tile[:i+1])
		tile = tile[i+2:]
	}
	if len(out) != want {
		return nil, fmt.Errorf("releaselog: an entry tile of width %d holds %d entries: %w", want, len(out), ErrMalformed)
	}
	return out, nil
}

// clip shortens text for an error message.
func clip(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}
