package index

// Shard reading. See format.go for the file format.
//
// Open validates what it can in O(blocks) without reading block
// contents: magics, versions, header and footer CRCs, section bounds and
// the block index. Everything else is checked where it is read, so a
// damaged shard gives an error wrapping ErrCorrupt, never a panic;
// Check reads everything.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/klauspost/compress/zstd"
)

// A CacheBudget is a byte budget for decoded blocks, shared by all the
// shards of one release. Each shard charges the raw size of every block
// it caches and gives it back at Close. It is safe for concurrent use.
type CacheBudget struct {
	left  atomic.Int64
	total int64
	// Decodes of zstd blocks: kept in the cache, or not (over the budget, or a lookup that
	// does not fill it). A hit costs no decode and is not counted: the hot path stays free
	// of shared writes.
	decodedCached, decodedUncached atomic.Uint64
}

// NewCacheBudget returns a budget of the given number of bytes.
func NewCacheBudget(bytes int64) *CacheBudget {
	c := &CacheBudget{total: bytes}
	c.left.Store(bytes)
	return c
}

// Available returns the bytes not yet charged.
func (c *CacheBudget) Available() int64 { return c.left.Load() }

// CacheStats are a budget's figures, for metrics.
type CacheStats struct {
	Budget, Used                   int64  // bytes
	DecodedCached, DecodedUncached uint64 // zstd blocks decoded into the cache, and outside it
}

// Stats returns the budget's figures.
func (c *CacheBudget) Stats() CacheStats {
	return CacheStats{Budget: c.total, Used: c.total - c.left.Load(), DecodedCached: c.decodedCached.Load(), DecodedUncached: c.decodedUncached.Load()}
}

// take charges n bytes if that many are left.
func (c *CacheBudget) take(n int64) bool {
	for {
		left := c.left.Load()
		if left < n {
			return false
		}
		if c.left.CompareAndSwap(left, left-n) {
			return true
		}
	}
}

// give returns n bytes to the budget.
func (c *CacheBudget) give(n int64) { c.left.Add(n) }

// Options configure a Shard. A nil *Options is valid and means all
// defaults.
type Options struct {
	// Decoder decodes zstd blocks; it must allow concurrent DecodeAll
	// and should come from NewDecoder, which bounds decoding. nil: the
	// shard creates one with NewDecoder(MaxBlock) and closes it at Close.
	Decoder *zstd.Decoder
	// Cache is the budget for caching decoded blocks. nil: decoded
	// blocks are never cached, each Get that needs one decodes it.
	Cache *CacheBudget
	// MaxBlock caps a block's declared raw size; 0 means
	// DefaultMaxBlock (4 MiB). A larger declared size is corruption.
	MaxBlock int
}

// NewDecoder returns a zstd decoder for shards whose blocks are at most
// maxBlock raw bytes (0 means DefaultMaxBlock): DecodeAll is safe for
// concurrent use (GOMAXPROCS at once), decodes at most
// max(maxBlock, 1 KiB) bytes and never grows its destination past its
// capacity, so hostile frames cannot make it allocate. Share one between
// the shards of a release through Options.Decoder; Close it after them.
func NewDecoder(maxBlock int) (*zstd.Decoder, error) {
	if maxBlock == 0 {
		maxBlock = DefaultMaxBlock
	}
	if maxBlock < 0 {
		return nil, fmt.Errorf("index: NewDecoder: maxBlock %d < 0", maxBlock)
	}
	// zstd's smallest window is 1 KiB: a smaller limit would reject
	// valid small frames. The destination's capacity is the real bound.
	limit := uint64(max(maxBlock, zstd.MinWindowSize))
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(limit),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, fmt.Errorf("index: NewDecoder: %w", err)
	}
	return d, nil
}

// Info describes a shard, from its header and footer.
type Info struct {
	Kind             string
	Shard, Shards    int
	Keys             int
	Blocks           int
	BlockRecords     int
	FileBytes        int64
	RawBlockBytes    int64
	StoredBlockBytes int64
}

// A Shard is an open shard file. It is safe for concurrent use by many
// goroutines, except Close, which must be called once every other call
// has returned. A Shard must not be copied.
type Shard struct {
	name   string
	data   []byte // the whole file; nil after Close
	mapped bool   // data is a mapping to unmap at Close

	hdr   header
	ftr   footer
	table []byte // the hash table section
	index []byte // the block index section
	state []blockState
	bloom bloom // of the table's hashes, built at Open (bloom.go)

	maxBlock int
	dec      *zstd.Decoder
	ownDec   bool
	cache    *CacheBudget
	charged  atomic.Int64 // bytes this shard has charged to cache
	arena    arena        // where cached decoded blocks live
}

// blockState is what a Shard learns about a block after Open: where its raw bytes are once
// they can be used as they are (a raw block whose CRC was verified, in the file mapping; a
// cached zstd block, in the arena). A lookup of such a block reads this and nothing else:
// not the block index, not a slice header elsewhere.
type blockState struct {
	raw atomic.Pointer[byte] // the first raw byte; nil until verified or cached
	n   atomic.Uint32        // the raw length, stored before raw
}

// ready returns the block's raw bytes when they are verified or cached.
func (st *blockState) ready() ([]byte, bool) {
	p := st.raw.Load()
	if p == nil {
		return nil, false
	}
	return unsafe.Slice(p, st.n.Load()), true // its capacity is its length
}

// publish records a block's raw bytes (non-empty: a block holds at least its offset table)
// and reports whether this call did (false: another lookup did first).
func (st *blockState) publish(b []byte) bool {
	st.n.Store(uint32(len(b)))
	return st.raw.CompareAndSwap(nil, &b[0])
}

// Open maps the shard file at path read-only (PROT_READ, MAP_SHARED, with
// madvise RANDOM and WILLNEED; platforms without mmap read it into
// memory) and validates its header, footer, section bounds and block
// index, in O(blocks) without reading or decoding any block. The errors
// for a damaged file wrap ErrCorrupt. Open does not verify the file's
// sha256: the release layer does. The file must not be modified or
// truncated while it is open: touching a truncated mapping kills the
// process.
func Open(path string, opts *Options) (*Shard, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("index: open: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("index: open: %w", err)
	}
	if st.Size() < minFileLen {
		return nil, corruptf(path, "file is %d bytes; a shard has at least %d", st.Size(), minFileLen)
	}
	if st.Size() > math.MaxInt {
		return nil, fmt.Errorf("index: open %s: file of %d bytes is too large to map", path, st.Size())
	}
	data, mapped, err := mmapFile(f, int(st.Size()))
	if err != nil {
		return nil, fmt.Errorf("index: open %s: %w", path, err)
	}
	s, err := open(path, data, mapped, opts)
	if err != nil {
		if mapped {
			_ = munmap(data) // the open error matters more
		}
		return nil, err
	}
	return s, nil
}

// OpenBytes is Open over a shard held in memory. The Shard reads data in
// place: data must not change until Close.
func OpenBytes(data []byte, opts *Options) (*Shard, error) {
	return open("shard in memory", data, false, opts)
}

func open(name string, data []byte, mapped bool, opts *Options) (*Shard, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxBlock == 0 {
		o.MaxBlock = DefaultMaxBlock
	}
	if o.MaxBlock < 0 {
		return nil, fmt.Errorf("index: open %s: Options.MaxBlock %d < 0", name, o.MaxBlock)
	}
	s := &Shard{name: name, data: data, mapped: mapped, maxBlock: o.MaxBlock, cache: o.Cache}
	if err := s.validate(); err != nil {
		return nil, err
	}
	s.state = make([]blockState, s.ftr.blocks) // validated against the file size
	s.bloom = newBloom(s.table, s.ftr.keys)
	s.dec = o.Decoder
	if s.dec == nil {
		d, err := NewDecoder(o.MaxBlock)
		if err != nil {
			return nil, err
		}
		s.dec, s.ownDec = d, true
	}
	return s, nil
}

// validate checks the header, the footer, the section bounds and the
// block index, and sets hdr, ftr, table and index.
func (s *Shard) validate() error {
	n := uint64(len(s.data))
	if n < minFileLen {
		return s.corrupt("file is %d bytes; a shard has at least %d", n, minFileLen)
	}
	var err error
	if s.hdr, err = parseHeader(s.name, s.data); err != nil {
		return err
	}
	end := n - footerLen // end of the block index
	b, _ := s.slice(end, footerLen, "footer", -1)
	if s.ftr, err = parseFooter(s.name, b, int(end)); err != nil {
		return err
	}
	h, f := &s.hdr, &s.ftr
	if h.version != f.version {
		return s.corrupt("header version %d, footer version %d", h.version, f.version)
	}
	// Sections, in file order; each check keeps the next one from overflowing.
	switch {
	case f.storedBytes > end-headerLen:
		return s.corrupt("footer: %d stored block bytes in a %d-byte file", f.storedBytes, n)
	case f.tableOff != alignUp(headerLen+f.storedBytes, tableAlign):
		return s.corrupt("footer: hash table offset %d; blocks end at %d", f.tableOff, headerLen+f.storedBytes)
	case f.tableOff > end:
		return s.corrupt("footer: hash table offset %d past the block index end %d", f.tableOff, end)
	case f.slots < 1 || f.slots > maxSlots || f.slots > (end-f.tableOff)/slotLen:
		return s.corrupt("footer: %d hash table slots at offset %d in a %d-byte file", f.slots, f.tableOff, n)
	case f.indexOff != f.tableOff+f.slots*slotLen:
		return s.corrupt("footer: block index offset %d; hash table ends at %d", f.indexOff, f.tableOff+f.slots*slotLen)
	case f.blocks > (end-f.indexOff)/blockEntryLen || f.indexOff+f.blocks*blockEntryLen != end:
		return s.corrupt("footer: %d blocks in a block index of %d bytes at offset %d", f.blocks, end-f.indexOff, f.indexOff)
	case f.keys >= f.slots || 4*f.keys > 3*f.slots:
		return s.corrupt("footer: %d keys in %d hash table slots", f.keys, f.slots)
	case f.blocks != (f.keys+uint64(h.blockRecords)-1)/uint64(h.blockRecords):
		return s.corrupt("footer: %d blocks for %d keys of %d per block", f.blocks, f.keys, h.blockRecords)
	}
	pad, _ := s.slice(headerLen+f.storedBytes, f.tableOff-headerLen-f.storedBytes, "padding", -1)
	if !allZero(pad) {
		return s.corrupt("padding at offset %d is not zero", headerLen+f.storedBytes)
	}
	s.table, _ = s.slice(f.tableOff, f.slots*slotLen, "hash table", -1)
	s.index, _ = s.slice(f.indexOff, f.blocks*blockEntryLen, "block index", -1)

	next, raw := uint64(headerLen), uint64(0)
	for b := 0; b < int(f.blocks); b++ {
		e := s.entry(b)
		if err := s.checkEntry(b, e); err != nil {
			return err
		}
		if e.off != next {
			return s.corrupt("block %d: offset %d; block %d ends at %d", b, e.off, b-1, next)
		}
		next += uint64(e.stored)
		raw += uint64(e.raw)
	}
	if next != headerLen+f.storedBytes || raw != f.rawBytes {
		return s.corrupt("footer: %d stored and %d raw block bytes; the block index sums to %d and %d",
			f.storedBytes, f.rawBytes, next-headerLen, raw)
	}
	return nil
}

// checkEntry checks the fields of block b's index entry that need no
// block bytes.
func (s *Shard) checkEntry(b int, e blockEntry) error {
	n := s.records(b)
	switch {
	case e.codec != codecRaw && e.codec != codecZstd:
		return s.corrupt("block %d at offset %d: unknown codec %d", b, e.off, e.codec)
	case e.resv != [3]byte{}:
		return s.corrupt("block %d at offset %d: reserved bytes % x", b, e.off, e.resv[:])
	case uint64(e.raw) > uint64(s.maxBlock):
		return s.corrupt("block %d at offset %d: raw size %d over MaxBlock %d", b, e.off, e.raw, s.maxBlock)
	case uint64(e.raw) < offsetLen*uint64(n+1):
		return s.corrupt("block %d at offset %d: raw size %d too small for %d records", b, e.off, e.raw, n)
	case e.stored == 0:
		return s.corrupt("block %d at offset %d: empty", b, e.off)
	case e.codec == codecRaw && e.stored != e.raw:
		return s.corrupt("block %d at offset %d: raw block of %d bytes stored in %d", b, e.off, e.raw, e.stored)
	}
	return nil
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

// corrupt returns an error wrapping ErrCorrupt for this shard.
func (s *Shard) corrupt(format string, args ...any) error {
	return corruptf(s.name, format, args...)
}

// slice returns the n bytes of the file at off. It is the one place an
// offset read from the file turns into memory. what and i (when >= 0)
// name the thing read, for the error.
func (s *Shard) slice(off, n uint64, what string, i int) ([]byte, error) {
	end := off + n
	if end < off || end > uint64(len(s.data)) {
		if i >= 0 {
			return nil, s.corrupt("%s %d at offset %d: %d bytes past the end of the %d-byte file", what, i, off, n, len(s.data))
		}
		return nil, s.corrupt("%s at offset %d: %d bytes past the end of the %d-byte file", what, off, n, len(s.data))
	}
	return s.data[off:end:end], nil
}

// entry returns block b's index entry (0 <= b < blocks).
func (s *Shard) entry(b int) blockEntry {
	return parseBlockEntry(s.index[b*blockEntryLen:])
}

// records returns the number of records in block b.
func (s *Shard) records(b int) int {
	r := uint64(s.hdr.blockRecords)
	return int(min(r, s.ftr.keys-uint64(b)*r))
}

// stored returns block b's stored bytes after checking their CRC.
func (s *Shard) stored(b int, e blockEntry) ([]byte, error) {
	p, err := s.slice(e.off, uint64(e.stored), "block", b)
	if err != nil {
		return nil, err
	}
	if got := crc(p); got != e.crc {
		return nil, s.corrupt("block %d at offset %d: checksum mismatch: CRC %#08x, computed %#08x", b, e.off, e.crc, got)
	}
	return p, nil
}

// decode returns the raw bytes of zstd block b, in a new buffer of
// exactly its declared raw size. It always checks the CRC.
// decode decompresses block b into dst (of capacity e.raw), or into a new heap buffer when dst
// is nil.
func (s *Shard) decode(b int, e blockEntry, dst []byte) ([]byte, error) {
	p, err := s.stored(b, e)
	if err != nil {
		return nil, err
	}
	var fh zstd.Header
	if err := fh.Decode(p); err != nil {
		return nil, s.corrupt("block %d at offset %d: zstd frame header: %v", b, e.off, err)
	}
	if !fh.HasFCS || fh.FrameContentSize != uint64(e.raw) || fh.DictionaryID != 0 || fh.Skippable {
		return nil, s.corrupt("block %d at offset %d: zstd frame declares %d bytes (known %t, dictionary %d); want %d",
			b, e.off, fh.FrameContentSize, fh.HasFCS, fh.DictionaryID, e.raw)
	}
	if dst == nil {
		dst = make([]byte, 0, e.raw)
	}
	out, err := s.dec.DecodeAll(p, dst[:0])
	if err != nil {
		return nil, s.corrupt("block %d at offset %d: zstd: %v", b, e.off, err)
	}
	if len(out) != int(e.raw) {
		return nil, s.corrupt("block %d at offset %d: decodes to %d bytes; want %d", b, e.off, len(out), e.raw)
	}
	return out, nil
}

// block returns the raw bytes of block b: in place for a raw block, from
// the cache or freshly decoded for a zstd block. When fill is set, a
// decoded block is cached if the budget allows.
func (s *Shard) block(b int, fill bool) ([]byte, error) {
	st := &s.state[b]
	if p, ok := st.ready(); ok {
		return p, nil
	}
	e := s.entry(b)
	if e.codec == codecRaw {
		p, err := s.stored(b, e)
		if err != nil {
			return nil, err
		}
		st.publish(p)
		return p, nil
	}
	if !fill || s.cache == nil || !s.cache.take(int64(e.raw)) {
		if s.cache != nil {
			s.cache.decodedUncached.Add(1)
		}
		return s.decode(b, e, nil) // not cached: a heap buffer for this lookup alone
	}
	s.cache.decodedCached.Add(1)
	// Cached: decoded into the shard's arena, outside the Go heap (arena_unix.go).
	out, err := s.decode(b, e, s.arena.alloc(int(e.raw)))
	if err != nil {
		s.cache.give(int64(e.raw))
		return nil, err
	}
	if st.publish(out) {
		s.charged.Add(int64(e.raw))
		// No lookup reads the stored bytes of a cached block again: let its pages of the
		// mapping go from the resident set (a neighbour block still needed maps them back
		// from the page cache when it is decoded).
		s.dropStored(e.off, uint64(e.stored))
	} else {
		s.cache.give(int64(e.raw)) // lost the race: this copy's arena bytes go with the shard
	}
	return out, nil
}

// dropStored lets the mapping's pages around the stored bytes [off, off+n) of blocks leave
// the process's resident set (mmap_unix.go); they stay in the page cache. A read fault maps
// not one page but the aligned 64 KiB around it that the page cache holds (the kernel's
// fault-around, which MADV_RANDOM does not turn off), so what is dropped is that window,
// kept within the blocks section: a neighbour block still needed is mapped back when it is
// decoded. It runs once per block cached, never on a cache hit. (A page cache of large
// folios maps a whole folio at a fault, which may reach past the window: the drop is then
// partial, never wrong.) A shard read into memory (OpenBytes, platforms without mmap)
// keeps its bytes.
func (s *Shard) dropStored(off, n uint64) {
	if !s.mapped || n == 0 || len(s.data) == 0 {
		return
	}
	const window = 64 << 10
	page := uint64(os.Getpagesize())
	base := uint64(uintptr(unsafe.Pointer(&s.data[0]))) // page-aligned: a mapping's start
	end := base + min(headerLen+s.ftr.storedBytes, uint64(len(s.data)))
	lo := max((base+off)&^(window-1), base)
	hi := min((base+off+n+window-1)&^(window-1), end)
	if hi == end {
		hi &^= page - 1 // the page the hash table starts in stays
	}
	if lo < hi {
		dropPages(s.data[lo-base : hi-base])
	}
}

// dropBlocks is dropStored for every block: after a pass over all of them (Check, Scan),
// which would otherwise leave the whole file resident, when lookups read only the hash
// table, the block index and the blocks they decode.
func (s *Shard) dropBlocks() { s.dropStored(headerLen, s.ftr.storedBytes) }

// record returns record k of block b, whose raw bytes are blk. Key and
// value are capped at their length: appending to them copies.
func (s *Shard) record(blk []byte, b, k int) (key, value []byte, err error) {
	n := s.records(b)
	if len(blk) < offsetLen*(n+1) {
		return nil, nil, s.corrupt("block %d: %d bytes too short for the offset table of %d records", b, len(blk), n)
	}
	start := int(binary.LittleEndian.Uint32(blk[offsetLen*k:]))
	end := int(binary.LittleEndian.Uint32(blk[offsetLen*(k+1):]))
	if start > end || end > len(blk) || end-start < keyLenLen {
		return nil, nil, s.corrupt("block %d: record %d spans %d..%d of %d bytes", b, k, start, end, len(blk))
	}
	klen := int(binary.LittleEndian.Uint16(blk[start:]))
	kend := start + keyLenLen + klen
	if klen == 0 || kend > end {
		return nil, nil, s.corrupt("block %d: record %d: key of %d bytes in a record of %d", b, k, klen, end-start)
	}
	return blk[start+keyLenLen : kend : kend], blk[kend:end:end], nil
}

// Get returns the value of key, or ok == false if the shard does not
// hold key. The value must not be modified and must not be used after
// Close: a value from a raw block aliases the file mapping, a value from a
// cached zstd block the shard's arena of decoded blocks (both unmapped at
// Close); only an uncached decode is heap memory. Get does not allocate on
// a miss, on a hit in a raw block, or on a hit in a cached block.
func (s *Shard) Get(key []byte) (value []byte, ok bool, err error) {
	return s.GetHash(key, Hash(key))
}

// MayContain reports whether a key of hash h may be in the shard: false when its Bloom
// filter rules it out (one cache line read). It lets a caller with many keys test them all
// first, whose reads overlap, and look up only the few that may be there.
func (s *Shard) MayContain(h uint64) bool {
	return s.bloom == nil || s.bloom.has(h)
}

// StartsEmpty reports whether the hash table slot where a lookup of hash h starts is empty:
// then no key of that hash is in the shard. Like MayContain it reads one cache line, so a
// caller with many keys can test them all first, with the reads overlapping, before
// looking up the rest with GetHash.
func (s *Shard) StartsEmpty(h uint64) bool {
	if s.table == nil {
		return false // closed: GetHash says so
	}
	i := slotOf(h, s.ftr.slots)
	return binary.LittleEndian.Uint64(s.table[i*slotLen+8:]) == 0
}

// GetHash is Get with h == Hash(key), for callers that hashed key to
// route it. A wrong h gives a miss.
func (s *Shard) GetHash(key []byte, h uint64) (value []byte, ok bool, err error) {
	if s.data == nil {
		return nil, false, fmt.Errorf("index: %s: Get after Close", s.name)
	}
	if !s.MayContain(h) {
		return nil, false, nil // certainly absent: the table is not touched
	}
	n := s.ftr.slots
	i := slotOf(h, n)
	for range n {
		slot := s.table[i*slotLen : i*slotLen+slotLen]
		ord := binary.LittleEndian.Uint64(slot[8:])
		if ord == 0 {
			return nil, false, nil
		}
		if binary.LittleEndian.Uint64(slot) == h {
			if ord > s.ftr.keys {
				return nil, false, s.corrupt("hash table slot %d: record ordinal %d of %d", i, ord, s.ftr.keys)
			}
			b, k := int((ord-1)/uint64(s.hdr.blockRecords)), int((ord-1)%uint64(s.hdr.blockRecords))
			blk, err := s.block(b, true)
			if err != nil {
				return nil, false, err
			}
			rk, rv, err := s.record(blk, b, k)
			if err != nil {
				return nil, false, err
			}
			if bytes.Equal(rk, key) {
				return rv, true, nil
			}
		}
		if i++; i == n {
			i = 0
		}
	}
	return nil, false, s.corrupt("hash table has no empty slot")
}

// Scan calls fn for every record in key order and stops at the first
// error, which it returns. Key and value are valid until Close and must
// not be modified. Scan does not fill the block cache; afterwards the
// mapping's block pages leave the process's resident set, as after Check.
func (s *Shard) Scan(fn func(key, value []byte) error) error {
	if s.data == nil {
		return fmt.Errorf("index: %s: Scan after Close", s.name)
	}
	defer s.dropBlocks()
	for b := range s.state {
		blk, err := s.block(b, false)
		if err != nil {
			return err
		}
		for k := range s.records(b) {
			key, value, err := s.record(blk, b, k)
			if err != nil {
				return err
			}
			if err := fn(key, value); err != nil {
				return err
			}
		}
	}
	return nil
}

// Info describes the shard.
func (s *Shard) Info() Info {
	return Info{
		Kind:             s.hdr.kind,
		Shard:            int(s.hdr.shard),
		Shards:           int(s.hdr.shards),
		Keys:             int(s.ftr.keys),
		Blocks:           int(s.ftr.blocks),
		BlockRecords:     int(s.hdr.blockRecords),
		FileBytes:        int64(s.ftr.indexOff + s.ftr.blocks*blockEntryLen + footerLen),
		RawBlockBytes:    int64(s.ftr.rawBytes),
		StoredBlockBytes: int64(s.ftr.storedBytes),
	}
}

// Close releases the shard: it unmaps the file, returns the cache budget
// and closes the decoder the shard created. Values returned earlier must
// not be used after. Close is idempotent.
func (s *Shard) Close() error {
	if s.data == nil {
		return nil
	}
	data := s.data
	s.data, s.table, s.index, s.state, s.bloom = nil, nil, nil, nil, nil
	if s.cache != nil {
		s.cache.give(s.charged.Swap(0))
	}
	if s.ownDec {
		s.dec.Close()
	}
	s.dec = nil
	s.arena.release() // the state holding the cached blocks was dropped above
	if s.mapped {
		if err := munmap(data); err != nil {
			return fmt.Errorf("index: close %s: %w", s.name, err)
		}
	}
	return nil
}
