package catalogs

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The label files are decoded in two steps: parseJSON builds a small tree that keeps member
// order, duplicate members and the exact text of numbers (a 19-digit id must not go through
// float64), and reader (reader.go) walks it with JSON pointers so every problem names its
// place. Only what validation needs is kept: no positions beyond the syntax error.

type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonBool
	jsonNumber
	jsonString
	jsonArray
	jsonObject
)

var jsonKindNames = [...]string{"null", "a boolean", "a number", "a string", "an array", "an object"}

type jsonMember struct {
	name string
	val  *jsonValue
}

type jsonValue struct {
	start, end int // the value's byte span in the parsed document
	kind       jsonKind
	b          bool
	text       string // the string, or the number exactly as written
	items      []*jsonValue
	members    []jsonMember // in file order; duplicates kept
}

// member returns the last member with a name, as encoding/json would; nil if absent.
func (v *jsonValue) member(name string) *jsonValue {
	if v == nil || v.kind != jsonObject {
		return nil
	}
	var found *jsonValue
	for i := range v.members {
		if v.members[i].name == name {
			found = v.members[i].val
		}
	}
	return found
}

// count returns how many times a member name occurs.
func (v *jsonValue) count(name string) int {
	n := 0
	if v != nil {
		for _, m := range v.members {
			if m.name == name {
				n++
			}
		}
	}
	return n
}

// maxJSONDepth bounds nesting: label files are a few levels deep; this only stops abuse.
const maxJSONDepth = 64

type jsonParser struct {
	data  []byte
	pos   int
	depth int
}

// parseJSON parses one JSON document. Errors say where (line and column) and what.
func parseJSON(data []byte) (*jsonValue, error) {
	p := &jsonParser{data: data}
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		p.pos = 3 // a UTF-8 byte-order mark, as some Windows tools write
	}
	p.space()
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos < len(p.data) {
		return nil, p.errorf("unexpected %s after the document", p.quoteByte())
	}
	return v, nil
}

func (p *jsonParser) errorf(format string, args ...any) error {
	line, col := 1, 1
	for _, c := range p.data[:min(p.pos, len(p.data))] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Errorf("line %d column %d: %s", line, col, fmt.Sprintf(format, args...))
}

func (p *jsonParser) quoteByte() string {
	if p.pos >= len(p.data) {
		return "end of file"
	}
	return strconv.QuoteRune(rune(p.data[p.pos]))
}

func (p *jsonParser) space() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value() (*jsonValue, error) {
	start := p.pos
	v, err := p.bareValue()
	if v != nil {
		v.start, v.end = start, p.pos
	}
	return v, err
}

func (p *jsonParser) bareValue() (*jsonValue, error) {
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of file")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return &jsonValue{kind: jsonString, text: s}, nil
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number()
	case p.literal("true"):
		return &jsonValue{kind: jsonBool, b: true}, nil
	case p.literal("false"):
		return &jsonValue{kind: jsonBool}, nil
	case p.literal("null"):
		return &jsonValue{kind: jsonNull}, nil
	}
	return nil, p.errorf("unexpected %s", p.quoteByte())
}

func (p *jsonParser) literal(word string) bool {
	if len(p.data)-p.pos >= len(word) && string(p.data[p.pos:p.pos+len(word)]) == word {
		p.pos += len(word)
		return true
	}
	return false
}

func (p *jsonParser) enter() error {
	p.depth++
	if p.depth > maxJSONDepth {
		return p.errorf("nested deeper than %d levels", maxJSONDepth)
	}
	return nil
}

func (p *jsonParser) object() (*jsonValue, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.pos++ // {
	v := &jsonValue{kind: jsonObject}
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		p.depth--
		return v, nil
	}
	for {
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("expected a member name, found %s", p.quoteByte())
		}
		name, err := p.str()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("expected ':' after member %q, found %s", name, p.quoteByte())
		}
		p.pos++
		p.space()
		val, err := p.value()
		if err != nil {
			return nil, err
		}
		v.members = append(v.members, jsonMember{name, val})
		p.space()
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == '}' {
			p.pos++
			p.depth--
			return v, nil
		}
		return nil, p.errorf("expected ',' or '}' in an object, found %s", p.quoteByte())
	}
}

func (p *jsonParser) array() (*jsonValue, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.pos++ // [
	v := &jsonValue{kind: jsonArray}
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.depth--
		return v, nil
	}
	for {
		p.space()
		item, err := p.value()
		if err != nil {
			return nil, err
		}
		v.items = append(v.items, item)
		p.space()
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == ']' {
			p.pos++
			p.depth--
			return v, nil
		}
		return nil, p.errorf("expected ',' or ']' in an array, found %s", p.quoteByte())
	}
}

func (p *jsonParser) number() (*jsonValue, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && '0' <= p.data[p.pos] && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	intStart := p.pos
	if n := digits(); n == 0 || (n > 1 && p.data[intStart] == '0') {
		return nil, p.errorf("malformed number")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return nil, p.errorf("malformed number")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.errorf("malformed number")
		}
	}
	return &jsonValue{kind: jsonNumber, text: string(p.data[start:p.pos])}, nil
}

// str parses a string at p.pos (which is '"'), with every JSON escape.
func (p *jsonParser) str() (string, error) {
	p.pos++ // "
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.data[start:p.pos]
			p.pos++
			if !utf8.Valid(s) {
				return "", p.errorf("string is not valid UTF-8")
			}
			return string(s), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	buf := append([]byte(nil), p.data[start:p.pos]...)
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !utf8.Valid(buf) {
				return "", p.errorf("string is not valid UTF-8")
			}
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf("control character %#x in a string", c)
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		p.pos++ // backslash
		if p.pos >= len(p.data) {
			break
		}
		e := p.data[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf("malformed \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
					save := p.pos
					p.pos += 2
					if lo, ok := p.hex4(); ok && utf16.DecodeRune(r, lo) != utf8.RuneError {
						r2 = utf16.DecodeRune(r, lo)
					} else {
						p.pos = save
					}
				}
				r = r2
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.errorf("unknown escape \\%c", e)
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	p.pos += 4
	return r, true
}
