package scan

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driveway/driveway/offer"
)

// FuzzSMBIOS: no table makes the parser panic, hang or read out of bounds; a table it
// accepts gives the same fields through an RSMB blob, and every string field is a string of
// the table.
func FuzzSMBIOS(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "smbios", "*.bin"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{127, 4, 0, 0, 0, 0})
	f.Add([]byte{0, 0x18, 0, 0})
	f.Fuzz(func(t *testing.T, table []byte) {
		fields, err := ParseSMBIOS(table)
		blob := make([]byte, rsmbHeaderLen, rsmbHeaderLen+len(table))
		binary.LittleEndian.PutUint32(blob[4:], uint32(len(table)))
		blob = append(blob, table...)
		fields2, err2 := ParseRSMB(blob)
		if (err == nil) != (err2 == nil) || fields != fields2 {
			t.Fatalf("table: %q, %v; RSMB: %q, %v", fields, err, fields2, err2)
		}
		if err != nil {
			return
		}
		for i, v := range fields {
			if v != "" && !strings.Contains(string(table), v) && !isHexField(i) {
				t.Fatalf("field %d = %q is not in the table", i, v)
			}
		}
	})
}

func isHexField(i int) bool { return i == 6 || i == 7 || i == 8 } // BIOS releases, enclosure type

// FuzzSysfsAttr: the attribute parsers take any bytes, and what they accept prints back
// to the same number.
func FuzzSysfsAttr(f *testing.F) {
	for _, s := range []string{"0x8086\n", "0x03", "0x020000\n", "046d\n", "00", " 2\n", "255", "0x", "", "0xfffff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, digits := range []int{2, 4, 6} {
			for _, prefixed := range []bool{false, true} {
				v, ok := parseHex(b, digits, prefixed)
				if !ok {
					continue
				}
				if v >= 1<<(4*digits) {
					t.Fatalf("parseHex(%q, %d) = %#x: more than %d digits", b, digits, v, digits)
				}
				s := strings.TrimSpace(string(b))
				if prefixed {
					s = s[2:]
				}
				if w, ok := parseHex([]byte(fmt.Sprintf("%x", v)), digits, false); !ok || w != v || !strings.EqualFold(strings.TrimLeft(s, "0"), strings.TrimLeft(fmt.Sprintf("%x", v), "0")) {
					t.Fatalf("parseHex(%q) = %#x does not print back", b, v)
				}
			}
		}
		if n, ok := parseDecimal(b); ok && (n < 0 || n > 255) {
			t.Fatalf("parseDecimal(%q) = %d", b, n)
		}
	})
}

// FuzzSysfsTree writes fuzzed contents into attribute files of a small recorded tree: the
// scan fails with an error or gives a request the edge's decoder accepts.
func FuzzSysfsTree(f *testing.F) {
	f.Add([]byte("0x020000\n"), []byte(" 2\n"), []byte("03\n"))
	f.Add([]byte("0xffffff"), []byte("0"), []byte("ff"))
	f.Add([]byte("0x"), []byte("256"), []byte(""))
	f.Fuzz(func(t *testing.T, class, numIfaces, ifaceClass []byte) {
		root := t.TempDir()
		write := func(rel string, b []byte) {
			p := filepath.Join(root, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		pci := "sys/bus/pci/devices/0000:00:03.0/"
		for name, v := range map[string]string{"vendor": "0x1af4", "device": "0x1041", "subsystem_vendor": "0x1af4", "subsystem_device": "0x1041", "revision": "0x01"} {
			write(pci+name, []byte(v+"\n"))
		}
		write(pci+"class", class)
		usb := "sys/bus/usb/devices/1-1/"
		for name, v := range map[string]string{"idVendor": "046d", "idProduct": "c52b", "bcdDevice": "1211", "bDeviceClass": "00", "bDeviceSubClass": "00", "bDeviceProtocol": "00"} {
			write(usb+name, []byte(v+"\n"))
		}
		write(usb+"bNumInterfaces", numIfaces)
		for i := 0; i < 2; i++ {
			iface := fmt.Sprintf("sys/bus/usb/devices/1-1:1.%d/", i)
			write(iface+"bInterfaceNumber", []byte(fmt.Sprintf("%02x\n", i)))
			write(iface+"bInterfaceClass", ifaceClass)
			write(iface+"bInterfaceSubClass", []byte("01\n"))
			write(iface+"bInterfaceProtocol", []byte("02\n"))
		}
		m, err := ReadSysfs(root)
		if err != nil {
			return
		}
		r, err := m.Request(Options{OS: &OS{Build: 22631, Arch: "amd64"}, DeviceID: "fuzz"})
		if err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var req offer.Request
		if derr := offer.NewDecoder(offer.Limits{}).Decode(body, &req); derr != nil {
			t.Fatalf("the decoder refuses the scan %s: %v", body, derr)
		}
	})
}
