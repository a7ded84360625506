// Package offer is the offer procedure of spec/offers.md (for users docs/offers.md): given
// a release, a PC's offer request and the time, it answers what Windows Update would offer.
// The edge runs it for every POST /v1/offers and the CLI's `driveway offer` runs the same
// code, so both print the same bytes for the same release, request and time.
//
// The pieces, in request order: a [Decoder] turns the body into a [Request] (hand-written,
// allocation-free, with a precise [Error] for anything malformed); [Engine.Decide] runs the
// decision procedure into a reusable [Result]; [AppendResponse] encodes it. Time comes only
// from the caller: the procedure never reads a clock.
//
// An Engine is built once per release ([NewEngine]) and is safe for concurrent use; a
// Result and a Decoder belong to one request at a time (pool them).
package offer

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/catalogs/ostable"
	"github.com/driveway/driveway/index"
)

// Source is a release as the procedure reads it: its OS table, its shards, its control
// table and its identity. index.Release provides one.
type Source struct {
	OS          *ostable.Table
	HWIDShards  []*index.Shard // routed by index.Route(normalised HWID)
	LabelShards []*index.Shard // routed by index.Route(compiled.LabelKey(id))
	Control     compiled.Control
	Sequence    uint64
	ID          string // "sha256:…" of the signed manifest
}

// Engine answers offer requests from one release. It is safe for concurrent use; besides its
// fixed tables it keeps a bounded cache of parsed label records.
type Engine struct {
	src      Source
	control  map[uint64]*labelControl
	blocks   []block
	byLabel  map[uint64][]int // blocks naming a label
	global   []int            // blocks naming no label
	audience []audience
	labels   []atomic.Pointer[labelEntry]  // direct-mapped label cache, 2^labelCacheBits slots
	smbios   []atomic.Pointer[smbiosEntry] // direct-mapped CHID cache, 2^smbiosCacheBits slots
}

// smbiosCacheBits sizes the cache of CHIDs computed from SMBIOS fields: PCs of one model send
// the same fields, and fifteen SHA-1s cost more than the rest of a small request.
const smbiosCacheBits = 12

// smbiosEntry is the CHIDs of one set of SMBIOS fields. key holds the fields exactly, so a hit
// is a byte-for-byte match, never a hash coincidence.
type smbiosEntry struct {
	key  []byte
	ids  [chid.NumLevels]chid.ID
	mask uint16
}

// smbiosKey appends the fields of a request, each with its length, to dst.
func smbiosKey(dst []byte, f *[chid.NumFields][]byte) []byte {
	for _, v := range f {
		dst = append(dst, byte(len(v)), byte(len(v)>>8))
		dst = append(dst, v...)
	}
	return dst
}

// computeCHIDs fills res's device CHIDs from SMBIOS fields, through the cache.
func (e *Engine) computeCHIDs(f *[chid.NumFields][]byte, res *Result) {
	res.smbiosKey = smbiosKey(res.smbiosKey[:0], f)
	h := index.Hash(res.smbiosKey)
	slot := &e.smbios[h>>(64-smbiosCacheBits)]
	if c := slot.Load(); c != nil && string(c.key) == string(res.smbiosKey) {
		res.devIDs, res.devMask = c.ids, c.mask
		return
	}
	res.devMask = res.chidH.Compute(f, &res.devIDs)
	slot.Store(&smbiosEntry{key: append([]byte(nil), res.smbiosKey...), ids: res.devIDs, mask: res.devMask})
}

// labelCacheBits sizes the label cache: 2^16 slots in sets of two, a few MiB at most. A miss
// costs one record lookup.
const labelCacheBits = 16

// labelEntry is a label as the procedure uses it, parsed once per Engine: the record (its byte
// fields alias the release, so an entry lives no longer than the Engine), its INF table, its
// control entry and the blocks that name it.
type labelEntry struct {
	id     uint64
	ok     bool // the record was found and parses
	rec    compiled.Label
	infs   []compiled.INF
	ctl    *labelControl
	blocks []int
}

// inf returns INF i of the label's table.
func (l *labelEntry) inf(i int) (*compiled.INF, bool) {
	if i < 0 || i >= len(l.infs) {
		return nil, false
	}
	return &l.infs[i], true
}

// label returns the entry of a label id: from the cache, or looked up and parsed (which
// allocates) and cached. The cache is two-way set-associative: a label may live in either
// slot of its set, so two hot labels that hash alike do not evict each other.
func (e *Engine) label(id uint64) *labelEntry {
	set := (id * 0x9E3779B97F4A7C15) >> (64 - labelCacheBits) &^ 1
	a, b := &e.labels[set], &e.labels[set+1]
	if l := a.Load(); l != nil && l.id == id {
		return l
	}
	if l := b.Load(); l != nil && l.id == id {
		return l
	}
	slot := a
	if a.Load() != nil && (b.Load() == nil || id&1 == 1) {
		slot = b // fill the empty way; when both are full, the id picks which to replace
	}
	l := &labelEntry{id: id, ctl: e.control[id], blocks: e.byLabel[id]}
	if l.rec, l.ok = e.labelRecord(id); l.ok {
		l.infs = make([]compiled.INF, l.rec.NumINFs())
		for i := range l.infs {
			if l.infs[i], l.ok = l.rec.INF(i); !l.ok {
				break
			}
		}
	}
	slot.Store(l)
	return l
}

type labelControl struct {
	flight    *compiled.Flight
	channels  Channel
	rollout   *compiled.Rollout
	cancelled *compiled.Cancelled
	clusters  []clusterStage // the rollout's first ring (control table version 2)
}

// clusterStage is a rollout's threshold for one targeting cluster (compiled.ClusterStage).
type clusterStage struct {
	chid     chid.ID
	min, max uint32
	hwid     string // normalised; "" any
	bp       int
}

// ringPercent is the threshold (basis points) of a device in a rollout at percent p > 0:
// the largest of p and the percents of the clusters it is in (its CHIDs at any level, its
// build, the hardware ID the candidate matched).
func (lc *labelControl) ringPercent(p int, dev *Device, ident uint16, build uint32, res *Result) int {
	for i := range lc.clusters {
		cl := &lc.clusters[i]
		if cl.bp <= p || cl.min != 0 && build < cl.min || cl.max != 0 && build > cl.max {
			continue
		}
		if cl.hwid != "" && string(dev.id(ident)) != cl.hwid {
			continue
		}
		for n := 0; n < chid.NumLevels; n++ {
			if res.devMask&(1<<n) != 0 && res.devIDs[n] == cl.chid {
				p = cl.bp
				break
			}
		}
	}
	return p
}

type block struct {
	id       string
	hwids    map[string]bool
	hwidLens lengthSet // the lengths of hwids: most device IDs are ruled out without hashing
	chids    []chid.ID
	min, max uint32
}

// lengthSet is a set of string lengths; lengths from 255 up share one member.
type lengthSet [4]uint64

func (s *lengthSet) add(n int)      { n = min(n, 255); s[n>>6] |= 1 << (n & 63) }
func (s *lengthSet) has(n int) bool { n = min(n, 255); return s[n>>6]&(1<<(n&63)) != 0 }

type audience struct {
	id         chid.ID
	targetRing string
	name       string
}

// NewEngine prepares a release's control table for lookups. It fails on a control table
// that does not parse (a release that verified never has one).
func NewEngine(src Source) (*Engine, error) {
	if src.OS == nil || len(src.HWIDShards) == 0 || len(src.LabelShards) == 0 {
		return nil, fmt.Errorf("offer: a release needs an OS table and shards")
	}
	e := &Engine{src: src, control: map[uint64]*labelControl{}, byLabel: map[uint64][]int{},
		labels: make([]atomic.Pointer[labelEntry], 1<<labelCacheBits), smbios: make([]atomic.Pointer[smbiosEntry], 1<<smbiosCacheBits)}
	if err := src.Control.CheckVersion(); err != nil {
		return nil, fmt.Errorf("offer: %w", err)
	}
	for i := range src.Control.Labels {
		lc := &src.Control.Labels[i]
		id, ok := parseID(lc.Label)
		if !ok {
			return nil, fmt.Errorf("offer: control table: label %q is not an id", lc.Label)
		}
		c := &labelControl{flight: lc.Flight, rollout: lc.Rollout, cancelled: lc.Cancelled}
		if lc.Rollout != nil {
			for _, cs := range lc.Rollout.Clusters {
				g, err := chid.Parse(cs.CHID)
				if err != nil || cs.BasisPoints < 0 || cs.BasisPoints > 10000 || cs.MinBuild < 0 || cs.MaxBuild < 0 {
					return nil, fmt.Errorf("offer: control table: label %s: cluster %q: a CHID, builds of 0 or more and 0–10000 basis points are needed", lc.Label, cs.CHID)
				}
				c.clusters = append(c.clusters, clusterStage{chid: g, min: uint32(cs.MinBuild), max: uint32(cs.MaxBuild),
					hwid: catalogs.NormalizeHWID(cs.HardwareID), bp: cs.BasisPoints})
			}
		}
		if lc.Flight != nil {
			for _, name := range lc.Flight.Channels {
				ch, ok := ParseChannel([]byte(name))
				if !ok {
					return nil, fmt.Errorf("offer: control table: label %s: unknown channel %q", lc.Label, name)
				}
				c.channels |= ch
			}
		}
		e.control[id] = c
	}
	for i, b := range src.Control.Blocks {
		blk := block{id: b.ID, min: uint32(b.MinBuild), max: uint32(b.MaxBuild)}
		if len(b.HardwareIDs) > 0 {
			blk.hwids = map[string]bool{}
			for _, h := range b.HardwareIDs {
				n := catalogs.NormalizeHWID(h)
				blk.hwids[n] = true
				blk.hwidLens.add(len(n))
			}
		}
		for _, s := range b.CHIDs {
			id, err := chid.Parse(s)
			if err != nil {
				return nil, fmt.Errorf("offer: control table: block %s: %v", b.ID, err)
			}
			blk.chids = append(blk.chids, id)
		}
		e.blocks = append(e.blocks, blk)
		if len(b.Labels) == 0 {
			e.global = append(e.global, i)
		}
		for _, l := range b.Labels {
			id, ok := parseID(l)
			if !ok {
				return nil, fmt.Errorf("offer: control table: block %s: label %q is not an id", b.ID, l)
			}
			e.byLabel[id] = append(e.byLabel[id], i)
		}
	}
	for _, a := range src.Control.Audiences {
		id, err := chid.Parse(a.ID)
		if err != nil {
			return nil, fmt.Errorf("offer: control table: audience %q: %v", a.ID, err)
		}
		e.audience = append(e.audience, audience{id: id, targetRing: a.TargetRing, name: a.Audience})
	}
	return e, nil
}

func parseID(s string) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// Release identifies the release answers come from.
func (e *Engine) Release() (sequence uint64, id string) { return e.src.Sequence, e.src.ID }

// OS returns the release's OS table.
func (e *Engine) OS() *ostable.Table { return e.src.OS }

// hwidShard is the shard a hardware ID of hash h (index.Hash) is in.
func (e *Engine) hwidShard(h uint64) *index.Shard {
	return e.src.HWIDShards[index.RouteHash(h, len(e.src.HWIDShards))]
}

// hwidRecord looks up the HWID record of a normalised ID of hash h in its shard s: one probe.
func (e *Engine) hwidRecord(id []byte, h uint64, s *index.Shard) (compiled.HWID, bool) {
	v, ok, err := s.GetHash(id, h)
	if err != nil || !ok {
		return compiled.HWID{}, false
	}
	rec, err := compiled.ParseHWID(v)
	return rec, err == nil
}

// labelRecord looks up a label record.
func (e *Engine) labelRecord(id uint64) (compiled.Label, bool) {
	key := compiled.LabelKey(id)
	h := index.Hash(key[:])
	v, ok, err := e.src.LabelShards[index.RouteHash(h, len(e.src.LabelShards))].GetHash(key[:], h)
	if err != nil || !ok {
		return compiled.Label{}, false
	}
	l, err := compiled.ParseLabel(v)
	return l, err == nil
}

// unix is a time as unix seconds, the resolution of label records.
func unix(t time.Time) int64 { return t.Unix() }

// SourceOf reads what the procedure needs from an opened release: its OS table, shards and
// control table from the manifest.
func SourceOf(r *index.Release) (Source, error) {
	tab, err := ostable.Parse(r.Manifest.OSTable)
	if err != nil {
		return Source{}, fmt.Errorf("offer: release %d: %w", r.Manifest.Sequence, err)
	}
	var control compiled.Control
	if err := json.Unmarshal(r.Manifest.Control, &control); err != nil {
		return Source{}, fmt.Errorf("offer: release %d: control table: %w", r.Manifest.Sequence, err)
	}
	return Source{OS: tab, HWIDShards: r.HWID, LabelShards: r.Label, Control: control, Sequence: r.Manifest.Sequence, ID: r.ID}, nil
}
