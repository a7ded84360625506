package serve

// Install reports: POST /v1/reports.
//
// A PC reports the outcome of an offer it acted on (rollout's report format: one report or
// an array of up to rollout.MaxBatch). The edge checks the body as strictly as an offer
// request, against the release it serves (a labelId must be one of its labels) and its
// clock (a report's time within Spool.Retention before it and Spool.MaxAhead after it),
// checks that each report carries the reportToken of an offer of its label to its device
// (rollout's report tokens: an edge with reports enabled puts one in every offer it
// answers; 403 with code bad-token otherwise), counts it against the per-device and
// per-network limits (429 with Retry-After past them: serve/limits.go), stamps every report
// with "received" (its own clock) and the pseudonym of the client's network, and hands it
// to the spool
// (Config.Spool), which a log shipper collects. The answer is 202 once the spool's group
// commit has written and fsynced the reports:
//
//	{"accepted": 2}
//
// When the spool cannot store them (its directory gone or read-only, the disk full or at the
// reserve, the spool at its size cap, its queue full, the commit slower than AckTimeout), or
// no release is loaded to check them against, the answer is 503 with Retry-After and an
// error body saying why; nothing of that request is kept, and the PC sends it again later.
// The handler waits for the commit in its connection's goroutine: offers never wait on the
// spool, and at most Spool.MaxWaiting requests wait at once (more are refused at once), so
// waiting reports cannot take the connections offers need. An edge keeps no state from
// reports: it does not read them back, and offers never depend on them.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/rollout"
)

var (
	errNoSpool         = errorBody("not-found", "install reports are not enabled on this edge: the operator starts it with --spool DIR and --report-secret-file FILE (see docs/deployment.md, Install reports); nothing to retry until then")
	errReportsTooLarge = errorBody(offer.CodeLimit, "the body is over "+strconv.Itoa(rollout.MaxBodySize)+" bytes; send at most "+strconv.Itoa(rollout.MaxBatch)+" reports a request")
	errNoReleaseYet    = errorBody("unavailable", "no verified release is loaded yet to check reports against; nothing of this request was kept: send it again after Retry-After seconds")
	acceptedBodyPrefix = []byte(`{"accepted":`)
)

// reasonNoRelease is the 503 of a report that arrives before any release is loaded.
const reasonNoRelease = "no-release"

// reportRefusals are the reasons a report request is answered 503, in metric order.
var reportRefusals = append(rollout.SpoolReasons[:len(rollout.SpoolReasons):len(rollout.SpoolReasons)], reasonNoRelease)

// refusalBodies are the 503 bodies by reason (the order of rollout.SpoolReasons).
var refusalBodies = func() [][]byte {
	why := map[string]string{
		rollout.ReasonQueue:    "the edge has more reports waiting than it takes",
		rollout.ReasonTimeout:  "the reports were not stored in time",
		rollout.ReasonClosed:   "the edge is shutting down",
		rollout.ReasonMissing:  "the spool directory is gone",
		rollout.ReasonReadOnly: "the spool's file system refuses writes",
		rollout.ReasonDiskFull: "the spool's disk is full",
		rollout.ReasonIO:       "the spool cannot write",
		rollout.ReasonCap:      "the spool is at its size cap",
		rollout.ReasonReserve:  "the disk is down to the free space kept for releases",
	}
	out := make([][]byte, len(rollout.SpoolReasons))
	for i, r := range rollout.SpoolReasons {
		out[i] = errorBody("unavailable", why[r]+" ("+r+"); nothing of this request was kept: send it again after Retry-After seconds")
	}
	return out
}()

// retryAfter is the Retry-After of a refusal: a moment for a busy edge, a minute for a
// spool that needs its disk or its operator.
func retryAfter(reason string) string {
	switch reason {
	case rollout.ReasonQueue, rollout.ReasonTimeout, rollout.ReasonClosed, reasonNoRelease:
		return "5"
	}
	return "60"
}

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
	g := s.acquire()
	if g == nil {
		s.refuse(ctx, reasonNoRelease, 0, errNoReleaseYet)
		return
	}
	now := s.cfg.Clock()
	rs, err := rollout.DecodeReports(body, rollout.DecodeOptions{Now: now, MaxAge: s.cfg.Spool.Retention, MaxAhead: s.cfg.Spool.MaxAhead,
		Label: g.engine.HasLabel, Tokens: s.tokens})
	g.release()
	if err != nil {
		e := &offer.Error{Code: offer.CodeBadJSON, Message: err.Error()}
		var re *rollout.Error
		if errors.As(err, &re) {
			e.Code, e.Message, e.Field = re.Code, re.Message, re.Field
		}
		if e.Code == rollout.CodeBadToken {
			s.m.reports.forbidden.inc(0)
			s.fail(ctx, routeReports, fasthttp.StatusForbidden, offer.AppendError(nil, e))
			return
		}
		s.m.reports.invalid.inc(0)
		s.fail(ctx, routeReports, fasthttp.StatusBadRequest, offer.AppendError(nil, e))
		return
	}
	// Limits, per device and per client network (serve/limits.go), then the source.
	devices := make([]string, len(rs))
	for i := range rs {
		devices[i] = rs[i].DeviceID
	}
	source := []string{rollout.SourcePrefix(s.clientAddr(ctx)).String()}
	if ok, wait := s.deviceLimit.take(devices, 1, now); !ok {
		s.limited(ctx, 0, len(rs), wait)
		return
	}
	if ok, wait := s.sourceLimit.take(source, uint32(len(rs)), now); !ok {
		s.deviceLimit.giveBack(devices, 1, now)
		s.limited(ctx, 1, len(rs), wait)
		return
	}
	for i := range rs {
		rs[i].Source = source[0] // the spool stores its pseudonym
	}
	var c *rollout.Commit
	if !s.spoolMu.TryRLock() { // Shutdown is closing the spool
		err = &rollout.SpoolError{Reason: rollout.ReasonClosed}
	} else {
		if s.spoolClosed {
			err = &rollout.SpoolError{Reason: rollout.ReasonClosed}
		} else {
			c, err = s.spool.Append(rs, now.UTC())
		}
		s.spoolMu.RUnlock()
	}
	if err == nil {
		err = c.Wait() // in this connection's goroutine: offers go on meanwhile
	}
	if err != nil {
		reason := rollout.ReasonIO
		var se *rollout.SpoolError
		if errors.As(err, &se) {
			reason = se.Reason
		}
		i := indexOf(rollout.SpoolReasons[:], reason)
		if i < 0 {
			i = indexOf(rollout.SpoolReasons[:], rollout.ReasonIO)
		}
		s.deviceLimit.giveBack(devices, 1, now) // the PC sends them again
		s.sourceLimit.giveBack(source, uint32(len(rs)), now)
		s.refuse(ctx, reason, len(rs), refusalBodies[i])
		return
	}
	s.m.reports.accepted.add(0, uint64(len(rs)))
	var buf [32]byte
	b := append(buf[:0], acceptedBodyPrefix...)
	b = strconv.AppendInt(b, int64(len(rs)), 10)
	b = append(b, "}\n"...)
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(b)
	s.m.request(routeReports, fasthttp.StatusAccepted)
}

// limitBodies are the 429 bodies: by device, by source.
var limitBodies = [2]string{
	"this device sent more reports than an edge takes from one device in %s; nothing of this request was kept: send it again after Retry-After seconds",
	"this network sent more reports than an edge takes from one network in %s; nothing of this request was kept: send it again after Retry-After seconds",
}

// limited answers 429 with Retry-After (the rest of the limit's window).
func (s *Server) limited(ctx *fasthttp.RequestCtx, by, reports int, wait time.Duration) {
	s.m.reports.limited.add(by, uint64(reports))
	window := s.cfg.ReportLimits.DeviceWindow
	if by == 1 {
		window = s.cfg.ReportLimits.SourceWindow
	}
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, strconv.FormatInt(int64(max(1, (wait+time.Second-1)/time.Second)), 10))
	s.fail(ctx, routeReports, fasthttp.StatusTooManyRequests, errorBody("rate-limit", fmt.Sprintf(limitBodies[by], strings.TrimSuffix(strings.TrimSuffix(window.String(), "0s"), "0m"))))
}

// refuse answers 503 with Retry-After and counts the refused reports by reason.
func (s *Server) refuse(ctx *fasthttp.RequestCtx, reason string, reports int, body []byte) {
	s.m.reports.refused.add(indexOf(reportRefusals, reason), uint64(reports))
	s.m.reports.refusedRequests.inc(indexOf(reportRefusals, reason))
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, retryAfter(reason))
	s.fail(ctx, routeReports, fasthttp.StatusServiceUnavailable, body)
}

// SpoolStats returns the report spool's counts and state (zero without a spool).
func (s *Server) SpoolStats() rollout.SpoolStats {
	if s.spool == nil {
		return rollout.SpoolStats{}
	}
	return s.spool.Stats()
}

// spoolDetail is the /readyz line about the spool (readiness itself is about offers: an
// edge whose spool cannot store still answers offers, and its PCs send reports again).
func (s *Server) spoolDetail() string {
	st := s.spool.Stats()
	if st.State.Storing {
		free := ""
		if st.Free > 0 {
			free = fmt.Sprintf(", %.1f MiB free on its file system", float64(st.Free)/(1<<20))
		}
		return fmt.Sprintf("spool: storing reports (%.1f MiB in the spool%s)\n", float64(st.Bytes)/(1<<20), free)
	}
	return fmt.Sprintf("spool: refusing reports since %s (%s): %s; answering POST /v1/reports with 503\n",
		st.State.Since.UTC().Format("2006-01-02T15:04:05Z07:00"), st.State.Reason, st.State.Err)
}
