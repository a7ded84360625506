package diff

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/bench"
	"github.com/driveway/driveway/build"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/signing"
)

// BenchmarkRun's inputs: by default it generates a small catalog (2,000 labels, two
// releases: the second cancels every 100th label) and 1,000 PCs; the figure of docs/diff.md
// comes from releases built by the CLI:
//
//	go test ./diff -run '^$' -bench Run -benchtime 3x -diff.catalog DIR -diff.from 1 -diff.population pcs.ndjson -diff.now 2026-12-02T12:00:00Z
var (
	benchCatalog    = flag.String("diff.catalog", "", "BenchmarkRun: a catalog `DIR` whose release -diff.from is diffed with its newest")
	benchFrom       = flag.Uint64("diff.from", 1, "BenchmarkRun: the release of -diff.catalog to diff from")
	benchPopulation = flag.String("diff.population", "", "BenchmarkRun: the population `FILE` (with -diff.catalog)")
	benchNow        = flag.String("diff.now", "", "BenchmarkRun: the time to decide at (RFC 3339; with -diff.catalog)")
)

// BenchmarkRun replays a population against two releases: one op is the whole population.
func BenchmarkRun(b *testing.B) {
	var from, to *offer.Engine
	var pop []byte
	now := exampleNow
	if *benchCatalog != "" {
		from, to = openSequence(b, *benchCatalog, *benchFrom), openEngine(b, *benchCatalog)
		var err error
		if pop, err = os.ReadFile(*benchPopulation); err != nil {
			b.Fatal(err)
		}
		if *benchNow != "" {
			if now, err = time.Parse(time.RFC3339, *benchNow); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		from, to, pop = generated(b, 2000, 1000)
	}
	pcs := bytes.Count(pop, []byte("\n"))
	b.SetBytes(int64(len(pop)))
	b.ResetTimer()
	var rep *Report
	for b.Loop() {
		var err error
		if rep, err = Run(from, to, bytes.NewReader(pop), &Options{Now: now}); err != nil {
			b.Fatal(err)
		}
		if rep.PCs != pcs {
			b.Fatalf("%d PCs replayed, want %d", rep.PCs, pcs)
		}
	}
	b.ReportMetric(float64(rep.PCs)*float64(b.N)/b.Elapsed().Seconds(), "PCs/s")
	b.ReportMetric(float64(rep.Changed), "changed")
}

func openSequence(b *testing.B, dir string, seq uint64) *offer.Engine {
	env, err := os.ReadFile(index.ReleasePath(dir, seq))
	if err != nil {
		b.Fatal(err)
	}
	rel, err := index.OpenEnvelope(dir, env, &index.VerifyOptions{Unverified: true, IgnoreExpiry: true, Cache: index.NewCacheBudget(1 << 30)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rel.Close() })
	src, err := offer.SourceOf(rel)
	if err != nil {
		b.Fatal(err)
	}
	e, err := offer.NewEngine(src)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// generated builds a generated tree of n labels, and the same tree with every 100th label
// cancelled (with rollback), and a population of pcs PCs.
func generated(b *testing.B, n, pcs int) (from, to *offer.Engine, pop []byte) {
	tree := filepath.Join(b.TempDir(), "labels")
	if _, err := bench.GenerateLabels(tree, bench.LabelOptions{Labels: n, Compact: true}); err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := bench.GenerateDevices(&buf, bench.DeviceOptions{PCs: pcs, Labels: tree}); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(b.TempDir(), "catalog")
	signers := []*signing.Signer{newSigner(b, b.TempDir())}
	if _, err := build.Build(context.Background(), build.Options{Labels: tree, Out: out, Signers: signers, Now: exampleNow}); err != nil {
		b.Fatal(err)
	}
	from = openEngine(b, out)
	cancelEvery(b, tree, 100, exampleNow.Add(-time.Hour))
	out2 := filepath.Join(b.TempDir(), "catalog")
	if _, err := build.Build(context.Background(), build.Options{Labels: tree, Out: out2, Signers: signers, Now: exampleNow}); err != nil {
		b.Fatal(err)
	}
	return from, openEngine(b, out2), buf.Bytes()
}

// cancelEvery cancels every nth shipping label of a tree at at, with rollback.
func cancelEvery(b *testing.B, tree string, nth int, at time.Time) {
	var files []string
	filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(filepath.ToSlash(p), "/shippingLabels/") {
			files = append(files, p)
		}
		return err
	})
	sort.Strings(files)
	for i := 0; i < len(files); i += nth {
		raw, err := os.ReadFile(files[i])
		if err != nil {
			b.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			b.Fatal(err)
		}
		dist, _ := doc["distribution"].(map[string]any)
		if dist == nil {
			dist = map[string]any{}
		}
		dist["cancelled"] = map[string]any{"at": at.Format(time.RFC3339), "rollback": true, "reason": "benchmark"}
		doc["distribution"] = dist
		out, err := json.Marshal(doc)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(files[i], out, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}
