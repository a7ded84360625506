package rolloutsim

// The rollout simulation's world: four network chips, each with a baseline driver every PC
// has installed and a new driver in gradual rollout (one of them bad), written as a label
// tree of their own; and the PCs that carry the chips.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
)

// simChip is one network chip of the simulation and its two drivers.
type simChip struct {
	name     string  // "Wi-Fi AX211"
	ven, dev string  // PCI ids: "8086", "51F1"
	subsys   string  // "00948086"
	class    string  // "0280" (PCI class code: network, Wi-Fi) or "0200" (Ethernet)
	inf      string  // "netwtw.inf"
	share    float64 // share of PCs of its kind (wired or wireless) that have it
	wireless bool
	bad      bool
	startDay int // the new driver's rollout starts this many days after Start
	// The baseline driver (every PC has it installed, its label at 100%) and the new one
	// (in gradual rollout).
	oldVersion, oldDate string
	newVersion, newDate string
	// Filled by writeSimTree.
	product, oldLabel, newLabel string
}

// simChips are the chips; the first wireless one is the bad one. Their rollouts start a
// day apart, as publishers' do.
func simChips() []*simChip {
	return []*simChip{
		{name: "Ethernet I226-V", ven: "8086", dev: "125C", subsys: "00008086", class: "0200", inf: "e2f.inf", share: 0.55, startDay: 0,
			oldVersion: "2.1.3.15", oldDate: "2025-03-12", newVersion: "2.1.4.3", newDate: "2026-10-28"},
		{name: "Ethernet RTL8125", ven: "10EC", dev: "8125", subsys: "812510EC", class: "0200", inf: "rt25cx21x64.inf", share: 0.45, startDay: 2,
			oldVersion: "10.68.815.2024", oldDate: "2025-05-15", newVersion: "10.72.1008.2026", newDate: "2026-10-08"},
		{name: "Wi-Fi AX211", ven: "8086", dev: "51F1", subsys: "00948086", class: "0280", inf: "netwtw.inf", share: 0.6, wireless: true, bad: true, startDay: 1,
			oldVersion: "23.60.1.2", oldDate: "2025-06-20", newVersion: "23.110.0.5", newDate: "2026-11-02"},
		{name: "Wi-Fi RTL8852BE", ven: "10EC", dev: "B852", subsys: "B85210EC", class: "0280", inf: "rtwlane6.inf", share: 0.4, wireless: true, startDay: 3,
			oldVersion: "6001.16.143.0", oldDate: "2025-04-02", newVersion: "6001.16.175.0", newDate: "2026-10-21"},
	}
}

func (c *simChip) hwid() string { return "PCI\\VEN_" + c.ven + "&DEV_" + c.dev + "&SUBSYS_" + c.subsys }

// Ids of the simulation's tree, in the dashboard's 19-digit style.
const (
	simProductBase    = 1152921504606860000
	simSubmissionBase = 1152921504621860000
	simLabelBase      = 1152921504606990000
)

const simOSCode = "WINDOWS_v100_X64_VB_FULL" // Windows 10 2004 and later (offered forward)

// writeSimTree writes the label tree into dir: per chip a product with two submissions, the
// baseline's label live for a year with no rollout, and the new driver's label with an
// approved flight and a rollout at firstStage percent from start plus the chip's startDay.
func writeSimTree(dir string, chips []*simChip, start time.Time, firstStage float64, expires time.Duration) error {
	files := map[string]any{
		"catalog.json": map[string]any{"name": "rollout-sim", "expiresAfter": expires.String()},
	}
	day := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	for i, c := range chips {
		pid := fmt.Sprint(simProductBase + 10*(i+1))
		c.product = pid
		vendor := "Contoso"
		if c.ven == "10EC" {
			vendor = "Fabrikam"
		}
		files["products/"+pid+"/product.json"] = map[string]any{
			"id": json.Number(pid), "productName": vendor + " " + c.name, "isTestSign": false, "isFlightSign": false,
			"requestedSignatures": []string{simOSCode}, "testHarness": "hlk", "ownerSellerId": "27691110",
			"isCommitted": true, "deviceType": "internal",
		}
		for j, newer := range []bool{false, true} {
			sid := fmt.Sprint(simSubmissionBase + 10*(i+1) + j + 1)
			lid := fmt.Sprint(simLabelBase + 10*(i+1) + j + 1)
			version, date := c.oldVersion, c.oldDate
			goLive := start.AddDate(-1, 0, 0)
			begin := start.AddDate(0, 0, c.startDay)
			if newer {
				version, date = c.newVersion, c.newDate
				goLive = begin.AddDate(0, 0, -21)
				c.newLabel = lid
			} else {
				c.oldLabel = lid
			}
			sub := "products/" + pid + "/submissions/" + sid
			name := fmt.Sprintf("%s %s", c.name, version)
			files[sub+"/submission.json"] = map[string]any{
				"id": json.Number(sid), "productId": json.Number(pid), "name": name, "type": "initial",
				"isExtensionInf": false, "isDeclarativeInf": true, "isUniversal": true,
				"workflowStatus": map[string]any{"currentStep": "finalizeIngestion", "state": "completed", "messages": []string{}},
				"downloads": map[string]any{"items": []any{map[string]any{"type": "signedPackage",
					"url": "https://manage.devcenter.example/" + sid + ".cab"}}, "messages": []string{}},
				"package": map[string]any{"url": "https://drivers.example/packages/" + sid + ".cab",
					"sha256": fmt.Sprintf("%016x%016x%016x%016x", xxhash.Sum64String(sid+"a"), xxhash.Sum64String(sid+"b"),
						xxhash.Sum64String(sid+"c"), xxhash.Sum64String(sid+"d")),
					"size": 2_000_000 + i*100_000 + j*1000},
			}
			pnp := strings.ToLower(c.hwid())
			files[sub+"/driverMetadata.json"] = map[string]any{"BundleInfoMap": map[string]any{"amd64": map[string]any{
				"Locales": []string{"English"},
				"InfInfoMap": map[string]any{c.inf: map[string]any{
					"DriverPackageFamilyId": "fam-" + c.inf, "InfClass": "Net", "DriverVersion": version,
					"DriverDate": date + "T00:00:00", "ExtensionId": nil, "Provider": vendor,
					"ClassGuid": "{4d36e972-e325-11ce-bfc1-08002be10318}", "InstallationComputerHardwareIds": []string{},
					"OSPnPInfoMap": map[string]any{simOSCode: map[string]any{pnp: map[string]any{
						"Manufacturer": vendor, "DeviceDescription": vendor + " " + c.name, "FeatureScore": nil}}},
				}},
			}}}
			label := map[string]any{
				"id": json.Number(lid), "productId": json.Number(pid), "submissionId": json.Number(sid),
				"name": name, "destination": "windowsUpdate",
				"targeting": map[string]any{"hardwareIds": []any{map[string]any{"bundleId": "amd64", "infId": c.inf,
					"operatingSystemCode": simOSCode, "pnpString": pnp, "distributionState": "added"}},
					"chids": []string{}, "restrictedToAudiences": []string{}},
				"workflowStatus": map[string]any{"currentStep": "finalizePublishing", "state": "completed", "messages": []string{}},
				"publishingSpecifications": map[string]any{
					"goLiveDate": day(goLive), "visibleToAccounts": []string{}, "isAutoInstallDuringOSUpgrade": false,
					"isAutoInstallOnApplicableSystems": true, "manualAcquisition": false, "isDisclosureRestricted": false,
					"publishToWindows10s": false,
					"additionalInfoForMsApproval": map[string]any{"microsoftContact": "drivers@example.com",
						"validationsPerformed": "HLK", "affectedOems": []string{}, "isRebootRequired": false,
						"isCoEngineered": false, "isForUnreleasedHardware": false, "hasUiSoftware": false,
						"businessJustification": name},
				},
			}
			if newer {
				label["distribution"] = map[string]any{
					"flight": map[string]any{"channels": []string{"Dev", "Beta"}, "start": day(begin.AddDate(0, 0, -21)),
						"approved": day(begin.AddDate(0, 0, -7))},
					"rollout": map[string]any{"stages": []any{map[string]any{"at": day(begin), "percent": firstStage}}, "paused": false},
				}
			}
			files[sub+"/shippingLabels/"+lid+".json"] = label
		}
	}
	for name, v := range files {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// simPC is one simulated PC: a wired and a wireless chip, an OS build and a model.
type simPC struct {
	id      string
	addr    string // where it is: 10.a.b.c, one of 65,536 /24 networks (X-Forwarded-For)
	slot    int    // the step of the day at which it scans
	build   int
	chid    string
	devices [2]simDevice
	// background: the PC is in the background scenario's cohort (crashes unrelated to any
	// driver).
	background bool
}

// simDevice is one of a PC's chips and the driver it has installed.
type simDevice struct {
	chip       *simChip
	instanceID string
	label      string // the label of the installed driver
	date       string // installed driver
	version    string
	tried      bool            // the new label was acted on (installed or failed); never retried
	pending    *simPendingFail // a failure noticed after install, reported at the next scan
	token      string          // the report token of the offer of the installed driver ("": none)
}

type simPendingFail struct{ label, result, token string }

// Builds (and their shares) the PCs run: Windows 11 24H2, 23H2, Windows 10 22H2.
var simBuilds = []struct {
	build, revision int
	share           float64
}{{26100, 2314, 0.5}, {22631, 4460, 0.35}, {19045, 5131, 0.15}}

// simModels is how many PC models (CHIDs) the population has.
const simModels = 8

// simUnit is a deterministic number in [0, 1) from a seed and strings.
func simUnit(seed int64, parts ...string) float64 {
	h := xxhash.New()
	fmt.Fprint(h, seed)
	for _, p := range parts {
		h.WriteString("\x00")
		h.WriteString(p)
	}
	return float64(h.Sum64()>>11) / (1 << 53)
}

func simGUID(seed int64, parts ...string) string {
	a := uint64(simUnit(seed, append(parts, "a")...) * (1 << 53))
	b := uint64(simUnit(seed, append(parts, "b")...) * (1 << 53))
	return fmt.Sprintf("%08x-%04x-5%03x-%04x-%012x", a>>21&0xffffffff, a&0xffff, b>>40&0xfff, 0x8000|b>>24&0x3fff, b&0xffffffffffff)
}

// makeSimPCs makes the population: every PC has a wired chip and a wireless one (by share),
// one of simBuilds, one of simModels models, and the chips' baseline drivers installed.
func makeSimPCs(n int, seed int64, chips []*simChip, slots int) []*simPC {
	var wired, wireless []*simChip
	for _, c := range chips {
		if c.wireless {
			wireless = append(wireless, c)
		} else {
			wired = append(wired, c)
		}
	}
	pick := func(list []*simChip, u float64) *simChip {
		for _, c := range list {
			if u < c.share {
				return c
			}
			u -= c.share
		}
		return list[len(list)-1]
	}
	models := make([]string, simModels)
	for i := range models {
		models[i] = simGUID(seed, "model", fmt.Sprint(i))
	}
	pcs := make([]*simPC, n)
	for i := range pcs {
		id := simGUID(seed, "pc", fmt.Sprint(i))
		pc := &simPC{id: id, slot: int(simUnit(seed, id, "slot") * float64(slots)), chid: models[int(simUnit(seed, id, "model")*simModels)]}
		net := uint32(simUnit(seed, id, "network") * (1 << 24))
		pc.addr = fmt.Sprintf("10.%d.%d.%d", net>>16, net>>8&0xff, net&0xff)
		u := simUnit(seed, id, "build")
		for _, b := range simBuilds {
			pc.build = b.build
			if u < b.share {
				break
			}
			u -= b.share
		}
		for k, c := range []*simChip{pick(wired, simUnit(seed, id, "wired")), pick(wireless, simUnit(seed, id, "wireless"))} {
			pc.devices[k] = simDevice{chip: c, label: c.oldLabel, date: c.oldDate, version: c.oldVersion,
				instanceID: fmt.Sprintf("%s&REV_%02X\\4&%08x&0&00E%d", c.hwid(), 1+k, uint32(simUnit(seed, id, "inst")*(1<<32)), k)}
		}
		pcs[i] = pc
	}
	return pcs
}

func (pc *simPC) revision() int {
	for _, b := range simBuilds {
		if b.build == pc.build {
			return b.revision
		}
	}
	return 0
}

// appendRequest appends the PC's offer request (spec/offers.md).
func (pc *simPC) appendRequest(b []byte) []byte {
	b = fmt.Appendf(b, `{"deviceId":%q,"os":{"build":%d,"revision":%d,"arch":"amd64","sku":"client"},"scan":"scheduled","chids":[null,null,null,null,null,%q],"devices":[`,
		pc.id, pc.build, pc.revision(), pc.chid)
	for k := range pc.devices {
		d := &pc.devices[k]
		c := d.chip
		if k > 0 {
			b = append(b, ',')
		}
		hw, _ := json.Marshal([]string{c.hwid() + fmt.Sprintf("&REV_%02X", 1+k), c.hwid()})
		compat, _ := json.Marshal([]string{"PCI\\VEN_" + c.ven + "&DEV_" + c.dev + fmt.Sprintf("&REV_%02X", 1+k),
			"PCI\\VEN_" + c.ven + "&DEV_" + c.dev, "PCI\\VEN_" + c.ven + "&CC_" + c.class + "00", "PCI\\VEN_" + c.ven + "&CC_" + c.class,
			"PCI\\VEN_" + c.ven, "PCI\\CC_" + c.class + "00", "PCI\\CC_" + c.class})
		inst, _ := json.Marshal(d.instanceID)
		b = fmt.Appendf(b, `{"instanceId":%s,"hardwareIds":%s,"compatibleIds":%s,"driver":{"date":%q,"version":%q}}`,
			inst, hw, compat, d.date, d.version)
	}
	return append(b, "]}"...)
}
