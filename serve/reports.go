package serve

// Install reports: POST /v1/reports.
//
// A PC reports the outcome of an offer it acted on (rollout's report format: one report or
// an array of up to rollout.MaxBatch). The edge checks the body as strictly as an offer
// request, stamps every report with "received" (its own clock), and appends it to the
// spool (Config.Spool), which a log shipper collects. The answer is 202 with what happened:
//
//	{"accepted": 2, "dropped": 0}
//
// "dropped" counts reports the spool's queue had no room for; they are lost, and counted in
// driveway_edge_reports_dropped_total, as are reports the disk later refuses. Appending never
// waits for the disk, so reports cannot slow offers down. An edge keeps no state from
// reports: it does not read them back, and offers never depend on them.

import (
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/rollout"
)

var (
	errNoSpool          = errorBody("not-found", "install reports are not enabled on this edge: start it with --spool DIR (Config.Spool); see docs/deployment.md, Install reports")
	errReportsTooLarge  = errorBody(offer.CodeLimit, "the body is over "+strconv.Itoa(rollout.MaxBodySize)+" bytes; send at most "+strconv.Itoa(rollout.MaxBatch)+" reports a request")
	errSpoolClosed      = errorBody("unavailable", "the edge is shutting down; send the reports again later")
	acceptedBodyPrefix  = []byte(`{"accepted":`)
	acceptedBodyDropped = []byte(`,"dropped":`)
)

// reports answers POST /v1/reports.
func (s *Server) reports(ctx *fasthttp.RequestCtx) {
	if s.spool == nil {
		s.fail(ctx, routeReports, fasthttp.StatusNotFound, errNoSpool)
		return
	}
	if !s.postedJSON(ctx, routeReports) {
		return
	}
	body := ctx.PostBody()
	if len(body) > rollout.MaxBodySize {
		s.fail(ctx, routeReports, fasthttp.StatusRequestEntityTooLarge, errReportsTooLarge)
		return
	}
	rs, err := rollout.DecodeReports(body)
	if err != nil {
		e := &offer.Error{Code: offer.CodeBadJSON, Message: err.Error()}
		var re *rollout.Error
		if errors.As(err, &re) {
			e.Code, e.Message, e.Field = re.Code, re.Message, re.Field
		}
		s.m.reports.invalid.inc(0)
		s.fail(ctx, routeReports, fasthttp.StatusBadRequest, offer.AppendError(nil, e))
		return
	}
	if !s.spoolMu.TryRLock() { // Shutdown is closing the spool
		s.fail(ctx, routeReports, fasthttp.StatusServiceUnavailable, errSpoolClosed)
		return
	}
	if s.spoolClosed {
		s.spoolMu.RUnlock()
		s.fail(ctx, routeReports, fasthttp.StatusServiceUnavailable, errSpoolClosed)
		return
	}
	received := s.cfg.Clock().UTC()
	accepted := 0
	for i := range rs {
		rs[i].Received = received
		if s.spool.Append(&rs[i]) {
			accepted++
		}
	}
	s.spoolMu.RUnlock()
	var buf [64]byte
	b := append(buf[:0], acceptedBodyPrefix...)
	b = strconv.AppendInt(b, int64(accepted), 10)
	b = append(b, acceptedBodyDropped...)
	b = strconv.AppendInt(b, int64(len(rs)-accepted), 10)
	b = append(b, "}\n"...)
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(b)
	s.m.request(routeReports, fasthttp.StatusAccepted)
}
