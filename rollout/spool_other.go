//go:build !(linux || darwin || freebsd)

package rollout

import "errors"

// statfs is not measured here: the free-disk reserve is not checked.
func statfs(string) (free, total uint64, err error) { return 0, 0, errors.ErrUnsupported }

// syncDir: directories cannot be synced here (Windows); renames are durable enough.
func syncDir(string) error { return nil }
