package statement

import (
	"fmt"
	"slices"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"
)

// Builder collects a release's label records, in any order, into [Records].
type Builder struct {
	ents []entry
	text []byte // every record, JSON-escaped, back to back
	buf  []byte
}

type entry struct {
	id       uint64
	off, end uint32 // the record's escaped text in Records.text
	leaf     tlog.Hash
}

// Add adds the compiled label record rec of label id. rec is not kept.
func (b *Builder) Add(id uint64, rec []byte) error {
	var err error
	if b.buf, err = AppendRecord(b.buf[:0], id, rec); err != nil {
		return err
	}
	off := len(b.text)
	b.text = appendEscaped(b.text, b.buf)
	if len(b.text) > 1<<32-1 {
		return fmt.Errorf("statement: more than 4 GiB of records")
	}
	b.ents = append(b.ents, entry{id: id, off: uint32(off), end: uint32(len(b.text)), leaf: tlog.RecordHash(b.buf)})
	return nil
}

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
	// The text copied to its length: append doubling left up to twice the capacity.
	r := &Records{ids: make([]uint64, len(b.ents)), spans: make([][2]uint32, len(b.ents)), text: append([]byte(nil), b.text...)}
	leaves := make([]tlog.Hash, len(b.ents))
	for i, e := range b.ents {
		if i > 0 && e.id == b.ents[i-1].id {
			return nil, fmt.Errorf("statement: label %d has two records", e.id)
		}
		r.ids[i], r.spans[i], leaves[i] = e.id, [2]uint32{e.off, e.end}, e.leaf
	}
	var err error
	if r.tree, err = NewTree(leaves); err != nil {
		return nil, err
	}
	b.ents, b.text = nil, nil
	return r, nil
}

// Records are a release's package records in label-id order with their tree. They are
// immutable and safe for concurrent use.
type Records struct {
	ids   []uint64
	spans [][2]uint32 // each record's JSON-escaped text in text
	text  []byte
	tree  *Tree
}

// Tree is the records' Merkle tree.
func (r *Records) Tree() *Tree { return r.tree }

// Index returns the position of label id among the records.
func (r *Records) Index(id uint64) (int, bool) {
	return slices.BinarySearch(r.ids, id)
}

// ID is the label id of record i.
func (r *Records) ID(i int) uint64 { return r.ids[i] }

// Bytes is the memory the records hold (texts, ids and hashes), for reports.
func (r *Records) Bytes() int {
	return len(r.text) + len(r.ids)*8 + len(r.spans)*8 + len(r.tree.stored)*tlog.HashSize
}

// AppendProof appends the "proof" member of the offer of label id (see [Attestation]),
// ok false when the label has no record. It does not allocate beyond growing dst.
func (r *Records) AppendProof(dst []byte, id uint64) ([]byte, bool) {
	i, ok := r.Index(id)
	if !ok {
		return dst, false
	}
	dst = append(dst, `"proof":{"index":`...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, `,"record":"`...)
	s := r.spans[i]
	dst = append(dst, r.text[s[0]:s[1]]...)
	dst = append(dst, `","hashes":`...)
	dst = r.tree.AppendProof(dst, int64(i))
	return append(dst, '}'), true
}

// appendEscaped appends an ASCII record as the inside of a JSON string.
func appendEscaped(dst, text []byte) []byte {
	for _, c := range text {
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		default:
			dst = append(dst, c) // AppendRecord writes printable ASCII and newlines only
		}
	}
	return dst
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
func (a *Attestation) AppendProof(dst []byte, id uint64) []byte {
	if out, ok := a.Records.AppendProof(dst, id); ok {
		return out
	}
	return append(dst, `"proof":null`...)
}
