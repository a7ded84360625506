package serve

// The transparency log at the edge (package releaselog has the formats).
//
// With Config.LogKey, every release the edge loads must be in the catalog's log: its
// statement envelope, byte for byte, is an entry at the log's checkpoint (an inclusion proof
// over the hash tiles, each tile checked against the signed checkpoint), and that checkpoint
// extends the newest one the edge verified before (a consistency proof), kept in the state
// file (trust.State's logSize and logHash) across restarts. A release missing from the log,
// a log of another history (a split view: this edge or its region shown a history that
// others are not), a rewritten past entry, or a rolled-back log is refused with reason
// "log", and what is served stays.
//
// The log is read from the catalog directory (DIR/log), or, for an edge that mirrors an
// origin, from ORIGIN/log: the checkpoint and the tiles the proofs need, each capped. What
// was fetched is kept under CACHE/log once it verified. An origin edge first tries the
// cache's copy (a restart proves its cached release without the network), then the origin;
// a file the origin cannot give is read from the cache, and once the origin is unreachable
// it is not asked again within the same check (a blackholed origin costs one timeout, not
// one per tile). Whatever the source, the files are checked the same way.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/atomicfile"
	"github.com/driveway/driveway/releaselog"
)

// reasonLog is the refusal reason of a release the log does not hold, or a log that does not
// extend the one seen.
const reasonLog = "log"

// errOriginStatus marks an origin that answered, with a status other than 200 and 404.
var errOriginStatus = errors.New("unexpected status")

// checkLog checks release m, loaded from dir, against the log (nothing without
// Config.LogKey), and records the log's checkpoint as seen. It returns the checkpoint the
// release was proved at (nil without a log key), which GET /v1/release shows so that
// monitors can compare what edges in different places were served. Called under loadMu.
func (s *Server) checkLog(dir string, m *index.Manifest) (*releaseLogInfo, error) {
	key := s.cfg.LogKey
	if key == nil {
		return nil, nil
	}
	st := s.trust.state
	var prev *releaselog.Checkpoint
	if st.LogSize > 0 {
		h, err := base64.StdEncoding.DecodeString(st.LogHash)
		if err != nil || len(h) != tlog.HashSize {
			return nil, fmt.Errorf("serve: the edge state holds an unreadable log hash %q; move the state away to start afresh", st.LogHash)
		}
		prev = &releaselog.Checkpoint{Catalog: m.Catalog, Size: st.LogSize}
		if st.Catalog != "" {
			prev.Catalog = st.Catalog
		}
		copy(prev.Hash[:], h)
	}
	var cp releaselog.Checkpoint
	var err error
	keep := func() {}
	if s.cfg.Origin != "" {
		// The cache's copy first: a restart proves its cached release without the network.
		cp, err = releaselog.CheckRelease(releaselog.DirSource(s.cfg.Cache), key, m.Catalog, m.Sequence, m.Statement, prev)
	}
	if s.cfg.Origin == "" || err != nil {
		var src releaselog.Source
		src, keep = s.logSource(dir)
		cp, err = releaselog.CheckRelease(src, key, m.Catalog, m.Sequence, m.Statement, prev)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && prev == nil {
			return nil, fmt.Errorf("serve: release %d: the edge checks the transparency log (--log-key) and the catalog has none: %w; build with --log-key", m.Sequence, err)
		}
		return nil, fmt.Errorf("serve: release %d: %w", m.Sequence, err)
	}
	keep()
	if prev == nil || cp.Size > prev.Size {
		st.LogSize, st.LogHash = cp.Size, base64.StdEncoding.EncodeToString(cp.Hash[:])
		s.saveTrust()
		s.log.Debug("transparency log checkpoint verified", "size", cp.Size, "hash", cp.Hash.String(), "sequence", m.Sequence)
	}
	return &releaseLogInfo{Size: cp.Size, Hash: base64.StdEncoding.EncodeToString(cp.Hash[:])}, nil
}

// releaseLogInfo is the "log" member of GET /v1/release: the checkpoint (tree size and hash)
// of the transparency log the served release was proved in.
type releaseLogInfo struct {
	Size int64  `json:"size"`
	Hash string `json:"hash"` // base64, as in the checkpoint
}

// logSource returns where the log is read from for a release loaded from dir, and a
// function that keeps what was fetched (origin edges) once it verified.
func (s *Server) logSource(dir string) (releaselog.Source, func()) {
	if s.cfg.Origin == "" {
		return releaselog.DirSource(dir), func() {}
	}
	base := strings.TrimRight(s.cfg.Origin, "/") + "/" + releaselog.Dir + "/"
	cache := releaselog.DirSource(s.cfg.Cache)
	var fetched []logFile
	var down error // the origin could not be reached: not asked again in this check
	src := func(name string, limit int64) ([]byte, error) {
		var b []byte
		err := down
		if down == nil {
			b, err = s.fetchLogFile(base+name, limit)
		}
		if err == nil {
			fetched = append(fetched, logFile{name, b})
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errOriginStatus) {
			down = err
		}
		if cached, cerr := cache(name, limit); cerr == nil {
			s.log.Debug("log file read from the cache", "file", name, "origin error", err.Error())
			return cached, nil
		}
		return nil, err
	}
	keep := func() {
		// The checkpoint last, as releaselog writes a log: the cached files stay consistent.
		var cp []byte
		for _, f := range fetched {
			if f.name == releaselog.CheckpointFile {
				cp = f.data
				continue
			}
			s.keepLogFile(f.name, f.data)
		}
		if cp != nil {
			s.keepLogFile(releaselog.CheckpointFile, cp)
		}
	}
	return src, keep
}

type logFile struct {
	name string
	data []byte
}

func (s *Server) keepLogFile(name string, data []byte) {
	p := filepath.Join(s.cfg.Cache, releaselog.Dir, filepath.FromSlash(name))
	if err := atomicfile.Write(p, data, 0o644); err != nil {
		s.log.Warn("cannot keep a log file in the cache", "file", p, "error", err.Error())
	}
}

// fetchLogFile GETs one log file from the origin, at most limit bytes; a 404 wraps
// fs.ErrNotExist.
func (s *Server) fetchLogFile(url string, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OriginTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("serve: GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("serve: GET %s: %s: %w", url, resp.Status, fs.ErrNotExist)
	default:
		return nil, fmt.Errorf("serve: GET %s: %s: %w", url, resp.Status, errOriginStatus)
	}
	return readCapped(resp.Body, limit, url)
}
