// Package index reads and writes shard files and the releases made of them.
//
// A shard file is a static key → value file with a hash index over its keys
// and zstd-compressed record blocks (the format below).
//
// A build writes each shard once with a [Writer]; an edge server maps it
// with [Open] and answers point lookups with [Shard.Get]. The package knows
// bytes, not labels: what the keys and values mean is up to the caller.
// Keys are routed to the shards of a release by [Route]
// (XXH64(key) mod shard count), the one definition of routing.
//
//	w := index.NewWriter(f, &index.WriterOptions{Kind: "hwid", Shard: 3, Shards: 16})
//	for _, r := range sortedRecords { // only keys with index.Route(key, 16) == 3
//		if err := w.Add(r.Key, r.Value); err != nil { ... }
//	}
//	err := w.Close()
//
//	s, err := index.Open(path, &index.Options{Cache: budget})
//	defer s.Close()
//	v, ok, err := s.Get(key)
//
// A [Shard] is safe for concurrent use by many goroutines, except Close,
// which must come after every other call has returned. A [Writer] is not
// safe for concurrent use.
//
// Structural faults in a shard are reported as errors wrapping
// [ErrCorrupt]. The checksums in a shard detect accidental corruption
// only; integrity and authenticity come from the sha256 of the whole file
// recorded in the signed release manifest, which must be verified before
// a shard is trusted.
//
// A release is a signed manifest ([Manifest], format in manifest.go) over
// the shards it names by their sha256, in a catalog directory laid out as
// release.go describes: releases/<sequence>.dsse and shards/<sha256>.shard.
// A build streams each shard into the directory with [CreateShard] and
// [ShardFile.Commit], then makes the release the newest with [Publish],
// and drops old ones with [Prune]. A reader takes the newest with
// [Latest], checks it with [VerifyEnvelope] (signature, format, expiry)
// and each shard with [OpenVerifiedShard], or does both with
// [OpenRelease], which returns a [Release] whose shards are mapped:
//
//	sf, err := index.CreateShard(dir, &index.WriterOptions{Kind: index.KindLabel, Shard: 0, Shards: 1})
//	… sf.Add(key, value) for each record …
//	ref, _, err := sf.Commit()
//	env, id, err := index.Publish(dir, &index.Manifest{…, Shards: refs}, signer)
//
//	rel, err := index.OpenRelease(dir, &index.VerifyOptions{Keys: keys, Now: now})
//	defer rel.Close()
//	v, ok, err := rel.Label[index.Route(key, len(rel.Label))].Get(key)
//
// The package's Example does all of it.
//
// [Verify] is `driveway verify`: the same checks, each reported as a
// [Step].
package index

// Shard file format. See writer.go for the writer and shard.go for the reader.
//
// A shard file is a sequence of sections, all integers little-endian,
// field widths in bytes in [n]:
//
//	header [56]
//	block 0 ... block B-1            record blocks, back to back from offset 56
//	padding [0..15]                   zero bytes, so the hash table starts at a multiple of 16
//	hash table [16 × S]               S slots
//	block index [24 × B]              one entry per block
//	footer [72]
//
// Why this order: the writer streams, so the blocks come first, as soon
// as each has its records; the hash table and the block index are known
// only at the end, and the fixed-size footer after them is found from the
// file length alone. The hash table is uncompressed and 16-aligned, so a
// probe reads slots straight from the mapping and no slot straddles a
// cache line: a miss costs one or two cache lines and no decompression.
//
// The header has the form:
//
//	head magic [8]        "DWSHARD\n"
//	version [4]           1
//	hash algorithm [4]    1 = XXH64 (the only one)
//	hash seed [8]         0 (the only one)
//	shard [4]             this shard's number, < shards
//	shards [4]            the shard count of the release, >= 1
//	block records [4]     R, records per block, 1..65536
//	kind length [1]       1..15
//	kind [15]             kind length bytes of printable ASCII (0x21..0x7E), then NUL padding
//	header CRC [4]        CRC-32C (Castagnoli) of the 52 bytes above
//
// The K records are sorted by key (bytes.Compare, strictly increasing) and
// numbered by ordinal 1..K in that order. Block b holds ordinals
// b·R+1 ... min((b+1)·R, K); so B = ceil(K/R), every block but the last
// holds R records, and the record of ordinal o is record (o-1) mod R of
// block (o-1) div R. A block's raw (decoded) bytes have the form:
//
//	offset table [4 × (n+1)]  n = records in the block; entry i is the offset
//	                          of record i from the block start; entry n is the
//	                          raw length. Entry 0 is 4·(n+1); entries do not decrease.
//	record 0 ... record n-1
//
// and each record is
//
//	key length [2]        1..65535
//	key [key length]
//	value [rest]          up to the next record's offset; may be empty
//
// A block is stored either raw (codec 0: stored bytes = raw bytes, read in
// place from the mapping) or as one independent zstd frame (codec 1) that
// declares its content size (single segment, frame content size = raw
// length, no dictionary, no zstd checksum). The writer stores a block
// raw when zstd saves less than 1/8 of its raw length.
//
// The hash table has S slots, S >= ceil(4·K/3) and S > K, S <= 2^32
// (load at most 0.75, at least one empty slot). A slot has the form:
//
//	hash [8]              XXH64(key) of the record
//	ordinal [8]           1..K; 0 marks an empty slot (its hash is 0 too)
//
// The home slot of hash h is ((h >> 32) × S) >> 32 ("fastrange" of the
// high 32 bits). Routing uses h mod shards, so all keys of one shard share
// h mod shards; the high bits stay spread. Collisions use linear
// probing with wraparound: a lookup reads slots from the home slot until
// an empty one; on a slot whose hash equals h it reads the record and
// compares the key bytes. The writer inserts records in ordinal order.
//
// A block index entry has the form:
//
//	offset [8]            file offset of the block's stored bytes
//	stored length [4]     bytes in the file, >= 1
//	raw length [4]        decoded bytes, >= 4·(n+1); equal to stored length for codec 0;
//	                      a reader rejects one over its MaxBlock (default 4 MiB)
//	CRC [4]               CRC-32C of the stored bytes
//	codec [1]             0 = raw, 1 = zstd
//	reserved [3]          zero
//
// Blocks are contiguous: block 0 starts at 56, block b+1 where block b ends.
//
// The footer has the form:
//
//	hash table offset [8]     56 + stored bytes, rounded up to a multiple of 16
//	slot count [8]            S
//	block index offset [8]    hash table offset + 16·S
//	block count [8]           B; block index offset + 24·B = file length - 72
//	key count [8]             K
//	raw block bytes [8]       sum of raw lengths
//	stored block bytes [8]    sum of stored lengths
//	version [4]               1; equal to the header's
//	footer CRC [4]            CRC-32C of the 60 bytes above
//	tail magic [8]            "DWSHEND\n"
//
// At Open a reader checks both magics, both versions, both CRCs, the hash
// algorithm and seed, that every section lies where the footer says, and
// every block index entry (contiguous offsets, codec, raw size within its
// MaxBlock, sums equal to the footer's). A block's CRC is checked when
// its stored bytes are read: once for a raw block, at each decode for a
// zstd block. Check walks everything.
//
// The CRC-32Cs detect accidental damage only. The sha256 of the whole
// file, recorded in the signed manifest, is what makes a shard trusted.
//
// # Example
//
// A shard of kind "hwid", shard 0 of 1, R = 16, holding "a" → "1" and
// "b" → "22". Its one block is raw: zstd cannot save 1/8 of 21 bytes.
// XXH64("a") = 0xd24ec4f1a98c6e5b and XXH64("b") = 0x78452aa11af39f9b,
// so with S = ceil(4·2/3) = 3 their home slots are 2 and 1.
//
//	0000  44 57 53 48 41 52 44 0a                         head magic "DWSHARD\n"
//	0008  01 00 00 00                                     version 1
//	000c  01 00 00 00                                     hash algorithm 1 (XXH64)
//	0010  00 00 00 00 00 00 00 00                         hash seed 0
//	0018  00 00 00 00  01 00 00 00                        shard 0, shards 1
//	0020  10 00 00 00                                     block records 16
//	0024  04  68 77 69 64  00 .. 00 (11 bytes)            kind length 4, "hwid", padding
//	0034  48 cf 28 5b                                     header CRC
//	0038  0c 00 00 00  10 00 00 00  15 00 00 00           block 0: offset table 12, 16, 21
//	0044  01 00  61  31                                   record 0: key length 1, "a", "1"
//	0048  01 00  62  32 32                                record 1: key length 1, "b", "22"
//	004d  00 00 00                                        padding to 0x50
//	0050  00 .. 00 (16 bytes)                             slot 0: empty
//	0060  9b 9f f3 1a a1 2a 45 78  02 00 00 00 00 00 00 00  slot 1: XXH64("b"), ordinal 2
//	0070  5b 6e 8c a9 f1 c4 4e d2  01 00 00 00 00 00 00 00  slot 2: XXH64("a"), ordinal 1
//	0080  38 00 00 00 00 00 00 00                         block 0: offset 0x38
//	0088  15 00 00 00  15 00 00 00                        stored 21, raw 21
//	0090  90 ba 28 18  00  00 00 00                       CRC, codec 0 (raw), reserved
//	0098  50 00 00 00 00 00 00 00  03 00 00 00 00 00 00 00  hash table offset 0x50, 3 slots
//	00a8  80 00 00 00 00 00 00 00  01 00 00 00 00 00 00 00  block index offset 0x80, 1 block
//	00b8  02 00 00 00 00 00 00 00                         2 keys
//	00c0  15 00 00 00 00 00 00 00  15 00 00 00 00 00 00 00  raw block bytes 21, stored 21
//	00d0  01 00 00 00  70 42 36 e5                        version 1, footer CRC
//	00d8  44 57 53 48 45 4e 44 0a                         tail magic "DWSHEND\n"
//
// format_test.go holds this shard byte for byte, and a second one with a
// zstd block and a probe that wraps around the hash table.
//
// # Versions
//
// Version 1 (2026) is the first version.
//
// # Compatibility
//
// A reader accepts exactly the versions it knows and rejects the rest
// as corrupt. Any change to the bytes of this format (a field, a section,
// the slot function, the hash algorithm, a new codec) is a new version,
// written in both the header and the footer and added to the list
// above with what it adds; readers keep reading every version they
// ever accepted. Files are deterministic: the same Adds with the same
// WriterOptions give the same bytes, as long as the zstd encoder
// (github.com/klauspost/compress) is the same version; a new
// compress version may encode blocks differently, which any reader
// decodes the same.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/cespare/xxhash/v2"
)

// ErrCorrupt is wrapped by every error reporting a structural fault in a
// shard file. The error text says what is wrong and where.
var ErrCorrupt = errors.New("index: corrupt shard")

// formatVersion is the shard format version, written in the header and
// the footer. Each value says what it adds.
type formatVersion uint32

const (
	// formatV1 adds: everything (header, raw and zstd blocks,
	// fastrange/linear-probing hash table, block index, footer).
	formatV1 formatVersion = 1

	currentVersion = formatV1
)

const (
	headMagic = "DWSHARD\n"
	tailMagic = "DWSHEND\n"

	headerLen      = 56 // magic, version, hash algorithm, seed, shard, shards, block records, kind, CRC
	headerCRCStart = 52 // the header CRC covers bytes [0, 52)
	footerLen      = 72 // offsets, counts, version, CRC, magic
	footerCRCStart = 60 // the footer CRC covers bytes [0, 60) of the footer
	blockEntryLen  = 24 // offset, stored length, raw length, CRC, codec, reserved
	slotLen        = 16 // hash, ordinal
	offsetLen      = 4  // one entry of a block's offset table
	keyLenLen      = 2  // + key + value
	tableAlign     = 16 // the hash table starts at a multiple of this

	hashXXH64 = 1 // hash algorithm id of unseeded XXH64

	codecRaw  = 0
	codecZstd = 1

	maxKindLen      = 15
	maxKeyLen       = 65535
	maxBlockRecords = 1 << 16
	maxSlots        = 1 << 32   // the slot function uses 32 bits of the hash
	maxKeys         = 1<<31 - 1 // so that slotCount(maxKeys) <= maxSlots
	minFileLen      = headerLen + footerLen

	// DefaultBlockRecords is the number of records per block when
	// WriterOptions.BlockRecords is 0.
	DefaultBlockRecords = 16
	// DefaultMaxBlock is the cap on a block's raw size when
	// WriterOptions.MaxBlock or Options.MaxBlock is 0.
	DefaultMaxBlock = 4 << 20
)

// castagnoli is the CRC-32C table. It is never written after init.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Hash is the unseeded XXH64 of key: the hash recorded in a shard's hash
// table and the one routing uses.
func Hash(key []byte) uint64 { return xxhash.Sum64(key) }

// Route returns the shard, 0..n-1, that key belongs to in a release of n
// shards: Hash(key) mod n. Route panics if n < 1.
func Route(key []byte, n int) int { return RouteHash(Hash(key), n) }

// RouteHash is Route from h = Hash(key). RouteHash panics if n < 1.
func RouteHash(h uint64, n int) int {
	if n < 1 {
		panic("index: RouteHash: shard count < 1")
	}
	return int(h % uint64(n))
}

// slotOf returns the home slot of hash h in a table of n slots
// (1 <= n <= maxSlots): fastrange of the high 32 bits.
func slotOf(h, n uint64) uint64 { return (h >> 32) * n >> 32 }

// slotCount returns the number of hash table slots the writer uses for
// k keys: ceil(4k/3), and at least k+1.
func slotCount(k uint64) uint64 {
	n := (4*k + 2) / 3
	if n <= k {
		n = k + 1
	}
	return n
}

// corruptf returns an error wrapping ErrCorrupt that names the shard and
// says what is wrong and where.
func corruptf(name, format string, args ...any) error {
	return fmt.Errorf("index: %s: %s: %w", name, fmt.Sprintf(format, args...), ErrCorrupt)
}

// readBuf is a decoding cursor over a byte slice whose length the caller
// has checked.
type readBuf []byte

func (b *readBuf) uint8() uint8 {
	v := (*b)[0]
	*b = (*b)[1:]
	return v
}

func (b *readBuf) uint32() uint32 {
	v := binary.LittleEndian.Uint32(*b)
	*b = (*b)[4:]
	return v
}

func (b *readBuf) uint64() uint64 {
	v := binary.LittleEndian.Uint64(*b)
	*b = (*b)[8:]
	return v
}

func (b *readBuf) bytes(n int) []byte {
	v := (*b)[:n:n]
	*b = (*b)[n:]
	return v
}

// header is the decoded header of a shard.
type header struct {
	version      formatVersion
	hashAlg      uint32
	seed         uint64
	shard        uint32
	shards       uint32
	blockRecords uint32
	kind         string
}

// appendHeader appends the headerLen bytes of h to dst.
func appendHeader(dst []byte, h header) []byte {
	start := len(dst)
	dst = append(dst, headMagic...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(h.version))
	dst = binary.LittleEndian.AppendUint32(dst, h.hashAlg)
	dst = binary.LittleEndian.AppendUint64(dst, h.seed)
	dst = binary.LittleEndian.AppendUint32(dst, h.shard)
	dst = binary.LittleEndian.AppendUint32(dst, h.shards)
	dst = binary.LittleEndian.AppendUint32(dst, h.blockRecords)
	dst = append(dst, byte(len(h.kind)))
	var kind [maxKindLen]byte
	copy(kind[:], h.kind)
	dst = append(dst, kind[:]...)
	return binary.LittleEndian.AppendUint32(dst, crc(dst[start:]))
}

// parseHeader decodes and checks the header at the start of b
// (len(b) >= headerLen).
func parseHeader(name string, b []byte) (header, error) {
	var h header
	if string(b[:len(headMagic)]) != headMagic {
		return h, corruptf(name, "header at offset 0: bad head magic %q", b[:len(headMagic)])
	}
	if got, want := binary.LittleEndian.Uint32(b[headerCRCStart:]), crc(b[:headerCRCStart]); got != want {
		return h, corruptf(name, "header at offset 0: CRC %#08x, computed %#08x", got, want)
	}
	r := readBuf(b[len(headMagic):headerCRCStart])
	h.version = formatVersion(r.uint32())
	h.hashAlg = r.uint32()
	h.seed = r.uint64()
	h.shard = r.uint32()
	h.shards = r.uint32()
	h.blockRecords = r.uint32()
	n := int(r.uint8())
	kind := r.bytes(maxKindLen)
	switch {
	case h.version != formatV1:
		return h, corruptf(name, "header at offset 8: unknown version %d", h.version)
	case h.hashAlg != hashXXH64:
		return h, corruptf(name, "header at offset 12: unknown hash algorithm %d", h.hashAlg)
	case h.seed != 0:
		return h, corruptf(name, "header at offset 16: hash seed %#x, want 0", h.seed)
	case h.shards < 1 || h.shard >= h.shards:
		return h, corruptf(name, "header at offset 24: shard %d of %d", h.shard, h.shards)
	case h.blockRecords < 1 || h.blockRecords > maxBlockRecords:
		return h, corruptf(name, "header at offset 32: %d block records, want 1..%d", h.blockRecords, maxBlockRecords)
	case n < 1 || n > maxKindLen || !validKind(kind[:n]) || !allZero(kind[n:]):
		return h, corruptf(name, "header at offset 36: bad kind %q (length %d)", kind, n)
	}
	h.kind = string(kind[:n])
	return h, nil
}

// validKind reports whether kind is printable ASCII without space.
func validKind(kind []byte) bool {
	for _, c := range kind {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// footer is the decoded footer of a shard.
type footer struct {
	tableOff    uint64
	slots       uint64
	indexOff    uint64
	blocks      uint64
	keys        uint64
	rawBytes    uint64
	storedBytes uint64
	version     formatVersion
}

// appendFooter appends the footerLen bytes of f to dst.
func appendFooter(dst []byte, f footer) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint64(dst, f.tableOff)
	dst = binary.LittleEndian.AppendUint64(dst, f.slots)
	dst = binary.LittleEndian.AppendUint64(dst, f.indexOff)
	dst = binary.LittleEndian.AppendUint64(dst, f.blocks)
	dst = binary.LittleEndian.AppendUint64(dst, f.keys)
	dst = binary.LittleEndian.AppendUint64(dst, f.rawBytes)
	dst = binary.LittleEndian.AppendUint64(dst, f.storedBytes)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(f.version))
	dst = binary.LittleEndian.AppendUint32(dst, crc(dst[start:]))
	return append(dst, tailMagic...)
}

// parseFooter decodes and checks the magic, CRC and version of the
// footer b (len(b) == footerLen) found at file offset off.
func parseFooter(name string, b []byte, off int) (footer, error) {
	var f footer
	if m := b[footerCRCStart+4:]; string(m) != tailMagic {
		return f, corruptf(name, "footer at offset %d: bad tail magic %q", off, m)
	}
	if got, want := binary.LittleEndian.Uint32(b[footerCRCStart:]), crc(b[:footerCRCStart]); got != want {
		return f, corruptf(name, "footer at offset %d: CRC %#08x, computed %#08x", off, got, want)
	}
	r := readBuf(b[:footerCRCStart])
	f.tableOff = r.uint64()
	f.slots = r.uint64()
	f.indexOff = r.uint64()
	f.blocks = r.uint64()
	f.keys = r.uint64()
	f.rawBytes = r.uint64()
	f.storedBytes = r.uint64()
	f.version = formatVersion(r.uint32())
	if f.version != formatV1 {
		return f, corruptf(name, "footer at offset %d: unknown version %d", off, f.version)
	}
	return f, nil
}

// blockEntry is one decoded block index entry.
type blockEntry struct {
	off    uint64
	stored uint32
	raw    uint32
	crc    uint32
	codec  uint8
	resv   [3]byte
}

// appendBlockEntry appends the blockEntryLen bytes of e to dst.
func appendBlockEntry(dst []byte, e blockEntry) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, e.off)
	dst = binary.LittleEndian.AppendUint32(dst, e.stored)
	dst = binary.LittleEndian.AppendUint32(dst, e.raw)
	dst = binary.LittleEndian.AppendUint32(dst, e.crc)
	dst = append(dst, e.codec)
	return append(dst, e.resv[:]...)
}

// parseBlockEntry decodes the entry at the start of b
// (len(b) >= blockEntryLen). Its fields are checked by the caller.
func parseBlockEntry(b []byte) blockEntry {
	r := readBuf(b[:blockEntryLen])
	var e blockEntry
	e.off = r.uint64()
	e.stored = r.uint32()
	e.raw = r.uint32()
	e.crc = r.uint32()
	e.codec = r.uint8()
	copy(e.resv[:], r.bytes(3))
	return e
}
