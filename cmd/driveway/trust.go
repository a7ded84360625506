package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/atomicfile"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/trust"
)

func cmdTimestamp(e *env, args []string) int {
	fs := e.flags("timestamp", `
Timestamp signs a new timestamp for the newest release of a catalog directory and writes it
to DIR/timestamp.json: a short-lived statement (TUF's timestamp role) that this release is
the newest. Edges serve only the release the newest valid timestamp names, and nothing once
it has expired, so that an old release cannot be replayed to them. driveway build writes one
with every release; run this on a schedule (hourly, say) to keep the release fresh, with the
timestamp key (the release key unless a rotation gave the timestamp role its own key).

It reads only the newest envelope (no shard), so it takes milliseconds for any catalog.`)
	catalog := fs.String("catalog", "", "the catalog `DIR` (required)")
	keys := fs.StringArray("key", nil, "the timestamp role's private key `FILE` or KMS reference (required; repeat for several)")
	validity := fs.Duration("expires-after", trust.DefaultTimestampValidity, "how long the timestamp is valid")
	nowFlag := fs.String("now", "", "the signing `TIME` (RFC 3339); default: now")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if *catalog == "" || len(*keys) == 0 {
		return e.usageError("timestamp", "--catalog and --key are required")
	}
	if *validity <= 0 || *validity > 7*24*time.Hour {
		return e.usageError("timestamp", fmt.Sprintf("--expires-after %s: want more than 0 and at most 168h (edges refuse longer ones)", *validity))
	}
	now, err := e.parseNow(*nowFlag)
	if err != nil {
		return e.usageError("timestamp", err.Error())
	}
	signers, err := loadSigners(*keys)
	if err != nil {
		return e.fail("timestamp", err)
	}
	seq, env, err := index.Latest(*catalog)
	if err != nil {
		return e.fail("timestamp", err)
	}
	m, err := unverifiedManifest(env)
	if err != nil {
		return e.fail("timestamp", fmt.Errorf("%s: %w", index.ReleasePath(*catalog, seq), err))
	}
	switch {
	case m.Sequence != seq:
		return e.fail("timestamp", fmt.Errorf("%s holds release %d: the newest file is not the newest release; refusing to vouch for it", index.ReleasePath(*catalog, seq), m.Sequence))
	case now.After(m.Expires):
		return e.fail("timestamp", fmt.Errorf("release %d expired at %s: publish a new one (driveway build, or --control-only to re-sign it)", m.Sequence, m.Expires.UTC().Format(time.RFC3339)))
	case m.Created.After(now.Add(index.DefaultSkew)):
		return e.fail("timestamp", fmt.Errorf("release %d was created at %s, in the future: edges refuse it", m.Sequence, m.Created.UTC().Format(time.RFC3339)))
	case m.Expires.Sub(m.Created) > index.DefaultMaxValidity:
		return e.fail("timestamp", fmt.Errorf("release %d is valid for %s, longer than the %s edges accept", m.Sequence, m.Expires.Sub(m.Created), index.DefaultMaxValidity))
	}
	if root, err := trust.NewestRootFile(*catalog); err != nil {
		return e.fail("timestamp", err)
	} else if root != nil {
		if err := root.Holds(trust.RoleTimestamp, signers); err != nil {
			return e.fail("timestamp", err)
		}
	}
	ts, err := trust.Stamp(*catalog, m.Catalog, m.Sequence, env, now, now.Add(*validity), signers...)
	if err != nil {
		return e.fail("timestamp", err)
	}
	fmt.Fprintf(e.stderr, "timestamp %d: release %d of %s is the newest, until %s\n", ts.Version, ts.Sequence, ts.Catalog, ts.Expires.Format(time.RFC3339))
	return exitOK
}

func cmdRotate(e *env, args []string) int {
	fs := e.flags("rotate", `
Rotate moves a catalog's trust from its current keys to new ones, in-band: it writes the
next root (DIR/root/<N>.root.json, TUF's root role), signed by the current root's keys and
by the new ones, that names the keys of every role: root (the next rotation), targets
(release manifests) and timestamp. Edges configured with any earlier root's keys follow the
chain by themselves, and refuse from then on what only a dropped key signs: to revoke a
compromised key, rotate to keys without it.

The current root is the configured keys' (root 1: --key's public halves, every role) or the
newest root file of DIR that verifies on top of them.

After rotating, build and timestamp with the new keys. Publish the root file with the
release (an origin serves DIR as it is).`)
	catalog := fs.String("catalog", "", "the catalog `DIR` (required)")
	oldKeys := fs.StringArray("key", nil, "a private key `FILE` of the current root (required; repeat to meet its threshold)")
	threshold := fs.Int("threshold", 1, "root 1's threshold (the edges' --threshold)")
	newKeys := fs.StringArray("new-key", nil, "a private key `FILE` of the new root and targets roles (required; repeat for several)")
	newThreshold := fs.Int("new-threshold", 1, "signatures the new root requires for each role")
	tsKeys := fs.StringArray("timestamp-key", nil, "a public key `FILE` for the timestamp role (default: the new keys)")
	validity := fs.Duration("expires-after", 365*24*time.Hour, "how long the new root is trusted")
	nowFlag := fs.String("now", "", "the signing `TIME` (RFC 3339); default: now")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if *catalog == "" || len(*oldKeys) == 0 || len(*newKeys) == 0 {
		return e.usageError("rotate", "--catalog, --key and --new-key are required")
	}
	now, err := e.parseNow(*nowFlag)
	if err != nil {
		return e.usageError("rotate", err.Error())
	}
	old, err := loadSigners(*oldKeys)
	if err != nil {
		return e.fail("rotate", err)
	}
	next, err := loadSigners(*newKeys)
	if err != nil {
		return e.fail("rotate", err)
	}
	var oldPub, newPub []*signing.Verifier
	for _, s := range old {
		oldPub = append(oldPub, s.Verifier())
	}
	for _, s := range next {
		newPub = append(newPub, s.Verifier())
	}
	tsPub := newPub
	if len(*tsKeys) > 0 {
		if tsPub, err = loadVerifiers(*tsKeys); err != nil {
			return e.fail("rotate", err)
		}
	}
	base, err := trust.FromKeys(oldPub, *threshold)
	if err != nil {
		return e.fail("rotate", err)
	}
	cur, err := trust.Update(base, dirRoots(*catalog))
	if err != nil {
		return e.fail("rotate", fmt.Errorf("the roots of %s do not verify from these keys: %w", *catalog, err))
	}
	catalogName := cur.Catalog()
	if m, err := newestManifest(*catalog); err == nil && catalogName == "" {
		catalogName = m.Catalog
	}
	nk := trust.RootKeys{Keys: newPub, Threshold: *newThreshold}
	b, err := trust.NewRoot(cur, catalogName, now.Add(*validity), nk, nk, trust.RootKeys{Keys: tsPub, Threshold: *newThreshold}, append(old, next...)...)
	if err != nil {
		return e.fail("rotate", err)
	}
	path := filepath.Join(*catalog, filepath.FromSlash(trust.RootPath(cur.Version()+1)))
	if err := atomicfile.Write(path, b, 0o644); err != nil {
		return e.fail("rotate", err)
	}
	fmt.Fprintf(e.stderr, "wrote %s: root %d of %s, trusted until %s; build and timestamp with the new keys from now on\n",
		path, cur.Version()+1, catalogName, now.Add(*validity).UTC().Format(time.RFC3339))
	return exitOK
}

// dirRoots reads root files of a catalog directory for trust.Update.
func dirRoots(dir string) func(n int64) ([]byte, error) {
	return func(n int64) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(trust.RootPath(n))))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return b, err
	}
}

// unverifiedManifest reads an envelope's manifest without checking its signature.
func unverifiedManifest(env []byte) (*index.Manifest, error) {
	payload, err := signing.Payload(env, index.ManifestType)
	if err != nil {
		return nil, err
	}
	return index.ParseManifest(payload)
}

// newestManifest reads the newest release's manifest of dir, unverified.
func newestManifest(dir string) (*index.Manifest, error) {
	_, env, err := index.Latest(dir)
	if err != nil {
		return nil, err
	}
	return unverifiedManifest(env)
}

// loadSigners loads private keys (files or KMS references).
func loadSigners(refs []string) ([]*signing.Signer, error) {
	var out []*signing.Signer
	for _, r := range refs {
		s, err := signing.LoadSigner(context.Background(), r, signing.PasswordFromEnv())
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
