// Package rollout is the health loop of gradual rollouts: the install reports PCs send to
// edges (POST /v1/reports), the spool edges append them to, the measures aggregated from
// spools, the rollout policy, and the controller step that advances, holds, pauses or
// cancels each rollout from those measures.
//
// # Report format
//
// A report is one JSON object (or an array of up to MaxBatch of them) in a request body:
//
//	{"deviceId": "…", "labelId": "1152921504606978422", "instanceId": "PCI\\…",
//	 "result": "installed", "time": "2026-11-21T12:00:00Z", "errorCode": "0x80070002",
//	 "build": 22631, "chid": "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814",
//	 "reportToken": "AQHIjxAAAAAAAAAAKjs0I3s68ZLUKHOihMqXohw"}
//
// deviceId (1–128 bytes), labelId (a decimal id), instanceId (1–512 bytes), result (one of
// Results) and time (RFC 3339) are required; errorCode (at most 64 bytes), build (the PC's
// OS build) and chid (the PC's HardwareID-5, its model) are optional. reportToken is the
// token that came with the offer of that label to that device (token.go); an edge
// (DecodeOptions.Tokens) requires it and refuses a report whose token is missing, forged,
// for another device or label, or past its TTL (code bad-token, at /reportToken). The body is read as
// strictly as an offer request, and anything wrong is an *Error with the JSON pointer of the
// offending value:
//
//   - UTF-8 JSON (RFC 8259), nested at most 32 deep; a syntax error wins over any other.
//   - Unknown members are errors (bad-value), as are duplicate members (bad-json, at the
//     duplicate) and null (bad-type: leave an optional member out instead).
//   - Strings are valid UTF-8 without lone UTF-16 surrogates, and hold no control characters
//     (U+0000–U+001F, U+007F–U+009F, U+2028, U+2029), escaped or not.
//   - build is a plain integer from 0 to 2147483647.
//   - With DecodeOptions: labelId must name a label of the release the edge serves, and time
//     must lie within MaxAge before and MaxAhead after the edge's clock.
//   - "received" is the edge's: a PC that sends it is refused.
//
// What a spool keeps of a report is less than this (see the spool format in spool.go): a
// pseudonym of deviceId, not deviceId; no instanceId; errorCode only when it is a number.
package rollout

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
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
	// DeviceID is the PC's id as it sent it; in a report read from a spool, its pseudonym
	// (Pseudonym), or the id itself in a line an edge wrote before pseudonyms.
	DeviceID   string    `json:"deviceId"`
	LabelID    string    `json:"labelId"`
	InstanceID string    `json:"instanceId"` // checked, never spooled
	Result     string    `json:"result"`
	Time       time.Time `json:"time"`
	ErrorCode  string    `json:"errorCode,omitempty"` // checked; spooled only when a number (ErrorCode)
	Build      int       `json:"build,omitempty"`
	CHID       string    `json:"chid,omitempty"`
	// ReportToken is the offer's token (checked, never spooled).
	ReportToken string    `json:"reportToken,omitempty"`
	Received    time.Time `json:"received,omitzero"` // set by the edge
	// Source is set by the edge: the network the report came from (its /24 or /48, as
	// SourcePrefix gives it, in text), so that measures can tell failures from many places
	// from a burst from one. A spool stores its pseudonym (SourcePseudonym), which is what
	// a report read from a spool holds.
	Source string `json:"-"`
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
	// CodeBadToken is a report whose reportToken is missing or does not check: the edge
	// answers 403, and the PC drops the report rather than sending it again.
	CodeBadToken = "bad-token"
)

func (e *Error) Error() string { return fmt.Sprintf("%s at %s: %s", e.Code, e.Field, e.Message) }

// Defaults of DecodeOptions (and of the spool options that feed them).
const (
	// DefaultRetention is how long reports are kept and counted: an edge refuses reports
	// older than this, deletes spool files whose newest report is older and that no shipper
	// took, and `rollout measure` ignores older reports. It is the default policy's window.
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultMaxAhead is how far ahead of the edge's clock a report's time may be: PCs'
	// clocks drift, and an install that finished a moment ago may carry a time a little
	// ahead; a report dated further ahead would sit in the measures' future.
	DefaultMaxAhead = time.Hour
)

// DecodeOptions are what reports are checked against besides their format.
type DecodeOptions struct {
	// Now is the edge's clock. A report's time must lie in [Now-MaxAge, Now+MaxAhead];
	// zero: times are not checked against a clock.
	Now      time.Time
	MaxAge   time.Duration // default DefaultRetention
	MaxAhead time.Duration // default DefaultMaxAhead
	// Label reports whether a label id is in the release the edge serves (a PC reports on
	// what it was offered); nil: label ids are checked for form only.
	Label func(id uint64) bool
	// Tokens, when set, makes reportToken required and checks it against the report's
	// deviceId and labelId at Now (or the system-free zero time: set Now with Tokens).
	Tokens *ReportTokens
}

// maxNesting is the deepest nesting of objects and arrays a body may have (as offers').
const maxNesting = 32

// msgClipLen is how many bytes of a bad value an error message quotes.
const msgClipLen = 40

// The members of a report, in the order missing ones are reported.
const (
	fDeviceID = iota
	fLabelID
	fInstanceID
	fResult
	fTime
	fErrorCode
	fBuild
	fCHID
	fReportToken
	fReceived
	numFields
)

var fieldNames = [numFields]string{"deviceId", "labelId", "instanceId", "result", "time", "errorCode", "build", "chid", "reportToken", "received"}

// knownMembers is the list an unknown member's message gives.
var knownMembers = strings.Join(fieldNames[:fReceived], ", ")

// DecodeReports decodes a reports request body: one report or an array of at most MaxBatch.
// Each report is checked completely; the first problem is returned with its pointer.
func DecodeReports(body []byte, opts DecodeOptions) ([]Report, error) {
	if len(body) > MaxBodySize {
		return nil, &Error{CodeLimit, fmt.Sprintf("the body is %d bytes; at most %d", len(body), MaxBodySize), ""}
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultRetention
	}
	if opts.MaxAhead <= 0 {
		opts.MaxAhead = DefaultMaxAhead
	}
	d := decoder{b: body, opts: &opts}
	out := d.body()
	if d.syn != nil {
		return nil, d.syn
	}
	if d.sem != nil {
		return nil, d.sem
	}
	return out, nil
}

// pointer is where a value is: a report (elem; -1 for the body's only one) and one of its
// members. Its JSON pointer is built only for an error.
type pointer struct {
	elem   int
	member []byte
}

func (p pointer) String() string {
	s := ""
	if p.elem >= 0 {
		s = "/" + strconv.Itoa(p.elem)
	}
	if p.member != nil {
		s += "/" + escapePointer(p.member)
	}
	return s
}

var body0 = pointer{elem: -1}

// decoder reads one body: a cursor, the first syntax error (which stops it) and the first
// other error (after which it goes on reading, so that a later syntax error wins).
type decoder struct {
	b    []byte
	i    int
	opts *DecodeOptions
	syn  *Error
	sem  *Error
}

func (d *decoder) syntax(at pointer, msg string) bool {
	if d.syn == nil {
		d.syn = &Error{CodeBadJSON, msg, at.String()}
	}
	return false
}

func (d *decoder) fail(code string, at pointer, msg string) {
	if d.sem == nil {
		d.sem = &Error{code, msg, at.String()}
	}
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// body reads the whole body.
func (d *decoder) body() []Report {
	d.ws()
	var out []Report
	switch d.peek() {
	case 0:
		if d.i >= len(d.b) {
			d.syntax(body0, "the body is empty: send a report object or an array of up to "+strconv.Itoa(MaxBatch))
			return nil
		}
		d.syntax(body0, "not JSON: unexpected byte 0x00")
		return nil
	case '[':
		d.i++
		d.ws()
		n := 0
		if d.peek() == ']' {
			d.i++
		} else {
			for {
				at := pointer{elem: n}
				d.ws()
				if d.peek() == '{' {
					r, ok := d.report(at, 2)
					if !ok {
						return nil
					}
					if n < MaxBatch {
						out = append(out, r)
					}
				} else {
					if !d.skip(at, 2) {
						return nil
					}
					d.fail(CodeBadType, at, "a report is a JSON object")
				}
				n++
				d.ws()
				if d.peek() == ',' {
					d.i++
					continue
				}
				if d.peek() == ']' {
					d.i++
					break
				}
				d.syntax(body0, "expected , or ] after report "+strconv.Itoa(n-1))
				return nil
			}
		}
		if n == 0 || n > MaxBatch {
			d.sem = &Error{CodeLimit, fmt.Sprintf("%d reports in a batch; send 1 to %d", n, MaxBatch), ""}
		}
	case '{':
		r, ok := d.report(body0, 1)
		if !ok {
			return nil
		}
		out = append(out, r)
	default:
		if !d.skip(body0, 1) {
			return nil
		}
		d.fail(CodeBadType, body0, "the body must be a report object or an array of up to "+strconv.Itoa(MaxBatch))
	}
	d.ws()
	if d.i < len(d.b) {
		d.syntax(body0, "trailing data after the reports")
		return nil
	}
	return out
}

// report reads one report object at pointer at, nested depth deep.
func (d *decoder) report(at pointer, depth int) (Report, bool) {
	var r Report
	var seen [numFields]bool
	d.i++ // {
	d.ws()
	if d.peek() == '}' {
		d.i++
	} else {
		for {
			d.ws()
			if d.peek() != '"' {
				return r, d.syntax(at, "expected a member name in double quotes")
			}
			name, ok := d.str(at)
			if !ok {
				return r, false
			}
			d.ws()
			if d.peek() != ':' {
				return r, d.syntax(at, "expected : after member "+quoteClipped(name.b))
			}
			d.i++
			d.ws()
			ptr := pointer{elem: at.elem, member: name.b}
			f := -1
			for k, n := range fieldNames {
				if string(name.b) == n {
					f = k
				}
			}
			switch {
			case name.bad != "":
				if !d.skip(at, depth+1) {
					return r, false
				}
				d.fail(CodeBadJSON, at, "a member name "+name.bad)
			case f < 0:
				if !d.skip(ptr, depth+1) {
					return r, false
				}
				d.fail(CodeBadValue, ptr, "unknown member "+quoteClipped(name.b)+": a report has "+knownMembers)
			case seen[f]:
				if !d.skip(ptr, depth+1) {
					return r, false
				}
				d.fail(CodeBadJSON, ptr, "duplicate member "+quoteClipped(name.b)+": send each member once")
			default:
				seen[f] = true
				if !d.member(&r, f, ptr, depth+1) {
					return r, false
				}
			}
			d.ws()
			if d.peek() == ',' {
				d.i++
				continue
			}
			if d.peek() == '}' {
				d.i++
				break
			}
			return r, d.syntax(at, "expected , or } after member "+quoteClipped(name.b))
		}
	}
	for _, f := range [...]int{fDeviceID, fInstanceID, fLabelID, fResult, fTime} {
		if !seen[f] {
			d.fail(CodeMissing, pointer{elem: at.elem, member: []byte(fieldNames[f])}, fieldNames[f]+" is required"+requiredHint[f])
		}
	}
	if tk := d.opts.Tokens; tk != nil && d.sem == nil { // the token check needs a valid deviceId and labelId
		ptr := pointer{elem: at.elem, member: []byte(fieldNames[fReportToken])}
		label, _ := parseID(r.LabelID)
		if !seen[fReportToken] {
			d.fail(CodeBadToken, ptr, "reportToken is required"+requiredHint[fReportToken])
		} else if _, err := tk.Check(r.ReportToken, r.DeviceID, label, d.opts.Now); err != nil {
			d.fail(CodeBadToken, ptr, "reportToken "+err.Error())
		}
	}
	return r, true
}

var requiredHint = [numFields]string{
	fDeviceID:    " (the PC's id, 1 to 128 bytes)",
	fLabelID:     " (the offered label's id)",
	fInstanceID:  " (the device's PnP instance id)",
	fResult:      " (one of " + strings.Join(Results, ", ") + ")",
	fTime:        " (RFC 3339, such as 2026-11-21T12:00:00Z)",
	fReportToken: " (the reportToken of the offer this report is on: a PC reports only on what it was offered)",
}

// member reads the value of member f of r.
func (d *decoder) member(r *Report, f int, ptr pointer, depth int) bool {
	name := fieldNames[f]
	if f == fBuild {
		c := d.peek()
		if c != '-' && (c < '0' || c > '9') {
			if !d.skip(ptr, depth) {
				return false
			}
			d.fail(CodeBadType, ptr, "build must be a number (the PC's Windows build, such as 22631)")
			return true
		}
		lit, plain, ok := d.number(ptr)
		if !ok {
			return false
		}
		n, ok := parseID(string(lit))
		if !plain || !ok || n > 1<<31-1 {
			d.fail(CodeBadValue, ptr, "build "+clipped(lit)+" is not a Windows build number: a whole number from 0 to 2147483647")
			return true
		}
		r.Build = int(n)
		return true
	}
	if d.peek() != '"' {
		if !d.skip(ptr, depth) {
			return false
		}
		d.fail(CodeBadType, ptr, name+" must be a string")
		return true
	}
	s, ok := d.str(ptr)
	if !ok {
		return false
	}
	if s.bad != "" {
		d.fail(CodeBadValue, ptr, name+" "+s.bad)
		return true
	}
	if err := checkText(name, s.b); err != "" {
		d.fail(CodeBadValue, ptr, err)
		return true
	}
	var v string
	switch f {
	case fResult, fTime: // no copy kept
	default:
		v = string(s.b)
	}
	switch f {
	case fDeviceID:
		d.length(ptr, name, v, 1, 128)
		r.DeviceID = v
	case fInstanceID:
		d.length(ptr, name, v, 1, 512)
		r.InstanceID = v
	case fErrorCode:
		d.length(ptr, name, v, 0, 64)
		r.ErrorCode = v
	case fReportToken:
		d.length(ptr, name, v, 0, 64)
		r.ReportToken = v
	case fLabelID:
		r.LabelID = v
		switch id, ok := parseID(v); {
		case v == "":
			d.fail(CodeMissing, ptr, "labelId is required"+requiredHint[fLabelID])
		case !ok:
			d.fail(CodeBadValue, ptr, "labelId "+quoteClipped(s.b)+" must be a decimal id (up to 20 digits, no leading zero)")
		case d.opts.Label != nil && !d.opts.Label(id):
			d.fail(CodeBadValue, ptr, "labelId "+v+" is not a label of the release this edge serves: report only on drivers it offered")
		}
	case fResult:
		for _, res := range Results {
			if string(s.b) == res {
				r.Result = res
			}
		}
		if r.Result == "" {
			code := CodeBadValue
			if len(s.b) == 0 {
				code = CodeMissing
			}
			d.fail(code, ptr, "result "+quoteClipped(s.b)+" is not one of "+strings.Join(Results, ", "))
		}
	case fTime:
		v = string(s.b)
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			d.fail(CodeBadValue, ptr, "time "+quoteClipped(s.b)+" is not an RFC 3339 time such as 2026-11-21T12:00:00Z")
			return true
		}
		r.Time = t
		if now := d.opts.Now; !now.IsZero() {
			clock := now.UTC().Format(time.RFC3339)
			switch {
			case t.Before(now.Add(-d.opts.MaxAge)):
				d.fail(CodeBadValue, ptr, fmt.Sprintf("time %s is more than %s before the edge's clock (%s): reports are kept that long; check the PC's clock",
					v, formatDuration(d.opts.MaxAge), clock))
			case t.After(now.Add(d.opts.MaxAhead)):
				d.fail(CodeBadValue, ptr, fmt.Sprintf("time %s is more than %s ahead of the edge's clock (%s); check the PC's clock",
					v, formatDuration(d.opts.MaxAhead), clock))
			}
		}
	case fCHID:
		id, err := chid.Parse(v)
		if err != nil {
			d.fail(CodeBadValue, ptr, "chid "+quoteClipped(s.b)+" is not a GUID such as 8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814")
			return true
		}
		r.CHID = id.String()
	case fReceived:
		d.fail(CodeBadValue, ptr, "received is set by the edge, not the PC: leave it out")
	}
	return true
}

func (d *decoder) length(ptr pointer, name, v string, min, max int) {
	switch {
	case len(v) < min:
		d.fail(CodeMissing, ptr, name+" is required"+requiredHint[fieldIndex(name)])
	case len(v) > max:
		d.fail(CodeLimit, ptr, fmt.Sprintf("%s is %d bytes; at most %d", name, len(v), max))
	}
}

func fieldIndex(name string) int {
	for k, n := range fieldNames {
		if n == name {
			return k
		}
	}
	return 0
}

func knownResult(v string) bool { return slices.Contains(Results, v) }

// checkText says what is wrong with a string's characters ("" when nothing): no control
// characters (C0, DEL, C1) and no line or paragraph separators.
func checkText(name string, v []byte) string {
	for i, c := range string(v) {
		if unicode.IsControl(c) || c == '\u2028' || c == '\u2029' {
			return fmt.Sprintf("%s holds the control character U+%04X at byte %d: send printable text", name, c, i)
		}
	}
	return ""
}

// strValue is a decoded string: its bytes, and what makes it unusable ("" when nothing).
type strValue struct {
	b   []byte
	bad string // "is not valid UTF-8", "holds a lone UTF-16 surrogate (\\uD800)"
}

// str reads a string at the cursor (a '"'), unescaping it.
func (d *decoder) str(at pointer) (strValue, bool) {
	var v strValue
	d.i++ // "
	start := d.i
	// The common case: no escapes, all ASCII.
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			v.b = d.b[start:d.i]
			d.i++
			return v, true
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			break
		}
		d.i++
	}
	v.b = append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return v, true
		case c < 0x20:
			return v, d.syntax(at, fmt.Sprintf("a string holds the raw control byte 0x%02X: JSON strings escape control characters", c))
		case c == '\\':
			if d.i+1 >= len(d.b) {
				return v, d.syntax(at, "a string ends inside an escape")
			}
			e := d.b[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				v.b = append(v.b, e)
			case 'b':
				v.b = append(v.b, '\b')
			case 'f':
				v.b = append(v.b, '\f')
			case 'n':
				v.b = append(v.b, '\n')
			case 'r':
				v.b = append(v.b, '\r')
			case 't':
				v.b = append(v.b, '\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return v, d.syntax(at, `a \u escape needs four hex digits`)
				}
				if utf16.IsSurrogate(r) {
					if r < 0xDC00 && d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
						save := d.i
						d.i += 2
						r2, ok := d.hex4()
						if !ok {
							return v, d.syntax(at, `a \u escape needs four hex digits`)
						}
						if c := utf16.DecodeRune(r, r2); c != utf8.RuneError {
							v.b = utf8.AppendRune(v.b, c)
							continue
						}
						d.i = save
					}
					if v.bad == "" {
						v.bad = fmt.Sprintf(`holds a lone UTF-16 surrogate (\u%04X): not a character`, r)
					}
					continue
				}
				v.b = utf8.AppendRune(v.b, r)
			default:
				return v, d.syntax(at, fmt.Sprintf("a string holds the unknown escape \\%c", e))
			}
		case c < 0x80:
			v.b = append(v.b, c)
			d.i++
		default:
			r, n := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && n <= 1 {
				if v.bad == "" {
					v.bad = fmt.Sprintf("is not valid UTF-8 (byte 0x%02X)", c)
				}
				n = 1
			}
			v.b = append(v.b, d.b[d.i:d.i+n]...)
			d.i += n
		}
	}
	return v, d.syntax(at, "a string is not closed")
}

func (d *decoder) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	d.i += 4
	return r, true
}

// number reads a JSON number; plain is true when it is a non-negative integer written
// without a fraction or exponent.
func (d *decoder) number(at pointer) (lit []byte, plain, ok bool) {
	start := d.i
	plain = true
	if d.peek() == '-' {
		plain = false
		d.i++
	}
	switch c := d.peek(); {
	case c == '0':
		d.i++
	case c >= '1' && c <= '9':
		for c := d.peek(); c >= '0' && c <= '9'; c = d.peek() {
			d.i++
		}
	default:
		return nil, false, d.syntax(at, "not a JSON number")
	}
	if d.peek() == '.' {
		plain = false
		d.i++
		if c := d.peek(); c < '0' || c > '9' {
			return nil, false, d.syntax(at, "a number needs digits after its decimal point")
		}
		for c := d.peek(); c >= '0' && c <= '9'; c = d.peek() {
			d.i++
		}
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		plain = false
		d.i++
		if c := d.peek(); c == '+' || c == '-' {
			d.i++
		}
		if c := d.peek(); c < '0' || c > '9' {
			return nil, false, d.syntax(at, "a number needs digits in its exponent")
		}
		for c := d.peek(); c >= '0' && c <= '9'; c = d.peek() {
			d.i++
		}
	}
	return d.b[start:d.i], plain, true
}

// skip reads any JSON value at the cursor for its syntax only.
func (d *decoder) skip(at pointer, depth int) bool {
	if depth > maxNesting {
		return d.syntax(at, fmt.Sprintf("nested deeper than %d", maxNesting))
	}
	switch c := d.peek(); {
	case c == '"':
		_, ok := d.str(at)
		return ok
	case c == '{':
		d.i++
		d.ws()
		if d.peek() == '}' {
			d.i++
			return true
		}
		for {
			d.ws()
			if d.peek() != '"' {
				return d.syntax(at, "expected a member name in double quotes")
			}
			if _, ok := d.str(at); !ok {
				return false
			}
			d.ws()
			if d.peek() != ':' {
				return d.syntax(at, "expected : after a member name")
			}
			d.i++
			d.ws()
			if !d.skip(at, depth+1) {
				return false
			}
			d.ws()
			switch d.peek() {
			case ',':
				d.i++
			case '}':
				d.i++
				return true
			default:
				return d.syntax(at, "expected , or } in an object")
			}
		}
	case c == '[':
		d.i++
		d.ws()
		if d.peek() == ']' {
			d.i++
			return true
		}
		for {
			d.ws()
			if !d.skip(at, depth+1) {
				return false
			}
			d.ws()
			switch d.peek() {
			case ',':
				d.i++
			case ']':
				d.i++
				return true
			default:
				return d.syntax(at, "expected , or ] in an array")
			}
		}
	case c == '-' || (c >= '0' && c <= '9'):
		_, _, ok := d.number(at)
		return ok
	case c == 't', c == 'f', c == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
				d.i += len(lit)
				return true
			}
		}
	}
	if d.i >= len(d.b) {
		return d.syntax(at, "the body ends where a value belongs")
	}
	return d.syntax(at, fmt.Sprintf("not JSON: unexpected %s where a value belongs", quoteByte(d.b[d.i])))
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02X", c)
}

// escapePointer escapes a member name for a JSON pointer (RFC 6901).
func escapePointer(name []byte) string {
	s := string(name)
	if strings.ContainsAny(s, "~/") {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
	}
	return s
}

func quoteClipped(s []byte) string {
	if len(s) > msgClipLen {
		return strconv.Quote(string(s[:msgClipLen])) + "…"
	}
	return strconv.Quote(string(s))
}

func clipped(s []byte) string {
	if len(s) > msgClipLen {
		return string(s[:msgClipLen]) + "…"
	}
	return string(s)
}

// formatDuration writes whole days as days ("720h" reads better as "30 days").
func formatDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// parseID parses a decimal id: 1 to 20 digits without a leading zero, at most 2^64-1.
func parseID(s string) (uint64, bool) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func validID(s string) bool {
	_, ok := parseID(s)
	return ok
}
