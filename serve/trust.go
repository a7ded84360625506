package serve

// Trust at the edge (package trust has the formats).
//
// The edge serves exactly the release that the newest timestamp it has verified names, and
// only while that timestamp (and the release itself) is unexpired:
//
//  1. Roots: root N+1 (DIR/root/<N+1>.root.json, or the origin's) is adopted when it
//     verifies on top of root N; root 1 is Config.Keys at Config.Threshold. Release
//     manifests are checked with the current root's targets keys, timestamps with its
//     timestamp keys.
//  2. The timestamp (DIR/timestamp.json) is verified, then checked against what the edge has
//     seen (Config.State): never an older version, never an older release, never another
//     catalog than the one pinned (Config.CatalogName, or the first one served).
//  3. The release it names (releases/<seq>.dsse) must be the very envelope it names (length
//     and sha256) and carry that sequence; then it is verified as before (signature,
//     expiry, bounds on time, every shard).
//
// What is served stays fresh until the earlier of the release's and the timestamp's expiry
// (plus Config.StaleOK, logged and exported while in use); past it, offers get a 503 and
// /readyz fails. A newer timestamp for the release already served extends it.

import (
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
	"time"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/trust"
)

// edgeTrust is what the edge trusts and has seen. Its plain fields are read and
// written under Server.loadMu; the atomics are for /metrics.
type edgeTrust struct {
	root   *trust.Root
	state  *trust.State
	path   string // the state file; "": kept in memory only
	rules  trust.Rules
	ts     *trust.Timestamp // the newest timestamp verified and acted on; nil: none yet
	tsFile []byte           // its bytes (a re-poll of the same file does nothing)

	refusedRoot string // the last root file refused: not logged nor counted again

	rootVersion atomic.Int64 // for /metrics
	tsExpires   atomic.Int64 // Unix s of the newest timestamp's expiry, for /metrics; 0: none
}

// newEdgeTrust makes root 1 from the configured keys and reads the state file.
func newEdgeTrust(cfg *Config) (*edgeTrust, error) {
	root, err := trust.FromKeys(cfg.Keys, cfg.Threshold)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	st := &trust.State{Format: trust.StateFormat}
	if cfg.State != "" {
		if st, err = trust.LoadState(cfg.State); err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
	}
	if root, err = st.TrustedRoot(root); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	switch {
	case cfg.CatalogName != "" && st.Catalog != "" && st.Catalog != cfg.CatalogName:
		return nil, fmt.Errorf("serve: the edge state %s is for catalog %q, the configuration says %q; move the state away to serve another catalog",
			cfg.State, st.Catalog, cfg.CatalogName)
	case cfg.CatalogName != "":
		st.Catalog = cfg.CatalogName
	case st.Catalog == "" && root.Catalog() != "":
		st.Catalog = root.Catalog()
	}
	t := &edgeTrust{root: root, state: st, path: cfg.State,
		rules: trust.Rules{MaxTimestampValidity: cfg.MaxTimestampValidity, Grace: cfg.StaleOK}}
	t.rootVersion.Store(root.Version())
	return t, nil
}

// save writes the state file, if there is one. A failure is logged: the edge goes on (it
// serves nothing older than it has seen while it runs) and says so.
func (s *Server) saveTrust() {
	t := s.trust
	if t.path == "" {
		return
	}
	if err := t.state.Save(t.path); err != nil {
		s.log.Error("cannot write the edge state; after a restart this edge could be shown an older timestamp", "file", t.path, "error", err.Error())
	}
}

// updateRoot adopts the roots after the current one that get yields (get(n) returns root
// n's bytes or an error wrapping fs.ErrNotExist), keeping a copy of each adopted file with
// keep (nil: none).
func (s *Server) updateRoot(get func(n int64) ([]byte, error), keep func(n int64, b []byte) error, source string) {
	t := s.trust
	from := t.root
	var last []byte
	r, err := trust.Update(from, func(n int64) ([]byte, error) {
		b, err := get(n)
		last = b
		return b, err
	})
	var oe *originError
	if errors.As(err, &oe) {
		err = nil // the origin could not be reached: the timestamp's fetch reports it
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) && string(last) != t.refusedRoot {
		t.refusedRoot = string(last)
		s.refused(&refusal{reasonRoot, err}, source+"/"+trust.RootPath(r.Version()+1))
	}
	if r.Version() == from.Version() {
		return
	}
	if now := s.cfg.Clock(); now.After(r.Expires()) {
		s.refused(&refusal{reasonRoot, fmt.Errorf("serve: root %d expired at %s; the catalog's owners must sign a new one (driveway rotate)",
			r.Version(), r.Expires().UTC().Format(time.RFC3339))}, source+"/"+trust.RootPath(r.Version()))
		return
	}
	if keep != nil {
		for n := from.Version() + 1; n <= r.Version(); n++ {
			if b, err := get(n); err == nil {
				if err := keep(n, b); err != nil {
					s.log.Warn("cannot keep a copy of a root", "version", n, "error", err.Error())
				}
			}
		}
	}
	t.root = r
	t.state.RootVersion, t.state.Root = r.Version(), r.Bytes()
	if t.state.Catalog == "" && r.Catalog() != "" {
		t.state.Catalog = r.Catalog()
	}
	s.saveTrust()
	t.rootVersion.Store(r.Version())
	s.log.Info("root rotated: the keys trusted for releases and timestamps changed", "from", from.Version(), "to", r.Version(), "source", source)
}

// checkTimestamp verifies a timestamp file with the current root and the freshness rules.
func (s *Server) checkTimestamp(b []byte) (*trust.Timestamp, *refusal) {
	t := s.trust
	ts, err := t.root.VerifyTimestamp(b)
	if err != nil {
		return nil, &refusal{reasonTimestamp, err}
	}
	if err := t.rules.Check(ts, s.cfg.Clock(), t.state); err != nil {
		reason := reasonTimestamp
		if errors.Is(err, trust.ErrUntrusted) && ts.Expires.Add(t.rules.Grace).Before(s.cfg.Clock()) {
			reason = reasonExpired
		}
		return nil, &refusal{reason, err}
	}
	return ts, nil
}

// acceptTimestamp records ts (whose release g is now served) as the newest seen, and
// extends what is served to the earlier of the two expiries.
func (s *Server) acceptTimestamp(ts *trust.Timestamp, b []byte, g *generation) {
	t := s.trust
	renewed := t.ts == nil || t.ts.Version != ts.Version
	t.ts, t.tsFile = ts, b
	t.state.Saw(ts)
	until := g.expires
	if ts.Expires.Before(until) {
		until = ts.Expires
	}
	g.freshUntil.Store(until.UnixNano())
	s.stale.Store(false)
	t.tsExpires.Store(ts.Expires.Unix())
	if renewed {
		s.saveTrust()
		s.log.Debug("timestamp accepted", "version", ts.Version, "sequence", ts.Sequence, "expires", ts.Expires.UTC().Format(time.RFC3339))
	}
}

// sameTimestamp reports whether b is the timestamp already acted on.
func (s *Server) sameTimestamp(b []byte) bool {
	return s.trust.tsFile != nil && string(b) == string(s.trust.tsFile)
}

// verifyOptions are the options to verify the release want names with: the current root's
// targets keys, the clock, the bounds on time, the sequence named.
func (s *Server) verifyOptions(want *trust.Timestamp) (*index.VerifyOptions, error) {
	keys, threshold, err := s.trust.root.Keys(trust.RoleTargets)
	if err != nil {
		return nil, err
	}
	return &index.VerifyOptions{
		Keys:        keys,
		Threshold:   threshold,
		Now:         s.cfg.Clock(),
		Grace:       s.cfg.StaleOK,
		MaxValidity: s.cfg.MaxValidity,
		After:       s.servedSeq(),
		Sequence:    want.Sequence,
		Cache:       s.pool.budget,
		Decoder:     s.pool.dec,
	}, nil
}

// checkCatalog refuses a manifest of another catalog than the timestamp's and the pinned one.
func (s *Server) checkCatalog(m *index.Manifest, want *trust.Timestamp) error {
	if m.Catalog != want.Catalog {
		return fmt.Errorf("serve: release %d is of catalog %q, the timestamp names one of %q", m.Sequence, m.Catalog, want.Catalog)
	}
	if pinned := s.trust.state.Catalog; pinned != "" && m.Catalog != pinned {
		return fmt.Errorf("serve: release %d is of catalog %q; this edge serves %q (Config.CatalogName or its first release)", m.Sequence, m.Catalog, pinned)
	}
	return nil
}

// fresh reports whether what is served is fresh at now: before the earlier expiry of the
// release and its timestamp, plus StaleOK.
// freshUntil is the served generation's freshness (Unix ns); 0: nothing served.
func (s *Server) freshUntil() int64 {
	if g := s.cur.Load(); g != nil {
		return g.freshUntil.Load()
	}
	return 0
}

func (s *Server) fresh(now time.Time) bool {
	until := s.freshUntil()
	return until != 0 && !now.After(time.Unix(0, until).Add(s.cfg.StaleOK))
}

// staleOKInUse reports whether what is served is past its freshness and served only because
// of StaleOK.
func (s *Server) staleOKInUse(now time.Time) bool {
	until := s.freshUntil()
	return until != 0 && now.After(time.Unix(0, until)) && s.fresh(now)
}
