package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/driveway/driveway/catalogs/examples"
	"github.com/driveway/driveway/client"
	"github.com/driveway/driveway/rollout"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
)

// The end-to-end test of issue 15's client: the bundled example catalog with its package
// URLs pointing at a real nginx on loopback, built into release 1 (a copy of the catalog
// stays at it) and release 2 (the NIC's package replaced), two real edges taking reports
// (one on each), a tampering reverse proxy between the client and them, and
// `driveway client get` on the example's recorded machine (a Contoso laptop) with a hook
// that records what it is given.

// testNginx runs Debian's nginx in the foreground on a loopback port, serving root.
type testNginx struct {
	dir, access string
	port        int
	cmd         *exec.Cmd
}

func startTestNginx(t *testing.T, root string) *testNginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
		if bin == "" {
			t.Skip("nginx is not installed (Debian: apt-get install -y nginx; CI installs it): skipping the client end-to-end test, which serves the packages from it")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &testNginx{dir: t.TempDir(), port: ln.Addr().(*net.TCPAddr).Port}
	ln.Close()
	n.access = filepath.Join(n.dir, "access.log")
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;"
	}
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
%[2]s
events { worker_connections 64; }
http {
	default_type application/octet-stream;
	log_format range '$status $request_uri range=$http_range bytes=$body_bytes_sent';
	access_log %[1]s/access.log range;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen 127.0.0.1:%[3]d;
		root %[4]s;
	}
}
`, n.dir, user, n.port, root)
	if err := os.WriteFile(filepath.Join(n.dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(bin, "-p", n.dir, "-c", filepath.Join(n.dir, "nginx.conf"), "-e", filepath.Join(n.dir, "error.log"))
	var stderr bytes.Buffer
	n.cmd.Stderr = &stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("nginx: %v", err)
	}
	t.Cleanup(func() {
		n.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { n.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			n.cmd.Process.Kill()
			<-done
		}
	})
	for i := 0; ; i++ { // bounded: 250 tries, 20 ms apart
		c, err := net.DialTimeout("tcp", n.addr(), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return n
		}
		if i == 250 {
			log, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
			t.Fatalf("nginx did not start: %s %s", stderr.String(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *testNginx) addr() string { return fmt.Sprintf("127.0.0.1:%d", n.port) }

// tamper is a reverse proxy on loopback between the client and an edge: it forwards each
// request to the edge and answers what edit makes of the edge's answer to /v1/offers.
type tamper struct {
	mu     sync.Mutex
	target *url.URL
	edit   func(body []byte) []byte // nil: pass through
	last   []byte                   // the last offers answer the edge gave
	url    string
	// refuseReports answers POST /v1/reports with 503 itself.
	refuseReports bool
}

func startTamper(t *testing.T) *tamper {
	t.Helper()
	p := &tamper{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			p.mu.Lock()
			r.SetURL(p.target)
			p.mu.Unlock()
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.URL.Path != "/v1/offers" {
				return nil
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			p.mu.Lock()
			p.last = b
			if p.edit != nil {
				b = p.edit(b)
			}
			p.mu.Unlock()
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
			return nil
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		refuse := p.refuseReports
		p.mu.Unlock()
		if refuse && r.URL.Path == "/v1/reports" { // a load balancer whose edges are all busy
			w.Header().Set("Retry-After", "5")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":"unavailable","message":"no edge free; send it again after Retry-After seconds"}}`)
			return
		}
		rp.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	p.url = "http://" + ln.Addr().String()
	return p
}

// set points the proxy at edge with edit (nil: pass through).
func (p *tamper) set(edge string, edit func([]byte) []byte) {
	u, _ := url.Parse(edge)
	p.mu.Lock()
	p.target, p.edit = u, edit
	p.mu.Unlock()
}

func (p *tamper) lastAnswer() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.last...)
}

// clientWorld is the example catalog, its packages on nginx, two edges and the proxy.
type clientWorld struct {
	work, key, logKey, request, hook string
	unloggedEdge                     string // releases 1 and 2 signed with the release key, not in the log
	nginx                            *testNginx
	pkgRoot                          string
	oldEdge, newEdge                 string // releases 1 and 2
	oldSpool, newSpool               string
	proxy                            *tamper
	pkgs                             map[string]string // submission id -> package file under pkgRoot
}

const (
	nicSubmission = "1152921504621442201" // label nicOld's submission: its package changes in release 2
	clientSecret  = "the report secret of driveway's client end-to-end test"
)

// packageBytes is a package's made-up content: 256 KiB that differ per name.
func packageBytes(name string) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 256<<10; i++ {
		fmt.Fprintf(&b, "driveway test package %s, line %d\n", name, i)
	}
	return b.Bytes()[:256<<10]
}

// pointPackages makes every submission of tree name a package file in pkgRoot (the NIC's
// named file instead of its id) and sets its URL, sha256 and size.
func (w *clientWorld) pointPackages(t *testing.T, tree string, nicFile string) {
	t.Helper()
	subs, err := filepath.Glob(filepath.Join(tree, "products/*/submissions/*/submission.json"))
	if err != nil || len(subs) == 0 {
		t.Fatalf("no submissions in %s: %v", tree, err)
	}
	for _, p := range subs {
		id := filepath.Base(filepath.Dir(p))
		file := id + ".cab"
		if id == nicSubmission && nicFile != "" {
			file = nicFile
		}
		body := packageBytes(file)
		if err := os.WriteFile(filepath.Join(w.pkgRoot, "packages", file), body, 0o644); err != nil {
			t.Fatal(err)
		}
		w.pkgs[file] = filepath.Join(w.pkgRoot, "packages", file)
		var doc map[string]any // ids are 64-bit: numbers stay json.Numbers
		b, _ := os.ReadFile(p)
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		doc["package"] = map[string]any{"url": "http://" + w.nginx.addr() + "/packages/" + file, "sha256": hex.EncodeToString(sum[:]), "size": len(body)}
		b, _ = json.MarshalIndent(doc, "", "  ")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newClientWorld(t *testing.T) *clientWorld {
	t.Helper()
	w := &clientWorld{work: t.TempDir(), pkgs: map[string]string{}}
	w.pkgRoot = filepath.Join(w.work, "www")
	os.MkdirAll(filepath.Join(w.pkgRoot, "packages"), 0o755)
	w.nginx = startTestNginx(t, w.pkgRoot)
	tree := filepath.Join(w.work, "contoso")
	if err := copyFS(examplesFS(), "contoso", tree); err != nil {
		t.Fatal(err)
	}
	w.pointPackages(t, tree, "")
	w.key = filepath.Join(w.work, "k")
	catalog := filepath.Join(w.work, "catalog")
	w.logKey = filepath.Join(w.work, "log")
	if code, _, stderr := runCLIAt(exampleClock, nil, "keygen", "--unencrypted", "--out", w.key); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := runCLIAt(exampleClock, nil, "keygen", "--type", "log", "--out", w.logKey); code != 0 {
		t.Fatal(stderr)
	}
	build := func(out string, logged bool) {
		t.Helper()
		args := []string{"build", "--labels", tree, "--out", out, "--key", w.key + ".key", "--quiet"}
		if logged {
			args = append(args, "--log-key", w.logKey+".key")
		}
		if code, _, stderr := runCLIAt(exampleClock, nil, args...); code != 0 {
			t.Fatal(stderr)
		}
	}
	build(catalog, true)
	old := filepath.Join(w.work, "catalog-1")
	if err := os.CopyFS(old, os.DirFS(catalog)); err != nil {
		t.Fatal(err)
	}
	// Release 2: the NIC's package is another file.
	w.pointPackages(t, tree, nicSubmission+"-r2.cab")
	build(catalog, true)
	// Releases 1 and 2 of another history, signed with the release key and left out of the
	// log (what a thief of the release key alone could publish): the NIC's package is
	// another one.
	w.pointPackages(t, tree, nicSubmission+"-unlogged.cab")
	unlogged := filepath.Join(w.work, "catalog-unlogged")
	build(unlogged, false)
	build(unlogged, false)
	// nginx serves the logs too (the origin's layout: CATALOG/log/...).
	for name, dir := range map[string]string{"catalog": catalog, "catalog-1": old} {
		if err := os.Symlink(dir, filepath.Join(w.pkgRoot, name)); err != nil {
			t.Fatal(err)
		}
	}
	w.unloggedEdge = startClientEdge(t, unlogged, w.key+".pub", filepath.Join(w.work, "spool-unlogged"))
	w.oldSpool, w.newSpool = filepath.Join(w.work, "spool-1"), filepath.Join(w.work, "spool-2")
	w.oldEdge = startClientEdge(t, old, w.key+".pub", w.oldSpool)
	w.newEdge = startClientEdge(t, catalog, w.key+".pub", w.newSpool)
	w.proxy = startTamper(t)

	w.request = filepath.Join(w.work, "request.json")
	req, err := examples.Requests.ReadFile("requests/contoso-model-b13.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.request, req, 0o644); err != nil {
		t.Fatal(err)
	}
	w.hook = filepath.Join(w.work, "hook.sh")
	script := `#!/bin/sh
# The test's install hook: $1 is its record file, $2 the package.
{
	printf 'argc=%s package=%s\n' "$#" "$2"
	env | grep '^DRIVEWAY_' | sort
	echo ---
} >> "$1"
exit 0
`
	if err := os.WriteFile(w.hook, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

// startClientEdge runs an edge on a loopback port serving catalog, taking reports into
// spool, at the example's clock.
func startClientEdge(t *testing.T, catalog, pub, spool string) string {
	t.Helper()
	v, err := signing.LoadVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serve.New(serve.Config{Catalog: catalog, Keys: []*signing.Verifier{v}, Clock: exampleClock, DisableInotify: true, Poll: time.Hour,
		Spool:        rollout.SpoolOptions{Dir: spool, Secret: []byte(clientSecret), MinFreeBytes: -1, MinFreePercent: -1},
		ReportLimits: serve.ReportLimits{PerDevice: -1, PerSource: -1}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

// get runs `driveway client get --json` through the proxy with state, recording hook calls
// in record; it returns the exit code, the JSON result and stderr.
func (w *clientWorld) get(t *testing.T, state, record string, extra ...string) (int, map[string]any, string) {
	t.Helper()
	args := append([]string{"client", "get", "--edge", w.proxy.url, "--key", w.key + ".pub", "--request", w.request, "--state", state,
		"--install-hook", "/bin/sh " + w.hook + " " + record, "--json"}, extra...)
	code, stdout, stderr := runCLIAt(exampleClock, nil, args...)
	var res map[string]any
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("client get printed no JSON (%v): %s\nstderr: %s", err, stdout, stderr)
	}
	if int(res["exitCode"].(float64)) != code {
		t.Errorf("JSON exitCode %v, exit status %d", res["exitCode"], code)
	}
	return code, res, stderr
}

// hookCalls are the hook's recorded calls (nil: never called).
func hookCalls(t *testing.T, record string) []string {
	b, err := os.ReadFile(record)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Split(strings.TrimSuffix(string(b), "---\n"), "---\n")
	return calls
}

// offers is the JSON result's offers.
func offers(res map[string]any) []map[string]any {
	var out []map[string]any
	for _, o := range res["offers"].([]any) {
		out = append(out, o.(map[string]any))
	}
	return out
}

// spooled is the reports an edge's spool holds.
func spooled(t *testing.T, dir string) []rollout.Report {
	t.Helper()
	var rs []rollout.Report
	if _, err := rollout.ReadSpools([]string{dir}, func(r *rollout.Report) { rs = append(rs, *r) }); err != nil {
		t.Fatal(err)
	}
	return rs
}

// seeded is a new state directory that has verified release seq of the example catalog.
func seeded(t *testing.T, seq uint64) string {
	t.Helper()
	dir := t.TempDir()
	if err := client.SaveState(dir, client.State{Catalog: "contoso-example", Sequence: seq, Verified: exampleClock()}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// nothingInstalled checks that state has no verified package and no partial file.
func nothingInstalled(t *testing.T, what, state string) {
	t.Helper()
	for _, d := range []string{client.PackagesDir, client.DownloadsDir} {
		es, err := os.ReadDir(filepath.Join(state, d))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if len(es) > 0 {
			t.Errorf("%s: %s/%s holds %s", what, filepath.Base(state), d, es[0].Name())
		}
	}
}

func TestClientGetEndToEnd(t *testing.T) {
	w := newClientWorld(t)

	// 1. A new PC asks the edge of release 1: every automatic and extension offer is
	// downloaded from nginx, checked, installed by the hook and reported.
	stateDir := filepath.Join(w.work, "pc")
	record := filepath.Join(w.work, "hook-1.log")
	w.proxy.set(w.oldEdge, nil)
	code, res, stderr := w.get(t, stateDir, record)
	if code != 0 {
		t.Fatalf("get from release 1: exit %d: %s", code, stderr)
	}
	r1 := w.proxy.lastAnswer()
	if res["sequence"].(float64) != 1 || res["reports"] != "accepted" {
		t.Fatalf("get from release 1: %v", res)
	}
	installed := map[string]map[string]any{}
	for _, o := range offers(res) {
		if o["action"] == "installed" {
			installed[o["labelId"].(string)] = o
		}
	}
	if installed[nicOld] == nil || len(installed) < 2 {
		t.Fatalf("installed %v; want the NIC (%s) and its extension at least: %v", installed, nicOld, res)
	}
	calls := hookCalls(t, record)
	if len(calls) != len(installed) {
		t.Fatalf("the hook ran %d times for %d installs:\n%s", len(calls), len(installed), strings.Join(calls, "---\n"))
	}
	for _, c := range calls {
		label := regexp.MustCompile(`DRIVEWAY_LABEL_ID=(\d+)`).FindStringSubmatch(c)
		if label == nil || installed[label[1]] == nil {
			t.Fatalf("hook call for no installed label:\n%s", c)
		}
		o := installed[label[1]]
		pkg := o["package"].(string)
		for _, want := range []string{"argc=2 package=" + pkg + "\n", "DRIVEWAY_PACKAGE=" + pkg + "\n", "DRIVEWAY_SHA256=" + o["sha256"].(string) + "\n",
			"DRIVEWAY_INF=" + o["inf"].(string) + "\n", "DRIVEWAY_DRIVER_VERSION=" + o["driverVersion"].(string) + "\n", "DRIVEWAY_RELEASE=1\n",
			"DRIVEWAY_CATALOG=contoso-example\n", "DRIVEWAY_KIND=" + o["kind"].(string) + "\n", "DRIVEWAY_URL=" + o["url"].(string) + "\n"} {
			if !strings.Contains(c, want) {
				t.Errorf("hook call for label %s lacks %q:\n%s", label[1], want, c)
			}
		}
		// The package the hook got is the one nginx serves, byte for byte.
		got, _ := os.ReadFile(pkg)
		served, _ := os.ReadFile(w.pkgs[filepath.Base(o["url"].(string))])
		if len(got) == 0 || !bytes.Equal(got, served) {
			t.Errorf("label %s: the hook's package (%d bytes) is not the served file (%d bytes)", label[1], len(got), len(served))
		}
	}
	rs := spooled(t, w.oldSpool)
	if len(rs) != len(installed) {
		t.Fatalf("edge 1 stored %d reports, want %d", len(rs), len(installed))
	}
	for _, r := range rs {
		if installed[r.LabelID] == nil || r.Result != "installed" || r.DeviceID != rollout.Pseudonym([]byte(clientSecret), "b7e1c0de-5d1e-4c0a-9f55-6a3e2f0d9b11") {
			t.Errorf("stored report %+v", r)
		}
	}
	st, err := client.LoadState(stateDir)
	if err != nil || st.Sequence != 1 || st.Catalog != "contoso-example" {
		t.Fatalf("state after release 1: %+v, %v", st, err)
	}

	// 2. The same PC asks the edge of release 2: the NIC's new package.
	record2 := filepath.Join(w.work, "hook-2.log")
	w.proxy.set(w.newEdge, nil)
	code, res, stderr = w.get(t, stateDir, record2)
	r2 := w.proxy.lastAnswer()
	if code != 0 || res["sequence"].(float64) != 2 || res["previous"].(float64) != 1 {
		t.Fatalf("get from release 2: exit %d %v: %s", code, res, stderr)
	}
	if c := hookCalls(t, record2); len(c) == 0 || !strings.Contains(strings.Join(c, ""), nicSubmission+"-r2.cab") {
		t.Fatalf("release 2's NIC package was not installed: %v", c)
	}
	if st, _ := client.LoadState(stateDir); st.Sequence != 2 {
		t.Fatalf("state after release 2: %+v", st)
	}
	if n := len(spooled(t, w.newSpool)); n == 0 {
		t.Fatal("edge 2 stored no report")
	}

	// 3. Tampering between the PC (which has seen release 2) and the edge.
	r1NIC := offerOf(t, r1, nicOld)
	r2NIC := offerOf(t, r2, nicOld)
	sha := regexp.MustCompile(`"sha256":"([0-9a-f]{64})"`)
	cases := []struct {
		name  string
		edit  func([]byte) []byte
		code  int
		class string
		want  string
	}{
		{"sha256 rewritten", func(b []byte) []byte {
			m := sha.FindSubmatchIndex(b)
			out := append([]byte(nil), b...)
			out[m[2]] = "01"[b[m[2]]&1] // another hex digit
			return out
		}, exitGetUnverified, "unverified", "offer differs from its signed record: package sha256"},
		{"URL rewritten to release 1's package", func(b []byte) []byte {
			return bytes.Replace(b, []byte(r2NIC["package"].(map[string]any)["url"].(string)), []byte(r1NIC["package"].(map[string]any)["url"].(string)), 1)
		}, exitGetUnverified, "unverified", "package url"},
		{"release 1's offer swapped in", func(b []byte) []byte { return swapOffer(t, b, nicOld, r1) },
			exitGetUnverified, "unverified", "offer not proved"},
		{"release 1's response replayed", func([]byte) []byte { return r1 },
			exitGetOld, "old", "release 1, and this PC has verified release 2"},
		{"statement removed", func(b []byte) []byte { return bytes.Replace(b, []byte(`"statement":`), []byte(`"unsigned":`), 1) },
			exitGetUnverified, "unverified", "no release statement"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			state := seeded(t, 2)
			record := filepath.Join(t.TempDir(), "hook.log")
			// Without the client's checks the attack gets through: the tampered answer still
			// parses and offers packages a naive PC would download and install.
			naive, err := client.ParseResponse(c.edit(append([]byte(nil), r2...)))
			if err != nil || len(naive.Offers) == 0 || naive.Offers[0].Package.URL == "" {
				t.Fatalf("the tampered answer offers nothing even to a naive PC: %v", err)
			}
			w.proxy.set(w.newEdge, c.edit)
			code, res, stderr := w.get(t, state, record)
			if code != c.code || res["class"] != c.class || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d class %v, want %d %s; stderr %q does not say %q", code, res["class"], c.code, c.class, stderr, c.want)
			}
			t.Logf("exit %d: %s", code, strings.TrimSpace(stderr))
			if calls := hookCalls(t, record); calls != nil {
				t.Fatalf("the hook ran:\n%s", calls)
			}
			nothingInstalled(t, c.name, state)
			if st, _ := client.LoadState(state); st.Sequence != 2 {
				t.Errorf("state moved to %d", st.Sequence)
			}
		})
	}
	w.proxy.set(w.newEdge, nil)

	// 4. nginx serving other bytes (same size) for the NIC's package: the sha256 check
	// refuses it, the hook never sees it, nothing is left of it.
	t.Run("package body tampered", func(t *testing.T) {
		file := w.pkgs[nicSubmission+"-r2.cab"]
		good, _ := os.ReadFile(file)
		bad := append([]byte(nil), good...)
		copy(bad[1000:], "an old, vulnerable driver")
		if err := os.WriteFile(file, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(file, good, 0o644)
		state := seeded(t, 2)
		record := filepath.Join(t.TempDir(), "hook.log")
		code, res, stderr := w.get(t, state, record)
		if code != exitGetHash || res["class"] != "hash" || !strings.Contains(stderr, "package differs from its record") || !strings.Contains(stderr, "sha256") {
			t.Fatalf("exit %d class %v: %s", code, res["class"], stderr)
		}
		t.Logf("exit %d: %s", code, strings.TrimSpace(stderr))
		sum := sha256.Sum256(good)
		for _, c := range hookCalls(t, record) {
			if strings.Contains(c, hex.EncodeToString(sum[:])) {
				t.Fatalf("the hook got the tampered package:\n%s", c)
			}
		}
		for _, d := range []string{client.PackagesDir, client.DownloadsDir} {
			if m, _ := filepath.Glob(filepath.Join(state, d, hex.EncodeToString(sum[:])+"*")); len(m) > 0 {
				t.Errorf("left behind: %v", m)
			}
		}
	})

	// 5. An interrupted download resumes: the transfer of the NIC's package is cut after
	// 100,000 bytes (the client's connection drops); the next run asks nginx for the rest.
	t.Run("interrupted download resumes", func(t *testing.T) {
		state := seeded(t, 2)
		req, _ := os.ReadFile(w.request)
		v, _ := signing.LoadVerifier(w.key + ".pub")
		cut := &cutTransport{base: &http.Transport{}, path: "/packages/" + nicSubmission + "-r2.cab", after: 100000}
		opts := client.GetOptions{Edge: w.proxy.url, Request: req, Keys: []*signing.Verifier{v}, State: state,
			HTTP: &http.Client{Transport: cut, Timeout: time.Minute}, Now: exampleClock}
		res, err := client.Get(context.Background(), opts)
		if !errors.Is(err, client.ErrDownload) {
			t.Fatalf("cut transfer: %v, want ErrDownload", err)
		}
		if calls := cut.cuts(); calls != 1 {
			t.Fatalf("%d transfers cut", calls)
		}
		sum := sha256.Sum256(packageBytes(nicSubmission + "-r2.cab"))
		part := filepath.Join(state, client.DownloadsDir, hex.EncodeToString(sum[:])+".part")
		if fi, err := os.Stat(part); err != nil || fi.Size() != 100000 {
			t.Fatalf("partial file: %v %v", fi, err)
		}
		_ = res
		opts.HTTP = &http.Client{Timeout: time.Minute}
		res, err = client.Get(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		var nic *client.OfferOutcome
		for i := range res.Offers {
			if res.Offers[i].LabelID == nicOld {
				nic = &res.Offers[i]
			}
		}
		if nic == nil || nic.Resumed != 100000 || nic.Fetched != 256<<10-100000 || nic.Action != "downloaded" {
			t.Fatalf("resumed download: %+v", nic)
		}
		got, _ := os.ReadFile(nic.Package)
		if sha256.Sum256(got) != sum {
			t.Fatal("the resumed package is not the served file")
		}
		log, _ := os.ReadFile(w.nginx.access)
		want := fmt.Sprintf("206 /packages/%s-r2.cab range=bytes=100000- bytes=%d", nicSubmission, 256<<10-100000)
		if !strings.Contains(string(log), want) {
			t.Fatalf("nginx's log has no %q:\n%s", want, log)
		}
	})
}

// TestClientGetFailures: the other failure classes on the same loopback world: a hook that
// fails (exit 8, reported as failed), reports the edge refuses (tokens rewritten by the
// proxy: exit 9), an edge that does not answer (exit 3), and misuse (exit 2).
func TestClientGetFailures(t *testing.T) {
	w := newClientWorld(t)
	w.proxy.set(w.newEdge, nil)

	t.Run("hook fails", func(t *testing.T) {
		fail := filepath.Join(t.TempDir(), "fail.sh")
		os.WriteFile(fail, []byte("#!/bin/sh\necho 'pnputil: the driver is not better' >&2\nexit 3\n"), 0o755)
		code, res, stderr := w.get(t, seeded(t, 2), "unused", "--install-hook", "/bin/sh "+fail)
		if code != exitGetHook || res["class"] != "hook" || !strings.Contains(stderr, "exited with status 3") || res["reports"] != "accepted" {
			t.Fatalf("exit %d %v: %s", code, res, stderr)
		}
		for _, o := range offers(res) {
			if o["action"] == "installed" {
				t.Errorf("offer %v installed", o)
			}
		}
		failed := 0
		for _, r := range spooled(t, w.newSpool) {
			if r.Result == "failed" {
				failed++
			}
		}
		if failed == 0 {
			t.Fatal("no failed report stored")
		}
	})

	t.Run("reports refused", func(t *testing.T) {
		token := regexp.MustCompile(`"reportToken":"([A-Za-z0-9_-]{20})([A-Za-z0-9_-])`)
		w.proxy.set(w.newEdge, func(b []byte) []byte {
			return token.ReplaceAllFunc(b, func(m []byte) []byte {
				m = append([]byte(nil), m...)
				if m[len(m)-1] == 'A' {
					m[len(m)-1] = 'B'
				} else {
					m[len(m)-1] = 'A'
				}
				return m
			})
		})
		defer w.proxy.set(w.newEdge, nil)
		record := filepath.Join(t.TempDir(), "hook.log")
		code, res, stderr := w.get(t, seeded(t, 2), record)
		if code != exitGetReport || res["class"] != "report" || !strings.Contains(stderr, "403") || !strings.Contains(stderr, "bad-token") {
			t.Fatalf("exit %d %v: %s", code, res["class"], stderr)
		}
		t.Logf("exit %d: %s", code, strings.TrimSpace(stderr))
		if len(hookCalls(t, record)) == 0 {
			t.Fatal("the installs did not happen")
		}
	})

	t.Run("reports kept for the next run", func(t *testing.T) {
		w.proxy.mu.Lock()
		w.proxy.refuseReports = true
		w.proxy.mu.Unlock()
		state := seeded(t, 2)
		before := len(spooled(t, w.newSpool))
		code, res, stderr := w.get(t, state, filepath.Join(t.TempDir(), "hook.log"))
		w.proxy.mu.Lock()
		w.proxy.refuseReports = false
		w.proxy.mu.Unlock()
		kept := int(res["reportsPending"].(float64))
		if code != exitGetReport || kept == 0 || !strings.Contains(stderr, "503") || !strings.Contains(fmt.Sprint(res["reports"]), "kept in "+client.PendingFile) {
			t.Fatalf("exit %d %v: %s", code, res, stderr)
		}
		if rs, err := client.LoadPending(state); err != nil || len(rs) != kept {
			t.Fatalf("pending: %d, %v", len(rs), err)
		}
		// The next run (nothing new to install: --no-install) sends them.
		code, stdout, stderr := runCLIAt(exampleClock, nil, "client", "get", "--edge", w.proxy.url, "--key", w.key+".pub", "--request", w.request,
			"--state", state, "--no-install", "--json")
		if code != 0 || !strings.Contains(stdout, `"reports": "accepted"`) {
			t.Fatalf("exit %d: %s %s", code, stdout, stderr)
		}
		if _, err := os.Stat(filepath.Join(state, client.PendingFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left: %v", client.PendingFile, err)
		}
		if n := len(spooled(t, w.newSpool)) - before; n != kept {
			t.Fatalf("the edge stored %d reports, %d were kept", n, kept)
		}
	})

	t.Run("edge unreachable", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		dead := "http://" + ln.Addr().String()
		ln.Close()
		code, _, stderr := runCLIAt(exampleClock, nil, "client", "get", "--edge", dead, "--key", w.key+".pub", "--request", w.request,
			"--state", t.TempDir(), "--no-install")
		if code != exitGetUnreachable || !strings.Contains(stderr, "edge unreachable") || !strings.Contains(stderr, "connection refused") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	})

	t.Run("edge answers 400", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "req.json")
		os.WriteFile(bad, []byte(`{"deviceId":"x","os":{"build":"22631"},"devices":[]}`), 0o644)
		code, _, stderr := runCLIAt(exampleClock, nil, "client", "get", "--edge", w.newEdge, "--key", w.key+".pub", "--request", bad,
			"--state", t.TempDir(), "--no-install")
		if code != exitGetUnreachable || !strings.Contains(stderr, "400") || !strings.Contains(stderr, "/os/build") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	})

	t.Run("no install", func(t *testing.T) {
		state := seeded(t, 2)
		code, stdout, stderr := runCLIAt(exampleClock, nil, "client", "get", "--edge", w.newEdge, "--key", w.key+".pub", "--request", w.request,
			"--state", state, "--no-install")
		if code != 0 || !strings.Contains(stdout, "release 2 of catalog \"contoso-example\" verified") || !strings.Contains(stdout, "downloaded") {
			t.Fatalf("exit %d: %s%s", code, stdout, stderr)
		}
		if es, _ := os.ReadDir(filepath.Join(state, client.PackagesDir)); len(es) == 0 {
			t.Fatal("nothing downloaded")
		}
	})

	t.Run("state of another format", func(t *testing.T) {
		state := t.TempDir()
		os.WriteFile(filepath.Join(state, client.StateFile), []byte(`{"format":"driveway-client-state/9","catalog":"c","sequence":7}`), 0o644)
		code, _, stderr := runCLIAt(exampleClock, nil, "client", "get", "--edge", w.newEdge, "--key", w.key+".pub", "--request", w.request,
			"--state", state, "--no-install")
		if code != exitFailure || !strings.Contains(stderr, "state.json") || !strings.Contains(stderr, "driveway-client-state/9") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	})

	for _, args := range [][]string{
		{"--key", w.key + ".pub", "--request", w.request, "--state", "s"},
		{"--edge", w.newEdge, "--key", w.key + ".pub", "--request", w.request, "--state", "s", "--no-install", "--install-hook", "x"},
		{"--edge", w.newEdge, "--key", w.key + ".pub", "--request", w.request, "--state", "s", "--now", "yesterday"},
	} {
		if code, _, stderr := runCLIAt(exampleClock, nil, append([]string{"client", "get"}, args...)...); code != exitUsage || !strings.Contains(stderr, "driveway help client get") {
			t.Errorf("%v: exit %d: %s", args, code, stderr)
		}
	}
	if code, stdout, _ := runCLIAt(exampleClock, nil, "client", "get", "--help"); code != 0 || !strings.Contains(stdout, "9 the edge refused") {
		t.Errorf("help: exit %d: %s", code, stdout)
	}
}

// TestClientGetLog: with --log, a release must be in the catalog's transparency log (served
// by nginx beside the packages) at a checkpoint that extends the one the PC saw: the genuine
// releases pass and the state keeps the checkpoint; a release signed with the release key
// but left out of the log, and a log that went back to an older checkpoint, are refused with
// exit 10, nothing installed.
func TestClientGetLog(t *testing.T) {
	w := newClientWorld(t)
	logURL := "http://" + w.nginx.addr() + "/catalog/log"
	state := filepath.Join(w.work, "pc")
	w.proxy.set(w.oldEdge, nil)
	code, res, stderr := w.get(t, state, filepath.Join(w.work, "hook-1.log"), "--log", logURL, "--log-key", w.logKey+".pub")
	if code != 0 || !strings.HasPrefix(fmt.Sprint(res["log"]), "contoso-example@2:") {
		t.Fatalf("release 1 with the log: exit %d %v: %s", code, res["log"], stderr)
	}
	st, _ := client.LoadState(state)
	if st.Log == nil || st.Log.Size != 2 || st.Sequence != 1 {
		t.Fatalf("state: %+v", st)
	}
	w.proxy.set(w.newEdge, nil)
	if code, res, stderr := w.get(t, state, filepath.Join(w.work, "hook-2.log"), "--log", logURL, "--log-key", w.logKey+".pub"); code != 0 || res["sequence"].(float64) != 2 {
		t.Fatalf("release 2 with the log: exit %d: %s", code, stderr)
	}
	for _, c := range []struct {
		name, edge, log, want string
	}{
		{"release not in the log", w.unloggedEdge, logURL, "with another statement than the release's"},
		{"log gone back", w.newEdge, "http://" + w.nginx.addr() + "/catalog-1/log", "fewer than the 2 already seen"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pc := t.TempDir()
			os.CopyFS(pc, os.DirFS(state))
			os.RemoveAll(filepath.Join(pc, client.PackagesDir))
			record := filepath.Join(t.TempDir(), "hook.log")
			w.proxy.set(c.edge, nil)
			code, res, stderr := w.get(t, pc, record, "--log", c.log, "--log-key", w.logKey+".pub")
			if code != exitGetLog || res["class"] != "log" || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d %v: %s", code, res["class"], stderr)
			}
			t.Logf("exit %d: %s", code, strings.TrimSpace(stderr))
			if hookCalls(t, record) != nil {
				t.Fatal("the hook ran")
			}
			nothingInstalled(t, c.name, pc)
			// Without the log, the PC takes the unlogged release: it verifies with the
			// release key alone.
			if c.edge == w.unloggedEdge {
				if code, _, stderr := w.get(t, t.TempDir(), filepath.Join(t.TempDir(), "hook.log")); code != 0 {
					t.Fatalf("without --log: exit %d: %s", code, stderr)
				}
			}
		})
	}
	if code, _, stderr := runCLIAt(exampleClock, nil, "client", "get", "--edge", w.newEdge, "--key", w.key+".pub", "--request", w.request,
		"--state", t.TempDir(), "--no-install", "--log", logURL); code != exitUsage || !strings.Contains(stderr, "--log and --log-key") {
		t.Errorf("--log without --log-key: exit %d: %s", code, stderr)
	}
}

// offerOf is the offer of label in a response.
func offerOf(t *testing.T, body []byte, label string) map[string]any {
	t.Helper()
	var r struct {
		Offers []map[string]any `json:"offers"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	for _, o := range r.Offers {
		if o["labelId"] == label {
			return o
		}
	}
	t.Fatalf("no offer of label %s in %s", label, body)
	return nil
}

// swapOffer replaces label's offer in body with the one in from (whole: fields and proof).
func swapOffer(t *testing.T, body []byte, label string, from []byte) []byte {
	var r, f map[string]json.RawMessage
	if json.Unmarshal(body, &r) != nil || json.Unmarshal(from, &f) != nil {
		t.Fatal("not JSON")
	}
	var offs, fromOffs []json.RawMessage
	json.Unmarshal(r["offers"], &offs)
	json.Unmarshal(f["offers"], &fromOffs)
	find := func(os []json.RawMessage) int {
		for i, o := range os {
			if bytes.Contains(o, []byte(`"labelId":"`+label+`"`)) {
				return i
			}
		}
		t.Fatalf("no offer of %s", label)
		return -1
	}
	offs[find(offs)] = fromOffs[find(fromOffs)]
	r["offers"], _ = json.Marshal(offs)
	b, _ := json.Marshal(r)
	return b
}

// cutTransport drops the first transfer of path after `after` bytes of its body, as a
// connection that breaks would.
type cutTransport struct {
	base  http.RoundTripper
	path  string
	after int64
	mu    sync.Mutex
	n     int
}

func (c *cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err != nil || r.URL.Path != c.path {
		return resp, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		resp.Body = &cutBody{rc: resp.Body, left: c.after}
	}
	c.n++
	return resp, nil
}

func (c *cutTransport) cuts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

type cutBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errors.New("connection reset by peer (cut by the test)")
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cutBody) Close() error { return b.rc.Close() }
