package scan

import (
	"slices"
	"testing"
)

// TestPCIIDs: the IDs of the offer API's example device (spec/offers.md) and of a function
// without a subsystem, in the order of Microsoft's "Identifiers for PCI devices" with the
// Windows 10 move of VEN&DEV&REV and VEN&DEV to the compatible IDs.
func TestPCIIDs(t *testing.T) {
	f := func(p PCI, hw, compat []string) {
		t.Helper()
		gotHW, gotCompat := p.IDs()
		if !slices.Equal(gotHW, hw) {
			t.Errorf("%+v hardware IDs\n%q\nwant\n%q", p, gotHW, hw)
		}
		if !slices.Equal(gotCompat, compat) {
			t.Errorf("%+v compatible IDs\n%q\nwant\n%q", p, gotCompat, compat)
		}
	}
	f(PCI{Vendor: 0x8086, Device: 0x15f3, SubVendor: 0x8086, SubDevice: 0x0000, Revision: 0x03, Class: 0x020000},
		[]string{`PCI\VEN_8086&DEV_15F3&SUBSYS_00008086&REV_03`, `PCI\VEN_8086&DEV_15F3&SUBSYS_00008086`,
			`PCI\VEN_8086&DEV_15F3&CC_020000`, `PCI\VEN_8086&DEV_15F3&CC_0200`},
		[]string{`PCI\VEN_8086&DEV_15F3&REV_03`, `PCI\VEN_8086&DEV_15F3`, `PCI\VEN_8086&CC_020000`,
			`PCI\VEN_8086&CC_0200`, `PCI\VEN_8086`, `PCI\CC_020000`, `PCI\CC_0200`})
	f(PCI{Vendor: 0x10de, Device: 0x2684, SubVendor: 0x1458, SubDevice: 0x40bf, Revision: 0xa1, Class: 0x030000},
		[]string{`PCI\VEN_10DE&DEV_2684&SUBSYS_40BF1458&REV_A1`, `PCI\VEN_10DE&DEV_2684&SUBSYS_40BF1458`,
			`PCI\VEN_10DE&DEV_2684&CC_030000`, `PCI\VEN_10DE&DEV_2684&CC_0300`},
		[]string{`PCI\VEN_10DE&DEV_2684&REV_A1`, `PCI\VEN_10DE&DEV_2684`, `PCI\VEN_10DE&CC_030000`,
			`PCI\VEN_10DE&CC_0300`, `PCI\VEN_10DE`, `PCI\CC_030000`, `PCI\CC_0300`})
	f(PCI{Vendor: 0x8086, Device: 0x0d57, Class: 0x060000}, // no subsystem: Windows still writes SUBSYS_00000000
		[]string{`PCI\VEN_8086&DEV_0D57&SUBSYS_00000000&REV_00`, `PCI\VEN_8086&DEV_0D57&SUBSYS_00000000`,
			`PCI\VEN_8086&DEV_0D57&CC_060000`, `PCI\VEN_8086&DEV_0D57&CC_0600`},
		[]string{`PCI\VEN_8086&DEV_0D57&REV_00`, `PCI\VEN_8086&DEV_0D57`, `PCI\VEN_8086&CC_060000`,
			`PCI\VEN_8086&CC_0600`, `PCI\VEN_8086`, `PCI\CC_060000`, `PCI\CC_0600`})
}

// TestUSBIDs: a single-function device with its class on the device, one with its class on
// its only interface, and a composite device with its interfaces.
func TestUSBIDs(t *testing.T) {
	f := func(name string, u USBDevice, hw, compat []string, ifaces ...[]string) {
		t.Helper()
		gotHW, gotCompat := u.IDs()
		if !slices.Equal(gotHW, hw) || !slices.Equal(gotCompat, compat) {
			t.Errorf("%s: IDs\n%q\n%q\nwant\n%q\n%q", name, gotHW, gotCompat, hw, compat)
		}
		if u.Composite() != (len(ifaces) > 0) {
			t.Errorf("%s: Composite() = %v", name, u.Composite())
		}
		for k, i := range u.Interfaces {
			if k >= len(ifaces)/2 {
				break
			}
			gotHW, gotCompat := u.InterfaceIDs(i)
			if !slices.Equal(gotHW, ifaces[2*k]) || !slices.Equal(gotCompat, ifaces[2*k+1]) {
				t.Errorf("%s: interface %d IDs\n%q\n%q\nwant\n%q\n%q", name, i.Number, gotHW, gotCompat, ifaces[2*k], ifaces[2*k+1])
			}
		}
	}
	f("hub", USBDevice{Vendor: 0x05e3, Product: 0x0608, Revision: 0x8556, Class: 9, Protocol: 1, NumInterfaces: 1,
		Interfaces: []USBInterface{{Class: 9}}},
		[]string{`USB\VID_05E3&PID_0608&REV_8556`, `USB\VID_05E3&PID_0608`},
		[]string{`USB\Class_09&SubClass_00&Prot_01`, `USB\Class_09&SubClass_00`, `USB\Class_09`})
	f("mouse", USBDevice{Vendor: 0x046d, Product: 0xc077, Revision: 0x7200, NumInterfaces: 1,
		Interfaces: []USBInterface{{Class: 3, SubClass: 1, Protocol: 2}}},
		[]string{`USB\VID_046D&PID_C077&REV_7200`, `USB\VID_046D&PID_C077`},
		[]string{`USB\Class_03&SubClass_01&Prot_02`, `USB\Class_03&SubClass_01`, `USB\Class_03`})
	f("receiver", USBDevice{Vendor: 0x046d, Product: 0xc52b, Revision: 0x1211, NumInterfaces: 2,
		Interfaces: []USBInterface{{Number: 0, Class: 3, SubClass: 1, Protocol: 1}, {Number: 1, Class: 3, SubClass: 1, Protocol: 2}}},
		[]string{`USB\VID_046D&PID_C52B&REV_1211`, `USB\VID_046D&PID_C52B`},
		[]string{`USB\DevClass_00&SubClass_00&Prot_00`, `USB\DevClass_00&SubClass_00`, `USB\DevClass_00`, `USB\COMPOSITE`},
		[]string{`USB\VID_046D&PID_C52B&REV_1211&MI_00`, `USB\VID_046D&PID_C52B&MI_00`},
		[]string{`USB\Class_03&SubClass_01&Prot_01`, `USB\Class_03&SubClass_01`, `USB\Class_03`},
		[]string{`USB\VID_046D&PID_C52B&REV_1211&MI_01`, `USB\VID_046D&PID_C52B&MI_01`},
		[]string{`USB\Class_03&SubClass_01&Prot_02`, `USB\Class_03&SubClass_01`, `USB\Class_03`})
	f("vendor class, two interfaces", USBDevice{Vendor: 0x1234, Product: 0x5678, Class: 0xff, NumInterfaces: 2},
		[]string{`USB\VID_1234&PID_5678&REV_0000`, `USB\VID_1234&PID_5678`},
		[]string{`USB\Class_FF&SubClass_00&Prot_00`, `USB\Class_FF&SubClass_00`, `USB\Class_FF`})
}
