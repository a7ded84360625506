package serve_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/trust"
)

// publishAs signs m (with its Sequence and Expires as given) with the signers, saves it
// under file sequence seq in dir, and has k sign a timestamp naming it (as the pipeline
// does), valid for a day from m's creation.
func publishAs(t *testing.T, dir string, k key, seq uint64, m index.Manifest, signers ...*signing.Signer) []byte {
	t.Helper()
	env := saveAs(t, dir, seq, m, signers...)
	stamp(t, dir, k, m.Catalog, seq, env, m.Created)
	return env
}

// saveAs is publishAs without the timestamp: the envelope alone, which no edge serves until
// a timestamp names it.
func saveAs(t *testing.T, dir string, seq uint64, m index.Manifest, signers ...*signing.Signer) []byte {
	t.Helper()
	restate(t, &m, signers...)
	payload, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	env, err := signing.Sign(index.ManifestType, payload, signers...)
	if err != nil {
		t.Fatal(err)
	}
	if err := index.SaveEnvelope(dir, seq, env); err != nil {
		t.Fatal(err)
	}
	return env
}

// stamp has k sign a timestamp naming envelope as release seq of catalog in dir, valid for
// a day from at.
func stamp(t *testing.T, dir string, k key, catalog string, seq uint64, envelope []byte, at time.Time) {
	t.Helper()
	if _, err := trust.Stamp(dir, catalog, seq, envelope, at, at.Add(24*time.Hour), k.signer); err != nil {
		t.Fatal(err)
	}
}

// TestRefusals drops a tampered shard, a bad signature, a rolled-back sequence and an
// expired manifest into the served directory: each is refused and counted by reason while
// the served release keeps answering; then a good release is served.
func TestRefusals(t *testing.T) {
	k := newKey(t)
	dirA, dirB, now, req := twoTrees(t, k)
	want1 := offersPart(t, dirA, k, req, now)
	mA, mB := manifestOf(t, dirA), manifestOf(t, dirB)
	dir := filepath.Join(t.TempDir(), "catalog")
	copyDir(t, filepath.Join(dirA, index.ShardsDir), filepath.Join(dir, index.ShardsDir))
	env1 := publishAs(t, dir, k, 1, *mA, k.signer)

	clock := newClock(now)
	_, base := startServer(t, serve.Config{Catalog: dir, Keys: []*signing.Verifier{k.verifier}, Clock: clock.now, Poll: 20 * time.Millisecond})
	serving := uint64(1)
	stillServing := func(step string) {
		t.Helper()
		if seq := releaseSeq(t, base); seq != serving {
			t.Fatalf("%s: serving release %d, want %d", step, seq, serving)
		}
		code, body := post(t, base+"/v1/offers", req)
		if code != 200 || !bytes.HasSuffix(body, want1) {
			t.Fatalf("%s: answer %d %s, want release %d's", step, code, body, serving)
		}
	}
	refusedFor := func(reason string, n float64) {
		t.Helper()
		series := `driveway_edge_refused_releases_total{reason="` + reason + `"}`
		waitFor(t, 5*time.Second, series, func() bool { return metric(t, base, series) == n })
	}
	stillServing("start")

	// 2: B's shards with one of its own (not shared with A) tampered: same size, other bytes.
	inA := map[string]bool{}
	for _, s := range mA.Shards {
		inA[s.Name] = true
	}
	tampered := false
	for _, s := range mB.Shards {
		b, err := os.ReadFile(filepath.Join(dirB, index.ShardsDir, s.Name))
		if err != nil {
			t.Fatal(err)
		}
		if !inA[s.Name] && !tampered {
			b[len(b)/2] ^= 0x40
			tampered = true
		}
		if err := os.WriteFile(filepath.Join(dir, index.ShardsDir, s.Name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !tampered {
		t.Fatal("B shares every shard with A")
	}
	m := *mB
	m.Sequence = 2
	publishAs(t, dir, k, 2, m, k.signer)
	refusedFor("shard", 1)
	stillServing("tampered shard")

	// 3: signed by a key the edge does not trust (the timestamp by the trusted one).
	other := newKey(t)
	m = *mA
	m.Sequence = 3
	env3 := publishAs(t, dir, k, 3, m, other.signer)
	refusedFor("signature", 1)
	stillServing("bad signature")

	// 3 again: a timestamp signed by a key the edge does not trust.
	stamp(t, dir, other, mA.Catalog, 3, env3, now)
	refusedFor("timestamp", 1)
	stillServing("timestamp by another key")

	// 4: a good release.
	m = *mA
	m.Sequence = 4
	publishAs(t, dir, k, 4, m, k.signer)
	waitFor(t, 5*time.Second, "release 4", func() bool { return releaseSeq(t, base) == 4 })
	serving = 4

	// 9: the file name (and a timestamp) say 9, the signed manifest is release 1 again (a
	// replay under another name).
	if err := index.SaveEnvelope(dir, 9, env1); err != nil {
		t.Fatal(err)
	}
	stamp(t, dir, k, mA.Catalog, 9, env1, now)
	refusedFor("rollback", 1)
	stillServing("rollback")

	// 10: a good signature over a manifest that has expired (freeze).
	m = *mA
	m.Sequence = 10
	m.Created = now.Add(-48 * time.Hour)
	m.Expires = now.Add(-time.Hour)
	publishAs(t, dir, k, 10, m, k.signer)
	refusedFor("expired", 1)
	stillServing("expired")

	// Nothing refused twice, and the next good release is served.
	m = *mA
	m.Sequence = 11
	publishAs(t, dir, k, 11, m, k.signer)
	waitFor(t, 5*time.Second, "release 11", func() bool { return releaseSeq(t, base) == 11 })
	for _, reason := range []string{"shard", "signature", "timestamp", "rollback", "expired"} {
		if got := metric(t, base, `driveway_edge_refused_releases_total{reason="`+reason+`"}`); got != 1 {
			t.Errorf("refused for %s: %v, want 1", reason, got)
		}
	}
}

// TestExpiryWhileServing lets the served release expire on an injected clock: answers stay
// until expiry + stale-ok, then carry no offers and /readyz fails.
func TestExpiryWhileServing(t *testing.T) {
	k := newKey(t)
	sc := conformance.LoadOne(t, "01-forward-and-floor.json")
	now := mustTime(t, sc.Now)
	work := t.TempDir()
	conformance.WriteTree(t, filepath.Join(work, "labels"), sc.Labels)
	dir := filepath.Join(work, "catalog")
	buildRelease(t, filepath.Join(work, "labels"), dir, k, now, time.Hour)
	req := sc.Requests[1].Request
	clock := newClock(now)
	_, base := startServer(t, serve.Config{Catalog: dir, Keys: []*signing.Verifier{k.verifier}, Clock: clock.now,
		StaleOK: 30 * time.Minute, DisableInotify: true})

	check := func(step string, wantOffers bool, wantReady int) {
		t.Helper()
		resp, err := httpClient.Post(base+"/v1/offers", "application/json", bytes.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		empty := bytes.HasSuffix(body.Bytes(), []byte(`"offers":[]}`+"\n"))
		if resp.StatusCode != 200 || empty == wantOffers {
			t.Errorf("%s: %d %s; want offers %t", step, resp.StatusCode, body.Bytes(), wantOffers)
		}
		if stale := resp.Header.Get("Driveway-Stale") != ""; stale == wantOffers {
			t.Errorf("%s: Driveway-Stale header %q", step, resp.Header.Get("Driveway-Stale"))
		}
		if code, body := get(t, base+"/readyz"); code != wantReady {
			t.Errorf("%s: /readyz %d %s, want %d", step, code, body, wantReady)
		}
	}
	check("fresh", true, http.StatusOK)
	clock.add(time.Hour + time.Minute) // expired, within stale-ok
	check("within stale-ok", true, http.StatusOK)
	clock.add(30 * time.Minute) // past expiry + stale-ok
	check("stale", false, http.StatusServiceUnavailable)
	if got := metric(t, base, "driveway_edge_ready"); got != 0 {
		t.Errorf("driveway_edge_ready = %v", got)
	}
}
