// Package atomicfile replaces a file so that a reader, or the file system after a crash,
// sees the old content or the new and never part of either: the data is written to a
// temporary file in the same directory, fsynced, renamed over the file, and the directory
// is fsynced so that the rename survives a crash too (where a directory can be fsynced:
// not on Windows, whose renames on NTFS are durable by themselves).
//
// Every file driveway replaces in place goes through it: a release's manifest and release
// envelope, an edge's trust state and cached timestamp, the transparency log's tiles and
// checkpoint, the rollout controller's label and blocks files, a PC's client state, and the
// pages the CLI writes.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with data, with permissions perm, creating path's directory when
// it is missing. A temporary file it leaves behind (only if the process dies mid-write) is
// named ".tmp-<base>-<random>" beside path.
func Write(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), perm)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("writing %s: the rename is not durable: %w", path, err)
	}
	return nil
}
