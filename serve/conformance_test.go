package serve_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
)

// cliAnswer answers a request exactly as `driveway offer --catalog DIR --key PUB --now T
// [--explain]` does (cmd/driveway/offer.go): the newest release opened and verified with
// index.OpenRelease, offer.SourceOf, offer.NewEngine, a Decoder with the default limits,
// Decide and AppendResponse.
func cliAnswer(t *testing.T, engine *offer.Engine, body []byte, now string, explain bool) []byte {
	t.Helper()
	var req offer.Request
	if perr := offer.NewDecoder(offer.DefaultLimits).Decode(body, &req); perr != nil {
		return offer.AppendError(nil, perr)
	}
	var res offer.Result
	engine.Decide(&req, mustTime(t, now), explain, &res)
	return offer.AppendResponse(nil, &req, &res, engine.OS())
}

// cliExplanation is what `driveway offer --format explain` prints for body at now.
func cliExplanation(t *testing.T, engine *offer.Engine, body []byte, now string) []byte {
	t.Helper()
	var req offer.Request
	if perr := offer.NewDecoder(offer.DefaultLimits).Decode(body, &req); perr != nil {
		t.Fatal(perr)
	}
	var res offer.Result
	engine.Decide(&req, mustTime(t, now), true, &res)
	b, err := json.Marshal(engine.Explain(&req, mustTime(t, now), &res))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformanceOverHTTP answers every conformance scenario's requests over HTTP, with and
// without explain, and compares each body with the CLI's answer byte for byte.
func TestConformanceOverHTTP(t *testing.T) {
	scenarios := conformance.Load(t)
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	k := newKey(t)
	compared, explained := 0, 0
	for _, name := range names {
		sc := scenarios[name]
		if !sc.Build.OK || len(sc.Requests) == 0 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			work := t.TempDir()
			labels := filepath.Join(work, "labels")
			conformance.WriteTree(t, labels, sc.Labels)
			catalog := filepath.Join(work, "catalog")
			buildRelease(t, labels, catalog, k, mustTime(t, sc.Now), 0)

			rel, err := index.OpenRelease(catalog, &index.VerifyOptions{Keys: []*signing.Verifier{k.verifier}, IgnoreExpiry: true})
			if err != nil {
				t.Fatal(err)
			}
			defer rel.Close()
			src, err := offer.SourceOf(rel)
			if err != nil {
				t.Fatal(err)
			}
			engine, err := offer.NewEngine(src)
			if err != nil {
				t.Fatal(err)
			}

			clock := newClock(mustTime(t, sc.Now))
			_, base := startServer(t, serve.Config{Catalog: catalog, Keys: []*signing.Verifier{k.verifier},
				AllowTimeOverride: true, Clock: clock.now, DisableInotify: true})
			for _, r := range sc.Requests {
				now := r.Now
				if now == "" {
					now = sc.Now
				}
				for _, explain := range []bool{false, true} {
					code, got := post(t, urlNow(base, now, explain), r.Request)
					want := cliAnswer(t, engine, r.Request, now, explain)
					if code != 200 {
						t.Errorf("[%s explain=%t] status %d: %s", r.Name, explain, code, got)
						continue
					}
					if !bytes.Equal(got, want) {
						t.Errorf("[%s explain=%t] HTTP and CLI differ\nhttp: %s\n cli: %s", r.Name, explain, got, want)
					}
					compared++
				}
				// explain=full: the publisher's explanation, in the member "explanation", is
				// what `offer --format explain` prints (every failing check of a candidate:
				// cmd/driveway's explain golden tests show several).
				code, got := post(t, urlNow(base, now, false)+"&explain=full", r.Request)
				var full map[string]json.RawMessage
				if code != 200 || json.Unmarshal(got, &full) != nil {
					t.Errorf("[%s explain=full] status %d: %s", r.Name, code, got)
					continue
				}
				x, ok := full["explanation"]
				if want := cliExplanation(t, engine, r.Request, now); !ok || !bytes.Equal(x, want) {
					t.Errorf("[%s explain=full] explanation differs\nhttp: %s\n cli: %s", r.Name, x, want)
				}
				if _, ok := full["explain"]; !ok {
					t.Errorf("[%s explain=full] no explain member: %s", r.Name, got)
				}
				explained++
			}
		})
	}
	if compared == 0 || explained == 0 {
		t.Fatalf("compared %d answers and %d explanations", compared, explained)
	}
	t.Logf("%d answers compared byte for byte", compared)
	_ = os.Stdout
}
