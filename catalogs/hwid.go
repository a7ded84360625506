package catalogs

import (
	"encoding/binary"
	"strings"
)

// NormalizeHWID returns the form in which hardware and compatible IDs are compared: ASCII
// letters upper-cased, every other byte unchanged. PnP IDs are ASCII; a non-ASCII byte is
// kept as it is, so such an ID only matches itself byte for byte. The build normalises each
// label's pnpString once and the edge each requested ID once, both with this function.
func NormalizeHWID(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'a' <= c && c <= 'z' {
			b := []byte(s)
			NormalizeHWIDBytes(b[i:])
			return string(b)
		}
	}
	return s
}

// NormalizeHWIDBytes normalises b in place (see NormalizeHWID). It does not allocate.
// It works on eight bytes at a time: the edge normalises every ID of every request.
func NormalizeHWIDBytes(b []byte) {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		h := w &^ highs // each byte's low seven bits: the sums below carry into no other byte
		// A byte's high bit: set in h+0x1f when h >= 'a', in h+0x05 when h > 'z', in w when
		// the byte is not ASCII.
		lower := (h + ones*0x1f) &^ (h + ones*0x05) &^ w & highs
		if lower != 0 {
			binary.LittleEndian.PutUint64(b[i:], w^lower>>2) // clear 0x20 of each
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
}

// restrictedEnumerators are the ID prefixes the dashboard refuses (L052).
var restrictedEnumerators = []string{
	`PNP`, `*PNP`, `ACPI\PNP`, `BIOS\PNP`, `HID_DEVI`, `SERIAL_M`, `ISAPNP\PNP`, `SERENUM\PNP`,
	`*DONTUSE`, `ROOT\CIRCLASS`, `HID\IRDEVICE`, `STORAGE\VOLUME`, `STORAGE\VOLUMESNAPSHOT`,
}

// CheckHWID applies the dashboard's restrictions to a normalised hardware ID and returns
// the rule it breaks (L051 or L052) with the reason, or "" when it passes. The rules that
// need the label (L050, L053) are the validator's.
func CheckHWID(h string) (code, reason string) {
	enum, rest, ok := strings.Cut(h, `\`)
	if !ok {
		return "L052", "no bus enumerator (an ID looks like ENUM\\DEVICE)"
	}
	for _, p := range restrictedEnumerators {
		if strings.HasPrefix(h, p) {
			return "L052", "enumerator " + p + " is on the dashboard's restricted list"
		}
	}
	if strings.Contains(h, `\CLASS`) || strings.Contains(h, `&CC_`) || strings.Contains(h, `\CC_`) {
		return "L052", "a class-code ID matches every device of a class; publish the device's own ID"
	}
	switch enum {
	case "PCI":
		if !strings.Contains(rest, "DEV_") {
			return "L051", "a PCI ID needs DEV_"
		}
		if v := field(rest, "VEN_", 4); v == "0000" || v == "FFFF" {
			return "L051", "PCI vendor " + v + " is not a real vendor"
		}
		if s := field(rest, "SUBSYS_", 8); len(s) == 8 && (s[4:] == "0000" || s[4:] == "FFFF") {
			return "L051", "PCI subsystem vendor " + s[4:] + " is not a real vendor"
		}
	case "USB":
		if !strings.Contains(rest, "PID_") {
			return "L051", "a USB ID needs PID_"
		}
	}
	return "", ""
}

// field returns the n characters after the first occurrence of key, or "".
func field(s, key string, n int) string {
	i := strings.Index(s, key)
	if i < 0 || len(s) < i+len(key)+n {
		return ""
	}
	return s[i+len(key) : i+len(key)+n]
}

// isTwoPart reports a PCI or HDAUDIO ID without SUBSYS_ (L050).
func isTwoPart(h string) bool {
	return (strings.HasPrefix(h, `PCI\`) || strings.HasPrefix(h, `HDAUDIO\`)) && !strings.Contains(h, "SUBSYS_")
}

// hwidVendor returns the vendor token of an ID ("VEN_8086", "VID_17EF"), or "" when it has
// none (then L053 cannot apply).
func hwidVendor(h string) string {
	_, rest, ok := strings.Cut(h, `\`)
	if !ok {
		return ""
	}
	for _, part := range strings.FieldsFunc(rest, func(r rune) bool { return r == '&' || r == '\\' }) {
		if strings.HasPrefix(part, "VEN_") || strings.HasPrefix(part, "VID_") {
			return part
		}
	}
	return ""
}
