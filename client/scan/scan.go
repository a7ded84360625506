// Package scan reads a PC into an offer request (spec/offers.md, "Request"; for users
// docs/offers.md): its PnP devices with their hardware and compatible IDs in the order
// Windows' bus drivers report them, its Windows version, and the CHIDs computed from its
// raw SMBIOS table.
//
// On Windows, [Local] asks SetupAPI for every present device's hardware and compatible IDs
// and installed driver (date, version, rank), GetSystemFirmwareTable('RSMB') for the SMBIOS
// table, and RtlGetVersion and the registry for the OS. Elsewhere (and on Windows given a
// root) [ReadSysfs] reads a Linux sysfs tree: PCI functions from sys/bus/pci/devices, USB
// devices and interfaces from sys/bus/usb/devices, the table from
// sys/firmware/dmi/tables/DMI, and builds the IDs Windows would report for the same
// hardware ([PCI.IDs], [USBDevice.IDs]). Linux knows no Windows version: the caller gives
// one ([Options.OS]).
//
//	m, err := scan.ReadSysfs("/")
//	req, err := m.Request(scan.Options{OS: &scan.OS{Build: 22631, Arch: "amd64"}})
//	body, _ := json.Marshal(req)
package scan

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/driveway/driveway/catalogs/chid"
)

// Request is an offer request, encoded with encoding/json into exactly the members
// spec/offers.md names.
type Request struct {
	DeviceID    string            `json:"deviceId"`
	OS          OS                `json:"os"`
	Scan        string            `json:"scan,omitempty"`
	TargetBuild uint32            `json:"targetBuild,omitempty"`
	CHIDs       []*string         `json:"chids,omitempty"`  // entry N is HardwareID-N, null when not generated
	SMBIOS      map[string]string `json:"smbios,omitempty"` // the fields the CHIDs came from
	Devices     []Device          `json:"devices"`
}

// OS is the request's os object.
type OS struct {
	Build    uint32 `json:"build"`
	Revision uint32 `json:"revision"`      // the UBR
	Arch     string `json:"arch"`          // x86, amd64, arm64
	SKU      string `json:"sku,omitempty"` // client (default), server
}

// Device is one PnP device node.
type Device struct {
	InstanceID    string   `json:"instanceId"`
	HardwareIDs   []string `json:"hardwareIds"`   // most specific first
	CompatibleIDs []string `json:"compatibleIds"` // most compatible first
	Driver        *Driver  `json:"driver,omitempty"`
}

// Driver is the installed driver of a device (Windows only).
type Driver struct {
	Date    string `json:"date"`           // YYYY-MM-DD
	Version string `json:"version"`        // w.x.y.z
	Rank    string `json:"rank,omitempty"` // 8 hex digits
}

// Machine is what a scan read.
type Machine struct {
	Devices []Device

	// SMBIOS holds the CHID fields of the SMBIOS table; HasSMBIOS is false when the machine
	// has no table (a virtual machine without DMI, say).
	SMBIOS    chid.Fields
	HasSMBIOS bool

	// OS is the Windows version, read on Windows; nil elsewhere.
	OS *OS

	// MachineID is the machine's own stable identifier (Linux's /etc/machine-id, Windows'
	// MachineGuid), from which the request's pseudonymous deviceId is derived; "" when
	// there is none.
	MachineID string

	// Notes say what the scan could not read and did without (one line each).
	Notes []string
}

// Options complete a Machine into a Request. The zero value takes everything from the
// machine.
type Options struct {
	OS          *OS    // overrides Machine.OS; required when the machine has none
	DeviceID    string // default: derived from Machine.MachineID (see [DeviceID])
	Scan        string // the request's scan kind; "" leaves it out (scheduled)
	TargetBuild uint32 // for an upgrade scan
}

// The offer API's limits (spec/offers.md): a request beyond them is refused by every edge.
const (
	maxDevices  = 512
	maxIDs      = 64
	maxString   = 512
	maxDeviceID = 128
)

// ErrNoOS is returned by Request when neither the machine nor the options give a Windows
// version.
var ErrNoOS = errors.New("scan: no Windows version: this machine is not running Windows; give the build the request is for (driveway client scan --os BUILD[.UBR])")

// Request builds the offer request of the machine.
func (m *Machine) Request(o Options) (*Request, error) {
	os := m.OS
	if o.OS != nil {
		os = o.OS
	}
	if os == nil || os.Build == 0 {
		return nil, ErrNoOS
	}
	switch os.Arch {
	case "x86", "amd64", "arm64":
	default:
		return nil, fmt.Errorf("scan: os arch %q; want x86, amd64 or arm64", os.Arch)
	}
	switch os.SKU {
	case "", "client", "server":
	default:
		return nil, fmt.Errorf("scan: os sku %q; want client or server", os.SKU)
	}
	id := o.DeviceID
	if id == "" {
		if m.MachineID == "" {
			return nil, errors.New("scan: no machine id to derive the deviceId from (no /etc/machine-id or MachineGuid); give one (--device-id)")
		}
		id = DeviceID(m.MachineID)
	}
	if len(id) > maxDeviceID {
		return nil, fmt.Errorf("scan: deviceId of %d bytes; the offer API takes 1 to %d", len(id), maxDeviceID)
	}
	if len(m.Devices) > maxDevices {
		return nil, fmt.Errorf("scan: %d devices; the offer API takes at most %d in one request", len(m.Devices), maxDevices)
	}
	if o.Scan == "upgrade" && o.TargetBuild == 0 {
		return nil, errors.New("scan: an upgrade scan needs the build being upgraded to (--target-build)")
	}
	r := &Request{DeviceID: id, OS: *os, Scan: o.Scan, Devices: m.Devices}
	if o.Scan == "upgrade" {
		r.TargetBuild = o.TargetBuild
	}
	if r.Devices == nil {
		r.Devices = []Device{}
	}
	for i, d := range r.Devices {
		if len(d.HardwareIDs) > maxIDs || len(d.CompatibleIDs) > maxIDs {
			return nil, fmt.Errorf("scan: device %s has %d hardware and %d compatible IDs; the offer API takes at most %d of each", d.InstanceID, len(d.HardwareIDs), len(d.CompatibleIDs), maxIDs)
		}
		if d.InstanceID == "" {
			return nil, fmt.Errorf("scan: device %d has no instance id", i)
		}
		for _, s := range append(append([]string{d.InstanceID}, d.HardwareIDs...), d.CompatibleIDs...) {
			if len(s) > maxString || s == "" {
				return nil, fmt.Errorf("scan: device %s has an ID of %d bytes; the offer API takes 1 to %d", d.InstanceID, len(s), maxString)
			}
		}
	}
	if m.HasSMBIOS && m.SMBIOS[chid.Manufacturer] != "" {
		ids, present := chid.Compute(&m.SMBIOS)
		r.CHIDs = make([]*string, chid.NumLevels)
		for n := range ids {
			if present&(1<<n) != 0 {
				s := ids[n].String()
				r.CHIDs[n] = &s
			}
		}
		r.SMBIOS = map[string]string{}
		for i, v := range m.SMBIOS {
			if v != "" && len(v) <= maxString {
				r.SMBIOS[chid.FieldNames[i]] = v
			}
		}
	}
	return r, nil
}

// deviceIDKey keys the derivation of deviceIds from machine ids, so that the request does
// not carry the machine id itself (systemd's advice for machine-id: hash it with a key of
// the application's own).
const deviceIDKey = "driveway deviceId v1"

// DeviceID derives the request's pseudonymous deviceId from a machine id: the first 16
// bytes of HMAC-SHA256(key machineID, "driveway deviceId v1") as a version-4-shaped UUID,
// lower-case. The same machine always gets the same deviceId (it feeds rollout buckets);
// the machine id cannot be read back from it.
func DeviceID(machineID string) string {
	mac := hmac.New(sha256.New, []byte(strings.TrimSpace(machineID)))
	mac.Write([]byte(deviceIDKey))
	var id chid.ID
	copy(id[:], mac.Sum(nil))
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id.String()
}
