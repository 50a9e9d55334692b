package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/provkit/provkit/internal/testline"
	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/manifests/policy"
	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/ledger"
	"github.com/provkit/provkit/provision/line"
	"github.com/provkit/provkit/provision/sim"
)

// chromium finds Debian's chromium.
func chromium(t *testing.T) string {
	for _, n := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	testtool.Missing(t, "chromium is not installed (Debian package chromium; scripts/test.sh installs it)")
	return ""
}

// TestDashboardInChromium loads the dashboard in a real headless Chromium while a real station
// checks simulated phones: the page loads without console errors, the verdicts appear without a
// reload, and the serial search shows a phone's history. PROVKIT_DASHBOARD_SCREENSHOT=<file>
// also saves a screenshot (with a few more stations' records, for the documentation).
func TestDashboardInChromium(t *testing.T) {
	exe := chromium(t)
	l := newLedger(t)
	shot := os.Getenv("PROVKIT_DASHBOARD_SCREENSHOT")
	if shot != "" {
		populate(t, l)
	}
	srv := httptest.NewServer(New(l, Options{Poll: 200 * time.Millisecond}))
	defer srv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, tcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer tcancel()

	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				mu.Lock()
				problems = append(problems, m.String()+" "+m.URL)
				mu.Unlock()
			}
		}
	}()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#live.on")),
	); err != nil {
		t.Fatalf("loading the page: %v", err)
	}

	// A real station checks two simulated phones (one compliant, one without the app).
	recorded := make(chan time.Time, 4)
	stationCtx, stopStation := context.WithCancel(context.Background())
	defer stopStation()
	go runStation(t, stationCtx, l, recorded)

	text := func(sel string) string {
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		return s
	}
	var last time.Time
	for i := 0; i < 2; i++ {
		select {
		case last = <-recorded:
		case <-time.After(2 * time.Minute):
			t.Fatal("the station gave no verdict")
		}
	}
	// The page shows both verdicts without a reload (a bounded wait: the server polls the
	// ledger every 200ms and pushes the change).
	for {
		if strings.Contains(text("#failures tbody"), "LINE-MISSING-002") && strings.Contains(text("#failures tbody"), "app-installed") &&
			(shot != "" || text("#c-pass") == "1") {
			break
		}
		if time.Since(last) > 30*time.Second {
			t.Fatalf("the verdicts did not appear: failures %q, pass %q", text("#failures tbody"), text("#c-pass"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the last verdict appeared on the page %v after it was recorded", time.Since(last).Round(10*time.Millisecond))
	if !strings.Contains(text("#stations tbody"), "browser-st") {
		t.Fatalf("stations: %q", text("#stations tbody"))
	}

	// Search by serial.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#serial"), "LINE-OK-001"),
		chromedp.Click(chromedp.CSS("#search button")),
		chromedp.WaitVisible(chromedp.CSS("#verdicts")),
	); err != nil {
		t.Fatalf("searching: %v", err)
	}
	if h := text("#history"); !strings.Contains(h, "History of LINE-OK-001") || !strings.Contains(h, "pass") || !strings.Contains(h, "browser-st") {
		t.Fatalf("history: %q", h)
	}
	if shot != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("the page logged problems:\n%s", strings.Join(problems, "\n"))
	}
}

func runStation(t *testing.T, ctx context.Context, l *ledger.Ledger, recorded chan<- time.Time) {
	fix := testline.New(t, testline.Options{Missing: 2})
	sc, err := sim.LoadScenario(fix.Scenario)
	if err != nil {
		t.Error(err)
		return
	}
	s, err := sim.Start(ctx, sim.Options{Devices: 2, Scenario: sc})
	if err != nil {
		t.Error(err)
		return
	}
	defer s.Close()
	pol, err := policy.Load(fix.Policy)
	if err != nil {
		t.Error(err)
		return
	}
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	src := &line.TCPSource{Interval: 100 * time.Millisecond, Dial: adb.DialOptions{Keys: []*rsa.PrivateKey{key}}}
	for _, d := range s.Devices() {
		src.Targets = append(src.Targets, line.TCPTarget{ADB: d.ADBAddr(), Fastboot: d.FastbootAddr()})
	}
	b, _ := os.ReadFile(fix.Policy)
	sum := sha256.Sum256(b)
	st, err := line.New(line.Config{Name: "browser-st", Policy: pol, PolicySHA256: hex.EncodeToString(sum[:]), Ledger: l, Sources: []line.Source{src},
		Jobs: 2, Timeout: time.Minute, StopAfter: 2, Report: func(u line.Update) {
			if u.Type == line.UpdateVerdict {
				recorded <- time.Now()
			}
		}})
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := st.Run(ctx); err != nil && ctx.Err() == nil {
		t.Error(err)
	}
}

// populate records a plant's worth of history, for the screenshot.
func populate(t *testing.T, l *ledger.Ledger) {
	ctx := context.Background()
	reasons := []string{
		"app-installed (ru.oneme.app): ru.oneme.app is not on the device (the package manager does not know it); install the mandated app",
		"signer-pinned (ru.oneme.app): signer 395d9900b710ba40 is not pinned",
		"app-enabled (ru.oneme.app): disabled for user 0 (state 3, disabled-user)",
	}
	for s, name := range []string{"line1-st1", "line1-st2", "line2-st1"} {
		st, err := l.StartStation(ctx, ledger.StationInfo{Name: name, Host: fmt.Sprintf("bench-%d", s+1)})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20+7*s; i++ {
			serial := fmt.Sprintf("R58M%02d%04d", s, i)
			if i%9 == 4 {
				record(t, st, serial, ledger.VerdictFail, reasons[(i/9+s)%3])
			} else {
				record(t, st, serial, ledger.VerdictPass)
			}
		}
		run, _ := st.BeginRun(ctx, ledger.RunSpec{Serial: fmt.Sprintf("R58M%02d9999", s), PolicySHA256: "p"})
		_ = run.StepStarted(ctx, []string{"flash", "check", "boot"}[s])
	}
}
