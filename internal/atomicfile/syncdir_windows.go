package atomicfile

// SyncDir does nothing on Windows: a directory cannot be fsynced there (FlushFileBuffers on
// a directory handle is refused), and NTFS journals a rename itself.
func SyncDir(dir string) error { return nil }
