package trust

// Edge state.
//
// What an edge has seen, kept in a file of its own (serve's Config.State) so that a restart
// cannot be talked into the past:
//
//	{"format": "driveway edge state 1",
//	 "catalog": "contoso-example",      // the catalog this edge serves: pinned at its first release
//	 "rootVersion": 2, "root": "<base64 of root 2's file>",   // the newest root adopted (absent: root 1)
//	 "timestampVersion": 41,            // the newest timestamp verified
//	 "sequence": 42,                    // the newest release a verified timestamp named
//	 "releaseSha256": "<hex>",          // and its envelope's sha256
//	 "logSize": 7, "logHash": "<base64>"}  // the newest transparency log checkpoint verified (package releaselog)
//
// The file is the edge's own, like TUF's client-side metadata: it is written atomically
// (temporary file, fsync, rename) and trusted when read back. Unknown fields are ignored;
// another format line is refused.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/driveway/driveway/internal/atomicfile"
	"github.com/driveway/driveway/signing"
)

// StateFormat is the first field of an edge state file.
const StateFormat = "driveway edge state 1"

// State is what an edge has seen.
type State struct {
	Format           string `json:"format"`
	Catalog          string `json:"catalog,omitempty"`
	RootVersion      int64  `json:"rootVersion,omitempty"`
	Root             []byte `json:"root,omitempty"`
	TimestampVersion int64  `json:"timestampVersion,omitempty"`
	Sequence         uint64 `json:"sequence,omitempty"`
	ReleaseSHA256    string `json:"releaseSha256,omitempty"` // of the envelope the newest timestamp named
	// LogSize and LogHash are the newest transparency log checkpoint the edge verified (its
	// tree's size and base64 hash; the catalog is Catalog): every later checkpoint must
	// extend it. Absent in a state written before logs: no checkpoint seen.
	LogSize int64  `json:"logSize,omitempty"`
	LogHash string `json:"logHash,omitempty"`
}

// Saw records a verified timestamp as the newest seen.
func (st *State) Saw(t *Timestamp) {
	st.Catalog = t.Catalog
	st.TimestampVersion = t.Version
	st.Sequence = t.Sequence
	st.ReleaseSHA256 = t.SHA256
}

// LoadState reads an edge's state file; a missing file is the empty state.
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Format: StateFormat}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trust: edge state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("trust: edge state %s: %w (move it away to start afresh: the edge then trusts only its configured keys)", path, err)
	}
	if st.Format != StateFormat {
		return nil, fmt.Errorf("trust: edge state %s: format %q, want %q", path, st.Format, StateFormat)
	}
	return &st, nil
}

// Save writes the state atomically and durably.
func (st *State) Save(path string) error {
	st.Format = StateFormat
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("trust: edge state: %w", err)
	}
	return atomicfile.Write(path, append(b, '\n'), 0o644)
}

// TrustedRoot returns the root the state holds, or base if the state holds none newer.
// The state's root was verified when it was adopted; it is read back without its chain.
func (st *State) TrustedRoot(base *Root) (*Root, error) {
	if st.RootVersion <= base.Version() || len(st.Root) == 0 {
		return base, nil
	}
	md, err := metadata.Root().FromBytes(st.Root)
	if err != nil || md.Signed.Version != st.RootVersion {
		return nil, fmt.Errorf("trust: edge state holds an unreadable root %d: %v", st.RootVersion, err)
	}
	return &Root{md: md, raw: st.Root}, nil
}

// Update walks the roots after r: get(n) returns the bytes of root n, or an error wrapping
// fs.ErrNotExist when there is none. It returns the newest root reached (r itself when
// there is no newer one), stopping at the first root that does not verify, with its error.
func Update(r *Root, get func(n int64) ([]byte, error)) (*Root, error) {
	for range 1000 { // bounded: a thousand rotations between two looks is not a real catalog
		b, err := get(r.Version() + 1)
		if errors.Is(err, fs.ErrNotExist) {
			return r, nil
		}
		if err != nil {
			return r, err
		}
		next, err := r.Next(b)
		if err != nil {
			return r, err
		}
		r = next
	}
	return r, nil
}

// Rules are the bounds on time an edge and a verifier apply to what they are given.
type Rules struct {
	// MaxTimestampValidity bounds a timestamp's expiry from now: a statement valid for
	// longer was not made by this pipeline (or its key is being abused); default 7 days.
	MaxTimestampValidity time.Duration
	// Grace accepts a timestamp up to this long after it expired (--stale-ok); default 0.
	Grace time.Duration
}

// Check applies the freshness rules to a verified timestamp t at now, against what was seen
// (st, which may be empty): not expired (beyond Grace), not valid for longer than
// MaxTimestampValidity, for the pinned catalog, and never older than what was seen: a lower
// version, or a lower release sequence, or the same version naming another release.
func (rules Rules) Check(t *Timestamp, now time.Time, st *State) error {
	maxValid := rules.MaxTimestampValidity
	if maxValid <= 0 {
		maxValid = 7 * 24 * time.Hour
	}
	switch {
	case now.After(t.Expires.Add(rules.Grace)):
		return fmt.Errorf("%w: timestamp %d expired at %s (now %s); the pipeline must sign a new one (driveway timestamp)",
			ErrUntrusted, t.Version, t.Expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case t.Expires.After(now.Add(maxValid)):
		return fmt.Errorf("%w: timestamp %d is valid until %s, more than %s from now (%s)",
			ErrUntrusted, t.Version, t.Expires.UTC().Format(time.RFC3339), maxValid, now.UTC().Format(time.RFC3339))
	case st.Catalog != "" && t.Catalog != st.Catalog:
		return fmt.Errorf("%w: timestamp is for catalog %q; this edge serves %q", ErrUntrusted, t.Catalog, st.Catalog)
	case t.Version < st.TimestampVersion:
		return fmt.Errorf("%w: timestamp version %d is older than version %d, already seen (rollback)", ErrUntrusted, t.Version, st.TimestampVersion)
	case t.Sequence < st.Sequence,
		t.Sequence == st.Sequence && st.ReleaseSHA256 != "" && t.SHA256 != st.ReleaseSHA256:
		return fmt.Errorf("%w: timestamp %d names release %d, but release %d was already named (a rollback, or another envelope under a sequence already seen)", ErrUntrusted, t.Version, t.Sequence, st.Sequence)
	case t.Version == st.TimestampVersion && st.ReleaseSHA256 != "" && t.SHA256 != st.ReleaseSHA256:
		return fmt.Errorf("%w: timestamp version %d names another release than the version %d seen before", ErrUntrusted, t.Version, t.Version)
	}
	return nil
}

// Stamp signs a timestamp naming the release whose envelope is given (sequence seq of
// catalog) and writes it to dir/timestamp.json atomically. Its version is one more than the
// version of the timestamp it replaces, and at least the creation time in Unix seconds, so
// versions grow even if the previous file was lost. It returns what it wrote.
func Stamp(dir, catalog string, seq uint64, envelope []byte, created, expires time.Time, signers ...*signing.Signer) (*Timestamp, error) {
	version := created.Unix()
	if prev, err := os.ReadFile(filepath.Join(dir, TimestampFile)); err == nil {
		if md, err := metadata.Timestamp().FromBytes(prev); err == nil && md.Signed.Version >= version {
			version = md.Signed.Version + 1
		}
	}
	b, err := SignTimestamp(catalog, version, seq, envelope, expires, signers...)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, TimestampFile), b, 0o644); err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	sum := sha256.Sum256(envelope)
	return &Timestamp{Version: version, Expires: expires.UTC().Truncate(time.Second), Catalog: catalog, Sequence: seq,
		Length: int64(len(envelope)), SHA256: hex.EncodeToString(sum[:])}, nil
}
