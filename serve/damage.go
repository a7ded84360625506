package serve

// Shards changed under the edge.
//
// Shards are memory-mapped from the directory they were verified in (the catalog, or the
// origin edge's cache). Publishers must only add files there (a temporary name and a rename),
// but an operator's `cp` over a served shard, a truncate, or an edit in place changes the
// mapped bytes under a running edge: a truncated mapping raises SIGBUS when read, which kills
// a Go process, and a same-size edit makes the edge answer from bytes nobody signed.
//
// The edge defends itself four ways:
//
//  0. A catalog edge does not map the catalog directory's files at all: it copies each shard
//     it serves into a directory of its own (Config.Cache, else a temporary one), checking
//     size and sha256 on the way, and maps the copy. What is done to the catalog's files
//     afterwards cannot reach the mapping. (An origin edge's cache is its own already.)
//  1. Every goroutine that reads mapped memory (the offer handler, the loaders) runs with
//     debug.SetPanicOnFault, so a fault is a panic in that goroutine: the request is answered
//     500, the fault counted (driveway_edge_faults_total) and a re-check of the served shards
//     asked for at once.
//  2. Every poll (and at once after a fault) each served shard's file is stat'ed; a changed
//     size, modification time or inode means the file was touched, and it is hashed again.
//     The same bytes (a `cp` of identical content) are noted and served on; other bytes
//     withdraw the release: nothing is served (503, /readyz fails) rather than answers from
//     unsigned bytes, the refusal is logged and counted (reason shard), and the damaged
//     mappings leave the pool.
//  3. The release the timestamp names is then loaded again from the files as they are now,
//     every poll or so, so that the edge serves again as soon as the files are sound.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/driveway/driveway/index"
)

// isFault reports whether a recovered panic is a memory fault turned into a panic by
// debug.SetPanicOnFault: the runtime's error then carries the faulting address.
func isFault(r any) bool {
	_, ok := r.(interface{ Addr() uintptr })
	return ok
}

// faulted counts a fault on mapped memory and asks for the served shards to be checked.
func (s *Server) faulted(what string, r any) {
	s.m.faults.inc(0)
	if s.faultLogged.CompareAndSwap(false, true) {
		s.log.Error("a fault reading a mapped shard (a shard file changed under the edge?); checking the served shards",
			"where", what, "fault", fmt.Sprint(r))
	}
	select {
	case s.recheck <- struct{}{}:
	default:
	}
}

// checkServed checks the served release's shard files (under loadMu): a file whose identity
// changed (or, with force, every file) is hashed again; same bytes are noted, other bytes
// withdraw the release.
func (s *Server) checkServed(force bool) {
	g := s.cur.Load()
	if g == nil {
		return
	}
	var damaged []*pooledShard
	var first error
	for _, ps := range g.shards {
		id, err := statFile(ps.file.path)
		if err == nil && id == ps.file && !force {
			continue
		}
		if err == nil {
			err = hashMatches(ps.file.path, ps.ref)
		}
		if err != nil {
			damaged = append(damaged, ps)
			if first == nil {
				first = err
			}
			continue
		}
		s.pool.mu.Lock()
		ps.file = id
		s.pool.mu.Unlock()
		s.log.Info("a served shard's file was rewritten with the same bytes; serving on", "file", id.path)
	}
	if len(damaged) == 0 {
		s.faultLogged.Store(false)
		return
	}
	for _, ps := range damaged {
		s.pool.evict(ps)
	}
	if s.cur.CompareAndSwap(g, nil) {
		g.release()
	}
	s.trust.tsFile = nil // the named release is loaded again, from the files as they are then
	s.refused(&refusal{reasonShard, fmt.Errorf("serve: release %d withdrawn: %d of its shards changed under the edge (publish new files and rename; never write a served file in place): %w",
		g.seq, len(damaged), first)}, damaged[0].file.path)
}

// hashMatches checks a shard file's size and sha256 against its manifest entry.
func hashMatches(path string, ref index.ShardRef) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if n != ref.Size || hex.EncodeToString(h.Sum(nil)) != ref.SHA256 {
		return fmt.Errorf("serve: shard %s is now %d bytes with sha256 %x; the manifest says %d bytes, %s: %w", path, n, h.Sum(nil), ref.Size, ref.SHA256, index.ErrCorrupt)
	}
	return nil
}

// ownShardDir makes the directory a catalog edge copies its shards into: dir/shards, or
// shards/ in a new temporary directory when dir is "".
func ownShardDir(dir string) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "driveway-edge-")
		if err != nil {
			return "", fmt.Errorf("serve: a directory for the edge's own copy of its shards: %w (set Cache / --cache)", err)
		}
		dir = d
	}
	d := filepath.Join(dir, index.ShardsDir)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("serve: %w", err)
	}
	return d, nil
}

// copyShard copies a shard from a catalog directory into the edge's own directory, checking
// its size and sha256 against ref on the way; a copy already there (of the right size) is
// kept, and checked when it is opened.
func copyShard(catalog, own string, ref index.ShardRef) error {
	dst := filepath.Join(own, ref.Name)
	if fi, err := os.Stat(dst); err == nil && fi.Size() == ref.Size {
		return nil
	}
	src, err := os.Open(filepath.Join(catalog, index.ShardsDir, ref.Name))
	if err != nil {
		return err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(own, ".tmp-shard-copy-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(src, ref.Size+1))
	if err != nil {
		return err
	}
	if n != ref.Size || hex.EncodeToString(h.Sum(nil)) != ref.SHA256 {
		return fmt.Errorf("serve: shard %s is %d bytes with sha256 %x; the manifest says %d bytes, %s: %w", src.Name(), n, h.Sum(nil), ref.Size, ref.SHA256, index.ErrCorrupt)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
