package scan

import "fmt"

// PCI is what a PCI function's configuration space says about it: the fields Windows' PCI
// bus driver builds its identifiers from.
type PCI struct {
	Vendor, Device       uint16 // 00h, 02h
	SubVendor, SubDevice uint16 // 2Ch, 2Eh (the subsystem)
	Revision             uint8  // 08h
	Class                uint32 // 09h-0Bh: base class, subclass, programming interface (0xccsspp)
}

// IDs returns the function's hardware and compatible IDs as Windows 10 and later report
// them, in their order (Microsoft, "Identifiers for PCI devices"; since Windows 10 the
// VEN&DEV&REV and VEN&DEV forms are compatible IDs, not hardware IDs):
//
//	hardware:   PCI\VEN_v&DEV_d&SUBSYS_sn&REV_r, PCI\VEN_v&DEV_d&SUBSYS_sn,
//	            PCI\VEN_v&DEV_d&CC_ccsspp, PCI\VEN_v&DEV_d&CC_ccss
//	compatible: PCI\VEN_v&DEV_d&REV_r, PCI\VEN_v&DEV_d, PCI\VEN_v&CC_ccsspp,
//	            PCI\VEN_v&CC_ccss, PCI\VEN_v, PCI\CC_ccsspp, PCI\CC_ccss
//
// SUBSYS is the subsystem ID followed by the subsystem vendor ID (SUBSYS_00008086 is
// subsystem 0000 of vendor 8086). Hex digits are upper-case.
func (p PCI) IDs() (hardware, compatible []string) {
	vd := fmt.Sprintf(`PCI\VEN_%04X&DEV_%04X`, p.Vendor, p.Device)
	ven := fmt.Sprintf(`PCI\VEN_%04X`, p.Vendor)
	cc := fmt.Sprintf("CC_%06X", p.Class&0xffffff)
	cc4 := cc[:len("CC_ccss")]
	subsys := fmt.Sprintf("&SUBSYS_%04X%04X", p.SubDevice, p.SubVendor)
	rev := fmt.Sprintf("&REV_%02X", p.Revision)
	hardware = []string{vd + subsys + rev, vd + subsys, vd + "&" + cc, vd + "&" + cc4}
	compatible = []string{vd + rev, vd, ven + "&" + cc, ven + "&" + cc4, ven, `PCI\` + cc, `PCI\` + cc4}
	return hardware, compatible
}

// USBDevice is a USB device's device descriptor and the interfaces of its active
// configuration.
type USBDevice struct {
	Vendor, Product uint16 // idVendor, idProduct
	Revision        uint16 // bcdDevice
	Class, SubClass uint8  // bDeviceClass, bDeviceSubClass
	Protocol        uint8  // bDeviceProtocol
	NumInterfaces   int    // bNumInterfaces of the active configuration
	Interfaces      []USBInterface
	Functions       []USBFunction // the active configuration's interface association descriptors
}

// USBFunction is an interface association descriptor: interfaces First to First+Count-1
// make one function, which Windows enumerates as one device node.
type USBFunction struct {
	First, Count    uint8 // bFirstInterface, bInterfaceCount
	Class, SubClass uint8 // bFunctionClass, bFunctionSubClass
	Protocol        uint8 // bFunctionProtocol
}

// USBInterface is one interface descriptor (alternate setting 0).
type USBInterface struct {
	Number          uint8 // bInterfaceNumber
	Class, SubClass uint8 // bInterfaceClass, bInterfaceSubClass
	Protocol        uint8 // bInterfaceProtocol
}

// Composite reports whether Windows enumerates the device as a composite device: the USB
// generic parent driver then creates one device node per interface. That is a device with
// more than one interface whose class is defined per interface (bDeviceClass 00) or that
// uses interface association descriptors (EFh/02h/01h).
func (u *USBDevice) Composite() bool {
	iad := u.Class == 0xef && u.SubClass == 0x02 && u.Protocol == 0x01
	return u.NumInterfaces > 1 && (u.Class == 0 || iad)
}

// Children returns the device nodes the generic parent driver creates for a composite
// device, in interface order, as the interface number and class triple their IDs are made
// of ([USBDevice.InterfaceIDs]). Interfaces an interface association descriptor groups make
// one node, numbered by the function's first interface, with the function's class
// (Microsoft, "Enumeration of interface collections on USB composite devices": the parent
// driver always groups by IADs when there are any); every other interface is a node of its
// own. A device that is not composite has none.
func (u *USBDevice) Children() []USBInterface {
	if !u.Composite() {
		return nil
	}
	var out []USBInterface
	done := map[uint8]bool{}
	for _, i := range u.Interfaces {
		if done[i.Number] {
			continue
		}
		node := i
		for _, f := range u.Functions {
			if f.Count > 0 && i.Number >= f.First && int(i.Number) < int(f.First)+int(f.Count) {
				node = USBInterface{Number: f.First, Class: f.Class, SubClass: f.SubClass, Protocol: f.Protocol}
				for n := int(f.First); n < int(f.First)+int(f.Count); n++ {
					done[uint8(n)] = true
				}
				break
			}
		}
		done[i.Number] = true
		out = append(out, node)
	}
	return out
}

// IDs returns the device node's hardware and compatible IDs (Microsoft, "Standard USB
// identifiers"):
//
//	hardware:   USB\VID_v&PID_d&REV_r, USB\VID_v&PID_d
//	compatible: USB\Class_c&SubClass_s&Prot_p, USB\Class_c&SubClass_s, USB\Class_c
//
// The class triple is the device descriptor's, or, for a device whose class is defined per
// interface (bDeviceClass 00) with one interface, that interface's. A composite device's
// compatible IDs are its device class as USB\DevClass_… followed by USB\COMPOSITE, the ID
// the generic parent driver installs on; its interfaces have IDs of their own
// ([USBDevice.InterfaceIDs]).
func (u *USBDevice) IDs() (hardware, compatible []string) {
	vp := fmt.Sprintf(`USB\VID_%04X&PID_%04X`, u.Vendor, u.Product)
	hardware = []string{vp + fmt.Sprintf("&REV_%04X", u.Revision), vp}
	switch {
	case u.Composite():
		compatible = append(classIDs(`USB\DevClass_`, u.Class, u.SubClass, u.Protocol), `USB\COMPOSITE`)
	case u.Class == 0 && len(u.Interfaces) > 0:
		i := u.Interfaces[0]
		compatible = classIDs(`USB\Class_`, i.Class, i.SubClass, i.Protocol)
	default:
		compatible = classIDs(`USB\Class_`, u.Class, u.SubClass, u.Protocol)
	}
	return hardware, compatible
}

// InterfaceIDs returns the IDs of the device node the generic parent driver creates for
// interface (or function, see [USBDevice.Children]) i of a composite device (Microsoft,
// "Enumeration of interfaces on USB composite devices"):
//
//	hardware:   USB\VID_v&PID_d&REV_r&MI_z, USB\VID_v&PID_d&MI_z
//	compatible: USB\Class_c&SubClass_s&Prot_p, USB\Class_c&SubClass_s, USB\Class_c
//
// from the interface descriptor (z is bInterfaceNumber), or for a function from its
// interface association descriptor (z is bFirstInterface).
func (u *USBDevice) InterfaceIDs(i USBInterface) (hardware, compatible []string) {
	vp := fmt.Sprintf(`USB\VID_%04X&PID_%04X`, u.Vendor, u.Product)
	mi := fmt.Sprintf("&MI_%02X", i.Number)
	hardware = []string{vp + fmt.Sprintf("&REV_%04X", u.Revision) + mi, vp + mi}
	return hardware, classIDs(`USB\Class_`, i.Class, i.SubClass, i.Protocol)
}

func classIDs(prefix string, c, s, p uint8) []string {
	cls := fmt.Sprintf("%s%02X", prefix, c)
	sub := fmt.Sprintf("%s&SubClass_%02X", cls, s)
	return []string{fmt.Sprintf("%s&Prot_%02X", sub, p), sub, cls}
}
