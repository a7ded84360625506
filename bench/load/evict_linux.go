package load

import (
	"os"

	"golang.org/x/sys/unix"
)

// evictPageCache asks the kernel to drop f's pages from the page cache (clean pages go;
// dirty ones are written first by the kernel's own schedule), so that the next reads are
// cold. It reports whether the kernel took the advice.
func evictPageCache(f *os.File) bool {
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) == nil
}
