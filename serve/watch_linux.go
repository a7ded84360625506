package serve

import (
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/driveway/driveway/index"
)

// watchDir watches a catalog directory and its releases/ and shards/ subdirectories with
// inotify (shards/ also for writes and truncation in place: a served shard changed under the
// edge is checked at once, serve/damage.go). The channel receives a value (coalesced: it
// holds at most one) after every batch of changes, and is closed when the watch ends; stop
// ends it.
func watchDir(dir string) (<-chan struct{}, func(), error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, nil, err
	}
	const mask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_DELETE | unix.IN_MOVED_FROM
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	releases, shards := filepath.Join(dir, index.ReleasesDir), filepath.Join(dir, index.ShardsDir)
	var watching, watchingShards atomic.Bool
	addReleases := func() {
		if !watching.Load() {
			if _, err := unix.InotifyAddWatch(fd, releases, mask); err == nil {
				watching.Store(true)
			}
		}
		if !watchingShards.Load() {
			if _, err := unix.InotifyAddWatch(fd, shards, mask|unix.IN_MODIFY|unix.IN_ATTRIB); err == nil {
				watchingShards.Store(true)
			}
		}
	}
	addReleases()
	// A non-blocking fd goes through the runtime's poller: Read parks the goroutine, and
	// Close wakes it.
	f := os.NewFile(uintptr(fd), "inotify")
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			addReleases() // releases/ may have just been made
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch, func() { f.Close() }, nil
}
