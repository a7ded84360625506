//go:build !linux

package serve

import "errors"

// watchDir is Linux-only; elsewhere the directory is polled.
func watchDir(dir string) (<-chan struct{}, func(), error) {
	return nil, nil, errors.New("inotify is Linux-only")
}
