package bench

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/driveway/driveway/catalogs/ostable"
)

// LabelOptions configure GenerateLabels. Zero values take the defaults.
type LabelOptions struct {
	Labels   int                   // shipping labels to generate; default 10000
	Seed     int64                 // default 1
	Compact  bool                  // write JSON without indentation (large trees); default indented, like an export
	Workers  int                   // files encoded and written in parallel; default GOMAXPROCS
	Progress func(done, total int) // optional: labels written so far, called now and then from one goroutine
}

// LabelStats is what GenerateLabels wrote.
type LabelStats struct {
	Products, Submissions, Labels int
	Rows                          int   // grid rows of all labels
	HWIDs                         int   // distinct hardware IDs the labels publish
	LabelHWIDs                    int   // hardware IDs summed over labels (a HWID on two labels counts twice)
	Files                         int   // files written
	Bytes                         int64 // bytes written
}

// ErrNotEmpty is returned by GenerateLabels for a directory that holds files.
var ErrNotEmpty = errors.New("bench: output directory is not empty")

// The fixed time line of every tree: nothing depends on the wall clock.
var (
	epochDay   = dayOf(2026, 11, 21) // "now" of the generated world
	firstDay   = dayOf(2022, 1, 3)   // first submission
	lastSubDay = dayOf(2026, 11, 14) // last submission
	lastGoLive = dayOf(2026, 11, 30) // latest goLiveDate
)

// WorldNow is the "now" of every generated world (noon of its epoch day): its go-live dates,
// flights and rollouts are placed around it, so its releases are built, served and decided
// at it, never at the system clock.
func WorldNow() time.Time { return time.Unix(int64(epochDay)*86400+12*3600, 0).UTC() }

func dayOf(y int, m time.Month, d int) int {
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// Ids are 2^60 + namespace·10^12 + day·10^8 + sequence, like the dashboard's 19-digit ids
// and increasing with the day an object was created.
const (
	idBase           = uint64(1) << 60
	nsProduct        = 0
	nsSharedProduct  = 1
	nsSubmission     = 2
	nsLabel          = 3
	maxSeq           = 100_000_000
	labelsPerProduct = 6.0 // measured mean, to spread products over the time line
)

func makeID(ns, day, seq int) string {
	return strconv.FormatUint(idBase+uint64(ns)*1e12+uint64(day-firstDay+1)*1e8+uint64(seq), 10)
}

// GenerateLabels writes a label tree of opts.Labels shipping labels into dir (which must be
// empty or absent) and returns what it wrote. The tree is fixed by Labels and Seed: the
// same options give byte-identical files. It is written as it is generated, one product at
// a time, so memory stays small whatever the size.
func GenerateLabels(dir string, opts LabelOptions) (LabelStats, error) {
	if opts.Labels <= 0 {
		opts.Labels = 10000
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Labels >= maxSeq {
		return LabelStats{}, fmt.Errorf("bench: at most %d labels", maxSeq-1)
	}
	if err := prepareDir(dir); err != nil {
		return LabelStats{}, err
	}
	g := newLabelGen(opts)
	w := newTreeWriter(dir, opts)
	if err := w.start(); err != nil {
		return LabelStats{}, err
	}
	for p := g.nextProduct(); p != nil; p = g.nextProduct() {
		if !w.send(p) {
			break
		}
	}
	st, err := w.wait()
	if err != nil {
		return st, err
	}
	for _, f := range g.catalogFiles() {
		if err := w.writeFile(f.name, f.data); err != nil {
			return st, err
		}
	}
	st = w.stats
	return st, nil
}

func prepareDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return fmt.Errorf("bench: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("%w: %s", ErrNotEmpty, dir)
	}
	return nil
}

// ---- the model of one product, as generated and then encoded ----

type product struct {
	id, sharedID string
	name         string
	kind         kind
	vendor       *vendor // nil for an OEM's own product
	ownerSeller  string
	provider     string
	harness      string
	domain       string
	internal     bool
	chips        []chip
	targets      []*target // what labels can publish: per OEM, or per chip group
	extensionID  string    // extension products
	base         *product  // extension products: whose hardware they extend
	legacy       bool
	expansion    bool
	withRev      bool
	arm64, x86   bool
	server       bool
	start        int // index into x64Releases of the oldest supported release
	infNames     []string
	score        string // FeatureScore, "" for null
	subs         []*submission
	signatures   []string
	published    map[*target]bool
}

type chip struct {
	dev, rev string
	descr    string
}

// target is a set of hardware IDs one label publishes: an OEM's systems, or a group of chips.
type target struct {
	oem    *oem
	models []*model
	hwids  []hwid
}

type hwid struct {
	s    string // as written in the files (lower case, like the dashboard's exports)
	chip int
}

type submission struct {
	id, name  string
	day       int
	version   string
	driverDay int
	bundles   []bundle
	hwids     []hwid // every ID the INFs list
	labels    []*label
	pkgURL    string
	sha       string
	size      int64
}

type bundle struct {
	id    string   // "amd64"
	codes []string // OS codes the INFs list, of every architecture
}

type label struct {
	id, name   string
	oem        *oem
	dest       string
	rows       []row
	chids      []labelCHID
	audiences  []string
	floor      string
	ceiling    string
	coEngFloor int
	receiver   string
	enforce    bool
	goLive     int64
	autoDU     bool
	autoApp    bool
	manual     bool
	win10s     bool
	coEng      bool
	ui         bool
	reboot     bool
	unreleased bool
	author     *author
	flight     *flight
	rollout    *rollout
	cancelled  *cancel
	hwidCount  int
}

type row struct {
	bundle, inf, os, pnp, state string
}

type labelCHID struct {
	id, state string
}

type author struct{ seller, role string }

type flight struct {
	channels        []string
	start, approved int64
}

type rollout struct {
	stages []stage
	paused bool
}

type stage struct {
	at int64
	bp int
}

type cancel struct {
	at       int64
	rollback bool
	reason   string
}

// ---- OS codes ----

type release struct {
	code  string
	since int // first day drivers are certified for it
}

var (
	x64Releases = []release{{"RS5", dayOf(2018, 10, 2)}, {"19H1", dayOf(2019, 5, 21)}, {"VB", dayOf(2020, 5, 27)},
		{"CO", dayOf(2021, 10, 4)}, {"NI", dayOf(2022, 9, 20)}, {"GE", dayOf(2024, 10, 1)}}
	serverReleases = []release{{"RS5", dayOf(2018, 10, 2)}, {"FE", dayOf(2021, 8, 18)}, {"GE", dayOf(2024, 11, 1)}}
	arm64Releases  = []release{{"VB", dayOf(2020, 5, 27)}, {"CO", dayOf(2021, 10, 4)}, {"NI", dayOf(2022, 9, 20)}, {"GE", dayOf(2024, 10, 1)}}
	x86Releases    = []release{{"RS5", dayOf(2018, 10, 2)}, {"19H1", dayOf(2019, 5, 21)}, {"VB", dayOf(2020, 5, 27)}}
	floorCodes     = []string{"RS1", "RS3", "RS4", "RS5", "19H1", "VB", "CO", "NI", "GE"}
	legacySets     = [][]string{{"WINDOWS_v63_X64"}, {"WINDOWS_7_X64"}, {"WINDOWS_7_X64", "WINDOWS_v63_X64"}, {"WINDOWS_8_X64", "WINDOWS_v63_X64"}}
)

const (
	testKeyAudience = "00000000-0000-0000-0000-000000000001"
	coDevAudience   = "6f1c2a9e-3b7d-4c55-9a0e-2d4b8c1e7f30"
	previewAudience = "3c9d5e71-8a2b-4f06-b1d4-7e5a9c0f2b68"
)

// ---- the generator ----

type labelGen struct {
	opts     LabelOptions
	r        *rng
	os       *ostable.Table
	vendors  []*vendor
	vDraw    cumulative
	oems     []*oem
	oDraw    cumulative
	nextDev  map[*vendor]int
	nextPID  map[*vendor]int
	products int // products made so far
	subSeq   int
	labels   int // labels made so far
	estProds int
	lastDay  int
	recent   []*product // published products extension INFs can extend
	extUsed  map[*target]bool

	coEng, ceilingAccess map[string]bool // partner entitlements by seller id
	chidRelations        map[string]bool // OEMs whose CHID relationships partners.json lists

	blockAt []int // label numbers after which a block is taken
	blocks  []blockSpec
}

type blockSpec struct {
	label *label
	what  string // product and version, for the reason
	hwid  string
	chids []string
}

func newLabelGen(opts LabelOptions) *labelGen {
	g := &labelGen{
		opts:          opts,
		r:             newRNG(opts.Seed, 100),
		os:            ostable.Default(),
		vendors:       vendorsFor(opts.Labels),
		oems:          oems(),
		nextDev:       map[*vendor]int{},
		nextPID:       map[*vendor]int{},
		extUsed:       map[*target]bool{},
		coEng:         map[string]bool{},
		ceilingAccess: map[string]bool{},
		chidRelations: map[string]bool{},
	}
	g.vDraw = newCumulative(zipf(len(g.vendors), 0.9))
	ow := make([]float64, len(g.oems))
	for i, o := range g.oems {
		ow[i] = o.weight
	}
	g.oDraw = newCumulative(ow)
	g.estProds = max(1, int(float64(opts.Labels)/labelsPerProduct))
	for i, v := range g.vendors {
		switch {
		case i < 30 && containsString([]string{"Intel", "AMD", "NVIDIA", "Qualcomm", "MediaTek"}, v.name):
			g.coEng[v.seller], g.ceilingAccess[v.seller] = true, true
		case i < 4 || i%4 == 3:
			g.ceilingAccess[v.seller] = true
		}
	}
	for _, o := range g.oems {
		switch o.name {
		case "Lenovo", "HP", "Dell", "Microsoft":
			g.ceilingAccess[o.seller] = true
		}
		switch o.name {
		case "Lenovo", "Dell", "Microsoft", "Razer":
			g.chidRelations[o.seller] = true
		}
	}
	for k := 1; k <= 6; k++ {
		g.blockAt = append(g.blockAt, opts.Labels*k/7)
	}
	return g
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// nextProduct generates the next product with its submissions and labels, or returns nil
// once opts.Labels labels are made.
func (g *labelGen) nextProduct() *product {
	if g.labels >= g.opts.Labels {
		return nil
	}
	r := g.r
	span := lastSubDay - 20 - firstDay
	created := firstDay + int(int64(g.products)*int64(span)/int64(g.estProds)) + r.intn(9)
	created = min(max(created, g.lastDay), lastSubDay-1)
	g.lastDay = created

	p := &product{published: map[*target]bool{}}
	x := r.float()
	switch {
	case x < 0.07:
		g.firmwareProduct(p)
	case x < 0.10 && g.extensionProduct(p):
	default:
		g.ihvProduct(p, created)
	}
	for p.start > 0 && x64Releases[p.start].since > created+60 {
		p.start-- // no driver is certified for a release long before it ships
	}
	p.id = makeID(nsProduct, created, g.products)
	p.sharedID = makeID(nsSharedProduct, created, g.products)
	g.products++

	// Submissions: a few to a few dozen, spread until the end of the time line.
	n := 1 + min(int(r.lognormal(1.1, 0.8)), 40)
	n = min(n, (lastSubDay-created)/2+1)
	gapMean := min(80, (lastSubDay-created)/n)
	day := created
	version := newVersion(r, p.kind)
	driverDay := created - r.between(5, 30)
	for j := 0; j < n && g.labels < g.opts.Labels; j++ {
		if j > 0 {
			day += r.between(1, max(1, 2*gapMean-1))
			if day > lastSubDay {
				break
			}
			version.bump(r)
		}
		driverDay = max(driverDay+1, day-r.between(3, 25))
		s := g.submission(p, day, driverDay, version.String(), j)
		if s == nil {
			continue
		}
		p.subs = append(p.subs, s)
	}
	if p.kind != kExtension && p.kind != kFirmware && len(p.subs) > 0 && !p.legacy && p.base == nil {
		g.recent = append(g.recent, p)
		if len(g.recent) > 400 {
			g.recent = g.recent[len(g.recent)-400:]
		}
	}
	if len(p.subs) == 0 {
		return g.nextProduct() // rare: the label budget ran out, or no day was left
	}
	return p
}

// ihvProduct makes a hardware vendor's driver product.
func (g *labelGen) ihvProduct(p *product, created int) {
	r := g.r
	var v *vendor
	for {
		v = g.vendors[g.vDraw.draw(r)]
		if len(g.feasibleKinds(v)) > 0 {
			break
		}
	}
	ks := g.feasibleKinds(v)
	w := make([]float64, len(ks))
	for i, k := range ks {
		w[i] = kinds[k].weight
	}
	p.kind = ks[r.weighted(w)]
	p.vendor, p.ownerSeller, p.provider, p.domain = v, v.seller, v.name, v.domain
	k := &kinds[p.kind]
	line := r.between(1, 999)
	p.name = fmt.Sprintf("%s %s %s%d", v.name, k.name, strings.ToUpper(k.stem[:1]), line)
	p.infNames = []string{fmt.Sprintf("%s%s%d.inf", v.short, k.stem, line%100)}
	p.harness = "hlk"
	if r.chance(0.012) {
		p.harness = "attestation"
	}
	p.internal = true
	p.withRev = r.chance(0.45)
	if r.chance(0.15) {
		p.score = []string{"0xFE", "0xFD", "0xFE"}[r.intn(3)]
	}

	// The chips of this product line.
	nChips := []int{1, 2, 3, 4, 6}[r.weighted([]float64{45, 30, 15, 7, 3})]
	for i := 0; i < nChips; i++ {
		c := chip{dev: g.allocDev(v), rev: fmt.Sprintf("%02X", r.between(0, 0x30))}
		c.descr = fmt.Sprintf("%s %s %s", v.name, k.name, c.dev)
		if k.bus == busUSB {
			c.rev = fmt.Sprintf("%04X", r.between(1, 0x30)*0x100)
		}
		if k.bus == busHDA {
			c.rev = "1000"
		}
		p.chips = append(p.chips, c)
	}
	if nChips >= 3 && r.chance(0.25) {
		p.infNames = append(p.infNames, fmt.Sprintf("%s%s%dx.inf", v.short, k.stem, line%100))
	}

	// OS support.
	switch {
	case created < dayOf(2023, 6, 1) && r.chance(0.08) && k.bus != busUSB && p.kind != kDisplay:
		p.legacy = true
	default:
		p.start = r.weighted([]float64{28, 5, 37, 14, 11, 5})
		p.server = (p.kind == kNIC || p.kind == kStorage || p.kind == kChipset || p.kind == kUSBHost || p.kind == kDisplay) && r.chance(0.35)
		p.arm64 = r.chance(0.12)
		p.x86 = p.start <= 2 && r.chance(0.06)
		p.expansion = !p.server && !p.arm64 && !p.x86 && r.chance(0.012)
	}

	// What labels can publish.
	switch k.bus {
	case busACPI:
		// Not OEM-specific: labels split the chips between them.
		var all []hwid
		for i, c := range p.chips {
			all = append(all, hwid{fmt.Sprintf(`acpi\ven_%s&dev_%s`, strings.ToLower(v.acpi), strings.ToLower(c.dev)), i})
		}
		p.targets = append(p.targets, &target{hwids: all})
		if len(all) >= 2 {
			cut := len(all) / 2
			p.targets = append(p.targets, &target{hwids: all[:cut]}, &target{hwids: all[cut:]})
		}
	default:
		nOEM := []int{1, 2, 3, 4, 5, 6}[r.weighted([]float64{20, 25, 22, 15, 10, 8})]
		for _, o := range g.pickOEMs(nOEM) {
			t := &target{oem: o}
			m := min(len(o.models), int(r.lognormal(1.3, 1.0))+1)
			t.models = pickModels(r, o, m)
			g.fillTarget(p, t)
			p.targets = append(p.targets, t)
		}
	}
}

func (g *labelGen) feasibleKinds(v *vendor) []kind {
	var out []kind
	for _, k := range v.kinds {
		switch kinds[k].bus {
		case busPCI, busHDA:
			if v.pci == "" {
				continue
			}
		case busUSB, busHID:
			if v.usb == "" {
				continue
			}
		case busACPI:
			if v.acpi == "" {
				continue
			}
		}
		out = append(out, k)
	}
	return out
}

// allocDev returns a device id of a vendor no product used before.
func (g *labelGen) allocDev(v *vendor) string {
	n, ok := g.nextDev[v]
	if !ok {
		n = g.r.between(0x0100, 0x0FFF)
	}
	n += g.r.between(1, 2)
	if n > 0xFFFE {
		n = 0x0001
	}
	g.nextDev[v] = n
	return hex4(n)
}

func (g *labelGen) allocPID(v *vendor) string {
	n, ok := g.nextPID[v]
	if !ok {
		n = g.r.between(0x1000, 0x7FFF)
	}
	n += g.r.between(1, 3)
	if n > 0xFFFE {
		n = 0x0001
	}
	g.nextPID[v] = n
	return hex4(n)
}

func (g *labelGen) pickOEMs(n int) []*oem {
	var out []*oem
	for tries := 0; len(out) < n && tries < 100; tries++ {
		o := g.oems[g.oDraw.draw(g.r)]
		if !containsOEM(out, o) {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seller < out[j].seller })
	return out
}

func containsOEM(list []*oem, o *oem) bool {
	for _, x := range list {
		if x == o {
			return true
		}
	}
	return false
}

// pickModels draws m distinct models of an OEM, popular ones first, in the OEM's order.
func pickModels(r *rng, o *oem, m int) []*model {
	w := make([]float64, len(o.models))
	for i, md := range o.models {
		w[i] = md.weight
	}
	chosen := make([]bool, len(o.models))
	for n := 0; n < m; {
		i := r.weighted(w)
		if !chosen[i] {
			chosen[i], w[i] = true, 0
			n++
		}
	}
	var out []*model
	for i, c := range chosen {
		if c {
			out = append(out, o.models[i])
		}
	}
	return out
}

// fillTarget writes the hardware IDs an OEM's label publishes for the product's chips.
func (g *labelGen) fillTarget(p *product, t *target) {
	v, r := p.vendor, g.r
	lv := func(s string) string { return strings.ToLower(s) }
	for ci, c := range p.chips {
		switch kinds[p.kind].bus {
		case busPCI:
			for _, m := range t.models {
				s := fmt.Sprintf(`pci\ven_%s&dev_%s&subsys_%s%s`, lv(v.pci), lv(c.dev), lv(m.subsys), lv(t.oem.pci))
				if p.withRev {
					s += "&rev_" + lv(c.rev)
				}
				t.hwids = append(t.hwids, hwid{s, ci})
			}
		case busHDA:
			for _, m := range t.models {
				s := fmt.Sprintf(`hdaudio\func_01&ven_%s&dev_%s&subsys_%s%s`, lv(v.pci), lv(c.dev), lv(t.oem.pci), lv(m.subsys))
				if p.withRev {
					s += "&rev_" + c.rev
				}
				t.hwids = append(t.hwids, hwid{s, ci})
			}
		case busUSB:
			for j := 0; j < 1+len(t.models)/4; j++ {
				pid := lv(g.allocPID(v))
				form := r.intn(3)
				if form != 1 {
					t.hwids = append(t.hwids, hwid{fmt.Sprintf(`usb\vid_%s&pid_%s&rev_%s`, lv(v.usb), pid, lv(c.rev)), ci})
				}
				if form != 0 {
					t.hwids = append(t.hwids, hwid{fmt.Sprintf(`usb\vid_%s&pid_%s`, lv(v.usb), pid), ci})
				}
			}
		case busHID:
			for j := 0; j < 1+len(t.models)/3; j++ {
				pid := lv(g.allocPID(v))
				t.hwids = append(t.hwids, hwid{fmt.Sprintf(`hid\vid_%s&pid_%s&col01`, lv(v.usb), pid), ci})
				if r.chance(0.3) {
					t.hwids = append(t.hwids, hwid{fmt.Sprintf(`hid\vid_%s&pid_%s&col02`, lv(v.usb), pid), ci})
				}
			}
		}
	}
}

// firmwareProduct makes an OEM's system firmware product for a line of models: UEFI
// resources, always targeted at the models' CHIDs.
func (g *labelGen) firmwareProduct(p *product) {
	r := g.r
	o := g.oems[g.oDraw.draw(r)]
	p.kind, p.ownerSeller, p.provider, p.domain = kFirmware, o.seller, o.name, o.domain
	t := &target{oem: o, models: pickModels(r, o, r.between(1, 4))}
	p.name = fmt.Sprintf("%s %s system firmware", o.name, t.models[0].product())
	p.infNames = []string{fmt.Sprintf("%sfw%d.inf", abbrev(o.name), r.between(100, 999))}
	p.harness = "hlk"
	p.score = "0xFE"
	p.start = r.weighted([]float64{10, 5, 40, 20, 15, 10})
	for _, m := range t.models {
		for j, n := 0, r.between(1, 2); j < n; j++ {
			p.chips = append(p.chips, chip{dev: r.guid(), rev: strconv.Itoa(r.between(1, 3)), descr: m.product() + " firmware"})
			c := p.chips[len(p.chips)-1]
			t.hwids = append(t.hwids, hwid{fmt.Sprintf(`uefi\res_{%s}&rev_%s`, c.dev, c.rev), len(p.chips) - 1})
		}
	}
	p.targets = []*target{t}
}

// extensionProduct makes an OEM's extension INF for hardware a recent product published for
// that OEM's systems. It reports false when there is none to extend.
func (g *labelGen) extensionProduct(p *product) bool {
	r := g.r
	if len(g.recent) == 0 {
		return false
	}
	base := g.recent[len(g.recent)-1-r.intn(min(len(g.recent), 100))]
	var cands []*target
	for _, t := range base.targets {
		if t.oem != nil && base.published[t] && !g.extUsed[t] {
			cands = append(cands, t)
		}
	}
	if len(cands) == 0 {
		return false
	}
	bt := cands[r.intn(len(cands))]
	g.extUsed[bt] = true
	o := bt.oem
	p.kind, p.ownerSeller, p.provider, p.domain, p.base = kExtension, o.seller, o.name, o.domain, base
	p.name = fmt.Sprintf("%s settings for %s", o.name, base.name)
	p.infNames = []string{fmt.Sprintf("%sext%d.inf", abbrev(o.name), r.between(100, 999))}
	p.harness = "hlk"
	p.extensionID = "{" + r.guid() + "}"
	p.chips = base.chips
	p.start = max(base.start, 2)
	t := &target{oem: o, models: bt.models}
	for _, h := range bt.hwids {
		if r.chance(0.7) || len(t.hwids) == 0 {
			t.hwids = append(t.hwids, h)
		}
	}
	p.targets = []*target{t}
	return true
}

// version is a driver version w.x.y.z that only grows.
type version struct{ w, x, y, z int }

func newVersion(r *rng, k kind) version {
	v := version{r.between(10, 40), r.between(0, 99), r.between(100, 9000), r.between(0, 999)}
	switch k {
	case kExtension:
		v.w = r.between(1, 9)
	case kFirmware:
		v.w = r.between(1, 9)
	}
	return v
}

func (v *version) bump(r *rng) {
	v.y += r.between(1, 200)
	if v.y >= 65000 {
		v.x++
		v.y = r.between(100, 1000)
	}
	v.z = r.between(0, 999)
}

func (v version) String() string { return fmt.Sprintf("%d.%d.%d.%d", v.w, v.x, v.y, v.z) }

// submission makes one submission of p on day with its labels, or nil when it would have none.
func (g *labelGen) submission(p *product, day, driverDay int, ver string, j int) *submission {
	r := g.r
	// Which targets get a label this time.
	var ts []*target
	switch {
	case kinds[p.kind].bus == busACPI:
		if len(p.targets) > 1 && r.chance(0.4) {
			ts = p.targets[1:]
		} else {
			ts = p.targets[:1]
		}
	default:
		want := []int{1, 2, 3, 4}[r.weighted([]float64{45, 30, 15, 10})]
		if want >= len(p.targets) {
			ts = p.targets
		} else {
			start := r.intn(len(p.targets))
			for i := 0; i < want; i++ {
				ts = append(ts, p.targets[(start+i)%len(p.targets)])
			}
			sort.Slice(ts, func(a, b int) bool { return targetIndex(p, ts[a]) < targetIndex(p, ts[b]) })
		}
	}
	if left := g.opts.Labels - g.labels; len(ts) > left {
		ts = ts[:left]
	}
	if len(ts) == 0 {
		return nil
	}
	s := &submission{day: day, driverDay: driverDay, version: ver}
	s.id = makeID(nsSubmission, day, g.subSeq)
	g.subSeq++
	s.name = fmt.Sprintf("%s %s", p.name, ver)
	s.bundles = g.bundles(p, day)
	for _, b := range s.bundles {
		for _, c := range b.codes {
			if !containsString(p.signatures, c) {
				p.signatures = append(p.signatures, c)
			}
		}
	}
	s.pkgURL = fmt.Sprintf("https://dl.%s.example/drivers/%s.cab", p.domain, s.id)
	s.sha = fmt.Sprintf("%016x%016x%016x%016x", r.next(), r.next(), r.next(), r.next())
	s.size = int64(kinds[p.kind].sizeMB * r.lognormal(0, 0.6) * (1 << 20))
	if s.size < 20000 {
		s.size = 20000 + int64(r.intn(1000))
	}

	// Two-part IDs go on a single CHID-targeted label of the submission.
	twoPart := len(ts) == 1 && ts[0].oem != nil && (kinds[p.kind].bus == busPCI || kinds[p.kind].bus == busHDA) &&
		p.kind != kDisplay && !p.legacy && p.kind != kExtension && r.chance(0.012)
	for _, t := range ts {
		hw := t.hwids
		if twoPart {
			hw = twoPartIDs(p)
		}
		s.hwids = append(s.hwids, hw...)
		s.labels = append(s.labels, g.labelsFor(p, s, t, hw, twoPart)...)
		p.published[t] = true
	}
	return s
}

func targetIndex(p *product, t *target) int {
	for i, x := range p.targets {
		if x == t {
			return i
		}
	}
	return -1
}

func twoPartIDs(p *product) []hwid {
	var out []hwid
	for i, c := range p.chips {
		if kinds[p.kind].bus == busHDA {
			out = append(out, hwid{fmt.Sprintf(`hdaudio\func_01&ven_%s&dev_%s`, strings.ToLower(p.vendor.pci), strings.ToLower(c.dev)), i})
		} else {
			out = append(out, hwid{fmt.Sprintf(`pci\ven_%s&dev_%s`, strings.ToLower(p.vendor.pci), strings.ToLower(c.dev)), i})
		}
	}
	return out
}

// bundles returns the bundles of a submission on day and the OS codes their INFs list.
func (g *labelGen) bundles(p *product, day int) []bundle {
	r := g.r
	if p.legacy {
		return []bundle{{id: "amd64", codes: legacySets[r.intn(len(legacySets))]}}
	}
	pick := func(rels []release, from string, prefix string) []string {
		var avail []string
		started := false
		for _, rel := range rels {
			if rel.code == from || (!started && releaseAfter(rel.code, from)) {
				started = true
			}
			if started && rel.since <= day+30 {
				avail = append(avail, rel.code)
			}
		}
		var out []string
		for i, c := range avail {
			if i == 0 || i == len(avail)-1 || r.chance(0.5) {
				out = append(out, "WINDOWS_v100_"+prefix+c+"_FULL")
			}
		}
		return out
	}
	from := x64Releases[p.start].code
	// One bundle whose INF lists every architecture it supports, as a universal INF does.
	b := bundle{id: "amd64", codes: pick(x64Releases, from, "X64_")}
	if len(b.codes) == 0 {
		b.codes = []string{"WINDOWS_v100_X64_" + from + "_FULL"}
	}
	if p.server {
		b.codes = append(b.codes, pick(serverReleases, from, "SERVER_X64_")...)
	}
	if p.arm64 {
		b.codes = append(b.codes, pick(arm64Releases, from, "ARM64_")...)
	}
	if p.x86 {
		b.codes = append(b.codes, pick(x86Releases, from, "")...)
	}
	return []bundle{b}
}

// releaseAfter reports whether release code a comes after b in the OS table.
func releaseAfter(a, b string) bool {
	t := ostable.Default()
	sa, _ := t.ReleaseSlot(a)
	sb, _ := t.ReleaseSlot(b)
	return sa > sb
}

// infFor returns the INF that lists a chip.
func infFor(p *product, chipIdx int) string {
	if len(p.infNames) == 1 {
		return p.infNames[0]
	}
	if chipIdx < len(p.chips)/2 {
		return p.infNames[0]
	}
	return p.infNames[1]
}

// labelsFor makes the label (or, for a share, the share and the receiver's label) of one
// target of a submission.
func (g *labelGen) labelsFor(p *product, s *submission, t *target, hw []hwid, twoPart bool) []*label {
	r := g.r
	l := g.newLabel(p, s, t, hw)
	if twoPart {
		g.addCHIDs(l, t)
	}
	// A share: the vendor hands the driver to the OEM, who publishes it under its own name.
	if p.vendor != nil && t.oem != nil && !twoPart && !p.legacy && p.harness != "attestation" && r.chance(0.012) && g.labels+2 <= g.opts.Labels {
		share := &label{dest: "anotherPartner", oem: t.oem, receiver: t.oem.seller, enforce: r.chance(0.5),
			name: fmt.Sprintf("Share %s %s with %s", p.name, s.version, t.oem.name)}
		share.id = makeID(nsLabel, s.day, g.labels)
		g.labels++
		share.rows = l.rows
		share.hwidCount = l.hwidCount
		share.author = &author{p.ownerSeller, "shippingLabelOwner"}
		l.id = makeID(nsLabel, s.day+r.between(1, 9), g.labels)
		g.labels++
		l.author = &author{t.oem.seller, "shippingLabelOwner"}
		l.name = fmt.Sprintf("%s %s (%s)", p.name, s.version, t.oem.name)
		l.floor, l.ceiling, l.coEng, l.coEngFloor = "", "", false, 0
		if p.kind == kDisplay {
			share.enforce = false
		}
		if share.enforce && len(l.chids) == 0 {
			g.addCHIDs(l, t)
		}
		g.noteBlock(p, s, l)
		return []*label{share, l}
	}
	l.id = makeID(nsLabel, s.day, g.labels)
	g.labels++
	g.noteBlock(p, s, l)
	return []*label{l}
}

// noteBlock keeps a few labels spread over the tree for blocks.json.
func (g *labelGen) noteBlock(p *product, s *submission, l *label) {
	if len(g.blockAt) == 0 || g.labels < g.blockAt[0] || l.dest != "windowsUpdate" {
		return
	}
	g.blockAt = g.blockAt[1:]
	b := blockSpec{label: l, what: p.name + " " + s.version}
	for _, rw := range l.rows {
		if rw.state == "added" {
			b.hwid = strings.ToUpper(rw.pnp)
			break
		}
	}
	for _, c := range l.chids {
		if c.state == "added" {
			b.chids = append(b.chids, c.id)
		}
	}
	g.blocks = append(g.blocks, b)
}

// newLabel makes a Windows Update label of target t of submission s: its grid and every
// publishing choice.
func (g *labelGen) newLabel(p *product, s *submission, t *target, hw []hwid) *label {
	r := g.r
	l := &label{dest: "windowsUpdate", oem: t.oem, hwidCount: len(hw)}
	l.name = fmt.Sprintf("%s %s", p.name, s.version)
	if t.oem != nil && p.kind != kFirmware && p.kind != kExtension {
		l.name += " for " + t.oem.name
	}

	// The grid: every ID on the lowest code of an OS family, or on all of its codes; the
	// amd64 client family always, the others (server, ARM64, x86) mostly.
	for _, b := range s.bundles {
		for fi, codes := range byFamily(b.codes) {
			if fi > 0 && !r.chance(0.7) {
				continue
			}
			if p.expansion {
				codes = []string{"WINDOWS_v100_X64_TH1_FULL"}
			} else if !r.chance(0.5) {
				codes = codes[:1]
			}
			for _, c := range codes {
				for _, h := range hw {
					l.rows = append(l.rows, row{b.id, infFor(p, h.chip), c, h.s, "added"})
				}
			}
		}
	}
	if r.chance(0.03) && len(l.rows) > 1 {
		for i := 1; i < len(l.rows); i++ {
			if r.chance(0.25) {
				l.rows[i].state = []string{"pendingAdd", "pendingRemove"}[r.intn(2)]
			}
		}
	}

	// Delivery.
	x := r.float()
	switch {
	case p.kind == kExtension:
		l.autoApp, l.autoDU = true, r.chance(0.3)
	case p.kind == kFirmware && x < 0.9:
		l.autoApp = true
	case x < 0.77:
		l.autoApp, l.autoDU = true, r.chance(0.2)
	case x < 0.94:
		l.manual = true
	default:
		l.autoDU = true
	}
	l.win10s = r.chance(0.25)
	l.ui = r.chance(0.1)
	if l.ui {
		l.win10s = false
	}
	l.reboot = r.chance(0.2)
	l.unreleased = r.chance(0.05)

	// Dates.
	goLiveDay := min(s.day+r.between(4, 30), lastGoLive)
	l.goLive = int64(goLiveDay)*86400 + int64([]int{0, 0, 0, 8, 16, 17}[r.intn(6)])*3600
	if l.autoApp || l.autoDU || r.chance(0.4) {
		start := int64(goLiveDay-r.between(8, 25))*86400 + 3600*int64(r.intn(24))
		f := &flight{channels: channelSets[r.intn(len(channelSets))], start: start}
		f.approved = min(start+int64(r.between(3, 10))*86400, l.goLive)
		if goLiveDay >= epochDay-25 && r.chance(0.4) {
			f.approved = int64(epochDay+r.between(2, 20)) * 86400 // still in flight
		}
		l.flight = f
	}
	if l.autoApp && r.chance(0.15) {
		l.rollout = newRollout(r, l.goLive)
	}
	if r.chance(0.02) {
		at := l.goLive + int64(r.between(2, 90))*86400 + int64(r.intn(86400))
		if at < int64(epochDay)*86400 {
			l.cancelled = &cancel{at: at, rollback: r.chance(0.5), reason: cancelReasons[r.intn(len(cancelReasons))]}
		}
	}

	// Who published it.
	switch x := r.float(); {
	case x < 0.7:
		l.author = &author{p.ownerSeller, "shippingLabelOwner"}
	case x < 0.85:
		l.author = &author{p.ownerSeller, "administrator"}
	case x < 0.9:
		l.author = &author{p.ownerSeller, "shippingLabelPromoter"}
	case x < 0.95:
		l.author = &author{p.ownerSeller, []string{"developer", "other"}[r.intn(2)]}
	}

	// Targeting beyond the grid.
	if p.kind == kFirmware {
		g.addCHIDs(l, t)
	} else if t.oem != nil && p.kind != kDisplay && !p.legacy && r.chance(0.02) {
		g.addCHIDs(l, t)
	}
	if p.harness == "attestation" || r.chance(0.02) {
		l.audiences = []string{[]string{testKeyAudience, coDevAudience, testKeyAudience, previewAudience}[r.intn(4)]}
	}
	if p.expansion && r.chance(0.7) {
		l.floor = []string{"RS1", "RS3", "RS4", "RS5"}[r.intn(4)]
	}
	if !p.legacy && !p.expansion {
		g.floorAndCeiling(p, l)
	}
	if p.vendor != nil && g.coEng[p.ownerSeller] && l.floor == "" && l.ceiling == "" && l.rollout == nil && r.chance(0.01) {
		l.coEng = true
		start := int64(epochDay-r.between(5, 50)) * 86400
		l.flight = &flight{channels: []string{"Canary", "Dev"}, start: start, approved: start + 7*86400}
		if r.chance(0.5) {
			l.coEngFloor = 27000 + r.intn(900)
		}
	}
	if (l.floor != "" || l.ceiling != "" || l.coEngFloor != 0) && l.author != nil {
		switch l.author.role {
		case "developer", "other":
			l.author.role = "shippingLabelOwner"
		}
	}
	return l
}

var (
	channelSets   = [][]string{{"Dev", "Beta"}, {"Beta"}, {"ReleasePreview"}, {"Beta", "ReleasePreview"}, {"Canary", "Dev", "Beta", "ReleasePreview"}}
	cancelReasons = []string{"PnP errors", "Crash spike (bugcheck 0x9F)", "Yellow bang after install", "Partner request", "Telemetry regression", "Wrong hardware targeted"}
)

// byFamily splits OS codes (in release order within each family) by OS family, in order
// of first appearance.
func byFamily(codes []string) [][]string {
	var out [][]string
	var fams []ostable.Family
	t := ostable.Default()
	for _, c := range codes {
		oc, _ := t.LookupOSCode(c)
		i := 0
		for i < len(fams) && fams[i] != oc.Family {
			i++
		}
		if i == len(fams) {
			fams = append(fams, oc.Family)
			out = append(out, nil)
		}
		out[i] = append(out[i], c)
	}
	return out
}

func newRollout(r *rng, goLive int64) *rollout {
	plans := [][]int{{100, 1000, 5000, 10000}, {50, 500, 2500, 10000}, {500, 10000}, {1000, 5000}, {100, 1000, 2500, 5000, 10000}, {250, 2500, 10000}}
	plan := plans[r.intn(len(plans))]
	ro := &rollout{paused: r.chance(0.1)}
	at := goLive
	for _, bp := range plan {
		ro.stages = append(ro.stages, stage{at: at, bp: bp})
		at += int64(r.between(2, 8)) * 86400
	}
	return ro
}

// addCHIDs targets the label at its models' CHIDs: each model's HardwareID-4 or -5, or the
// family's HardwareID-11.
func (g *labelGen) addCHIDs(l *label, t *target) {
	r := g.r
	seen := map[string]bool{}
	for _, m := range t.models {
		level := []int{4, 5, 5, 11}[r.intn(4)]
		for level == 4 && m.mask&(1<<4) == 0 {
			level = 5
		}
		id := m.ids[level].String()
		if !seen[id] {
			seen[id] = true
			l.chids = append(l.chids, labelCHID{id, "added"})
		}
	}
	if len(l.chids) > 1 && r.chance(0.05) {
		l.chids[len(l.chids)-1].state = []string{"pendingAdd", "pendingRemove"}[r.intn(2)]
	}
}

// floorAndCeiling gives a few labels an OS floor above their lowest row, and a few of the
// partners with ceiling access a ceiling inside the rows' range.
func (g *labelGen) floorAndCeiling(p *product, l *label) {
	r := g.r
	lo, hi := ostable.NoSlot, ostable.Slot(0)
	for _, rw := range l.rows {
		if rw.state != "added" {
			continue
		}
		c, ok := g.os.LookupOSCode(rw.os)
		if !ok || c.Legacy {
			continue
		}
		if lo == ostable.NoSlot || c.Slot < lo {
			lo = c.Slot
		}
		if c.Slot > hi {
			hi = c.Slot
		}
	}
	if lo == ostable.NoSlot {
		return
	}
	publisher := p.ownerSeller
	ceil := ostable.NoSlot
	if g.ceilingAccess[publisher] && hi > lo && r.chance(0.04) {
		var cands []string
		for _, c := range floorCodes {
			if s, _ := g.os.ReleaseSlot(c); s >= lo && s < hi {
				cands = append(cands, c)
			}
		}
		if len(cands) > 0 {
			l.ceiling = cands[r.intn(len(cands))]
			ceil, _ = g.os.ReleaseSlot(l.ceiling)
		}
	}
	if r.chance(0.03) {
		var cands []string
		for _, c := range floorCodes {
			if s, _ := g.os.ReleaseSlot(c); s > lo && (ceil == ostable.NoSlot || s <= ceil) {
				cands = append(cands, c)
			}
		}
		if len(cands) > 0 {
			l.floor = cands[r.intn(len(cands))]
		}
	}
}

// ---- catalog-wide files ----

type namedFile struct {
	name string
	data []byte
}

func (g *labelGen) catalogFiles() []namedFile {
	w := &jsonWriter{}
	indent := !g.opts.Compact
	var out []namedFile

	w.reset(indent)
	w.beginObject()
	w.strField("name", fmt.Sprintf("bench-%d-seed%d", g.opts.Labels, g.opts.Seed))
	w.strField("expiresAfter", "168h")
	w.endObject()
	out = append(out, namedFile{"catalog.json", append([]byte(nil), w.finish()...)})

	w.reset(indent)
	w.beginArray()
	for i, v := range g.vendors {
		w.beginObject()
		w.strField("sellerId", v.seller)
		w.strField("name", v.name)
		w.boolField("coEngineering", g.coEng[v.seller])
		w.boolField("ceilingAccess", g.ceilingAccess[v.seller])
		if i%2 == 1 {
			w.strings("hwidVendors", v.tokens())
		}
		w.endObject()
	}
	for _, o := range g.oems {
		w.beginObject()
		w.strField("sellerId", o.seller)
		w.strField("name", o.name)
		w.boolField("coEngineering", false)
		w.boolField("ceilingAccess", g.ceilingAccess[o.seller])
		if g.chidRelations[o.seller] {
			w.strings("chidRelationships", oemCHIDs(o))
		}
		w.endObject()
	}
	w.endArray()
	out = append(out, namedFile{"partners.json", append([]byte(nil), w.finish()...)})

	w.reset(indent)
	w.beginArray()
	for _, a := range []struct{ id, name, key, value string }{
		{testKeyAudience, "Test_Registry_Key", "targetRing", "Drivers"},
		{coDevAudience, "CoDev", "audience", "CoDev"},
		{previewAudience, "OEM_Preview", "audience", "OEMPreview"},
	} {
		w.beginObject()
		w.strField("id", a.id)
		w.strField("audienceName", a.name)
		w.name("match")
		w.beginObject()
		w.strField(a.key, a.value)
		w.endObject()
		w.endObject()
	}
	w.endArray()
	out = append(out, namedFile{"audiences.json", append([]byte(nil), w.finish()...)})

	w.reset(indent)
	w.beginArray()
	for i, b := range g.blocks {
		w.beginObject()
		w.strField("id", strconv.Itoa(41235600+i*7))
		w.strField("reason", b.what+": "+blockReasons[i%len(blockReasons)])
		if i != 0 {
			w.strings("labels", []string{b.label.id})
		}
		if (i == 0 || i%2 == 1) && b.hwid != "" {
			w.strings("hardwareIds", []string{b.hwid})
		}
		if len(b.chids) > 0 {
			w.strings("chids", b.chids[:1])
		}
		builds := g.blockBuilds(b.label, i)
		if builds[0] != 0 {
			w.intField("minBuild", int64(builds[0]))
			w.intField("maxBuild", int64(builds[1]))
		}
		w.endObject()
	}
	w.endArray()
	out = append(out, namedFile{"blocks.json", append([]byte(nil), w.finish()...)})
	return out
}

// blockBuilds is the build range of the i-th block: one of a few of recent releases, the
// first from the i-th on that a release the label is offered on meets (a block of builds the
// label never reaches would match nothing: validate's W006), or none.
func (g *labelGen) blockBuilds(l *label, i int) [2]int {
	ranges := [][2]int{{22621, 22631}, {26100, 26200}, {19041, 19045}, {0, 0}}
	for k := 0; k < len(ranges); k++ {
		b := ranges[(i+k)%len(ranges)]
		if b[0] == 0 || g.offeredWithin(l, b[0], b[1]) {
			return b
		}
	}
	return [2]int{}
}

// offeredWithin reports whether some live row of the label is offered on a build in
// [lo, hi]: its release (offered forward) and the label's floor at or below hi's, its
// ceiling at or above lo's. Pre-Windows 10 rows are taken to meet any range.
func (g *labelGen) offeredWithin(l *label, lo, hi int) bool {
	slo, _ := g.os.SlotOf(lo)
	shi, _ := g.os.SlotOf(hi)
	floor, ceil := ostable.Slot(0), g.os.LastSlot()
	if l.floor != "" {
		floor, _ = g.os.ReleaseSlot(l.floor)
	}
	if l.ceiling != "" {
		ceil, _ = g.os.ReleaseSlot(l.ceiling)
	}
	for _, rw := range l.rows {
		c, ok := g.os.LookupOSCode(rw.os)
		if rw.state != "added" || !ok || c.Retired {
			continue
		}
		if c.Legacy || (max(c.Slot, floor) <= shi && slo <= ceil) {
			return true
		}
	}
	return false
}

var blockReasons = []string{
	"device stops after resume on Windows 11 22H2/23H2, whichever driver is offered",
	"bugcheck 0x133 after install on 24H2",
	"device not detected after update on Windows 10 22H2",
	"yellow bang after install on some systems",
	"boot loop after update on 24H2",
	"battery drain in modern standby",
}

// oemCHIDs lists every CHID an OEM's labels may target (HardwareID-4, -5 and -11 of each
// model), sorted: its chidRelationships in partners.json.
func oemCHIDs(o *oem) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range o.models {
		for _, level := range []int{4, 5, 11} {
			if m.mask&(1<<level) == 0 {
				continue
			}
			if s := m.ids[level].String(); !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}

// abbrev returns the first three letters of a name, lower case, for INF file names.
func abbrev(name string) string {
	var b []byte
	for i := 0; i < len(name) && len(b) < 3; i++ {
		if c := name[i] | 0x20; c >= 'a' && c <= 'z' {
			b = append(b, c)
		}
	}
	return string(b)
}
