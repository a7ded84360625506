package statement

// The tree over a release's package records.
//
// Leaves are tlog.RecordHash(record) in label-id order; the tree is RFC 6962's, as
// golang.org/x/mod/sumdb/tlog computes it (tlog.StoredHashes, tlog.TreeHash), so the
// transparency log of releases (issue 15, item 2) can use the same code and proofs.
//
// Proofs are served allocation-free, so they are not made with tlog.ProveRecord (which
// returns a fresh RecordProof and reads hashes through a HashReader that returns fresh
// slices). The tree keeps tlog's stored hashes in one slice indexed by tlog.StoredHashIndex
// plus, per level, the hash of the level's last node when that node covers fewer than 2^level
// leaves (those are not stored hashes: tlog combines them from stored ones each time). The
// RFC 6962 tree is the one where the last node of a level with an odd count is carried up
// unchanged; node j of level L covers leaves [j·2^L, min((j+1)·2^L, n)), and the proof of
// leaf i is, from level 0 up, the sibling (i>>L)^1 of each level that has one. That is the
// order and content of tlog.ProveRecord's RecordProof (TestProofMatchesTlog checks it for
// every leaf of trees of 1 to 70 leaves), and tlog.CheckRecord checks it.

import (
	"encoding/base64"
	"fmt"
	"slices"

	"golang.org/x/mod/sumdb/tlog"
)

// Tree is the Merkle tree of n records. It is immutable and safe for concurrent use.
type Tree struct {
	n      int64
	stored []tlog.Hash   // tlog's stored hashes, by tlog.StoredHashIndex
	last   [64]tlog.Hash // per level, the hash of its last node when that node is partial
	root   tlog.Hash
}

// NewTree builds the tree of leaf hashes (tlog.RecordHash of each record, in order).
func NewTree(leaves []tlog.Hash) (*Tree, error) {
	t := &Tree{n: int64(len(leaves)), stored: make([]tlog.Hash, 0, tlog.StoredHashCount(int64(len(leaves))))}
	read := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(t.stored)) {
				return nil, fmt.Errorf("statement: stored hash %d of %d", x, len(t.stored))
			}
			out[i] = t.stored[x]
		}
		return out, nil
	})
	for i, h := range leaves {
		// tlog.StoredHashesForRecordHash is StoredHashes with the leaf hash given.
		hs, err := tlog.StoredHashesForRecordHash(int64(i), h, read)
		if err != nil {
			return nil, err
		}
		t.stored = append(t.stored, hs...)
	}
	if t.n > 0 {
		root, err := tlog.TreeHash(t.n, read)
		if err != nil {
			return nil, err
		}
		t.root = root
	}
	// The partial last nodes, bottom up: a level's last node is partial when its leaves run
	// past n; its hash combines the last two nodes of the level below (or carries up the
	// last one when that level's count is odd).
	for L := 1; L < 64 && int64(1)<<(L-1) < t.n; L++ {
		cnt := nodes(t.n, L)
		j := cnt - 1
		if (j+1)<<L <= t.n {
			continue // complete: a stored hash
		}
		left := t.node(L-1, 2*j)
		if 2*j+1 < nodes(t.n, L-1) {
			t.last[L] = tlog.NodeHash(left, t.node(L-1, 2*j+1))
		} else {
			t.last[L] = left
		}
	}
	if t.n > 0 {
		top := 0
		for nodes(t.n, top) > 1 {
			top++
		}
		if t.node(top, 0) != t.root {
			return nil, fmt.Errorf("statement: tree of %d records: the computed root differs from tlog.TreeHash", t.n)
		}
	}
	return t, nil
}

// nodes is the number of nodes of level L of a tree of n leaves.
func nodes(n int64, L int) int64 { return (n + 1<<L - 1) >> L }

// node returns node j of level L.
func (t *Tree) node(L int, j int64) tlog.Hash {
	if (j+1)<<L <= t.n {
		return t.stored[tlog.StoredHashIndex(L, j)]
	}
	return t.last[L]
}

// Len is the number of records.
func (t *Tree) Len() int64 { return t.n }

// Root is the tree hash (tlog.TreeHash), zero for an empty tree.
func (t *Tree) Root() tlog.Hash { return t.root }

// AppendProof appends the inclusion proof of record i as a JSON array of base64 hashes, in
// tlog.RecordProof's order. It does not allocate beyond growing dst.
//
// Its length is known before it is written (each hash is 44 characters, quoted, with a comma
// between), so dst grows once and each hash is encoded in place.
func (t *Tree) AppendProof(dst []byte, i int64) []byte {
	const hashLen = 4 * ((tlog.HashSize + 2) / 3) // 44: base64 with padding
	k := 0
	for L := 0; nodes(t.n, L) > 1; L++ {
		if (i>>L)^1 < nodes(t.n, L) {
			k++
		}
	}
	n := len(dst)
	size := 2 + k*(hashLen+3) - min(k, 1) // [ ], and "…" with a comma after each but the last
	dst = slices.Grow(dst, size)[:n+size]
	out := dst[n:]
	out[0] = '['
	w := 1
	for L := 0; nodes(t.n, L) > 1; L++ {
		if s := (i >> L) ^ 1; s < nodes(t.n, L) {
			if w > 1 {
				out[w] = ','
				w++
			}
			h := t.node(L, s)
			out[w] = '"'
			base64.StdEncoding.Encode(out[w+1:w+1+hashLen], h[:])
			out[w+1+hashLen] = '"'
			w += hashLen + 2
		}
	}
	out[w] = ']'
	return dst
}

// Proof returns the inclusion proof of record i.
func (t *Tree) Proof(i int64) tlog.RecordProof {
	var p tlog.RecordProof
	for L := 0; nodes(t.n, L) > 1; L++ {
		if s := (i >> L) ^ 1; s < nodes(t.n, L) {
			p = append(p, t.node(L, s))
		}
	}
	return p
}
