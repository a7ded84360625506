package plot

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Series is one line of a chart: points (X[i], Y[i]).
type Series struct {
	Name string
	X, Y []float64
}

// Chart is a line chart with a common x axis, written as a self-contained SVG (no script,
// no external fonts), for reports and READMEs.
type Chart struct {
	Title          string
	XLabel, YLabel string
	LogX, LogY     bool // logarithmic axes (values must be > 0)
	Series         []Series
	Width, Height  int // pixels; 0 means 720 × 400
}

var chartColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"}

// SVG renders the chart.
func (c *Chart) SVG() []byte {
	w, h := c.Width, c.Height
	if w == 0 {
		w, h = 720, 400
	}
	const left, right, top, bottom = 70, 150, 40, 50
	pw, ph := float64(w-left-right), float64(h-top-bottom)
	tx := func(v float64) float64 {
		if c.LogX {
			return math.Log10(v)
		}
		return v
	}
	ty := func(v float64) float64 {
		if c.LogY {
			return math.Log10(v)
		}
		return v
	}
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for i := range s.X {
			if (c.LogX && s.X[i] <= 0) || (c.LogY && s.Y[i] <= 0) {
				continue
			}
			minX, maxX = math.Min(minX, tx(s.X[i])), math.Max(maxX, tx(s.X[i]))
			minY, maxY = math.Min(minY, ty(s.Y[i])), math.Max(maxY, ty(s.Y[i]))
		}
	}
	if math.IsInf(minX, 0) {
		minX, maxX, minY, maxY = 0, 1, 0, 1
	}
	if !c.LogY && minY > 0 {
		minY = 0
	}
	if maxX == minX {
		maxX = minX + 1
	}
	if maxY == minY {
		maxY = minY + 1
	}
	px := func(v float64) float64 { return left + (tx(v)-minX)/(maxX-minX)*pw }
	py := func(v float64) float64 { return top + ph - (ty(v)-minY)/(maxY-minY)*ph }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(c.Title))
	// Axes with ticks.
	fmt.Fprintf(&b, `<path d="M%d %d V%.1f H%.1f" stroke="black" fill="none"/>`+"\n", left, top, top+ph, left+pw)
	for _, v := range ticks(minX, maxX, c.LogX) {
		x := left + (tx(v)-minX)/(maxX-minX)*pw
		fmt.Fprintf(&b, `<path d="M%.1f %.1f v5" stroke="black"/><text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, top+ph, x, top+ph+18, tickLabel(v))
	}
	for _, v := range ticks(minY, maxY, c.LogY) {
		y := top + ph - (ty(v)-minY)/(maxY-minY)*ph
		fmt.Fprintf(&b, `<path d="M%d %.1f h-5" stroke="black"/><path d="M%d %.1f H%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, y, left, y, left+pw, left-8, y+4, tickLabel(v))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", left+pw/2, h-10, html.EscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+ph/2, html.EscapeString(c.YLabel))
	// Lines, points and the legend.
	for i, s := range c.Series {
		color := chartColors[i%len(chartColors)]
		var d strings.Builder
		for k := range s.X {
			if (c.LogX && s.X[k] <= 0) || (c.LogY && s.Y[k] <= 0) {
				continue
			}
			cmd := "L"
			if d.Len() == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, px(s.X[k]), py(s.Y[k]))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`+"\n", px(s.X[k]), py(s.Y[k]), color)
		}
		fmt.Fprintf(&b, `<path d="%s" stroke="%s" stroke-width="2" fill="none"/>`+"\n", strings.TrimSpace(d.String()), color)
		ly := top + 10 + 18*i
		fmt.Fprintf(&b, `<path d="M%.1f %d h20" stroke="%s" stroke-width="2"/><text x="%.1f" y="%d">%s</text>`+"\n",
			left+pw+12, ly, color, left+pw+36, ly+4, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// ticks returns round tick values within [lo, hi] (in axis units: log10 for log axes).
func ticks(lo, hi float64, log bool) []float64 {
	var out []float64
	if log {
		for e := math.Floor(lo); e <= math.Ceil(hi); e++ {
			if e >= lo-1e-9 && e <= hi+1e-9 {
				out = append(out, math.Pow(10, e))
			}
		}
		return out
	}
	step := math.Pow(10, math.Floor(math.Log10((hi-lo)/5)))
	for _, m := range []float64{1, 2, 5, 10} {
		if (hi-lo)/(step*m) <= 6 {
			step *= m
			break
		}
	}
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

// tickLabel prints a tick value briefly: 1500 -> 1.5k, 2e6 -> 2M, 0.25 -> 0.25.
func tickLabel(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v/1e6), "0"), ".") + "M"
	case a >= 1e3:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v/1e3), "0"), ".") + "k"
	case a == math.Trunc(a):
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(fmt.Sprintf("%.3f", v), "0")
}
