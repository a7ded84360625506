package diff

import (
	"bufio"
	"fmt"
	"io"
)

// WriteText writes the report for people: the totals, a table of the labels that change and
// every change with its verdicts and examples, in the report's order.
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p("from %s\nto   %s\ndecided at %s\n", r.From, r.To, r.Now.Format("2006-01-02T15:04:05Z07:00"))
	p("%s PCs replayed, %s changed (%s), %s unchanged\n", count(r.PCs), count(r.Changed), Percent(r.Changed, r.PCs), count(r.Unchanged))
	if r.Changed == 0 {
		return bw.Flush()
	}
	p("PCs with a device that gains an offer: %s, loses one: %s, switches one: %s\n", count(r.Gain), count(r.Lose), count(r.Switch))

	p("\n%-20s %8s %8s %12s %10s\n", "label", "gain", "lose", "switch from", "switch to")
	for _, l := range r.Labels {
		p("%-20s %8s %8s %12s %10s\n", l.Label, count(l.Gain), count(l.Lose), count(l.SwitchFrom), count(l.SwitchTo))
	}
	for _, c := range r.Changes {
		pcs := "PCs"
		if c.PCs == 1 {
			pcs = "PC"
		}
		p("\n%-6s  %s %s  ", c.Change, count(c.PCs), pcs)
		switch {
		case c.From != nil && c.To != nil:
			p("%s (%s) → %s (%s)\n", c.From.Label, c.From.Kind, c.To.Label, c.To.Kind)
		case c.From != nil:
			p("%s (%s)\n", c.From.Label, c.From.Kind)
		default:
			p("%s (%s)\n", c.To.Label, c.To.Kind)
		}
		p("        %s on %s\n", c.HardwareID, c.OS)
		var verdicts string
		if c.From != nil {
			verdicts = fmt.Sprintf("%s: offered → %s", c.From.Label, c.From.Verdict)
		}
		if c.To != nil {
			if verdicts != "" {
				verdicts += "; "
			}
			verdicts += fmt.Sprintf("%s: %s → offered", c.To.Label, c.To.Verdict)
		}
		p("        %s\n", verdicts)
		for _, e := range c.Examples {
			p("        e.g. %s (line %d, %s)", e.DeviceID, e.Line, e.InstanceID)
			sep := ": "
			if e.FromDetail != "" {
				p("%s%s", sep, e.FromDetail)
				sep = "; "
			}
			if e.ToDetail != "" {
				p("%s%s", sep, e.ToDetail)
			}
			p("\n")
		}
	}
	return bw.Flush()
}

// String names a release: "release 2 of DIR (sha256:0123456789ab…)".
func (r Release) String() string {
	id := r.ID
	if len(id) > len("sha256:")+12 {
		id = id[:len("sha256:")+12] + "…"
	}
	s := fmt.Sprintf("release %d", r.Sequence)
	if r.Source != "" {
		s += " of " + r.Source
	}
	return s + " (" + id + ")"
}
