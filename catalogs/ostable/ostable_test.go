package ostable

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSlotOf(t *testing.T) {
	tab := Default()
	for _, tc := range []struct {
		build int
		want  string
		ok    bool
	}{
		{7599, "none", false},
		{7600, "WIN7", true},
		{7601, "WIN7", true},
		{7602, "none", false},
		{9200, "WIN8", true},
		{9600, "WIN81", true},
		{10239, "none", false},
		{10240, "TH1", true},
		{14393, "RS1", true},
		{16298, "RS2", true},
		{16299, "RS3", true},
		{18363, "19H1", true},
		{19045, "VB", true},
		{20348, "FE", true},
		{22000, "CO", true},
		{22631, "NI", true},
		{26100, "GE", true},
		{26200, "GE", true},
		{99999, "GE", true}, // newer than the table: the last release (offered forward)
	} {
		s, ok := tab.SlotOf(tc.build)
		if ok != tc.ok || tab.SlotName(s) != tc.want {
			t.Errorf("SlotOf(%d) = %s, %v; want %s, %v", tc.build, tab.SlotName(s), ok, tc.want, tc.ok)
		}
	}
}

func TestOSCodes(t *testing.T) {
	tab := Default()
	for _, tc := range []struct {
		code   string
		family Family
		slot   string
		legacy bool
	}{
		{"WINDOWS_v100_RS5_FULL", X86Client, "RS5", false},
		{"WINDOWS_v100_X64_TH1_FULL", AMD64Client, "TH1", false},
		{"WINDOWS_v100_X64_GE_FULL", AMD64Client, "GE", false},
		{"WINDOWS_v100_ARM64_RS3_FULL", ARM64Client, "RS3", false},
		{"WINDOWS_v100_SERVER_X64_FE_FULL", AMD64Server, "FE", false},
		{"WINDOWS_v100_SERVER_ARM64_RS4_FULL", ARM64Server, "RS4", false},
		{"WINDOWS_7_X64", AMD64Client, "WIN7", true},
		{"WINDOWS_2008_SERVER_R2_X64", AMD64Server, "WIN7", true},
		{"WINDOWS_v63", X86Client, "WIN81", true},
	} {
		c, ok := tab.LookupOSCode(tc.code)
		if !ok || c.Family != tc.family || tab.SlotName(c.Slot) != tc.slot || c.Legacy != tc.legacy || c.Retired {
			t.Errorf("LookupOSCode(%s) = %+v, %v; want %s %s legacy=%v", tc.code, c, ok, tc.family, tc.slot, tc.legacy)
		}
	}
	for _, code := range []string{"WINDOWS_v100_X86_RS5_FULL", "WINDOWS_v100_ARM64_RS1_FULL", "WINDOWS_v100_CO_FULL", "windows_v100_x64_rs5_full", ""} {
		if c, ok := tab.LookupOSCode(code); ok {
			t.Errorf("LookupOSCode(%q) = %+v; want unknown", code, c)
		}
	}
	if c, ok := tab.LookupOSCode("WINDOWS_XP"); !ok || !c.Retired || c.Slot != NoSlot {
		t.Errorf("WINDOWS_XP = %+v, %v; want retired", c, ok)
	}
	if code, ok := tab.OSCodeFor(AMD64Server, "TH"); !ok || code != "WINDOWS_v100_SERVER_X64_TH1_FULL" {
		t.Errorf("OSCodeFor(amd64/server, TH) = %q, %v", code, ok)
	}
	if code, ok := tab.OSCodeFor(ARM64Client, "TH1"); ok {
		t.Errorf("OSCodeFor(arm64/client, TH1) = %q; ARM64 has no TH1", code)
	}
}

func TestReleaseSlot(t *testing.T) {
	tab := Default()
	th, ok1 := tab.ReleaseSlot("TH")
	th1, ok2 := tab.ReleaseSlot("TH1")
	if !ok1 || !ok2 || th != th1 || th != tab.FirstRelease() {
		t.Errorf("TH = %d %v, TH1 = %d %v; want both the first release %d", th, ok1, th1, ok2, tab.FirstRelease())
	}
	if _, ok := tab.ReleaseSlot("WIN7"); ok {
		t.Error("an era is not a floor value")
	}
	if _, ok := tab.ReleaseSlot("rs5"); ok {
		t.Error("release codes are case-sensitive")
	}
	if tab.NewestBuild() != 26100 || tab.SlotName(tab.LastSlot()) != "GE" {
		t.Errorf("newest build %d, last slot %s", tab.NewestBuild(), tab.SlotName(tab.LastSlot()))
	}
}

func TestFamilyOf(t *testing.T) {
	if f, ok := FamilyOf("amd64", "server"); !ok || f != AMD64Server {
		t.Errorf("FamilyOf(amd64, server) = %v, %v", f, ok)
	}
	if _, ok := FamilyOf("x86", "server"); ok {
		t.Error("there are no x86 servers")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	b, err := json.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(tab)
	if string(b) != string(b2) {
		t.Errorf("round trip changed the table:\n%s\n%s", b, b2)
	}
}

// A replacement table adds a release without a new binary.
func TestReplacementTable(t *testing.T) {
	src := strings.Replace(string(defaultJSON),
		`"name": "Windows 11 24H2, Server 2025 (and 25H2, 26200)"
    }`,
		`"name": "Windows 11 24H2, Server 2025 (and 25H2, 26200)"
    },
    {"code": "ZZ", "build": 28000}`, 1)
	src = strings.Replace(src, `"NI",
        "GE"
      ]
    },
    {
      "name": "arm64/client"`, `"NI",
        "GE",
        "ZZ"
      ]
    },
    {
      "name": "arm64/client"`, 1)
	tab, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := tab.SlotOf(28500); tab.SlotName(s) != "ZZ" {
		t.Errorf("SlotOf(28500) = %s, want ZZ", tab.SlotName(s))
	}
	if _, ok := tab.LookupOSCode("WINDOWS_v100_X64_ZZ_FULL"); !ok {
		t.Error("the new release's amd64 client code is unknown")
	}
	if tab.NewestBuild() != 28000 {
		t.Errorf("NewestBuild = %d", tab.NewestBuild())
	}
}

func TestParseRejects(t *testing.T) {
	good := string(defaultJSON)
	for name, src := range map[string]string{
		"not json":         "{",
		"wrong format":     strings.Replace(good, FormatLine, "driveway os table 2", 1),
		"unknown field":    strings.Replace(good, `"format"`, `"colour": 1, "format"`, 1),
		"builds decrease":  strings.Replace(good, `"build": 10586`, `"build": 10000`, 1),
		"unknown release":  strings.Replace(good, `"TH2",`, `"TH3",`, 1),
		"four families":    strings.Replace(good, `"name": "arm64/server"`, `"name": "amd64/server"`, 1),
		"era into release": strings.Replace(good, `"maxBuild": 9600`, `"maxBuild": 10300`, 1),
		"trailing":         good + "{}",
	} {
		if _, err := Parse([]byte(src)); err == nil {
			t.Errorf("%s: Parse succeeded", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(defaultJSON)
	f.Add([]byte(`{"format":"driveway os table 1","releases":[{"code":"A","build":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := Parse(b)
		if err != nil {
			return
		}
		for _, build := range []int{0, 7600, 10240, 19045, 1 << 30} {
			s, ok := tab.SlotOf(build)
			if ok && int(s) >= tab.NumSlots() {
				t.Fatalf("SlotOf(%d) = %d beyond %d slots", build, s, tab.NumSlots())
			}
		}
	})
}
