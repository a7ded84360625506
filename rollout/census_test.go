package rollout

import (
	"os"
	"strings"
	"testing"
)

// TestCensus reads the test vector and refuses bad files with where and what.
func TestCensus(t *testing.T) {
	c, err := LoadCensus("testdata/census.json")
	if err != nil {
		t.Fatal(err)
	}
	l, ok := c.Label("1152921504606990032")
	if !ok || l.Machines != 12000 || len(l.Clusters) != 2 || l.Clusters[1].HWID != `pci\ven_8086&dev_51f1` || l.Clusters[0].Machines != 750 {
		t.Errorf("%+v", l)
	}
	if _, ok := c.Label("1"); ok {
		t.Error("an unknown label has a census")
	}
	if _, ok := (*Census)(nil).Label("1"); ok {
		t.Error("a nil census has a label")
	}
	for _, tc := range []struct{ body, want string }{
		{`{"labels": [{"label": "1", "machines": -1}]}`, "labels[0]: machines -1 is negative"},
		{`{"labels": [{"label": "1"}, {"label": "1"}]}`, "labels[1]: label 1 is listed twice"},
		{`{"labels": [{"machines": 3}]}`, "labels[0]: label is required"},
		{`{"labels": [{"label": "1", "clusters": [{"release": "GE", "chid": "x", "machines": 1}]}]}`, `labels[0].clusters[0]: chid "x"`},
		{`{"labels": [{"label": "1", "clusters": [{"chid": "6b2f3c1e-0c4d-5a1b-9e2f-3c4d5e6f7a8b"}]}]}`, "release and chid are required"},
		{`{"labels": [{"label": "1", "clusters": [{"release": "GE", "chid": "6b2f3c1e-0c4d-5a1b-9e2f-3c4d5e6f7a8b"}, {"release": "GE", "chid": "6b2f3c1e-0c4d-5a1b-9e2f-3c4d5e6f7a8b", "machines": 4}]}]}`, "listed twice"},
		{`{"labels": [], "colour": 1}`, "unknown field"},
		{`{"labels": []} {}`, "data after"},
		{`[`, "census:"},
	} {
		if _, err := ParseCensus([]byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.body, err, tc.want)
		}
	}
}

func FuzzParseCensus(f *testing.F) {
	b, _ := os.ReadFile("testdata/census.json")
	f.Add(b)
	f.Add([]byte(`{"labels": []}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCensus(b)
		if err != nil {
			return
		}
		for _, l := range c.Labels {
			if l.Label == "" || l.Machines < 0 {
				t.Fatalf("accepted %+v", l)
			}
		}
	})
}
