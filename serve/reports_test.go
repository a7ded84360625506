package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/rollout"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
)

// reportSecret is the tests' fleet report secret.
var reportSecret = []byte("the report secret of driveway's serve tests")

// testSpoolOptions fills what every test spool needs: the secret, and no free-disk reserve
// unless the test sets one (the machine's free space is not what most tests are about).
func testSpoolOptions(o rollout.SpoolOptions) rollout.SpoolOptions {
	if o.Secret == nil {
		o.Secret = reportSecret
	}
	if o.MinFreeBytes == 0 && o.Statfs == nil {
		o.MinFreeBytes = -1
	}
	if o.MinFreePercent == 0 && o.Statfs == nil {
		o.MinFreePercent = -1
	}
	return o
}

// reportsEdge serves conformance scenario 01 with a spool (none when spool.Dir is empty). It
// returns the server, its base URL, its clock and an offer request that gets offers.
func reportsEdge(t *testing.T, spool rollout.SpoolOptions) (*serve.Server, string, *fixedClock, []byte) {
	t.Helper()
	return reportsEdgeLog(t, spool, nil)
}

// reportsEdgeLog is reportsEdge with a logger (nil: the test's).
func reportsEdgeLog(t *testing.T, spool rollout.SpoolOptions, log *slog.Logger) (*serve.Server, string, *fixedClock, []byte) {
	t.Helper()
	k := newKey(t)
	sc := conformance.LoadOne(t, "01-forward-and-floor.json")
	work := t.TempDir()
	conformance.WriteTree(t, filepath.Join(work, "labels"), sc.Labels)
	now := mustTime(t, sc.Now)
	buildRelease(t, filepath.Join(work, "labels"), filepath.Join(work, "catalog"), k, now, 0)
	clock := newClock(now)
	if spool.Dir != "" {
		spool = testSpoolOptions(spool)
	}
	srv, base := startServer(t, serve.Config{Catalog: filepath.Join(work, "catalog"), Keys: []*signing.Verifier{k.verifier},
		Clock: clock.now, DisableInotify: true, Spool: spool, ReportLimits: noLimits, Logger: log})
	return srv, base, clock, sc.Requests[1].Request
}

// reportLabel is a label of scenario 01, which reportsEdge serves.
const reportLabel = "3001"

// noLimits turns the per-device and per-network report limits off: the tests' reports all
// come from 127.0.0.1 at one instant of a fixed clock (TestReportLimits tests the limits).
var noLimits = serve.ReportLimits{PerDevice: -1, PerSource: -1}

// reportTokens issues the tokens an edge with reportSecret hands out.
var reportTokens, _ = rollout.NewReportTokens(reportSecret)

// reportIssued is when the tests' tokens were issued: the reports' time.
var reportIssued = time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC)

// reportToken is the token of an offer of label to device, as the tests' edges issue it.
func reportToken(device, label string) string {
	id, _ := strconv.ParseUint(label, 10, 64)
	return string(reportTokens.Append(nil, []byte(device), id, 1, reportIssued))
}

func reportJSON(device, result string) string {
	return fmt.Sprintf(`{"deviceId":%q,"labelId":"`+reportLabel+`","instanceId":"PCI\\VEN_8086&DEV_15F3\\3&11583659&0&FE","result":%q,"time":"2026-11-21T11:00:00Z","build":22631,"chid":"8DC9B7C5-F5D5-5850-9AB3-BD6F0549D814","reportToken":%q}`,
		device, result, reportToken(device, reportLabel))
}

// reportBatch is a request of MaxBatch reports from devices prefix0, prefix1, ….
func reportBatch(prefix string) []byte {
	var b strings.Builder
	b.WriteString("[")
	for i := range rollout.MaxBatch {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(reportJSON(fmt.Sprint(prefix, i), "installed"))
	}
	b.WriteString("]")
	return []byte(b.String())
}

// answer is a POST /v1/reports answer.
type answer struct {
	code       int
	retryAfter string
	body       []byte
	errCode    string // the error body's code
	message    string
	field      string
}

func postReports(t *testing.T, base string, body []byte) answer {
	t.Helper()
	resp, err := httpClient.Post(base+"/v1/reports", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST /v1/reports: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: b}
	var e struct {
		Error struct{ Code, Message, Field string } `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil {
		a.errCode, a.message, a.field = e.Error.Code, e.Error.Message, e.Error.Field
	}
	return a
}

// refused reports whether an answer is a proper refusal: 503, Retry-After, an error body
// naming the reason.
func (a answer) refused(reason string) bool {
	return a.code == 503 && a.retryAfter != "" && a.errCode == "unavailable" && strings.Contains(a.message, "("+reason+")")
}

// spoolOnDisk counts the complete lines of a spool directory's files, the empty files and
// the open ones.
func spoolOnDisk(t *testing.T, dir string) (lines, empty, open int) {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "reports-*"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			empty++
		}
		if strings.HasSuffix(p, ".open") {
			open++
		}
		lines += bytes.Count(b, []byte{'\n'})
	}
	return
}

// logRecorder keeps an edge's records ("LEVEL message") and passes them on to the test.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
	t    *testing.T
	done atomic.Bool
}

func newLogRecorder(t *testing.T) (*logRecorder, *slog.Logger) {
	l := &logRecorder{t: t}
	t.Cleanup(func() { l.done.Store(true) })
	return l, slog.New(l)
}

func (l *logRecorder) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelInfo
}
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Level.String()+" "+r.Message)
	if !l.done.Load() {
		var attrs strings.Builder
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&attrs, " %s=%v", a.Key, a.Value); return true })
		l.t.Logf("%s %s%s", r.Level, r.Message, attrs.String())
	}
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if strings.HasPrefix(r, level.String()+" ") && strings.Contains(r, msg) {
			n++
		}
	}
	return n
}

const (
	logCannotStore = "cannot store reports"
	logStoresAgain = "stores reports again"
)

// TestReports: reports are stored in the spool with the edge's receive time before the 202,
// bad ones are refused with offer's error shape and the field's pointer, the metrics agree
// with the files, and Shutdown closes the spool's file with everything in it.
func TestReports(t *testing.T) {
	dir := t.TempDir()
	srv, base, clock, _ := reportsEdge(t, rollout.SpoolOptions{Dir: dir})
	one := reportJSON("pc-1", "installed")
	batch := "[" + reportJSON("pc-2", "installed") + "," + reportJSON("pc-3", "kernel-crash-after-install") + "," + reportJSON("pc-4", "failed") + "]"
	written := 0
	for _, c := range []struct {
		body, want string
		n          int
	}{{one, `{"accepted":1}`, 1}, {batch, `{"accepted":3}`, 3}} {
		code, body := post(t, base+"/v1/reports", []byte(c.body))
		if code != 202 || strings.TrimSpace(string(body)) != c.want {
			t.Errorf("POST %.40s…: %d %s, want 202 %s", c.body, code, body, c.want)
		}
		written += c.n
		if lines, _, _ := spoolOnDisk(t, dir); lines != written { // a 202 means on disk, now
			t.Errorf("after a 202: %d lines on disk, want %d", lines, written)
		}
	}

	tooMany := "[" + strings.Repeat(one+",", rollout.MaxBatch) + one + "]"
	huge := `{"deviceId":"` + strings.Repeat("x", rollout.MaxBodySize) + `"}`
	cases := []struct {
		name, method, contentType, body string
		status                          int
		code, field, allow              string
	}{
		{"GET", "GET", "", "", 405, "method", "", "POST"},
		{"text", "POST", "text/plain", one, 415, "content-type", "", ""},
		{"not JSON", "POST", "application/json", "hello", 400, offer.CodeBadJSON, "", ""},
		{"bad result", "POST", "application/json", strings.Replace(one, "installed", "exploded", 1), 400, offer.CodeBadValue, "/result", ""},
		{"bad in batch", "POST", "application/json", "[" + one + `,{"deviceId":"pc"}]`, 400, offer.CodeMissing, "/1/instanceId", ""},
		{"received set", "POST", "application/json", strings.Replace(one, `"build"`, `"received":"2026-11-21T11:00:00Z","build"`, 1), 400, offer.CodeBadValue, "/received", ""},
		{"unknown member", "POST", "application/json", strings.Replace(one, `"build"`, `"colour":1,"build"`, 1), 400, offer.CodeBadValue, "/colour", ""},
		{"too many", "POST", "application/json", tooMany, 400, offer.CodeLimit, "", ""},
		{"too large", "POST", "application/json", huge, 413, "limit", "", ""},
	}
	invalid := 0
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, base+"/v1/reports", strings.NewReader(c.body))
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Error struct{ Code, Message, Field string } `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != c.status || e.Error.Code != c.code || e.Error.Field != c.field || e.Error.Message == "" {
			t.Errorf("%s: %d %s; want %d with code %q, field %q", c.name, resp.StatusCode, body, c.status, c.code, c.field)
		}
		if got := resp.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s: Allow %q, want %q", c.name, got, c.allow)
		}
		if c.status == 400 {
			invalid++
		}
	}
	for series, want := range map[string]float64{
		"driveway_edge_reports_accepted_total":                          4,
		"driveway_edge_reports_written_total":                           4,
		"driveway_edge_reports_invalid_total":                           float64(invalid),
		`driveway_edge_reports_refused_total{reason="queue"}`:           0,
		"driveway_edge_spool_storing":                                   1,
		`driveway_edge_requests_total{path="/v1/reports",status="202"}`: 2,
		`driveway_edge_requests_total{path="/v1/reports",status="400"}`: float64(invalid),
		`driveway_edge_requests_total{path="/v1/reports",status="405"}`: 1,
		`driveway_edge_requests_total{path="/v1/reports",status="413"}`: 1,
		`driveway_edge_requests_total{path="/v1/reports",status="415"}`: 1,
	} {
		if got := metric(t, base, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(string(body), "spool: storing reports") {
		t.Errorf("/readyz: %d %s", code, body)
	}

	// Shutdown closes the file.
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if open, _ := filepath.Glob(filepath.Join(dir, "*.open")); len(open) != 0 {
		t.Errorf("spool files still open after Shutdown: %v", open)
	}
	var got []rollout.Report
	st, err := rollout.ReadSpools([]string{dir}, func(r *rollout.Report) { got = append(got, *r) })
	if err != nil || len(got) != 4 || st.Torn+st.Invalid != 0 || st.Files != 1 {
		t.Fatalf("spool: %d reports, %+v, %v; want 4 in 1 file", len(got), st, err)
	}
	for i, r := range got {
		if r.DeviceID != rollout.Pseudonym(reportSecret, fmt.Sprint("pc-", i+1)) || !r.Received.Equal(clock.now()) ||
			r.CHID != "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814" || r.Build != 22631 || r.InstanceID != "" {
			t.Errorf("spooled report %d: %+v", i, r)
		}
	}
}

// TestReportsDisabled: an edge without a spool answers 404 and says how to enable reports.
func TestReportsDisabled(t *testing.T) {
	_, base, _, _ := reportsEdge(t, rollout.SpoolOptions{})
	code, body := post(t, base+"/v1/reports", []byte(reportJSON("pc-1", "installed")))
	if code != 404 || !bytes.Contains(body, []byte(`"code":"not-found"`)) || !bytes.Contains(body, []byte("--spool DIR")) {
		t.Errorf("POST /v1/reports without a spool: %d %s", code, body)
	}
	if v := metric(t, base, "driveway_edge_reports_accepted_total"); v != -1 {
		t.Errorf("report metrics exposed without a spool: %v", v)
	}
}

// TestReportsNoRelease: before any release is loaded there is nothing to check labels
// against: 503 with Retry-After, not a 202 nor a 400.
func TestReportsNoRelease(t *testing.T) {
	k := newKey(t)
	clock := newClock(mustTime(t, "2026-11-21T12:00:00Z"))
	_, base := startServer(t, serve.Config{Catalog: t.TempDir(), Keys: []*signing.Verifier{k.verifier}, Clock: clock.now, DisableInotify: true,
		Spool: testSpoolOptions(rollout.SpoolOptions{Dir: t.TempDir()}), ReportLimits: noLimits})
	a := postReports(t, base, []byte(reportJSON("pc-1", "installed")))
	if a.code != 503 || a.retryAfter == "" || !strings.Contains(a.message, "no verified release") {
		t.Errorf("a report before any release: %d Retry-After %q %s", a.code, a.retryAfter, a.body)
	}
	if v := metric(t, base, `driveway_edge_report_requests_refused_total{reason="no-release"}`); v != 1 {
		t.Errorf("refused{no-release} = %v", v)
	}
}

// hammerReports posts batches from 4 clients, counting answers by status, while fn runs;
// fn is given a function that tells how many report posts were answered since fn began.
// It returns that number at fn's end and the counts.
func hammerReports(t *testing.T, base string, fn func(answeredSince func() int64)) (during int64, byStatus map[int]int64) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	body := reportBatch("pc-")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var posts atomic.Int64
	var mu sync.Mutex
	byStatus = map[int]int64{}
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Post(base+"/v1/reports", "application/json", bytes.NewReader(body))
				if err != nil {
					t.Errorf("POST /v1/reports: %v", err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
					t.Errorf("a 503 without Retry-After")
				}
				mu.Lock()
				byStatus[resp.StatusCode]++
				mu.Unlock()
				posts.Add(1)
			}
		})
	}
	for k := 0; posts.Load() == 0; k++ {
		if k > 1e7 {
			t.Fatal("no report request was answered")
		}
		runtime.Gosched()
	}
	before := posts.Load()
	fn(func() int64 { return posts.Load() - before })
	during = posts.Load() - before
	close(stop)
	wg.Wait()
	return during, byStatus
}

// offersDuring asks for at least n offers and checks each is answered; it goes on until
// at least minReports report posts were answered since it began (so the two interleave
// however fast offers are), and gives up after maxOffersDuring offers, which the caller's
// count of answered reports then shows.
func offersDuring(t *testing.T, base string, offerReq []byte, n int, reportsAnswered func() int64) (sent int) {
	const minReports, maxOffersDuring = 8, 20000
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	i := 0
	for ; i < maxOffersDuring && (i < n || reportsAnswered() < minReports); i++ {
		resp, err := client.Post(base+"/v1/offers", "application/json", bytes.NewReader(offerReq))
		if err != nil {
			t.Fatalf("offer %d while reports are hammered: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"offers":[{`)) {
			t.Fatalf("offer %d while reports are hammered: %d %.200s", i, resp.StatusCode, b)
		}
	}
	return i
}

// TestReportsNeverBlockOffers hammers POST /v1/reports while the spool's disk refuses every
// write (its directory replaced by a file): reports are answered 503 with Retry-After, none
// is counted as written, and offers keep being answered in between. Nothing is timed but
// the client's 10 s timeout, which only a blocked offer reaches.
func TestReportsNeverBlockOffers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	_, base, _, offerReq := reportsEdge(t, rollout.SpoolOptions{Dir: dir, Queue: 64})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory: every spool file create fails\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	offers := 0
	during, byStatus := hammerReports(t, base, func(answered func() int64) { offers = offersDuring(t, base, offerReq, 50, answered) })
	t.Logf("%d offers; %d report requests during them; answers %v", offers, during, byStatus)
	if during < 8 {
		t.Errorf("%d report requests were answered while the offers ran (20,000 at most): the two did not interleave", during)
	}
	if byStatus[202] != 0 || byStatus[503] == 0 || len(byStatus) != 1 {
		t.Errorf("answers %v to reports a spool cannot store: want only 503s", byStatus)
	}
	if w := metric(t, base, "driveway_edge_reports_written_total"); w != 0 {
		t.Errorf("%v reports written to a spool that cannot create files", w)
	}
	refused := metric(t, base, `driveway_edge_report_requests_refused_total{reason="missing"}`) + metric(t, base, `driveway_edge_report_requests_refused_total{reason="queue"}`)
	if refused != float64(byStatus[503]) {
		t.Errorf("refused requests counted %v, answered %d", refused, byStatus[503])
	}
}

// TestReportsStuckDiskNeverBlocksOffers: a spool whose file creation hangs (a dead NFS
// server): report requests wait at most AckTimeout, at most MaxWaiting of them at once
// (the rest are refused at once), and offers keep being answered meanwhile.
func TestReportsStuckDiskNeverBlocksOffers(t *testing.T) {
	stuck := make(chan struct{})
	_, base, _, offerReq := reportsEdge(t, rollout.SpoolOptions{Dir: t.TempDir(), MaxWaiting: 2, AckTimeout: 50 * time.Millisecond,
		Create: func(p string) (io.WriteCloser, error) {
			<-stuck
			return os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
		}})
	t.Cleanup(func() { close(stuck) }) // before the edge shuts down (cleanups run last first)
	offers := 0
	during, byStatus := hammerReports(t, base, func(answered func() int64) { offers = offersDuring(t, base, offerReq, 50, answered) })
	t.Logf("%d offers; %d report requests during them; answers %v", offers, during, byStatus)
	if during < 8 || byStatus[202] != 0 || byStatus[503] == 0 {
		t.Errorf("answers %v (%d during the offers): want 503s only, interleaved with the offers", byStatus, during)
	}
	if metric(t, base, `driveway_edge_report_requests_refused_total{reason="timeout"}`) == 0 ||
		metric(t, base, `driveway_edge_report_requests_refused_total{reason="queue"}`) == 0 {
		t.Errorf("want both timeouts and queue refusals with 2 waiting requests at most")
	}
}

// TestReportsAllocs bounds what one report costs the handler (decoding, spooling, waiting
// for the commit; the offer path stays at its own budget).
func TestReportsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	srv, _, _, _ := reportsEdge(t, rollout.SpoolOptions{Dir: t.TempDir()})
	h := srv.Handler()
	body := []byte(reportJSON("pc-1", "installed"))
	var ctx fasthttp.RequestCtx
	n := testing.AllocsPerRun(200, func() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/v1/reports")
		ctx.Request.Header.SetContentType("application/json")
		ctx.Request.SetBody(body)
		h(&ctx)
		if ctx.Response.StatusCode() != 202 {
			t.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	})
	t.Logf("%.0f allocations per report", n)
	if n > 60 {
		t.Errorf("one report costs %.0f allocations; want at most 60", n)
	}
}

// TestReportsSpoolDirDeleted (issue 14: the spool directory deleted while serving; before:
// 202 {"dropped":0} for reports written into the unlinked file, no log line): every report
// after the deletion is refused with 503 and Retry-After, the episode is logged once and
// shown by /readyz and spool_storing; when the directory is back, reports are stored again
// (logged), and what is on disk is what was acknowledged.
func TestReportsSpoolDirDeleted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	logs, log := newLogRecorder(t)
	srv, base, _, _ := reportsEdgeLog(t, rollout.SpoolOptions{Dir: dir}, log)
	if a := postReports(t, base, reportBatch("a")); a.code != 202 {
		t.Fatalf("%d %s", a.code, a.body)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if a := postReports(t, base, reportBatch(fmt.Sprint("b", i, "-"))); !a.refused(rollout.ReasonMissing) || a.retryAfter != "60" {
			t.Errorf("report %d into a deleted spool directory: %d Retry-After %q %s", i, a.code, a.retryAfter, a.body)
		}
	}
	if n := logs.count(slog.LevelError, logCannotStore); n != 1 {
		t.Errorf("%d error lines for the episode, want 1", n)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(string(body), "spool: refusing reports") || !strings.Contains(string(body), "missing") {
		t.Errorf("/readyz with the spool directory gone: %d %s (readiness is about offers; the detail tells)", code, body)
	}
	if v := metric(t, base, "driveway_edge_spool_storing"); v != 0 {
		t.Errorf("spool_storing %v", v)
	}
	if v := metric(t, base, `driveway_edge_reports_refused_total{reason="missing"}`); v != 10*rollout.MaxBatch {
		t.Errorf("refused{missing} %v", v)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if a := postReports(t, base, reportBatch("c")); a.code != 202 {
		t.Errorf("after the directory is back: %d %s", a.code, a.body)
	}
	if n := logs.count(slog.LevelInfo, logStoresAgain); n != 1 || metric(t, base, "driveway_edge_spool_storing") != 1 {
		t.Errorf("%d recovery lines", n)
	}
	written := metric(t, base, "driveway_edge_reports_written_total")
	srv.Shutdown(t.Context())
	if lines, _, open := spoolOnDisk(t, dir); lines != rollout.MaxBatch || open != 0 || written != 2*rollout.MaxBatch {
		t.Errorf("%d lines on disk (%d open files), written_total %v: want the %d reports after the directory came back (and the %d before it went)",
			lines, open, written, rollout.MaxBatch, rollout.MaxBatch)
	}
}

// roFile is a spool file on a file system that can be made read-only.
type roFile struct {
	*os.File
	ro *atomic.Bool
}

func (f *roFile) Write(p []byte) (int, error) {
	if f.ro.Load() {
		return 0, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.EROFS}
	}
	return f.File.Write(p)
}

// TestReportsSpoolReadOnly (issue 14: a read-only spool directory; before: 202s, dropped
// rising, the .open file never renamed, no log, /readyz silent): while the file system
// refuses writes, reports get 503 and Retry-After, the episode is logged once and shown in
// /readyz; a file that could not be renamed keeps being retried and gets its final name when
// the file system is back; on disk is exactly what was acknowledged.
func TestReportsSpoolReadOnly(t *testing.T) {
	dir := t.TempDir()
	var ro atomic.Bool
	erofs := func(op, p string) error { return &fs.PathError{Op: op, Path: p, Err: syscall.EROFS} }
	logs, log := newLogRecorder(t)
	srv, base, clock, _ := reportsEdgeLog(t, rollout.SpoolOptions{Dir: dir,
		Create: func(p string) (io.WriteCloser, error) {
			if ro.Load() {
				return nil, erofs("open", p)
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return nil, err
			}
			return &roFile{f, &ro}, nil
		},
		Rename: func(from, to string) error {
			if ro.Load() {
				return erofs("rename", from)
			}
			return os.Rename(from, to)
		}}, log)
	acked := 0
	if a := postReports(t, base, reportBatch("a")); a.code == 202 {
		acked += rollout.MaxBatch
	}
	ro.Store(true)
	for i := range 5 {
		if a := postReports(t, base, reportBatch(fmt.Sprint("b", i, "-"))); !a.refused(rollout.ReasonReadOnly) {
			t.Errorf("report %d to a read-only spool: %d %q %s", i, a.code, a.retryAfter, a.body)
		}
	}
	clock.add(time.Hour) // the file is due for rotation: its rename fails too
	if a := postReports(t, base, reportBatch("c")); !a.refused(rollout.ReasonReadOnly) {
		t.Errorf("report after rotation on a read-only spool: %d %s", a.code, a.body)
	}
	if n := logs.count(slog.LevelError, logCannotStore); n != 1 {
		t.Errorf("%d error lines for the episode, want 1", n)
	}
	if logs.count(slog.LevelError, "keeps its .open name") != 1 {
		t.Errorf("the failed rename was not logged")
	}
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(string(body), "refusing reports") || !strings.Contains(string(body), "read-only") {
		t.Errorf("/readyz: %d %s", code, body)
	}
	ro.Store(false)
	if a := postReports(t, base, reportBatch("d")); a.code == 202 {
		acked += rollout.MaxBatch
	} else {
		t.Errorf("after the file system is writable again: %d %s", a.code, a.body)
	}
	waitFor(t, 10*time.Second, "the rotated file's rename to be retried", func() bool {
		open, _ := filepath.Glob(filepath.Join(dir, "*.open"))
		return len(open) == 1 // only the current one
	})
	if logs.count(slog.LevelInfo, logStoresAgain) != 1 {
		t.Errorf("the recovery was not logged")
	}
	written := metric(t, base, "driveway_edge_reports_written_total")
	srv.Shutdown(t.Context())
	if lines, _, open := spoolOnDisk(t, dir); lines != acked || written != float64(acked) || open != 0 {
		t.Errorf("acknowledged %d, on disk %d (%d files open), written_total %v", acked, lines, open, written)
	}
}

// budgetFile is a real spool file on a disk with a shared byte budget: a write beyond it
// writes what fits and fails with ENOSPC, as a full file system does.
type budgetFile struct {
	*os.File
	left *atomic.Int64
}

func (f *budgetFile) Write(p []byte) (int, error) {
	if f.left.Add(-int64(len(p))) >= 0 {
		return f.File.Write(p)
	}
	f.left.Add(int64(len(p)))
	fit := max(0, f.left.Swap(0))
	n, _ := f.File.Write(p[:fit])
	return n, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
}

// TestReportsDiskFull (issue 14: a full disk; before: 202 for all 12,800, written_total 0
// while thousands of lines were on disk, empty files, no log): every report is acknowledged
// and on disk, or refused with 503 and Retry-After; the answers, the lines on disk and
// written_total agree; no empty files; one log line for the episode, one when space is back.
func TestReportsDiskFull(t *testing.T) {
	dir := t.TempDir()
	var left atomic.Int64
	left.Store(1 << 20)
	logs, log := newLogRecorder(t)
	srv, base, _, _ := reportsEdgeLog(t, rollout.SpoolOptions{Dir: dir, MaxFileBytes: 256 << 10, Create: func(p string) (io.WriteCloser, error) {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		return &budgetFile{f, &left}, nil
	}}, log)
	acked, refused := 0, 0
	for i := range 200 {
		switch a := postReports(t, base, reportBatch(fmt.Sprint("pc-", i, "-"))); {
		case a.code == 202:
			acked += rollout.MaxBatch
		case a.refused(rollout.ReasonDiskFull):
			refused += rollout.MaxBatch
		default:
			t.Fatalf("request %d: %d %q %s", i, a.code, a.retryAfter, a.body)
		}
	}
	lines, empty, _ := spoolOnDisk(t, dir)
	written := metric(t, base, "driveway_edge_reports_written_total")
	t.Logf("12800 reports: %d acknowledged, %d refused; %d lines on disk, written_total %v, %d empty files", acked, refused, lines, written, empty)
	if acked == 0 || refused == 0 || lines != acked || written != float64(acked) || empty != 0 ||
		metric(t, base, "driveway_edge_reports_accepted_total") != float64(acked) ||
		metric(t, base, `driveway_edge_reports_refused_total{reason="disk-full"}`) != float64(refused) {
		t.Errorf("acknowledged %d, refused %d, on disk %d, written_total %v, %d empty files: all must agree", acked, refused, lines, written, empty)
	}
	if n := logs.count(slog.LevelError, logCannotStore); n != 1 {
		t.Errorf("%d error lines for one disk-full episode, want 1", n)
	}
	if _, body := get(t, base+"/readyz"); !strings.Contains(string(body), "disk-full") {
		t.Errorf("/readyz: %s", body)
	}
	left.Store(1 << 20) // space again
	if a := postReports(t, base, reportBatch("after")); a.code != 202 {
		t.Errorf("after space is back: %d %s", a.code, a.body)
	}
	if logs.count(slog.LevelInfo, logStoresAgain) != 1 {
		t.Errorf("the recovery was not logged")
	}
	srv.Shutdown(t.Context())
	if lines, empty, open := spoolOnDisk(t, dir); lines != acked+rollout.MaxBatch || empty+open != 0 {
		t.Errorf("%d lines, %d empty and %d open files after shutdown", lines, empty, open)
	}
}

// TestReportsKilledEdge (issue 14: kill -9; before: the orphaned .open file was never
// renamed, so shippers never took it): an edge in a child process takes reports from four
// clients and is killed with SIGKILL mid-stream; the next edge on the same spool closes the
// file out (a torn last line cut), and every report acknowledged before the kill is in a
// file the shippers' reports-*.ndjson glob takes.
func TestReportsKilledEdge(t *testing.T) {
	if os.Getenv("DRIVEWAY_CHILD_EDGE") != "" {
		childEdge()
		return
	}
	k := newKey(t)
	sc := conformance.LoadOne(t, "01-forward-and-floor.json")
	work := t.TempDir()
	conformance.WriteTree(t, filepath.Join(work, "labels"), sc.Labels)
	now := mustTime(t, sc.Now)
	catalog, spool := filepath.Join(work, "catalog"), filepath.Join(work, "spool")
	buildRelease(t, filepath.Join(work, "labels"), catalog, k, now, 0)
	cmd := exec.Command(os.Args[0], "-test.run=^TestReportsKilledEdge$")
	cmd.Env = append(os.Environ(), "DRIVEWAY_CHILD_EDGE=1", "CHILD_PUB="+k.pub, "CHILD_NOW="+sc.Now, "CHILD_CATALOG="+catalog, "CHILD_SPOOL="+spool)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc1 := bufio.NewScanner(stdout)
	addr := ""
	for sc1.Scan() {
		if a, ok := strings.CutPrefix(sc1.Text(), "listening "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the child edge did not start")
	}
	base := "http://" + addr
	var mu sync.Mutex
	var ackedDevices []string
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				prefix := fmt.Sprintf("c%d-%d-", c, i)
				resp, err := client.Post(base+"/v1/reports", "application/json", bytes.NewReader(reportBatch(prefix)))
				if err != nil {
					return // the edge was killed
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 202 {
					mu.Lock()
					for k := range rollout.MaxBatch {
						ackedDevices = append(ackedDevices, fmt.Sprint(prefix, k))
					}
					mu.Unlock()
					acked.Add(rollout.MaxBatch)
				}
			}
		})
	}
	for k := 0; acked.Load() < 50*rollout.MaxBatch; k++ {
		if k > 1e8 {
			t.Fatal("the child edge acknowledged too few reports")
		}
		runtime.Gosched()
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	close(stop)
	wg.Wait()
	before, _ := filepath.Glob(filepath.Join(spool, "*.open"))

	// The next edge on the same spool.
	clock := newClock(now)
	_, base2 := startServer(t, serve.Config{Catalog: catalog, Keys: []*signing.Verifier{k.verifier}, Clock: clock.now, DisableInotify: true,
		Spool: testSpoolOptions(rollout.SpoolOptions{Dir: spool}), ReportLimits: noLimits})
	if open, _ := filepath.Glob(filepath.Join(spool, "*.open")); len(open) != 0 || len(before) != 1 {
		t.Errorf("open files: %d left by the kill, %d after the restart; want 1 and 0", len(before), len(open))
	}
	if v := metric(t, base2, "driveway_edge_spool_files_recovered_total"); v != 1 {
		t.Errorf("spool_files_recovered_total %v", v)
	}
	shipped, _ := filepath.Glob(filepath.Join(spool, "reports-*.ndjson")) // what the documented globs take
	seen := map[string]bool{}
	var torn int
	for _, p := range shipped {
		s, err := rollout.ReadSpools([]string{p}, func(r *rollout.Report) { seen[r.DeviceID] = true })
		if err != nil {
			t.Fatal(err)
		}
		torn += s.Torn + s.Invalid
	}
	missing := 0
	for _, d := range ackedDevices {
		if !seen[rollout.Pseudonym(reportSecret, d)] {
			missing++
		}
	}
	t.Logf("%d reports acknowledged before SIGKILL; %d in %d shippable files after the restart", len(ackedDevices), len(seen), len(shipped))
	if missing != 0 || torn != 0 {
		t.Errorf("%d of %d acknowledged reports missing from reports-*.ndjson, %d torn or invalid lines", missing, len(ackedDevices), torn)
	}
}

// childEdge is the edge TestReportsKilledEdge kills: it serves until it is killed.
func childEdge() {
	v, err := signing.LoadVerifier(os.Getenv("CHILD_PUB"))
	if err != nil {
		os.Exit(3)
	}
	now, _ := time.Parse(time.RFC3339, os.Getenv("CHILD_NOW"))
	srv, err := serve.New(serve.Config{Catalog: os.Getenv("CHILD_CATALOG"), Keys: []*signing.Verifier{v}, Clock: func() time.Time { return now },
		DisableInotify: true, Spool: testSpoolOptions(rollout.SpoolOptions{Dir: os.Getenv("CHILD_SPOOL")}), ReportLimits: noLimits})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(3)
	}
	fmt.Println("listening", ln.Addr().String())
	srv.Serve(ln)
	os.Exit(0)
}

// du is the bytes of the regular files under dir.
func du(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// TestReportsFloodKeepsRoomForReleases (issue 14: a report flood filled the disk the release
// cache is on, and the edge could not store the release that cancelled a bad driver): an
// origin edge whose cache and spool share one disk (its size simulated through the spool's
// Statfs hook over the real files) is flooded with reports; the spool stops at the reserve,
// and the next release still fits and is served.
func TestReportsFloodKeepsRoomForReleases(t *testing.T) {
	k := newKey(t)
	sc := conformance.LoadOne(t, "01-forward-and-floor.json")
	now := mustTime(t, sc.Now)
	work := t.TempDir()
	conformance.WriteTree(t, filepath.Join(work, "labels"), sc.Labels)
	root := filepath.Join(work, "origin")
	buildRelease(t, filepath.Join(work, "labels"), root, k, now, 0)
	origin := httptest.NewServer(http.FileServer(http.Dir(root)))
	defer origin.Close()
	disk := filepath.Join(work, "disk")
	cache, spool := filepath.Join(disk, "cache"), filepath.Join(disk, "spool")
	var capacity atomic.Int64
	capacity.Store(1 << 40) // until the first release is in
	const reserve = 512 << 10
	statfs := func(string) (uint64, uint64, error) {
		c := capacity.Load()
		return uint64(max(0, c-du(disk))), uint64(c), nil
	}
	clock := newClock(now)
	_, base := startServer(t, serve.Config{Origin: origin.URL, Cache: cache, Keys: []*signing.Verifier{k.verifier}, Clock: clock.now,
		Poll: 20 * time.Millisecond, Spool: testSpoolOptions(rollout.SpoolOptions{Dir: spool, Statfs: statfs, MinFreeBytes: reserve, MinFreePercent: -1}), ReportLimits: noLimits})
	waitFor(t, 10*time.Second, "release 1", func() bool { return releaseSeq(t, base) == 1 })
	capacity.Store(du(disk) + 2<<20) // 2 MiB left on the disk
	byStatus := map[int]int{}
	for i := range 200 { // 4 MiB of reports
		a := postReports(t, base, reportBatch(fmt.Sprint("f", i, "-")))
		byStatus[a.code]++
		if a.code != 202 && !a.refused(rollout.ReasonReserve) {
			t.Fatalf("report %d: %d %s", i, a.code, a.body)
		}
	}
	t.Logf("flood answers %v; the spool holds %d bytes, the cache %d, the disk %d", byStatus, du(spool), du(cache), capacity.Load())
	if byStatus[503] == 0 {
		t.Errorf("the flood was never refused: %v", byStatus)
	}
	// The release that cancels the bad driver (a new release of the catalog).
	buildRelease(t, filepath.Join(work, "labels"), root, k, now.Add(time.Minute), 0)
	waitFor(t, 10*time.Second, "release 2", func() bool { return releaseSeq(t, base) == 2 })
	if used := du(disk); used > capacity.Load() {
		t.Errorf("the cache and the spool hold %d bytes on a disk of %d: the release would not have fit", used, capacity.Load())
	}
}

// TestReportsStrictInput (issue 14: duplicate keys, invalid UTF-8, unknown labelIds, times in
// 1970 or 2099, an instanceId with a newline were all accepted): each is a 400 with the
// pointer of the offending field and a message that says what is wrong, against the release
// the edge serves and its clock.
func TestReportsStrictInput(t *testing.T) {
	dir := t.TempDir()
	_, base, _, _ := reportsEdge(t, rollout.SpoolOptions{Dir: dir})
	one := reportJSON("pc-1", "installed")
	with := func(old, new string) []byte { return []byte(strings.Replace(one, old, new, 1)) }
	for _, c := range []struct {
		name        string
		body        []byte
		code, field string
		msg         string
	}{
		{"duplicate key", with(`"result":"installed"`, `"result":"installed","result":"failed"`), offer.CodeBadJSON, "/result", "duplicate member"},
		{"invalid UTF-8", with(`"pc-1"`, "\"pc-\xff1\""), offer.CodeBadValue, "/deviceId", "not valid UTF-8"},
		{"unknown labelId", with(`"labelId":"`+reportLabel+`"`, `"labelId":"3999"`), offer.CodeBadValue, "/labelId", "not a label of the release this edge serves"},
		{"time in 1970", with("2026-11-21T11:00:00Z", "1970-01-01T00:00:00Z"), offer.CodeBadValue, "/time", "before the edge's clock"},
		{"time in 2099", with("2026-11-21T11:00:00Z", "2099-01-01T00:00:00Z"), offer.CodeBadValue, "/time", "ahead of the edge's clock"},
		{"instanceId with a newline", with(`3&11583659&0&FE`, `3&11583659\n&0&FE`), offer.CodeBadValue, "/instanceId", "control character U+000A"},
		{"control character", with(`"pc-1"`, `"pc-\u001b[31m"`), offer.CodeBadValue, "/deviceId", "control character U+001B"},
		{"unknown member", with(`"build"`, `"serial":"X1","build"`), offer.CodeBadValue, "/serial", "unknown member"},
	} {
		a := postReports(t, base, c.body)
		if a.code != 400 || a.errCode != c.code || a.field != c.field || !strings.Contains(a.message, c.msg) {
			t.Errorf("%s: %d %s; want 400 %s at %s saying %q", c.name, a.code, bytes.TrimSpace(a.body), c.code, c.field, c.msg)
		}
	}
	if lines, _, _ := spoolOnDisk(t, dir); lines != 0 {
		t.Errorf("%d refused reports on disk", lines)
	}
	if a := postReports(t, base, []byte(one)); a.code != 202 {
		t.Errorf("the good report: %d %s", a.code, a.body)
	}
}

// TestReportsPrivacy: what the spool keeps of a report is a keyed pseudonym of the device id
// (the same on every edge with the fleet's secret, so measures count one machine across
// edges), never the id, the instance id or the error code.
func TestReportsPrivacy(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	srvA, baseA, _, _ := reportsEdge(t, rollout.SpoolOptions{Dir: a})
	srvB, baseB, _, _ := reportsEdge(t, rollout.SpoolOptions{Dir: b})
	const device = "b7e1c0de-5d1e-4c0a-9f55-6a3e2f0d9b11"
	report := strings.Replace(reportJSON(device, "installed"), `"build"`, `"errorCode":"0x0000009F","build"`, 1)
	if r := postReports(t, baseA, []byte(report)); r.code != 202 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	if r := postReports(t, baseB, []byte(strings.Replace(report, `"installed"`, `"kernel-crash-after-install"`, 1))); r.code != 202 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	srvA.Shutdown(t.Context())
	srvB.Shutdown(t.Context())
	var all []byte
	for _, dir := range []string{a, b} {
		paths, _ := filepath.Glob(filepath.Join(dir, "reports-*"))
		for _, p := range paths {
			data, _ := os.ReadFile(p)
			all = append(all, data...)
		}
	}
	for _, kept := range []string{device, "3&11583659&0&FE", "VEN_8086", "0x0000009F", reportToken(device, reportLabel), "127.0.0"} {
		if bytes.Contains(all, []byte(kept)) {
			t.Errorf("the spool keeps %q:\n%s", kept, all)
		}
	}
	if bytes.Count(all, []byte(rollout.Pseudonym(reportSecret, device))) != 2 {
		t.Errorf("the device's pseudonym is not in both edges' lines:\n%s", all)
	}
	ms, err := rollout.MeasureSpools([]string{a, b}, rollout.MeasureOptions{}, mustTime(t, "2026-11-21T12:00:00Z"))
	lm, ok := ms.Label(reportLabel)
	if err != nil || !ok || lm.Machines != 1 || lm.KernelCrash != 1 {
		t.Errorf("measures over both edges: %+v, %v; want 1 machine, with a kernel crash", lm, err)
	}
}
