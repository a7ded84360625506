package serve_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/atomicfile"
	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/trust"
)

// The attacks of the trust issue (a cancel must stick), each against a real build, real
// files and a real edge on loopback.

// cancelPipeline builds scenario 01's tree (its label 3001 live) as release 1 at t0 into a
// pipeline directory, keeps a copy of the directory as it was then (what an attacker, or a
// stale mirror, can replay), and builds the same tree with the label cancelled as release 2
// an hour later. It returns the pipeline, the old copy, the request that 3001 answers, and
// the offers part of each release.
type cancelled struct {
	pipeline, old string
	request       []byte
	live, dead    []byte // the offers of release 1 (3001 offered) and release 2 (cancelled)
	t0            time.Time
	catalog       string
}

func cancelPipeline(t *testing.T, k key) *cancelled {
	t.Helper()
	sc := conformance.LoadOne(t, "01-forward-and-floor.json")
	t0 := mustTime(t, sc.Now)
	work := t.TempDir()
	labels := filepath.Join(work, "contoso")
	conformance.WriteTree(t, labels, sc.Labels)
	c := &cancelled{pipeline: filepath.Join(work, "pipeline"), old: filepath.Join(work, "old"), request: sc.Requests[1].Request, t0: t0, catalog: "contoso"}
	buildRelease(t, labels, c.pipeline, k, t0, 0)
	c.live = offersPart(t, c.pipeline, k, c.request, t0)
	copyDir(t, c.pipeline, c.old)

	label := filepath.Join(labels, "products/1001/submissions/2001/shippingLabels/3001.json")
	var doc map[string]any
	if err := json.Unmarshal(mustRead(t, label), &doc); err != nil {
		t.Fatal(err)
	}
	dist, _ := doc["distribution"].(map[string]any)
	if dist == nil {
		dist = map[string]any{}
	}
	dist["cancelled"] = map[string]any{"at": t0.Add(30 * time.Minute).Format(time.RFC3339), "rollback": false, "reason": "kernel crashes"}
	doc["distribution"] = dist
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(label, b, 0o644); err != nil {
		t.Fatal(err)
	}
	buildRelease(t, labels, c.pipeline, k, t0.Add(time.Hour), 0)
	c.dead = offersPart(t, c.pipeline, k, c.request, t0.Add(time.Hour))
	if bytes.Equal(c.live, c.dead) || !bytes.Contains(c.live, []byte(`"3001"`)) || bytes.Contains(c.dead, []byte(`"3001"`)) {
		t.Fatalf("the cancel does not show in the offers:\nlive %s\ndead %s", c.live, c.dead)
	}
	return c
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// offersNow asks the edge and returns status and body.
func offersNow(t *testing.T, base string, req []byte) (int, []byte) {
	t.Helper()
	return post(t, base+"/v1/offers", req)
}

// TestFreshEdgeRefusesOldRelease: an origin edge started with an empty cache, whose origin
// serves an older, validly signed, unexpired release (one in which a cancelled label is
// still live), serves nothing once that release's timestamp has expired (a day), and an
// edge that has seen the newer release never goes back to it, even within the day.
// Before the timestamp, the fresh edge served the old release and offered the cancelled
// label, /readyz 200.
func TestFreshEdgeRefusesOldRelease(t *testing.T) {
	k := newKey(t)
	c := cancelPipeline(t, k)
	oldOrigin := httptest.NewServer(http.FileServer(http.Dir(c.old)))
	defer oldOrigin.Close()

	// A day and an hour later: release 1 itself is valid for a week, its timestamp for a day.
	clock := newClock(c.t0.Add(25 * time.Hour))
	_, base := startServer(t, serve.Config{Origin: oldOrigin.URL, Cache: filepath.Join(t.TempDir(), "cache"), Keys: []*signing.Verifier{k.verifier},
		Clock: clock.now, Poll: 20 * time.Millisecond})
	waitFor(t, 5*time.Second, "the stale timestamp refused", func() bool {
		return metric(t, base, `driveway_edge_refused_releases_total{reason="expired"}`) >= 1
	})
	if code, body := offersNow(t, base, c.request); code != 503 || bytes.Contains(body, []byte(`"3001"`)) {
		t.Errorf("fresh edge fed release 1: %d %s; want 503 and no offer of the cancelled label", code, body)
	}
	if code, _ := get(t, base+"/readyz"); code != 503 {
		t.Errorf("/readyz %d; want 503", code)
	}

	// The pipeline re-signs its timestamp on schedule; an edge on the real origin serves
	// release 2.
	stampNewest(t, c.pipeline, k, c.t0.Add(24*time.Hour))
	realOrigin := httptest.NewServer(http.FileServer(http.Dir(c.pipeline)))
	defer realOrigin.Close()
	state := filepath.Join(t.TempDir(), "state.json")
	cache := filepath.Join(t.TempDir(), "cache")
	srv, base2 := startServer(t, serve.Config{Origin: realOrigin.URL, Cache: cache, State: state, Keys: []*signing.Verifier{k.verifier},
		Clock: clock.now, Poll: 20 * time.Millisecond})
	waitFor(t, 5*time.Second, "release 2", func() bool { return releaseSeq(t, base2) == 2 })
	if code, body := offersNow(t, base2, c.request); code != 200 || !bytes.HasSuffix(body, c.dead) {
		t.Fatalf("release 2 from the real origin: %d %s", code, body)
	}
	srv.Shutdown(t.Context())

	// Restarted with an empty cache but its state, fed the old origin while release 1's
	// timestamp is still unexpired (an hour after it was signed): refused, as a rollback.
	clock.set(c.t0.Add(90 * time.Minute))
	_, base3 := startServer(t, serve.Config{Origin: oldOrigin.URL, Cache: filepath.Join(t.TempDir(), "cache"), State: state,
		Keys: []*signing.Verifier{k.verifier}, Clock: clock.now, Poll: 20 * time.Millisecond})
	waitFor(t, 5*time.Second, "the rollback refused", func() bool {
		return metric(t, base3, `driveway_edge_refused_releases_total{reason="timestamp"}`) >= 1
	})
	if code, body := offersNow(t, base3, c.request); code != 503 || bytes.Contains(body, []byte(`"3001"`)) {
		t.Errorf("edge that saw release 2, fed release 1: %d %s; want 503", code, body)
	}
}

// stampNewest re-signs the timestamp of a catalog directory's newest release at at (the
// pipeline's schedule, as driveway timestamp does).
func stampNewest(t *testing.T, dir string, k key, at time.Time) {
	t.Helper()
	m := manifestOf(t, dir)
	_, env, err := index.Latest(dir)
	if err != nil {
		t.Fatal(err)
	}
	stamp(t, dir, k, m.Catalog, m.Sequence, env, at)
}

// TestNoFallbackToThePast: a catalog edge restarted after its newest envelope was truncated,
// or after the older envelope was copied over it, serves nothing (and says why) rather
// than the older release; an older envelope copied in under a newer name is not served.
// Before, the edge fell back to release 1 and offered the cancelled label.
func TestNoFallbackToThePast(t *testing.T) {
	k := newKey(t)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		serves uint64 // 0: nothing
	}{
		{"newest truncated", func(t *testing.T, dir string) {
			p := index.ReleasePath(dir, 2)
			os.WriteFile(p, mustRead(t, p)[:100], 0o644)
		}, 0},
		{"older copied over the newest", func(t *testing.T, dir string) {
			os.WriteFile(index.ReleasePath(dir, 2), mustRead(t, index.ReleasePath(dir, 1)), 0o644)
		}, 0},
		{"older copied in as release 3", func(t *testing.T, dir string) {
			os.WriteFile(index.ReleasePath(dir, 3), mustRead(t, index.ReleasePath(dir, 1)), 0o644)
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cancelPipeline(t, k)
			tc.damage(t, c.pipeline)
			clock := newClock(c.t0.Add(2 * time.Hour))
			_, base := startServer(t, serve.Config{Catalog: c.pipeline, Keys: []*signing.Verifier{k.verifier}, Clock: clock.now, DisableInotify: true, Poll: 20 * time.Millisecond})
			code, body := offersNow(t, base, c.request)
			if tc.serves == 0 {
				if code != 503 || bytes.Contains(body, []byte(`"3001"`)) {
					t.Errorf("%d %s; want 503, and never the cancelled label", code, body)
				}
				if n := metric(t, base, `driveway_edge_refused_releases_total{reason="timestamp"}`); n != 1 {
					t.Errorf("refused for timestamp: %v, want 1", n)
				}
				return
			}
			if seq := releaseSeq(t, base); seq != tc.serves || code != 200 || !bytes.HasSuffix(body, c.dead) {
				t.Errorf("serving %d: %d %s; want release %d", seq, code, body, tc.serves)
			}
		})
	}
}

// TestTimeBounds: a release created in the future (2031) or valid for ten years is refused
// by the edge, whatever its signature and timestamp; before, both were accepted.
func TestTimeBounds(t *testing.T) {
	k := newKey(t)
	c := cancelPipeline(t, k)
	mA := manifestOf(t, c.old)
	now := c.t0.Add(2 * time.Hour)
	clock := newClock(now)
	dir := filepath.Join(t.TempDir(), "catalog")
	copyDir(t, c.old, dir)
	_, base := startServer(t, serve.Config{Catalog: dir, Keys: []*signing.Verifier{k.verifier}, Clock: clock.now, DisableInotify: true, Poll: 20 * time.Millisecond})
	if releaseSeq(t, base) != 1 {
		t.Fatal("release 1 not served")
	}
	future := *mA
	future.Sequence, future.Created, future.Expires = 2, time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2031, 1, 8, 0, 0, 0, 0, time.UTC)
	env := publishAs(t, dir, k, 2, future, k.signer)
	stamp(t, dir, k, mA.Catalog, 2, env, now) // a fresh timestamp: only the release's times are wrong
	waitFor(t, 5*time.Second, "the 2031 release refused", func() bool {
		return metric(t, base, `driveway_edge_refused_releases_total{reason="time"}`) == 1
	})
	long := *mA
	long.Sequence, long.Created, long.Expires = 3, now, now.AddDate(10, 0, 0)
	publishAs(t, dir, k, 3, long, k.signer)
	waitFor(t, 5*time.Second, "the ten-year release refused", func() bool {
		return metric(t, base, `driveway_edge_refused_releases_total{reason="time"}`) == 2
	})
	if seq := releaseSeq(t, base); seq != 1 {
		t.Errorf("serving release %d; want 1", seq)
	}
	// A timestamp valid for ten years is refused too.
	good := *mA
	good.Sequence = 4
	env4 := saveAs(t, dir, 4, good, k.signer) // named only by the ten-year timestamp below
	if _, err := trust.Stamp(dir, mA.Catalog, 4, env4, now, now.AddDate(10, 0, 0), k.signer); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the ten-year timestamp refused", func() bool {
		return metric(t, base, `driveway_edge_refused_releases_total{reason="timestamp"}`) >= 1
	})
	if seq := releaseSeq(t, base); seq != 1 {
		t.Errorf("serving release %d; want 1", seq)
	}
}

// TestOtherCatalog: a release of another catalog signed by the same key is refused: by its
// timestamp (another catalog than the one the edge serves), and when a timestamp of this
// catalog names it, by its manifest. Before, edges never checked which catalog they served.
func TestOtherCatalog(t *testing.T) {
	k := newKey(t)
	c := cancelPipeline(t, k)
	mA := manifestOf(t, c.old)
	now := c.t0.Add(2 * time.Hour)
	dir := filepath.Join(t.TempDir(), "catalog")
	copyDir(t, c.old, dir)
	clock := newClock(now)
	_, base := startServer(t, serve.Config{Catalog: dir, Keys: []*signing.Verifier{k.verifier}, Clock: clock.now, DisableInotify: true, Poll: 20 * time.Millisecond})
	if releaseSeq(t, base) != 1 {
		t.Fatal("release 1 not served")
	}
	other := *mA
	other.Catalog, other.Sequence, other.Created = "fabrikam", 2, now
	env := publishAs(t, dir, k, 2, other, k.signer) // its timestamp says fabrikam
	waitFor(t, 5*time.Second, "another catalog's timestamp refused", func() bool {
		return metric(t, base, `driveway_edge_refused_releases_total{reason="timestamp"}`) == 1
	})
	stamp(t, dir, k, mA.Catalog, 2, env, now) // a timestamp of this catalog naming it
	waitFor(t, 5*time.Second, "another catalog's release refused", func() bool {
		return metric(t, base, `driveway_edge_refused_releases_total{reason="catalog"}`) == 1
	})
	if seq := releaseSeq(t, base); seq != 1 {
		t.Errorf("serving release %d; want 1", seq)
	}
	// Pinned by the configuration, an edge refuses another catalog from its first release.
	_, base2 := startServer(t, serve.Config{Catalog: c.old, CatalogName: "fabrikam", Keys: []*signing.Verifier{k.verifier}, Clock: clock.now, DisableInotify: true})
	if code, _ := get(t, base2+"/readyz"); code != 503 {
		t.Errorf("an edge pinned to fabrikam serves contoso: /readyz %d", code)
	}
}

// TestKeyRotation: the catalog's owners rotate from the old key to a new one with a root
// file signed by both; an edge configured with the old key follows it without a config
// change, serves releases signed by the new key, and refuses releases signed by the revoked
// old key. A root signed by the new key alone is refused.
func TestKeyRotation(t *testing.T) {
	oldKey, newKey2 := newKey(t), newKey(t)
	c := cancelPipeline(t, oldKey)
	mA := manifestOf(t, c.old)
	now := c.t0.Add(2 * time.Hour)
	dir := filepath.Join(t.TempDir(), "catalog")
	copyDir(t, c.old, dir)
	clock := newClock(now)
	state := filepath.Join(t.TempDir(), "state.json")
	srv, base := startServer(t, serve.Config{Catalog: dir, State: state, Keys: []*signing.Verifier{oldKey.verifier}, Clock: clock.now, DisableInotify: true, Poll: 20 * time.Millisecond})
	if releaseSeq(t, base) != 1 {
		t.Fatal("release 1 not served")
	}
	r1, _ := trust.FromKeys([]*signing.Verifier{oldKey.verifier}, 1)
	nk := trust.RootKeys{Keys: []*signing.Verifier{newKey2.verifier}}
	// A forged rotation, signed by the new key alone, is refused.
	if _, err := trust.NewRoot(r1, "", now.AddDate(1, 0, 0), nk, nk, nk, newKey2.signer); err == nil {
		t.Fatal("NewRoot made a root the old key did not sign")
	}
	root2, err := trust.NewRoot(r1, "", now.AddDate(1, 0, 0), nk, nk, nk, oldKey.signer, newKey2.signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(filepath.Join(dir, filepath.FromSlash(trust.RootPath(2))), root2, 0o644); err != nil {
		t.Fatal(err)
	}
	m := *mA
	m.Sequence, m.Created = 2, now
	publishAs(t, dir, newKey2, 2, m, newKey2.signer)
	waitFor(t, 5*time.Second, "release 2 by the new key", func() bool { return releaseSeq(t, base) == 2 })
	if v := metric(t, base, "driveway_edge_root_version"); v != 2 {
		t.Errorf("root version %v, want 2", v)
	}
	// The old key is revoked: its release and timestamp are refused.
	m.Sequence = 3
	publishAs(t, dir, oldKey, 3, m, oldKey.signer)
	waitFor(t, 5*time.Second, "the revoked key refused", func() bool {
		return metric(t, base, `driveway_edge_refused_releases_total{reason="timestamp"}`) >= 1
	})
	if seq := releaseSeq(t, base); seq != 2 {
		t.Errorf("serving release %d; want 2", seq)
	}
	srv.Shutdown(t.Context())
	// Restarted with its state but with the root file gone: it still trusts root 2.
	os.RemoveAll(filepath.Join(dir, trust.RootDir))
	m.Sequence = 4
	publishAs(t, dir, newKey2, 4, m, newKey2.signer)
	_, base2 := startServer(t, serve.Config{Catalog: dir, State: state, Keys: []*signing.Verifier{oldKey.verifier}, Clock: clock.now, DisableInotify: true})
	if seq := releaseSeq(t, base2); seq != 4 {
		t.Errorf("restarted edge serves %d; want 4 (signed by the new key, trusted from its state)", seq)
	}
	st, _ := os.ReadFile(state)
	if !strings.Contains(string(st), `"rootVersion": 2`) {
		t.Errorf("state: %s", st)
	}
}

// TestTimestampExpiryWhileServing: an edge that can no longer get a fresh timestamp stops
// offering when the one it has expires, even though the release itself is valid for days;
// --stale-ok extends that, and says so in a metric while it is what keeps the edge serving;
// a re-signed timestamp makes it fresh again.
func TestTimestampExpiryWhileServing(t *testing.T) {
	k := newKey(t)
	sc := conformance.LoadOne(t, "01-forward-and-floor.json")
	now := mustTime(t, sc.Now)
	work := t.TempDir()
	conformance.WriteTree(t, filepath.Join(work, "labels"), sc.Labels)
	dir := filepath.Join(work, "catalog")
	buildRelease(t, filepath.Join(work, "labels"), dir, k, now, 0) // a week; its timestamp a day
	req := sc.Requests[1].Request
	clock := newClock(now)
	_, base := startServer(t, serve.Config{Catalog: dir, Keys: []*signing.Verifier{k.verifier}, Clock: clock.now,
		StaleOK: 30 * time.Minute, DisableInotify: true, Poll: 20 * time.Millisecond})
	state := func(step string, wantOffers bool, wantStaleOK float64) {
		t.Helper()
		_, body := post(t, base+"/v1/offers", req)
		if offered := !bytes.HasSuffix(body, []byte(`"offers":[]}`+"\n")); offered != wantOffers {
			t.Errorf("%s: %s; want offers %t", step, body, wantOffers)
		}
		if got := metric(t, base, "driveway_edge_stale_ok_in_use"); got != wantStaleOK {
			t.Errorf("%s: stale_ok_in_use %v, want %v", step, got, wantStaleOK)
		}
		wantReady := 200
		if !wantOffers {
			wantReady = 503
		}
		if code, _ := get(t, base+"/readyz"); code != wantReady {
			t.Errorf("%s: /readyz %d, want %d", step, code, wantReady)
		}
	}
	state("fresh", true, 0)
	clock.add(24*time.Hour + time.Minute)
	state("timestamp expired, within stale-ok", true, 1)
	clock.add(30 * time.Minute)
	state("past stale-ok", false, 0)
	stampNewest(t, dir, k, clock.now())
	waitFor(t, 5*time.Second, "the re-signed timestamp", func() bool {
		code, _ := get(t, base+"/readyz")
		return code == 200
	})
	state("re-signed", true, 0)
}
