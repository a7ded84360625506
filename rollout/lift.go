package rollout

// Lifting targeted holds, and the lifts file.
//
// A targeted hold (HoldCohort) is a block in blocks.json whose reason starts with
// "rollout controller: held cohort". It is lifted
//
//   - by the controller, at a step, when a newer driver for that cohort is live: another
//     Windows Update label that targets one of the held label's hardware IDs with a newer
//     driver (date, then version), is past its go-live, fully live at the step's time (no
//     rollout, or a finished one; no flight still running; not cancelled) and not itself held
//     or blocked for that cohort. Devices of the cohort are then offered that driver, and the
//     block has nothing left to stop;
//   - by an operator (Lift, `driveway rollout lift`), recorded with who and why.
//
// Either way the decision is "lift-cohort": Apply removes the block from blocks.json and
// appends a record to the tree's lifts.json, which the controller reads at every step (Step
// with StepInputs.Lifts, LoadLifts): a cohort whose hold of a label was lifted is not held
// alone again for that label (its machines rejoin the label's measure, so a label-wide
// problem still pauses or cancels it). lifts.json is the controller's record, not
// published to edges (build does not read it):
//
//	[
//	  {"blockId": "712345678901234567", "label": "1152921504606990032", "release": "24H2",
//	   "chid": "6b2f3c1e-…", "at": "2026-12-09T06:00:00Z", "by": "alice@example.com",
//	   "reason": "the crashes were the OEM's BIOS 1.07, fixed by 1.08"}
//	]
//
// "by" is "rollout controller" for an automatic lift, whose reason names the newer label.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/internal/atomicfile"
)

// LiftCohort is the action of lifting a targeted hold (Decision.BlockID, Decision.Lift).
const LiftCohort Action = "lift-cohort"

// liftsFile is the tree's lifts file, relative to it.
const liftsFile = "lifts.json"

// holdPrefix starts the reason of every block the controller's targeted holds add.
const holdPrefix = "rollout controller: held cohort "

// ControllerName is the "by" of the controller's own lifts.
const ControllerName = "rollout controller"

// Lift is one record of lifts.json (see the file's comment).
type Lift struct {
	BlockID string    `json:"blockId"`
	Label   string    `json:"label"`
	Release string    `json:"release"`
	CHID    string    `json:"chid"`
	At      time.Time `json:"at"`
	By      string    `json:"by"`
	Reason  string    `json:"reason"`
}

// LoadLifts reads the lifts file of the tree at dir; a missing file is no lifts.
func LoadLifts(dir string) ([]Lift, error) {
	path := filepath.Join(dir, liftsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	lifts, err := ParseLifts(b)
	if err != nil {
		return nil, fmt.Errorf("rollout: %s: %w", path, err)
	}
	return lifts, nil
}

// ParseLifts reads the bytes of a lifts file: a JSON array of records, each with a
// blockId and a label; unknown members are errors.
func ParseLifts(b []byte) ([]Lift, error) {
	var lifts []Lift
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lifts); err != nil {
		return nil, fmt.Errorf("lifts: %w (want a JSON array of {blockId, label, release, chid, at, by, reason})", err)
	}
	if dec.More() {
		return nil, errors.New("lifts: data after the array")
	}
	for i, l := range lifts {
		if l.BlockID == "" || l.Label == "" {
			return nil, fmt.Errorf("lifts: record %d: blockId and label are required", i)
		}
	}
	return lifts, nil
}

// heldCohort is a controller's targeted hold found in the tree's blocks.
type heldCohort struct {
	block          *catalogs.Block
	label          string
	release, chid  string
	minBuild, maxB int
}

// controllerHolds are the tree's blocks that are the controller's targeted holds.
func controllerHolds(tree *catalogs.Tree) []heldCohort {
	var out []heldCohort
	for i := range tree.Blocks {
		b := &tree.Blocks[i]
		if !strings.HasPrefix(b.Reason, holdPrefix) || len(b.Labels) != 1 {
			continue
		}
		h := heldCohort{block: b, label: b.Labels[0], minBuild: b.MinBuild, maxB: b.MaxBuild}
		// "held cohort REL/CHID of label …"
		rest := strings.TrimPrefix(b.Reason, holdPrefix)
		if sp := strings.IndexByte(rest, ' '); sp > 0 {
			if rel, c, ok := strings.Cut(rest[:sp], "/"); ok {
				h.release, h.chid = rel, c
			}
		}
		out = append(out, h)
	}
	return out
}

// LiftOptions say who lifts a hold and why; both are required.
type LiftOptions struct{ By, Reason string }

// Lift decides to lift the targeted hold whose block id is blockID, as an operator's
// decision recorded with who and why (see the file's comment).
func LiftHold(tree *catalogs.Tree, blockID string, now time.Time, o LiftOptions) (Decision, error) {
	if o.By == "" || o.Reason == "" {
		return Decision{}, errors.New("rollout: a lift needs who (--by) and why (--reason): both are recorded")
	}
	for _, h := range controllerHolds(tree) {
		if h.block.ID == blockID {
			return liftDecision(h, now, o.By, "lifted: "+o.Reason), nil
		}
	}
	for _, b := range tree.Blocks {
		if b.ID == blockID {
			return Decision{}, fmt.Errorf("rollout: block %s is not a hold of the rollout controller (its reason does not start %q); edit blocks.json to remove it", blockID, strings.TrimSpace(holdPrefix))
		}
	}
	return Decision{}, fmt.Errorf("rollout: no block %s in the tree's blocks.json (driveway rollout step --json lists the holds' blockId)", blockID)
}

func liftDecision(h heldCohort, now time.Time, by, reason string) Decision {
	return Decision{Label: h.label, Action: LiftCohort, Reason: reason, By: by, BlockID: h.block.ID, file: liftsFile,
		Lift: &Lift{BlockID: h.block.ID, Label: h.label, Release: h.release, CHID: h.chid, At: now.UTC(), By: by, Reason: reason}}
}

// autoLifts are the lifts of the holds for whose cohort a newer driver is live at now.
func (st *stepper) autoLifts(now time.Time) []Decision {
	var out []Decision
	labels := st.tree.Labels()
	for _, h := range controllerHolds(st.tree) {
		var held *catalogs.Label
		for _, l := range labels {
			if l.ID == h.label {
				held = l
			}
		}
		if held == nil {
			continue
		}
		for _, l := range labels {
			if l.ID == held.ID || !fullyLive(l, now) || !sharesHWID(l, held) || !newerDriver(l, held) || st.blockedFor(l.ID, h) {
				continue
			}
			inf := driverOf(l)
			out = append(out, liftDecision(h, now, ControllerName, fmt.Sprintf("a newer driver for cohort %s/%s is live: label %s (%s, %s); hold lifted",
				h.release, h.chid, l.ID, inf.VersionText, inf.DateText)))
			break
		}
	}
	return out
}

// blockedFor reports whether a block of the tree names label id and the held cohort's CHID
// (or no CHID) over builds that overlap the cohort's.
func (st *stepper) blockedFor(id string, h heldCohort) bool {
	for _, b := range st.tree.Blocks {
		if len(b.Labels) > 0 && !slices.Contains(b.Labels, id) {
			continue
		}
		if len(b.Labels) == 0 && len(b.CHIDs) == 0 && len(b.HardwareIDs) == 0 && b.MinBuild == 0 && b.MaxBuild == 0 {
			continue // names nothing: not a block of this cohort (the loader refuses it anyway)
		}
		chidHit := len(b.CHIDs) == 0
		for _, c := range b.CHIDs {
			if c.String() == h.chid {
				chidHit = true
			}
		}
		overlap := (b.MaxBuild == 0 || h.minBuild == 0 || b.MaxBuild >= h.minBuild) && (b.MinBuild == 0 || h.maxB == 0 || b.MinBuild <= h.maxB)
		if chidHit && overlap && len(b.HardwareIDs) == 0 {
			return true
		}
	}
	return false
}

// fullyLive reports whether label l is offered to every device it targets at now: a
// Windows Update label past its go-live with a live row, no rollout or a finished one, no
// flight still running, not cancelled.
func fullyLive(l *catalogs.Label, now time.Time) bool {
	d := l.Distribution
	switch {
	case !l.Live() || l.Publishing == nil || now.Before(l.Publishing.GoLive) || len(l.Audiences) > 0:
		return false
	case d.Cancelled != nil:
		return false
	case d.Flight != nil && (d.Flight.Approved.IsZero() || now.Before(d.Flight.Approved)):
		return false
	case d.Rollout != nil && (d.Rollout.Paused || scheduled(d.Rollout, now) < 10000):
		return false
	}
	return true
}

// sharesHWID reports whether a and b have a live row of the same hardware ID.
func sharesHWID(a, b *catalogs.Label) bool {
	for _, ra := range a.Rows {
		for _, rb := range b.Rows {
			if ra.Live() && rb.Live() && ra.HWID == rb.HWID {
				return true
			}
		}
	}
	return false
}

// driverOf is the INF of a label's first live row (an empty INF when it has none).
func driverOf(l *catalogs.Label) *catalogs.INF {
	for _, r := range l.Rows {
		if inf := l.Submission.INF(r.Bundle, r.INF); inf != nil && r.Live() {
			return inf
		}
	}
	return &catalogs.INF{}
}

// newerDriver reports whether a's driver is newer than b's: a later date, or the same date
// and a higher version (the order in which Windows Update ranks drivers).
func newerDriver(a, b *catalogs.Label) bool {
	x, y := driverOf(a), driverOf(b)
	if x.Date != y.Date {
		return x.Date > y.Date
	}
	return x.Version > y.Version
}

// appendLifts adds records to the lifts file (created when missing), rewritten atomically.
func appendLifts(path string, add []Lift) error {
	var lifts []Lift
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if lifts, err = ParseLifts(b); err != nil {
			return fmt.Errorf("rollout: %s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("rollout: %w", err)
	}
	lifts = append(lifts, add...)
	out, err := json.MarshalIndent(lifts, "", "  ")
	if err != nil {
		return fmt.Errorf("rollout: %s: %w", path, err)
	}
	if err := atomicfile.Write(path, append(out, '\n'), 0o644); err != nil {
		return fmt.Errorf("rollout: %w", err)
	}
	return nil
}

// removeBlocks takes the entries whose id is in ids out of a blocks.json (its other entries
// kept as written, re-indented).
func removeBlocks(path string, ids map[string]bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("rollout: %w", err)
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(b, &entries); err != nil {
		return fmt.Errorf("rollout: %s: %w", path, err)
	}
	kept := entries[:0]
	for _, e := range entries {
		var x struct {
			ID json.Number `json:"id"`
		}
		if json.Unmarshal(e, &x) == nil && ids[x.ID.String()] {
			continue
		}
		kept = append(kept, e)
	}
	out, err := json.MarshalIndent(kept, "", "  ")
	if err != nil {
		return fmt.Errorf("rollout: %s: %w", path, err)
	}
	if err := atomicfile.Write(path, append(out, '\n'), 0o644); err != nil {
		return fmt.Errorf("rollout: %w", err)
	}
	return nil
}
