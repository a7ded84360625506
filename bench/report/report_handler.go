package report

// The edge's own view of a load run: its driveway_edge_offer_duration_seconds histogram
// (/metrics), read before and after the run. The client's latency includes loopback, the
// kernel's queues and the generator's own scheduling; the handler's time is the edge's part.

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// handlerMetric is the edge's histogram of POST /v1/offers, from the request read to the
// response built.
const handlerMetric = "driveway_edge_offer_duration_seconds"

// HandlerLatency is the edge's handler time over one load run, from its histogram: the
// percentiles are the upper bounds of the buckets they fall in (the histogram's resolution),
// +Inf when they fall in the last.
type HandlerLatency struct {
	Requests uint64  `json:"requests"`
	P50Ms    float64 `json:"p50Ms"`
	P99Ms    float64 `json:"p99Ms"`
	P999Ms   float64 `json:"p999Ms"`
}

// bucketCounts is a cumulative Prometheus histogram: counts[i] observations at most
// bounds[i] seconds; the last bound is +Inf.
type bucketCounts struct {
	bounds []float64
	counts []uint64
}

// parseHistogram reads the buckets of the histogram name from Prometheus text.
func parseHistogram(text []byte, name string) (bucketCounts, error) {
	var h bucketCounts
	prefix := name + `_bucket{le="`
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		le, count, ok := strings.Cut(rest, `"} `)
		if !ok {
			return bucketCounts{}, fmt.Errorf("metrics line %q: want %s{le=\"BOUND\"} COUNT", line, name+"_bucket")
		}
		bound, err := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
		if err != nil {
			return bucketCounts{}, fmt.Errorf("metrics line %q: bound: %v", line, err)
		}
		n, err := strconv.ParseUint(strings.TrimSpace(count), 10, 64)
		if err != nil {
			return bucketCounts{}, fmt.Errorf("metrics line %q: count: %v", line, err)
		}
		if k := len(h.bounds); k > 0 && (bound <= h.bounds[k-1] || n < h.counts[k-1]) {
			return bucketCounts{}, fmt.Errorf("metrics line %q: buckets out of order", line)
		}
		h.bounds, h.counts = append(h.bounds, bound), append(h.counts, n)
	}
	if err := sc.Err(); err != nil {
		return bucketCounts{}, err
	}
	if len(h.bounds) == 0 || !math.IsInf(h.bounds[len(h.bounds)-1], 1) {
		return bucketCounts{}, fmt.Errorf("metrics: no %s histogram ending in le=\"+Inf\"", name)
	}
	return h, nil
}

// since is the histogram of the observations after before (the same buckets).
func (h bucketCounts) since(before bucketCounts) (bucketCounts, error) {
	if len(before.bounds) != len(h.bounds) {
		return bucketCounts{}, fmt.Errorf("metrics: the histogram changed buckets (%d, then %d)", len(before.bounds), len(h.bounds))
	}
	d := bucketCounts{bounds: h.bounds, counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		if h.bounds[i] != before.bounds[i] || h.counts[i] < before.counts[i] {
			return bucketCounts{}, fmt.Errorf("metrics: the histogram went back (bucket le=%g: %d, then %d): did the edge restart?", h.bounds[i], before.counts[i], h.counts[i])
		}
		d.counts[i] = h.counts[i] - before.counts[i]
	}
	return d, nil
}

// plus is the histogram of the observations of both h and o (the same buckets; an empty h
// takes o's).
func (h bucketCounts) plus(o bucketCounts) (bucketCounts, error) {
	if len(h.bounds) == 0 {
		return o, nil
	}
	if len(o.bounds) != len(h.bounds) {
		return bucketCounts{}, fmt.Errorf("metrics: the histogram changed buckets (%d, then %d)", len(h.bounds), len(o.bounds))
	}
	d := bucketCounts{bounds: h.bounds, counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		if h.bounds[i] != o.bounds[i] {
			return bucketCounts{}, fmt.Errorf("metrics: the histogram changed buckets (le=%g, then le=%g)", h.bounds[i], o.bounds[i])
		}
		d.counts[i] = h.counts[i] + o.counts[i]
	}
	return d, nil
}

// quantile is the upper bound, in seconds, of the bucket holding the q quantile.
func (h bucketCounts) quantile(q float64) float64 {
	total := h.counts[len(h.counts)-1]
	if total == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(total)))
	for i, n := range h.counts {
		if n >= rank {
			return h.bounds[i]
		}
	}
	return math.Inf(1)
}

func (h bucketCounts) latency() HandlerLatency {
	return HandlerLatency{Requests: h.counts[len(h.counts)-1], P50Ms: 1000 * h.quantile(0.5), P99Ms: 1000 * h.quantile(0.99), P999Ms: 1000 * h.quantile(0.999)}
}

// scrapeHandler reads the edge's handler histogram from its /metrics.
func scrapeHandler(metricsURL string) (bucketCounts, error) {
	code, body, err := fasthttp.GetTimeout(nil, metricsURL, 5*time.Second)
	if err != nil {
		return bucketCounts{}, fmt.Errorf("GET %s: %v", metricsURL, err)
	}
	if code != fasthttp.StatusOK {
		return bucketCounts{}, fmt.Errorf("GET %s: status %d", metricsURL, code)
	}
	return parseHistogram(body, handlerMetric)
}

// metricsURL is the /metrics of the edge serving offerURL (…/v1/offers).
func metricsURL(offerURL string) string {
	return strings.TrimSuffix(offerURL, "/v1/offers") + "/metrics"
}

// handlerText is ", edge's own p99 ≤ X ms" for the log, or "".
func (pt *LoadPoint) handlerText() string {
	if pt.Handler == nil || pt.Handler.Requests == 0 {
		return ""
	}
	return fmt.Sprintf("  (edge's own p99 <= %s ms)", boundMs(pt.Handler.P99Ms))
}

// boundMs prints a bucket bound in milliseconds.
func boundMs(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
