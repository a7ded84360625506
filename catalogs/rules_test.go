package catalogs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixture is a label tree as JSON documents by path, built from a valid base and mutated by
// each rule's cases.
type fixture map[string]any

type obj = map[string]any

const (
	productPath = "products/1001/product.json"
	subPath     = "products/1001/submissions/2001/submission.json"
	metaPath    = "products/1001/submissions/2001/driverMetadata.json"
	labelPath   = "products/1001/submissions/2001/shippingLabels/3001.json"
	nicID       = `pci\ven_8086&dev_15f3&subsys_00008086&rev_03`
)

// baseFixture is a valid tree: one automatic NIC label on RS5 that went through a flight.
func baseFixture() fixture {
	return fixture{
		"partners.json": []any{obj{"sellerId": "100", "name": "Contoso", "coEngineering": true, "ceilingAccess": true}},
		productPath: obj{"id": 1001, "productName": "NIC", "isTestSign": false, "isFlightSign": false, "testHarness": "hlk",
			"requestedSignatures": []any{"WINDOWS_v100_X64_RS5_FULL"}, "ownerSellerId": "100"},
		subPath: obj{"id": 2001, "productId": 1001, "name": "NIC 1.0", "type": "initial", "isExtensionInf": false,
			"package": obj{"url": "https://cdn.example/2001.cab", "sha256": strings.Repeat("ab", 32), "size": 1000}},
		metaPath: obj{"BundleInfoMap": obj{"amd64": obj{"InfInfoMap": obj{"a.inf": obj{
			"InfClass": "Net", "DriverVersion": "1.0.0.1", "DriverDate": "2025-01-01T00:00:00", "ExtensionId": nil,
			"InstallationComputerHardwareIds": []any{}, "TargetOSVersions": []any{"NTamd64"},
			"OSPnPInfoMap": obj{
				"WINDOWS_v100_X64_RS5_FULL": obj{nicID: obj{"FeatureScore": nil}},
				"WINDOWS_v100_X64_VB_FULL":  obj{nicID: obj{"FeatureScore": nil}},
				"WINDOWS_7_X64":             obj{nicID: obj{"FeatureScore": nil}},
			}}}}}},
		labelPath: obj{"id": 3001, "productId": 1001, "submissionId": 2001, "name": "NIC", "destination": "windowsUpdate",
			"targeting": obj{
				"hardwareIds":           []any{row("WINDOWS_v100_X64_RS5_FULL", nicID)},
				"chids":                 []any{},
				"restrictedToAudiences": []any{},
			},
			"publishingSpecifications": obj{"goLiveDate": "2026-01-01T00:00:00Z", "isAutoInstallDuringOSUpgrade": false,
				"isAutoInstallOnApplicableSystems": true, "manualAcquisition": false, "publishToWindows10s": false,
				"additionalInfoForMsApproval": obj{"isCoEngineered": false, "hasUiSoftware": false}},
			"distribution": obj{"flight": obj{"channels": []any{"Dev"}, "start": "2025-12-01T00:00:00Z", "approved": "2025-12-15T00:00:00Z"}},
		},
	}
}

func row(os, pnp string) obj {
	return obj{"bundleId": "amd64", "infId": "a.inf", "operatingSystemCode": os, "pnpString": pnp, "distributionState": "added"}
}

// at returns the object at a dotted path inside a document, creating objects on the way.
func (f fixture) at(file, path string) obj {
	o := f[file].(obj)
	if path == "" {
		return o
	}
	for _, k := range strings.Split(path, ".") {
		next, ok := o[k].(obj)
		if !ok {
			next = obj{}
			o[k] = next
		}
		o = next
	}
	return o
}

func (f fixture) label() obj { return f.at(labelPath, "") }
func (f fixture) inf() obj {
	return f.at(metaPath, "BundleInfoMap.amd64.InfInfoMap")["a.inf"].(obj)
}

// addLabel adds a second label on the same submission.
func (f fixture) addLabel(id string, mutate func(obj)) {
	var l obj
	b, _ := json.Marshal(f.label())
	json.Unmarshal(b, &l)
	l["id"] = json.Number(id)
	mutate(l)
	f["products/1001/submissions/2001/shippingLabels/"+id+".json"] = l
}

func (f fixture) write(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for rel, doc := range f {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		var b []byte
		if raw, ok := doc.(string); ok {
			b = []byte(raw)
		} else {
			var err error
			if b, err = json.MarshalIndent(doc, "", " "); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func check(t *testing.T, f fixture, opts *ValidateOptions) Problems {
	t.Helper()
	dir := f.write(t)
	tree, probs, err := Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkSummarized(t, os.DirFS(dir), opts)
	return append(probs, tree.Validate(opts)...)
}

func hasCode(ps Problems, code string) bool {
	for _, p := range ps {
		if p.Code == code {
			return true
		}
	}
	return false
}

func TestBaseFixtureIsClean(t *testing.T) {
	if ps := check(t, baseFixture(), nil); len(ps) != 0 {
		t.Fatalf("base fixture has problems:\n%v", ps)
	}
}

// ruleCase breaks one rule (fail) and, where a near miss is worth stating, keeps close to
// the line without breaking it (pass).
type ruleCase struct {
	code       string
	name       string
	fail, pass func(f fixture)
	opts       *ValidateOptions
	pointer    string // the pointer the problem must name, when worth checking
}

func ruleCases() []ruleCase {
	return []ruleCase{
		{code: "L001", name: "not JSON", fail: func(f fixture) { f[labelPath] = `{"id": 3001,` }},
		{code: "L001", name: "missing driver metadata", fail: func(f fixture) { delete(f, metaPath) }},
		{code: "L002", name: "id of the wrong type", fail: func(f fixture) { f.label()["id"] = true }, pointer: "/id"},
		{code: "L002", name: "missing pnpString", fail: func(f fixture) {
			delete(f.label()["targeting"].(obj)["hardwareIds"].([]any)[0].(obj), "pnpString")
		}, pointer: "/targeting/hardwareIds/0/pnpString"},
		{code: "L002", name: "missing DriverVersion", fail: func(f fixture) { delete(f.inf(), "DriverVersion") }},
		{code: "L003", name: "typo in distribution", fail: func(f fixture) { f.at(labelPath, "distribution")["rolout"] = obj{} },
			pass: func(f fixture) { f.label()["someNewDashboardField"] = 1 }, pointer: "/distribution/rolout"},
		{code: "L003", name: "typo in package", fail: func(f fixture) { f.at(subPath, "package")["sha265"] = "x" }},
		{code: "L003", name: "typo in blocks.json", fail: func(f fixture) { f["blocks.json"] = []any{obj{"id": "1", "lables": []any{}}} }},
		{code: "L004", name: "label id differs from file name", fail: func(f fixture) { f.label()["id"] = 3002 }},
		{code: "L004", name: "product id differs from directory", fail: func(f fixture) { f.at(productPath, "")["id"] = 1002 }},
		{code: "L005", name: "label names a missing submission", fail: func(f fixture) { f.label()["submissionId"] = 2999 }},
		{code: "L010", name: "windowsUpdate without publishingSpecifications", fail: func(f fixture) { delete(f.label(), "publishingSpecifications") }},
		{code: "L010", name: "anotherPartner without recipientSpecifications", fail: func(f fixture) { f.label()["destination"] = "anotherPartner" },
			pass: func(f fixture) {
				f.label()["destination"] = "anotherPartner"
				f.label()["recipientSpecifications"] = obj{"receiverPublisherId": "200"}
			}},
		{code: "L011", name: "manual and automatic", fail: func(f fixture) { f.at(labelPath, "publishingSpecifications")["manualAcquisition"] = true }},
		{code: "L011", name: "neither manual nor automatic", fail: func(f fixture) {
			f.at(labelPath, "publishingSpecifications")["isAutoInstallOnApplicableSystems"] = false
		}, pass: func(f fixture) {
			f.at(labelPath, "publishingSpecifications")["isAutoInstallOnApplicableSystems"] = false
			f.at(labelPath, "publishingSpecifications")["manualAcquisition"] = true
		}},
		{code: "L012", name: "both floor kinds", fail: func(f fixture) {
			f.at(labelPath, "targeting.inServicePublishInfo")["flooring"] = "RS5"
			f.at(labelPath, "targeting.coEngDriverPublishInfo")["flooringBuildNumber"] = 27000
		}},
		{code: "L013", name: "OS code the INF lacks", fail: func(f fixture) {
			f.label()["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_v100_X64_RS3_FULL", nicID)}
		}, pass: func(f fixture) {
			f.label()["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_v100_X64_VB_FULL", nicID)}
		}},
		{code: "L013", name: "unknown OS code", fail: func(f fixture) {
			f.label()["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_v100_X64_RS9_FULL", nicID)}
		}},
		{code: "L013", name: "pnpString the INF lacks", fail: func(f fixture) {
			f.label()["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_v100_X64_RS5_FULL", `pci\ven_8086&dev_1533&subsys_00008086`)}
		}, pass: func(f fixture) { // case-insensitive match
			f.label()["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_v100_X64_RS5_FULL", strings.ToUpper(nicID))}
		}},
		{code: "L013", name: "extended row without expansion", fail: func(f fixture) {
			f.label()["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_v100_X64_TH1_FULL", nicID)}
		}, pass: func(f fixture) {
			f.label()["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_v100_X64_TH1_FULL", nicID)}
			f.at(subPath, "")["expansion"] = obj{"requestedBy": "100"}
		}},
		{code: "L014", name: "live label without package", fail: func(f fixture) { delete(f.at(subPath, ""), "package") },
			pass: func(f fixture) {
				delete(f.at(subPath, "package"), "url")
				f.at(subPath, "")["downloads"] = obj{"items": []any{obj{"type": "signedPackage", "url": "https://x"}}}
			}},
		{code: "L015", name: "malformed go-live date", fail: func(f fixture) { f.at(labelPath, "publishingSpecifications")["goLiveDate"] = "next Tuesday" }},
		{code: "L015", name: "version part too big", fail: func(f fixture) { f.inf()["DriverVersion"] = "1.0.65535.0" },
			pass: func(f fixture) { f.inf()["DriverVersion"] = "1.0.65534.0" }},
		{code: "L015", name: "version 0.0.0.0", fail: func(f fixture) { f.inf()["DriverVersion"] = "0.0.0.0" }},
		{code: "L015", name: "malformed CHID", fail: func(f fixture) {
			f.label()["targeting"].(obj)["chids"] = []any{obj{"chid": "not-a-guid", "distributionState": "added"}}
		}},
		{code: "L015", name: "percent with three decimals", fail: func(f fixture) {
			f.at(labelPath, "distribution")["rollout"] = obj{"stages": []any{obj{"at": "2026-01-01T00:00:00Z", "percent": 12.345}}}
		}, pass: func(f fixture) {
			f.at(labelPath, "distribution")["rollout"] = obj{"stages": []any{obj{"at": "2026-01-01T00:00:00Z", "percent": 12.34}}}
		}},
		{code: "L015", name: "stages out of order", fail: func(f fixture) {
			f.at(labelPath, "distribution")["rollout"] = obj{"stages": []any{
				obj{"at": "2026-02-01T00:00:00Z", "percent": 1}, obj{"at": "2026-01-01T00:00:00Z", "percent": 50}}}
		}},
		{code: "L015", name: "percent decreasing", fail: func(f fixture) {
			f.at(labelPath, "distribution")["rollout"] = obj{"stages": []any{
				obj{"at": "2026-01-01T00:00:00Z", "percent": 50}, obj{"at": "2026-02-01T00:00:00Z", "percent": 10}}}
		}},
		{code: "L020", name: "unknown floor", fail: func(f fixture) { f.at(labelPath, "targeting.inServicePublishInfo")["flooring"] = "RS9" },
			pass: func(f fixture) { f.at(labelPath, "targeting.inServicePublishInfo")["flooring"] = "VB" }},
		{code: "L021", name: "floor below implied floor", fail: func(f fixture) { f.at(labelPath, "targeting.inServicePublishInfo")["flooring"] = "RS3" },
			pass:    func(f fixture) { f.at(labelPath, "targeting.inServicePublishInfo")["flooring"] = "RS5" },
			pointer: "/targeting/inServicePublishInfo/flooring"},
		{code: "L022", name: "ceiling above highest published release", fail: func(f fixture) {
			f.at(labelPath, "targeting.inServicePublishInfo")["ceiling"] = "VB"
		}, pass: func(f fixture) { f.at(labelPath, "targeting.inServicePublishInfo")["ceiling"] = "RS5" }},
		{code: "L023", name: "floor above ceiling", fail: func(f fixture) {
			f.label()["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_v100_X64_RS5_FULL", nicID), row("WINDOWS_v100_X64_VB_FULL", nicID)}
			f.at(labelPath, "targeting.inServicePublishInfo")["flooring"] = "VB"
			f.at(labelPath, "targeting.inServicePublishInfo")["ceiling"] = "RS5"
		}},
		{code: "L024", name: "floor without a live row", fail: func(f fixture) {
			f.label()["targeting"].(obj)["hardwareIds"].([]any)[0].(obj)["distributionState"] = "pendingAdd"
			f.at(labelPath, "targeting.inServicePublishInfo")["flooring"] = "RS5"
		}},
		{code: "L025", name: "ceiling without ceiling access", fail: func(f fixture) {
			f["partners.json"] = []any{obj{"sellerId": "100", "ceilingAccess": false}}
			f.at(labelPath, "targeting.inServicePublishInfo")["ceiling"] = "RS5"
		}},
		{code: "L026", name: "build floor on a label that is not co-engineered", fail: func(f fixture) {
			f.at(labelPath, "targeting.coEngDriverPublishInfo")["flooringBuildNumber"] = 27000
		}, pass: func(f fixture) {
			f.at(labelPath, "targeting.coEngDriverPublishInfo")["flooringBuildNumber"] = 27000
			f.at(labelPath, "publishingSpecifications.additionalInfoForMsApproval")["isCoEngineered"] = true
		}},
		{code: "L026", name: "build floor for a partner without co-engineering", fail: func(f fixture) {
			f["partners.json"] = []any{obj{"sellerId": "100", "coEngineering": false}}
			f.at(labelPath, "targeting.coEngDriverPublishInfo")["flooringBuildNumber"] = 27000
			f.at(labelPath, "publishingSpecifications.additionalInfoForMsApproval")["isCoEngineered"] = true
		}},
		{code: "L027", name: "build floor not above the newest build", fail: func(f fixture) {
			f.at(labelPath, "targeting.coEngDriverPublishInfo")["flooringBuildNumber"] = 26100
			f.at(labelPath, "publishingSpecifications.additionalInfoForMsApproval")["isCoEngineered"] = true
		}, pass: func(f fixture) {
			f.at(labelPath, "targeting.coEngDriverPublishInfo")["flooringBuildNumber"] = 26101
			f.at(labelPath, "publishingSpecifications.additionalInfoForMsApproval")["isCoEngineered"] = true
		}},
		{code: "L028", name: "floor set by a developer", fail: func(f fixture) {
			f.at(labelPath, "targeting.inServicePublishInfo")["flooring"] = "RS5"
			f.at(labelPath, "distribution")["author"] = obj{"sellerId": "100", "role": "developer"}
		}, pass: func(f fixture) {
			f.at(labelPath, "targeting.inServicePublishInfo")["flooring"] = "RS5"
			f.at(labelPath, "distribution")["author"] = obj{"sellerId": "100", "role": "shippingLabelPromoter"}
		}},
		{code: "L029", name: "pre-Windows 10 and Windows 10 in one submission", fail: func(f fixture) {
			f.addLabel("3002", func(l obj) {
				l["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_7_X64", nicID)}
			})
		}},
		{code: "L030", name: "expansion by someone else", fail: func(f fixture) { f.at(subPath, "")["expansion"] = obj{"requestedBy": "999"} },
			pass: func(f fixture) { f.at(subPath, "")["expansion"] = obj{"requestedBy": "100"} }},
		{code: "L030", name: "expansion twice", fail: func(f fixture) {
			b, _ := json.Marshal(f.at(subPath, ""))
			f[subPath] = strings.Replace(string(b), "{", `{"expansion":{"requestedBy":"100"},"expansion":{"requestedBy":"100"},`, 1)
		}},
		{code: "L040", name: "CHIDs on a pre-Windows 10 label", fail: func(f fixture) {
			f.label()["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_7_X64", nicID)}
			f.label()["targeting"].(obj)["chids"] = []any{obj{"chid": "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814", "distributionState": "added"}}
		}, pass: func(f fixture) {
			f.label()["targeting"].(obj)["chids"] = []any{obj{"chid": "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814", "distributionState": "added"}}
		}},
		{code: "L041", name: "Firmware without CHIDs", fail: func(f fixture) { f.inf()["InfClass"] = "Firmware" }, pass: func(f fixture) {
			f.inf()["InfClass"] = "Firmware"
			f.label()["targeting"].(obj)["chids"] = []any{obj{"chid": "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814", "distributionState": "added"}}
		}},
		{code: "L041", name: "Display with CHIDs", fail: func(f fixture) {
			f.inf()["InfClass"] = "Display"
			f.label()["targeting"].(obj)["chids"] = []any{obj{"chid": "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814", "distributionState": "added"}}
		}},
		{code: "L041", name: "class rules from catalog.json", fail: func(f fixture) {
			f["catalog.json"] = obj{"classRules": obj{"Net": "require"}}
		}, pass: func(f fixture) {
			f["catalog.json"] = obj{"classRules": obj{"Firmware": "allow"}}
			f.inf()["InfClass"] = "Firmware"
		}},
		{code: "L042", name: "receiver publishes without CHIDs under an enforcing share", fail: func(f fixture) {
			shareTo(f, "200", true)
			f.at(labelPath, "distribution")["author"] = obj{"sellerId": "200", "role": "shippingLabelOwner"}
		}, pass: func(f fixture) {
			shareTo(f, "200", false)
			f.at(labelPath, "distribution")["author"] = obj{"sellerId": "200", "role": "shippingLabelOwner"}
		}},
		{code: "L043", name: "receiver publishes a HWID not in the share", fail: func(f fixture) {
			shareTo(f, "200", false)
			f.at(labelPath, "distribution")["author"] = obj{"sellerId": "200", "role": "shippingLabelOwner"}
			f.inf()["OSPnPInfoMap"].(obj)["WINDOWS_v100_X64_RS5_FULL"].(obj)[`pci\ven_8086&dev_15f3&subsys_12341028&rev_03`] = obj{}
			f.label()["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_v100_X64_RS5_FULL", `pci\ven_8086&dev_15f3&subsys_12341028&rev_03`)}
		}},
		{code: "L043", name: "receiver re-shares", fail: func(f fixture) {
			shareTo(f, "200", false)
			f.addLabel("3009", func(l obj) {
				l["destination"] = "anotherPartner"
				l["recipientSpecifications"] = obj{"receiverPublisherId": "300"}
				l["distribution"] = obj{"author": obj{"sellerId": "200", "role": "shippingLabelOwner"}}
			})
		}},
		{code: "L044", name: "CHID without relationship", fail: func(f fixture) {
			f["partners.json"] = []any{obj{"sellerId": "100", "ceilingAccess": true, "chidRelationships": []any{"6de5d951-d755-576b-bd09-c5cf66b27234"}}}
			f.label()["targeting"].(obj)["chids"] = []any{obj{"chid": "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814", "distributionState": "added"}}
		}, pass: func(f fixture) {
			f["partners.json"] = []any{obj{"sellerId": "100", "ceilingAccess": true, "chidRelationships": []any{"8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814"}}}
			f.label()["targeting"].(obj)["chids"] = []any{obj{"chid": "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814", "distributionState": "added"}}
		}},
		{code: "L050", name: "two-part PCI without CHIDs", fail: func(f fixture) { onlyHWID(f, `pci\ven_8086&dev_15f3`) },
			pass: func(f fixture) {
				onlyHWID(f, `pci\ven_8086&dev_15f3`)
				f.label()["targeting"].(obj)["chids"] = []any{obj{"chid": "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814", "distributionState": "added"}}
			}},
		{code: "L050", name: "two-part HDAUDIO without CHIDs", fail: func(f fixture) { onlyHWID(f, `hdaudio\func_01&ven_10ec&dev_0295`) }},
		{code: "L051", name: "PCI vendor FFFF", fail: func(f fixture) { onlyHWID(f, `pci\ven_ffff&dev_15f3&subsys_00008086`) }},
		{code: "L051", name: "PCI subsystem vendor 0000", fail: func(f fixture) { onlyHWID(f, `pci\ven_8086&dev_15f3&subsys_12340000`) }},
		{code: "L051", name: "PCI without DEV_", fail: func(f fixture) { onlyHWID(f, `pci\ven_8086&subsys_00008086`) }},
		{code: "L051", name: "USB without PID_", fail: func(f fixture) { onlyHWID(f, `usb\vid_17ef&rev_0100`) },
			pass: func(f fixture) { onlyHWID(f, `usb\vid_17ef&pid_1234&rev_0100`) }},
		{code: "L052", name: "no enumerator", fail: func(f fixture) { onlyHWID(f, `*pnp0a03`) }},
		{code: "L052", name: "class code", fail: func(f fixture) { onlyHWID(f, `pci\ven_8086&cc_020000`) }},
		{code: "L052", name: "restricted enumerator", fail: func(f fixture) { onlyHWID(f, `acpi\pnp0c14`) },
			pass: func(f fixture) { onlyHWID(f, `acpi\int33a0`) }},
		{code: "L053", name: "vendor not the publisher's", fail: func(f fixture) {
			f["partners.json"] = []any{obj{"sellerId": "100", "ceilingAccess": true, "hwidVendors": []any{"VEN_10EC"}}}
		}, pass: func(f fixture) {
			f["partners.json"] = []any{obj{"sellerId": "100", "ceilingAccess": true, "hwidVendors": []any{"ven_8086"}}}
		}},
		{code: "L060", name: "manual extension INF", fail: func(f fixture) {
			f.at(subPath, "")["isExtensionInf"] = true
			f.at(labelPath, "publishingSpecifications")["isAutoInstallOnApplicableSystems"] = false
			f.at(labelPath, "publishingSpecifications")["manualAcquisition"] = true
		}, pass: func(f fixture) { f.at(subPath, "")["isExtensionInf"] = true }},
		{code: "W001", name: "manual label of an INF with an ExtensionId", fail: func(f fixture) {
			f.inf()["ExtensionId"] = "8f3a2c11-5b4e-4d7a-9c21-0e6f4b3a2d19"
			f.at(labelPath, "publishingSpecifications")["isAutoInstallOnApplicableSystems"] = false
			f.at(labelPath, "publishingSpecifications")["manualAcquisition"] = true
		}, pass: func(f fixture) { f.inf()["ExtensionId"] = "8f3a2c11-5b4e-4d7a-9c21-0e6f4b3a2d19" }},
		{code: "L061", name: "attestation without a test audience", fail: func(f fixture) { f.at(productPath, "")["testHarness"] = "attestation" },
			pass: func(f fixture) {
				f.at(productPath, "")["testHarness"] = "attestation"
				f.label()["targeting"].(obj)["restrictedToAudiences"] = []any{"00000000-0000-0000-0000-000000000001"}
			}},
		{code: "L062", name: "test-signed on Windows Update", fail: func(f fixture) { f.at(productPath, "")["isTestSign"] = true }},
		{code: "L063", name: "S mode with UI software", fail: func(f fixture) {
			f.at(labelPath, "publishingSpecifications")["publishToWindows10s"] = true
			f.at(labelPath, "publishingSpecifications.additionalInfoForMsApproval")["hasUiSoftware"] = true
		}, pass: func(f fixture) { f.at(labelPath, "publishingSpecifications")["publishToWindows10s"] = true }},
		{code: "L064", name: "undefined audience", fail: func(f fixture) {
			f.label()["targeting"].(obj)["restrictedToAudiences"] = []any{"6f1c2a9e-3b7d-4c55-9a0e-2d4b8c1e7f30"}
		}, pass: func(f fixture) {
			f["audiences.json"] = []any{obj{"id": "6f1c2a9e-3b7d-4c55-9a0e-2d4b8c1e7f30", "audienceName": "CoDev", "match": obj{"audience": "CoDev"}}}
			f.label()["targeting"].(obj)["restrictedToAudiences"] = []any{"6f1c2a9e-3b7d-4c55-9a0e-2d4b8c1e7f30"}
		}},
		{code: "L065", name: "automatic without flight, --require-flight", opts: &ValidateOptions{RequireFlight: true},
			fail: func(f fixture) { delete(f.label(), "distribution") }},
		{code: "W065", name: "automatic without flight", fail: func(f fixture) { delete(f.at(labelPath, "distribution.flight"), "approved") },
			pass: func(f fixture) {
				delete(f.label(), "distribution")
				f.at(labelPath, "publishingSpecifications")["isAutoInstallOnApplicableSystems"] = false
				f.at(labelPath, "publishingSpecifications")["manualAcquisition"] = true
			}},
		{code: "W001", name: "cancelled before go-live", fail: func(f fixture) {
			f.at(labelPath, "distribution")["cancelled"] = obj{"at": "2025-06-01T00:00:00Z"}
		}, pass: func(f fixture) { f.at(labelPath, "distribution")["cancelled"] = obj{"at": "2026-06-01T00:00:00Z"} }},
		{code: "W001", name: "only retired OS codes", fail: func(f fixture) {
			f.inf()["OSPnPInfoMap"].(obj)["WINDOWS_XP"] = obj{nicID: obj{}}
			f.label()["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_XP", nicID)}
		}},
		{code: "W002", name: "tie on rank, date and version", fail: func(f fixture) { f.addLabel("3002", laterGoLive) },
			pass: func(f fixture) { // both target CHIDs, none in common: no device sees both
				chids := func(id string) []any { return []any{obj{"chid": id, "distributionState": "added"}} }
				f.label()["targeting"].(obj)["chids"] = chids("8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814")
				f.addLabel("3002", func(l obj) { l["targeting"].(obj)["chids"] = chids("6de5d951-d755-576b-bd09-c5cf66b27234") })
			}},
		{code: "W004", name: "order decided by the label id alone", fail: func(f fixture) { f.addLabel("3002", func(obj) {}) },
			pass: func(f fixture) { f.addLabel("3002", laterGoLive) }},
		{code: "W004", name: "rows on two releases meet on the later one, offered forward, and tie but for the id", pointer: "/targeting/hardwareIds/0",
			fail: func(f fixture) {
				f.addLabel("3002", func(l obj) { l["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_v100_X64_VB_FULL", nicID)} })
			},
			pass: func(f fixture) { // below its ceiling, the RS5 row never reaches VB
				f.label()["targeting"].(obj)["inServicePublishInfo"] = obj{"flooring": "RS5", "ceiling": "RS5"}
				f.addLabel("3002", func(l obj) {
					l["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_v100_X64_VB_FULL", nicID)}
					delete(l["targeting"].(obj), "inServicePublishInfo")
				})
			}},
		{code: "W001", name: "dominated: a newer driver of the same HWID applies wherever this one does", pointer: "/targeting/hardwareIds/0",
			fail: func(f fixture) { newerDriver(f, func(obj) {}) },
			pass: func(f fixture) { // the newer driver is still rolling out: this one serves the rest
				newerDriver(f, func(l obj) { l["distribution"].(obj)["rollout"] = stages("2026-01-01T00:00:00Z", 50) })
			}},
		{code: "W001", name: "dominated: the newer driver reached 100% before go-live", pointer: "/targeting/hardwareIds/0",
			fail: func(f fixture) {
				newerDriver(f, func(l obj) { l["distribution"].(obj)["rollout"] = stages("2025-12-20T00:00:00Z", 10, 100) })
			},
			pass: func(f fixture) { // the newer driver targets CHIDs: devices without them get this one
				newerDriver(f, func(l obj) {
					l["targeting"].(obj)["chids"] = []any{obj{"chid": "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814", "distributionState": "added"}}
				})
			}},
		{code: "W001", name: "dominated, but the winner is blocked where this one is not", fail: func(f fixture) { newerDriver(f, func(obj) {}) },
			pass: func(f fixture) {
				newerDriver(f, func(obj) {})
				f["blocks.json"] = []any{obj{"id": "7", "reason": "r", "labels": []any{"3002"}, "minBuild": 17763, "maxBuild": 17763}}
			}},
		{code: "W001", name: "dominated, judged at a time; a label already cancelled is off on purpose", opts: &ValidateOptions{Now: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
			fail: func(f fixture) { newerDriver(f, func(obj) {}) },
			pass: func(f fixture) {
				newerDriver(f, func(obj) {})
				f.at(labelPath, "distribution")["cancelled"] = obj{"at": "2026-01-15T00:00:00Z"}
			}},
		{code: "W001", name: "no release of the family within floor and ceiling", pointer: "/targeting/inServicePublishInfo",
			fail: func(f fixture) { clientRS5AndGE(f, "FE", "FE") },
			pass: func(f fixture) { clientRS5AndGE(f, "FE", "GE") }},
		{code: "W005", name: "rollout reaches 100% after the cancel", pointer: "/distribution/cancelled/at", fail: func(f fixture) {
			f.at(labelPath, "distribution")["rollout"] = stages("2026-01-01T00:00:00Z", 10, 100)
			f.at(labelPath, "distribution")["cancelled"] = obj{"at": "2026-01-05T00:00:00Z"}
		}, pass: func(f fixture) {
			f.at(labelPath, "distribution")["rollout"] = stages("2026-01-01T00:00:00Z", 10, 100)
			f.at(labelPath, "distribution")["cancelled"] = obj{"at": "2026-01-20T00:00:00Z"}
		}},
		{code: "W005", name: "rollout never reaches 100% before a planned cancel", pointer: "/distribution/rollout/stages", fail: func(f fixture) {
			f.at(labelPath, "distribution")["rollout"] = stages("2026-01-01T00:00:00Z", 10, 50)
			f.at(labelPath, "distribution")["cancelled"] = obj{"at": "2027-01-05T00:00:00Z"}
		}, pass: func(f fixture) { f.at(labelPath, "distribution")["rollout"] = stages("2026-01-01T00:00:00Z", 10, 50) }},
		{code: "W005", name: "a cancel already in effect is a finished rollout", opts: &ValidateOptions{Now: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
			fail: func(f fixture) { // planned: the cancel is still ahead
				f.at(labelPath, "distribution")["rollout"] = stages("2026-01-29T00:00:00Z", 10, 100)
				f.at(labelPath, "distribution")["cancelled"] = obj{"at": "2026-02-03T00:00:00Z"}
			}, pass: func(f fixture) {
				f.at(labelPath, "distribution")["rollout"] = stages("2026-01-01T00:00:00Z", 10, 100)
				f.at(labelPath, "distribution")["cancelled"] = obj{"at": "2026-01-05T00:00:00Z"}
			}},
		{code: "W006", name: "block names no label of the tree", pointer: "/0/labels",
			fail: func(f fixture) { f["blocks.json"] = []any{obj{"id": "7", "reason": "r", "labels": []any{"3009"}}} },
			pass: func(f fixture) { f["blocks.json"] = []any{obj{"id": "7", "reason": "r", "labels": []any{"3001"}}} }},
		{code: "W006", name: "block's hardware IDs are on no row", pointer: "/0/hardwareIds",
			fail: func(f fixture) {
				f["blocks.json"] = []any{obj{"id": "7", "reason": "r", "hardwareIds": []any{`pci\ven_8086&dev_0001`}}}
			},
			pass: func(f fixture) { f["blocks.json"] = []any{obj{"id": "7", "reason": "r", "hardwareIds": []any{nicID}}} }},
		{code: "W006", name: "block's builds miss every release the label is offered on", pointer: "/0/minBuild",
			fail: func(f fixture) { // RS5 forward starts at 17763; a block of Windows 7 builds
				f.label()["targeting"].(obj)["inServicePublishInfo"] = obj{"flooring": "RS5", "ceiling": "RS5"}
				f["blocks.json"] = []any{obj{"id": "7", "reason": "r", "labels": []any{"3001"}, "minBuild": 18362}}
			},
			pass: func(f fixture) {
				f.label()["targeting"].(obj)["inServicePublishInfo"] = obj{"flooring": "RS5", "ceiling": "RS5"}
				f["blocks.json"] = []any{obj{"id": "7", "reason": "r", "labels": []any{"3001"}, "minBuild": 17763, "maxBuild": 17763}}
			}},
		{code: "W003", name: "expansion skips an INF with a build number", fail: func(f fixture) {
			f.at(subPath, "")["expansion"] = obj{"requestedBy": "100"}
			f.inf()["TargetOSVersions"] = []any{"NTamd64.10.0...14393"}
		}},
	}
}

// laterGoLive makes a copied label go live a month after the base label.
func laterGoLive(l obj) { l["publishingSpecifications"].(obj)["goLiveDate"] = "2026-02-01T00:00:00Z" }

// stages is a rollout from a time, one stage a week, at the given percents.
func stages(from string, percents ...int) obj {
	t, _ := time.Parse(time.RFC3339, from)
	var st []any
	for i, p := range percents {
		st = append(st, obj{"at": t.AddDate(0, 0, 7*i).Format(time.RFC3339), "percent": p})
	}
	return obj{"stages": st, "paused": false}
}

// newerDriver adds label 3002 publishing b.inf, the base INF's hardware ID on RS5 with a
// newer date, so that it wins the order against the base label everywhere.
func newerDriver(f fixture, mutate func(obj)) {
	var inf obj
	b, _ := json.Marshal(f.inf())
	json.Unmarshal(b, &inf)
	inf["DriverDate"], inf["DriverVersion"] = "2025-06-01T00:00:00", "1.0.0.2"
	f.at(metaPath, "BundleInfoMap.amd64.InfInfoMap")["b.inf"] = inf
	f.addLabel("3002", func(l obj) {
		r := row("WINDOWS_v100_X64_RS5_FULL", nicID)
		r["infId"] = "b.inf"
		l["targeting"].(obj)["hardwareIds"] = []any{r}
		mutate(l)
	})
}

// clientRS5AndGE makes the base label publish RS5 and GE rows with a floor and ceiling.
func clientRS5AndGE(f fixture, floor, ceiling string) {
	f.inf()["OSPnPInfoMap"].(obj)["WINDOWS_v100_X64_GE_FULL"] = obj{nicID: obj{"FeatureScore": nil}}
	f.label()["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_v100_X64_RS5_FULL", nicID), row("WINDOWS_v100_X64_GE_FULL", nicID)}
	f.label()["targeting"].(obj)["inServicePublishInfo"] = obj{"flooring": floor, "ceiling": ceiling}
}

// shareTo adds a share label (destination anotherPartner) of the base submission to a partner.
func shareTo(f fixture, receiver string, enforce bool) {
	f.addLabel("3005", func(l obj) {
		l["destination"] = "anotherPartner"
		l["recipientSpecifications"] = obj{"receiverPublisherId": receiver, "enforceChidTargeting": enforce}
	})
}

// onlyHWID makes the base label publish one hardware ID (listed in the INF too).
func onlyHWID(f fixture, pnp string) {
	f.inf()["OSPnPInfoMap"].(obj)["WINDOWS_v100_X64_RS5_FULL"].(obj)[pnp] = obj{}
	f.label()["targeting"].(obj)["hardwareIds"] = []any{row("WINDOWS_v100_X64_RS5_FULL", pnp)}
}

// TestRules checks every rule of labels.md with a case that breaks it and, for most, a near
// miss that must not. Every L- and W-code must have a failing case here.
func TestRules(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range ruleCases() {
		covered[c.code] = true
		t.Run(c.code+"/"+c.name, func(t *testing.T) {
			f := baseFixture()
			c.fail(f)
			ps := check(t, f, c.opts)
			found := false
			for _, p := range ps {
				if p.Code == c.code && (c.pointer == "" || p.Pointer == c.pointer) {
					found = true
				}
			}
			if !found {
				t.Errorf("want %s (pointer %q), got:\n%v", c.code, c.pointer, ps)
			}
			if c.pass != nil {
				f := baseFixture()
				c.pass(f)
				if ps := check(t, f, c.opts); hasCode(ps, c.code) {
					t.Errorf("near miss reports %s:\n%v", c.code, ps)
				}
			}
		})
	}
	for _, code := range allCodes {
		if !covered[code] {
			t.Errorf("rule %s has no case", code)
		}
	}
}

// allCodes lists every code of labels.md.
var allCodes = strings.Fields(`L001 L002 L003 L004 L005 L010 L011 L012 L013 L014 L015
	L020 L021 L022 L023 L024 L025 L026 L027 L028 L029 L030 L040 L041 L042 L043 L044
	L050 L051 L052 L053 L060 L061 L062 L063 L064 L065 W001 W002 W003 W004 W005 W006 W065`)

// TestL029BlamesTheLaterRow: the mix is reported at the row that breaks the rule, with rows
// compared by position (row 10 comes after row 9).
func TestL029BlamesTheLaterRow(t *testing.T) {
	f := baseFixture()
	var rows []any
	for i := 0; i < 10; i++ {
		pnp := fmt.Sprintf(`pci\ven_8086&dev_15f3&subsys_%04x8086&rev_03`, i)
		f.inf()["OSPnPInfoMap"].(obj)["WINDOWS_v100_X64_RS5_FULL"].(obj)[pnp] = obj{}
		rows = append(rows, row("WINDOWS_v100_X64_RS5_FULL", pnp))
	}
	rows = append(rows, row("WINDOWS_7_X64", nicID))
	f.label()["targeting"].(obj)["hardwareIds"] = rows
	for _, p := range check(t, f, nil) {
		if p.Code == "L029" && p.Pointer != "/targeting/hardwareIds/10/operatingSystemCode" {
			t.Errorf("L029 at %s, want row 10", p.Pointer)
		}
		if p.Code == "L029" {
			return
		}
	}
	t.Error("no L029")
}

// TestAllProblemsAtOnce: one tree with several problems in several files reports all of
// them, sorted, and the same list on every run.
func TestAllProblemsAtOnce(t *testing.T) {
	f := baseFixture()
	f.at(labelPath, "targeting.inServicePublishInfo")["flooring"] = "RS3"
	f.at(subPath, "package")["sha256"] = "xyz"
	f.at(productPath, "")["isTestSign"] = true
	dir := f.write(t)
	var first string
	for i := 0; i < 3; i++ {
		tree, ps, err := Load(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, tree.Validate(nil)...)
		ps.Sort()
		var b strings.Builder
		for _, p := range ps {
			b.WriteString(p.String() + "\n")
		}
		if i == 0 {
			first = b.String()
			for _, code := range []string{"L021", "L015", "L062"} {
				if !strings.Contains(first, code) {
					t.Errorf("missing %s in:\n%s", code, first)
				}
			}
		} else if b.String() != first {
			t.Errorf("run %d differs:\n%s\nvs\n%s", i, b.String(), first)
		}
	}
}

func TestSkipInvalidScope(t *testing.T) {
	f := baseFixture()
	f.addLabel("3002", func(l obj) { l["targeting"].(obj)["inServicePublishInfo"] = obj{"flooring": "RS3"} })
	tree, ps, _ := Load(f.write(t), nil)
	ps = append(ps, tree.Validate(nil)...)
	bad, fatal := tree.Invalid(ps)
	if fatal || len(bad["3002"]) != 1 || bad["3002"][0] != "L021" || bad["3001"] != nil {
		t.Errorf("Invalid = %v, fatal %v; want only 3002", bad, fatal)
	}
	// A broken submission takes all its labels; a broken catalog-wide file is fatal.
	f[subPath] = "{"
	f["blocks.json"] = "["
	tree, ps, _ = Load(f.write(t), nil)
	ps = append(ps, tree.Validate(nil)...)
	bad, fatal = tree.Invalid(ps)
	if !fatal || bad["3001"] == nil || bad["3002"] == nil {
		t.Errorf("Invalid = %v, fatal %v; want both labels and fatal", bad, fatal)
	}
}

// Exact ids: a 19-digit id survives as written.
func TestExactIDs(t *testing.T) {
	f := baseFixture()
	big := "18446744073709551615"
	f[strings.Replace(labelPath, "3001", big, 1)] = f[labelPath]
	delete(f, labelPath)
	f.at(strings.Replace(labelPath, "3001", big, 1), "")["id"] = json.Number(big)
	tree, ps, err := Load(f.write(t), nil)
	if err != nil || len(ps) != 0 {
		t.Fatalf("%v %v", err, ps)
	}
	if got := tree.Labels()[0].ID; got != big {
		t.Errorf("label id %s, want %s", got, big)
	}
}

// TestPartialTreeSkipsBlocks: a control-only build validates a copy holding only the labels
// it changes; a block naming another label is not a block that matches nothing there.
func TestPartialTreeSkipsBlocks(t *testing.T) {
	f := baseFixture()
	f["blocks.json"] = []any{obj{"id": "7", "reason": "r", "labels": []any{"3009"}}}
	if ps := check(t, f, nil); !hasCode(ps, "W006") {
		t.Fatalf("the whole tree: want W006, got\n%v", ps)
	}
	if ps := check(t, f, &ValidateOptions{Partial: true}); hasCode(ps, "W006") {
		t.Errorf("a partial tree: W006 for a label it does not hold:\n%v", ps)
	}
}
