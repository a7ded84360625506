package catalogs

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestSetDistribution(t *testing.T) {
	at := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	d := Distribution{
		Flight:  &Flight{Channels: []string{"Dev"}, Start: at, Approved: at.Add(time.Hour)},
		Rollout: &Rollout{Stages: []Stage{{At: at, BasisPoints: 100}, {At: at.Add(24 * time.Hour), BasisPoints: 1250}}, Paused: true},
	}
	for name, src := range map[string]string{
		"indented, replaced": "{\n  \"id\": 3001,\n  \"zzz\": [1, 2],\n  \"distribution\": {\"rollout\": {\"stages\": []}},\n  \"name\": \"x\"\n}\n",
		"indented, added":    "{\n  \"id\": 3001,\n  \"zzz\": [1, 2],\n  \"name\": \"x\"\n}\n",
		"compact, added":     `{"id":3001,"zzz":[1,2],"name":"x"}`,
	} {
		out, err := SetDistribution([]byte(src), d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Everything else is kept byte for byte, in order.
		for _, keep := range []string{`"id": 3001`, `"zzz": [1, 2]`, `"name": "x"`} {
			if strings.Contains(src, keep) && !strings.Contains(string(out), keep) {
				t.Errorf("%s: lost %s:\n%s", name, keep, out)
			}
		}
		if strings.Index(string(out), `"id"`) > strings.Index(string(out), `"name"`) {
			t.Errorf("%s: member order changed:\n%s", name, out)
		}
		// And it reads back as the same distribution.
		fsys := fstest.MapFS{
			"products/1/product.json":                           {Data: []byte(`{"id":1}`)},
			"products/1/submissions/2/submission.json":          {Data: []byte(`{"id":2}`)},
			"products/1/submissions/2/driverMetadata.json":      {Data: []byte(`{"BundleInfoMap":{}}`)},
			"products/1/submissions/2/shippingLabels/3001.json": {Data: out},
		}
		tree, _, err := LoadFS(fsys, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := tree.Labels()[0].Distribution
		if got.Rollout == nil || !got.Rollout.Paused || len(got.Rollout.Stages) != 2 || got.Rollout.Stages[1].BasisPoints != 1250 ||
			got.Flight == nil || !got.Flight.Approved.Equal(at.Add(time.Hour)) {
			t.Errorf("%s: read back %+v\n%s", name, got, out)
		}
	}
}
