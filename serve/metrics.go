package serve

// Metrics, hand-rolled: a few counter families over fixed label values, gauges read at scrape
// time, and one latency histogram, written in the Prometheus text exposition format
// (version 0.0.4). Recording is an atomic add on a preallocated series: nothing allocates per
// request.

import (
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/driveway/driveway/rollout"
)

// A counterVec is a counter family whose series are fixed when it is made. Series are
// addressed by index; the label text of each is formatted once.
type counterVec struct {
	name, help string
	sparse     bool // leave series at zero out of the exposition
	labels     []string
	values     []atomic.Uint64
}

// newCounterVec makes a family with one series per label set; each label set is the
// rendered text inside the braces ("" for a family without labels).
func newCounterVec(name, help string, sparse bool, labels []string) *counterVec {
	return &counterVec{name: name, help: help, sparse: sparse, labels: labels, values: make([]atomic.Uint64, len(labels))}
}

func (c *counterVec) inc(i int)           { c.values[i].Add(1) }
func (c *counterVec) add(i int, n uint64) { c.values[i].Add(n) }
func (c *counterVec) get(i int) uint64    { return c.values[i].Load() }
func (c *counterVec) appendTo(b []byte) []byte {
	b = appendHeader(b, c.name, c.help, "counter")
	for i := range c.values {
		v := c.values[i].Load()
		if v == 0 && c.sparse {
			continue
		}
		b = appendSample(b, c.name, c.labels[i], float64(v))
	}
	return b
}

// A counterFunc is a counter family kept elsewhere (the spool's counts) and read when
// scraped: read(i) is series i's value.
type counterFunc struct {
	name, help string
	labels     []string
	read       func(i int) uint64
}

func (c *counterFunc) appendTo(b []byte) []byte {
	b = appendHeader(b, c.name, c.help, "counter")
	for i := range c.labels {
		b = appendSample(b, c.name, c.labels[i], float64(c.read(i)))
	}
	return b
}

// A gauge is read when scraped.
type gauge struct {
	name, help string
	read       func() (float64, bool) // false: no value now (the series is left out)
}

func (g *gauge) appendTo(b []byte) []byte {
	b = appendHeader(b, g.name, g.help, "gauge")
	if v, ok := g.read(); ok {
		b = appendSample(b, g.name, "", v)
	}
	return b
}

// A histogram counts observations into fixed buckets (upper bounds, ascending).
type histogram struct {
	name, help string
	bounds     []float64       // seconds
	limits     []time.Duration // the same bounds as durations
	counts     []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sumNanos   atomic.Uint64
}

func newHistogram(name, help string, bounds []float64) *histogram {
	h := &histogram{name: name, help: help, bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
	for _, s := range bounds {
		h.limits = append(h.limits, time.Duration(s*float64(time.Second)))
	}
	return h
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(h.limits) && d > h.limits[i] {
		i++
	}
	h.counts[i].Add(1)
	if d > 0 {
		h.sumNanos.Add(uint64(d))
	}
}

func (h *histogram) appendTo(b []byte) []byte {
	b = appendHeader(b, h.name, h.help, "histogram")
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		b = append(b, h.name...)
		b = append(b, `_bucket{le="`...)
		if i < len(h.bounds) {
			b = strconv.AppendFloat(b, h.bounds[i], 'g', -1, 64)
		} else {
			b = append(b, "+Inf"...)
		}
		b = append(b, `"} `...)
		b = strconv.AppendUint(b, cum, 10)
		b = append(b, '\n')
	}
	b = appendSample(b, h.name+"_sum", "", float64(h.sumNanos.Load())/1e9)
	return appendSample(b, h.name+"_count", "", float64(cum))
}

func appendHeader(b []byte, name, help, typ string) []byte {
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, help...)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	return append(b, '\n')
}

func appendSample(b []byte, name, labels string, v float64) []byte {
	b = append(b, name...)
	if labels != "" {
		b = append(b, '{')
		b = append(b, labels...)
		b = append(b, '}')
	}
	b = append(b, ' ')
	switch {
	case math.IsInf(v, 1):
		b = append(b, "+Inf"...)
	case math.IsInf(v, -1):
		b = append(b, "-Inf"...)
	case math.IsNaN(v):
		b = append(b, "NaN"...)
	default:
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return append(b, '\n')
}

// Label values of the edge's families.
var (
	// routes are the request counter's path label values, in route order.
	routes = [...]string{"/v1/offers", "/v1/release", "/healthz", "/readyz", "/metrics", "/v1/reports", "other"}
	// statuses are the statuses the edge answers with; anything else counts as "other".
	statuses = [...]int{200, 202, 400, 403, 404, 405, 408, 413, 415, 429, 431, 500, 503}
	// refusalReasons are why a release was refused.
	refusalReasons = [...]string{reasonSignature, reasonManifest, reasonExpired, reasonRollback, reasonShard, reasonIO, reasonTimestamp, reasonRoot, reasonCatalog, reasonTime, reasonStatement, reasonLog}
	// originReasons are why a fetch from the origin failed.
	originReasons = [...]string{originConnect, originTimeout, originStatus, originTooLarge, originBody}
	// offerKinds are offer.Kind's names, in its order.
	offerKinds = [...]string{"automatic", "optional", "dynamic", "extension", "rollback"}
)

// Refusal reasons.
const (
	reasonSignature = "signature" // the envelope does not verify with the configured keys
	reasonManifest  = "manifest"  // the payload is not a valid manifest
	reasonExpired   = "expired"   // the manifest has expired (freeze)
	reasonRollback  = "rollback"  // the sequence is not newer than the one served
	reasonShard     = "shard"     // a shard's size, sha256 or structure is wrong
	reasonIO        = "io"        // a file could not be read or written
	reasonTimestamp = "timestamp" // no valid, fresh timestamp names the release (package trust)
	reasonRoot      = "root"      // a new root did not verify on top of the trusted one
	reasonCatalog   = "catalog"   // the release is of another catalog than the one served
	reasonTime      = "time"      // created in the future, or valid for longer than allowed
	reasonStatement = "statement" // the release statement is missing, unsigned or does not match the release's records
)

// Origin fetch error reasons.
const (
	originConnect  = "connect"   // the connection failed
	originTimeout  = "timeout"   // the origin was too slow
	originStatus   = "status"    // an HTTP status other than 200 or 304
	originTooLarge = "too-large" // more bytes than the manifest (or the envelope cap) allows
	originBody     = "body"      // the body broke off
)

const (
	routeOffers = iota
	routeRelease
	routeHealthz
	routeReadyz
	routeMetrics
	routeReports
	routeOther
)

// metrics are the edge's metrics.
type metrics struct {
	requests *counterVec // by route and status
	offers   *counterVec // by kind
	latency  *histogram  // POST /v1/offers, handler time
	swaps    *counterVec
	refused  *counterVec // by reason
	origin   *counterVec // by reason
	mapped   *counterVec // shards mapped
	unmapped *counterVec // shards unmapped
	faults   *counterVec // faults reading mapped memory (serve/damage.go)
	gauges   []*gauge
	cache    []*counterFunc // the block cache's decodes; nil without a cache
	reports  *reportMetrics // nil without a spool
}

// reportMetrics are the install-report families of an edge with a spool (POST /v1/reports).
type reportMetrics struct {
	invalid         *counterVec    // requests answered 400
	forbidden       *counterVec    // requests answered 403 (a report without its offer's token)
	limited         *counterVec    // reports answered 429, by the limit (device, source)
	accepted        *counterVec    // reports answered 202 (stored)
	refused         *counterVec    // reports answered 503, by reason (reportRefusals)
	refusedRequests *counterVec    // requests answered 503, by reason
	spool           []*counterFunc // the spool's counts
	gauges          []*gauge       // the spool's state
}

// enableReports adds the report families, reading the spool's counts at scrape time.
func (m *metrics) enableReports(stats func() rollout.SpoolStats) {
	one := func(f func(rollout.SpoolStats) int64) func(int) uint64 {
		return func(int) uint64 { return uint64(f(stats())) }
	}
	reasons := make([]string, len(reportRefusals))
	for i, r := range reportRefusals {
		reasons[i] = `reason="` + r + `"`
	}
	storage := rollout.SpoolReasons[3:] // what a commit can fail of (missing … reserve)
	storageLabels := make([]string, len(storage))
	for i, r := range storage {
		storageLabels[i] = `reason="` + r + `"`
	}
	m.reports = &reportMetrics{
		invalid: newCounterVec("driveway_edge_reports_invalid_total", "Requests to POST /v1/reports answered 400 (none of their reports was kept).", false, []string{""}),
		forbidden: newCounterVec("driveway_edge_reports_forbidden_total", "Requests to POST /v1/reports answered 403: a report without a valid token of an offer to that device "+
			"(forged, for another device or label, or expired); none of their reports was kept.", false, []string{""}),
		limited: newCounterVec("driveway_edge_reports_limited_total", "Install reports answered 429 (nothing of the request kept), by the limit that refused them: "+
			"device (per device id) or source (per client network).", false, []string{`by="device"`, `by="source"`}),
		accepted: newCounterVec("driveway_edge_reports_accepted_total", "Install reports answered 202: written and fsynced to the spool.", false, []string{""}),
		refused: newCounterVec("driveway_edge_reports_refused_total", "Install reports answered 503 (the PC sends them again), by reason: queue, timeout, closed, "+
			"missing (spool directory gone), read-only, disk-full, io, cap (spool size cap), reserve (free-disk reserve), no-release.", false, reasons),
		refusedRequests: newCounterVec("driveway_edge_report_requests_refused_total", "Requests to POST /v1/reports answered 503, by reason (as reports_refused_total).", false, reasons),
		spool: []*counterFunc{
			{"driveway_edge_reports_written_total", "Install reports written and fsynced to spool files (the lines of the spool's files).", []string{""},
				one(func(s rollout.SpoolStats) int64 { return s.Written })},
			{"driveway_edge_spool_commits_total", "Group commits that stored reports (one write and fsync each).", []string{""},
				one(func(s rollout.SpoolStats) int64 { return s.Commits })},
			{"driveway_edge_spool_failed_commits_total", "Group commits the spool could not store, by reason.", storageLabels, func(i int) uint64 {
				return uint64(stats().Refused[3+i])
			}},
			{"driveway_edge_spool_files_total", "Spool files closed (rotated by size or age, or at shutdown).", []string{""},
				one(func(s rollout.SpoolStats) int64 { return s.Files })},
			{"driveway_edge_spool_files_recovered_total", "Spool files a previous run left open (killed), closed out at start.", []string{""},
				one(func(s rollout.SpoolStats) int64 { return s.Recovered })},
			{"driveway_edge_spool_files_expired_total", "Closed spool files deleted past the retention window (no shipper took them).", []string{""},
				one(func(s rollout.SpoolStats) int64 { return s.Expired })},
		},
		gauges: []*gauge{
			{"driveway_edge_spool_storing", "1 while the spool stores reports; 0 while it refuses them (see /readyz for why).", func() (float64, bool) {
				if stats().State.Storing {
					return 1, true
				}
				return 0, true
			}},
			{"driveway_edge_spool_bytes", "Bytes of the files in the spool directory, as last measured.", func() (float64, bool) {
				return float64(stats().Bytes), true
			}},
			{"driveway_edge_spool_free_bytes", "Free bytes of the spool's file system, as last measured.", func() (float64, bool) {
				f := stats().Free
				return float64(f), f > 0
			}},
		},
	}
}

// latencyBounds are the latency histogram's buckets, in seconds.
var latencyBounds = []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3, 1}

func newMetrics() *metrics {
	var reqLabels []string
	for _, r := range routes {
		for _, s := range statuses {
			reqLabels = append(reqLabels, `path="`+r+`",status="`+strconv.Itoa(s)+`"`)
		}
		reqLabels = append(reqLabels, `path="`+r+`",status="other"`)
	}
	label := func(name string, values []string) []string {
		out := make([]string, len(values))
		for i, v := range values {
			out[i] = name + `="` + v + `"`
		}
		return out
	}
	return &metrics{
		requests: newCounterVec("driveway_edge_requests_total", "HTTP requests answered, by path and status.", true, reqLabels),
		offers:   newCounterVec("driveway_edge_offers_total", "Offers answered, by kind.", false, label("kind", offerKinds[:])),
		latency:  newHistogram("driveway_edge_offer_duration_seconds", "Time to answer POST /v1/offers, from the request read to the response built.", latencyBounds),
		swaps:    newCounterVec("driveway_edge_swaps_total", "Releases swapped in.", false, []string{""}),
		refused:  newCounterVec("driveway_edge_refused_releases_total", "Releases refused, by reason; the current release kept serving.", false, label("reason", refusalReasons[:])),
		origin:   newCounterVec("driveway_edge_origin_fetch_errors_total", "Failed fetches from the origin, by reason.", false, label("reason", originReasons[:])),
		mapped:   newCounterVec("driveway_edge_shards_mapped_total", "Shard files opened (mapped).", false, []string{""}),
		unmapped: newCounterVec("driveway_edge_shards_unmapped_total", "Shard files closed (unmapped) after their last reader.", false, []string{""}),
		faults:   newCounterVec("driveway_edge_faults_total", "Faults reading a mapped shard (a file changed under the edge), each answered 500.", false, []string{""}),
	}
}

// request counts one answered request.
func (m *metrics) request(route, status int) {
	si := len(statuses)
	for i, s := range statuses {
		if s == status {
			si = i
			break
		}
	}
	m.requests.inc(route*(len(statuses)+1) + si)
}

func indexOf(list []string, v string) int {
	for i, s := range list {
		if s == v {
			return i
		}
	}
	return -1
}

func (m *metrics) refuse(reason string) { m.refused.inc(indexOf(refusalReasons[:], reason)) }
func (m *metrics) originError(reason string) {
	m.origin.inc(indexOf(originReasons[:], reason))
}

// appendTo writes the exposition.
func (m *metrics) appendTo(b []byte) []byte {
	b = m.requests.appendTo(b)
	b = m.offers.appendTo(b)
	b = m.latency.appendTo(b)
	b = m.swaps.appendTo(b)
	b = m.refused.appendTo(b)
	b = m.origin.appendTo(b)
	b = m.mapped.appendTo(b)
	b = m.unmapped.appendTo(b)
	b = m.faults.appendTo(b)
	if m.reports != nil {
		b = m.reports.invalid.appendTo(b)
		b = m.reports.forbidden.appendTo(b)
		b = m.reports.limited.appendTo(b)
		b = m.reports.accepted.appendTo(b)
		b = m.reports.refused.appendTo(b)
		b = m.reports.refusedRequests.appendTo(b)
		for _, c := range m.reports.spool {
			b = c.appendTo(b)
		}
		for _, g := range m.reports.gauges {
			b = g.appendTo(b)
		}
	}
	for _, g := range m.gauges {
		b = g.appendTo(b)
	}
	for _, c := range m.cache {
		b = c.appendTo(b)
	}
	return b
}
