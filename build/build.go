// Package build compiles a label tree into a catalog release (spec/catalog.md): it
// validates the tree with every rule of labels.md, compiles each Windows Update label into a
// label record and its grid rows into HWID records (offered-forward expanded), writes them
// into content-addressed shards, and publishes a signed manifest, atomically.
//
// The same tree, options and Now give byte-identical shards (and, with an Ed25519 key, a
// byte-identical manifest). A rebuild rewrites only shards whose content changed; the others
// keep their names and are not written again, so a change of rollout or flight state alone
// publishes a new manifest over the same shards.
package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/ostable"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/signing"
)

// Defaults.
const (
	DefaultHWIDShards   = 16
	DefaultLabelShards  = 4
	DefaultExpiresAfter = 168 * time.Hour
	DefaultKeep         = 5
)

// Options configure Build. Labels, Out and Signers are required; zero values of the others
// take the defaults.
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
	Problems      catalogs.Problems `json:"-"`
	Removed       []string          `json:"removed"` // files pruned
	Phases        []Phase           `json:"phases"`
}

// RejectedLabel is a label an error kept out of the release.
type RejectedLabel struct {
	Label string   `json:"label"`
	Codes []string `json:"codes"`
}

// Phase is the wall time of one phase of a build.
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// ErrInvalid is returned when the tree has errors and the build did not skip them.
var ErrInvalid = errors.New("build: the label tree has errors")

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

	// Load and validate.
	start := time.Now()
	progress("load", 0, 1)
	tree, probs, err := catalogs.Load(opts.Labels, &catalogs.LoadOptions{OS: opts.OSTable})
	if err != nil {
		return nil, err
	}
	phase("load", start)
	start = time.Now()
	progress("validate", 0, 1)
	probs = append(probs, tree.Validate(&catalogs.ValidateOptions{RequireFlight: opts.RequireFlight})...)
	probs.Sort()
	phase("validate", start)
	rep.Problems = probs
	rep.Errors = probs.Errors()
	rep.Warnings = len(probs) - rep.Errors
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
	c, err := compile(tree, skip, opts.Now, opts.HWIDShards, opts.LabelShards)
	if err != nil {
		return rep, err
	}
	phase("compile", start)
	rep.LabelsBuilt, rep.Rows, rep.HWIDs, rep.ControlLabels = c.labels, c.rows, c.hwids, len(c.control.Labels)

	// Shards, in parallel; each one is content-addressed.
	start = time.Now()
	refs, err := writeShards(ctx, opts, c, rep, progress)
	if err != nil {
		return rep, err
	}
	phase("shards", start)
	rep.ControlOnly = rep.ShardsWritten == 0

	// The manifest, signed, last.
	start = time.Now()
	progress("publish", 0, 1)
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
	expires := opts.ExpiresAfter
	if expires <= 0 {
		expires = tree.Settings.ExpiresAfter
	}
	if expires <= 0 {
		expires = DefaultExpiresAfter
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
	if _, id, err := index.Publish(opts.Out, m, opts.Signers...); err != nil {
		return rep, err
	} else {
		rep.ReleaseID = id
	}
	rep.Sequence, rep.Expires, rep.Keys = seq, m.Expires, m.Counts.Keys
	phase("publish", start)

	start = time.Now()
	progress("prune", 0, 1)
	removed, err := index.Prune(opts.Out, opts.Keep)
	rep.Removed = append(rep.Removed, removed...)
	if err != nil {
		return rep, err
	}
	phase("prune", start)
	rep.OK = true
	return rep, nil
}

// writeShards writes every shard of a compiled tree and returns the manifest's shard list
// (HWID shards first, then label shards, each in shard order).
func writeShards(ctx context.Context, opts Options, c *compiledTree, rep *Report, progress func(string, int, int)) ([]index.ShardRef, error) {
	type job struct {
		kind    string
		num     int
		records []record
	}
	var jobs []job
	for i, r := range c.hwidShards {
		jobs = append(jobs, job{index.KindHWID, i, r})
	}
	for i, r := range c.labelShards {
		jobs = append(jobs, job{index.KindLabel, i, r})
	}
	refs := make([]index.ShardRef, len(jobs))
	reused := make([]bool, len(jobs))
	errs := make([]error, len(jobs))
	var mu sync.Mutex
	done := 0
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				j := jobs[i]
				n := opts.HWIDShards
				if j.kind == index.KindLabel {
					n = opts.LabelShards
				}
				refs[i], reused[i], errs[i] = writeShard(opts, j.kind, j.num, n, j.records)
				mu.Lock()
				done++
				progress("shards", done, len(jobs))
				mu.Unlock()
			}
		}()
	}
	for i := range jobs {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, err := range errs {
		if err != nil {
			return nil, err
		}
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

// rejected lists the labels left out with their error codes, by label id.
func rejected(skip map[string][]string) []RejectedLabel {
	out := make([]RejectedLabel, 0, len(skip))
	for id, codes := range skip {
		out = append(out, RejectedLabel{Label: id, Codes: codes})
	}
	sort.Slice(out, func(i, j int) bool { return catalogs.CompareIDs(out[i].Label, out[j].Label) < 0 })
	return out
}
