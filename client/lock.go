package client

// One Get at a time on a state directory: two at once could each verify a release and
// write state.json in the opposite order (the PC would go back), or append to one partial
// download. Get holds an exclusive lock on STATE/lock for its whole run: flock(2) on Unix,
// LockFileEx on Windows, both released by the system when the process ends, so a crash
// leaves no stale lock. A second Get fails at once with ErrBusy.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrBusy is another Get running on the same state directory.
var ErrBusy = errors.New("client: the state directory is in use")

// LockFile is the lock's name in the state directory.
const LockFile = "lock"

// stateLock is a held lock; unlock releases it.
type stateLock struct{ f *os.File }

// lockState takes dir's lock, creating dir.
func lockState(dir string) (*stateLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	p := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	busy, err := lockFile(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: locking %s: %v", ErrState, p, err)
	}
	if busy {
		f.Close()
		return nil, fmt.Errorf("%w: another driveway client get holds %s; run one at a time on a state directory", ErrBusy, p)
	}
	return &stateLock{f}, nil
}

func (l *stateLock) unlock() { l.f.Close() } // closing the file releases the lock
