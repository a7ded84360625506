package serve_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestIdleConnectionsKeepNoBodies bounds, in bytes of live heap, what keep-alive connections
// keep after a large request each: their request and response bodies and read and write
// buffers go back to fasthttp's pools (ReduceMemoryUsage), so memory follows the requests
// being answered, not the connections open. Without that, each connection below would keep
// its 200 KB body buffer, 32 of them over 6 MB.
func TestIdleConnectionsKeepNoBodies(t *testing.T) {
	_, base, _ := smallEdge(t, 10*time.Second)
	addr := strings.TrimPrefix(base, "http://")
	body := `{"deviceId":"` + strings.Repeat("a", 200<<10) + `","os":{"build":19045,"arch":"amd64"},"devices":[]}`
	req := fmt.Sprintf("POST /v1/offers HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	live := func() uint64 {
		var m runtime.MemStats
		for range 3 { // sync.Pool keeps what it holds through one collection (its victim cache)
			runtime.GC()
		}
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := live()
	const conns = 32
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Close { // a string over the limit, on a kept-alive connection
			t.Fatalf("status %d, close %v", resp.StatusCode, resp.Close)
		}
	}
	after := live()
	grew := int64(after) - int64(before)
	t.Logf("live heap %d → %d bytes (%+d) with %d idle connections after a %d-byte request each", before, after, grew, conns, len(body))
	if limit := int64(conns * len(body) / 4); grew > limit {
		t.Errorf("the live heap grew %d bytes with %d idle connections; want at most %d (a body buffer kept per connection?)", grew, conns, limit)
	}
}
