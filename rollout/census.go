package rollout

// Census file.
//
// A census counts the machines a label's rollout can reach, as a whole and per targeting
// cluster (OS release × model CHID, optionally × the hardware ID the label matched): the
// count throttle (Policy.Throttle) turns "at most N new machines a day" into percents from
// it, and the even first ring (Policy.FirstRing) sizes each cluster's threshold from it.
// Edges' request samples or an inventory produce it; without one, the controller estimates
// the same counts from the reports (machines reporting over the rollout's average percent
// of the last day: see estimate). A file is
//
//	{
//	  "generated": "2026-12-01T00:00:00Z",
//	  "labels": [
//	    {"label": "1152921504606990032", "machines": 12000,
//	     "clusters": [{"release": "24H2", "chid": "6b2f3c1e-0c4d-5a1b-9e2f-3c4d5e6f7a8b", "machines": 750},
//	                  {"release": "23H2", "chid": "6b2f3c1e-0c4d-5a1b-9e2f-3c4d5e6f7a8b", "hardwareId": "pci\\ven_8086&dev_51f1", "machines": 410}]}
//	  ]
//	}
//
// Counts are machines (not devices); a cluster's release is an OS release code of the OS
// table ("24H2") and its chid a CHID in the canonical form. Unknown members are errors, as
// are negative counts, a label listed twice, and a cluster listed twice in a label.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/driveway/driveway/catalogs/chid"
)

// Census is a census file (see the file's comment).
type Census struct {
	Generated time.Time     `json:"generated,omitzero"`
	Labels    []LabelCensus `json:"labels"`
}

// LabelCensus is one label's counts.
type LabelCensus struct {
	Label    string          `json:"label"`
	Machines int             `json:"machines"`
	Clusters []ClusterCensus `json:"clusters,omitempty"`
}

// ClusterCensus is one targeting cluster's count.
type ClusterCensus struct {
	Release  string `json:"release"`
	CHID     string `json:"chid"`
	HWID     string `json:"hardwareId,omitempty"`
	Machines int    `json:"machines"`
}

// LoadCensus reads a census file.
func LoadCensus(path string) (*Census, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	c, err := ParseCensus(b)
	if err != nil {
		return nil, fmt.Errorf("rollout: %s: %w", path, err)
	}
	return c, nil
}

// ParseCensus reads the bytes of a census file and checks them.
func ParseCensus(b []byte) (*Census, error) {
	var c Census
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("census: %w (want {\"labels\": [{\"label\", \"machines\", \"clusters\"}]})", err)
	}
	if dec.More() {
		return nil, errors.New("census: data after the object")
	}
	seen := map[string]bool{}
	for i, l := range c.Labels {
		where := fmt.Sprintf("census: labels[%d]", i)
		switch {
		case l.Label == "":
			return nil, fmt.Errorf("%s: label is required", where)
		case seen[l.Label]:
			return nil, fmt.Errorf("%s: label %s is listed twice", where, l.Label)
		case l.Machines < 0:
			return nil, fmt.Errorf("%s: machines %d is negative", where, l.Machines)
		}
		seen[l.Label] = true
		clusters := map[ClusterCensus]bool{}
		for j, k := range l.Clusters {
			where := fmt.Sprintf("%s.clusters[%d]", where, j)
			if k.Machines < 0 {
				return nil, fmt.Errorf("%s: machines %d is negative", where, k.Machines)
			}
			if k.Release == "" || k.CHID == "" {
				return nil, fmt.Errorf("%s: release and chid are required", where)
			}
			if _, err := chid.Parse(k.CHID); err != nil {
				return nil, fmt.Errorf("%s: chid %q: %w", where, k.CHID, err)
			}
			key := k
			key.Machines = 0
			if clusters[key] {
				return nil, fmt.Errorf("%s: cluster %s/%s %s is listed twice", where, k.Release, k.CHID, k.HWID)
			}
			clusters[key] = true
		}
	}
	return &c, nil
}

// Label is a label's census, if it has one.
func (c *Census) Label(id string) (*LabelCensus, bool) {
	if c == nil {
		return nil, false
	}
	for i := range c.Labels {
		if c.Labels[i].Label == id {
			return &c.Labels[i], true
		}
	}
	return nil, false
}
