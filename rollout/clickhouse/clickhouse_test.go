package clickhouse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/ostable"
	"github.com/driveway/driveway/internal/testclock"
	"github.com/driveway/driveway/rollout"
	"github.com/driveway/driveway/rollout/clickhouse/chtest"
)

var secret = []byte("driveway clickhouse test secret, 32+ bytes")

var chids = []string{
	"8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814",
	"0b9c52a7-1d0e-5c6b-8a3f-9f0e1d2c3b4a",
	"5f3e2d1c-0b0a-5948-8776-655443322110",
	"", // no chid sent
}

// fixture is what the equality test measures: spool files written by the real spool
// writer, plus one hand-written file of lines the writer never produces (a braced
// uppercase chid, time offsets, fractions after a comma, lines the reader skips).
type fixture struct {
	now     time.Time
	dir     string
	invalid int // hand-written lines the spool reader skips
	windows []rollout.MeasureOptions
}

// request is one POST /v1/reports as an edge spools it: its reports, when it arrived and
// the network it came from.
type request struct {
	reports  []rollout.Report
	received time.Time
	source   string
}

func makeFixture(t *testing.T) *fixture {
	now := testclock.Now()
	f := &fixture{now: now, dir: t.TempDir()}
	// The option sets compared: the CLI's (policy window, Until now), MeasureSpools without
	// Until (the retention before now; reports received after now count), and one with
	// Since, Until and a retention that raises Since off whole seconds, with small minimums.
	window := rollout.DefaultPolicy.Window.Duration
	cUntil := now.Add(-100*time.Hour + 250*time.Millisecond)
	cRetention := 150*time.Hour + 1500*time.Microsecond
	f.windows = []rollout.MeasureOptions{
		{MinLabelMachines: rollout.DefaultPolicy.MinLabelMachines, MinCohortMachines: rollout.DefaultPolicy.MinCohortMachines,
			Since: now.Add(-window), Until: now},
		{},
		{MinLabelMachines: 10, MinCohortMachines: 20, Since: now.Add(-400 * time.Hour), Until: cUntil, Retention: cRetention},
	}

	rng := rand.New(rand.NewPCG(14, 5))
	var reports []rollout.Report
	add := func(dev int, label, result string, build int, chid string) {
		reports = append(reports, rollout.Report{DeviceID: fmt.Sprintf("pc-%d", dev), LabelID: label, InstanceID: "PCI\\VEN_8086&DEV_15F3",
			Result: result, Build: build, CHID: chid})
	}
	builds := []int{22631, 19045, 26100, 7601, 9600, 8000, 0, 100}
	cohort := func() (int, string) { return builds[rng.IntN(len(builds))], chids[rng.IntN(len(chids))] }
	failures := []string{"failed", "rolled-back", "kernel-crash-after-install", "pnp-error-after-install"}
	dev := 0
	// label: machines, and how many of them fail (with which result).
	population := func(label string, n int, fail map[string]int) {
		bad := []string{}
		for r, k := range fail {
			for range k {
				bad = append(bad, r)
			}
		}
		sort.Strings(bad)
		for i := 0; i < n; i++ {
			dev++
			b, c := cohort()
			if i < len(bad) {
				add(dev, label, bad[i], b, c)
				switch i % 3 {
				case 0: // retried, and installed: still a failed machine
					add(dev, label, "installed", b, c)
				case 1: // failed again, maybe from another network
					add(dev, label, bad[i], b, c)
				case 2: // failed again after an OS upgrade: another cohort
					add(dev, label, bad[i], 26100, c)
				}
				continue
			}
			add(dev, label, "installed", b, c)
			switch rng.IntN(10) {
			case 0: // reported twice
				add(dev, label, "installed", b, c)
			case 1: // upgraded its OS meanwhile: two cohorts
				add(dev, label, "installed", 26100, c)
			}
		}
	}
	population("3001", 700, map[string]int{"failed": 3})                                                   // advance
	population("3002", 600, map[string]int{"failed": 25, "rolled-back": 12})                               // pause: about 94%
	population("3003", 600, map[string]int{"kernel-crash-after-install": 24})                              // cancel: about 4% kernel crashes
	population("3004", 60, map[string]int{"rolled-back": 1, "pnp-error-after-install": 1})                 // with the hand lines below, about 19% failed of 70: cancelled below the label minimum (the interval shows it)
	population("3099", 90, map[string]int{"failed": 5, "kernel-crash-after-install": 2, "rolled-back": 3}) // not in the tree
	// 3005: healthy overall (about 98%), but one cohort of 650 machines at about 96%: that
	// cohort is held alone (a targeted hold) and the rest, healthy, advances.
	for i := 0; i < 1300; i++ {
		dev++
		b, c := cohort()
		if i < 650 {
			b, c = 22631, chids[0]
		}
		res := "installed"
		if i < 26 {
			res = "failed"
		}
		add(dev, "3005", res, b, c)
	}
	// Every boundary of the OS table's slots, one machine each.
	for _, r := range ostable.Default().Releases() {
		for _, b := range []int{r.Build - 1, r.Build, r.Build + 1} {
			dev++
			add(dev, "3099", failures[dev%len(failures)], b, chids[dev%len(chids)])
		}
	}
	for _, b := range []int{1, 7599, 7600, 7601, 7602, 9199, 9200, 9201, 9599, 9600, 9601, 1<<31 - 1} {
		dev++
		add(dev, "3099", "installed", b, "")
	}

	// The requests: up to 64 reports each, from one network (or from an edge that records
	// none), received mostly within the policy's window, some before the retention and some
	// after now.
	sources := []string{""}
	for i := range 12 {
		sources = append(sources, fmt.Sprintf("%016x", uint64(i+1)*0x9e3779b97f4a7c15))
	}
	rng.Shuffle(len(reports), func(i, j int) { reports[i], reports[j] = reports[j], reports[i] })
	var reqs []request
	for len(reports) > 0 {
		n := min(1+rng.IntN(rollout.MaxBatch), len(reports))
		var at time.Time
		switch k := rng.IntN(20); {
		case k < 2: // 30 to 40 days ago: past the retention
			at = now.Add(-30*24*time.Hour - time.Duration(rng.Int64N(int64(240*time.Hour))))
		case k < 3: // after now
			at = now.Add(time.Duration(rng.Int64N(int64(time.Hour))))
		default:
			at = now.Add(-time.Duration(rng.Int64N(int64(window))) - time.Nanosecond)
		}
		reqs = append(reqs, request{reports: reports[:n], received: at, source: sources[rng.IntN(len(sources))]})
		reports = reports[n:]
	}
	// Received around each window's edges, to the nanosecond: one new machine each.
	for k, at := range []time.Time{now.Add(-window), now, cUntil, cUntil.Add(-cRetention)} {
		for j, d := range []time.Duration{-time.Nanosecond, 0, time.Nanosecond} {
			dev++
			r := rollout.Report{DeviceID: fmt.Sprintf("pc-%d", dev), LabelID: "3004", InstanceID: "x", Result: failures[(k+j)%len(failures)], Build: 22631, CHID: chids[1]}
			reqs = append(reqs, request{reports: []rollout.Report{r}, received: at.Add(d), source: sources[1+k]})
		}
	}
	// An edge appends in the order requests arrive.
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].received.Before(reqs[j].received) })
	sp, err := rollout.OpenSpool(rollout.SpoolOptions{Dir: f.dir, Secret: secret, Clock: func() time.Time { return now },
		MaxFileBytes: 128 << 10, MinFreeBytes: -1, MinFreePercent: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range reqs {
		for i := range q.reports {
			r := &q.reports[i]
			r.Source = q.source
			// The PC's time: some hours before it was received, or a little after (its clock
			// runs ahead).
			r.Time = q.received.Add(-time.Duration(rng.Int64N(int64(6 * time.Hour))))
			if rng.IntN(10) == 0 {
				r.Time = q.received.Add(time.Duration(rng.Int64N(int64(time.Hour))))
			}
		}
		c, err := sp.Append(q.reports, q.received)
		if err == nil {
			err = c.Wait()
		}
		if err != nil {
			sp.Close()
			t.Fatal(err)
		}
	}
	sp.Close()

	// The hand-written file, named to sort after the writer's (it was received last).
	recv := now.Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	at := func(d time.Duration) string { return now.Add(-d).UTC().Format(time.RFC3339Nano) }
	pc1 := rollout.Pseudonym(secret, "pc-1") // a machine of 3001, failing here again
	line := func(dev, label, result, tm string, build int, chid, received string) string {
		m := map[string]any{"device": dev, "labelId": label, "result": result, "time": tm, "received": received}
		if build != 0 {
			m["build"] = build
		}
		if chid != "" {
			m["chid"] = chid
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	y := now.Year()
	withSource := func(l, src string) string { return strings.TrimSuffix(l, "}") + `,"source":"` + src + `"}` }
	valid := []string{
		withSource(line(pc1, "3001", "failed", now.Add(-5*time.Hour).In(time.FixedZone("", 5*3600+1800)).Format(time.RFC3339Nano), 22631, "{8DC9B7C5-F5D5-5850-9AB3-BD6F0549D814}", recv), sources[3]),
		line("hand-1", "3004", "installed", strings.Replace(at(3*time.Hour+123*time.Millisecond), ".", ",", 1), 19045, "8DC9B7C5-F5D5-5850-9AB3-BD6F0549D814", recv),
		line("hand-2", "3004", "failed", at(4*time.Hour), 0, "", now.Add(-2*time.Hour).UTC().Format("2006-01-02T15:04:05")+".123456789123Z"),
		line("hand-3", "18446744073709551615", "installed", at(time.Hour), 0, "", recv),
		line("hand-4", "0", "pnp-error-after-install", at(2*time.Hour), 2147483647, "", now.Add(-2*time.Hour).UTC().Format("2006-01-02T15:04:05")+"-00:00"),
		line("hand-5", "3004", "installed", at(time.Hour), 22631, chids[2], now.UTC().Format("2006-01-02T15:04:05")+"+01:00"),
		withSource(line("hand-6", "3004", "failed", at(time.Hour), 22631, chids[2], strings.Replace(recv, ".", ",", 1)), strings.Repeat("s", 64)),
	}
	bad := []string{
		line("", "3004", "installed", at(time.Hour), 22631, "", recv),
		line(strings.Repeat("d", 129), "3004", "installed", at(time.Hour), 22631, "", recv),
		line("bad-1", "03004", "installed", at(time.Hour), 22631, "", recv),
		line("bad-2", "18446744073709551616", "installed", at(time.Hour), 22631, "", recv),
		line("bad-3", "30x4", "installed", at(time.Hour), 22631, "", recv),
		line("bad-4", "3004", "exploded", at(time.Hour), 22631, "", recv),
		line("bad-5", "3004", "installed", fmt.Sprintf("%04d-02-30T10:00:00Z", y), 22631, "", recv),
		line("bad-6", "3004", "installed", now.UTC().Format("2006-01-02")+"T24:00:00Z", 22631, "", recv),
		line("bad-7", "3004", "installed", strings.Replace(at(time.Hour), "T", "t", 1), 22631, "", recv),
		line("bad-8", "3004", "installed", "yesterday", 22631, "", recv),
		line("bad-9", "3004", "installed", at(time.Hour), 22631, "", ""),
		line("bad-10", "3004", "installed", at(time.Hour), -1, "", recv),
		line("bad-11", "3004", "installed", at(time.Hour), 22631, "not-a-guid", recv),
		line("bad-12", "3004", "installed", at(time.Hour), 22631, "x"+chids[0]+"x", recv),
		line("bad-13", "3004", "installed", at(time.Hour), 22631, "", fmt.Sprintf("%04d-13-01T10:00:00Z", y)),
		withSource(line("bad-14", "3004", "failed", at(time.Hour), 22631, "", recv), strings.Repeat("s", 65)),
	}
	f.invalid = len(bad)
	hand := strings.Join(append(valid, bad...), "\n") + "\n"
	name := "reports-" + now.Add(time.Hour).UTC().Format("20060102T150405.000000000Z") + ".ndjson"
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(hand), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestMeasuresEqualSpools loads the same spool files into a real ClickHouse, the way Vector's
// sink inserts them, and checks that the measures from ClickHouse are the measures from the
// spools (the same JSON), for several windows, and that rollout.Step decides the same.
func TestMeasuresEqualSpools(t *testing.T) {
	srv := chtest.Start(t) // skips without clickhouse-server (fails under CI=true)
	f := makeFixture(t)
	ddl, err := CreateTable(DefaultTable)
	if err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, ddl)
	files, _ := filepath.Glob(filepath.Join(f.dir, "reports-*.ndjson"))
	if len(files) < 3 {
		t.Fatalf("%d spool files; the fixture should make several", len(files))
	}
	lines := 0
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines += bytes.Count(b, []byte("\n"))
		srv.Insert(t, "default", DefaultTable, b)
	}
	if got := strings.TrimSpace(srv.Exec(t, "SELECT count() FROM "+DefaultTable)); got != fmt.Sprint(lines) {
		t.Fatalf("the table holds %s rows; %d lines were inserted", got, lines)
	}

	ctx := context.Background()
	o := Options{URL: srv.URL, Table: DefaultTable, Client: srv.Client()}
	for i, opts := range f.windows {
		want, err := rollout.MeasureSpools([]string{f.dir}, opts, f.now)
		if err != nil {
			t.Fatal(err)
		}
		if want.Read.Invalid != f.invalid || want.Read.Torn != 0 || want.Read.Lines != lines-f.invalid || len(want.Labels) < 6 {
			t.Fatalf("window %d: the spool path read %+v and %d labels; the fixture has %d lines, %d invalid", i, want.Read, len(want.Labels), lines, f.invalid)
		}
		got, err := Measure(ctx, o, opts, f.now)
		if err != nil {
			t.Fatal(err)
		}
		want.Read.Files = 0 // a table has no files
		wb, _ := json.MarshalIndent(want, "", "  ")
		gb, _ := json.MarshalIndent(got, "", "  ")
		if !bytes.Equal(wb, gb) {
			t.Errorf("window %d (%+v): ClickHouse measures differ from the spools':\n%s", i, opts, diff(string(wb), string(gb)))
		}
		if i == 0 {
			checkStep(t, &want, &got, f.now)
		}
	}
	// The fixture is not degenerate: the CLI's window has cohorts with and without enough
	// data, every outcome, and machines that reported twice.
	m, _ := rollout.MeasureSpools([]string{f.dir}, f.windows[0], f.now)
	var enough, short, kinds int
	var sum rollout.Measure
	for _, l := range m.Labels {
		for _, c := range l.Cohorts {
			if c.Enough {
				enough++
			} else {
				short++
			}
		}
		sum.Installed += l.Installed
		sum.RolledBack += l.RolledBack
		sum.KernelCrash += l.KernelCrash
		sum.PnPError += l.PnPError
		sum.Machines += l.Machines
	}
	for _, n := range []int{sum.Installed, sum.RolledBack, sum.KernelCrash, sum.PnPError} {
		if n > 0 {
			kinds++
		}
	}
	if enough == 0 || short == 0 || kinds != 4 || m.Read.Lines <= sum.Machines {
		t.Errorf("fixture: %d cohorts with enough data, %d without, %d kinds of outcome, %d lines for %d machines", enough, short, kinds, m.Read.Lines, sum.Machines)
	}
}

// checkStep feeds both measures to rollout.Step with the default policy.
func checkStep(t *testing.T, spool, ch *rollout.Measures, now time.Time) {
	t.Helper()
	old := now.Add(-10 * 24 * time.Hour).Format(time.RFC3339)
	var dists []string
	for range 5 { // 3001 … 3005, at 1% for ten days
		dists = append(dists, `{"rollout": {"stages": [{"at": "`+old+`", "percent": 1}]}}`)
	}
	tree := stepTree(t, t.TempDir(), dists...)
	want := rollout.Step(tree, spool, &rollout.DefaultPolicy, now)
	got := rollout.Step(tree, ch, &rollout.DefaultPolicy, now)
	wb, _ := json.MarshalIndent(want, "", "  ")
	gb, _ := json.MarshalIndent(got, "", "  ")
	if !bytes.Equal(wb, gb) {
		t.Errorf("rollout.Step decides differently on ClickHouse's measures:\n%s", diff(string(wb), string(gb)))
	}
	actions := map[string]string{}
	for _, d := range want {
		if actions[d.Label] != "" {
			actions[d.Label] += "+"
		}
		actions[d.Label] += string(d.Action)
	}
	wantActions := map[string]rollout.Action{"3001": rollout.Advance, "3002": rollout.Pause, "3003": rollout.Cancel, "3004": rollout.Cancel,
		"3005": rollout.HoldCohort + "+" + rollout.Advance}
	if fmt.Sprint(actions) != fmt.Sprint(wantActions) {
		t.Errorf("decisions %v, want %v (the fixture should exercise every action):\n%s", actions, wantActions, wb)
	}
}

// stepTree writes a label tree with one Windows Update label per distribution (ids 3001, …).
func stepTree(t *testing.T, dir string, dists ...string) *catalogs.Tree {
	t.Helper()
	for i, dist := range dists {
		pid, sid, lid := 1001+i, 2001+i, 3001+i
		sub := filepath.Join(dir, "products", fmt.Sprint(pid), "submissions", fmt.Sprint(sid))
		files := map[string]string{
			filepath.Join(dir, "products", fmt.Sprint(pid), "product.json"): fmt.Sprintf(`{"id":%d}`, pid),
			filepath.Join(sub, "submission.json"):                           fmt.Sprintf(`{"id":%d}`, sid),
			filepath.Join(sub, "driverMetadata.json"):                       `{"BundleInfoMap":{"b":{"InfInfoMap":{"a.inf":{"InfClass":"Net","DriverVersion":"1.0.0.1","DriverDate":"2025-01-01","OSPnPInfoMap":{}}}}}}`,
			filepath.Join(sub, "shippingLabels", fmt.Sprintf("%d.json", lid)): fmt.Sprintf(`{"id": %d, "productId": %d, "submissionId": %d, "destination": "windowsUpdate",
  "targeting": {"hardwareIds": [{"bundleId":"b","infId":"a.inf","operatingSystemCode":"WINDOWS_v100_X64_VB_FULL","pnpString":"x\\y","distributionState":"added"}]},
  "publishingSpecifications": {"goLiveDate": "2026-01-01T00:00:00Z"}, "distribution": %s}`, lid, pid, sid, dist),
		}
		for p, body := range files {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	tree, probs, err := catalogs.Load(dir, nil)
	if err != nil || probs.Errors() > 0 {
		t.Fatalf("label tree: %v %v", err, probs)
	}
	return tree
}

// diff shows the first lines where two texts differ.
func diff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			lo, hi := max(0, i-8), min(i+8, max(len(al), len(bl)))
			get := func(l []string) string {
				if lo >= len(l) {
					return ""
				}
				return strings.Join(l[lo:min(hi, len(l))], "\n")
			}
			return fmt.Sprintf("line %d:\n--- spools\n%s\n--- clickhouse\n%s", i+1, get(al), get(bl))
		}
	}
	return "(no difference in lines)"
}

// TestEmptyTable: no rows, no labels (an empty JSON list, as the spool path gives).
func TestEmptyTable(t *testing.T) {
	srv := chtest.Start(t)
	ddl, _ := CreateTable("default.empty_reports")
	srv.Exec(t, ddl)
	now := testclock.Now()
	got, err := Measure(context.Background(), Options{URL: srv.URL, Table: "default.empty_reports", Client: srv.Client()}, rollout.MeasureOptions{}, now)
	if err != nil {
		t.Fatal(err)
	}
	want, err := rollout.MeasureSpools([]string{t.TempDir()}, rollout.MeasureOptions{}, now)
	if err != nil {
		t.Fatal(err)
	}
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	if !bytes.Equal(wb, gb) {
		t.Errorf("empty table: %s, want %s", gb, wb)
	}
	_, err = Measure(context.Background(), Options{URL: srv.URL, Table: "no_such_table", Client: srv.Client()}, rollout.MeasureOptions{}, now)
	if err == nil || !strings.Contains(err.Error(), "Measuring in ClickHouse") {
		t.Errorf("a missing table: %v, want an error pointing at the docs", err)
	}
}

// TestResultsMapped: every result a PC may send sets flags.
func TestResultsMapped(t *testing.T) {
	for _, r := range rollout.Results {
		if _, ok := resultBits[r]; !ok {
			t.Errorf("result %q has no flags", r)
		}
	}
	if _, err := Query("", rollout.MeasureOptions{OS: ostable.Default()}); err != nil {
		t.Error(err)
	}
}

func TestTableNames(t *testing.T) {
	for name, want := range map[string]string{"": "`driveway_reports`", "r": "`r`", "db.r_1": "`db`.`r_1`",
		"a.b.c": "", "1r": "", "r;DROP TABLE x": "", "r`": "", "db.": ""} {
		got, err := quoteTable(name)
		if (err == nil) != (want != "") || got != want {
			t.Errorf("quoteTable(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := Measure(context.Background(), Options{URL: "ftp://x"}, rollout.MeasureOptions{}, testclock.Now()); err == nil {
		t.Error("an ftp URL was taken")
	}
}

// TestDocsSchema: docs/deployment.md shows the table this package reads.
func TestDocsSchema(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "deployment.md"))
	if err != nil {
		t.Fatal(err)
	}
	ddl, _ := CreateTable(DefaultTable)
	if !strings.Contains(string(doc), ddl) {
		t.Errorf("docs/deployment.md (Measuring in ClickHouse) does not show the table's statement:\n%s", ddl)
	}
}

// hangUpServer is an HTTP server on loopback that closes its first hangUps connections
// after reading a request's headers, without answering, and answers the later ones with
// an empty JSONEachRow result. It counts the connections it accepted.
func hangUpServer(t *testing.T, hangUps int) (url string, accepted func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			i := int(n.Add(1))
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil || i <= hangUps {
					return
				}
				io.Copy(io.Discard, req.Body)
				fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return "http://" + l.Addr().String(), func() int { return int(n.Load()) }
}

// TestQueryRetriesBrokenConnections: a connection closed before any answer (CI saw
// ClickHouse's end close one: "write tcp …: use of closed network connection") is retried
// on a new connection, up to queryAttempts, and the last error names the attempts.
func TestQueryRetriesBrokenConnections(t *testing.T) {
	now := testclock.Now()
	url, accepted := hangUpServer(t, queryAttempts-1)
	got, err := Measure(context.Background(), Options{URL: url, Client: &http.Client{}}, rollout.MeasureOptions{}, now)
	if err != nil {
		t.Fatalf("after %d hang-ups: %v", queryAttempts-1, err)
	}
	if len(got.Labels) != 0 || accepted() != queryAttempts {
		t.Errorf("labels %d, connections %d; want 0 and %d", len(got.Labels), accepted(), queryAttempts)
	}

	url, accepted = hangUpServer(t, queryAttempts)
	_, err = Measure(context.Background(), Options{URL: url, Client: &http.Client{}}, rollout.MeasureOptions{}, now)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("(%d attempts)", queryAttempts)) {
		t.Errorf("after %d hang-ups: %v, want an error after %d attempts", queryAttempts, err, queryAttempts)
	}
	if accepted() != queryAttempts {
		t.Errorf("connections %d, want %d", accepted(), queryAttempts)
	}
}

// TestQueryAnswerNotRetried: an error answer is ClickHouse's word and is not sent again.
func TestQueryAnswerNotRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "Code: 60, e.displayText() = DB::Exception: Table default.x doesn't exist.", http.StatusNotFound)
	}))
	defer srv.Close()
	_, err := Measure(context.Background(), Options{URL: srv.URL, Table: "default.x"}, rollout.MeasureOptions{}, testclock.Now())
	if err == nil || !strings.Contains(err.Error(), "doesn't exist") || calls.Load() != 1 {
		t.Errorf("error answer: %v after %d requests, want the answer after 1", err, calls.Load())
	}
}
