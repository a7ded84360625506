package offer

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/ostable"
)

// readRequest returns testdata/requests/name.
func readRequest(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "requests", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// requestFiles returns the names of all files in testdata/requests.
func requestFiles(t testing.TB) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join("testdata", "requests", "*.json"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no test requests: %v", err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

func mustGUID(s string) chid.ID {
	id, err := chid.Parse(s)
	if err != nil {
		panic(err)
	}
	return id
}

// testDay returns the days since 1970-01-01 of a date, by the time package.
func testDay(y int, m time.Month, d int) int32 {
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func testVersion(w, x, y, z uint64) uint64 { return w<<48 | x<<32 | y<<16 | z }

func byteSlices(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// diffRequest lists the differences between two requests, field by field. A nil and an
// empty slice are equal.
func diffRequest(got, want *Request) []string {
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s = %v; want %v", field, g, w)) }
	eqB := func(field string, g, w []byte) {
		if !bytes.Equal(g, w) {
			add(field, fmt.Sprintf("%q", g), fmt.Sprintf("%q", w))
		}
	}
	eqL := func(field string, g, w [][]byte) {
		if len(g) != len(w) {
			add(field, fmt.Sprintf("%q", g), fmt.Sprintf("%q", w))
			return
		}
		for i := range g {
			eqB(fmt.Sprintf("%s[%d]", field, i), g[i], w[i])
		}
	}
	eq := func(field string, g, w any) {
		if g != w {
			add(field, g, w)
		}
	}
	eqB("DeviceID", got.DeviceID, want.DeviceID)
	eq("Build", got.Build, want.Build)
	eq("Revision", got.Revision, want.Revision)
	eq("Family", got.Family, want.Family)
	eq("SMode", got.SMode, want.SMode)
	eq("Scan", got.Scan, want.Scan)
	eq("TargetBuild", got.TargetBuild, want.TargetBuild)
	eq("CHIDs", got.CHIDs, want.CHIDs)
	eq("CHIDMask", fmt.Sprintf("%#x", got.CHIDMask), fmt.Sprintf("%#x", want.CHIDMask))
	eq("HasCHIDs", got.HasCHIDs, want.HasCHIDs)
	for i := range got.SMBIOS {
		eqB("SMBIOS."+chid.FieldNames[i], got.SMBIOS[i], want.SMBIOS[i])
	}
	eq("HasSMBIOS", got.HasSMBIOS, want.HasSMBIOS)
	eqB("TargetRing", got.TargetRing, want.TargetRing)
	eqL("Audiences", got.Audiences, want.Audiences)
	eq("Insider", got.Insider, want.Insider)
	if len(got.Devices) != len(want.Devices) {
		add("len(Devices)", len(got.Devices), len(want.Devices))
		return d
	}
	for i := range got.Devices {
		g, w := &got.Devices[i], &want.Devices[i]
		p := fmt.Sprintf("Devices[%d].", i)
		eqB(p+"InstanceID", g.InstanceID, w.InstanceID)
		eqL(p+"HardwareIDs", g.HardwareIDs, w.HardwareIDs)
		eqL(p+"CompatibleIDs", g.CompatibleIDs, w.CompatibleIDs)
		eq(p+"Driver", g.Driver, w.Driver)
		if len(g.Extensions) != len(w.Extensions) {
			add(p+"Extensions", g.Extensions, w.Extensions)
			continue
		}
		for j := range g.Extensions {
			eq(fmt.Sprintf("%sExtensions[%d]", p, j), g.Extensions[j], w.Extensions[j])
		}
	}
	return d
}

func TestDecodeValid(t *testing.T) {
	example := Request{
		DeviceID: []byte("b7e1c0de-5d1e-4c0a-9f55-6a3e2f0d9b11"),
		Build:    19045, Revision: 3803, Family: ostable.AMD64Client,
		Scan:     ScanScheduled,
		CHIDMask: 0b101, HasCHIDs: true,
		HasSMBIOS:  true,
		TargetRing: []byte("Drivers"),
		Audiences:  byteSlices("CoDev"),
		Insider:    ChannelDev,
		Devices: []Device{{
			InstanceID:    []byte(`PCI\VEN_8086&DEV_15F3&SUBSYS_00008086&REV_03\3&11583659&0&FE`),
			HardwareIDs:   byteSlices(`PCI\VEN_8086&DEV_15F3&SUBSYS_00008086&REV_03`, `PCI\VEN_8086&DEV_15F3&SUBSYS_00008086`),
			CompatibleIDs: byteSlices(`PCI\VEN_8086&DEV_15F3&REV_03`, `PCI\VEN_8086&DEV_15F3`, `PCI\VEN_8086&CC_020000`),
			Driver:        Driver{Present: true, HasRank: true, Rank: 0x00FF0001, Date: testDay(2023, 5, 1), Version: testVersion(2, 1, 3, 0)},
			Extensions:    []Extension{{ID: mustGUID("0cf8618d-9eff-537c-9f35-46861406eb9c"), Date: testDay(2023, 5, 1), Version: testVersion(1, 0, 0, 7)}},
		}},
	}
	example.CHIDs[0] = mustGUID("147efce9-f201-5fc8-ab0c-c859751c3440")
	example.CHIDs[2] = mustGUID("f5ff077f-3eeb-5bae-be1c-e98ffe8ce5f8")
	example.SMBIOS[chid.Manufacturer] = []byte("LENOVO")
	example.SMBIOS[chid.Family] = []byte("ThinkPad T440s")
	example.SMBIOS[chid.ProductName] = []byte("20ARS19C0C")

	chidsNulls := Request{DeviceID: []byte("pc-4"), Build: 19045, Family: ostable.AMD64Server, HasCHIDs: true, CHIDMask: 1<<1 | 1<<14}
	chidsNulls.CHIDs[1] = mustGUID("b7cceb67-774c-537e-bf8b-22c6107e9a74")
	chidsNulls.CHIDs[14] = mustGUID("6de5d951-d755-576b-bd09-c5cf66b27234")

	smbios := Request{DeviceID: []byte("pc-6"), Build: 19045, Revision: 1, Family: ostable.X86Client, HasSMBIOS: true}
	for f, v := range []string{"LENOVO", "ThinkPad T440s", "20ARS19C0C", "LENOVO_MT_20AR_BU_Think_FM_ThinkPad T440s", "LENOVO", "GJET75WW (2.25 )", "02", "19", "a"} {
		smbios.SMBIOS[f] = []byte(v)
	}

	for _, tc := range []struct {
		name string
		body []byte
		want Request
	}{
		{"offers.md example", readRequest(t, "example.json"), example},
		{"minimal, defaults", readRequest(t, "minimal.json"), Request{DeviceID: []byte("pc-1"), Build: 15063, Family: ostable.AMD64Client}},
		{"device defaults", readRequest(t, "defaults.json"), Request{DeviceID: []byte("pc-2"), Build: 19045, Family: ostable.AMD64Client,
			Devices: []Device{{InstanceID: []byte(`HID\TOASTER&COL02\7&1&0`)}, {InstanceID: []byte(`ROOT\X`)}}}},
		{"escapes", readRequest(t, "escapes.json"), Request{
			DeviceID: []byte("café 😀 \uFFFD /\"\\\b\f\n\r\t"), Build: 22631, Family: ostable.ARM64Client,
			TargetRing: []byte("Ring A"),
			Devices: []Device{{
				InstanceID:    []byte(`usb\vid_17ef&pid_1234\5&2&0&1`), // not normalised
				HardwareIDs:   byteSlices(`USB\VID_17EF&PID_1234&REV_0100`, `USB\VID_17EF&PID_1234`),
				CompatibleIDs: byteSlices(`USB\CLASS_0Eé`),
			}},
		}},
		{"chids with nulls, braces, upper case", readRequest(t, "chids-nulls.json"), chidsNulls},
		{"all chids null", readRequest(t, "all-null-chids.json"), Request{DeviceID: []byte("pc-5"), Build: 19045, Family: ostable.AMD64Client, HasCHIDs: true}},
		{"smbios", readRequest(t, "smbios.json"), smbios},
		{"upgrade", readRequest(t, "upgrade.json"), Request{
			DeviceID: []byte("pc-3"), Build: 17763, Revision: 1, Family: ostable.ARM64Server, SMode: true,
			Scan: ScanUpgrade, TargetBuild: 19045, Insider: ChannelReleasePreview,
			Devices: []Device{{
				InstanceID:  []byte(`PCI\VEN_8086&DEV_15F3\1`),
				HardwareIDs: byteSlices(`PCI\VEN_8086&DEV_15F3`),
				Driver:      Driver{Present: true, Generic: true, Date: testDay(2019, 2, 28), Version: testVersion(65535, 0, 1, 0)},
				Extensions: []Extension{
					{ID: mustGUID("0cf8618d-9eff-537c-9f35-46861406eb9c"), Date: testDay(2020, 2, 29), Version: testVersion(1, 0, 0, 0)},
					{ID: mustGUID("db73af4c-4612-50f7-b8a7-787cf4871847"), Date: -1, Version: testVersion(1, 2, 3, 4)},
				},
			}},
		}},
		{"targetBuild ignored unless upgrade", []byte(`{"deviceId":"a","os":{"build":1},"targetBuild":2,"scan":"user","devices":[]}`),
			Request{DeviceID: []byte("a"), Build: 1, Family: ostable.AMD64Client, Scan: ScanUser}},
		{"limits at their edges", []byte(`{"deviceId":"` + strings.Repeat("x", 128) + `","os":{"build":2147483647,"revision":4294967295},"scan":"devmgr","devices":[]}`),
			Request{DeviceID: bytes.Repeat([]byte("x"), 128), Build: 2147483647, Revision: 4294967295, Family: ostable.AMD64Client, Scan: ScanDevmgr}},
		{"deviceId limit counts unescaped bytes", []byte(`{"deviceId":"` + strings.Repeat(`\u0078`, 128) + `","os":{"build":1},"devices":[]}`),
			Request{DeviceID: bytes.Repeat([]byte("x"), 128), Build: 1, Family: ostable.AMD64Client}},
		{"white space, unknown members, duplicate unknown members", []byte(" \t\r\n{ \"x\" : 1 , \"x\" : [ ] , \"deviceId\" : \"a\" , \"os\" : { \"build\" : 1 , \"y\":{\"z\":null} } , \"devices\" : [ ] } \n"),
			Request{DeviceID: []byte("a"), Build: 1, Family: ostable.AMD64Client}},
		{"invalid UTF-8 in a skipped string", []byte("{\"x\":\"\xff\",\"deviceId\":\"a\",\"os\":{\"build\":1},\"devices\":[]}"),
			Request{DeviceID: []byte("a"), Build: 1, Family: ostable.AMD64Client}},
		{"nesting of 32 levels", []byte(`{"x":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `,"deviceId":"a","os":{"build":1},"devices":[]}`),
			Request{DeviceID: []byte("a"), Build: 1, Family: ostable.AMD64Client}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			if err := NewDecoder(Limits{}).Decode(tc.body, &r); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			for _, d := range diffRequest(&r, &tc.want) {
				t.Error(d)
			}
		})
	}
}

// TestDecodeReuse decodes requests of different shapes into one Request with one Decoder:
// nothing of an earlier request may show through.
func TestDecodeReuse(t *testing.T) {
	names := requestFiles(t)
	want := make([]Request, len(names))
	for i, name := range names {
		if err := NewDecoder(Limits{}).Decode(readRequest(t, name), &want[i]); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	d := NewDecoder(Limits{})
	var r Request
	for round := 0; round < 3; round++ {
		for i, name := range names {
			if round == 1 { // and after an error
				if d.Decode([]byte(`{"deviceId":"`+strings.Repeat("y", 300)+`"}`), &r) == nil {
					t.Fatal("no error")
				}
			}
			if err := d.Decode(readRequest(t, name), &r); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, diff := range diffRequest(&r, &want[i]) {
				t.Errorf("%s, round %d: %s", name, round, diff)
			}
		}
	}
}

// reqBase is a valid request whose parts the error cases replace.
const reqBase = `{"deviceId":"pc-1","os":{"build":19045},"devices":[{"instanceId":"ROOT\\X","hardwareIds":["A"],"driver":{"date":"2023-05-01","version":"1.2"},"extensions":[{"extensionId":"0cf8618d-9eff-537c-9f35-46861406eb9c","date":"2023-05-01","version":"1"}]}]}`

// reqWith returns reqBase with old replaced by new (which must be there).
func reqWith(old, new string) string {
	if !strings.Contains(reqBase, old) {
		panic("base has no " + old)
	}
	return strings.Replace(reqBase, old, new, 1)
}

// reqDevice returns a request whose single device is the object device.
func reqDevice(device string) string {
	return `{"deviceId":"pc-1","os":{"build":19045},"devices":[` + device + `]}`
}

// reqDriver returns a request whose single device has the driver d.
func reqDriver(d string) string { return reqDevice(`{"instanceId":"X","driver":` + d + `}`) }

// reqExtension returns a request whose single device has the extension x.
func reqExtension(x string) string { return reqDevice(`{"instanceId":"X","extensions":[` + x + `]}`) }

const (
	testGUID      = `"0cf8618d-9eff-537c-9f35-46861406eb9c"`
	testExtension = `{"extensionId":` + testGUID + `,"date":"2023-05-01","version":"1"}`
)

func TestDecodeErrors(t *testing.T) {
	small := Limits{MaxDevices: 2, MaxIDs: 2, MaxString: 8}
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, tc := range []struct {
		name  string
		lim   Limits
		body  string
		code  string
		field string
		msg   string // when not empty, the exact message
	}{
		// The body.
		{name: "body beyond MaxBody", lim: Limits{MaxBody: 20}, body: reqBase, code: CodeLimit, field: "", msg: fmt.Sprintf("the body is %d bytes; at most 20", len(reqBase))},
		{name: "empty body", body: ``, code: CodeBadJSON, field: ""},
		{name: "white space only", body: " \n", code: CodeBadJSON, field: ""},
		{name: "top level array", body: `[]`, code: CodeBadType, field: "", msg: "the request must be an object; got an array"},
		{name: "top level string", body: `"{}"`, code: CodeBadType, field: ""},
		{name: "top level null", body: `null`, code: CodeBadType, field: ""},
		{name: "trailing data", body: reqBase + ` x`, code: CodeBadJSON, field: ""},
		{name: "trailing object", body: reqBase + `{}`, code: CodeBadJSON, field: ""},
		{name: "trailing NUL", body: reqBase + "\x00", code: CodeBadJSON, field: ""},
		{name: "not JSON", body: `deviceId=1`, code: CodeBadJSON, field: ""},

		// Required members.
		{name: "missing deviceId", body: `{"os":{"build":1},"devices":[]}`, code: CodeMissing, field: "/deviceId"},
		{name: "missing os", body: `{"deviceId":"a","devices":[]}`, code: CodeMissing, field: "/os"},
		{name: "missing devices", body: `{"deviceId":"a","os":{"build":1}}`, code: CodeMissing, field: "/devices"},
		{name: "missing os.build", body: reqWith(`{"build":19045}`, `{"revision":1}`), code: CodeMissing, field: "/os/build",
			msg: "os.build is missing; want an integer from 1 to 2147483647"},
		{name: "missing targetBuild for upgrade", body: reqWith(`"os"`, `"scan":"upgrade","os"`), code: CodeMissing, field: "/targetBuild"},
		{name: "missing instanceId", body: reqDevice(`{"hardwareIds":["A"]}`), code: CodeMissing, field: "/devices/0/instanceId"},
		{name: "missing driver.date", body: reqDriver(`{"version":"1"}`), code: CodeMissing, field: "/devices/0/driver/date"},
		{name: "missing driver.version", body: reqDriver(`{"date":"2023-05-01"}`), code: CodeMissing, field: "/devices/0/driver/version"},
		{name: "missing extensionId", body: reqExtension(`{"date":"2023-05-01","version":"1"}`), code: CodeMissing, field: "/devices/0/extensions/0/extensionId"},
		{name: "missing extension date", body: reqExtension(`{"extensionId":` + testGUID + `,"version":"1"}`), code: CodeMissing, field: "/devices/0/extensions/0/date"},
		{name: "missing extension version", body: reqExtension(`{"extensionId":` + testGUID + `,"date":"2023-05-01"}`), code: CodeMissing, field: "/devices/0/extensions/0/version"},

		// Wrong types.
		{name: "deviceId number", body: reqWith(`"pc-1"`, `5`), code: CodeBadType, field: "/deviceId", msg: "deviceId must be a string; got a number"},
		{name: "os string", body: reqWith(`{"build":19045}`, `"19045"`), code: CodeBadType, field: "/os"},
		{name: "os null", body: reqWith(`{"build":19045}`, `null`), code: CodeBadType, field: "/os"},
		{name: "os.build string", body: reqWith(`19045`, `"19045"`), code: CodeBadType, field: "/os/build", msg: "os.build must be an integer; got a string"},
		{name: "os.build true", body: reqWith(`19045`, `true`), code: CodeBadType, field: "/os/build"},
		{name: "os.revision null", body: reqWith(`19045`, `19045,"revision":null`), code: CodeBadType, field: "/os/revision"},
		{name: "os.arch number", body: reqWith(`19045`, `19045,"arch":64`), code: CodeBadType, field: "/os/arch"},
		{name: "os.sku array", body: reqWith(`19045`, `19045,"sku":["client"]`), code: CodeBadType, field: "/os/sku"},
		{name: "os.sMode string", body: reqWith(`19045`, `19045,"sMode":"false"`), code: CodeBadType, field: "/os/sMode", msg: "os.sMode must be a boolean; got a string"},
		{name: "scan null", body: reqWith(`"os"`, `"scan":null,"os"`), code: CodeBadType, field: "/scan"},
		{name: "targetBuild string", body: reqWith(`"os"`, `"targetBuild":"22631","os"`), code: CodeBadType, field: "/targetBuild"},
		{name: "chids object", body: reqWith(`"os"`, `"chids":{},"os"`), code: CodeBadType, field: "/chids"},
		{name: "chids entry number", body: reqWith(`"os"`, `"chids":[null,5],"os"`), code: CodeBadType, field: "/chids/1"},
		{name: "smbios array", body: reqWith(`"os"`, `"smbios":[],"os"`), code: CodeBadType, field: "/smbios"},
		{name: "smbios field number", body: reqWith(`"os"`, `"smbios":{"family":"F","manufacturer":5},"os"`), code: CodeBadType, field: "/smbios/manufacturer"},
		{name: "targetRing number", body: reqWith(`"os"`, `"targetRing":1,"os"`), code: CodeBadType, field: "/targetRing", msg: "targetRing must be a string or null; got a number"},
		{name: "audiences string", body: reqWith(`"os"`, `"audiences":"CoDev","os"`), code: CodeBadType, field: "/audiences"},
		{name: "audiences entry null", body: reqWith(`"os"`, `"audiences":["a",null],"os"`), code: CodeBadType, field: "/audiences/1"},
		{name: "insider boolean", body: reqWith(`"os"`, `"insider":true,"os"`), code: CodeBadType, field: "/insider"},
		{name: "devices object", body: `{"deviceId":"a","os":{"build":1},"devices":{}}`, code: CodeBadType, field: "/devices"},
		{name: "devices null", body: `{"deviceId":"a","os":{"build":1},"devices":null}`, code: CodeBadType, field: "/devices"},
		{name: "device string", body: reqDevice(`"X"`), code: CodeBadType, field: "/devices/0"},
		{name: "instanceId null", body: reqDevice(`{"instanceId":null}`), code: CodeBadType, field: "/devices/0/instanceId"},
		{name: "hardwareIds string", body: reqWith(`["A"]`, `"A"`), code: CodeBadType, field: "/devices/0/hardwareIds"},
		{name: "hardwareIds entry null", body: reqWith(`["A"]`, `["A",null]`), code: CodeBadType, field: "/devices/0/hardwareIds/1"},
		{name: "compatibleIds entry number", body: reqDevice(`{"instanceId":"X","compatibleIds":[1]}`), code: CodeBadType, field: "/devices/0/compatibleIds/0"},
		{name: "driver string", body: reqDriver(`"none"`), code: CodeBadType, field: "/devices/0/driver", msg: "devices[0].driver must be an object or null; got a string"},
		{name: "driver.date number", body: reqDriver(`{"date":20230501,"version":"1"}`), code: CodeBadType, field: "/devices/0/driver/date"},
		{name: "driver.version number", body: reqDriver(`{"date":"2023-05-01","version":1.2}`), code: CodeBadType, field: "/devices/0/driver/version"},
		{name: "driver.rank number", body: reqDriver(`{"date":"2023-05-01","version":"1","rank":255}`), code: CodeBadType, field: "/devices/0/driver/rank"},
		{name: "driver.generic string", body: reqDriver(`{"date":"2023-05-01","version":"1","generic":"no"}`), code: CodeBadType, field: "/devices/0/driver/generic"},
		{name: "extensions object", body: reqDevice(`{"instanceId":"X","extensions":{}}`), code: CodeBadType, field: "/devices/0/extensions"},
		{name: "extension array", body: reqExtension(`[]`), code: CodeBadType, field: "/devices/0/extensions/0"},
		{name: "extensionId number", body: reqExtension(`{"extensionId":1}`), code: CodeBadType, field: "/devices/0/extensions/0/extensionId"},

		// Bad values.
		{name: "deviceId empty", body: reqWith(`"pc-1"`, `""`), code: CodeBadValue, field: "/deviceId"},
		{name: "deviceId not UTF-8", body: reqWith(`"pc-1"`, "\"pc\xff\""), code: CodeBadValue, field: "/deviceId", msg: "deviceId is not valid UTF-8"},
		{name: "hardware ID not UTF-8", body: reqWith(`["A"]`, "[\"A\",\"\xc3\x28\"]"), code: CodeBadValue, field: "/devices/0/hardwareIds/1"},
		{name: "build 0", body: reqWith(`19045`, `0`), code: CodeBadValue, field: "/os/build"},
		{name: "build 2^31", body: reqWith(`19045`, `2147483648`), code: CodeBadValue, field: "/os/build"},
		{name: "build huge", body: reqWith(`19045`, `99999999999999999999999999`), code: CodeBadValue, field: "/os/build"},
		{name: "build fraction", body: reqWith(`19045`, `1.5`), code: CodeBadValue, field: "/os/build", msg: "os.build must be an integer from 1 to 2147483647; got 1.5"},
		{name: "build integral fraction", body: reqWith(`19045`, `19045.0`), code: CodeBadValue, field: "/os/build"},
		{name: "build exponent", body: reqWith(`19045`, `1e3`), code: CodeBadValue, field: "/os/build"},
		{name: "build negative", body: reqWith(`19045`, `-1`), code: CodeBadValue, field: "/os/build"},
		{name: "revision negative", body: reqWith(`19045`, `19045,"revision":-1`), code: CodeBadValue, field: "/os/revision"},
		{name: "revision 2^32", body: reqWith(`19045`, `19045,"revision":4294967296`), code: CodeBadValue, field: "/os/revision"},
		{name: "arch unknown", body: reqWith(`19045`, `19045,"arch":"ia64"`), code: CodeBadValue, field: "/os/arch", msg: `os.arch is "ia64"; want one of x86, amd64, arm64`},
		{name: "arch wrong case", body: reqWith(`19045`, `19045,"arch":"AMD64"`), code: CodeBadValue, field: "/os/arch"},
		{name: "sku unknown", body: reqWith(`19045`, `19045,"sku":"datacenter"`), code: CodeBadValue, field: "/os/sku"},
		{name: "x86 server", body: reqWith(`19045`, `19045,"sku":"server","arch":"x86"`), code: CodeBadValue, field: "/os/sku"},
		{name: "scan unknown", body: reqWith(`"os"`, `"scan":"weekly","os"`), code: CodeBadValue, field: "/scan"},
		{name: "targetBuild 0 (checked even when not kept)", body: reqWith(`"os"`, `"targetBuild":0,"os"`), code: CodeBadValue, field: "/targetBuild"},
		{name: "chid not a GUID", body: reqWith(`"os"`, `"chids":["147efce9-f201-5fc8-ab0c-c859751c344"],"os"`), code: CodeBadValue, field: "/chids/0"},
		{name: "insider wrong case", body: reqWith(`"os"`, `"insider":"dev","os"`), code: CodeBadValue, field: "/insider"},
		{name: "instanceId empty", body: reqDevice(`{"instanceId":""}`), code: CodeBadValue, field: "/devices/0/instanceId"},
		{name: "hardware ID empty", body: reqWith(`["A"]`, `["A",""]`), code: CodeBadValue, field: "/devices/0/hardwareIds/1"},
		{name: "compatible ID empty", body: reqDevice(`{"instanceId":"X","compatibleIds":[""]}`), code: CodeBadValue, field: "/devices/0/compatibleIds/0"},
		{name: "date Feb 29 of a common year", body: reqDriver(`{"date":"2023-02-29","version":"1"}`), code: CodeBadValue, field: "/devices/0/driver/date"},
		{name: "date month 13", body: reqDriver(`{"date":"2023-13-01","version":"1"}`), code: CodeBadValue, field: "/devices/0/driver/date"},
		{name: "date day 0", body: reqDriver(`{"date":"2023-01-00","version":"1"}`), code: CodeBadValue, field: "/devices/0/driver/date"},
		{name: "date short", body: reqDriver(`{"date":"2023-5-1","version":"1"}`), code: CodeBadValue, field: "/devices/0/driver/date"},
		{name: "date US order", body: reqDriver(`{"date":"05/01/2023","version":"1"}`), code: CodeBadValue, field: "/devices/0/driver/date"},
		{name: "date-time without zone", body: reqDriver(`{"date":"2023-05-01T10:00:00","version":"1"}`), code: CodeBadValue, field: "/devices/0/driver/date"},
		{name: "date-time hour 24", body: reqDriver(`{"date":"2023-05-01T24:00:00Z","version":"1"}`), code: CodeBadValue, field: "/devices/0/driver/date"},
		{name: "date trailing space", body: reqDriver(`{"date":"2023-05-01 ","version":"1"}`), code: CodeBadValue, field: "/devices/0/driver/date"},
		{name: "version empty", body: reqDriver(`{"date":"2023-05-01","version":""}`), code: CodeBadValue, field: "/devices/0/driver/version"},
		{name: "version 5 parts", body: reqDriver(`{"date":"2023-05-01","version":"1.2.3.4.5"}`), code: CodeBadValue, field: "/devices/0/driver/version"},
		{name: "version part 65536", body: reqDriver(`{"date":"2023-05-01","version":"1.65536"}`), code: CodeBadValue, field: "/devices/0/driver/version"},
		{name: "version empty part", body: reqDriver(`{"date":"2023-05-01","version":"1..2"}`), code: CodeBadValue, field: "/devices/0/driver/version"},
		{name: "version trailing dot", body: reqDriver(`{"date":"2023-05-01","version":"1.2."}`), code: CodeBadValue, field: "/devices/0/driver/version"},
		{name: "version sign", body: reqDriver(`{"date":"2023-05-01","version":"+1"}`), code: CodeBadValue, field: "/devices/0/driver/version"},
		{name: "rank 6 digits", body: reqDriver(`{"date":"2023-05-01","version":"1","rank":"FF0001"}`), code: CodeBadValue, field: "/devices/0/driver/rank"},
		{name: "rank 9 digits", body: reqDriver(`{"date":"2023-05-01","version":"1","rank":"000FF0001"}`), code: CodeBadValue, field: "/devices/0/driver/rank"},
		{name: "rank not hex", body: reqDriver(`{"date":"2023-05-01","version":"1","rank":"00FF000G"}`), code: CodeBadValue, field: "/devices/0/driver/rank"},
		{name: "extensionId not a GUID", body: reqExtension(`{"extensionId":"e1d.inf","date":"2023-05-01","version":"1"}`), code: CodeBadValue, field: "/devices/0/extensions/0/extensionId"},

		// Limits.
		{name: "deviceId 129 bytes", body: reqWith(`"pc-1"`, `"`+strings.Repeat("d", 129)+`"`), code: CodeLimit, field: "/deviceId"},
		{name: "deviceId 200 bytes", body: reqWith(`"pc-1"`, `"`+strings.Repeat("d", 200)+`"`), code: CodeLimit, field: "/deviceId", msg: "deviceId is 200 bytes; at most 128"},
		{name: "devices beyond MaxDevices", lim: small, body: `{"deviceId":"a","os":{"build":1},"devices":[{"instanceId":"1"},{"instanceId":"2"},{"instanceId":"3"}]}`,
			code: CodeLimit, field: "/devices/2", msg: "devices has more than 2 entries; at most 2"},
		{name: "hardwareIds beyond MaxIDs", lim: small, body: reqWith(`["A"]`, `["A","B","C"]`), code: CodeLimit, field: "/devices/0/hardwareIds/2",
			msg: "devices[0].hardwareIds has more than 2 entries; at most 2"},
		{name: "compatibleIds beyond MaxIDs", lim: small, body: reqDevice(`{"instanceId":"X","compatibleIds":["A","B","C"]}`), code: CodeLimit, field: "/devices/0/compatibleIds/2"},
		{name: "extensions beyond MaxIDs", lim: small, body: reqExtension(testExtension + "," + testExtension + "," + testExtension), code: CodeLimit, field: "/devices/0/extensions/2"},
		{name: "audiences beyond MaxIDs", lim: small, body: reqWith(`"os"`, `"audiences":["a","b","c"],"os"`), code: CodeLimit, field: "/audiences/2"},
		{name: "16 chids", body: reqWith(`"os"`, `"chids":[`+strings.Repeat("null,", 15)+`null],"os"`), code: CodeLimit, field: "/chids/15"},
		{name: "instanceId beyond MaxString", lim: small, body: reqDevice(`{"instanceId":"123456789"}`), code: CodeLimit, field: "/devices/0/instanceId",
			msg: "devices[0].instanceId is 9 bytes; at most 8"},
		{name: "hardware ID beyond MaxString", lim: small, body: reqWith(`["A"]`, `["A","123456789"]`), code: CodeLimit, field: "/devices/0/hardwareIds/1"},
		{name: "hardware ID beyond MaxString after unescaping", lim: small, body: reqWith(`["A"]`, `["\u00e9\u00e9\u00e9\u00e9\u00e9"]`), code: CodeLimit, field: "/devices/0/hardwareIds/0"},
		{name: "targetRing beyond MaxString", lim: small, body: reqWith(`"os"`, `"targetRing":"123456789","os"`), code: CodeLimit, field: "/targetRing"},
		{name: "audience beyond MaxString", lim: small, body: reqWith(`"os"`, `"audiences":["123456789"],"os"`), code: CodeLimit, field: "/audiences/0"},
		{name: "smbios value beyond MaxString", lim: small, body: reqWith(`"os"`, `"smbios":{"family":"123456789"},"os"`), code: CodeLimit, field: "/smbios/family"},
		{name: "default MaxString", body: reqWith(`["A"]`, `["`+strings.Repeat("A", 513)+`"]`), code: CodeLimit, field: "/devices/0/hardwareIds/0"},

		// Duplicates.
		{name: "duplicate deviceId", body: reqWith(`"os"`, `"deviceId":"b","os"`), code: CodeBadJSON, field: "/deviceId", msg: "duplicate member deviceId"},
		{name: "duplicate deviceId, escaped", body: reqWith(`"os"`, `"device\u0049d":"b","os"`), code: CodeBadJSON, field: "/deviceId"},
		{name: "duplicate os.build", body: reqWith(`19045`, `19045,"build":19045`), code: CodeBadJSON, field: "/os/build"},
		{name: "duplicate devices", body: reqWith(`"os"`, `"devices":[],"os"`), code: CodeBadJSON, field: "/devices"},
		{name: "duplicate hardwareIds", body: reqWith(`["A"]`, `["A"],"hardwareIds":[]`), code: CodeBadJSON, field: "/devices/0/hardwareIds"},
		{name: "duplicate driver.date", body: reqDriver(`{"date":"2023-05-01","version":"1","date":"2023-05-01"}`), code: CodeBadJSON, field: "/devices/0/driver/date"},
		{name: "duplicate extension version", body: reqExtension(`{"version":"1","version":"1"}`), code: CodeBadJSON, field: "/devices/0/extensions/0/version"},
		{name: "duplicate smbios field", body: reqWith(`"os"`, `"smbios":{"family":"a","family":null},"os"`), code: CodeBadJSON, field: "/smbios/family"},

		// Nesting.
		{name: "nesting of 33 levels", body: reqWith(`"os"`, `"x":`+deep(32)+`,"os"`), code: CodeBadJSON, field: "/x" + strings.Repeat("/0", 31),
			msg: "nesting deeper than 32 levels at byte 54"},
		{name: "nesting of 33 objects", body: reqWith(`"os"`, `"a~/b":`+strings.Repeat(`{"":`, 32)+`1`+strings.Repeat("}", 32)+`,"os"`), code: CodeBadJSON,
			field: "/a~0~1b" + strings.Repeat("/", 31)},
		{name: "nesting of 10000 levels", body: reqWith(`"os"`, `"x":`+deep(10000)+`,"os"`), code: CodeBadJSON, field: "/x" + strings.Repeat("/0", 31)},
		{name: "nesting in a device", body: reqDevice(`{"instanceId":"X","x":` + deep(30) + `}`), code: CodeBadJSON, field: "/devices/0/x" + strings.Repeat("/0", 29)},

		// Strings.
		{name: "unknown escape", body: reqWith(`"pc-1"`, `"pc\x1"`), code: CodeBadJSON, field: "/deviceId"},
		{name: "short \\u escape", body: reqWith(`"pc-1"`, `"pc\u12"`), code: CodeBadJSON, field: "/deviceId"},
		{name: "\\u escape not hex", body: reqWith(`"pc-1"`, `"\uZZZZ"`), code: CodeBadJSON, field: "/deviceId"},
		{name: "\\U escape", body: reqWith(`"pc-1"`, `"\U0041"`), code: CodeBadJSON, field: "/deviceId"},
		{name: "bad escape in a skipped string", body: reqWith(`"os"`, `"x":{"y":"\a"},"os"`), code: CodeBadJSON, field: "/x/y"},
		{name: "bad escape in a member name", body: reqWith(`"os"`, `"x\q":1,"os"`), code: CodeBadJSON, field: ""},
		{name: "raw tab in a string", body: reqWith(`"pc-1"`, "\"pc\t1\""), code: CodeBadJSON, field: "/deviceId"},
		{name: "raw newline in a hardware ID", body: reqWith(`["A"]`, "[\"A\nB\"]"), code: CodeBadJSON, field: "/devices/0/hardwareIds/0"},
		{name: "raw NUL in a member name", body: reqWith(`"os"`, "\"o\x00\":1,\"os\""), code: CodeBadJSON, field: ""},
		{name: "unterminated string", body: `{"deviceId":"pc-1`, code: CodeBadJSON, field: "/deviceId"},
		{name: "single quotes", body: reqWith(`"pc-1"`, `'pc-1'`), code: CodeBadJSON, field: "/deviceId"},

		// Other syntax.
		{name: "leading zero", body: reqWith(`19045`, `019045`), code: CodeBadJSON, field: "/os/build"},
		{name: "leading zero, skipped", body: reqWith(`"os"`, `"x":00,"os"`), code: CodeBadJSON, field: "/x"},
		{name: "plus sign", body: reqWith(`19045`, `+19045`), code: CodeBadJSON, field: "/os/build"},
		{name: "bare minus", body: reqWith(`"os"`, `"x":-,"os"`), code: CodeBadJSON, field: "/x"},
		{name: "fraction without digits", body: reqWith(`"os"`, `"x":1.,"os"`), code: CodeBadJSON, field: "/x"},
		{name: "exponent without digits", body: reqWith(`"os"`, `"x":1e+,"os"`), code: CodeBadJSON, field: "/x"},
		{name: "NaN", body: reqWith(`"os"`, `"x":NaN,"os"`), code: CodeBadJSON, field: "/x"},
		{name: "truncated literal", body: reqWith(`"os"`, `"x":tru,"os"`), code: CodeBadJSON, field: "/x"},
		{name: "literal with a tail", body: reqWith(`"os"`, `"x":nulll,"os"`), code: CodeBadJSON, field: ""},
		{name: "missing colon", body: reqWith(`"deviceId":`, `"deviceId"`), code: CodeBadJSON, field: ""},
		{name: "missing comma", body: reqWith(`,"os"`, ` "os"`), code: CodeBadJSON, field: ""},
		{name: "trailing comma in an object", body: reqWith(`19045}`, `19045,}`), code: CodeBadJSON, field: "/os"},
		{name: "trailing comma in an array", body: reqWith(`["A"]`, `["A",]`), code: CodeBadJSON, field: "/devices/0/hardwareIds/1"},
		{name: "leading comma in an array", body: reqWith(`["A"]`, `[,"A"]`), code: CodeBadJSON, field: "/devices/0/hardwareIds/0"},
		{name: "number as a member name", body: reqWith(`"os"`, `1:2,"os"`), code: CodeBadJSON, field: ""},
		{name: "unclosed object", body: `{"deviceId":"a","os":{"build":1},"devices":[]`, code: CodeBadJSON, field: ""},
		{name: "syntax error beats a type error", body: `{"deviceId":5,"os":{"build":1},"devices":[}`, code: CodeBadJSON, field: "/devices/0"},
		{name: "syntax error beats a limit", lim: small, body: `{"deviceId":"a","os":{"build":1},"devices":[{"instanceId":"1"},{"instanceId":"2"},{"instanceId":"3"}],"x":?}`,
			code: CodeBadJSON, field: "/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			err := NewDecoder(tc.lim).Decode([]byte(tc.body), &r)
			if err == nil {
				t.Fatalf("Decode(%q) succeeded; want %s at %q", tc.body, tc.code, tc.field)
			}
			if err.Code != tc.code || err.Field != tc.field {
				t.Errorf("Decode(%q) = %v; want %s at %q", tc.body, err, tc.code, tc.field)
			}
			if tc.msg != "" && err.Message != tc.msg {
				t.Errorf("Decode(%q) message = %q; want %q", tc.body, err.Message, tc.msg)
			}
		})
	}
}

// bigRequest reports whether a test request is one of the benchmarks' large ones (20 devices,
// a whole PC), which tests that try every byte skip: bench-1dev.json has the same shapes.
func bigRequest(name string) bool {
	return name == "bench-20dev.json" || name == "bench-wholepc.json"
}

// TestDecodeTruncated decodes every proper prefix of every test request: each must fail
// with bad-json, and none may panic.
func TestDecodeTruncated(t *testing.T) {
	d := NewDecoder(Limits{})
	var r Request
	for _, name := range requestFiles(t) {
		if bigRequest(name) {
			continue // bench-1dev.json has the same shapes
		}
		body := readRequest(t, name)
		whole := bytes.TrimSpace(body)
		for n := range len(body) {
			prefix := body[:n]
			if bytes.Equal(bytes.TrimSpace(prefix), whole) {
				continue // only white space is cut
			}
			err := d.Decode(prefix, &r)
			if err == nil || err.Code != CodeBadJSON {
				t.Fatalf("%s cut at %d: Decode(%q) = %v; want bad-json", name, n, prefix, err)
			}
		}
	}
}

// TestDecodeMangled changes every byte of every test request to each of a few others: the
// decoder must never panic, and whatever it accepts must keep the invariants.
func TestDecodeMangled(t *testing.T) {
	d := NewDecoder(Limits{})
	var r Request
	for _, name := range requestFiles(t) {
		if bigRequest(name) {
			continue // bench-1dev.json has the same shapes
		}
		body := readRequest(t, name)
		b := make([]byte, len(body))
		for i := range body {
			for _, c := range []byte{body[i] + 1, body[i] - 1, '"', '\\', '{', ']', 0, 0xff} {
				copy(b, body)
				b[i] = c
				if err := d.Decode(b, &r); err != nil {
					checkDecodeError(t, b, err)
					continue
				}
				checkRequest(t, b, &r, DefaultLimits)
			}
		}
	}
}

// checkDecodeError checks what every error must be.
func checkDecodeError(t *testing.T, body []byte, err *Error) {
	t.Helper()
	switch err.Code {
	case CodeBadJSON, CodeBadType, CodeBadValue, CodeMissing, CodeLimit:
	default:
		t.Fatalf("Decode(%q): unknown code in %v", body, err)
	}
	if err.Message == "" || (err.Field != "" && err.Field[0] != '/') {
		t.Fatalf("Decode(%q) = %#v: want a message and a JSON pointer", body, err)
	}
}

// checkRequest checks what every decoded request must be.
func checkRequest(t *testing.T, body []byte, r *Request, l Limits) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("Decode(%q): %s", body, fmt.Sprintf(format, args...))
	}
	str := func(what string, s []byte, limit int) {
		t.Helper()
		if len(s) > limit {
			fail("%s is %d bytes; limit %d", what, len(s), limit)
		}
	}
	id := func(what string, s []byte) {
		t.Helper()
		str(what, s, l.MaxString)
		if len(s) == 0 || bytes.ContainsFunc(s, func(r rune) bool { return 'a' <= r && r <= 'z' }) {
			fail("%s = %q: want a non-empty upper-case ID", what, s)
		}
	}
	if len(r.DeviceID) == 0 || len(r.DeviceID) > maxDeviceIDLen {
		fail("DeviceID = %q", r.DeviceID)
	}
	if r.Build < 1 || r.Build > maxBuildNumber || r.Family >= ostable.NumFamilies || r.Scan >= numScans || r.TargetBuild > maxBuildNumber {
		fail("Build %d, Family %d, Scan %d, TargetBuild %d", r.Build, r.Family, r.Scan, r.TargetBuild)
	}
	if (r.Scan == ScanUpgrade) != (r.TargetBuild != 0) {
		fail("Scan %v with TargetBuild %d", r.Scan, r.TargetBuild)
	}
	if r.CHIDMask >= 1<<chid.NumLevels || (r.CHIDMask != 0 && !r.HasCHIDs) {
		fail("CHIDMask %#x, HasCHIDs %v", r.CHIDMask, r.HasCHIDs)
	}
	for i := range chid.NumLevels {
		if r.CHIDMask&(1<<i) == 0 && r.CHIDs[i] != (chid.ID{}) {
			fail("CHIDs[%d] set outside the mask", i)
		}
	}
	for i, v := range r.SMBIOS {
		str(chid.FieldNames[i], v, l.MaxString)
		if len(v) > 0 && !r.HasSMBIOS {
			fail("SMBIOS without HasSMBIOS")
		}
	}
	str("TargetRing", r.TargetRing, l.MaxString)
	if len(r.Audiences) > l.MaxIDs {
		fail("%d audiences", len(r.Audiences))
	}
	for _, a := range r.Audiences {
		str("audience", a, l.MaxString)
	}
	if r.Insider&^(ChannelCanary|ChannelDev|ChannelBeta|ChannelReleasePreview) != 0 || r.Insider&(r.Insider-1) != 0 {
		fail("Insider %#x", r.Insider)
	}
	if len(r.Devices) > l.MaxDevices {
		fail("%d devices", len(r.Devices))
	}
	for _, dv := range r.Devices {
		str("InstanceID", dv.InstanceID, l.MaxString)
		if len(dv.InstanceID) == 0 || len(dv.HardwareIDs) > l.MaxIDs || len(dv.CompatibleIDs) > l.MaxIDs || len(dv.Extensions) > l.MaxIDs {
			fail("device %q: %d, %d, %d", dv.InstanceID, len(dv.HardwareIDs), len(dv.CompatibleIDs), len(dv.Extensions))
		}
		for _, s := range dv.HardwareIDs {
			id("hardware ID", s)
		}
		for _, s := range dv.CompatibleIDs {
			id("compatible ID", s)
		}
		if !dv.Driver.Present && dv.Driver != (Driver{}) {
			fail("driver %+v without Present", dv.Driver)
		}
		if !dv.Driver.HasRank && dv.Driver.Rank != 0 {
			fail("rank without HasRank")
		}
	}
}

func TestParseDate(t *testing.T) {
	// Every day of 0001 to 9999 against the time package.
	for tm := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC); tm.Year() < 10000; tm = tm.AddDate(0, 0, 1) {
		s := tm.Format("2006-01-02")
		got, ok := parseDate([]byte(s))
		if want := int32(tm.Unix() / 86400); !ok || got != want {
			t.Fatalf("parseDate(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	for s, want := range map[string]int32{
		"1970-01-01":                       0,
		"0000-03-01":                       -719468,
		"2000-02-29":                       testDay(2000, 2, 29),
		"2023-05-01T00:00:00Z":             testDay(2023, 5, 1),
		"2023-05-01T23:59:59.999999-12:00": testDay(2023, 5, 1), // the date as written, not moved to UTC
		"2016-12-31t23:59:60z":             testDay(2016, 12, 31),
	} {
		if got, ok := parseDate([]byte(s)); !ok || got != want {
			t.Errorf("parseDate(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "2023", "1900-02-29", "2100-02-29", "2023-04-31", "2023-00-10", "2023-05-01T", "2023-05-01T00:00Z",
		"2023-05-01T00:60:00Z", "2023-05-01T00:00:61Z", "2023-05-01T00:00:00.Z", "2023-05-01T00:00:00+1:00", "2023-05-01T00:00:00+24:00",
		"2023-05-01T00:00:00+05:60", "2023-05-01T00:00:00Zjunk", "２０２３-05-01", "-023-05-01", "2023-05-01 00:00:00Z"} {
		if got, ok := parseDate([]byte(s)); ok {
			t.Errorf("parseDate(%q) = %d; want an error", s, got)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for s, want := range map[string]uint64{
		"1":                       testVersion(1, 0, 0, 0),
		"2.1.3.0":                 testVersion(2, 1, 3, 0),
		"10.0.19041":              testVersion(10, 0, 19041, 0),
		"65535.65535.65535.65535": testVersion(65535, 65535, 65535, 65535),
		"0.0":                     0,
		"01.002":                  testVersion(1, 2, 0, 0),
	} {
		if got, ok := parseVersion([]byte(s)); !ok || got != want {
			t.Errorf("parseVersion(%q) = %#x, %v; want %#x", s, got, ok, want)
		}
	}
	for _, s := range []string{"", ".", "1.", ".1", "1..2", "1.2.3.4.5", "65536", "1.99999999999", "1.2a", "v1", " 1", "1,2"} {
		if got, ok := parseVersion([]byte(s)); ok {
			t.Errorf("parseVersion(%q) = %#x; want an error", s, got)
		}
	}
}

// TestDecodeAllocs holds Decode to zero allocations once a Decoder and a Request are warm.
func TestDecodeAllocs(t *testing.T) {
	for _, name := range []string{"bench-1dev.json", "bench-20dev.json", "bench-wholepc.json", "example.json", "escapes.json", "upgrade.json"} {
		body := readRequest(t, name)
		d := NewDecoder(Limits{})
		var r Request
		for range 3 {
			if err := d.Decode(body, &r); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		n := testing.AllocsPerRun(100, func() {
			if err := d.Decode(body, &r); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("%s: Decode made %v allocations; want 0", name, n)
		}
	}
}

// TestPlainASCII checks the 8-bytes-at-a-time scan against the byte-by-byte one: it must stop
// at the first byte that ends a run or is not ASCII, or where the whole words end: every
// byte value at every position among plain bytes, then random strings with several special
// bytes (a borrow from one must not hide or move the first); the same for the encoder's
// plainRun.
func TestPlainASCII(t *testing.T) {
	first := func(b []byte) int { // the definition
		for i, c := range b[:len(b)&^7] {
			if stringStop[c] || c >= 0x80 {
				return i
			}
		}
		return len(b) &^ 7
	}
	rng := rand.New(rand.NewPCG(1, 2))
	special := []byte{0, 0x1f, '"', '\\', 0x80, 0xff, 0x20, 0x21, '#', '[', ']', 0x7f}
	for range 200000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = special[rng.IntN(len(special))]
			} else {
				b[i] = byte(rng.IntN(256))
			}
		}
		if got, want := plainASCII(b, 0), first(b); got != want {
			t.Fatalf("plainASCII(%q) = %d; want %d", b, got, want)
		}
		// The encoder's plainRun, which goes on to the end: the first special byte or len.
		want := len(b)
		for i, c := range b {
			if stringStop[c] || c >= 0x80 {
				want = i
				break
			}
		}
		if got := plainRun(string(b), 0); got != want {
			t.Fatalf("plainRun(%q) = %d; want %d", b, got, want)
		}
	}

	b := make([]byte, 24)
	for c := range 256 {
		for at := range 16 {
			for i := range b {
				b[i] = 'a'
			}
			b[at] = byte(c)
			stop := len(b)
			if stringStop[c] || c >= 0x80 {
				stop = at
			}
			want := len(b) &^ 7 // no special byte in the whole words: where they end
			if stop < len(b)&^7 {
				want = stop // else exactly the first one
			}
			if got := plainASCII(b, 0); got != want {
				t.Fatalf("plainASCII with %#02x at %d = %d; want %d", c, at, got, want)
			}
		}
	}
}

// TestDecodeEscapes decodes strings made of escapes next to each other and to plain runs,
// in an instance ID (kept as is) and a hardware ID (normalised), and compares them with
// encoding/json's reading of the same JSON string.
func TestDecodeEscapes(t *testing.T) {
	parts := []string{`\\`, `\"`, `\/`, `\u0041`, `\u0061`, `\u0026`, `\u001f`, `\u00e9`, `\n`, `a`, `PCI`, `&`, `\\\\`}
	d := NewDecoder(Limits{})
	var r Request
	for _, a := range parts {
		for _, b := range parts {
			for _, c := range parts {
				lit := `"` + a + b + c + `"`
				var want string
				if err := json.Unmarshal([]byte(lit), &want); err != nil {
					t.Fatal(err)
				}
				body := reqDevice(`{"instanceId":` + lit + `,"hardwareIds":[` + lit + `]}`)
				if err := d.Decode([]byte(body), &r); err != nil {
					t.Fatalf("Decode(%s) = %v", body, err)
				}
				if got := string(r.Devices[0].InstanceID); got != want {
					t.Errorf("instanceId %s decodes to %q; want %q", lit, got, want)
				}
				if got, want := string(r.Devices[0].HardwareIDs[0]), catalogs.NormalizeHWID(want); got != want {
					t.Errorf("hardwareIds [%s] decodes to %q; want %q", lit, got, want)
				}
			}
		}
	}
}

// TestUpperASCII holds the decoder's word-at-a-time upper-casing (hwidText) to
// catalogs.NormalizeHWIDBytes: every byte value at every position of a word, then random
// words.
func TestUpperASCII(t *testing.T) {
	check := func(w uint64) {
		var b, want [8]byte
		binary.LittleEndian.PutUint64(b[:], w)
		want = b
		catalogs.NormalizeHWIDBytes(want[:])
		if got := upperASCII(w); got != binary.LittleEndian.Uint64(want[:]) {
			t.Fatalf("upperASCII(%q) = %#x; want %q", b, got, want)
		}
		for _, c := range b {
			if got, want := upperASCII1(c), catalogs.NormalizeHWID(string([]byte{c})); string([]byte{got}) != want {
				t.Fatalf("upperASCII1(%#02x) = %#02x; want %q", c, got, want)
			}
		}
	}
	for c := range 256 {
		for at := range 8 {
			check(0x6161616161616161&^(0xff<<(8*at)) | uint64(c)<<(8*at))
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		check(rng.Uint64())
	}
}

// TestKeptText holds the one-pass reader of kept strings (keptText) to text: hwid to what it
// replaces, text(true) through nonEmpty and then catalogs.NormalizeHWIDBytes, and str to
// text(true) and the same limit; the same bytes, the same error, the cursor at the same
// place, for random strings of plain runs, escapes, bytes that are not ASCII, control bytes
// and cut-off bodies, at every alignment.
func TestKeptText(t *testing.T) {
	parts := []string{`\\`, `\/`, `\"`, `\u0061`, `\u0026`, `\u007F`, `\u00e9`, `\u0080`, `\u0G41`, `\u00`, `\n`, `a`, `PCI`, `VEN_8086&dev_7a73`, "\xc3\xa9", "\xff", "\x01",
		`&SUBSYS_552C1043&REV_11`, `"`, ` `}
	rng := rand.New(rand.NewPCG(5, 6))
	lim := Limits{MaxString: 40}.withDefaults()
	for n := range 200000 {
		var sb strings.Builder
		sb.WriteString(strings.Repeat(" ", n%9)) // the string's alignment in the body
		sb.WriteByte('"')
		for range rng.IntN(8) {
			sb.WriteString(parts[rng.IntN(len(parts))])
		}
		if rng.IntN(8) != 0 {
			sb.WriteByte('"')
		}
		sb.WriteString(strings.Repeat("]", rng.IntN(10)))
		body := []byte(sb.String())
		if rng.IntN(10) == 0 {
			body = body[:rng.IntN(len(body)+1)]
		}
		read := func(f func(*Decoder) ([]byte, *Error)) (string, *Error, int) {
			d := NewDecoder(lim)
			d.start(body)
			d.path[0], d.depth = pathSeg{arr: true, n: 1, at: true}, 1
			if n%2 == 0 { // else the arena is as short as the body allows: the prefix takes room
				d.arena = make([]byte, 0, len(body)+6)
			}
			d.arena = append(d.arena, "prefix"...) // a string kept before this one
			s, err := f(d)
			if string(d.arena[:6]) != "prefix" {
				t.Fatalf("%q: the arena's earlier string was overwritten: %q", body, d.arena)
			}
			return string(s), err, d.c.i
		}
		for _, c := range []struct {
			name      string
			got, want func(d *Decoder) ([]byte, *Error)
		}{
			{"hwid", (*Decoder).hwid, func(d *Decoder) ([]byte, *Error) {
				if d.c.peek() != '"' {
					return nil, d.wrongType("a string")
				}
				s, err := d.text(true)
				if err == nil && len(s) > d.lim.MaxString {
					return nil, d.fail(CodeLimit, "", fmt.Sprintf("is %d bytes; at most %d", len(s), d.lim.MaxString))
				}
				if err == nil && len(s) == 0 {
					err = d.badValue("is empty; want a non-empty string")
				}
				catalogs.NormalizeHWIDBytes(s)
				return s, err
			}},
			{"str", func(d *Decoder) ([]byte, *Error) { return d.str(d.lim.MaxString) }, func(d *Decoder) ([]byte, *Error) {
				if d.c.peek() != '"' {
					return nil, d.wrongType("a string")
				}
				s, err := d.text(true)
				if err == nil && len(s) > d.lim.MaxString {
					return nil, d.fail(CodeLimit, "", fmt.Sprintf("is %d bytes; at most %d", len(s), d.lim.MaxString))
				}
				return s, err
			}},
		} {
			got, gerr, gi := read(c.got)
			want, werr, wi := read(c.want)
			if (gerr == nil) != (werr == nil) || gerr != nil && *gerr != *werr {
				t.Fatalf("%q: %s's error %v; want %v", body, c.name, gerr, werr)
			}
			if gerr == nil && (got != want || gi != wi) {
				t.Fatalf("%q: %s = %q, cursor at %d; want %q at %d", body, c.name, got, gi, want, wi)
			}
		}
	}
}
