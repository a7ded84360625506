package serve

// The admin listener.
//
// With Config.AdminOnly, the views meant for operators are answered only through
// ServeAdmin, on an address operators reach and PCs do not:
//
//	GET  /metrics              the edge's series (device counts per kind, refusals, the spool)
//	GET  /v1/release           what is served (counts, the log checkpoint)
//	POST /v1/offers?explain=1  every candidate with its verdict: cancel reasons, block ids,
//	                           audiences, answers many times the request's size
//	POST /v1/offers?explain=full  the same and the publisher's explanation (every failing
//	                           check, control state, what row and rank mean)
//
// On the public listener (Serve) they are answered 404 and 403, with a body that says where
// they are. Offers without explain, reports, /healthz and /readyz are answered on both (a
// load balancer probes the public port). Without AdminOnly every view is answered on Serve's
// listener, as before the admin listener existed.
//
// Threat: a PC, or anyone who can reach the public port, reading the catalog's operational
// state (why a driver was cancelled, which blocks exist and what they match, the audiences
// and flights) or making the edge write 1.6 MB answers to a 246 KB request.

import (
	"errors"
	"net"

	"github.com/valyala/fasthttp"
)

var (
	errAdminOnly   = errorBody("not-found", "this view is answered on the edge's admin listener (--admin-listen), not here")
	errExplainHere = errorBody("forbidden", "explain is answered on the edge's admin listener (--admin-listen), not here; ask without explain")
)

// public dispatches a request that came to the public listener of an edge with AdminOnly.
func (s *Server) public(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/metrics":
		s.fail(ctx, routeMetrics, fasthttp.StatusNotFound, errAdminOnly)
		return
	case "/v1/release":
		s.fail(ctx, routeRelease, fasthttp.StatusNotFound, errAdminOnly)
		return
	case "/v1/offers":
		if v := ctx.QueryArgs().Peek("explain"); v != nil && string(v) != "0" && string(v) != "false" {
			s.fail(ctx, routeOffers, fasthttp.StatusForbidden, errExplainHere)
			return
		}
	}
	s.route(ctx)
}

// ServeAdmin serves the admin listener (Config.AdminOnly): every endpoint, the operator
// views included. It returns when ln fails or Shutdown is called.
func (s *Server) ServeAdmin(ln net.Listener) error {
	if s.admin == nil {
		return errors.New("serve: ServeAdmin needs Config.AdminOnly")
	}
	return s.admin.Serve(s.listener(ln))
}
