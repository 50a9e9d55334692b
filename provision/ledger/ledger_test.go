package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testpg"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testpg.StopShared()
	os.Exit(code)
}

// backends runs f against a fresh SQLite ledger and a fresh database on a real PostgreSQL.
func backends(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, filepath.Join(t.TempDir(), "ledger.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, testpg.Shared(t).NewDatabase(t)) })
}

func open(t *testing.T, dsn string) *Ledger {
	t.Helper()
	l, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestRunLifecycle(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := open(t, dsn)
		st, err := l.StartStation(ctx, StationInfo{Name: "line1-st3", Host: "h", PID: 42, PolicySHA256: "p1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.DeviceSeen(ctx, "SER1", true, ""); err != nil {
			t.Fatal(err)
		}
		run, err := st.BeginRun(ctx, RunSpec{Serial: "SER1", PolicySHA256: "p1"})
		if err != nil {
			t.Fatal(err)
		}
		if run.Resumed || run.Attempt != 1 {
			t.Fatalf("new run: resumed=%v attempt=%d", run.Resumed, run.Attempt)
		}
		if err := run.StepStarted(ctx, "check"); err != nil {
			t.Fatal(err)
		}
		devs, err := l.Devices(ctx, Filter{})
		if err != nil || len(devs) != 1 || devs[0].Step != "check" || devs[0].State != "running" || !devs[0].Present {
			t.Fatalf("devices mid-step = %+v, %v", devs, err)
		}
		if err := run.StepFinished(ctx, "check", false, "app-installed failed", map[string]any{"apps": 1}); err != nil {
			t.Fatal(err)
		}
		if err := run.Finish(ctx, Verdict{Verdict: VerdictFail, Reasons: []string{"app-installed (ru.oneme.app): not installed"}, Evidence: map[string]string{"k": "v"}}); err != nil {
			t.Fatal(err)
		}
		// The run is closed: a second verdict is refused.
		if err := run.Finish(ctx, Verdict{Verdict: VerdictPass}); !errors.Is(err, ErrDuplicateVerdict) {
			t.Fatalf("second verdict: %v, want ErrDuplicateVerdict", err)
		}
		// And the database itself refuses a second verdict row for the run, whoever writes it.
		_, err = l.DB().ExecContext(ctx, l.q(`INSERT INTO verdicts (run_id, serial, station, at_us, verdict, policy_sha256, reasons) VALUES (?, 'SER1', 'x', 1, 'pass', 'p1', '[]')`), run.ID)
		if err == nil || !l.d.isUnique(err) {
			t.Fatalf("raw second verdict insert: %v, want a unique violation", err)
		}
		last, err := l.Last(ctx, "SER1")
		if err != nil || last == nil || last.Verdict != VerdictFail || last.Open || last.LeftAfterVerdict {
			t.Fatalf("Last = %+v, %v", last, err)
		}
		if err := st.DeviceSeen(ctx, "SER1", false, ""); err != nil {
			t.Fatal(err)
		}
		if last, _ = l.Last(ctx, "SER1"); !last.LeftAfterVerdict {
			t.Fatal("unplugging after the verdict is not remembered")
		}
		vs, err := l.Verdicts(ctx, Filter{Station: "line1-st3"})
		if err != nil || len(vs) != 1 || vs[0].Serial != "SER1" || vs[0].Reasons[0] != "app-installed (ru.oneme.app): not installed" || string(vs[0].Evidence) != `{"k":"v"}` ||
			fmt.Sprint(vs[0].FailedRules) != "[app-installed]" {
			t.Fatalf("verdicts = %+v, %v", vs, err)
		}
		evs, err := l.Events(ctx, Filter{Serial: "SER1"})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, e := range evs {
			kinds = append(kinds, e.Kind)
		}
		want := fmt.Sprint([]string{EventDeviceSeen, EventRunStarted, EventStepStarted, EventStepFinished, EventVerdict, EventDeviceGone})
		if fmt.Sprint(kinds) != want {
			t.Fatalf("events %v, want %v", kinds, want)
		}
		if err := st.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		s := ComputeStats(vs)
		if s.Fail != 1 || len(s.ByRule) != 1 || s.ByRule[0].Rule != "app-installed" {
			t.Fatalf("stats = %+v", s)
		}
	})
}

// A run left open by a session that died is resumed by the next session, with the steps it
// finished; its verdict is the run's only one.
func TestResumeAfterCrash(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := open(t, dsn)
		st1, _ := l.StartStation(ctx, StationInfo{Name: "s"})
		run1, err := st1.BeginRun(ctx, RunSpec{Serial: "A", PolicySHA256: "p", FirmwareSHA256: "f"})
		if err != nil {
			t.Fatal(err)
		}
		_ = run1.StepStarted(ctx, "bootloader")
		_ = run1.StepFinished(ctx, "bootloader", true, "", nil)
		_ = run1.StepStarted(ctx, "flash")
		// The process dies here. A new session of the same station starts.
		st2, _ := l.StartStation(ctx, StationInfo{Name: "s"})
		run2, err := st2.BeginRun(ctx, RunSpec{Serial: "A", PolicySHA256: "p", FirmwareSHA256: "f"})
		if err != nil {
			t.Fatal(err)
		}
		if !run2.Resumed || run2.ID != run1.ID || run2.Attempt != 2 || !run2.Finished["bootloader"] || run2.Finished["flash"] {
			t.Fatalf("resumed run = %+v", run2)
		}
		// The dead session's handle can no longer write.
		if err := run1.StepFinished(ctx, "flash", true, "", nil); !errors.Is(err, ErrRunLost) {
			t.Fatalf("old session writing: %v, want ErrRunLost", err)
		}
		_ = run2.StepStarted(ctx, "flash")
		_ = run2.StepFinished(ctx, "flash", true, "", nil)
		if err := run2.Finish(ctx, Verdict{Verdict: VerdictPass}); err != nil {
			t.Fatal(err)
		}
		vs, _ := l.Verdicts(ctx, Filter{Serial: "A"})
		if len(vs) != 1 {
			t.Fatalf("%d verdicts", len(vs))
		}
		// Another firmware: a new run, and the old (closed) one is untouched.
		run3, err := st2.BeginRun(ctx, RunSpec{Serial: "A", PolicySHA256: "p", FirmwareSHA256: "g"})
		if err != nil || run3.Resumed || run3.ID == run1.ID {
			t.Fatalf("new run = %+v, %v", run3, err)
		}
		// The run is open; a switch of firmware closes it as interrupted.
		run4, err := st2.BeginRun(ctx, RunSpec{Serial: "A", PolicySHA256: "p", FirmwareSHA256: "h"})
		if err != nil || run4.Resumed {
			t.Fatalf("run4 = %+v, %v", run4, err)
		}
		vs, _ = l.Verdicts(ctx, Filter{Serial: "A"})
		if len(vs) != 2 || vs[1].Verdict != VerdictInterrupted || vs[1].RunID != run3.ID {
			t.Fatalf("verdicts after supersede = %+v", vs)
		}
	})
}

// Two live stations never hold open runs for the same serial at once, and events of one run
// never share a sequence number, even when stations race.
func TestStationsRace(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		const stations, serials = 4, 6
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := map[string]int{}
		busy := 0
		for i := 0; i < stations; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				l, err := Open(ctx, dsn) // each station its own connection pool, as separate processes
				if err != nil {
					t.Error(err)
					return
				}
				defer l.Close()
				st, err := l.StartStation(ctx, StationInfo{Name: fmt.Sprintf("st%d", i)})
				if err != nil {
					t.Error(err)
					return
				}
				for s := 0; s < serials; s++ {
					serial := fmt.Sprintf("S%d", s)
					run, err := st.BeginRun(ctx, RunSpec{Serial: serial, PolicySHA256: "p"})
					if errors.Is(err, ErrRunBusy) {
						mu.Lock()
						busy++
						mu.Unlock()
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					won[serial]++
					mu.Unlock()
					for k := 0; k < 3; k++ {
						if err := run.StepStarted(ctx, "check"); err != nil {
							t.Error(err)
						}
					}
				}
			}(i)
		}
		wg.Wait()
		for s := 0; s < serials; s++ {
			if n := won[fmt.Sprintf("S%d", s)]; n != 1 {
				t.Errorf("S%d: %d stations opened a run, want 1", s, n)
			}
		}
		if busy != (stations-1)*serials {
			t.Errorf("%d busy refusals, want %d", busy, (stations-1)*serials)
		}
		l := open(t, dsn)
		var dup int
		if err := l.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT run_id, seq FROM events WHERE run_id IS NOT NULL GROUP BY run_id, seq HAVING COUNT(*) > 1) d`).Scan(&dup); err != nil || dup != 0 {
			t.Fatalf("duplicate sequence numbers: %d, %v", dup, err)
		}
	})
}

func TestMigrationsIdempotentAndVersioned(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := open(t, dsn)
		l.Close()
		l = open(t, dsn)
		var v int
		if err := l.DB().QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil || v != SchemaVersion {
			t.Fatalf("schema version %d, %v; want %d", v, err, SchemaVersion)
		}
		if _, err := l.DB().ExecContext(ctx, l.q(`INSERT INTO schema_migrations (version, applied_us) VALUES (?, 0)`), SchemaVersion+5); err != nil {
			t.Fatal(err)
		}
		l.Close()
		if _, err := Open(ctx, dsn); err == nil {
			t.Fatal("a ledger newer than this provkit opened")
		}
	})
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/var/state")
	if p, _ := DefaultPath(); p != "/var/state/provkit/ledger.db" {
		t.Fatal(p)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/op")
	if p, _ := DefaultPath(); p != "/home/op/.local/state/provkit/ledger.db" {
		t.Fatal(p)
	}
	if _, err := Open(context.Background(), "mysql://x"); err == nil {
		t.Fatal("mysql URL accepted")
	}
}

func TestRuleOf(t *testing.T) {
	for in, want := range map[string]string{
		"app-installed (ru.oneme.app): not installed": "app-installed",
		"fingerprint-allowed: x":                      "fingerprint-allowed",
		"timed out":                                   "timed out",
	} {
		if got := RuleOf(in); got != want {
			t.Errorf("RuleOf(%q) = %q", in, got)
		}
	}
	_ = time.Now
}

func TestTiming(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := open(t, dsn)
		clock := time.Unix(1000, 0)
		l.now = func() time.Time { return clock }
		st, _ := l.StartStation(ctx, StationInfo{Name: "s"})
		run, _ := st.BeginRun(ctx, RunSpec{Serial: "A", PolicySHA256: "p"})
		clock = clock.Add(time.Second)
		_ = run.StepStarted(ctx, "check")
		clock = clock.Add(8 * time.Second)
		_ = run.StepFinished(ctx, "check", true, "", nil)
		clock = clock.Add(time.Second)
		_ = run.Finish(ctx, Verdict{Verdict: VerdictPass})
		tm, err := l.Timing(ctx, Filter{Station: "s"})
		if err != nil || tm.Runs != 1 || tm.RunSeconds != 10 || tm.StepSeconds != 8 || tm.PerStep["check"] != 8 || tm.Overhead < 0.19 || tm.Overhead > 0.21 {
			t.Fatalf("timing %+v, %v", tm, err)
		}
	})
}

// A verdict is committed with synchronous=FULL; the connection goes back to NORMAL after.
func TestVerdictCommitIsSynchronous(t *testing.T) {
	ctx := context.Background()
	l := open(t, filepath.Join(t.TempDir(), "l.db"))
	l.db.SetMaxOpenConns(1) // one connection: what syncTx set is what the next query sees
	var during int
	st, _ := l.StartStation(ctx, StationInfo{Name: "s"})
	run, _ := st.BeginRun(ctx, RunSpec{Serial: "A", PolicySHA256: "p"})
	err := l.syncTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&during); err != nil {
			return err
		}
		return run.verdictTx(ctx, tx, Verdict{Verdict: VerdictPass})
	})
	if err != nil {
		t.Fatal(err)
	}
	var after int
	if err := l.db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if during != 2 || after != 1 { // FULL is 2, NORMAL 1
		t.Fatalf("synchronous during the verdict %d, after %d; want 2 then 1", during, after)
	}
}
