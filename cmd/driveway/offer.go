package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/trust"
)

func cmdOffer(e *env, args []string) int {
	fs := e.flags("offer", `
Offer answers one offer request (docs/offers.md) from the newest release of a catalog
directory, exactly as an edge would: the request JSON on stdin (or --request), the response
JSON on stdout. With --explain the response lists every candidate of every device with its
verdict, which is how a publisher finds out why a PC did or did not get a driver.

With --key the release is verified first (signature, hashes, structure); without, offer says
on stderr that it did not verify. --now asks "what would this PC be offered at that time";
an expired release still answers here (with a note), where an edge would stop offering.

--format table explains the answer for people (docs/explain.md): per device its offers and
every candidate row with its verdict, every check it fails (not only the first), the
label's control state (flight, rollout, pause, cancel, blocks with their reasons), what its
row and rank mean, and a device none of whose IDs is in the release said so. --format
explain is the same as JSON. Both imply --explain; the default, json, is the edge's response
byte for byte.`)
	catalog := fs.String("catalog", "", "the catalog `DIR` (required)")
	keys := fs.StringArray("key", nil, "public key `FILE` to verify the release with (repeat for several)")
	threshold := fs.Int("threshold", 1, "distinct keys that must have signed")
	nowFlag := fs.String("now", "", "the time of the request (RFC 3339); default: now")
	explain := fs.Bool("explain", false, "list every candidate with its verdict")
	request := fs.String("request", "", "read the request from `FILE` instead of stdin")
	indent := fs.Bool("indent", false, "indent the JSON for reading (the default is the edge's exact bytes)")
	format := fs.String("format", "json", "json (the edge's response), table (explained for people) or explain (that explanation as JSON)")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	switch *format {
	case "json":
	case "table", "explain":
		*explain = true
	default:
		return e.usageError("offer", fmt.Sprintf("--format %q: want json, table or explain", *format))
	}
	if *catalog == "" {
		return e.usageError("offer", "--catalog is required")
	}
	now, err := e.parseNow(*nowFlag)
	if err != nil {
		return e.usageError("offer", err.Error())
	}
	rel, err := openForReading(e, "offer", *catalog, *keys, *threshold, now)
	if err != nil {
		return e.fail("offer", err)
	}
	defer rel.Close()
	src, err := offer.SourceOf(rel)
	if err != nil {
		return e.fail("offer", err)
	}
	engine, err := offer.NewEngine(src)
	if err != nil {
		return e.fail("offer", err)
	}
	in := e.stdin
	if *request != "" {
		f, err := os.Open(*request)
		if err != nil {
			return e.fail("offer", err)
		}
		defer f.Close()
		in = f
	}
	body, err := io.ReadAll(io.LimitReader(in, int64(offer.DefaultLimits.MaxBody)+1))
	if err != nil {
		return e.fail("offer", err)
	}
	var req offer.Request
	if perr := offer.NewDecoder(offer.DefaultLimits).Decode(body, &req); perr != nil {
		e.stdout.Write(offer.AppendError(nil, perr))
		fmt.Fprintf(e.stderr, "driveway offer: bad request: %s\n", oneLine(perr.Error()))
		return exitFailure
	}
	var res offer.Result
	engine.Decide(&req, now, *explain, &res)
	switch *format {
	case "table":
		writeExplanation(e.stdout, engine.Explain(&req, now, &res))
		return exitOK
	case "explain":
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false) // hardware IDs are full of &
		enc.SetIndent("", "  ")
		enc.Encode(engine.Explain(&req, now, &res))
		return exitOK
	}
	out := offer.AppendResponse(nil, &req, &res, engine.OS())
	if *indent {
		var b bytes.Buffer
		if err := json.Indent(&b, out, "", "  "); err == nil {
			out = b.Bytes()
		}
	}
	e.stdout.Write(out)
	return exitOK
}

// openForReading opens the newest release of a catalog: verified when keys are given (expiry
// at now only noted, since reading an old release is legitimate here), else unverified with a
// note.
func openForReading(e *env, cmd, dir string, keyPaths []string, threshold int, now time.Time) (*index.Release, error) {
	opts := &index.VerifyOptions{Threshold: threshold, IgnoreExpiry: true}
	var root *trust.Root
	if len(keyPaths) == 0 {
		opts.Unverified = true
		fmt.Fprintf(e.stderr, "driveway %s: note: the release was NOT verified (pass --key PUB to verify it)\n", cmd)
	} else {
		keys, err := loadVerifiers(keyPaths)
		if err != nil {
			return nil, err
		}
		// The release keys are the newest root's: the given keys are root 1 (trust package).
		if root, err = trust.FromKeys(keys, threshold); err != nil {
			return nil, err
		}
		if root, err = trust.Update(root, dirRoots(dir)); err != nil {
			return nil, fmt.Errorf("the roots of %s do not verify from these keys: %w", dir, err)
		}
		if opts.Keys, opts.Threshold, err = root.Keys(trust.RoleTargets); err != nil {
			return nil, err
		}
	}
	rel, err := index.OpenRelease(dir, opts)
	if err != nil {
		return nil, err
	}
	if root != nil {
		if err := freshTimestamp(dir, root, rel, now); err != nil {
			fmt.Fprintf(e.stderr, "driveway %s: note: an edge would not serve this release: %s\n", cmd, oneLine(err.Error()))
		}
	}
	if m := rel.Manifest; now.After(m.Expires) {
		fmt.Fprintf(e.stderr, "driveway %s: note: release %d expired at %s; an edge would no longer offer from it\n",
			cmd, m.Sequence, m.Expires.Format(time.RFC3339))
	}
	return rel, nil
}

// freshTimestamp checks, as an edge would, that dir's timestamp names rel and is fresh at now.
func freshTimestamp(dir string, root *trust.Root, rel *index.Release, now time.Time) error {
	b, err := os.ReadFile(filepath.Join(dir, trust.TimestampFile))
	if err != nil {
		return err
	}
	ts, err := root.VerifyTimestamp(b)
	if err != nil {
		return err
	}
	if err := (trust.Rules{}).Check(ts, now, &trust.State{}); err != nil {
		return err
	}
	if ts.Sequence != rel.Manifest.Sequence {
		return fmt.Errorf("the timestamp names release %d, not %d", ts.Sequence, rel.Manifest.Sequence)
	}
	return ts.Names(rel.Envelope)
}

// writeExplanation prints an explained decision for people: per device its offers and a
// table of its candidate rows, each with the checks it fails after the first and its label's
// control state below it; then what row and rank mean.
func writeExplanation(w io.Writer, x *offer.Explanation) {
	fmt.Fprintf(w, "release %d at %s: %s\n", x.Release, x.Now, x.OS)
	for _, d := range x.Devices {
		fmt.Fprintf(w, "\ndevice %s (%s)\n", d.InstanceID, plural(d.IDs, "ID"))
		if len(d.Offers) == 0 {
			fmt.Fprintln(w, "  offered: nothing")
		}
		for _, o := range d.Offers {
			fmt.Fprintf(w, "  offered: %s\n", o)
		}
		if d.Note != "" {
			fmt.Fprintf(w, "  %s\n", d.Note)
		}
		if len(d.Candidates) == 0 {
			continue
		}
		lw, rw := len("label"), len("row")
		for _, c := range d.Candidates {
			lw, rw = max(lw, len(c.Label)), max(rw, len(c.Row))
		}
		fmt.Fprintf(w, "  %-*s  %-*s  %-8s  %-18s  %s\n", lw, "label", rw, "row", "rank", "matched", "verdict: detail")
		for _, c := range d.Candidates {
			fmt.Fprintf(w, "  %-*s  %-*s  %-8s  %-18s  %s: %s\n", lw, c.Label, rw, c.Row, c.Rank, c.Matched, c.Verdict, c.Detail)
			pad := strings.Repeat(" ", 4)
			for i, f := range c.Failing {
				if i > 0 {
					fmt.Fprintf(w, "%salso fails %s: %s\n", pad, f.Verdict, f.Detail)
				}
			}
			if c.Control != "" {
				fmt.Fprintf(w, "%scontrol: %s\n", pad, c.Control)
			}
		}
	}
	fmt.Fprintln(w)
	for _, t := range x.Terms {
		fmt.Fprintln(w, t)
	}
}
