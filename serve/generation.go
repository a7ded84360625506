package serve

// Generations and the shard pool.
//
// A generation is one verified release as the edge serves it: its engine and the pooled
// shards it reads. The server holds the current generation in an atomic pointer; a request
// acquires it (a reference, taken with a CAS so it can never resurrect a generation whose
// count already reached zero), answers, and releases it. A swap installs the new generation
// and drops the server's reference to the old one; the old one's shards are given back to
// the pool when its last reader releases it, and the pool closes (unmaps) a shard when no
// generation uses it any more. Shards are pooled by content name, so a release that reuses
// shards (a control-only release reuses all of them) opens and verifies only the new ones.

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/offer"
)

// generation is one served release. Its fields are immutable after load; refs counts the
// server's reference (while current) and every request's.
type generation struct {
	refs     atomic.Int64
	seq      uint64
	id       string
	created  time.Time
	expires  time.Time
	engine   *offer.Engine
	shards   []string // pool names held by this generation
	pool     *pool
	info     []byte // the GET /v1/release body
	freed    atomic.Bool
	loadTime time.Duration
	opened   int // shards opened (not reused from the pool) by the load
}

// tryAcquire takes a reference unless the count already reached zero.
func (g *generation) tryAcquire() bool {
	for {
		n := g.refs.Load()
		if n <= 0 {
			return false
		}
		if g.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference; the last one gives the shards back to the pool.
func (g *generation) release() {
	if g.refs.Add(-1) == 0 {
		g.free()
	}
}

func (g *generation) free() {
	if g.freed.CompareAndSwap(false, true) {
		g.pool.put(g.shards)
		g.pool.gens.Add(-1)
	}
}

// pool holds every open shard by content name, with the number of generations using it.
type pool struct {
	mu     sync.Mutex
	shards map[string]*pooledShard
	dec    *zstd.Decoder
	budget *index.CacheBudget
	m      *metrics
	closed bool         // the server shut down: close the decoder when the last shard goes
	gens   atomic.Int64 // generations loaded and not yet freed
}

type pooledShard struct {
	sh   *index.Shard
	ref  index.ShardRef
	refs int
}

func newPool(cacheBytes int64, m *metrics) (*pool, error) {
	dec, err := index.NewDecoder(0)
	if err != nil {
		return nil, err
	}
	p := &pool{shards: map[string]*pooledShard{}, dec: dec, m: m}
	if cacheBytes > 0 {
		p.budget = index.NewCacheBudget(cacheBytes)
	}
	return p, nil
}

// lookup takes a reference on an open shard, if the pool has it. The pooled shard must
// agree with ref (a manifest naming the same content as another kind or number is refused).
func (p *pool) lookup(ref index.ShardRef) (*index.Shard, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.shards[ref.Name]
	if ps == nil {
		return nil, false, nil
	}
	if ps.ref.Kind != ref.Kind || ps.ref.Shard != ref.Shard || ps.ref.Keys != ref.Keys || ps.ref.Size != ref.Size || ps.ref.SHA256 != ref.SHA256 {
		return nil, false, fmt.Errorf("serve: shard %s: the manifest says %s shard %d (%d keys, %d bytes), the open shard is %s shard %d (%d keys, %d bytes): %w",
			ref.Name, ref.Kind, ref.Shard, ref.Keys, ref.Size, ps.ref.Kind, ps.ref.Shard, ps.ref.Keys, ps.ref.Size, index.ErrCorrupt)
	}
	ps.refs++
	return ps.sh, true, nil
}

// add puts a freshly opened shard into the pool with one reference.
func (p *pool) add(ref index.ShardRef, sh *index.Shard) {
	p.mu.Lock()
	p.shards[ref.Name] = &pooledShard{sh: sh, ref: ref, refs: 1}
	p.mu.Unlock()
	p.m.mapped.inc(0)
}

// put drops one reference on each named shard and closes those no generation uses.
func (p *pool) put(names []string) {
	var closing []*index.Shard
	p.mu.Lock()
	for _, n := range names {
		ps := p.shards[n]
		if ps == nil {
			continue
		}
		if ps.refs--; ps.refs == 0 {
			delete(p.shards, n)
			closing = append(closing, ps.sh)
		}
	}
	closeDec := p.closed && len(p.shards) == 0
	p.mu.Unlock()
	for _, sh := range closing {
		sh.Close()
		p.m.unmapped.inc(0)
	}
	if closeDec {
		p.closeDecoder()
	}
}

// has reports whether a shard is open.
func (p *pool) has(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.shards[name] != nil
}

// open returns the number of open shards.
func (p *pool) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.shards)
}

// shutdown marks the pool closed: the decoder is closed once the last shard is.
func (p *pool) shutdown() {
	p.mu.Lock()
	p.closed = true
	empty := len(p.shards) == 0
	p.mu.Unlock()
	if empty {
		p.closeDecoder()
	}
}

func (p *pool) closeDecoder() {
	p.mu.Lock()
	dec := p.dec
	p.dec = nil
	p.mu.Unlock()
	if dec != nil {
		dec.Close()
	}
}

// refusal is a release that did not verify: why (a metric reason) and the error.
type refusal struct {
	reason string
	err    error
}

func (r *refusal) Error() string { return r.err.Error() }

// load verifies the release of envelope, whose shards not already pooled are in
// dir/shards, exactly as `driveway verify` does: index.VerifyEnvelope (signature over the
// configured keys and threshold, manifest, expiry, sequence after the one served), then
// index.OpenVerifiedShard (size, sha256, structure) for every shard the pool does not hold.
// It returns the generation with one reference (the caller's), or a refusal.
func (s *Server) load(dir string, envelope []byte) (*generation, *refusal) {
	start := time.Now()
	opts := &index.VerifyOptions{
		Keys:      s.cfg.Keys,
		Threshold: s.cfg.Threshold,
		Now:       s.cfg.Clock().Add(-s.cfg.StaleOK),
		After:     s.servedSeq(),
		Cache:     s.pool.budget,
		Decoder:   s.pool.dec,
	}
	reason := ""
	m, err := index.VerifyEnvelope(envelope, opts, func(st index.Step) {
		if st.Err != nil && reason == "" {
			reason = stepReason(st.What)
		}
	})
	if err != nil {
		if reason == "" {
			reason = reasonManifest
		}
		return nil, &refusal{reason, err}
	}
	g := &generation{seq: m.Sequence, id: index.ReleaseID(envelope), created: m.Created, expires: m.Expires, pool: s.pool}
	rel := &index.Release{Manifest: m, ID: g.id, Envelope: envelope,
		HWID: make([]*index.Shard, m.Routing.HWIDShards), Label: make([]*index.Shard, m.Routing.LabelShards)}
	place := func(ref index.ShardRef, sh *index.Shard) {
		if ref.Kind == index.KindHWID {
			rel.HWID[ref.Shard] = sh
		} else {
			rel.Label[ref.Shard] = sh
		}
		g.shards = append(g.shards, ref.Name)
	}
	s.pool.gens.Add(1)
	fail := func(r *refusal) (*generation, *refusal) {
		g.free() // gives back the shards taken so far
		return nil, r
	}
	var missing []index.ShardRef
	names := make(map[string]bool, len(m.Shards))
	for _, ref := range m.Shards {
		if names[ref.Name] { // a shard's header holds its kind and number: no two entries share content
			return fail(&refusal{reasonManifest, fmt.Errorf("serve: release %d names shard %s twice", m.Sequence, ref.Name)})
		}
		names[ref.Name] = true
		sh, ok, err := s.pool.lookup(ref)
		if err != nil {
			return fail(&refusal{reasonShard, err})
		}
		if ok {
			place(ref, sh)
		} else {
			missing = append(missing, ref)
		}
	}
	// Open and verify the new shards in parallel: the structural walk dominates a swap.
	opened := make([]*index.Shard, len(missing))
	errs := make([]error, len(missing))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(missing)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(missing) {
					return
				}
				opened[i], errs[i] = index.OpenVerifiedShard(dir, missing[i], opts)
			}
		})
	}
	wg.Wait()
	var first *refusal
	for i, ref := range missing {
		if errs[i] != nil {
			if first == nil {
				r := reasonShard
				if !isCorrupt(errs[i]) {
					r = reasonIO
				}
				first = &refusal{r, errs[i]}
			}
			continue
		}
		s.pool.add(ref, opened[i])
		g.opened++
		place(ref, opened[i])
	}
	if first != nil {
		return fail(first)
	}
	src, err := offer.SourceOf(rel)
	if err != nil {
		return fail(&refusal{reasonManifest, err})
	}
	if g.engine, err = offer.NewEngine(src); err != nil {
		return fail(&refusal{reasonManifest, err})
	}
	g.info, _ = json.Marshal(releaseInfo{
		Sequence: m.Sequence, ID: g.id, Catalog: m.Catalog, Created: m.Created.UTC(), Expires: m.Expires.UTC(),
		Shards: len(m.Shards), Labels: m.Counts.Labels, Rows: m.Counts.Rows, HWIDs: m.Counts.HWIDs, Keys: m.Counts.Keys,
	})
	g.info = append(g.info, '\n')
	g.loadTime = time.Since(start)
	g.refs.Store(1)
	return g, nil
}

// releaseInfo is the body of GET /v1/release.
type releaseInfo struct {
	Sequence uint64    `json:"sequence"`
	ID       string    `json:"id"`
	Catalog  string    `json:"catalog"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
	Shards   int       `json:"shards"`
	Labels   int       `json:"labels"`
	Rows     int       `json:"rows"`
	HWIDs    int       `json:"hwids"`
	Keys     int       `json:"keys"`
}

func isCorrupt(err error) bool { return errors.Is(err, index.ErrCorrupt) }

// stepReason maps a failing step of index.VerifyEnvelope to a refusal reason.
func stepReason(what string) string {
	switch {
	case strings.HasPrefix(what, "signature"):
		return reasonSignature
	case strings.HasPrefix(what, "expiry"):
		return reasonExpired
	case strings.HasPrefix(what, "sequence"):
		return reasonRollback
	default:
		return reasonManifest
	}
}

// acquire returns the current generation with a reference, or nil when none is loaded.
func (s *Server) acquire() *generation {
	for {
		g := s.cur.Load()
		if g == nil {
			return nil
		}
		if g.tryAcquire() {
			return g
		}
		// Lost a race with a swap: g was replaced and released; load the new one.
	}
}

// swap makes g current and drops the server's reference to the previous generation.
func (s *Server) swap(g *generation) {
	old := s.cur.Swap(g)
	if old != nil {
		old.release()
	}
	s.m.swaps.inc(0)
}

// servedSeq is the sequence served now (0: none).
func (s *Server) servedSeq() uint64 {
	if g := s.cur.Load(); g != nil {
		return g.seq
	}
	return 0
}
