package compiled

import (
	"encoding/json"
	"fmt"
	"time"
)

// Control is the control table a release carries in its signed manifest, as JSON: the state
// that changes what devices get without changing the shards. Pausing, advancing or
// cancelling a rollout, approving a flight or adding a block is a new manifest over the same
// shards.
//
// Only labels whose state is not "fully live" have an entry. A label without one is offered
// at 100% with no flight restriction and is not cancelled. A label is fully live when, at
// the release's creation time, it has no rollout or a finished one (every stage passed, the
// last at 100%, not paused), no running flight (none, or approved), is not co-engineered or
// flight-signed (those never leave the flight), and is not cancelled. The edge evaluates
// entries at request time, so a stage or a cancel in the future takes effect by itself.
//
// Versions. Version 1 (no "version" member) is the table above. Version 2 adds a rollout's
// "clusters", an even first ring's per-cluster thresholds (Rollout.Clusters), and is
// written only when a rollout has clusters. An edge that knows version 1 alone reads a
// version 2 table as version 1 (JSON members it does not know are ignored): it offers the
// label at the stages' percent, to fewer devices than the ring asks and never to more, so a
// release with a first ring is safe on an old edge. An edge refuses a table of a version it
// does not know (CheckVersion).
type Control struct {
	Version   int            `json:"version,omitempty"` // 0 or 1: version 1; 2: clusters
	Labels    []LabelControl `json:"labels"`            // by label id, numerically
	Blocks    []Block        `json:"blocks"`            // blocks.json
	Audiences []Audience     `json:"audiences"`         // audiences.json, or the built-in Test Registry Key
}

// LabelControl is the control entry of one label.
type LabelControl struct {
	Label     string     `json:"label"`
	Flight    *Flight    `json:"flight,omitempty"`
	Rollout   *Rollout   `json:"rollout,omitempty"`
	Cancelled *Cancelled `json:"cancelled,omitempty"`
}

// Flight restricts a label to Windows Insider channels until it is approved.
type Flight struct {
	Channels []string  `json:"channels"`
	Start    time.Time `json:"start"`
	Approved time.Time `json:"approved,omitzero"`
}

// Rollout is a gradual-rollout throttle: the percent of the last stage whose time has passed.
type Rollout struct {
	Stages []Stage `json:"stages"`
	Paused bool    `json:"paused,omitempty"`
	// Clusters (version 2): a device of a cluster is in the rollout while its bucket is below
	// the larger of the stages' percent and its cluster's, once the first stage has begun
	// and while not paused. The controller only raises a cluster's percent, so buckets stay
	// sticky.
	Clusters []ClusterStage `json:"clusters,omitempty"`
}

// ClusterStage is one targeting cluster's threshold: devices with CHID at any level, on a
// build in [MinBuild, MaxBuild] (0: unbounded) and, when HardwareID is set, matched by that
// (normalised) hardware ID.
type ClusterStage struct {
	CHID        string `json:"chid"`
	MinBuild    int    `json:"minBuild,omitempty"`
	MaxBuild    int    `json:"maxBuild,omitempty"`
	HardwareID  string `json:"hardwareId,omitempty"`
	BasisPoints int    `json:"basisPoints"`
}

// ControlVersion is the newest control table version this build reads and writes.
const ControlVersion = 2

// MarshalJSON writes the table with the version its content needs: 2 when a rollout has
// clusters, none (version 1) otherwise.
func (c Control) MarshalJSON() ([]byte, error) {
	type plain Control
	out := plain(c)
	out.Version = 0
	for _, l := range c.Labels {
		if l.Rollout != nil && len(l.Rollout.Clusters) > 0 {
			out.Version = 2
		}
	}
	return json.Marshal(out)
}

// CheckVersion refuses a control table of a version this build does not know.
func (c *Control) CheckVersion() error {
	if c.Version > ControlVersion {
		return fmt.Errorf("control table version %d: this build knows versions up to %d; upgrade the edge", c.Version, ControlVersion)
	}
	return nil
}

// Stage is one step of a rollout, in basis points (0–10000: 2500 is 25%).
type Stage struct {
	At          time.Time `json:"at"`
	BasisPoints int       `json:"basisPoints"`
}

// Cancelled expires a label from At on; with Rollback, devices that have its driver are
// offered the best remaining one.
type Cancelled struct {
	At       time.Time `json:"at"`
	Rollback bool      `json:"rollback,omitempty"`
	Reason   string    `json:"reason,omitempty"`
}

// Block is a hold: every present condition must match (list fields: any element).
type Block struct {
	ID          string   `json:"id"`
	Reason      string   `json:"reason,omitempty"`
	Labels      []string `json:"labels,omitempty"`
	HardwareIDs []string `json:"hardwareIds,omitempty"` // normalised
	CHIDs       []string `json:"chids,omitempty"`
	MinBuild    int      `json:"minBuild,omitempty"`
	MaxBuild    int      `json:"maxBuild,omitempty"`
}

// Audience is a device audience: a device is in it when its request carries TargetRing as
// its targetRing, or names Audience among its audiences.
type Audience struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	TargetRing string `json:"targetRing,omitempty"`
	Audience   string `json:"audience,omitempty"`
}

// Percent returns the rollout's percent at a time, in basis points: the last stage whose
// time has passed (0 before the first), 0 when paused.
func (r *Rollout) Percent(now time.Time) int {
	if r.Paused {
		return 0
	}
	return r.Scheduled(now)
}

// Scheduled is the percent the stages give at a time, ignoring a pause.
func (r *Rollout) Scheduled(now time.Time) int {
	bp := 0
	for _, s := range r.Stages {
		if now.Before(s.At) {
			break
		}
		bp = s.BasisPoints
	}
	return bp
}

// Done reports whether a rollout has finished by a time: every stage passed, the last at
// 100%, not paused.
func (r *Rollout) Done(now time.Time) bool {
	return !r.Paused && len(r.Stages) > 0 && r.Scheduled(now) == 10000 && !now.Before(r.Stages[len(r.Stages)-1].At)
}
