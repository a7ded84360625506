package serve

import (
	"bytes"
	"sync/atomic"

	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/statement"
)

// proofCacheBits sizes a generation's cache of offer proofs: 2^12 slots in sets of two, each
// holding one label's proof (about 1.5 KB with a 100,000-label tree), so at most about 6 MiB.
const proofCacheBits = 12

// proofCache is what the handler adds to a response (offer.Proofs) for one generation: its
// attestation's members, with the proof of each label offered kept as the bytes the
// attestation wrote for it. A proof is the label record's text and its inclusion proof, the
// same for every offer of the label from this release, and writing it (the record's lines,
// seventeen base64 hashes) costs more than deciding the offer; PCs are offered the same
// popular labels over and over, so from the cache a proof is one copy. It is safe for
// concurrent use, like the Engine's label cache, which it follows: direct-mapped, two-way
// set-associative, an entry replaced whole by an atomic store. A miss allocates the entry.
//
// An entry is found by label id alone: within one release a label has one record (the
// Engine's, which Offer.Record points to), so the id fixes the bytes.
type proofCache struct {
	att   *statement.Attestation
	slots []atomic.Pointer[proofEntry]
}

type proofEntry struct {
	label uint64
	proof []byte // the "proof" member, as att.AppendProof writes it
}

func newProofCache(att *statement.Attestation) *proofCache {
	return &proofCache{att: att, slots: make([]atomic.Pointer[proofEntry], 1<<proofCacheBits)}
}

// AppendStatement appends the "statement" member.
func (c *proofCache) AppendStatement(dst []byte) []byte { return c.att.AppendStatement(dst) }

// AppendProof appends the "proof" member of an offer of label, from the cache or written by
// the attestation and cached.
func (c *proofCache) AppendProof(dst []byte, label uint64, rec *compiled.Label) []byte {
	set := (label * 0x9E3779B97F4A7C15) >> (64 - proofCacheBits) &^ 1
	a, b := &c.slots[set], &c.slots[set+1]
	if e := a.Load(); e != nil && e.label == label {
		return append(dst, e.proof...)
	}
	if e := b.Load(); e != nil && e.label == label {
		return append(dst, e.proof...)
	}
	start := len(dst)
	dst = c.att.AppendProof(dst, label, rec)
	slot := a
	if a.Load() != nil && (b.Load() == nil || label&1 == 1) {
		slot = b // fill the empty way; when both are full, the id picks which to replace
	}
	slot.Store(&proofEntry{label: label, proof: bytes.Clone(dst[start:])})
	return dst
}
