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
