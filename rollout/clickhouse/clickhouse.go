// Package clickhouse measures install reports inside ClickHouse: the same rollout.Measures
// as rollout.MeasureSpools, for a fleet whose reports no longer fit one controller host.
//
// The edges keep writing their spools (rollout/spool.go); a shipper (Vector's clickhouse
// sink, docs/deployment.md "Measuring in ClickHouse") inserts the closed files' lines, as
// they are, into a table made by CreateTable: one column per member of a spool line, and
// two columns ClickHouse derives from "received" on insert. Measure then sends one SELECT
// over the HTTP interface; ClickHouse does the grouping by label and device, and what comes
// back is one row per label and per cohort, which Measure turns into the measures with the
// same arithmetic as rollout.Aggregator (rounding, "not enough data", sorting).
//
// # The same answers
//
// The query reproduces rollout.Aggregator and rollout.ReadSpools:
//
//   - A machine is a distinct device (the spool's pseudonym) per label; its flags are the OR
//     over all its reports in the window, whatever their order: installed when any report
//     says installed, failed when any says anything else, and rolled back, kernel crash and
//     PnP error when any says so. A cohort is (the OS table's release of build, or
//     "unknown" when build is absent, 0 or in no slot; chid in lowercase without braces, or
//     "unknown"); a machine that reported from two builds or models counts in each cohort.
//   - The window is on received, the edge's clock, to the nanosecond: [Since, Until), Since
//     raised to Retention before Until (or before now when Until is zero), as MeasureSpools
//     does. The PC's time is only checked for form.
//   - A failed machine's source is the source of its first failure report (per label, and
//     per cohort); FailureSources counts the distinct non-empty ones, FailedUnsourced the
//     failed machines whose first failure had none.
//   - A row counts only when ReadSpools would accept it as a line: device 1 to 128 bytes,
//     labelId a decimal id below 2^64 without a leading zero, result one of
//     rollout.Results, time and received RFC 3339 times, build 0 to 2^31-1, chid empty or a
//     GUID (braced or not, any case), source at most 64 bytes. Read.Lines counts the rows
//     that are valid reports, in the window or not, Read.Invalid the others; Read.Files and
//     Read.Torn are 0 (a table has neither files nor torn lines).
//
// Where they can differ:
//
//   - "First failure report" is, in a spool, the first in the order ReadSpools reads: file
//     paths in name order, so under one edge's directory the order it received them, but
//     across edges' directories the edge named first wins. A table has no file order: here
//     it is the failure received first (ties, which only one request's reports share, have
//     one source). For a machine whose failures reached two edges, FailureSources and
//     FailedUnsourced may differ by that machine.
//   - ClickHouse 18.16's DateTime holds 1970 to 2105: a report received outside those
//     years is invalid here and valid in a spool (no edge's clock is there).
//   - Lines an edge never writes that the spool reader still reads — lines from before
//     pseudonyms ("deviceId" with instanceId and errorCode), members in another letter
//     case, a build that is not a whole number — cannot be inserted into the table
//     (JSONEachRow refuses them), or count as invalid.
//   - A shipper that delivers a batch twice (at-least-once) adds its rows twice: the
//     measures do not change (a machine counts once), Read.Lines does.
package clickhouse

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/ostable"
	"github.com/driveway/driveway/rollout"
)

// DefaultTable is the table Measure reads when Options.Table is empty.
const DefaultTable = "driveway_reports"

// DefaultTimeout bounds a Measure call when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Minute

// Options say where the reports are.
type Options struct {
	// URL is ClickHouse's HTTP interface, such as http://clickhouse:8123. A user and
	// password in it (http://user:password@host:8123) are sent as basic authentication;
	// query parameters (?database=…) are kept.
	URL string
	// Table is the reports table, "name" or "database.name"; default DefaultTable.
	Table   string
	Timeout time.Duration // default DefaultTimeout
	Client  *http.Client  // default http.DefaultClient
}

// CreateTable returns the CREATE TABLE statement of a reports table named table. Its first
// nine columns are the members of a spool line, so a shipper inserts the lines unchanged
// (FORMAT JSONEachRow); receivedUnix and receivedNanos, the edge's clock that the window
// reads, are computed by ClickHouse on insert. It is partitioned by the UTC day of received:
// drop partitions past the retention window (ClickHouse 18.16 has no TTL; from 19.6 on, add
// TTL receivedUnix + INTERVAL 32 DAY).
func CreateTable(table string) (string, error) {
	id, err := quoteTable(table)
	if err != nil {
		return "", err
	}
	return "CREATE TABLE IF NOT EXISTS " + id + ` (
    device        String,
    labelId       String,
    result        String,
    time          String,
    build         Int64,
    chid          String,
    errorCode     String,
    source        String,
    received      String,
    receivedUnix  DateTime('UTC') MATERIALIZED parseDateTimeBestEffortOrZero(received),
    receivedNanos UInt32 MATERIALIZED toUInt32(substring(concat(extract(received, '[.,]([0-9]+)'), '000000000'), 1, 9))
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(receivedUnix)
ORDER BY (labelId, device)`, nil
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// quoteTable checks a table name ("name" or "database.name") and quotes it for SQL.
func quoteTable(table string) (string, error) {
	if table == "" {
		table = DefaultTable
	}
	parts := strings.Split(table, ".")
	if len(parts) > 2 {
		return "", fmt.Errorf("clickhouse: table %q: name or database.name", table)
	}
	for i, p := range parts {
		if !identRE.MatchString(p) {
			return "", fmt.Errorf("clickhouse: table %q: names are letters, digits and _, not starting with a digit", table)
		}
		parts[i] = "`" + p + "`"
	}
	return strings.Join(parts, "."), nil
}

// resultBits are the flags each result sets on a machine (rollout.Aggregator's mapping).
const (
	bitInstalled = 1 << iota
	bitFailed
	bitRolledBack
	bitKernel
	bitPnP
)

var resultBits = map[string]int{
	"installed":                  bitInstalled,
	"failed":                     bitFailed,
	"rolled-back":                bitFailed | bitRolledBack,
	"kernel-crash-after-install": bitFailed | bitKernel,
	"pnp-error-after-install":    bitFailed | bitPnP,
}

// lit is s as a ClickHouse string literal.
func lit(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// rfc3339RE is what encoding/json's time.Time accepts (RFC 3339, a fraction after . or ,,
// offsets up to 24 hours), less the range checks validTime adds.
const rfc3339RE = `^[0-9]{4}-(0[1-9]|1[0-2])-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.,][0-9]+)?(Z|[+-]([01][0-9]|2[0-4]):([0-5][0-9]|60))$`

// validTime is the SQL test that column col holds a time the spool reader reads: the form,
// and a day that exists (toDateOrZero wraps 2026-02-30 to March; the round trip fails).
func validTime(col string) string {
	return fmt.Sprintf("(match(%s, %s) AND toString(toDateOrZero(substring(%s, 1, 10))) = substring(%s, 1, 10))", col, lit(rfc3339RE), col, col)
}

// validRow is the SQL test that a row is a report rollout.ReadSpools would accept.
func validRow() string {
	var results []string
	for _, r := range rollout.Results {
		results = append(results, lit(r))
	}
	const hex = `[0-9A-Fa-f]`
	guid := fmt.Sprintf("%s{8}-%s{4}-%s{4}-%s{4}-%s{12}", hex, hex, hex, hex, hex)
	return strings.Join([]string{
		"device != '' AND length(device) <= 128",
		"match(labelId, " + lit(`^(0|[1-9][0-9]{0,19})$`) + ") AND (length(labelId) < 20 OR labelId <= '18446744073709551615')",
		"result IN (" + strings.Join(results, ", ") + ")",
		validTime("time"),
		validTime("received"),
		"build >= 0 AND build <= 2147483647",
		"length(source) <= 64",
		"(chid = '' OR match(chid, " + lit(`^(`+guid+`|\{`+guid+`\})$`) + "))",
	}, " AND ")
}

// maxEraProbe bounds the builds probed below an OS table's first release.
const maxEraProbe = 1 << 20

// releaseExpr is the SQL of a cohort's release: the OS table's slot name of build, as
// rollout.Aggregator names it, or "unknown". The builds below the first Windows 10 release
// are probed one by one (the eras' ranges are the table's own), the releases go by their
// base builds.
func releaseExpr(os *ostable.Table) (string, error) {
	rels := os.Releases()
	if len(rels) == 0 {
		return "", errors.New("clickhouse: the OS table has no releases")
	}
	first := rels[0].Build
	if first > maxEraProbe {
		return "", fmt.Errorf("clickhouse: the OS table's first release has build %d; at most %d", first, maxEraProbe)
	}
	args := []string{"build <= 0", lit("unknown")}
	for i := len(rels) - 1; i >= 0; i-- {
		s, ok := os.SlotOf(rels[i].Build)
		if !ok {
			return "", fmt.Errorf("clickhouse: the OS table has no slot for build %d", rels[i].Build)
		}
		args = append(args, fmt.Sprintf("build >= %d", rels[i].Build), lit(os.SlotName(s)))
	}
	name := func(b int) string {
		if s, ok := os.SlotOf(b); ok {
			return os.SlotName(s)
		}
		return "unknown"
	}
	for lo := 1; lo < first; {
		n := name(lo)
		hi := lo
		for hi+1 < first && name(hi+1) == n {
			hi++
		}
		if n != "unknown" {
			args = append(args, fmt.Sprintf("build >= %d AND build <= %d", lo, hi), lit(n))
		}
		lo = hi + 1
	}
	return "multiIf(" + strings.Join(args, ", ") + ", " + lit("unknown") + ")", nil
}

// window is the SQL test that a row was received in [since, until), to the nanosecond
// (zero: unbounded).
func window(since, until time.Time) string {
	var conds []string
	if !since.IsZero() {
		s, n := since.Unix(), since.Nanosecond()
		conds = append(conds, fmt.Sprintf("(toInt64(receivedUnix) > %d OR (toInt64(receivedUnix) = %d AND receivedNanos >= %d))", s, s, n))
	}
	if !until.IsZero() {
		s, n := until.Unix(), until.Nanosecond()
		conds = append(conds, fmt.Sprintf("(toInt64(receivedUnix) < %d OR (toInt64(receivedUnix) = %d AND receivedNanos < %d))", s, s, n))
	}
	if len(conds) == 0 {
		return "1"
	}
	return strings.Join(conds, " AND ")
}

// Query returns the SELECT Measure sends, for options that already have their defaults
// (see resolve).
//
// The innermost level marks each row: valid (validRow), counted (valid and received in the
// window), its label, device, cohort, result flags, source, and when it was received (ns
// since 1970). Rows that do not count are folded into two placeholder groups (label "",
// cohort "outside" or "invalid") that only carry their number. One branch groups the rows
// by (label, device, cohort) — the flags ORed, the source of the device's earliest failure
// report there (argMinIf) — and then counts machines, flags and failure sources per
// (label, cohort); the other does the same by (label, device), then per label. What comes
// back is one row per label (level 0) and per cohort (level 1).
//
// The branches read the table twice. One pass that regroups the (label, device, cohort)
// groups by (label, device) needs an array of cohorts per device (groupArray, then ARRAY
// JOIN), which costs ClickHouse 18.16 more than the second read: 59 s against 47 s for 20
// million reports on 2 cores.
func Query(table string, opts rollout.MeasureOptions) (string, error) {
	id, err := quoteTable(table)
	if err != nil {
		return "", err
	}
	rel, err := releaseExpr(opts.OS)
	if err != nil {
		return "", err
	}
	bits := []string{}
	for _, r := range rollout.Results {
		b, ok := resultBits[r]
		if !ok {
			return "", fmt.Errorf("clickhouse: result %q has no mapping to measures", r)
		}
		bits = append(bits, "result = "+lit(r), strconv.Itoa(b))
	}
	rows := fmt.Sprintf(`SELECT
        %s AS ok_,
        ok_ AND %s AS in_,
        if(in_, labelId, '') AS l_,
        if(in_, device, '') AS d_,
        multiIf(in_, %s, ok_, 'outside', 'invalid') AS r_,
        if(in_, if(chid = '', 'unknown', lower(if(length(chid) = 38, substring(chid, 2, 36), chid))), '') AS c_,
        multiIf(%s, 0) AS bit_,
        source AS s_,
        toUInt64(receivedUnix) * 1000000000 + receivedNanos AS o_
      FROM %s`, validRow(), window(opts.Since, opts.Until), rel, strings.Join(bits, ", "), id)
	failed := func(col string) string { return fmt.Sprintf("bitAnd(%s, %d) != 0", col, bitFailed) }
	counts := fmt.Sprintf(`count() AS machines,
    sum(bitAnd(b_, %d) != 0) AS installed, sum(%s) AS failed,
    sum(bitAnd(b_, %d) != 0) AS rolledBack, sum(bitAnd(b_, %d) != 0) AS kernelCrash,
    sum(bitAnd(b_, %d) != 0) AS pnpError,
    uniqExactIf(f_, %s AND f_ != '') AS failureSources, countIf(%s AND f_ = '') AS failedUnsourced,
    sum(n_) AS rows`, bitInstalled, failed("b_"), bitRolledBack, bitKernel, bitPnP, failed("b_"), failed("b_"))
	machine := fmt.Sprintf(`groupBitOr(bit_) AS b_, argMinIf(s_, o_, %s) AS f_, count() AS n_`, failed("bit_"))
	q := fmt.Sprintf(`SELECT toUInt8(1) AS level, l_ AS label, r_ AS release, c_ AS chid, %s
  FROM (
    SELECT l_, d_, r_, c_, %s
    FROM (
      %s
    )
    GROUP BY l_, d_, r_, c_
  )
  GROUP BY l_, r_, c_
UNION ALL
SELECT toUInt8(0) AS level, l_ AS label, '' AS release, '' AS chid, %s
  FROM (
    SELECT l_, d_, %s
    FROM (
      %s
    )
    GROUP BY l_, d_
  )
  GROUP BY l_
FORMAT JSONEachRow`, counts, machine, rows, counts, machine, rows)
	return q, nil
}

// resolve gives opts the defaults rollout.MeasureSpools and rollout.NewAggregator give them.
func resolve(opts rollout.MeasureOptions, now time.Time) rollout.MeasureOptions {
	retain := func(end time.Time) {
		if opts.Retention <= 0 {
			opts.Retention = rollout.DefaultRetention
		}
		if floor := end.Add(-opts.Retention); opts.Since.Before(floor) {
			opts.Since = floor
		}
	}
	if opts.Until.IsZero() {
		retain(now)
	} else {
		retain(opts.Until)
	}
	if opts.MinLabelMachines <= 0 {
		opts.MinLabelMachines = 100
	}
	if opts.MinCohortMachines <= 0 {
		opts.MinCohortMachines = 500
	}
	if opts.OS == nil {
		opts.OS = ostable.Default()
	}
	return opts
}

// count is a UInt64 of a JSONEachRow answer: quoted by default
// (output_format_json_quote_64bit_integers), bare when the server is set otherwise.
type count int64

func (c *count) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not a count: %s", b)
	}
	*c = count(n)
	return nil
}

// row is one row of Query's answer.
type row struct {
	Level       int    `json:"level"`
	Label       string `json:"label"`
	Release     string `json:"release"`
	CHID        string `json:"chid"`
	Machines    count  `json:"machines"`
	Installed   count  `json:"installed"`
	Failed      count  `json:"failed"`
	RolledBack  count  `json:"rolledBack"`
	KernelCrash count  `json:"kernelCrash"`
	PnPError    count  `json:"pnpError"`
	Sources     count  `json:"failureSources"`
	Unsourced   count  `json:"failedUnsourced"`
	Rows        count  `json:"rows"`
}

// measure is rollout's arithmetic of a measure from its counts (tally.measure).
func (r *row) measure(min int) rollout.Measure {
	m := rollout.Measure{Machines: int(r.Machines), Installed: int(r.Installed), Failed: int(r.Failed),
		RolledBack: int(r.RolledBack), KernelCrash: int(r.KernelCrash), PnPError: int(r.PnPError),
		FailureSources: int(r.Sources), FailedUnsourced: int(r.Unsourced)}
	if m.Machines > 0 {
		pct := func(n int) float64 { return float64(int64(10000*float64(n)/float64(m.Machines)+0.5)) / 100 }
		m.SuccessPercent = pct(m.Machines - m.Failed)
		m.KernelCrashRate = pct(m.KernelCrash)
		m.PnPErrorRate = pct(m.PnPError)
	}
	m.Enough = m.Machines >= min
	if !m.Enough {
		m.Note = fmt.Sprintf("not enough data: %d machines, %d needed", m.Machines, min)
	}
	return m
}

// Measure aggregates the reports in ClickHouse and returns what rollout.MeasureSpools
// returns for the same reports in spools (see the package doc for what can differ).
func Measure(ctx context.Context, o Options, opts rollout.MeasureOptions, now time.Time) (rollout.Measures, error) {
	opts = resolve(opts, now)
	out := rollout.Measures{Generated: now, Since: opts.Since, Until: opts.Until, Labels: []rollout.LabelMeasure{}}
	q, err := Query(o.Table, opts)
	if err != nil {
		return out, err
	}
	rows, err := o.query(ctx, q)
	if err != nil {
		return out, err
	}
	labels := map[string]*rollout.LabelMeasure{}
	var cohorts []row
	counted := 0
	for i := range rows {
		r := &rows[i]
		switch {
		case r.Label == "" && r.Level == 1 && r.Release == "outside":
			out.Read.Lines += int(r.Rows)
		case r.Label == "" && r.Level == 1 && r.Release == "invalid":
			out.Read.Invalid += int(r.Rows)
		case r.Label == "":
			// the placeholders' level-0 row repeats their counts
		case r.Level == 0:
			if labels[r.Label] != nil {
				return out, fmt.Errorf("clickhouse: label %s came back twice", r.Label)
			}
			labels[r.Label] = &rollout.LabelMeasure{Label: r.Label, Measure: r.measure(opts.MinLabelMachines), Cohorts: []rollout.Cohort{}}
			counted += int(r.Rows)
		case r.Level == 1:
			cohorts = append(cohorts, *r)
		default:
			return out, fmt.Errorf("clickhouse: unexpected row level %d", r.Level)
		}
	}
	out.Read.Lines += counted
	for i := range cohorts {
		r := &cohorts[i]
		lm := labels[r.Label]
		if lm == nil {
			return out, fmt.Errorf("clickhouse: a cohort of label %s without the label", r.Label)
		}
		lm.Cohorts = append(lm.Cohorts, rollout.Cohort{Release: r.Release, CHID: r.CHID, Measure: r.measure(opts.MinCohortMachines)})
	}
	for _, lm := range labels {
		sort.Slice(lm.Cohorts, func(i, j int) bool {
			if lm.Cohorts[i].Release != lm.Cohorts[j].Release {
				return lm.Cohorts[i].Release < lm.Cohorts[j].Release
			}
			return lm.Cohorts[i].CHID < lm.Cohorts[j].CHID
		})
		out.Labels = append(out.Labels, *lm)
	}
	sort.Slice(out.Labels, func(i, j int) bool { return catalogs.CompareIDs(out.Labels[i].Label, out.Labels[j].Label) < 0 })
	return out, nil
}

// maxErrorBody is how much of an error answer an error quotes.
const maxErrorBody = 2000

// queryAttempts is how many connections a query is sent on before its transport error is
// returned; queryRetryPause times the attempt number is the pause before the next.
const (
	queryAttempts   = 3
	queryRetryPause = 100 * time.Millisecond
)

// query sends q and decodes its JSONEachRow answer.
func (o *Options) query(ctx context.Context, q string) ([]row, error) {
	if o.URL == "" {
		return nil, errors.New("clickhouse: no URL (such as http://clickhouse:8123)")
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("clickhouse: %q is not an http(s) URL of ClickHouse's HTTP interface (such as http://clickhouse:8123)", o.URL)
	}
	user := u.User
	u.User = nil
	if u.Path == "" {
		u.Path = "/"
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := o.Client
	if client == nil {
		client = http.DefaultClient
	}
	// The query is one read-only SELECT, so a connection that broke before an answer came
	// (a server or load balancer closing it, ClickHouse restarting) is retried on a new
	// one: Go's transport retries a POST only on a reused connection and only when nothing
	// was written. An answer, even an error status, is never retried.
	var resp *http.Response
	for attempt := 1; ; attempt++ {
		// The query goes in the body: the cohorts' release expression makes it long for a URL.
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(q))
		if err != nil {
			return nil, fmt.Errorf("clickhouse: %w", err)
		}
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		if user != nil {
			pw, _ := user.Password()
			req.SetBasicAuth(user.Username(), pw)
		}
		resp, err = client.Do(req)
		if err == nil {
			break
		}
		if ctx.Err() != nil || attempt == queryAttempts {
			return nil, fmt.Errorf("clickhouse: %s (%d attempts): %w", u.Redacted(), attempt, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("clickhouse: %s (%d attempts): %w", u.Redacted(), attempt, err)
		case <-time.After(time.Duration(attempt) * queryRetryPause):
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		msg := strings.TrimSpace(string(b))
		hint := ""
		if strings.Contains(msg, "Missing columns") || strings.Contains(msg, "doesn't exist") || strings.Contains(msg, "There is no column") {
			hint = " (create the table with the statement in docs/deployment.md, \"Measuring in ClickHouse\")"
		}
		return nil, fmt.Errorf("clickhouse: %s answered %s: %s%s", u.Redacted(), resp.Status, msg, hint)
	}
	var rows []row
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		var r row
		dec := json.NewDecoder(strings.NewReader(string(line)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			// An error after the answer started comes as text in the body.
			return nil, fmt.Errorf("clickhouse: %s: the answer has a line that is not a measure row (%v): %.500s", u.Redacted(), err, line)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: %s: reading the answer: %w", u.Redacted(), err)
	}
	return rows, nil
}
