package index

// The full structural walk of a shard. See format.go for the file format.

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Check reads the whole shard and reports the first structural fault, as
// an error wrapping ErrCorrupt: every block's CRC, every zstd block
// decoding to exactly its declared size, every block's offset table and
// records, keys strictly increasing and routed to this shard, the record
// count, and every hash table slot: each record reachable from its home
// slot at its own ordinal with its own hash, no ordinal twice, no other
// slot used. Check reads blocks afresh, not from the cache. It allocates
// about 8 bytes per key and one decoded block at a time. Afterwards the
// mapping's block pages leave the process's resident set (they stay in the
// page cache): lookups map back only those they read.
func (s *Shard) Check() error {
	if s.data == nil {
		return fmt.Errorf("index: %s: Check after Close", s.name)
	}
	defer s.dropBlocks()
	keys := s.ftr.keys
	hashes := make([]uint64, 0, keys) // keys < slots, checked against the file size at Open
	var prev []byte
	for b := range s.state {
		e := s.entry(b)
		if err := s.checkEntry(b, e); err != nil {
			return err
		}
		var blk []byte
		var err error
		if e.codec == codecRaw {
			blk, err = s.stored(b, e)
		} else {
			blk, err = s.decode(b, e, nil)
		}
		if err != nil {
			return err
		}
		n := s.records(b)
		// The offset table: starts right after itself, never decreases,
		// ends at the raw length.
		off := func(i int) int { return int(binary.LittleEndian.Uint32(blk[offsetLen*i:])) }
		if off(0) != offsetLen*(n+1) || off(n) != len(blk) {
			return s.corrupt("block %d at offset %d: offset table of %d records spans %d..%d of %d bytes",
				b, e.off, n, off(0), off(n), len(blk))
		}
		for k := range n {
			key, _, err := s.record(blk, b, k)
			if err != nil {
				return err
			}
			ord := len(hashes) + 1
			if ord > 1 && bytes.Compare(key, prev) <= 0 {
				return s.corrupt("block %d: record %d (ordinal %d): key %q does not sort after %q", b, k, ord, key, prev)
			}
			h := Hash(key)
			if r := RouteHash(h, int(s.hdr.shards)); r != int(s.hdr.shard) {
				return s.corrupt("block %d: record %d (ordinal %d): key %q routes to shard %d, not %d of %d",
					b, k, ord, key, r, s.hdr.shard, s.hdr.shards)
			}
			hashes = append(hashes, h)
			prev = key
		}
	}
	if uint64(len(hashes)) != keys {
		return s.corrupt("blocks hold %d records; footer says %d", len(hashes), keys)
	}

	// Every used slot names a distinct record and carries its hash.
	seen := make([]byte, (keys+7)/8)
	used, empty := uint64(0), uint64(0)
	for i := range s.ftr.slots {
		slot := s.table[i*slotLen:]
		h, ord := binary.LittleEndian.Uint64(slot), binary.LittleEndian.Uint64(slot[8:])
		if ord == 0 {
			if h != 0 {
				return s.corrupt("hash table slot %d: empty slot with hash %#x", i, h)
			}
			empty = i
			continue
		}
		if ord > keys {
			return s.corrupt("hash table slot %d: record ordinal %d of %d", i, ord, keys)
		}
		if seen[(ord-1)/8]&(1<<((ord-1)%8)) != 0 {
			return s.corrupt("hash table slot %d: record ordinal %d appears twice", i, ord)
		}
		seen[(ord-1)/8] |= 1 << ((ord - 1) % 8)
		if h != hashes[ord-1] {
			return s.corrupt("hash table slot %d: hash %#x; record %d hashes to %#x", i, h, ord, hashes[ord-1])
		}
		used++
	}
	if used != keys {
		return s.corrupt("hash table holds %d records; footer says %d", used, keys)
	}
	// Every record is reachable: no empty slot lies between its home
	// slot and its slot. Walk once around the table from an empty slot
	// (there is one: keys < slots), remembering the last empty slot seen.
	// With the checks above, Get finds every key at its own record.
	n := s.ftr.slots
	dist := func(from, to uint64) uint64 { return (to + n - from) % n }
	last := empty
	for j := (empty + 1) % n; j != empty; j = (j + 1) % n {
		slot := s.table[j*slotLen:]
		if binary.LittleEndian.Uint64(slot[8:]) == 0 {
			last = j
			continue
		}
		home := slotOf(binary.LittleEndian.Uint64(slot), n)
		if dist(home, j) >= dist(last, j) {
			return s.corrupt("hash table slot %d: record %d is not reachable from its home slot %d: slot %d is empty",
				j, binary.LittleEndian.Uint64(slot[8:]), home, last)
		}
	}
	return nil
}
