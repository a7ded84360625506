package catalogs

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/driveway/driveway/internal/conformance"
)

func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e3,-0,"x\u00e9\ud83d\ude00"],"b":null,"c":true}`, `"\ud800"`, `[`, `{"a":1,"a":2}`, "\xef\xbb\xbf{}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parseJSON(data)
		if err == nil && v == nil {
			t.Fatal("no value and no error")
		}
		if err == nil {
			// Whatever parses here is valid JSON for encoding/json too (this parser is the
			// stricter one: it also rejects invalid UTF-8, and skips a leading BOM).
			if !json.Valid(data) && !(len(data) >= 3 && data[0] == 0xEF) {
				t.Fatalf("parseJSON accepted what encoding/json rejects: %q", data)
			}
		}
	})
}

// fuzzFiles are the files of the base fixture a fuzz input may replace.
var fuzzFiles = []string{labelPath, subPath, metaPath, productPath, "partners.json", "catalog.json", "audiences.json", "blocks.json"}

// FuzzLabelTree replaces one file of a valid tree with arbitrary bytes: Load and Validate
// must report problems, never panic, and give the same problems twice.
func FuzzLabelTree(f *testing.F) {
	base := fstest.MapFS{}
	for rel, doc := range baseFixture() {
		b, _ := json.Marshal(doc)
		base[rel] = &fstest.MapFile{Data: b}
	}
	for i, rel := range fuzzFiles {
		if mf, ok := base[rel]; ok {
			f.Add(uint8(i), mf.Data)
		}
	}
	f.Add(uint8(4), []byte(`[{"sellerId":"100","chidRelationships":["x"],"hwidVendors":[1]}]`))
	f.Add(uint8(7), []byte(`[{"id":"1","labels":["3001"],"hardwareIds":["PCI\\X"],"minBuild":5,"maxBuild":1}]`))
	// Seed the label slot with every scenario's label files too.
	scenarios := conformance.Load(f)
	for _, name := range slices.Sorted(maps.Keys(scenarios)) {
		sc := scenarios[name]
		for _, k := range slices.Sorted(maps.Keys(sc.Labels)) {
			if filepath.Base(filepath.Dir(k)) == "shippingLabels" {
				f.Add(uint8(0), []byte(sc.Labels[k]))
			}
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		fsys := fstest.MapFS{}
		for k, v := range base {
			fsys[k] = v
		}
		fsys[fuzzFiles[int(which)%len(fuzzFiles)]] = &fstest.MapFile{Data: data}
		run := func() string {
			tree, ps, err := LoadFS(fsys, &LoadOptions{Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, tree.Validate(nil)...)
			ps.Sort()
			tree.Invalid(ps)
			out := ""
			for _, p := range ps {
				out += p.String() + "\n"
			}
			return out
		}
		if a, b := run(), run(); a != b {
			t.Fatalf("problems differ between runs:\n%s\nvs\n%s", a, b)
		}
		checkSummarized(t, fsys, nil)
	})
}
