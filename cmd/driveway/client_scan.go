package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/driveway/driveway/client/scan"
)

func cmdClientScan(e *env, args []string) int {
	fs := e.newFlags("client scan", "[--root DIR] [--os BUILD[.UBR]] [--arch ARCH] [--sku SKU] [--device-id ID] [--scan KIND [--target-build BUILD]] [--indent]", `
Scan prints this machine as an offer request (JSON, docs/offers.md): every device with its
hardware and compatible IDs in the order Windows' bus drivers report them, the OS, and the
CHIDs computed from the SMBIOS table, with the SMBIOS fields they came from. Pipe it to
'driveway offer' or send it to an edge.

On Windows it reads SetupAPI (every present device, its IDs and installed driver's date,
version and rank), GetSystemFirmwareTable('RSMB') and the OS version. On Linux it reads
/sys/bus/pci/devices, /sys/bus/usb/devices and /sys/firmware/dmi/tables/DMI (readable by
root only) and builds the IDs Windows would report for the same PCI and USB hardware;
Linux has no Windows version, so --os gives the build the request is for. --root reads a
recorded tree instead of /sys (also on Windows).

The deviceId is derived from /etc/machine-id (Windows: MachineGuid) with a keyed hash, so
it is stable and does not reveal the machine id; --device-id replaces it. Notes about what
could not be read (no SMBIOS table in a virtual machine, say) go to stderr.`)
	root := fs.String("root", "", "read the Linux sysfs tree under `DIR` (DIR/sys/bus/pci/devices, …) instead of this machine")
	osFlag := fs.String("os", "", "the Windows `BUILD[.UBR]` the request is for, like 22631.4460; required off Windows, overrides the OS read on it")
	arch := fs.String("arch", "", "the OS's `ARCH`: x86, amd64 or arm64 (default: this machine's)")
	sku := fs.String("sku", "", "the OS's `SKU`: client or server (default: this machine's, client off Windows)")
	deviceID := fs.String("device-id", "", "the request's deviceId, `ID` (default: derived from the machine id)")
	scanKind := fs.String("scan", "", "the scan `KIND`: scheduled, user, plugin, upgrade, optional or devmgr (default: left out, which is scheduled)")
	target := fs.Uint32("target-build", 0, "the `BUILD` an upgrade scan upgrades to")
	indent := fs.Bool("indent", false, "indent the JSON")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	switch *scanKind {
	case "", "scheduled", "user", "plugin", "upgrade", "optional", "devmgr":
	default:
		return e.usageError("client", fmt.Sprintf("--scan %q; want scheduled, user, plugin, upgrade, optional or devmgr", *scanKind))
	}
	var m *scan.Machine
	var err error
	if *root != "" {
		m, err = scan.ReadSysfs(*root)
	} else {
		m, err = scan.Local()
	}
	if err != nil {
		return e.fail("client", err)
	}
	for _, n := range m.Notes {
		fmt.Fprintf(e.stderr, "driveway client scan: note: %s\n", n)
	}

	opts := scan.Options{DeviceID: *deviceID, Scan: *scanKind, TargetBuild: *target}
	var os *scan.OS
	if m.OS != nil && *root == "" {
		c := *m.OS
		os = &c
	}
	if *osFlag != "" {
		build, rev, ok := parseOSBuild(*osFlag)
		if !ok {
			return e.usageError("client", fmt.Sprintf("--os %q; want a Windows build and optional UBR, like 22631 or 22631.4460", *osFlag))
		}
		if os == nil {
			os = &scan.OS{Arch: nativeArch(), SKU: "client"}
		}
		os.Build, os.Revision = build, rev
	}
	if os != nil {
		if *arch != "" {
			os.Arch = *arch
		}
		if *sku != "" {
			os.SKU = *sku
		}
		if os.Arch == "" {
			return e.usageError("client", fmt.Sprintf("no Windows architecture for %s; give --arch x86, amd64 or arm64", runtime.GOARCH))
		}
	}
	opts.OS = os
	req, err := m.Request(opts)
	switch {
	case errors.Is(err, scan.ErrNoOS):
		return e.usageError("client", "scan needs --os BUILD[.UBR] on a machine that is not running Windows (the request is for a Windows build)")
	case err != nil:
		return e.fail("client", err)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false) // hardware IDs are full of &
	if *indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(req); err != nil {
		return e.fail("client", err)
	}
	return exitOK
}

// parseOSBuild reads "22631" or "22631.4460".
func parseOSBuild(s string) (build, rev uint32, ok bool) {
	b, r, hasRev := strings.Cut(s, ".")
	v, err := strconv.ParseUint(b, 10, 31)
	if err != nil || v == 0 {
		return 0, 0, false
	}
	if hasRev {
		w, err := strconv.ParseUint(r, 10, 32)
		if err != nil {
			return 0, 0, false
		}
		rev = uint32(w)
	}
	return uint32(v), rev, true
}

// nativeArch is the Windows name of this binary's architecture, "" when Windows has none.
func nativeArch() string {
	switch runtime.GOARCH {
	case "amd64", "arm64":
		return runtime.GOARCH
	case "386":
		return "x86"
	}
	return ""
}
