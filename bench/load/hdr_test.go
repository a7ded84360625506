package load

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactPercentile is the nearest-rank percentile of sorted values.
func exactPercentile(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// logUniform draws durations spread evenly over nine decades (1 ns to 1 s), the hard case for
// a log-linear histogram.
func logUniform(r *rand.Rand, n int) []int64 {
	v := make([]int64, n)
	for i := range v {
		v[i] = int64(math.Pow(10, 9*r.Float64()))
	}
	return v
}

func TestHistogramPercentiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name   string
		values []int64
	}{
		{"log-uniform", logUniform(r, 200_000)},
		{"latency-like", func() []int64 { // a body around 300 µs and a tail to 50 ms
			v := make([]int64, 100_000)
			for i := range v {
				v[i] = int64(300e3 * math.Exp(r.NormFloat64()*0.4))
				if r.IntN(100) == 0 {
					v[i] += int64(r.Float64() * 50e6)
				}
			}
			return v
		}()},
		{"small", []int64{0, 1, 2, 3, 255, 256, 257, 1000}},
		{"one", []int64{42_000}},
	} {
		var h Histogram
		for _, v := range c.values {
			h.Record(time.Duration(v))
		}
		sorted := slices.Clone(c.values)
		slices.Sort(sorted)
		if h.Count() != uint64(len(sorted)) || int64(h.Min()) != sorted[0] || int64(h.Max()) != sorted[len(sorted)-1] {
			t.Errorf("%s: count %d min %d max %d; want %d %d %d", c.name, h.Count(), h.Min(), h.Max(), len(sorted), sorted[0], sorted[len(sorted)-1])
		}
		for _, q := range []float64{0, 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100} {
			got, want := float64(h.Percentile(q)), float64(exactPercentile(sorted, q))
			if rel := math.Abs(got-want) / math.Max(want, 1); rel > 0.01 {
				t.Errorf("%s: Percentile(%v) = %v; want %v (±1%%), off by %.2f%%", c.name, q, got, want, 100*rel)
			}
		}
		var sum float64
		for _, v := range c.values {
			sum += float64(v)
		}
		if want := sum / float64(len(c.values)); math.Abs(float64(h.Mean())-want) > 1 {
			t.Errorf("%s: Mean = %v; want %v", c.name, h.Mean(), want)
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Every bucket's bounds map back to it, buckets tile the range without gaps, and each
	// above the exact ones (one value each) is at most 1/128 of its lower bound wide.
	next := int64(0)
	for i := range histBuckets {
		lo, hi := histBounds(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d; want %d", i, lo, next)
		}
		if histIndex(lo) != i || histIndex(hi-1) != i {
			t.Fatalf("bucket %d [%d, %d): index of its ends %d, %d", i, lo, hi, histIndex(lo), histIndex(hi-1))
		}
		if hi-lo > 1 && float64(hi-lo)/float64(lo) > 1.0/128+1e-12 {
			t.Fatalf("bucket %d [%d, %d) is %.3f%% wide", i, lo, hi, 100*float64(hi-lo)/float64(lo))
		}
		next = hi
	}
	if next != 1<<histMaxBits {
		t.Fatalf("the buckets end at %d; want %d", next, int64(1)<<histMaxBits)
	}
	// Beyond the range: clamped into the last bucket, Max exact.
	var h Histogram
	h.Record(10 * time.Hour)
	h.Record(-time.Second)
	if h.Max() != 10*time.Hour || h.Min() != 0 || h.Percentile(100) != 10*time.Hour {
		t.Errorf("out of range: min %v max %v p100 %v", h.Min(), h.Max(), h.Percentile(100))
	}
	var empty Histogram
	if empty.Percentile(50) != 0 || empty.Mean() != 0 || empty.Max() != 0 {
		t.Error("an empty histogram reports non-zero figures")
	}
}

func TestHistogramMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	values := logUniform(r, 50_000)
	var all Histogram
	parts := make([]Histogram, 4)
	for i, v := range values {
		all.Record(time.Duration(v))
		parts[i%len(parts)].Record(time.Duration(v))
	}
	var merged Histogram
	merged.Merge(&Histogram{}) // merging an empty histogram changes nothing
	for i := range parts {
		merged.Merge(&parts[i])
	}
	if merged.counts != all.counts || merged.Count() != all.Count() || merged.Min() != all.Min() || merged.Max() != all.Max() {
		t.Fatalf("merged: count %d min %v max %v; want %d %v %v", merged.Count(), merged.Min(), merged.Max(), all.Count(), all.Min(), all.Max())
	}
	if math.Abs(merged.sum-all.sum) > 1e-6*all.sum {
		t.Errorf("merged sum %v; want %v", merged.sum, all.sum)
	}
	for _, q := range []float64{50, 99, 99.9} {
		if merged.Percentile(q) != all.Percentile(q) {
			t.Errorf("Percentile(%v): merged %v, whole %v", q, merged.Percentile(q), all.Percentile(q))
		}
	}
	merged.Reset()
	if merged.Count() != 0 || merged.Percentile(50) != 0 {
		t.Error("Reset left counts")
	}
}

func TestHistogramRecordAllocs(t *testing.T) {
	h := new(Histogram)
	d := 1234 * time.Microsecond
	if n := testing.AllocsPerRun(1000, func() {
		h.Record(d)
		d += 17 * time.Microsecond
	}); n != 0 {
		t.Errorf("Record allocates %v times; want 0", n)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := new(Histogram)
	values := logUniform(rand.New(rand.NewPCG(5, 6)), 4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.Record(time.Duration(values[i&4095]))
		i++
	}
	if h.Count() != uint64(i) {
		b.Fatalf("count %d; want %d", h.Count(), i)
	}
}
