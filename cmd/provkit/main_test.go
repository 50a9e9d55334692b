package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/cmd/provkit/internal/root"
)

// TestMain lets testscript run provkit in-process as the "provkit" command.
func TestMain(m *testing.M) {
	if os.Getenv(asProvkitEnv) == "1" {
		// Re-executed by a test as the provkit program itself (line_crash_test.go), signals
		// and all.
		main()
		return
	}
	testscript.Main(m, map[string]func(){
		"provkit": func() {
			os.Exit(root.Run(context.Background(), iostreams.System(), os.Args[1:]))
		},
	})
}

// TestScripts runs the end-to-end CLI scripts in testdata/script/*.txtar.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// Tools the scripts may call (apksigner, adb, ...) come from the real PATH.
			env.Setenv("PATH", os.Getenv("PATH"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"status": cmdStatus,
			// APK fixtures for apk_*.txtar (apk_cmds_test.go).
			"suiteapk": cmdSuiteAPK, "flipbyte": cmdFlipByte, "truncate": cmdTruncate,
		},
	})
}

// cmdStatus runs a program and checks its exit code: "status 4 provkit apk verify bad.apk". Its
// stdout and stderr are then available to the stdout/stderr commands, as after exec.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status <code> <program> [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("status: bad exit code %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("status: running %s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}
