package flight

// The report's plots, drawn here as inline SVG: the page shows them without its script,
// in any browser or mail reader, and a test can count what they hold. Every text that comes
// from the inputs (label names, reasons, cohorts) is escaped.

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/rollout"
)

// bound is a threshold line on a bar panel.
type bound struct {
	name  string // "advance", "pause", "cancel"
	value float64
}

// bar is one bar of a panel.
type bar struct {
	label string
	value float64
	note  string // its tooltip
	dim   bool   // not enough data: drawn pale
}

// svgText escapes s for SVG text and attributes.
func svgText(s string) string { return html.EscapeString(s) }

// niceMax rounds v up to 1, 2 or 5 times a power of ten (at least min).
func niceMax(v, min float64) float64 {
	if v < min {
		v = min
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// barPanel draws one panel of bars with its bounds as horizontal lines.
func barPanel(name, title, unit string, bars []bar, bounds []bound) string {
	const w, h, left, right, top, bottom = 300.0, 236.0, 64.0, 10.0, 28.0, 64.0
	top_ := 0.0
	for _, b := range bars {
		top_ = math.Max(top_, b.value)
	}
	for _, b := range bounds {
		top_ = math.Max(top_, b.value)
	}
	ymax := niceMax(top_*1.1, 0.1)
	y := func(v float64) float64 { return top + (h-top-bottom)*(1-v/ymax) }
	var s strings.Builder
	fmt.Fprintf(&s, `<svg class="plot" data-plot="%s" viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-label="%s">`, name, w, h, w, h, svgText(title))
	fmt.Fprintf(&s, `<text class="title" x="%g" y="16">%s</text>`, left, svgText(title))
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		fmt.Fprintf(&s, `<line class="grid" x1="%g" x2="%g" y1="%.1f" y2="%.1f"/><text class="tick" x="%g" y="%.1f" text-anchor="end">%s%s</text>`,
			left, w-right, y(v), y(v), left-4, y(v)+3, trimFloat(v), unit)
	}
	if len(bars) == 0 {
		fmt.Fprintf(&s, `<text class="empty" x="%g" y="%g" text-anchor="middle">no reports</text>`, (left+w-right)/2, (top+h-bottom)/2)
	}
	slot := (w - left - right) / math.Max(1, float64(len(bars)))
	for i, b := range bars {
		x := left + slot*float64(i) + slot*0.15
		cls := "bar"
		if b.dim {
			cls = "bar dim"
		}
		fmt.Fprintf(&s, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s</title></rect>`,
			cls, x, y(b.value), slot*0.7, y(0)-y(b.value), svgText(b.note))
		fmt.Fprintf(&s, `<text class="tick" transform="translate(%.1f %.1f) rotate(-35)" text-anchor="end">%s</text>`,
			x+slot*0.35, y(0)+12, svgText(b.label))
	}
	for _, b := range bounds {
		fmt.Fprintf(&s, `<line class="bound %s" x1="%g" x2="%g" y1="%.1f" y2="%.1f"><title>%s bound %s%s</title></line>`,
			b.name, left, w-right, y(b.value), y(b.value), b.name, trimFloat(b.value), unit)
		fmt.Fprintf(&s, `<text class="boundlabel %s" x="%g" y="%.1f" text-anchor="end">%s</text>`, b.name, w-right, y(b.value)-3, b.name)
	}
	s.WriteString(`</svg>`)
	return s.String()
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "" || s == "-0" {
		return "0"
	}
	return s
}

// ratePanels draws the failure, kernel-crash and PnP-error rates of measures against the
// policy's bounds, one panel each; labels name the measures.
func ratePanels(prefix string, labels []string, ms []Judged, p PolicyBounds) string {
	type metric struct {
		name, title string
		value       func(*Judged) float64
		bound       func(t *boundsOf) float64
	}
	metrics := []metric{
		{"failures", "failed machines", func(j *Judged) float64 { return 100 - j.SuccessPercent },
			func(t *boundsOf) float64 { return t.failed }},
		{"kernel", "kernel crashes after install", func(j *Judged) float64 { return j.KernelCrashRate },
			func(t *boundsOf) float64 { return t.kernel }},
		{"pnp", "PnP errors after install", func(j *Judged) float64 { return j.PnPErrorRate },
			func(t *boundsOf) float64 { return t.pnp }},
	}
	gates := []struct {
		name string
		b    boundsOf
	}{{"advance", boundsFrom(p.Advance)}, {"pause", boundsFrom(p.Pause)}, {"cancel", boundsFrom(p.Cancel)}}
	var s strings.Builder
	for _, m := range metrics {
		var bars []bar
		for i := range ms {
			j := &ms[i]
			v := 0.0
			if j.Machines > 0 {
				v = m.value(j)
			}
			note := fmt.Sprintf("%s: %s%% of %d machines", labels[i], trimFloat(v), j.Machines)
			if !j.Enough {
				note += " (not enough data)"
			}
			bars = append(bars, bar{label: labels[i], value: v, note: note, dim: !j.Enough})
		}
		var bs []bound
		for _, g := range gates {
			if v := m.bound(&g.b); v > 0 {
				bs = append(bs, bound{g.name, v})
			}
		}
		s.WriteString(barPanel(prefix+"-"+m.name, m.title, "%", bars, bs))
	}
	return s.String()
}

// boundsOf are a gate's bounds as rates to stay under (0: none).
type boundsOf struct{ failed, kernel, pnp float64 }

func boundsFrom(t *rollout.Thresholds) boundsOf {
	if t == nil {
		return boundsOf{}
	}
	b := boundsOf{kernel: t.MaxKernelCrashRate, pnp: t.MaxPnPErrorRate}
	if t.MinSuccessPercent > 0 {
		b.failed = 100 - t.MinSuccessPercent
	}
	return b
}

// timelinePlot draws the percent offered (left axis) and the machines that installed and
// failed (right axis) over the timeline, with the decisions marked.
func timelinePlot(tl Timeline, decisions []Decision) string {
	const w, h, left, right, top, bottom = 920.0, 320.0, 48.0, 60.0, 30.0, 46.0
	var s strings.Builder
	fmt.Fprintf(&s, `<svg class="plot" data-plot="timeline" viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-label="percent offered and machines over time">`, w, h, w, h)
	if len(tl.Points) == 0 {
		s.WriteString(`</svg>`)
		return s.String()
	}
	t0, t1 := tl.Start, tl.Points[len(tl.Points)-1].End
	span := t1.Sub(t0)
	if span <= 0 {
		span = time.Hour
	}
	x := func(t time.Time) float64 { return left + (w-left-right)*float64(t.Sub(t0))/float64(span) }
	maxM := 0
	for _, p := range tl.Points {
		maxM = max(maxM, p.Installed, p.Failed)
	}
	mmax := niceMax(float64(maxM)*1.1, 10)
	yP := func(bp int) float64 { return top + (h-top-bottom)*(1-float64(bp)/10000) }
	yM := func(n int) float64 { return top + (h-top-bottom)*(1-float64(n)/mmax) }
	for i := 0; i <= 4; i++ {
		fmt.Fprintf(&s, `<line class="grid" x1="%g" x2="%g" y1="%.1f" y2="%.1f"/>`, left, w-right, yP(i*2500), yP(i*2500))
		fmt.Fprintf(&s, `<text class="tick offered" x="%g" y="%.1f" text-anchor="end">%d%%</text>`, left-4, yP(i*2500)+3, i*25)
		fmt.Fprintf(&s, `<text class="tick machines" x="%g" y="%.1f">%s</text>`, w-right+4, yP(i*2500)+3, trimFloat(mmax*float64(i)/4))
	}
	// Time ticks: at most 8, on bucket boundaries.
	size, err := time.ParseDuration(tl.Bucket)
	if err != nil || size <= 0 {
		size = time.Hour
	}
	step := (len(tl.Points) + 7) / 8
	for i := 0; i < len(tl.Points); i += step {
		at := tl.Start.Add(time.Duration(i) * size)
		fmt.Fprintf(&s, `<text class="tick" x="%.1f" y="%g" text-anchor="middle">%s</text>`, x(at), h-bottom+16, at.Format("Jan 2 15:04"))
	}
	offered := fmt.Sprintf("M%.1f %.1f", x(t0), yP(0))
	installed := fmt.Sprintf("M%.1f %.1f", x(t0), yM(0))
	failed := installed
	prev := 0
	for _, p := range tl.Points {
		offered += fmt.Sprintf(" L%.1f %.1f", x(p.End), yP(prev))
		if p.BasisPoints != prev {
			offered += fmt.Sprintf(" L%.1f %.1f", x(p.End), yP(p.BasisPoints))
			prev = p.BasisPoints
		}
		installed += fmt.Sprintf(" L%.1f %.1f", x(p.End), yM(p.Installed))
		failed += fmt.Sprintf(" L%.1f %.1f", x(p.End), yM(p.Failed))
	}
	fmt.Fprintf(&s, `<path class="series offered" d="%s"><title>percent offered</title></path>`, offered)
	fmt.Fprintf(&s, `<path class="series installed" d="%s"><title>machines installed</title></path>`, installed)
	fmt.Fprintf(&s, `<path class="series failed" d="%s"><title>machines failed</title></path>`, failed)
	for _, d := range decisions {
		if d.At.Before(t0) || d.At.After(t1) {
			continue
		}
		what := string(d.Action)
		if d.Action == rollout.Advance || d.Action == rollout.Expedited {
			what += " to " + catalogs.FormatBasisPoints(d.To) + "%"
		}
		fmt.Fprintf(&s, `<g class="decision %s"><line x1="%.1f" x2="%.1f" y1="%g" y2="%g"/><text transform="translate(%.1f %g) rotate(-90)" text-anchor="end">%s</text><title>%s %s: %s</title></g>`,
			svgText(string(d.Action)), x(d.At), x(d.At), top, h-bottom, x(d.At)+3, top+2, svgText(what), d.At.Format(time.RFC3339), svgText(what), svgText(d.Reason))
	}
	fmt.Fprintf(&s, `<text class="legend offered" x="%g" y="18">— percent offered</text><text class="legend installed" x="%g" y="18">— machines installed</text><text class="legend failed" x="%g" y="18">— machines failed</text>`,
		left, left+150, left+310)
	s.WriteString(`</svg>`)
	return s.String()
}
