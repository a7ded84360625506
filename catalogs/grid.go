package catalogs

import (
	"sort"
	"unique"
)

// intern returns the canonical copy of a string: the many repeated strings of a label tree
// (OS codes, bundle and INF names, hardware IDs listed on several OS codes and labels) are
// kept once.
func intern(s string) string { return unique.Make(s).Value() }

// grid is an INF's PnP grid, compact: the INF's hardware IDs once, and for each OS code the
// entries that name them. A tree of 100,000 labels has millions of (OS code, hardware ID)
// entries; here each costs 8 bytes.
type grid struct {
	hwids []string         // normalised, interned; an entry names one by index
	index map[string]int32 // hwid -> position in hwids, while loading and expanding
	codes []gridCode       // sorted by code once sealed
}

type gridCode struct {
	code    string // interned
	entries []gridEntry
}

// gridEntry is one (OS code, hardware ID) of an INF.
type gridEntry struct {
	hwid     int32
	score    uint8
	extended bool
}

// add appends an entry. The grid must be sealed before lookups; an ID added twice on one code
// keeps its first entry.
func (g *grid) add(code, hwid string, p PnP) {
	if g.index == nil {
		g.index = map[string]int32{}
		for i, h := range g.hwids {
			g.index[h] = int32(i)
		}
	}
	i, ok := g.index[hwid]
	if !ok {
		i = int32(len(g.hwids))
		g.hwids = append(g.hwids, intern(hwid))
		g.index[hwid] = i
	}
	c := g.code(code)
	if c == nil {
		g.codes = append(g.codes, gridCode{code: intern(code)})
		c = &g.codes[len(g.codes)-1]
	}
	c.entries = append(c.entries, gridEntry{hwid: i, score: p.FeatureScore, extended: p.Extended})
}

func (g *grid) code(code string) *gridCode {
	for i := range g.codes {
		if g.codes[i].code == code {
			return &g.codes[i]
		}
	}
	return nil
}

// seal sorts the grid for lookups, keeps the first entry of an ID added twice on a code, and
// drops the loading index.
func (g *grid) seal() {
	sort.Slice(g.codes, func(i, j int) bool { return g.codes[i].code < g.codes[j].code })
	for k := range g.codes {
		es := g.codes[k].entries
		sort.SliceStable(es, func(i, j int) bool { return g.hwids[es[i].hwid] < g.hwids[es[j].hwid] })
		out := es[:0]
		for i, e := range es {
			if i == 0 || e.hwid != es[i-1].hwid {
				out = append(out, e)
			}
		}
		g.codes[k].entries = out
	}
	g.index = nil
}

// Lists reports whether the INF lists an OS code.
func (inf *INF) Lists(code string) bool { return inf.grid.code(code) != nil }

// Entry returns the INF's entry for a normalised hardware ID on an OS code.
func (inf *INF) Entry(code, hwid string) (PnP, bool) {
	c := inf.grid.code(code)
	if c == nil {
		return PnP{}, false
	}
	hwids := inf.grid.hwids
	i := sort.Search(len(c.entries), func(i int) bool { return hwids[c.entries[i].hwid] >= hwid })
	if i == len(c.entries) || hwids[c.entries[i].hwid] != hwid {
		return PnP{}, false
	}
	e := c.entries[i]
	return PnP{FeatureScore: e.score, Extended: e.extended}, true
}

// Codes returns the OS codes the INF lists, sorted.
func (inf *INF) Codes() []string {
	out := make([]string, len(inf.grid.codes))
	for i, c := range inf.grid.codes {
		out[i] = c.code
	}
	return out
}

// entries returns the IDs an OS code lists with their entries (a copy).
func (inf *INF) entries(code string) ([]string, []PnP) {
	c := inf.grid.code(code)
	if c == nil {
		return nil, nil
	}
	ids, ps := make([]string, len(c.entries)), make([]PnP, len(c.entries))
	for i, e := range c.entries {
		ids[i], ps[i] = inf.grid.hwids[e.hwid], PnP{FeatureScore: e.score, Extended: e.extended}
	}
	return ids, ps
}

// HWIDs returns the normalised hardware IDs the INF lists on an OS code, sorted.
func (inf *INF) HWIDs(code string) []string {
	c := inf.grid.code(code)
	if c == nil {
		return nil
	}
	out := make([]string, len(c.entries))
	for i, e := range c.entries {
		out[i] = inf.grid.hwids[e.hwid]
	}
	return out
}
