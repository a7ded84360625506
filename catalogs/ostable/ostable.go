// Package ostable is the OS table: Windows release codes in order with their base builds,
// the OS codes of the hardware dashboard, and the five OS families.
//
// The table is data, not code (spec/os-releases.md; for users docs/labels.md, "The OS
// table"): [Default] is the embedded table and [Parse] reads a replacement, so a new
// Windows release needs no new binary. A release records the table it was built with, and
// the edge maps device builds with that table.
//
// # Slots
//
// Every place a device's build can fall is a [Slot]: first the eras before Windows 10
// (WIN7, WIN8, WIN81: each matches only its own builds), then the Windows 10 and later
// release codes in order (TH1 … GE). Slot numbers index the directories of compiled HWID
// records, so they are part of a release's format: they are recomputed from the table the
// release carries, never assumed.
//
// # File format
//
//	{
//	  "format": "driveway os table 1",
//	  "releases": [ {"code": "TH1", "floor": "TH", "build": 10240, "name": "…"}, … ],   // increasing builds
//	  "families": [ {"name": "amd64/client", "token": "X64", "codes": ["TH1", …]}, … ],  // all five families
//	  "legacy":   [ {"code": "WINDOWS_7_X64", "family": "amd64/client", "era": "WIN7",
//	                 "minBuild": 7600, "maxBuild": 7601}, … ],
//	  "retired":  [ "WINDOWS_XP", … ]                       // accepted in labels, never offered
//	}
//
// Windows 10+ OS codes are WINDOWS_v100_[TOKEN_]CODE_FULL for each release code a family
// lists. Unknown fields are rejected, so a typo cannot silently drop a release.
package ostable

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"sort"
)

// FormatLine is the first field of a table file; a future incompatible format changes it.
const FormatLine = "driveway os table 1"

// Family is an OS family: an (architecture, SKU) pair. A label row matches a device only
// within one family.
type Family uint8

// The five families, in the table's order.
const (
	X86Client Family = iota
	AMD64Client
	ARM64Client
	AMD64Server
	ARM64Server
	NumFamilies
)

var familyNames = [NumFamilies]string{"x86/client", "amd64/client", "arm64/client", "amd64/server", "arm64/server"}

func (f Family) String() string {
	if f < NumFamilies {
		return familyNames[f]
	}
	return fmt.Sprintf("family(%d)", uint8(f))
}

// ParseFamily parses a family name such as "amd64/client".
func ParseFamily(name string) (Family, bool) {
	for i, n := range familyNames {
		if n == name {
			return Family(i), true
		}
	}
	return 0, false
}

// FamilyOf returns the family of a device's architecture and SKU as a request names them
// (arch x86, amd64 or arm64; sku client or server). There are no x86 servers.
func FamilyOf(arch, sku string) (Family, bool) {
	switch {
	case arch == "x86" && sku == "client":
		return X86Client, true
	case arch == "amd64" && sku == "client":
		return AMD64Client, true
	case arch == "arm64" && sku == "client":
		return ARM64Client, true
	case arch == "amd64" && sku == "server":
		return AMD64Server, true
	case arch == "arm64" && sku == "server":
		return ARM64Server, true
	}
	return 0, false
}

// Slot is a position in the table's slot list (see the package doc).
type Slot uint8

// NoSlot is the slot of nothing: a build before Windows 7, or a retired OS code.
const NoSlot Slot = 0xFF

// maxSlots keeps slot numbers below NoSlot.
const maxSlots = 200

// Release is one Windows 10 or later release code.
type Release struct {
	Code  string `json:"code"`
	Floor string `json:"floor,omitempty"` // the flooring value when it differs from Code ("TH" for TH1)
	Build int    `json:"build"`           // base build
	Name  string `json:"name,omitempty"`
}

// OSCode is what the table knows of one dashboard OS code.
type OSCode struct {
	Code    string
	Family  Family
	Slot    Slot // NoSlot when Retired
	Legacy  bool // before Windows 10: matches only its own era, never forward
	Retired bool // accepted in labels, never offered (XP, Vista, 2003, 2008, IA64, ARM RT)
}

type familyJSON struct {
	Name  string   `json:"name"`
	Token string   `json:"token"`
	Codes []string `json:"codes"`
}

type legacyJSON struct {
	Code     string `json:"code"`
	Family   string `json:"family"`
	Era      string `json:"era"`
	MinBuild int    `json:"minBuild"`
	MaxBuild int    `json:"maxBuild"`
}

type tableJSON struct {
	Format   string       `json:"format"`
	Releases []Release    `json:"releases"`
	Families []familyJSON `json:"families"`
	Legacy   []legacyJSON `json:"legacy"`
	Retired  []string     `json:"retired"`
}

type era struct {
	name               string
	minBuild, maxBuild int
}

// Table is a parsed OS table. It is immutable and safe for concurrent use.
type Table struct {
	src      tableJSON
	releases []Release
	eras     []era
	codes    map[string]OSCode
	byFloor  map[string]Slot // release code or floor alias -> slot
	famCodes [NumFamilies]map[Slot]string
}

//go:embed default.json
var defaultJSON []byte

var defaultTable = mustParse(defaultJSON)

func mustParse(b []byte) *Table {
	t, err := Parse(b)
	if err != nil {
		panic("ostable: embedded default table: " + err.Error())
	}
	return t
}

// Default returns the embedded table of spec/os-releases.md.
func Default() *Table { return defaultTable }

// Load reads a table file.
func Load(path string) (*Table, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ostable: %w", err)
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("ostable: %s: %w", path, err)
	}
	return t, nil
}

// Parse reads a table in the format of the package doc and checks it.
func Parse(b []byte) (*Table, error) {
	var src tableJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&src); err != nil {
		return nil, fmt.Errorf("ostable: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("ostable: trailing data after the table")
	}
	if src.Format != FormatLine {
		return nil, fmt.Errorf("ostable: format is %q, want %q", src.Format, FormatLine)
	}
	t := &Table{src: src, codes: map[string]OSCode{}, byFloor: map[string]Slot{}}

	// Eras: the distinct build ranges of the legacy codes, in build order.
	eraOf := map[string]era{}
	for _, l := range src.Legacy {
		if l.Era == "" || l.MinBuild <= 0 || l.MaxBuild < l.MinBuild {
			return nil, fmt.Errorf("ostable: legacy %s: needs an era and 0 < minBuild <= maxBuild", l.Code)
		}
		e, seen := eraOf[l.Era]
		if seen && (e.minBuild != l.MinBuild || e.maxBuild != l.MaxBuild) {
			return nil, fmt.Errorf("ostable: era %s has two build ranges", l.Era)
		}
		if !seen {
			eraOf[l.Era] = era{l.Era, l.MinBuild, l.MaxBuild}
		}
	}
	for _, e := range eraOf {
		t.eras = append(t.eras, e)
	}
	sort.Slice(t.eras, func(i, j int) bool { return t.eras[i].minBuild < t.eras[j].minBuild })
	for i := 1; i < len(t.eras); i++ {
		if t.eras[i].minBuild <= t.eras[i-1].maxBuild {
			return nil, fmt.Errorf("ostable: eras %s and %s overlap", t.eras[i-1].name, t.eras[i].name)
		}
	}

	if len(src.Releases) == 0 {
		return nil, fmt.Errorf("ostable: no releases")
	}
	if len(t.eras)+len(src.Releases) > maxSlots {
		return nil, fmt.Errorf("ostable: more than %d eras and releases", maxSlots)
	}
	if n := len(t.eras); n > 0 && t.eras[n-1].maxBuild >= src.Releases[0].Build {
		return nil, fmt.Errorf("ostable: era %s reaches into release %s", t.eras[n-1].name, src.Releases[0].Code)
	}
	for i, e := range t.eras {
		t.byFloor[e.name] = Slot(i)
	}
	for i, r := range src.Releases {
		if r.Code == "" || r.Build <= 0 {
			return nil, fmt.Errorf("ostable: release %d needs a code and a build", i)
		}
		if i > 0 && r.Build <= src.Releases[i-1].Build {
			return nil, fmt.Errorf("ostable: release %s: builds must increase", r.Code)
		}
		s := Slot(len(t.eras) + i)
		for _, name := range []string{r.Code, r.Floor} {
			if name == "" {
				continue
			}
			if _, dup := t.byFloor[name]; dup {
				return nil, fmt.Errorf("ostable: release code %s named twice", name)
			}
			t.byFloor[name] = s
		}
	}
	t.releases = src.Releases

	if len(src.Families) != int(NumFamilies) {
		return nil, fmt.Errorf("ostable: want the %d families, have %d", NumFamilies, len(src.Families))
	}
	seenFam := [NumFamilies]bool{}
	for _, fj := range src.Families {
		f, ok := ParseFamily(fj.Name)
		if !ok || seenFam[f] {
			return nil, fmt.Errorf("ostable: family %q unknown or twice", fj.Name)
		}
		seenFam[f] = true
		t.famCodes[f] = map[Slot]string{}
		for _, rc := range fj.Codes {
			s, ok := t.byFloor[rc]
			if !ok || int(s) < len(t.eras) || t.releases[int(s)-len(t.eras)].Code != rc {
				return nil, fmt.Errorf("ostable: family %s: %q is not a release code", fj.Name, rc)
			}
			code := "WINDOWS_v100_" + rc + "_FULL"
			if fj.Token != "" {
				code = "WINDOWS_v100_" + fj.Token + "_" + rc + "_FULL"
			}
			if err := t.addCode(OSCode{Code: code, Family: f, Slot: s}); err != nil {
				return nil, err
			}
			t.famCodes[f][s] = code
		}
	}
	for _, l := range src.Legacy {
		f, ok := ParseFamily(l.Family)
		if !ok {
			return nil, fmt.Errorf("ostable: legacy %s: unknown family %q", l.Code, l.Family)
		}
		if err := t.addCode(OSCode{Code: l.Code, Family: f, Slot: t.byFloor[l.Era], Legacy: true}); err != nil {
			return nil, err
		}
	}
	for _, c := range src.Retired {
		if err := t.addCode(OSCode{Code: c, Slot: NoSlot, Legacy: true, Retired: true}); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *Table) addCode(c OSCode) error {
	if c.Code == "" {
		return fmt.Errorf("ostable: empty OS code")
	}
	if _, dup := t.codes[c.Code]; dup {
		return fmt.Errorf("ostable: OS code %s twice", c.Code)
	}
	t.codes[c.Code] = c
	return nil
}

// MarshalJSON returns the table in its file format; Parse of the result gives an equal table.
func (t *Table) MarshalJSON() ([]byte, error) { return json.Marshal(t.src) }

// SlotOf returns the slot of a build: the last release whose base build is <= build (a build
// newer than every release maps to the last one), or the era that contains it. ok is false
// for builds the table does not know (before Windows 7, or between eras).
func (t *Table) SlotOf(build int) (s Slot, ok bool) {
	if build >= t.releases[0].Build {
		i := sort.Search(len(t.releases), func(i int) bool { return t.releases[i].Build > build })
		return Slot(len(t.eras) + i - 1), true
	}
	for i, e := range t.eras {
		if build >= e.minBuild && build <= e.maxBuild {
			return Slot(i), true
		}
	}
	return NoSlot, false
}

// ReleaseSlot returns the slot of a floor or ceiling value: a release code ("RS5") or its
// flooring alias ("TH"). Era names are not floor values.
func (t *Table) ReleaseSlot(code string) (Slot, bool) {
	s, ok := t.byFloor[code]
	if !ok || !t.IsRelease(s) {
		return NoSlot, false
	}
	return s, true
}

// LookupOSCode returns what the table knows of a dashboard OS code.
func (t *Table) LookupOSCode(code string) (OSCode, bool) {
	c, ok := t.codes[code]
	return c, ok
}

// OSCodeFor returns the OS code of a family for a release code ("RS5"), if the family has it.
func (t *Table) OSCodeFor(f Family, release string) (string, bool) {
	s, ok := t.ReleaseSlot(release)
	if !ok || f >= NumFamilies {
		return "", false
	}
	c, ok := t.famCodes[f][s]
	return c, ok
}

// NumSlots is the number of slots: eras and releases.
func (t *Table) NumSlots() int { return len(t.eras) + len(t.releases) }

// FirstRelease is the slot of the first Windows 10 release (TH1 in the default table).
func (t *Table) FirstRelease() Slot { return Slot(len(t.eras)) }

// LastSlot is the slot of the newest release.
func (t *Table) LastSlot() Slot { return Slot(t.NumSlots() - 1) }

// IsRelease reports whether s is a Windows 10 or later release (offered forward) rather
// than an era.
func (t *Table) IsRelease(s Slot) bool { return int(s) >= len(t.eras) && int(s) < t.NumSlots() }

// SlotName is the release code or era name of a slot ("RS5", "WIN7").
func (t *Table) SlotName(s Slot) string {
	switch {
	case int(s) < len(t.eras):
		return t.eras[s].name
	case t.IsRelease(s):
		return t.releases[int(s)-len(t.eras)].Code
	}
	return "none"
}

// NewestBuild is the largest base build in the table (rule L027).
func (t *Table) NewestBuild() int { return t.releases[len(t.releases)-1].Build }

// Releases returns the release codes in order. The slice must not be modified.
func (t *Table) Releases() []Release { return t.releases }
