//go:build unix

package chtest

import (
	"os/exec"
	"syscall"
)

// ownGroup starts the server in a process group of its own, so that stop reaches whatever
// it starts too.
func ownGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// signalGroup sends the server's process group SIGTERM, or SIGKILL when kill is set.
func signalGroup(cmd *exec.Cmd, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	syscall.Kill(-cmd.Process.Pid, sig)
}
