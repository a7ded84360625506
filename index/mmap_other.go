//go:build !unix

package index

import (
	"io"
	"os"
)

// mmapFile reads the n bytes of f into memory: this platform has no
// mapping here.
func mmapFile(f *os.File, n int) (data []byte, mapped bool, err error) {
	data = make([]byte, n)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, false, err
	}
	return data, false, nil
}

func munmap(data []byte) error { return nil }

// dropPages does nothing: the file was read into memory.
func dropPages(data []byte) {}
