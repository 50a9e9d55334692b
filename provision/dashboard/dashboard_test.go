package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testpg"
	"github.com/provkit/provkit/provision/ledger"
)

func newLedger(t *testing.T) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(context.Background(), filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// record gives serial a verdict at station st.
func record(t *testing.T, st *ledger.Station, serial, verdict string, reasons ...string) {
	t.Helper()
	ctx := context.Background()
	run, err := st.BeginRun(ctx, ledger.RunSpec{Serial: serial, PolicySHA256: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.StepStarted(ctx, "check"); err != nil {
		t.Fatal(err)
	}
	if err := run.StepFinished(ctx, "check", true, "", map[string]string{"serial": serial}); err != nil {
		t.Fatal(err)
	}
	if err := run.Finish(ctx, ledger.Verdict{Verdict: verdict, Reasons: reasons, Evidence: map[string]any{"check": map[string]string{"serial": serial}}}); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestDashboardHTTP(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { dashboardHTTP(t, newLedger(t)) })
	t.Run("postgres", func(t *testing.T) {
		l, err := ledger.Open(context.Background(), testpg.Start(t).NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		dashboardHTTP(t, l)
	})
}

func dashboardHTTP(t *testing.T, l *ledger.Ledger) {
	ctx := context.Background()
	st, err := l.StartStation(ctx, ledger.StationInfo{Name: "st-1", Host: "bench"})
	if err != nil {
		t.Fatal(err)
	}
	evil := `<img src=x onerror=alert(1)>`
	record(t, st, "OK-1", ledger.VerdictPass)
	record(t, st, evil, ledger.VerdictFail, "app-installed (ru.oneme.app): "+evil)
	run, _ := st.BeginRun(ctx, ledger.RunSpec{Serial: "BUSY-1", PolicySHA256: "p"})
	_ = run.StepStarted(ctx, "flash")

	srv := httptest.NewServer(New(l, Options{}))
	defer srv.Close()

	resp, body := get(t, srv, "/")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("index: %d %v", resp.StatusCode, resp.Header)
	}
	if strings.Contains(body, "<img src=x") {
		t.Fatal("a serial from the ledger reached the page unescaped")
	}
	_, body = get(t, srv, "/api/summary")
	var sum Summary
	if err := json.Unmarshal([]byte(body), &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.PerHour) != 1 || sum.PerHour[0].Total != 2 || sum.PerHour[0].Pass != 1 || sum.LastHour.Total != 2 {
		t.Fatalf("per hour %s", body)
	}
	if sum.Today.Pass != 1 || sum.Today.Fail != 1 || len(sum.InProgress) != 1 || sum.InProgress[0].Step != "flash" ||
		len(sum.Failures) != 1 || sum.Failures[0].Serial != evil || len(sum.Stations) != 1 || sum.Stations[0].Status != "running" || sum.Stations[0].InProgress != 1 {
		t.Fatalf("summary %s", body)
	}
	_, body = get(t, srv, "/api/device?serial="+url.QueryEscape(evil))
	var h History
	if err := json.Unmarshal([]byte(body), &h); err != nil || len(h.Verdicts) != 1 || len(h.Events) == 0 {
		t.Fatalf("history %s: %v", body, err)
	}
	if resp, _ := get(t, srv, "/api/device"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("search without serial: %d", resp.StatusCode)
	}
	// Read-only.
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, srv.URL+"/api/summary", strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("%s: %d", m, resp.StatusCode)
		}
	}
	_, body = get(t, srv, "/metrics")
	for _, want := range []string{`provkit_line_verdicts_total{station="st-1",verdict="pass"} 1`, `provkit_line_verdicts_total{station="st-1",verdict="fail"} 1`,
		`provkit_line_devices_in_progress{station="st-1"} 1`, `provkit_line_devices_processed_total{station="st-1"} 2`, `provkit_line_station_up{station="st-1"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	// Step durations recorded after the dashboard started are in the histogram.
	_ = run.StepFinished(ctx, "flash", true, "", nil)
	_, body = get(t, srv, "/metrics")
	if !strings.Contains(body, `provkit_line_step_duration_seconds_count{ok="true",station="st-1",step="flash"} 1`) {
		t.Errorf("/metrics lacks the flash duration:\n%s", body)
	}
	// A station not heard from for a while is shown as stale.
	later := New(l, Options{Now: func() time.Time { return time.Now().Add(5 * time.Minute) }})
	if sum, err := later.Summarize(ctx); err != nil || sum.Stations[0].Status != "stale" {
		t.Fatalf("5 minutes later: %+v, %v", sum.Stations, err)
	}
	if resp, body := get(t, srv, "/static/app.js"); resp.StatusCode != 200 || !strings.Contains(body, "EventSource") {
		t.Fatalf("app.js: %d", resp.StatusCode)
	}
}
