package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/internal/atomicfile"
	"github.com/driveway/driveway/rollout"
	"github.com/driveway/driveway/rollout/flight"
)

func cmdRolloutReport(e *env, args []string) int {
	fs := e.newFlags("rollout report", "--label ID --labels DIR --reports DIR … --out FILE|- [--audit FILE] [--policy FILE] [--json] [--now TIME]", `
Report writes a label's flight report: one self-contained HTML page (no network needed to
open it) with the percent offered and the machines that installed and failed over time, every
controller decision of the audit log marked; the failure, kernel-crash and PnP-error rates per
stage and per cohort (OS release × model) against the policy's advance, pause and cancel
bounds; the error codes failed machines reported most; and the devices that rolled back
(their spool pseudonyms). It reads the same spools and policy as rollout measure and step,
over the whole retention window. --json prints the report's data instead (also embedded in
the page). See docs/deployment.md, "The flight report".`)
	label := fs.String("label", "", "the label `ID` to report on (required)")
	labels := fs.String("labels", "", "the label tree `DIR` (required)")
	var dirs []string
	fs.StringArrayVar(&dirs, "reports", nil, "a spool `DIR` (repeat; subdirectories are read too; required)")
	audit := fs.String("audit", "", "the controller's audit log `FILE` (rollout step --audit): its decisions are marked")
	policyFile := fs.String("policy", "", "policy `FILE` whose bounds the rates are judged by (default: the built-in policy)")
	out := fs.String("out", "", "write the HTML page to `FILE` (- for stdout; required without --json)")
	asJSON := fs.Bool("json", false, "print the report's data as JSON on stdout")
	maxDevices := fs.Int("max-devices", 100, "list at most `N` devices that rolled back (all are counted)")
	nowFlag := fs.String("now", "", "the `TIME` of the report (RFC 3339); default now")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	switch {
	case *label == "" || *labels == "" || len(dirs) == 0:
		return e.usageError("rollout", "report needs --label, --labels and --reports")
	case *out == "" && !*asJSON:
		return e.usageError("rollout", "report needs --out FILE (or - for stdout), or --json")
	case *out == "-" && *asJSON:
		return e.usageError("rollout", "--out - and --json both write to stdout: choose one")
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
	for _, d := range dirs {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return e.fail("rollout", fmt.Errorf("--reports %s is not a directory (a spool directory edges write with --spool)", d))
		}
	}
	r, err := flight.Build(flight.Options{Label: *label, Tree: tree, Spools: dirs, Policy: policy, Audit: *audit, Now: now, MaxDevices: *maxDevices})
	if err != nil {
		return e.fail("rollout", err)
	}
	if *asJSON {
		b, _ := json.MarshalIndent(r, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
	}
	if *out != "" {
		var page bytes.Buffer
		if err := r.WriteHTML(&page); err != nil {
			return e.fail("rollout", err)
		}
		if *out == "-" {
			e.stdout.Write(page.Bytes())
		} else if err := atomicfile.Write(*out, page.Bytes(), 0o644); err != nil {
			return e.fail("rollout", err)
		}
	}
	where := ""
	if *out != "" && *out != "-" {
		where = " to " + *out
	}
	fmt.Fprintf(e.stderr, "flight report of label %s%s: %d reports from %d machines, %d stages, %d cohorts, %d decisions, %d devices rolled back\n",
		r.Label.ID, where, r.Reports, r.Flight.Machines, len(r.Stages), len(r.Cohorts), len(r.Decisions), r.RolledBackDevices)
	return exitOK
}
