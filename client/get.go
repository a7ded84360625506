package client

// Get: ask an edge, verify, download, install, report.
//
// Get posts the PC's offer request to EDGE/v1/offers and checks the answer with Verify,
// against the release keys, the PC's clock and the state directory's newest verified
// sequence (state.go), and, with a transparency log configured, checks that the release is
// in the log and the log extends the one seen before (GetOptions.Log). A response that does not verify, or any one of whose offers does
// not, is refused as a whole: it came through a path that lies, and nothing in it is acted
// on. A response from an older release than the state's is refused (ErrOld). After a
// verified response the state is raised to its sequence (written atomically) before
// anything is downloaded, so the PC never goes back even if the rest fails.
//
// Then, for each offer of a kind to install (Options.Kinds), in the response's order: the
// package is downloaded (download.go: resumed, its size and sha256 checked against the
// signed record before anything else sees it), handed to the install hook (hook.go), and
// the hook's outcome is reported to EDGE/v1/reports with the offer's reportToken (one
// request for all of them, at the end, after the reports an edge could not store in an
// earlier run: reports.go). Offers of other kinds are listed, not fetched.
// A failure of one offer (download, hash, hook) does not stop the others; Get returns the
// first failure, and the Result says what happened to every offer.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/driveway/driveway/releaselog"
	"github.com/driveway/driveway/signing"
)

// Failure classes of Get besides Verify's errors, ErrDownload, ErrHash and ErrHook.
var (
	ErrUnreachable = errors.New("client: edge unreachable or refused the request")
	ErrUnverified  = errors.New("client: response not verified") // wraps Verify's error; not ErrOld
	ErrReport      = errors.New("client: report refused")
	ErrLog         = errors.New("client: release not proved in the transparency log") // not logged, or a log that forks or goes back
)

// DefaultKinds are the offer kinds Get installs when GetOptions.Kinds is nil: what Windows
// Update installs by itself. optional is listed for a person to choose, dynamic is for an OS
// upgrade in progress.
var DefaultKinds = []string{"automatic", "extension", "rollback"}

// GetOptions configure Get. Edge, Request, Keys, State, HTTP and Now are required.
type GetOptions struct {
	Edge    string // the edge's base URL, e.g. https://drivers.example.com
	Request []byte // the offer request (JSON), as `driveway client scan` prints it
	// Keys and Threshold verify the release statement (the release keys); Catalog pins the
	// catalog ("": the state's, else the first release verified).
	Keys      []*signing.Verifier
	Threshold int
	Catalog   string
	State     string           // the state directory: state.json, downloads/, packages/
	HTTP      *http.Client     // for the edge and the package servers (its timeouts bound every request)
	Now       func() time.Time // the PC's clock: statement expiry, report times
	Kinds     []string         // offer kinds to download and install; nil: DefaultKinds
	Hook      *Hook            // nil: download and check, install nothing, report nothing
	// Log and LogKey, when set, also check each verified release against the catalog's
	// transparency log (package releaselog): its statement must be an entry of the log at a
	// checkpoint signed by LogKey, and that checkpoint must extend the one in the state (a
	// consistency proof), which is then raised to it. A release missing from the log, or a
	// log that forks (a split view) or goes back, is refused (ErrLog).
	Log    releaselog.Source
	LogKey note.Verifier
}

// Result is what Get did. It is meant to be printed (`driveway client get --json`).
type GetResult struct {
	Edge     string `json:"edge"`
	Catalog  string `json:"catalog,omitempty"`
	Sequence uint64 `json:"sequence,omitempty"` // the release the response answered from (verified)
	Previous uint64 `json:"previous"`           // the newest sequence verified before
	Log      string `json:"log,omitempty"`      // the log checkpoint the release was proved in (catalog@size:hash)
	// Refused are the offers Verify refused (the response was then refused as a whole).
	Refused []string       `json:"refused,omitempty"`
	Offers  []OfferOutcome `json:"offers"`
	// Reports is what the edge said to the reports: "accepted", or why not. ReportsSent
	// counts the reports the edge took or refused for good (this run's and those kept from
	// earlier runs), ReportsPending those kept in PendingFile for the next run.
	Reports        string `json:"reports,omitempty"`
	ReportsSent    int    `json:"reportsSent,omitempty"`
	ReportsPending int    `json:"reportsPending,omitempty"`
}

// OfferOutcome is what Get did with one verified offer.
type OfferOutcome struct {
	LabelID       string `json:"labelId"`
	InstanceID    string `json:"instanceId"`
	Kind          string `json:"kind"`
	INF           string `json:"inf"`
	DriverVersion string `json:"driverVersion"`
	URL           string `json:"url"`
	SHA256        string `json:"sha256"`
	Size          uint64 `json:"size"`
	// Action: "listed" (a kind not installed), "downloaded" (no hook), "installed",
	// "install-failed", or "failed" (download or hash: see Error).
	Action   string `json:"action"`
	Package  string `json:"package,omitempty"` // the verified file the hook got
	Resumed  int64  `json:"resumedFrom,omitempty"`
	Fetched  int64  `json:"fetched,omitempty"`
	HookExit *int   `json:"hookExit,omitempty"`
	Report   string `json:"report,omitempty"` // "sent", or why none was
	Error    string `json:"error,omitempty"`
}

// pcRequest is what Get reads of the request for its reports. Only the edge judges the
// request: a member of another type here is left out of the reports, not an error.
type pcRequest struct {
	DeviceID string
	Build    int
	CHID     string // HardwareID-5 (the model), when the request carries CHIDs
}

func readRequest(b []byte) (pcRequest, error) {
	var w struct {
		DeviceID json.RawMessage `json:"deviceId"`
		OS       struct {
			Build json.RawMessage `json:"build"`
		} `json:"os"`
		CHIDs []json.RawMessage `json:"chids"`
	}
	var rq pcRequest
	if !json.Valid(b) {
		return rq, errors.New("client: the request is not JSON")
	}
	if json.Unmarshal(b, &w) != nil {
		return rq, nil // not an object of that shape: the edge says what is wrong
	}
	json.Unmarshal(w.DeviceID, &rq.DeviceID)
	json.Unmarshal(w.OS.Build, &rq.Build)
	if len(w.CHIDs) > 5 {
		json.Unmarshal(w.CHIDs[5], &rq.CHID)
	}
	return rq, nil
}

// tokens is what Get reads of the response besides what Verify checks.
type tokens struct {
	Statement json.RawMessage `json:"statement"`
	Offers    []struct {
		ReportToken string `json:"reportToken"`
	} `json:"offers"`
}

// Get runs the whole flow; see the comment at the top of the file.
func Get(ctx context.Context, opts GetOptions) (*GetResult, error) {
	switch {
	case opts.Now == nil:
		return nil, errors.New("client: GetOptions.Now is required (the PC's clock)")
	case opts.HTTP == nil:
		return nil, errors.New("client: GetOptions.HTTP is required")
	case opts.State == "":
		return nil, errors.New("client: GetOptions.State is required (the directory that keeps the newest verified release)")
	case len(opts.Keys) == 0:
		return nil, errors.New("client: GetOptions.Keys is required (the release public keys)")
	}
	rq, err := readRequest(opts.Request)
	if err != nil {
		return nil, err
	}
	lock, err := lockState(opts.State)
	if err != nil {
		return nil, err
	}
	defer lock.unlock()
	st, err := LoadState(opts.State)
	if err != nil {
		return nil, err
	}
	pending, err := LoadPending(opts.State)
	if err != nil {
		return nil, err
	}
	catalog := opts.Catalog
	if catalog == "" {
		catalog = st.Catalog
	} else if st.Catalog != "" && st.Catalog != catalog {
		return nil, fmt.Errorf("%w: %s holds catalog %q, not %q: use another state directory for another catalog", ErrState, opts.State, st.Catalog, catalog)
	}
	res := &GetResult{Edge: opts.Edge, Previous: st.Sequence, Offers: []OfferOutcome{}}

	body, err := postOffers(ctx, opts.HTTP, opts.Edge, opts.Request)
	if err != nil {
		return res, err
	}
	now := opts.Now()
	v, err := Verify(body, opts.Request, Options{Keys: opts.Keys, Threshold: opts.Threshold, Now: now, Newest: st.Sequence, Catalog: catalog})
	if err != nil {
		if errors.Is(err, ErrOld) {
			return res, err
		}
		return res, fmt.Errorf("%w: %w", ErrUnverified, err)
	}
	if len(v.Errors) > 0 {
		for _, e := range v.Errors {
			res.Refused = append(res.Refused, e.Error())
		}
		return res, fmt.Errorf("%w: %w (%s refused; nothing of this response is acted on)", ErrUnverified, v.Errors[0], plural(len(v.Errors), "offer"))
	}
	var tk tokens
	json.Unmarshal(body, &tk) // Verify parsed the same body
	next := st
	if opts.Log != nil {
		if opts.LogKey == nil {
			return res, errors.New("client: GetOptions.Log needs LogKey (the log's public key)")
		}
		cp, err := releaselog.CheckRelease(opts.Log, opts.LogKey, v.Statement.Catalog, v.Statement.Sequence, tk.Statement, st.Log)
		if err != nil {
			return res, fmt.Errorf("%w: release %d: %w", ErrLog, v.Statement.Sequence, err)
		}
		res.Log = cp.String()
		if st.Log == nil || cp.Size > st.Log.Size {
			next.Log = &cp
		}
	}
	res.Catalog, res.Sequence = v.Statement.Catalog, v.Statement.Sequence
	if v.Statement.Sequence > st.Sequence || st.Catalog == "" {
		next.Catalog, next.Sequence, next.Verified = v.Statement.Catalog, v.Statement.Sequence, now
	}
	if next != st {
		if err := SaveState(opts.State, next); err != nil {
			return res, err
		}
	}

	kinds := opts.Kinds
	if kinds == nil {
		kinds = DefaultKinds
	}
	var first error
	fail := func(err error) {
		if first == nil {
			first = err
		}
	}
	var reports []Report
	for i := range v.Offers {
		o := &v.Offers[i]
		out := OfferOutcome{LabelID: strconv.FormatUint(o.LabelID, 10), InstanceID: o.InstanceID, Kind: o.Kind, INF: o.INF,
			DriverVersion: o.DriverVersion, URL: o.URL, SHA256: o.SHA256, Size: o.Size}
		if !slices.Contains(kinds, o.Kind) {
			out.Action = "listed"
			res.Offers = append(res.Offers, out)
			continue
		}
		d, err := download(ctx, opts.HTTP, opts.State, o)
		if d != nil {
			out.Resumed, out.Fetched = d.Resumed, d.Fetched
		}
		if err != nil {
			out.Action, out.Error = "failed", err.Error()
			res.Offers = append(res.Offers, out)
			fail(err)
			continue
		}
		out.Package = d.Path
		if opts.Hook == nil {
			out.Action = "downloaded"
			res.Offers = append(res.Offers, out)
			continue
		}
		code, err := opts.Hook.run(ctx, opts.State, d.Path, o, v.Statement.Catalog, v.Statement.Sequence)
		out.HookExit = code
		result := "installed"
		out.Action = "installed"
		if err != nil {
			out.Action, out.Error, result = "install-failed", err.Error(), "failed"
			fail(err)
		}
		var token string
		if i < len(tk.Offers) {
			token = tk.Offers[i].ReportToken
		}
		if token == "" {
			out.Report = "not sent: the offer has no reportToken (the edge does not take reports)"
		} else if code == nil && err != nil {
			out.Report = "not sent: the hook did not run"
		} else {
			r := Report{DeviceID: rq.DeviceID, LabelID: out.LabelID, InstanceID: o.InstanceID, Result: result,
				Time: now.UTC().Format(time.RFC3339), Build: rq.Build, CHID: rq.CHID, ReportToken: token}
			if result == "failed" {
				r.ErrorCode = "exit " + strconv.Itoa(*code)
			}
			reports = append(reports, r)
			out.Report = "sent"
		}
		res.Offers = append(res.Offers, out)
	}
	// Reports kept from earlier runs go first (they are older), then this run's.
	if all := append(pending, reports...); len(all) > 0 {
		keep, err := postReports(ctx, opts.HTTP, opts.Edge, all)
		if serr := SavePending(opts.State, keep); serr != nil && err == nil {
			err = serr
		}
		switch {
		case err == nil:
			res.Reports = "accepted"
		case len(keep) > 0:
			res.Reports = fmt.Sprintf("%v; %s kept in %s to send again on the next run", err, plural(len(keep), "report"), PendingFile)
			fail(err)
		default:
			res.Reports = err.Error()
			fail(err)
		}
		res.ReportsSent, res.ReportsPending = len(all)-len(keep), len(keep)
	}
	return res, first
}

// postOffers asks the edge and returns the body of its 200.
func postOffers(ctx context.Context, hc *http.Client, edge string, request []byte) ([]byte, error) {
	u := strings.TrimSuffix(edge, "/") + "/v1/offers"
	resp, err := post(ctx, hc, u, request)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: reading the answer: %v", ErrUnreachable, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered %s%s", ErrUnreachable, u, resp.Status, edgeError(body))
	}
	return body, nil
}

func post(ctx context.Context, hc *http.Client, u string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return hc.Do(req)
}

// edgeError is ": code at field: message" from an edge's error body, or "".
func edgeError(body []byte) string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Code == "" {
		return ""
	}
	s := ": " + clip(e.Error.Code)
	if e.Error.Field != "" {
		s += " at " + clip(e.Error.Field)
	}
	if len(e.Error.Message) > 300 {
		e.Error.Message = e.Error.Message[:300] + "…"
	}
	return s + ": " + e.Error.Message
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
