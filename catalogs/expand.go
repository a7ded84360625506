package catalogs

import (
	"sort"
	"strings"

	"github.com/driveway/driveway/catalogs/ostable"
)

// expand applies driver expansion (labels.md, "Driver expansion") to every submission of p whose
// owner asked for it: each INF whose [Manufacturer] decorations carry no build number gains
// extended entries on the first Windows 10 release (TH1) for every hardware ID it lists on a
// Windows 10 code (expanding downward) or on a Windows 8.1 code (upward): the amd64 client
// and server codes for an amd64 INF, the x86 client code for an x86 INF. Expansion adds no
// certification; an INF with a build number is skipped and reported (W003).
//
// "Windows 8.1" is the newest era before the first release in the OS table, so a replaced
// table keeps the rule.
func (t *Tree) expand(sink *problemSink, p *Product) {
	first := t.OS.SlotName(t.OS.FirstRelease())
	upward := t.OS.FirstRelease() - 1 // the newest era (WIN81), or NoSlot-like when none
	for _, s := range p.Submissions {
		e := s.Expansion
		if e == nil || s.Metadata == nil {
			continue
		}
		sc := scope{level: scopeSubmission, product: p.ID, submission: s.ID}
		switch {
		case e.Twice:
			sink.add("L030", s.File, "/expansion", sc, "expansion is requested twice; request it once")
			continue
		case p.OwnerSellerID == "":
			sink.add("L030", s.File, "/expansion/requestedBy", sc,
				"product %s names no ownerSellerId, so no one can be shown to own the submission; only the owner can expand", p.ID)
			continue
		case e.RequestedBy != p.OwnerSellerID:
			sink.add("L030", s.File, "/expansion/requestedBy", sc,
				"expansion requested by %s, but submission %s is owned by %s; only the submission owner can expand", e.RequestedBy, s.ID, p.OwnerSellerID)
			continue
		}
		for _, b := range s.Metadata.Bundles {
			for _, inf := range b.INFs {
				if d, ok := decorationWithBuild(inf.TargetOSVersions); ok {
					sink.add("W003", s.MetadataFile, inf.pointer+"/TargetOSVersions", scope{},
						"INF %s is not expanded: its decoration %s carries a build number (partial expansion)", inf.Name, d)
					continue
				}
				t.expandINF(inf, first, upward)
			}
		}
	}
}

// decorationWithBuild returns the first decoration with a build number part:
// NT<arch>.<major>.<minor>.<productType>.<suiteMask>.<build>.
func decorationWithBuild(decorations []string) (string, bool) {
	for _, d := range decorations {
		parts := strings.Split(d, ".")
		if len(parts) >= 6 && strings.TrimSpace(parts[5]) != "" {
			return d, true
		}
	}
	return "", false
}

func (t *Tree) expandINF(inf *INF, first string, upward ostable.Slot) {
	// Sources in slot order, so a hardware ID listed on several codes takes the FeatureScore
	// of the lowest one.
	type source struct {
		code string
		c    ostable.OSCode
	}
	var sources []source
	for _, code := range inf.Codes() {
		c, ok := t.OS.LookupOSCode(code)
		if !ok || c.Retired || (c.Legacy && c.Slot != upward) {
			continue
		}
		sources = append(sources, source{code, c})
	}
	sort.Slice(sources, func(i, j int) bool {
		if sources[i].c.Slot != sources[j].c.Slot {
			return sources[i].c.Slot < sources[j].c.Slot
		}
		return sources[i].code < sources[j].code
	})
	for _, src := range sources {
		ids, entries := inf.entries(src.code) // copied before anything is added
		var targets []ostable.Family
		switch src.c.Family {
		case ostable.AMD64Client, ostable.AMD64Server:
			targets = []ostable.Family{ostable.AMD64Client, ostable.AMD64Server}
		case ostable.X86Client:
			targets = []ostable.Family{ostable.X86Client}
		}
		for _, f := range targets {
			code, ok := t.OS.OSCodeFor(f, first)
			if !ok {
				continue
			}
			for i, h := range ids {
				e := entries[i]
				e.Extended = true
				inf.grid.add(code, h, e) // seal keeps an entry the INF lists itself, or the lowest source's
			}
		}
	}
	inf.grid.seal()
}
