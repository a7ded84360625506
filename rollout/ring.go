package rollout

// The even first ring.
//
// A bucket threshold of 1% lets in 1% of a label's machines, which is about 1% of each
// targeting cluster (OS release × model CHID, and the hardware ID where the census names
// one) but only on average: a cluster of 500 machines gets about 5, often 2, sometimes none,
// and a failure on that model alone does not show in the first stage. A policy's
//
//	"firstRing": {"minMachines": 50, "maxPercent": 25}
//
// gives every cluster of the label's census (StepInputs.Census; without one, estimated from
// the measures' cohorts: machines reporting over the rollout's average percent of the last
// day) with at least minMachines × 100 / maxPercent machines a threshold of its own while the
// label is at its first stage: ceil(minMachines / machines) in basis points, so that at least
// minMachines of its machines are in. Smaller clusters keep the stage's percent (a cluster of
// 40 machines at 100% would be no ring). The thresholds are published in the label's
// distribution.rollout.clusters (the control table's version 2: catalogs/compiled), where the
// edge takes, per device, the larger of the stage's percent and its cluster's: the ring is
// stateless at the edge and the same bucket decides, so buckets stay sticky (a device in at
// 1% is in at 5%), as long as a cluster's threshold never goes down — and it does not: a step
// only raises one (by a tenth at least, so estimates that wobble do not publish a release
// each step), and takes one out only once the stages' percent has passed it.
//
// Setting or raising thresholds while the label otherwise holds is a "first-ring" decision;
// with an advance they ride along. A pause or cancel leaves them as they are.

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/chid"
)

// FirstRingSet is the action of a step that sets or raises a label's first-ring thresholds
// while it otherwise holds.
const FirstRingSet Action = "first-ring"

// RingCluster is one first-ring threshold as the step's JSON shows it.
type RingCluster struct {
	Release  string  `json:"release,omitempty"`
	CHID     string  `json:"chid"`
	MinBuild int     `json:"minBuild,omitempty"`
	MaxBuild int     `json:"maxBuild,omitempty"`
	HWID     string  `json:"hardwareId,omitempty"`
	Percent  float64 `json:"percent"`
	Machines int     `json:"machines"` // the cluster's machines the threshold was sized from (0: kept from before)
}

// ring is the label's first-ring thresholds after the step at now (cur is the stages'
// percent), whether they changed, and why.
func (st *stepper) ring(l *catalogs.Label, p *Policy, cohorts []Cohort, r *catalogs.Rollout, cur int, now time.Time) ([]catalogs.ClusterStage, []RingCluster, string, bool) {
	type key struct {
		chid     chid.ID
		min, max int
		hwid     string
	}
	have := map[key]int{}
	var order []key
	for _, c := range r.Clusters {
		k := key{c.CHID, c.MinBuild, c.MaxBuild, c.HWID}
		if c.BasisPoints > cur { // at or below the stages' percent: no longer needed
			have[k] = c.BasisPoints
			order = append(order, k)
		}
	}
	changed := len(order) != len(r.Clusters)
	sized := map[key]int{}
	releases := map[key]string{}
	if fr := p.FirstRing; fr != nil && cur > 0 && cur <= int(p.Ladder[0]*100+0.5) {
		type count struct {
			release, chid, hwid string
			machines            int
		}
		var counts []count
		if lc, ok := st.census.Label(l.ID); ok && len(lc.Clusters) > 0 {
			for _, c := range lc.Clusters {
				counts = append(counts, count{c.Release, c.CHID, c.HWID, c.Machines})
			}
		} else {
			var v stagesView
			for _, s := range r.Stages {
				v = append(v, stageAt{s.At, s.BasisPoints})
			}
			if avg := v.averageLastDay(now); avg > 0 {
				for _, c := range cohorts {
					counts = append(counts, count{c.Release, c.CHID, "", int(float64(c.Machines) * 10000 / avg)})
				}
			}
		}
		for _, c := range counts {
			g, err := chid.Parse(c.chid)
			if err != nil || float64(c.machines)*fr.MaxPercent/100 < float64(fr.MinMachines) {
				continue
			}
			k := key{chid: g, hwid: catalogs.NormalizeHWID(c.hwid)}
			rels := st.tab.Releases()
			known := false
			for i, rel := range rels {
				if rel.Code == c.release {
					k.min, known = rel.Build, true
					if i+1 < len(rels) {
						k.max = rels[i+1].Build - 1
					}
				}
			}
			if !known {
				continue
			}
			bp := int(math.Ceil(10000 * float64(fr.MinMachines) / float64(c.machines)))
			if bp <= cur {
				continue
			}
			old, ok := have[k]
			if ok && bp < old+max(1, old/10) {
				continue
			}
			if !ok {
				order = append(order, k)
			}
			have[k], sized[k], releases[k] = bp, c.machines, c.release
			changed = true
		}
	}
	if !changed {
		return r.Clusters, nil, "", false
	}
	slices.SortFunc(order, func(a, b key) int {
		if c := slices.Compare(a.chid[:], b.chid[:]); c != 0 {
			return c
		}
		if a.min != b.min {
			return a.min - b.min
		}
		if a.hwid < b.hwid {
			return -1
		}
		if a.hwid > b.hwid {
			return 1
		}
		return 0
	})
	var out []catalogs.ClusterStage
	var shown []RingCluster
	lo, hi := 10000, 0
	for _, k := range order {
		bp := have[k]
		out = append(out, catalogs.ClusterStage{CHID: k.chid, MinBuild: k.min, MaxBuild: k.max, HWID: k.hwid, BasisPoints: bp})
		shown = append(shown, RingCluster{Release: releases[k], CHID: k.chid.String(), MinBuild: k.min, MaxBuild: k.max, HWID: k.hwid,
			Percent: float64(bp) / 100, Machines: sized[k]})
		lo, hi = min(lo, bp), max(hi, bp)
	}
	if len(out) == 0 {
		return nil, nil, fmt.Sprintf("first ring: the stages' %s%% covers every cluster; thresholds removed", catalogs.FormatBasisPoints(cur)), true
	}
	why := fmt.Sprintf("first ring: %d cluster(s) at %s–%s%% so that each has at least %d machines in", len(out),
		catalogs.FormatBasisPoints(lo), catalogs.FormatBasisPoints(hi), p.firstRingMin())
	return out, shown, why, true
}

func (p *Policy) firstRingMin() int {
	if p.FirstRing == nil {
		return 0
	}
	return p.FirstRing.MinMachines
}
