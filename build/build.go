// Package build compiles a label tree into a catalog release (spec/catalog.md; the format
// for users: docs/release.md): it validates the tree with every rule of labels.md, compiles
// each Windows Update label into a label record and its grid rows into HWID records
// (offered-forward expanded), writes them into content-addressed shards, and publishes a
// signed manifest, atomically.
//
// The same tree, options and Now give byte-identical shards (and, with an Ed25519 key, a
// byte-identical manifest). A rebuild rewrites only shards whose content changed; the others
// keep their names and are not written again, so a change of rollout or flight state alone
// publishes a new manifest over the same shards.
package build

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/ostable"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/releaselog"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/statement"
	"github.com/driveway/driveway/trust"
)

// Defaults.
const (
	DefaultHWIDShards     = 16
	DefaultLabelShards    = 4
	DefaultExpiresAfter   = 168 * time.Hour
	DefaultKeep           = 5
	DefaultMaxDropPercent = 10 // Options.MaxDropPercent
)

// NoDrop, as Options.MaxDropPercent, refuses a release that drops any label of the previous
// release (a zero MaxDropPercent takes the default).
const NoDrop = -1

// Options configure Build. Labels, Out and Signers are required; zero values of the others
// take the defaults.
//
// The guards: a build cannot publish an outage by accident. Compared with the newest release
// already in Out, a release that drops more than MaxDropPercent of that release's labels (by
// label id: a label replaced by another one is dropped), or that holds no label at all (a
// first build too), is refused unless AllowShrink; a release whose catalog name differs from
// that release's is refused unless AllowCatalogChange. A refused build returns a
// *RefusedError and writes nothing.
type Options struct {
	Labels        string
	Out           string
	Signers       []*signing.Signer
	Now           time.Time // the release's creation time (required: the build never reads the clock)
	SkipInvalid   bool      // leave invalid labels out instead of failing
	RequireFlight bool      // L065 instead of W065
	OSTable       *ostable.Table
	HWIDShards    int           // default 16
	LabelShards   int           // default 4
	ExpiresAfter  time.Duration // default catalog.json's expiresAfter, else 168h
	Keep          int           // releases kept; default 5
	BlockRecords  int           // records per shard block; 0: the index default
	Level         int           // zstd level 1..4; 0: the index default
	Workers       int           // shards written in parallel; 0: GOMAXPROCS
	Progress      func(phase string, done, total int)

	AllowShrink        bool    // publish a release that drops more than MaxDropPercent of the previous release's labels, or holds none
	MaxDropPercent     float64 // the share of the previous release's labels a release may drop, in percent; 0: 10; NoDrop: none
	AllowCatalogChange bool    // publish a release whose catalog name differs from the previous release's
	// TimestampValidity is how long the timestamp signed with the release (trust's
	// timestamp.json, which edges require) is valid; default trust.DefaultTimestampValidity.
	// The pipeline re-signs it on a schedule (driveway timestamp).
	TimestampValidity time.Duration
	// Cache, when set, is the build cache's directory (cache.go): a build reuses what an
	// earlier one compiled for every product directory whose files did not change. The
	// result is byte-identical to a build without it.
	Cache string
	// CacheVersion names the build's code in the cache's keys; "": the SHA-256 of the
	// running executable.
	CacheVersion string
	// LogKey, when set, appends the release's statement to the catalog's transparency log
	// (Out/log, package releaselog), starting one if there is none. A catalog that has a log
	// refuses a build without it.
	LogKey *releaselog.Key
}

// Report is what a build did, as `driveway build --report` writes it.
type Report struct {
	OK            bool              `json:"ok"`
	Catalog       string            `json:"catalog"`
	Sequence      uint64            `json:"sequence,omitempty"`
	ReleaseID     string            `json:"releaseId,omitempty"`
	Created       time.Time         `json:"created"`
	Expires       time.Time         `json:"expires,omitzero"`
	Labels        int               `json:"labels"`        // labels in the tree
	LabelsBuilt   int               `json:"labelsBuilt"`   // label records in the release
	LabelsSkipped int               `json:"labelsSkipped"` // invalid labels left out (--skip-invalid)
	Rows          int               `json:"rows"`
	HWIDs         int               `json:"hwids"`
	Keys          int               `json:"keys"`
	ControlLabels int               `json:"controlLabels"` // labels with a control-table entry
	ShardsWritten int               `json:"shardsWritten"`
	ShardsReused  int               `json:"shardsReused"`
	ShardBytes    int64             `json:"shardBytes"`   // size of the release's shards
	BytesWritten  int64             `json:"bytesWritten"` // shard bytes written by this build
	ControlOnly   bool              `json:"controlOnly"`  // every shard was reused: only the manifest is new
	Errors        int               `json:"errors"`
	Warnings      int               `json:"warnings"`
	Rejected      []RejectedLabel   `json:"rejected"`
	Refused       []string          `json:"refused,omitempty"` // why the guards refused the release (nothing was written)
	Problems      catalogs.Problems `json:"-"`
	Removed       []string          `json:"removed"` // files pruned
	// PruneError says why old releases or shards could not be removed after the release was
	// published (the release stands; the next build prunes again).
	PruneError string `json:"pruneError,omitempty"`
	// TimestampNote says why no timestamp was signed with the release: the build's keys do
	// not hold the catalog's timestamp role (run driveway timestamp with its key).
	TimestampNote string `json:"timestampNote,omitempty"`
	// Log is the transparency log's new checkpoint (catalog@size:hash) when the release was
	// logged.
	Log    string       `json:"log,omitempty"`
	Cache  *CacheReport `json:"cache,omitempty"` // what the build took from its cache (Options.Cache)
	Phases []Phase      `json:"phases"`
}

// RejectedLabel is a label an error kept out of the release.
type RejectedLabel struct {
	Label string   `json:"label"`
	Codes []string `json:"codes"`
}

// Phase is the wall time of one phase of a build. "validate" (the rules that span labels
// that give warnings only) runs beside "compile", "compare" and "shards".
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// ErrInvalid is returned when the tree has errors and the build did not skip them.
var ErrInvalid = errors.New("build: the label tree has errors")

// RefusedError is returned when a guard refuses the release (see Options); nothing is
// written then. Each reason is a sentence naming the numbers and the flag that overrides it.
type RefusedError struct {
	Reasons []string
}

func (e *RefusedError) Error() string { return "build: " + strings.Join(e.Reasons, "; ") }

// Build validates, compiles and publishes the tree at opts.Labels into opts.Out. On
// validation errors it returns the report (with the problems) and an error wrapping
// ErrInvalid; nothing is written then.
func Build(ctx context.Context, opts Options) (*Report, error) {
	if opts.Labels == "" || opts.Out == "" || len(opts.Signers) == 0 {
		return nil, fmt.Errorf("build: labels, out and a signing key are required")
	}
	if opts.Now.IsZero() {
		return nil, errors.New("build: Options.Now is zero; pass the release's creation time (the caller's clock)")
	}
	if err := checkSigners(opts.Out, opts.Signers); err != nil {
		return nil, err
	}
	if err := checkLogKey(opts.Out, opts.LogKey); err != nil {
		return nil, err
	}
	opts.Now = opts.Now.UTC().Truncate(time.Second)
	if opts.HWIDShards <= 0 {
		opts.HWIDShards = DefaultHWIDShards
	}
	if opts.LabelShards <= 0 {
		opts.LabelShards = DefaultLabelShards
	}
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	rep := &Report{Created: opts.Now, Rejected: []RejectedLabel{}, Removed: []string{}}
	phase := func(name string, start time.Time) {
		rep.Phases = append(rep.Phases, Phase{name, time.Since(start).Seconds()})
	}
	progress := func(name string, done, total int) {
		if opts.Progress != nil {
			opts.Progress(name, done, total)
		}
	}

	// Read, validate and compile each product directory on its own, or take what a build
	// compiled before from the cache; then the rules that span labels, over the products'
	// summaries (cache.go).
	start := time.Now()
	progress("load", 0, 1)
	tree, probs, dirs, err := catalogs.Open(opts.Labels, &catalogs.LoadOptions{OS: opts.OSTable})
	if err != nil {
		return nil, err
	}
	var cache *productCache
	if opts.Cache != "" {
		if cache, err = openCache(opts, tree); err != nil {
			return nil, err
		}
	}
	vopts := &catalogs.ValidateOptions{RequireFlight: opts.RequireFlight, Now: opts.Now}
	spill, err := newRowSpill(opts.Out, opts.HWIDShards)
	if err != nil {
		return nil, err
	}
	defer spill.remove()
	units, err := buildUnits(ctx, opts, tree, dirs, cache, vopts, spill, progress)
	if err == nil {
		err = decodeSummaries(ctx, opts, tree, units, cache, vopts, spill)
	}
	if cache != nil {
		rep.Cache = cache.finish()
	}
	if err != nil {
		return nil, err
	}
	compiledUnits := make([][]compiledLabel, len(units))
	for i, u := range units {
		tree.Products = append(tree.Products, u.product)
		probs = append(probs, u.probs...)
		compiledUnits[i] = u.labels
	}
	probs = append(probs, tree.CheckReferences()...)
	probs = append(probs, tree.CheckUniqueIDs()...)
	phase("load", start)

	// The rest of the rules that span labels give warnings only: they run beside compile,
	// compare and shards, and every return waits for them (the report lists every problem).
	warned := make(chan catalogs.Problems, 1)
	var validateSeconds float64
	progress("validate", 0, 1)
	go func() {
		start := time.Now() // no progress call: Progress's calls must not overlap
		// The tree's rows are dropped once read: nothing after reads them (the release
		// is assembled from the compiled labels), and they are 200 MB at 100,000 labels.
		wopts := *vopts
		wopts.DropRows = true
		w := tree.WarnAcross(&wopts)
		validateSeconds = time.Since(start).Seconds()
		warned <- w
	}()
	joined := false
	join := func() {
		if joined {
			return
		}
		joined = true
		probs = append(probs, <-warned...)
		probs.Sort()
		rep.Problems = probs
		rep.Warnings = len(probs) - rep.Errors
		rep.Phases = append(rep.Phases, Phase{"validate", validateSeconds})
	}
	defer join()
	rep.Problems = probs
	rep.Errors = probs.Errors()
	rep.Labels = len(tree.Labels())
	rep.Catalog = tree.Settings.Name
	if rep.Catalog == "" {
		rep.Catalog = filepath.Base(filepath.Clean(opts.Labels))
	}
	skip, fatal := tree.Invalid(probs)
	rep.Rejected = rejected(skip)
	rep.LabelsSkipped = len(skip)
	if rep.Errors > 0 && (fatal || !opts.SkipInvalid) {
		why := ""
		if fatal && opts.SkipInvalid {
			why = " (an error in a catalog-wide file cannot be skipped)"
		}
		return rep, fmt.Errorf("%w: %d errors%s", ErrInvalid, rep.Errors, why)
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}

	// Compile.
	start = time.Now()
	progress("compile", 0, 1)
	c, err := assemble(tree, compiledUnits, skip, opts.Now, opts.LabelShards)
	if err != nil {
		return rep, err
	}
	c.spill = spill
	phase("compile", start)
	rep.LabelsBuilt, rep.ControlLabels = c.labels, len(c.control.Labels)

	// The guards, against the newest release in Out, before anything is written.
	start = time.Now()
	progress("compare", 0, 1)
	seqs, err := index.Sequences(opts.Out)
	if err != nil {
		return rep, err
	}
	seq := uint64(1)
	if n := len(seqs); n > 0 {
		seq = seqs[n-1] + 1
	}
	if tree.Settings.MinSequence > seq {
		seq = tree.Settings.MinSequence
	}
	if err := guard(opts, c, rep, seq); err != nil {
		var refused *RefusedError
		if errors.As(err, &refused) {
			rep.Refused = refused.Reasons
		}
		return rep, err
	}
	phase("compare", start)

	// Shards, in parallel; each one is content-addressed.
	start = time.Now()
	refs, err := writeShards(ctx, opts, c, rep, progress)
	if err != nil {
		return rep, err
	}
	phase("shards", start)
	rep.Rows, rep.HWIDs = c.rows, c.hwids
	rep.ControlOnly = rep.ShardsWritten == 0
	join()

	// The manifest, signed, last.
	start = time.Now()
	progress("publish", 0, 1)
	expires := opts.ExpiresAfter
	if expires <= 0 {
		expires = tree.Settings.ExpiresAfter
	}
	if expires <= 0 {
		expires = DefaultExpiresAfter
	}
	if err := checkValidity(expires); err != nil {
		return rep, err
	}
	osJSON, err := json.Marshal(tree.OS)
	if err != nil {
		return rep, err
	}
	controlJSON, err := json.Marshal(c.control)
	if err != nil {
		return rep, err
	}
	m := &index.Manifest{
		Format: index.FormatLine, Catalog: rep.Catalog, Sequence: seq, Created: opts.Now, Expires: opts.Now.Add(expires),
		Routing: index.Routing{Hash: "xxhash64", HWIDShards: opts.HWIDShards, LabelShards: opts.LabelShards},
		Shards:  refs,
		Counts:  index.Counts{Labels: c.labels, Rows: c.rows, HWIDs: c.hwids, Keys: c.labels + c.hwids},
		OSTable: osJSON, Control: controlJSON,
	}
	if m.Statement, err = releaseStatement(c, m, opts.Signers); err != nil {
		return rep, err
	}
	pending, err := prepareLog(opts.Out, m, opts.LogKey)
	if err != nil {
		return rep, err
	}
	env, id, err := index.Publish(opts.Out, m, opts.Signers...)
	if err != nil {
		return rep, err
	}
	rep.ReleaseID = id
	if rep.Log, err = writeLog(pending, m.Sequence); err != nil {
		return rep, err
	}
	if rep.TimestampNote, err = stamp(opts.Out, m, env, opts.TimestampValidity, opts.Signers); err != nil {
		return rep, err
	}
	rep.Sequence, rep.Expires, rep.Keys = seq, m.Expires, m.Counts.Keys
	phase("publish", start)

	start = time.Now()
	progress("prune", 0, 1)
	removed, err := index.Prune(opts.Out, opts.Keep)
	rep.Removed = append(rep.Removed, removed...)
	if err != nil { // the release is published: pruning is housekeeping, not a failure
		rep.PruneError = err.Error()
	}
	phase("prune", start)
	rep.OK = true
	return rep, nil
}

// buildUnits reads, validates and compiles the product directories dirs of the opened tree
// t, in parallel, each from the cache when its files did not change, and spills their grid
// rows; the units are in the order of dirs (decodeSummaries sorts them).
func buildUnits(ctx context.Context, opts Options, t *catalogs.Tree, dirs []string, cache *productCache, vopts *catalogs.ValidateOptions,
	spill *rowSpill, progress func(string, int, int)) ([]*unit, error) {
	fsys := os.DirFS(opts.Labels)
	units := make([]*unit, len(dirs))
	errs := make([]error, len(dirs))
	// More workers than CPUs: much of a cached product's time is the file system's (a
	// directory read and a stat per file), which other workers' CPU work can overlap.
	forEach(ctx, len(dirs), 4*runtime.GOMAXPROCS(0), func(i int) {
		u, err := buildUnit(t, fsys, dirs[i], cache, vopts)
		if err == nil {
			u.seq = i
			err = spill.add(u.seq, u.labels)
		}
		units[i], errs[i] = u, err
	}, func(done int) { progress("load", done, len(dirs)) })
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return units, nil
}

// decodeSummaries decodes each unit's summary into the product the rules that span labels
// read, and sorts the units by product id (the order of Tree.Products). It runs after the
// load, not in each worker: the decoded products are most of what a build keeps while it
// validates, and made among the load's garbage (each product's JSON, parsed and dropped)
// they leave the heap fragmented, every span holding a few survivors (at 100k labels the
// heap in use after the load was 916 MB for 552 MB of live objects; decoded here, 757 MB).
// A cached entry whose summary does not decode passed its checksum, so it was written by a
// faulty build: it is reported as damaged, the rows it spilled are void, and its product is
// built from its files.
func decodeSummaries(ctx context.Context, opts Options, t *catalogs.Tree, units []*unit, cache *productCache, vopts *catalogs.ValidateOptions, spill *rowSpill) error {
	fsys := os.DirFS(opts.Labels)
	errs := make([]error, len(units))
	forEach(ctx, len(units), runtime.GOMAXPROCS(0), func(i int) {
		u := units[i]
		p, probs, err := catalogs.ReadSummary(u.summary)
		if err != nil && u.key != "" {
			cache.ignore(u.key, err)
			spill.voidUnit(u.seq)
			if u, err = buildFromFiles(t, fsys, u.dir, cache, u.key, vopts); err == nil {
				u.seq = len(units) + i
				units[i] = u
				if err = spill.add(u.seq, u.labels); err == nil {
					p, probs, err = catalogs.ReadSummary(u.summary)
				}
			}
		}
		if err != nil {
			errs[i] = fmt.Errorf("build: products/%s: %w", u.dir, err)
			return
		}
		u.product, u.probs, u.summary = p, probs, nil
	}, func(int) {})
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	sort.SliceStable(units, func(i, j int) bool { return catalogs.CompareIDs(units[i].product.ID, units[j].product.ID) < 0 })
	return nil
}

// forEach runs job(i) for i in [0, n) on workers goroutines, and done(k) after each job
// with the count of jobs done so far (the calls of done never overlap); it hands out no
// new job once ctx is done, and returns when the jobs handed out have ended.
func forEach(ctx context.Context, n, workers int, job func(i int), done func(k int)) {
	var mu sync.Mutex
	finished := 0
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				job(i)
				mu.Lock()
				finished++
				done(finished)
				mu.Unlock()
			}
		})
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// buildUnit is one product directory's work, from the cache or from its files. The unit's
// summary is decoded later (decodeSummaries).
func buildUnit(t *catalogs.Tree, fsys fs.FS, dir string, cache *productCache, vopts *catalogs.ValidateOptions) (*unit, error) {
	key := ""
	if cache != nil {
		if k, read, err := cache.key(dir); err == nil { // else the loader reports what cannot be read
			key = k
			if u, ok := cache.get(key); ok {
				u.dir, u.key = dir, key
				return u, nil
			}
			fsys = readFS{fsys, read}
		}
	}
	return buildFromFiles(t, fsys, dir, cache, key, vopts)
}

// buildFromFiles reads, validates and compiles a product directory, and caches the unit
// under key unless key is "".
func buildFromFiles(t *catalogs.Tree, fsys fs.FS, dir string, cache *productCache, key string, vopts *catalogs.ValidateOptions) (*unit, error) {
	p, probs := t.ReadProduct(fsys, dir)
	probs = append(probs, t.ValidateProduct(p, vopts)...)
	u := &unit{dir: dir, summary: catalogs.AppendSummary(nil, p, probs), labels: compileProduct(t, p)}
	if key != "" {
		cache.put(key, u)
	}
	u.summary = slices.Clone(u.summary) // kept until decoded: without AppendSummary's spare capacity
	return u, nil
}

// guard applies the guards of Options to the compiled tree, which would be release seq of
// opts.Out: it returns a *RefusedError, or another error when the previous release cannot be
// read to compare with.
func guard(opts Options, c *compiledTree, rep *Report, seq uint64) error {
	const allowShrink = "; pass --allow-shrink if this is meant"
	var reasons []string
	none := func() {
		reasons = append(reasons, fmt.Sprintf("release %d would hold no labels (%d in the tree, %d left out as invalid)%s",
			seq, rep.Labels, rep.LabelsSkipped, allowShrink))
	}
	_, env, err := index.Latest(opts.Out)
	switch {
	case errors.Is(err, index.ErrNoRelease): // a first build: nothing to shrink from or rename
		if c.labels == 0 && !opts.AllowShrink {
			none()
		}
		return refusal(reasons)
	case err != nil:
		return err
	case opts.AllowShrink && opts.AllowCatalogChange:
		return nil
	}
	// Read, not verified: the guards catch accidents, and the previous release may be signed
	// with a key this build no longer holds (a key roll). Edges verify what they serve.
	cannot := func(err error) error {
		return fmt.Errorf("build: cannot compare with the newest release of %s: %w (pass --allow-shrink and --allow-catalog-change to publish without comparing)", opts.Out, err)
	}
	payload, err := signing.Payload(env, index.ManifestType)
	if err != nil {
		return cannot(err)
	}
	prev, err := index.ParseManifest(payload)
	if err != nil {
		return cannot(err)
	}
	if !opts.AllowCatalogChange && prev.Catalog != rep.Catalog {
		reasons = append(reasons, fmt.Sprintf("release %d would rename catalog %s (release %d) to %s; pass --allow-catalog-change if this is meant",
			seq, prev.Catalog, prev.Sequence, rep.Catalog))
	}
	if !opts.AllowShrink {
		dropped, of, err := droppedLabels(opts.Out, prev, c)
		if err != nil {
			return cannot(err)
		}
		limit := opts.MaxDropPercent
		if limit == 0 {
			limit = DefaultMaxDropPercent
		}
		limit = max(limit, 0)
		if of > 0 && float64(dropped)*100 > limit*float64(of) {
			share, lim := percents(float64(dropped)*100/float64(of), limit)
			reasons = append(reasons, fmt.Sprintf("release %d would drop %d of the %d labels of release %d (%s > %s)%s",
				seq, dropped, of, prev.Sequence, share, lim, allowShrink))
		} else if c.labels == 0 {
			none()
		}
	}
	return refusal(reasons)
}

func refusal(reasons []string) error {
	if len(reasons) == 0 {
		return nil
	}
	return &RefusedError{Reasons: reasons}
}

// droppedLabels counts the label records of release prev (in dir) whose label is not in c,
// and returns it with the number of prev's label records.
func droppedLabels(dir string, prev *index.Manifest, c *compiledTree) (dropped, of int, err error) {
	ids := make([]uint64, 0, c.labels)
	for _, shard := range c.labelShards {
		for _, r := range shard {
			ids = append(ids, binary.BigEndian.Uint64(r.key))
		}
	}
	slices.Sort(ids)
	for _, ref := range prev.ShardsOf(index.KindLabel) {
		sh, err := index.OpenVerifiedShard(dir, ref, &index.VerifyOptions{Shallow: true})
		if err != nil {
			return 0, 0, fmt.Errorf("release %d: %w", prev.Sequence, err)
		}
		err = sh.Scan(func(key, _ []byte) error {
			if len(key) != 8 {
				return fmt.Errorf("release %d: label shard %d holds a key of %d bytes", prev.Sequence, ref.Shard, len(key))
			}
			of++
			if _, found := slices.BinarySearch(ids, binary.BigEndian.Uint64(key)); !found {
				dropped++
			}
			return nil
		})
		sh.Close()
		if err != nil {
			return 0, 0, err
		}
	}
	return dropped, of, nil
}

// percents formats a share and its limit in percent with as few decimals as tell them apart
// (33.3% > 10%, not 33.33333%; 10.01% > 10%, not 10% > 10%).
func percents(share, limit float64) (string, string) {
	format := func(x float64, decimals int) string {
		s := strconv.FormatFloat(x, 'f', decimals, 64)
		return strings.TrimRight(strings.TrimRight(s, "0"), ".") + "%"
	}
	for d := 1; ; d++ {
		if a, b := format(share, d), format(limit, d); a != b || d == 6 {
			return a, b
		}
	}
}

// writeShards writes every shard of a compiled tree and returns the manifest's shard list
// (HWID shards first, then label shards, each in shard order).
func writeShards(ctx context.Context, opts Options, c *compiledTree, rep *Report, progress func(string, int, int)) ([]index.ShardRef, error) {
	type job struct {
		kind string
		num  int
	}
	var jobs []job
	for i := range opts.HWIDShards {
		jobs = append(jobs, job{index.KindHWID, i})
	}
	for i := range c.labelShards {
		jobs = append(jobs, job{index.KindLabel, i})
	}
	refs := make([]index.ShardRef, len(jobs))
	reused := make([]bool, len(jobs))
	errs := make([]error, len(jobs))
	rows, hwids := make([]int, len(jobs)), make([]int, len(jobs))
	forEach(ctx, len(jobs), opts.Workers, func(i int) {
		j := jobs[i]
		if j.kind == index.KindLabel {
			refs[i], reused[i], errs[i] = writeShard(opts, j.kind, j.num, opts.LabelShards, c.labelShards[j.num])
			return
		}
		ids, groups, kept, err := c.spill.rows(j.num, c.skipIDs)
		var recs []record
		if err == nil {
			recs, err = hwidRecords(ids, groups, c.os)
		}
		if err != nil {
			errs[i] = err
			return
		}
		rows[i], hwids[i] = kept, len(ids)
		refs[i], reused[i], errs[i] = writeShard(opts, j.kind, j.num, opts.HWIDShards, recs)
	}, func(done int) { progress("shards", done, len(jobs)) })
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, err := range errs {
		if err != nil {
			return nil, err
		}
		c.rows += rows[i]
		c.hwids += hwids[i]
		rep.ShardBytes += refs[i].Size
		if reused[i] {
			rep.ShardsReused++
		} else {
			rep.ShardsWritten++
			rep.BytesWritten += refs[i].Size
		}
	}
	return refs, nil
}

func writeShard(opts Options, kind string, num, count int, records []record) (index.ShardRef, bool, error) {
	sf, err := index.CreateShard(opts.Out, &index.WriterOptions{Kind: kind, Shard: num, Shards: count, BlockRecords: opts.BlockRecords, Level: opts.Level})
	if err != nil {
		return index.ShardRef{}, false, err
	}
	for _, r := range records {
		if err := sf.Add(r.key, r.value); err != nil {
			sf.Abort()
			return index.ShardRef{}, false, fmt.Errorf("build: %s shard %d: %w", kind, num, err)
		}
	}
	return sf.Commit()
}

// releaseStatement signs the release statement of m: the tree over the package records of
// every label record the release's label shards hold (package statement).
func releaseStatement(c *compiledTree, m *index.Manifest, signers []*signing.Signer) ([]byte, error) {
	var b statement.Builder
	for _, shard := range c.labelShards {
		for _, r := range shard {
			if err := b.Add(binary.BigEndian.Uint64(r.key), r.value); err != nil {
				return nil, fmt.Errorf("build: %w", err)
			}
		}
	}
	recs, err := b.Finish()
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	t := recs.Tree()
	env, err := statement.Sign(&statement.Statement{Catalog: m.Catalog, Sequence: m.Sequence, Created: m.Created, Expires: m.Expires,
		Records: t.Len(), TreeHash: t.Root()}, signers...)
	if err != nil {
		return nil, fmt.Errorf("build: sign the release statement: %w", err)
	}
	return env, nil
}

// rejected lists the labels left out with their error codes, by label id.
func rejected(skip map[string][]string) []RejectedLabel {
	out := make([]RejectedLabel, 0, len(skip))
	for id, codes := range skip {
		out = append(out, RejectedLabel{Label: id, Codes: codes})
	}
	sort.Slice(out, func(i, j int) bool { return catalogs.CompareIDs(out[i].Label, out[j].Label) < 0 })
	return out
}

// stamp signs the timestamp that names the release just published (m, its envelope env),
// valid for validity (0: trust.DefaultTimestampValidity): edges serve a release only once a
// fresh timestamp names it. When the newest root of out gives the timestamp role keys the
// build does not hold, it signs none and says so (the note).
func stamp(out string, m *index.Manifest, env []byte, validity time.Duration, signers []*signing.Signer) (note string, err error) {
	if validity <= 0 {
		validity = trust.DefaultTimestampValidity
	}
	root, err := trust.NewestRootFile(out)
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	if root != nil {
		if err := root.Holds(trust.RoleTimestamp, signers); err != nil {
			return fmt.Sprintf("no timestamp signed: the build's keys do not hold root %d's timestamp role; sign it with driveway timestamp --key <timestamp key> (edges serve release %d only then)",
				root.Version(), m.Sequence), nil
		}
	}
	if _, err := trust.Stamp(out, m.Catalog, m.Sequence, env, m.Created, m.Created.Add(validity), signers...); err != nil {
		return "", fmt.Errorf("build: release %d is published but its timestamp is not (edges will not serve it): %w; run driveway timestamp", m.Sequence, err)
	}
	return "", nil
}

// checkSigners refuses, before anything is written, keys that do not hold the targets role
// of the newest root of out: edges would refuse the release.
func checkSigners(out string, signers []*signing.Signer) error {
	root, err := trust.NewestRootFile(out)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if root != nil {
		if err := root.Holds(trust.RoleTargets, signers); err != nil {
			return fmt.Errorf("build: %w", err)
		}
	}
	return nil
}

// checkValidity refuses a release valid for longer than index.DefaultMaxValidity: edges
// would refuse it.
func checkValidity(expires time.Duration) error {
	if expires > index.DefaultMaxValidity {
		return fmt.Errorf("build: a release valid for %s is longer than the %s edges accept; lower --expires-after (or catalog.json expiresAfter)", expires, index.DefaultMaxValidity)
	}
	return nil
}
