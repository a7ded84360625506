package catalogs

import "testing"

func TestNormalizeHWID(t *testing.T) {
	for in, want := range map[string]string{
		`pci\ven_8086&dev_15f3&subsys_00008086&rev_03`: `PCI\VEN_8086&DEV_15F3&SUBSYS_00008086&REV_03`,
		`HID\TOASTER&COL02`:                            `HID\TOASTER&COL02`,
		`usb\vid_17ef&pid_1234`:                        `USB\VID_17EF&PID_1234`,
		`uefi\res_{5a1e0c7b-0a3c}&rev_1`:               `UEFI\RES_{5A1E0C7B-0A3C}&REV_1`,
		"acpi\\é":                                      "ACPI\\é", // non-ASCII bytes are kept
		"":                                             "",
	} {
		if got := NormalizeHWID(in); got != want {
			t.Errorf("NormalizeHWID(%q) = %q, want %q", in, got, want)
		}
		b := []byte(in)
		NormalizeHWIDBytes(b)
		if string(b) != want {
			t.Errorf("NormalizeHWIDBytes(%q) = %q, want %q", in, b, want)
		}
	}
}

// normalizeByte is NormalizeHWIDBytes's definition, a byte at a time.
func normalizeByte(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// TestNormalizeHWIDBytesEveryByte puts every byte value at every position of buffers of
// every length up to 17 (whole words and tails), among neighbours that are lower-case,
// upper-case and non-ASCII, and compares with the byte-at-a-time definition.
func TestNormalizeHWIDBytesEveryByte(t *testing.T) {
	fills := []byte{'a', 'Z', 0xff, '`', '{', 0xe1}
	for n := 1; n <= 17; n++ {
		for pos := 0; pos < n; pos++ {
			for _, fill := range fills {
				for c := 0; c < 256; c++ {
					b := make([]byte, n)
					for i := range b {
						b[i] = fill
					}
					b[pos] = byte(c)
					in := string(b)
					NormalizeHWIDBytes(b)
					for i := range b {
						if want := normalizeByte(in[i]); b[i] != want {
							t.Fatalf("NormalizeHWIDBytes(%q): byte %d is %#02x; want %#02x", in, i, b[i], want)
						}
					}
				}
			}
		}
	}
}

func FuzzNormalizeHWIDBytes(f *testing.F) {
	f.Add([]byte(`pci\ven_8086&dev_15f3&subsys_00008086&rev_03`))
	f.Add([]byte("acpi\\\xc3\xa9abcdefghijklmnopqrstuvwxyz`{@["))
	f.Fuzz(func(t *testing.T, in []byte) {
		b := append([]byte(nil), in...)
		NormalizeHWIDBytes(b)
		for i := range b {
			if want := normalizeByte(in[i]); b[i] != want {
				t.Fatalf("NormalizeHWIDBytes(%q): byte %d is %#02x; want %#02x", in, i, b[i], want)
			}
		}
	})
}
