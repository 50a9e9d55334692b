package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/provision/sim"
)

// TestFlashBarsOnATerminal runs "provkit flash" on three slow simulated phones in a real terminal
// (tmux): each phone gets its own progress bar, seen moving mid-flash, and every bar ends at 100 %
// with "done".
func TestFlashBarsOnATerminal(t *testing.T) {
	sc, err := sim.ParseScenario([]byte(`
devices:
  - serial: BAR
    slotted: true
    unlocked: true
    mode: bootloader
    faults: {bytesPerSecond: 3M}
    partitions:
      - {name: boot, size: 4M}
      - {name: system, size: 8M}
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: 3, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "android-info.txt"), []byte("require version-bootloader=*\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "boot.img"), bytes.Repeat([]byte("B"), 1<<20), 0o644)
	os.WriteFile(filepath.Join(dir, "system.img"), bytes.Repeat([]byte("system!!"), 6<<17), 0o644)
	args := []string{"flash", "--no-audit", "--skip-reboot"}
	for _, d := range s.Devices() {
		args = append(args, "--tcp", d.FastbootAddr())
	}
	tm := tmuxRun(t, "150", "20", []string{"HOME=" + t.TempDir()}, append(args, dir)...)
	deadline := time.Now().Add(2 * time.Minute)
	midway := regexp.MustCompile(`\d+/\d+ flash \S+.*\[[=>-]*\].* [1-9]\d? %`)
	sawMidway := false
	for {
		screen := tm("capture-pane", "-p")
		if midway.MatchString(screen) {
			sawMidway = true
		}
		if strings.Contains(screen, "exit=") {
			if !strings.Contains(screen, "exit=0") {
				t.Fatalf("screen:\n%s", screen)
			}
			if !sawMidway {
				t.Errorf("no bar was seen part-way through a flash")
			}
			for _, d := range s.Devices() {
				re := regexp.MustCompile(`tcp:` + regexp.QuoteMeta(d.FastbootAddr()) + `\s+done\s+\[=+\].*100 %`)
				if !re.MatchString(screen) {
					t.Errorf("no finished bar for %s:\n%s", d.FastbootAddr(), screen)
				}
			}
			t.Logf("final screen:\n%s", screen)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("provkit flash did not finish; screen:\n%s", screen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
