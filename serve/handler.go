package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/rollout"
)

// reqState is what one POST /v1/offers needs, pooled: after warm-up a request allocates
// nothing here.
type reqState struct {
	dec *offer.Decoder
	req offer.Request
	res offer.Result
	buf []byte
	tok []byte // the offers' report tokens
}

// Fixed error bodies (offer's error shape).
var (
	errNotFound    = errorBody("not-found", "no such endpoint; see POST /v1/offers, POST /v1/reports, GET /v1/release, /healthz, /readyz, /metrics")
	errMethodPost  = errorBody("method", "use POST")
	errMethodGet   = errorBody("method", "use GET or HEAD")
	errContentType = errorBody("content-type", "the body must be JSON: send Content-Type: application/json")
	errNoRelease   = errorBody("unavailable", "no verified release is loaded yet")
	errNowRefused  = errorBody(offer.CodeBadValue, "the now parameter is accepted only by an edge started with --allow-time-override")
	errNowBad      = errorBody(offer.CodeBadValue, "now must be an RFC 3339 time, such as 2026-11-21T12:00:00Z")
	errExplainBad  = errorBody(offer.CodeBadValue, "explain must be 1, true, full, 0 or false")
	errTimeout     = errorBody("timeout", "the request was not received in time")
	errHeaderLarge = errorBody(offer.CodeLimit, "the request headers are too large")
	errBadRequest  = errorBody("bad-request", "the HTTP request could not be parsed")
	errInternal    = errorBody("internal", "the edge failed to answer this request; it was logged")
)

func errorBody(code, msg string) []byte {
	return offer.AppendError(nil, &offer.Error{Code: code, Message: msg})
}

const (
	contentJSON    = "application/json"
	contentText    = "text/plain; charset=utf-8"
	contentMetrics = "text/plain; version=0.0.4; charset=utf-8"
)

// route dispatches a request. A panic (a bug: nothing a client sends should cause one) is
// logged and answered with a 500 rather than taking the process down, as fasthttp would.
func (s *Server) route(ctx *fasthttp.RequestCtx) {
	defer func() {
		if r := recover(); r != nil {
			if isFault(r) {
				s.faulted("request "+string(ctx.Path()), r)
			} else {
				s.log.Error("panic while answering a request; answered 500", "path", string(ctx.Path()), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			}
			ctx.Response.Reset()
			s.fail(ctx, routeOther, fasthttp.StatusInternalServerError, errInternal)
		}
	}()
	switch string(ctx.Path()) {
	case "/v1/offers":
		// The offer reads mapped shards: a fault there (a file truncated under the edge) is a
		// panic recovered above, not the end of the process (serve/damage.go).
		debug.SetPanicOnFault(true)
		s.offers(ctx)
	case "/v1/reports":
		s.reports(ctx)
	case "/v1/release":
		s.release(ctx)
	case "/healthz":
		s.healthz(ctx)
	case "/readyz":
		s.readyz(ctx)
	case "/metrics":
		s.metrics(ctx)
	default:
		s.fail(ctx, routeOther, fasthttp.StatusNotFound, errNotFound)
	}
}

// fail answers with an error body.
func (s *Server) fail(ctx *fasthttp.RequestCtx, route, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(body)
	s.m.request(route, status)
}

// offers answers POST /v1/offers.
func (s *Server) offers(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	if !s.postedJSON(ctx, routeOffers) {
		return
	}
	wall := s.cfg.Clock()
	at := wall
	explain, full := false, false
	args := ctx.QueryArgs()
	if v := args.Peek("explain"); v != nil {
		switch string(v) {
		case "1", "true":
			explain = true
		case "full":
			explain, full = true, true
		case "0", "false":
		default:
			s.fail(ctx, routeOffers, fasthttp.StatusBadRequest, errExplainBad)
			return
		}
	}
	if v := args.Peek("now"); v != nil {
		if !s.cfg.AllowTimeOverride {
			s.fail(ctx, routeOffers, fasthttp.StatusBadRequest, errNowRefused)
			return
		}
		t, err := time.Parse(time.RFC3339, string(v))
		if err != nil {
			s.fail(ctx, routeOffers, fasthttp.StatusBadRequest, errNowBad)
			return
		}
		at = t
	}
	g := s.acquire()
	if g == nil {
		s.fail(ctx, routeOffers, fasthttp.StatusServiceUnavailable, errNoRelease)
		return
	}
	defer func() {
		if g != nil { // a panic: give the reference back before route answers 500
			g.release()
		}
	}()
	st := s.states.Get().(*reqState)
	if perr := st.dec.Decode(ctx.PostBody(), &st.req); perr != nil {
		g.release()
		g = nil
		st.buf = offer.AppendError(st.buf[:0], perr)
		s.fail(ctx, routeOffers, fasthttp.StatusBadRequest, st.buf)
		s.states.Put(st)
		return
	}
	if s.sample != nil {
		s.sample.offer(ctx.PostBody())
	}
	if s.expired(g, wall) {
		// Past expiry and StaleOK: the release may be stale, so nothing is offered.
		st.res = offer.Result{Sequence: g.seq, ID: g.id, Offers: st.res.Offers[:0], Cands: st.res.Cands[:0]}
		ctx.Response.Header.Set("Driveway-Stale", "release expired")
	} else {
		g.engine.Decide(&st.req, at, explain, &st.res)
		if s.tokens != nil { // reports are bound to offers (rollout's report tokens)
			st.tok = st.tok[:0]
			for i := range st.res.Offers {
				st.tok = s.tokens.Append(st.tok, st.req.DeviceID, st.res.Offers[i].Label, g.seq, wall)
			}
			for i := range st.res.Offers {
				st.res.Offers[i].ReportToken = st.tok[i*rollout.TokenLen : (i+1)*rollout.TokenLen]
			}
		}
	}
	var proofs offer.Proofs = g.proofs
	if s.noProofs {
		proofs = nil
	}
	st.buf = offer.AppendResponseWith(st.buf[:0], &st.req, &st.res, g.engine.OS(), proofs)
	if full && !s.expired(g, wall) {
		// explain=full: the publisher's explanation beside the response's own (every failing
		// check, the label's control state, what row and rank mean; what `driveway offer
		// --format explain` prints), an admin's request, off the allocation-free path.
		x, err := json.Marshal(g.engine.Explain(&st.req, at, &st.res))
		if end := bytes.LastIndexByte(st.buf, '}'); err == nil && end > 0 {
			tail := string(st.buf[end:]) // "}" and the newline after it
			st.buf = append(append(append(st.buf[:end], `,"explanation":`...), x...), tail...)
		}
	}
	ctx.SetContentType(contentJSON)
	ctx.SetBody(st.buf) // copies: the generation may go after this
	g.release()
	g = nil
	for i := range st.res.Offers {
		if k := int(st.res.Offers[i].Kind); k < len(offerKinds) {
			s.m.offers.inc(k)
		}
	}
	s.states.Put(st)
	s.m.request(routeOffers, fasthttp.StatusOK)
	s.m.latency.observe(time.Since(start))
}

// expired reports whether g (or its timestamp) is past its expiry plus StaleOK at time now, logging the
// change once.
func (s *Server) expired(g *generation, now time.Time) bool {
	if s.fresh(now) {
		if s.staleOKInUse(now) && s.staleOK.CompareAndSwap(false, true) {
			s.log.Warn("the served release or its timestamp has expired; serving it anyway because of --stale-ok",
				"sequence", g.seq, "fresh_until", time.Unix(0, s.freshUntil()).UTC().Format(time.RFC3339), "stale_ok", s.cfg.StaleOK.String())
		}
		return false
	}
	if s.stale.CompareAndSwap(false, true) {
		s.log.Error("the served release or its timestamp has expired and nothing newer verified; answering with no offers",
			"sequence", g.seq, "fresh_until", time.Unix(0, s.freshUntil()).UTC().Format(time.RFC3339), "stale_ok", s.cfg.StaleOK.String())
	}
	return true
}

// postedJSON checks that a request of route is a POST with a JSON body, and answers 405 or
// 415 when it is not.
func (s *Server) postedJSON(ctx *fasthttp.RequestCtx, route int) bool {
	if !ctx.IsPost() {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, fasthttp.MethodPost)
		s.fail(ctx, route, fasthttp.StatusMethodNotAllowed, errMethodPost)
		return false
	}
	if !isJSON(ctx.Request.Header.ContentType()) {
		s.fail(ctx, route, fasthttp.StatusUnsupportedMediaType, errContentType)
		return false
	}
	return true
}

// isJSON reports whether a Content-Type is application/json, parameters allowed.
func isJSON(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return bytes.EqualFold(bytes.TrimSpace(ct), []byte(contentJSON))
}

// getOnly answers 405 to anything but GET and HEAD.
func (s *Server) getOnly(ctx *fasthttp.RequestCtx, route int) bool {
	if ctx.IsGet() || ctx.IsHead() {
		return true
	}
	ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
	s.fail(ctx, route, fasthttp.StatusMethodNotAllowed, errMethodGet)
	return false
}

// release answers GET /v1/release.
func (s *Server) release(ctx *fasthttp.RequestCtx) {
	if !s.getOnly(ctx, routeRelease) {
		return
	}
	g := s.cur.Load() // info is immutable and not in the mapping: no reference needed
	if g == nil {
		s.fail(ctx, routeRelease, fasthttp.StatusServiceUnavailable, errNoRelease)
		return
	}
	ctx.SetContentType(contentJSON)
	ctx.SetBody(g.info)
	s.m.request(routeRelease, fasthttp.StatusOK)
}

func (s *Server) healthz(ctx *fasthttp.RequestCtx) {
	if !s.getOnly(ctx, routeHealthz) {
		return
	}
	ctx.SetContentType(contentText)
	ctx.SetBodyString("ok\n")
	s.m.request(routeHealthz, fasthttp.StatusOK)
}

// readyz is 200 while a verified release is served that is not past expiry + StaleOK.
func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	if !s.getOnly(ctx, routeReadyz) {
		return
	}
	ctx.SetContentType(contentText)
	g := s.cur.Load()
	switch {
	case g == nil:
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString("not ready: no verified release loaded\n")
	case s.expired(g, s.cfg.Clock()):
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString("not ready: release " + strconv.FormatUint(g.seq, 10) + " or its timestamp expired at " + time.Unix(0, s.freshUntil()).UTC().Format(time.RFC3339) + "\n")
	default:
		ctx.SetBodyString("ready: release " + strconv.FormatUint(g.seq, 10) + "\n")
	}
	if s.spool != nil { // the spool's state, which readiness (about offers) leaves out
		ctx.Response.AppendBodyString(s.spoolDetail())
	}
	s.m.request(routeReadyz, ctx.Response.StatusCode())
}

func (s *Server) metrics(ctx *fasthttp.RequestCtx) {
	if !s.getOnly(ctx, routeMetrics) {
		return
	}
	s.m.request(routeMetrics, fasthttp.StatusOK) // counted first, so a scrape sees itself
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	*bp = s.m.appendTo((*bp)[:0])
	*bp = s.runtime.appendTo(*bp)
	ctx.SetContentType(contentMetrics)
	ctx.SetBody(*bp)
	s.bufs.Put(bp)
}

// gauges are the metrics read at scrape time.
func (s *Server) gauges() []*gauge {
	cur := func(f func(g *generation) float64) func() (float64, bool) {
		return func() (float64, bool) {
			if g := s.cur.Load(); g != nil {
				return f(g), true
			}
			return 0, false
		}
	}
	return []*gauge{
		{"driveway_edge_release_sequence", "Sequence of the served release.", cur(func(g *generation) float64 { return float64(g.seq) })},
		{"driveway_edge_release_created_timestamp_seconds", "Creation time of the served release.", cur(func(g *generation) float64 { return unixSeconds(g.created) })},
		{"driveway_edge_release_expires_timestamp_seconds", "Expiry time of the served release.", cur(func(g *generation) float64 { return unixSeconds(g.expires) })},
		{"driveway_edge_release_age_seconds", "Age of the served release (now - created).", cur(func(g *generation) float64 { return s.cfg.Clock().Sub(g.created).Seconds() })},
		{"driveway_edge_ready", "1 while a verified release is served whose release and timestamp are not past expiry + stale-ok.", func() (float64, bool) {
			if s.cur.Load() == nil || !s.fresh(s.cfg.Clock()) {
				return 0, true
			}
			return 1, true
		}},
		{"driveway_edge_stale_ok_in_use", "1 while the served release or its timestamp has expired and is served only because of --stale-ok.", func() (float64, bool) {
			if s.staleOKInUse(s.cfg.Clock()) {
				return 1, true
			}
			return 0, true
		}},
		{"driveway_edge_timestamp_expires_timestamp_seconds", "Expiry of the newest timestamp verified (the freshness of what is served).", func() (float64, bool) {
			e := s.trust.tsExpires.Load()
			return float64(e), e != 0
		}},
		{"driveway_edge_root_version", "Version of the trusted root (1: the configured keys).", func() (float64, bool) {
			return float64(s.trust.rootVersion.Load()), true
		}},
		{"driveway_edge_shards_open", "Shard files mapped now.", func() (float64, bool) { return float64(s.pool.open()), true }},
		{"driveway_edge_generations_live", "Releases loaded and not yet released by their last reader.", func() (float64, bool) { return float64(s.pool.gens.Load()), true }},
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// errorHandler answers requests fasthttp could not read: too large, too slow, malformed.
func (s *Server) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	route := routeOther
	switch string(ctx.Path()) {
	case "/v1/offers":
		route = routeOffers
	case "/v1/reports":
		route = routeReports
	}
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.fail(ctx, route, fasthttp.StatusRequestEntityTooLarge, s.tooLarge)
	case errors.As(err, &small):
		s.fail(ctx, route, fasthttp.StatusRequestHeaderFieldsTooLarge, errHeaderLarge)
	case errors.As(err, &ne) && ne.Timeout():
		s.fail(ctx, route, fasthttp.StatusRequestTimeout, errTimeout)
	default:
		s.fail(ctx, route, fasthttp.StatusBadRequest, errBadRequest)
	}
}
