package index

import "encoding/binary"

// bloom is a blocked Bloom filter over a shard's key hashes. It is not part of the file: Open
// builds it from the hash table, which stores every key's full 64-bit hash, so it costs no
// decompression and no format change. A lookup of an absent key (most of a device's
// compatible IDs) is then answered from one 64-byte block of a filter small enough to stay
// in cache, instead of from a cold slot of the hash table. Ten bits a key, six bits set in one
// block: about 1% of absent keys still reach the table.
type bloom []uint64 // 8 words (512 bits) a block

const (
	bloomBitsPerKey = 10
	bloomBlockWords = 8
)

// newBloom builds the filter of the occupied slots of a hash table.
func newBloom(table []byte, keys uint64) bloom {
	if keys == 0 {
		return nil
	}
	blocks := (keys*bloomBitsPerKey + 511) / 512
	b := make(bloom, blocks*bloomBlockWords)
	for off := 0; off+slotLen <= len(table); off += slotLen {
		if binary.LittleEndian.Uint64(table[off+8:]) != 0 {
			b.add(binary.LittleEndian.Uint64(table[off:]))
		}
	}
	return b
}

// block returns the filter's block for a hash and the bits to test in it. The routing uses
// the hash modulo the shard count and the slot its high half, so the filter mixes it first.
func (b bloom) block(h uint64) ([]uint64, uint64) {
	x := h * 0x9E3779B97F4A7C15
	n := uint64(len(b) / bloomBlockWords)
	i := ((x >> 32) * n) >> 32
	y := (x ^ x>>31) * 0xBF58476D1CE4E5B9
	return b[i*bloomBlockWords : i*bloomBlockWords+bloomBlockWords], y
}

func (b bloom) add(h uint64) {
	blk, y := b.block(h)
	for k := 0; k < 6; k++ {
		p := y >> (9 * k) & 511
		blk[p>>6] |= 1 << (p & 63)
	}
}

// has reports whether a hash may be in the table (false: it certainly is not).
func (b bloom) has(h uint64) bool {
	blk, y := b.block(h)
	for k := 0; k < 6; k++ {
		p := y >> (9 * k) & 511
		if blk[p>>6]&(1<<(p&63)) == 0 {
			return false
		}
	}
	return true
}
