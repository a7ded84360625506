package index

// Benchmarks of the read path, with a Go map as the naive baseline.
//
// Reproduce with:
//
//	go test ./index -run '^$' -bench . -benchtime 2s
//
// Figures from go1.26.8 linux/amd64, AMD EPYC, 2 vCPU shared VM, the
// quietest of several runs (other builds shared the machine; single runs
// varied up to 3x). The shard: 20,000 records with 45-byte keys and
// ~280-byte JSON values, 16 records a block, zstd level 2: 1,250 blocks
// of ~5.3 KiB raw, ~1.1 KiB stored (6.6 MB raw, 1.39 MB stored), hash
// table 427 KB (26,667 slots), block index 30 KB, file 1.85 MB.
//
//	BenchmarkHash45-2              10.4 ns/op   4320 MB/s   0 B/op  0 allocs/op
//	BenchmarkRoute45-2             12.4 ns/op               0 B/op  0 allocs/op
//	BenchmarkGetMiss-2             28.6 ns/op               0 B/op  0 allocs/op
//	BenchmarkGetHitWarm-2           277 ns/op               0 B/op  0 allocs/op
//	BenchmarkGetHitWarmParallel-2   116 ns/op               0 B/op  0 allocs/op
//	BenchmarkGetHitCold-2         14103 ns/op            5401 B/op  2 allocs/op
//	BenchmarkGetHitRaw-2            209 ns/op               0 B/op  0 allocs/op
//	BenchmarkBlockDecode-2         9945 ns/op    527 MB/s  5380 B/op  1 allocs/op
//	BenchmarkMapGet-2              48.7 ns/op               0 B/op  0 allocs/op
//
// A miss costs the hash and a slot read or two. A hit adds the record:
// in random order over 6.6 MB of decoded blocks, the slot, the block
// index entry, the block's offset table and the record are each likely
// a cache miss, which is most of the warm and raw figures (the map
// baseline touches fewer lines). A cold hit is one decode of a ~5 KiB
// zstd frame, ~10 µs: twice the 5 µs request budget in
// docs/architecture.md, so the decoded-block cache (or a smaller
// BlockRecords for large values) matters.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

const benchRecords = 20000

// benchKey returns the 45-byte hardware ID of record i.
func benchKey(i int) []byte {
	k := fmt.Appendf(nil, "PCI\\VEN_%04X&DEV_%04X&SUBSYS_%08X&REV_%03X", 0x8086, i%0x10000, uint32(i)*2654435761, i%0x1000)
	if len(k) != 45 {
		panic(fmt.Sprintf("bench key %q is %d bytes", k, len(k)))
	}
	return k
}

// benchData returns the sorted records of the benchmark shard; with
// random, the values are random bytes of the same sizes.
func benchData(b *testing.B, random bool) []record {
	b.Helper()
	r := rand.New(rand.NewPCG(11, 11))
	recs := make([]record, benchRecords)
	for i := range recs {
		v := fmt.Appendf(nil, `{"hwid":%d,"rows":[`, i)
		for j := range 7 {
			v = fmt.Appendf(v, `{"label":%d,"family":%d,"slot":%d},`, r.IntN(100000), j%3, r.IntN(40))
		}
		v = append(v, "]}"...)
		if random {
			for j := range v {
				v[j] = byte(r.Uint32())
			}
		}
		recs[i] = record{benchKey(i), v}
	}
	slices.SortFunc(recs, func(a, b record) int { return bytes.Compare(a.key, b.key) })
	return recs
}

func benchShard(b *testing.B, random bool, cache *CacheBudget) (*Shard, []record) {
	b.Helper()
	recs := benchData(b, random)
	data, _ := writeShard(b, WriterOptions{Kind: "hwid"}, recs)
	s, err := Open(writeFile(b, data), &Options{Cache: cache})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, recs
}

func BenchmarkHash45(b *testing.B) {
	k := benchKey(1)
	want := Hash(k)
	b.ReportAllocs()
	b.SetBytes(int64(len(k)))
	for b.Loop() {
		if Hash(k) != want {
			b.Fatal("Hash changed")
		}
	}
}

func BenchmarkRoute45(b *testing.B) {
	k := benchKey(1)
	want := Route(k, 16)
	b.ReportAllocs()
	for b.Loop() {
		if Route(k, 16) != want {
			b.Fatal("Route changed")
		}
	}
}

func BenchmarkGetMiss(b *testing.B) {
	s, recs := benchShard(b, false, nil)
	absent := absentKeys(12, 1024, recs)
	for i := range absent { // same shape as the keys present
		absent[i] = benchKey(benchRecords + i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok, err := s.Get(absent[i%len(absent)]); ok || err != nil {
			b.Fatalf("Get(%q) = %v, %v; want a miss", absent[i%len(absent)], ok, err)
		}
		i++
	}
}

// benchGet cycles Get through recs in a scrambled order.
func benchGet(b *testing.B, s *Shard, recs []record) {
	order := rand.New(rand.NewPCG(13, 13)).Perm(len(recs))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec := recs[order[i%len(order)]]
		v, ok, err := s.Get(rec.key)
		if !ok || err != nil || len(v) != len(rec.value) {
			b.Fatalf("Get(%q) = %d bytes, %v, %v; want %d bytes", rec.key, len(v), ok, err, len(rec.value))
		}
		i++
	}
}

func BenchmarkGetHitWarm(b *testing.B) {
	s, recs := benchShard(b, false, NewCacheBudget(1<<30))
	for _, rec := range recs { // fill the cache
		s.Get(rec.key)
	}
	benchGet(b, s, recs)
}

func BenchmarkGetHitWarmParallel(b *testing.B) {
	s, recs := benchShard(b, false, NewCacheBudget(1<<30))
	for _, rec := range recs {
		s.Get(rec.key)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(recs))
		for pb.Next() {
			rec := recs[i%len(recs)]
			if v, ok, err := s.Get(rec.key); !ok || err != nil || len(v) != len(rec.value) {
				b.Errorf("Get(%q) = %d bytes, %v, %v", rec.key, len(v), ok, err)
				return
			}
			i += 7919
		}
	})
}

func BenchmarkGetHitCold(b *testing.B) {
	s, recs := benchShard(b, false, nil) // no cache: every Get decodes its block
	benchGet(b, s, recs)
}

func BenchmarkGetHitRaw(b *testing.B) {
	s, recs := benchShard(b, true, nil) // random values: every block is raw
	benchGet(b, s, recs)
}

func BenchmarkBlockDecode(b *testing.B) {
	s, _ := benchShard(b, false, nil)
	e := s.entry(0)
	if e.codec != codecZstd {
		b.Fatal("block 0 is not zstd")
	}
	b.ReportAllocs()
	b.SetBytes(int64(e.raw))
	for b.Loop() {
		if blk, err := s.decode(0, e, nil); err != nil || len(blk) != int(e.raw) {
			b.Fatalf("decode = %d bytes, %v", len(blk), err)
		}
	}
	b.ReportMetric(float64(e.stored), "stored-B")
}

// BenchmarkMapGet is the naive baseline: the records in a Go map.
func BenchmarkMapGet(b *testing.B) {
	recs := benchData(b, false)
	m := make(map[string][]byte, len(recs))
	for _, rec := range recs {
		m[string(rec.key)] = rec.value
	}
	order := rand.New(rand.NewPCG(13, 13)).Perm(len(recs))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec := recs[order[i%len(order)]]
		if v, ok := m[string(rec.key)]; !ok || len(v) != len(rec.value) {
			b.Fatalf("m[%q] = %d bytes, %v", rec.key, len(v), ok)
		}
		i++
	}
}
