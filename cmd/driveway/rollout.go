package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/driveway/driveway/build"
	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/rollout"
	"github.com/driveway/driveway/rollout/clickhouse"
	"github.com/driveway/driveway/signing"
)

func cmdRollout(e *env, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "measure":
			return cmdRolloutMeasure(e, args[1:])
		case "step":
			return cmdRolloutStep(e, args[1:])
		case "expedite":
			return cmdRolloutExpedite(e, args[1:])
		case "lift":
			return cmdRolloutLift(e, args[1:])
		case "report":
			return cmdRolloutReport(e, args[1:])
		}
	}
	if len(args) > 0 && args[0] != "--help" && args[0] != "-h" {
		return e.usageError("rollout", fmt.Sprintf("unknown rollout command %q", args[0]))
	}
	fmt.Fprint(e.stdout, `Usage: driveway rollout measure|step|expedite|lift|report [flags]

Rollout is the health loop of gradual rollouts:

  measure  aggregate install-report spools into per-label and per-cohort measures (JSON)
  step     decide, per label in rollout, advance / hold / pause / cancel from the measures
           and a policy, write the new distribution state into the label files, and publish
           a control-only release so edges pick it up
  expedite move one healthy label to 100% now, recorded with who and why
  lift     lift a targeted hold of a cohort (a block the controller added), recorded with
           who and why
  report   write a label's flight report: an HTML page of its rollout over time, its rates
           per stage and cohort against the policy, its error codes and rollbacks

Run 'driveway rollout measure --help', 'step --help', 'expedite --help', 'lift --help' or
'report --help' for the flags.
`)
	if len(args) == 0 {
		return exitUsage
	}
	return exitOK
}

func cmdRolloutMeasure(e *env, args []string) int {
	fs := e.newFlags("rollout measure", "(--reports DIR … | --clickhouse URL) [--since TIME] [--policy FILE] [--now TIME]", `
Measure reads the spools edges write (POST /v1/reports; see docs/deployment.md) and prints
per-label measures as JSON: machines reporting, installed, failed, rolled back, kernel
crashes and PnP errors after install, the percent of machines without a failure, and the
same per cohort (OS release × the PC's model CHID). A measure below the minimum population is
marked "not enough data". Torn last lines (an edge that crashed mid-write) are skipped and
counted. With --clickhouse instead of --reports, the same measures are aggregated inside
ClickHouse, from a table a shipper fills with the spools' lines (docs/deployment.md,
"Measuring in ClickHouse").`)
	var dirs []string
	fs.StringArrayVar(&dirs, "reports", nil, "a spool `DIR` (repeat; subdirectories are read too)")
	chURL := fs.String("clickhouse", "", "aggregate in ClickHouse: its HTTP interface `URL` (http://[user:password@]host:8123)")
	chTable := fs.String("clickhouse-table", clickhouse.DefaultTable, "the reports `TABLE` in ClickHouse (name or database.name)")
	since := fs.String("since", "", "only reports from this `TIME` on (RFC 3339); default: the policy's window")
	policyFile := fs.String("policy", "", "policy `FILE` whose window and minimum populations apply (default: the built-in policy)")
	minLabel := fs.Int("min-label", 0, "machines a label measure needs (default: the policy's, 100)")
	minCohort := fs.Int("min-cohort", 0, "machines a cohort measure needs (default: the policy's, 500)")
	nowFlag := fs.String("now", "", "the `TIME` the measures are for (RFC 3339); default now")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if (len(dirs) == 0) == (*chURL == "") {
		return e.usageError("rollout", "measure needs --reports DIR or --clickhouse URL (one of them)")
	}
	now, err := e.parseNow(*nowFlag)
	if err != nil {
		return e.usageError("rollout", err.Error())
	}
	policy := &rollout.DefaultPolicy
	if *policyFile != "" {
		if policy, err = rollout.LoadPolicy(*policyFile); err != nil {
			return e.fail("rollout", err)
		}
	}
	opts := rollout.MeasureOptions{MinLabelMachines: policy.MinLabelMachines, MinCohortMachines: policy.MinCohortMachines,
		Since: now.Add(-policy.Window.Duration), Until: now}
	if *minLabel > 0 {
		opts.MinLabelMachines = *minLabel
	}
	if *minCohort > 0 {
		opts.MinCohortMachines = *minCohort
	}
	if *since != "" {
		if opts.Since, err = time.Parse(time.RFC3339, *since); err != nil {
			return e.usageError("rollout", "--since is not an RFC 3339 time")
		}
	}
	var m rollout.Measures
	if *chURL != "" {
		m, err = clickhouse.Measure(context.Background(), clickhouse.Options{URL: *chURL, Table: *chTable}, opts, now)
	} else {
		m, err = rollout.MeasureSpools(dirs, opts, now)
	}
	if err != nil {
		return e.fail("rollout", err)
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	fmt.Fprintf(e.stdout, "%s\n", b)
	if *chURL != "" {
		fmt.Fprintf(e.stderr, "%d labels from %d reports in ClickHouse (%d invalid skipped)\n", len(m.Labels), m.Read.Lines, m.Read.Invalid)
		return exitOK
	}
	fmt.Fprintf(e.stderr, "%d labels from %d reports in %d files (%d torn lines, %d invalid skipped)\n",
		len(m.Labels), m.Read.Lines, m.Read.Files, m.Read.Torn, m.Read.Invalid)
	return exitOK
}

func cmdRolloutStep(e *env, args []string) int {
	fs := e.newFlags("rollout step", "--labels DIR --measures FILE --out DIR --key PREFIX.key [--policy FILE] [--dry-run] [--json] [--audit FILE]", `
Step decides, for every label whose gradual rollout is under way, whether to advance it to
the policy's next stage, hold it, pause it or cancel it (with rollback when the policy says),
explains each decision in one line, and writes the new state into the labels' distribution
(only that member of each file changes). With --out and --key it then publishes a
control-only release (driveway build --control-only) so edges pick the change up. Running it
twice with the same inputs changes nothing the second time.`)
	labels := fs.String("labels", "", "the label tree `DIR` (required)")
	measuresFile := fs.String("measures", "", "measures `FILE` from rollout measure (- for stdin; required)")
	policyFile := fs.String("policy", "", "policy `FILE` (default: the built-in policy, 1% to 100%)")
	nowFlag := fs.String("now", "", "the `TIME` of the step (RFC 3339); default now")
	dryRun := fs.Bool("dry-run", false, "print the plan, change nothing")
	out := fs.String("out", "", "publish a control-only release into this catalog `DIR`")
	keys := fs.StringArray("key", nil, "signing key `FILE` for --out")
	logKey := fs.String("log-key", "", "the transparency log key `FILE` for --out, when the catalog has a log")
	asJSON := fs.Bool("json", false, "print the decisions as JSON")
	audit := fs.String("audit", "", "append every decision that changes a label to this NDJSON `FILE` (an audit log)")
	censusFile := fs.String("census", "", "census `FILE`: machines per label and targeting cluster, for the policy's throttle and firstRing")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if *labels == "" || *measuresFile == "" {
		return e.usageError("rollout", "step needs --labels and --measures")
	}
	if (*out == "") != (len(*keys) == 0) {
		return e.usageError("rollout", "--out and --key go together")
	}
	now, err := e.parseNow(*nowFlag)
	if err != nil {
		return e.usageError("rollout", err.Error())
	}
	policy := &rollout.DefaultPolicy
	if *policyFile != "" {
		if policy, err = rollout.LoadPolicy(*policyFile); err != nil {
			return e.fail("rollout", err)
		}
	}
	var m rollout.Measures
	b, err := e.readInput(*measuresFile)
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		return e.fail("rollout", fmt.Errorf("%s: %w", *measuresFile, err))
	}
	tree, probs, err := catalogs.Load(*labels, nil)
	if err != nil {
		return e.fail("rollout", err)
	}
	if n := probs.Errors(); n > 0 {
		for _, p := range probs {
			fmt.Fprintln(e.stderr, p)
		}
		return e.fail("rollout", fmt.Errorf("the label tree has %d errors; fix them first", n))
	}
	in := rollout.StepInputs{}
	if in.Lifts, err = rollout.LoadLifts(*labels); err != nil {
		return e.fail("rollout", err)
	}
	if *censusFile != "" {
		if in.Census, err = rollout.LoadCensus(*censusFile); err != nil {
			return e.fail("rollout", err)
		}
	}
	decisions := rollout.StepWith(tree, &m, policy, now, in)
	if *asJSON {
		b, _ := json.MarshalIndent(decisions, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		for _, d := range decisions {
			fmt.Fprintln(e.stdout, d)
		}
	}
	if *dryRun {
		fmt.Fprintf(e.stderr, "dry run: nothing changed\n")
		return exitOK
	}
	changed, err := rollout.Apply(*labels, decisions)
	if err != nil {
		return e.fail("rollout", err)
	}
	fmt.Fprintf(e.stderr, "%d labels in rollout, %d changed\n", len(decisions), len(changed))
	return e.publishDecisions(*labels, *out, *keys, *logKey, *audit, decisions, changed, now)
}

// publishDecisions appends the changing decisions to the audit log (when asked) and
// publishes a control-only release of the changed labels (with --out).
func (e *env) publishDecisions(labels, out string, keys []string, logKeyFile, audit string, decisions []rollout.Decision, changed []string, now time.Time) int {
	if audit != "" {
		if err := rollout.AppendAudit(audit, decisions, now); err != nil {
			return e.fail("rollout", err)
		}
	}
	if out == "" || len(changed) == 0 {
		return exitOK
	}
	var signers []*signing.Signer
	for _, k := range keys {
		s, err := signing.LoadSigner(context.Background(), k, signing.PasswordFromEnv())
		if err != nil {
			return e.fail("rollout", err)
		}
		signers = append(signers, s)
	}
	logKey, err := loadLogKey(logKeyFile)
	if err != nil {
		return e.fail("rollout", err)
	}
	rep, err := build.Control(context.Background(), build.ControlOptions{Labels: labels, Out: out, Signers: signers, Now: now, LabelIDs: changed, LogKey: logKey})
	return e.reportBuild(rep, err, "", false)
}

func cmdRolloutExpedite(e *env, args []string) int {
	fs := e.newFlags("rollout expedite", "--label ID --by WHO --reason TEXT --labels DIR --measures FILE --out DIR --key PREFIX.key [--force] [--audit FILE]", `
Expedite moves one label in gradual rollout to 100% now, as an operator's decision recorded
with who and why: in the label file (a 100% stage from now), in the line it prints, and in
--audit. The label must be one the controller would advance were it not for its dwell or the
next stage: in rollout, not paused or cancelled, enough machines in --measures, every
advance bound met and no pause or cancel bound broken. --force skips that check (a fix that
must ship), and the record says so. With --out and --key it publishes a control-only
release, as step does.`)
	labels := fs.String("labels", "", "the label tree `DIR` (required)")
	label := fs.String("label", "", "the label `ID` to expedite (required)")
	by := fs.String("by", "", "who expedites (`NAME`, recorded; required)")
	reason := fs.String("reason", "", "why (`TEXT`, recorded; required)")
	measuresFile := fs.String("measures", "", "measures `FILE` from rollout measure (- for stdin; required without --force)")
	force := fs.Bool("force", false, "skip the health check (recorded as forced)")
	policyFile := fs.String("policy", "", "policy `FILE` (default: the built-in policy)")
	nowFlag := fs.String("now", "", "the `TIME` of the decision (RFC 3339); default now")
	out := fs.String("out", "", "publish a control-only release into this catalog `DIR`")
	keys := fs.StringArray("key", nil, "signing key `FILE` for --out")
	logKey := fs.String("log-key", "", "the transparency log key `FILE` for --out, when the catalog has a log")
	audit := fs.String("audit", "", "append the decision to this NDJSON `FILE` (an audit log)")
	asJSON := fs.Bool("json", false, "print the decision as JSON")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	switch {
	case *labels == "" || *label == "" || *by == "" || *reason == "":
		return e.usageError("rollout", "expedite needs --labels, --label, --by and --reason")
	case *measuresFile == "" && !*force:
		return e.usageError("rollout", "expedite needs --measures to check the label is healthy (or --force, recorded as forced)")
	case (*out == "") != (len(*keys) == 0):
		return e.usageError("rollout", "--out and --key go together")
	}
	now, err := e.parseNow(*nowFlag)
	if err != nil {
		return e.usageError("rollout", err.Error())
	}
	policy := &rollout.DefaultPolicy
	if *policyFile != "" {
		if policy, err = rollout.LoadPolicy(*policyFile); err != nil {
			return e.fail("rollout", err)
		}
	}
	var m rollout.Measures
	if *measuresFile != "" {
		b, err := e.readInput(*measuresFile)
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if err != nil {
			return e.fail("rollout", fmt.Errorf("%s: %w", *measuresFile, err))
		}
	}
	tree, probs, err := catalogs.Load(*labels, nil)
	if err != nil {
		return e.fail("rollout", err)
	}
	if n := probs.Errors(); n > 0 {
		return e.fail("rollout", fmt.Errorf("the label tree has %d errors; fix them first (driveway validate --labels %s)", n, *labels))
	}
	d, err := rollout.Expedite(tree, *label, &m, policy, now, rollout.ExpediteOptions{By: *by, Reason: *reason, Force: *force})
	if err != nil {
		return e.fail("rollout", err)
	}
	if *asJSON {
		b, _ := json.MarshalIndent(d, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		fmt.Fprintln(e.stdout, d)
	}
	changed, err := rollout.Apply(*labels, []rollout.Decision{d})
	if err != nil {
		return e.fail("rollout", err)
	}
	return e.publishDecisions(*labels, *out, *keys, *logKey, *audit, []rollout.Decision{d}, changed, now)
}

func cmdRolloutLift(e *env, args []string) int {
	fs := e.newFlags("rollout lift", "--block ID --by WHO --reason TEXT --labels DIR --out DIR --key PREFIX.key [--audit FILE] [--json]", `
Lift lifts a targeted hold: a block the rollout controller added to blocks.json when one
cohort (OS release × model CHID) of a label broke the policy (its id is the blockId of the
hold-cohort decision in 'rollout step --json' and in the audit log). The block is removed,
and the lift is recorded with who and why in the tree's lifts.json, in the line it prints
and in --audit; the controller does not hold that cohort of that label alone again (its
machines are judged with the label's). With --out and --key it publishes a control-only
release, as step does. The controller lifts a hold by itself when a newer driver for the
cohort is fully live.`)
	labels := fs.String("labels", "", "the label tree `DIR` (required)")
	block := fs.String("block", "", "the hold's block `ID` (required)")
	by := fs.String("by", "", "who lifts it (`NAME`, recorded; required)")
	reason := fs.String("reason", "", "why (`TEXT`, recorded; required)")
	nowFlag := fs.String("now", "", "the `TIME` of the decision (RFC 3339); default now")
	out := fs.String("out", "", "publish a control-only release into this catalog `DIR`")
	keys := fs.StringArray("key", nil, "signing key `FILE` for --out")
	logKey := fs.String("log-key", "", "the transparency log key `FILE` for --out, when the catalog has a log")
	audit := fs.String("audit", "", "append the decision to this NDJSON `FILE` (an audit log)")
	asJSON := fs.Bool("json", false, "print the decision as JSON")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	switch {
	case *labels == "" || *block == "" || *by == "" || *reason == "":
		return e.usageError("rollout", "lift needs --labels, --block, --by and --reason")
	case (*out == "") != (len(*keys) == 0):
		return e.usageError("rollout", "--out and --key go together")
	}
	now, err := e.parseNow(*nowFlag)
	if err != nil {
		return e.usageError("rollout", err.Error())
	}
	tree, probs, err := catalogs.Load(*labels, nil)
	if err != nil {
		return e.fail("rollout", err)
	}
	if n := probs.Errors(); n > 0 {
		return e.fail("rollout", fmt.Errorf("the label tree has %d errors; fix them first (driveway validate --labels %s)", n, *labels))
	}
	d, err := rollout.LiftHold(tree, *block, now, rollout.LiftOptions{By: *by, Reason: *reason})
	if err != nil {
		return e.fail("rollout", err)
	}
	if *asJSON {
		b, _ := json.MarshalIndent(d, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		fmt.Fprintln(e.stdout, d)
	}
	changed, err := rollout.Apply(*labels, []rollout.Decision{d})
	if err != nil {
		return e.fail("rollout", err)
	}
	return e.publishDecisions(*labels, *out, *keys, *logKey, *audit, []rollout.Decision{d}, changed, now)
}
