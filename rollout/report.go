// Package rollout is the health loop of gradual rollouts: the install reports PCs send to
// edges (POST /v1/reports), the spool edges append them to, the measures aggregated from
// spools, the rollout policy, and the controller step that advances, holds, pauses or
// cancels each rollout from those measures.
//
// # Report format
//
// A report is one JSON object (or an array of up to MaxBatch of them) in a request body,
// and one line of a spool file:
//
//	{"deviceId": "…", "labelId": "1152921504606978422", "instanceId": "PCI\\…",
//	 "result": "installed", "time": "2026-11-21T12:00:00Z", "errorCode": "0x80070002",
//	 "build": 22631, "chid": "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814"}
//
// deviceId (1–128 bytes), labelId (a decimal id), instanceId (1–512 bytes), result (one of
// Results) and time (RFC 3339) are required; errorCode, build (the PC's OS build) and chid
// (the PC's HardwareID-5, its model) are optional and feed the per-cohort measures. The edge
// adds "received", its own clock's time, to every spooled line. Unknown members are errors.
package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/driveway/driveway/catalogs/chid"
)

// Results are the outcomes a PC reports.
var Results = []string{"installed", "failed", "rolled-back", "kernel-crash-after-install", "pnp-error-after-install"}

// Limits on a reports request.
const (
	MaxBatch    = 64
	MaxBodySize = 64 << 10
)

// Report is one install report.
type Report struct {
	DeviceID   string    `json:"deviceId"`
	LabelID    string    `json:"labelId"`
	InstanceID string    `json:"instanceId"`
	Result     string    `json:"result"`
	Time       time.Time `json:"time"`
	ErrorCode  string    `json:"errorCode,omitempty"`
	Build      int       `json:"build,omitempty"`
	CHID       string    `json:"chid,omitempty"`
	Received   time.Time `json:"received,omitzero"` // set by the edge
}

// Failed reports whether the result is a failure of the driver.
func (r *Report) Failed() bool { return r.Result != "installed" }

// Error is a request the edge answers with 400: what is wrong, where (a JSON pointer), and
// one of the error codes offer requests use, so clients handle both endpoints alike.
type Error struct {
	Code    string // bad-json, bad-type, bad-value, missing or limit
	Message string
	Field   string
}

// Error codes (the same as offer requests').
const (
	CodeBadJSON  = "bad-json"
	CodeBadType  = "bad-type"
	CodeBadValue = "bad-value"
	CodeMissing  = "missing"
	CodeLimit    = "limit"
)

func (e *Error) Error() string { return fmt.Sprintf("%s at %s: %s", e.Code, e.Field, e.Message) }

// DecodeReports decodes a reports request body: one report or an array of at most MaxBatch.
// Each report is checked completely; the first problem is returned with its pointer.
func DecodeReports(body []byte) ([]Report, error) {
	if len(body) > MaxBodySize {
		return nil, &Error{CodeLimit, fmt.Sprintf("the body is %d bytes; at most %d", len(body), MaxBodySize), ""}
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	var raws []json.RawMessage
	prefix := ""
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, &Error{CodeBadJSON, "not a JSON array of reports: " + err.Error(), ""}
		}
		if len(raws) == 0 || len(raws) > MaxBatch {
			return nil, &Error{CodeLimit, fmt.Sprintf("%d reports in a batch; send 1 to %d", len(raws), MaxBatch), ""}
		}
		prefix = "/"
	} else {
		raws = []json.RawMessage{body}
	}
	out := make([]Report, 0, len(raws))
	for i, raw := range raws {
		at := ""
		if prefix != "" {
			at = fmt.Sprintf("/%d", i)
		}
		r, err := decodeReport(raw, at)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func decodeReport(raw []byte, at string) (Report, error) {
	var r Report
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return r, &Error{CodeBadType, fmt.Sprintf("%s must be %s", te.Field, te.Type), at + "/" + strings.ReplaceAll(te.Field, ".", "/")}
		}
		if strings.Contains(err.Error(), "unknown field") {
			return r, &Error{CodeBadValue, "not a report: " + err.Error(), at}
		}
		return r, &Error{CodeBadJSON, "not a report: " + err.Error(), at}
	}
	if _, err := dec.Token(); err != io.EOF {
		return r, &Error{CodeBadJSON, "trailing data after the report", at}
	}
	return r, r.check(at)
}

// check applies the report's rules; at is the report's pointer.
func (r *Report) check(at string) error {
	str := func(field, v string, min, max int) error {
		switch {
		case len(v) == 0 && min > 0:
			return &Error{CodeMissing, fmt.Sprintf("%s is required", field), at + "/" + field}
		case len(v) > max:
			return &Error{CodeLimit, fmt.Sprintf("%s is %d bytes; at most %d", field, len(v), max), at + "/" + field}
		case !utf8.ValidString(v):
			return &Error{CodeBadValue, fmt.Sprintf("%s is not valid UTF-8", field), at + "/" + field}
		}
		return nil
	}
	if err := str("deviceId", r.DeviceID, 1, 128); err != nil {
		return err
	}
	if err := str("instanceId", r.InstanceID, 1, 512); err != nil {
		return err
	}
	if r.LabelID == "" {
		return &Error{CodeMissing, "labelId is required", at + "/labelId"}
	}
	if !validID(r.LabelID) {
		return &Error{CodeBadValue, fmt.Sprintf("labelId %q must be a decimal id", r.LabelID), at + "/labelId"}
	}
	known := false
	for _, res := range Results {
		known = known || r.Result == res
	}
	if !known {
		code := CodeBadValue
		if r.Result == "" {
			code = CodeMissing
		}
		return &Error{code, fmt.Sprintf("result %q is not one of %s", r.Result, strings.Join(Results, ", ")), at + "/result"}
	}
	if r.Time.IsZero() {
		return &Error{CodeMissing, "time is required (RFC 3339)", at + "/time"}
	}
	if err := str("errorCode", r.ErrorCode, 0, 64); err != nil {
		return err
	}
	if r.Build < 0 || r.Build > 1<<31-1 {
		return &Error{CodeBadValue, "build must be a Windows build number", at + "/build"}
	}
	if r.CHID != "" {
		id, err := chid.Parse(r.CHID)
		if err != nil {
			return &Error{CodeBadValue, "chid is not a GUID", at + "/chid"}
		}
		r.CHID = id.String()
	}
	if !r.Received.IsZero() {
		return &Error{CodeBadValue, "received is set by the edge, not the PC", at + "/received"}
	}
	return nil
}

func validID(s string) bool {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return false
		}
		n = n*10 + d
	}
	return true
}
