package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/chid"
)

// DeviceOptions configure GenerateDevices. Zero values take the defaults.
type DeviceOptions struct {
	PCs    int    // PCs (offer requests) to generate; default 10000
	Seed   int64  // default 1
	Labels string // a label tree (from GenerateLabels) to draw hardware from; required
	// WholePC makes whole PCs, as Windows reports them: 100 to 200 device nodes each with its
	// full hardware and compatible ID lists, most of them (80–92%) known to no label — root
	// and software devices, ACPI nodes, PCI bridges, USB hubs and HID collections, several
	// instances of the same kind — instead of the 5 to 40 devices of the default population.
	WholePC bool
}

// DeviceStats is what GenerateDevices wrote.
type DeviceStats struct {
	PCs        int
	Devices    int
	IDs        int   // hardware and compatible IDs
	Known      int   // devices with an ID that a live label row publishes
	WithDriver int   // devices that report an installed driver
	Bytes      int64 // bytes written
}

// GenerateDevices writes one offer request (spec/offers.md, "Request") per line to w: a
// population of PCs whose hardware comes from the label tree opts.Labels, with Windows'
// hardware and compatible IDs, OS builds in realistic proportions, CHIDs of their models,
// installed drivers older or newer than the catalog's, and the devices no label knows.
// The output is fixed by the tree, PCs and Seed.
func GenerateDevices(w io.Writer, opts DeviceOptions) (DeviceStats, error) {
	if opts.PCs <= 0 {
		opts.PCs = 10000
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Labels == "" {
		return DeviceStats{}, errors.New("bench: DeviceOptions.Labels must name a label tree")
	}
	ix, err := indexDir(opts.Labels)
	if err != nil {
		return DeviceStats{}, err
	}
	g := &deviceGen{ix: ix, r: newRNG(opts.Seed, 200), whole: opts.WholePC}
	bw := bufio.NewWriterSize(w, 1<<16)
	var st DeviceStats
	var buf []byte
	for i := 0; i < opts.PCs; i++ {
		pc := g.pc()
		buf = pc.appendJSON(buf[:0])
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return st, fmt.Errorf("bench: %w", err)
		}
		st.PCs++
		st.Bytes += int64(len(buf))
		for _, d := range pc.devices {
			st.Devices++
			st.IDs += len(d.hardwareIDs) + len(d.compatibleIDs)
			if d.known {
				st.Known++
			}
			if d.driver != nil {
				st.WithDriver++
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("bench: %w", err)
	}
	return st, nil
}

// ---- what the tree offers, indexed for drawing devices ----

// drv is a driver some label publishes for a hardware ID.
type drv struct {
	day     int32
	version uint64
	ext     string // extension id (GUID without braces), "" for a base driver
}

// template is a device the tree knows: the IDs a PC reports for it follow from its bus.
type template struct {
	bus     bus
	class   string // INF class
	ven     string // PCI/HDAUDIO vendor, USB/HID vendor, ACPI vendor
	dev     string // PCI/HDAUDIO device, USB/HID product, ACPI device, UEFI resource GUID
	rev     string // as published, "" when the label has none
	subsys  string // PCI: ssssvvvv; HDAUDIO: vvvvssss; "" for two-part IDs
	col     string // HID collection
	labels  int    // labels that publish it: its popularity
	drivers []drv
}

type treeIndex struct {
	byModel    map[*model][]*template // PCI/HDAUDIO for a model's SUBSYS, two-part and UEFI ones via CHIDs
	byOEM      map[*oem][]*template   // USB/HID devices published for an OEM's systems
	global     map[string][]*template // USB, HID and ACPI devices by INF class, most published first
	classes    []string               // keys of global, sorted
	models     []*model               // every model
	modelDraw  cumulative
	known      map[string]bool // every live published ID
	pciChips   []*template     // PCI chips of the tree, most published first
	chipDraw   cumulative
	modelByKey map[string]*model // "17AA" + subsys
}

// indexBatch is how many products are read at a time: a tree of a million labels does not
// fit in memory as a catalogs.Tree, but its index does.
const indexBatch = 1000

// indexDir reads the label tree in dir with catalogs.LoadFS, a batch of products at a
// time, and indexes it. Problems in the tree are not reported: whatever can be read is used.
func indexDir(dir string) (*treeIndex, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("bench: %s is not a directory", dir)
	}
	fsys := os.DirFS(dir)
	entries, err := fs.ReadDir(fsys, "products")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("bench: %w", err)
	}
	x := newIndexer()
	for i := 0; i < len(entries); i += indexBatch {
		tree, _, err := catalogs.LoadFS(productSubset{fsys, entries[i:min(i+indexBatch, len(entries))]}, nil)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		x.add(tree)
	}
	return x.finish(), nil
}

// productSubset is a label tree that shows only some of its products.
type productSubset struct {
	fs.FS
	products []fs.DirEntry
}

func (s productSubset) ReadDir(name string) ([]fs.DirEntry, error) {
	if name == "products" {
		return s.products, nil
	}
	return fs.ReadDir(s.FS, name)
}

// indexer builds a treeIndex from a tree read a batch of products at a time.
type indexer struct {
	ix          *treeIndex
	modelByCHID map[chid.ID]*model
	oemByName   map[string]*oem
	byID        map[string]*template
	order       []*template
	attaches    []attach
}

// attach is where a template goes once every label has added its drivers to it.
type attach struct {
	t      *template
	models []*model // the models the label's CHIDs name
	oem    *oem     // the OEM the label names
}

func newIndexer() *indexer {
	ix := &treeIndex{
		byModel:    map[*model][]*template{},
		byOEM:      map[*oem][]*template{},
		global:     map[string][]*template{},
		known:      map[string]bool{},
		modelByKey: map[string]*model{},
	}
	x := &indexer{ix: ix, modelByCHID: map[chid.ID]*model{}, oemByName: map[string]*oem{}, byID: map[string]*template{}}
	var weights []float64
	for _, o := range oems() {
		x.oemByName[o.name] = o
		for _, m := range o.models {
			ix.modelByKey[o.pci+m.subsys] = m
			ix.models = append(ix.models, m)
			weights = append(weights, o.weight*m.weight)
			for n := 0; n < chid.NumLevels; n++ {
				if m.mask&(1<<n) != 0 {
					if _, dup := x.modelByCHID[m.ids[n]]; !dup {
						x.modelByCHID[m.ids[n]] = m
					}
				}
			}
		}
	}
	ix.modelDraw = newCumulative(weights)
	return x
}

// add indexes the live rows of a tree's Windows Update labels.
func (x *indexer) add(t *catalogs.Tree) {
	ix := x.ix
	for _, l := range t.Labels() {
		if l.Destination != "windowsUpdate" {
			continue
		}
		var models []*model
		for _, c := range l.LiveCHIDs() {
			if m := x.modelByCHID[c]; m != nil {
				models = append(models, m)
			}
		}
		var labelOEM *oem
		if i := strings.LastIndex(l.Name, " for "); i >= 0 {
			labelOEM = x.oemByName[l.Name[i+len(" for "):]]
		}
		seen := map[string]bool{}
		for _, r := range l.Rows {
			if !r.Live() || seen[r.HWID] {
				continue
			}
			seen[r.HWID] = true
			ix.known[strings.Clone(r.HWID)] = true
			inf := l.Submission.INF(r.Bundle, r.INF)
			if inf == nil {
				continue
			}
			parsed := parseTemplate(strings.Clone(r.HWID))
			if parsed == nil {
				continue
			}
			tp := x.byID[parsed.key()]
			switch {
			case tp == nil:
				tp = parsed
				tp.class = strings.Clone(inf.Class)
				x.byID[tp.key()] = tp
				x.order = append(x.order, tp)
				x.attaches = append(x.attaches, attach{t: tp, models: models, oem: labelOEM})
			case tp.rev == "":
				tp.rev = parsed.rev // the same device published with and without REV_
			}
			tp.labels++
			d := drv{day: inf.Date, version: inf.Version}
			if inf.ExtensionID != nil {
				d.ext = inf.ExtensionID.String()
			}
			if !containsDrv(tp.drivers, d) {
				tp.drivers = append(tp.drivers, d)
			}
		}
	}
}

// finish files every template where PCs will find it.
func (x *indexer) finish() *treeIndex {
	ix, order := x.ix, x.order
	for _, a := range x.attaches {
		tp := a.t
		sort.Slice(tp.drivers, func(i, j int) bool {
			if tp.drivers[i].day != tp.drivers[j].day {
				return tp.drivers[i].day < tp.drivers[j].day
			}
			return tp.drivers[i].version < tp.drivers[j].version
		})
		switch {
		case tp.subsys != "" && tp.bus == busPCI:
			if m := ix.modelByKey[tp.subsys[4:]+tp.subsys[:4]]; m != nil {
				ix.byModel[m] = appendTemplate(ix.byModel[m], tp)
			}
		case tp.subsys != "" && tp.bus == busHDA:
			if m := ix.modelByKey[tp.subsys]; m != nil {
				ix.byModel[m] = appendTemplate(ix.byModel[m], tp)
			}
		case len(a.models) > 0 && (tp.bus == busPCI || tp.bus == busHDA || tp.bus == busUEFI):
			for _, m := range a.models {
				ix.byModel[m] = appendTemplate(ix.byModel[m], tp)
			}
		case a.oem != nil && (tp.bus == busUSB || tp.bus == busHID):
			ix.byOEM[a.oem] = appendTemplate(ix.byOEM[a.oem], tp)
		}
		if tp.bus == busUSB || tp.bus == busHID || tp.bus == busACPI {
			if _, ok := ix.global[tp.class]; !ok {
				ix.classes = append(ix.classes, tp.class)
			}
			ix.global[tp.class] = append(ix.global[tp.class], tp)
		}
	}
	sort.Strings(ix.classes)
	for _, c := range ix.classes {
		list := ix.global[c]
		sort.SliceStable(list, func(i, j int) bool { return list[i].labels > list[j].labels })
	}

	// PCI chips by popularity, for the chips of PCs that no label targets.
	chips := map[string]*template{}
	for _, tp := range order {
		if tp.bus != busPCI {
			continue
		}
		key := tp.ven + "&" + tp.dev
		if c := chips[key]; c != nil {
			c.labels += tp.labels
			continue
		}
		c := *tp
		c.subsys, c.drivers = "", nil
		chips[key] = &c
		ix.pciChips = append(ix.pciChips, &c)
	}
	sort.SliceStable(ix.pciChips, func(i, j int) bool { return ix.pciChips[i].labels > ix.pciChips[j].labels })
	if len(ix.pciChips) > 0 {
		ix.chipDraw = newCumulative(zipf(len(ix.pciChips), 1.1))
	}
	return ix
}

func containsDrv(list []drv, d drv) bool {
	for _, x := range list {
		if x == d {
			return true
		}
	}
	return false
}

func appendTemplate(list []*template, t *template) []*template {
	for _, x := range list {
		if x == t {
			return list
		}
	}
	return append(list, t)
}

// key names the device a template is, whichever of its IDs a label publishes.
func (t *template) key() string {
	return strconv.Itoa(int(t.bus)) + "|" + t.ven + "|" + t.dev + "|" + t.subsys + "|" + t.col
}

// parseTemplate reads a published hardware ID into the device that reports it, or nil for
// a form the generator does not make devices of.
func parseTemplate(h string) *template {
	enum, rest, ok := strings.Cut(h, `\`)
	if !ok {
		return nil
	}
	t := &template{}
	part := func(key string) string {
		for _, p := range strings.Split(rest, "&") {
			if strings.HasPrefix(p, key) {
				return p[len(key):]
			}
		}
		return ""
	}
	switch enum {
	case "PCI":
		t.bus, t.ven, t.dev, t.subsys, t.rev = busPCI, part("VEN_"), part("DEV_"), part("SUBSYS_"), part("REV_")
	case "HDAUDIO":
		t.bus, t.ven, t.dev, t.subsys, t.rev = busHDA, part("VEN_"), part("DEV_"), part("SUBSYS_"), part("REV_")
	case "USB":
		t.bus, t.ven, t.dev, t.rev = busUSB, part("VID_"), part("PID_"), part("REV_")
	case "HID":
		t.bus, t.ven, t.dev, t.col = busHID, part("VID_"), part("PID_"), part("COL")
	case "ACPI":
		t.bus, t.ven, t.dev = busACPI, part("VEN_"), part("DEV_")
	case "UEFI":
		t.bus, t.rev = busUEFI, part("REV_")
		if i := strings.Index(rest, "{"); i >= 0 {
			if j := strings.Index(rest, "}"); j > i {
				t.dev = rest[i+1 : j]
			}
		}
	default:
		return nil
	}
	if t.ven == "" && t.bus != busUEFI || t.dev == "" || (t.subsys != "" && len(t.subsys) != 8) {
		return nil
	}
	return t
}

// ---- one PC ----

type deviceGen struct {
	ix    *treeIndex
	r     *rng
	inbox string // "10.0.<build>." of the PC being made: the version prefix of inbox drivers
	whole bool   // DeviceOptions.WholePC
}

type pc struct {
	deviceID    string
	build, rev  int
	arch, sku   string
	sMode       bool
	scan        string
	targetBuild int
	chids       *[chid.NumLevels]chid.ID
	chidMask    uint16
	smbios      *chid.Fields
	targetRing  string
	audiences   []string
	insider     string
	devices     []*device
}

type device struct {
	instanceID    string
	hardwareIDs   []string
	compatibleIDs []string
	driver        *installed
	extensions    []installedExt
	known         bool
}

type installed struct {
	date    string
	version string
	rank    string
	generic bool
}

type installedExt struct {
	id, date, version string
}

// osMix is the population's OS builds: build, share, revision range.
var osMix = []struct {
	build  int
	weight float64
	rev    [2]int
}{
	{19045, 40, [2]int{2006, 6456}}, {22631, 30, [2]int{2134, 5624}}, {26100, 15, [2]int{1742, 4946}},
	{22621, 4, [2]int{1105, 4317}}, {26200, 4, [2]int{5074, 7171}}, {19044, 3, [2]int{1288, 5131}},
	{17763, 2, [2]int{1577, 7009}}, {14393, 1, [2]int{3930, 8066}}, {10240, 0.5, [2]int{17146, 20796}},
	{7601, 0.5, [2]int{17514, 27366}},
}

var osDraw = func() cumulative {
	w := make([]float64, len(osMix))
	for i, o := range osMix {
		w[i] = o.weight
	}
	return newCumulative(w)
}()

var serverBuilds = []int{17763, 20348, 26100, 14393}

func (g *deviceGen) pc() *pc {
	r, ix := g.r, g.ix
	p := &pc{deviceID: r.guid(), arch: "amd64", sku: "client", scan: "scheduled"}
	o := osMix[osDraw.draw(r)]
	p.build, p.rev = o.build, r.between(o.rev[0], o.rev[1])
	switch x := r.float(); {
	case x < 0.02:
		p.sku = "server"
		p.build = serverBuilds[r.intn(len(serverBuilds))]
		p.rev = r.between(1000, 7000)
	case x < 0.04:
		p.arch = "arm64"
		p.build = []int{22631, 26100, 26100, 26200}[r.intn(4)]
		p.rev = r.between(1000, 6000)
	}
	if p.sku == "client" && p.build >= 17134 && r.chance(0.01) {
		p.sMode = true
	}
	switch x := r.float(); {
	case x < 0.70:
	case x < 0.82:
		p.scan = "user"
	case x < 0.88:
		p.scan = "optional"
	case x < 0.95:
		if p.build >= 10240 && p.build < 26200 && p.sku == "client" {
			p.scan = "upgrade"
			p.targetBuild = []int{22631, 26100, 26100, 26200}[r.intn(4)]
			if p.targetBuild <= p.build {
				p.targetBuild = 26200
			}
		}
	case x < 0.98:
		p.scan = "plugin"
	default:
		p.scan = "devmgr"
	}
	if p.sku == "client" && r.chance(0.02) {
		switch p.insider = []string{"Canary", "Dev", "Beta", "ReleasePreview"}[r.intn(4)]; p.insider {
		case "Canary":
			p.build, p.rev = 27000+r.intn(900), r.between(1, 1000)
		case "Dev":
			p.build, p.rev = 26200, r.between(5000, 7000)
		case "Beta":
			p.build, p.rev = 26120, r.between(1000, 6000)
		default:
			p.build, p.rev = 26100, r.between(4000, 6000)
		}
		if p.scan == "upgrade" {
			p.scan = "scheduled"
			p.targetBuild = 0
		}
	}
	if r.chance(0.01) {
		p.targetRing = "Drivers"
	}
	if r.chance(0.005) {
		p.audiences = []string{"CoDev"}
	}

	g.inbox = inboxVersion(p.build)
	m := ix.models[ix.modelDraw.draw(r)]
	switch x := r.float(); {
	case x < 0.85:
		ids, mask := m.ids, m.mask
		p.chids, p.chidMask = &ids, mask
	case x < 0.95:
		f := m.fields
		p.smbios = &f
	}
	g.devices(p, m)
	return p
}

// inboxVersion is the version prefix of the drivers a build ships with: the servicing
// branches (19041 for 19042–19045, 22621 for 22631, 26100 for 26200) keep their base build.
func inboxVersion(build int) string {
	switch {
	case build < 10240:
		return "6.1.7601."
	case build >= 19041 && build <= 19045:
		build = 19041
	case build == 22631:
		build = 22621
	case build == 26200:
		build = 26100
	}
	return "10.0." + strconv.Itoa(build) + "."
}

// devices fills a PC of model m: the devices the tree targets at its model and maker, then
// popular chips, then the devices no label knows, 5 to 40 in all.
func (g *deviceGen) devices(p *pc, m *model) {
	r, ix := g.r, g.ix
	want := min(40, 5+int(r.lognormal(2.4, 0.6)))
	if g.whole {
		want = r.between(100, 200)
	}
	seenInst := map[string]bool{}

	// Targeted at this model: one device per class (two NICs and two GPUs at most).
	byClass := map[string][]*template{}
	var classes []string
	for _, t := range ix.byModel[m] {
		if _, ok := byClass[t.class]; !ok {
			classes = append(classes, t.class)
		}
		byClass[t.class] = append(byClass[t.class], t)
	}
	var picked []*template
	for _, c := range classes {
		list := byClass[c]
		n := 1
		if c == "Net" || c == "Display" || c == "Firmware" {
			n = 2
		}
		for k := 0; k < n && len(list) > 0; k++ {
			w := make([]float64, len(list))
			for i, t := range list {
				w[i] = float64(t.labels)
			}
			i := r.weighted(w)
			picked = append(picked, list[i])
			list = append(list[:i:i], list[i+1:]...)
		}
	}
	// The maker's USB and HID devices, and a few popular ones from anywhere.
	if list := ix.byOEM[m.oem]; len(list) > 0 {
		for k := 0; k < 2; k++ {
			if r.chance(0.7) {
				picked = append(picked, list[r.intn(len(list))])
			}
		}
	}
	for k := 0; k < 3 && len(ix.classes) > 0; k++ {
		if r.chance(0.5) {
			list := ix.global[ix.classes[r.intn(len(ix.classes))]]
			picked = append(picked, list[zipfIndex(r, len(list))])
		}
	}
	// Most of a PC's device nodes have no driver on Windows Update: known devices are 30–65%.
	knownCap := max(2, want*r.between(30, 65)/100)
	if g.whole { // a whole PC's known devices are the same few; the rest of its nodes are system ones
		knownCap = max(2, want*r.between(8, 20)/100)
	}
	for _, t := range picked {
		if len(p.devices) >= knownCap {
			break
		}
		d := g.device(t, m)
		if d != nil && !seenInst[d.instanceID] {
			seenInst[d.instanceID] = true
			p.devices = append(p.devices, d)
		}
	}
	// Popular chips in this model that its labels do not name.
	for k := 0; k < 3 && len(ix.pciChips) > 0 && len(p.devices) < want; k++ {
		c := *ix.pciChips[ix.chipDraw.draw(r)]
		c.subsys, c.rev = m.subsys+m.oem.pci, ""
		d := g.device(&c, m)
		if !seenInst[d.instanceID] {
			seenInst[d.instanceID] = true
			p.devices = append(p.devices, d)
		}
	}
	// Devices no label knows.
	for tries := 0; len(p.devices) < want && tries < 200; tries++ {
		d := g.systemDevice(m)
		if g.whole && seenInst[d.instanceID] {
			// A whole PC has many nodes of one kind (volumes, HID collections, ACPI
			// resources, audio endpoints): another instance of the same IDs.
			d.instanceID += "&" + strconv.Itoa(tries)
		}
		if !seenInst[d.instanceID] {
			seenInst[d.instanceID] = true
			p.devices = append(p.devices, d)
		}
	}
	for i := len(p.devices) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		p.devices[i], p.devices[j] = p.devices[j], p.devices[i]
	}
	for _, d := range p.devices {
		for _, h := range append(d.hardwareIDs[:len(d.hardwareIDs):len(d.hardwareIDs)], d.compatibleIDs...) {
			if ix.known[catalogs.NormalizeHWID(h)] {
				d.known = true
			}
		}
	}
}

// zipfIndex draws an index below n with P(i) roughly ∝ 1/(i+1).
func zipfIndex(r *rng, n int) int {
	i := int(math.Pow(float64(n+1), r.float())) - 1
	return max(0, min(i, n-1))
}

// device makes the PnP device a template names, in a PC of model m.
func (g *deviceGen) device(t *template, m *model) *device {
	r := g.r
	d := &device{}
	up := strings.ToUpper
	inst := func(prefix string) string { return prefix + `\` + instanceSuffix(r, t.bus) }
	switch t.bus {
	case busPCI:
		subsys := t.subsys
		if subsys == "" {
			subsys = m.subsys + m.oem.pci
		}
		rev := t.rev
		if rev == "" {
			rev = fmt.Sprintf("%02X", 1+int(hashString(t.ven+t.dev))%0x20)
		}
		cc := classCode(t.class, t.dev)
		base := `PCI\VEN_` + t.ven + "&DEV_" + t.dev
		d.hardwareIDs = []string{base + "&SUBSYS_" + subsys + "&REV_" + rev, base + "&SUBSYS_" + subsys, base + "&CC_" + cc, base + "&CC_" + cc[:4]}
		d.compatibleIDs = []string{base + "&REV_" + rev, base, `PCI\VEN_` + t.ven + "&CC_" + cc, `PCI\VEN_` + t.ven + "&CC_" + cc[:4], `PCI\VEN_` + t.ven, `PCI\CC_` + cc, `PCI\CC_` + cc[:4]}
		d.instanceID = inst(d.hardwareIDs[0])
	case busHDA:
		subsys := t.subsys
		if subsys == "" {
			subsys = m.oem.pci + m.subsys
		}
		base := `HDAUDIO\FUNC_01&VEN_` + t.ven + "&DEV_" + t.dev
		d.hardwareIDs = []string{base + "&SUBSYS_" + subsys + "&REV_1000", base + "&SUBSYS_" + subsys}
		d.compatibleIDs = []string{base + "&REV_1000", base, `HDAUDIO\FUNC_01&VEN_` + t.ven, `HDAUDIO\FUNC_01`}
		d.instanceID = inst(d.hardwareIDs[0])
	case busUSB:
		rev := t.rev
		if rev == "" {
			rev = "0100"
		}
		base := `USB\VID_` + t.ven + "&PID_" + t.dev
		d.hardwareIDs = []string{base + "&REV_" + rev, base}
		cls := map[string]string{"Camera": "0E&SubClass_03&Prot_00", "Bluetooth": "E0&SubClass_01&Prot_01"}[t.class]
		if cls == "" {
			cls = "FF&SubClass_00&Prot_00"
		}
		c := `USB\Class_` + cls
		d.compatibleIDs = []string{c, c[:strings.LastIndex(c, "&")], c[:strings.Index(c, "&")]}
		d.instanceID = inst(base)
	case busHID:
		col := t.col
		if col == "" {
			col = "01"
		}
		base := `HID\VID_` + t.ven + "&PID_" + t.dev
		d.hardwareIDs = []string{base + "&REV_0100&COL" + col, base + "&COL" + col, `HID\VID_` + t.ven + "&UP:000D_U:0005", "HID_DEVICE_UP:000D_U:0005", "HID_DEVICE"}
		d.instanceID = inst(base + "&COL" + col)
	case busACPI:
		d.hardwareIDs = []string{`ACPI\VEN_` + t.ven + "&DEV_" + t.dev, `ACPI\` + t.ven + t.dev, "*" + t.ven + t.dev}
		d.instanceID = inst(d.hardwareIDs[0])
	case busUEFI:
		rev := t.rev
		if rev == "" {
			rev = "1"
		}
		base := `UEFI\RES_{` + up(t.dev) + "}"
		d.hardwareIDs = []string{base + "&REV_" + rev, base}
		d.instanceID = base + `\0`
	}
	g.installDriver(d, t)
	return d
}

// classCode is the PCI class code of a device of an INF class.
func classCode(class, dev string) string {
	switch class {
	case "Net":
		if hashString(dev)%2 == 0 {
			return "028000"
		}
		return "020000"
	case "Display":
		return "030000"
	case "System":
		return "0C0500"
	case "SCSIAdapter":
		return "010802"
	case "SDHost":
		return "080501"
	case "USB":
		return "0C0330"
	case "MEDIA":
		return "040300"
	}
	return "FF0000"
}

// installDriver gives a device the driver a PC would have: none, Windows' generic one, or a
// vendor driver older than, equal to or newer than the catalog's.
func (g *deviceGen) installDriver(d *device, t *template) {
	r := g.r
	var base []drv
	var exts []drv
	for _, x := range t.drivers {
		if x.ext == "" {
			base = append(base, x)
		} else {
			exts = append(exts, x)
		}
	}
	switch x := r.float(); {
	case x < 0.15 || t.bus == busUEFI && x < 0.3:
		// No driver: a device that just appeared, or firmware never updated.
	case x < 0.3 || len(base) == 0:
		d.driver = &installed{date: "2006-06-21", version: g.inbox + strconv.Itoa(r.between(1, 5000)), generic: true}
	default:
		pick := base[r.intn(len(base))]
		day, ver := int(pick.day), pick.version
		switch y := r.float(); {
		case y < 0.6: // older than anything the catalog has
			day -= r.between(30, 400)
			ver = olderVersion(r, ver)
		case y < 0.9: // exactly a catalog version
		default: // newer (a driver from the OEM's site)
			day += r.between(10, 200)
			ver = newerVersion(r, ver)
		}
		d.driver = &installed{date: dayString(day), version: catalogs.FormatVersion(ver)}
		if r.chance(0.5) {
			d.driver.rank = []string{"00FF0000", "00FF0001", "00FE0000", "00FF2001"}[r.intn(4)]
		}
	}
	if len(exts) > 0 && d.driver != nil && !d.driver.generic && r.chance(0.5) {
		e := exts[r.intn(len(exts))]
		d.extensions = append(d.extensions, installedExt{id: e.ext, date: dayString(int(e.day) - r.between(0, 200)), version: catalogs.FormatVersion(olderVersion(r, e.version))})
	}
}

func olderVersion(r *rng, v uint64) uint64 {
	y := v >> 16 & 0xffff
	if y > 1 {
		y = uint64(r.between(1, int(y)))
		return v&^(0xffff<<16) | y<<16
	}
	return v
}

func newerVersion(r *rng, v uint64) uint64 {
	y := v >> 16 & 0xffff
	y = min(65000, y+uint64(r.between(1, 300)))
	return v&^(0xffff<<16) | y<<16
}

// systemDevices are devices every PC has and no label publishes: root-enumerated ones,
// ACPI system devices, bridges, hubs, monitors and input devices.
var systemDevices = []struct {
	instance string
	hw, comp []string
	driver   bool
}{
	{`ROOT\BASICDISPLAY\0000`, []string{`ROOT\BasicDisplay`}, nil, true},
	{`ROOT\BASICRENDER\0000`, []string{`ROOT\BasicRender`}, nil, true},
	{`ROOT\VDRVROOT\0000`, []string{`ROOT\vdrvroot`}, nil, true},
	{`ROOT\UMBUS\0000`, []string{`root\umbus`}, nil, true},
	{`ROOT\COMPOSITEBUS\0000`, []string{`ROOT\CompositeBus`}, nil, true},
	{`SWD\MSRRAS\MS_NDISWANIP`, []string{`ms_ndiswanip`}, nil, true},
	{`ACPI\PNP0C0A\1`, []string{`ACPI\PNP0C0A`, `*PNP0C0A`}, nil, true},
	{`ACPI\PNP0C0C\2&DABA3FF&1`, []string{`ACPI\PNP0C0C`, `*PNP0C0C`}, nil, true},
	{`ACPI\PNP0C0D\2&DABA3FF&1`, []string{`ACPI\PNP0C0D`, `*PNP0C0D`}, nil, true},
	{`ACPI\PNP0C14\WMAA`, []string{`ACPI\PNP0C14`, `*PNP0C14`}, nil, true},
	{`ACPI\ACPI0003\2&DABA3FF&1`, []string{`ACPI\ACPI0003`, `*ACPI0003`}, nil, true},
	{`ACPI\PNP0A08\0`, []string{`ACPI\PNP0A08`, `*PNP0A08`}, []string{`*PNP0A03`}, true},
	{`ACPI\PNP0C02\1`, []string{`ACPI\PNP0C02`, `*PNP0C02`}, nil, true},
	{`ACPI\PNP0103\0`, []string{`ACPI\PNP0103`, `*PNP0103`}, nil, true},
	{`ACPI\GENUINEINTEL_-_INTEL64_FAMILY_6_MODEL_154_-_12TH_GEN_INTEL(R)_CORE(TM)_I7-1265U\_0`,
		[]string{`ACPI\GenuineIntel_-_Intel64_Family_6_Model_154_-_12th_Gen_Intel(R)_Core(TM)_i7-1265U`, `*GenuineIntel_-_Intel64_Family_6_Model_154`, `ACPI\GenuineIntel_-_Intel64_Family_6`, `*GENUINEINTEL_-_INTEL64`, `ACPI\GenuineIntel`, `*GenuineIntel`},
		[]string{`ACPI\Processor`}, true},
	{`USB\ROOT_HUB30\4&2A2F6BD0&0&0`, []string{`USB\ROOT_HUB30&VID8086&PID51ED&REV0001`, `USB\ROOT_HUB30&VID8086&PID51ED`, `USB\ROOT_HUB30`}, nil, true},
	{`USB\VID_8087&PID_0033\5&1F2D3C4B&0&10`, []string{`USB\VID_8087&PID_0033&REV_0000`, `USB\VID_8087&PID_0033`}, []string{`USB\Class_E0&SubClass_01&Prot_01`, `USB\Class_E0&SubClass_01`, `USB\Class_E0`}, true},
	{`USB\VID_046D&PID_C52B\5&3A5C8F2E&0&2`, []string{`USB\VID_046D&PID_C52B&REV_2411`, `USB\VID_046D&PID_C52B`}, []string{`USB\DevClass_00&SubClass_00&Prot_00`, `USB\DevClass_00&SubClass_00`, `USB\DevClass_00`, `USB\COMPOSITE`}, true},
	{`HID\CONVERTEDDEVICE&COL01\5&1D0B35A8&0&0000`, []string{`HID\CONVERTEDDEVICE&Col01`, `HID_DEVICE_SYSTEM_KEYBOARD`, `HID_DEVICE_UP:0001_U:0006`, `HID_DEVICE`}, nil, true},
	{`HID\VID_046D&PID_C52B&MI_01&COL01\7&2A2B3C4D&0&0000`, []string{`HID\VID_046D&PID_C52B&REV_2411&MI_01&Col01`, `HID\VID_046D&PID_C52B&MI_01&Col01`, `HID\VID_046D&UP:0001_U:0002`, `HID_DEVICE_SYSTEM_MOUSE`, `HID_DEVICE_UP:0001_U:0002`, `HID_DEVICE`}, nil, true},
	{`DISPLAY\SHP14D0\4&2B5C8F3E&0&UID8388688`, []string{`MONITOR\SHP14D0`}, []string{`*PNP09FF`}, true},
	{`DISPLAY\DELA1D8\5&1A2B3C4D&0&UID4352`, []string{`MONITOR\DELA1D8`}, []string{`*PNP09FF`}, true},
	{`STORAGE\VOLUME\{5A8C3D2E-0000-0000-0000-100000000000}#0000000000100000`, []string{`STORAGE\Volume`}, nil, true},
	{`SWD\PRINTENUM\{6A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D}`, []string{`PRINTENUM\{084f01fa-e634-4d77-83ee-074817c03581}`}, []string{`PRINTENUM\PrintQueue`}, true},
	{`BTHENUM\{0000110B-0000-1000-8000-00805F9B34FB}_LOCALMFG&0002\7&1F2E3D4C&0&000000000000_00000000`, []string{`BTHENUM\{0000110b-0000-1000-8000-00805f9b34fb}_LOCALMFG&0002`}, []string{`BTHENUM\{0000110b-0000-1000-8000-00805f9b34fb}`}, false},
}

// systemDevice returns one of the devices no label knows: a fixed system device, a PCI
// bridge or an unknown USB device of the PC's model.
func (g *deviceGen) systemDevice(m *model) *device {
	r := g.r
	if r.chance(0.35) {
		dev := hex4(0x7A00 + r.intn(0x100))
		base := `PCI\VEN_8086&DEV_` + dev
		sub := m.subsys + m.oem.pci
		d := &device{
			hardwareIDs:   []string{base + "&SUBSYS_" + sub + "&REV_11", base + "&SUBSYS_" + sub, base + "&CC_060400", base + "&CC_0604"},
			compatibleIDs: []string{base + "&REV_11", base, `PCI\VEN_8086&CC_060400`, `PCI\VEN_8086&CC_0604`, `PCI\VEN_8086`, `PCI\CC_060400`, `PCI\CC_0604`},
			driver:        &installed{date: "2006-06-21", version: g.inbox + strconv.Itoa(r.between(1, 5000))},
		}
		d.instanceID = d.hardwareIDs[0] + `\` + instanceSuffix(r, busPCI)
		return d
	}
	s := systemDevices[r.intn(len(systemDevices))]
	d := &device{instanceID: s.instance, hardwareIDs: s.hw, compatibleIDs: s.comp}
	if s.driver {
		d.driver = &installed{date: "2006-06-21", version: g.inbox + strconv.Itoa(r.between(1, 5000))}
	}
	return d
}

// instanceSuffix makes the part of an instance id after the device id, as Windows does for
// each bus.
func instanceSuffix(r *rng, b bus) string {
	switch b {
	case busPCI:
		return fmt.Sprintf("3&%08X&0&%02X", uint32(r.next()), r.intn(256))
	case busHDA:
		return fmt.Sprintf("4&%08X&0&%04X", uint32(r.next()), r.intn(16))
	case busUSB:
		if r.chance(0.5) {
			return fmt.Sprintf("%012d", r.next()%1_000_000_000_000)
		}
		return fmt.Sprintf("5&%08X&0&%d", uint32(r.next()), r.between(1, 14))
	case busHID:
		return fmt.Sprintf("5&%08X&0&%04X", uint32(r.next()), r.intn(4))
	case busACPI:
		return strconv.Itoa(r.between(0, 3))
	}
	return "0"
}

func hashString(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// appendJSON writes the request as one line of compact JSON.
func (p *pc) appendJSON(b []byte) []byte {
	w := &jsonWriter{b: b}
	w.beginObject()
	w.strField("deviceId", p.deviceID)
	w.name("os")
	w.beginObject()
	w.intField("build", int64(p.build))
	w.intField("revision", int64(p.rev))
	w.strField("arch", p.arch)
	w.strField("sku", p.sku)
	w.boolField("sMode", p.sMode)
	w.endObject()
	w.strField("scan", p.scan)
	if p.scan == "upgrade" {
		w.intField("targetBuild", int64(p.targetBuild))
	}
	if p.chids != nil {
		w.name("chids")
		w.beginArray()
		for n := 0; n < chid.NumLevels; n++ {
			if p.chidMask&(1<<n) != 0 {
				w.str(p.chids[n].String())
			} else {
				w.null()
			}
		}
		w.endArray()
	}
	if p.smbios != nil {
		w.name("smbios")
		w.beginObject()
		for f, v := range p.smbios {
			if v != "" {
				w.strField(chid.FieldNames[f], v)
			}
		}
		w.endObject()
	}
	if p.targetRing != "" {
		w.strField("targetRing", p.targetRing)
	}
	if len(p.audiences) > 0 {
		w.strings("audiences", p.audiences)
	}
	if p.insider != "" {
		w.strField("insider", p.insider)
	}
	w.name("devices")
	w.beginArray()
	for _, d := range p.devices {
		w.beginObject()
		w.strField("instanceId", d.instanceID)
		w.strings("hardwareIds", d.hardwareIDs)
		if len(d.compatibleIDs) > 0 {
			w.strings("compatibleIds", d.compatibleIDs)
		}
		if dr := d.driver; dr != nil {
			w.name("driver")
			w.beginObject()
			w.strField("date", dr.date)
			w.strField("version", dr.version)
			if dr.rank != "" {
				w.strField("rank", dr.rank)
			}
			w.boolField("generic", dr.generic)
			w.endObject()
		}
		if len(d.extensions) > 0 {
			w.name("extensions")
			w.beginArray()
			for _, e := range d.extensions {
				w.beginObject()
				w.strField("extensionId", e.id)
				w.strField("date", e.date)
				w.strField("version", e.version)
				w.endObject()
			}
			w.endArray()
		}
		w.endObject()
	}
	w.endArray()
	w.endObject()
	return w.b
}
