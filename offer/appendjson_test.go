package offer

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// appendJSONByByte is appendJSON's definition, a byte at a time: what the run-at-a-time
// encoder must produce.
func appendJSONByByte(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		default:
			dst = appendEscape(dst, c)
			i++
		}
	}
	return append(dst, '"')
}

// TestAppendJSONEveryByte puts every byte value at every position of 1–17-byte strings
// (so in and after an eight-byte word) over fills that do and do not end a run, and
// compares appendJSON, for []byte and string, with the byte-at-a-time definition.
func TestAppendJSONEveryByte(t *testing.T) {
	fills := []byte{'a', '~', ' ', 0x1f, '"', '\\', 0x7f, 0xc3, 0xa9}
	var got, gotS, want []byte
	for n := 1; n <= 17; n++ {
		for pos := 0; pos < n; pos++ {
			for _, fill := range fills {
				for c := 0; c < 256; c++ {
					b := bytes.Repeat([]byte{fill}, n)
					b[pos] = byte(c)
					want = appendJSONByByte(want[:0], b)
					got = appendJSON(got[:0], b)
					gotS = appendJSON(gotS[:0], string(b))
					if !bytes.Equal(got, want) || !bytes.Equal(gotS, want) {
						t.Fatalf("appendJSON(%q) = %s ([]byte), %s (string); want %s", b, got, gotS, want)
					}
				}
			}
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add([]byte(`PCI\VEN_8086&DEV_15F3&SUBSYS_00008086&REV_03`))
	f.Add([]byte("https://example.com/\"q\"\x00\xe2\x80\xa8\xff\xc3\xa9 tail"))
	f.Fuzz(func(t *testing.T, in []byte) {
		want := appendJSONByByte(nil, in)
		if got := appendJSON(nil, in); !bytes.Equal(got, want) {
			t.Fatalf("appendJSON(%q) = %s; want %s", in, got, want)
		}
		if got := appendJSON(nil, string(in)); !bytes.Equal(got, want) {
			t.Fatalf("appendJSON(string %q) = %s; want %s", in, got, want)
		}
	})
}
