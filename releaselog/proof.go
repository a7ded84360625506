package releaselog

// Checking one release against a log by proofs: what an edge does at each load, reading
// only the checkpoint, the entry tiles it searches and the hash tiles the proofs need
// (tlog.TileHashReader checks every hash tile it reads against the checkpoint's tree).

import (
	"bytes"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// tileReader reads hash tiles from a Source (tlog.TileReader).
type tileReader struct{ src Source }

func (r tileReader) Height() int { return TileHeight }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		want := int64(t.W) * tlog.HashSize
		b, err := r.src(t.Path(), want)
		if err != nil {
			return nil, fmt.Errorf("releaselog: hash tile %s: %w", t.Path(), err)
		}
		if int64(len(b)) != want {
			return nil, fmt.Errorf("releaselog: hash tile %s is %d bytes, want %d: %w", t.Path(), len(b), want, ErrMalformed)
		}
		out[i] = b
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// CheckRelease checks that the statement envelope stmt of release seq of catalog is in the
// log of src at its checkpoint (signed with key), and, when prev is not nil, that the
// checkpoint extends prev (the newest checkpoint the caller saw before): the same catalog,
// no fewer entries, and a valid consistency proof. It returns the checkpoint, which the
// caller keeps as its new prev once it acts on it.
func CheckRelease(src Source, key note.Verifier, catalog string, seq uint64, stmt []byte, prev *Checkpoint) (Checkpoint, error) {
	cp, _, err := readCheckpoint(src, key)
	if err != nil {
		return Checkpoint{}, err
	}
	if cp.Catalog != catalog {
		return Checkpoint{}, fmt.Errorf("releaselog: the log is of catalog %q, the release of %q", cp.Catalog, catalog)
	}
	thr := tlog.TileHashReader(tlog.Tree{N: cp.Size, Hash: cp.Hash}, tileReader{src})
	if prev != nil && prev.Size > 0 {
		switch {
		case prev.Catalog != cp.Catalog:
			return Checkpoint{}, fmt.Errorf("releaselog: the checkpoint seen before is of catalog %q, the log of %q", prev.Catalog, cp.Catalog)
		case cp.Size < prev.Size:
			return Checkpoint{}, fmt.Errorf("releaselog: the log has %d entries, fewer than the %d already seen (a rolled-back or truncated log, or another history): %w", cp.Size, prev.Size, ErrInconsistent)
		case cp.Size == prev.Size:
			if cp.Hash != prev.Hash {
				return Checkpoint{}, fmt.Errorf("releaselog: the log's tree of %d entries is %s, the one seen before is %s: the log forked (a split view): %w", cp.Size, cp.Hash, prev.Hash, ErrInconsistent)
			}
		default:
			p, err := tlog.ProveTree(cp.Size, prev.Size, thr)
			if err != nil {
				return Checkpoint{}, fmt.Errorf("releaselog: proving checkpoint %d extends %d: %w (a hash tile that does not hash to the signed checkpoint: changed in storage or in transit)", cp.Size, prev.Size, err)
			}
			if err := tlog.CheckTree(p, cp.Size, cp.Hash, prev.Size, prev.Hash); err != nil {
				return Checkpoint{}, fmt.Errorf("releaselog: the log of %d entries does not extend the one of %d seen before (%v): the log forked (a split view), or a past entry was rewritten: %w",
					cp.Size, prev.Size, err, ErrInconsistent)
			}
		}
	}
	idx, text, e, err := find(src, cp, seq)
	if err != nil {
		return Checkpoint{}, err
	}
	if !bytes.Equal(e.Statement, stmt) {
		return Checkpoint{}, fmt.Errorf("releaselog: entry %d of the log is release %d with another statement than the release's: %w", idx, seq, ErrNotLogged)
	}
	p, err := tlog.ProveRecord(cp.Size, idx, thr)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("releaselog: proving entry %d is in the log: %w (a hash tile that does not hash to the signed checkpoint: changed in storage or in transit)", idx, err)
	}
	if err := tlog.CheckRecord(p, cp.Size, cp.Hash, idx, tlog.RecordHash(text)); err != nil {
		return Checkpoint{}, fmt.Errorf("releaselog: entry %d (release %d) is not in the tree of the checkpoint (%v): an entry tile was changed: %w", idx, seq, err, ErrNotLogged)
	}
	return cp, nil
}

// find looks for the entry of release seq, from the newest entry tile back (sequences grow,
// so the search stops at the first tile that starts below seq).
func find(src Source, cp Checkpoint, seq uint64) (int64, []byte, *Entry, error) {
	if cp.Size == 0 {
		return 0, nil, nil, fmt.Errorf("releaselog: release %d is not in the log: the log is empty: %w", seq, ErrNotLogged)
	}
	for n := (cp.Size - 1) >> TileHeight; n >= 0; n-- {
		t := dataTile(n, cp.Size)
		b, err := src(t.Path(), int64(t.W)*(MaxEntrySize+1))
		if err != nil {
			return 0, nil, nil, fmt.Errorf("releaselog: entry tile %s: %w", t.Path(), err)
		}
		texts, err := splitEntries(b, t.W)
		if err != nil {
			return 0, nil, nil, fmt.Errorf("releaselog: %s: %w", t.Path(), err)
		}
		var first uint64
		for i := len(texts) - 1; i >= 0; i-- {
			e, err := ParseEntry(texts[i])
			if err != nil {
				return 0, nil, nil, fmt.Errorf("releaselog: %s: entry %d: %w", t.Path(), n<<TileHeight+int64(i), err)
			}
			if e.Sequence == seq {
				return n<<TileHeight + int64(i), texts[i], e, nil
			}
			first = e.Sequence
		}
		if first < seq {
			break
		}
	}
	return 0, nil, nil, fmt.Errorf("releaselog: release %d is not in the log (checkpoint %s): %w", seq, cp, ErrNotLogged)
}
