package serve

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestMetricsExposition checks the text exposition against a golden file (-update rewrites
// it).
func TestMetricsExposition(t *testing.T) {
	m := newMetrics()
	m.request(routeOffers, 200)
	m.request(routeOffers, 200)
	m.request(routeOffers, 400)
	m.request(routeOther, 404)
	m.request(routeMetrics, 299) // an unlisted status
	m.offers.inc(0)
	m.offers.add(3, 2)
	for _, d := range []time.Duration{10 * time.Microsecond, 30 * time.Microsecond, 800 * time.Microsecond, 3 * time.Second} {
		m.latency.observe(d)
	}
	m.swaps.inc(0)
	m.refuse(reasonRollback)
	m.refuse(reasonShard)
	m.refuse(reasonShard)
	m.originError(originTimeout)
	m.mapped.add(0, 20)
	m.unmapped.add(0, 4)
	m.gauges = []*gauge{
		{"driveway_edge_release_sequence", "Sequence of the served release.", func() (float64, bool) { return 42, true }},
		{"driveway_edge_release_age_seconds", "Age of the served release.", func() (float64, bool) { return 90.5, true }},
		{"driveway_edge_absent", "A gauge with no value now.", func() (float64, bool) { return 0, false }},
	}
	got := m.appendTo(nil)
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("exposition differs from %s (run with -update after checking):\n%s", golden, got)
	}
}

// TestMetricsNoAlloc: recording allocates nothing.
func TestMetricsNoAlloc(t *testing.T) {
	m := newMetrics()
	n := testing.AllocsPerRun(1000, func() {
		m.request(routeOffers, 200)
		m.offers.inc(1)
		m.latency.observe(123 * time.Microsecond)
	})
	if n != 0 {
		t.Errorf("recording allocates %v times", n)
	}
}

func TestBackoff(t *testing.T) {
	base, max := 100*time.Millisecond, 2*time.Second
	for n, want := range []time.Duration{base, 2 * base, 4 * base, 8 * base, 16 * base, max, max, max} {
		for range 50 {
			d := backoff(base, max, n)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
	if d := backoff(base, max, 1000); d > max {
		t.Errorf("backoff(1000) = %v", d)
	}
}

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "Application/JSON": true, "application/json; charset=utf-8": true, " application/json ;x=y": true,
		"": false, "text/plain": false, "application/jsonx": false, "application/json-seq": false,
	} {
		if got := isJSON([]byte(ct)); got != want {
			t.Errorf("isJSON(%q) = %t, want %t", ct, got, want)
		}
	}
}
