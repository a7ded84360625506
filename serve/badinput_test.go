package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
)

// smallEdge serves conformance scenario 01 with the given timeouts.
func smallEdge(t *testing.T, readTimeout time.Duration) (*serve.Server, string, []byte) {
	t.Helper()
	k := newKey(t)
	sc := conformance.LoadOne(t, "01-forward-and-floor.json")
	work := t.TempDir()
	conformance.WriteTree(t, work+"/labels", sc.Labels)
	now := mustTime(t, sc.Now)
	buildRelease(t, work+"/labels", work+"/catalog", k, now, 0)
	clock := newClock(now)
	srv, base := startServer(t, serve.Config{Catalog: work + "/catalog", Keys: []*signing.Verifier{k.verifier}, Clock: clock.now,
		ReadTimeout: readTimeout, WriteTimeout: readTimeout, IdleTimeout: readTimeout, DisableInotify: true})
	return srv, base, sc.Requests[1].Request
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Errorf("error body is not JSON: %v: %.200s", err, body)
	}
	return e.Error.Code
}

// TestBadInput sends what a client should not, and checks each status and error code.
func TestBadInput(t *testing.T) {
	_, base, good := smallEdge(t, 2*time.Second)
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	huge := `{"deviceId":"` + strings.Repeat("a", 200<<10) + `","os":{"build":19045,"arch":"amd64"},"devices":[]}`
	cases := []struct {
		name, method, path, contentType string
		body                            []byte
		status                          int
		code                            string
		allow                           string
	}{
		{"good", "POST", "/v1/offers", "application/json", good, 200, "", ""},
		{"charset", "POST", "/v1/offers", "application/json; charset=utf-8", good, 200, "", ""},
		{"deep nesting", "POST", "/v1/offers", "application/json", []byte(`{"x":` + deep + `}`), 400, "bad-json", ""},
		{"200 KB string", "POST", "/v1/offers", "application/json", []byte(huge), 400, "limit", ""},
		{"not JSON", "POST", "/v1/offers", "application/json", []byte("hello"), 400, "bad-json", ""},
		{"wrong content type", "POST", "/v1/offers", "text/plain", good, 415, "content-type", ""},
		{"no content type", "POST", "/v1/offers", "", good, 415, "content-type", ""},
		{"GET offers", "GET", "/v1/offers", "", nil, 405, "method", "POST"},
		{"PUT offers", "PUT", "/v1/offers", "application/json", good, 405, "method", "POST"},
		{"unknown path", "GET", "/v2/offers", "", nil, 404, "not-found", ""},
		{"POST healthz", "POST", "/healthz", "application/json", good, 405, "method", "GET, HEAD"},
		{"now not allowed", "POST", "/v1/offers?now=2026-01-01T00:00:00Z", "application/json", good, 400, "bad-value", ""},
		{"bad explain", "POST", "/v1/offers?explain=yes", "application/json", good, 400, "bad-value", ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, base+c.path, bytes.NewReader(c.body))
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %.200s", c.name, resp.StatusCode, c.status, body)
			continue
		}
		if c.code != "" {
			if got := errorCode(t, body); got != c.code {
				t.Errorf("%s: error code %q, want %q: %.200s", c.name, got, c.code, body)
			}
		}
		if got := resp.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s: Allow %q, want %q", c.name, got, c.allow)
		}
	}
	// An oversize declared Content-Length is refused before any body is read (a client that
	// goes on sending a large body after the 413 may see the connection reset instead).
	for _, n := range []int{300 << 10, 1e9} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /v1/offers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", n)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != 413 {
			t.Errorf("Content-Length %d: %v %v, want 413", n, err, resp)
		} else if body, _ := io.ReadAll(resp.Body); errorCode(t, body) != "limit" || !bytes.Contains(body, []byte("over 262144 bytes")) {
			t.Errorf("Content-Length %d: %s; want the limit named", n, body)
		}
		conn.Close()
	}
	// A chunked body over the limit.
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/offers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	go func() {
		chunk := strings.Repeat(" ", 64<<10)
		for range 5 {
			if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
				return
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil || resp.StatusCode != 413 {
		t.Errorf("chunked 320 KiB: %v %v, want 413", err, resp)
	}
}

// TestSlowClients opens connections that send their headers one byte every 200 ms: each
// gets a 408 at the read timeout, and meanwhile a normal client gets its answers. The check
// is one of order, not speed: every normal request is answered while the slow clients still
// hold their connections, before the first of them is answered; an edge that let them stall
// the others would answer the normal client only after the slow ones timed out.
func TestSlowClients(t *testing.T) {
	_, base, good := smallEdge(t, 2*time.Second)
	addr := strings.TrimPrefix(base, "http://")
	const slow = 4
	statuses := make([]int, slow)
	var slowAnswered atomic.Int64 // slow clients answered (or hung up on) so far
	var connected sync.WaitGroup
	connected.Add(slow)
	var wg sync.WaitGroup
	for i := range slow {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				connected.Done()
				t.Error(err)
				return
			}
			defer c.Close()
			defer slowAnswered.Add(1)
			msg := "POST /v1/offers HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\nX-Pad: " + strings.Repeat("z", 100) + "\r\n\r\n"
			c.Write([]byte{msg[0]})
			connected.Done()
			for j := 1; j < 30; j++ { // bounded: 6 s at most, far past the read timeout
				time.Sleep(200 * time.Millisecond)
				if _, err := c.Write([]byte{msg[j]}); err != nil {
					break // the server hung up
				}
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil {
				statuses[i] = resp.StatusCode
			}
		})
	}
	connected.Wait()
	// A normal client meanwhile: a fixed number of requests, each answered before any slow
	// client is.
	const normal = 10
	for n := range normal {
		code, body := post(t, base+"/v1/offers", good)
		if code != 200 {
			t.Errorf("normal client: %d %s", code, body)
		}
		if done := slowAnswered.Load(); done > 0 {
			t.Fatalf("normal request %d was answered after %d slow clients were: the slow clients held it up", n, done)
		}
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusRequestTimeout {
			t.Errorf("slow client %d: status %d, want 408", i, s)
		}
	}
}

// TestGracefulShutdown starts Shutdown while a client is still sending its body: the
// request completes with its answer, and Shutdown returns once it has.
func TestGracefulShutdown(t *testing.T) {
	srv, base, good := smallEdge(t, 5*time.Second)
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/offers HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(good))
	half := len(good) / 2
	c.Write(good[:half])
	time.Sleep(50 * time.Millisecond)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	c.Write(good[half:])
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"offers":[{`)) {
		t.Errorf("in-flight request: %d %s", resp.StatusCode, body)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	t.Logf("Shutdown took %v", time.Since(start))
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second); err == nil {
		t.Error("still accepting connections after Shutdown")
	}
}
