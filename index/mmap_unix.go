//go:build unix

package index

import (
	"os"

	"golang.org/x/sys/unix"
)

// mmapFile maps the n bytes (n > 0) of f read-only and shared, and asks
// the kernel to read them in now and expect random access: a page fault
// on the serving path would block the OS thread running the request.
func mmapFile(f *os.File, n int) (data []byte, mapped bool, err error) {
	data, err = unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, false, err
	}
	// Advice only: a kernel that ignores it still serves the mapping.
	_ = unix.Madvise(data, unix.MADV_RANDOM)
	_ = unix.Madvise(data, unix.MADV_WILLNEED)
	return data, true, nil
}

func munmap(data []byte) error { return unix.Munmap(data) }
