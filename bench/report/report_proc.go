package report

// Processes of a report run: the driveway binary run to completion (generators, builds) with
// its wall time and peak RSS, and servers (the edge, the fixed-answer baseline, nginx) run
// in the background on loopback ports.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/driveway/driveway/bench/baseline"
	"github.com/valyala/fasthttp"
)

// childResult is a finished run of the driveway binary.
type childResult struct {
	wall      time.Duration
	maxRSS    int64  // bytes (see childPeakRSS)
	stderr    []byte // its last 64 KiB
	killedFor string // why the memory watchdog stopped it
	err       error
}

// child runs the driveway binary with args and waits for it (ctx ends it with SIGKILL).
// A watcher reads its memory every 50 ms for the peak and, with memLimit > 0, stops it above
// memLimit, before it can exhaust the machine.
func (r *reporter) child(ctx context.Context, memLimit int64, stdout io.Writer, args ...string) childResult {
	cmd := exec.CommandContext(ctx, r.o.Driveway, args...)
	cmd.Stdout = stdout
	tail := &tailBuffer{max: 64 << 10}
	cmd.Stderr = tail
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return childResult{err: err}
	}
	var killed atomic.Value
	var peak atomic.Int64
	done := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
			if err != nil {
				continue
			}
			if hwm := kbField(b, "VmHWM"); hwm > peak.Load() {
				peak.Store(hwm)
			}
			if rss := kbField(b, "VmRSS"); memLimit > 0 && rss > memLimit {
				killed.Store(fmt.Sprintf("stopped when its resident memory reached %s after %s: over the %s this machine could give it (MemAvailable less 1 GiB)",
					gib(rss), time.Since(start).Round(time.Second), gib(memLimit)))
				cmd.Process.Kill()
				return
			}
		}
	})
	err := cmd.Wait()
	res := childResult{wall: time.Since(start), stderr: tail.bytes()}
	close(done)
	watch.Wait()
	res.maxRSS = childPeakRSS(cmd.ProcessState, peak.Load())
	if k, ok := killed.Load().(string); ok {
		res.killedFor = k
	}
	if err != nil {
		msg := lastLine(res.stderr)
		if msg != "" {
			msg = ": " + msg
		}
		res.err = fmt.Errorf("driveway %s: %v%s", args[0], err, msg)
	}
	return res
}

// childPeakRSS is a finished child's peak resident memory. Where /proc exists (Linux) it is
// the last VmHWM the watcher read: exec gives the child a fresh address space, so that figure
// is the child's own, and it can miss only the last 50 ms of growth. getrusage's ru_maxrss is
// not used there: Go starts children with vfork, and Linux folds the high-water mark of the
// memory the child leaves at exec — the parent's — into the child's maxrss. Comparing it with
// the parent's VmHWM does not separate the two reliably (CI once saw a 57 MB child reported at
// 368 MB next to a 300 MB parent). Elsewhere (macOS spawns without sharing) ru_maxrss is the
// child's own.
func childPeakRSS(ps *os.ProcessState, polled int64) int64 {
	if polled > 0 || ps == nil {
		return polled
	}
	usage, ok := maxRSS(ps)
	if !ok {
		return polled
	}
	return usage
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.b)
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return oneLineText(lines[len(lines)-1])
}

// procStatus reads a size field ("VmRSS", "VmHWM") of /proc/PID/status, in bytes; 0 if absent.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	return kbField(b, field)
}

// kbField reads "Field:   123 kB" from /proc text, in bytes.
func kbField(b []byte, field string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		return n
	}
	return 0
}

// memoryLimit is what a child may use before the watchdog stops it: the machine's available
// memory now, less 1 GiB for everything else.
func memoryLimit() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0 // no watchdog where there is no /proc
	}
	return max(kbField(b, "MemAvailable")-1<<30, 1<<30)
}

// server is a process serving HTTP in the background.
type server struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{}
	log     string
}

// startServer starts bin with args, its stderr (and stdout) to logPath.
func startServer(name, logPath, bin string, args ...string) (*server, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	s := &server{name: name, cmd: cmd, exited: make(chan struct{}), log: logPath}
	s.started = time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		cmd.Wait()
		f.Close()
		close(s.exited)
	}()
	return s, nil
}

// waitReady polls url until it answers 200 and returns the time since the start.
func (s *server) waitReady(ctx context.Context, url string, method string) (time.Duration, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.Header.SetMethod(method)
	if method == fasthttp.MethodPost {
		req.Header.SetContentType("application/json")
		req.SetBodyString("{}")
	}
	for {
		if err := fasthttp.DoTimeout(req, resp, time.Second); err == nil && resp.StatusCode() == 200 {
			return time.Since(s.started), nil
		}
		select {
		case <-s.exited:
			return 0, fmt.Errorf("%s exited: %s", s.name, s.logTail())
		case <-ctx.Done():
			return 0, fmt.Errorf("%s: %s did not answer 200: %w", s.name, url, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.log)
	return lastLine(b)
}

// stop sends SIGTERM and waits for the process, at most 10 s, then kills it.
func (s *server) stop() {
	if s == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// freeAddr returns a loopback address with a port free now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// swapTimes reads the edge's log: the load time of each release it swapped in, in ms.
func swapTimes(logPath string) []float64 {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return nil
	}
	var out []float64
	for _, line := range bytes.Split(b, []byte("\n")) {
		var rec struct {
			Msg    string   `json:"msg"`
			LoadMs *float64 `json:"load_ms"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "release swapped in" && rec.LoadMs != nil {
			out = append(out, *rec.LoadMs)
		}
	}
	return out
}

// findNginx returns the nginx binary: bin if given, else nginx in PATH or /usr/sbin.
func findNginx(bin string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("nginx is not installed (Debian: apt-get install nginx)")
}

// nginxConf is the baseline's configuration: a static file served at /v1/offers to POST
// requests too (nginx answers POST to a static file with 405; error_page turns that into the
// file with 200), keep-alive without a request limit, no access log.
const nginxConf = `daemon off;
worker_processes auto;
worker_rlimit_nofile 8192;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
%[2]s
events { worker_connections 4096; }
http {
	access_log off;
	default_type application/json;
	keepalive_requests 10000000;
	keepalive_timeout 60s;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen %[3]s;
		root %[1]s/root;
		error_page 405 =200 $uri;
	}
}
`

// startNginx serves a static offer-shaped file of size bytes at /v1/offers on addr.
func startNginx(bin, dir, addr string, size int) (*server, string, error) {
	root := filepath.Join(dir, "root", "v1")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(filepath.Join(root, "offers"), baseline.Body(size), 0o644); err != nil {
		return nil, "", err
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;" // the files are root's
	}
	conf := filepath.Join(dir, "nginx.conf")
	text := fmt.Sprintf(nginxConf, dir, user, addr)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, "", err
	}
	args := []string{"-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log")}
	s, err := startServer("nginx", filepath.Join(dir, "stderr.log"), bin, args...)
	if err != nil {
		return nil, "", err
	}
	return s, bin + " " + shellJoin(args), nil
}

// nginxVersion is `nginx -v`'s answer, or "".
func nginxVersion(bin string) string {
	out, err := exec.Command(bin, "-v").CombinedOutput()
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
}
