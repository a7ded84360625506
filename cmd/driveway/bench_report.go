package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/driveway/driveway/bench/report"
)

func cmdBenchReport(e *env, args []string) int {
	fs := e.benchFlags("report", `
Report runs the whole benchmark suite on this machine and writes REPORT.md and SVG plots into
--out (bench/, from the repository root): label trees of 10,000, 100,000 and 1,000,000 labels
generated and built (time, peak RSS, bytes), validation, a control-only release, HWID
lookups, in-process decide throughput, and the edge under load on loopback beside the
fixed-answer fasthttp baseline and nginx serving a static file of the same size (closed
loops at several concurrencies for the maximum, then an open loop at half of it for the
latency), the edge's open time, memory and swap delay, and install reports with durable
acks (an edge with a spool taking single reports and batches of 64 while it answers offers:
reports/s, reports per fsync, the edge's CPU, offer latency beside them, against offers
alone in the same run). Each stage is bounded in time and
records the command that reproduces it; a stage that fails or cannot run (the 1M tree needs
about 20 GB of disk, and a build that would exhaust memory is stopped) is reported as such.

The full run takes under 30 minutes, --quick (10,000 labels, short load runs) under 3. The
data goes into a new directory under --work (default: the system's temporary directory)
and is removed at the end unless --keep-work. nginx is optional (the report says so when
it is missing).`)
	quick := fs.Bool("quick", false, "10,000 labels only, short load runs: under 3 minutes")
	out := fs.String("out", "bench", "the `DIR` to write REPORT.md and the plots into")
	work := fs.String("work", "", "the `DIR` for the run's data (label trees, releases, logs)")
	keep := fs.Bool("keep-work", false, "keep the run's data")
	budget := fs.Duration("budget", 0, "bound on the whole run (default 30m, 3m with --quick)")
	nginx := fs.String("nginx", "", "the nginx binary of the static-file baseline (default: nginx in PATH or /usr/sbin)")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if *budget < 0 {
		return e.usageError("bench report", "--budget must not be negative")
	}
	self, err := os.Executable()
	if err != nil {
		return e.fail("bench report", err)
	}
	command := "driveway bench report " + strings.Join(args, " ")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	start := time.Now()
	res, err := report.Report(ctx, report.ReportOptions{Driveway: self, Out: *out, Work: *work, Keep: *keep, Quick: *quick,
		Budget: *budget, Command: strings.TrimSpace(command), Nginx: *nginx, Log: e.stderr})
	if err != nil {
		return e.fail("bench report", err)
	}
	failed := 0
	for _, st := range res.Stages {
		if st.Status == "failed" {
			failed++
		}
	}
	fmt.Fprintf(e.stderr, "driveway bench report: wrote %s in %s (%d files); %d of %d stages failed\n",
		*out+"/REPORT.md", time.Since(start).Round(time.Second), len(res.Files), failed, len(res.Stages))
	for _, t := range res.Targets() {
		fmt.Fprintf(e.stdout, "%-12s %s: %s (goal %s)\n", t.Verdict, t.What, t.Measured, t.Target)
	}
	return exitOK
}
