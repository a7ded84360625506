package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/statement"
	"github.com/driveway/driveway/trust"
)

func cmdVerify(e *env, args []string) int {
	fs := e.flags("verify", `
Verify checks a catalog directory offline, with nothing but its files and the public key,
as an edge would: the roots (DIR/root/, each on top of the one before, from --key's keys),
the timestamp (DIR/timestamp.json: signed by the timestamp role, unexpired, naming the
newest release by sequence and sha256), the newest release (the signature over the
manifest with the root's release keys, its file name and its sequence, expiry and the
bounds on time, every shard's size and sha256, the structure of every shard: every offset
in bounds, every block decompresses to its declared size with its checksum, every key
sorted, found through the hash table and routed to the shard that holds it), that
DIR/manifest is that release's envelope, and that every file under releases/ holds the
release its name says. It prints one line per check and exits 0 only if every check holds;
a failure names the file and the fault.

Key rotation: repeat --key and set --threshold to require several signatures; after a
rotation (driveway rotate) the keys of any earlier root still verify the chain.`)
	catalog := fs.String("catalog", "", "the catalog `DIR` (a build's --out) (required)")
	keys := fs.StringArray("key", nil, "public key `FILE` (required; repeat for several)")
	threshold := fs.Int("threshold", 1, "distinct keys that must have signed")
	ignoreExpiry := fs.Bool("ignore-expiry", false, "accept an expired release and timestamp (archives)")
	shallow := fs.Bool("shallow", false, "check sizes and hashes but not the structure of every shard")
	asJSON := fs.Bool("json", false, "print the checks as JSON: each one's name, ok, file and error")
	nowFlag := fs.String("now", "", "check expiry at `TIME` (RFC 3339) instead of now")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	now, err := e.parseNow(*nowFlag)
	if err != nil {
		return e.usageError("verify", err.Error())
	}
	if *catalog == "" || len(*keys) == 0 {
		return e.usageError("verify", "--catalog and --key are required")
	}
	verifiers, err := loadVerifiers(*keys)
	if err != nil {
		return e.fail("verify", err)
	}
	type check struct {
		Name  string `json:"name"`
		Check string `json:"check"`
		OK    bool   `json:"ok"`
		File  string `json:"file,omitempty"`
		Error string `json:"error,omitempty"`
	}
	var checks []check
	failed := false
	report := func(name, what, file string, err error) {
		c := check{Name: name, Check: what, OK: err == nil, File: file}
		if err != nil {
			c.Error = oneLine(err.Error())
			failed = true
		}
		checks = append(checks, c)
		if !*asJSON {
			if c.OK {
				fmt.Fprintf(e.stdout, "ok    %s\n", c.Check)
			} else {
				fmt.Fprintf(e.stdout, "FAIL  %s: %s\n", c.Check, c.Error)
			}
		}
	}

	// Roots: the chain from the configured keys.
	root, err := trust.FromKeys(verifiers, *threshold)
	if err != nil {
		return e.fail("verify", err)
	}
	base := root.Version()
	root, err = trust.Update(root, dirRoots(*catalog))
	if err == nil && !*ignoreExpiry && now.After(root.Expires()) {
		err = fmt.Errorf("root %d expired at %s", root.Version(), root.Expires().UTC().Format(time.RFC3339))
	}
	rootFile := ""
	if root.Version() > base {
		rootFile = filepath.Join(*catalog, filepath.FromSlash(trust.RootPath(root.Version())))
	}
	report("root", fmt.Sprintf("root: version %d (roots after the given keys: %d)", root.Version(), root.Version()-base), rootFile, err)

	// The newest release, with the root's release keys.
	releaseKeys, releaseThreshold, err := root.Keys(trust.RoleTargets)
	if err != nil {
		return e.fail("verify", err)
	}
	m, _ := index.Verify(*catalog, &index.VerifyOptions{Keys: releaseKeys, Threshold: releaseThreshold, Now: now, IgnoreExpiry: *ignoreExpiry, Shallow: *shallow},
		func(s index.Step) { report(s.Name, s.What, s.File, s.Err) })
	seq, env, latestErr := index.Latest(*catalog)

	// The release statement: signed by the release keys, naming the manifest's release and
	// committing to the tree of its label records' package records, recomputed here as an
	// edge does at load (what PCs check every offer against).
	if m != nil && latestErr == nil {
		stErr := func() error {
			if len(m.Statement) == 0 {
				return fmt.Errorf("release %d has no release statement: PCs could not verify its offers (rebuild it)", m.Sequence)
			}
			st, err := statement.Open(m.Statement, releaseThreshold, releaseKeys...)
			if err != nil {
				return err
			}
			rel, err := index.OpenEnvelope(*catalog, env, &index.VerifyOptions{Keys: releaseKeys, Threshold: releaseThreshold, Now: now, IgnoreExpiry: *ignoreExpiry, Shallow: true})
			if err != nil {
				return err
			}
			defer rel.Close()
			recs, err := serve.ReleaseRecords(rel)
			if err != nil {
				return err
			}
			return st.Matches(m.Catalog, m.Sequence, m.Created, m.Expires, recs.Tree())
		}()
		report("statement", "release statement: signed by the release keys, names the release, its tree hash is the tree of the label records", index.ReleasePath(*catalog, seq), stErr)
	}

	// The timestamp.
	tsPath := filepath.Join(*catalog, trust.TimestampFile)
	tsErr := func() error {
		b, err := os.ReadFile(tsPath)
		if err != nil {
			return fmt.Errorf("%w (edges serve nothing without one: driveway timestamp)", err)
		}
		ts, err := root.VerifyTimestamp(b)
		if err != nil {
			return err
		}
		if !*ignoreExpiry {
			if err := (trust.Rules{}).Check(ts, now, &trust.State{}); err != nil {
				return err
			}
		}
		if latestErr != nil {
			return latestErr
		}
		if ts.Sequence != seq {
			return fmt.Errorf("the timestamp names release %d, the newest release is %d", ts.Sequence, seq)
		}
		if err := ts.Names(env); err != nil {
			return err
		}
		if m != nil && ts.Catalog != m.Catalog {
			return fmt.Errorf("the timestamp is for catalog %q, the release is of %q", ts.Catalog, m.Catalog)
		}
		return nil
	}()
	report("timestamp", "timestamp: names the newest release, signed by the timestamp role, unexpired", tsPath, tsErr)

	// What origin edges and mirrors read besides: DIR/manifest, and the names of releases/.
	manifestPath := filepath.Join(*catalog, index.ManifestFile)
	manifestErr := func() error {
		b, err := os.ReadFile(manifestPath)
		if err != nil {
			return err
		}
		if latestErr != nil {
			return latestErr
		}
		if !bytes.Equal(b, env) {
			return fmt.Errorf("%s is not the envelope of the newest release %d (%s)", manifestPath, seq, index.ReleasePath(*catalog, seq))
		}
		return nil
	}()
	report("manifest-file", "manifest file: the newest release's envelope", manifestPath, manifestErr)
	seqs, err := index.Sequences(*catalog)
	misnamed := 0
	if err == nil {
		for _, n := range seqs {
			p := index.ReleasePath(*catalog, n)
			b, err := os.ReadFile(p)
			if err == nil {
				var rm *index.Manifest
				if rm, err = unverifiedManifest(b); err == nil && rm.Sequence != n {
					err = fmt.Errorf("%s holds release %d: a file renamed or copied over another", p, rm.Sequence)
				}
			}
			if err != nil {
				misnamed++
				report("release-names", fmt.Sprintf("release file %d: its name and its sequence agree", n), p, err)
			}
		}
	}
	if err == nil && misnamed == 0 {
		report("release-names", fmt.Sprintf("release files: %d, each named by its sequence", len(seqs)), filepath.Join(*catalog, index.ReleasesDir), nil)
	} else if err != nil {
		report("release-names", "release files", filepath.Join(*catalog, index.ReleasesDir), err)
	}

	if *asJSON {
		out := struct {
			OK       bool    `json:"ok"`
			Sequence uint64  `json:"sequence,omitempty"`
			Checks   []check `json:"checks"`
		}{OK: !failed, Checks: checks}
		if m != nil {
			out.Sequence = m.Sequence
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
	}
	if failed {
		if !*asJSON {
			fmt.Fprintf(e.stderr, "driveway verify: %s does not verify\n", *catalog)
		}
		return exitFailure
	}
	if !*asJSON {
		fmt.Fprintf(e.stderr, "release %d of %s verifies\n", m.Sequence, m.Catalog)
	}
	return exitOK
}

func loadVerifiers(paths []string) ([]*signing.Verifier, error) {
	var vs []*signing.Verifier
	for _, p := range paths {
		v, err := signing.LoadVerifier(p)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, nil
}
