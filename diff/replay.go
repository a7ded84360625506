package diff

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"

	"github.com/driveway/driveway/offer"
)

// worker replays chunks of the population against both releases. It belongs to one
// goroutine: its Decoder, Request and Results are reused for every line.
type worker struct {
	rp  *replay
	dec *offer.Decoder
	req offer.Request
	a   offer.Result // --from
	b   offer.Result // --to

	pcs, changed, gain, lose, switched int
	groups                             map[groupKey]*group
	labels                             map[uint64]*Label
	err                                *LineError // the first bad line this worker saw

	// per changed PC, kept for their capacity
	events []event
	keys   []groupKey
	roles  []labelRole
	resp   []byte
}

// group is a worker's count of one change, with its first examples.
type group struct {
	pcs      int
	examples []Example
}

type changeKind uint8

const (
	changeGain changeKind = iota
	changeLose
	changeSwitch
)

func (c changeKind) String() string { return [...]string{KindGain, KindLose, KindSwitch}[c] }

// verdict is an offer.Verdict, or absentVerdict.
type verdict int16

const absentVerdict verdict = -1

func (v verdict) String() string {
	if v == absentVerdict {
		return Absent
	}
	return offer.Verdict(v).String()
}

// groupKey is what a Change is grouped by. Fields of a side the change does not have are
// zero.
type groupKey struct {
	change                 changeKind
	from, to               uint64
	fromKind, toKind       offer.Kind
	fromVerdict, toVerdict verdict
	hwid, os               string
}

// event is one device's change: offers in a and b (nil for the side it lacks), the
// verdicts of their labels in the other release and the candidates those come from (-1:
// absent), for the examples' details.
type event struct {
	change                 changeKind
	device                 int
	from, to               *offer.Offer
	fromVerdict, toVerdict verdict
	fromCand, toCand       int // in b.Cands, a.Cands
}

// labelRole is one label's part in a PC's changes.
type labelRole struct {
	label uint64
	role  uint8 // roleGain, …
}

const (
	roleGain = iota
	roleLose
	roleSwitchFrom
	roleSwitchTo
)

func newWorker(rp *replay) *worker {
	return &worker{rp: rp, dec: offer.NewDecoder(rp.opts.Limits), groups: map[groupKey]*group{}, labels: map[uint64]*Label{}}
}

// run replays one chunk.
func (w *worker) run(c *chunk) {
	now := w.rp.opts.Now
	for _, ln := range c.lines {
		if int64(ln.n) > w.rp.firstErr.Load() || w.err != nil {
			return // a line before this one is bad: the rest does not count
		}
		if perr := w.dec.Decode(c.buf[ln.start:ln.end], &w.req); perr != nil {
			w.err = &LineError{Name: w.rp.opts.Name, Line: ln.n, Err: perr}
			for {
				cur := w.rp.firstErr.Load()
				if int64(ln.n) >= cur || w.rp.firstErr.CompareAndSwap(cur, int64(ln.n)) {
					break
				}
			}
			return
		}
		w.pcs++
		w.rp.from.Decide(&w.req, now, false, &w.a)
		w.rp.to.Decide(&w.req, now, false, &w.b)
		if sameOffers(w.a.Offers, w.b.Offers) {
			continue
		}
		// Changed: decide again with explain, for the verdicts.
		w.rp.from.Decide(&w.req, now, true, &w.a)
		w.rp.to.Decide(&w.req, now, true, &w.b)
		w.changedPC(ln.n)
	}
}

// sameOffers reports whether two answers offer the same labels, as the same kinds, to the
// same devices.
func sameOffers(a, b []offer.Offer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Device != b[i].Device || a[i].Label != b[i].Label || a[i].Kind != b[i].Kind {
			return false
		}
	}
	return true
}

// changedPC records the changes of the PC just decided with explain (line n).
func (w *worker) changedPC(n int) {
	w.events = w.events[:0]
	for d := range w.req.Devices {
		w.deviceEvents(d)
	}
	if len(w.events) == 0 {
		return
	}
	w.changed++
	osName := w.osName()
	var gain, lose, switched bool
	var fromDetails, toDetails []string // the explain details, decoded only for examples
	w.keys, w.roles = w.keys[:0], w.roles[:0]
	for i := range w.events {
		ev := &w.events[i]
		k := groupKey{change: ev.change, os: osName}
		switch ev.change {
		case changeGain:
			gain = true
			w.role(ev.to.Label, roleGain)
		case changeLose:
			lose = true
			w.role(ev.from.Label, roleLose)
		case changeSwitch:
			switched = true
			w.role(ev.from.Label, roleSwitchFrom)
			w.role(ev.to.Label, roleSwitchTo)
		}
		if ev.from != nil {
			k.from, k.fromKind, k.fromVerdict, k.hwid = ev.from.Label, ev.from.Kind, ev.fromVerdict, string(ev.from.HardwareID)
		}
		if ev.to != nil {
			k.to, k.toKind, k.toVerdict = ev.to.Label, ev.to.Kind, ev.toVerdict
			if ev.from == nil {
				k.hwid = string(ev.to.HardwareID)
			}
		}
		if slices.Contains(w.keys, k) {
			continue // a PC counts once per change
		}
		w.keys = append(w.keys, k)
		g := w.groups[k]
		if g == nil {
			g = &group{}
			w.groups[k] = g
		}
		g.pcs++
		if len(g.examples) < w.rp.opts.Examples {
			if fromDetails == nil {
				fromDetails = w.details(&w.b, w.rp.to)
				toDetails = w.details(&w.a, w.rp.from)
			}
			ex := Example{Line: n, DeviceID: string(w.req.DeviceID), InstanceID: string(w.req.Devices[ev.device].InstanceID)}
			if ev.from != nil && ev.fromCand >= 0 && ev.fromCand < len(fromDetails) {
				ex.FromDetail = fromDetails[ev.fromCand]
			}
			if ev.to != nil && ev.toCand >= 0 && ev.toCand < len(toDetails) {
				ex.ToDetail = toDetails[ev.toCand]
			}
			g.examples = append(g.examples, ex)
		}
	}
	for _, r := range w.roles {
		l := w.labels[r.label]
		if l == nil {
			l = &Label{Label: strconv.FormatUint(r.label, 10)}
			w.labels[r.label] = l
		}
		switch r.role {
		case roleGain:
			l.Gain++
		case roleLose:
			l.Lose++
		case roleSwitchFrom:
			l.SwitchFrom++
		case roleSwitchTo:
			l.SwitchTo++
		}
	}
	if gain {
		w.gain++
	}
	if lose {
		w.lose++
	}
	if switched {
		w.switched++
	}
}

// role notes a label's part in the PC's changes, once.
func (w *worker) role(label uint64, role uint8) {
	r := labelRole{label, role}
	for _, o := range w.roles {
		if o == r {
			return
		}
	}
	w.roles = append(w.roles, r)
}

// osName is the PC's family and the OS release it is judged on ("amd64/client 23H2"): its
// target build in an upgrade scan.
func (w *worker) osName() string {
	build := w.req.Build
	if w.req.Scan == offer.ScanUpgrade {
		build = w.req.TargetBuild
	}
	tab := w.rp.to.OS()
	name := "build " + strconv.FormatUint(uint64(build), 10)
	if s, ok := tab.SlotOf(int(build)); ok {
		name = tab.SlotName(s)
	}
	return w.req.Family.String() + " " + name
}

// deviceEvents appends device d's changes between w.a and w.b.
func (w *worker) deviceEvents(d int) {
	fromOffers, toOffers := deviceOffers(w.a.Offers, d), deviceOffers(w.b.Offers, d)
	if len(fromOffers) == 0 && len(toOffers) == 0 {
		return
	}
	// Pair what stayed, then the same label as another kind, then by slot. At most a few
	// offers a device: quadratic is fine.
	var usedA, usedB [64]bool
	if len(fromOffers) > len(usedA) || len(toOffers) > len(usedB) {
		fromOffers, toOffers = fromOffers[:min(len(fromOffers), len(usedA))], toOffers[:min(len(toOffers), len(usedB))]
	}
	pair := func(match func(a, b *offer.Offer) bool, emit bool) {
		for i := range fromOffers {
			if usedA[i] {
				continue
			}
			for j := range toOffers {
				if usedB[j] || !match(&fromOffers[i], &toOffers[j]) {
					continue
				}
				usedA[i], usedB[j] = true, true
				if emit {
					w.addEvent(changeSwitch, d, &fromOffers[i], &toOffers[j])
				}
				break
			}
		}
	}
	pair(func(a, b *offer.Offer) bool { return a.Label == b.Label && a.Kind == b.Kind }, false)
	pair(func(a, b *offer.Offer) bool { return a.Label == b.Label }, true)
	pair(func(a, b *offer.Offer) bool { return sameSlot(a, b) }, true)
	for i := range fromOffers {
		if !usedA[i] {
			w.addEvent(changeLose, d, &fromOffers[i], nil)
		}
	}
	for j := range toOffers {
		if !usedB[j] {
			w.addEvent(changeGain, d, nil, &toOffers[j])
		}
	}
}

// deviceOffers is the run of offers of device d (offers come in device order).
func deviceOffers(offers []offer.Offer, d int) []offer.Offer {
	i := 0
	for i < len(offers) && offers[i].Device < d {
		i++
	}
	j := i
	for j < len(offers) && offers[j].Device == d {
		j++
	}
	return offers[i:j]
}

// sameSlot reports whether two offers to a device take the same place: its main driver
// (automatic, dynamic, rollback), its optional driver, or an extension INF of one name.
func sameSlot(a, b *offer.Offer) bool {
	slot := func(k offer.Kind) int {
		switch k {
		case offer.KindExtension:
			return 2
		case offer.KindOptional:
			return 1
		}
		return 0
	}
	if slot(a.Kind) != slot(b.Kind) {
		return false
	}
	return a.Kind != offer.KindExtension || bytes.EqualFold(a.INF, b.INF)
}

// addEvent appends a change with the verdicts of its labels in the other release.
func (w *worker) addEvent(c changeKind, d int, from, to *offer.Offer) {
	ev := event{change: c, device: d, from: from, to: to, fromCand: -1, toCand: -1}
	if from != nil {
		ref := offeredCand(w.a.Cands, d, from)
		ev.fromVerdict, ev.fromCand = verdictOf(w.b.Cands, d, from.Label, ref)
	}
	if to != nil {
		ref := offeredCand(w.b.Cands, d, to)
		ev.toVerdict, ev.toCand = verdictOf(w.a.Cands, d, to.Label, ref)
	}
	w.events = append(w.events, ev)
}

// offeredCand returns the candidate an offer was made from (nil if none is found).
func offeredCand(cands []offer.Candidate, d int, o *offer.Offer) *offer.Candidate {
	var some *offer.Candidate
	for i := range cands {
		c := &cands[i]
		if c.Device != d || c.Label != o.Label || c.Verdict != offer.Offered {
			continue
		}
		if bytes.Equal(c.HardwareID, o.HardwareID) {
			return c
		}
		if some == nil {
			some = c
		}
	}
	return some
}

// verdictOf returns a label's verdict for device d among cands, and its index: the verdict of
// the row that matches ref (the same hardware ID and OS row in the other release), else of
// the label's offered row, else of its first row for the device's OS family and release,
// else of its first row; absent when the label has no candidate row for the device.
func verdictOf(cands []offer.Candidate, d int, label uint64, ref *offer.Candidate) (verdict, int) {
	first, inOS := -1, -1
	for i := range cands {
		c := &cands[i]
		if c.Device != d || c.Label != label {
			continue
		}
		if ref != nil && bytes.Equal(c.HardwareID, ref.HardwareID) && c.Row.Family == ref.Row.Family && c.Row.Slot == ref.Row.Slot {
			return verdict(c.Verdict), i
		}
		if c.Verdict == offer.Offered {
			return verdict(c.Verdict), i
		}
		if first < 0 {
			first = i
		}
		if inOS < 0 && c.Verdict != offer.OSFamily {
			inOS = i
		}
	}
	switch {
	case inOS >= 0:
		return verdict(cands[inOS].Verdict), inOS
	case first >= 0:
		return verdict(cands[first].Verdict), first
	}
	return absentVerdict, -1
}

// details returns the one-line detail of every candidate of res, in res.Cands order, as the
// explain output words it. Only examples need them.
func (w *worker) details(res *offer.Result, e *offer.Engine) []string {
	w.resp = offer.AppendResponse(w.resp[:0], &w.req, res, e.OS())
	var doc struct {
		Explain []struct {
			Candidates []struct {
				Detail string `json:"detail"`
			} `json:"candidates"`
		} `json:"explain"`
	}
	out := []string{}
	if json.Unmarshal(w.resp, &doc) != nil {
		return out
	}
	for _, dev := range doc.Explain {
		for _, c := range dev.Candidates {
			out = append(out, c.Detail)
		}
	}
	return out
}

// lineReader reads a population line by line, refusing a line over the body limit without
// reading it whole.
type lineReader struct {
	br  *bufio.Reader
	lim int
}

var errLongLine = errors.New("diff: line over the limit")

func newLineReader(r io.Reader, lim int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, lim+2), lim: lim}
}

// next returns the next line without its line ending, valid until the next call. At the end
// it returns io.EOF, with the last line when that has no newline.
func (l *lineReader) next() ([]byte, error) {
	b, err := l.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, errLongLine
	case err == io.EOF:
		if len(b) == 0 {
			return nil, io.EOF
		}
	case err != nil:
		return nil, err
	default:
		b = b[:len(b)-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	if len(b) > l.lim {
		return nil, errLongLine
	}
	return b, err
}
