//go:build unix

package adbtest

import (
	"os/exec"
	"syscall"
)

// killGroup makes cancelling c kill its whole process group, so a shell's children (sleep, cat)
// die with it instead of holding its output pipes open.
func killGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
}
