package offer

// This file builds the decoder's errors: the code, a message that names the value by its
// place ("devices[3].driver.date") and says what was wanted, and the value's JSON pointer
// (RFC 6901) as the field. Building them allocates; they are off the hot path.

import (
	"fmt"
	"strconv"
	"strings"
)

const msgClipLen = 40 // bytes of a bad value quoted in an error message

// pointer returns the JSON pointer (RFC 6901) and a dotted name ("devices[3].driver.date")
// of the value at the cursor, or of its member sub when sub is not empty.
func (d *Decoder) pointer(sub string) (ptr, name string) {
	var p, n strings.Builder
	for _, s := range d.path[:d.depth] {
		if !s.at {
			break
		}
		if s.arr {
			i := strconv.Itoa(s.n - 1)
			p.WriteString("/" + i)
			n.WriteString("[" + i + "]")
			continue
		}
		writePointerName(&p, &n, s.name)
	}
	if sub != "" {
		writePointerName(&p, &n, []byte(`"`+sub+`"`))
	}
	if n.Len() == 0 {
		return "", "the request"
	}
	return p.String(), n.String()
}

// writePointerName appends a member name (quoted and escaped as in the body) to a pointer and a
// dotted name.
func writePointerName(p, n *strings.Builder, quoted []byte) {
	t := Decoder{c: cursor{b: quoted}}
	name, _ := t.text(false) // already read once, so it is well-formed
	p.WriteByte('/')
	p.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(string(name)))
	if n.Len() > 0 {
		n.WriteByte('.')
	}
	n.Write(name)
}

// fail returns an error about the value at the cursor (or its member sub); msg follows the
// value's name.
func (d *Decoder) fail(code, sub, msg string) *Error {
	ptr, name := d.pointer(sub)
	return &Error{Code: code, Message: name + " " + msg, Field: ptr}
}

func (d *Decoder) badValue(msg string) *Error { return d.fail(CodeBadValue, "", msg) }

// syntax returns a bad-json error at the cursor's value.
func (d *Decoder) syntax(msg string) *Error {
	ptr, _ := d.pointer("")
	return &Error{Code: CodeBadJSON, Message: msg, Field: ptr}
}

// unexpected reports the byte at the cursor (or the end of the body) where want belongs.
func (d *Decoder) unexpected(want string) *Error {
	if d.c.i >= len(d.c.b) {
		return d.syntax(fmt.Sprintf("the body ends at byte %d; want %s", d.c.i, want))
	}
	return d.syntax(fmt.Sprintf("unexpected %s at byte %d; want %s", describeByte(d.c.b[d.c.i]), d.c.i, want))
}

// malformedNumber reports a number whose fraction or exponent has no digits at b[i].
func (d *Decoder) malformedNumber(i int) *Error {
	d.c.i = i
	return d.unexpected("a digit")
}

func (d *Decoder) duplicate() *Error {
	ptr, name := d.pointer("")
	return &Error{Code: CodeBadJSON, Message: "duplicate member " + name, Field: ptr}
}

func (d *Decoder) missing(sub, want string) *Error {
	return d.fail(CodeMissing, sub, "is missing; want "+want)
}

// wrongType reports the value at the cursor, which is not of type want. What is not a JSON
// value at all is a syntax error.
func (d *Decoder) wrongType(want string) *Error {
	var got string
	switch d.c.peek() {
	case '{':
		got = "an object"
	case '[':
		got = "an array"
	case '"':
		got = "a string"
	case 't', 'f':
		got = "a boolean"
	case 'n':
		got = "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		got = "a number"
	default:
		return d.unexpected("a value")
	}
	return d.fail(CodeBadType, "", "must be "+want+"; got "+got)
}

// tooMany reports the element at the cursor, which is beyond the limit of its array.
func (d *Decoder) tooMany(limit int) *Error {
	top := &d.path[d.depth-1]
	top.at = false
	_, list := d.pointer("")
	top.at = true
	ptr, _ := d.pointer("")
	return &Error{Code: CodeLimit, Message: fmt.Sprintf("%s has more than %d entries; at most %d", list, limit, limit), Field: ptr}
}

// quoteClipped quotes a string value for a message, cutting it when it is long.
func quoteClipped(s []byte) string {
	if len(s) > msgClipLen {
		return strconv.Quote(string(s[:msgClipLen])) + "…"
	}
	return strconv.Quote(string(s))
}

// clipped is quoteClipped for JSON text quoted as it is.
func clipped(s []byte) string {
	if len(s) > msgClipLen {
		return string(s[:msgClipLen]) + "…"
	}
	return string(s)
}

// describeByte names a byte for a message.
func describeByte(c byte) string {
	if 0x20 < c && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}
