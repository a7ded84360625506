package bench

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/driveway/driveway/catalogs"
)

// BenchmarkAnalysis measures validate's static analysis on a generated tree (bench
// gen-labels, seed 1) of DRIVEWAY_BENCH_LABELS labels (default 10,000; docs/validation.md
// has the figure for 100,000):
//
//	DRIVEWAY_BENCH_LABELS=100000 go test ./bench -run '^$' -bench Analysis -benchtime 3x
//
// or, to measure one tree several times, DRIVEWAY_BENCH_TREE=DIR names a tree written by
// driveway bench gen-labels (--compact) instead.
//
// "analysis" is the static analysis alone; "validate" every rule of a loaded, expanded tree,
// the analysis included.
func BenchmarkAnalysis(b *testing.B) {
	n := 10000
	if s := os.Getenv("DRIVEWAY_BENCH_LABELS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			b.Fatalf("DRIVEWAY_BENCH_LABELS=%q: want a positive number of labels", s)
		}
	}
	dir := os.Getenv("DRIVEWAY_BENCH_TREE") // a tree written before (driveway bench gen-labels), reused
	if dir == "" {
		dir = filepath.Join(b.TempDir(), "labels")
		if _, err := GenerateLabels(dir, LabelOptions{Labels: n, Seed: 1, Compact: true}); err != nil {
			b.Fatal(err)
		}
	}
	tree, _, err := catalogs.Load(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	opts := &catalogs.ValidateOptions{Now: WorldNow()}
	tree.Validate(opts) // expansion, once
	b.Run("analysis", func(b *testing.B) {
		warnings := 0
		for b.Loop() {
			warnings = len(tree.Analyse(opts))
		}
		b.ReportMetric(float64(warnings), "warnings")
		b.ReportMetric(float64(len(tree.Labels())), "labels")
	})
	b.Run("validate", func(b *testing.B) {
		for b.Loop() {
			tree.Validate(opts)
		}
	})
}
