package offer

// This file is the decoder's JSON lexer (RFC 8259): a cursor over the body, the containers
// open at it (for errors' JSON pointers and the nesting limit), and readers of one token or
// value each. Strings with escapes, and strings kept, are written to the Decoder's arena; a
// lone UTF-16 surrogate becomes U+FFFD, as encoding/json does. What the values mean is
// decode.go's.

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/driveway/driveway/catalogs"
)

// pathSeg is one open object or array on the path to the cursor.
type pathSeg struct {
	name []byte // objects: the current member's name as written in the body, quotes included
	n    int    // members or elements begun so far; arrays: the current index is n-1
	arr  bool
	at   bool // a member or element is being read, so the segment names a value
}

// cursor reads a body from left to right.
type cursor struct {
	b []byte
	i int // the next byte to read
}

// ws skips JSON white space.
func (c *cursor) ws() {
	// Most bodies are compact: one test for the byte that is not white space.
	if c.i < len(c.b) && c.b[c.i] > ' ' {
		return
	}
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

// peek returns the next byte, or 0 at the end of the body.
func (c *cursor) peek() byte {
	if c.i < len(c.b) {
		return c.b[c.i]
	}
	return 0
}

// object opens the object at the cursor, or reports that the value is of another type.
func (d *Decoder) object() *Error {
	if d.c.peek() != '{' {
		return d.wrongType("an object")
	}
	return d.open(false)
}

// array opens the array at the cursor, or reports that the value is of another type.
func (d *Decoder) array() *Error {
	if d.c.peek() != '[' {
		return d.wrongType("an array")
	}
	return d.open(true)
}

// open consumes the '{' or '[' at the cursor and pushes its container on the path.
func (d *Decoder) open(arr bool) *Error {
	if d.depth == maxNesting {
		return d.syntax(fmt.Sprintf("nesting deeper than %d levels at byte %d", maxNesting, d.c.i))
	}
	d.path[d.depth] = pathSeg{arr: arr}
	d.depth++
	d.c.i++
	d.c.ws()
	return nil
}

// member moves to the next member of the object open at the top of the path: it consumes a
// ',' and the member's name and ':', leaving the cursor at the value. After the closing '}'
// it pops the object and returns more = false. name is transient (see text).
func (d *Decoder) member() (name []byte, more bool, err *Error) {
	s := &d.path[d.depth-1]
	s.at = false
	d.c.ws()
	c := d.c.peek()
	if s.n > 0 {
		switch c {
		case ',':
			d.c.i++
			d.c.ws()
			c = d.c.peek()
		case '}':
			d.close()
			return nil, false, nil
		default:
			return nil, false, d.unexpected("',' or '}'")
		}
	} else if c == '}' {
		d.close()
		return nil, false, nil
	}
	if c != '"' {
		return nil, false, d.unexpected("a member name")
	}
	start := d.c.i
	if name, err = d.text(false); err != nil {
		return nil, false, err
	}
	raw := d.c.b[start:d.c.i]
	d.c.ws()
	if d.c.peek() != ':' {
		return nil, false, d.unexpected("':'")
	}
	d.c.i++
	d.c.ws()
	s.name, s.n, s.at = raw, s.n+1, true
	return name, true, nil
}

// element moves to the next element of the array open at the top of the path, consuming a
// ',' and leaving the cursor at the value. After the closing ']' it pops the array and
// returns false.
func (d *Decoder) element() (more bool, err *Error) {
	s := &d.path[d.depth-1]
	s.at = false
	d.c.ws()
	c := d.c.peek()
	if s.n > 0 {
		switch c {
		case ',':
			d.c.i++
			d.c.ws()
		case ']':
			d.close()
			return false, nil
		default:
			return false, d.unexpected("',' or ']'")
		}
	} else if c == ']' {
		d.close()
		return false, nil
	}
	s.n, s.at = s.n+1, true
	return true, nil
}

// close consumes the closing byte of the container at the top of the path and pops it.
func (d *Decoder) close() {
	d.c.i++
	d.depth--
}

// skip reads a value of any type, checking its syntax.
func (d *Decoder) skip() *Error {
	switch d.c.peek() {
	case '{':
		if err := d.open(false); err != nil {
			return err
		}
		for {
			_, more, err := d.member()
			if err != nil || !more {
				return err
			}
			if err := d.skip(); err != nil {
				return err
			}
		}
	case '[':
		if err := d.open(true); err != nil {
			return err
		}
		for {
			more, err := d.element()
			if err != nil || !more {
				return err
			}
			if err := d.skip(); err != nil {
				return err
			}
		}
	case '"':
		_, err := d.text(false)
		return err
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		_, _, err := d.number()
		return err
	}
	return d.unexpected("a value")
}

// literal consumes word (true, false or null) at the cursor.
func (d *Decoder) literal(word string) *Error {
	if end := d.c.i + len(word); end > len(d.c.b) || string(d.c.b[d.c.i:end]) != word {
		if d.c.i == 0 {
			return d.syntax("not JSON: a request is a JSON object such as {\"deviceId\": …, \"os\": …, \"devices\": […]} (docs/offers.md)")
		}
		return d.syntax(fmt.Sprintf("malformed literal at byte %d; want %s", d.c.i, word))
	}
	d.c.i += len(word)
	return nil
}

// number consumes a JSON number. It is plain when it has no sign, fraction or exponent and
// is below 1<<60; v is then its value.
func (d *Decoder) number() (v uint64, plain bool, err *Error) {
	b, i := d.c.b, d.c.i
	plain = true
	if i < len(b) && b[i] == '-' {
		plain = false
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
		if i < len(b) && '0' <= b[i] && b[i] <= '9' {
			d.c.i = i
			return 0, false, d.syntax(fmt.Sprintf("number with a leading zero at byte %d", i-1))
		}
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			if v < 1<<60 {
				v = v*10 + uint64(b[i]-'0')
			}
		}
		if v >= 1<<60 {
			plain = false
		}
	default:
		d.c.i = i
		return 0, false, d.unexpected("a digit")
	}
	if i < len(b) && b[i] == '.' {
		plain = false
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, false, d.malformedNumber(j)
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		plain = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, false, d.malformedNumber(j)
		}
		i = j
	}
	d.c.i = i
	return v, plain, nil
}

// skipDigits returns the index after the decimal digits from b[i] (i when there is none).
func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// stringStop marks the bytes that end a run of plain string bytes.
var stringStop = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// plainASCII skips 8 bytes at a time from b[i] while none ends a run (see stringStop) or is
// not ASCII. It returns the first byte that does, when it is in one of those eight-byte
// words, and otherwise where the whole words end.
func plainASCII(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if m := specialBytes(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	return i
}

// specialBytes sets the high bit of the bytes of w (the first in memory lowest, as
// binary.LittleEndian reads them) that are below 0x20, a '"', a '\\' or not ASCII. The
// lowest bit set is exact; bits above it may be set for bytes that are not special (a
// borrow of the subtractions carries into the next byte), so only it is to be used.
func specialBytes(w uint64) uint64 {
	const (
		ones  = 0x0101010101010101 // 0x01 in every byte
		highs = 0x8080808080808080 // the high bit of every byte
	)
	q, bk := w^(ones*'"'), w^(ones*'\\')
	return ((w-ones*0x20)&^w | (q-ones)&^q | (bk-ones)&^bk | w) & highs
}

// text reads the string at the cursor (at its opening quote) and returns its unescaped
// bytes. A kept string is copied into the arena and must be UTF-8; it stays valid until the
// next Decode. A string not kept is transient: it may alias the body or the arena's spare
// capacity, and is valid only until the next string is read.
func (d *Decoder) text(keep bool) ([]byte, *Error) {
	if !keep {
		if s, ok := d.plainText(); ok {
			return s, nil
		}
	}
	b, i := d.c.b, d.c.i+1
	mark := len(d.arena)
	run := i // the first byte not yet copied to the arena
	escaped := false
	var hi byte // the OR of the raw bytes: ≥ 0x80 when some are not ASCII
	for {
		i = plainASCII(b, i)
		for i < len(b) && !stringStop[b[i]] {
			hi |= b[i]
			i++
		}
		if i == len(b) {
			d.c.i = i
			return nil, d.unexpected("'\"' ending a string")
		}
		switch c := b[i]; {
		case c == '"':
			d.c.i = i + 1
			if !keep && !escaped {
				return b[run:i], nil
			}
			d.arena = append(d.arena, b[run:i]...)
			s := d.arena[mark:len(d.arena):len(d.arena)]
			if !keep {
				d.arena = d.arena[:mark]
				return s, nil
			}
			if hi >= utf8.RuneSelf && !utf8.Valid(s) {
				return nil, d.badValue("is not valid UTF-8")
			}
			return s, nil
		case c == '\\':
			d.arena = append(d.arena, b[run:i]...)
			var err *Error
			if i, err = d.unescape(i); err != nil {
				return nil, err
			}
			run, escaped = i, true
		default:
			d.c.i = i
			return nil, d.syntax(fmt.Sprintf("control character 0x%02x in a string at byte %d; write it as \\u%04x", c, i, c))
		}
	}
}

// plainText is text(false) for the strings read most and not kept: member names and the
// values of dates, versions and enums, printable ASCII without an escape. It finds the
// closing quote a word at a time and returns the string in the body; ok false (nothing
// read) when a byte that is not plain comes first or the body ends within eight bytes,
// for text's own loop to read.
func (d *Decoder) plainText() (s []byte, ok bool) {
	b, i := d.c.b, d.c.i+1
	for i+8 <= len(b) {
		m := specialBytes(binary.LittleEndian.Uint64(b[i:]))
		if m == 0 {
			i += 8
			continue
		}
		if j := i + bits.TrailingZeros64(m)>>3; b[j] == '"' {
			s, d.c.i = b[d.c.i+1:j], j+1
			return s, true
		}
		break
	}
	return nil, false
}

// keptText is text(true), in one pass for the strings a request has most of: printable
// ASCII with a `\\` or two, and a `\u0026` for each & from encoders that escape HTML (a
// whole PC sends a thousand hardware IDs and 150 instance IDs, nearly all like that). It
// copies eight-byte words to the arena (load, test, store), upper-casing them first when
// hwid (catalogs.NormalizeHWIDBytes, the form IDs are compared in), instead of a scan, a
// copy per run between escapes and, for an ID, a second pass to normalise. Anything else
// (another escape, a byte that is not ASCII, a control byte, the end of the body) is read
// again from the opening quote by text and normalised after, so errors and results are
// text's (TestKeptText).
//
// The words are stored whole, past the bytes that count: the arena's capacity is at least
// the body's length and no string is longer unescaped, so the write position never passes
// the read position and a store of eight bytes at it fits (checked all the same).
func (d *Decoder) keptText(hwid bool) ([]byte, *Error) {
	b, i := d.c.b, d.c.i+1
	mark := len(d.arena)
	a := d.arena[:cap(d.arena)]
	w := mark
	for {
		if i+8 <= len(b) && w+8 <= len(a) {
			x := binary.LittleEndian.Uint64(b[i:])
			m := specialBytes(x)
			if hwid {
				x = upperASCII(x)
			}
			binary.LittleEndian.PutUint64(a[w:], x)
			if m == 0 {
				i, w = i+8, w+8
				continue
			}
			k := bits.TrailingZeros64(m) >> 3
			i, w = i+k, w+k
		} else {
			for i < len(b) && w < len(a) && !stringStop[b[i]] && b[i] < utf8.RuneSelf {
				c := b[i]
				if hwid {
					c = upperASCII1(c)
				}
				a[w] = c
				i, w = i+1, w+1
			}
			if i == len(b) || w == len(a) {
				break
			}
		}
		switch b[i] {
		case '"':
			d.arena = a[:w]
			d.c.i = i + 1
			return a[mark:w:w], nil
		case '\\':
			// The escapes of a PnP ID: the separator (\\), \/ and \" as they are, and an
			// ASCII character as \u00XX, as encoders that escape HTML write & (\u0026).
			if i+1 < len(b) && (b[i+1] == '\\' || b[i+1] == '/' || b[i+1] == '"') {
				a[w] = b[i+1]
				i, w = i+2, w+1
				continue
			}
			if i+6 <= len(b) && b[i+1] == 'u' && b[i+2] == '0' && b[i+3] == '0' {
				h, ok1 := unhexDigit(b[i+4])
				l, ok2 := unhexDigit(b[i+5])
				if c := h<<4 | l; ok1 && ok2 && c < utf8.RuneSelf {
					if hwid {
						c = upperASCII1(c)
					}
					a[w] = c
					i, w = i+6, w+1
					continue
				}
			}
		}
		break
	}
	d.arena = d.arena[:mark]
	s, err := d.text(true)
	if err == nil && hwid {
		catalogs.NormalizeHWIDBytes(s)
	}
	return s, err
}

// upperASCII upper-cases the ASCII letters of eight bytes, as catalogs.NormalizeHWIDBytes
// does each word (TestUpperASCII holds them together): bytes that are not ASCII stay.
func upperASCII(w uint64) uint64 {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	h := w &^ highs // each byte's low seven bits: the sums below carry into no other byte
	// A byte's high bit: set in h+0x1f when h >= 'a', in h+0x05 when h > 'z', in w when the
	// byte is not ASCII.
	lower := (h + ones*0x1f) &^ (h + ones*0x05) &^ w & highs
	return w ^ lower>>2 // clear 0x20 of each
}

// upperASCII1 is upperASCII for one byte.
func upperASCII1(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// unescape appends the character of the escape at b[i] to the arena and returns the index
// after the escape. A lone UTF-16 surrogate becomes U+FFFD.
func (d *Decoder) unescape(i int) (int, *Error) {
	b := d.c.b
	if i+1 >= len(b) {
		d.c.i = len(b)
		return 0, d.unexpected("an escape")
	}
	c := b[i+1]
	switch c {
	case '"', '\\', '/':
	case 'b':
		c = '\b'
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'u':
		r, ok := parseHex4(b, i+2)
		if !ok {
			d.c.i = i
			return 0, d.syntax(fmt.Sprintf(`malformed \u escape at byte %d; want \u and 4 hex digits`, i))
		}
		i += 6
		if utf16.IsSurrogate(r) {
			r2 := rune(-1)
			if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
				r2, _ = parseHex4(b, i+2)
			}
			if r = utf16.DecodeRune(r, r2); r != utf8.RuneError {
				i += 6 // a valid pair
			}
		}
		d.arena = utf8.AppendRune(d.arena, r)
		return i, nil
	default:
		d.c.i = i
		esc := `\` + string(c)
		if c <= 0x20 || c >= 0x7f {
			esc = fmt.Sprintf("a backslash and byte 0x%02x", c)
		}
		return 0, d.syntax(fmt.Sprintf(`unknown escape %s at byte %d; want one of \" \\ \/ \b \f \n \r \t \uXXXX`, esc, i))
	}
	d.arena = append(d.arena, c)
	return i + 2, nil
}

// parseHex4 reads the 4 hex digits at b[i:].
func parseHex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return -1, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		h, ok := unhexDigit(c)
		if !ok {
			return -1, false
		}
		r = r<<4 | rune(h)
	}
	return r, true
}
