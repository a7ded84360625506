package serve_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/rollout"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
)

// offeredTokens asks base for offers with req and returns each offer's label and token.
func offeredTokens(t *testing.T, base string, req []byte) (deviceID string, offers []struct{ LabelID, ReportToken string }) {
	t.Helper()
	code, body := post(t, base+"/v1/offers", req)
	var r struct {
		Offers []struct{ LabelID, ReportToken string } `json:"offers"`
	}
	if err := json.Unmarshal(body, &r); code != 200 || err != nil || len(r.Offers) == 0 {
		t.Fatalf("offers: %d %s (%v); want offers", code, body, err)
	}
	var q struct{ DeviceID string }
	json.Unmarshal(req, &q)
	return q.DeviceID, r.Offers
}

// reportOn is a report of result on label by device with token.
func reportOn(device, label, result, token string) string {
	r := strings.Replace(reportJSON(device, result), `"labelId":"`+reportLabel+`"`, `"labelId":"`+label+`"`, 1)
	return strings.Replace(r, reportToken(device, reportLabel), token, 1)
}

// TestReportsBoundToOffers (issue 14, the first rows: made-up kernel-crash reports for
// someone else's label cancelled it): an edge puts a report token in every offer, and takes
// a report only with the token of an offer of that label to that device, unexpired. Against
// e7fbced the forged batches below were all answered 202 and spooled.
func TestReportsBoundToOffers(t *testing.T) {
	dir := t.TempDir()
	_, base, clock, offerReq := reportsEdge(t, rollout.SpoolOptions{Dir: dir})
	device, offers := offeredTokens(t, base, offerReq)
	for _, o := range offers {
		if len(o.ReportToken) != rollout.TokenLen {
			t.Fatalf("offer of %s: reportToken %q", o.LabelID, o.ReportToken)
		}
	}
	label, token := offers[0].LabelID, offers[0].ReportToken

	// The attack: 3 requests of 192 made-up crash reports on the label (64 each), without a
	// token, with made-up tokens, and with the genuine PC's token under other device ids.
	forged := func(result string, tok func(i int) string) []byte {
		var b strings.Builder
		b.WriteString("[")
		for i := range rollout.MaxBatch {
			if i > 0 {
				b.WriteString(",")
			}
			r := reportOn(fmt.Sprint("attacker-", i), label, result, tok(i))
			if tok(i) == "" {
				r = strings.Replace(r, `,"reportToken":""`, "", 1)
			}
			b.WriteString(r)
		}
		b.WriteString("]")
		return []byte(b.String())
	}
	for _, c := range []struct {
		name, msg string
		tok       func(int) string
	}{
		{"no token", "reportToken is required", func(int) string { return "" }},
		{"made-up tokens", "not issued for labelId", func(i int) string { return "AQ" + strings.Repeat(string(rune('A'+i%26)), rollout.TokenLen-2) }},
		{"the PC's token under other device ids", "not issued for labelId", func(int) string { return token }},
	} {
		// Made-up crashes to cancel someone's driver, and made-up successes to push a bad one.
		for _, result := range []string{"kernel-crash-after-install", "installed"} {
			a := postReports(t, base, forged(result, c.tok))
			if a.code != 403 || a.errCode != rollout.CodeBadToken || a.field != "/0/reportToken" || !strings.Contains(a.message, c.msg) {
				t.Errorf("%s, %s: %d %s; want 403 bad-token at /0/reportToken saying %q", c.name, result, a.code, a.body, c.msg)
			}
		}
	}
	// The PC's token on another label, or its own label with a token of another release's
	// offer to another device: refused too.
	if a := postReports(t, base, []byte(reportOn(device, "3002", "failed", token))); a.code != 403 && a.code != 400 {
		t.Errorf("the token on another label: %d %s", a.code, a.body)
	}
	if lines, _, _ := spoolOnDisk(t, dir); lines != 0 {
		t.Fatalf("%d forged reports on disk", lines)
	}
	if got := metric(t, base, "driveway_edge_reports_forbidden_total"); got < 6 {
		t.Errorf("reports_forbidden_total = %v; want the 6 forged requests", got)
	}

	// The genuine report is taken, and so are others' within the TTL …
	for _, o := range offers {
		if a := postReports(t, base, []byte(reportOn(device, o.LabelID, "installed", o.ReportToken))); a.code != 202 {
			t.Errorf("the PC's report on %s with its token: %d %s", o.LabelID, a.code, a.body)
		}
	}
	if lines, _, _ := spoolOnDisk(t, dir); lines != len(offers) {
		t.Errorf("%d lines on disk; want %d", lines, len(offers))
	}
	// … and not after it (an offer older than the reports' retention).
	clock.add(rollout.DefaultTokenTTL + time.Hour)
	a := postReports(t, base, []byte(strings.Replace(reportOn(device, label, "installed", token), "2026-11-21T11:00:00Z", clock.now().Format(time.RFC3339), 1)))
	if a.code != 403 || !strings.Contains(a.message, "is good for 30 days") {
		t.Errorf("a token past its TTL: %d %s", a.code, a.body)
	}
}

// TestReportLimits: past the per-device or per-network limit a request is answered 429 with
// Retry-After up to the window's end and nothing of it is kept; the next window takes
// reports again.
func TestReportLimits(t *testing.T) {
	dir := t.TempDir()
	_, base, clock := limitsEdge(t, dir, serve.ReportLimits{PerDevice: 3, DeviceWindow: time.Hour, PerSource: 10, SourceWindow: time.Minute}, nil)
	clock.set(clock.now().Truncate(time.Hour)) // the start of both windows
	stored := 0
	send := func(body string) answer {
		a := postReports(t, base, []byte(body))
		if a.code == 202 {
			stored += strings.Count(body, `"deviceId"`)
		}
		return a
	}
	for i := range 3 {
		if a := send(reportJSON("pc-1", "installed")); a.code != 202 {
			t.Fatalf("report %d of pc-1: %d %s", i, a.code, a.body)
		}
	}
	a := send(reportJSON("pc-1", "installed"))
	if a.code != 429 || a.errCode != "rate-limit" || a.retryAfter != "3600" || !strings.Contains(a.message, "one device in 1h") {
		t.Errorf("pc-1's 4th report in an hour: %d Retry-After %q %s", a.code, a.retryAfter, a.body)
	}
	// A batch that would take pc-2 past 3 is refused whole, and counts nothing: pc-2 then
	// sends 3 alone.
	batch := "[" + strings.Repeat(reportJSON("pc-2", "installed")+",", 3) + reportJSON("pc-2", "installed") + "]"
	if a := send(batch); a.code != 429 {
		t.Errorf("4 reports of pc-2 in one batch: %d %s", a.code, a.body)
	}
	for i := range 3 {
		if a := send(reportJSON("pc-2", "installed")); a.code != 202 {
			t.Errorf("pc-2's report %d after its refused batch: %d %s", i, a.code, a.body)
		}
	}
	// 6 taken from this network: 4 more, then the network's limit for the minute.
	for i := range 4 {
		if a := send(reportJSON(fmt.Sprint("pc-x", i), "installed")); a.code != 202 {
			t.Errorf("pc-x%d: %d %s", i, a.code, a.body)
		}
	}
	clock.add(15 * time.Second)
	a = send(reportJSON("pc-y", "installed"))
	if a.code != 429 || a.retryAfter != "45" || !strings.Contains(a.message, "one network in 1m") {
		t.Errorf("the network's 11th report in a minute: %d Retry-After %q %s", a.code, a.retryAfter, a.body)
	}
	// The device that was refused by the network's limit was not counted: a minute later it
	// sends 3.
	clock.add(time.Minute)
	for i := range 3 {
		if a := send(reportJSON("pc-y", "installed")); a.code != 202 {
			t.Errorf("pc-y's report %d in the next minute: %d %s", i, a.code, a.body)
		}
	}
	if lines, _, _ := spoolOnDisk(t, dir); lines != stored || stored != 13 {
		t.Errorf("%d lines on disk, %d answered 202; want 13 of each", lines, stored)
	}
	for series, want := range map[string]float64{
		`driveway_edge_reports_limited_total{by="device"}`:              5,
		`driveway_edge_reports_limited_total{by="source"}`:              1,
		`driveway_edge_requests_total{path="/v1/reports",status="429"}`: 3,
	} {
		if got := metric(t, base, series); got != want {
			t.Errorf("%s = %v; want %v", series, got, want)
		}
	}
}

// limitsEdge is reportsEdge with report limits and trusted proxies.
func limitsEdge(t *testing.T, dir string, limits serve.ReportLimits, proxies []netip.Prefix) (*serve.Server, string, *fixedClock) {
	t.Helper()
	k := newKey(t)
	sc := conformance.LoadOne(t, "01-forward-and-floor.json")
	work := t.TempDir()
	conformance.WriteTree(t, work+"/labels", sc.Labels)
	now := mustTime(t, sc.Now)
	buildRelease(t, work+"/labels", work+"/catalog", k, now, 0)
	clock := newClock(now)
	srv, base := startServer(t, serve.Config{Catalog: work + "/catalog", Keys: []*signing.Verifier{k.verifier}, Clock: clock.now, DisableInotify: true,
		Spool: testSpoolOptions(rollout.SpoolOptions{Dir: dir}), ReportLimits: limits, TrustedProxies: proxies})
	return srv, base, clock
}

// TestReportSources: the spool keeps the pseudonym of the client's /24 or /48; behind a
// trusted proxy the client is the nearest X-Forwarded-For address that is not one, and an
// edge believes X-Forwarded-For from no one else (a PC cannot pose as many networks).
func TestReportSources(t *testing.T) {
	loopback := netip.MustParsePrefix("127.0.0.0/24")
	for _, c := range []struct {
		name    string
		proxies []string
		xff     []string
		want    string
	}{
		{"no proxies: the header is not believed", nil, []string{"198.51.100.7"}, "127.0.0.0/24"},
		{"no header", []string{"127.0.0.1/32"}, nil, "127.0.0.0/24"},
		{"one hop", []string{"127.0.0.1/32"}, []string{"198.51.100.7"}, "198.51.100.0/24"},
		{"the client's own claims are left of its address", []string{"127.0.0.1/32"}, []string{"203.0.113.1, 198.51.100.7"}, "198.51.100.0/24"},
		{"two trusted hops", []string{"127.0.0.1/32", "10.0.0.0/8"}, []string{"198.51.100.7, 10.1.2.3"}, "198.51.100.0/24"},
		{"two header lines", []string{"127.0.0.1/32", "10.0.0.0/8"}, []string{"198.51.100.7", "10.1.2.3"}, "198.51.100.0/24"},
		{"IPv6", []string{"127.0.0.1/32"}, []string{"2001:db8:1:2::5"}, "2001:db8:1::/48"},
		{"IPv4-mapped", []string{"127.0.0.1/32"}, []string{"::ffff:198.51.100.7"}, "198.51.100.0/24"},
		{"garbage: the nearest trusted hop", []string{"127.0.0.1/32"}, []string{"bogus"}, "127.0.0.0/24"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var proxies []netip.Prefix
			for _, p := range c.proxies {
				proxies = append(proxies, netip.MustParsePrefix(p))
			}
			dir := t.TempDir()
			srv, base, _ := limitsEdge(t, dir, noLimits, proxies)
			req, _ := http.NewRequest("POST", base+"/v1/reports", bytes.NewReader([]byte(reportJSON("pc-1", "failed"))))
			req.Header.Set("Content-Type", "application/json")
			for _, h := range c.xff {
				req.Header.Add("X-Forwarded-For", h)
			}
			resp, err := httpClient.Do(req)
			if err != nil || resp.StatusCode != 202 {
				t.Fatalf("%v %v", resp, err)
			}
			resp.Body.Close()
			srv.Shutdown(t.Context())
			var got []string
			rollout.ReadSpools([]string{dir}, func(r *rollout.Report) { got = append(got, r.Source) })
			want := rollout.SourcePseudonym(reportSecret, netip.MustParsePrefix(c.want))
			if len(got) != 1 || got[0] != want {
				t.Errorf("spooled source %v; want the pseudonym of %s (%s; loopback's is %s)", got, c.want, want, rollout.SourcePseudonym(reportSecret, loopback))
			}
		})
	}
}
