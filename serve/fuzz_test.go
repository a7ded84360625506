package serve_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
)

// memConn is a connection whose client sent in and then closed its side; what the server
// writes is collected.
type memConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error)       { return c.in.Read(p) }
func (c *memConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

var _ io.Reader = (*memConn)(nil)

// documented are the statuses the edge answers with (package doc).
var documented = map[int]bool{200: true, 400: true, 404: true, 405: true, 408: true, 413: true, 415: true, 431: true, 503: true}

var statusLine = regexp.MustCompile(`(?m)^HTTP/1\.[01] (\d{3}) `)

// FuzzHandler feeds arbitrary bytes, as one connection's requests, to the server with its
// fasthttp settings: it must not panic, and every status must be a documented one.
func FuzzHandler(f *testing.F) {
	k := newKey(f)
	sc := conformance.LoadOne(f, "01-forward-and-floor.json")
	work := f.TempDir()
	conformance.WriteTree(f, filepath.Join(work, "labels"), sc.Labels)
	now := mustTime(f, sc.Now)
	buildRelease(f, filepath.Join(work, "labels"), filepath.Join(work, "catalog"), k, now, 0)
	clock := newClock(now)
	srv, err := serve.New(serve.Config{Catalog: filepath.Join(work, "catalog"), Keys: []*signing.Verifier{k.verifier}, Clock: clock.now,
		AllowTimeOverride: true, DisableInotify: true, Poll: time.Hour,
		Limits: serve.Config{}.Limits})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Shutdown(context.Background()) })
	good := sc.Requests[1].Request
	req := func(method, path, ct string, body []byte) []byte {
		h := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: edge\r\n", method, path)
		if ct != "" {
			h += "Content-Type: " + ct + "\r\n"
		}
		if body != nil {
			h += "Content-Length: " + strconv.Itoa(len(body)) + "\r\n"
		}
		return append([]byte(h+"\r\n"), body...)
	}
	f.Add(req("POST", "/v1/offers", "application/json", good))
	f.Add(req("POST", "/v1/offers?explain=1&now=2026-11-21T12:00:00Z", "application/json", good))
	f.Add(append(req("POST", "/v1/offers", "application/json", good), req("GET", "/v1/release", "", nil)...))
	f.Add(req("GET", "/metrics", "", nil))
	f.Add(req("HEAD", "/readyz", "", nil))
	f.Add(req("GET", "/healthz", "", nil))
	f.Add(req("POST", "/v1/offers", "text/plain", []byte("{}")))
	f.Add(req("POST", "/v1/offers", "application/json", []byte(`{"deviceId":"x","os":{"build":1},"devices":[[[[[[`)))
	f.Add([]byte("POST /v1/offers HTTP/1.1\r\nHost: e\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n"))
	f.Add([]byte("GARBAGE\r\n\r\n"))
	f.Add([]byte("POST /v1/offers HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n"))
	c := &memConn{in: bytes.NewReader(req("POST", "/v1/offers", "application/json", good))}
	srv.ServeConn(c)
	if !bytes.HasPrefix(c.out.Bytes(), []byte("HTTP/1.1 200 OK\r\n")) || !bytes.Contains(c.out.Bytes(), []byte(`"offers":[{`)) {
		f.Fatalf("the good request was answered\n%s", c.out.Bytes())
	}
	var mu sync.Mutex // ServeConn may run concurrently; the checks need no lock, this is for the seeds' log
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &memConn{in: bytes.NewReader(in)}
		srv.ServeConn(c) // errors are the client's; what matters is what was answered
		for _, m := range statusLine.FindAllSubmatch(c.out.Bytes(), -1) {
			code, _ := strconv.Atoi(string(m[1]))
			if !documented[code] {
				mu.Lock()
				t.Errorf("status %d for %q:\n%s", code, in, c.out.Bytes())
				mu.Unlock()
			}
		}
	})
}
