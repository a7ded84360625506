package rollout

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestAverageLastDay(t *testing.T) {
	day := 24 * time.Hour
	v := stagesView{{t0.Add(-3 * day), 100}, {t0.Add(-12 * time.Hour), 300}, {t0.Add(-6 * time.Hour), 500}, {t0.Add(time.Hour), 900}}
	// 12 h at 1%, 6 h at 3%, 6 h at 5%: (12×100 + 6×300 + 6×500) / 24 = 250.
	if got := v.averageLastDay(t0); got != 250 {
		t.Errorf("average %v, want 250", got)
	}
	if got := v.at(t0); got != 500 {
		t.Errorf("at %v", got)
	}
	if got := v.lastAt(t0); !got.Equal(t0.Add(-6 * time.Hour)) {
		t.Errorf("last %v", got)
	}
	if got := (stagesView{{t0.Add(-time.Hour), 100}}).averageLastDay(t0); math.Abs(got-100.0/24) > 1e-9 {
		t.Errorf("a stage an hour old: %v", got)
	}
}

// TestThrottleTo: the percent a count throttle sets — the percent of a day ago plus N over
// the machines estimated — from the census before any report and from the reports after
// (the census counting as 100 machines' reports), holding while that is not above the
// percent now, never above 100%.
func TestThrottleTo(t *testing.T) {
	th := &Throttle{MaxNewMachinesPerDay: 100}
	census := &Census{Labels: []LabelCensus{{Label: "7", Machines: 20000}}}
	start := t0.Add(-24 * time.Hour)
	v := stagesView{{start, 100}}
	// No reports: 20,000 machines from the census: 1% a day ago + 100 / 20,000 = 1.5%.
	if to, why, ok := throttleTo(th, "7", &Measure{}, v, census, t0); !ok || to != 150 || !strings.Contains(why, "20000 machines estimated (the census)") {
		t.Errorf("no reports: %d %q %v", to, why, ok)
	}
	if _, why, ok := throttleTo(th, "7", &Measure{}, v, nil, t0); ok || !strings.Contains(why, "no census") {
		t.Errorf("no census: %q %v", why, ok)
	}
	// 100 machines reported after a day at 1%: 10,000 machines without the census; 1% + 1%.
	to, why, ok := throttleTo(th, "7", &Measure{Machines: 100}, v, nil, t0)
	if !ok || to != 200 || !strings.Contains(why, "10000 machines estimated (100 machines reporting at 1.00% on average") {
		t.Errorf("a day of reports: %d %q %v", to, why, ok)
	}
	// With the census (20,000) as 100 machines' worth: (100 + 100) / (0.01 + 100/20,000) =
	// 13,333 → 1% + 0.75%.
	to, why, ok = throttleTo(th, "7", &Measure{Machines: 100}, v, census, t0)
	if !ok || to != 175 || !strings.Contains(why, "13333 machines estimated") {
		t.Errorf("a day of reports and the census: %d %q %v", to, why, ok)
	}
	// A thousand machines outweigh it: (1000 + 100) / (0.1 + 0.005) = 10,476.
	if _, why, _ := throttleTo(th, "7", &Measure{Machines: 1000}, stagesView{{start, 1000}}, census, t0); !strings.Contains(why, "10476 machines estimated") {
		t.Errorf("many reports and the census: %q", why)
	}
	// Six hours after a stage at 2%: average (18×100 + 6×200)/24 = 125 bp; 150 machines →
	// 12,000; 1% a day ago + 0.83% = 1.83% < 2%: hold; likewise with more machines.
	v = append(v, stageAt{t0.Add(-6 * time.Hour), 200})
	for _, n := range []int{150, 230, 260} {
		if to, why, ok := throttleTo(th, "7", &Measure{Machines: n}, v, nil, t0); ok || to != 200 || !strings.Contains(why, "until a day after the last increase") {
			t.Errorf("%d machines six hours on: %d %v %q", n, to, ok, why)
		}
	}
	// Fewer machines than expected (100: 8,000): 1% + 1.25%.
	if to, _, ok := throttleTo(th, "7", &Measure{Machines: 100}, v, nil, t0); !ok || to != 225 {
		t.Errorf("100 machines six hours on: %d %v", to, ok)
	}
	// Never above 100%.
	if to, _, ok := throttleTo(&Throttle{MaxNewMachinesPerDay: 1e6}, "7", &Measure{Machines: 100}, v, census, t0); !ok || to != 10000 {
		t.Errorf("a throttle above the population: %d %v", to, ok)
	}
}

// TestStepThrottle: with a throttle, a healthy label is set to the throttle's percent at
// every step, without the dwell, and not before it has enough data; the stop gates judge it
// as always.
func TestStepThrottle(t *testing.T) {
	dir := t.TempDir()
	start := t0.Add(-24 * time.Hour)
	tree := stepTree(t, dir, rolloutAt(stage(start, "1")), rolloutAt(stage(start, "1")), rolloutAt(stage(start, "1")))
	p := DefaultPolicy
	p.Throttle = &Throttle{MaxNewMachinesPerDay: 500}
	m := measures(map[string][3]int{"3001": {400, 0, 0}, "3002": {50, 0, 0}, "3003": {400, 0, 40}})
	ds := StepWith(tree, m, &p, t0, StepInputs{})
	if got := actions(ds); got != "3001 advance, 3002 hold, 3003 cancel" {
		t.Fatalf("decisions %s: %v", got, ds)
	}
	// 400 machines at 1% → 40,000; (400 + 500) / 40,000 = 2.25%.
	if d := ds[0]; d.To != 225 || !strings.Contains(d.Reason, "throttle of 500 new machines a day") {
		t.Errorf("3001: %v", d)
	}
	if d := ds[1]; !strings.Contains(d.Reason, "not enough data") {
		t.Errorf("3002: %v", d)
	}
	if _, err := Apply(dir, ds); err != nil {
		t.Fatal(err)
	}
	// Six hours later (no dwell): the average over the last day is 18 h at 1% and 6 h at
	// 2.25% = 1.3125%. With 460 machines: 35,048 machines, 1% a day ago + 1.43% = 2.42%
	// (the estimate corrected: more than 2.25%); with 700: 53,333, 1.94%: hold.
	tree2 := stepTree(t, dir)
	later := t0.Add(6 * time.Hour)
	for _, c := range []struct {
		n, to int
	}{{460, 242}, {700, 225}} {
		ds := StepWith(tree2, measures(map[string][3]int{"3001": {c.n, 0, 0}}), &p, later, StepInputs{})
		if ds[0].To != c.to || (c.to == 225) != (ds[0].Action == Hold) {
			t.Errorf("%d machines six hours on: %v", c.n, ds[0])
		}
	}
	if _, err := ParsePolicy([]byte(`{"throttle": {"maxNewMachinesPerDay": 0}}`)); err == nil || !strings.Contains(err.Error(), "maxNewMachinesPerDay") {
		t.Errorf("a zero throttle: %v", err)
	}
	pp, err := ParsePolicy([]byte(`{"throttle": {"maxNewMachinesPerDay": 50}, "classes": {"Net": {"ladder": [5, 100]}}}`))
	if err != nil || pp.For("net").Throttle == nil || pp.For("net").Throttle.MaxNewMachinesPerDay != 50 {
		t.Errorf("a class inherits the throttle: %+v %v", pp, err)
	}
}
