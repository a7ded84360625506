package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/driveway/driveway/bench/rolloutsim"
	"github.com/driveway/driveway/rollout"
)

func cmdBenchRolloutSim(e *env, args []string) int {
	fs := e.benchFlags("rollout-sim", `
Rollout-sim runs the health loop of gradual rollouts end to end on this machine, over
simulated days: it builds a catalog of four network drivers in gradual rollout (one of them
bad: it fails on --bad-failure-rate of the PCs that install it, mostly with kernel crashes
and PnP errors after install), starts an edge with a report spool on a loopback port, and
every 6 simulated hours runs the controller as 'driveway rollout measure' and 'step' do
(measure the spool, step, publish a control-only release, wait for the edge to serve it),
while the PCs whose daily scan falls then ask for offers, install what they get and report
how it went. It prints the controller's timeline and a summary: the bad label is paused or
cancelled at its first stage, the good ones reach 100%, and every offer request must be
answered 200 (exit status 1 otherwise).

The policy is the built-in one (or --policy FILE) with its minimum populations scaled down
to the simulated population: the smallest label's expected machines at the first stage are
twice the label minimum. Everything follows from --seed.

PCs reach the edge through a trusted proxy (loopback) and name their own network in
X-Forwarded-For, so the spool records where each report came from. --forged-reports N adds
the forged-report attack: on day 1 an attacker on one network sends N crash reports with
made-up report tokens (all refused), then makes up N devices, gets offers of a good driver
for them and reports each as a kernel crash with its offer's token. The summary shows what
the edge refused and took, and that the controller held the good driver as uncorroborated
instead of pausing or cancelling it, while the bad driver is still stopped at its first
stage.

--scenario picks the world (the summary's "scenario" line says whether it did what it shows):
  everywhere  the bad driver fails everywhere: stopped at its first stage (the default);
  cohort      the bad driver fails on one PC model on build 26100 only: with an even first
              ring (policy firstRing, 30 machines per cluster unless the policy sets one) that
              cohort is held within the first stage and the driver reaches 100% elsewhere;
  background  every driver is good, but one small cohort (one model on Windows 10 22H2) has
              kernel crashes unrelated to any driver on --background-crash-rate of its PCs a
              day, before and after the new drivers: judged over the baseline (the driver
              each rollout replaces), no driver is paused, cancelled or held;
  throttle    every driver is good and paced by a count throttle of --throttle-per-day new
              machines a day (unless the policy has one): each label's daily new machines
              stay within 10% of it.
The controller steps with a census of the simulated fleet (machines per label and per OS
release and model), as an edge's request sample would give it.`)
	pcs := fs.Int("pcs", 20000, "simulated PCs")
	days := fs.Int("days", 30, "simulated days")
	rate := fs.Float64("bad-failure-rate", 0.08, "share of the bad driver's installs that fail (0 to 1)")
	seed := fs.Int64("seed", 1, "random seed: the population and who fails")
	plot := fs.String("plot", "", "write an SVG plot of percent and failure rate over time to `FILE`")
	policyFile := fs.String("policy", "", "policy `FILE` (default: the built-in policy, 1% to 100%)")
	asJSON := fs.Bool("json", false, "print the result as JSON (every decision, every plotted point)")
	all := fs.Bool("all", false, "print every decision, not only changes")
	forged := fs.Int("forged-reports", 0, "add the forged-report attack with `N` made-up devices (see above)")
	scenario := fs.String("scenario", "everywhere", "the world: everywhere, cohort, background or throttle (see above)")
	background := fs.Float64("background-crash-rate", 0.03, "scenario background: share of the cohort's PCs with a kernel crash each day (0 to 1)")
	throttle := fs.Int("throttle-per-day", 0, "scenario throttle: new machines a day per label (default --pcs / 40)")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if *rate <= 0 || *rate > 1 {
		return e.usageError("bench", "--bad-failure-rate must be above 0 and at most 1")
	}
	if *forged < 0 {
		return e.usageError("bench", "--forged-reports must be 0 or more")
	}
	if *background <= 0 || *background > 1 {
		return e.usageError("bench", "--background-crash-rate must be above 0 and at most 1")
	}
	if *throttle < 0 {
		return e.usageError("bench", "--throttle-per-day must be 0 (the default) or more")
	}
	opts := rolloutsim.Options{PCs: *pcs, Days: *days, BadFailureRate: *rate, Seed: *seed, Logger: slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), ForgedReports: *forged, Scenario: *scenario,
		BackgroundCrashRate: *background, ThrottlePerDay: *throttle}
	if *policyFile != "" {
		p, err := rollout.LoadPolicy(*policyFile)
		if err != nil {
			return e.fail("bench", err)
		}
		opts.Policy = p
	}
	var bar *progressBar
	if isTerminal(e.stderr) {
		bar = &progressBar{w: e.stderr}
		opts.Progress = func(done, total int) { bar.update("steps", done, total) }
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	res, err := rolloutsim.Run(ctx, opts)
	bar.finish()
	if res != nil {
		if *plot != "" {
			if werr := os.WriteFile(*plot, res.SVG(), 0o644); werr != nil {
				return e.fail("bench", werr)
			}
		}
		if *asJSON {
			b, _ := json.MarshalIndent(res, "", "  ")
			fmt.Fprintf(e.stdout, "%s\n", b)
		} else {
			res.WriteText(e.stdout, *all)
		}
	}
	if err != nil {
		return e.fail("bench", err)
	}
	if !res.OK {
		fmt.Fprintf(e.stderr, "driveway bench: scenario %s: %s\n", res.Scenario, res.Outcome)
		return exitFailure
	}
	return exitOK
}
