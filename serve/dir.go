package serve

// Noticing releases in a catalog directory: inotify on the directory and its releases/
// (Linux) for a prompt swap, and polling of index.Sequences every Config.Poll as the
// fallback.

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/driveway/driveway/index"
)

// dirWatcher loads the newest verified release of a catalog directory.
type dirWatcher struct {
	s       *Server
	dir     string
	source  string                 // for logs: "catalog", or "cache" for an origin edge
	refused map[uint64]refusedFile // envelopes refused, by file sequence
	empty   bool                   // "no release" was logged
}

// refusedFile is a refused envelope file: it is not tried again until it changes (or, for a
// refusal that may pass later, such as a shard being copied, until retry).
type refusedFile struct {
	size  int64
	mod   time.Time
	retry time.Time // zero: never by itself
}

// retryRefused is how long a release refused for a shard or I/O fault waits before it is
// tried again (a shard may be fixed in place).
const retryRefused = 30 * time.Second

func (w *dirWatcher) run(ctx context.Context) {
	var events <-chan struct{}
	if !w.s.cfg.DisableInotify {
		ch, stop, err := watchDir(w.dir)
		if err != nil {
			w.s.log.Info("no inotify; polling only", "dir", w.dir, "poll", w.s.cfg.Poll.String(), "error", err.Error())
		} else {
			defer stop()
			events = ch
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
		}
		w.check(false)
	}
}

// check looks at the directory once: the releases newer than the one served, newest first,
// are tried until one verifies; a newest release older than the one served is a rollback,
// refused once. At start (first), when nothing is served, older releases are tried too, so
// the edge serves the newest release that verifies.
func (w *dirWatcher) check(first bool) {
	s := w.s
	seqs, err := index.Sequences(w.dir)
	if err != nil {
		s.log.Warn("cannot list releases", "dir", w.dir, "error", err.Error())
		return
	}
	if len(seqs) == 0 {
		if !w.empty {
			w.empty = true
			s.log.Warn("no release in the directory yet", "dir", w.dir)
		}
		return
	}
	w.empty = false
	served := s.servedSeq()
	newest := seqs[len(seqs)-1]
	if newest == served {
		return
	}
	var try []uint64
	for i := len(seqs) - 1; i >= 0; i-- {
		if seqs[i] > served || (served == 0 && first) {
			try = append(try, seqs[i])
		}
	}
	if len(try) == 0 { // newest < served: the directory went back in time
		try = []uint64{newest}
	}
	now := time.Now()
	for _, seq := range try {
		path := index.ReleasePath(w.dir, seq)
		fi, err := os.Stat(path)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("cannot read release", "file", path, "error", err.Error())
			}
			continue
		}
		if r, ok := w.refused[seq]; ok && r.size == fi.Size() && r.mod.Equal(fi.ModTime()) && (r.retry.IsZero() || now.Before(r.retry)) {
			continue
		}
		env, err := os.ReadFile(path)
		if err != nil {
			w.refuse(seq, fi, &refusal{reasonIO, err}, path)
			continue
		}
		if g := s.cur.Load(); g != nil && g.id == index.ReleaseID(env) {
			w.remember(seq, fi, "") // the served release under another name: nothing to do
			return
		}
		r := w.s.tryLoad(w.dir, env, path, w.source)
		if r == nil {
			delete(w.refused, seq)
			return
		}
		w.remember(seq, fi, r.reason)
	}
}

// refuse logs, counts and remembers a refused file.
func (w *dirWatcher) refuse(seq uint64, fi os.FileInfo, r *refusal, path string) {
	w.s.refused(r, path)
	w.remember(seq, fi, r.reason)
}

// remember notes a refused file, so that it is not tried (nor counted) again until it
// changes, or, for a fault that may be repaired in place, until retryRefused has passed.
func (w *dirWatcher) remember(seq uint64, fi os.FileInfo, reason string) {
	rf := refusedFile{size: fi.Size(), mod: fi.ModTime()}
	if reason == reasonShard || reason == reasonIO {
		rf.retry = time.Now().Add(retryRefused)
	}
	if len(w.refused) >= 1000 { // a directory full of bad envelopes: forget, and retry them
		clear(w.refused)
	}
	w.refused[seq] = rf
}

// tryLoad verifies and loads a release and swaps it in. A refusal is logged, counted and
// returned.
func (s *Server) tryLoad(dir string, env []byte, file, source string) *refusal {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if s.ctx.Err() != nil {
		return &refusal{reasonIO, context.Cause(s.ctx)}
	}
	g, r := s.load(dir, env)
	if r != nil {
		s.refused(r, file)
		return r
	}
	s.install(g, source)
	return nil
}
