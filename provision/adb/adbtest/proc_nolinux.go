//go:build !linux

package adbtest

import "os/exec"

// serverProcAttr: only Linux can tie a child's life to its parent's. Elsewhere a test binary
// killed before its cleanups run can leave its adb server running.
func serverProcAttr(*exec.Cmd) {}
