// Package chid computes computer hardware IDs (CHIDs): the fifteen GUIDs Windows derives
// from SMBIOS fields to name a model, a model line or a maker (spec/chid.md; for users
// docs/offers.md, "CHIDs and SMBIOS fields").
//
// HardwareID-N joins the fields of level N (see [Levels]) with "&", encodes the string as
// UTF-16LE with no terminator, and hashes it as a version-5 (SHA-1) UUID in the namespace
// 70ffd812-4c7f-4c7d-0000-000000000000. A level is generated only when every field it needs
// is present and non-empty. Values are case-sensitive and used as they are.
//
// [Hasher] computes them without allocating, for the edge's hot path; [Compute] is the
// convenient form.
package chid

import (
	"crypto/sha1"
	"errors"
	"hash"
	"unicode/utf8"
)

// Field names one SMBIOS field.
type Field uint8

// The fields, in the order of the spec's table.
const (
	Manufacturer          Field = iota // type 1, offset 04h
	Family                             // type 1, 1Ah
	ProductName                        // type 1, 05h
	SKUNumber                          // type 1, 19h
	BIOSVendor                         // type 0, 04h
	BIOSVersion                        // type 0, 05h
	BIOSMajorRelease                   // type 0, 14h, lowercase hex
	BIOSMinorRelease                   // type 0, 15h, lowercase hex
	EnclosureType                      // type 3, 05h, lowercase hex
	BaseboardManufacturer              // type 2, 04h
	BaseboardProduct                   // type 2, 05h
	NumFields
)

// FieldNames are the JSON names of the fields (requests, `driveway chid --smbios`).
var FieldNames = [NumFields]string{
	"manufacturer", "family", "productName", "skuNumber", "biosVendor", "biosVersion",
	"biosMajorRelease", "biosMinorRelease", "enclosureType", "baseboardManufacturer", "baseboardProduct",
}

// FieldByName returns the field with a JSON name.
func FieldByName(name string) (Field, bool) {
	for i, n := range FieldNames {
		if n == name {
			return Field(i), true
		}
	}
	return 0, false
}

// NumLevels is the number of CHIDs Windows computes.
const NumLevels = 15

// Levels lists the fields of each level, HardwareID-0 (most specific) to HardwareID-14.
var Levels = [NumLevels][]Field{
	{Manufacturer, Family, ProductName, SKUNumber, BIOSVendor, BIOSVersion, BIOSMajorRelease, BIOSMinorRelease},
	{Manufacturer, Family, ProductName, BIOSVendor, BIOSVersion, BIOSMajorRelease, BIOSMinorRelease},
	{Manufacturer, ProductName, BIOSVendor, BIOSVersion, BIOSMajorRelease, BIOSMinorRelease},
	{Manufacturer, Family, ProductName, SKUNumber, BaseboardManufacturer, BaseboardProduct},
	{Manufacturer, Family, ProductName, SKUNumber},
	{Manufacturer, Family, ProductName},
	{Manufacturer, SKUNumber, BaseboardManufacturer, BaseboardProduct},
	{Manufacturer, SKUNumber},
	{Manufacturer, ProductName, BaseboardManufacturer, BaseboardProduct},
	{Manufacturer, ProductName},
	{Manufacturer, Family, BaseboardManufacturer, BaseboardProduct},
	{Manufacturer, Family},
	{Manufacturer, EnclosureType},
	{Manufacturer, BaseboardManufacturer, BaseboardProduct},
	{Manufacturer},
}

// ID is a CHID (or any GUID) as its 16 bytes in the order they are printed.
type ID [16]byte

// String prints the ID lowercase with dashes.
func (id ID) String() string { return string(id.Append(nil)) }

// Append appends the printed form of the ID.
func (id ID) Append(dst []byte) []byte {
	const digits = "0123456789abcdef"
	for i, b := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, digits[b>>4], digits[b&15])
	}
	return dst
}

// ErrSyntax is returned for a string that is not a GUID.
var ErrSyntax = errors.New("chid: not a GUID (want 8-4-4-4-12 hex digits)")

// Parse reads a GUID: 8-4-4-4-12 hex digits, either case, optionally in braces.
func Parse(s string) (ID, error) { return ParseBytes([]byte(s)) }

// ParseBytes is Parse for bytes; it does not allocate.
func ParseBytes(s []byte) (ID, error) {
	var id ID
	if len(s) == 38 && s[0] == '{' && s[37] == '}' {
		s = s[1:37]
	}
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, ErrSyntax
	}
	bad := byte(0)
	for j, i := range pairAt {
		hi, lo := hexval[s[i]], hexval[s[i+1]]
		bad |= hi | lo
		id[j] = hi<<4 | lo&0x0f
	}
	if bad&0xf0 != 0 {
		return ID{}, ErrSyntax
	}
	return id, nil
}

// hexval maps a byte to its hex digit value, or 0xff when it is not a hex digit.
var hexval = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
		t[c-'a'+'A'] = byte(c-'a') + 10
	}
	return t
}()

// pairAt is where each byte's two hex digits start in xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
var pairAt = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// namespace is 70ffd812-4c7f-4c7d-0000-000000000000.
var namespace = ID{0x70, 0xff, 0xd8, 0x12, 0x4c, 0x7f, 0x4c, 0x7d}

// Fields holds SMBIOS field values; an empty value is absent.
type Fields [NumFields]string

// Compute returns the fifteen CHIDs of a machine and a mask with bit N set when
// HardwareID-N was generated.
func Compute(f *Fields) (ids [NumLevels]ID, present uint16) {
	var b [NumFields][]byte
	for i, v := range f {
		b[i] = []byte(v)
	}
	var h Hasher
	present = h.Compute(&b, &ids)
	return ids, present
}

// Hasher computes CHIDs; reuse one to compute without allocating. A Hasher is not safe for
// concurrent use.
type Hasher struct {
	sha hash.Hash
	buf []byte
	sum []byte
}

// Compute fills ids with the CHIDs of the fields in f (nil or empty = absent) and returns
// the mask of generated levels. Levels not generated are zeroed.
func (h *Hasher) Compute(f *[NumFields][]byte, ids *[NumLevels]ID) (present uint16) {
	if h.sha == nil {
		h.sha = sha1.New()
	}
level:
	for n, fields := range Levels {
		ids[n] = ID{}
		h.buf = append(h.buf[:0], namespace[:]...)
		for k, fi := range fields {
			v := f[fi]
			if len(v) == 0 {
				continue level
			}
			if k > 0 {
				h.buf = append(h.buf, '&', 0)
			}
			h.buf = appendUTF16LE(h.buf, v)
		}
		h.sha.Reset()
		h.sha.Write(h.buf)
		h.sum = h.sha.Sum(h.sum[:0])
		id := &ids[n]
		copy(id[:], h.sum)
		id[6] = id[6]&0x0f | 0x50 // version 5
		id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
		present |= 1 << n
	}
	return present
}

// appendUTF16LE appends s (UTF-8; invalid bytes become U+FFFD) as UTF-16LE.
func appendUTF16LE(dst, s []byte) []byte {
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		s = s[size:]
		if r >= 0x10000 {
			r -= 0x10000
			hi, lo := 0xd800+(r>>10), 0xdc00+(r&0x3ff)
			dst = append(dst, byte(hi), byte(hi>>8), byte(lo), byte(lo>>8))
			continue
		}
		dst = append(dst, byte(r), byte(r>>8))
	}
	return dst
}
