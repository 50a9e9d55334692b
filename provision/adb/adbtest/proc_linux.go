package adbtest

import (
	"os/exec"
	"syscall"
)

// serverProcAttr makes the adb server die with the test process, even when the test binary is
// killed or panics (go test -timeout) before its cleanups run.
func serverProcAttr(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
