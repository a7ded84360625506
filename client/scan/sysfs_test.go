package scan

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driveway/driveway/offer"
)

// expandTree writes the files of a txtar archive (testdata/sysfs/*.txtar: "-- path --"
// lines, each followed by the file's content) under a new directory and returns it, with
// the recorded SMBIOS table dmi (a testdata/smbios file; "" for none) as the DMI table.
func expandTree(t testing.TB, archive, dmi string) string {
	t.Helper()
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	var name string
	var content []byte
	flush := func() {
		if name == "" {
			return
		}
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p, ".hex") {
			b, err := hex.DecodeString(strings.Join(strings.Fields(string(content)), ""))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			p, content = strings.TrimSuffix(p, ".hex"), b
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if strings.HasPrefix(line, "-- ") && strings.HasSuffix(line, " --\n") {
			flush()
			name, content = strings.TrimSuffix(strings.TrimPrefix(line, "-- "), " --\n"), nil
			continue
		}
		if name != "" {
			content = append(content, line...)
		}
	}
	flush()
	if dmi != "" {
		table, err := os.ReadFile(dmi)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, "sys", "firmware", "dmi", "tables", "DMI")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, table, 0o400); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func encode(t testing.TB, r *Request) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRecordedTree scans the recorded tree, compares the request with
// testdata/sysfs/pc.request.json (-update rewrites it), and feeds it through the edge's own
// decoder: it is a valid request, and the decoder sees every device and ID the scan wrote,
// in the scan's order, and CHIDs equal to the ones the edge would derive from the fields.
func TestRecordedTree(t *testing.T) {
	root := expandTree(t, filepath.Join("testdata", "sysfs", "pc.txtar"), filepath.Join("testdata", "smbios", "machine1.bin"))
	m, err := ReadSysfs(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Notes) != 0 {
		t.Errorf("notes %q; want none (the tree has a DMI table)", m.Notes)
	}
	req, err := m.Request(Options{OS: &OS{Build: 22631, Revision: 4460, Arch: "amd64", SKU: "client"}})
	if err != nil {
		t.Fatal(err)
	}
	got := encode(t, req)
	golden := filepath.Join("testdata", "sysfs", "pc.request.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the scan of the recorded tree differs from %s (go test -update rewrites it after review):\n%s", golden, got)
	}

	// 6 PCI functions; USB: 1-1 and its 3 interfaces, the hub 1-2, the mouse 1-2.1, the
	// webcam 2-1 and its 2 functions (video: interfaces 0-1, audio: 2-3); the root hubs are
	// skipped.
	if n := len(req.Devices); n != 6+4+1+1+3 {
		t.Errorf("%d devices; want 15", n)
	}

	var r offer.Request
	if err := offer.NewDecoder(offer.Limits{}).Decode(got, &r); err != nil {
		t.Fatalf("the edge's decoder refuses the scan: %v", err)
	}
	if r.Build != 22631 || r.Revision != 4460 || string(r.DeviceID) != DeviceID("5c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f") {
		t.Errorf("decoded os %d.%d deviceId %s", r.Build, r.Revision, r.DeviceID)
	}
	if len(r.Devices) != len(req.Devices) {
		t.Fatalf("decoded %d devices; the scan wrote %d", len(r.Devices), len(req.Devices))
	}
	for i, d := range req.Devices {
		dd := r.Devices[i]
		if string(dd.InstanceID) != d.InstanceID || len(dd.HardwareIDs) != len(d.HardwareIDs) || len(dd.CompatibleIDs) != len(d.CompatibleIDs) {
			t.Fatalf("device %d decoded as %s with %d+%d IDs; the scan wrote %s with %d+%d", i, dd.InstanceID, len(dd.HardwareIDs), len(dd.CompatibleIDs), d.InstanceID, len(d.HardwareIDs), len(d.CompatibleIDs))
		}
		for j, id := range d.HardwareIDs {
			if !strings.EqualFold(string(dd.HardwareIDs[j]), id) {
				t.Errorf("device %d hardware ID %d decoded as %s; scanned %s", i, j, dd.HardwareIDs[j], id)
			}
		}
		for j, id := range d.CompatibleIDs {
			if !strings.EqualFold(string(dd.CompatibleIDs[j]), id) {
				t.Errorf("device %d compatible ID %d decoded as %s; scanned %s", i, j, dd.CompatibleIDs[j], id)
			}
		}
	}
	if !r.HasCHIDs || r.CHIDMask != 1<<15-1 || !r.HasSMBIOS {
		t.Errorf("decoded CHID mask %015b (has %v), smbios %v; want all 15 of the fully populated machine", r.CHIDMask, r.HasCHIDs, r.HasSMBIOS)
	}
	for n, id := range r.CHIDs {
		if req.CHIDs[n] == nil || id.String() != *req.CHIDs[n] {
			t.Errorf("decoded HardwareID-%d %s; scanned %v", n, id, deref(req.CHIDs[n]))
		}
	}
}

// TestRecordedTreeErrors: what cannot be read fails with the file and what was wanted.
func TestRecordedTreeErrors(t *testing.T) {
	base := filepath.Join("testdata", "sysfs", "pc.txtar")
	t.Run("not a sysfs root", func(t *testing.T) {
		_, err := ReadSysfs(t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "neither") || !strings.Contains(err.Error(), "--root") {
			t.Fatalf("err = %v; want one saying neither bus directory exists", err)
		}
	})
	cases := []struct {
		name, file, content, want string
	}{
		{"pci vendor without 0x", "sys/bus/pci/devices/0000:00:03.0/vendor", "1af4\n", `vendor: "1af4\n" is not 1 to 4 hex digits after 0x`},
		{"pci class too wide", "sys/bus/pci/devices/0000:00:03.0/class", "0x1020000\n", "1 to 6 hex digits"},
		{"usb vendor not hex", "sys/bus/usb/devices/1-1/idVendor", "zz6d\n", `idVendor: "zz6d\n"`},
		{"usb interface count", "sys/bus/usb/devices/1-1/bNumInterfaces", "many\n", "not a decimal interface count"},
		{"interface class", "sys/bus/usb/devices/1-1:1.1/bInterfaceClass", "\n", "bInterfaceClass"},
		{"attribute too long", "sys/bus/pci/devices/0000:00:01.0/device", strings.Repeat("0", 5000), "longer than 4096 bytes"},
		{"smbios malformed", "sys/firmware/dmi/tables/DMI", "\x01\x02", "malformed SMBIOS table"},
		{"usb descriptors malformed", "sys/bus/usb/devices/2-1/descriptors", "\x12\x01", "malformed USB descriptors"},
		{"usb configuration value", "sys/bus/usb/devices/2-1/bConfigurationValue", "one\n", "not a configuration number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := expandTree(t, base, filepath.Join("testdata", "smbios", "machine1.bin"))
			p := filepath.Join(root, filepath.FromSlash(c.file))
			os.Chmod(p, 0o644)
			if err := os.WriteFile(p, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadSysfs(root)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want one containing %q", err, c.want)
			}
		})
	}
	t.Run("missing attribute", func(t *testing.T) {
		root := expandTree(t, base, "")
		os.Remove(filepath.Join(root, "sys", "bus", "pci", "devices", "0000:00:02.0", "revision"))
		_, err := ReadSysfs(root)
		if err == nil || !strings.Contains(err.Error(), filepath.Join("0000:00:02.0", "revision")) {
			t.Fatalf("err = %v; want one naming the missing revision file", err)
		}
	})
	t.Run("no DMI table is a note", func(t *testing.T) {
		m, err := ReadSysfs(expandTree(t, base, ""))
		if err != nil {
			t.Fatal(err)
		}
		if m.HasSMBIOS || len(m.Notes) != 1 || !strings.Contains(m.Notes[0], "no SMBIOS table") {
			t.Fatalf("HasSMBIOS %v, notes %q; want one note about the missing table", m.HasSMBIOS, m.Notes)
		}
		r, err := m.Request(Options{OS: &OS{Build: 19045, Arch: "x86"}})
		if err != nil || r.CHIDs != nil || r.SMBIOS != nil {
			t.Fatalf("request %+v, %v; want one without chids or smbios", r, err)
		}
	})
	t.Run("DMI readable by root only", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root: file permissions do not stop root")
		}
		root := expandTree(t, base, filepath.Join("testdata", "smbios", "machine1.bin"))
		os.Chmod(filepath.Join(root, "sys", "firmware", "dmi", "tables", "DMI"), 0)
		_, err := ReadSysfs(root)
		if err == nil || !strings.Contains(err.Error(), "run the scan as root") {
			t.Fatalf("err = %v; want one saying to run as root", err)
		}
	})
}

// TestRequestOptions: what Request refuses and derives.
func TestRequestOptions(t *testing.T) {
	m := &Machine{MachineID: "5c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f\n"}
	if _, err := m.Request(Options{}); err != ErrNoOS {
		t.Errorf("no OS: err = %v; want ErrNoOS", err)
	}
	for _, o := range []Options{
		{OS: &OS{Build: 22631, Arch: "ia64"}},
		{OS: &OS{Build: 22631, Arch: "amd64", SKU: "home"}},
		{OS: &OS{Build: 22631, Arch: "amd64"}, Scan: "upgrade"},
		{OS: &OS{Build: 22631, Arch: "amd64"}, DeviceID: strings.Repeat("x", 129)},
	} {
		if _, err := m.Request(o); err == nil {
			t.Errorf("Request(%+v) succeeded; want an error", o)
		}
	}
	long := &Machine{MachineID: "m", Devices: []Device{{InstanceID: "X", HardwareIDs: []string{strings.Repeat("A", 513)}}}}
	if _, err := long.Request(Options{OS: &OS{Build: 1, Arch: "x86"}}); err == nil || !strings.Contains(err.Error(), "513 bytes") {
		t.Errorf("an ID of 513 bytes: err = %v", err)
	}
	if _, err := (&Machine{}).Request(Options{OS: &OS{Build: 1, Arch: "x86"}}); err == nil || !strings.Contains(err.Error(), "--device-id") {
		t.Errorf("no machine id: err = %v; want one naming --device-id", err)
	}
	r, err := m.Request(Options{OS: &OS{Build: 22631, Arch: "arm64"}, Scan: "upgrade", TargetBuild: 26100})
	if err != nil {
		t.Fatal(err)
	}
	if r.DeviceID != DeviceID("5c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f") || r.TargetBuild != 26100 || r.Devices == nil {
		t.Errorf("request %+v", r)
	}
	// The deviceId is fixed per machine id (a vector: it feeds rollout buckets, so it must
	// never change), ignores the file's newline, and does not contain the machine id.
	const want = "2c2bbd48-5c98-4787-b488-1c0b7db67877"
	for _, id := range []string{"5c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f", "5c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f\n"} {
		if got := DeviceID(id); got != want {
			t.Errorf("DeviceID(%q) = %s; want %s", id, got, want)
		}
	}
	if DeviceID("5c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5e") == want {
		t.Error("two machine ids give one deviceId")
	}
}
