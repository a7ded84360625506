package client

// Install reports: sending them, and keeping those an edge could not store.
//
// Get sends each hook's outcome to EDGE/v1/reports (rollout's report format, at most 64 a
// request; see docs/deployment.md, Install reports). An answer of 202 means the edge stored
// them. 429 and 503 (the edge asks for a retry), an edge that cannot be reached, and a 404
// (an edge behind the same address that does not take reports) leave the reports of that
// request and of every later one to send again: they are kept in the state directory's
// reports-pending.json and sent first by the next Get. Any other answer (403 bad-token: a
// token changed on the way or past its TTL; 400) refuses them for good: they are dropped,
// since sending them again would be refused again.
//
// # Pending reports file format
//
// STATE/reports-pending.json, written atomically (as state.json) and removed when empty:
//
//	{"format":"driveway-client-reports/1","reports":[REPORT, …]}
//
//   - format (required): "driveway-client-reports/1"; a file of another format is refused
//     (an error naming the file), not dropped.
//   - reports (required, at most MaxPending): each one a report as the edge takes it:
//     deviceId, labelId, instanceId, result, time and reportToken (strings, required, not
//     empty), errorCode (string), build (integer), chid (string). Unknown members of a
//     report are ignored. Whether a report is acceptable is the edge's judgement.
//
// Past MaxPending, the oldest reports are dropped when the file is written. Test vectors:
// testdata/pending/.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/driveway/driveway/internal/atomicfile"
)

// PendingFormat is the first member of a pending reports file.
const PendingFormat = "driveway-client-reports/1"

// PendingFile is the pending reports file's name in the state directory.
const PendingFile = "reports-pending.json"

// MaxPending is the most reports kept for later; MaxPendingBytes the largest file read.
const (
	MaxPending      = 1024
	MaxPendingBytes = 4 << 20
)

// Report is one install report as the edge takes it (rollout's report format).
type Report struct {
	DeviceID    string `json:"deviceId"`
	LabelID     string `json:"labelId"`
	InstanceID  string `json:"instanceId"`
	Result      string `json:"result"`
	Time        string `json:"time"`
	ErrorCode   string `json:"errorCode,omitempty"`
	Build       int    `json:"build,omitempty"`
	CHID        string `json:"chid,omitempty"`
	ReportToken string `json:"reportToken"`
}

type pendingWire struct {
	Format  *string   `json:"format"`
	Reports *[]Report `json:"reports"`
}

// ParsePending decodes a pending reports file's bytes (see the format above).
func ParsePending(b []byte) ([]Report, error) {
	if len(b) > MaxPendingBytes {
		return nil, fmt.Errorf("%d bytes (at most %d)", len(b), MaxPendingBytes)
	}
	var w pendingWire
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("not a pending reports file: %v", err)
	}
	switch {
	case w.Format == nil:
		return nil, errors.New(`member "format" missing`)
	case *w.Format != PendingFormat:
		return nil, fmt.Errorf(`member "format" is %q; this driveway reads %q`, clip(*w.Format), PendingFormat)
	case w.Reports == nil:
		return nil, errors.New(`member "reports" missing`)
	case len(*w.Reports) > MaxPending:
		return nil, fmt.Errorf(`member "reports" holds %d reports (at most %d)`, len(*w.Reports), MaxPending)
	}
	for i, r := range *w.Reports {
		for _, f := range []struct{ name, v string }{{"deviceId", r.DeviceID}, {"labelId", r.LabelID}, {"instanceId", r.InstanceID},
			{"result", r.Result}, {"time", r.Time}, {"reportToken", r.ReportToken}} {
			if f.v == "" {
				return nil, fmt.Errorf(`report %d: member %q missing or empty`, i, f.name)
			}
		}
	}
	return *w.Reports, nil
}

// AppendPending encodes reports as a pending reports file (the newest MaxPending).
func AppendPending(dst []byte, reports []Report) []byte {
	if len(reports) > MaxPending {
		reports = reports[len(reports)-MaxPending:]
	}
	f := PendingFormat
	return append(dst, marshal(pendingWire{Format: &f, Reports: &reports})...) // with its newline
}

// marshal is json.Marshal without HTML escapes (instance ids hold '&'), plus a newline. The
// values marshalled here are strings, integers and times: it cannot fail.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return b.Bytes()
}

// LoadPending reads the state directory's pending reports; a missing file is none.
func LoadPending(dir string) ([]Report, error) {
	p := filepath.Join(dir, PendingFile)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxPendingBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrState, p, err)
	}
	rs, err := ParsePending(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v (install reports kept to send again; move the file away to drop them)", ErrState, p, err)
	}
	return rs, nil
}

// SavePending writes reports as the pending reports file, atomically; none removes it.
func SavePending(dir string, reports []Report) error {
	if len(reports) == 0 {
		err := os.Remove(filepath.Join(dir, PendingFile))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %v", ErrState, err)
		}
		return nil
	}
	if err := atomicfile.Write(filepath.Join(dir, PendingFile), AppendPending(nil, reports), 0o644); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	return nil
}

// maxBatch is the most reports an edge takes in one request.
const maxBatch = 64

// postReports sends the reports, maxBatch a request. It returns the reports to send again
// later (those of a request the edge asked to retry, and every later one) and an ErrReport
// error for the first request not answered 202.
func postReports(ctx context.Context, hc *http.Client, edge string, rs []Report) ([]Report, error) {
	u := strings.TrimSuffix(edge, "/") + "/v1/reports"
	var first error
	for len(rs) > 0 {
		n := min(len(rs), maxBatch)
		b := marshal(rs[:n])
		resp, err := post(ctx, hc, u, b)
		if err != nil {
			return rs, fmt.Errorf("%w: %s: %v (the installs happened; the reports were not sent)", ErrReport, u, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
		case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusNotFound:
			return rs, fmt.Errorf("%w: %s answered %s%s (retry after %s s)", ErrReport, u, resp.Status, edgeError(body), resp.Header.Get("Retry-After"))
		default:
			if first == nil {
				first = fmt.Errorf("%w: %s answered %s%s; %s dropped", ErrReport, u, resp.Status, edgeError(body), plural(n, "report"))
			}
		}
		rs = rs[n:]
	}
	return nil, first
}
