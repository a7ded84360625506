package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeCommands runs the README's "Using it" lines as pasted, in a scratch directory
// beside the repository's catalogs/: each line with no placeholder (…, [optional], A | B,
// an upper-case stand-in such as ID, a file the reader makes) must exit 0. Lines that start a
// server or need one are left out, and at least the key, build, verify, inspect and offer
// lines must have run.
func TestReadmeCommands(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## Using it\n\n```sh\n")
	block, _, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatal("README: no ## Using it block")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := os.Symlink(filepath.Join(root, "catalogs"), filepath.Join(work, "catalogs")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(work)
	ran := map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		cmd, _, _ := strings.Cut(line, " # ")
		cmd = strings.TrimSpace(cmd)
		if v, ok := strings.CutPrefix(cmd, "export "); ok { // export NAME='value'
			name, value, _ := strings.Cut(v, "=")
			t.Setenv(name, strings.Trim(value, `'"`))
			continue
		}
		if !strings.HasPrefix(cmd, "./driveway ") {
			if strings.HasPrefix(cmd, "driveway ") {
				t.Errorf("README: %q: a fresh shell has no driveway on its PATH; write ./driveway", cmd)
			}
			continue
		}
		if skipReadmeLine(cmd) {
			continue
		}
		args, stdin := readmeArgs(t, strings.TrimPrefix(cmd, "./driveway "))
		var in []byte
		if stdin != "" {
			if in, err = os.ReadFile(stdin); err != nil {
				t.Errorf("README: %q: %v", cmd, err)
				continue
			}
		}
		code, _, stderr := runCLI(in, args...)
		if code != exitOK {
			t.Errorf("README: %q: exit %d: %s", cmd, code, stderr)
		}
		ran[args[0]] = true
	}
	for _, want := range []string{"keygen", "validate", "build", "verify", "inspect", "offer"} {
		if !ran[want] {
			t.Errorf("README: no runnable %s line in Using it", want)
		}
	}
}

// skipReadmeLine: a line with a placeholder, or one that serves, or needs a file or server the
// reader brings.
func skipReadmeLine(cmd string) bool {
	fields := strings.Fields(cmd)
	switch fields[1] {
	case "serve", "client", "bench", "rollout", "diff", "rotate", "log":
		return true
	}
	for _, p := range []string{"…", "[", " | ", "<(", "--type log"} {
		if strings.Contains(cmd, p) {
			return true
		}
	}
	for _, f := range fields {
		switch f {
		case "ID", "WHO", "WHY", "URL", "SPOOL", "DIR", "CMD":
			return true
		}
	}
	return false
}

// readmeArgs splits a shell line: words, single quotes, double quotes, and a final "< FILE".
func readmeArgs(t *testing.T, s string) (args []string, stdin string) {
	t.Helper()
	if i := strings.LastIndex(s, " < "); i >= 0 {
		s, stdin = s[:i], strings.TrimSpace(s[i+3:])
	}
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ':
			if in {
				args = append(args, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		args = append(args, cur.String())
	}
	return args, stdin
}
