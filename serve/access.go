package serve

// The access log.
//
// With Config.AccessLog, every request answered is one JSON line on that writer:
//
//	{"time":"2026-11-21T12:00:00.123456Z","remote":"203.0.113.7:52144","method":"POST",
//	 "path":"/v1/offers","query":"explain=1","status":200,"bytes":1843,"us":57}
//
// time is when the request was read (UTC), remote the peer address (the load balancer's,
// behind one: see its own log), query the raw query string (absent when empty), bytes the
// response body's length, us the handler's time in microseconds. Bodies are never logged:
// a request's device inventory is personal data. Lines are buffered and written at least
// every second and at Shutdown; a write error is logged once and the lines are dropped
// (the access log never slows or stops answers).

import (
	"bufio"
	"context"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

type accessLog struct {
	mu     sync.Mutex
	w      *bufio.Writer
	line   []byte
	failed bool
	s      *Server
}

func newAccessLog(s *Server, w io.Writer) *accessLog {
	return &accessLog{w: bufio.NewWriterSize(w, 64<<10), s: s}
}

// wrap logs each request h answers.
func (a *accessLog) wrap(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		h(ctx)
		a.log(ctx)
	}
}

func (a *accessLog) log(ctx *fasthttp.RequestCtx) {
	start := ctx.Time()
	us := time.Since(start).Microseconds()
	a.mu.Lock()
	defer a.mu.Unlock()
	b := append(a.line[:0], `{"time":"`...)
	b = start.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","remote":`...)
	b = appendJSONString(b, ctx.RemoteAddr().String())
	b = append(b, `,"method":`...)
	b = appendJSONString(b, string(ctx.Method()))
	b = append(b, `,"path":`...)
	b = appendJSONString(b, string(ctx.Path()))
	if q := ctx.URI().QueryString(); len(q) > 0 {
		b = append(b, `,"query":`...)
		b = appendJSONString(b, string(q))
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(ctx.Response.StatusCode()), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(len(ctx.Response.Body())), 10)
	b = append(b, `,"us":`...)
	b = strconv.AppendInt(b, us, 10)
	b = append(b, "}\n"...)
	a.line = b
	if _, err := a.w.Write(b); err != nil {
		a.broke(err)
	}
}

func (a *accessLog) broke(err error) {
	if !a.failed {
		a.failed = true
		a.s.log.Error("the access log cannot be written; its lines are dropped", "error", err.Error())
	}
	a.w.Reset(io.Discard)
}

// flush writes what is buffered.
func (a *accessLog) flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.w.Flush(); err != nil {
		a.broke(err)
	}
}

// run flushes every second until ctx ends, then once more.
func (a *accessLog) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			a.flush()
			return
		case <-t.C:
			a.flush()
		}
	}
}

// appendJSONString appends s as a JSON string: quotes, backslashes and control characters
// escaped, invalid UTF-8 replaced (a client controls paths and queries).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}
