package serve_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/valyala/fasthttp"

	"github.com/driveway/driveway/serve"
)

// TestMetricsRuntimeSeries: an edge's /metrics has the go_* and process_* series operators
// expect beside its own, and the whole page parses with Prometheus' own text parser (and
// passes promtool where it is installed), each family once.
func TestMetricsRuntimeSeries(t *testing.T) {
	srv, _, _ := scenarioEdge(t, serve.Config{})
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI("/metrics")
	srv.Handler()(&ctx)
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("/metrics: %d", ctx.Response.StatusCode())
	}
	body := ctx.Response.Body()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	for _, name := range []string{"process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds",
		"process_cpu_seconds_total", "go_goroutines", "go_gc_duration_seconds", "go_memstats_heap_inuse_bytes",
		"driveway_edge_requests_total", "driveway_build_info",
		"driveway_edge_block_cache_budget_bytes", "driveway_edge_block_cache_used_bytes", "driveway_edge_block_decodes_total"} {
		if _, ok := families[name]; !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	for name, f := range families {
		if f.GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
	}
	if strings.Count(string(body), "# TYPE go_goroutines ") != 1 {
		t.Errorf("go_goroutines described %d times", strings.Count(string(body), "# TYPE go_goroutines "))
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
}

// BenchmarkCounting: what counting one answer costs with the edge's own counters and with
// Prometheus' client library, the measured reason the edge's families stay hand-written
// (metrics_runtime.go): go test ./serve -run '^$' -bench Counting
func BenchmarkCounting(b *testing.B) {
	b.Run("edge-counterVec", func(b *testing.B) {
		srv, _, _ := scenarioEdge(b, serve.Config{})
		count := serve.CountRequestForBench(srv)
		b.ReportAllocs()
		for b.Loop() {
			count()
		}
	})
	b.Run("client_golang-WithLabelValues", func(b *testing.B) {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests_total", Help: "h"}, []string{"path", "status"})
		b.ReportAllocs()
		for b.Loop() {
			v.WithLabelValues("/v1/offers", "200").Inc()
		}
	})
	b.Run("client_golang-curried", func(b *testing.B) {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests_total", Help: "h"}, []string{"path", "status"}).WithLabelValues("/v1/offers", "200")
		b.ReportAllocs()
		for b.Loop() {
			c.Inc()
		}
	})
}
