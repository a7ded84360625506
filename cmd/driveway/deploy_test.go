package main

// Tests of the deployment files under deploy/ (the Dockerfile, the systemd units, the
// Kubernetes manifests) and of the ignore files that keep secrets out of an image and out of
// git. They live here, beside the CLI, because their main check is that every driveway
// command line in those files parses with the real command's flag set.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"go.yaml.in/yaml/v3"
)

// repoRoot is the repository's root as seen from this package's directory (go test runs in it).
var repoRoot = filepath.Join("..", "..")

// binPath is where every deployment file installs the binary.
const binPath = "/usr/local/bin/driveway"

// cliFlag is one flag as 'driveway help CMD' lists it.
type cliFlag struct{ takesValue bool }

var helpFlagLine = regexp.MustCompile(`^\s+(?:-[A-Za-z0-9], )?--([a-z0-9][a-z0-9-]*)( \S+)?(\s{2,}|$)`)

// helpFlags returns the flags a command lists under "Flags:" in its --help (hidden flags are
// not listed, so a deployment file cannot use one).
func helpFlags(t *testing.T, command string) map[string]cliFlag {
	t.Helper()
	code, stdout, stderr := runCLI(nil, command, "--help")
	if code != 0 {
		t.Fatalf("driveway %s --help: exit %d: %s", command, code, stderr)
	}
	_, list, ok := strings.Cut(stdout, "\nFlags:\n")
	if !ok {
		t.Fatalf("driveway %s --help has no Flags: section", command)
	}
	flags := map[string]cliFlag{}
	for _, line := range strings.Split(list, "\n") {
		if m := helpFlagLine.FindStringSubmatch(line); m != nil {
			flags[m[1]] = cliFlag{takesValue: m[2] != ""}
		}
	}
	if len(flags) == 0 {
		t.Fatalf("no flags parsed from driveway %s --help", command)
	}
	return flags
}

// checkInvocation checks a driveway command line (args after the binary) from a deployment
// file: the command exists, every flag is one it lists, and the whole line parses with the
// real flag set (values included: durations, sizes, counts), which is proven by running it
// in process with --help appended: that exits 0 after parsing and before doing anything. It
// returns the values of the flags given.
func checkInvocation(t *testing.T, where string, args []string) map[string][]string {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("%s: no driveway command", where)
	}
	command := args[0]
	if _, ok := lookup(command); !ok {
		t.Fatalf("%s: driveway %s: no such command", where, command)
	}
	known := helpFlags(t, command)
	values := map[string][]string{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			t.Errorf("%s: driveway %s: %q is not a --flag (positional arguments and shorthands are not used in deployment files)", where, command, a)
			continue
		}
		name, v, hasValue := strings.Cut(a[2:], "=")
		f, ok := known[name]
		if !ok {
			t.Errorf("%s: driveway %s has no flag --%s (see driveway help %s)", where, command, name, command)
			continue
		}
		if f.takesValue && !hasValue {
			if i+1 == len(args) || strings.HasPrefix(args[i+1], "--") {
				t.Errorf("%s: driveway %s --%s needs a value", where, command, name)
				continue
			}
			i++
			v = args[i]
		}
		values[name] = append(values[name], v)
	}
	if t.Failed() {
		return values
	}
	code, stdout, stderr := runCLI(nil, append(slices.Clone(args), "--help")...)
	if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "Usage: driveway "+command+" ") {
		t.Errorf("%s: driveway %s does not parse: exit %d: %s", where, strings.Join(args, " "), code, stderr)
	}
	return values
}

// checkListen checks that an edge listens on all interfaces (a load balancer, a probe or a
// container port reaches it; the default 127.0.0.1 would not be) and returns the port.
func checkListen(t *testing.T, where string, values map[string][]string) string {
	t.Helper()
	if len(values["listen"]) != 1 {
		t.Errorf("%s: want one --listen (the default is loopback only)", where)
		return ""
	}
	host, port, err := net.SplitHostPort(values["listen"][0])
	if err != nil {
		t.Errorf("%s: --listen %q: %v", where, values["listen"][0], err)
		return ""
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		t.Errorf("%s: --listen %s: want 0.0.0.0 or [::], not a host only it can reach", where, values["listen"][0])
	}
	return port
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// --- systemd ---

// unitFile is a parsed unit file: section → key → values, in order.
type unitFile map[string]map[string][]string

// parseUnit reads a unit file, joining continued lines as systemd does.
func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{}
	section := ""
	var cont strings.Builder
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if cont.Len() == 0 && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cont.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		line = cont.String() + line
		cont.Reset()
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("%s:%d: not a key=value in a section: %q", path, n+1, line)
		}
		u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
	}
	return u
}

// one returns the only value of a key ("" when absent).
func (u unitFile) one(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// execDriveway returns the driveway arguments of a unit's ExecStart.
func execDriveway(t *testing.T, where string, u unitFile) []string {
	t.Helper()
	if n := len(u["Service"]["ExecStart"]); n != 1 {
		t.Fatalf("%s: %d ExecStart lines; want 1", where, n)
	}
	line := strings.TrimLeft(u.one("Service", "ExecStart"), "-@:+!")
	if strings.ContainsAny(line, `"'$`) {
		t.Fatalf("%s: ExecStart uses quotes or variables, which this check does not parse: %s", where, line)
	}
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != binPath {
		t.Fatalf("%s: ExecStart runs %v; want %s", where, f, binPath)
	}
	return f[1:]
}

// writable returns the directories a unit's service may write under ProtectSystem=strict.
func (u unitFile) writable() []string {
	var dirs []string
	for key, base := range map[string]string{"StateDirectory": "/var/lib", "CacheDirectory": "/var/cache", "LogsDirectory": "/var/log", "RuntimeDirectory": "/run"} {
		for _, v := range u["Service"][key] {
			for _, d := range strings.Fields(v) {
				dirs = append(dirs, filepath.Join(base, d))
			}
		}
	}
	for _, v := range u["Service"]["ReadWritePaths"] {
		for _, d := range strings.Fields(v) {
			dirs = append(dirs, strings.TrimLeft(d, "-+"))
		}
	}
	return dirs
}

// checkPaths checks the path flags of a unit's command line: what the service writes lies in
// a directory the unit makes writable, and a credential (%d/NAME) is one it loads.
func checkPaths(t *testing.T, where string, u unitFile, values map[string][]string, written []string) {
	t.Helper()
	for name, vs := range values {
		for _, v := range vs {
			if cred, ok := strings.CutPrefix(v, "%d/"); ok {
				found := false
				for _, lc := range u["Service"]["LoadCredential"] {
					found = found || strings.HasPrefix(lc, cred+":")
				}
				if !found {
					t.Errorf("%s: --%s %s: no LoadCredential=%s:FILE", where, name, v, cred)
				}
			}
		}
	}
	for _, name := range written {
		for _, v := range values[name] {
			ok := false
			for _, d := range u.writable() {
				ok = ok || under(v, d)
			}
			if !ok {
				t.Errorf("%s: --%s %s is not in a directory the unit makes writable (%v) under ProtectSystem=strict", where, name, v, u.writable())
			}
		}
	}
}

// checkHardening checks the settings every driveway service unit keeps.
func checkHardening(t *testing.T, where string, u unitFile) {
	t.Helper()
	want := map[string]string{"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes", "SystemCallArchitectures": "native"}
	for k, v := range want {
		if got, ok := u["Service"][k]; !ok || got[len(got)-1] != v {
			t.Errorf("%s: want %s=%s, have %v", where, k, v, got)
		}
	}
	if u.one("Service", "DynamicUser") != "yes" && (u.one("Service", "User") == "" || u.one("Service", "User") == "root") {
		t.Errorf("%s: want DynamicUser=yes or a dedicated User=", where)
	}
}

func TestDeploySystemdUnits(t *testing.T) {
	dir := filepath.Join(repoRoot, "deploy", "systemd")

	edge := parseUnit(t, filepath.Join(dir, "driveway-edge.service"))
	args := execDriveway(t, "driveway-edge.service", edge)
	if args[0] != "serve" {
		t.Fatalf("driveway-edge.service runs driveway %s; want serve", args[0])
	}
	values := checkInvocation(t, "driveway-edge.service", args)
	checkListen(t, "driveway-edge.service", values)
	checkHardening(t, "driveway-edge.service", edge)
	for _, need := range []string{"cache", "state", "key"} {
		if len(values[need]) == 0 {
			t.Errorf("driveway-edge.service: no --%s", need)
		}
	}
	if edge.one("Service", "CacheDirectory") == "" || edge.one("Service", "StateDirectory") == "" {
		t.Errorf("driveway-edge.service: want CacheDirectory= (for --cache) and StateDirectory= (for --state, --spool)")
	}
	checkPaths(t, "driveway-edge.service", edge, values, []string{"cache", "state", "spool"})
	if values["spool"] != nil && values["report-secret-file"] == nil {
		t.Error("driveway-edge.service: --spool without --report-secret-file does not start")
	}
	if edge.one("Install", "WantedBy") == "" {
		t.Error("driveway-edge.service: no [Install] WantedBy=")
	}

	ts := parseUnit(t, filepath.Join(dir, "driveway-timestamp.service"))
	args = execDriveway(t, "driveway-timestamp.service", ts)
	if args[0] != "timestamp" {
		t.Fatalf("driveway-timestamp.service runs driveway %s; want timestamp", args[0])
	}
	values = checkInvocation(t, "driveway-timestamp.service", args)
	checkHardening(t, "driveway-timestamp.service", ts)
	if ts.one("Service", "Type") != "oneshot" {
		t.Error("driveway-timestamp.service: want Type=oneshot (a timer runs it)")
	}
	checkPaths(t, "driveway-timestamp.service", ts, values, []string{"catalog"})
	// The timestamp must be re-signed well within its validity (24 h by default).
	if d := values["expires-after"]; len(d) > 0 && d[0] != "24h" {
		t.Logf("driveway-timestamp.service: --expires-after %s; the timer must run well within it", d[0])
	}

	timer := parseUnit(t, filepath.Join(dir, "driveway-timestamp.timer"))
	if timer.one("Timer", "OnCalendar") == "" || timer.one("Timer", "Persistent") != "true" {
		t.Error("driveway-timestamp.timer: want OnCalendar= and Persistent=true")
	}
	if u := timer.one("Timer", "Unit"); u != "" && u != "driveway-timestamp.service" {
		t.Errorf("driveway-timestamp.timer: Unit=%s; want driveway-timestamp.service", u)
	}
	if timer.one("Install", "WantedBy") != "timers.target" {
		t.Error("driveway-timestamp.timer: want WantedBy=timers.target")
	}
}

// TestDeploySystemdAnalyze runs systemd-analyze verify (and its offline security review) on
// the units. Without systemd-analyze it skips, except under CI=true, where it fails: CI
// installs systemd (.ci/run).
func TestDeploySystemdAnalyze(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and no systemd-analyze: CI must install it (.ci/run: apt-get install systemd)")
		}
		t.Skip("no systemd-analyze (apt-get install systemd)")
	}
	// systemd-analyze verify fails a unit whose ExecStart binary does not exist ("Command
	// /usr/local/bin/driveway is not executable"), and the test must not install anything
	// at /usr/local/bin. So it verifies copies of the units in a temporary directory whose
	// only change is the binary's path, pointing at an executable stub made here. verify
	// never runs the binary; what the command line says is checked against the real flag
	// set by TestDeploySystemdUnits.
	src := filepath.Join(repoRoot, "deploy", "systemd")
	tmp := t.TempDir()
	stub := filepath.Join(tmp, "bin", "driveway")
	if err := os.MkdirAll(filepath.Dir(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	units, err := filepath.Glob(filepath.Join(src, "*.service"))
	if err != nil {
		t.Fatal(err)
	}
	timers, _ := filepath.Glob(filepath.Join(src, "*.timer"))
	units = append(units, timers...)
	if len(units) < 3 {
		t.Fatalf("found %v; want the edge service, the timestamp service and its timer", units)
	}
	var copies []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		c := filepath.Join(tmp, filepath.Base(u))
		if err := os.WriteFile(c, []byte(strings.ReplaceAll(string(b), binPath, stub)), 0o644); err != nil {
			t.Fatal(err)
		}
		copies = append(copies, c)
	}
	// verify exits 0 on an unknown key or a value it cannot parse ("Unknown key 'X' in
	// section [Service], ignoring."), so any output at all is a failure.
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no"}, copies...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// The offline security review (systemd 250 and later) scores each service's exposure
	// from 0 (locked down) to 10; keep the hardening from being dropped unnoticed.
	help, _ := exec.Command(analyze, "--help").CombinedOutput()
	if !strings.Contains(string(help), "--offline") || !strings.Contains(string(help), "--threshold") {
		t.Logf("systemd-analyze has no security --offline --threshold; not reviewed")
		return
	}
	for _, c := range copies {
		if !strings.HasSuffix(c, ".service") {
			continue
		}
		out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=25", "--no-pager", c).CombinedOutput()
		last := strings.TrimSpace(string(out))
		if i := strings.LastIndex(last, "\n"); i >= 0 {
			last = last[i+1:]
		}
		if err != nil {
			t.Errorf("systemd-analyze security %s: %v: exposure above 2.5: %s", filepath.Base(c), err, last)
		} else {
			t.Logf("%s", last)
		}
	}
}

// --- Dockerfile ---

type dockerInstr struct {
	cmd, args string
	line      int
}

// parseDockerfile returns a Dockerfile's instructions, continuation lines joined, comments dropped.
func parseDockerfile(t *testing.T, path string) []dockerInstr {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dockerInstr
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, dockerInstr{strings.ToUpper(cmd), strings.TrimSpace(args), start})
		cur.Reset()
	}
	return out
}

// jsonArgs decodes an instruction's exec form (["a", "b"]).
func jsonArgs(t *testing.T, in dockerInstr) []string {
	t.Helper()
	var a []string
	if err := json.Unmarshal([]byte(in.args), &a); err != nil {
		t.Fatalf("Dockerfile:%d: %s must use the exec form [\"…\"] (no shell in the image): %v", in.line, in.cmd, err)
	}
	return a
}

// TestDeployDockerfile checks the image's build: a static binary, a runtime stage with
// nothing from the context, a numeric non-root user, and a CMD the CLI parses.
func TestDeployDockerfile(t *testing.T) {
	path := filepath.Join(repoRoot, "deploy", "Dockerfile")
	instrs := parseDockerfile(t, path)
	var stages [][]dockerInstr
	for _, in := range instrs {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages; want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	from := strings.Fields(build[0].args)
	if len(from) != 3 || !strings.EqualFold(from[1], "AS") {
		t.Fatalf("Dockerfile:%d: the build stage must be named (FROM image AS name)", build[0].line)
	}
	buildName := from[2]

	// The build stage makes a static binary: CGO_ENABLED=0, the driveway package, and the
	// link-time names it sets exist in package main.
	var buildText strings.Builder
	for _, in := range build {
		buildText.WriteString(in.cmd + " " + in.args + "\n")
	}
	bt := buildText.String()
	if !strings.Contains(bt, "CGO_ENABLED=0") {
		t.Error("Dockerfile: the build stage must set CGO_ENABLED=0 (a static binary for a base without libc)")
	}
	if !regexp.MustCompile(`go build .*\./cmd/driveway`).MatchString(bt) {
		t.Error("Dockerfile: the build stage does not go build ./cmd/driveway")
	}
	linkNames := map[string]*string{"main.buildVersion": &buildVersion, "main.buildRevision": &buildRevision}
	for _, m := range regexp.MustCompile(`-X ([\w.]+)=`).FindAllStringSubmatch(bt, -1) {
		if linkNames[m[1]] == nil {
			t.Errorf("Dockerfile: -X %s names no variable of package main (want one of main.buildVersion, main.buildRevision)", m[1])
		}
	}

	// The runtime stage: nothing from the build context (only from the build stage), a
	// numeric non-root user, the binary where ENTRYPOINT runs it.
	var user string
	var entry, cmd []string
	copied := map[string]bool{}
	for _, in := range final[1:] {
		switch in.cmd {
		case "COPY", "ADD":
			f := strings.Fields(in.args)
			if in.cmd == "ADD" || !slices.Contains(f, "--from="+buildName) {
				t.Errorf("Dockerfile:%d: the runtime stage may only COPY --from=%s, never from the context: %s %s", in.line, buildName, in.cmd, in.args)
			}
			copied[f[len(f)-1]] = true
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = jsonArgs(t, in)
		case "CMD":
			cmd = jsonArgs(t, in)
		case "RUN":
			t.Errorf("Dockerfile:%d: RUN in the runtime stage (it has no shell)", in.line)
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("Dockerfile: USER %q; want a numeric non-root uid (Kubernetes' runAsNonRoot can check only a number)", user)
	}
	if len(entry) != 1 || entry[0] != binPath || !copied[binPath] {
		t.Errorf("Dockerfile: ENTRYPOINT %v; want [%q], the binary the runtime stage copies there", entry, binPath)
	}
	values := checkInvocation(t, "Dockerfile CMD", cmd)
	checkListen(t, "Dockerfile CMD", values)

	// BuildKit reads deploy/Dockerfile.dockerignore instead of the root's .dockerignore
	// when it exists: there must be none, or the checks of .dockerignore mean nothing.
	if _, err := os.Stat(path + ".dockerignore"); err == nil {
		t.Errorf("%s.dockerignore would replace the root .dockerignore for this Dockerfile", path)
	}
}

// --- .dockerignore and .gitignore ---

// dockerIgnored returns a matcher with the root .dockerignore's patterns, as Docker applies
// them to the build context (moby/patternmatcher is the code Docker and BuildKit use).
func dockerIgnored(t *testing.T) func(rel string) bool {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return func(rel string) bool {
		ok, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			t.Fatalf("match %s: %v", rel, err)
		}
		return ok
	}
}

// keygenOutputs runs keygen in a directory standing for the build context, at the root and
// deep in the tree, and returns the files it wrote relative to that directory.
func keygenOutputs(t *testing.T) (keys, pubs []string) {
	t.Helper()
	ctx := t.TempDir()
	for _, prefix := range []string{"release-key", "catalogs/examples/contoso/new", "deploy/kubernetes/ts"} {
		p := filepath.Join(ctx, filepath.FromSlash(prefix))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := runCLI(nil, "keygen", "--unencrypted", "--out", p); code != 0 {
			t.Fatalf("keygen --out %s: %s", prefix, stderr)
		}
	}
	err := filepath.WalkDir(ctx, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(ctx, path)
		if strings.HasSuffix(rel, ".pub") {
			pubs = append(pubs, rel)
		} else {
			keys = append(keys, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || len(pubs) != 3 {
		t.Fatalf("keygen wrote %v and %v; want three private and three public keys", keys, pubs)
	}
	return keys, pubs
}

func TestDeployDockerignore(t *testing.T) {
	ignored := dockerIgnored(t)
	keys, _ := keygenOutputs(t)
	for _, k := range keys {
		if !ignored(k) {
			t.Errorf(".dockerignore does not exclude %s (keygen's private key): COPY . . would ship it", k)
		}
	}
	for _, p := range []string{".git/config", "bench/out/report.json", "cmd/driveway/driveway.test", "driveway",
		"report-secret", "deploy/report-secret", "fleet.secret", "catalogs/x/y/fleet.secret"} {
		if !ignored(p) {
			t.Errorf(".dockerignore does not exclude %s", p)
		}
	}

	// Nothing the build needs is excluded: go.mod, go.sum and every Go and embedded file of
	// every package.
	out, err := exec.Command("go", "list", "-e", "-f", "{{.Dir}}|{{join .GoFiles \",\"}}|{{join .EmbedFiles \",\"}}", "github.com/driveway/driveway/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		rel, err := filepath.Rel(root, parts[0])
		if err != nil || len(parts) != 3 {
			t.Fatalf("go list line %q", line)
		}
		for _, list := range parts[1:] {
			for _, f := range strings.Split(list, ",") {
				if f != "" {
					inputs = append(inputs, filepath.Join(rel, f))
				}
			}
		}
	}
	if len(inputs) < 20 {
		t.Fatalf("go list found only %v", inputs)
	}
	for _, in := range inputs {
		if ignored(in) {
			t.Errorf(".dockerignore excludes %s, which go build ./cmd/driveway needs", in)
		}
	}
}

func TestDeployGitignore(t *testing.T) {
	if err := exec.Command("git", "-C", repoRoot, "rev-parse", "--git-dir").Run(); err != nil {
		t.Skipf("not a git work tree: %v", err)
	}
	keys, pubs := keygenOutputs(t)
	check := func(p string) bool {
		// --no-index: ask the ignore rules, whether or not such a file is tracked.
		return exec.Command("git", "-C", repoRoot, "check-ignore", "-q", "--no-index", p).Run() == nil
	}
	for _, p := range append(keys, "report-secret", "deploy/fleet.secret") {
		if !check(p) {
			t.Errorf(".gitignore does not ignore %s", p)
		}
	}
	for _, p := range append(pubs, "signing/testdata/openssl-ed25519.key", "deploy/Dockerfile") {
		if check(p) {
			t.Errorf(".gitignore ignores %s, which belongs in the repository", p)
		}
	}
}

// --- Kubernetes ---

// The manifests are decoded strictly into these types: the subset of the Kubernetes API they
// use, with the API's field names. A misspelt or misplaced field is an error here, as it
// would be under kubectl apply --validate=strict.
type (
	k8sMeta struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	k8sSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	k8sHeader struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   k8sMeta `yaml:"metadata"`
	}
	k8sDeployment struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   k8sMeta `yaml:"metadata"`
		Spec       struct {
			Replicas *int        `yaml:"replicas"`
			Selector k8sSelector `yaml:"selector"`
			Strategy struct {
				Type          string `yaml:"type"`
				RollingUpdate struct {
					MaxUnavailable any `yaml:"maxUnavailable"`
					MaxSurge       any `yaml:"maxSurge"`
				} `yaml:"rollingUpdate"`
			} `yaml:"strategy"`
			Template struct {
				Metadata k8sMeta    `yaml:"metadata"`
				Spec     k8sPodSpec `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	k8sPodSpec struct {
		AutomountServiceAccountToken  *bool `yaml:"automountServiceAccountToken"`
		EnableServiceLinks            *bool `yaml:"enableServiceLinks"`
		TerminationGracePeriodSeconds *int  `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot   *bool       `yaml:"runAsNonRoot"`
			RunAsUser      *int64      `yaml:"runAsUser"`
			RunAsGroup     *int64      `yaml:"runAsGroup"`
			FSGroup        *int64      `yaml:"fsGroup"`
			SeccompProfile *k8sSeccomp `yaml:"seccompProfile"`
		} `yaml:"securityContext"`
		Containers []k8sContainer `yaml:"containers"`
		Volumes    []k8sVolume    `yaml:"volumes"`
	}
	k8sSeccomp struct {
		Type string `yaml:"type"`
	}
	k8sContainer struct {
		Name            string   `yaml:"name"`
		Image           string   `yaml:"image"`
		ImagePullPolicy string   `yaml:"imagePullPolicy"`
		Command         []string `yaml:"command"`
		Args            []string `yaml:"args"`
		Ports           []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
			Protocol      string `yaml:"protocol"`
		} `yaml:"ports"`
		ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
		LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
		StartupProbe   *k8sProbe `yaml:"startupProbe"`
		Lifecycle      *struct {
			PreStop *struct {
				Sleep *struct {
					Seconds int `yaml:"seconds"`
				} `yaml:"sleep"`
			} `yaml:"preStop"`
		} `yaml:"lifecycle"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext *struct {
			RunAsNonRoot             *bool       `yaml:"runAsNonRoot"`
			RunAsUser                *int64      `yaml:"runAsUser"`
			AllowPrivilegeEscalation *bool       `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool       `yaml:"readOnlyRootFilesystem"`
			Privileged               *bool       `yaml:"privileged"`
			SeccompProfile           *k8sSeccomp `yaml:"seccompProfile"`
			Capabilities             *struct {
				Drop []string `yaml:"drop"`
				Add  []string `yaml:"add"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	k8sProbe struct {
		HTTPGet *struct {
			Path   string `yaml:"path"`
			Port   any    `yaml:"port"`
			Scheme string `yaml:"scheme"`
		} `yaml:"httpGet"`
		InitialDelaySeconds int `yaml:"initialDelaySeconds"`
		PeriodSeconds       int `yaml:"periodSeconds"`
		TimeoutSeconds      int `yaml:"timeoutSeconds"`
		FailureThreshold    int `yaml:"failureThreshold"`
		SuccessThreshold    int `yaml:"successThreshold"`
	}
	k8sVolume struct {
		Name     string `yaml:"name"`
		EmptyDir *struct {
			Medium    string `yaml:"medium"`
			SizeLimit string `yaml:"sizeLimit"`
		} `yaml:"emptyDir"`
		ConfigMap *struct {
			Name        string `yaml:"name"`
			DefaultMode *int   `yaml:"defaultMode"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName  string `yaml:"secretName"`
			DefaultMode *int   `yaml:"defaultMode"`
		} `yaml:"secret"`
	}
	k8sService struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   k8sMeta `yaml:"metadata"`
		Spec       struct {
			Type     string            `yaml:"type"`
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string `yaml:"name"`
				Port       int    `yaml:"port"`
				TargetPort any    `yaml:"targetPort"`
				Protocol   string `yaml:"protocol"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	k8sPDB struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   k8sMeta `yaml:"metadata"`
		Spec       struct {
			MaxUnavailable any         `yaml:"maxUnavailable"`
			MinAvailable   any         `yaml:"minAvailable"`
			Selector       k8sSelector `yaml:"selector"`
		} `yaml:"spec"`
	}
)

// decodeStrict decodes one YAML document into v, refusing fields v does not have.
func decodeStrict(doc string, v any) error {
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// yamlDocs splits a multi-document YAML file at its "---" lines.
func yamlDocs(b []byte) []string {
	var docs []string
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(d, "")) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

func TestDeployKubernetes(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot, "deploy", "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes (%v)", err)
	}
	var deployments []k8sDeployment
	var services []k8sService
	var pdbs []k8sPDB
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		for i, doc := range yamlDocs(b) {
			where := fmt.Sprintf("%s document %d", name, i+1)
			var h k8sHeader
			if err := yaml.Unmarshal([]byte(doc), &h); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var err error
			switch h.APIVersion + " " + h.Kind {
			case "apps/v1 Deployment":
				var d k8sDeployment
				err = decodeStrict(doc, &d)
				deployments = append(deployments, d)
			case "v1 Service":
				var s k8sService
				err = decodeStrict(doc, &s)
				services = append(services, s)
			case "policy/v1 PodDisruptionBudget":
				var p k8sPDB
				err = decodeStrict(doc, &p)
				pdbs = append(pdbs, p)
			default:
				t.Errorf("%s: %s %s: not a kind this test knows; add it to the test", where, h.APIVersion, h.Kind)
				continue
			}
			if err != nil {
				t.Errorf("%s (%s %s): %v", where, h.Kind, h.Metadata.Name, err)
			}
			if h.Metadata.Name == "" {
				t.Errorf("%s: no metadata.name", where)
			}
		}
	}
	if len(deployments) != 1 || len(services) == 0 {
		t.Fatalf("%d Deployments and %d Services; want the edges' Deployment and a Service", len(deployments), len(services))
	}
	d := deployments[0]
	pod := d.Spec.Template.Spec
	labels := d.Spec.Template.Metadata.Labels
	if len(d.Spec.Selector.MatchLabels) == 0 || !subset(d.Spec.Selector.MatchLabels, labels) {
		t.Errorf("Deployment selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, labels)
	}
	psc := pod.SecurityContext
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("pod securityContext: want runAsNonRoot: true and a non-root runAsUser")
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != "RuntimeDefault" {
		t.Error("pod securityContext: want seccompProfile RuntimeDefault")
	}
	// The pod's user is the image's (deploy/Dockerfile), which owns the image's volume directories.
	for _, in := range parseDockerfile(t, filepath.Join(repoRoot, "deploy", "Dockerfile")) {
		if uid, _, _ := strings.Cut(in.args, ":"); in.cmd == "USER" && psc.RunAsUser != nil && uid != strconv.FormatInt(*psc.RunAsUser, 10) {
			t.Errorf("runAsUser %d is not the Dockerfile's USER %s", *psc.RunAsUser, in.args)
		}
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers; want the edge", len(pod.Containers))
	}
	c := pod.Containers[0]
	where := "container " + c.Name
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatalf("%s: no securityContext", where)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("%s: want readOnlyRootFilesystem: true", where)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("%s: want allowPrivilegeEscalation: false", where)
	case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
		t.Errorf("%s: want capabilities drop [ALL] and none added", where)
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Errorf("%s: want runAsNonRoot: true", where)
	case sc.Privileged != nil && *sc.Privileged:
		t.Errorf("%s: privileged", where)
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("%s: no resources.requests.%s", where, r)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Errorf("%s: no resources.limits.memory", where)
	}
	if len(c.Command) > 0 {
		t.Errorf("%s: command %v replaces the image's ENTRYPOINT (%s); give args only", where, c.Command, binPath)
	}
	values := checkInvocation(t, where+" args", c.Args)
	if c.Args[0] != "serve" {
		t.Fatalf("%s runs driveway %s; want serve", where, c.Args[0])
	}
	port := checkListen(t, where, values)

	// The probes ask the edge itself: /healthz for liveness, /readyz for readiness, on the
	// port it listens on.
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
		if strconv.Itoa(p.ContainerPort) != port {
			t.Errorf("%s: containerPort %d is not the --listen port %s", where, p.ContainerPort, port)
		}
	}
	probePort := func(p any) string {
		switch v := p.(type) {
		case int:
			return strconv.Itoa(v)
		case string:
			if n, ok := ports[v]; ok {
				return strconv.Itoa(n)
			}
			return v
		}
		return fmt.Sprint(p)
	}
	for _, pr := range []struct {
		name, path string
		p          *k8sProbe
	}{{"livenessProbe", "/healthz", c.LivenessProbe}, {"readinessProbe", "/readyz", c.ReadinessProbe}} {
		switch {
		case pr.p == nil || pr.p.HTTPGet == nil:
			t.Errorf("%s: no %s httpGet", where, pr.name)
		case pr.p.HTTPGet.Path != pr.path:
			t.Errorf("%s: %s asks %s; want %s", where, pr.name, pr.p.HTTPGet.Path, pr.path)
		case probePort(pr.p.HTTPGet.Port) != port:
			t.Errorf("%s: %s on port %v; the edge listens on %s", where, pr.name, pr.p.HTTPGet.Port, port)
		}
	}

	// Paths: with a read-only root file system, what the edge writes must be on a writable
	// volume, and the keys and the report secret on a ConfigMap or Secret volume (the
	// report secret on a Secret).
	volumes := map[string]k8sVolume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	mountOf := func(path string) (k8sVolume, bool, bool) {
		best := ""
		var vol k8sVolume
		var ro bool
		for _, m := range c.VolumeMounts {
			if under(path, m.MountPath) && len(m.MountPath) > len(best) {
				v, ok := volumes[m.Name]
				if !ok {
					t.Errorf("%s: volumeMount %s names no volume", where, m.Name)
				}
				best, vol, ro = m.MountPath, v, m.ReadOnly
			}
		}
		return vol, ro, best != ""
	}
	for _, name := range []string{"cache", "spool", "state"} {
		for _, p := range values[name] {
			if v, ro, ok := mountOf(p); !ok || ro || v.EmptyDir == nil {
				t.Errorf("%s: --%s %s is not on a writable emptyDir volume (the root file system is read-only)", where, name, p)
			}
		}
	}
	if len(values["cache"]) == 0 {
		t.Errorf("%s: no --cache (with a read-only root file system the edge has nowhere else to keep releases)", where)
	}
	if v, _, ok := mountOf("/tmp/x"); !ok || v.EmptyDir == nil {
		t.Errorf("%s: no writable /tmp (an emptyDir)", where)
	}
	for _, p := range values["key"] {
		if v, ro, ok := mountOf(p); !ok || !ro || (v.ConfigMap == nil && v.Secret == nil) {
			t.Errorf("%s: --key %s is not on a read-only ConfigMap or Secret volume", where, p)
		}
	}
	for _, p := range values["report-secret-file"] {
		if v, ro, ok := mountOf(p); !ok || !ro || v.Secret == nil {
			t.Errorf("%s: --report-secret-file %s is not on a read-only Secret volume", where, p)
		}
	}
	if values["spool"] != nil && values["report-secret-file"] == nil {
		t.Errorf("%s: --spool without --report-secret-file does not start", where)
	}

	for _, s := range services {
		if !subset(s.Spec.Selector, labels) || len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s selector %v does not select the edges %v", s.Metadata.Name, s.Spec.Selector, labels)
		}
		for _, p := range s.Spec.Ports {
			if probePort(p.TargetPort) != port {
				t.Errorf("Service %s targetPort %v is not the edge's port %s", s.Metadata.Name, p.TargetPort, port)
			}
		}
	}
	for _, p := range pdbs {
		if !subset(p.Spec.Selector.MatchLabels, labels) || len(p.Spec.Selector.MatchLabels) == 0 {
			t.Errorf("PodDisruptionBudget %s does not select the edges", p.Metadata.Name)
		}
	}
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestDeployDocumented checks that docs/deployment.md names every file under deploy/.
func TestDeployDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "deployment.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = filepath.WalkDir(filepath.Join(repoRoot, "deploy"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		n++
		if !strings.Contains(string(doc), filepath.ToSlash(rel)) {
			t.Errorf("docs/deployment.md does not mention %s", filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("deploy/: %d files, %v", n, err)
	}
}
