// Package diff answers a release engineer's question before publishing: what will this
// release change for the machines out there? It replays a population of PCs (offer
// requests, one JSON object per line) against two releases at one time, and reports every PC
// whose offers differ: per change (a device gains, loses or switches an offer), label,
// hardware ID, OS and kind, how many PCs, a few example devices, and the verdicts of the
// offer procedure that changed (a label lost because its verdict went from offered to
// cancelled; a label gained because it was outranked by the one lost).
//
// # Use
//
//	rep, err := diff.Run(fromEngine, toEngine, population, &diff.Options{Now: now, Name: "pcs.ndjson"})
//	limit, _ := diff.ParseLimit("5%")
//	if reasons := rep.Check(diff.Gate{Limited: true, MaxChanged: limit}); len(reasons) > 0 { … refuse … }
//	rep.WriteText(os.Stdout)
//
// Both releases are decided at Options.Now: the package never reads a clock. Replay runs on
// Options.Workers goroutines, each with its own Decoder and Results; a PC whose offers are
// the same in both releases costs two Decides without explain, and only a PC that changed is
// decided again with explain to find its verdicts.
//
// # What counts as a change
//
// The offers of each device of a PC are compared by (label, kind). An offer of the same
// label with another kind (automatic → rollback) is a switch of that label. The other offers
// that differ are paired by slot: the device's main offer (automatic, dynamic, rollback), its
// optional offer, and its extension INFs (by INF name); a pair is a switch, an offer left
// alone is a loss (only in --from) or a gain (only in --to). Changes are grouped by (change,
// labels and kinds on both sides, the verdicts that changed, hardware ID, OS); every count
// is of distinct PCs.
package diff

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/driveway/driveway/offer"
)

// Format is the first field of a Report's JSON: a future incompatible report changes it.
const Format = "driveway diff 1"

// DefaultExamples is how many example devices a change lists when Options.Examples is 0.
const DefaultExamples = 3

// NoExamples, as Options.Examples, lists none.
const NoExamples = -1

// Options configure Run. Now is required; zero values of the others take the defaults.
type Options struct {
	Now      time.Time    // the time both releases are decided at (required: the package never reads the clock)
	Name     string       // the population's name in errors ("pcs.ndjson"); default "population"
	Examples int          // example devices per change; 0: DefaultExamples; NoExamples: none
	Workers  int          // replay goroutines; 0: GOMAXPROCS
	Limits   offer.Limits // limits on each request (a line); zero: offer.DefaultLimits
}

// Report is what changed between two releases for a population, as `driveway diff --json`
// prints it. Counts are of PCs (request lines); PCs == Changed + Unchanged.
type Report struct {
	Format    string    `json:"format"`
	From      Release   `json:"from"`
	To        Release   `json:"to"`
	Now       time.Time `json:"now"`
	PCs       int       `json:"pcs"`       // PCs replayed (non-blank lines)
	Changed   int       `json:"changed"`   // PCs with at least one change
	Unchanged int       `json:"unchanged"` // PCs whose offers are the same in both releases
	Gain      int       `json:"gain"`      // PCs with at least one device that gains an offer
	Lose      int       `json:"lose"`      // … that loses one
	Switch    int       `json:"switch"`    // … that switches one
	Labels    []Label   `json:"labels"`    // every label some change involves, most PCs first
	Changes   []Change  `json:"changes"`   // the changes, most PCs first
}

// Release identifies one side of a diff.
type Release struct {
	Source   string `json:"source,omitempty"` // the catalog directory or label tree, as the caller names it
	Sequence uint64 `json:"sequence"`
	ID       string `json:"id"`
}

// Label counts, for one label, the PCs on which it is gained, lost, switched from and
// switched to.
type Label struct {
	Label      string `json:"labelId"`
	Gain       int    `json:"gain"`
	Lose       int    `json:"lose"`
	SwitchFrom int    `json:"switchFrom"`
	SwitchTo   int    `json:"switchTo"`
}

// The kinds of change.
const (
	KindGain   = "gain"   // an offer only in --to
	KindLose   = "lose"   // an offer only in --from
	KindSwitch = "switch" // an offer in --from replaced by another in --to
)

// Change is one group of device changes, with the PCs that have it.
type Change struct {
	Change     string    `json:"change"` // KindGain, KindLose or KindSwitch
	PCs        int       `json:"pcs"`
	HardwareID string    `json:"hardwareId"` // the device ID the offer matched (--from's for a switch)
	OS         string    `json:"os"`         // the PC's family and OS release, "amd64/client 23H2"
	From       *Offer    `json:"from,omitempty"`
	To         *Offer    `json:"to,omitempty"`
	Examples   []Example `json:"examples"`
}

// Offer is one side of a change: the offer in its release and the verdict its label has in
// the other release ("absent" when the other release has no candidate row of the label for
// the device). From.Verdict is why the offer is gone; To.Verdict is why it was not offered.
type Offer struct {
	Label   string `json:"labelId"`
	Kind    string `json:"kind"`
	Verdict string `json:"verdict"`
}

// Example is one PC with a change: its line in the population, its deviceId, the device and
// the detail of each side's verdict in the other release.
type Example struct {
	Line       int    `json:"line"`
	DeviceID   string `json:"deviceId"`
	InstanceID string `json:"instanceId"`
	FromDetail string `json:"fromDetail,omitempty"` // From.Verdict's detail ("cancelled 2026-11-21T00:00:00Z: PnP errors")
	ToDetail   string `json:"toDetail,omitempty"`   // To.Verdict's detail ("outranked by 1152921504606978202")
}

// Absent is the verdict of a label the other release has no candidate row of for the device.
const Absent = "absent"

// LineError is a population line that is not an offer request the procedure accepts.
type LineError struct {
	Name string       // the population's name
	Line int          // 1-based
	Err  *offer.Error // the request's error (its field is a JSON pointer into the line)
}

func (e *LineError) Error() string {
	return fmt.Sprintf("%s:%d: %s; fix or remove the line (one offer request of docs/offers.md per line)", e.Name, e.Line, e.Err.Error())
}

// Run replays the population in r, one offer request per line (blank lines are skipped),
// against from and to at opts.Now, and reports what changed. A line that is not a valid
// request stops the replay with a *LineError for the first such line.
func Run(from, to *offer.Engine, r io.Reader, opts *Options) (*Report, error) {
	if from == nil || to == nil {
		return nil, errors.New("diff: two engines are required")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Now.IsZero() {
		return nil, errors.New("diff: Options.Now is zero; pass the time to decide at (the caller's clock)")
	}
	if o.Name == "" {
		o.Name = "population"
	}
	switch {
	case o.Examples == 0:
		o.Examples = DefaultExamples
	case o.Examples < 0:
		o.Examples = 0
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Limits.MaxBody <= 0 {
		o.Limits.MaxBody = offer.DefaultLimits.MaxBody
	}

	rp := &replay{from: from, to: to, opts: &o}
	rp.firstErr.Store(int64(^uint64(0) >> 1))
	chunks := make(chan *chunk, o.Workers*2)
	workers := make([]*worker, o.Workers)
	var wg sync.WaitGroup
	for i := range workers {
		w := newWorker(rp)
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range chunks {
				w.run(c)
				rp.free.Put(c)
			}
		}()
	}
	readErr := rp.read(r, chunks)
	close(chunks)
	wg.Wait()

	// The first bad line wins, whoever found it: every chunk before it was replayed.
	var lerr *LineError
	for _, w := range workers {
		if w.err != nil && (lerr == nil || w.err.Line < lerr.Line) {
			lerr = w.err
		}
	}
	if readErr != nil {
		var rl *LineError
		if !errors.As(readErr, &rl) || lerr == nil || rl.Line < lerr.Line {
			return nil, readErr
		}
	}
	if lerr != nil {
		return nil, lerr
	}
	return rp.merge(workers), nil
}

// replay is one Run's shared state.
type replay struct {
	from, to *offer.Engine
	opts     *Options
	free     sync.Pool    // *chunk
	firstErr atomic.Int64 // the lowest line a worker found bad; the reader stops after it
}

// chunk is a run of population lines, in order.
type chunk struct {
	buf   []byte
	lines []line
}

type line struct {
	n          int // 1-based line number
	start, end int // in buf
}

const chunkBytes = 1 << 20 // a chunk holds this much, or chunkLines lines, whichever comes first
const chunkLines = 256

// read splits r into chunks of lines and sends them, in order, until EOF, a line over the
// body limit, or a bad line found by a worker.
func (rp *replay) read(r io.Reader, out chan<- *chunk) error {
	lim := rp.opts.Limits.MaxBody
	br := newLineReader(r, lim)
	c := rp.newChunk()
	flush := func() {
		if len(c.lines) > 0 {
			out <- c
			c = rp.newChunk()
		}
	}
	for n := 1; ; n++ {
		if int64(n) > rp.firstErr.Load() {
			break
		}
		b, err := br.next()
		if err == errLongLine {
			flush()
			return &LineError{Name: rp.opts.Name, Line: n, Err: &offer.Error{Code: offer.CodeLimit,
				Message: fmt.Sprintf("the line is longer than the %d-byte limit of a request body", lim)}}
		}
		if err == io.EOF && b == nil {
			break
		}
		if err != nil && err != io.EOF {
			flush()
			return fmt.Errorf("diff: %s: line %d: %w", rp.opts.Name, n, err)
		}
		if !blank(b) {
			if len(c.lines) == chunkLines || (len(c.buf) > 0 && len(c.buf)+len(b) > chunkBytes) {
				flush()
			}
			start := len(c.buf)
			c.buf = append(c.buf, b...)
			c.lines = append(c.lines, line{n: n, start: start, end: len(c.buf)})
		}
		if err == io.EOF {
			break
		}
	}
	flush()
	return nil
}

func (rp *replay) newChunk() *chunk {
	if c, ok := rp.free.Get().(*chunk); ok {
		c.buf, c.lines = c.buf[:0], c.lines[:0]
		return c
	}
	return &chunk{buf: make([]byte, 0, 64<<10)}
}

func blank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// merge adds up the workers' counts and keeps the first examples of each change.
func (rp *replay) merge(workers []*worker) *Report {
	fs, fid := rp.from.Release()
	ts, tid := rp.to.Release()
	rep := &Report{Format: Format, From: Release{Sequence: fs, ID: fid}, To: Release{Sequence: ts, ID: tid},
		Now: rp.opts.Now.UTC(), Labels: []Label{}, Changes: []Change{}}
	groups := map[groupKey]*group{}
	labels := map[uint64]*Label{}
	for _, w := range workers {
		rep.PCs += w.pcs
		rep.Changed += w.changed
		rep.Gain += w.gain
		rep.Lose += w.lose
		rep.Switch += w.switched
		for k, g := range w.groups {
			m := groups[k]
			if m == nil {
				m = &group{}
				groups[k] = m
			}
			m.pcs += g.pcs
			m.examples = append(m.examples, g.examples...)
		}
		for id, l := range w.labels {
			m := labels[id]
			if m == nil {
				m = &Label{Label: strconv.FormatUint(id, 10)}
				labels[id] = m
			}
			m.Gain += l.Gain
			m.Lose += l.Lose
			m.SwitchFrom += l.SwitchFrom
			m.SwitchTo += l.SwitchTo
		}
	}
	rep.Unchanged = rep.PCs - rep.Changed
	for k, g := range groups {
		slices.SortFunc(g.examples, func(a, b Example) int { return a.Line - b.Line })
		if len(g.examples) > rp.opts.Examples {
			g.examples = g.examples[:rp.opts.Examples]
		}
		c := Change{Change: k.change.String(), PCs: g.pcs, HardwareID: k.hwid, OS: k.os, Examples: g.examples}
		if c.Examples == nil {
			c.Examples = []Example{}
		}
		if k.change != changeGain {
			c.From = &Offer{Label: strconv.FormatUint(k.from, 10), Kind: k.fromKind.String(), Verdict: k.fromVerdict.String()}
		}
		if k.change != changeLose {
			c.To = &Offer{Label: strconv.FormatUint(k.to, 10), Kind: k.toKind.String(), Verdict: k.toVerdict.String()}
		}
		rep.Changes = append(rep.Changes, c)
	}
	slices.SortFunc(rep.Changes, compareChanges)
	for _, l := range labels {
		rep.Labels = append(rep.Labels, *l)
	}
	slices.SortFunc(rep.Labels, func(a, b Label) int {
		if n, m := a.Gain+a.Lose+a.SwitchFrom+a.SwitchTo, b.Gain+b.Lose+b.SwitchFrom+b.SwitchTo; n != m {
			return m - n
		}
		return compareIDs(a.Label, b.Label)
	})
	return rep
}

// compareChanges orders changes by PCs (most first), then by what they are, so that the
// order is the same on every run.
func compareChanges(a, b Change) int {
	if a.PCs != b.PCs {
		return b.PCs - a.PCs
	}
	side := func(o *Offer) [3]string {
		if o == nil {
			return [3]string{}
		}
		return [3]string{o.Label, o.Kind, o.Verdict}
	}
	if n := strings.Compare(a.Change, b.Change); n != 0 {
		return n
	}
	af, bf, at, bt := side(a.From), side(b.From), side(a.To), side(b.To)
	if n := compareIDs(af[0], bf[0]); n != 0 {
		return n
	}
	if n := compareIDs(at[0], bt[0]); n != 0 {
		return n
	}
	for _, p := range [][2]string{{af[1], bf[1]}, {at[1], bt[1]}, {af[2], bf[2]}, {at[2], bt[2]}, {a.HardwareID, b.HardwareID}, {a.OS, b.OS}} {
		if n := strings.Compare(p[0], p[1]); n != 0 {
			return n
		}
	}
	return 0
}

// compareIDs orders decimal label ids numerically ("" first).
func compareIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// Gate is what a pipeline accepts from a diff. The zero Gate accepts everything.
type Gate struct {
	Limited    bool     // MaxChanged applies
	MaxChanged Limit    // the most PCs that may change
	Allowed    []string // when not nil, the only labels that may change (gain, lose or switch on some PC)
}

// Limit is a number of PCs, or a share of the population in percent.
type Limit struct {
	PCs       int
	Percent   float64
	IsPercent bool
}

// ParseLimit reads a limit as a flag gives it: "5%" (a share of the population, 0% to 100%)
// or "500" (PCs).
func ParseLimit(s string) (Limit, error) {
	t := strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(t, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || f < 0 || f > 100 || f != f {
			return Limit{}, fmt.Errorf("%q is not a percent from 0%% to 100%% (like 5%%) or a number of PCs (like 500)", s)
		}
		return Limit{Percent: f, IsPercent: true}, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 {
		return Limit{}, fmt.Errorf("%q is not a number of PCs (like 500) or a percent from 0%% to 100%% (like 5%%)", s)
	}
	return Limit{PCs: n}, nil
}

// String formats the limit as ParseLimit reads it.
func (l Limit) String() string {
	if l.IsPercent {
		return strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(l.Percent, 'f', 4, 64), "0"), ".") + "%"
	}
	return strconv.Itoa(l.PCs)
}

// Exceeded reports whether changed of total PCs is beyond the limit.
func (l Limit) Exceeded(changed, total int) bool {
	if l.IsPercent {
		return float64(changed)*100 > l.Percent*float64(total)
	}
	return changed > l.PCs
}

// Check returns why the report is outside the gate, one sentence each; none when within.
func (r *Report) Check(g Gate) []string {
	var reasons []string
	if g.Limited && g.MaxChanged.Exceeded(r.Changed, r.PCs) {
		reasons = append(reasons, fmt.Sprintf("%s of %s PCs change (%s), more than the limit of %s",
			count(r.Changed), count(r.PCs), Percent(r.Changed, r.PCs), g.MaxChanged.describe(r.PCs)))
	}
	if g.Allowed != nil {
		var outside []string
		for _, l := range r.Labels {
			if !slices.Contains(g.Allowed, l.Label) {
				outside = append(outside, l.Label)
			}
		}
		if len(outside) > 0 {
			const most = 10
			slices.SortFunc(outside, compareIDs)
			list := strings.Join(outside[:min(len(outside), most)], ", ")
			if len(outside) > most {
				list += fmt.Sprintf(" and %d more", len(outside)-most)
			}
			reasons = append(reasons, fmt.Sprintf("%d labels outside the allowed ones change: %s", len(outside), list))
		}
	}
	return reasons
}

// describe says the limit with what it means for a population of total PCs.
func (l Limit) describe(total int) string {
	if l.IsPercent {
		return fmt.Sprintf("%s (%s PCs)", l, count(int(l.Percent*float64(total)/100)))
	}
	return count(l.PCs) + " PCs"
}

// Percent formats n of total as a percent with up to two decimals ("0.37%", "100%").
func Percent(n, total int) string {
	if total == 0 {
		return "0%"
	}
	s := strconv.FormatFloat(float64(n)*100/float64(total), 'f', 2, 64)
	if n > 0 && s == "0.00" {
		return "<0.01%"
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".") + "%"
}

// count formats n with thousands separators.
func count(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}
