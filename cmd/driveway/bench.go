package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/spf13/pflag"

	"github.com/driveway/driveway/bench"
)

// benchCommands are the subcommands of driveway bench. Each lives in a file of its own.
func benchCommands() []command {
	return []command{
		{"gen-labels", "write a realistic label tree of a chosen size", "--out DIR [--labels N] [--seed S] [--compact]", cmdBenchGenLabels},
		{"gen-devices", "write a population of PCs as offer requests (NDJSON)", "--labels DIR [--pcs N] [--seed S] [--whole-pc] [--out FILE]", cmdBenchGenDevices},
		{"lookups", "measure cold and warm hardware ID lookups in a release", "--catalog DIR [--keys N] [--json]", cmdBenchLookups},
		{"rollout-sim", "run the rollout health loop end to end over simulated days", "[--pcs N] [--days D] [--bad-failure-rate R] [--seed S] [--plot FILE] [--policy FILE] [--json]", cmdBenchRolloutSim},
		{"load", "drive an edge with offer requests over HTTP and measure it", "(--population FILE [--devices N] | --body FILE) [--url URL] [--concurrency N] [--rate R] [--duration D] [--requests N] [--json]", cmdBenchLoad},
		{"fixed-answer", "serve the baseline the edge is measured against: a fixed answer, no work", "[--bytes N] [--listen ADDR]", cmdBenchFixedAnswer},
		{"report", "run the benchmark suite on this machine and write bench/REPORT.md with plots", "[--quick] [--out DIR] [--work DIR] [--keep-work]", cmdBenchReport},
	}
}

func cmdBench(e *env, args []string) int {
	if len(args) > 0 {
		for _, c := range benchCommands() {
			if c.name == args[0] {
				return c.run(e, args[1:])
			}
		}
		if args[0] != "--help" && args[0] != "-h" && args[0] != "help" {
			return e.usageError("bench", fmt.Sprintf("unknown bench command %q", args[0]))
		}
	}
	fmt.Fprintf(e.stdout, "Usage: driveway bench <command> [flags]\n\nBench generates realistic workloads and measures driveway with them.\n\nCommands:\n")
	cs := benchCommands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(e.stdout, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(e.stdout, "\nRun 'driveway bench <command> --help' for its flags.\n")
	if len(args) == 0 {
		return exitUsage
	}
	return exitOK
}

// benchFlags is e.flags for a bench subcommand: its usage line comes from benchCommands.
func (e *env) benchFlags(name, description string) *pflag.FlagSet {
	for _, c := range benchCommands() {
		if c.name == name {
			return e.newFlags("bench "+name, c.usage, description)
		}
	}
	return e.newFlags("bench "+name, "", description)
}

func cmdBenchGenLabels(e *env, args []string) int {
	fs := e.benchFlags("gen-labels", `
Gen-labels writes a label tree with the shape of a real driver ecosystem: vendors with PCI,
USB, HID, ACPI, HDAUDIO and UEFI IDs of the right forms, OEMs with their models and CHIDs,
products with several submissions over time, automatic, manual and dynamic-update labels,
flights, gradual rollouts at various stages, test-key audiences, ceilings, expansions,
extension INFs and holds. It is deterministic from --seed and validates without errors; the
older drivers its updates leave live draw warnings (W001, superseded), as a real catalog's do.`)
	out := fs.String("out", "", "the `DIR` to write (must be empty or absent) (required)")
	n := fs.Int("labels", 10000, "shipping labels to generate")
	seed := fs.Int64("seed", 1, "random seed")
	compact := fs.Bool("compact", false, "write JSON without indentation (large trees)")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if *out == "" {
		return e.usageError("bench", "gen-labels needs --out DIR")
	}
	start := time.Now()
	opts := bench.LabelOptions{Labels: *n, Seed: *seed, Compact: *compact}
	var bar *progressBar
	if isTerminal(e.stderr) {
		bar = &progressBar{w: e.stderr}
		opts.Progress = func(done, total int) { bar.update("labels", done, total) }
	}
	st, err := bench.GenerateLabels(*out, opts)
	bar.finish()
	if err != nil {
		return e.fail("bench", err)
	}
	fmt.Fprintf(e.stderr, "%d labels, %d products, %d submissions, %d rows, %d hardware IDs: %d files, %s bytes in %s\n",
		st.Labels, st.Products, st.Submissions, st.Rows, st.HWIDs, st.Files, groupDigits(st.Bytes), time.Since(start).Round(time.Millisecond))
	return exitOK
}

func cmdBenchGenDevices(e *env, args []string) int {
	fs := e.benchFlags("gen-devices", `
Gen-devices writes a population of PCs as offer requests, one JSON object per line: OS builds
in realistic proportions, 5 to 40 devices each whose hardware comes from the label tree with a
Zipf-like popularity plus IDs no label knows, CHIDs of plausible models, installed drivers,
insiders and test-key machines. It is deterministic from --seed and the tree.`)
	labels := fs.String("labels", "", "the label tree `DIR` to draw hardware from (required)")
	pcs := fs.Int("pcs", 10000, "PCs to generate")
	seed := fs.Int64("seed", 1, "random seed")
	out := fs.String("out", "", "write to `FILE` instead of stdout")
	whole := fs.Bool("whole-pc", false, "whole PCs: 100 to 200 device nodes each with their full ID lists, most known to no label, as Windows reports them")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if *labels == "" {
		return e.usageError("bench", "gen-devices needs --labels DIR")
	}
	w := bufio.NewWriterSize(e.stdout, 1<<20)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return e.fail("bench", err)
		}
		defer f.Close()
		w = bufio.NewWriterSize(f, 1<<20)
	}
	st, err := bench.GenerateDevices(w, bench.DeviceOptions{PCs: *pcs, Seed: *seed, Labels: *labels, WholePC: *whole})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return e.fail("bench", err)
	}
	fmt.Fprintf(e.stderr, "%d PCs, %d devices (%d known to the catalog, %d with a driver), %d IDs, %s bytes\n",
		st.PCs, st.Devices, st.Known, st.WithDriver, st.IDs, groupDigits(st.Bytes))
	return exitOK
}
