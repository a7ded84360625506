package index

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

type record struct{ key, value []byte }

// genRecords returns n records with distinct random keys of 1..45 bytes,
// sorted, and values of 0..700 bytes: about half compressible text, half
// random bytes, so that a shard gets both raw and zstd blocks.
func genRecords(seed uint64, n int) []record {
	r := rand.New(rand.NewPCG(seed, 1))
	seen := make(map[string]bool, n)
	recs := make([]record, 0, n)
	for len(recs) < n {
		k := make([]byte, 1+r.IntN(45))
		for i := range k {
			k[i] = byte('!' + r.IntN(90))
		}
		if seen[string(k)] {
			continue
		}
		seen[string(k)] = true
		recs = append(recs, record{key: k, value: genValue(r)})
	}
	slices.SortFunc(recs, func(a, b record) int { return bytes.Compare(a.key, b.key) })
	return recs
}

func genValue(r *rand.Rand) []byte {
	n := r.IntN(700)
	if r.IntN(8) == 0 {
		n = r.IntN(4) // some empty and tiny values
	}
	v := make([]byte, 0, n)
	if r.IntN(2) == 0 {
		for len(v) < n {
			v = fmt.Appendf(v, `{"label":%d,"rank":%d},`, r.IntN(50), r.IntN(5))
		}
		return v[:n]
	}
	for range n {
		v = append(v, byte(r.Uint32()))
	}
	return v
}

// absentKeys returns n random keys that are not in recs.
func absentKeys(seed uint64, n int, recs []record) [][]byte {
	have := make(map[string]bool, len(recs))
	for _, rec := range recs {
		have[string(rec.key)] = true
	}
	r := rand.New(rand.NewPCG(seed, 2))
	var keys [][]byte
	for len(keys) < n {
		k := make([]byte, 1+r.IntN(50))
		for i := range k {
			k[i] = byte(r.Uint32())
		}
		if !have[string(k)] {
			keys = append(keys, k)
		}
	}
	return keys
}

// writeShard writes recs to a shard in memory.
func writeShard(t testing.TB, opts WriterOptions, recs []record) ([]byte, WriterStats) {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, &opts)
	for _, rec := range recs {
		if err := w.Add(rec.key, rec.value); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.Stats()
}

// writeFile writes data to a file in a temporary directory.
func writeFile(t testing.TB, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.shard")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// routed returns the records of recs that route to shard of shards.
func routed(recs []record, shard, shards int) []record {
	var out []record
	for _, rec := range recs {
		if Route(rec.key, shards) == shard {
			out = append(out, rec)
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	all := genRecords(1, 3000)
	absent := absentKeys(1, 500, all)
	codecs := map[uint8]int{}
	for _, shards := range []int{1, 3} {
		for i, br := range []int{1, 7, 16, 100} {
			for shard := range shards {
				t.Run(fmt.Sprintf("shards=%d/blockRecords=%d/shard=%d", shards, br, shard), func(t *testing.T) {
					recs := routed(all, shard, shards)
					opts := WriterOptions{Kind: "hwid", Shard: shard, Shards: shards, BlockRecords: br, Level: 1 + i} // every level
					data, stats := writeShard(t, opts, recs)
					s, err := Open(writeFile(t, data), &Options{Cache: NewCacheBudget(1 << 20)})
					if err != nil {
						t.Fatal(err)
					}
					defer s.Close()
					for b := range s.state {
						codecs[s.entry(b).codec]++
					}
					checkShard(t, s, opts, stats, recs, absent)
				})
			}
		}
	}
	if codecs[codecRaw] == 0 || codecs[codecZstd] == 0 {
		t.Fatalf("blocks by codec: %v; want both raw and zstd blocks", codecs)
	}
}

// checkShard checks everything a reader can see of a shard written from
// recs with opts.
func checkShard(t *testing.T, s *Shard, opts WriterOptions, stats WriterStats, recs []record, absent [][]byte) {
	t.Helper()
	br := opts.BlockRecords
	if br == 0 {
		br = DefaultBlockRecords
	}
	wantInfo := Info{
		Kind: opts.Kind, Shard: opts.Shard, Shards: max(opts.Shards, 1),
		Keys: len(recs), Blocks: (len(recs) + br - 1) / br, BlockRecords: br,
		FileBytes: stats.FileBytes, RawBlockBytes: stats.RawBlockBytes, StoredBlockBytes: stats.StoredBlockBytes,
	}
	if got := s.Info(); got != wantInfo {
		t.Fatalf("Info() = %+v\nwant %+v", got, wantInfo)
	}
	if stats.Keys != int64(len(recs)) || stats.Blocks != int64(wantInfo.Blocks) {
		t.Fatalf("Stats() = %+v; want %d keys in %d blocks", stats, len(recs), wantInfo.Blocks)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	for pass := range 2 { // the second pass reads cached blocks
		for _, rec := range recs {
			v, ok, err := s.Get(rec.key)
			if err != nil || !ok || !bytes.Equal(v, rec.value) {
				t.Fatalf("pass %d: Get(%q) = %q, %v, %v; want %q, true, nil", pass, rec.key, v, ok, err, rec.value)
			}
		}
	}
	for _, k := range absent {
		if v, ok, err := s.Get(k); v != nil || ok || err != nil {
			t.Fatalf("Get(%q) = %q, %v, %v; want nil, false, nil", k, v, ok, err)
		}
	}
	i := 0
	err := s.Scan(func(key, value []byte) error {
		if i >= len(recs) || !bytes.Equal(key, recs[i].key) || !bytes.Equal(value, recs[i].value) {
			return fmt.Errorf("Scan record %d: %q → %q", i, key, value)
		}
		i++
		return nil
	})
	if err != nil || i != len(recs) {
		t.Fatalf("Scan: %v after %d of %d records", err, i, len(recs))
	}
	errStop := errors.New("stop")
	if len(recs) > 0 {
		if err := s.Scan(func(key, value []byte) error { return errStop }); err != errStop {
			t.Fatalf("Scan returned %v; want the callback's error", err)
		}
	}
}

func TestDeterministic(t *testing.T) {
	recs := genRecords(2, 1000)
	opts := WriterOptions{Kind: "label", BlockRecords: 8}
	a, _ := writeShard(t, opts, recs)
	b, _ := writeShard(t, opts, recs)
	if !bytes.Equal(a, b) {
		t.Fatalf("two writes of the same records differ: %s", firstDiff(a, b))
	}
}

func TestWriterErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts *WriterOptions
	}{
		{"nil options", nil},
		{"empty kind", &WriterOptions{}},
		{"long kind", &WriterOptions{Kind: "0123456789abcdef"}},
		{"kind with space", &WriterOptions{Kind: "hw id"}},
		{"negative shard", &WriterOptions{Kind: "k", Shard: -1}},
		{"shard past shards", &WriterOptions{Kind: "k", Shard: 2, Shards: 2}},
		{"negative shards", &WriterOptions{Kind: "k", Shards: -1}},
		{"block records", &WriterOptions{Kind: "k", BlockRecords: maxBlockRecords + 1}},
		{"level", &WriterOptions{Kind: "k", Level: 5}},
		{"max block", &WriterOptions{Kind: "k", MaxBlock: -1}},
	} {
		w := NewWriter(io.Discard, tt.opts)
		if err := w.Add([]byte("a"), nil); err == nil {
			t.Errorf("%s: Add succeeded", tt.name)
		}
		if err := w.Close(); err == nil {
			t.Errorf("%s: Close succeeded", tt.name)
		}
	}

	var buf bytes.Buffer
	w := NewWriter(&buf, &WriterOptions{Kind: "k", Shards: 2, Shard: 1, MaxBlock: 100})
	mustAdd := func(key, value string) {
		t.Helper()
		if err := w.Add([]byte(key), []byte(value)); err != nil {
			t.Fatalf("Add(%q): %v", key, err)
		}
	}
	mustFail := func(key, value []byte) {
		t.Helper()
		if err := w.Add(key, value); err == nil {
			t.Fatalf("Add(%q) succeeded", key)
		}
	}
	mustAdd("a", "1")                                    // "a" routes to shard 1 of 2
	mustFail([]byte("a"), nil)                           // duplicate
	mustFail([]byte("A"), nil)                           // out of order
	mustFail([]byte("d"), nil)                           // routes to shard 0
	mustFail(nil, nil)                                   // empty key
	mustFail(bytes.Repeat([]byte("z"), 65536), nil)      // key too long
	mustFail([]byte("f"), bytes.Repeat([]byte("v"), 90)) // block over MaxBlock
	mustAdd("f", "6")                                    // rejected records left no trace
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mustFail([]byte("i"), nil) // after Close
	s, err := OpenBytes(buf.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkShard(t, s, WriterOptions{Kind: "k", Shards: 2, Shard: 1}, w.Stats(),
		[]record{{[]byte("a"), []byte("1")}, {[]byte("f"), []byte("6")}}, nil)
}

// failWriter fails every write after the first n bytes.
type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, errors.New("disk full")
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriterWriteError(t *testing.T) {
	recs := genRecords(3, 100)
	for _, n := range []int{0, 10, 1000, 5000} {
		w := NewWriter(&failWriter{n: n}, &WriterOptions{Kind: "k", BlockRecords: 4})
		var err error
		for _, rec := range recs {
			if err = w.Add(rec.key, rec.value); err != nil {
				break
			}
		}
		if err == nil {
			err = w.Close()
		}
		if err == nil {
			t.Fatalf("failing after %d bytes: no error", n)
		}
		if err2 := w.Close(); err2 == nil {
			t.Fatalf("failing after %d bytes: the error is not sticky", n)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing"), nil); err == nil || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open(missing) = %v; want a not-found error", err)
	}
	for _, n := range []int{0, 1, minFileLen - 1} {
		path := filepath.Join(dir, fmt.Sprint(n))
		if err := os.WriteFile(path, tinyRaw[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path, nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open(%d-byte file) = %v; want ErrCorrupt", n, err)
		}
	}
	if _, err := OpenBytes(tinyRaw, &Options{MaxBlock: -1}); err == nil {
		t.Fatal("OpenBytes with MaxBlock -1 succeeded")
	}
}

func TestClose(t *testing.T) {
	budget := NewCacheBudget(1000)
	s, err := Open(writeFile(t, tinyZstd), &Options{Cache: budget})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Get([]byte("a")); !ok || err != nil {
		t.Fatalf(`Get("a") = %v, %v`, ok, err)
	}
	if got := budget.Available(); got != 1000-66 {
		t.Fatalf("budget after caching block 0: %d; want %d", got, 1000-66)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := budget.Available(); got != 1000 {
		t.Fatalf("budget after Close: %d; want 1000", got)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := s.Get([]byte("a")); err == nil {
		t.Fatal("Get after Close succeeded")
	}
	if err := s.Check(); err == nil {
		t.Fatal("Check after Close succeeded")
	}
	if err := s.Scan(func(k, v []byte) error { return nil }); err == nil {
		t.Fatal("Scan after Close succeeded")
	}
}

// compressibleShard returns a shard whose blocks are all zstd, and its records.
func compressibleShard(t testing.TB, n, br int) ([]byte, []record) {
	t.Helper()
	recs := make([]record, n)
	for i := range recs {
		recs[i] = record{fmt.Appendf(nil, "key%06d", i), fmt.Appendf(nil, `{"label":%d,"rows":[1,2,3,4,5,6,7,8,9,10]}`, i)}
	}
	data, _ := writeShard(t, WriterOptions{Kind: "label", BlockRecords: br}, recs)
	return data, recs
}

// rawShard returns a shard whose blocks are all raw, and its records.
func rawShard(t testing.TB, n, br int) ([]byte, []record) {
	t.Helper()
	r := rand.New(rand.NewPCG(9, 9))
	recs := make([]record, n)
	for i := range recs {
		v := make([]byte, 64)
		for j := range v {
			v[j] = byte(r.Uint32())
		}
		recs[i] = record{fmt.Appendf(nil, "key%06d", i), v}
	}
	data, _ := writeShard(t, WriterOptions{Kind: "label", BlockRecords: br}, recs)
	return data, recs
}

func TestCodecs(t *testing.T) {
	for _, tt := range []struct {
		name  string
		shard func(testing.TB, int, int) ([]byte, []record)
		codec uint8
	}{{"compressible", compressibleShard, codecZstd}, {"random", rawShard, codecRaw}} {
		data, _ := tt.shard(t, 100, 10)
		s, err := OpenBytes(data, nil)
		if err != nil {
			t.Fatal(err)
		}
		for b := range s.state {
			if c := s.entry(b).codec; c != tt.codec {
				t.Fatalf("%s: block %d has codec %d; want %d", tt.name, b, c, tt.codec)
			}
		}
		s.Close()
	}
}

// TestGetAllocs holds the hot path to zero allocations.
func TestGetAllocs(t *testing.T) {
	zdata, zrecs := compressibleShard(t, 1000, 16)
	rdata, rrecs := rawShard(t, 1000, 16)
	zs, err := OpenBytes(zdata, &Options{Cache: NewCacheBudget(1 << 30)})
	if err != nil {
		t.Fatal(err)
	}
	defer zs.Close()
	rs, err := OpenBytes(rdata, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	absent := absentKeys(5, 100, zrecs)
	for _, rec := range zrecs { // warm the cache
		if _, ok, err := zs.Get(rec.key); !ok || err != nil {
			t.Fatalf("Get(%q) = %v, %v", rec.key, ok, err)
		}
	}
	for _, tt := range []struct {
		name string
		s    *Shard
		keys func(i int) []byte
		hit  bool
	}{
		{"miss", zs, func(i int) []byte { return absent[i%len(absent)] }, false},
		{"hit raw block", rs, func(i int) []byte { return rrecs[i%len(rrecs)].key }, true},
		{"hit cached block", zs, func(i int) []byte { return zrecs[i%len(zrecs)].key }, true},
	} {
		i := 0
		var failed error
		n := testing.AllocsPerRun(1000, func() {
			_, ok, err := tt.s.Get(tt.keys(i))
			if ok != tt.hit || err != nil {
				failed = fmt.Errorf("Get(%q) = %v, %v; want %v, nil", tt.keys(i), ok, err, tt.hit)
			}
			i++
		})
		if failed != nil {
			t.Fatalf("%s: %v", tt.name, failed)
		}
		if n != 0 {
			t.Fatalf("%s: Get allocates %v times per call; want 0", tt.name, n)
		}
	}
}

func TestCacheBudget(t *testing.T) {
	data, recs := compressibleShard(t, 64, 16) // 4 blocks
	probe, err := OpenBytes(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw0, raw1 := int64(probe.entry(0).raw), int64(probe.entry(1).raw)
	probe.Close()

	budget := NewCacheBudget(raw0 + raw1/2) // room for block 0 only
	s, err := OpenBytes(data, &Options{Cache: budget})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for _, rec := range recs[:32] { // blocks 0 and 1
			if v, ok, err := s.Get(rec.key); !ok || err != nil || !bytes.Equal(v, rec.value) {
				t.Fatalf("Get(%q) = %q, %v, %v", rec.key, v, ok, err)
			}
		}
	}
	if s.state[0].raw.Load() == nil || s.state[1].raw.Load() != nil {
		t.Fatal("want block 0 cached and block 1 not")
	}
	if got := budget.Available(); got != raw1/2 {
		t.Fatalf("budget left %d; want %d", got, raw1/2)
	}
	// Past the budget, blocks decode for each Get: it allocates.
	if n := testing.AllocsPerRun(10, func() { s.Get(recs[20].key) }); n == 0 {
		t.Fatal("Get in an uncached block past the budget does not allocate; is it cached?")
	}
	s.Close()
	if got := budget.Available(); got != raw0+raw1/2 {
		t.Fatalf("budget after Close %d; want %d", got, raw0+raw1/2)
	}

	// No budget: nothing is cached.
	s, err = OpenBytes(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Get(recs[0].key)
	if s.state[0].raw.Load() != nil {
		t.Fatal("block cached without a budget")
	}
}

// TestConcurrentGet runs many readers on one shard with a small shared
// budget and a shared decoder: run it with -race.
func TestConcurrentGet(t *testing.T) {
	data, recs := compressibleShard(t, 2000, 16)
	rdata, rrecs := rawShard(t, 500, 8)
	dec, err := NewDecoder(0)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	budget := NewCacheBudget(8 << 10) // a handful of blocks out of 125
	s, err := Open(writeFile(t, data), &Options{Cache: budget, Decoder: dec})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Open(writeFile(t, rdata), &Options{Cache: budget, Decoder: dec})
	if err != nil {
		t.Fatal(err)
	}
	absent := absentKeys(6, 100, recs)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for range 3000 {
				sh, set := s, recs
				if r.IntN(4) == 0 {
					sh, set = rs, rrecs
				}
				if r.IntN(5) == 0 {
					k := absent[r.IntN(len(absent))]
					if _, ok, err := sh.Get(k); ok || err != nil {
						errs <- fmt.Errorf("Get(%q) = %v, %v; want a miss", k, ok, err)
						return
					}
					continue
				}
				rec := set[r.IntN(len(set))]
				v, ok, err := sh.GetHash(rec.key, Hash(rec.key))
				if err != nil || !ok || !bytes.Equal(v, rec.value) {
					errs <- fmt.Errorf("Get(%q) = %q, %v, %v; want %q", rec.key, v, ok, err, rec.value)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := budget.Available(); got < 0 || got > 8<<10 {
		t.Fatalf("budget left %d; want 0..%d", got, 8<<10)
	}
	s.Close()
	rs.Close()
	if got := budget.Available(); got != 8<<10 {
		t.Fatalf("budget after Close %d; want %d", got, 8<<10)
	}
}

// TestCacheStats: the budget counts the zstd blocks it decoded into the cache (each once) and
// those it decoded outside it (every time, when the budget is spent), and the bytes used.
func TestCacheStats(t *testing.T) {
	recs := genRecords(2, 2000)
	opts := WriterOptions{Kind: "hwid", BlockRecords: 100, Level: 3}
	data, _ := writeShard(t, opts, recs)
	path := writeFile(t, data)
	for _, c := range []struct {
		name   string
		budget int64
	}{{"room for every block", 1 << 30}, {"no room", 1}} {
		cache := NewCacheBudget(c.budget)
		s, err := Open(path, &Options{Cache: cache})
		if err != nil {
			t.Fatal(err)
		}
		zstdBlocks := 0
		for b := range s.state {
			if s.entry(b).codec == codecZstd {
				zstdBlocks++
			}
		}
		if zstdBlocks == 0 {
			t.Fatal("no zstd block in the shard")
		}
		for range 2 {
			for _, r := range recs {
				if _, ok, err := s.Get(r.key); !ok || err != nil {
					t.Fatalf("%x: %v %v", r.key, ok, err)
				}
			}
		}
		st := cache.Stats()
		switch c.budget {
		case 1:
			if st.DecodedCached != 0 || st.DecodedUncached < uint64(2*zstdBlocks) || st.Used != 0 {
				t.Errorf("%s: %+v; want every lookup of a zstd block decoded outside the cache", c.name, st)
			}
		default:
			if st.DecodedCached != uint64(zstdBlocks) || st.DecodedUncached != 0 || st.Used <= 0 || st.Budget != c.budget {
				t.Errorf("%s: %+v; want each of the %d zstd blocks decoded once, into the cache", c.name, st, zstdBlocks)
			}
		}
		s.Close()
	}
}
