//go:build !unix

package chtest

import "os/exec"

// ownGroup: no process groups here; the server is stopped by its own process.
func ownGroup(*exec.Cmd) {}

// signalGroup kills the server (there is no SIGTERM to send here).
func signalGroup(cmd *exec.Cmd, _ bool) { cmd.Process.Kill() }
