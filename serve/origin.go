package serve

// Releases from an origin: any static HTTP server holding a build's output directory
// (index/release.go's layout and package trust's files: ORIGIN/timestamp.json names the
// newest release, ORIGIN/releases/<seq>.dsse is its envelope, ORIGIN/shards/<sha256>.shard
// its shards, ORIGIN/root/<N>.root.json the roots after the configured keys).
//
// Every Poll, the roots after the trusted one are asked for (a 404 ends the walk) and the
// timestamp is fetched with a conditional GET (If-None-Match, If-Modified-Since) and
// verified (serve/trust.go). When it names a release other than the one served, that
// release's envelope is fetched by name and checked against the timestamp and verified
// (index.VerifyEnvelope) before anything else is downloaded; then each shard neither open nor in the cache is fetched into
// CACHE/shards through a temporary file, capped at the manifest's size and checked against
// its sha256, and renamed into place; then the release is loaded from the cache exactly as
// from a catalog directory (every new shard's size, sha256 and structure), saved with its
// timestamp (index.SaveEnvelope, atomicfile.Write), swapped in, and the cache pruned
// (index.Prune, Config.Keep). A restarted edge serves from its cache only what the cached
// timestamp names, and only while that timestamp is fresh.
// A failed fetch backs off exponentially with jitter, up to Config.BackoffMax; the current
// release keeps serving throughout.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/atomicfile"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/trust"
)

// unconditionalEvery makes every so many manifest polls an unconditional GET: an ETag or a
// Last-Modified of one-second resolution can miss a manifest replaced twice in a second by
// one of the same size.
const unconditionalEvery = 30

type originSync struct {
	s        *Server
	base     string
	etag     string
	modified string
	polls    int
	failures int
	// refusedTS is the last timestamp refused, so that an origin that serves it again
	// without validators is not logged and counted at every poll.
	refusedTS string
}

func newOriginSync(s *Server) *originSync {
	return &originSync{s: s, base: strings.TrimRight(s.cfg.Origin, "/")}
}

// originError is a failed fetch: its reason (a metric label) and error.
type originError struct {
	reason string
	err    error
}

func (e *originError) Error() string { return e.err.Error() }

func (o *originSync) run(ctx context.Context) {
	for {
		wait := o.s.cfg.Poll
		if err := o.sync(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			o.failures++
			wait = backoff(o.s.cfg.Poll, o.s.cfg.BackoffMax, o.failures)
			var oe *originError
			if errors.As(err, &oe) {
				o.s.m.originError(oe.reason)
			}
			o.s.log.Warn("origin sync failed; the current release keeps serving", "origin", o.base,
				"error", err.Error(), "failures", o.failures, "retry_in", wait.String(), "serving", o.s.servedSeq())
		} else {
			if o.failures > 0 {
				o.s.log.Info("origin sync recovered", "origin", o.base, "after_failures", o.failures)
			}
			o.failures = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-o.s.recheck:
			t.Stop()
			o.s.loadMu.Lock()
			o.s.checkServed(true)
			o.s.loadMu.Unlock()
		case <-t.C:
		}
	}
}

// backoff is the wait after n consecutive failures: base·2ⁿ capped at max, with "equal
// jitter" (half fixed, half random) so a fleet of edges does not retry in step.
func backoff(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

// sync polls the origin once: roots after the trusted one, then the timestamp (a
// conditional GET); if the timestamp names a new release that verifies, its envelope
// (releases/<seq>.dsse, by name: never whatever "manifest" holds) and missing shards are
// fetched and it is swapped in. A refused release is not an error (it is logged and counted,
// and not fetched again until the timestamp changes); a failed fetch is.
func (o *originSync) sync(ctx context.Context) error {
	s := o.s
	o.polls++
	conditional := o.polls%unconditionalEvery != 0
	s.loadMu.Lock()
	s.checkServed(false)
	s.updateRoot(func(n int64) ([]byte, error) {
		return o.fetch(ctx, trust.RootPath(n), trust.MaxRootSize)
	}, func(n int64, b []byte) error {
		return atomicfile.Write(filepath.Join(s.cfg.Cache, filepath.FromSlash(trust.RootPath(n))), b, 0o644)
	}, o.base)
	s.loadMu.Unlock()
	tsFile, status, err := o.fetchTimestamp(ctx, conditional)
	if err != nil {
		return err
	}
	if status == http.StatusNotModified {
		s.log.Debug("origin: timestamp not modified")
		return nil
	}
	url := o.base + "/" + trust.TimestampFile
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if s.sameTimestamp(tsFile) {
		return nil
	}
	ts, r := s.checkTimestamp(tsFile)
	if r != nil {
		if string(tsFile) != o.refusedTS { // an origin without validators: the same bytes again
			o.refusedTS = string(tsFile)
			s.refused(r, url)
		}
		return nil // keep the validators: the same bytes are not fetched and refused again
	}
	o.refusedTS = ""
	cache := s.cfg.Cache
	if g := s.cur.Load(); g != nil && g.id == "sha256:"+ts.SHA256 {
		if err := atomicfile.Write(filepath.Join(cache, trust.TimestampFile), tsFile, 0o644); err != nil {
			s.log.Warn("cannot keep the timestamp in the cache", "dir", cache, "error", err.Error())
		}
		s.acceptTimestamp(ts, tsFile, g)
		return nil
	}
	relPath := index.ReleasesDir + "/" + filepath.Base(index.ReleasePath("", ts.Sequence))
	env, err := o.fetch(ctx, relPath, signing.MaxEnvelopeSize)
	if err != nil {
		o.forget()
		return err
	}
	url = o.base + "/" + relPath
	// Verify the envelope before downloading anything.
	if err := ts.Names(env); err != nil {
		s.refused(&refusal{reasonTimestamp, err}, url)
		return nil
	}
	opts, err := s.verifyOptions(ts)
	if err != nil {
		s.refused(&refusal{reasonRoot, err}, url)
		return nil
	}
	reason := ""
	m, err := index.VerifyEnvelope(env, opts, func(st index.Step) {
		if st.Err != nil && reason == "" {
			reason = stepReason(st.What)
		}
	})
	if err != nil {
		if reason == "" {
			reason = reasonManifest
		}
		if errors.Is(err, index.ErrTimeBounds) {
			reason = reasonTime
		}
		s.refused(&refusal{reason, err}, url)
		return nil
	}
	if err := s.checkCatalog(m, ts); err != nil {
		s.refused(&refusal{reasonCatalog, err}, url)
		return nil
	}
	for _, ref := range m.Shards {
		if err := o.fetchShard(ctx, ref); err != nil {
			o.forget()
			var r *refusal
			if errors.As(err, &r) {
				s.refused(r, o.base+"/"+index.ShardsDir+"/"+ref.Name)
				return fmt.Errorf("serve: release %d: %w", m.Sequence, err)
			}
			return err
		}
	}
	g, r := s.load(cache, env, ts)
	if r != nil {
		s.refused(r, url)
		o.forget()
		if r.reason == reasonShard {
			o.dropBadShards(m.Shards)
		}
		if r.reason == reasonShard || r.reason == reasonIO {
			return fmt.Errorf("serve: release %d: %w", m.Sequence, r)
		}
		return nil
	}
	err = index.SaveEnvelope(cache, m.Sequence, env)
	if err == nil {
		err = atomicfile.Write(filepath.Join(cache, trust.TimestampFile), tsFile, 0o644)
	}
	if err != nil {
		g.release()
		s.refused(&refusal{reasonIO, err}, cache)
		o.forget()
		return fmt.Errorf("serve: release %d: %w", m.Sequence, err)
	}
	s.acceptTimestamp(ts, tsFile, g) // before the swap: g is fresh from its first request
	s.install(g, "origin")
	if removed, err := index.Prune(cache, s.cfg.Keep); err != nil {
		s.log.Warn("cannot prune the cache", "dir", cache, "error", err.Error())
	} else if len(removed) > 0 {
		s.log.Debug("cache pruned", "dir", cache, "removed", len(removed))
	}
	return nil
}

// forget drops the timestamp's validators, so the next poll fetches it again.
func (o *originSync) forget() { o.etag, o.modified = "", "" }

// fetchTimestamp GETs ORIGIN/timestamp.json, conditionally unless told otherwise.
func (o *originSync) fetchTimestamp(ctx context.Context, conditional bool) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.base+"/"+trust.TimestampFile, nil)
	if err != nil {
		return nil, 0, &originError{originConnect, err}
	}
	if conditional {
		if o.etag != "" {
			req.Header.Set("If-None-Match", o.etag)
		}
		if o.modified != "" {
			req.Header.Set("If-Modified-Since", o.modified)
		}
	}
	resp, err := o.s.cfg.Client.Do(req)
	if err != nil {
		return nil, 0, fetchError(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, resp.StatusCode, nil
	case http.StatusOK:
	default:
		return nil, 0, &originError{originStatus, fmt.Errorf("serve: GET %s: %s", req.URL, resp.Status)}
	}
	body, err := readCapped(resp.Body, trust.MaxTimestampSize, req.URL.String())
	if err != nil {
		return nil, 0, err
	}
	o.etag, o.modified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	return body, resp.StatusCode, nil
}

// fetch GETs ORIGIN/name, at most limit bytes; a 404 is an error wrapping fs.ErrNotExist.
func (o *originSync) fetch(ctx context.Context, name string, limit int64) ([]byte, error) {
	url := o.base + "/" + name
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, &originError{originConnect, err}
	}
	resp, err := o.s.cfg.Client.Do(req)
	if err != nil {
		return nil, fetchError(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("serve: GET %s: %s: %w", url, resp.Status, fs.ErrNotExist)
	default:
		return nil, &originError{originStatus, fmt.Errorf("serve: GET %s: %s", url, resp.Status)}
	}
	return readCapped(resp.Body, limit, url)
}

// readCapped reads a body of at most limit bytes.
func readCapped(r io.Reader, limit int64, url string) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fetchError(err)
	}
	if int64(len(body)) > limit {
		return nil, &originError{originTooLarge, fmt.Errorf("serve: GET %s: more than %d bytes", url, limit)}
	}
	return body, nil
}

// fetchShard makes sure a shard is in the cache, downloading it if not: into a
// temporary file, at most ref.Size bytes, checked against ref.SHA256, fsynced, renamed. A
// shard of the wrong size or hash is a refusal (reason shard).
func (o *originSync) fetchShard(ctx context.Context, ref index.ShardRef) error {
	s := o.s
	dir := filepath.Join(s.cfg.Cache, index.ShardsDir)
	final := filepath.Join(dir, ref.Name)
	if fi, err := os.Stat(final); err == nil && fi.Size() == ref.Size {
		return nil // its hash and structure are checked when it is opened
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &refusal{reasonIO, err}
	}
	url := o.base + "/" + index.ShardsDir + "/" + ref.Name
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return &originError{originConnect, err}
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return fetchError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &originError{originStatus, fmt.Errorf("serve: GET %s: %s", url, resp.Status)}
	}
	tmp, err := os.CreateTemp(dir, ".tmp-shard-fetch-*")
	if err != nil {
		return &refusal{reasonIO, err}
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, ref.Size+1))
	if err != nil {
		if isNetError(err) {
			return fetchError(err)
		}
		return &refusal{reasonIO, err}
	}
	if n != ref.Size {
		return &refusal{reasonShard, fmt.Errorf("serve: GET %s: %d bytes, the manifest says %d: %w", url, n, ref.Size, index.ErrCorrupt)}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != ref.SHA256 {
		return &refusal{reasonShard, fmt.Errorf("serve: GET %s: sha256 %s, the manifest says %s: %w", url, got, ref.SHA256, index.ErrCorrupt)}
	}
	if err := tmp.Sync(); err != nil {
		return &refusal{reasonIO, err}
	}
	if err := tmp.Close(); err != nil {
		return &refusal{reasonIO, err}
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return &refusal{reasonIO, err}
	}
	return nil
}

// dropBadShards removes the cache's copies of a refused release's shards that are not open,
// so the next attempt downloads them again. An open shard is never touched.
func (o *originSync) dropBadShards(refs []index.ShardRef) {
	for _, ref := range refs {
		if !o.s.pool.has(ref.Name) {
			os.Remove(filepath.Join(o.s.cfg.Cache, index.ShardsDir, ref.Name))
		}
	}
}

// fetchError classifies a failed request or body read.
func fetchError(err error) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return &originError{originTimeout, err}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &originError{originBody, err}
	default:
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "read" {
			return &originError{originBody, err}
		}
		return &originError{originConnect, err}
	}
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF)
}
