package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/releaselog"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/statement"
)

// ControlOptions configure Control. Labels, Out and Signers are required.
type ControlOptions struct {
	Labels       string
	Out          string
	Signers      []*signing.Signer
	Now          time.Time // the release's creation time (required)
	LabelIDs     []string  // labels whose distribution changed; their files are read again
	ExpiresAfter time.Duration
	// TimestampValidity: as Options.TimestampValidity.
	TimestampValidity time.Duration
	Keep              int
	// LogKey: as Options.LogKey.
	LogKey *releaselog.Key
}

// ErrNeedsFullBuild is returned by Control when a label changed beyond its control state.
var ErrNeedsFullBuild = errors.New("build: a full build is needed")

// Control publishes a control-only release: a new manifest over the shards of the newest
// release in Out. It reads only the files of the labels named in LabelIDs (their product,
// submission, metadata and shipping labels) and the catalog-wide files (catalog.json,
// partners.json, audiences.json, blocks.json), validates them, recomputes those labels'
// control entries (rollout, flight, cancel) and the blocks and audiences, and signs a new
// manifest with a renewed expiry. It touches no shard, so it takes well under a second for
// a catalog of any size. With no LabelIDs it re-signs the release with the current blocks,
// audiences and a fresh expiry. The files are read where they are, by catalogs.LoadFS over
// the part of the tree they make (subsetFS); Control returns ctx.Err() when ctx is done
// between two named labels.
//
// Each named label is compiled again and its label record (which includes a digest of its
// grid rows) must equal the one in the release byte for byte; anything else changed (a row,
// a package, a floor) returns ErrNeedsFullBuild.
//
// A control-only release keeps the label set and the catalog name of the release: it needs
// no shrink guard, but it refuses Labels that is not a label tree (catalogs.CheckTree) and a
// tree whose catalog.json names another catalog (a *RefusedError), whose blocks and
// audiences it would otherwise publish under this catalog's name.
func Control(ctx context.Context, opts ControlOptions) (*Report, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	rep := &Report{Created: opts.Now, Rejected: []RejectedLabel{}, Removed: []string{}, ControlOnly: true}
	phase := func(name string, start time.Time) {
		rep.Phases = append(rep.Phases, Phase{name, time.Since(start).Seconds()})
	}

	start := time.Now()
	m, control, err := newestRelease(opts.Out, opts.Signers)
	if err != nil {
		return nil, err
	}
	phase("read release", start)

	start = time.Now()
	stored, files, err := namedLabels(ctx, opts, m)
	if err != nil {
		return nil, err
	}
	tree, probs, err := loadNamed(opts, m, files)
	if err != nil {
		return nil, err
	}
	c, err := compileNamed(opts, m, tree, probs, rep)
	if err != nil {
		return rep, err
	}
	phase("labels", start)
	if err := sameRecords(c, stored, opts.LabelIDs, m.Sequence); err != nil {
		return rep, err
	}
	control = compiled.Control{Labels: mergeLabels(control.Labels, c.control.Labels, opts.LabelIDs), Blocks: c.control.Blocks, Audiences: c.control.Audiences}

	start = time.Now()
	next, err := controlManifest(opts, m, tree.Settings, control)
	if err != nil {
		return rep, err
	}
	id, err := publishControl(opts, next, rep)
	if err != nil {
		return rep, err
	}
	phase("publish", start)
	removed, err := index.Prune(opts.Out, opts.Keep)
	rep.Removed = append(rep.Removed, removed...)
	if err != nil { // published: see Report.PruneError
		rep.PruneError = err.Error()
	}
	rep.OK, rep.Sequence, rep.ReleaseID, rep.Expires = true, next.Sequence, id, next.Expires
	rep.LabelsBuilt, rep.Rows, rep.HWIDs, rep.Keys = m.Counts.Labels, m.Counts.Rows, m.Counts.HWIDs, m.Counts.Keys
	rep.ControlLabels, rep.ShardsReused = len(control.Labels), len(m.Shards)
	for _, s := range m.Shards {
		rep.ShardBytes += s.Size
	}
	return rep, nil
}

// check refuses ControlOptions without what Control needs, and sets the defaults.
func (opts *ControlOptions) check() error {
	if opts.Labels == "" || opts.Out == "" || len(opts.Signers) == 0 {
		return fmt.Errorf("build: labels, out and a signing key are required")
	}
	if opts.Now.IsZero() {
		return errors.New("build: ControlOptions.Now is zero; pass the release's creation time (the caller's clock)")
	}
	if err := checkSigners(opts.Out, opts.Signers); err != nil {
		return err
	}
	if err := checkLogKey(opts.Out, opts.LogKey); err != nil {
		return err
	}
	opts.Now = opts.Now.UTC().Truncate(time.Second)
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	return catalogs.CheckTree(opts.Labels)
}

// newestRelease reads the newest release in out, verified with the signers' own keys, and
// its control table.
func newestRelease(out string, signers []*signing.Signer) (*index.Manifest, compiled.Control, error) {
	var control compiled.Control
	_, env, err := index.Latest(out)
	if err != nil {
		return nil, control, err
	}
	var keys []*signing.Verifier
	for _, s := range signers {
		keys = append(keys, s.Verifier())
	}
	m, err := index.VerifyEnvelope(env, &index.VerifyOptions{Keys: keys, IgnoreExpiry: true}, func(index.Step) {})
	if err != nil {
		return nil, control, fmt.Errorf("build: the newest release of %s: %w", out, err)
	}
	if err := json.Unmarshal(m.Control, &control); err != nil {
		return nil, control, fmt.Errorf("build: release %d: control table: %w", m.Sequence, err)
	}
	return m, control, nil
}

// catalogFiles are the files of a label tree that every label's checks may need.
var catalogFiles = []string{"catalog.json", "partners.json", "audiences.json", "blocks.json"}

// namedLabels reads the records of the labels named in opts.LabelIDs from release m, and
// returns them by id with the part of the label tree they are compiled from: the
// catalog-wide files, and each named label's product, submission, metadata and every
// shipping label of its submission (rules that span a submission's labels need them). A
// label that is not in the release needs a full build. It returns ctx.Err() when ctx is
// done between two labels.
func namedLabels(ctx context.Context, opts ControlOptions, m *index.Manifest) (map[string][]byte, *subsetFS, error) {
	files := newSubsetFS(os.DirFS(opts.Labels))
	for _, name := range catalogFiles {
		if err := files.add(name); err != nil {
			return nil, nil, err
		}
	}
	shards := map[int]*index.Shard{}
	defer func() {
		for _, sh := range shards {
			sh.Close()
		}
	}()
	labelRefs := m.ShardsOf(index.KindLabel)
	stored := map[string][]byte{}
	for _, id := range opts.LabelIDs {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		n := catalogs.IDValue(id)
		if fmt.Sprint(n) != id {
			return nil, nil, fmt.Errorf("build: %q is not a label id", id)
		}
		key := compiled.LabelKey(n)
		num := index.Route(key[:], len(labelRefs))
		sh := shards[num]
		if sh == nil {
			var err error
			if sh, err = index.OpenVerifiedShard(opts.Out, labelRefs[num], &index.VerifyOptions{Shallow: true}); err != nil {
				return nil, nil, err
			}
			shards[num] = sh
		}
		v, ok, err := sh.Get(key[:])
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return nil, nil, fmt.Errorf("%w: label %s is not in release %d (adding a label needs a full build)", ErrNeedsFullBuild, id, m.Sequence)
		}
		stored[id] = bytes.Clone(v)
		rec, err := compiled.ParseLabel(v)
		if err != nil {
			return nil, nil, err
		}
		if err := files.addSubmission(opts.Labels, id, fmt.Sprint(rec.Product), fmt.Sprint(rec.Submission)); err != nil {
			return nil, nil, err
		}
	}
	return stored, files, nil
}

// loadNamed loads the subset of the label tree in files. It refuses a tree of another
// catalog than release m's, whose blocks and audiences would be published under m's name.
func loadNamed(opts ControlOptions, m *index.Manifest, files *subsetFS) (*catalogs.Tree, catalogs.Problems, error) {
	tree, probs, err := catalogs.LoadFS(files, nil)
	if err != nil {
		return nil, nil, err
	}
	tree.Dir = opts.Labels
	if name := tree.Settings.Name; name != "" && name != m.Catalog {
		return nil, nil, &RefusedError{Reasons: []string{fmt.Sprintf("the label tree %s is catalog %s, release %d is catalog %s; a control-only release cannot change the catalog",
			opts.Labels, name, m.Sequence, m.Catalog)}}
	}
	return tree, probs, nil
}

// compileNamed validates the loaded subset (its problems go into rep, and any error is
// ErrInvalid) and compiles it.
func compileNamed(opts ControlOptions, m *index.Manifest, tree *catalogs.Tree, probs catalogs.Problems, rep *Report) (*compiledTree, error) {
	// The subset holds only some labels: the blocks' checks (W006) would miss the others.
	probs = append(probs, tree.Validate(&catalogs.ValidateOptions{Now: opts.Now, Partial: true})...)
	probs.Sort()
	rep.Problems, rep.Errors = probs, probs.Errors()
	rep.Warnings = len(probs) - rep.Errors
	rep.Catalog = m.Catalog
	if rep.Errors > 0 {
		return nil, fmt.Errorf("%w: %d errors", ErrInvalid, rep.Errors)
	}
	return compile(tree, nil, opts.Now, 1)
}

// sameRecords returns ErrNeedsFullBuild unless each named label compiled to the record
// release seq has for it.
func sameRecords(c *compiledTree, stored map[string][]byte, ids []string, seq uint64) error {
	recs := map[string][]byte{}
	for _, r := range c.labelShards[0] {
		recs[fmt.Sprint(catalogs.IDValue(fmt.Sprint(bigEndian(r.key))))] = r.value
	}
	for _, id := range ids {
		if !bytes.Equal(recs[id], stored[id]) {
			return fmt.Errorf("%w: label %s changed beyond its rollout, flight and cancel state since release %d", ErrNeedsFullBuild, id, seq)
		}
	}
	return nil
}

// mergeLabels is the control table's labels of a release, old, with the entries of the
// named labels replaced by those compiled again (fresh): a named label without a fresh entry
// has none any more. The result is sorted by label id.
func mergeLabels(old, fresh []compiled.LabelControl, ids []string) []compiled.LabelControl {
	named := map[string]bool{}
	for _, id := range ids {
		named[id] = true
	}
	byID := map[string]compiled.LabelControl{}
	for _, lc := range fresh {
		byID[lc.Label] = lc
	}
	var labels []compiled.LabelControl
	for _, lc := range old {
		if !named[lc.Label] {
			labels = append(labels, lc)
		}
	}
	for id := range named {
		if lc, ok := byID[id]; ok {
			labels = append(labels, lc)
		}
	}
	sort.Slice(labels, func(i, j int) bool { return catalogs.CompareIDs(labels[i].Label, labels[j].Label) < 0 })
	return labels
}

// controlManifest is the manifest of the next release: release m's, over the same shards,
// with control, the next sequence, new times and the release statement signed again.
func controlManifest(opts ControlOptions, m *index.Manifest, settings catalogs.Settings, control compiled.Control) (*index.Manifest, error) {
	controlJSON, err := json.Marshal(control)
	if err != nil {
		return nil, err
	}
	seqs, err := index.Sequences(opts.Out)
	if err != nil {
		return nil, err
	}
	next := *m
	next.Sequence = seqs[len(seqs)-1] + 1
	if settings.MinSequence > next.Sequence {
		next.Sequence = settings.MinSequence
	}
	expires := opts.ExpiresAfter
	if expires <= 0 {
		expires = settings.ExpiresAfter
	}
	if expires <= 0 {
		expires = DefaultExpiresAfter
	}
	next.Created, next.Expires, next.Control = opts.Now, opts.Now.Add(expires), controlJSON
	if err := checkValidity(expires); err != nil {
		return nil, err
	}
	// The same shards hold the same label records, so the release statement keeps its tree
	// and is signed again for this sequence and these times.
	if len(m.Statement) > 0 {
		payload, err := signing.Payload(m.Statement, statement.PayloadType)
		if err != nil {
			return nil, fmt.Errorf("build: release %d: its statement: %w", m.Sequence, err)
		}
		st, err := statement.Parse(payload)
		if err != nil {
			return nil, fmt.Errorf("build: release %d: %w", m.Sequence, err)
		}
		st.Sequence, st.Created, st.Expires = next.Sequence, next.Created, next.Expires
		if next.Statement, err = statement.Sign(st, opts.Signers...); err != nil {
			return nil, fmt.Errorf("build: sign the release statement: %w", err)
		}
	}
	return &next, nil
}

// publishControl logs (with opts.LogKey), publishes and timestamps manifest next, and
// returns the release's id; the log checkpoint and the timestamp note go into rep.
func publishControl(opts ControlOptions, next *index.Manifest, rep *Report) (string, error) {
	pending, err := prepareLog(opts.Out, next, opts.LogKey)
	if err != nil {
		return "", err
	}
	env, id, err := index.Publish(opts.Out, next, opts.Signers...)
	if err != nil {
		return "", err
	}
	if rep.Log, err = writeLog(pending, next.Sequence); err != nil {
		return "", err
	}
	if rep.TimestampNote, err = stamp(opts.Out, next, env, opts.TimestampValidity, opts.Signers); err != nil {
		return "", err
	}
	return id, nil
}

func bigEndian(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return n
}
