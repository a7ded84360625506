package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// scanTree writes a sysfs tree of the example's Contoso Model B 13 (catalogs/examples):
// its Intel NIC as a PCI function and the SMBIOS table of chids.json's fully populated
// machine (client/scan/testdata/smbios/machine1.bin, the same fields as the example's
// request).
func scanTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nic := "sys/bus/pci/devices/0000:00:1f.6/"
	for name, v := range map[string]string{"vendor": "0x8086", "device": "0x15f3", "subsystem_vendor": "0x17aa", "subsystem_device": "0x0a54", "revision": "0x03", "class": "0x020000"} {
		write(nic+name, v+"\n")
	}
	table, err := os.ReadFile(filepath.Join("..", "..", "client", "scan", "testdata", "smbios", "machine1.bin"))
	if err != nil {
		t.Fatal(err)
	}
	write("sys/firmware/dmi/tables/DMI", string(table))
	write("etc/machine-id", "0123456789abcdef0123456789abcdef\n")
	return root
}

// TestClientScan runs driveway client scan on a recorded tree and sends what it prints to
// driveway offer over the bundled example release: the NIC the scan found, with the CHIDs
// it computed, is offered its driver.
func TestClientScan(t *testing.T) {
	root := scanTree(t)
	code, out, stderr := runCLI(nil, "client", "scan", "--root", root, "--os", "22631.4460")
	if code != 0 {
		t.Fatalf("client scan: exit %d: %s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr %q; want nothing (the tree has a DMI table)", stderr)
	}
	if strings.Contains(out, `\u0026`) {
		t.Error("the output escapes & as \\u0026; hardware IDs should read as they are")
	}
	var req struct {
		DeviceID string `json:"deviceId"`
		OS       struct {
			Build, Revision int
			Arch, SKU       string
		} `json:"os"`
		CHIDs   []*string `json:"chids"`
		Devices []struct {
			InstanceID    string   `json:"instanceId"`
			HardwareIDs   []string `json:"hardwareIds"`
			CompatibleIDs []string `json:"compatibleIds"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(out), &req); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if req.OS.Build != 22631 || req.OS.Revision != 4460 || req.OS.SKU != "client" || len(req.CHIDs) != 15 || len(req.Devices) != 1 {
		t.Fatalf("request %+v", req)
	}
	if got := req.Devices[0].HardwareIDs[0]; got != `PCI\VEN_8086&DEV_15F3&SUBSYS_0A5417AA&REV_03` {
		t.Errorf("first hardware ID %s", got)
	}

	// The example's label dates are absolute: it is built and asked at its own clock.
	work := t.TempDir()
	labels, key, catalog := filepath.Join(work, "labels"), filepath.Join(work, "k"), filepath.Join(work, "catalog")
	if err := copyFS(examplesFS(), "contoso", labels); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"keygen", "--unencrypted", "--out", key}, {"build", "--labels", labels, "--out", catalog, "--key", key + ".key", "--quiet"}} {
		if code, _, stderr := runCLIAt(exampleClock, nil, args...); code != 0 {
			t.Fatal(stderr)
		}
	}
	code, offers, stderr := runCLIAt(exampleClock, []byte(out), "offer", "--catalog", catalog)
	if code != 0 {
		t.Fatalf("offer: exit %d: %s", code, stderr)
	}
	var resp struct {
		Offers []struct {
			InstanceID string `json:"instanceId"`
			LabelID    string `json:"labelId"`
			Kind       string `json:"kind"`
		} `json:"offers"`
	}
	if err := json.Unmarshal([]byte(offers), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Offers) == 0 || resp.Offers[0].InstanceID != req.Devices[0].InstanceID || resp.Offers[0].Kind != "automatic" {
		t.Fatalf("offers for the scanned NIC: %s", offers)
	}

	// --indent prints the same request.
	code, indented, _ := runCLI(nil, "client", "scan", "--root", root, "--os", "22631.4460", "--indent")
	var a, b any
	json.Unmarshal([]byte(out), &a)
	json.Unmarshal([]byte(indented), &b)
	if code != 0 || !strings.Contains(indented, "\n  \"os\"") || !jsonEqual(a, b) {
		t.Errorf("--indent: exit %d, output %s", code, indented)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestClientScanErrors: misuse exits 2, an unreadable tree 1, each with what to do.
func TestClientScanErrors(t *testing.T) {
	root := scanTree(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--root", root}, 2, "scan needs --os BUILD[.UBR]"},
		{[]string{"--root", root, "--os", "22631.x"}, 2, `--os "22631.x"`},
		{[]string{"--root", root, "--os", "0"}, 2, "want a Windows build"},
		{[]string{"--root", root, "--os", "22631", "--arch", "mips"}, 1, `arch "mips"`},
		{[]string{"--root", root, "--os", "22631", "--scan", "weekly"}, 2, `--scan "weekly"`},
		{[]string{"--root", root, "--os", "22631", "--scan", "upgrade"}, 1, "--target-build"},
		{[]string{"--root", t.TempDir(), "--os", "22631"}, 1, "a Linux root with /sys mounted"},
		{[]string{"--root", root, "extra"}, 2, `unexpected argument "extra"`},
	} {
		code, _, stderr := runCLI(nil, append([]string{"client", "scan"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("client scan %q: exit %d, stderr %q; want exit %d and one line containing %q", c.args, code, stderr, c.code, c.want)
		}
	}
	code, out, _ := runCLI(nil, "client", "scan", "--help")
	if code != 0 || !strings.Contains(out, "--root DIR") || !strings.Contains(out, "/sys/firmware/dmi/tables/DMI") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
	// Without a DMI table the scan says so on stderr and still prints a request.
	os.Remove(filepath.Join(root, "sys", "firmware", "dmi", "tables", "DMI"))
	code, out, stderr := runCLI(nil, "client", "scan", "--root", root, "--os", "19045", "--arch", "x86", "--sku", "client", "--device-id", "pc-1")
	if code != 0 || !strings.Contains(stderr, "note: no SMBIOS table") || strings.Contains(out, "chids") || !strings.Contains(out, `"deviceId":"pc-1"`) || !strings.Contains(out, `"arch":"x86"`) {
		t.Errorf("no DMI: exit %d, stdout %s, stderr %q", code, out, stderr)
	}
}
