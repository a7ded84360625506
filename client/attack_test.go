package client_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/driveway/driveway/build"
	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/client"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
)

// world is a catalog built from a conformance scenario, an edge serving it in process, and
// a request of the scenario that the edge answers with offers.
type world struct {
	t       *testing.T
	dir     string
	labels  string
	signer  *signing.Signer
	keys    []*signing.Verifier
	now     time.Time
	request []byte
	edge    fasthttp.RequestHandler
}

func newWorld(t *testing.T) *world {
	t.Helper()
	sc := conformance.LoadOne(t, "09-automatic-vs-optional.json")
	w := &world{t: t, dir: filepath.Join(t.TempDir(), "catalog"), labels: filepath.Join(t.TempDir(), "labels")}
	conformance.WriteTree(t, w.labels, sc.Labels)
	var err error
	if w.now, err = time.Parse(time.RFC3339, sc.Now); err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(t.TempDir(), "k")
	if err := signing.WriteKeyPair(prefix, signing.Ed25519, nil); err != nil {
		t.Fatal(err)
	}
	if w.signer, err = signing.LoadSigner(context.Background(), prefix+".key", nil); err != nil {
		t.Fatal(err)
	}
	w.keys = []*signing.Verifier{w.signer.Verifier()}
	w.build(w.now)
	w.edge = w.serve()
	for _, r := range sc.Requests {
		if resp := w.ask(w.edge, r.Request); bytes.Contains(resp, []byte(`"proof"`)) {
			w.request = r.Request
			return w
		}
	}
	t.Fatal("no request of the scenario is answered with an offer")
	return nil
}

// build builds the labels into the catalog at now (the next sequence).
func (w *world) build(now time.Time) {
	w.t.Helper()
	if _, err := build.Build(context.Background(), build.Options{Labels: w.labels, Out: w.dir, Signers: []*signing.Signer{w.signer},
		Now: now, Keep: 100, AllowShrink: true}); err != nil {
		w.t.Fatal(err)
	}
}

// serve starts an edge on the catalog's newest release, at the world's time.
func (w *world) serve() fasthttp.RequestHandler {
	w.t.Helper()
	now := w.now
	srv, err := serve.New(serve.Config{Catalog: w.dir, Keys: w.keys, Clock: func() time.Time { return now }, DisableInotify: true, Poll: time.Hour})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv.Handler()
}

// ask posts a request to a handler and returns the body.
func (w *world) ask(h fasthttp.RequestHandler, req []byte) []byte {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/v1/offers")
	ctx.Request.Header.SetContentType("application/json")
	ctx.Request.SetBody(req)
	h(&ctx)
	if ctx.Response.StatusCode() != 200 {
		w.t.Fatalf("edge answered %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	return append([]byte(nil), ctx.Response.Body()...)
}

// rogue is an edge that answers what the genuine edge answers, rewritten by edit.
func rogue(genuine fasthttp.RequestHandler, edit func([]byte) []byte) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		genuine(ctx)
		ctx.Response.SetBody(edit(append([]byte(nil), ctx.Response.Body()...)))
	}
}

func (w *world) opts() client.Options {
	return client.Options{Keys: w.keys, Now: w.now, Newest: 1}
}

// naive is what a PC could do before release statements: take the offers as they come.
// Each attack is first shown to get through it.
func naive(t *testing.T, body []byte) []client.ResponseOffer {
	t.Helper()
	r, err := client.ParseResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	return r.Offers
}

// firstOffer edits the first offer's JSON text (up to its proof, which is left alone).
func firstOffer(body []byte, edit func(offer []byte) []byte) []byte {
	i := bytes.Index(body, []byte(`"offers":[{`))
	j := bytes.Index(body[i:], []byte(`,"proof":`))
	out := append([]byte(nil), body[:i]...)
	out = append(out, edit(body[i:i+j])...)
	return append(out, body[i+j:]...)
}

var (
	urlField = regexp.MustCompile(`"url":"[^"]*"`)
	shaField = regexp.MustCompile(`"sha256":"[0-9a-f]{64}"`)
)

func TestGenuineResponseVerifies(t *testing.T) {
	w := newWorld(t)
	body := w.ask(w.edge, w.request)
	res, err := client.Verify(body, w.request, w.opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 0 || len(res.Offers) == 0 {
		t.Fatalf("offers %d, errors %v", len(res.Offers), res.Errors)
	}
	for _, o := range res.Offers {
		if o.URL == "" || len(o.SHA256) != 64 || o.Record == nil {
			t.Errorf("verified offer %+v", o)
		}
	}
	if res.Statement.Sequence != 1 || res.Statement.Records < 2 {
		t.Errorf("statement %+v", res.Statement)
	}
}

// A rogue edge points a genuine offer at another package: another URL, another sha256, or
// both and the record in its proof to match.
func TestRogueEdgeChangesPackage(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		name string
		edit func([]byte) []byte
		want error
	}{
		{"url", func(b []byte) []byte {
			return firstOffer(b, func(o []byte) []byte {
				return urlField.ReplaceAll(o, []byte(`"url":"https://evil.example/old-vulnerable.cab"`))
			})
		}, client.ErrMismatch},
		{"sha256", func(b []byte) []byte {
			return firstOffer(b, func(o []byte) []byte {
				return shaField.ReplaceAll(o, []byte(`"sha256":"`+strings.Repeat("66", 32)+`"`))
			})
		}, client.ErrMismatch},
		{"url and the proof's record", func(b []byte) []byte {
			b = firstOffer(b, func(o []byte) []byte { return urlField.ReplaceAll(o, []byte(`"url":"https://evil.example/x.cab"`)) })
			i := bytes.Index(b, []byte(`"record":"`))
			j := i + bytes.Index(b[i:], []byte(`","hashes"`))
			rec := regexp.MustCompile(`url \\"[^\\]*\\"`).ReplaceAllLiteral(b[i:j], []byte(`url \"https://evil.example/x.cab\"`))
			return append(append(append([]byte(nil), b[:i]...), rec...), b[j:]...)
		}, client.ErrProof},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := w.ask(rogue(w.edge, c.edit), w.request)
			if got := naive(t, body); len(got) == 0 || !strings.Contains(got[0].Package.URL+got[0].Package.SHA256, "evil") && !strings.Contains(got[0].Package.SHA256, "6666") {
				t.Fatalf("the attack did not change the naive PC's offer: %+v", got)
			}
			res, err := client.Verify(body, w.request, w.opts())
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Errors) == 0 || res.Errors[0].Index != 0 || !errors.Is(res.Errors[0], c.want) {
				t.Fatalf("errors %v, want offer 0 refused with %v", res.Errors, c.want)
			}
			for _, o := range res.Offers {
				if strings.Contains(o.URL, "evil") {
					t.Errorf("verified the rogue offer %+v", o)
				}
			}
			t.Logf("refused: %v", res.Errors[0])
		})
	}
}

// A rogue edge keeps serving an old, validly signed release (say, one that still offers a
// vulnerable driver) to a PC that has seen a newer one.
func TestOldReleaseRefused(t *testing.T) {
	w := newWorld(t)
	old := w.ask(w.edge, w.request) // release 1
	w.build(w.now.Add(time.Minute)) // release 2 exists, and the PC has verified it
	w.edge = w.serve()
	newer := w.ask(w.edge, w.request)
	opts := w.opts()
	opts.Newest = 2
	if res, err := client.Verify(newer, w.request, opts); err != nil || res.Statement.Sequence != 2 {
		t.Fatalf("release 2: %v", err)
	}
	if len(naive(t, old)) == 0 {
		t.Fatal("the naive PC takes no offer from the old response")
	}
	_, err := client.Verify(old, w.request, opts)
	if !errors.Is(err, client.ErrOld) {
		t.Fatalf("old release: %v, want ErrOld", err)
	}
	t.Logf("refused: %v", err)
}

func TestExpiredStatementRefused(t *testing.T) {
	w := newWorld(t)
	body := w.ask(w.edge, w.request)
	m := manifest(t, w.dir)
	opts := w.opts()
	opts.Now = m.Expires.Add(time.Second)
	if _, err := client.Verify(body, w.request, opts); !errors.Is(err, client.ErrExpired) {
		t.Fatalf("after expiry: %v, want ErrExpired", err)
	}
	opts.Now = m.Created.Add(-client.Skew - time.Second)
	if _, err := client.Verify(body, w.request, opts); !errors.Is(err, client.ErrExpired) {
		t.Fatalf("before creation: %v, want ErrExpired", err)
	}
}

// A rogue edge answers an offer with the genuine proof of another label of the release.
func TestProofOfAnotherLabelRefused(t *testing.T) {
	w := newWorld(t)
	rel, err := index.OpenRelease(w.dir, &index.VerifyOptions{Keys: w.keys, Now: w.now})
	if err != nil {
		t.Fatal(err)
	}
	defer rel.Close()
	recs, err := serve.ReleaseRecords(rel)
	if err != nil {
		t.Fatal(err)
	}
	body := w.ask(w.edge, w.request)
	r, _ := client.ParseResponse(body)
	offered := r.Offers[0].Proof.Index
	other := int64(0)
	if offered == 0 {
		other = 1
	}
	// The proof of the record at index other, as the edge would have written it.
	proofRe := regexp.MustCompile(`"proof":\{"index":[0-9]+,"record":"(?:[^"\\]|\\.)*","hashes":\[[^\]]*\]\}`)
	loc := proofRe.FindIndex(body)
	otherID := recs.ID(int(other))
	key := compiled.LabelKey(otherID)
	h := index.Hash(key[:])
	v, ok, err := rel.Label[index.RouteHash(h, len(rel.Label))].GetHash(key[:], h)
	if err != nil || !ok {
		t.Fatalf("label %d: %v %v", otherID, ok, err)
	}
	otherLabel, err := compiled.ParseLabel(v)
	if err != nil {
		t.Fatal(err)
	}
	otherProof, _ := recs.AppendProof(nil, otherID, &otherLabel)
	forged := append(append(append([]byte(nil), body[:loc[0]]...), otherProof...), body[loc[1]:]...)
	res, err := client.Verify(forged, w.request, w.opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) == 0 || !errors.Is(res.Errors[0], client.ErrMismatch) {
		t.Fatalf("errors %v, want offer 0 refused with ErrMismatch", res.Errors)
	}
	t.Logf("refused: %v", res.Errors[0])
}

func manifest(t *testing.T, dir string) *index.Manifest {
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
