//go:build !unix

package serve

import "os"

// inode is 0 where the file system gives none here: size and modification time remain.
func inode(os.FileInfo) uint64 { return 0 }
