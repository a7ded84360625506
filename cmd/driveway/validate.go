package main

import (
	"encoding/json"
	"fmt"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/ostable"
)

func cmdValidate(e *env, args []string) int {
	fs := e.flags("validate", `
Validate reads a label tree and checks it with every rule the build applies (spec/labels.md),
without writing anything. Each problem prints as one line:

  CODE file#json-pointer: message

sorted by file. L-codes are errors, W-codes warnings. Exit status 1 when there is an error.
A directory without products/ is not a label tree (a typo, the parent of the tree): exit 1,
with one line naming the subdirectory that is one.`)
	labels := fs.String("labels", "", "the label tree `DIR` (required)")
	asJSON := fs.Bool("json", false, "print the problems as JSON")
	requireFlight := fs.Bool("require-flight", false, "make an automatic label that never flighted an error (L065), not a warning")
	osTable := fs.String("os-table", "", "an OS table `FILE` replacing the embedded one")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if *labels == "" {
		return e.usageError("validate", "--labels is required")
	}
	tree, probs, err := loadTree(*labels, *osTable, *requireFlight)
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
	if errs > 0 {
		return exitFailure
	}
	return exitOK
}

// loadTree loads and validates a label tree: the build's checks, shared by validate and build.
func loadTree(dir, osTablePath string, requireFlight bool) (*catalogs.Tree, catalogs.Problems, error) {
	var tab *ostable.Table
	if osTablePath != "" {
		var err error
		if tab, err = ostable.Load(osTablePath); err != nil {
			return nil, nil, err
		}
	}
	tree, probs, err := catalogs.Load(dir, &catalogs.LoadOptions{OS: tab})
	if err != nil {
		return nil, nil, err
	}
	probs = append(probs, tree.Validate(&catalogs.ValidateOptions{RequireFlight: requireFlight})...)
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
