//go:build !unix && !windows

package client

import "os"

// lockFile: no file locks here (wasm, plan9); the state directory is not guarded.
func lockFile(*os.File) (busy bool, err error) { return false, nil }
