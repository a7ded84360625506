package build

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/bench"
	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/signing"
)

// cacheBuild builds labels into a fresh catalog directory with cache (none when ""), with
// SkipInvalid so that an edit that breaks a label still gives a release to compare, and
// returns the report and the catalog's files.
func cacheBuild(t *testing.T, labels, cache string, s *signing.Signer) (*Report, map[string][]byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "cat")
	rep, err := Build(context.Background(), Options{Labels: labels, Out: out, Signers: []*signing.Signer{s}, Now: testNow,
		Cache: cache, CacheVersion: "test", SkipInvalid: true, AllowShrink: true})
	if err != nil {
		if rep != nil {
			for _, p := range rep.Problems {
				t.Log(p)
			}
		}
		t.Fatal(err)
	}
	return rep, dirFiles(t, out)
}

// sameRelease fails t unless an incremental build gave what a clean one did: the same
// files, byte for byte (manifest, shards, timestamp), and the same problems.
func sameRelease(t *testing.T, what string, inc, clean *Report, incFiles, cleanFiles map[string][]byte) {
	t.Helper()
	var diffs []string
	for name, b := range cleanFiles {
		if ib, ok := incFiles[name]; !ok {
			diffs = append(diffs, "missing "+name)
		} else if string(ib) != string(b) {
			diffs = append(diffs, "differs "+name)
		}
	}
	for name := range incFiles {
		if _, ok := cleanFiles[name]; !ok {
			diffs = append(diffs, "extra "+name)
		}
	}
	slices.Sort(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%s: the incremental build differs from a clean one: %s", what, strings.Join(diffs, ", "))
	}
	if a, b := problemStrings(inc), problemStrings(clean); !reflect.DeepEqual(a, b) {
		t.Fatalf("%s: problems differ:\nincremental:\n%s\nclean:\n%s", what, strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	if !reflect.DeepEqual(inc.Rejected, clean.Rejected) {
		t.Fatalf("%s: rejected %v, clean %v", what, inc.Rejected, clean.Rejected)
	}
}

// sameAsFullTree fails t unless a build's problems, which the rules that span labels found
// over the products' summaries, are those of the whole tree loaded and validated at once:
// a summary keeps everything those rules read.
func sameAsFullTree(t *testing.T, what, labels string, rep *Report) {
	t.Helper()
	tree, probs, err := catalogs.Load(labels, nil)
	if err != nil {
		t.Fatal(err)
	}
	probs = append(probs, tree.Validate(&catalogs.ValidateOptions{Now: testNow})...)
	probs.Sort()
	var want []string
	for _, p := range probs {
		want = append(want, p.String())
	}
	if got := problemStrings(rep); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: the build's problems differ from the full tree's:\nbuild:\n%s\nfull tree:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func problemStrings(r *Report) []string {
	var out []string
	for _, p := range r.Problems {
		out = append(out, p.String())
	}
	return out
}

// treeEdit is one random edit of a label tree, like a publisher's export or a release
// engineer's change.
type treeEdit struct {
	name  string
	apply func(t *testing.T, r *rand.Rand, dir string) string // returns what it did
}

func files(t *testing.T, dir, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func pick(t *testing.T, r *rand.Rand, dir, pattern string) string {
	t.Helper()
	m := files(t, dir, pattern)
	if len(m) == 0 {
		t.Fatalf("no %s in %s", pattern, dir)
	}
	return m[r.Intn(len(m))]
}

func editJSON(t *testing.T, path string, edit func(v any) any) {
	t.Helper()
	var v any
	if err := json.Unmarshal(mustRead(t, path), &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(edit(v))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

const labelGlob = "products/*/submissions/*/shippingLabels/*.json"

var treeEdits = []treeEdit{
	{"change a label's go-live and name", func(t *testing.T, r *rand.Rand, dir string) string {
		p := pick(t, r, dir, labelGlob)
		editJSON(t, p, func(v any) any {
			l := v.(map[string]any)
			l["name"] = fmt.Sprint(l["name"], " (fixed)")
			if pub, ok := l["publishingSpecifications"].(map[string]any); ok {
				pub["goLiveDate"] = at("2026-02-01T00:00:00Z")
			}
			return l
		})
		return p
	}},
	{"take a row of a label out of distribution", func(t *testing.T, r *rand.Rand, dir string) string {
		p := pick(t, r, dir, labelGlob)
		editJSON(t, p, func(v any) any {
			l := v.(map[string]any)
			if rows, ok := l["targeting"].(map[string]any)["hardwareIds"].([]any); ok && len(rows) > 0 {
				rows[r.Intn(len(rows))].(map[string]any)["distributionState"] = "pendingRemove"
			}
			return l
		})
		return p
	}},
	{"remove a label", func(t *testing.T, r *rand.Rand, dir string) string {
		p := pick(t, r, dir, labelGlob)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		return p
	}},
	{"add a label (a copy of another under a new id)", func(t *testing.T, r *rand.Rand, dir string) string {
		p := pick(t, r, dir, labelGlob)
		id := fmt.Sprint(9000000000000000000 + r.Int63n(1e15))
		var l map[string]any
		json.Unmarshal(mustRead(t, p), &l)
		l["id"] = json.Number(id)
		b, _ := json.Marshal(l)
		np := filepath.Join(filepath.Dir(p), id+".json")
		if err := os.WriteFile(np, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return np
	}},
	{"move a label to another submission (ids left as they were: L004)", func(t *testing.T, r *rand.Rand, dir string) string {
		p := pick(t, r, dir, labelGlob)
		to := pick(t, r, dir, "products/*/submissions/*/shippingLabels")
		np := filepath.Join(to, filepath.Base(p))
		if err := os.Rename(p, np); err != nil {
			t.Fatal(err)
		}
		return p + " -> " + np
	}},
	{"move a label to another submission, its ids updated", func(t *testing.T, r *rand.Rand, dir string) string {
		p := pick(t, r, dir, labelGlob)
		to := pick(t, r, dir, "products/*/submissions/*")
		np := filepath.Join(to, "shippingLabels", filepath.Base(p))
		os.MkdirAll(filepath.Dir(np), 0o755)
		editJSON(t, p, func(v any) any {
			l := v.(map[string]any)
			l["submissionId"] = json.Number(filepath.Base(to))
			l["productId"] = json.Number(filepath.Base(filepath.Dir(filepath.Dir(to))))
			return l
		})
		if err := os.Rename(p, np); err != nil {
			t.Fatal(err)
		}
		return p + " -> " + np
	}},
	{"change a submission's driver versions and dates", func(t *testing.T, r *rand.Rand, dir string) string {
		p := pick(t, r, dir, "products/*/submissions/*/driverMetadata.json")
		editJSON(t, p, func(v any) any {
			for _, b := range v.(map[string]any)["BundleInfoMap"].(map[string]any) {
				for _, inf := range b.(map[string]any)["InfInfoMap"].(map[string]any) {
					m := inf.(map[string]any)
					m["DriverVersion"] = fmt.Sprintf("99.%d.0.0", r.Intn(100))
					m["DriverDate"] = "2026-03-01T00:00:00"
				}
			}
			return v
		})
		return p
	}},
	{"drop the hardware IDs of an INF on one OS code (rows that no longer match: L013)", func(t *testing.T, r *rand.Rand, dir string) string {
		p := pick(t, r, dir, "products/*/submissions/*/driverMetadata.json")
		editJSON(t, p, func(v any) any {
			for _, b := range v.(map[string]any)["BundleInfoMap"].(map[string]any) {
				for _, inf := range b.(map[string]any)["InfInfoMap"].(map[string]any) {
					grid, _ := inf.(map[string]any)["OSPnPInfoMap"].(map[string]any)
					for code := range grid {
						grid[code] = map[string]any{}
						return v
					}
				}
			}
			return v
		})
		return p
	}},
	{"turn partners' ceiling access off", func(t *testing.T, r *rand.Rand, dir string) string {
		p := filepath.Join(dir, "partners.json")
		editJSON(t, p, func(v any) any {
			for _, x := range v.([]any) {
				x.(map[string]any)["ceilingAccess"] = r.Intn(2) == 0
			}
			return v
		})
		return p
	}},
	{"drop an audience", func(t *testing.T, r *rand.Rand, dir string) string {
		p := filepath.Join(dir, "audiences.json")
		editJSON(t, p, func(v any) any {
			if a := v.([]any); len(a) > 0 {
				return a[1:]
			}
			return v
		})
		return p
	}},
	{"add a block on a label", func(t *testing.T, r *rand.Rand, dir string) string {
		p := filepath.Join(dir, "blocks.json")
		l := pick(t, r, dir, labelGlob)
		editJSON(t, p, func(v any) any {
			return append(v.([]any), map[string]any{"id": fmt.Sprint(50000000 + r.Intn(1000)), "reason": "test hold",
				"labels": []any{strings.TrimSuffix(filepath.Base(l), ".json")}})
		})
		return p
	}},
	{"rename the catalog and change its class rules", func(t *testing.T, r *rand.Rand, dir string) string {
		p := filepath.Join(dir, "catalog.json")
		editJSON(t, p, func(v any) any {
			m := v.(map[string]any)
			m["classRules"] = map[string]any{"NET": "forbid"}
			return m
		})
		return p
	}},
}

// TestIncrementalIdentical: after each of a series of random edits of a generated tree
// (labels added, removed, changed and moved; driver metadata changed; catalog-wide files
// changed), a build with the cache gives the release and problems a clean build gives, byte
// for byte, and builds only the product directories the edit touched.
func TestIncrementalIdentical(t *testing.T) {
	labels := filepath.Join(t.TempDir(), "labels")
	if _, err := bench.GenerateLabels(labels, bench.LabelOptions{Labels: 400, Seed: 7, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	age(t, labels)
	s, _ := testKey(t)
	cache := filepath.Join(t.TempDir(), "cache")
	inc, incFiles := cacheBuild(t, labels, cache, s)
	clean, cleanFiles := cacheBuild(t, labels, "", s)
	sameRelease(t, "first build", inc, clean, incFiles, cleanFiles)
	sameAsFullTree(t, "first build", labels, clean)
	if inc.Cache == nil || inc.Cache.Reused != 0 || inc.Cache.Built == 0 {
		t.Fatalf("first build: cache %+v, want every product built", inc.Cache)
	}
	products := inc.Cache.Built

	inc, incFiles = cacheBuild(t, labels, cache, s)
	sameRelease(t, "unchanged tree", inc, clean, incFiles, cleanFiles)
	if inc.Cache.Reused != products || inc.Cache.Built != 0 || inc.Cache.FilesHashed != 0 || inc.Cache.DirsRead != 0 {
		t.Fatalf("unchanged tree: cache %+v, want all %d products reused, no file hashed and no directory listed", inc.Cache, products)
	}

	r := rand.New(rand.NewSource(1))
	for round := 0; round < 3; round++ {
		for _, i := range r.Perm(len(treeEdits)) {
			e := treeEdits[i]
			did := e.apply(t, r, labels)
			what := fmt.Sprintf("round %d, %s (%s)", round, e.name, did)
			// A change within the file index's racy window is hashed again, not missed:
			// nothing here waits for the clock.
			inc, incFiles := cacheBuild(t, labels, cache, s)
			clean, cleanFiles := cacheBuild(t, labels, "", s)
			sameRelease(t, what, inc, clean, incFiles, cleanFiles)
			sameAsFullTree(t, what, labels, clean)
			if len(inc.Cache.Ignored) > 0 {
				t.Fatalf("%s: entries ignored: %v", what, inc.Cache.Ignored)
			}
			// partners.json, audiences.json and catalog.json are in every product's key;
			// blocks.json is read by the rules that span labels only.
			catalogWide := slices.Contains([]string{"partners.json", "audiences.json", "catalog.json"}, filepath.Base(did))
			if !catalogWide && inc.Cache.Built > 2 {
				t.Errorf("%s: %d product directories built; want the one or two the edit touched", what, inc.Cache.Built)
			}
			t.Logf("%s: built %d, reused %d, %d files hashed", what, inc.Cache.Built, inc.Cache.Reused, inc.Cache.FilesHashed)
		}
	}
}

// age sets the modification time of every file and directory of dir far back, as an export's files are
// by the time of the next build: the file index trusts them (a file modified within its
// racy window is hashed again).
func age(t *testing.T, dir string) {
	t.Helper()
	old := time.Unix(1e9, 0)
	var dirs []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		} else if err == nil {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	})
	for _, d := range dirs { // after their files: a directory's times are its entries'
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCacheDamageIgnored: entries that are truncated, flipped, copied over another
// product's, or garbage are detected and ignored, and the release is still a clean build's.
func TestCacheDamageIgnored(t *testing.T) {
	labels := filepath.Join(t.TempDir(), "labels")
	if _, err := bench.GenerateLabels(labels, bench.LabelOptions{Labels: 120, Seed: 3, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	age(t, labels)
	s, _ := testKey(t)
	cache := filepath.Join(t.TempDir(), "cache")
	cacheBuild(t, labels, cache, s)
	clean, cleanFiles := cacheBuild(t, labels, "", s)
	entries := files(t, cache, "v1/products/*/*")
	if len(entries) < 4 {
		t.Fatalf("%d cache entries", len(entries))
	}
	damage := []struct {
		name string
		do   func(path string)
	}{
		{"truncated", func(p string) { b := mustRead(t, p); os.WriteFile(p, b[:len(b)/2], 0o644) }},
		{"a flipped byte", func(p string) { b := mustRead(t, p); b[len(b)/3] ^= 0x40; os.WriteFile(p, b, 0o644) }},
		{"another product's entry (foreign)", func(p string) {
			other := entries[0]
			if other == p {
				other = entries[1]
			}
			os.WriteFile(p, mustRead(t, other), 0o644)
		}},
		{"a summary that does not decode, under a valid checksum (a faulty build's)", func(p string) {
			key := filepath.Base(p)
			u, err := decodeEntry(mustRead(t, p), key)
			if err != nil {
				t.Fatal(err)
			}
			u.summary = append(u.summary[:len(u.summary):len(u.summary)], 0xff) // bytes after the product
			os.WriteFile(p, encodeEntry(key, u), 0o644)
		}},
		{"garbage", func(p string) {
			os.WriteFile(p, []byte("driveway build cache entry v1\nnot an entry at all, but long enough to have a checksum"), 0o644)
		}},
	}
	for i, d := range damage {
		d.do(entries[len(entries)-1-i])
	}
	inc, incFiles := cacheBuild(t, labels, cache, s)
	sameRelease(t, "damaged cache", inc, clean, incFiles, cleanFiles)
	if len(inc.Cache.Ignored) != len(damage) || inc.Cache.Built != len(damage) {
		t.Fatalf("cache %+v: want the %d damaged entries ignored and their products built", inc.Cache, len(damage))
	}
	// The build rewrote them: the next one reuses everything.
	inc, _ = cacheBuild(t, labels, cache, s)
	if len(inc.Cache.Ignored) != 0 || inc.Cache.Built != 0 {
		t.Fatalf("after the repair: cache %+v", inc.Cache)
	}
	// A damaged file index is ignored too: every file is hashed again, nothing rebuilt.
	index := filepath.Join(cache, "v1", "files")
	b := mustRead(t, index)
	b[len(b)/2] ^= 1
	os.WriteFile(index, b, 0o644)
	inc, incFiles = cacheBuild(t, labels, cache, s)
	sameRelease(t, "damaged file index", inc, clean, incFiles, cleanFiles)
	if inc.Cache.FilesIndexed != 0 || inc.Cache.Built != 0 {
		t.Fatalf("damaged file index: cache %+v, want every file hashed and every product reused", inc.Cache)
	}
}

// TestCacheVersion: entries written by other code (another CacheVersion) are not used.
func TestCacheVersion(t *testing.T) {
	labels := filepath.Join(t.TempDir(), "labels")
	if _, err := bench.GenerateLabels(labels, bench.LabelOptions{Labels: 60, Seed: 5, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	s, _ := testKey(t)
	cache := filepath.Join(t.TempDir(), "cache")
	cacheBuild(t, labels, cache, s)
	rep, err := Build(context.Background(), Options{Labels: labels, Out: filepath.Join(t.TempDir(), "cat"), Signers: []*signing.Signer{s},
		Now: testNow, Cache: cache, CacheVersion: "other code", SkipInvalid: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cache.Reused != 0 || rep.Cache.Built == 0 {
		t.Fatalf("cache %+v: another build version reused entries", rep.Cache)
	}
}

// FuzzDecodeEntry: arbitrary bytes never panic the entry decoder; anything it accepts is
// re-encoded to the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	key := strings.Repeat("ab", 32)
	u := &unit{summary: []byte("DWS1\x00\x00\x00\x00\x00\x00\x00"), labels: []compiledLabel{{id: "1", value: []byte{1, 2}, rows: appendHWIDRow(nil, `PCI\VEN_1`, compiled.Row{}), nrows: 1}}}
	f.Add(encodeEntry(key, u))
	f.Add([]byte(entryMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := decodeEntry(b, key)
		if err != nil {
			return
		}
		// What an accepted entry decodes to encodes to one canonical form, which decodes
		// to the same unit.
		canon := encodeEntry(key, u)
		u2, err := decodeEntry(canon, key)
		if err != nil {
			t.Fatalf("an accepted entry does not re-encode: %v", err)
		}
		if again := encodeEntry(key, u2); !bytes.Equal(again, canon) {
			t.Fatalf("the canonical form of an entry changes when decoded and encoded again")
		}
	})
}

// FuzzParseIndex: arbitrary bytes never panic the file index parser, and a written index
// parses back.
func FuzzParseIndex(f *testing.F) {
	p := filepath.Join(f.TempDir(), "files")
	want := map[string]fileStat{"products/1/product.json": {size: 10, mtime: -5, ctime: 7, inode: 9, sum: [32]byte{1}}}
	wantDirs := map[string]dirStat{"products/1": {mtime: 3, ctime: 4, inode: 5, entries: []dirEntry{{"product.json", false}, {"submissions", true}}}}
	if err := writeIndex(p, want, wantDirs); err != nil {
		f.Fatal(err)
	}
	b := mustRead(f, p)
	if got, gotDirs := parseIndex(b); !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotDirs, wantDirs) {
		f.Fatalf("index read back as %v %v, want %v %v", got, gotDirs, want, wantDirs)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) { parseIndex(b) })
}

// TestCacheRacyWindow is the attack on the file index: a file rewritten in place with
// content of the same size and a stat the index recorded (size, times, inode: what a write
// within the file system's timestamp tick of the index's own write leaves). The index
// trusts a recorded stat only for files modified before its own write less the racy
// window; inside it the file is hashed again and the change is seen. The same forgery
// outside the window shows what the window guards: the build would reuse the stale entry.
func TestCacheRacyWindow(t *testing.T) {
	labels := filepath.Join(t.TempDir(), "labels")
	if _, err := bench.GenerateLabels(labels, bench.LabelOptions{Labels: 40, Seed: 11, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	age(t, labels)
	s, _ := testKey(t)
	target := files(t, labels, "products/*/submissions/*/shippingLabels/*.json")[0]
	rel, err := filepath.Rel(labels, target)
	if err != nil {
		t.Fatal(err)
	}
	rel = filepath.ToSlash(rel)
	original := mustRead(t, target)
	at := strings.Index(string(original), `"name": "`) + len(`"name": "`)
	if at < len(`"name": "`) {
		t.Fatalf("no name in %s", target)
	}
	for _, c := range []struct {
		what      string
		indexLate time.Duration // the index's modification time after the file's
		seen      bool
	}{
		{"inside the racy window", racyWindow / 2, true},
		{"outside the racy window (the forgery the window stops)", 5 * racyWindow, false},
	} {
		if err := os.WriteFile(target, original, 0o644); err != nil {
			t.Fatal(err)
		}
		stamp := time.Unix(1.5e9, 0)
		if err := os.Chtimes(target, stamp, stamp); err != nil {
			t.Fatal(err)
		}
		cache := filepath.Join(t.TempDir(), "cache")
		cacheBuild(t, labels, cache, s)

		// The same size, other content, the file's time put back; then the index made to
		// record exactly this stat with the old content's hash.
		forged := bytes.Clone(original)
		forged[at] ^= 0x01
		if err := os.WriteFile(target, forged, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(target, stamp, stamp); err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(target)
		if err != nil {
			t.Fatal(err)
		}
		index := filepath.Join(cache, "v1", "files")
		fileIndex, dirIndex := parseIndex(mustRead(t, index))
		old, ok := fileIndex[rel]
		if !ok {
			t.Fatalf("the index has no %s", rel)
		}
		st := statOf(info)
		st.sum = old.sum
		fileIndex[rel] = st
		if err := writeIndex(index, fileIndex, dirIndex); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(index, stamp.Add(c.indexLate), stamp.Add(c.indexLate)); err != nil {
			t.Fatal(err)
		}

		inc, incFiles := cacheBuild(t, labels, cache, s)
		clean, cleanFiles := cacheBuild(t, labels, "", s)
		if c.seen {
			sameRelease(t, c.what, inc, clean, incFiles, cleanFiles)
			if inc.Cache.FilesHashed != 1 || inc.Cache.Built != 1 {
				t.Errorf("%s: cache %+v, want the one file hashed again and its product built", c.what, inc.Cache)
			}
		} else if maps.EqualFunc(incFiles, cleanFiles, bytes.Equal) || inc.Cache.FilesHashed != 0 {
			t.Errorf("%s: the forged stat was not trusted (cache %+v): the case inside the window proves nothing", c.what, inc.Cache)
		}
	}
}
