package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
// audiences and a fresh expiry.
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
	if opts.Labels == "" || opts.Out == "" || len(opts.Signers) == 0 {
		return nil, fmt.Errorf("build: labels, out and a signing key are required")
	}
	if opts.Now.IsZero() {
		return nil, errors.New("build: ControlOptions.Now is zero; pass the release's creation time (the caller's clock)")
	}
	if err := checkSigners(opts.Out, opts.Signers); err != nil {
		return nil, err
	}
	if err := checkLogKey(opts.Out, opts.LogKey); err != nil {
		return nil, err
	}
	opts.Now = opts.Now.UTC().Truncate(time.Second)
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if err := catalogs.CheckTree(opts.Labels); err != nil {
		return nil, err
	}
	rep := &Report{Created: opts.Now, Rejected: []RejectedLabel{}, Removed: []string{}, ControlOnly: true}
	phase := func(name string, start time.Time) {
		rep.Phases = append(rep.Phases, Phase{name, time.Since(start).Seconds()})
	}

	// The current release, verified with our own keys.
	start := time.Now()
	_, env, err := index.Latest(opts.Out)
	if err != nil {
		return nil, err
	}
	var keys []*signing.Verifier
	for _, s := range opts.Signers {
		keys = append(keys, s.Verifier())
	}
	m, err := index.VerifyEnvelope(env, &index.VerifyOptions{Keys: keys, IgnoreExpiry: true}, func(index.Step) {})
	if err != nil {
		return nil, fmt.Errorf("build: the newest release of %s: %w", opts.Out, err)
	}
	var control compiled.Control
	if err := json.Unmarshal(m.Control, &control); err != nil {
		return nil, fmt.Errorf("build: release %d: control table: %w", m.Sequence, err)
	}
	phase("read release", start)

	// A small tree of just the named labels' files and the catalog-wide files.
	start = time.Now()
	mini, err := os.MkdirTemp("", "driveway-control-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(mini)
	if err := os.Mkdir(filepath.Join(mini, "products"), 0o755); err != nil { // a tree, also of no label
		return nil, err
	}
	for _, name := range []string{"catalog.json", "partners.json", "audiences.json", "blocks.json"} {
		if err := copyIfExists(filepath.Join(opts.Labels, name), filepath.Join(mini, name)); err != nil {
			return nil, err
		}
	}
	stored := map[string][]byte{}
	shards := map[int]*index.Shard{}
	defer func() {
		for _, sh := range shards {
			sh.Close()
		}
	}()
	labelRefs := m.ShardsOf(index.KindLabel)
	for _, id := range opts.LabelIDs {
		n := catalogs.IDValue(id)
		if fmt.Sprint(n) != id {
			return nil, fmt.Errorf("build: %q is not a label id", id)
		}
		key := compiled.LabelKey(n)
		num := index.Route(key[:], len(labelRefs))
		sh := shards[num]
		if sh == nil {
			if sh, err = index.OpenVerifiedShard(opts.Out, labelRefs[num], &index.VerifyOptions{Shallow: true}); err != nil {
				return nil, err
			}
			shards[num] = sh
		}
		v, ok, err := sh.Get(key[:])
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: label %s is not in release %d (adding a label needs a full build)", ErrNeedsFullBuild, id, m.Sequence)
		}
		stored[id] = bytes.Clone(v)
		rec, err := compiled.ParseLabel(v)
		if err != nil {
			return nil, err
		}
		sub := filepath.Join("products", fmt.Sprint(rec.Product), "submissions", fmt.Sprint(rec.Submission))
		for _, f := range []string{filepath.Join("products", fmt.Sprint(rec.Product), "product.json"),
			filepath.Join(sub, "submission.json"), filepath.Join(sub, "driverMetadata.json")} {
			if err := copyIfExists(filepath.Join(opts.Labels, f), filepath.Join(mini, f)); err != nil {
				return nil, err
			}
		}
		// Every label of the submission: rules that span a submission's labels need them.
		entries, err := os.ReadDir(filepath.Join(opts.Labels, sub, "shippingLabels"))
		if err != nil {
			return nil, fmt.Errorf("build: label %s: %w", id, err)
		}
		for _, e := range entries {
			f := filepath.Join(sub, "shippingLabels", e.Name())
			if err := copyIfExists(filepath.Join(opts.Labels, f), filepath.Join(mini, f)); err != nil {
				return nil, err
			}
		}
	}
	tree, probs, err := catalogs.Load(mini, nil)
	if err != nil {
		return nil, err
	}
	if name := tree.Settings.Name; name != "" && name != m.Catalog {
		return nil, &RefusedError{Reasons: []string{fmt.Sprintf("the label tree %s is catalog %s, release %d is catalog %s; a control-only release cannot change the catalog",
			opts.Labels, name, m.Sequence, m.Catalog)}}
	}
	// The copy holds only some labels: the blocks' checks (W006) would miss the others.
	probs = append(probs, tree.Validate(&catalogs.ValidateOptions{Now: opts.Now, Partial: true})...)
	for i := range probs { // name the files where they are, not in the temporary copy
		probs[i].File = strings.TrimPrefix(probs[i].File, mini+string(filepath.Separator))
	}
	probs.Sort()
	rep.Problems, rep.Errors = probs, probs.Errors()
	rep.Warnings = len(probs) - rep.Errors
	rep.Catalog = m.Catalog
	if rep.Errors > 0 {
		return rep, fmt.Errorf("%w: %d errors", ErrInvalid, rep.Errors)
	}
	c, err := compile(tree, nil, opts.Now, 1, 1)
	if err != nil {
		return rep, err
	}
	phase("labels", start)

	// Each named label must compile to the record the release has.
	fresh := map[string]compiled.LabelControl{}
	for _, lc := range c.control.Labels {
		fresh[lc.Label] = lc
	}
	recs := map[string][]byte{}
	for _, r := range c.labelShards[0] {
		recs[fmt.Sprint(catalogs.IDValue(fmt.Sprint(bigEndian(r.key))))] = r.value
	}
	for _, id := range opts.LabelIDs {
		if !bytes.Equal(recs[id], stored[id]) {
			return rep, fmt.Errorf("%w: label %s changed beyond its rollout, flight and cancel state since release %d", ErrNeedsFullBuild, id, m.Sequence)
		}
	}
	named := map[string]bool{}
	for _, id := range opts.LabelIDs {
		named[id] = true
	}
	var labels []compiled.LabelControl
	for _, lc := range control.Labels {
		if !named[lc.Label] {
			labels = append(labels, lc)
		}
	}
	for id := range named {
		if lc, ok := fresh[id]; ok {
			labels = append(labels, lc)
		}
	}
	sort.Slice(labels, func(i, j int) bool { return catalogs.CompareIDs(labels[i].Label, labels[j].Label) < 0 })
	control = compiled.Control{Labels: labels, Blocks: c.control.Blocks, Audiences: c.control.Audiences}

	// The new manifest over the same shards.
	start = time.Now()
	controlJSON, err := json.Marshal(control)
	if err != nil {
		return rep, err
	}
	seqs, err := index.Sequences(opts.Out)
	if err != nil {
		return rep, err
	}
	next := *m
	next.Sequence = seqs[len(seqs)-1] + 1
	if tree.Settings.MinSequence > next.Sequence {
		next.Sequence = tree.Settings.MinSequence
	}
	expires := opts.ExpiresAfter
	if expires <= 0 {
		expires = tree.Settings.ExpiresAfter
	}
	if expires <= 0 {
		expires = DefaultExpiresAfter
	}
	next.Created, next.Expires, next.Control = opts.Now, opts.Now.Add(expires), controlJSON
	if err := checkValidity(expires); err != nil {
		return rep, err
	}
	// The same shards hold the same label records, so the release statement keeps its tree
	// and is signed again for this sequence and these times.
	if len(m.Statement) > 0 {
		payload, err := signing.Payload(m.Statement, statement.PayloadType)
		if err != nil {
			return rep, fmt.Errorf("build: release %d: its statement: %w", m.Sequence, err)
		}
		st, err := statement.Parse(payload)
		if err != nil {
			return rep, fmt.Errorf("build: release %d: %w", m.Sequence, err)
		}
		st.Sequence, st.Created, st.Expires = next.Sequence, next.Created, next.Expires
		if next.Statement, err = statement.Sign(st, opts.Signers...); err != nil {
			return rep, fmt.Errorf("build: sign the release statement: %w", err)
		}
	}
	pending, err := prepareLog(opts.Out, &next, opts.LogKey)
	if err != nil {
		return rep, err
	}
	env, id, err := index.Publish(opts.Out, &next, opts.Signers...)
	if err != nil {
		return rep, err
	}
	if rep.Log, err = writeLog(pending, next.Sequence); err != nil {
		return rep, err
	}
	if rep.TimestampNote, err = stamp(opts.Out, &next, env, opts.TimestampValidity, opts.Signers); err != nil {
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

func bigEndian(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return n
}

// copyIfExists copies a file of the label tree, creating directories; a missing source is
// not an error (the loader reports missing required files itself).
func copyIfExists(src, dst string) error {
	b, err := os.ReadFile(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
