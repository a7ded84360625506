//go:build linux || darwin || freebsd

package report

import (
	"os"
	"runtime"
	"syscall"
)

// diskFree is the space available to us in dir's file system, in bytes (0: unknown).
func diskFree(dir string) int64 {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return 0
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// maxRSS is an exited process's ru_maxrss in bytes (getrusage(2) counts kilobytes on Linux
// and FreeBSD, bytes on macOS).
func maxRSS(ps *os.ProcessState) (int64, bool) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, false
	}
	if runtime.GOOS == "darwin" {
		return int64(ru.Maxrss), true
	}
	return int64(ru.Maxrss) * 1024, true
}
