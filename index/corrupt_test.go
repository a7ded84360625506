package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the corrupted shards in testdata/")

// layout locates the sections of a valid shard, for the corrupters.
type layout struct {
	hdr     header
	ftr     footer
	entries []blockEntry
}

func parseLayout(t testing.TB, b []byte) layout {
	t.Helper()
	s, err := OpenBytes(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := layout{hdr: s.hdr, ftr: s.ftr}
	for i := range s.state {
		l.entries = append(l.entries, s.entry(i))
	}
	return l
}

// footerAt returns the file offset of the footer.
func (l layout) footerAt() int { return int(l.ftr.indexOff) + len(l.entries)*blockEntryLen }

// entryAt returns the file offset of block i's index entry.
func (l layout) entryAt(i int) int { return int(l.ftr.indexOff) + i*blockEntryLen }

// block returns the stored bytes of block i, in b.
func (l layout) block(b []byte, i int) []byte {
	e := l.entries[i]
	return b[e.off : e.off+uint64(e.stored)]
}

// firstBlock returns the first block with the given codec.
func (l layout) firstBlock(t testing.TB, codec uint8) int {
	t.Helper()
	for i, e := range l.entries {
		if e.codec == codec {
			return i
		}
	}
	t.Fatalf("no block with codec %d", codec)
	return -1
}

func fixHeaderCRC(b []byte) {
	binary.LittleEndian.PutUint32(b[headerCRCStart:], crc(b[:headerCRCStart]))
}

func fixFooterCRC(b []byte) {
	f := b[len(b)-footerLen:]
	binary.LittleEndian.PutUint32(f[footerCRCStart:], crc(f[:footerCRCStart]))
}

func fixBlockCRC(b []byte, l layout, i int) {
	binary.LittleEndian.PutUint32(b[l.entryAt(i)+16:], crc(l.block(b, i)))
}

// setRaw sets block i's raw length and fixes the footer's sum.
func setRaw(b []byte, l layout, i int, raw uint32) {
	binary.LittleEndian.PutUint32(b[l.entryAt(i)+12:], raw)
	sum := l.ftr.rawBytes - uint64(l.entries[i].raw) + uint64(raw)
	binary.LittleEndian.PutUint64(b[l.footerAt()+40:], sum)
	fixFooterCRC(b)
}

// corruptBase returns the shard the corrupters damage: 40 records
// "key00".."key39" in blocks of 4, odd blocks compressible (zstd), even
// blocks random (raw).
func corruptBase(t testing.TB) ([]byte, []record) {
	t.Helper()
	r := rand.New(rand.NewPCG(4, 4))
	var recs []record
	for i := range 40 {
		v := fmt.Appendf(nil, `{"label":%d,"rows":[1,2,3,4,5,6,7,8]}`, i)
		if i/4%2 == 0 {
			v = v[:0]
			for range 51 {
				v = append(v, byte(r.Uint32()))
			}
		}
		recs = append(recs, record{fmt.Appendf(nil, "key%02d", i), v})
	}
	data, _ := writeShard(t, WriterOptions{Kind: "hwid", BlockRecords: 4}, recs)
	return data, recs
}

// A corruption damages a copy of the base shard. Open, or else Check,
// must then fail with ErrCorrupt, and the Get of each key in getFails
// must too.
type corruption struct {
	name     string
	mess     func(b []byte, l layout) []byte
	opts     *Options
	getFails []string
}

func corruptions(t testing.TB, base []byte) []corruption {
	l := parseLayout(t, base)
	zb := l.firstBlock(t, codecZstd) // block 1: key04..key07
	rb := l.firstBlock(t, codecRaw)  // block 0: key00..key03
	zkey := fmt.Sprintf("key%02d", zb*4)
	rkey := fmt.Sprintf("key%02d", rb*4)
	if l.ftr.tableOff == headerLen+l.ftr.storedBytes {
		t.Fatal("the base shard has no padding to damage")
	}
	cs := []corruption{
		{name: "bad head magic", mess: func(b []byte, l layout) []byte {
			b[0]++ // 'D' → 'E'; the header CRC covers the magic too
			return b
		}},
		{name: "bad tail magic", mess: func(b []byte, l layout) []byte {
			b[len(b)-1]++
			return b
		}},
		{name: "version 2 in the header", mess: func(b []byte, l layout) []byte {
			b[8] = 2
			fixHeaderCRC(b)
			return b
		}},
		{name: "version 2 in the footer", mess: func(b []byte, l layout) []byte {
			b[len(b)-16] = 2
			fixFooterCRC(b)
			return b
		}},
		{name: "version 2 in both", mess: func(b []byte, l layout) []byte {
			b[8] = 2
			fixHeaderCRC(b)
			b[len(b)-16] = 2
			fixFooterCRC(b)
			return b
		}},
		{name: "hash algorithm 2", mess: func(b []byte, l layout) []byte {
			b[12] = 2
			fixHeaderCRC(b)
			return b
		}},
		{name: "hash seed 1", mess: func(b []byte, l layout) []byte {
			b[16] = 1
			fixHeaderCRC(b)
			return b
		}},
		{name: "shard 1 of 1", mess: func(b []byte, l layout) []byte {
			b[24] = 1
			fixHeaderCRC(b)
			return b
		}},
		{name: "5 block records", mess: func(b []byte, l layout) []byte {
			b[32] = 5 // the footer's block count no longer matches
			fixHeaderCRC(b)
			return b
		}},
		{name: "0 block records", mess: func(b []byte, l layout) []byte {
			b[32] = 0
			fixHeaderCRC(b)
			return b
		}},
		{name: "kind with a space", mess: func(b []byte, l layout) []byte {
			b[37] = ' '
			fixHeaderCRC(b)
			return b
		}},
		{name: "kind padding not zero", mess: func(b []byte, l layout) []byte {
			b[51] = 'x'
			fixHeaderCRC(b)
			return b
		}},
		{name: "padding not zero", mess: func(b []byte, l layout) []byte {
			b[l.ftr.tableOff-1] = 1
			return b
		}},
		{name: "key routes to another shard", mess: func(b []byte, l layout) []byte {
			b[28] = 2 // shards: 1 → 2; about half the keys now belong to shard 1
			fixHeaderCRC(b)
			return b
		}},
		{name: "keys out of order", mess: func(b []byte, l layout) []byte {
			// Swap the keys of records 0 and 1 of the raw block ("key00"
			// and "key01", both 5 bytes, right after the 2-byte key
			// lengths), then fix the block CRC.
			blk := l.block(b, rb)
			off0 := int(binary.LittleEndian.Uint32(blk[0:])) + keyLenLen
			off1 := int(binary.LittleEndian.Uint32(blk[4:])) + keyLenLen
			k0 := slices.Clone(blk[off0 : off0+5])
			copy(blk[off0:], blk[off1:off1+5])
			copy(blk[off1:], k0)
			fixBlockCRC(b, l, rb)
			return b
		}},
		{name: "offset table past the block", getFails: []string{rkey}, mess: func(b []byte, l layout) []byte {
			binary.LittleEndian.PutUint32(l.block(b, rb)[0:], 0xffff)
			fixBlockCRC(b, l, rb)
			return b
		}},
		{name: "zero key length", getFails: []string{rkey}, mess: func(b []byte, l layout) []byte {
			blk := l.block(b, rb)
			binary.LittleEndian.PutUint16(blk[binary.LittleEndian.Uint32(blk):], 0)
			fixBlockCRC(b, l, rb)
			return b
		}},
		{name: "block CRC", getFails: []string{rkey, zkey}, mess: func(b []byte, l layout) []byte {
			b[l.entryAt(rb)+16]++
			b[l.entryAt(zb)+16]++
			return b
		}},
		{name: "zstd frame decodes to more than declared", getFails: []string{zkey}, mess: func(b []byte, l layout) []byte {
			setRaw(b, l, zb, l.entries[zb].raw-1)
			return b
		}},
		{name: "zstd frame decodes to less than declared", getFails: []string{zkey}, mess: func(b []byte, l layout) []byte {
			setRaw(b, l, zb, l.entries[zb].raw+1)
			return b
		}},
		{name: "zstd frame is garbage", getFails: []string{zkey}, mess: func(b []byte, l layout) []byte {
			for i := range l.block(b, zb) {
				l.block(b, zb)[i] = byte(i * 7)
			}
			fixBlockCRC(b, l, zb)
			return b
		}},
		{name: "zstd frame body is garbage", getFails: []string{zkey}, mess: func(b []byte, l layout) []byte {
			blk := l.block(b, zb)
			for i := 6; i < len(blk); i++ { // keep magic, descriptor, content size
				blk[i] = 0xff
			}
			fixBlockCRC(b, l, zb)
			return b
		}},
		{name: "raw size over the default MaxBlock", mess: func(b []byte, l layout) []byte {
			setRaw(b, l, zb, DefaultMaxBlock+1)
			return b
		}},
		{name: "raw size over Options.MaxBlock", opts: &Options{MaxBlock: 64}, mess: func(b []byte, l layout) []byte {
			return b // every block of the base is over 64 bytes
		}},
		{name: "raw block with stored != raw", mess: func(b []byte, l layout) []byte {
			setRaw(b, l, rb, l.entries[rb].raw+1)
			return b
		}},
		{name: "unknown codec", mess: func(b []byte, l layout) []byte {
			b[l.entryAt(rb)+20] = 2
			return b
		}},
		{name: "hash table ordinals swapped", mess: func(b []byte, l layout) []byte {
			// Swap the ordinals of the first two used slots: each slot's
			// hash no longer matches its record.
			var used []int
			for i := range int(l.ftr.slots) {
				if binary.LittleEndian.Uint64(b[int(l.ftr.tableOff)+i*slotLen+8:]) != 0 {
					used = append(used, int(l.ftr.tableOff)+i*slotLen+8)
				}
			}
			a, c := binary.LittleEndian.Uint64(b[used[0]:]), binary.LittleEndian.Uint64(b[used[1]:])
			binary.LittleEndian.PutUint64(b[used[0]:], c)
			binary.LittleEndian.PutUint64(b[used[1]:], a)
			return b
		}},
		{name: "hash table full", mess: func(b []byte, l layout) []byte {
			// Every empty slot now claims record 1: no probe ever ends. (Get of an absent key
			// is turned away by the Bloom filter first; TestFullTableProbeEnds probes anyway.)
			h := Hash([]byte("key00"))
			for i := range int(l.ftr.slots) {
				slot := b[int(l.ftr.tableOff)+i*slotLen:]
				if binary.LittleEndian.Uint64(slot[8:]) == 0 {
					binary.LittleEndian.PutUint64(slot, h)
					binary.LittleEndian.PutUint64(slot[8:], 1)
				}
			}
			return b
		}},
		{name: "hash table ordinal past the keys", getFails: []string{"key00"}, mess: func(b []byte, l layout) []byte {
			h := Hash([]byte("key00"))
			for i := range int(l.ftr.slots) {
				slot := b[int(l.ftr.tableOff)+i*slotLen:]
				if binary.LittleEndian.Uint64(slot) == h {
					binary.LittleEndian.PutUint64(slot[8:], 1000)
				}
			}
			return b
		}},
		{name: "record unreachable", mess: func(b []byte, l layout) []byte {
			// Move a used slot one place on, past an empty slot, to the
			// first empty slot that follows its home slot's run.
			for i := range int(l.ftr.slots) - 2 {
				s0 := b[int(l.ftr.tableOff)+i*slotLen:]
				s1, s2 := s0[slotLen:], s0[2*slotLen:]
				if binary.LittleEndian.Uint64(s0[8:]) != 0 && slotOf(binary.LittleEndian.Uint64(s0), l.ftr.slots) == uint64(i) &&
					binary.LittleEndian.Uint64(s1[8:]) == 0 && binary.LittleEndian.Uint64(s2[8:]) == 0 {
					copy(s2[:slotLen], s0[:slotLen])
					clear(s0[:slotLen])
					return b
				}
			}
			panic("no slot to move")
		}},
		{name: "footer key count", mess: func(b []byte, l layout) []byte {
			b[l.footerAt()+32]--
			fixFooterCRC(b)
			return b
		}},
		{name: "footer slot count", mess: func(b []byte, l layout) []byte {
			b[l.footerAt()+8]++
			fixFooterCRC(b)
			return b
		}},
		{name: "footer offsets all ones", mess: func(b []byte, l layout) []byte {
			for i := range 56 {
				b[l.footerAt()+i] = 0xff
			}
			fixFooterCRC(b)
			return b
		}},
	}
	// Truncated at several points: every section boundary and inside each.
	for _, n := range []int{0, 1, 8, headerLen - 1, headerLen, headerLen + 10, int(l.ftr.tableOff),
		int(l.ftr.tableOff) + 20, int(l.ftr.indexOff), int(l.ftr.indexOff) + 5, l.footerAt(), len(base) - 1} {
		cs = append(cs, corruption{name: fmt.Sprintf("truncated to %d bytes", n), mess: func(b []byte, l layout) []byte {
			return b[:n]
		}})
	}
	cs = append(cs, corruption{name: "extra byte at the end", mess: func(b []byte, l layout) []byte {
		return append(b, 0)
	}})
	// A flipped byte anywhere in the header, the footer, the block index
	// and the hash table, and in every block.
	type flip struct {
		section  string
		from, to int
		block    int // the block flipped, or -1
	}
	flips := []flip{
		{"header", 0, headerLen, -1},
		{"hash table", int(l.ftr.tableOff), int(l.ftr.indexOff), -1},
		{"block index", int(l.ftr.indexOff), l.footerAt(), -1},
		{"footer", l.footerAt(), len(base), -1},
	}
	for i, e := range l.entries {
		flips = append(flips, flip{fmt.Sprintf("block %d", i), int(e.off), int(e.off) + int(e.stored), i})
	}
	for _, f := range flips {
		for i := f.from; i < f.to; i++ {
			c := corruption{name: fmt.Sprintf("%s: byte %d flipped", f.section, i), mess: func(b []byte, l layout) []byte {
				b[i] ^= 0x10
				return b
			}}
			if f.block >= 0 { // the CRC check on first read catches it
				c.getFails = []string{fmt.Sprintf("key%02d", f.block*4)}
			}
			cs = append(cs, c)
		}
	}
	return cs
}

func TestCorruption(t *testing.T) {
	base, recs := corruptBase(t)
	for _, c := range corruptions(t, base) {
		b := c.mess(slices.Clone(base), parseLayout(t, base))
		if err := corruptErr(b, c.opts, recs, c.getFails); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// corruptErr opens b and returns an error unless Open or Check fails with
// ErrCorrupt, and each Get of getFails fails with ErrCorrupt. Every Get
// and Scan it makes must return nothing but ErrCorrupt errors.
func corruptErr(b []byte, opts *Options, recs []record, getFails []string) error {
	s, err := OpenBytes(b, opts)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("Open: %v; want ErrCorrupt", err)
		}
		return nil
	}
	defer s.Close()
	for _, k := range getFails {
		if _, _, err := s.Get([]byte(k)); !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("Get(%q): %v; want ErrCorrupt", k, err)
		}
	}
	for _, rec := range recs {
		if _, _, err := s.Get(rec.key); err != nil && !errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("Get(%q): %v; want nil or ErrCorrupt", rec.key, err)
		}
	}
	if err := s.Scan(func(k, v []byte) error { return nil }); err != nil && !errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("Scan: %v; want nil or ErrCorrupt", err)
	}
	if err := s.Check(); !errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("Open succeeded and Check returned %v; want ErrCorrupt", err)
	}
	return nil
}

// TestFullTableProbeEnds: with the Bloom filter out of the way, a lookup in a hash table
// with no empty slot stops after one pass with ErrCorrupt instead of probing for ever.
func TestFullTableProbeEnds(t *testing.T) {
	base, _ := corruptBase(t)
	b := slices.Clone(base)
	l := parseLayout(t, base)
	h := Hash([]byte("key00"))
	for i := range int(l.ftr.slots) {
		slot := b[int(l.ftr.tableOff)+i*slotLen:]
		if binary.LittleEndian.Uint64(slot[8:]) == 0 {
			binary.LittleEndian.PutUint64(slot, h)
			binary.LittleEndian.PutUint64(slot[8:], 1)
		}
	}
	s, err := OpenBytes(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.bloom = nil
	if _, _, err := s.Get([]byte("absent")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Get(absent) in a full table: %v; want ErrCorrupt", err)
	}
}

// TestCorruptionUndetectable flips every byte of every block and fixes
// the block CRC: the result may decode (the CRC was forged), but nothing
// may panic and every error must wrap ErrCorrupt.
func TestCorruptionUndetectable(t *testing.T) {
	base, recs := corruptBase(t)
	l := parseLayout(t, base)
	for bi, e := range l.entries {
		for i := int(e.off); i < int(e.off+uint64(e.stored)); i++ {
			b := slices.Clone(base)
			b[i] ^= 0x10
			fixBlockCRC(b, l, bi)
			s, err := OpenBytes(b, nil)
			if err != nil {
				t.Fatalf("block %d byte %d: Open: %v", bi, i, err)
			}
			for _, rec := range recs {
				if _, _, err := s.Get(rec.key); err != nil && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("block %d byte %d: Get(%q): %v", bi, i, rec.key, err)
				}
			}
			if err := s.Check(); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("block %d byte %d: Check: %v", bi, i, err)
			}
			s.Close()
		}
	}
}

// testdataCorruptions make the corrupted shards kept in testdata/, from
// the golden tinyZstd (so they do not depend on the zstd encoder).
var testdataCorruptions = []struct {
	file string
	mess func(b []byte, l layout) []byte
}{
	{"bad-head-magic.shard", func(b []byte, l layout) []byte { b[0] = 'X'; return b }},
	{"bad-tail-magic.shard", func(b []byte, l layout) []byte { b[len(b)-2] = 'X'; return b }},
	{"bad-version.shard", func(b []byte, l layout) []byte {
		b[8] = 2
		fixHeaderCRC(b)
		b[len(b)-16] = 2
		fixFooterCRC(b)
		return b
	}},
	{"truncated.shard", func(b []byte, l layout) []byte { return b[:l.ftr.tableOff+20] }},
	{"bad-footer-crc.shard", func(b []byte, l layout) []byte { b[len(b)-12]++; return b }},
	{"block-crc.shard", func(b []byte, l layout) []byte { l.block(b, 0)[10]++; return b }},
	{"frame-size.shard", func(b []byte, l layout) []byte { setRaw(b, l, 0, l.entries[0].raw+1); return b }},
	{"wrong-shard.shard", func(b []byte, l layout) []byte {
		b[28] = 3 // shard 1 of 2 → 1 of 3: "a" routes to shard 2
		fixHeaderCRC(b)
		return b
	}},
	{"unreachable.shard", func(b []byte, l layout) []byte {
		// Slot 1 ("i", home 3) moves to slot 2: the empty slot it leaves
		// stops the probe.
		t := b[l.ftr.tableOff:]
		copy(t[2*slotLen:3*slotLen], t[slotLen:2*slotLen])
		clear(t[slotLen : 2*slotLen])
		return b
	}},
	{"max-block.shard", func(b []byte, l layout) []byte { setRaw(b, l, 0, DefaultMaxBlock+1); return b }},
}

// TestTestdata checks that every shard in testdata/ is corrupt, and that
// the ones made here are up to date (-update rewrites them).
func TestTestdata(t *testing.T) {
	l := parseLayout(t, tinyZstd)
	for _, c := range testdataCorruptions {
		want := c.mess(slices.Clone(tinyZstd), l)
		path := filepath.Join("testdata", c.file)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date (run go test -run TestTestdata -update): %s", path, firstDiff(got, want))
		}
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.shard"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < len(testdataCorruptions) {
		t.Fatalf("found %d shards in testdata; want at least %d", len(files), len(testdataCorruptions))
	}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := corruptErr(b, nil, nil, nil); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		if _, err := Open(path, nil); err == nil {
			continue // damage Open cannot see: Check saw it above
		} else if !errors.Is(err, ErrCorrupt) {
			t.Errorf("Open(%s): %v; want ErrCorrupt", path, err)
		}
	}
}
