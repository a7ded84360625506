//go:build windows

package scan

// Scanning Windows itself: SetupAPI for the devices, GetSystemFirmwareTable for the SMBIOS
// table, RtlGetVersion and the registry for the OS and the machine id.

import (
	"debug/pe"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// rsmb is the firmware table provider 'RSMB' (the raw SMBIOS table) as the DWORD
// GetSystemFirmwareTable takes.
const rsmb = 'R'<<24 | 'S'<<16 | 'M'<<8 | 'B'

// The installed driver's device properties (devpkey.h): the category
// {a8b865dd-2e3d-4094-ad97-e593a70c75d6}, property 2 DriverDate (FILETIME), 3 DriverVersion
// (string), 14 DriverRank (UINT32).
var driverCategory = windows.DEVPROPGUID{Data1: 0xa8b865dd, Data2: 0x2e3d, Data3: 0x4094, Data4: [8]byte{0xad, 0x97, 0xe5, 0x93, 0xa7, 0x0c, 0x75, 0xd6}}

const (
	pidDriverDate    = 2
	pidDriverVersion = 3
	pidDriverRank    = 14
)

// Local scans this Windows machine: every present device of every class (SetupAPI,
// DIGCF_PRESENT|DIGCF_ALLCLASSES) with its hardware and compatible IDs and installed
// driver, the SMBIOS table (GetSystemFirmwareTable('RSMB')), the OS build, UBR,
// architecture and SKU, and MachineGuid.
func Local() (*Machine, error) {
	m := &Machine{}
	setupapi := windows.NewLazySystemDLL("setupapi.dll").NewProc("SetupDiGetDevicePropertyW")
	if err := setupapi.Find(); err != nil {
		return nil, fmt.Errorf("scan: %v", err)
	}
	set, err := windows.SetupDiGetClassDevsEx(nil, "", 0, windows.DIGCF_PRESENT|windows.DIGCF_ALLCLASSES, 0, "")
	if err != nil {
		return nil, fmt.Errorf("scan: SetupDiGetClassDevsEx: %v", err)
	}
	defer set.Close()
	for i := 0; ; i++ {
		data, err := set.EnumDeviceInfo(i)
		if errors.Is(err, windows.ERROR_NO_MORE_ITEMS) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("scan: SetupDiEnumDeviceInfo(%d): %v", i, err)
		}
		d, ok, err := readDevice(set, data, setupapi, m)
		if err != nil {
			return nil, err
		}
		if ok {
			m.Devices = append(m.Devices, d)
		}
	}

	if blob, err := firmwareTable(rsmb); err != nil {
		m.Notes = append(m.Notes, fmt.Sprintf("no SMBIOS table (GetSystemFirmwareTable('RSMB'): %v): the request has no CHIDs", err))
	} else {
		f, err := ParseRSMB(blob)
		if err != nil {
			return nil, fmt.Errorf("%w (GetSystemFirmwareTable('RSMB'))", err)
		}
		m.SMBIOS, m.HasSMBIOS = f, true
	}

	os, err := windowsVersion()
	if err != nil {
		return nil, err
	}
	m.OS = os
	if k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SOFTWARE\Microsoft\Cryptography`, registry.QUERY_VALUE|registry.WOW64_64KEY); err == nil {
		m.MachineID, _, _ = k.GetStringValue("MachineGuid")
		k.Close()
	}
	return m, nil
}

// readDevice reads one device node; ok is false for a node without any ID.
func readDevice(set windows.DevInfo, data *windows.DevInfoData, prop *windows.LazyProc, m *Machine) (Device, bool, error) {
	var d Device
	id, err := set.DeviceInstanceID(data)
	if err != nil {
		return d, false, fmt.Errorf("scan: SetupDiGetDeviceInstanceId: %v", err)
	}
	d.InstanceID = id
	d.HardwareIDs = multiString(set, data, windows.SPDRP_HARDWAREID)
	d.CompatibleIDs = multiString(set, data, windows.SPDRP_COMPATIBLEIDS)
	if len(d.HardwareIDs) == 0 && len(d.CompatibleIDs) == 0 {
		return d, false, nil
	}
	for _, l := range []*[]string{&d.HardwareIDs, &d.CompatibleIDs} {
		if len(*l) > maxIDs {
			m.Notes = append(m.Notes, fmt.Sprintf("%s has %d IDs in one list; the request keeps the %d most specific", id, len(*l), maxIDs))
			*l = (*l)[:maxIDs]
		}
	}
	if d.HardwareIDs == nil {
		d.HardwareIDs = []string{}
	}
	if d.CompatibleIDs == nil {
		d.CompatibleIDs = []string{}
	}
	d.Driver = installedDriver(set, data, prop)
	return d, true, nil
}

// multiString reads a REG_MULTI_SZ device registry property; a device without it has none.
func multiString(set windows.DevInfo, data *windows.DevInfoData, p windows.SPDRP) []string {
	v, err := set.DeviceRegistryProperty(data, p)
	if err != nil {
		return nil
	}
	l, _ := v.([]string)
	return l
}

// installedDriver reads the device's driver date, version and rank; nil when the device has
// no driver installed.
func installedDriver(set windows.DevInfo, data *windows.DevInfoData, prop *windows.LazyProc) *Driver {
	var ver [256]uint16
	if !deviceProperty(prop, set, data, pidDriverVersion, windows.DEVPROP_TYPE_STRING, unsafe.Pointer(&ver[0]), uint32(len(ver)*2)) {
		return nil
	}
	var ft windows.Filetime
	if !deviceProperty(prop, set, data, pidDriverDate, windows.DEVPROP_TYPE_FILETIME, unsafe.Pointer(&ft), uint32(unsafe.Sizeof(ft))) {
		return nil
	}
	d := &Driver{
		Version: windows.UTF16ToString(ver[:]),
		// A driver date is a day: INF DriverVer dates are stored as midnight UTC.
		Date: time.Unix(0, ft.Nanoseconds()).UTC().Format("2006-01-02"),
	}
	var rank uint32
	if deviceProperty(prop, set, data, pidDriverRank, windows.DEVPROP_TYPE_UINT32, unsafe.Pointer(&rank), 4) {
		d.Rank = fmt.Sprintf("%08X", rank)
	}
	return d
}

// deviceProperty reads one property of the driver category into buf (size bytes) and
// reports whether it is there with the type want.
func deviceProperty(prop *windows.LazyProc, set windows.DevInfo, data *windows.DevInfoData, pid windows.DEVPROPID, want windows.DEVPROPTYPE, buf unsafe.Pointer, size uint32) bool {
	key := windows.DEVPROPKEY{FmtID: driverCategory, PID: pid}
	var typ windows.DEVPROPTYPE
	var required uint32
	r, _, _ := prop.Call(uintptr(set), uintptr(unsafe.Pointer(data)), uintptr(unsafe.Pointer(&key)),
		uintptr(unsafe.Pointer(&typ)), uintptr(buf), uintptr(size), uintptr(unsafe.Pointer(&required)), 0)
	return r != 0 && typ == want
}

// firmwareTable returns GetSystemFirmwareTable(provider, 0).
func firmwareTable(provider uint32) ([]byte, error) {
	proc := windows.NewLazySystemDLL("kernel32.dll").NewProc("GetSystemFirmwareTable")
	if err := proc.Find(); err != nil {
		return nil, err
	}
	n, _, err := proc.Call(uintptr(provider), 0, 0, 0)
	if n == 0 {
		return nil, err
	}
	if n > maxTable+rsmbHeaderLen {
		return nil, fmt.Errorf("a table of %d bytes; at most %d", n, maxTable)
	}
	buf := make([]byte, n)
	got, _, err := proc.Call(uintptr(provider), 0, uintptr(unsafe.Pointer(&buf[0])), n)
	if got == 0 || got > n {
		return nil, err
	}
	return buf[:got], nil
}

// windowsVersion reads the OS: build (RtlGetVersion, which no compatibility shim lies to),
// UBR (the registry), the native architecture (IsWow64Process2) and the SKU (the product
// type: workstation is client).
func windowsVersion() (*OS, error) {
	v := windows.RtlGetVersion()
	os := &OS{Build: v.BuildNumber, SKU: "server"}
	if v.ProductType == 1 { // VER_NT_WORKSTATION
		os.SKU = "client"
	}
	if k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SOFTWARE\Microsoft\Windows NT\CurrentVersion`, registry.QUERY_VALUE|registry.WOW64_64KEY); err == nil {
		if ubr, _, err := k.GetIntegerValue("UBR"); err == nil && ubr <= 1<<32-1 {
			os.Revision = uint32(ubr)
		}
		k.Close()
	}
	var process, native uint16
	if err := windows.IsWow64Process2(windows.CurrentProcess(), &process, &native); err != nil {
		return nil, fmt.Errorf("scan: IsWow64Process2: %v", err)
	}
	switch native {
	case pe.IMAGE_FILE_MACHINE_AMD64:
		os.Arch = "amd64"
	case pe.IMAGE_FILE_MACHINE_ARM64:
		os.Arch = "arm64"
	case pe.IMAGE_FILE_MACHINE_I386:
		os.Arch = "x86"
	default:
		return nil, fmt.Errorf("scan: this machine's architecture (PE machine %#04x) is none of x86, amd64, arm64", native)
	}
	return os, nil
}
