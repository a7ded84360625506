package offer_test

// Benchmarks of a whole request (decode, decide, encode) and the allocation test of the
// decide and encode path, against releases built from bench's generated catalogs.
//
//	go test ./offer -run '^$' -bench BenchmarkDecide -benchtime 2s
//	DRIVEWAY_BENCH_LABELS=100000 go test ./offer -run '^$' -bench BenchmarkDecide
//
// With DRIVEWAY_BENCH_DIR=DIR the generated catalog is kept in DIR and reused by later runs.
// scripts/bench-decide-ab.sh OLD_REV compares a revision with the working tree this way.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/driveway/driveway/bench"
	"github.com/driveway/driveway/build"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/signing"
)

// workload is a release built from a generated catalog and requests whose devices all hit
// hardware IDs of the catalog.
type workload struct {
	eng     *offer.Engine
	one     [][]byte // 1-device requests
	twenty  [][]byte // 20-device requests
	whole   [][]byte // whole PCs: 100 to 200 devices each, most IDs known to no label
	now     time.Time
	labels  int
	buildIn time.Duration
}

// The generated world's "now" (bench's time line).
var benchNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// newWorkload generates labels, builds and opens their release in dir, and draws requests
// from bench.GenerateDevices. A dir that holds a complete workload of the same size (a
// "done" file, written last) is reused as it is: see benchDir.
func newWorkload(tb testing.TB, dir string, labels int) *workload {
	tb.Helper()
	ctx := context.Background()
	tree := filepath.Join(dir, "labels")
	out := filepath.Join(dir, "catalog")
	done := filepath.Join(dir, "done")
	pubFile := filepath.Join(dir, "k.pub")
	w := &workload{now: benchNow, labels: labels}
	if b, err := os.ReadFile(done); err != nil || string(b) != strconv.Itoa(labels) {
		for _, p := range []string{done, tree, out} {
			if err := os.RemoveAll(p); err != nil {
				tb.Fatal(err)
			}
		}
		if _, err := bench.GenerateLabels(tree, bench.LabelOptions{Labels: labels, Seed: 1, Compact: true}); err != nil {
			tb.Fatal(err)
		}
		priv, pub, err := signing.GenerateKey(signing.Ed25519, nil)
		if err != nil {
			tb.Fatal(err)
		}
		keyFile := filepath.Join(dir, "k.key")
		if err := os.WriteFile(keyFile, priv, 0o600); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(pubFile, pub, 0o644); err != nil {
			tb.Fatal(err)
		}
		s, err := signing.LoadSigner(ctx, keyFile, nil)
		if err != nil {
			tb.Fatal(err)
		}
		start := time.Now()
		if _, err := build.Build(ctx, build.Options{Labels: tree, Out: out, Signers: []*signing.Signer{s}, Now: benchNow,
			SkipInvalid: true}); err != nil {
			tb.Fatal(err)
		}
		w.buildIn = time.Since(start)
		if err := os.WriteFile(done, []byte(strconv.Itoa(labels)), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	pub, err := os.ReadFile(pubFile)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := signing.ParseVerifier(pub)
	if err != nil {
		tb.Fatal(err)
	}
	// The workload is kept across runs (and days): decisions are at benchNow, so the release
	// opens without a clock.
	rel, err := index.OpenRelease(out, &index.VerifyOptions{Keys: []*signing.Verifier{v}, IgnoreExpiry: true, Cache: index.NewCacheBudget(1 << 30)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rel.Close() })
	src, err := offer.SourceOf(rel)
	if err != nil {
		tb.Fatal(err)
	}
	if w.eng, err = offer.NewEngine(src); err != nil {
		tb.Fatal(err)
	}

	// PCs of the generated population; keep the devices some row of the catalog names.
	var pcs bytes.Buffer
	if _, err := bench.GenerateDevices(&pcs, bench.DeviceOptions{PCs: 400, Seed: 1, Labels: tree}); err != nil {
		tb.Fatal(err)
	}
	var first map[string]json.RawMessage
	var known []json.RawMessage
	for _, line := range bytes.Split(bytes.TrimSpace(pcs.Bytes()), []byte("\n")) {
		var pc map[string]json.RawMessage
		if err := json.Unmarshal(line, &pc); err != nil {
			tb.Fatal(err)
		}
		if first == nil {
			first = pc
		}
		var devices []json.RawMessage
		if err := json.Unmarshal(pc["devices"], &devices); err != nil {
			tb.Fatal(err)
		}
		for _, d := range devices {
			pc["devices"] = json.RawMessage("[" + string(d) + "]")
			body, err := marshalPlain(pc)
			if err != nil {
				tb.Fatal(err)
			}
			if len(known) < 16*20 && hits(tb, w.eng, body, w.now) {
				if len(w.one) < 256 {
					w.one = append(w.one, body)
				}
				known = append(known, d)
			}
		}
	}
	if len(w.one) < 20 {
		tb.Fatalf("only %d generated devices hit the catalog", len(w.one))
	}
	for i := 0; i+20 <= len(known) && len(w.twenty) < 16; i += 20 {
		first["devices"], _ = marshalPlain(known[i : i+20])
		body, err := marshalPlain(first)
		if err != nil {
			tb.Fatal(err)
		}
		w.twenty = append(w.twenty, body)
	}
	w.whole = wholePCs(tb, dir, tree)
	return w
}

// wholePCs are 8 whole PCs of bench's generator (DeviceOptions.WholePC) from the label tree,
// kept in dir's wholepc.jsonl: generating them reads the whole tree again, which for 100,000
// labels costs more than a benchmark run.
func wholePCs(tb testing.TB, dir, tree string) [][]byte {
	tb.Helper()
	file := filepath.Join(dir, "wholepc.jsonl")
	b, err := os.ReadFile(file)
	if err != nil {
		var pcs bytes.Buffer
		if _, err := bench.GenerateDevices(&pcs, bench.DeviceOptions{PCs: 8, Seed: 1, Labels: tree, WholePC: true}); err != nil {
			tb.Fatal(err)
		}
		b = pcs.Bytes()
		if err := os.WriteFile(file, b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return bytes.Split(bytes.TrimSpace(b), []byte("\n"))
}

// marshalPlain is json.Marshal without its HTML escaping: "&" stays "&" as bench's
// generator and the edge's load requests write it, not "\u0026".
func marshalPlain(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// hits reports whether a request's devices have candidate rows in the release.
func hits(tb testing.TB, eng *offer.Engine, body []byte, now time.Time) bool {
	var req offer.Request
	if e := offer.NewDecoder(offer.DefaultLimits).Decode(body, &req); e != nil {
		tb.Fatalf("generated request does not decode: %v\n%s", e, body)
	}
	var res offer.Result
	eng.Decide(&req, now, true, &res)
	return len(res.Cands) > 0
}

// benchLabels is the catalog size of the benchmarks: 10,000 labels, or
// $DRIVEWAY_BENCH_LABELS.
func benchLabels(tb testing.TB) int {
	if s := os.Getenv("DRIVEWAY_BENCH_LABELS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			tb.Fatalf("DRIVEWAY_BENCH_LABELS=%q: want a positive number", s)
		}
		return n
	}
	return 10000
}

// benchDir is where a benchmark's workload lives: $DRIVEWAY_BENCH_DIR when set, kept
// between runs so that A/B runs of a 100,000-label catalog do not rebuild it each time;
// else a temporary directory.
func benchDir(b *testing.B) string {
	if dir := os.Getenv("DRIVEWAY_BENCH_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		return dir
	}
	return b.TempDir()
}

// BenchmarkDecide is one whole request, as the edge serves it: decode the body, decide,
// encode the answer into a reused buffer.
func BenchmarkDecide(b *testing.B) {
	// A benchmark with sub-benchmarks runs once: the workload is built once per run.
	w := newWorkload(b, benchDir(b), benchLabels(b))
	built := "reused from $DRIVEWAY_BENCH_DIR"
	if w.buildIn > 0 {
		built = "built in " + w.buildIn.Round(time.Millisecond).String()
	}
	b.Logf("%d labels, %s; %d one-device, %d 20-device and %d whole-PC requests", w.labels, built, len(w.one), len(w.twenty), len(w.whole))
	for _, c := range []struct {
		name   string
		bodies [][]byte
	}{{"1dev", w.one}, {"20dev", w.twenty}, {"wholepc", w.whole}} {
		b.Run(c.name, func(b *testing.B) {
			dec := offer.NewDecoder(offer.DefaultLimits)
			var req offer.Request
			var res offer.Result
			var out []byte
			// The answers, to check inside the loop.
			want := make([]int, len(c.bodies))
			size := 0
			for i, body := range c.bodies {
				if e := dec.Decode(body, &req); e != nil {
					b.Fatal(e)
				}
				w.eng.Decide(&req, w.now, false, &res)
				out = offer.AppendResponse(out[:0], &req, &res, w.eng.OS())
				want[i] = len(out)
				size += len(body)
			}
			b.SetBytes(int64(size / len(c.bodies)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := i % len(c.bodies)
				if e := dec.Decode(c.bodies[k], &req); e != nil {
					b.Fatal(e)
				}
				w.eng.Decide(&req, w.now, false, &res)
				out = offer.AppendResponse(out[:0], &req, &res, w.eng.OS())
				if len(out) != want[k] {
					b.Fatalf("request %d: %d bytes; want %d", k, len(out), want[k])
				}
			}
		})
	}
}

// TestDecideAllocs holds Decide and AppendResponse to zero allocations, with and without
// explain, once a Result and a buffer have grown to a request's size and the release's blocks
// are cached.
func TestDecideAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and builds a catalog")
	}
	w := newWorkload(t, scratchDir(t), 500)
	if len(w.one) > 64 {
		w.one = w.one[:64]
	}
	for _, c := range []struct {
		name   string
		bodies [][]byte
	}{{"1dev", w.one}, {"20dev", w.twenty}, {"wholepc", w.whole}} {
		if len(c.bodies) == 0 {
			t.Fatalf("%s: no requests", c.name)
		}
		var req offer.Request
		var res offer.Result
		var out []byte
		dec := offer.NewDecoder(offer.DefaultLimits)
		for _, explain := range []bool{false, true} {
			var allocs float64
			cands := 0
			for k, body := range c.bodies {
				if e := dec.Decode(body, &req); e != nil {
					t.Fatal(e)
				}
				run := func() {
					w.eng.Decide(&req, w.now, explain, &res)
					out = offer.AppendResponse(out[:0], &req, &res, w.eng.OS())
				}
				run() // warm-up: grows res and out, fills the block cache
				n := testing.AllocsPerRun(20, run)
				if n != 0 {
					t.Errorf("%s request %d (explain %v): Decide + AppendResponse allocate %v times; want 0", c.name, k, explain, n)
				}
				allocs += n
				cands += len(res.Cands)
			}
			if explain {
				t.Logf("%s with explain: %.1f allocations per request, %.2f per explained candidate (%d candidates in %d requests)",
					c.name, allocs/float64(len(c.bodies)), allocs/float64(max(cands, 1)), cands, len(c.bodies))
			}
		}
	}
}
