//go:build unix

package adbtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// killGroup makes cancelling c kill its whole process group, so a shell's children (sleep, cat)
// die with it instead of holding its output pipes open.
func killGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
}

// killStray kills an adb server process still serving port after kill-server, found by its
// command line ("adb -L tcp:<port> fork-server server ...") in /proc.
func killStray(port int) {
	marker := "tcp:" + strconv.Itoa(port)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && filepath.Base(args[0]) == "adb" && slices.Contains(args, marker) && slices.Contains(args, "fork-server") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
