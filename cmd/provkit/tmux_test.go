package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// shq quotes s for a POSIX shell.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// tmuxRun starts this test binary as provkit with args in a detached tmux session of the given
// size, as a person would run it in a terminal. env is exported first (NAME=value, quoted here).
// The shell around provkit ignores Ctrl-C so that it survives to print "exit=<status>" (provkit
// installs its own handler: Go re-enables an inherited ignored SIGINT that it asks for), and a
// pane that dies stays readable. It returns a function running tmux commands on that session;
// the session is killed at the end of the test.
func tmuxRun(t *testing.T, width, height string, env []string, args ...string) func(args ...string) string {
	t.Helper()
	tmux := testtool.Require(t, "tmux")[0]
	dir := t.TempDir()
	sock := filepath.Join(dir, "tmux.sock")
	script := filepath.Join(dir, "run.sh")
	var exports, cmd []string
	for _, e := range append([]string{asProvkitEnv + "=1"}, env...) {
		name, val, _ := strings.Cut(e, "=")
		exports = append(exports, name+"="+shq(val))
	}
	for _, a := range append([]string{os.Args[0]}, args...) {
		cmd = append(cmd, shq(a))
	}
	body := "#!/bin/sh\ntrap '' INT\nexport " + strings.Join(exports, " ") + "\n" + strings.Join(cmd, " ") + "\necho \"exit=$?\"\nsleep 600\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	tm := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tmux, append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	tm("new-session", "-d", "-x", width, "-y", height, script)
	tm("set-option", "-g", "remain-on-exit", "on")
	t.Cleanup(func() { exec.Command(tmux, "-S", sock, "kill-server").Run() })
	return tm
}
