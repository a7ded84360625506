package serve_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/rollout"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
)

// reportsEdge serves conformance scenario 01 with a spool (none when spool.Dir is empty). It
// returns the server, its base URL, its clock and an offer request that gets offers.
func reportsEdge(t *testing.T, spool rollout.SpoolOptions) (*serve.Server, string, *fixedClock, []byte) {
	t.Helper()
	k := newKey(t)
	sc := loadScenario(t, "01-forward-and-floor.json")
	work := t.TempDir()
	writeLabels(t, filepath.Join(work, "labels"), sc.Labels)
	now := mustTime(t, sc.Now)
	buildRelease(t, filepath.Join(work, "labels"), filepath.Join(work, "catalog"), k, now, 0)
	clock := newClock(now)
	srv, base := startServer(t, serve.Config{Catalog: filepath.Join(work, "catalog"), Keys: []*signing.Verifier{k.verifier},
		Clock: clock.now, DisableInotify: true, Spool: spool})
	return srv, base, clock, sc.Requests[1].Request
}

func reportJSON(device, result string) string {
	return fmt.Sprintf(`{"deviceId":%q,"labelId":"1152921504606978202","instanceId":"PCI\\VEN_8086&DEV_15F3\\3&11583659&0&FE","result":%q,"time":"2026-11-21T11:00:00Z","build":22631,"chid":"8DC9B7C5-F5D5-5850-9AB3-BD6F0549D814"}`, device, result)
}

// TestReports: reports are accepted into the spool with the edge's receive time, bad ones
// are refused with offer's error shape and the field's pointer, and Shutdown closes the
// spool's file with everything in it.
func TestReports(t *testing.T) {
	dir := t.TempDir()
	srv, base, clock, _ := reportsEdge(t, rollout.SpoolOptions{Dir: dir})
	one := reportJSON("pc-1", "installed")
	batch := "[" + reportJSON("pc-2", "installed") + "," + reportJSON("pc-3", "kernel-crash-after-install") + "," + reportJSON("pc-4", "failed") + "]"
	for _, c := range []struct {
		body, want string
	}{{one, `{"accepted":1,"dropped":0}`}, {batch, `{"accepted":3,"dropped":0}`}} {
		code, body := post(t, base+"/v1/reports", []byte(c.body))
		if code != 202 || strings.TrimSpace(string(body)) != c.want {
			t.Errorf("POST %.40s…: %d %s, want 202 %s", c.body, code, body, c.want)
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
		{"unknown member", "POST", "application/json", strings.Replace(one, `"build"`, `"colour":1,"build"`, 1), 400, offer.CodeBadValue, "", ""},
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
		"driveway_edge_reports_invalid_total":                           float64(invalid),
		`driveway_edge_reports_dropped_total{reason="queue"}`:           0,
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

	// Shutdown writes what is queued and closes the file.
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
		if r.DeviceID != fmt.Sprint("pc-", i+1) || !r.Received.Equal(clock.now()) || r.CHID != "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814" || r.Build != 22631 {
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

// TestReportsNeverBlockOffers hammers POST /v1/reports while the spool's disk refuses every
// write (its directory replaced by a file) and its queue is tiny: reports are answered at
// once and dropped (counted), and offers keep being answered in between.
func TestReportsNeverBlockOffers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	_, base, _, offerReq := reportsEdge(t, rollout.SpoolOptions{Dir: dir, Queue: 64, SyncEvery: time.Millisecond})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory: every spool file create fails\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var batch strings.Builder
	batch.WriteString("[")
	for i := range rollout.MaxBatch {
		if i > 0 {
			batch.WriteString(",")
		}
		batch.WriteString(reportJSON(fmt.Sprint("pc-", i), "installed"))
	}
	batch.WriteString("]")
	body := []byte(batch.String())

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent, accepted, dropped, posts atomic.Int64
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
				var r struct{ Accepted, Dropped int64 }
				err = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				if resp.StatusCode != 202 || err != nil {
					t.Errorf("POST /v1/reports: %d %v", resp.StatusCode, err)
					return
				}
				sent.Add(rollout.MaxBatch)
				accepted.Add(r.Accepted)
				dropped.Add(r.Dropped)
				posts.Add(1)
			}
		})
	}
	// The offers interleave with the reports: a fixed number of them, each answered while
	// report requests keep being answered around it. Nothing is timed but the client's
	// 10 s timeout, which only a blocked offer reaches.
	for posts.Load() == 0 {
		runtime.Gosched()
	}
	const offers = 50
	postsBefore := posts.Load()
	for i := range offers {
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
	postsDuring := posts.Load() - postsBefore
	close(stop)
	wg.Wait()
	t.Logf("%d offers; %d report requests during them, %d in all (%d reports: %d queued, %d dropped at the queue)",
		offers, postsDuring, posts.Load(), sent.Load(), accepted.Load(), dropped.Load())
	if postsDuring == 0 {
		t.Errorf("no report request was answered while the %d offers ran: the two did not interleave", offers)
	}
	// Every report is accounted for: queued ones end up written or dropped at the disk.
	waitFor(t, 5*time.Second, "the spool writer to drain its queue", func() bool {
		return metric(t, base, `driveway_edge_reports_dropped_total{reason="disk"}`)+metric(t, base, "driveway_edge_reports_written_total") == float64(accepted.Load())
	})
	if got := metric(t, base, "driveway_edge_reports_accepted_total"); got != float64(accepted.Load()) {
		t.Errorf("accepted metric %v, answers said %d", got, accepted.Load())
	}
	if got := metric(t, base, `driveway_edge_reports_dropped_total{reason="queue"}`); got != float64(dropped.Load()) {
		t.Errorf("queue-dropped metric %v, answers said %d", got, dropped.Load())
	}
	if w := metric(t, base, "driveway_edge_reports_written_total"); w != 0 {
		t.Errorf("%v reports written to a spool that cannot create files", w)
	}
}

// TestReportsAllocs bounds what one report costs the handler (decoding and spooling; the
// offer path stays at its own budget).
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
