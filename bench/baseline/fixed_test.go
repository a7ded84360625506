package baseline

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/driveway/driveway/bench/load"
)

func TestBody(t *testing.T) {
	for _, n := range []int{0, 10, 66, 67, 500, 19193} {
		b := Body(n)
		if n >= 67 && len(b) != n {
			t.Errorf("Body(%d) is %d bytes", n, len(b))
		}
		var v struct {
			Release struct{ Sequence int } `json:"release"`
			Offers  []json.RawMessage      `json:"offers"`
		}
		if err := json.Unmarshal(b, &v); err != nil || v.Release.Sequence != 1 || v.Offers == nil {
			t.Errorf("Body(%d) = %s: not an offer response with no offers (%v)", n, b, err)
		}
		if offers, ok := load.CountOffers(b); !ok || offers != 0 {
			t.Errorf("Body(%d): the load generator counts %d offers, ok %v; want an answer with none", n, offers, ok)
		}
	}
}

// TestFixedAnswerServes serves on a loopback port: every method and path gets the body, and
// Shutdown ends Serve with nil.
func TestFixedAnswerServes(t *testing.T) {
	f := NewFixedAnswer(500)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Serve(ln) }()
	for _, c := range []struct{ method, path string }{{"POST", "/v1/offers"}, {"GET", "/healthz"}, {"GET", "/anything"}} {
		rq, rs := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		rq.Header.SetMethod(c.method)
		rq.SetRequestURI("http://" + ln.Addr().String() + c.path)
		if c.method == "POST" {
			rq.SetBodyString(`{"devices":[]}`)
		}
		if err := fasthttp.DoTimeout(rq, rs, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if rs.StatusCode() != 200 || len(rs.Body()) != 500 || string(rs.Header.ContentType()) != "application/json" || len(rs.Header.Peek("Server")) != 0 {
			t.Errorf("%s %s: %d, %d bytes, %q, Server %q", c.method, c.path, rs.StatusCode(), len(rs.Body()), rs.Header.ContentType(), rs.Header.Peek("Server"))
		}
		fasthttp.ReleaseRequest(rq)
		fasthttp.ReleaseResponse(rs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}
