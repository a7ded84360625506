package scan

// Reading a Linux sysfs tree. The files read, under ROOT:
//
//	sys/bus/pci/devices/ADDR/{vendor,device,subsystem_vendor,subsystem_device}
//	                            "0x8086\n": 1 to 4 hex digits after 0x
//	sys/bus/pci/devices/ADDR/revision   "0x03\n": 1 to 2 hex digits after 0x
//	sys/bus/pci/devices/ADDR/class      "0x020000\n": 1 to 6 hex digits after 0x
//	sys/bus/usb/devices/B-P[.P…]/{idVendor,idProduct,bcdDevice}   "046d\n": 4 hex digits
//	sys/bus/usb/devices/B-P[.P…]/{bDeviceClass,bDeviceSubClass,bDeviceProtocol}  "00\n"
//	sys/bus/usb/devices/B-P[.P…]/bNumInterfaces   " 2\n": decimal, space-padded
//	sys/bus/usb/devices/B-P[.P…]:C.I/{bInterfaceNumber,bInterfaceClass,
//	                            bInterfaceSubClass,bInterfaceProtocol}      "03\n"
//	sys/bus/usb/devices/B-P[.P…]/bConfigurationValue   "1\n": the active configuration
//	sys/bus/usb/devices/B-P[.P…]/descriptors   raw descriptors, for the interface
//	                            association descriptors of a composite device (usbdesc.go)
//	sys/firmware/dmi/tables/DMI         the raw SMBIOS structure table (smbios.go)
//	etc/machine-id                      32 hex digits: the deviceId is derived from it
//
// The root hubs (usbN) and their interfaces are Linux's own device nodes, not USB devices a
// driver is published for (Windows names its root hubs USB\ROOT_HUB…): they are skipped.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const maxAttr = 4096 // bytes of a sysfs attribute file read at most (sysfs files are one page)

// ReadSysfs scans the Linux sysfs tree under root ("/" for this machine). It fails when
// neither sys/bus/pci/devices nor sys/bus/usb/devices can be read, and on any attribute
// file that is unreadable or malformed, naming the file. A missing SMBIOS table is a note,
// not an error; an unreadable one (it is root's alone) is an error.
func ReadSysfs(root string) (*Machine, error) {
	m := &Machine{}
	pciDir := filepath.Join(root, "sys", "bus", "pci", "devices")
	usbDir := filepath.Join(root, "sys", "bus", "usb", "devices")
	pci, perr := os.ReadDir(pciDir)
	usb, uerr := os.ReadDir(usbDir)
	switch {
	case perr != nil && !errors.Is(perr, fs.ErrNotExist):
		return nil, fmt.Errorf("scan: %v", perr)
	case uerr != nil && !errors.Is(uerr, fs.ErrNotExist):
		return nil, fmt.Errorf("scan: %v", uerr)
	case perr != nil && uerr != nil:
		return nil, fmt.Errorf("scan: neither %s nor %s exists: is %s a Linux root with /sys mounted (or, with --root, a recorded tree)?", pciDir, usbDir, root)
	}
	for _, e := range pci {
		d, err := readPCI(filepath.Join(pciDir, e.Name()))
		if err != nil {
			return nil, err
		}
		hw, compat := d.IDs()
		m.Devices = append(m.Devices, Device{InstanceID: hw[0] + `\` + e.Name(), HardwareIDs: hw, CompatibleIDs: compat})
	}
	devs, err := readUSB(usbDir, usb)
	if err != nil {
		return nil, err
	}
	m.Devices = append(m.Devices, devs...)

	dmi := filepath.Join(root, "sys", "firmware", "dmi", "tables", "DMI")
	table, err := readLimited(dmi, maxTable)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		m.Notes = append(m.Notes, fmt.Sprintf("no SMBIOS table (%s): the request has no CHIDs", dmi))
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("scan: %v: the SMBIOS table is readable by root only; run the scan as root (it computes the CHIDs from it)", err)
	case err != nil:
		return nil, fmt.Errorf("scan: %v", err)
	default:
		f, err := ParseSMBIOS(table)
		if err != nil {
			return nil, fmt.Errorf("%w (%s)", err, dmi)
		}
		m.SMBIOS, m.HasSMBIOS = f, true
	}

	id, err := readLimited(filepath.Join(root, "etc", "machine-id"), maxAttr)
	if err == nil {
		m.MachineID = strings.TrimSpace(string(id))
	}
	return m, nil
}

func readPCI(dir string) (PCI, error) {
	var p PCI
	var err error
	attr := func(name string, digits int) uint32 {
		if err != nil {
			return 0
		}
		var v uint32
		v, err = readHex(filepath.Join(dir, name), digits, true)
		return v
	}
	p.Vendor = uint16(attr("vendor", 4))
	p.Device = uint16(attr("device", 4))
	p.SubVendor = uint16(attr("subsystem_vendor", 4))
	p.SubDevice = uint16(attr("subsystem_device", 4))
	p.Revision = uint8(attr("revision", 2))
	p.Class = attr("class", 6)
	return p, err
}

// readUSB reads the USB devices and their interfaces among the entries of dir, and returns
// their device nodes: each device, then each interface of a composite device.
func readUSB(dir string, entries []fs.DirEntry) ([]Device, error) {
	type dev struct {
		name   string
		u      USBDevice
		ifaces []string // the interfaces' directory names, in the order of u.Interfaces
	}
	var devs []*dev
	byName := map[string]*dev{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "usb") || strings.Contains(name, ":") {
			continue
		}
		u, err := readUSBDevice(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		d := &dev{name: name, u: u}
		devs = append(devs, d)
		byName[name] = d
	}
	for _, e := range entries {
		name := e.Name()
		parent, _, ok := strings.Cut(name, ":")
		if !ok {
			continue
		}
		d := byName[parent]
		if d == nil {
			continue // an interface of a root hub
		}
		i, err := readUSBInterface(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		d.u.Interfaces = append(d.u.Interfaces, i)
		d.ifaces = append(d.ifaces, name)
	}
	var out []Device
	for _, d := range devs {
		// sysfs lists 1-1:1.10 before 1-1:1.2: put the interfaces in their numbers' order.
		order := make([]int, len(d.u.Interfaces))
		for k := range order {
			order[k] = k
		}
		sort.SliceStable(order, func(a, b int) bool { return d.u.Interfaces[order[a]].Number < d.u.Interfaces[order[b]].Number })
		ifaces := make([]USBInterface, len(order))
		dirOf := map[uint8]string{}
		for k, o := range order {
			ifaces[k] = d.u.Interfaces[o]
			dirOf[ifaces[k].Number] = d.ifaces[o]
		}
		d.u.Interfaces = ifaces
		if d.u.Composite() {
			fs, err := readUSBFunctions(filepath.Join(dir, d.name))
			if err != nil {
				return nil, err
			}
			d.u.Functions = fs
		}
		hw, compat := d.u.IDs()
		out = append(out, Device{InstanceID: hw[1] + `\` + d.name, HardwareIDs: hw, CompatibleIDs: compat})
		for _, i := range d.u.Children() {
			hw, compat := d.u.InterfaceIDs(i)
			out = append(out, Device{InstanceID: hw[1] + `\` + dirOf[i.Number], HardwareIDs: hw, CompatibleIDs: compat})
		}
	}
	return out, nil
}

// readUSBFunctions reads the interface association descriptors of a device's active
// configuration from its descriptors file; a device without the file (or without
// bConfigurationValue, an unconfigured one) has none.
func readUSBFunctions(dir string) ([]USBFunction, error) {
	cfgPath := filepath.Join(dir, "bConfigurationValue")
	b, err := readLimited(cfgPath, maxAttr)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scan: %v", err)
	}
	cfg, ok := parseDecimal(b)
	if !ok {
		return nil, fmt.Errorf("scan: %s: %q is not a configuration number (0 to 255)", cfgPath, clip(b))
	}
	path := filepath.Join(dir, "descriptors")
	raw, err := readLimited(path, maxDescriptors)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scan: %v", err)
	}
	f, err := ParseUSBFunctions(raw, uint8(cfg))
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return f, nil
}

func readUSBDevice(dir string) (USBDevice, error) {
	var u USBDevice
	var err error
	attr := func(name string, digits int) uint32 {
		if err != nil {
			return 0
		}
		var v uint32
		v, err = readHex(filepath.Join(dir, name), digits, false)
		return v
	}
	u.Vendor = uint16(attr("idVendor", 4))
	u.Product = uint16(attr("idProduct", 4))
	u.Revision = uint16(attr("bcdDevice", 4))
	u.Class = uint8(attr("bDeviceClass", 2))
	u.SubClass = uint8(attr("bDeviceSubClass", 2))
	u.Protocol = uint8(attr("bDeviceProtocol", 2))
	if err != nil {
		return u, err
	}
	path := filepath.Join(dir, "bNumInterfaces")
	b, err := readLimited(path, maxAttr)
	if err != nil {
		return u, fmt.Errorf("scan: %v", err)
	}
	n, ok := parseDecimal(b)
	if !ok {
		return u, fmt.Errorf("scan: %s: %q is not a decimal interface count (0 to 255)", path, clip(b))
	}
	u.NumInterfaces = n
	return u, nil
}

func readUSBInterface(dir string) (USBInterface, error) {
	var i USBInterface
	var err error
	attr := func(name string) uint8 {
		if err != nil {
			return 0
		}
		var v uint32
		v, err = readHex(filepath.Join(dir, name), 2, false)
		return uint8(v)
	}
	i.Number = attr("bInterfaceNumber")
	i.Class = attr("bInterfaceClass")
	i.SubClass = attr("bInterfaceSubClass")
	i.Protocol = attr("bInterfaceProtocol")
	return i, err
}

// readLimited reads at most limit bytes of a file; a longer file is an error.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: longer than %d bytes; not a sysfs attribute", path, limit)
	}
	return b, nil
}

// readHex reads an attribute file holding one hex number of 1 to digits digits, with a 0x
// prefix when prefixed (PCI) and without one otherwise (USB).
func readHex(path string, digits int, prefixed bool) (uint32, error) {
	b, err := readLimited(path, maxAttr)
	if err != nil {
		return 0, fmt.Errorf("scan: %v", err)
	}
	v, ok := parseHex(b, digits, prefixed)
	if !ok {
		want := fmt.Sprintf("1 to %d hex digits", digits)
		if prefixed {
			want += " after 0x"
		}
		return 0, fmt.Errorf("scan: %s: %q is not %s", path, clip(b), want)
	}
	return v, nil
}

// parseHex parses "0x8086\n" (prefixed) or "046d\n": surrounding white space is allowed.
func parseHex(b []byte, digits int, prefixed bool) (uint32, bool) {
	s := strings.TrimSpace(string(b))
	if prefixed {
		if !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
			return 0, false
		}
		s = s[2:]
	}
	if len(s) == 0 || len(s) > digits {
		return 0, false
	}
	var v uint32
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(d)
	}
	return v, true
}

// parseDecimal parses " 2\n": a decimal from 0 to 255 with white space around.
func parseDecimal(b []byte) (int, bool) {
	s := strings.TrimSpace(string(b))
	if len(s) == 0 || len(s) > 3 {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		v = v*10 + int(s[i]-'0')
	}
	return v, v <= 255
}

// clip shortens a bad value for an error message.
func clip(b []byte) string {
	const n = 40
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
