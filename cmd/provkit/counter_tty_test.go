package main

import (
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testline"
	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/adb/adbtest"
	"github.com/provkit/provkit/provision/sim"
)

// The shop counter as a person uses it: `provkit check --watch` runs in a terminal (tmux), phones
// are plugged in (attached to the real adb server) one after another and unplugged; each gets one
// big verdict line as it arrives, a phone left plugged in is not checked again, one unplugged and
// plugged again is; Ctrl-C prints the tally and exits 4 because one phone failed. The CSV holds
// one row per check, written as it happened.
func TestShopCounterInTmux(t *testing.T) {
	srv := adbtest.StartServer(t)
	fix := testline.New(t, testline.Options{Missing: 2})
	sc, err := sim.LoadScenario(fix.Scenario)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: 2, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ok, missing := s.Device("LINE-OK-001"), s.Device("LINE-MISSING-002")
	if ok == nil || missing == nil {
		t.Fatalf("simulated phones: %v", s.Devices())
	}

	dir := t.TempDir()
	csvPath := filepath.Join(dir, "stock.csv")
	tm := tmuxRun(t, "160", "40", []string{"HOME=" + srv.Home, "ANDROID_USER_HOME=" + filepath.Join(srv.Home, ".android"),
		"ANDROID_ADB_SERVER_PORT=" + strconv.Itoa(srv.Port)}, "check", "--watch", "--policy", fix.Policy, "--csv", csvPath)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	waitScreen := func(what string, cond func(string) bool) string {
		t.Helper()
		for {
			screen := tm("capture-pane", "-p", "-S", "-200")
			if cond(screen) {
				return screen
			}
			select {
			case <-ctx.Done():
				t.Fatalf("waiting for %s; screen:\n%s", what, screen)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	plug := func(d *sim.Device) {
		t.Helper()
		if _, err := srv.Connect(ctx, d.ADBAddr()); err != nil && !errors.Is(err, adb.ErrUnauthorized) {
			t.Fatalf("adb connect %s: %v", d.ADBAddr(), err)
		}
	}
	unplug := func(d *sim.Device) {
		t.Helper()
		if err := srv.Disconnect(ctx, d.ADBAddr()); err != nil {
			t.Fatal(err)
		}
	}
	// count counts the verdict lines "<VERDICT> <spaces> <serial>" on the screen.
	count := func(screen, verdict string, serial ...string) int {
		pat := verdict + `\s+`
		if len(serial) > 0 {
			pat += regexp.QuoteMeta(serial[0])
		}
		return len(regexp.MustCompile(pat).FindAllString(screen, -1))
	}
	waitScreen("the counter to start", func(s string) bool { return strings.Contains(s, "as they are plugged in") })

	plug(ok)
	waitScreen("the first verdict", func(s string) bool { return count(s, "PASS", ok.ADBAddr()) == 1 })
	plug(missing)
	screen := waitScreen("the second verdict", func(s string) bool { return count(s, "FAIL", missing.ADBAddr()) == 1 })
	if !strings.Contains(screen, "the required app is missing") {
		t.Fatalf("the FAIL line does not say why in plain words:\n%s", screen)
	}
	// Left plugged in, neither phone is checked again.
	time.Sleep(1500 * time.Millisecond)
	if screen := tm("capture-pane", "-p", "-S", "-200"); count(screen, "PASS") != 1 || count(screen, "FAIL") != 1 {
		t.Fatalf("a phone left plugged in was checked again:\n%s", screen)
	}
	// Unplugged and plugged again: checked again.
	unplug(missing)
	waitScreen("the unplug", func(s string) bool { return strings.Contains(s, missing.ADBAddr()+" unplugged") })
	plug(missing)
	waitScreen("the re-check", func(s string) bool { return count(s, "FAIL", missing.ADBAddr()) == 2 })

	tm("send-keys", "C-c")
	screen = waitScreen("the tally", func(s string) bool { return strings.Contains(s, "exit=") })
	if !strings.Contains(screen, "3 phone(s) checked: 1 PASS, 2 FAIL, 0 could not be checked") || !strings.Contains(screen, "exit=4") {
		t.Fatalf("tally or exit status wrong:\n%s", screen)
	}
	unplug(ok)
	unplug(missing)

	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0][1] != "serial" {
		t.Fatalf("CSV rows %q, want a header and 3 checks", rows)
	}
	got := map[string][]string{}
	for _, r := range rows[1:] {
		got[r[1]] = append(got[r[1]], r[2])
	}
	if strings.Join(got[ok.ADBAddr()], ",") != "pass" || strings.Join(got[missing.ADBAddr()], ",") != "fail,fail" {
		t.Fatalf("CSV verdicts %v", got)
	}
}
