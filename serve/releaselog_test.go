package serve_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/driveway/driveway/build"
	"github.com/driveway/driveway/internal/atomicfile"
	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/releaselog"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/trust"
)

func newLogKey(t testing.TB) *releaselog.Key {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, "contoso-log")
	if err != nil {
		t.Fatal(err)
	}
	s, v, err := releaselog.ParseSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &releaselog.Key{Signer: s, Verifier: v}
}

func logBuild(t testing.TB, labels, out string, k key, lk *releaselog.Key, at time.Time) {
	t.Helper()
	_, err := build.Build(context.Background(), build.Options{Labels: labels, Out: out, Signers: []*signing.Signer{k.signer},
		Now: at, Keep: 100, AllowShrink: true, LogKey: lk})
	if err != nil {
		t.Fatalf("build at %s: %v", at, err)
	}
}

// publish copies a pipeline's files into an edge's directory the way a deploy would, the
// timestamp last: shards, releases, then (withLog) the log, then timestamp.json.
func publish(t testing.TB, src, dst string, withLog bool) {
	t.Helper()
	copyDir(t, filepath.Join(src, "shards"), filepath.Join(dst, "shards"))
	copyDir(t, filepath.Join(src, "releases"), filepath.Join(dst, "releases"))
	if withLog {
		os.RemoveAll(filepath.Join(dst, releaselog.Dir))
		copyDir(t, filepath.Join(src, releaselog.Dir), filepath.Join(dst, releaselog.Dir))
	}
	b := mustRead(t, filepath.Join(src, trust.TimestampFile))
	if err := atomicfile.Write(filepath.Join(dst, trust.TimestampFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// logWorld is a label tree and two histories of its catalog, both logged with one log key:
// A (releases 1, 2 at t0, t0+1h) and B, which shares release 1 and then differs (release 2
// at t0+2h, 3 at t0+150m): a split view.
type logWorld struct {
	k      key
	lk     *releaselog.Key
	labels string
	a, b   string
	t0     time.Time
	req    []byte
}

func newLogWorld(t *testing.T) *logWorld {
	sc := conformance.LoadOne(t, "01-forward-and-floor.json")
	w := &logWorld{k: newKey(t), lk: newLogKey(t), t0: mustTime(t, sc.Now), req: sc.Requests[1].Request}
	work := t.TempDir()
	w.labels, w.a, w.b = filepath.Join(work, "labels"), filepath.Join(work, "a"), filepath.Join(work, "b")
	conformance.WriteTree(t, w.labels, sc.Labels)
	logBuild(t, w.labels, w.a, w.k, w.lk, w.t0)
	copyDir(t, w.a, w.b)
	logBuild(t, w.labels, w.a, w.k, w.lk, w.t0.Add(time.Hour))
	logBuild(t, w.labels, w.b, w.k, w.lk, w.t0.Add(2*time.Hour))
	logBuild(t, w.labels, w.b, w.k, w.lk, w.t0.Add(150*time.Minute))
	return w
}

// TestEdgeChecksTheLog: an edge with the log key serves a logged release, and refuses, while
// the release it serves stays: another history of the catalog (a split view), a release
// missing from the log, a log with one byte of a hash tile changed; after a restart it still
// refuses a history that forks from the checkpoint it saw.
func TestEdgeChecksTheLog(t *testing.T) {
	w := newLogWorld(t)
	edgeDir := filepath.Join(t.TempDir(), "edge")
	copyDir(t, w.a, edgeDir)
	state := filepath.Join(t.TempDir(), "state.json")
	clock := newClock(w.t0.Add(4 * time.Hour))
	logs := &captureLog{}
	t.Cleanup(func() { logs.logTo(t) })
	cfg := serve.Config{Catalog: edgeDir, Keys: []*signing.Verifier{w.k.verifier}, LogKey: w.lk.Verifier, State: state,
		Clock: clock.now, DisableInotify: true, Poll: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	_, base := startServer(t, cfg)
	if seq := releaseSeq(t, base); seq != 2 {
		t.Fatalf("serving %d, want 2", seq)
	}
	st, err := trust.LoadState(state)
	if err != nil || st.LogSize != 2 || st.LogHash == "" {
		t.Fatalf("state after release 2: %+v %v", st, err)
	}
	// GET /v1/release shows the checkpoint the release was proved at, for monitors that
	// compare edges.
	if _, body := get(t, base+"/v1/release"); !strings.Contains(string(body), `"log":{"size":2,"hash":"`+st.LogHash+`"}`) {
		t.Errorf("GET /v1/release: %s; want the log checkpoint, size 2 and hash %s", body, st.LogHash)
	}
	// refusedFor waits for a refusal with reason log whose error says what, logged after
	// mark (so a retry of an earlier refusal does not count).
	refusedFor := func(what string) {
		t.Helper()
		mark := logs.len()
		waitFor(t, 10*time.Second, "a log refusal saying "+what, func() bool { return logs.refusedSince(mark, what) })
		if seq := releaseSeq(t, base); seq != 2 {
			t.Fatalf("serving %d after a refusal for %q, want 2", seq, what)
		}
	}

	// The split view: B's release 3 and B's log, whose first two entries differ from A's.
	publish(t, w.b, edgeDir, true)
	refusedFor("the log forked (a split view)")
	if code, _ := offersNow(t, base, w.req); code != 200 {
		t.Fatalf("offers while refusing: %d", code)
	}

	// A release missing from the log: A's release 3, with A's log of two entries.
	os.RemoveAll(filepath.Join(edgeDir, releaselog.Dir))
	copyDir(t, filepath.Join(w.a, releaselog.Dir), filepath.Join(edgeDir, releaselog.Dir))
	logBuild(t, w.labels, w.a, w.k, w.lk, w.t0.Add(3*time.Hour))
	publish(t, w.a, edgeDir, false)
	refusedFor("release 3 is not in the log")
	// The log arrives, with one byte of its newest hash tile changed: still refused.
	damaged := filepath.Join(t.TempDir(), "log")
	copyDir(t, filepath.Join(w.a, releaselog.Dir), damaged)
	rel := filepath.Join("tile", "8", "0", "000.p", "3")
	good := mustRead(t, filepath.Join(damaged, rel))
	bad := append([]byte(nil), good...)
	bad[40] ^= 1
	os.WriteFile(filepath.Join(damaged, rel), bad, 0o644)
	copyDir(t, damaged, filepath.Join(edgeDir, releaselog.Dir))
	tile := filepath.Join(edgeDir, releaselog.Dir, rel)
	refusedFor("inconsistent") // tlog.TileHashReader: the tile does not hash to the checkpoint's tree
	// Repaired: served, and the state holds the new checkpoint.
	os.WriteFile(tile, good, 0o644)
	waitFor(t, 10*time.Second, "release 3 served", func() bool { return releaseSeq(t, base) == 3 })
	if st, _ = trust.LoadState(state); st.LogSize != 3 {
		t.Fatalf("state log size %d, want 3", st.LogSize)
	}

	// A restarted edge with this state, shown B's history grown past it (release 4 at
	// t0+5h, so the timestamp is newer than any seen): the log of 4 entries is not A's.
	logBuild(t, w.labels, w.b, w.k, w.lk, w.t0.Add(5*time.Hour))
	clock.set(w.t0.Add(6 * time.Hour))
	state2 := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(state2, mustRead(t, state), 0o644)
	cfg2 := cfg
	cfg2.Catalog, cfg2.State = w.b, state2
	_, base2 := startServer(t, cfg2)
	if seq := releaseSeq(t, base2); seq != 0 {
		t.Fatalf("a restarted edge serves B's release %d", seq)
	}
	if n := metric(t, base2, `driveway_edge_refused_releases_total{reason="log"}`); n != 1 {
		t.Fatalf("restarted edge: %v log refusals, want 1", n)
	}
	// And without the log key's check, B's release would have been served: the attack is real.
	cfg3 := cfg2
	cfg3.LogKey, cfg3.State = nil, ""
	_, base3 := startServer(t, cfg3)
	if seq := releaseSeq(t, base3); seq != 4 {
		t.Fatalf("an edge without the log check serves %d, want B's 4", seq)
	}
}

// captureLog keeps an edge's log lines.
type captureLog struct {
	mu    sync.Mutex
	lines []string
}

func (c *captureLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, string(p))
	return len(p), nil
}

// logTo shows the refusals in the test's log.
func (c *captureLog) logTo(t *testing.T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		if strings.Contains(l, "refused") {
			t.Log(strings.TrimSpace(l))
		}
	}
}

func (c *captureLog) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

// refusedSince reports whether a line after the first mark is a refusal of reason log
// whose error holds what.
func (c *captureLog) refusedSince(mark int, what string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines[mark:] {
		if strings.Contains(l, "reason=log") && strings.Contains(l, what) {
			return true
		}
	}
	return false
}

// TestOriginEdgeChecksTheLog: an edge mirroring an origin fetches the log from ORIGIN/log,
// keeps what verified in its cache, and refuses another history from the same origin.
func TestOriginEdgeChecksTheLog(t *testing.T) {
	w := newLogWorld(t)
	root := filepath.Join(t.TempDir(), "origin")
	copyDir(t, w.a, root)
	var logGets atomic.Int64
	files := http.FileServer(http.Dir(root))
	origin := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/log/") {
			logGets.Add(1)
		}
		files.ServeHTTP(rw, r)
	}))
	t.Cleanup(origin.Close)
	cache := filepath.Join(t.TempDir(), "cache")
	clock := newClock(w.t0.Add(4 * time.Hour))
	_, base := startServer(t, serve.Config{Origin: origin.URL, Cache: cache, Keys: []*signing.Verifier{w.k.verifier}, LogKey: w.lk.Verifier,
		Clock: clock.now, Poll: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	waitFor(t, 10*time.Second, "release 2 from the origin", func() bool { return releaseSeq(t, base) == 2 })
	if _, err := os.Stat(filepath.Join(cache, releaselog.Dir, releaselog.CheckpointFile)); err != nil {
		t.Fatalf("the verified checkpoint is not kept in the cache: %v", err)
	}
	if logGets.Load() == 0 {
		t.Fatal("the log was not fetched from the origin")
	}
	publish(t, w.b, root, true)
	waitFor(t, 10*time.Second, "B's release refused", func() bool {
		return metric(t, base, `driveway_edge_refused_releases_total{reason="log"}`) >= 1
	})
	if seq := releaseSeq(t, base); seq != 2 {
		t.Fatalf("serving %d, want 2", seq)
	}
	// Restarted while its origin is down (a copy of the cache; nothing listens on the
	// origin's port): the cached release is proved from the cached log and served.
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	cache2 := filepath.Join(t.TempDir(), "cache")
	copyDir(t, cache, cache2)
	_, base2 := startServer(t, serve.Config{Origin: downURL, Cache: cache2, Keys: []*signing.Verifier{w.k.verifier}, LogKey: w.lk.Verifier,
		Clock: clock.now, Poll: time.Hour})
	if seq := releaseSeq(t, base2); seq != 2 {
		t.Fatalf("restarted with the origin down: serving %d, want 2", seq)
	}
}

// TestEdgeNeedsTheLog: an edge given the log key refuses a catalog that has no log (an
// origin that drops log/ to get around the check), and says what to do.
func TestEdgeNeedsTheLog(t *testing.T) {
	sc := conformance.LoadOne(t, "01-forward-and-floor.json")
	k, lk := newKey(t), newLogKey(t)
	t0 := mustTime(t, sc.Now)
	labels, dir := filepath.Join(t.TempDir(), "labels"), filepath.Join(t.TempDir(), "catalog")
	conformance.WriteTree(t, labels, sc.Labels)
	buildRelease(t, labels, dir, k, t0, 0)
	logs := &captureLog{}
	t.Cleanup(func() { logs.logTo(t) })
	clock := newClock(t0.Add(time.Hour))
	_, base := startServer(t, serve.Config{Catalog: dir, Keys: []*signing.Verifier{k.verifier}, LogKey: lk.Verifier,
		Clock: clock.now, DisableInotify: true, Poll: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if seq := releaseSeq(t, base); seq != 0 {
		t.Fatalf("an unlogged catalog served: release %d", seq)
	}
	if !logs.refusedSince(0, "the catalog has none") || !logs.refusedSince(0, "--log-key") {
		t.Fatal("the refusal does not say the catalog has no log")
	}
	// Logged from the next release on: served.
	logBuild(t, labels, dir, k, lk, t0.Add(30*time.Minute))
	waitFor(t, 10*time.Second, "the logged release", func() bool { return releaseSeq(t, base) == 2 })
}
