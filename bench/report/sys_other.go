//go:build !(linux || darwin || freebsd)

package report

import "os"

// diskFree is the space available to us in dir's file system, in bytes: unknown here (0).
func diskFree(string) int64 { return 0 }

// maxRSS is an exited process's peak resident memory: unknown here.
func maxRSS(*os.ProcessState) (int64, bool) { return 0, false }
