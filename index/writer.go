package index

// Shard writing. See format.go for the file format.
//
// The writer streams: the header goes out with the first record, each
// block as soon as it has its BlockRecords records. It keeps in memory
// the hash of every key (8 bytes a key) and the block index (24 bytes a
// block); at Close it builds the hash table, inserting records in ordinal
// order so the bytes are deterministic, and writes the table, the block
// index and the footer.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/klauspost/compress/zstd"
)

// WriterOptions configure a Writer. Only Kind has no default: a nil
// *WriterOptions is equivalent to the zero value, which is invalid
// because Kind is empty.
type WriterOptions struct {
	// Kind says what the shard holds, e.g. "hwid" or "label":
	// 1..15 bytes of printable ASCII without space. Recorded in the header.
	Kind string
	// Shard is this shard's number, 0 <= Shard < Shards. Recorded.
	Shard int
	// Shards is the shard count of the release; 0 means 1. Recorded.
	// Add rejects keys that do not route to Shard.
	Shards int
	// BlockRecords is the number of records per block, 1..65536;
	// 0 means DefaultBlockRecords (16).
	BlockRecords int
	// Level is the zstd level: 1 fastest, 2 default, 3 better, 4 best
	// (zstd.SpeedFastest .. zstd.SpeedBestCompression); 0 means 2.
	// Level 4 uses about 50 MB of encoder memory.
	Level int
	// MaxBlock caps a block's raw size; 0 means DefaultMaxBlock (4 MiB).
	// Add rejects a record that would make its block larger. Readers
	// must use an Options.MaxBlock at least this large.
	MaxBlock int
}

// WriterStats counts what a Writer has written so far.
type WriterStats struct {
	Keys             int64 // records added
	Blocks           int64 // blocks written
	RawBlockBytes    int64 // sum of the blocks' raw (decoded) lengths
	StoredBlockBytes int64 // sum of the blocks' stored lengths
	FileBytes        int64 // bytes written to the underlying writer
}

// A Writer writes one shard to an io.Writer. Records must be added in
// strictly increasing key order, then Close writes the indexes. A Writer
// is not safe for concurrent use.
type Writer struct {
	w    io.Writer
	hdr  header
	max  int // cap on a block's raw size
	enc  *zstd.Encoder
	err  error // sticky: bad options or a write error
	done bool  // Close was called

	off    uint64   // bytes written so far
	prev   []byte   // the last key added
	hashes []uint64 // Hash of each key, by ordinal-1
	recs   []byte   // records of the current block
	starts []uint32 // offset of each record in recs
	index  []byte   // encoded block index entries
	raw    []byte   // scratch: the current block's raw bytes
	zbuf   []byte   // scratch: the current block compressed
	stats  WriterStats
}

// NewWriter returns a Writer that writes a shard to w. Invalid options
// are reported by the first Add or by Close. The Writer does not close w.
// A shard that may be mapped must never be rewritten in place: write a
// temporary file, sync it, then rename it.
func NewWriter(w io.Writer, opts *WriterOptions) *Writer {
	var o WriterOptions
	if opts != nil {
		o = *opts
	}
	wr := &Writer{w: w}
	if o.Shards == 0 {
		o.Shards = 1
	}
	if o.BlockRecords == 0 {
		o.BlockRecords = DefaultBlockRecords
	}
	if o.Level == 0 {
		o.Level = 2
	}
	if o.MaxBlock == 0 {
		o.MaxBlock = DefaultMaxBlock
	}
	levels := [...]zstd.EncoderLevel{1: zstd.SpeedFastest, 2: zstd.SpeedDefault, 3: zstd.SpeedBetterCompression, 4: zstd.SpeedBestCompression}
	switch {
	case len(o.Kind) < 1 || len(o.Kind) > maxKindLen || !validKind([]byte(o.Kind)):
		wr.err = fmt.Errorf("index: NewWriter: Kind %q is not 1..%d bytes of printable ASCII without space", o.Kind, maxKindLen)
	case o.Shards < 1 || uint64(o.Shards) > math.MaxUint32:
		wr.err = fmt.Errorf("index: NewWriter: Shards %d out of range", o.Shards)
	case o.Shard < 0 || o.Shard >= o.Shards:
		wr.err = fmt.Errorf("index: NewWriter: Shard %d out of range 0..%d", o.Shard, o.Shards-1)
	case o.BlockRecords < 1 || o.BlockRecords > maxBlockRecords:
		wr.err = fmt.Errorf("index: NewWriter: BlockRecords %d out of range 1..%d", o.BlockRecords, maxBlockRecords)
	case o.Level < 1 || o.Level >= len(levels):
		wr.err = fmt.Errorf("index: NewWriter: Level %d out of range 1..%d", o.Level, len(levels)-1)
	case o.MaxBlock < 0 || uint64(o.MaxBlock) > math.MaxUint32:
		wr.err = fmt.Errorf("index: NewWriter: MaxBlock %d out of range", o.MaxBlock)
	}
	if wr.err != nil {
		return wr
	}
	wr.hdr = header{
		version:      currentVersion,
		hashAlg:      hashXXH64,
		shard:        uint32(o.Shard),
		shards:       uint32(o.Shards),
		blockRecords: uint32(o.BlockRecords),
		kind:         o.Kind,
	}
	wr.max = o.MaxBlock
	// One frame per block, no zstd checksum (the block CRC covers the
	// stored bytes), always single segment so that the frame declares
	// its content size and the window is that size.
	wr.enc, wr.err = zstd.NewWriter(nil,
		zstd.WithEncoderLevel(levels[o.Level]),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false),
		zstd.WithSingleSegment(true))
	if wr.err != nil {
		wr.err = fmt.Errorf("index: NewWriter: %w", wr.err)
	}
	return wr
}

// Add appends a record. Keys must be 1..65535 bytes, strictly increasing
// (bytes.Compare) and routed to the writer's shard. A rejected record
// leaves the Writer as it was; a write error is returned by every later
// call. Add does not keep key or value.
func (w *Writer) Add(key, value []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errors.New("index: Add after Close")
	}
	if len(key) < 1 || len(key) > maxKeyLen {
		return fmt.Errorf("index: Add: key of %d bytes; want 1..%d", len(key), maxKeyLen)
	}
	if len(w.hashes) > 0 && bytes.Compare(key, w.prev) <= 0 {
		return fmt.Errorf("index: Add: key %q does not sort after the previous key %q", key, w.prev)
	}
	if len(w.hashes) >= maxKeys {
		return fmt.Errorf("index: Add: more than %d keys", maxKeys)
	}
	h := Hash(key)
	if r := RouteHash(h, int(w.hdr.shards)); r != int(w.hdr.shard) {
		return fmt.Errorf("index: Add: key %q routes to shard %d, not %d of %d", key, r, w.hdr.shard, w.hdr.shards)
	}
	// The block's raw size with this record: offset table, records so far, this record.
	size := offsetLen*(len(w.starts)+2) + len(w.recs) + keyLenLen + len(key) + len(value)
	if size > w.max {
		return fmt.Errorf("index: Add: key %q: record of %d bytes makes its block %d bytes; MaxBlock is %d",
			key, keyLenLen+len(key)+len(value), size, w.max)
	}
	if w.off == 0 {
		w.write(appendHeader(nil, w.hdr))
	}
	w.starts = append(w.starts, uint32(len(w.recs)))
	w.recs = binary.LittleEndian.AppendUint16(w.recs, uint16(len(key)))
	w.recs = append(w.recs, key...)
	w.recs = append(w.recs, value...)
	w.prev = append(w.prev[:0], key...)
	w.hashes = append(w.hashes, h)
	w.stats.Keys++
	if len(w.starts) == int(w.hdr.blockRecords) {
		w.flush()
	}
	return w.err
}

// flush writes the current block.
func (w *Writer) flush() {
	n := len(w.starts)
	if n == 0 {
		return
	}
	table := uint32(offsetLen * (n + 1))
	raw := w.raw[:0]
	for _, st := range w.starts {
		raw = binary.LittleEndian.AppendUint32(raw, table+st)
	}
	raw = binary.LittleEndian.AppendUint32(raw, table+uint32(len(w.recs)))
	raw = append(raw, w.recs...)
	w.raw = raw

	w.zbuf = w.enc.EncodeAll(raw, w.zbuf[:0])
	e := blockEntry{off: w.off, raw: uint32(len(raw)), codec: codecZstd}
	stored := w.zbuf
	if len(w.zbuf) > len(raw)-len(raw)/8 {
		e.codec = codecRaw
		stored = raw
	}
	e.stored = uint32(len(stored))
	e.crc = crc(stored)
	w.write(stored)
	w.index = appendBlockEntry(w.index, e)
	w.stats.Blocks++
	w.stats.RawBlockBytes += int64(e.raw)
	w.stats.StoredBlockBytes += int64(e.stored)
	w.starts = w.starts[:0]
	w.recs = w.recs[:0]
}

// write writes b unless an earlier write failed.
func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	w.off += uint64(n)
	w.stats.FileBytes += int64(n)
	if err != nil {
		w.err = fmt.Errorf("index: write: %w", err)
	}
}

// Close writes the last block, the hash table, the block index and the
// footer. It does not close the underlying io.Writer. Calling Close
// again returns the same result.
func (w *Writer) Close() error {
	if w.err != nil || w.done {
		return w.err
	}
	w.done = true
	if w.off == 0 {
		w.write(appendHeader(nil, w.hdr))
	}
	w.flush()
	if pad := (tableAlign - w.off%tableAlign) % tableAlign; pad > 0 {
		w.write(make([]byte, pad))
	}

	keys := uint64(len(w.hashes))
	slots := slotCount(keys)
	f := footer{
		tableOff:    w.off,
		slots:       slots,
		indexOff:    w.off + slots*slotLen,
		blocks:      uint64(w.stats.Blocks),
		keys:        keys,
		rawBytes:    uint64(w.stats.RawBlockBytes),
		storedBytes: uint64(w.stats.StoredBlockBytes),
		version:     currentVersion,
	}
	table := make([]byte, slots*slotLen)
	for i, h := range w.hashes {
		s := slotOf(h, slots)
		for binary.LittleEndian.Uint64(table[s*slotLen+8:]) != 0 {
			if s++; s == slots {
				s = 0
			}
		}
		binary.LittleEndian.PutUint64(table[s*slotLen:], h)
		binary.LittleEndian.PutUint64(table[s*slotLen+8:], uint64(i+1))
	}
	w.write(table)
	w.write(w.index)
	w.write(appendFooter(nil, f))
	w.hashes, w.index, w.recs, w.raw, w.zbuf, w.enc = nil, nil, nil, nil, nil, nil
	return w.err
}

// Stats returns what the Writer has written so far; after Close, the
// whole shard.
func (w *Writer) Stats() WriterStats { return w.stats }
