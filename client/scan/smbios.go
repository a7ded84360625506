package scan

// This file reads the raw SMBIOS structure table (DMTF DSP0134) for the fields CHIDs are
// computed from (spec/chid.md). Linux exposes the table as /sys/firmware/dmi/tables/DMI;
// Windows returns it from GetSystemFirmwareTable('RSMB') behind an 8-byte header. The same
// parser reads both.
//
// The table is a sequence of structures, each
//
//	type     [1]   0 BIOS, 1 system, 2 baseboard, 3 enclosure, …, 127 end of table
//	length   [1]   bytes of the formatted area, these 4 header bytes included (>= 4)
//	handle   [2]   little-endian
//	formatted [length-4]
//	strings        zero or more NUL-terminated strings, then one more NUL; a structure
//	               without strings ends with two NULs
//
// A string field in the formatted area is a 1-based index into the structure's strings; 0
// means no string. The fields read (offsets from the start of the structure):
//
//	type 0  04h vendor (string), 05h version (string), 14h/15h BIOS major/minor release
//	        (bytes, SMBIOS 2.4+: present only when length > 15h)
//	type 1  04h manufacturer, 05h product name, 19h SKU number, 1Ah family (strings; SKU
//	        and family from SMBIOS 2.4: present only when the length covers them)
//	type 2  04h manufacturer, 05h product (strings)
//	type 3  05h enclosure type (byte)
//
// BIOS releases are printed as two lower-case hex digits ("02"), the enclosure type as
// lower-case hex without padding ("a"), as Windows and fwupd print them; strings are used
// as they are (case, spaces). Only the first structure of each type counts, as on Windows.
//
// The RSMB blob (Windows' RawSMBIOSData) is
//
//	Used20CallingMethod [1], SMBIOSMajorVersion [1], SMBIOSMinorVersion [1], DmiRevision [1]
//	Length [4] little-endian
//	SMBIOSTableData [Length]   the table above
//
// Bad input is an error naming the structure and offset; nothing in a table can make the
// parser read out of bounds, allocate more than the table's size, or loop.

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/driveway/driveway/catalogs/chid"
)

const (
	structHeaderLen = 4            // type, length, handle
	rsmbHeaderLen   = 8            // RawSMBIOSData before the table
	typeEnd         = 127          // end-of-table structure
	maxTable        = 16 << 20     // bytes of a table we read at most (real ones are a few KiB)
	maxStructures   = maxTable / 6 // a structure is at least 6 bytes; a bound on the loop
)

// ErrSMBIOS marks a table that is not a well-formed SMBIOS structure table.
var ErrSMBIOS = errors.New("scan: malformed SMBIOS table")

// ParseSMBIOS reads the CHID fields from a raw SMBIOS structure table. Fields the table does
// not have stay empty (absent). It fails on a malformed table: a structure shorter than its
// header, a formatted area or string set that runs past the end, or a string index past the
// structure's strings.
func ParseSMBIOS(table []byte) (chid.Fields, error) {
	var f chid.Fields
	if len(table) > maxTable {
		return f, fmt.Errorf("%w: %d bytes; at most %d", ErrSMBIOS, len(table), maxTable)
	}
	var seen [4]bool
	off := 0
	for n := 0; off < len(table) && n < maxStructures; n++ {
		s, next, err := nextStructure(table, off)
		if err != nil {
			return f, err
		}
		if s.typ == typeEnd {
			break
		}
		if s.typ < 4 && !seen[s.typ] {
			seen[s.typ] = true
			if err := s.fields(&f); err != nil {
				return f, err
			}
		}
		off = next
	}
	return f, nil
}

// ParseRSMB reads the CHID fields from the blob GetSystemFirmwareTable('RSMB', 0) returns.
func ParseRSMB(blob []byte) (chid.Fields, error) {
	if len(blob) < rsmbHeaderLen {
		return chid.Fields{}, fmt.Errorf("%w: RSMB blob of %d bytes; its header alone is %d", ErrSMBIOS, len(blob), rsmbHeaderLen)
	}
	n := binary.LittleEndian.Uint32(blob[4:8])
	if uint64(n) > uint64(len(blob)-rsmbHeaderLen) {
		return chid.Fields{}, fmt.Errorf("%w: RSMB header says the table has %d bytes, the blob holds %d", ErrSMBIOS, n, len(blob)-rsmbHeaderLen)
	}
	return ParseSMBIOS(blob[rsmbHeaderLen : rsmbHeaderLen+int(n)])
}

// structure is one structure of a table: its formatted area and its string set.
type structure struct {
	typ     byte
	at      int      // offset in the table, for errors
	data    []byte   // the formatted area, header included
	strings [][]byte // the string set, in order (index 1 is strings[0])
}

// nextStructure reads the structure at off and returns it with the offset of the next.
func nextStructure(t []byte, off int) (structure, int, error) {
	s := structure{at: off}
	if len(t)-off < structHeaderLen {
		return s, 0, fmt.Errorf("%w: %d bytes at offset %d, too short for a structure header (%d)", ErrSMBIOS, len(t)-off, off, structHeaderLen)
	}
	s.typ = t[off]
	length := int(t[off+1])
	switch {
	case length < structHeaderLen:
		return s, 0, fmt.Errorf("%w: structure of type %d at offset %d has length %d, less than its header (%d)", ErrSMBIOS, s.typ, off, length, structHeaderLen)
	case length > len(t)-off:
		return s, 0, fmt.Errorf("%w: structure of type %d at offset %d has length %d, past the end of the table (%d bytes)", ErrSMBIOS, s.typ, off, length, len(t))
	}
	s.data = t[off : off+length]
	p := off + length
	// The string set: strings until an empty one. With no strings, the set is two NULs.
	for {
		end := p
		for end < len(t) && t[end] != 0 {
			end++
		}
		if end == len(t) {
			return s, 0, fmt.Errorf("%w: the strings of structure type %d at offset %d run past the end of the table (no terminating NUL)", ErrSMBIOS, s.typ, off)
		}
		if end == p {
			if len(s.strings) == 0 { // no strings: the second NUL of the pair
				if end+1 >= len(t) || t[end+1] != 0 {
					if end+1 >= len(t) && s.typ == typeEnd {
						return s, end + 1, nil // a table may end right after the end structure's first NUL
					}
					return s, 0, fmt.Errorf("%w: structure type %d at offset %d has no strings and does not end with two NULs", ErrSMBIOS, s.typ, off)
				}
				return s, end + 2, nil
			}
			return s, end + 1, nil
		}
		s.strings = append(s.strings, t[p:end])
		p = end + 1
	}
}

func (s *structure) byteAt(o int) (byte, bool) {
	if o < len(s.data) {
		return s.data[o], true
	}
	return 0, false
}

// str returns the string the index at offset o names ("" when the field is beyond the
// formatted area or the index is 0).
func (s *structure) str(o int) (string, error) {
	i, ok := s.byteAt(o)
	if !ok || i == 0 {
		return "", nil
	}
	if int(i) > len(s.strings) {
		return "", fmt.Errorf("%w: structure type %d at offset %d: the field at %02Xh names string %d, and the structure has %d", ErrSMBIOS, s.typ, s.at, o, i, len(s.strings))
	}
	return string(s.strings[i-1]), nil
}

// fields fills the CHID fields this structure holds.
func (s *structure) fields(f *chid.Fields) error {
	type field struct {
		off int
		to  chid.Field
	}
	var strs []field
	switch s.typ {
	case 0:
		strs = []field{{0x04, chid.BIOSVendor}, {0x05, chid.BIOSVersion}}
		if b, ok := s.byteAt(0x14); ok {
			f[chid.BIOSMajorRelease] = fmt.Sprintf("%02x", b)
		}
		if b, ok := s.byteAt(0x15); ok {
			f[chid.BIOSMinorRelease] = fmt.Sprintf("%02x", b)
		}
	case 1:
		strs = []field{{0x04, chid.Manufacturer}, {0x05, chid.ProductName}, {0x19, chid.SKUNumber}, {0x1a, chid.Family}}
	case 2:
		strs = []field{{0x04, chid.BaseboardManufacturer}, {0x05, chid.BaseboardProduct}}
	case 3:
		if b, ok := s.byteAt(0x05); ok {
			f[chid.EnclosureType] = fmt.Sprintf("%x", b)
		}
	}
	for _, x := range strs {
		v, err := s.str(x.off)
		if err != nil {
			return err
		}
		f[x.to] = v
	}
	return nil
}
