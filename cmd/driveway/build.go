package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/driveway/driveway/build"
	"github.com/driveway/driveway/catalogs/ostable"
	"github.com/driveway/driveway/diff"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/signing"
)

func cmdBuild(e *env, args []string) int {
	fs := e.flags("build", `
Build validates a label tree with every rule of docs/labels.md, compiles it into a catalog
release (hash-indexed zstd shards keyed by hardware ID and OS release, plus a signed
manifest) and publishes it into --out atomically: shards first, the manifest last. The last
--keep releases stay; shards no kept release names are removed. Unchanged shards are reused,
so a change of rollout, flight or cancel state alone writes only a new manifest.

Each problem is printed on stderr as one line, CODE file#pointer: message. On any error the
build writes nothing and exits 1, unless --skip-invalid leaves the failing labels out.
The signing key's password, if it has one, comes from DRIVEWAY_KEY_PASSWORD.

A build cannot publish an outage by accident. A --labels directory without products/ is
not a label tree (a typo, the parent of the tree): build and validate refuse it, naming the
subdirectory that is one. Before writing anything, build compares the release with the
newest one in --out and refuses, with one line naming the numbers, a release that drops
more than --max-drop (10%) of that release's labels (by label id), or that holds no label at
all (a first build too), unless --allow-shrink; and one whose catalog name (catalog.json
"name", else the tree's directory name) differs from that release's, unless
--allow-catalog-change.

With --population FILE (offer requests, one per line), build first builds the release into a
temporary directory, replays those PCs against it and the newest release in --out, and
refuses, writing nothing, a release that changes the offers of more PCs than --max-changed
(5%), unless --allow-change (docs/diff.md; driveway diff shows which PCs and why).

A build keeps what it compiled of each product directory in a cache (--cache, by default
beside --out): the next build reads, validates and compiles only the product directories
whose files changed, and reruns the rules that span labels over the rest. The release is
byte-identical to a build without the cache (--no-cache); a damaged or foreign cache entry
is ignored and said so.

--control-only publishes a new manifest over the shards of the newest release in --out,
reading only the files of the labels given with --label (whose rollout, flight or cancel
state changed) and the catalog-wide files (blocks, audiences): well under a second for a
catalog of any size. It refuses a label that changed beyond that state. With no --label it
re-signs the release with the current blocks and audiences and a fresh expiry. It keeps the
release's labels and catalog name, and refuses a tree whose catalog.json names another.`)
	labels := fs.String("labels", "", "the label tree `DIR` (required)")
	out := fs.String("out", "", "the catalog `DIR` to publish into (required)")
	keys := fs.StringArray("key", nil, "private signing key `FILE` or KMS reference (required; repeat to sign with several keys)")
	logKeyFile := fs.String("log-key", "", "append the release to the catalog's transparency log with this log key `FILE` (driveway keygen --type log); required once --out has a log")
	nowFlag := fs.String("now", "", "the release's creation `TIME` (RFC 3339); default: now")
	skipInvalid := fs.Bool("skip-invalid", false, "leave invalid labels out and build the rest")
	report := fs.String("report", "", "write a JSON report of the build to `FILE` (- for stdout)")
	requireFlight := fs.Bool("require-flight", false, "make an automatic label that never flighted an error (L065)")
	osTable := fs.String("os-table", "", "an OS table `FILE` replacing the embedded one")
	hwidShards := fs.Int("hwid-shards", build.DefaultHWIDShards, "number of hardware ID shards")
	labelShards := fs.Int("label-shards", build.DefaultLabelShards, "number of label shards")
	expires := fs.Duration("expires-after", 0, "how long the release is valid (default: catalog.json expiresAfter, else 168h)")
	keep := fs.Int("keep", build.DefaultKeep, "releases to keep")
	quiet := fs.Bool("quiet", false, "no summary and no progress on stderr (problems are still printed)")
	jsonOut := fs.Bool("json", false, "print the build's report (the --report document) as JSON on stdout instead of the summary; problems still go to stderr")
	controlOnly := fs.Bool("control-only", false, "publish a new manifest over the current shards (see above)")
	changed := fs.StringArray("label", nil, "with --control-only: a label `ID` whose control state changed (repeat)")
	allowShrink := fs.Bool("allow-shrink", false, "publish a release that drops more than --max-drop of the previous release's labels, or holds none")
	maxDrop := fs.String("max-drop", "10%", "the share of the previous release's labels, in `PERCENT` (0% to 100%), a release may drop without --allow-shrink")
	allowCatalogChange := fs.Bool("allow-catalog-change", false, "publish a release whose catalog name differs from the previous release's")
	population := fs.String("population", "", "before publishing, replay the PCs of `FILE` (offer requests, one per line) against the newest release and this one (docs/diff.md)")
	maxChanged := fs.String("max-changed", "5%", "with --population: the most PCs the release may change, a `LIMIT` in percent of the population (5%) or PCs (500)")
	allowChange := fs.Bool("allow-change", false, "with --population: publish a release that changes more PCs than --max-changed")
	cacheDir := fs.String("cache", "", "the build cache `DIR` (default: --out's path with .build-cache appended, beside it)")
	noCache := fs.Bool("no-cache", false, "read, validate and compile every product directory (the cache is neither read nor written)")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	fail := func(err error) int { // a failure before the build's report: with --json, as JSON too
		if *jsonOut {
			return e.reportBuildAs(nil, err, "", true, true)
		}
		return e.fail("build", err)
	}
	if *labels == "" || *out == "" || len(*keys) == 0 {
		return e.usageError("build", "--labels, --out and --key are required")
	}
	now, err := e.parseNow(*nowFlag)
	if err != nil {
		return e.usageError("build", err.Error())
	}
	if ahead := now.Sub(e.now()); ahead > index.DefaultSkew {
		return fail(fmt.Errorf("--now %s is %s ahead of this machine's clock: edges refuse a release created in the future; build at the current time (no --now)",
			now.Format(time.RFC3339), ahead.Round(time.Second)))
	}
	maxDropPercent, err := parseMaxDrop(*maxDrop)
	if err != nil {
		return e.usageError("build", err.Error())
	}
	if *controlOnly && (*allowShrink || *allowCatalogChange || fs.Changed("max-drop")) {
		return e.usageError("build", "--allow-shrink, --max-drop and --allow-catalog-change go with a full build, not --control-only (which keeps the labels and the catalog name)")
	}
	changeLimit, err := diff.ParseLimit(*maxChanged)
	if err != nil {
		return e.usageError("build", "--max-changed "+err.Error())
	}
	if *population == "" && (fs.Changed("max-changed") || *allowChange) {
		return e.usageError("build", "--max-changed and --allow-change go with --population")
	}
	var tab *ostable.Table
	if *osTable != "" {
		if tab, err = ostable.Load(*osTable); err != nil {
			return fail(err)
		}
	}
	var signers []*signing.Signer
	for _, k := range *keys {
		s, err := signing.LoadSigner(context.Background(), k, signing.PasswordFromEnv())
		if err != nil {
			return fail(err)
		}
		signers = append(signers, s)
	}
	logKey, err := loadLogKey(*logKeyFile)
	if err != nil {
		return fail(err)
	}
	if *controlOnly {
		copts := build.ControlOptions{Labels: *labels, Out: *out, Signers: signers, Now: now,
			LabelIDs: *changed, ExpiresAfter: *expires, Keep: *keep, LogKey: logKey}
		if *population != "" {
			if code, ok := e.populationGuard(nil, &copts, *population, changeLimit, *allowChange, *quiet); !ok {
				return code
			}
		}
		rep, err := build.Control(context.Background(), copts)
		return e.reportBuildAs(rep, err, *report, *quiet, *jsonOut)
	} else if len(*changed) > 0 {
		return e.usageError("build", "--label goes with --control-only")
	}
	opts := build.Options{
		Labels: *labels, Out: *out, Signers: signers, Now: now, SkipInvalid: *skipInvalid, RequireFlight: *requireFlight,
		OSTable: tab, HWIDShards: *hwidShards, LabelShards: *labelShards, ExpiresAfter: *expires, Keep: *keep,
		AllowShrink: *allowShrink, MaxDropPercent: maxDropPercent, AllowCatalogChange: *allowCatalogChange,
		LogKey: logKey, Cache: *cacheDir,
	}
	if *noCache {
		opts.Cache = ""
	} else if opts.Cache == "" {
		opts.Cache = filepath.Clean(*out) + ".build-cache"
	}
	if *population != "" {
		if code, ok := e.populationGuard(&opts, nil, *population, changeLimit, *allowChange, *quiet); !ok {
			return code
		}
	}
	var finish func()
	opts.Progress, finish = progressTo(e.stderr, "build", *quiet)
	rep, err := build.Build(context.Background(), opts)
	finish()
	return e.reportBuildAs(rep, err, *report, *quiet, *jsonOut)
}

// reportBuild prints a build's problems and summary and writes its report.
func (e *env) reportBuild(rep *build.Report, err error, report string, quiet bool) int {
	return e.reportBuildAs(rep, err, report, quiet, false)
}

// reportBuildAs is reportBuild, with the report as JSON on stdout instead of the summary
// when asJSON (a failure without a report is {"ok": false, "error": …}).
func (e *env) reportBuildAs(rep *build.Report, err error, report string, quiet, asJSON bool) int {
	if rep != nil {
		for _, p := range rep.Problems {
			fmt.Fprintln(e.stderr, p)
		}
		if report == "-" {
			if b, werr := reportJSON(rep); werr == nil {
				e.stdout.Write(append(b, '\n'))
			}
		} else if report != "" {
			if werr := writeReport(report, rep); werr != nil {
				return e.fail("build", werr)
			}
		}
	}
	if asJSON {
		var b []byte
		if rep != nil {
			b, _ = reportJSON(rep)
		} else {
			b, _ = json.MarshalIndent(map[string]any{"ok": false, "error": oneLine(err.Error())}, "", "  ")
		}
		e.stdout.Write(append(b, '\n'))
		quiet = true // the JSON is the summary; problems and failures still go to stderr
	}
	if err != nil {
		if errors.Is(err, build.ErrInvalid) {
			fmt.Fprintf(e.stderr, "driveway build: %s, %s in %s; nothing was written\n", count(rep.Errors, "error"), count(rep.Warnings, "warning"), count(rep.Labels, "label"))
			return exitFailure
		}
		var refused *build.RefusedError
		if errors.As(err, &refused) {
			fmt.Fprintf(e.stderr, "driveway build: %s; nothing was written\n", oneLine(strings.Join(refused.Reasons, "; ")))
			return exitFailure
		}
		return e.fail("build", err)
	}
	if rep.PruneError != "" {
		fmt.Fprintf(e.stderr, "driveway build: warning: release %d is published, but old releases could not be pruned: %s (the next build prunes again)\n", rep.Sequence, oneLine(rep.PruneError))
	}
	if rep.TimestampNote != "" {
		fmt.Fprintf(e.stderr, "driveway build: note: %s\n", rep.TimestampNote)
	}
	if !quiet {
		what := fmt.Sprintf("%d shards written, %d reused", rep.ShardsWritten, rep.ShardsReused)
		if rep.ControlOnly {
			what = "control-only: every shard reused, new manifest"
		}
		fmt.Fprintf(e.stderr, "release %d of %s: %s; %s, %s, %s bytes of shards; %s; expires %s\n",
			rep.Sequence, rep.Catalog, labelCounts(rep), count(rep.Rows, "row"), count(rep.HWIDs, "hardware ID"),
			groupDigits(rep.ShardBytes), what, rep.Expires.Format(time.RFC3339))
		if rep.Log != "" {
			fmt.Fprintf(e.stderr, "logged: transparency log checkpoint %s\n", rep.Log)
		}
		if rep.Cache != nil {
			fmt.Fprintln(e.stderr, rep.Cache)
		}
	}
	return exitOK
}

// labelCounts says what became of the tree's labels, in counts that add up: "20,000 labels:
// 19,805 built, 195 without a row on a live OS release, 0 left out as invalid".
func labelCounts(rep *build.Report) string {
	if rep.ControlOnly || rep.Labels == 0 {
		return count(rep.LabelsBuilt, "label")
	}
	s := fmt.Sprintf("%s: %s built", count(rep.Labels, "label"), groupDigits(int64(rep.LabelsBuilt)))
	if empty := rep.Labels - rep.LabelsBuilt - rep.LabelsSkipped; empty > 0 {
		s += fmt.Sprintf(", %s without a row on a live OS release (nothing to offer)", groupDigits(int64(empty)))
	}
	return s + fmt.Sprintf(", %s left out as invalid", groupDigits(int64(rep.LabelsSkipped)))
}

func writeReport(path string, rep *build.Report) error {
	b, err := reportJSON(rep)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// reportJSON is the build report document (--report, --json): the report and its problems.
func reportJSON(rep *build.Report) ([]byte, error) {
	return json.MarshalIndent(struct {
		*build.Report
		Problems []problemJSON `json:"problems"`
	}{rep, problemsJSON(rep.Problems)}, "", "  ")
}

// parseMaxDrop reads --max-drop: a percent, "10%" or "10", as build.Options.MaxDropPercent
// (0% is build.NoDrop: a zero there would take the default).
func parseMaxDrop(s string) (float64, error) {
	p, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%")), 64)
	if err != nil || p < 0 || p > 100 || p != p {
		return 0, fmt.Errorf("--max-drop %q is not a percent from 0%% to 100%%, like 10%%", s)
	}
	if p == 0 {
		return build.NoDrop, nil
	}
	return p, nil
}

// parseNow reads a --now flag: RFC 3339, or "" for the command's clock.
func (e *env) parseNow(s string) (time.Time, error) {
	if s == "" {
		return e.now().UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--now %q is not an RFC 3339 time like 2026-11-21T12:00:00Z", s)
	}
	return t, nil
}

func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
