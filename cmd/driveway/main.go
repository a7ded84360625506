// Command driveway distributes device drivers the way Windows Update does: it validates
// published labels, compiles them into signed catalog releases, verifies and inspects
// releases offline, answers offer requests, and serves them from edge nodes.
//
// Usage:
//
//	driveway <command> [flags]
//	driveway help [command]
//	driveway version [--json]      (or driveway --version)
//
// Every command takes --help. Exit status: 0 success, 1 failure (invalid labels, a release
// that does not verify, …), 2 misuse (unknown command or flag). Errors go to stderr, one
// line each, prefixed with the command.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// env is what a command may touch: its streams and its clock. Commands never call os.Exit,
// and read the time only through now (the system clock; a test's own clock in tests).
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
}

type command struct {
	name    string
	summary string
	usage   string // after "driveway NAME "
	run     func(e *env, args []string) int
}

func commands() []command {
	return []command{
		{"demo", "build the bundled example catalog and answer an example request", "[--dir DIR]", cmdDemo},
		{"keygen", "write a signing key pair", "--out PREFIX [--type ed25519|ecdsa-p256|log] [--unencrypted]", cmdKeygen},
		{"validate", "check a label tree with the build's rules", "--labels DIR [--json] [--strict] [--now RFC3339] [--require-flight] [--os-table FILE]", cmdValidate},
		{"build", "compile a label tree into a signed catalog release", "--labels DIR --out DIR --key PREFIX.key [--now RFC3339] [--skip-invalid] [--report FILE]", cmdBuild},
		{"timestamp", "re-sign the timestamp that keeps the newest release fresh", "--catalog DIR --key PREFIX.key [--expires-after 24h]", cmdTimestamp},
		{"rotate", "move a catalog's trust to new keys (a signed root), or revoke a key", "--catalog DIR --key OLD.key --new-key NEW.key [--timestamp-key TS.pub]", cmdRotate},
		{"verify", "check a release offline with its public key", "--catalog DIR --key PREFIX.pub [--ignore-expiry] [--json]", cmdVerify},
		{"inspect", "show what a release holds", "--catalog DIR [--hwid ID [--now RFC3339] | --label ID] [--json]", cmdInspect},
		{"bench", "generate workloads and measure driveway", "<command> [flags]", cmdBench},
		{"rollout", "measure install reports and step gradual rollouts", "measure|step [flags]", cmdRollout},
		{"diff", "replay a population of PCs against two releases and report what changes", "--from CATALOG (--to CATALOG | --labels DIR) --population FILE [--json] [--max-changed 5%] [--allow-label ID …]", cmdDiff},
		{"offer", "answer an offer request from a release", "--catalog DIR [--key PREFIX.pub] [--now RFC3339] [--explain] [--format json|table|explain] < request.json", cmdOffer},
		{"serve", "run an edge: answer offer requests over HTTP from the newest verified release", "--catalog DIR | --origin URL --cache DIR --key PREFIX.pub [--listen ADDR] […]", cmdServe},
		{"client", "the PC's side: scan this machine into an offer request, get and verify offers", "scan|get [flags]", cmdClient},
		{"log", "audit the transparency log of a catalog's releases", "verify [flags]", cmdLog},
		{"chid", "compute the 15 computer hardware IDs of a machine", "[--smbios FILE | --manufacturer M --family F …] [--json]", cmdCHID},
		{"completion", "print a shell completion script", "bash|zsh|fish", cmdCompletion},
		{"version", "print driveway's version and build information", "[--json]", cmdVersion},
	}
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runAt(time.Now, args, stdin, stdout, stderr)
}

// runAt runs a command line with now as its clock.
func runAt(now func() time.Time, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, now: now}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help":
		if len(args) > 1 && (args[1] == "help" || args[1] == "-h" || args[1] == "--help") {
			usage(stdout) // help help: the help there is
			return exitOK
		}
		if len(args) > 1 {
			if c, ok := lookup(args[1]); ok {
				return c.run(e, append(args[2:], "--help"))
			}
			fmt.Fprintf(stderr, "driveway help: unknown command %q; run 'driveway help'\n", args[1])
			return exitUsage
		}
		usage(stdout)
		return exitOK
	case "--version":
		return cmdVersion(e, args[1:])
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "driveway: unknown command %q; run 'driveway help'\n", name)
		return exitUsage
	}
	return c.run(e, args[1:])
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "driveway distributes device drivers the way Windows Update does.\n\nUsage:\n  driveway <command> [flags]\n\nCommands:\n")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'driveway help <command>' for a command's flags.\n")
}

// flags returns a flag set for a command whose usage line and description print on --help.
func (e *env) flags(name, description string) *pflag.FlagSet {
	c, _ := lookup(name)
	return e.newFlags(name, c.usage, description)
}

// newFlags returns a flag set for "driveway NAME", printing usage and description on --help.
func (e *env) newFlags(name, usage, description string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(e.stdout)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "Usage: driveway %s %s\n\n%s\n\nFlags:\n%s", name, usage, strings.TrimSpace(description), fs.FlagUsages())
	}
	return fs
}

// parse parses a command's flags. It returns (exit code, false) when the command must stop:
// after --help (0) or a usage error (2, reported on one line).
func (e *env) parse(fs *pflag.FlagSet, args []string) (int, bool) {
	fs.SetOutput(io.Discard) // pflag's error messages are replaced by ours; --help still calls fs.Usage
	err := fs.Parse(args)
	fs.SetOutput(e.stdout)
	switch {
	case errors.Is(err, pflag.ErrHelp):
		return exitOK, false
	case err != nil:
		return e.usageError(fs.Name(), err.Error()), false
	case fs.NArg() > 0:
		return e.usageError(fs.Name(), fmt.Sprintf("unexpected argument %q", fs.Arg(0))), false
	}
	return 0, true
}

func (e *env) usageError(name, msg string) int {
	fmt.Fprintf(e.stderr, "driveway %s: %s; run 'driveway help %s'\n", name, msg, name)
	return exitUsage
}

func (e *env) fail(name string, err error) int {
	// "driveway build: build: …" says the command twice: a library's prefix that repeats
	// the command's name is left out.
	msg := strings.TrimPrefix(oneLine(err.Error()), name+": ")
	fmt.Fprintf(e.stderr, "driveway %s: %s\n", name, msg)
	return exitFailure
}

// count is n and the noun, in the plural unless n is 1: "1 error", "3 errors".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// readInput reads a file a flag names, or the command's stdin for "-".
func (e *env) readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(e.stdin)
	}
	return os.ReadFile(path)
}

// oneLine keeps an error message on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
