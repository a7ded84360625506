package rollout

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestWilson: the bounds are the two roots of (k/n − p)² = z²·p(1−p)/n around k/n, and at
// z 0 both are k/n.
func TestWilson(t *testing.T) {
	z := zFor(0.95)
	if math.Abs(z-1.6449) > 1e-4 {
		t.Errorf("z of 95%% one-sided: %v, want 1.6449", z)
	}
	for _, c := range [][2]int{{0, 10}, {1, 20}, {3, 60}, {30, 1000}, {999, 1000}, {5, 5}, {1, 1_000_000}} {
		k, n := c[0], c[1]
		lo, hi := wilson(k, n, z)
		p := float64(k) / float64(n)
		if !(lo <= p && p <= hi && 0 <= lo && hi <= 1) {
			t.Errorf("%d/%d: [%v, %v] does not hold %v", k, n, lo, hi, p)
		}
		for _, root := range []float64{lo, hi} {
			if root == 0 && k == 0 || root == 1 && k == n {
				continue // the interval's end at the edge of [0, 1]
			}
			if d := (p-root)*(p-root) - z*z*root*(1-root)/float64(n); math.Abs(d) > 1e-12 {
				t.Errorf("%d/%d: bound %v is not a root (%v)", k, n, root, d)
			}
		}
		if lo0, hi0 := wilson(k, n, 0); lo0 != p || hi0 != p {
			t.Errorf("%d/%d at z 0: [%v, %v], want %v", k, n, lo0, hi0, p)
		}
	}
	if lo, hi := wilson(0, 0, z); lo != 0 || hi != 1 {
		t.Errorf("no machines: [%v, %v]", lo, hi)
	}
}

// TestMachinesToCatch: the machines the default policy needs to stop a 2× regression (the
// figures in docs/deployment.md: pause bounds at 80%, cancel bounds at 95%, 3 failed
// machines at least), and that the interval's part is the first n that shows it.
func TestMachinesToCatch(t *testing.T) {
	for _, c := range []struct {
		bound, conf float64
		want        int
	}{{3, 0.8, 50}, {0.5, 0.8, 300}, {2, 0.8, 75}, {10, 0.95, 25}, {2, 0.95, 133}, {3, 0.99, 175}} {
		n := MachinesToCatch(c.bound, 2, c.conf, DefaultPolicy.MinFailureSources)
		if n != c.want {
			t.Errorf("bound %v%% at %v: %d machines, docs say %d", c.bound, c.conf, n, c.want)
		}
		z := zFor(c.conf)
		at := func(n int) float64 { lo, _ := wilsonP(2*c.bound/100, float64(n), z); return lo * 100 }
		if m := MachinesToCatch(c.bound, 2, c.conf, 0); at(m) <= c.bound || at(m-1) > c.bound {
			t.Errorf("bound %v%%: lower bound %v at %d, %v at %d", c.bound, at(m), m, at(m-1), m-1)
		}
	}
	if MachinesToCatch(3, 1, 0.95, 0) != 0 {
		t.Error("a rate at the bound is caught")
	}
}

// TestStepConfidence (issue 20: statistics that do not cry wolf): a small sample with a bad
// raw percentage is "not enough data to pause", not a pause; a 2× regression is paused as soon
// as the data show it, below the label minimum; one unlucky crash in a small cohort stops
// nothing; with confidence 0.5 the raw percentages of labels with enough machines decide,
// as before (and pause the 4% of 200 machines that the interval holds).
func TestStepConfidence(t *testing.T) {
	old := t0.Add(-10 * 24 * time.Hour)
	tree := stepTree(t, t.TempDir(), rolloutAt(stage(old, "1")), rolloutAt(stage(old, "1")), rolloutAt(stage(old, "1")), rolloutAt(stage(old, "1")))
	m := measures(map[string][3]int{
		"3001": {200, 8, 0},  // 4% failed of 200: raw past the 3% pause bound, not shown
		"3002": {90, 6, 0},   // 6.7% of 90: a 2× regression, shown below the 100-machine minimum
		"3003": {1000, 0, 1}, // one kernel crash in 1,000 (0.1%): healthy enough to advance
		"3004": {20, 0, 1},   // one crash in 20 (5%): fewer than 3 failed machines prove nothing
	})
	got := map[string]Decision{}
	for _, d := range Step(tree, m, &DefaultPolicy, t0) {
		got[d.Label] = d
	}
	for label, want := range map[string]struct {
		action Action
		reason string
	}{
		"3001": {Hold, "not enough data to pause: success 96.00% < 97.00% over 200 machines, but not shown at 80% confidence"},
		"3002": {Pause, "success 93.33% < 97.00%: failure rate 6.67% > 3.00% ("},
		"3003": {Advance, "success 99.90%"},
		"3004": {Hold, "not enough data"},
	} {
		if d := got[label]; d.Action != want.action || !strings.Contains(d.Reason, want.reason) {
			t.Errorf("%s: %v; want %s (%s)", label, d, want.action, want.reason)
		}
	}
	raw := DefaultPolicy
	raw.Confidence, raw.PauseConfidence = 0.5, 0.5
	got = map[string]Decision{}
	for _, d := range Step(tree, m, &raw, t0) {
		got[d.Label] = d
	}
	if d := got["3002"]; d.Action != Hold || !strings.Contains(d.Reason, "not enough data: 90 machines") {
		t.Errorf("raw percentages, 90 machines: %v; want held below the minimum", d)
	}
	if d := got["3001"]; d.Action != Pause || !strings.Contains(d.Reason, "failure rate 4.00% > 3.00% over 200 machines") {
		t.Errorf("raw percentages, 4%% of 200 machines: %v; want a pause", d)
	}
	for _, bad := range []string{`{"confidence":0.4}`, `{"confidence":1}`, `{"pauseConfidence":0.3}`} {
		if _, err := ParsePolicy([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if p, err := ParsePolicy([]byte(`{"confidence":0.99}`)); err != nil || p.Confidence != 0.99 {
		t.Errorf("confidence 0.99: %+v, %v", p, err)
	}
}
