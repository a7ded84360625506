package serve_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/driveway/driveway/build"
	"github.com/driveway/driveway/client"
	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
)

// TestRecordsReusedAcrossControlReleases: a control-only release has the label shards of the
// release before, so the edge reuses its package records and tree instead of reading every
// label record again (the swap cost bench/REPORT.md measures), and its answers still verify
// against the new release's statement; a release with other label shards gets records of
// its own, and its answers verify too.
func TestRecordsReusedAcrossControlReleases(t *testing.T) {
	k := newKey(t)
	a, b := conformance.LoadOne(t, "01-forward-and-floor.json"), conformance.LoadOne(t, "02-ceiling.json")
	now := mustTime(t, a.Now)
	work := t.TempDir()
	dir := filepath.Join(work, "catalog")
	treeA, treeB := filepath.Join(work, "la", "tree"), filepath.Join(work, "lb", "tree")
	conformance.WriteTree(t, treeA, a.Labels)
	conformance.WriteTree(t, treeB, b.Labels)
	buildRelease(t, treeA, dir, k, now, 0)

	clock := newClock(now)
	srv, base := startServer(t, serve.Config{Catalog: dir, Keys: []*signing.Verifier{k.verifier}, Clock: clock.now, Poll: 20 * time.Millisecond})
	newest := uint64(0)
	check := func(step string, req []byte, wantSeq uint64, wantMade int64) {
		t.Helper()
		waitFor(t, 10*time.Second, step+": the edge serves its release", func() bool { return releaseSeq(t, base) == wantSeq })
		status, body := postRaw(t, base+"/v1/offers", req)
		if status != 200 {
			t.Fatalf("%s: status %d: %s", step, status, body)
		}
		res, err := client.Verify(body, req, client.Options{Keys: []*signing.Verifier{k.verifier}, Now: clock.now(), Newest: newest})
		if err != nil {
			t.Fatalf("%s: the answer does not verify: %v", step, err)
		}
		if len(res.Errors) != 0 || len(res.Offers) == 0 {
			t.Fatalf("%s: %d offers verified, errors %v; want offers and no errors", step, len(res.Offers), res.Errors)
		}
		if res.Statement.Sequence != wantSeq {
			t.Fatalf("%s: statement of release %d; want %d", step, res.Statement.Sequence, wantSeq)
		}
		newest = res.Statement.Sequence
		if got := srv.RecordsMade(); got != wantMade {
			t.Errorf("%s: records made %d times; want %d", step, got, wantMade)
		}
	}
	check("first release", a.Requests[1].Request, 1, 1)

	clock.add(time.Minute)
	if _, err := build.Control(context.Background(), build.ControlOptions{Labels: treeA, Out: dir,
		Signers: []*signing.Signer{k.signer}, Now: clock.now(), Keep: 100}); err != nil {
		t.Fatal(err)
	}
	check("control-only release", a.Requests[1].Request, 2, 1)

	clock.add(time.Minute)
	buildRelease(t, treeB, dir, k, clock.now(), 0)
	check("release of another tree", b.Requests[0].Request, 3, 2)
}
