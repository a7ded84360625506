package serve

// Noticing releases in a catalog directory: inotify on the directory and its releases/
// (Linux) for a prompt swap, and polling every Config.Poll as the fallback. What is loaded
// is what the directory's timestamp names (serve/trust.go).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/trust"
)

// dirWatcher loads the release that the directory's timestamp names (serve/trust.go).
type dirWatcher struct {
	s       *Server
	dir     string
	source  string       // for logs: "catalog", or "cache" for an origin edge
	refused refusedState // the last refusal, not tried (nor counted) again until something changes
	empty   bool         // "no timestamp" was logged
}

// refusedState is a refused timestamp and the envelope it named: neither is tried again
// until one of them changes (or, for a refusal that may pass later, such as a shard being
// copied, until retry).
type refusedState struct {
	timestamp string
	envSize   int64
	envMod    time.Time
	retry     time.Time // zero: never by itself
}

// retryRefused is how long a release refused for a shard or I/O fault waits at most before
// it is tried again (a shard may be fixed in place, or still being copied): ten polls, at
// most 30 s.
func (s *Server) retryRefused() time.Duration { return min(30*time.Second, 10*s.cfg.Poll) }

func (w *dirWatcher) run(ctx context.Context) {
	var events, ownEvents <-chan struct{}
	if !w.s.cfg.DisableInotify {
		ch, stop, err := watchDir(w.dir)
		if err != nil {
			w.s.log.Info("no inotify; polling only", "dir", w.dir, "poll", w.s.cfg.Poll.String(), "error", err.Error())
		} else {
			defer stop()
			events = ch
		}
		if w.s.own != "" { // the edge's own copies: a change there is checked at once
			if ch, stop, err := watchDir(filepath.Dir(w.s.own)); err == nil {
				defer stop()
				ownEvents = ch
			}
		}
	}
	t := time.NewTicker(w.s.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
		case _, ok := <-ownEvents:
			if !ok {
				ownEvents = nil
				continue
			}
		case <-w.s.recheck:
			w.s.loadMu.Lock()
			w.s.checkServed(true)
			w.s.loadMu.Unlock()
		}
		w.check()
	}
}

// check looks at the directory once: a new root is adopted, then the timestamp is verified
// and the release it names loaded (or, if it is the one served, its freshness extended).
// Nothing else is ever tried: not an older release when the named one is damaged, nor a
// newer one the timestamp does not name yet.
func (w *dirWatcher) check() {
	s := w.s
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if s.ctx.Err() != nil {
		return
	}
	s.checkServed(false)
	s.updateRoot(func(n int64) ([]byte, error) {
		return readLimited(filepath.Join(w.dir, filepath.FromSlash(trust.RootPath(n))), trust.MaxRootSize)
	}, nil, w.dir)
	tsPath := filepath.Join(w.dir, trust.TimestampFile)
	b, err := readLimited(tsPath, trust.MaxTimestampSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if !w.empty {
				w.empty = true
				s.log.Warn("no timestamp in the directory: nothing new is served until the pipeline signs one (driveway build, driveway timestamp)",
					"dir", w.dir, "file", tsPath)
			}
			return
		}
		w.refuse(string(b), nil, &refusal{reasonIO, err}, tsPath)
		return
	}
	w.empty = false
	if s.sameTimestamp(b) {
		return
	}
	ts, r := s.checkTimestamp(b)
	if r != nil {
		w.refuse(string(b), nil, r, tsPath)
		return
	}
	if g := s.cur.Load(); g != nil && g.id == "sha256:"+ts.SHA256 {
		s.acceptTimestamp(ts, b, g)
		return
	}
	path := index.ReleasePath(w.dir, ts.Sequence)
	fi, err := os.Stat(path)
	if err != nil {
		w.refuse(string(b), nil, &refusal{reasonTimestamp, fmt.Errorf("serve: the timestamp names release %d, and %s cannot be read: %w", ts.Sequence, path, err)}, path)
		return
	}
	if w.refused.timestamp == string(b) && w.refused.envSize == fi.Size() && w.refused.envMod.Equal(fi.ModTime()) &&
		(w.refused.retry.IsZero() || time.Now().Before(w.refused.retry)) {
		return
	}
	env, err := readLimited(path, signing.MaxEnvelopeSize)
	if err != nil {
		w.refuse(string(b), fi, &refusal{reasonIO, err}, path)
		return
	}
	g, r := s.load(w.dir, env, ts)
	if r != nil {
		w.refuse(string(b), fi, r, path)
		return
	}
	w.refused = refusedState{}
	s.acceptTimestamp(ts, b, g) // before the swap: g is fresh from its first request
	s.install(g, w.source)
}

// refuse logs, counts and remembers a refusal, unless it is the one already remembered.
func (w *dirWatcher) refuse(timestamp string, env os.FileInfo, r *refusal, path string) {
	st := refusedState{timestamp: timestamp}
	if env != nil {
		st.envSize, st.envMod = env.Size(), env.ModTime()
	}
	if r.reason == reasonShard || r.reason == reasonIO || r.reason == reasonLog { // a log may arrive after its release
		st.retry = time.Now().Add(w.s.retryRefused())
	}
	prev := w.refused
	w.refused = st
	if prev.timestamp == st.timestamp && prev.envSize == st.envSize && prev.envMod.Equal(st.envMod) && prev.retry.IsZero() {
		return // the same refusal again (an unchanged file whose timestamp was refused)
	}
	w.s.refused(r, path)
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("serve: %s is more than %d bytes", path, limit)
	}
	return b, nil
}
