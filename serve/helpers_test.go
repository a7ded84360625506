package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driveway/driveway/build"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/statement"
)

// key is a signing key pair written to files.
type key struct {
	signer   *signing.Signer
	verifier *signing.Verifier
	pub      string
}

func newKey(t testing.TB) key {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), "k")
	if err := signing.WriteKeyPair(prefix, signing.Ed25519, nil); err != nil {
		t.Fatal(err)
	}
	s, err := signing.LoadSigner(context.Background(), prefix+".key", nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := signing.LoadVerifier(prefix + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return key{s, v, prefix + ".pub"}
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// buildRelease builds a label tree into out with build.Build.
func buildRelease(t testing.TB, labels, out string, k key, now time.Time, expires time.Duration) *build.Report {
	t.Helper()
	rep, err := build.Build(context.Background(), build.Options{Labels: labels, Out: out, Signers: []*signing.Signer{k.signer},
		Now: now, ExpiresAfter: expires, Keep: 100, AllowShrink: true}) // the tests swap between unrelated trees
	if err != nil {
		t.Fatalf("build %s: %v", labels, err)
	}
	return rep
}

// tlogWriter logs to the test, so a failing test shows what the server did; after done it
// drops what comes (a server may still log after its test has ended).
type tlogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done atomic.Bool
}

func (w *tlogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// startServer makes a server and serves it on a loopback port; the test's cleanup shuts it
// down. It returns the server and its base URL.
func startServer(t testing.TB, cfg serve.Config) (*serve.Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		lw := &tlogWriter{t: t}
		cfg.Logger = slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: testLogLevel}))
		t.Cleanup(func() { lw.done.Store(true) })
	}
	srv, err := serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, "http://" + ln.Addr().String()
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// post sends a JSON body to POST path and returns the status and the body without the
// members that let a PC verify its offers (stripProofs): tests of what is offered compare
// bodies with the CLI's answers and with each other, and the proofs are tested by
// TestAttackResponses and package client.
func post(t testing.TB, url string, body []byte) (int, []byte) {
	t.Helper()
	code, b := postRaw(t, url, body)
	return code, stripProofs(b)
}

// Exactly the members statement.Attestation adds: "statement" after "release", "proof"
// after each offer's "package".
var (
	statementMember = regexp.MustCompile(`,"statement":\{"payloadType":"[^"]*","payload":"[^"]*","signatures":\[[^\]]*\]\}`)
	proofMember     = regexp.MustCompile(`,"proof":(null|\{"index":[0-9]+,"record":"(?:[^"\\]|\\.)*","hashes":\[[^\]]*\]\})`)
)

// stripProofs removes the release statement and every offer's proof from a response.
func stripProofs(body []byte) []byte {
	return proofMember.ReplaceAll(statementMember.ReplaceAll(body, nil), nil)
}

// postRaw is post with the body as the edge answered it.
func postRaw(t testing.TB, url string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := httpClient.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return resp.StatusCode, b
}

func get(t testing.TB, url string) (int, []byte) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// metric reads one sample from /metrics ("name" or `name{labels}`); absent is -1.
func metric(t testing.TB, base, series string) float64 {
	t.Helper()
	_, body := get(t, base+"/metrics")
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if name, val, ok := strings.Cut(line, " "); ok && name == series {
			v, err := strconv.ParseFloat(val, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return v
		}
	}
	return -1
}

// releaseSeq reads the served sequence from GET /v1/release (0: none).
func releaseSeq(t testing.TB, base string) uint64 {
	t.Helper()
	code, body := get(t, base+"/v1/release")
	if code != 200 {
		return 0
	}
	var r struct {
		Sequence uint64 `json:"sequence"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("/v1/release: %v: %s", err, body)
	}
	return r.Sequence
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// copyDir copies a directory tree into dst, over what dst already has: a deploy copies a
// new release's files over the served ones, which os.CopyFS refuses to do.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fixedClock is a settable clock.
type fixedClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *fixedClock {
	c := &fixedClock{}
	c.set(t)
	return c
}
func (c *fixedClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *fixedClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fixedClock) add(d time.Duration) { c.ns.Add(int64(d)) }

func urlNow(base string, now string, explain bool) string {
	u := base + "/v1/offers?now=" + now
	if explain {
		u += "&explain=1"
	}
	return u
}

// testLogLevel is the level of the servers' logs in tests (DRIVEWAY_TEST_LOG=debug for more).
var testLogLevel = func() slog.Level {
	if os.Getenv("DRIVEWAY_TEST_LOG") == "debug" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}()

// restate re-signs the release statement of a manifest a test changed (its catalog,
// sequence, created, expires) with signers, as a build of that manifest would have, so that
// the test's release is refused, or not, for the reason it tests.
func restate(t testing.TB, m *index.Manifest, signers ...*signing.Signer) {
	t.Helper()
	if len(m.Statement) == 0 {
		return
	}
	payload, err := signing.Payload(m.Statement, statement.PayloadType)
	if err != nil {
		t.Fatal(err)
	}
	st, err := statement.Parse(payload)
	if err != nil {
		t.Fatal(err)
	}
	st.Catalog, st.Sequence, st.Created, st.Expires = m.Catalog, m.Sequence, m.Created, m.Expires
	if m.Statement, err = statement.Sign(st, signers...); err != nil {
		t.Fatal(err)
	}
}
