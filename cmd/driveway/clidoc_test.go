package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/driveway/driveway/internal/testclock"
)

// cliDocPath is the CLI reference, generated from the CLI's own help.
const cliDocPath = "../../docs/cli.md"

// TestCLIDoc holds docs/cli.md to the CLI: the page is every command's and subcommand's
// --help, generated (cliDoc), so a new command or flag shows up in the docs as soon as its
// help does. With -update it rewrites the page.
func TestCLIDoc(t *testing.T) {
	got := cliDoc(t)
	for _, outside := range []string{"spec/", "shared/"} {
		if i := bytes.Index(got, []byte(outside)); i >= 0 {
			line := bytes.Count(got[:i], []byte("\n")) + 1
			t.Errorf("a --help names %s (docs/cli.md line %d), which a clone of the repository does not have: name the docs/ page instead", outside, line)
		}
	}
	if *update {
		if err := os.WriteFile(cliDocPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(cliDocPath)
	if err != nil {
		t.Fatalf("%v; generate the page with: go test ./cmd/driveway -run TestCLIDoc -update", err)
	}
	if !bytes.Equal(got, want) {
		line, g, w := firstDiffLine(got, want)
		t.Errorf("docs/cli.md is not the CLI's help as it is now (first difference at line %d: %q, want %q); regenerate it with:\n\tgo test ./cmd/driveway -run TestCLIDoc -update\nand commit the page with the change to the help",
			line, g, w)
	}
}

// firstDiffLine returns the first line (1-based) where a and b differ, and both lines.
func firstDiffLine(a, b []byte) (int, string, string) {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < max(len(la), len(lb)); i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y || i >= len(la) || i >= len(lb) {
			return i + 1, x, y
		}
	}
	return 0, "", ""
}

// cliDoc writes the reference page: `driveway help`, then the --help of every command and
// of each subcommand its help lists (the tree shell completion is generated from).
func cliDoc(t *testing.T) []byte {
	t.Helper()
	now := testclock.Now
	var b strings.Builder
	b.WriteString(`# The command line: driveway

Every command and subcommand of ` + "`driveway`" + `, with its flags, as its ` + "`--help`" + ` prints them.
Exit status is 0 for success, 1 for a failure (invalid labels, a release that does not
verify, …) and 2 for misuse (an unknown command or flag); ` + "`client get`" + ` has one status per
failure class ([client.md](client.md#exit-status)). Errors go to stderr, one line each.
Every flag that takes a file also takes ` + "`-`" + ` where its help says so (stdin or stdout).

The other pages explain what the commands work on: [labels.md](labels.md) (the label tree
and its validation codes), [offers.md](offers.md) (the offer API), [release.md](release.md)
(the release format), [deployment.md](deployment.md) (running edges), [client.md](client.md)
(the PC's side).

<!-- Generated from the CLI's help: go test ./cmd/driveway -run TestCLIDoc -update. Do not edit. -->

`)
	tree := completionTree(now)
	b.WriteString("| command | what it does |\n|---|---|\n")
	summaries := map[string]string{}
	for _, c := range commands() {
		summaries[c.name] = c.summary
	}
	for _, n := range tree {
		name := n.path[0]
		fmt.Fprintf(&b, "| [%s](#%s) | %s |\n", name, anchor(n.path), summaries[name])
	}
	b.WriteString("\n## driveway\n\n")
	var out, errs bytes.Buffer
	if code := runAt(now, []string{"help"}, strings.NewReader(""), &out, &errs); code != exitOK {
		t.Fatalf("driveway help: exit %d: %s", code, errs.String())
	}
	writeHelp(&b, out.String())
	var walk func(n *completionNode, parent string)
	walk = func(n *completionNode, parent string) {
		text, ok := helpOf(now, n.path)
		if !ok {
			t.Fatalf("driveway %s --help did not answer as a command: %q", strings.Join(n.path, " "), text)
		}
		if text == parent { // "completion bash" is the completion command's own help
			return
		}
		fmt.Fprintf(&b, "%s driveway %s\n\n", strings.Repeat("#", len(n.path)+1), strings.Join(n.path, " "))
		writeHelp(&b, text)
		for _, s := range n.subs {
			walk(s, text)
		}
	}
	for _, n := range tree {
		walk(n, "")
	}
	return []byte(b.String())
}

// anchor is the link target of a command's heading ("driveway bench load").
func anchor(path []string) string { return "driveway-" + strings.Join(path, "-") }

func writeHelp(b *strings.Builder, text string) {
	b.WriteString("```text\n")
	b.WriteString(strings.TrimRight(text, "\n"))
	b.WriteString("\n```\n\n")
}
