package load

import (
	"math"
	"math/bits"
	"time"
)

// Histogram is an HDR-style log-linear histogram of durations, for latencies: exact below
// 256 ns, and above, each power of two split into 128 buckets of equal width, so that a
// percentile read from it is within 0.4% of the true value (the midpoint of a bucket whose
// width is 1/128 of its lower bound). It covers 0 to 2^44 ns (about 4.9 hours); longer
// durations count as 2^44 ns, and Max still reports them exactly.
//
// Record does not allocate and takes a few nanoseconds. A Histogram is about 39 KB and is
// not safe for concurrent use: give each goroutine its own and Merge them at the end.
// The zero value is an empty histogram.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64 // nanoseconds
	min    int64
	max    int64
}

const (
	histExactBits = 8                 // values below 1<<histExactBits are counted exactly
	histSubBits   = histExactBits - 1 // each power of two above has 1<<histSubBits buckets
	histMaxBits   = 44                // values at or above 1<<histMaxBits are clamped
	histBuckets   = 1<<histExactBits + (histMaxBits-histExactBits)<<histSubBits
)

// histIndex is the bucket of a value in nanoseconds (v >= 0).
func histIndex(v int64) int {
	if v < 1<<histExactBits {
		return int(v)
	}
	if v >= 1<<histMaxBits {
		return histBuckets - 1
	}
	e := bits.Len64(uint64(v)) - 1 // histExactBits <= e < histMaxBits
	shift := e - histSubBits
	sub := int(v>>shift) - 1<<histSubBits // 0 .. 1<<histSubBits-1
	return 1<<histExactBits + (e-histExactBits)<<histSubBits + sub
}

// histBounds returns the values of bucket i: [lo, hi).
func histBounds(i int) (lo, hi int64) {
	if i < 1<<histExactBits {
		return int64(i), int64(i) + 1
	}
	j := i - 1<<histExactBits
	e := j>>histSubBits + histExactBits
	sub := int64(j&(1<<histSubBits-1)) + 1<<histSubBits
	shift := e - histSubBits
	return sub << shift, (sub + 1) << shift
}

// Record counts one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[histIndex(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds the counts of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count is the number of durations recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Min and Max are the smallest and largest durations recorded, exactly; 0 when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max is the largest duration recorded, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the average duration recorded, exactly; 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(math.Round(h.sum / float64(h.n)))
}

// Percentile returns the duration below or at which q percent of the recorded durations
// fall (the nearest-rank definition: the value of rank ceil(q/100 × Count)), within 0.4%:
// the midpoint of its bucket, kept within Min and Max. Percentile(0) is Min,
// Percentile(100) is Max; 0 when empty.
func (h *Histogram) Percentile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q / 100 * float64(h.n)))
	if rank <= 1 || q <= 0 {
		return time.Duration(h.min)
	}
	if rank >= h.n {
		return time.Duration(h.max)
	}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			lo, hi := histBounds(i)
			v := lo + (hi-1-lo)/2
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
