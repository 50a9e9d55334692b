package main

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testline"
	"github.com/provkit/provkit/provision/ledger"
	"github.com/provkit/provkit/provision/sim"
)

func startSlowPhones(t *testing.T, n int) (*testline.Fixture, *sim.Simulator) {
	t.Helper()
	fix := testline.New(t, testline.Options{BytesPerSecond: "256K", ImageSize: 1 << 20})
	sc, err := sim.LoadScenario(fix.Scenario)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: n, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return fix, s
}

func lineArgs(fix *testline.Fixture, s *sim.Simulator, db string) []string {
	args := []string{"line", "run", "--policy", fix.Policy, "--firmware", fix.Firmware, "--station", "tty-st", "--ledger", db, "--poll", "100ms"}
	for _, d := range s.Devices() {
		args = append(args, "--tcp", d.ADBAddr()+"="+d.FastbootAddr())
	}
	return args
}

// Ctrl-C (SIGINT) stops the station program: the phone mid-flash is recorded and printed as
// INTERRUPTED, and the program exits 130.
func TestLineInterruptExits130(t *testing.T) {
	fix, s := startSlowPhones(t, 1)
	db := filepath.Join(t.TempDir(), "ledger.db")
	st := startStation(t, t.TempDir(), lineArgs(fix, s, db)...)
	l, err := ledger.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	waitFor(t, st, func() bool {
		devs, _ := l.Devices(context.Background(), ledger.Filter{})
		return len(devs) == 1 && devs[0].Step == "flash"
	})
	_ = st.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-st.done:
	case <-time.After(time.Minute):
		_ = st.cmd.Process.Kill()
		t.Fatal("the station did not stop on SIGINT")
	}
	if code := st.cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit code %d, want 130\n%s", code, st.stderr.String())
	}
	if out := st.out.String(); !strings.HasPrefix(out, "INTERRUPTED  LINE-OK-001  interrupted during flash") {
		t.Fatalf("stdout %q", out)
	}
	vs, _ := l.Verdicts(context.Background(), ledger.Filter{})
	if len(vs) != 1 || vs[0].Verdict != ledger.VerdictInterrupted {
		t.Fatalf("verdicts %+v", vs)
	}
}

// On a terminal (tmux), the station draws a status row per phone with its step and the flash's
// progress, and the verdict line replaces it.
func TestLineStatusAreaInTmux(t *testing.T) {
	fix, s := startSlowPhones(t, 2)
	dir := t.TempDir()
	tm := tmuxRun(t, "120", "30", []string{"HOME=" + dir}, append(lineArgs(fix, s, filepath.Join(dir, "ledger.db")), "--max-phones", "2")...)
	deadline := time.Now().Add(2 * time.Minute)
	sawProgress := false
	for {
		screen := tm("capture-pane", "-p")
		if strings.Contains(screen, "flash") && strings.Contains(screen, "%") && strings.Contains(screen, "LINE-OK-00") {
			sawProgress = true
		}
		if strings.Contains(screen, "exit=") {
			if !sawProgress {
				t.Fatalf("no status row with the flash progress was seen; screen:\n%s", screen)
			}
			if !strings.Contains(screen, "exit=0") || strings.Count(screen, "PASS   LINE-OK-00") != 2 {
				t.Fatalf("screen:\n%s", screen)
			}
			// The status rows are gone: no phone row is left under the verdict lines.
			if strings.Contains(screen, " flash ") || strings.Contains(screen, " check ") {
				t.Fatalf("status rows left on the screen:\n%s", screen)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the station did not finish; screen:\n%s", screen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
