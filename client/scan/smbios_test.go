package scan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/driveway/driveway/catalogs/chid"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// conformance is testdata/conformance/chids.json of the repository.
type conformance struct {
	Machines []struct {
		Name   string            `json:"name"`
		SMBIOS map[string]string `json:"smbios"`
		CHIDs  []*string         `json:"chids"`
	} `json:"machines"`
}

func loadConformance(t testing.TB) conformance {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "conformance", "chids.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c conformance
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Machines) == 0 {
		t.Fatal("chids.json has no machines")
	}
	return c
}

// encodeSMBIOS writes a raw SMBIOS 3.x structure table holding fields the way firmware
// does: type 0 (BIOS, 18h bytes), type 1 (system, 1Bh), type 2 (baseboard, 0Fh), type 3
// (enclosure, 16h), then type 127. A field that is absent gets string index 0; the release
// bytes and the enclosure type are written from their hex text. Strings are deduplicated
// per structure, as firmware often does (the same index for two fields).
func encodeSMBIOS(t testing.TB, f map[string]string) []byte {
	t.Helper()
	hexByte := func(name string) byte {
		s, ok := f[name]
		if !ok {
			return 0xff // "not supported"; chids.json machines without it are not CHID-relevant
		}
		v, err := strconv.ParseUint(s, 16, 8)
		if err != nil {
			t.Fatalf("%s %q is not a hex byte", name, s)
		}
		return byte(v)
	}
	var out []byte
	handle := uint16(0)
	structure := func(typ byte, length int, set func(formatted []byte, str func(field string) byte)) {
		formatted := make([]byte, length)
		formatted[0], formatted[1] = typ, byte(length)
		binary.LittleEndian.PutUint16(formatted[2:], handle)
		handle++
		var strs []string
		str := func(field string) byte {
			v := f[field]
			if v == "" {
				return 0
			}
			for i, s := range strs {
				if s == v {
					return byte(i + 1)
				}
			}
			strs = append(strs, v)
			return byte(len(strs))
		}
		set(formatted, str)
		out = append(out, formatted...)
		if len(strs) == 0 {
			out = append(out, 0, 0)
			return
		}
		for _, s := range strs {
			out = append(out, s...)
			out = append(out, 0)
		}
		out = append(out, 0)
	}
	structure(0, 0x18, func(b []byte, str func(string) byte) {
		b[0x04] = str("biosVendor")
		b[0x05] = str("biosVersion")
		b[0x08] = 0 // release date: none
		b[0x14] = hexByte("biosMajorRelease")
		b[0x15] = hexByte("biosMinorRelease")
		b[0x16], b[0x17] = 0xff, 0xff // embedded controller: none
	})
	structure(1, 0x1b, func(b []byte, str func(string) byte) {
		b[0x04] = str("manufacturer")
		b[0x05] = str("productName")
		b[0x18] = 0x06 // wake-up type: power switch
		b[0x19] = str("skuNumber")
		b[0x1a] = str("family")
	})
	structure(2, 0x0f, func(b []byte, str func(string) byte) {
		b[0x04] = str("baseboardManufacturer")
		b[0x05] = str("baseboardProduct")
		b[0x0d] = 0x0a // board type: motherboard
	})
	structure(3, 0x16, func(b []byte, str func(string) byte) {
		b[0x04] = str("manufacturer")
		b[0x05] = 0x03 // desktop, unless given
		if _, ok := f["enclosureType"]; ok {
			b[0x05] = hexByte("enclosureType")
		}
	})
	structure(typeEnd, 4, func([]byte, func(string) byte) {})
	return out
}

// TestSMBIOSConformance encodes every machine of chids.json into a raw table (kept in
// testdata/smbios/ as the recorded tables: -update rewrites them), parses it back and checks
// the CHIDs computed from what the parser read against the vectors, through the bare table
// (Linux's DMI file) and the RSMB blob (Windows).
func TestSMBIOSConformance(t *testing.T) {
	for i, m := range loadConformance(t).Machines {
		t.Run(m.Name, func(t *testing.T) {
			table := encodeSMBIOS(t, m.SMBIOS)
			golden := filepath.Join("testdata", "smbios", fmt.Sprintf("machine%d.bin", i))
			if *update {
				if err := os.WriteFile(golden, table, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(table, want) {
				t.Fatalf("the encoder wrote a table other than %s (go test -update rewrites it)", golden)
			}
			rsmb := append([]byte{0, 3, 6, 0, 0, 0, 0, 0}, want...)
			binary.LittleEndian.PutUint32(rsmb[4:], uint32(len(want)))
			for name, parse := range map[string]func([]byte) (chid.Fields, error){"table": ParseSMBIOS, "rsmb": ParseRSMB} {
				in := want
				if name == "rsmb" {
					in = rsmb
				}
				f, err := parse(in)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for k, v := range m.SMBIOS {
					fi, _ := chid.FieldByName(k)
					if f[fi] != v {
						t.Errorf("%s: field %s = %q; want %q", name, k, f[fi], v)
					}
				}
				ids, present := chid.Compute(&f)
				for n, w := range m.CHIDs {
					got := "null"
					if present&(1<<n) != 0 {
						got = ids[n].String()
					}
					if w == nil && got != "null" || w != nil && got != *w {
						t.Errorf("%s: HardwareID-%d = %s; want %v", name, n, got, deref(w))
					}
				}
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

// TestSMBIOSMalformed: each corruption of a good table is refused with ErrSMBIOS and a
// message naming what is wrong.
func TestSMBIOSMalformed(t *testing.T) {
	good := encodeSMBIOS(t, map[string]string{"manufacturer": "Contoso", "productName": "B13", "biosVendor": "Contoso BIOS"})
	if _, err := ParseSMBIOS(good); err != nil {
		t.Fatal(err)
	}
	mess := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name  string
		table []byte
		want  string
	}{
		{"truncated header", good[:2], "too short for a structure header"},
		{"length below header", mess(func(b []byte) []byte { b[1] = 3; return b }), "less than its header"},
		{"length past end", mess(func(b []byte) []byte { return b[:0x10] }), "past the end of the table"},
		{"strings unterminated", mess(func(b []byte) []byte { return b[:0x18+3] }), "no terminating NUL"},
		{"string index past set", mess(func(b []byte) []byte { b[0x05] = 9; return b }), "names string 9"},
		{"no strings, one NUL", []byte{2, 4, 0, 0, 0, 1}, "does not end with two NULs"},
		{"rsmb short", nil, "RSMB blob"},
		{"rsmb length past blob", []byte{0, 3, 6, 0, 0xff, 0, 0, 0, 127, 4, 0, 0, 0, 0}, "the blob holds"},
	}
	for _, c := range cases {
		parse := ParseSMBIOS
		if c.name[:4] == "rsmb" {
			parse = ParseRSMB
		}
		_, err := parse(c.table)
		if !errors.Is(err, ErrSMBIOS) || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("%s: err = %v; want ErrSMBIOS saying %q", c.name, err, c.want)
		}
	}
}

// TestSMBIOSOldVersions: a table from before SMBIOS 2.4 has no BIOS release bytes, SKU or
// family; those fields are absent, not zero, and the first structure of a type wins.
func TestSMBIOSOldVersions(t *testing.T) {
	table := []byte{
		0, 0x12, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'V', 0, '1', '.', '0', 0, 0, // type 0, 2.3 length
		1, 0x08, 1, 0, 1, 2, 0, 0, 'M', 0, 'P', 0, 0, // type 1, 2.0 length
		1, 0x08, 2, 0, 1, 1, 0, 0, 'X', 0, 0, // a second type 1: ignored
		127, 4, 3, 0, 0, 0,
	}
	f, err := ParseSMBIOS(table)
	if err != nil {
		t.Fatal(err)
	}
	want := chid.Fields{}
	want[chid.BIOSVendor], want[chid.BIOSVersion] = "V", "1.0"
	want[chid.Manufacturer], want[chid.ProductName] = "M", "P"
	if f != want {
		t.Fatalf("ParseSMBIOS = %q; want %q", f, want)
	}
}
