package bench

import (
	"strconv"
	"unicode/utf8"
)

// jsonWriter appends one JSON document to a buffer, either compact or indented like
// json.MarshalIndent(v, "", "  ") (the shape of a dashboard export). Members come out in
// the order they are written, so the output is fixed by the code, never by a map. Strings
// are escaped as RFC 8259 requires and no more: '&', '<' and '>' stay as they are, as in
// the dashboard's files.
type jsonWriter struct {
	b       []byte
	indent  bool
	depth   int
	started []bool // per open container: has it a member or element yet
	key     bool   // a member name was just written: the value follows on the same line
}

func (w *jsonWriter) reset(indent bool) {
	w.b, w.indent, w.depth, w.started, w.key = w.b[:0], indent, 0, w.started[:0], false
}

func (w *jsonWriter) newline() {
	if w.indent {
		w.b = append(w.b, '\n')
		for i := 0; i < w.depth; i++ {
			w.b = append(w.b, ' ', ' ')
		}
	}
}

// item starts a value: after a member name it follows directly; in an array it is
// separated from the previous element.
func (w *jsonWriter) item() {
	if w.key {
		w.key = false
		return
	}
	if w.depth == 0 {
		return
	}
	if w.started[w.depth-1] {
		w.b = append(w.b, ',')
	}
	w.started[w.depth-1] = true
	w.newline()
}

// name writes a member name; the next call writes its value.
func (w *jsonWriter) name(k string) {
	if w.started[w.depth-1] {
		w.b = append(w.b, ',')
	}
	w.started[w.depth-1] = true
	w.newline()
	w.b = appendString(w.b, k)
	w.b = append(w.b, ':')
	if w.indent {
		w.b = append(w.b, ' ')
	}
	w.key = true
}

func (w *jsonWriter) open(c byte) {
	w.item()
	w.b = append(w.b, c)
	w.depth++
	if len(w.started) < w.depth {
		w.started = append(w.started, false)
	}
	w.started[w.depth-1] = false
}

func (w *jsonWriter) close(c byte) {
	w.depth--
	if w.started[w.depth] {
		w.newline()
	}
	w.b = append(w.b, c)
}

func (w *jsonWriter) beginObject() { w.open('{') }
func (w *jsonWriter) endObject()   { w.close('}') }
func (w *jsonWriter) beginArray()  { w.open('[') }
func (w *jsonWriter) endArray()    { w.close(']') }

func (w *jsonWriter) str(s string) {
	w.item()
	w.b = appendString(w.b, s)
}

// raw writes a value as it is: a number, true, false, null.
func (w *jsonWriter) raw(s string) {
	w.item()
	w.b = append(w.b, s...)
}

func (w *jsonWriter) int(n int64) {
	w.item()
	w.b = strconv.AppendInt(w.b, n, 10)
}

func (w *jsonWriter) bool(v bool) {
	w.item()
	w.b = strconv.AppendBool(w.b, v)
}

func (w *jsonWriter) null() { w.raw("null") }

// Shorthands for a member and its value.
func (w *jsonWriter) strField(k, v string) { w.name(k); w.str(v) }
func (w *jsonWriter) rawField(k, v string) { w.name(k); w.raw(v) }
func (w *jsonWriter) intField(k string, v int64) {
	w.name(k)
	w.int(v)
}
func (w *jsonWriter) boolField(k string, v bool) { w.name(k); w.bool(v) }

// strings writes an array of strings.
func (w *jsonWriter) strings(k string, list []string) {
	w.name(k)
	w.beginArray()
	for _, s := range list {
		w.str(s)
	}
	w.endArray()
}

// finish ends the document with a newline, as the dashboard's exports do.
func (w *jsonWriter) finish() []byte {
	w.b = append(w.b, '\n')
	return w.b
}

func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
