package bench

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/driveway/driveway/catalogs/chid"
)

// The world both generators share: device kinds, hardware vendors (IHVs) and PC makers
// (OEMs) with their models. Vendors and OEMs are fixed data plus a synthetic tail drawn
// from worldSeed, never from a generation's Seed: a device population generated for a
// label tree finds the same OEM models (and so the same SUBSYS ids and CHIDs) that the
// tree targets, whatever seed made the tree.

const worldSeed = 0x5EEDB00C

// bus is how a kind of device enumerates, which fixes the form of its hardware IDs.
type bus uint8

const (
	busPCI  bus = iota // PCI\VEN_v&DEV_d&SUBSYS_ssssvvvv&REV_r
	busHDA             // HDAUDIO\FUNC_01&VEN_v&DEV_d&SUBSYS_vvvvssss
	busUSB             // USB\VID_v&PID_p&REV_r
	busHID             // HID\VID_v&PID_p&COL01
	busACPI            // ACPI\VEN_xxx&DEV_d
	busUEFI            // UEFI\RES_{guid}&REV_n
)

// kind is a driver family.
type kind uint8

const (
	kNIC kind = iota
	kWLAN
	kBluetooth
	kAudio
	kCamera
	kTouchpad
	kChipset
	kSensor
	kDisplay
	kStorage
	kCardReader
	kUSBHost
	kFingerprint
	kFirmware
	kExtension
	numKinds
)

type kindInfo struct {
	name      string // in product names: "Ethernet Controller"
	class     string // INF class
	classGUID string
	bus       bus
	cc        string  // PCI class code (PCI kinds), for devices' compatible IDs
	stem      string  // INF file name stem
	weight    float64 // how often a vendor's product is of this kind
	sizeMB    float64 // typical package size
}

var kinds = [numKinds]kindInfo{
	kNIC:         {"Ethernet Controller", "Net", "{4d36e972-e325-11ce-bfc1-08002be10318}", busPCI, "020000", "net", 1.0, 2},
	kWLAN:        {"Wireless LAN Adapter", "Net", "{4d36e972-e325-11ce-bfc1-08002be10318}", busPCI, "028000", "wl", 1.0, 30},
	kBluetooth:   {"Bluetooth Adapter", "Bluetooth", "{e0cbf06c-cd8b-4647-bb8a-263b43f0f974}", busUSB, "", "bt", 0.9, 5},
	kAudio:       {"High Definition Audio", "MEDIA", "{4d36e96c-e325-11ce-bfc1-08002be10318}", busHDA, "", "hda", 1.2, 60},
	kCamera:      {"Integrated Camera", "Camera", "{ca3e7ab9-b4c3-4ae6-8251-579ef933890f}", busUSB, "", "cam", 0.8, 8},
	kTouchpad:    {"Precision Touchpad", "HIDClass", "{745a17a0-74d3-11d0-b6fe-00a0c90f57da}", busHID, "", "tp", 0.7, 1},
	kChipset:     {"Chipset Device", "System", "{4d36e97d-e325-11ce-bfc1-08002be10318}", busPCI, "0c0500", "chip", 0.8, 1},
	kSensor:      {"Sensor Hub", "Sensor", "{5175d334-c371-4806-b3ba-71fd53c9258d}", busACPI, "", "sens", 0.4, 2},
	kDisplay:     {"Graphics", "Display", "{4d36e968-e325-11ce-bfc1-08002be10318}", busPCI, "030000", "gfx", 1.0, 700},
	kStorage:     {"NVMe Controller", "SCSIAdapter", "{4d36e97b-e325-11ce-bfc1-08002be10318}", busPCI, "010802", "stor", 0.6, 3},
	kCardReader:  {"Card Reader", "SDHost", "{a0a588a4-c46f-4b37-b7ea-c82fe89870c6}", busPCI, "080501", "rdr", 0.5, 4},
	kUSBHost:     {"USB Host Controller", "USB", "{36fc9e60-c465-11cf-8056-444553540000}", busPCI, "0c0330", "xhc", 0.4, 2},
	kFingerprint: {"Fingerprint Reader", "Biometric", "{53d29ef7-377c-4d14-864b-eb3a85769359}", busUSB, "", "fp", 0.5, 6},
	kFirmware:    {"System Firmware", "Firmware", "{f2e7dd72-6468-4e36-b6f1-6488f42c1b52}", busUEFI, "", "fw", 0, 25},
	kExtension:   {"Settings", "Extension", "{e2f84ce7-8efa-411c-aa69-97454ca4cb57}", busPCI, "", "ext", 0, 1},
}

// vendor is a hardware vendor that publishes drivers for its chips.
type vendor struct {
	name   string
	short  string // INF name prefix
	seller string // seller id
	pci    string // PCI (and HDAUDIO) vendor id, "" when none
	usb    string // USB vendor id, "" when none
	acpi   string // ACPI vendor prefix, "" when none
	kinds  []kind
	domain string
}

// tokens are the vendor tokens (catalogs' hwidVendor) of every ID the vendor can publish.
func (v *vendor) tokens() []string {
	var t []string
	if v.pci != "" {
		t = append(t, "VEN_"+v.pci)
	}
	if v.usb != "" {
		t = append(t, "VID_"+v.usb)
	}
	if v.acpi != "" {
		t = append(t, "VEN_"+v.acpi)
	}
	return t
}

func ks(k ...kind) []kind { return k }

// realVendors are in order of how much they publish.
var realVendors = []vendor{
	{"Intel", "i", "27690011", "8086", "8087", "INT", ks(kNIC, kWLAN, kBluetooth, kAudio, kChipset, kSensor, kDisplay, kStorage, kUSBHost), "intel"},
	{"Realtek", "rt", "27690029", "10EC", "0BDA", "RTK", ks(kNIC, kWLAN, kBluetooth, kAudio, kCamera, kCardReader), "realtek"},
	{"AMD", "amd", "27690037", "1002", "", "AMDI", ks(kDisplay, kChipset, kAudio, kSensor, kUSBHost), "amd"},
	{"NVIDIA", "nv", "27690041", "10DE", "0955", "NVDA", ks(kDisplay, kAudio), "nvidia"},
	{"Qualcomm", "qc", "27690053", "168C", "0CF3", "QCOM", ks(kWLAN, kBluetooth, kSensor), "qualcomm"},
	{"Broadcom", "bcm", "27690067", "14E4", "0A5C", "BCM", ks(kNIC, kWLAN, kBluetooth), "broadcom"},
	{"MediaTek", "mtk", "27690071", "14C3", "0E8D", "MTK", ks(kWLAN, kBluetooth), "mediatek"},
	{"Synaptics", "syn", "27690083", "14F1", "06CB", "SYNA", ks(kTouchpad, kFingerprint, kAudio), "synaptics"},
	{"ELAN Microelectronics", "elan", "27690097", "", "04F3", "ELAN", ks(kTouchpad, kFingerprint), "elan"},
	{"Goodix", "gdx", "27690101", "", "27C6", "GDIX", ks(kFingerprint, kTouchpad), "goodix"},
	{"Cirrus Logic", "cs", "27690113", "1013", "", "CSC", ks(kAudio), "cirrus"},
	{"Samsung Semiconductor", "sam", "27690127", "144D", "04E8", "SAMS", ks(kStorage), "samsung-semi"},
	{"SK hynix", "skh", "27690131", "1C5C", "", "", ks(kStorage), "skhynix"},
	{"Western Digital", "wd", "27690149", "15B7", "", "", ks(kStorage), "wdc"},
	{"Micron", "mu", "27690151", "1344", "", "", ks(kStorage), "micron"},
	{"Marvell", "mrv", "27690163", "11AB", "", "", ks(kNIC, kStorage), "marvell"},
	{"Chicony Electronics", "chy", "27690179", "", "04F2", "", ks(kCamera), "chicony"},
	{"Sunplus Innovation", "spi", "27690181", "", "1BCF", "", ks(kCamera), "sunplus"},
	{"AzureWave", "azw", "27690193", "", "13D3", "", ks(kCamera, kBluetooth), "azurewave"},
	{"Genesys Logic", "gl", "27690199", "17A0", "05E3", "", ks(kCardReader, kUSBHost), "genesys"},
	{"ASMedia", "asm", "27690211", "1B21", "174C", "", ks(kUSBHost, kStorage), "asmedia"},
	{"Renesas", "ren", "27690223", "1912", "045B", "", ks(kUSBHost), "renesas"},
	{"Alps Alpine", "alps", "27690227", "", "044E", "ALPS", ks(kTouchpad), "alps"},
	{"Logitech", "lgt", "27690229", "", "046D", "", ks(kCamera, kTouchpad), "logitech"},
	{"Texas Instruments", "ti", "27690233", "104C", "0451", "TXN", ks(kUSBHost, kSensor), "ti"},
	{"Marvell Aquantia", "aq", "27690239", "1D6A", "", "", ks(kNIC), "aquantia"},
	{"Bosch Sensortec", "bst", "27690241", "", "", "BOSC", ks(kSensor), "bosch-sensortec"},
	{"STMicroelectronics", "stm", "27690251", "", "0483", "SMO", ks(kSensor), "st"},
	{"O2 Micro", "o2", "27690257", "1217", "", "", ks(kCardReader), "o2micro"},
	{"Silicon Motion", "smi", "27690263", "126F", "090C", "", ks(kStorage, kCardReader), "siliconmotion"},
}

var (
	syntheticFirst = []string{"Northwind", "Tailspin", "Litware", "Fabrikam", "Contoso", "Adatum", "Proseware",
		"Woodgrove", "Wingtip", "Lucerne", "Coho", "Humongous", "Alpine", "Trey", "Blue Yonder", "Southridge",
		"Wide World", "VanArsdel", "Relecloud", "Lamna", "Munson", "Consolidated", "Liberty", "Bellows", "Olympia",
		"Fourth Coffee", "Graphic Design", "Margie", "Tasmanian", "Nod"}
	syntheticSecond = []string{"Semiconductor", "Microsystems", "Devices", "Silicon", "Labs", "Technologies",
		"Electronics", "Circuits", "Systems", "Logic"}
)

// vendorsFor returns the vendors of a tree of about n labels: ~60 at 10,000, growing with
// the square root of n.
func vendorsFor(n int) []*vendor {
	count := int(60*sqrtRatio(n, 10000) + 0.5)
	count = max(8, min(count, 3000))
	all := allVendors(count)
	return all[:count]
}

var (
	vendorMu    sync.Mutex
	vendorCache []*vendor
)

// allVendors returns at least n vendors: the real ones, then synthetic ones.
func allVendors(n int) []*vendor {
	vendorMu.Lock()
	defer vendorMu.Unlock()
	if len(vendorCache) >= n {
		return vendorCache
	}
	var out []*vendor
	usedPCI, usedUSB, usedACPI := map[string]bool{"0000": true, "FFFF": true}, map[string]bool{"0000": true, "FFFF": true}, map[string]bool{}
	for i := range realVendors {
		v := realVendors[i]
		out = append(out, &v)
		usedPCI[v.pci], usedUSB[v.usb], usedACPI[v.acpi] = true, true, true
	}
	for _, o := range oems() {
		usedPCI[o.pci] = true
	}
	r := newRNG(worldSeed, 1)
	synthKinds := []kind{kNIC, kWLAN, kBluetooth, kAudio, kCamera, kTouchpad, kChipset, kSensor, kStorage, kCardReader, kUSBHost, kFingerprint, kDisplay}
	for i := 0; len(out) < n; i++ {
		first := syntheticFirst[i%len(syntheticFirst)]
		second := syntheticSecond[(i/len(syntheticFirst))%len(syntheticSecond)]
		name := first + " " + second
		if round := i / (len(syntheticFirst) * len(syntheticSecond)); round > 0 {
			name += " " + strconv.Itoa(round+1)
		}
		v := &vendor{
			name:   name,
			short:  "x" + strconv.FormatInt(int64(i), 36),
			seller: strconv.Itoa(28000000 + i*97 + r.intn(97)),
			domain: strings.ToLower(strings.ReplaceAll(first, " ", "")) + strconv.Itoa(i),
		}
		v.pci = uniqueHex(r, usedPCI, 0x1100, 0x1FFF)
		v.usb = uniqueHex(r, usedUSB, 0x1000, 0x3FFF)
		for {
			a := string([]byte{byte('A' + r.intn(26)), byte('A' + r.intn(26)), byte('A' + r.intn(26)), byte('A' + r.intn(26))})
			if !usedACPI[a] && !strings.HasPrefix(a, "PNP") {
				usedACPI[a], v.acpi = true, a
				break
			}
		}
		nk := r.between(1, 4)
		for len(v.kinds) < nk {
			k := synthKinds[r.intn(len(synthKinds))]
			if !containsKind(v.kinds, k) {
				v.kinds = append(v.kinds, k)
			}
		}
		sort.Slice(v.kinds, func(a, b int) bool { return v.kinds[a] < v.kinds[b] })
		out = append(out, v)
	}
	vendorCache = out
	return out
}

func uniqueHex(r *rng, used map[string]bool, lo, hi int) string {
	for {
		h := hex4(r.between(lo, hi))
		if !used[h] {
			used[h] = true
			return h
		}
	}
}

func containsKind(list []kind, k kind) bool {
	for _, x := range list {
		if x == k {
			return true
		}
	}
	return false
}

func sqrtRatio(n, base int) float64 { return math.Sqrt(float64(n) / float64(base)) }

// oem is a PC maker: a partner that owns system firmware and extension INFs, a PCI
// subsystem vendor, and the maker of the models that CHIDs name.
type oem struct {
	name         string
	seller       string
	pci          string // PCI subsystem vendor id
	manufacturer string // SMBIOS type 1 manufacturer
	biosVendor   string
	boardMfr     string
	families     []string
	weight       float64
	domain       string
	models       []*model
}

// model is one PC model of an OEM.
type model struct {
	oem    *oem
	subsys string // PCI subsystem device id (4 hex), unique within the OEM
	fields chid.Fields
	ids    [chid.NumLevels]chid.ID
	mask   uint16
	weight float64 // popularity among the OEM's models
}

func (m *model) product() string { return m.fields[chid.ProductName] }

var oemTable = []oem{
	{name: "Lenovo", seller: "30010017", pci: "17AA", manufacturer: "LENOVO", biosVendor: "LENOVO", boardMfr: "LENOVO",
		families: []string{"ThinkPad T14 Gen 4", "ThinkPad X1 Carbon Gen 11", "ThinkPad E14 Gen 5", "IdeaPad 5 14IAL7", "Yoga 7 14IRL8", "ThinkCentre M70q Gen 4", "Legion 5 15ARH7H", "ThinkBook 14 G6 IRL"},
		weight:   24, domain: "lenovo"},
	{name: "HP", seller: "30010029", pci: "103C", manufacturer: "HP", biosVendor: "HP", boardMfr: "HP",
		families: []string{"103C_5336AN HP EliteBook", "103C_5336AN HP ProBook", "103C_5335KV HP Pavilion", "103C_53307F HP ENVY", "103C_53311M HP EliteDesk", "103C_5335M8 HP ZBook"},
		weight:   21, domain: "hp"},
	{name: "Dell", seller: "30010031", pci: "1028", manufacturer: "Dell Inc.", biosVendor: "Dell Inc.", boardMfr: "Dell Inc.",
		families: []string{"Latitude", "Inspiron", "XPS", "Precision", "OptiPlex", "Vostro"},
		weight:   18, domain: "dell"},
	{name: "ASUS", seller: "30010043", pci: "1043", manufacturer: "ASUSTeK COMPUTER INC.", biosVendor: "American Megatrends International, LLC.", boardMfr: "ASUSTeK COMPUTER INC.",
		families: []string{"Zenbook", "Vivobook", "ROG Zephyrus", "TUF Gaming", "ExpertBook"},
		weight:   9, domain: "asus"},
	{name: "Acer", seller: "30010057", pci: "1025", manufacturer: "Acer", biosVendor: "Insyde Corp.", boardMfr: "Acer",
		families: []string{"Swift 3", "Aspire 5", "Nitro 5", "TravelMate P2", "Predator Helios"},
		weight:   7, domain: "acer"},
	{name: "Microsoft", seller: "30010061", pci: "1414", manufacturer: "Microsoft Corporation", biosVendor: "Microsoft Corporation", boardMfr: "Microsoft Corporation",
		families: []string{"Surface", "Surface Pro", "Surface Laptop"},
		weight:   4, domain: "microsoft"},
	{name: "MSI", seller: "30010073", pci: "1462", manufacturer: "Micro-Star International Co., Ltd.", biosVendor: "American Megatrends International, LLC.", boardMfr: "Micro-Star International Co., Ltd.",
		families: []string{"GF", "Modern", "Prestige", "Katana", "Stealth"},
		weight:   4, domain: "msi"},
	{name: "Samsung", seller: "30010087", pci: "144D", manufacturer: "SAMSUNG ELECTRONICS CO., LTD.", biosVendor: "American Megatrends International, LLC.", boardMfr: "SAMSUNG ELECTRONICS CO., LTD.",
		families: []string{"Galaxy Book3", "Galaxy Book4", "Galaxy Book3 Pro"},
		weight:   3, domain: "samsung"},
	{name: "Dynabook", seller: "30010091", pci: "1179", manufacturer: "Dynabook Inc.", biosVendor: "Dynabook Inc.", boardMfr: "Dynabook Inc.",
		families: []string{"dynabook PORTEGE", "dynabook TECRA", "dynabook SATELLITE PRO"},
		weight:   2, domain: "dynabook"},
	{name: "Fujitsu", seller: "30010103", pci: "10CF", manufacturer: "FUJITSU CLIENT COMPUTING LIMITED", biosVendor: "FUJITSU CLIENT COMPUTING LIMITED", boardMfr: "FUJITSU CLIENT COMPUTING LIMITED",
		families: []string{"LIFEBOOK", "ESPRIMO", "CELSIUS"},
		weight:   2, domain: "fujitsu"},
	{name: "Gigabyte", seller: "30010117", pci: "1458", manufacturer: "GIGABYTE", biosVendor: "American Megatrends International, LLC.", boardMfr: "GIGABYTE",
		families: []string{"AORUS", "AERO", "G5"},
		weight:   1.5, domain: "gigabyte"},
	{name: "Razer", seller: "30010121", pci: "1A58", manufacturer: "Razer", biosVendor: "Razer", boardMfr: "Razer",
		families: []string{"Blade", "Blade Stealth"},
		weight:   1, domain: "razer"},
	{name: "LG", seller: "30010133", pci: "1854", manufacturer: "LG Electronics", biosVendor: "Phoenix Technologies Ltd.", boardMfr: "LG Electronics",
		families: []string{"LG gram", "LG gram Pro"},
		weight:   1, domain: "lg"},
	{name: "Huawei", seller: "30010147", pci: "19E5", manufacturer: "HUAWEI", biosVendor: "HUAWEI", boardMfr: "HUAWEI",
		families: []string{"MateBook", "MateBook X Pro", "MateBook D"},
		weight:   1, domain: "huawei"},
	{name: "Framework", seller: "30010151", pci: "F111", manufacturer: "Framework", biosVendor: "INSYDE Corp.", boardMfr: "Framework",
		families: []string{"Laptop", "Laptop 16"},
		weight:   0.5, domain: "frame.work"},
}

var (
	oemOnce sync.Once
	oemList []*oem
)

// oems returns the OEMs with their models, built once from worldSeed.
func oems() []*oem {
	oemOnce.Do(func() {
		r := newRNG(worldSeed, 2)
		for i := range oemTable {
			o := oemTable[i]
			op := &o
			n := r.between(24, 48)
			weights := zipf(n, 1.1)
			used := map[string]bool{"0000": true, "FFFF": true}
			for j := 0; j < n; j++ {
				m := &model{oem: op, weight: weights[j]}
				m.subsys = uniqueHex(r, used, 0x0100, 0xFFFE)
				fillSMBIOS(r, op, m)
				m.ids, m.mask = chid.Compute(&m.fields)
				op.models = append(op.models, m)
			}
			oemList = append(oemList, op)
		}
	})
	return oemList
}

// fillSMBIOS makes up a model's SMBIOS fields in the OEM's style.
func fillSMBIOS(r *rng, o *oem, m *model) {
	f := &m.fields
	family := o.families[r.intn(len(o.families))]
	f[chid.Manufacturer] = o.manufacturer
	f[chid.Family] = family
	f[chid.BIOSVendor] = o.biosVendor
	f[chid.BaseboardManufacturer] = o.boardMfr
	f[chid.BIOSMajorRelease] = strconv.FormatInt(int64(r.between(1, 40)), 16)
	f[chid.BIOSMinorRelease] = strconv.FormatInt(int64(r.between(0, 60)), 16)
	f[chid.EnclosureType] = []string{"a", "9", "a", "a", "3", "d", "1f"}[r.intn(7)]
	mt := fmt.Sprintf("%02d%c%c", r.between(20, 21), 'A'+byte(r.intn(26)), 'A'+byte(r.intn(26)))
	switch o.name {
	case "Lenovo":
		f[chid.ProductName] = mt + fmt.Sprintf("%03d%cUS", r.intn(1000), 'A'+byte(r.intn(26)))
		f[chid.SKUNumber] = "LENOVO_MT_" + mt + "_BU_Think_FM_" + family
		f[chid.BIOSVersion] = fmt.Sprintf("N%02XET%02dW (1.%02d )", r.intn(256), r.intn(100), r.intn(100))
		f[chid.BaseboardProduct] = f[chid.ProductName]
	case "HP":
		series := []string{"840 G10", "640 G10", "450 G10", "15-eh3xxx", "x360 14", "Mini 800 G9", "Firefly 14 G10"}[r.intn(7)]
		f[chid.ProductName] = "HP " + strings.TrimPrefix(family[strings.Index(family, " ")+1:], "HP ") + " " + series + " Notebook PC"
		f[chid.SKUNumber] = fmt.Sprintf("%d%c%d%cEA#ABD", r.between(1, 9), 'A'+byte(r.intn(26)), r.between(1, 9), 'A'+byte(r.intn(26)))
		f[chid.BIOSVersion] = fmt.Sprintf("V%02d Ver. 01.%02d.%02d", r.intn(100), r.intn(20), r.intn(20))
		f[chid.BaseboardProduct] = hex4(r.between(0x8000, 0x8FFF))
	case "Dell":
		f[chid.ProductName] = fmt.Sprintf("%s %d%d%d0", family, r.between(3, 9), r.between(3, 5), r.between(0, 9))
		f[chid.SKUNumber] = hex4(r.between(0x0A00, 0x0CFF))
		f[chid.BIOSVersion] = fmt.Sprintf("1.%d.%d", r.between(1, 30), r.between(0, 9))
		f[chid.BaseboardProduct] = fmt.Sprintf("0%c%d%c%d%c", 'A'+byte(r.intn(26)), r.intn(10), 'A'+byte(r.intn(26)), r.intn(10), 'A'+byte(r.intn(26)))
	default:
		code := fmt.Sprintf("%c%c%d%d%c", 'A'+byte(r.intn(26)), 'A'+byte(r.intn(26)), r.between(1, 9), r.intn(100), 'A'+byte(r.intn(26)))
		f[chid.ProductName] = family + " " + code
		if o.name != "Acer" || r.chance(0.3) { // Acer leaves the SKU empty on many models
			f[chid.SKUNumber] = fmt.Sprintf("%s-%04d", code, r.intn(10000))
		}
		f[chid.BIOSVersion] = fmt.Sprintf("%s.%d", code, r.between(100, 399))
		f[chid.BaseboardProduct] = code
	}
}
