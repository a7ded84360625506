//go:build unix

package index

import (
	"os"

	"golang.org/x/sys/unix"
)

// mmapFile maps the n bytes (n > 0) of f read-only and shared, and asks
// the kernel to read them in now and expect random access: a page fault
// on the serving path would block the OS thread running the request. The
// pages dropped later (dropPages) stay in the page cache: reading them
// again is a minor fault, not a read of the disk.
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

// dropPages tells the kernel that the pages of data (part of a read-only file mapping) are
// not needed now (MADV_DONTNEED): they leave the process's resident set and stay in the
// page cache, and a later read maps them again from there (a minor fault). data must begin
// and end on page boundaries, or at the mapping's ends. Only for a file mapping: on
// anonymous memory DONTNEED would zero it.
func dropPages(data []byte) {
	if len(data) > 0 {
		_ = unix.Madvise(data, unix.MADV_DONTNEED) // advice: a kernel that ignores it only keeps more resident
	}
}
