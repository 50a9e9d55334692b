package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testline"
	"github.com/provkit/provkit/internal/testpg"
	"github.com/provkit/provkit/provision/ledger"
	"github.com/provkit/provkit/provision/sim"
)

// asProvkitEnv makes the test binary run as provkit (see TestMain).
const asProvkitEnv = "PROVKIT_TEST_AS_PROVKIT"

// station is one `provkit line run` process.
type station struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	stderr bytes.Buffer
	done   chan error
}

func startStation(t *testing.T, home string, args ...string) *station {
	t.Helper()
	s := &station{done: make(chan error, 1)}
	s.cmd = exec.Command(os.Args[0], args...)
	s.cmd.Env = append(os.Environ(), asProvkitEnv+"=1", "HOME="+home)
	s.cmd.Stdout = &lockedWriter{mu: &s.mu, w: &s.out}
	s.cmd.Stderr = &lockedWriter{mu: &s.mu, w: &s.stderr}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// updates returns the JSON Lines the station printed (a line cut by the kill is dropped).
func (s *station) updates(t *testing.T) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.out.Bytes()))
	for sc.Scan() {
		var u map[string]any
		if json.Unmarshal(sc.Bytes(), &u) == nil {
			out = append(out, u)
		}
	}
	return out
}

// TestLineCrashSafety kills `provkit line run` with SIGKILL at random points (and once for sure
// in the middle of a flash) while simulated phones go through flash and check, restarts it, and
// checks from the ledger that every phone ends with exactly one verdict, that no event the
// station reported is missing and none is duplicated, and that a phone cut off mid-flash was
// flashed again.
func TestLineCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a station many times")
	}
	t.Run("sqlite", func(t *testing.T) { crashTest(t, filepath.Join(t.TempDir(), "ledger.db")) })
	t.Run("postgres", func(t *testing.T) { crashTest(t, testpg.Start(t).NewDatabase(t)) })
}

func crashTest(t *testing.T, dsn string) {
	const phones, kills = 8, 10
	fix := testline.New(t, testline.Options{BytesPerSecond: "512K", ImageSize: 512 << 10})
	sc, err := sim.LoadScenario(fix.Scenario)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: phones, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	home := t.TempDir()
	args := []string{"line", "run", "--policy", fix.Policy, "--firmware", fix.Firmware, "--station", "crash-st", "--ledger", dsn,
		"--json", "--jobs", "3", "--max-phones", fmt.Sprint(phones), "--poll", "100ms", "--boot-timeout", "1m", "--timeout", "3m"}
	for _, d := range s.Devices() {
		args = append(args, "--tcp", d.ADBAddr()+"="+d.FastbootAddr())
	}
	l, err := ledger.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	var printed []map[string]any
	killed := 0
	for i := 0; i < kills; i++ {
		st := startStation(t, home, args...)
		if i == 0 {
			// The first kill lands in the middle of a flash, for certain.
			waitFor(t, st, func() bool {
				devs, _ := l.Devices(context.Background(), ledger.Filter{})
				for _, d := range devs {
					if d.State == "running" && d.Step == "flash" {
						return true
					}
				}
				return false
			})
		} else {
			time.Sleep(time.Duration(100+rng.IntN(2500)) * time.Millisecond)
		}
		select {
		case err := <-st.done:
			// Finished before the kill: every phone is done.
			printed = append(printed, st.updates(t)...)
			if err != nil {
				t.Fatalf("station exited: %v\n%s", err, st.stderr.String())
			}
			i = kills
			continue
		default:
		}
		_ = st.cmd.Process.Signal(syscall.SIGKILL)
		<-st.done
		killed++
		printed = append(printed, st.updates(t)...)
	}
	// The last run goes to its end.
	st := startStation(t, home, args...)
	select {
	case err := <-st.done:
		if err != nil {
			t.Fatalf("final station run: %v\n%s", err, st.stderr.String())
		}
	case <-time.After(4 * time.Minute):
		_ = st.cmd.Process.Signal(syscall.SIGKILL)
		t.Fatalf("final station run did not end\n%s", st.stderr.String())
	}
	printed = append(printed, st.updates(t)...)
	t.Logf("%d kills", killed)

	ctx := context.Background()
	vs, err := l.Verdicts(ctx, ledger.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	bySerial := map[string][]ledger.VerdictRecord{}
	for _, v := range vs {
		bySerial[v.Serial] = append(bySerial[v.Serial], v)
	}
	for _, d := range s.Devices() {
		got := bySerial[d.Serial()]
		if len(got) != 1 || got[0].Verdict != ledger.VerdictPass {
			t.Errorf("%s: verdicts %+v, want exactly one pass", d.Serial(), got)
		}
		for part, want := range fix.Images {
			b, err := d.ReadPartition(part)
			if err != nil || !bytes.Equal(b[:len(want)], want) {
				t.Errorf("%s: partition %s does not hold the firmware (%v)", d.Serial(), part, err)
			}
		}
	}
	if len(vs) != phones {
		t.Errorf("%d verdicts, want %d", len(vs), phones)
	}
	var open int
	if err := l.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE open = 1`).Scan(&open); err != nil || open != 0 {
		t.Errorf("%d runs left open (%v)", open, err)
	}

	evs, err := l.Events(ctx, ledger.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	type attemptKey struct {
		run     string
		attempt int
	}
	seqs := map[string][]int{}
	started := map[attemptKey][]string{}
	finished := map[attemptKey]map[string]int{}
	verdictEvents := map[string]int{}
	recorded := map[string]bool{} // "serial/step/run" of step-started
	for _, e := range evs {
		if e.RunID == "" {
			continue
		}
		seqs[e.RunID] = append(seqs[e.RunID], e.Seq)
		k := attemptKey{e.RunID, e.Attempt}
		switch e.Kind {
		case ledger.EventStepStarted:
			started[k] = append(started[k], e.Step)
			recorded[e.Serial+"/"+e.Step+"/"+e.RunID] = true
		case ledger.EventStepFinished:
			if finished[k] == nil {
				finished[k] = map[string]int{}
			}
			finished[k][e.Step]++
			if finished[k][e.Step] > 1 {
				t.Errorf("run %s attempt %d: step %s finished twice", e.RunID, e.Attempt, e.Step)
			}
		case ledger.EventVerdict:
			verdictEvents[e.RunID]++
		}
	}
	// Within a run, events are numbered 1, 2, 3... with no gap (none lost) and no repeat (none
	// duplicated).
	for run, ss := range seqs {
		for i, sq := range ss {
			if sq != i+1 {
				t.Errorf("run %s: event sequence %v", run, ss)
				break
			}
		}
	}
	for _, v := range vs {
		if verdictEvents[v.RunID] != 1 {
			t.Errorf("run %s: %d verdict events", v.RunID, verdictEvents[v.RunID])
		}
	}
	// A flash cut short in one attempt was done again, to the end, in a later one.
	reflashed := 0
	for k, steps := range started {
		for _, step := range steps {
			if step != "flash" || finished[k]["flash"] == 1 {
				continue
			}
			again := false
			for k2, f := range finished {
				if k2.run == k.run && k2.attempt > k.attempt && f["flash"] == 1 {
					again = true
				}
			}
			if !again {
				t.Errorf("run %s: the flash cut short in attempt %d was not done again", k.run, k.attempt)
			}
			reflashed++
		}
	}
	if reflashed == 0 {
		t.Error("no flash was cut short: the test did not exercise what it is for")
	}
	// What the station printed before each kill is in the ledger: every step it reported
	// started, every verdict it reported.
	verdictRuns := map[string]bool{}
	for _, v := range vs {
		verdictRuns[v.RunID] = true
	}
	for _, u := range printed {
		switch u["type"] {
		case "step":
			if key := fmt.Sprintf("%v/%v/%v", u["serial"], u["step"], u["runId"]); !recorded[key] {
				t.Errorf("reported but not in the ledger: step-started %s", key)
			}
		case "verdict":
			if !verdictRuns[fmt.Sprint(u["runId"])] {
				t.Errorf("reported but not in the ledger: verdict %v", u)
			}
		}
	}
	t.Logf("%d verdicts, %d events, %d flashes cut short and done again", len(vs), len(evs), reflashed)
}

func waitFor(t *testing.T, st *station, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			_ = st.cmd.Process.Signal(syscall.SIGKILL)
			t.Fatalf("waiting for a phone mid-flash\n%s", st.stderr.String())
		}
		select {
		case err := <-st.done:
			t.Fatalf("station ended before a flash: %v\n%s", err, st.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
