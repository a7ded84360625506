package main

import (
	"encoding/json"
	"fmt"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/ostable"
)

func cmdValidate(e *env, args []string) int {
	fs := e.flags("validate", `
Validate reads a label tree and checks it with every rule the build applies (docs/labels.md),
without writing anything. Each problem prints as one line:

  CODE file#json-pointer: message

sorted by file. L-codes are errors, W-codes warnings (docs/validation.md lists them): exit
status 1 when there is an error, or with --strict when there is a warning too. The warnings
include a static analysis of the tree: labels that can never be offered (W001), orders
decided only by label id (W004), rollouts that cannot reach 100% before their cancel (W005)
and blocks that match nothing (W006). --now is the time the tree is judged at (a cancel
already in effect is a finished rollout, not a plan).
A directory without products/ is not a label tree (a typo, the parent of the tree): exit 1,
with one line naming the subdirectory that is one.`)
	labels := fs.String("labels", "", "the label tree `DIR` (required)")
	asJSON := fs.Bool("json", false, "print the problems as JSON")
	requireFlight := fs.Bool("require-flight", false, "make an automatic label that never flighted an error (L065), not a warning")
	osTable := fs.String("os-table", "", "an OS table `FILE` replacing the embedded one")
	strict := fs.Bool("strict", false, "fail (exit 1) on warnings too")
	nowFlag := fs.String("now", "", "judge the tree at this `TIME` (RFC 3339); default: now")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if *labels == "" {
		return e.usageError("validate", "--labels is required")
	}
	now, err := e.parseNow(*nowFlag)
	if err != nil {
		return e.usageError("validate", err.Error())
	}
	progress, finish := progressTo(e.stderr, "validate", false)
	tree, probs, err := loadTree(*labels, *osTable, &catalogs.ValidateOptions{RequireFlight: *requireFlight, Now: now}, progress)
	finish()
	if err != nil {
		return e.fail("validate", err)
	}
	errs := probs.Errors()
	if *asJSON {
		writeProblemsJSON(e, probs)
	} else {
		for _, p := range probs {
			fmt.Fprintln(e.stdout, p)
		}
		fmt.Fprintf(e.stderr, "%d labels: %s, %s\n", len(tree.Labels()), plural(errs, "error"), plural(len(probs)-errs, "warning"))
	}
	if errs > 0 || (*strict && len(probs) > 0) {
		return exitFailure
	}
	return exitOK
}

// loadTree loads and validates a label tree: the build's checks, shared by validate and build.
// progress, when set, sees the load by product directory ("load") and the rules ("validate").
func loadTree(dir, osTablePath string, vopts *catalogs.ValidateOptions, progress func(string, int, int)) (*catalogs.Tree, catalogs.Problems, error) {
	var tab *ostable.Table
	if osTablePath != "" {
		var err error
		if tab, err = ostable.Load(osTablePath); err != nil {
			return nil, nil, err
		}
	}
	lopts := &catalogs.LoadOptions{OS: tab}
	if progress != nil {
		lopts.Progress = func(done, total int) { progress("load", done, total) }
	}
	tree, probs, err := catalogs.Load(dir, lopts)
	if err != nil {
		return nil, nil, err
	}
	if progress != nil {
		progress("validate", 0, 1)
	}
	probs = append(probs, tree.Validate(vopts)...)
	probs.Sort()
	return tree, probs, nil
}

type problemJSON struct {
	Code     string `json:"code"`
	Severity string `json:"severity"`
	File     string `json:"file"`
	Pointer  string `json:"pointer"`
	Message  string `json:"message"`
}

func problemsJSON(probs catalogs.Problems) []problemJSON {
	out := make([]problemJSON, 0, len(probs))
	for _, p := range probs {
		sev := "error"
		if p.Warning() {
			sev = "warning"
		}
		out = append(out, problemJSON{p.Code, sev, p.File, p.Pointer, p.Message})
	}
	return out
}

func writeProblemsJSON(e *env, probs catalogs.Problems) {
	errs := probs.Errors()
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	enc.Encode(struct {
		Errors   int           `json:"errors"`
		Warnings int           `json:"warnings"`
		Problems []problemJSON `json:"problems"`
	}{errs, len(probs) - errs, problemsJSON(probs)})
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
