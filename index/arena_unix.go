//go:build unix

package index

import (
	"sync"

	"golang.org/x/sys/unix"
)

// arena holds a shard's cached decoded blocks outside the Go heap, in anonymous mappings:
// they cost exactly their size in resident memory (pages are touched only as they are
// written), the garbage collector neither scans them nor grows the heap target for them, and
// they are all released at once when the shard is closed. Values in them follow the rule of
// values in the shard's own mapping: valid until Close.
type arena struct {
	mu     sync.Mutex
	chunks [][]byte
	free   []byte // what is left of the newest chunk
}

const arenaChunk = 4 << 20

// alloc returns n bytes of arena memory, or nil when the system refuses a mapping (the
// caller then uses the heap).
func (a *arena) alloc(n int) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n > len(a.free) {
		size := arenaChunk
		if n > size {
			size = (n + 4095) &^ 4095
		}
		m, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
		if err != nil {
			return nil
		}
		a.chunks = append(a.chunks, m)
		a.free = m
	}
	p := a.free[:n:n]
	a.free = a.free[n:]
	return p
}

// release unmaps every chunk; nothing may use the arena's memory afterwards.
func (a *arena) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.chunks {
		unix.Munmap(c)
	}
	a.chunks, a.free = nil, nil
}
