package build

import (
	"os"
	"syscall"
)

// statOf is what the file index compares of a file: size, modification and change time,
// inode.
func statOf(info os.FileInfo) fileStat {
	st := fileStat{size: info.Size(), mtime: info.ModTime().UnixNano()}
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		st.ctime = sys.Ctim.Sec*1e9 + sys.Ctim.Nsec
		st.inode = sys.Ino
	}
	return st
}
