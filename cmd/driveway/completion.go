package main

// Shell completion.
//
// `driveway completion bash|zsh|fish` prints a completion script for the shell. The script
// is generated from the CLI itself: the commands of commands(), the subcommands each
// command's --help lists (kept only when `driveway CMD SUB --help` answers as a command),
// and the flags each --help prints. So a new command or flag is completed without touching
// this file, and a test checks the script against the help of every command.
//
// The scripts complete commands, subcommands and flag names; a flag's value (a FILE, a DIR)
// falls back to the shell's file completion.

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

func cmdCompletion(e *env, args []string) int {
	fs := e.flags("completion", `
Completion prints a shell completion script on stdout: commands, subcommands and flags.

  bash   source <(driveway completion bash)       (or save it in
         /etc/bash_completion.d/driveway, or ~/.local/share/bash-completion/completions/driveway)
  zsh    source <(driveway completion zsh)        (uses zsh's bash completion support)
  fish   driveway completion fish > ~/.config/fish/completions/driveway.fish`)
	shell := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		shell, args = args[0], args[1:]
	}
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if shell == "" {
		return e.usageError("completion", "name one shell: bash, zsh or fish")
	}
	if shell != "bash" && shell != "zsh" && shell != "fish" {
		return e.usageError("completion", fmt.Sprintf("unknown shell %q: bash, zsh or fish", shell))
	}
	tree := completionTree(e.now)
	switch shell {
	case "bash":
		fmt.Fprint(e.stdout, bashCompletion(tree))
	case "zsh":
		fmt.Fprint(e.stdout, "#compdef driveway\nautoload -U +X bashcompinit && bashcompinit\n"+bashCompletion(tree))
	case "fish":
		fmt.Fprint(e.stdout, fishCompletion(tree))
	}
	return exitOK
}

// completionNode is a command or subcommand: its flags, or its subcommands.
type completionNode struct {
	path   []string // e.g. ["rollout", "step"]
	flags  []string // "--name", sorted
	valued []string // the flags that take a value (completed as files by the shell)
	subs   []*completionNode
}

var (
	helpSubcommand = regexp.MustCompile(`(?m)^  ([a-z][a-z0-9-]*) +\S`)
	// pflag's usage lines: "  -q, --quiet   text" or "      --labels DIR   text" (a value
	// after one space).
	helpFlag = regexp.MustCompile(`(?m)^\s+(?:-[a-zA-Z], )?(--[a-z0-9][a-z0-9-]*)( \S)?`)
)

// helpOf runs `driveway PATH… --help` and returns its output, ok when it answered as a
// command does ("Usage: driveway PATH…", exit 0).
func helpOf(now func() time.Time, path []string) (string, bool) {
	var out, errs bytes.Buffer
	code := runAt(now, append(append([]string(nil), path...), "--help"), strings.NewReader(""), &out, &errs)
	text := out.String()
	return text, code == exitOK && strings.HasPrefix(text, "Usage: driveway "+strings.Join(path, " "))
}

// completionTree reads every command's help, and its subcommands'.
func completionTree(now func() time.Time) []*completionNode {
	var nodes []*completionNode
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		nodes = append(nodes, completionNodeOf(now, []string{c.name}, 1))
	}
	return nodes
}

func completionNodeOf(now func() time.Time, path []string, depth int) *completionNode {
	n := &completionNode{path: path}
	text, ok := helpOf(now, path)
	if !ok {
		return n
	}
	if depth > 0 {
		seen := map[string]bool{}
		for _, m := range helpSubcommand.FindAllStringSubmatch(text, -1) {
			name := m[1]
			if seen[name] {
				continue
			}
			seen[name] = true
			sub := append(append([]string(nil), path...), name)
			if _, ok := helpOf(now, sub); ok {
				n.subs = append(n.subs, completionNodeOf(now, sub, depth-1))
			}
		}
	}
	if flagsAt := strings.Index(text, "\nFlags:\n"); flagsAt >= 0 {
		seen := map[string]bool{"--help": true}
		n.flags = []string{"--help"}
		for _, m := range helpFlag.FindAllStringSubmatch(text[flagsAt:], -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				n.flags = append(n.flags, m[1])
				if m[2] != "" {
					n.valued = append(n.valued, m[1])
				}
			}
		}
		sort.Strings(n.flags)
		sort.Strings(n.valued)
	}
	return n
}

// words is what completes after a node: its subcommands, else its flags.
func (n *completionNode) words() []string {
	if len(n.subs) > 0 {
		var w []string
		for _, s := range n.subs {
			w = append(w, s.path[len(s.path)-1])
		}
		return w
	}
	return n.flags
}

func bashCompletion(tree []*completionNode) string {
	var b strings.Builder
	b.WriteString(`# bash completion for driveway (driveway completion bash)
_driveway() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} path="" i w words valued
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		[[ $w == -* ]] && break
		path="$path $w"
	done
	case "${path# }" in
`)
	var top []string
	var walk func(n *completionNode)
	walk = func(n *completionNode) {
		fmt.Fprintf(&b, "\t%q) words=%q valued=%q ;;\n", strings.Join(n.path, " "), strings.Join(n.words(), " "), " "+strings.Join(n.valued, " ")+" ")
		for _, s := range n.subs {
			walk(s)
		}
	}
	for _, n := range tree {
		top = append(top, n.path[0])
		walk(n)
	}
	fmt.Fprintf(&b, "\t\"\") words=%q ;;\n", strings.Join(append(top, "--help", "--version"), " "))
	b.WriteString(`	*) words="" ;;
	esac
	if [[ $prev == --* && $valued == *" $prev "* ]]; then
		COMPREPLY=() # a flag's value: the shell completes file names
		return
	fi
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _driveway driveway
`)
	return b.String()
}

func fishCompletion(tree []*completionNode) string {
	var b strings.Builder
	b.WriteString("# fish completion for driveway (driveway completion fish)\ncomplete -c driveway -f\n")
	for _, n := range tree {
		fmt.Fprintf(&b, "complete -c driveway -n __fish_use_subcommand -a %s\n", n.path[0])
		for _, s := range n.subs {
			fmt.Fprintf(&b, "complete -c driveway -n '__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s' -a %s\n",
				n.path[0], strings.Join(s.words0(n), " "), s.path[1])
			for _, f := range s.flags {
				fmt.Fprintf(&b, "complete -c driveway -n '__fish_seen_subcommand_from %s; and __fish_seen_subcommand_from %s' -F -l %s\n", n.path[0], s.path[1], f[2:])
			}
		}
		for _, f := range n.flags {
			fmt.Fprintf(&b, "complete -c driveway -n '__fish_seen_subcommand_from %s' -F -l %s\n", n.path[0], f[2:])
		}
	}
	return b.String()
}

// words0 is the names of the subcommands of parent (fish completes one of them once).
func (n *completionNode) words0(parent *completionNode) []string {
	var w []string
	for _, s := range parent.subs {
		w = append(w, s.path[len(s.path)-1])
	}
	return w
}
