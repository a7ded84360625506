package serve_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/trust"
)

// twoTrees builds two label trees (conformance scenarios 01 and 02) into catalog
// directories and returns them with a request they answer differently.
func twoTrees(t *testing.T, k key) (dirA, dirB string, now time.Time, request []byte) {
	t.Helper()
	a, b := conformance.LoadOne(t, "01-forward-and-floor.json"), conformance.LoadOne(t, "02-ceiling.json")
	now = mustTime(t, a.Now)
	work := t.TempDir()
	dirA, dirB = filepath.Join(work, "a"), filepath.Join(work, "b")
	conformance.WriteTree(t, filepath.Join(work, "la", "tree"), a.Labels) // one catalog ("tree"), two states of it
	conformance.WriteTree(t, filepath.Join(work, "lb", "tree"), b.Labels)
	buildRelease(t, filepath.Join(work, "la", "tree"), dirA, k, now, 0)
	buildRelease(t, filepath.Join(work, "lb", "tree"), dirB, k, now, 0)
	return dirA, dirB, now, a.Requests[1].Request
}

// manifestOf reads the newest release's manifest of a catalog directory.
func manifestOf(t testing.TB, dir string) *index.Manifest {
	t.Helper()
	_, env, err := index.Latest(dir)
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

// offersPart answers req from the newest release of dir and returns the response after its
// release object: the part that depends on the shards and control table only.
func offersPart(t testing.TB, dir string, k key, req []byte, now time.Time) []byte {
	t.Helper()
	rel, err := index.OpenRelease(dir, &index.VerifyOptions{Keys: []*signing.Verifier{k.verifier}, IgnoreExpiry: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rel.Close()
	src, _ := offer.SourceOf(rel)
	e, err := offer.NewEngine(src)
	if err != nil {
		t.Fatal(err)
	}
	var r offer.Request
	if perr := offer.NewDecoder(offer.Limits{}).Decode(req, &r); perr != nil {
		t.Fatal(perr)
	}
	var res offer.Result
	e.Decide(&r, now, false, &res)
	out := offer.AppendResponse(nil, &r, &res, e.OS())
	_, after, ok := bytes.Cut(out, []byte(`},"offers":`))
	if !ok {
		t.Fatalf("unexpected response %s", out)
	}
	return after
}

// TestSwapUnderLoad installs 40 releases one after another, alternating two label trees,
// each as soon as the one before has answered, while clients hammer the edge: every answer
// must be a 200 and exactly the answer of the release it names, every release is swapped in
// and answers, and shards are unmapped after their last reader.
func TestSwapUnderLoad(t *testing.T) {
	k := newKey(t)
	dirA, dirB, now, req := twoTrees(t, k)
	partA, partB := offersPart(t, dirA, k, req, now), offersPart(t, dirB, k, req, now)
	if bytes.Equal(partA, partB) {
		t.Fatal("the two trees answer the request alike; the test needs different answers")
	}
	mA, mB := manifestOf(t, dirA), manifestOf(t, dirB)

	// The served directory holds both trees' shards; each swap publishes a new manifest.
	dir := filepath.Join(t.TempDir(), "catalog")
	copyDir(t, filepath.Join(dirA, index.ShardsDir), filepath.Join(dir, index.ShardsDir))
	copyDir(t, filepath.Join(dirB, index.ShardsDir), filepath.Join(dir, index.ShardsDir))
	var ids sync.Map // sequence -> expected body
	publish := func(seq uint64) {
		m, part := *mA, partA
		if seq%2 == 0 {
			m, part = *mB, partB
		}
		m.Sequence = seq
		restate(t, &m, k.signer)
		payload, err := m.Marshal()
		if err != nil {
			t.Error(err)
			return
		}
		env, err := signing.Sign(index.ManifestType, payload, k.signer)
		if err != nil {
			t.Error(err)
			return
		}
		// The expected answer is known before the release appears.
		ids.Store(seq, append([]byte(fmt.Sprintf(`{"release":{"sequence":%d,"id":"%s"},"offers":`, seq, index.ReleaseID(env))), part...))
		// Written atomically but without index.SaveEnvelope's fsyncs, which a test that
		// publishes 40 releases does not need.
		path := index.ReleasePath(dir, seq)
		if err := os.WriteFile(path+".tmp", env, 0o644); err != nil {
			t.Error(err)
			return
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Error(err)
		}
		if _, err := trust.Stamp(dir, m.Catalog, seq, env, now, now.Add(24*time.Hour), k.signer); err != nil {
			t.Error(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, index.ReleasesDir), 0o755)
	publish(1)
	clock := newClock(now)
	srv, base := startServer(t, serve.Config{Catalog: dir, Keys: []*signing.Verifier{k.verifier}, Clock: clock.now, Poll: 50 * time.Millisecond})
	if releaseSeq(t, base) != 1 {
		t.Fatal("release 1 not served")
	}

	// A fixed number of releases, each published once the one before has answered a
	// request: the counts below are exact, whatever the machine's speed.
	const releases = 40
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var published atomic.Uint64
	published.Store(1)
	var wg sync.WaitGroup
	seen := map[uint64]bool{}
	var seenMu sync.Mutex
	answered := func(seq uint64) bool {
		seenMu.Lock()
		defer seenMu.Unlock()
		return seen[seq]
	}
	wg.Go(func() {
		defer cancel()
		for seq := uint64(1); seq <= releases; seq++ {
			if seq > 1 {
				publish(seq)
				published.Store(seq)
			}
			// Bounded: a release that is never answered within 10 s fails the test.
			for deadline := time.Now().Add(10 * time.Second); !answered(seq); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) || ctx.Err() != nil {
					t.Errorf("release %d was never answered", seq)
					return
				}
			}
		}
	})
	client := &fasthttp.Client{MaxConnsPerHost: 64, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	var requests, bad atomic.Int64
	for range 8 {
		wg.Go(func() {
			rq, rs := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(rq)
			defer fasthttp.ReleaseResponse(rs)
			for ctx.Err() == nil && requests.Load() < 5_000_000 {
				rq.Reset()
				rq.Header.SetMethod("POST")
				rq.SetRequestURI(base + "/v1/offers")
				rq.Header.SetContentType("application/json")
				rq.SetBody(req)
				err := client.DoTimeout(rq, rs, 5*time.Second)
				requests.Add(1)
				if err != nil || rs.StatusCode() != 200 {
					if bad.Add(1) <= 5 {
						t.Errorf("request failed: %v, status %d: %s", err, rs.StatusCode(), rs.Body())
					}
					continue
				}
				body := stripProofs(rs.Body())
				var seq uint64
				if _, err := fmt.Sscanf(string(body), `{"release":{"sequence":%d`, &seq); err != nil {
					t.Errorf("no sequence in %s", body)
					bad.Add(1)
					continue
				}
				want, ok := ids.Load(seq)
				if !ok || !bytes.Equal(body, want.([]byte)) {
					if bad.Add(1) <= 5 {
						t.Errorf("release %d answered\n%s\nwant\n%s", seq, body, want)
					}
				}
				seenMu.Lock()
				seen[seq] = true
				seenMu.Unlock()
			}
		})
	}
	wg.Wait()
	last := published.Load()
	waitFor(t, 5*time.Second, fmt.Sprintf("release %d to be served", last), func() bool { return releaseSeq(t, base) == last })
	swaps := metric(t, base, "driveway_edge_swaps_total")
	mapped, unmapped, open := srv.ShardStats()
	t.Logf("%d requests (%d bad), %d releases published, %d swaps, %d distinct releases answered; shards mapped %d, unmapped %d, open %d",
		requests.Load(), bad.Load(), last, int(swaps), len(seen), mapped, unmapped, open)
	if bad.Load() > 0 {
		t.Errorf("%d bad answers", bad.Load())
	}
	if last != releases || len(seen) != releases || requests.Load() < releases {
		t.Errorf("%d releases published, %d answered, in %d requests; want all %d answered", last, len(seen), requests.Load(), releases)
	}
	if swaps < releases-1 || swaps > releases {
		t.Errorf("%v swaps for %d releases published one after another", swaps, last)
	}
	if unmapped == 0 || mapped-unmapped != uint64(open) {
		t.Errorf("shards mapped %d, unmapped %d, open %d", mapped, unmapped, open)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	mapped, unmapped, open = srv.ShardStats()
	if mapped != unmapped || open != 0 || srv.LiveGenerations() != 0 {
		t.Errorf("after shutdown: shards mapped %d, unmapped %d, open %d; generations live %d", mapped, unmapped, open, srv.LiveGenerations())
	}
}
