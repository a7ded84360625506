package statement

import (
	"fmt"
	"slices"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/driveway/driveway/catalogs/compiled"
)

// Builder collects a release's label records, in any order, into [Records].
type Builder struct {
	ents []entry
	buf  []byte
}

type entry struct {
	id   uint64
	leaf tlog.Hash
}

// Add adds the compiled label record rec of label id. rec is not kept: Records hold the
// label ids and the tree only, and an edge writes each record again from the label record
// when it answers an offer (Records.AppendProof), so the edge's memory does not grow by the
// records' text (48 MiB for 100,000 labels).
func (b *Builder) Add(id uint64, rec []byte) error {
	var err error
	if b.buf, err = AppendRecord(b.buf[:0], id, rec); err != nil {
		return err
	}
	b.ents = append(b.ents, entry{id: id, leaf: tlog.RecordHash(b.buf)})
	return nil
}

// Grow makes room for n more records, when the caller knows how many come (a release's
// manifest counts its labels), so that adding them does not copy the list as it doubles.
func (b *Builder) Grow(n int) { b.ents = slices.Grow(b.ents, n) }

// Finish sorts the records by label id and builds their tree. A label added twice is an
// error.
func (b *Builder) Finish() (*Records, error) {
	slices.SortFunc(b.ents, func(x, y entry) int {
		switch {
		case x.id < y.id:
			return -1
		case x.id > y.id:
			return 1
		}
		return 0
	})
	r := &Records{ids: make([]uint64, len(b.ents))}
	leaves := make([]tlog.Hash, len(b.ents))
	for i, e := range b.ents {
		if i > 0 && e.id == b.ents[i-1].id {
			return nil, fmt.Errorf("statement: label %d has two records", e.id)
		}
		r.ids[i], leaves[i] = e.id, e.leaf
	}
	var err error
	if r.tree, err = NewTree(leaves); err != nil {
		return nil, err
	}
	b.ents, b.buf = nil, nil
	return r, nil
}

// Records are a release's label ids in order with the tree of their package records. They
// are immutable and safe for concurrent use.
type Records struct {
	ids  []uint64
	tree *Tree
}

// Tree is the records' Merkle tree.
func (r *Records) Tree() *Tree { return r.tree }

// Index returns the position of label id among the records.
func (r *Records) Index(id uint64) (int, bool) {
	return slices.BinarySearch(r.ids, id)
}

// ID is the label id of record i.
func (r *Records) ID(i int) uint64 { return r.ids[i] }

// Bytes is the memory the records hold (ids and hashes), for reports.
func (r *Records) Bytes() int {
	return len(r.ids)*8 + len(r.tree.stored)*tlog.HashSize
}

// AppendProof appends the "proof" member of the offer of label id (see [Attestation]),
// whose parsed label record is l (the one the offer was decided from); ok false when the
// release has no record of the label or l is nil. That l makes the record the tree holds at
// that index is not checked here: the edge checked the whole tree against its label shards
// when it loaded the release, and a PC checks the record's hash against the proof. It does
// not allocate beyond growing dst.
func (r *Records) AppendProof(dst []byte, id uint64, l *compiled.Label) ([]byte, bool) {
	i, ok := r.Index(id)
	if !ok || l == nil {
		return dst, false
	}
	orig := len(dst)
	dst = append(dst, `"proof":{"index":`...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, `,"record":"`...)
	var err error
	if dst, err = AppendLabelRecordJSON(dst, id, l); err != nil {
		return dst[:orig], false
	}
	dst = append(dst, `","hashes":`...)
	dst = r.tree.AppendProof(dst, int64(i))
	return append(dst, '}'), true
}

// Attestation is what an edge adds to an offer response: the statement envelope once
// ("statement", the envelope as the manifest carries it) and, in each offer, "proof": the
// record's index, its text and its inclusion proof:
//
//	"proof": {"index": 3, "record": "driveway package record 1\nlabel 3001\n…", "hashes": ["<base64>", …]}
//
// It satisfies offer.Proofs. Its methods do not allocate beyond growing dst.
type Attestation struct {
	Envelope []byte // the signed statement (a DSSE envelope, compact JSON)
	Records  *Records
}

// AppendStatement appends the "statement" member.
func (a *Attestation) AppendStatement(dst []byte) []byte {
	dst = append(dst, `"statement":`...)
	return append(dst, a.Envelope...)
}

// AppendProof appends the "proof" member of the offer of label id ("proof":null when the
// release has no record of it, which a PC refuses).
func (a *Attestation) AppendProof(dst []byte, id uint64, l *compiled.Label) []byte {
	if out, ok := a.Records.AppendProof(dst, id, l); ok {
		return out
	}
	return append(dst, `"proof":null`...)
}
