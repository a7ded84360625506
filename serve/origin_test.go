package serve_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
)

// nginx runs a real nginx (Debian's package) in the foreground on a loopback port, serving
// root as a static origin.
type nginx struct {
	t      *testing.T
	bin    string
	dir    string
	port   int
	cmd    *exec.Cmd
	access string
}

func startNginx(t *testing.T, root string) *nginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
		if bin == "" {
			t.Skip("nginx is not installed (Debian: apt-get install -y nginx; .ci/run installs it); skipping the nginx origin test")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	n := &nginx{t: t, bin: bin, dir: t.TempDir(), port: port}
	n.access = filepath.Join(n.dir, "access.log")
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;" // the test's files belong to root and may be 0600
	}
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
%[2]s
events { worker_connections 64; }
http {
	default_type application/octet-stream;
	access_log %[1]s/access.log;
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
`, n.dir, user, port, root)
	if err := os.WriteFile(filepath.Join(n.dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *nginx) start() {
	n.t.Helper()
	n.cmd = exec.Command(n.bin, "-p", n.dir, "-c", filepath.Join(n.dir, "nginx.conf"), "-e", filepath.Join(n.dir, "error.log"))
	var stderr bytes.Buffer
	n.cmd.Stderr = &stderr
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("nginx: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", n.addr(), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
			n.t.Fatalf("nginx did not start: %s %s", stderr.String(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *nginx) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM) // fast shutdown
	done := make(chan struct{})
	go func() { n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		n.cmd.Process.Kill()
		<-done
	}
	n.cmd = nil
}

func (n *nginx) addr() string { return fmt.Sprintf("127.0.0.1:%d", n.port) }
func (n *nginx) url() string  { return "http://" + n.addr() }

// TestNginxOrigin: an edge syncs from nginx serving a build's output directory: publish,
// sync, swap; nginx down (the edge keeps serving and counts errors) and up again (it syncs);
// nginx serving a truncated shard (refused, the old release keeps serving, then repaired).
func TestNginxOrigin(t *testing.T) {
	k := newKey(t)
	a, b, c := conformance.LoadOne(t, "01-forward-and-floor.json"), conformance.LoadOne(t, "02-ceiling.json"), conformance.LoadOne(t, "08-ranking.json")
	now := mustTime(t, a.Now)
	work := t.TempDir()
	for name, sc := range map[string]conformance.Scenario{"la": a, "lb": b, "lc": c} {
		conformance.WriteTree(t, filepath.Join(work, name, "tree"), sc.Labels) // one catalog, "tree": an edge serves one

	}
	root := filepath.Join(work, "origin")
	buildRelease(t, filepath.Join(work, "la", "tree"), root, k, now, 0) // release 1
	req := a.Requests[1].Request
	partA := offersPart(t, root, k, req, now)
	ng := startNginx(t, root)

	cache := filepath.Join(work, "cache")
	clock := newClock(now)
	_, base := startServer(t, serve.Config{Origin: ng.url() + "/", Cache: cache, Keys: []*signing.Verifier{k.verifier}, Clock: clock.now,
		Poll: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, OriginTimeout: 2 * time.Second})
	answers := func(seq uint64, part []byte) {
		t.Helper()
		waitFor(t, 10*time.Second, fmt.Sprintf("release %d", seq), func() bool { return releaseSeq(t, base) == seq })
		code, body := post(t, base+"/v1/offers", req)
		if code != 200 || !bytes.HasSuffix(body, part) {
			t.Fatalf("release %d answered %d %s", seq, code, body)
		}
	}
	answers(1, partA)

	// Publish: a build of another tree into nginx's root.
	buildRelease(t, filepath.Join(work, "lb", "tree"), root, k, now, 0) // release 2
	partB := offersPart(t, root, k, req, now)
	answers(2, partB)
	if seqs, _ := index.Sequences(cache); len(seqs) == 0 || seqs[len(seqs)-1] != 2 {
		t.Errorf("cache holds releases %v", seqs)
	}
	time.Sleep(200 * time.Millisecond) // a few conditional polls
	if log, _ := os.ReadFile(ng.access); !bytes.Contains(log, []byte(`"GET /timestamp.json HTTP/1.1" 304`)) {
		t.Errorf("no conditional GET answered 304 in nginx's log:\n%s", log)
	}

	// Origin down: the edge keeps serving and counts errors.
	ng.stop()
	waitFor(t, 10*time.Second, "origin errors", func() bool {
		return metric(t, base, `driveway_edge_origin_fetch_errors_total{reason="connect"}`) >= 2
	})
	answers(2, partB)
	// Up again, with a new release: the edge syncs.
	buildRelease(t, filepath.Join(work, "la", "tree"), root, k, now, 0) // release 3
	ng.start()
	answers(3, partA)

	// A truncated shard: release 4 is tree C, one of whose new shards nginx serves cut short.
	staging := filepath.Join(work, "staging")
	buildRelease(t, filepath.Join(work, "lc", "tree"), staging, k, now, 0)
	partC := offersPart(t, staging, k, req, now)
	m := manifestOf(t, staging)
	var cut string
	for _, s := range m.Shards {
		data, err := os.ReadFile(filepath.Join(staging, index.ShardsDir, s.Name))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, index.ShardsDir, s.Name)
		if _, err := os.Stat(dst); err == nil {
			continue
		}
		if cut == "" {
			cut = dst
			data = data[:len(data)/2]
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if cut == "" {
		t.Fatal("tree C has no shard of its own")
	}
	m.Sequence = 4
	publishAs(t, root, k, 4, *m, k.signer)
	waitFor(t, 10*time.Second, "a shard refusal", func() bool {
		return metric(t, base, `driveway_edge_refused_releases_total{reason="shard"}`) >= 1
	})
	answers(3, partA)
	// Repaired at the origin: the edge retries and swaps.
	full, err := os.ReadFile(filepath.Join(staging, index.ShardsDir, filepath.Base(cut)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cut+".tmp", full, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Rename(cut+".tmp", cut)
	answers(4, partC)
	if partC == nil || bytes.Equal(partC, partA) {
		t.Log("note: tree C answers like tree A")
	}
}

// TestOriginGarbageAndSlow: an origin that serves garbage, then is too slow, then serves a
// release: the edge refuses and counts, backs off, keeps serving, and syncs in the end.
func TestOriginGarbageAndSlow(t *testing.T) {
	k := newKey(t)
	sc := conformance.LoadOne(t, "01-forward-and-floor.json")
	now := mustTime(t, sc.Now)
	work := t.TempDir()
	conformance.WriteTree(t, filepath.Join(work, "labels"), sc.Labels)
	root := filepath.Join(work, "origin")
	buildRelease(t, filepath.Join(work, "labels"), root, k, now, 0)
	mode := make(chan string, 1)
	mode <- "garbage"
	var mu sync.Mutex // the origin's handlers run concurrently
	current := "garbage"
	files := http.FileServer(http.Dir(root))
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		select {
		case current = <-mode:
		default:
		}
		now := current
		mu.Unlock()
		switch now {
		case "garbage":
			w.Write([]byte(strings.Repeat("garbage", 100)))
		case "slow":
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
		default:
			files.ServeHTTP(w, r)
		}
	}))
	defer origin.Close()
	clock := newClock(now)
	_, base := startServer(t, serve.Config{Origin: origin.URL, Cache: filepath.Join(work, "cache"), Keys: []*signing.Verifier{k.verifier},
		Clock: clock.now, Poll: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond, OriginTimeout: 200 * time.Millisecond})
	waitFor(t, 5*time.Second, "garbage refused", func() bool {
		return metric(t, base, `driveway_edge_refused_releases_total{reason="timestamp"}`) >= 1
	})
	if code, _ := post(t, base+"/v1/offers", sc.Requests[1].Request); code != 503 {
		t.Errorf("no release yet: status %d, want 503", code)
	}
	if code, _ := get(t, base+"/readyz"); code != 503 {
		t.Errorf("/readyz %d without a release", code)
	}
	mode <- "slow"
	waitFor(t, 5*time.Second, "timeouts", func() bool {
		return metric(t, base, `driveway_edge_origin_fetch_errors_total{reason="timeout"}`) >= 1
	})
	mode <- "files"
	waitFor(t, 5*time.Second, "release 1", func() bool { return releaseSeq(t, base) == 1 })
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz %d with a release", code)
	}
}

// TestOriginStartsFromCache: an origin edge starts at once with the newest verified release
// already in its cache, before (and without) reaching the origin.
func TestOriginStartsFromCache(t *testing.T) {
	k := newKey(t)
	sc := conformance.LoadOne(t, "01-forward-and-floor.json")
	now := mustTime(t, sc.Now)
	work := t.TempDir()
	conformance.WriteTree(t, filepath.Join(work, "labels"), sc.Labels)
	cache := filepath.Join(work, "cache")
	buildRelease(t, filepath.Join(work, "labels"), cache, k, now, 0)
	clock := newClock(now)
	_, base := startServer(t, serve.Config{Origin: "http://127.0.0.1:1", Cache: cache, Keys: []*signing.Verifier{k.verifier},
		Clock: clock.now, Poll: time.Hour})
	if seq := releaseSeq(t, base); seq != 1 {
		t.Fatalf("serving %d, want the cached release 1", seq)
	}
}

// TestEdgesAnswerAlike: an edge on the catalog directory and an edge syncing from an origin
// serving that directory answer every request of a scenario with the same bytes.
func TestEdgesAnswerAlike(t *testing.T) {
	k := newKey(t)
	sc := conformance.LoadOne(t, "07-gradual-rollout.json")
	now := mustTime(t, sc.Now)
	work := t.TempDir()
	conformance.WriteTree(t, filepath.Join(work, "labels"), sc.Labels)
	root := filepath.Join(work, "catalog")
	buildRelease(t, filepath.Join(work, "labels"), root, k, now, 0)
	origin := httptest.NewServer(http.FileServer(http.Dir(root)))
	defer origin.Close()
	clock := newClock(now)
	keys := []*signing.Verifier{k.verifier}
	_, a := startServer(t, serve.Config{Catalog: root, Keys: keys, Clock: clock.now, AllowTimeOverride: true, DisableInotify: true})
	_, b := startServer(t, serve.Config{Origin: origin.URL, Cache: filepath.Join(work, "cache"), Keys: keys, Clock: clock.now,
		AllowTimeOverride: true, Poll: 20 * time.Millisecond})
	waitFor(t, 5*time.Second, "the origin edge", func() bool { return releaseSeq(t, b) == 1 })
	for _, r := range sc.Requests {
		at := r.Now
		if at == "" {
			at = sc.Now
		}
		ca, ba := post(t, urlNow(a, at, true), r.Request)
		cb, bb := post(t, urlNow(b, at, true), r.Request)
		if ca != 200 || cb != 200 || !bytes.Equal(ba, bb) {
			t.Errorf("[%s] edges differ:\n%d %s\n%d %s", r.Name, ca, ba, cb, bb)
		}
	}
}
