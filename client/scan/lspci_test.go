package scan

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestThisMachineAgainstLspci scans this machine's PCI functions from /sys and compares
// vendor, device, subsystem, revision and class of every one with what pciutils' lspci reads
// (lspci -n -vmm -D). Without lspci it skips, and fails under CI=true (.ci/run installs
// Debian's pciutils).
func TestThisMachineAgainstLspci(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads Linux's /sys")
	}
	lspci, err := exec.LookPath("lspci")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("lspci is not installed (Debian: apt-get install pciutils); CI needs it for this test")
		}
		t.Skip("lspci is not installed (Debian: apt-get install pciutils)")
	}
	out, err := exec.Command(lspci, "-n", "-vmm", "-D").Output()
	if err != nil {
		t.Fatalf("lspci -n -vmm -D: %v", err)
	}
	want := parseLspci(t, string(out))
	dir := "/sys/bus/pci/devices"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Skipf("this machine has no PCI bus in sysfs: %v", err)
	}
	if len(entries) != len(want) {
		t.Errorf("sysfs has %d PCI functions, lspci %d", len(entries), len(want))
	}
	m, err := ReadSysfs("/")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p, err := readPCI(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		w, ok := want[e.Name()]
		if !ok {
			t.Errorf("%s: in sysfs, not in lspci's output", e.Name())
			continue
		}
		if p != w {
			t.Errorf("%s: scanned %+v; lspci says %+v", e.Name(), p, w)
		}
		// And the device the scan made of it carries those numbers.
		hw, _ := w.IDs()
		found := false
		for _, d := range m.Devices {
			if d.InstanceID == hw[0]+`\`+e.Name() {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no scanned device %s", e.Name(), hw[0])
		}
	}
	t.Logf("%d PCI functions agree with lspci", len(entries))
}

// parseLspci reads lspci -n -vmm -D: records of "Key:\tvalue" lines separated by blank
// lines. Rev, ProgIf, SVendor and SDevice are left out when zero or absent.
func parseLspci(t *testing.T, out string) map[string]PCI {
	t.Helper()
	m := map[string]PCI{}
	for _, rec := range strings.Split(strings.TrimSpace(out), "\n\n") {
		kv := map[string]string{}
		for _, line := range strings.Split(rec, "\n") {
			k, v, ok := strings.Cut(line, ":\t")
			if !ok {
				t.Fatalf("lspci line %q is not Key:\\tvalue", line)
			}
			kv[k] = v
		}
		hex := func(k string, bits int) uint64 {
			s, ok := kv[k]
			if !ok {
				return 0
			}
			v, err := strconv.ParseUint(s, 16, bits)
			if err != nil {
				t.Fatalf("lspci %s %q: %v", k, s, err)
			}
			return v
		}
		slot := kv["Slot"]
		if slot == "" {
			t.Fatalf("lspci record without Slot: %q", rec)
		}
		m[slot] = PCI{
			Vendor: uint16(hex("Vendor", 16)), Device: uint16(hex("Device", 16)),
			SubVendor: uint16(hex("SVendor", 16)), SubDevice: uint16(hex("SDevice", 16)),
			Revision: uint8(hex("Rev", 8)),
			Class:    uint32(hex("Class", 16))<<8 | uint32(hex("ProgIf", 8)),
		}
	}
	if len(m) == 0 {
		t.Fatal("lspci listed no devices")
	}
	return m
}
