package index

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// join concatenates the parts of a hand-written shard.
func join(parts ...string) []byte { return []byte(strings.Join(parts, "")) }

// zeros returns n zero bytes.
func zeros(n int) string { return strings.Repeat("\x00", n) }

// tinyRaw is the shard of the example in format.go: kind "hwid", shard 0
// of 1, "a" → "1" and "b" → "22" in one raw block.
var tinyRaw = join(
	// header
	"DWSHARD\n",               // head magic
	"\x01\x00\x00\x00",        // version 1
	"\x01\x00\x00\x00",        // hash algorithm 1 (XXH64)
	zeros(8),                  // hash seed 0
	"\x00\x00\x00\x00",        // shard 0
	"\x01\x00\x00\x00",        // shards 1
	"\x10\x00\x00\x00",        // block records 16
	"\x04", "hwid", zeros(11), // kind
	"\x48\xcf\x28\x5b", // header CRC
	// block 0 at 0x38, raw
	"\x0c\x00\x00\x00\x10\x00\x00\x00\x15\x00\x00\x00", // offset table: 12, 16, 21
	"\x01\x00", "a", "1", // record 0
	"\x01\x00", "b", "22", // record 1
	// padding to 0x50
	zeros(3),
	// hash table at 0x50: 3 slots; "a" home 2, "b" home 1
	zeros(16),                                                              // slot 0: empty
	"\x9b\x9f\xf3\x1a\xa1\x2a\x45\x78", "\x02\x00\x00\x00\x00\x00\x00\x00", // slot 1: XXH64("b"), ordinal 2
	"\x5b\x6e\x8c\xa9\xf1\xc4\x4e\xd2", "\x01\x00\x00\x00\x00\x00\x00\x00", // slot 2: XXH64("a"), ordinal 1
	// block index at 0x80
	"\x38\x00\x00\x00\x00\x00\x00\x00", // block 0: offset 0x38
	"\x15\x00\x00\x00",                 // stored 21
	"\x15\x00\x00\x00",                 // raw 21
	"\x90\xba\x28\x18",                 // CRC
	"\x00", zeros(3),                   // codec raw, reserved
	// footer at 0x98
	"\x50\x00\x00\x00\x00\x00\x00\x00", // hash table offset 0x50
	"\x03\x00\x00\x00\x00\x00\x00\x00", // 3 slots
	"\x80\x00\x00\x00\x00\x00\x00\x00", // block index offset 0x80
	"\x01\x00\x00\x00\x00\x00\x00\x00", // 1 block
	"\x02\x00\x00\x00\x00\x00\x00\x00", // 2 keys
	"\x15\x00\x00\x00\x00\x00\x00\x00", // raw block bytes 21
	"\x15\x00\x00\x00\x00\x00\x00\x00", // stored block bytes 21
	"\x01\x00\x00\x00",                 // version 1
	"\x70\x42\x36\xe5",                 // footer CRC
	"DWSHEND\n",                        // tail magic
)

// tinyZstd is shard 1 of 2 of kind "label", two records per block:
// "a" → 24 × "a" and "f" → 24 × "f" in a zstd block, "i" → "9" in a raw
// one. All three keys have home slot 3 of 4, so "f" and "i" wrap around.
// The zstd frame is what github.com/klauspost/compress v1.20.3 writes at
// SpeedDefault; another version may write other bytes.
var tinyZstd = join(
	// header
	"DWSHARD\n",                // head magic
	"\x01\x00\x00\x00",         // version 1
	"\x01\x00\x00\x00",         // hash algorithm 1 (XXH64)
	zeros(8),                   // hash seed 0
	"\x01\x00\x00\x00",         // shard 1
	"\x02\x00\x00\x00",         // shards 2
	"\x02\x00\x00\x00",         // block records 2
	"\x05", "label", zeros(10), // kind
	"\x76\x02\x55\x31", // header CRC
	// block 0 at 0x38: one zstd frame of 35 bytes
	"\x28\xb5\x2f\xfd", // zstd magic
	"\x20\x42",         // single segment, content size 66
	"\xd5\x00\x00",     // last block, compressed, 26 bytes:
	"\x22\x01\x04\x0a\xe0\x41\x00\x63\x72\x78\x12\x76\xbe\x07\x53\x52",
	"\x8f\xc3\x17\x02\x14\x02\x15\x0c\xd4\x01",
	// block 1 at 0x5b, raw
	"\x08\x00\x00\x00\x0c\x00\x00\x00", // offset table: 8, 12
	"\x01\x00", "i", "9",               // record 0 (ordinal 3)
	// padding to 0x70
	zeros(9),
	// hash table at 0x70: 4 slots
	"\x4d\xee\x2a\xf0\x5c\xba\x0d\xd0", "\x02\x00\x00\x00\x00\x00\x00\x00", // slot 0: XXH64("f"), ordinal 2
	"\x45\xb4\x3f\xaf\x95\x37\x37\xc3", "\x03\x00\x00\x00\x00\x00\x00\x00", // slot 1: XXH64("i"), ordinal 3
	zeros(16),                                                              // slot 2: empty
	"\x5b\x6e\x8c\xa9\xf1\xc4\x4e\xd2", "\x01\x00\x00\x00\x00\x00\x00\x00", // slot 3: XXH64("a"), ordinal 1
	// block index at 0xb0
	"\x38\x00\x00\x00\x00\x00\x00\x00", // block 0: offset 0x38
	"\x23\x00\x00\x00",                 // stored 35
	"\x42\x00\x00\x00",                 // raw 66
	"\x0d\x63\x0f\xab",                 // CRC
	"\x01", zeros(3),                   // codec zstd, reserved
	"\x5b\x00\x00\x00\x00\x00\x00\x00", // block 1: offset 0x5b
	"\x0c\x00\x00\x00",                 // stored 12
	"\x0c\x00\x00\x00",                 // raw 12
	"\x97\xa2\x1a\x5d",                 // CRC
	"\x00", zeros(3),                   // codec raw, reserved
	// footer at 0xe0
	"\x70\x00\x00\x00\x00\x00\x00\x00", // hash table offset 0x70
	"\x04\x00\x00\x00\x00\x00\x00\x00", // 4 slots
	"\xb0\x00\x00\x00\x00\x00\x00\x00", // block index offset 0xb0
	"\x02\x00\x00\x00\x00\x00\x00\x00", // 2 blocks
	"\x03\x00\x00\x00\x00\x00\x00\x00", // 3 keys
	"\x4e\x00\x00\x00\x00\x00\x00\x00", // raw block bytes 78
	"\x2f\x00\x00\x00\x00\x00\x00\x00", // stored block bytes 47
	"\x01\x00\x00\x00",                 // version 1
	"\xb5\x14\xbd\x79",                 // footer CRC
	"DWSHEND\n",                        // tail magic
)

// tinyZstdBlock0 is block 0 of tinyZstd decoded.
var tinyZstdBlock0 = join(
	"\x0c\x00\x00\x00\x27\x00\x00\x00\x42\x00\x00\x00", // offset table: 12, 39, 66
	"\x01\x00", "a", strings.Repeat("a", 24), // record 0
	"\x01\x00", "f", strings.Repeat("f", 24), // record 1
)

type goldenShard struct {
	name    string
	opts    WriterOptions
	records [][2]string
	want    []byte
}

var goldenShards = []goldenShard{
	{"tinyRaw", WriterOptions{Kind: "hwid"}, [][2]string{{"a", "1"}, {"b", "22"}}, tinyRaw},
	{"tinyZstd", WriterOptions{Kind: "label", Shard: 1, Shards: 2, BlockRecords: 2},
		[][2]string{{"a", strings.Repeat("a", 24)}, {"f", strings.Repeat("f", 24)}, {"i", "9"}}, tinyZstd},
}

// build writes a golden shard.
func (g goldenShard) build(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, &g.opts)
	for _, r := range g.records {
		if err := w.Add([]byte(r[0]), []byte(r[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	for _, g := range goldenShards {
		t.Run(g.name, func(t *testing.T) {
			got := g.build(t)
			if !bytes.Equal(got, g.want) {
				t.Fatalf("writer output differs from the golden shard: %s", firstDiff(got, g.want))
			}
			s, err := OpenBytes(g.want, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Check(); err != nil {
				t.Fatal(err)
			}
			for _, r := range g.records {
				v, ok, err := s.Get([]byte(r[0]))
				if err != nil || !ok || string(v) != r[1] {
					t.Errorf("Get(%q) = %q, %v, %v; want %q, true, nil", r[0], v, ok, err, r[1])
				}
			}
		})
	}
}

func TestGoldenZstdBlock(t *testing.T) {
	s, err := OpenBytes(tinyZstd, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	blk, err := s.block(0, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(blk, tinyZstdBlock0) {
		t.Fatalf("block 0 decodes to\n%q\nwant\n%q", blk, tinyZstdBlock0)
	}
	if e := s.entry(0); e.codec != codecZstd {
		t.Fatalf("block 0 codec %d; want zstd", e.codec)
	}
	if e := s.entry(1); e.codec != codecRaw {
		t.Fatalf("block 1 codec %d; want raw", e.codec)
	}
}

// firstDiff describes the first difference between got and want.
func firstDiff(got, want []byte) string {
	for i := 0; i < min(len(got), len(want)); i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("at offset %#x: got % x, want % x", i, got[i:min(i+16, len(got))], want[i:min(i+16, len(want))])
		}
	}
	return fmt.Sprintf("got %d bytes, want %d", len(got), len(want))
}

func TestEmptyShard(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, &WriterOptions{Kind: "x"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// header, no block, no padding (56 is not a multiple of 16: 8 bytes),
	// one empty slot, no block index, footer.
	if want := headerLen + 8 + slotLen + footerLen; buf.Len() != want {
		t.Fatalf("empty shard is %d bytes; want %d", buf.Len(), want)
	}
	s, err := OpenBytes(buf.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.Get([]byte("a")); v != nil || ok || err != nil {
		t.Fatalf(`Get("a") = %q, %v, %v; want nil, false, nil`, v, ok, err)
	}
	if got := s.Info(); got != (Info{Kind: "x", Shards: 1, BlockRecords: 16, FileBytes: int64(buf.Len())}) {
		t.Fatalf("Info() = %+v", got)
	}
}

func TestRoute(t *testing.T) {
	// Hash is the reference XXH64 with seed 0.
	if got, want := Hash(nil), uint64(0xef46db3751d8e999); got != want {
		t.Fatalf("Hash(\"\") = %#x; want %#x", got, want)
	}
	if got, want := Hash([]byte("a")), uint64(0xd24ec4f1a98c6e5b); got != want {
		t.Fatalf("Hash(\"a\") = %#x; want %#x", got, want)
	}
	for _, tt := range []struct {
		key  string
		n    int
		want int
	}{
		{"a", 1, 0},
		{"a", 2, 1}, // 0x...5b is odd
		{"d", 2, 0}, // 0x...e4 is even
		{"a", 7, int(0xd24ec4f1a98c6e5b % 7)},
	} {
		if got := Route([]byte(tt.key), tt.n); got != tt.want {
			t.Errorf("Route(%q, %d) = %d; want %d", tt.key, tt.n, got, tt.want)
		}
		if got := RouteHash(Hash([]byte(tt.key)), tt.n); got != tt.want {
			t.Errorf("RouteHash(Hash(%q), %d) = %d; want %d", tt.key, tt.n, got, tt.want)
		}
	}
}
