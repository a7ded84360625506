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
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/statement"
	"github.com/driveway/driveway/trust"
)

// generation is one served release. Its fields are immutable after load; refs counts the
// server's reference (while current) and every request's.
type generation struct {
	refs    atomic.Int64
	seq     uint64
	id      string
	created time.Time
	expires time.Time
	engine  *offer.Engine
	shards  []*pooledShard // pool entries held by this generation
	pool    *pool
	info    []byte // the GET /v1/release body
	// freshUntil (Unix ns) is when what this generation serves stops being fresh: the
	// earlier of its release's and its newest timestamp's expiry; 0 before a timestamp was
	// accepted for it. It belongs to the generation, so a swap cannot pair a new release
	// with the previous one's freshness for a moment.
	freshUntil atomic.Int64
	freed      atomic.Bool
	loadTime   time.Duration
	opened     int                    // shards opened (not reused from the pool) by the load
	att        *statement.Attestation // the release statement and package records: a proof per offer
	proofs     *proofCache            // att as the handler answers it, with each label's proof kept
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

// pool holds every open shard by content name, with the number of generations using it. A
// shard found damaged (changed on disk under its mapping) leaves the map at once, so that no
// new generation reuses it, and is closed when the last generation holding it is freed.
type pool struct {
	mu     sync.Mutex
	shards map[string]*pooledShard
	dec    *zstd.Decoder
	budget *index.CacheBudget
	m      *metrics
	closed bool         // the server shut down: close the decoder when the last shard goes
	gens   atomic.Int64 // generations loaded and not yet freed
	// records are the package records (package statement) of the last release loaded, by
	// the content names of its label shards in order: a release with the same label shards
	// (a control-only release: a rollout step, a pause) has the same records and tree, so
	// its swap does not read every label record again.
	records struct {
		key  string
		recs *statement.Records
	}
	recordsMade atomic.Int64 // times records were made from label shards (tests)
}

// labelShardsKey names a release's label shards by content, in shard order.
func labelShardsKey(m *index.Manifest) string {
	names := make([]string, m.Routing.LabelShards)
	for _, ref := range m.Shards {
		if ref.Kind == index.KindLabel && ref.Shard >= 0 && ref.Shard < len(names) {
			names[ref.Shard] = ref.Name
		}
	}
	return strings.Join(names, " ")
}

// releaseRecords returns the package records of rel: the pool's, when rel's label shards
// are those the pool's records were made from, else made from rel and kept.
func (p *pool) releaseRecords(rel *index.Release) (*statement.Records, error) {
	key := labelShardsKey(rel.Manifest)
	p.mu.Lock()
	if p.records.key == key && p.records.recs != nil {
		recs := p.records.recs
		p.mu.Unlock()
		return recs, nil
	}
	p.mu.Unlock()
	recs, err := ReleaseRecords(rel)
	if err != nil {
		return nil, err
	}
	p.recordsMade.Add(1)
	p.mu.Lock()
	p.records.key, p.records.recs = key, recs
	p.mu.Unlock()
	return recs, nil
}

type pooledShard struct {
	sh   *index.Shard
	ref  index.ShardRef
	refs int
	file fileID // the file as it was when it was verified and mapped
}

// fileID is what identifies a file's content cheaply: a change of any of these means the
// file was written, truncated or replaced since.
type fileID struct {
	path string
	size int64
	mod  time.Time
	ino  uint64
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
func (p *pool) lookup(ref index.ShardRef) (*pooledShard, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.shards[ref.Name]
	if ps == nil {
		return nil, nil
	}
	if ps.ref.Kind != ref.Kind || ps.ref.Shard != ref.Shard || ps.ref.Keys != ref.Keys || ps.ref.Size != ref.Size || ps.ref.SHA256 != ref.SHA256 {
		return nil, fmt.Errorf("serve: shard %s: the manifest says %s shard %d (%d keys, %d bytes), the open shard is %s shard %d (%d keys, %d bytes): %w",
			ref.Name, ref.Kind, ref.Shard, ref.Keys, ref.Size, ps.ref.Kind, ps.ref.Shard, ps.ref.Keys, ps.ref.Size, index.ErrCorrupt)
	}
	ps.refs++
	return ps, nil
}

// add puts a freshly opened shard into the pool with one reference.
func (p *pool) add(ref index.ShardRef, sh *index.Shard, file fileID) *pooledShard {
	ps := &pooledShard{sh: sh, ref: ref, refs: 1, file: file}
	p.mu.Lock()
	p.shards[ref.Name] = ps
	p.mu.Unlock()
	p.m.mapped.inc(0)
	return ps
}

// evict takes a damaged shard out of the map: no new generation reuses it. Its mapping is
// closed when the generations holding it are freed.
func (p *pool) evict(ps *pooledShard) {
	p.mu.Lock()
	if p.shards[ps.ref.Name] == ps {
		delete(p.shards, ps.ref.Name)
	}
	p.mu.Unlock()
}

// put drops one reference on each shard and closes those no generation uses.
func (p *pool) put(held []*pooledShard) {
	var closing []*index.Shard
	p.mu.Lock()
	for _, ps := range held {
		if ps.refs--; ps.refs == 0 {
			if p.shards[ps.ref.Name] == ps {
				delete(p.shards, ps.ref.Name)
			}
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
// dir/shards, as `driveway verify` does, for the timestamp want that names it: the envelope
// is the one want names (length, sha256), index.VerifyEnvelope (signature over the current
// root's targets keys and threshold, manifest, expiry and the bounds on time, the sequence
// want names and newer than the one served), the catalog want names and the edge serves,
// then index.OpenVerifiedShard (size, sha256, structure) for every shard the pool does not
// hold. It returns the generation with one reference (the caller's), or a refusal.
func (s *Server) load(dir string, envelope []byte, want *trust.Timestamp) (*generation, *refusal) {
	start := time.Now()
	if err := want.Names(envelope); err != nil {
		return nil, &refusal{reasonTimestamp, err}
	}
	opts, err := s.verifyOptions(want)
	if err != nil {
		return nil, &refusal{reasonRoot, err}
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
		if errors.Is(err, index.ErrTimeBounds) {
			reason = reasonTime
		}
		return nil, &refusal{reason, err}
	}
	if err := s.checkCatalog(m, want); err != nil {
		return nil, &refusal{reasonCatalog, err}
	}
	g := &generation{seq: m.Sequence, id: index.ReleaseID(envelope), created: m.Created, expires: m.Expires, pool: s.pool}
	rel := &index.Release{Manifest: m, ID: g.id, Envelope: envelope,
		HWID: make([]*index.Shard, m.Routing.HWIDShards), Label: make([]*index.Shard, m.Routing.LabelShards)}
	place := func(ps *pooledShard) {
		if ps.ref.Kind == index.KindHWID {
			rel.HWID[ps.ref.Shard] = ps.sh
		} else {
			rel.Label[ps.ref.Shard] = ps.sh
		}
		g.shards = append(g.shards, ps)
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
		ps, err := s.pool.lookup(ref)
		if err != nil {
			return fail(&refusal{reasonShard, err})
		}
		if ps != nil {
			place(ps)
		} else {
			missing = append(missing, ref)
		}
	}
	// Open and verify the new shards in parallel: the structural walk dominates a swap.
	opened := make([]*index.Shard, len(missing))
	ids := make([]fileID, len(missing))
	errs := make([]error, len(missing))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(missing)) {
		wg.Go(func() {
			debug.SetPanicOnFault(true) // a shard truncated while its structure is walked
			for {
				i := int(next.Add(1) - 1)
				if i >= len(missing) {
					return
				}
				ids[i], opened[i], errs[i] = openShardSafely(dir, s.own, missing[i], opts)
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
		g.opened++
		place(s.pool.add(ref, opened[i], ids[i]))
	}
	if first != nil {
		return fail(first)
	}
	if g.att, err = checkStatement(rel, opts, s.pool); err != nil {
		return fail(&refusal{reasonStatement, err})
	}
	g.proofs = newProofCache(g.att)
	logInfo, err := s.checkLog(dir, m) // serve/releaselog.go
	if err != nil {
		return fail(&refusal{reasonLog, err})
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
		Log: logInfo,
	})
	g.info = append(g.info, '\n')
	g.loadTime = time.Since(start)
	g.refs.Store(1)
	return g, nil
}

// checkStatement checks a release's statement as `driveway verify` does: signed with the
// release keys (opts), naming the manifest's catalog, sequence and times, and committing to
// the tree of the package records of the release's label records, recomputed here. It
// returns what the handler adds to every response.
func checkStatement(rel *index.Release, opts *index.VerifyOptions, p *pool) (att *statement.Attestation, err error) {
	defer func() { // a shard truncated under the edge while its records are read
		if r := recover(); r != nil {
			if !isFault(r) {
				panic(r)
			}
			att, err = nil, fmt.Errorf("serve: a fault while reading the label records (a shard changed under the edge): %v: %w", r, index.ErrCorrupt)
		}
	}()
	debug.SetPanicOnFault(true)
	m := rel.Manifest
	if len(m.Statement) == 0 {
		return nil, fmt.Errorf("serve: release %d has no release statement (built by a driveway before statements): PCs could not verify its offers", m.Sequence)
	}
	st, err := statement.Open(m.Statement, opts.Threshold, opts.Keys...)
	if err != nil {
		return nil, fmt.Errorf("serve: release %d: %w", m.Sequence, err)
	}
	recs, err := p.releaseRecords(rel)
	if err != nil {
		return nil, err
	}
	if err := st.Matches(m.Catalog, m.Sequence, m.Created, m.Expires, recs.Tree()); err != nil {
		return nil, fmt.Errorf("serve: release %d: %w", m.Sequence, err)
	}
	return &statement.Attestation{Envelope: m.Statement, Records: recs}, nil
}

// ReleaseRecords makes the package records of every label record of a release's label
// shards (package statement), as the build did; `driveway verify` uses it too.
func ReleaseRecords(rel *index.Release) (*statement.Records, error) {
	var b statement.Builder
	b.Grow(max(rel.Manifest.Counts.Labels, 0))
	for _, sh := range rel.Label {
		err := sh.Scan(func(key, value []byte) error {
			if len(key) != 8 {
				return fmt.Errorf("serve: a label shard key of %d bytes: %w", len(key), index.ErrCorrupt)
			}
			return b.Add(binary.BigEndian.Uint64(key), value)
		})
		if err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// openShard verifies and maps a shard as index.OpenVerifiedShard does, and notes its file's
// identity: the file is stat'ed before it is hashed and after it is mapped, and a change in
// between (a copy or an edit under way) is a refusal, tried again later.
//
// With own (a catalog edge's directory of its own, ending in shards/), the shard is first
// copied there from dir and the copy is what is verified and mapped.
func openShard(dir, own string, ref index.ShardRef, opts *index.VerifyOptions) (fileID, *index.Shard, error) {
	path := filepath.Join(dir, index.ShardsDir, ref.Name)
	if own != "" {
		if err := copyShard(dir, own, ref); err != nil {
			return fileID{}, nil, err
		}
		dir = filepath.Dir(own)
		path = filepath.Join(own, ref.Name)
	}
	before, err := statFile(path)
	if err != nil {
		return fileID{}, nil, err
	}
	sh, err := index.OpenVerifiedShard(dir, ref, opts)
	if err != nil {
		return fileID{}, nil, err
	}
	after, err := statFile(path)
	if err == nil && after != before {
		err = fmt.Errorf("serve: shard %s changed while it was verified (written in place?): %w", path, index.ErrCorrupt)
	}
	if err != nil {
		sh.Close()
		return fileID{}, nil, err
	}
	return after, sh, nil
}

// openShardSafely is openShard with a fault while reading the mapping (the file truncated
// under it) turned into an error.
func openShardSafely(dir, own string, ref index.ShardRef, opts *index.VerifyOptions) (id fileID, sh *index.Shard, err error) {
	defer func() {
		if r := recover(); r != nil {
			if !isFault(r) {
				panic(r)
			}
			id, sh, err = fileID{}, nil, fmt.Errorf("serve: shard %s: a fault while reading it (changed under the edge): %v: %w", ref.Name, r, index.ErrCorrupt)
		}
	}()
	return openShard(dir, own, ref, opts)
}

// statFile identifies a file's content as the file system reports it.
func statFile(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	return fileID{path: path, size: fi.Size(), mod: fi.ModTime(), ino: inode(fi)}, nil
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
	// Log is the transparency log checkpoint the release was proved at (edges with a log
	// key only).
	Log *releaseLogInfo `json:"log,omitempty"`
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
