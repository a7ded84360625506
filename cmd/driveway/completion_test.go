package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCompletion generates the completion scripts from the CLI's own help and checks them:
// every command and the subcommands of every command with some are completed; the bash
// script, run by a real bash, completes commands, subcommands, flags, and leaves a flag's
// value to file completion.
func TestCompletion(t *testing.T) {
	code, script, stderr := runCLI(nil, "completion", "bash")
	if code != exitOK {
		t.Fatalf("completion bash: exit %d: %s", code, stderr)
	}
	tree := completionTree(nil)
	subs := map[string][]string{}
	for _, n := range tree {
		for _, s := range n.subs {
			subs[n.path[0]] = append(subs[n.path[0]], s.path[1])
		}
		if len(n.subs) == 0 && !slices.Contains(n.flags, "--help") {
			t.Errorf("%s: no flags read from its help", n.path[0])
		}
	}
	for cmd, want := range map[string][]string{
		"rollout": {"measure", "step", "expedite", "lift"},
		"bench":   {"gen-devices", "gen-labels", "load", "lookups", "report", "rollout-sim"},
		"client":  {"scan", "get"},
		"log":     {"verify"},
	} {
		for _, w := range want {
			if !slices.Contains(subs[cmd], w) {
				t.Errorf("%s: subcommand %s not found from its help (found %v): its --help must start 'Usage: driveway %s %s'", cmd, w, subs[cmd], cmd, w)
			}
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	file := filepath.Join(t.TempDir(), "driveway.bash")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		words string // the command line; the last word is completed
		want  []string
		not   []string
	}{
		{"driveway bu", []string{"build"}, []string{"bench"}},
		{"driveway ''", []string{"build", "serve", "rollout", "completion", "--help"}, nil},
		{"driveway rollout ''", []string{"measure", "step", "expedite", "lift"}, []string{"--help"}},
		{"driveway rollout step --dr", []string{"--dry-run"}, nil},
		{"driveway build --qu", []string{"--quiet"}, nil},
		{"driveway build --labels ''", nil, []string{"--quiet", "--labels"}}, // a value: files
		{"driveway client ''", []string{"scan", "get"}, nil},
		{"driveway serve --", []string{"--catalog", "--listen", "--key"}, nil},
	} {
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", `source "$1"; eval "COMP_WORDS=($2)"; COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _driveway; printf '%s\n' "${COMPREPLY[@]}"`, "bash", file, c.words)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", c.words, err, out)
		}
		got := strings.Fields(string(out))
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("%s: %v; want %s among them", c.words, got, w)
			}
		}
		for _, w := range c.not {
			if slices.Contains(got, w) {
				t.Errorf("%s: %v; want no %s", c.words, got, w)
			}
		}
	}
	if out, err := exec.Command(bash, "-n", file).CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v: %s", err, out)
	}
	code, zsh, _ := runCLI(nil, "completion", "zsh")
	if code != exitOK || !strings.HasPrefix(zsh, "#compdef driveway\n") || !strings.Contains(zsh, "complete -o default -F _driveway driveway") {
		t.Errorf("completion zsh: exit %d:\n%s", code, zsh)
	}
	code, fish, _ := runCLI(nil, "completion", "fish")
	if code != exitOK || !strings.Contains(fish, "-n __fish_use_subcommand -a build\n") || !strings.Contains(fish, "__fish_seen_subcommand_from rollout; and __fish_seen_subcommand_from step' -F -l dry-run") {
		t.Errorf("completion fish: exit %d:\n%s", code, fish)
	}
	if code, _, stderr := runCLI(nil, "completion", "tcsh"); code != exitUsage || !strings.Contains(stderr, `unknown shell "tcsh"`) {
		t.Errorf("completion tcsh: exit %d, %s", code, stderr)
	}
	if code, stdout, _ := runCLI(nil, "completion", "--help"); code != exitOK || !strings.HasPrefix(stdout, "Usage: driveway completion") {
		t.Errorf("completion --help: exit %d, %s", code, stdout)
	}
}
