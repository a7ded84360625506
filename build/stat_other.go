//go:build !linux

package build

import "os"

// statOf is what the file index compares of a file: size and modification time (this
// platform's change time and inode are not read).
func statOf(info os.FileInfo) fileStat {
	return fileStat{size: info.Size(), mtime: info.ModTime().UnixNano()}
}
