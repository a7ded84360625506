package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// isTerminal reports whether w is a character device (a terminal), where a progress bar
// makes sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws one line that updates in place, at most ten times a second.
type progressBar struct {
	w     io.Writer
	last  time.Time
	drawn bool
}

func (p *progressBar) update(phase string, done, total int) {
	if p == nil || (time.Since(p.last) < 100*time.Millisecond && done < total) {
		return
	}
	p.last = time.Now()
	const width = 30
	fill := 0
	if total > 0 {
		fill = width * done / total
	}
	fmt.Fprintf(p.w, "\r%-9s [%s%s] %d/%d ", phase, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), done, total)
	p.drawn = true
}

func (p *progressBar) finish() {
	if p != nil && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// progressLines writes progress as plain lines, for a log file or a CI job's output where a
// bar drawn in place would be noise: a line when a phase starts, and within a long phase a
// line at most every interval ("driveway build: shards 12/64").
type progressLines struct {
	w        io.Writer
	name     string // the command, "build"
	interval time.Duration
	phase    string
	last     time.Time
}

func (p *progressLines) update(phase string, done, total int) {
	if p == nil {
		return
	}
	now := time.Now()
	switch {
	case phase != p.phase:
		p.phase, p.last = phase, now
		fmt.Fprintf(p.w, "driveway %s: %s\n", p.name, phase)
	case total > 1 && done < total && now.Sub(p.last) >= p.interval:
		p.last = now
		fmt.Fprintf(p.w, "driveway %s: %s %d/%d\n", p.name, phase, done, total)
	}
}

// progressTo returns the progress callback for a command's stderr: a bar on a terminal,
// lines on a file or pipe (a log, CI), nothing on anything else (a test's buffer) or with quiet.
func progressTo(w io.Writer, name string, quiet bool) (update func(string, int, int), finish func()) {
	if quiet {
		return nil, func() {}
	}
	if isTerminal(w) {
		bar := &progressBar{w: w}
		return bar.update, bar.finish
	}
	if _, ok := w.(*os.File); ok {
		lines := &progressLines{w: w, name: name, interval: 5 * time.Second}
		return lines.update, func() {}
	}
	return nil, func() {}
}
