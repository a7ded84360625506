package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// decodeVersion decodes 'version --json' output strictly into a versionInfo.
func decodeVersion(t *testing.T, out string) versionInfo {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var v versionInfo
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("version --json: %v\n%s", err, out)
	}
	return v
}

// TestVersionCommand checks 'version', 'version --json' and '--version' in process against
// this (test) binary's own debug.ReadBuildInfo.
func TestVersionCommand(t *testing.T) {
	bi, ok := debug.ReadBuildInfo()
	want := versionFrom(bi, ok)

	var outs []string
	for _, args := range [][]string{{"version", "--json"}, {"--version", "--json"}} {
		code, stdout, stderr := runCLI(nil, args...)
		if code != 0 || stderr != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, code, stderr)
		}
		outs = append(outs, stdout)
		for _, key := range []string{`"version"`, `"goVersion"`, `"os"`, `"arch"`} {
			if !strings.Contains(stdout, key+":") {
				t.Errorf("%v: no %s member:\n%s", args, key, stdout)
			}
		}
		got := decodeVersion(t, stdout)
		if got.String() != want.String() || got.VCS != want.VCS {
			t.Errorf("%v = %+v; want %+v (from debug.ReadBuildInfo)", args, got, want)
		}
		if got.GoVersion != runtime.Version() || got.OS != runtime.GOOS || got.Arch != runtime.GOARCH {
			t.Errorf("%v: %s %s/%s; want %s %s/%s", args, got.GoVersion, got.OS, got.Arch, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		}
	}
	if outs[0] != outs[1] {
		t.Errorf("version --json and --version --json differ:\n%s\n%s", outs[0], outs[1])
	}

	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, _ := runCLI(nil, args...)
		if code != 0 || stdout != want.String()+"\n" {
			t.Errorf("%v: exit %d, %q; want %q", args, code, stdout, want.String()+"\n")
		}
		if !strings.HasPrefix(stdout, "driveway "+want.Version+" "+runtime.Version()+" ") {
			t.Errorf("%v: %q does not start with the version and the Go version", args, stdout)
		}
	}
	if code, _, stderr := runCLI(nil, "version", "extra"); code != exitUsage {
		t.Errorf("version extra: exit %d (%s); want %d", code, stderr, exitUsage)
	}
}

// TestVersionFrom checks how build information becomes a versionInfo, including the
// link-time names of builds without VCS information (the Dockerfile's).
func TestVersionFrom(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/driveway/driveway", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123abcd"},
			{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}, {Key: "GOOS", Value: "linux"}}}
	v := versionFrom(bi, true)
	if v.Version != "v1.2.3" || v.GoVersion != "go1.26.8" || v.VCS != "git" || v.Revision != "0123abcd" ||
		v.Time != "2026-01-02T03:04:05Z" || v.Modified == nil || !*v.Modified {
		t.Errorf("versionFrom = %+v", v)
	}
	if s, want := v.String(), "driveway v1.2.3 go1.26.8 "+runtime.GOOS+"/"+runtime.GOARCH+" revision 0123abcd 2026-01-02T03:04:05Z modified"; s != want {
		t.Errorf("String() = %q; want %q", s, want)
	}
	b, _ := json.Marshal(versionFrom(&debug.BuildInfo{GoVersion: "go1.26.8"}, true))
	if want := `{"version":"(devel)","goVersion":"go1.26.8","os":"` + runtime.GOOS + `","arch":"` + runtime.GOARCH + `"}`; string(b) != want {
		t.Errorf("without VCS: %s; want %s", b, want)
	}
	if v := versionFrom(nil, false); v.Version != "(devel)" || v.GoVersion != runtime.Version() {
		t.Errorf("without build info: %+v", v)
	}

	defer func(v, r string) { buildVersion, buildRevision = v, r }(buildVersion, buildRevision)
	buildVersion, buildRevision = "v9.9.9", "feedface"
	if v := versionFrom(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true); v.Version != "v9.9.9" || v.Revision != "feedface" {
		t.Errorf("with -X main.buildVersion/buildRevision: %+v", v)
	}
	if v := versionFrom(bi, true); v.Version != "v9.9.9" || v.Revision != "0123abcd" {
		t.Errorf("-X main.buildRevision must not replace the stamped revision: %+v", v)
	}
}

// TestVersionBinary builds driveway as an operator does (with VCS stamping where the tree has
// a repository) and checks that 'driveway version --json' agrees with what 'go version -m'
// reads from the same file, and that the edge's startup log line names the same version.
func TestVersionBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "driveway")
	// -buildvcs=auto: stamp vcs.* when the tree is a repository (this machine's go env may
	// say -buildvcs=false; a command-line flag overrides GOFLAGS).
	build := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatalf("driveway version --json: %v", err)
	}
	got := decodeVersion(t, string(out))

	meta, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	want := versionInfo{OS: runtime.GOOS, Arch: runtime.GOARCH}
	sc := bufio.NewScanner(bytes.NewReader(meta))
	for first := true; sc.Scan(); first = false {
		line := sc.Text()
		if first { // "/path/driveway: go1.26.8"
			_, want.GoVersion, _ = strings.Cut(line, ": ")
			continue
		}
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "mod":
			want.Version = f[2]
		case len(f) == 2 && f[0] == "build":
			k, val, _ := strings.Cut(f[1], "=")
			switch k {
			case "vcs":
				want.VCS = val
			case "vcs.revision":
				want.Revision = val
			case "vcs.time":
				want.Time = val
			case "vcs.modified":
				m := val == "true"
				want.Modified = &m
			}
		}
	}
	if got.String() != want.String() || got.VCS != want.VCS {
		t.Errorf("driveway version --json = %+v\ngo version -m says     %+v", got, want)
	}
	if _, err := os.Stat(filepath.Join("..", "..", ".git")); err == nil && got.Revision == "" {
		t.Errorf("the tree is a git repository but the binary names no revision: %+v", got)
	}

	// The startup log line carries the version. An empty catalog directory is enough: the
	// edge listens before it has a release (it is not ready until then).
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	if code, _, stderr := runCLI(nil, "keygen", "--unencrypted", "--out", key); code != 0 {
		t.Fatal(stderr)
	}
	cmd := exec.Command(bin, "serve", "--catalog", filepath.Join(dir, "catalog"), "--cache", filepath.Join(dir, "cache"),
		"--key", key+".pub", "--listen", "127.0.0.1:0")
	if err := os.Mkdir(filepath.Join(dir, "catalog"), 0o755); err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	hang := time.After(2 * time.Minute) // a guard against a hung edge, not a speed requirement
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("the edge exited without logging that it listens")
			}
			var rec struct{ Msg, Version string }
			if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "listening" {
				continue
			}
			if rec.Version != got.Version {
				t.Errorf("startup log line %s: version %q; want %q", line, rec.Version, got.Version)
			}
			// Kill, not SIGTERM: a SIGTERM sent before the edge installs its handler (just
			// after this line) would be a flaky exit status, and shutdown is not under test.
			_ = cmd.Process.Kill()
			for range lines {
			}
			_ = cmd.Wait()
			return
		case <-hang:
			t.Fatal("no startup log line from the edge")
		}
	}
}
