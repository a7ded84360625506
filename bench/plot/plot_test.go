package plot

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestChartSVG(t *testing.T) {
	c := &Chart{Title: "p99 <latency> & more", XLabel: "connections", YLabel: "ms", LogX: true,
		Series: []Series{{Name: "edge", X: []float64{1, 10, 100}, Y: []float64{0.2, 0.5, 4}}, {Name: "fixed", X: []float64{1, 10, 100}, Y: []float64{0.1, 0.2, 1}}}}
	svg := c.SVG()
	// Well-formed XML, the escaped title, one path per series with its points, both legends.
	if err := xml.Unmarshal(svg, new(struct{})); err != nil {
		t.Fatalf("not well-formed: %v\n%s", err, svg)
	}
	s := string(svg)
	for _, want := range []string{"p99 &lt;latency&gt; &amp; more", ">edge<", ">fixed<", ">100<", ">10<"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q", want)
		}
	}
	if n := strings.Count(s, "<circle"); n != 6 {
		t.Errorf("%d points drawn, want 6", n)
	}
	// Non-positive values on a log axis are skipped, not drawn at -Inf.
	c.Series[0].X[0] = 0
	if s := string(c.SVG()); strings.Contains(s, "NaN") || strings.Contains(s, "Inf") || strings.Count(s, "<circle") != 5 {
		t.Errorf("a zero on a log axis: %d points, NaN/Inf present: %v", strings.Count(s, "<circle"), strings.Contains(s, "NaN"))
	}
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   string
	}{{0, 100, "[0 20 40 60 80 100]"}, {0, 7, "[0 2 4 6]"}, {0, 1, "[0 0.2 0.4 0.6 0.8 1]"}} {
		var got []string
		for _, v := range ticks(tc.lo, tc.hi, false) {
			got = append(got, tickLabel(v))
		}
		if "["+strings.Join(got, " ")+"]" != tc.want {
			t.Errorf("ticks(%v, %v) = %v, want %s", tc.lo, tc.hi, got, tc.want)
		}
	}
}
