package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/driveway/driveway/build"
	"github.com/driveway/driveway/catalogs/ostable"
	"github.com/driveway/driveway/diff"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/trust"
)

func cmdDiff(e *env, args []string) int {
	fs := e.flags("diff", `
Diff replays a population of PCs against two releases and reports what would change for
them: for every device whose offers differ, whether it gains, loses or switches an offer, of
which label and kind, on which hardware ID and OS release, with the verdicts of the offer
procedure that changed (offered → cancelled; outranked → offered) and a few example devices.

The population is a file of offer requests (docs/offers.md), one JSON object per line, as
driveway bench gen-devices writes them. --from is the catalog in the field; the other side is
--to, a catalog, or --labels, a label tree about to be built: it is validated and built as
driveway build does, into a temporary directory with a throwaway key, and nothing is
published. Both sides are decided at --now. --from-sequence and --to-sequence pick an older
release of a catalog than its newest (the releases it keeps).

With --key the releases are verified as driveway offer verifies them; without, diff says on
stderr that they were not.

Exit status: 0 when the changes are within the limits; 1 when more PCs change than
--max-changed, or a label not given with --allow-label changes (when some are given), or on
an error (a bad population line is named by file:line and field); 2 for misuse.`)
	from := fs.String("from", "", "the catalog `DIR` of the release in the field (required)")
	fromSeq := fs.Uint64("from-sequence", 0, "compare release `N` of --from instead of its newest")
	to := fs.String("to", "", "the catalog `DIR` of the release to compare with")
	toSeq := fs.Uint64("to-sequence", 0, "compare release `N` of --to instead of its newest")
	labels := fs.String("labels", "", "instead of --to: a label tree `DIR` to build (in a temporary directory; nothing is published)")
	population := fs.String("population", "", "the PCs to replay: a `FILE` of offer requests, one per line (required; - reads stdin)")
	asJSON := fs.Bool("json", false, "print the report as JSON (docs/diff.md has its schema)")
	maxChanged := fs.String("max-changed", "", "exit 1 when more PCs change than `LIMIT`: a percent of the population (5%) or a number of PCs (500); default: no limit")
	allow := fs.StringArray("allow-label", nil, "exit 1 when a label other than these changes (`ID`; repeat, or separate with commas)")
	keys := fs.StringArray("key", nil, "public key `FILE` to verify both releases with (repeat for several)")
	threshold := fs.Int("threshold", 1, "distinct keys that must have signed")
	nowFlag := fs.String("now", "", "the `TIME` (RFC 3339) both releases are decided at; default: now")
	examples := fs.Int("examples", diff.DefaultExamples, "example devices per change (`N`; 0: none)")
	osTable := fs.String("os-table", "", "with --labels: an OS table `FILE` replacing the embedded one")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	switch {
	case *from == "" || *population == "":
		return e.usageError("diff", "--from and --population are required")
	case (*to == "") == (*labels == ""):
		return e.usageError("diff", "give one of --to CATALOG and --labels DIR")
	case *labels != "" && fs.Changed("to-sequence"):
		return e.usageError("diff", "--to-sequence goes with --to, not --labels")
	case *labels == "" && *osTable != "":
		return e.usageError("diff", "--os-table goes with --labels")
	case *examples < 0:
		return e.usageError("diff", "--examples must be 0 or more")
	}
	now, err := e.parseNow(*nowFlag)
	if err != nil {
		return e.usageError("diff", err.Error())
	}
	var gate diff.Gate
	if *maxChanged != "" {
		if gate.MaxChanged, err = diff.ParseLimit(*maxChanged); err != nil {
			return e.usageError("diff", "--max-changed "+err.Error())
		}
		gate.Limited = true
	}
	if fs.Changed("allow-label") {
		gate.Allowed = []string{}
		for _, a := range *allow {
			for _, id := range strings.Split(a, ",") {
				if id = strings.TrimSpace(id); id != "" {
					gate.Allowed = append(gate.Allowed, id)
				}
			}
		}
	}

	fromRel, err := openReleaseAt(e, "diff", *from, *fromSeq, *keys, *threshold, now)
	if err != nil {
		return e.fail("diff", fmt.Errorf("--from %s: %w", *from, err))
	}
	defer fromRel.Close()
	var toRel *index.Release
	toName := *to
	if *labels != "" {
		var tab *ostable.Table
		if *osTable != "" {
			if tab, err = ostable.Load(*osTable); err != nil {
				return e.fail("diff", err)
			}
		}
		dir, rep, err := scratchBuild(build.Options{Labels: *labels, Now: now, OSTable: tab})
		if dir != "" {
			defer os.RemoveAll(dir)
		}
		if err != nil {
			if rep != nil && errors.Is(err, build.ErrInvalid) {
				for _, p := range rep.Problems {
					fmt.Fprintln(e.stderr, p)
				}
				return e.fail("diff", fmt.Errorf("--labels %s: %d errors in %d labels: fix them, as driveway build would refuse the tree", *labels, rep.Errors, rep.Labels))
			}
			return e.fail("diff", fmt.Errorf("--labels %s: %w", *labels, err))
		}
		if toRel, err = index.OpenRelease(filepath.Join(dir, "catalog"), &index.VerifyOptions{Unverified: true, IgnoreExpiry: true, Cache: index.NewCacheBudget(diffBlockCache)}); err != nil {
			return e.fail("diff", err)
		}
		toName = *labels + " (built, not published)"
	} else if toRel, err = openReleaseAt(e, "diff", *to, *toSeq, *keys, *threshold, now); err != nil {
		return e.fail("diff", fmt.Errorf("--to %s: %w", *to, err))
	}
	defer toRel.Close()

	var in io.Reader = e.stdin
	name := "stdin"
	if *population != "-" {
		f, err := os.Open(*population)
		if err != nil {
			return e.fail("diff", fmt.Errorf("--population: %w", err))
		}
		defer f.Close()
		in, name = f, *population
	}
	n := *examples
	if n == 0 {
		n = diff.NoExamples
	}
	rep, err := diffReleases(fromRel, toRel, in, &diff.Options{Now: now, Name: name, Examples: n})
	if err != nil {
		return e.fail("diff", err)
	}
	rep.From.Source, rep.To.Source = *from, toName
	if *asJSON {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return e.fail("diff", err)
		}
		e.stdout.Write(append(b, '\n'))
	} else if err := rep.WriteText(e.stdout); err != nil {
		return e.fail("diff", err)
	}
	if reasons := rep.Check(gate); len(reasons) > 0 {
		fmt.Fprintf(e.stderr, "driveway diff: outside the limits: %s\n", oneLine(strings.Join(reasons, "; ")))
		return exitFailure
	}
	return exitOK
}

// diffReleases runs the diff of two opened releases.
func diffReleases(from, to *index.Release, population io.Reader, opts *diff.Options) (*diff.Report, error) {
	engines := make([]*offer.Engine, 2)
	for i, r := range []*index.Release{from, to} {
		src, err := offer.SourceOf(r)
		if err != nil {
			return nil, err
		}
		if engines[i], err = offer.NewEngine(src); err != nil {
			return nil, err
		}
	}
	return diff.Run(engines[0], engines[1], population, opts)
}

// diffBlockCache is the budget for decoded shard blocks of each release a diff opens: a
// population reaches most blocks many times, and decoding them again is most of the replay's
// time without a cache. It is charged only for the blocks read.
const diffBlockCache = 1 << 30

// openReleaseAt opens release seq of a catalog (0: the newest) as openForReading does:
// verified when keys are given (with the same notes on expiry and, for the newest, its
// timestamp), else with a note; with a block cache for the replay.
func openReleaseAt(e *env, cmd, dir string, seq uint64, keyPaths []string, threshold int, now time.Time) (*index.Release, error) {
	var env []byte
	var err error
	if seq == 0 {
		seq, env, err = index.Latest(dir)
	} else if env, err = os.ReadFile(index.ReleasePath(dir, seq)); errors.Is(err, os.ErrNotExist) {
		seqs, _ := index.Sequences(dir)
		return nil, fmt.Errorf("%s holds no release %d (it holds %v)", dir, seq, seqs)
	}
	if err != nil {
		return nil, err
	}
	opts := &index.VerifyOptions{Threshold: threshold, IgnoreExpiry: true, Sequence: seq, Cache: index.NewCacheBudget(diffBlockCache)}
	var root *trust.Root
	if len(keyPaths) == 0 {
		opts.Unverified = true
		fmt.Fprintf(e.stderr, "driveway %s: note: release %d of %s was NOT verified (pass --key PUB to verify it)\n", cmd, seq, dir)
	} else if root, err = releaseRoot(dir, keyPaths, threshold); err != nil {
		return nil, err
	} else if opts.Keys, opts.Threshold, err = root.Keys(trust.RoleTargets); err != nil {
		return nil, err
	}
	rel, err := index.OpenEnvelope(dir, env, opts)
	if err != nil {
		return nil, err
	}
	if latest, _, lerr := index.Latest(dir); root != nil && lerr == nil && latest == seq {
		if err := freshTimestamp(dir, root, rel, now); err != nil {
			fmt.Fprintf(e.stderr, "driveway %s: note: an edge would not serve release %d of %s: %s\n", cmd, seq, dir, oneLine(err.Error()))
		}
	}
	if m := rel.Manifest; now.After(m.Expires) {
		fmt.Fprintf(e.stderr, "driveway %s: note: release %d of %s expired at %s; an edge would no longer offer from it\n",
			cmd, m.Sequence, dir, m.Expires.Format(time.RFC3339))
	}
	return rel, nil
}

// releaseRoot returns the newest root of dir, which keyPaths (root 1) lead to.
func releaseRoot(dir string, keyPaths []string, threshold int) (*trust.Root, error) {
	keys, err := loadVerifiers(keyPaths)
	if err != nil {
		return nil, err
	}
	root, err := trust.FromKeys(keys, threshold)
	if err != nil {
		return nil, err
	}
	if root, err = trust.Update(root, dirRoots(dir)); err != nil {
		return nil, fmt.Errorf("the roots of %s do not verify from these keys: %w", dir, err)
	}
	return root, nil
}

// scratchBuild builds a label tree into a new temporary directory with a throwaway key,
// with the validation of driveway build: a release to compare, never published. The
// caller removes dir (returned also on error, when it was made).
func scratchBuild(opts build.Options) (dir string, rep *build.Report, err error) {
	if dir, err = os.MkdirTemp("", "driveway-scratch-"); err != nil {
		return "", nil, err
	}
	priv, _, err := signing.GenerateKey(signing.Ed25519, nil)
	if err != nil {
		return dir, nil, err
	}
	keyFile := filepath.Join(dir, "scratch.key")
	if err := os.WriteFile(keyFile, priv, 0o600); err != nil {
		return dir, nil, err
	}
	s, err := signing.LoadSigner(context.Background(), keyFile, nil)
	if err != nil {
		return dir, nil, err
	}
	opts.Out, opts.Signers = filepath.Join(dir, "catalog"), []*signing.Signer{s}
	opts.AllowShrink, opts.AllowCatalogChange, opts.Progress = true, true, nil // compared, not published: the diff says what shrank
	rep, err = build.Build(context.Background(), opts)
	return dir, rep, err
}

// scratchControl publishes a control-only release of opts.Labels over a copy of the newest
// release of opts.Out (its shards hard-linked, or copied) in a new temporary directory,
// signed with opts.Signers (Control verifies the release with them). The caller removes dir.
func scratchControl(opts build.ControlOptions) (dir string, rep *build.Report, err error) {
	if dir, err = os.MkdirTemp("", "driveway-scratch-"); err != nil {
		return "", nil, err
	}
	seq, env, err := index.Latest(opts.Out)
	if err != nil {
		return dir, nil, err
	}
	m, err := unverifiedManifest(env)
	if err != nil {
		return dir, nil, err
	}
	cat := filepath.Join(dir, "catalog")
	for _, d := range []string{index.ReleasesDir, index.ShardsDir} {
		if err := os.MkdirAll(filepath.Join(cat, d), 0o755); err != nil {
			return dir, nil, err
		}
	}
	for _, ref := range m.Shards {
		name := filepath.Join(index.ShardsDir, ref.Name)
		if err := linkOrCopy(filepath.Join(opts.Out, name), filepath.Join(cat, name)); err != nil {
			return dir, nil, err
		}
	}
	if err := os.WriteFile(index.ReleasePath(cat, seq), env, 0o644); err != nil {
		return dir, nil, err
	}
	opts.Out = cat
	rep, err = build.Control(context.Background(), opts)
	return dir, rep, err
}

func linkOrCopy(src, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if os.Link(src, dst) == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// populationGuard is build --population: it builds the release into a scratch directory
// (full or control-only, as asked), replays the population against it and the newest release
// of out, and refuses (false, exit 1) a release that changes more PCs than limit, unless
// allow. A first release has nothing to compare with and passes.
func (e *env) populationGuard(full *build.Options, control *build.ControlOptions, population string, limit diff.Limit, allow, quiet bool) (int, bool) {
	out, now := "", time.Time{}
	if full != nil {
		out, now = full.Out, full.Now
	} else {
		out, now = control.Out, control.Now
	}
	if _, _, err := index.Latest(out); errors.Is(err, index.ErrNoRelease) {
		if !quiet {
			fmt.Fprintf(e.stderr, "driveway build: --population: %s holds no release yet, so there is nothing to compare with\n", out)
		}
		return 0, true
	}
	f, err := os.Open(population)
	if err != nil {
		return e.fail("build", fmt.Errorf("--population: %w", err)), false
	}
	defer f.Close()
	var dir string
	var rep *build.Report
	if full != nil {
		dir, rep, err = scratchBuild(*full)
	} else {
		dir, rep, err = scratchControl(*control)
	}
	if dir != "" {
		defer os.RemoveAll(dir)
	}
	if err != nil {
		return e.reportBuild(rep, err, "", true), false
	}
	// Read, not verified, as the build's guards read it (see build's guard).
	ro := func() *index.VerifyOptions {
		return &index.VerifyOptions{Unverified: true, IgnoreExpiry: true, Cache: index.NewCacheBudget(diffBlockCache)}
	}
	prev, err := index.OpenRelease(out, ro())
	if err != nil {
		return e.fail("build", fmt.Errorf("--population: cannot read the newest release of %s to compare with: %w", out, err)), false
	}
	defer prev.Close()
	next, err := index.OpenRelease(filepath.Join(dir, "catalog"), ro())
	if err != nil {
		return e.fail("build", err), false
	}
	defer next.Close()
	d, err := diffReleases(prev, next, f, &diff.Options{Now: now, Name: population, Examples: diff.NoExamples})
	if err != nil {
		return e.fail("build", fmt.Errorf("--population: %w", err)), false
	}
	share := fmt.Sprintf("%s of %s PCs of %s change (%s) against release %d", groupDigits(int64(d.Changed)), groupDigits(int64(d.PCs)),
		population, diff.Percent(d.Changed, d.PCs), d.From.Sequence)
	if limit.Exceeded(d.Changed, d.PCs) {
		if !allow {
			fmt.Fprintf(e.stderr, "driveway build: the release would change the offers of too many PCs: %s, more than --max-changed %s; see which with driveway diff --from %s --labels %s --population %s, and pass --allow-change if this is meant; nothing was written\n",
				share, limit, out, labelsOf(full, control), population)
			return exitFailure, false
		}
		if !quiet {
			fmt.Fprintf(e.stderr, "driveway build: --population: %s, more than --max-changed %s, allowed by --allow-change\n", share, limit)
		}
		return 0, true
	}
	if !quiet {
		fmt.Fprintf(e.stderr, "driveway build: --population: %s, within --max-changed %s\n", share, limit)
	}
	return 0, true
}

func labelsOf(full *build.Options, control *build.ControlOptions) string {
	if full != nil {
		return full.Labels
	}
	return control.Labels
}
