package rollout

// Expedite and the audit log.
//
// An operator may move a healthy label in gradual rollout to 100% at once (the gradual
// rollout FAQ's most asked question): Expedite checks it as the controller would advance it
// (in rollout, not paused or cancelled, enough machines, every advance bound met and no
// pause or cancel bound broken, shown or suspected) and decides "expedite" to 100% now,
// recorded with who and why: a 100% stage from now, in place of the publisher's stages still
// to come. Force skips the health check (a fix the publisher must ship), and the record
// says so.
//
// The audit log is an append-only NDJSON file (AppendAudit) of every decision that changed
// a label, the controller's and operators' alike:
//
//	{"time":"2026-11-21T12:00:00Z","label":"3009","action":"expedite","fromBasisPoints":500,
//	 "toBasisPoints":10000,"reason":"expedited: the fix for …","by":"alice@example.com"}

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/driveway/driveway/catalogs"
)

// Expedited is the action of an expedite decision.
const Expedited Action = "expedite"

// ExpediteOptions say who expedites and why; both are required. Force skips the health
// check.
type ExpediteOptions struct {
	By, Reason string
	Force      bool
}

// Expedite decides to move label id of tree to 100% at now (see the file's comment), or says
// why it will not.
func Expedite(tree *catalogs.Tree, id string, measures *Measures, policy *Policy, now time.Time, o ExpediteOptions) (Decision, error) {
	if o.By == "" || o.Reason == "" {
		return Decision{}, errors.New("rollout: an expedite needs who (--by) and why (--reason): both are recorded")
	}
	var l *catalogs.Label
	for _, x := range tree.Labels() {
		if x.ID == id {
			l = x
		}
	}
	switch {
	case l == nil:
		return Decision{}, fmt.Errorf("rollout: label %s is not in the tree", id)
	case l.Distribution.Rollout == nil || len(l.Distribution.Rollout.Stages) == 0:
		return Decision{}, fmt.Errorf("rollout: label %s has no gradual rollout to expedite", id)
	case l.Distribution.Cancelled != nil && !now.Before(l.Distribution.Cancelled.At):
		return Decision{}, fmt.Errorf("rollout: label %s is cancelled: publish a new driver instead", id)
	case l.Distribution.Rollout.Paused:
		return Decision{}, fmt.Errorf("rollout: label %s is paused: clear distribution.rollout.paused once its problem is understood, then expedite", id)
	}
	r := l.Distribution.Rollout
	cur := scheduled(r, now)
	if cur >= 10000 {
		return Decision{}, fmt.Errorf("rollout: label %s is at 100%% already", id)
	}
	reason := "expedited: " + o.Reason
	if !o.Force {
		// The controller's own view of the label, without its dwell and the publisher's
		// stages still to come.
		stripped := *policy.For(labelClass(l))
		stripped.MinDwell = Duration{}
		d, ok := stepLabel(l, measures, &stripped, now, true)
		switch {
		case !ok:
			return Decision{}, fmt.Errorf("rollout: label %s is not in rollout at %s", id, now.UTC().Format(time.RFC3339))
		case d.Action != Advance:
			return Decision{}, fmt.Errorf("rollout: label %s is not healthy enough to expedite (%s: %s); --force to expedite anyway, recorded as forced", id, d.Action, d.Reason)
		}
		reason += " (healthy: " + d.Reason + ")"
	} else {
		reason += " (forced: health not checked)"
	}
	next := cloneDistribution(l.Distribution)
	kept := next.Rollout.Stages[:0] // the publisher's later stages give way to 100% now
	for _, st := range next.Rollout.Stages {
		if !now.Before(st.At) {
			kept = append(kept, st)
		}
	}
	next.Rollout.Stages = append(kept, catalogs.Stage{At: now, BasisPoints: 10000})
	return Decision{Label: id, Action: Expedited, From: cur, To: 10000, Reason: reason, By: o.By, dist: next, file: l.File}, nil
}

// AuditRecord is one line of the audit log.
type AuditRecord struct {
	Time time.Time `json:"time"`
	Decision
}

// AppendAudit appends the decisions that change a label to the audit log at path (created if
// missing), one JSON line each, and syncs it.
func AppendAudit(path string, decisions []Decision, now time.Time) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("rollout: audit log: %w", err)
	}
	var b []byte
	for _, d := range decisions {
		if !d.Changed() {
			continue
		}
		line, _ := json.Marshal(AuditRecord{Time: now.UTC(), Decision: d})
		b = append(append(b, line...), '\n')
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("rollout: audit log %s: %w", path, err)
	}
	return nil
}
