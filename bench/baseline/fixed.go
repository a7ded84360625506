// Package baseline holds what the edge is measured against: a server that answers every
// request with the same body and does no work, the ceiling of fasthttp, the kernel and the
// load generator on the same machine. bench report and scripts/bench-edge.sh run it beside
// the edge (`driveway bench fixed-answer`) and report the edge's throughput and CPU per
// request as ratios to it.
//
// It lives here, not in package serve, so the production server carries no benchmark
// modes; it is configured as serve configures the edge's listener (the same fasthttp
// settings and defaults: connection limit, timeouts, body limit, no Server header), so the
// difference between the two is the edge's work alone.
package baseline

import (
	"context"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/driveway/driveway/offer"
)

// FixedAnswer is a fasthttp server that answers every request, whatever its method, path
// and body, with 200 and the same JSON body.
type FixedAnswer struct {
	hs   *fasthttp.Server
	body []byte
}

// NewFixedAnswer makes a server whose answer is a JSON body of exactly bytes bytes (Body).
func NewFixedAnswer(bytes int) *FixedAnswer {
	f := &FixedAnswer{body: Body(bytes)}
	// The edge's defaults (serve.Config's MaxConns, ReadTimeout, WriteTimeout, IdleTimeout
	// and Limits.MaxBody).
	f.hs = &fasthttp.Server{
		Handler:               f.Handler,
		NoDefaultServerHeader: true,
		Concurrency:           10000,
		ReadTimeout:           5 * time.Second,
		WriteTimeout:          5 * time.Second,
		IdleTimeout:           60 * time.Second,
		MaxRequestBodySize:    offer.DefaultLimits.MaxBody,
		CloseOnShutdown:       true,
	}
	return f
}

// Handler answers one request: the fixed body, as application/json.
func (f *FixedAnswer) Handler(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	ctx.SetBody(f.body)
}

// Serve answers requests on ln until Shutdown; it returns nil after Shutdown.
func (f *FixedAnswer) Serve(ln net.Listener) error { return f.hs.Serve(ln) }

// Shutdown stops the server, waiting for requests in flight until ctx is done.
func (f *FixedAnswer) Shutdown(ctx context.Context) error { return f.hs.ShutdownWithContext(ctx) }

// Body is an offer response (docs/offers.md: a release and an empty offers list) padded to
// exactly n bytes, or the smallest such body when n is smaller. The load generator counts it
// as an answer with no offers.
func Body(n int) []byte {
	b := []byte(`{"release":{"sequence":1,"id":"sha256:0"},"offers":[],"pad":"`)
	for len(b) < n-3 {
		b = append(b, 'x')
	}
	return append(b, "\"}\n"...)
}
