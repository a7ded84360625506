// Package trust holds a catalog's trust metadata: which keys may sign what, and which release
// is the newest. It uses the metadata formats of The Update Framework (TUF, specification
// 1.0), written and checked with go-tuf/v2's metadata package (canonical JSON, signatures by
// the keys a root names for each role, thresholds).
//
// # Files
//
// Beside its releases (package index's layout), a catalog directory holds
//
//	timestamp.json        the timestamp: the newest release, signed for a short time
//	root/<N>.root.json    root N (N >= 2): a new set of keys for the roles (a rotation)
//
// # Roles
//
//	root       signs the next root; root N+1 needs the threshold of root N's root keys and
//	           of its own
//	targets    signs release manifests (the DSSE envelopes releases/<seq>.dsse)
//	timestamp  signs timestamp.json
//	snapshot   TUF's; present (with the targets keys) and unused: a release manifest already
//	           pins every shard by size and sha256, which is the snapshot's job
//
// Root 1 is never a file: it is the keys an edge or a verifier is configured with (--key,
// --threshold), holding every role, so a catalog that never rotates needs no root file.
// Root N+1 is accepted only on top of root N, so an edge configured with the keys of any
// root follows every later rotation by itself, and a key that a later root drops (revoked)
// no longer signs anything the edge accepts.
//
// # Timestamp
//
//	{"signed": {"_type": "timestamp", "spec_version": "1.0.31", "version": 7,
//	            "expires": "2026-11-22T12:00:00Z",
//	            "meta": {"release": {"version": 42, "length": 1934,
//	                                 "hashes": {"sha256": "<hex sha256 of the envelope>"}}},
//	            "x-driveway-catalog": "contoso-example"},
//	 "signatures": [{"keyid": "<TUF key id>", "sig": "<hex>"}]}
//
// meta["release"] names the newest release: its sequence (version) and the length and
// sha256 of its envelope's bytes. The catalog's name is bound in. version grows by one each
// time the statement is signed; expires is short (hours: default 24 h). The pipeline signs a
// new one after every build and on a schedule (driveway timestamp). An edge serves only the
// release named by the newest timestamp it has verified, and nothing once that timestamp has
// expired, so an old (still validly signed) release can be replayed to a freshly started
// edge only while a timestamp naming it is still unexpired: within one timestamp lifetime
// of its successor's publication.
//
// A future incompatible format would change the meta key ("release") or the type.
package trust

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/driveway/driveway/signing"
)

// Files in a catalog directory.
const (
	TimestampFile = "timestamp.json"
	RootDir       = "root"
)

// RootPath is the name of root version n inside a catalog directory (slash-separated).
func RootPath(n int64) string { return fmt.Sprintf("%s/%d.root.json", RootDir, n) }

// Roles.
const (
	RoleRoot      = metadata.ROOT
	RoleTargets   = metadata.TARGETS
	RoleTimestamp = metadata.TIMESTAMP
	roleSnapshot  = metadata.SNAPSHOT
)

// Limits on what is parsed: a hostile file cannot make a reader allocate or verify without
// bound.
const (
	MaxTimestampSize = 64 << 10
	MaxRootSize      = 1 << 20
	maxSignatures    = 64
	maxKeys          = 64
)

// catalogField is the custom field that binds a catalog's name into the signed metadata.
const catalogField = "x-driveway-catalog"

// releaseMeta is the timestamp's meta key for the newest release.
const releaseMeta = "release"

// DefaultTimestampValidity is how long a timestamp is valid unless told otherwise.
const DefaultTimestampValidity = 24 * time.Hour

// Root is a trusted root: the keys and threshold of every role. It is immutable.
type Root struct {
	md  *metadata.Metadata[metadata.RootType]
	raw []byte // the file's bytes; nil for root 1, made of keys
}

// FromKeys makes root 1: every role held by keys at threshold (0 means 1).
func FromKeys(keys []*signing.Verifier, threshold int) (*Root, error) {
	if len(keys) == 0 {
		return nil, errors.New("trust: no key to trust")
	}
	if threshold < 1 {
		threshold = 1
	}
	md := metadata.Root(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	ids, err := addKeys(&md.Signed, keys)
	if err != nil {
		return nil, err
	}
	if threshold > len(ids) {
		return nil, fmt.Errorf("trust: threshold %d is more than the %d distinct keys", threshold, len(ids))
	}
	for _, role := range []string{RoleRoot, RoleTargets, RoleTimestamp, roleSnapshot} {
		md.Signed.Roles[role] = &metadata.Role{KeyIDs: ids, Threshold: threshold}
	}
	return &Root{md: md}, nil
}

// addKeys adds keys to a root's key table and returns their TUF key ids, sorted, each once.
func addKeys(r *metadata.RootType, keys []*signing.Verifier) ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	for i, v := range keys {
		if v == nil {
			return nil, fmt.Errorf("trust: key %d is missing", i+1)
		}
		k, err := metadata.KeyFromPublicKey(v.PublicKey())
		if err != nil {
			return nil, fmt.Errorf("trust: key %s: %w", v.KeyID(), err)
		}
		id, err := k.ID()
		if err != nil {
			return nil, fmt.Errorf("trust: key %s: %w", v.KeyID(), err)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
			r.Keys[id] = k
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Version is the root's version: 1 for the configured keys.
func (r *Root) Version() int64 { return r.md.Signed.Version }

// Expires is when the root stops being trusted (root 1 never expires).
func (r *Root) Expires() time.Time { return r.md.Signed.Expires }

// Bytes is the root's file (nil for root 1).
func (r *Root) Bytes() []byte { return r.raw }

// Catalog is the catalog a root is for, if it names one.
func (r *Root) Catalog() string {
	s, _ := r.md.Signed.UnrecognizedFields[catalogField].(string)
	return s
}

// Keys returns the verifiers and threshold of a role.
func (r *Root) Keys(role string) ([]*signing.Verifier, int, error) {
	rl := r.md.Signed.Roles[role]
	if rl == nil || len(rl.KeyIDs) == 0 {
		return nil, 0, fmt.Errorf("trust: root %d has no keys for the %s role", r.Version(), role)
	}
	var out []*signing.Verifier
	for _, id := range rl.KeyIDs {
		k := r.md.Signed.Keys[id]
		if k == nil {
			return nil, 0, fmt.Errorf("trust: root %d: the %s role names key %s, which it does not hold", r.Version(), role, id)
		}
		pub, err := k.ToPublicKey()
		if err != nil {
			return nil, 0, fmt.Errorf("trust: root %d: key %s: %w", r.Version(), id, err)
		}
		v, err := signing.NewVerifier(pub)
		if err != nil {
			return nil, 0, fmt.Errorf("trust: root %d: key %s: %w", r.Version(), id, err)
		}
		out = append(out, v)
	}
	return out, rl.Threshold, nil
}

// ErrUntrusted wraps every failure to verify trust metadata.
var ErrUntrusted = errors.New("trust: not trusted")

// Next verifies b as the root that follows r: version r.Version()+1, signed by the threshold
// of r's root keys and by the threshold of its own, every role with keys. Expiry is the
// caller's to check on the last root of a chain (TUF's rule: an intermediate root may have
// expired).
func (r *Root) Next(b []byte) (*Root, error) {
	if len(b) > MaxRootSize {
		return nil, fmt.Errorf("%w: root file is %d bytes (at most %d)", ErrUntrusted, len(b), MaxRootSize)
	}
	md, err := metadata.Root().FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: root %d: %v", ErrUntrusted, r.Version()+1, err)
	}
	if len(md.Signatures) > maxSignatures || len(md.Signed.Keys) > maxKeys {
		return nil, fmt.Errorf("%w: root %d: %d signatures and %d keys (at most %d and %d)", ErrUntrusted, r.Version()+1, len(md.Signatures), len(md.Signed.Keys), maxSignatures, maxKeys)
	}
	if md.Signed.Version != r.Version()+1 {
		return nil, fmt.Errorf("%w: root file says version %d, want %d", ErrUntrusted, md.Signed.Version, r.Version()+1)
	}
	if err := r.md.VerifyDelegate(RoleRoot, md); err != nil {
		return nil, fmt.Errorf("%w: root %d is not signed by %d of root %d's root keys", ErrUntrusted, md.Signed.Version, r.md.Signed.Roles[RoleRoot].Threshold, r.Version())
	}
	if err := md.VerifyDelegate(RoleRoot, md); err != nil {
		return nil, fmt.Errorf("%w: root %d is not signed by the threshold of its own root keys", ErrUntrusted, md.Signed.Version)
	}
	next := &Root{md: md, raw: append([]byte(nil), b...)}
	for _, role := range []string{RoleRoot, RoleTargets, RoleTimestamp} {
		if _, _, err := next.Keys(role); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
		}
	}
	if c := r.Catalog(); c != "" && next.Catalog() != c {
		return nil, fmt.Errorf("%w: root %d is for catalog %q, root %d for %q", ErrUntrusted, next.Version(), next.Catalog(), r.Version(), c)
	}
	return next, nil
}

// RootKeys are the keys of one role in a new root.
type RootKeys struct {
	Keys      []*signing.Verifier
	Threshold int // 0 means 1
}

// NewRoot makes and signs the root that follows prev: version prev.Version()+1, with the
// keys given for each role (snapshot takes the targets keys), for catalog (if not empty),
// expiring at expires. signers must include the threshold of prev's root keys and of the new
// root keys; the result is checked with prev.Next before it is returned.
func NewRoot(prev *Root, catalog string, expires time.Time, root, targets, timestamp RootKeys, signers ...*signing.Signer) ([]byte, error) {
	md := metadata.Root(expires.UTC())
	md.Signed.Version = prev.Version() + 1
	if catalog != "" {
		md.Signed.UnrecognizedFields = map[string]any{catalogField: catalog}
	}
	for role, rk := range map[string]RootKeys{RoleRoot: root, RoleTargets: targets, RoleTimestamp: timestamp, roleSnapshot: targets} {
		ids, err := addKeys(&md.Signed, rk.Keys)
		if err != nil {
			return nil, err
		}
		th := max(rk.Threshold, 1)
		if len(ids) == 0 || th > len(ids) {
			return nil, fmt.Errorf("trust: the %s role needs at least %d key(s), %d given", role, th, len(ids))
		}
		md.Signed.Roles[role] = &metadata.Role{KeyIDs: ids, Threshold: th}
	}
	for _, s := range signers {
		if _, err := md.Sign(s.Sigstore()); err != nil {
			return nil, fmt.Errorf("trust: sign root %d with key %s: %w", md.Signed.Version, s.KeyID(), err)
		}
	}
	b, err := md.ToBytes(true)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	if _, err := prev.Next(b); err != nil {
		return nil, fmt.Errorf("trust: the new root would not be accepted: %w", err)
	}
	return b, nil
}

// Timestamp is a verified timestamp statement.
type Timestamp struct {
	Version  int64     // grows by one each time it is signed
	Expires  time.Time // after it, the statement says nothing
	Catalog  string    // the catalog it is for
	Sequence uint64    // the newest release
	Length   int64     // of the release's envelope
	SHA256   string    // hex, of the release's envelope
}

// Names checks that envelope is the release the timestamp names (length and sha256).
func (t *Timestamp) Names(envelope []byte) error {
	sum := sha256.Sum256(envelope)
	if int64(len(envelope)) != t.Length || hex.EncodeToString(sum[:]) != t.SHA256 {
		return fmt.Errorf("%w: the envelope of release %d (%d bytes, sha256 %x) is not the one timestamp %d names (%d bytes, sha256 %s)",
			ErrUntrusted, t.Sequence, len(envelope), sum, t.Version, t.Length, t.SHA256)
	}
	return nil
}

// VerifyTimestamp checks b as a timestamp: its format, and the threshold of r's timestamp
// keys. Expiry, version and catalog are the caller's rules (see Checker): it returns the
// statement for them.
func (r *Root) VerifyTimestamp(b []byte) (*Timestamp, error) {
	if len(b) > MaxTimestampSize {
		return nil, fmt.Errorf("%w: timestamp is %d bytes (at most %d)", ErrUntrusted, len(b), MaxTimestampSize)
	}
	md, err := metadata.Timestamp().FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: timestamp: %v", ErrUntrusted, err)
	}
	if len(md.Signatures) > maxSignatures {
		return nil, fmt.Errorf("%w: timestamp has %d signatures (at most %d)", ErrUntrusted, len(md.Signatures), maxSignatures)
	}
	if err := r.md.VerifyDelegate(RoleTimestamp, md); err != nil {
		return nil, fmt.Errorf("%w: timestamp %d is not signed by %d of root %d's timestamp keys", ErrUntrusted, md.Signed.Version, r.md.Signed.Roles[RoleTimestamp].Threshold, r.Version())
	}
	s := md.Signed
	rel := s.Meta[releaseMeta]
	catalog, _ := s.UnrecognizedFields[catalogField].(string)
	switch {
	case s.Version < 1:
		return nil, fmt.Errorf("%w: timestamp version %d (want 1 or more)", ErrUntrusted, s.Version)
	case rel == nil || len(s.Meta) != 1:
		return nil, fmt.Errorf("%w: timestamp must name exactly one release (meta %q)", ErrUntrusted, releaseMeta)
	case rel.Version < 1 || rel.Length < 1:
		return nil, fmt.Errorf("%w: timestamp names release %d of %d bytes", ErrUntrusted, rel.Version, rel.Length)
	case len(rel.Hashes) != 1 || len(rel.Hashes["sha256"]) != sha256.Size:
		return nil, fmt.Errorf("%w: timestamp must give the release's sha256, and only it", ErrUntrusted)
	case catalog == "":
		return nil, fmt.Errorf("%w: timestamp names no catalog (%s)", ErrUntrusted, catalogField)
	}
	return &Timestamp{Version: s.Version, Expires: s.Expires, Catalog: catalog, Sequence: uint64(rel.Version),
		Length: rel.Length, SHA256: hex.EncodeToString(rel.Hashes["sha256"])}, nil
}

// SignTimestamp signs a timestamp naming the release whose envelope is given, for catalog,
// with version and expiry as given.
func SignTimestamp(catalog string, version int64, seq uint64, envelope []byte, expires time.Time, signers ...*signing.Signer) ([]byte, error) {
	if len(signers) == 0 {
		return nil, errors.New("trust: no key to sign the timestamp with")
	}
	if catalog == "" || version < 1 || seq < 1 || len(envelope) == 0 {
		return nil, fmt.Errorf("trust: a timestamp needs a catalog, a version and a release (got %q, %d, %d, %d bytes)", catalog, version, seq, len(envelope))
	}
	md := metadata.Timestamp(expires.UTC().Truncate(time.Second))
	md.Signed.Version = version
	sum := sha256.Sum256(envelope)
	md.Signed.Meta = map[string]*metadata.MetaFiles{releaseMeta: {Version: int64(seq), Length: int64(len(envelope)), Hashes: metadata.Hashes{"sha256": sum[:]}}}
	md.Signed.UnrecognizedFields = map[string]any{catalogField: catalog}
	for _, s := range signers {
		if _, err := md.Sign(s.Sigstore()); err != nil {
			return nil, fmt.Errorf("trust: sign the timestamp with key %s: %w", s.KeyID(), err)
		}
	}
	b, err := md.ToBytes(false)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	return append(b, '\n'), nil
}

// NewestRootFile reads the highest-numbered root file of a catalog directory without
// verifying the chain that leads to it: for the pipeline's own checks of which keys it
// signs with (driveway build, timestamp), never for trust (edges and verify walk the chain
// from their configured keys). It returns nil, nil when the directory has no root file.
func NewestRootFile(dir string) (*Root, error) {
	entries, err := os.ReadDir(filepath.Join(dir, RootDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	var newest int64
	for _, e := range entries {
		if n, err := strconv.ParseInt(strings.TrimSuffix(e.Name(), ".root.json"), 10, 64); err == nil && strings.HasSuffix(e.Name(), ".root.json") && n > newest {
			newest = n
		}
	}
	if newest == 0 {
		return nil, nil
	}
	path := filepath.Join(dir, filepath.FromSlash(RootPath(newest)))
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	md, err := metadata.Root().FromBytes(b)
	if err != nil || md.Signed.Version != newest {
		return nil, fmt.Errorf("trust: %s is not root %d: %v", path, newest, err)
	}
	return &Root{md: md, raw: b}, nil
}

// Holds checks that signers meet the threshold of a role of r: what they sign, edges that
// trust r accept.
func (r *Root) Holds(role string, signers []*signing.Signer) error {
	rl := r.md.Signed.Roles[role]
	if rl == nil {
		return fmt.Errorf("trust: root %d has no %s role", r.Version(), role)
	}
	ids := map[string]bool{}
	for _, id := range rl.KeyIDs {
		ids[id] = true
	}
	n := 0
	seen := map[string]bool{}
	for _, s := range signers {
		k, err := metadata.KeyFromPublicKey(s.Verifier().PublicKey())
		if err != nil {
			continue
		}
		if id, err := k.ID(); err == nil && ids[id] && !seen[id] {
			seen[id] = true
			n++
		}
	}
	if n < rl.Threshold {
		return fmt.Errorf("trust: %d of the keys given hold root %d's %s role, which needs %d: edges would refuse what they sign (sign with the keys of the newest root, see driveway rotate)",
			n, r.Version(), role, rl.Threshold)
	}
	return nil
}
