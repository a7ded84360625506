package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/driveway/driveway/catalogs/examples"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/testclock"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
)

// The build's guards: a build cannot publish an outage by accident. A typo'd --labels, an
// empty export or a tree that lost most of its labels would otherwise become a signed
// release that every edge swaps in, answering every PC with no offers.

// liveExample lays the example out as the repository does (WORK/examples/contoso), makes a
// key and builds release 1 into WORK/catalog at the tests' clock.
func liveExample(t *testing.T) (work, tree, catalog, key string) {
	t.Helper()
	work = t.TempDir()
	tree = filepath.Join(work, "examples", "contoso")
	if err := copyFS(examplesFS(), "contoso", tree); err != nil {
		t.Fatal(err)
	}
	key = filepath.Join(work, "k")
	if code, _, stderr := runCLI(nil, "keygen", "--unencrypted", "--out", key); code != 0 {
		t.Fatal(stderr)
	}
	catalog = filepath.Join(work, "catalog")
	if code, _, stderr := runCLI(nil, buildArgs(tree, catalog, key)...); code != 0 {
		t.Fatal(stderr)
	}
	return work, tree, catalog, key
}

// buildArgs is `driveway build` of labels into catalog at the tests' clock.
func buildArgs(labels, catalog, key string, extra ...string) []string {
	return append([]string{"build", "--labels", labels, "--out", catalog, "--key", key + ".key", "--now", testNow(), "--quiet"}, extra...)
}

// snapshot reads every file under dir (nil when dir does not exist).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = string(b)
		return err
	})
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// unchanged checks that dir holds exactly the files of before, byte for byte.
func unchanged(t *testing.T, what, dir string, before map[string]string) {
	t.Helper()
	after := snapshot(t, dir)
	if len(after) != len(before) {
		t.Errorf("%s: %d files in %s, %d before", what, len(after), dir, len(before))
	}
	for name, data := range before {
		if after[name] != data {
			t.Errorf("%s: %s changed", what, name)
		}
	}
}

// newest is the newest release's manifest in catalog, read without a key (what is there, not
// whether it verifies).
func newest(t *testing.T, catalog string) *index.Manifest {
	t.Helper()
	_, env, err := index.Latest(catalog)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := signing.Payload(env, index.ManifestType)
	if err != nil {
		t.Fatal(err)
	}
	m, err := index.ParseManifest(payload)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBuildTypoedLabels: `--labels catalogs/examples` for catalogs/examples/contoso over a
// live catalog: validate and build exit 1 with one line naming the directory meant, and the
// catalog stays as it was, byte for byte.
func TestBuildTypoedLabels(t *testing.T) {
	work, tree, catalog, key := liveExample(t)
	before := snapshot(t, catalog)
	parent := filepath.Join(work, "examples")
	want := fmt.Sprintf("catalogs: %s has no products/ directory, so it is not a label tree; did you mean %s?\n", parent, tree)

	code, stdout, stderr := runCLI(nil, buildArgs(parent, catalog, key)...)
	if code != exitFailure || stderr != "driveway build: "+want {
		t.Errorf("build --labels %s: exit %d\n%s%s\nwant exit 1 and: driveway build: %s", parent, code, stdout, stderr, want)
	}
	unchanged(t, "build --labels parent", catalog, before)
	if m := newest(t, catalog); m.Sequence != 1 || m.Counts.Labels != 6 {
		t.Errorf("the newest release is %d of %d labels, want 1 of 6", m.Sequence, m.Counts.Labels)
	}
	code, stdout, stderr = runCLI(nil, buildArgs(parent, catalog, key, "--control-only")...)
	if code != exitFailure || stderr != "driveway build: "+want {
		t.Errorf("build --control-only --labels %s: exit %d\n%s%s", parent, code, stdout, stderr)
	}
	unchanged(t, "build --control-only --labels parent", catalog, before)

	code, stdout, stderr = runCLI(nil, "validate", "--labels", parent)
	if code != exitFailure || stdout != "" || stderr != "driveway validate: "+want {
		t.Errorf("validate --labels %s: exit %d\n%s%s\nwant exit 1 and: driveway validate: %s", parent, code, stdout, stderr, want)
	}
	if code, _, stderr := runCLI(nil, "validate", "--labels", tree); code != exitOK {
		t.Errorf("validate --labels %s: exit %d\n%s", tree, code, stderr)
	}
}

// TestBuildEmptyDirectory: an empty directory is no label tree, over a live catalog and into a
// new one; a tree with an empty products/ is one, of no labels, which is no release either.
func TestBuildEmptyDirectory(t *testing.T) {
	work, _, catalog, key := liveExample(t)
	before := snapshot(t, catalog)
	empty := filepath.Join(work, "empty")
	os.Mkdir(empty, 0o755)
	want := fmt.Sprintf("catalogs: %s has no products/ directory, so it is not a label tree\n", empty)
	for _, out := range []string{catalog, filepath.Join(work, "new-catalog")} {
		code, stdout, stderr := runCLI(nil, buildArgs(empty, out, key)...)
		if code != exitFailure || stderr != "driveway build: "+want {
			t.Errorf("build --labels %s --out %s: exit %d\n%s%s\nwant exit 1 and: driveway build: %s", empty, out, code, stdout, stderr, want)
		}
	}
	unchanged(t, "an empty directory over a live catalog", catalog, before)
	unchanged(t, "an empty directory into a new catalog", filepath.Join(work, "new-catalog"), nil)
	if code, _, stderr := runCLI(nil, "validate", "--labels", empty); code != exitFailure || stderr != "driveway validate: "+want {
		t.Errorf("validate --labels %s: exit %d\n%s", empty, code, stderr)
	}

	noLabels := filepath.Join(work, "no-labels")
	os.MkdirAll(filepath.Join(noLabels, "products"), 0o755)
	fresh := filepath.Join(work, "fresh")
	code, _, stderr := runCLI(nil, buildArgs(noLabels, fresh, key)...)
	if want := "driveway build: release 1 would hold no labels (0 in the tree, 0 left out as invalid); pass --allow-shrink if this is meant; nothing was written\n"; code != exitFailure || stderr != want {
		t.Errorf("a first build of no labels: exit %d\n%s\nwant exit 1 and: %s", code, stderr, want)
	}
	unchanged(t, "a first build of no labels", fresh, nil)
	if code, _, stderr := runCLI(nil, buildArgs(noLabels, fresh, key, "--allow-shrink")...); code != exitOK || newest(t, fresh).Counts.Labels != 0 {
		t.Errorf("a first build of no labels with --allow-shrink: exit %d\n%s", code, stderr)
	}
}

// removeLabels deletes the shipping labels of the example's products named (two of them hold
// one label each).
func removeLabels(t *testing.T, tree string, products ...string) {
	t.Helper()
	for _, p := range products {
		files, _ := filepath.Glob(filepath.Join(tree, "products", p, "submissions", "*", "shippingLabels", "*.json"))
		if len(files) != 1 {
			t.Fatalf("product %s has %d labels, want 1", p, len(files))
		}
		if err := os.Remove(files[0]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBuildShrink: a tree that lost two of its six labels is refused, and published with
// --allow-shrink; a tree that only gained labels is published.
func TestBuildShrink(t *testing.T) {
	_, tree, catalog, key := liveExample(t)
	before := snapshot(t, catalog)
	removeLabels(t, tree, "1152921504606847401", "1152921504606847501")
	code, stdout, stderr := runCLI(nil, buildArgs(tree, catalog, key)...)
	want := "driveway build: release 2 would drop 2 of the 6 labels of release 1 (33.3% > 10%); pass --allow-shrink if this is meant; nothing was written\n"
	if code != exitFailure || stderr != want {
		t.Errorf("dropping 2 of 6: exit %d\n%s%s\nwant exit 1 and: %s", code, stdout, stderr, want)
	}
	unchanged(t, "dropping 2 of 6", catalog, before)
	if code, _, stderr := runCLI(nil, buildArgs(tree, catalog, key, "--max-drop", "30%")...); code != exitFailure ||
		stderr != "driveway build: release 2 would drop 2 of the 6 labels of release 1 (33.3% > 30%); pass --allow-shrink if this is meant; nothing was written\n" {
		t.Errorf("dropping 2 of 6 with --max-drop 30%%: exit %d\n%s", code, stderr)
	}
	unchanged(t, "dropping 2 of 6 with --max-drop 30%", catalog, before)
	for _, bad := range []string{"ten", "-1%", "101%", "NaN"} {
		if code, _, stderr := runCLI(nil, buildArgs(tree, catalog, key, "--max-drop", bad)...); code != exitUsage ||
			stderr != fmt.Sprintf("driveway build: --max-drop %q is not a percent from 0%% to 100%%, like 10%%; run 'driveway help build'\n", bad) {
			t.Errorf("--max-drop %s: exit %d\n%s", bad, code, stderr)
		}
	}
	if code, _, stderr := runCLI(nil, buildArgs(tree, catalog, key, "--control-only", "--allow-shrink")...); code != exitUsage {
		t.Errorf("--control-only --allow-shrink: exit %d\n%s", code, stderr)
	}
	unchanged(t, "usage errors", catalog, before)

	// A larger limit, or --allow-shrink, publishes it.
	for i, extra := range [][]string{{"--max-drop", "40"}, {"--allow-shrink"}} {
		c := copyDir(t, catalog)
		if code, _, stderr := runCLI(nil, buildArgs(tree, c, key, extra...)...); code != exitOK {
			t.Errorf("dropping 2 of 6 with %v: exit %d\n%s", extra, code, stderr)
		}
		if m := newest(t, c); m.Sequence != 2 || m.Counts.Labels != 4 {
			t.Errorf("%d: the newest release is %d of %d labels, want 2 of 4", i, m.Sequence, m.Counts.Labels)
		}
	}
	// --max-drop 0% refuses any drop (a release that drops none goes through).
	code, _, stderr = runCLI(nil, buildArgs(tree, catalog, key, "--max-drop", "0%")...)
	if want := "driveway build: release 2 would drop 2 of the 6 labels of release 1 (33.3% > 0%); pass --allow-shrink if this is meant; nothing was written\n"; code != exitFailure || stderr != want {
		t.Errorf("--max-drop 0%%: exit %d\n%s", code, stderr)
	}
}

// TestBuildGrow: a release that drops no label and adds some is published.
func TestBuildGrow(t *testing.T) {
	work := t.TempDir()
	tree := filepath.Join(work, "contoso")
	if err := copyFS(examplesFS(), "contoso", tree); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(work, "k")
	runCLI(nil, "keygen", "--unencrypted", "--out", key)
	catalog := filepath.Join(work, "catalog")
	// Release 1 without two labels (a first build: nothing to shrink from).
	hidden := filepath.Join(work, "hidden")
	os.Mkdir(hidden, 0o755)
	var moved [][2]string
	for _, p := range []string{"1152921504606847401", "1152921504606847501"} {
		from, to := filepath.Join(tree, "products", p), filepath.Join(hidden, p)
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
		moved = append(moved, [2]string{to, from})
	}
	if code, _, stderr := runCLI(nil, buildArgs(tree, catalog, key)...); code != exitOK {
		t.Fatalf("release 1 of 4 labels: %s", stderr)
	}
	for _, m := range moved {
		os.Rename(m[0], m[1])
	}
	if code, _, stderr := runCLI(nil, buildArgs(tree, catalog, key)...); code != exitOK {
		t.Fatalf("release 2, 2 labels added: exit %d\n%s", code, stderr)
	}
	if m := newest(t, catalog); m.Sequence != 2 || m.Counts.Labels != 6 {
		t.Errorf("the newest release is %d of %d labels, want 2 of 6", m.Sequence, m.Counts.Labels)
	}
}

// TestBuildCatalogChange: a tree whose catalog.json names another catalog is refused.
func TestBuildCatalogChange(t *testing.T) {
	_, tree, catalog, key := liveExample(t)
	before := snapshot(t, catalog)
	os.WriteFile(filepath.Join(tree, "catalog.json"), []byte(`{"name": "fabrikam", "expiresAfter": "720h"}`), 0o644)
	code, stdout, stderr := runCLI(nil, buildArgs(tree, catalog, key)...)
	want := "driveway build: release 2 would rename catalog contoso-example (release 1) to fabrikam; pass --allow-catalog-change if this is meant; nothing was written\n"
	if code != exitFailure || stderr != want {
		t.Errorf("a rename: exit %d\n%s%s\nwant exit 1 and: %s", code, stdout, stderr, want)
	}
	unchanged(t, "a rename", catalog, before)
	// --allow-shrink is not for this, and a control-only release keeps the catalog.
	if code, _, stderr := runCLI(nil, buildArgs(tree, catalog, key, "--allow-shrink")...); code != exitFailure || stderr != want {
		t.Errorf("a rename with --allow-shrink: exit %d\n%s", code, stderr)
	}
	code, _, stderr = runCLI(nil, buildArgs(tree, catalog, key, "--control-only")...)
	if want := fmt.Sprintf("driveway build: the label tree %s is catalog fabrikam, release 1 is catalog contoso-example; a control-only release cannot change the catalog; nothing was written\n", tree); code != exitFailure || stderr != want {
		t.Errorf("a rename by a control-only release: exit %d\n%s\nwant: %s", code, stderr, want)
	}
	unchanged(t, "a rename with --allow-shrink or --control-only", catalog, before)
	if code, _, stderr := runCLI(nil, buildArgs(tree, catalog, key, "--allow-catalog-change")...); code != exitOK {
		t.Errorf("a rename with --allow-catalog-change: exit %d\n%s", code, stderr)
	}
	if m := newest(t, catalog); m.Sequence != 2 || m.Catalog != "fabrikam" || m.Counts.Labels != 6 {
		t.Errorf("the newest release is %d of %s, %d labels; want 2 of fabrikam, 6", m.Sequence, m.Catalog, m.Counts.Labels)
	}
}

// TestRefusedBuildEdgeKeepsServing: an edge on the catalog, and an edge started after the
// refused builds (a restart, a new node), both serve release 1 and answer the example
// request as before.
func TestRefusedBuildEdgeKeepsServing(t *testing.T) {
	work, tree, catalog, key := liveExample(t)
	v, err := signing.LoadVerifier(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	request, err := fs.ReadFile(examples.Requests, "requests/contoso-model-b13.json")
	if err != nil {
		t.Fatal(err)
	}
	edge := func() (release, answer []byte) {
		t.Helper()
		srv, err := serve.New(serve.Config{Catalog: catalog, Keys: []*signing.Verifier{v}, Clock: testclock.Now, DisableInotify: true, Poll: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		defer srv.Shutdown(context.Background())
		get := func(resp *http.Response, err error) []byte {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s %v", resp.Request.URL, b, err)
			}
			return b
		}
		base := "http://" + ln.Addr().String()
		return get(http.Get(base + "/v1/release")), get(http.Post(base+"/v1/offers", "application/json", bytes.NewReader(request)))
	}
	release, answer := edge()
	if !bytes.Contains(release, []byte(`"sequence":1,`)) || !bytes.Contains(release, []byte(`"labels":6,`)) {
		t.Fatalf("the edge serves %s, want release 1 of 6 labels", release)
	}

	// The typo'd parent directory, and a tree whose labels all went missing.
	runCLI(nil, buildArgs(filepath.Join(work, "examples"), catalog, key)...)
	removeLabels(t, tree, "1152921504606847101", "1152921504606847301", "1152921504606847401", "1152921504606847501")
	os.RemoveAll(filepath.Join(tree, "products", "1152921504606847201"))
	runCLI(nil, buildArgs(tree, catalog, key)...)

	release2, answer2 := edge()
	if !bytes.Equal(release2, release) || !bytes.Equal(answer2, answer) {
		t.Errorf("after the refused builds an edge serves\n%s%s\nbefore\n%s%s", release2, answer2, release, answer)
	}
}
