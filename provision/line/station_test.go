package line

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testline"
	"github.com/provkit/provkit/manifests/policy"
	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/ledger"
	"github.com/provkit/provkit/provision/sim"
)

var (
	keyOnce sync.Once
	hostKey *rsa.PrivateKey
)

type rig struct {
	fix    *testline.Fixture
	sim    *sim.Simulator
	pol    *policy.Policy
	polSHA string
	src    *TCPSource
	ledger *ledger.Ledger
}

func newRig(t *testing.T, n int, o testline.Options) *rig {
	t.Helper()
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		hostKey = k
	})
	fix := testline.New(t, o)
	sc, err := sim.LoadScenario(fix.Scenario)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: n, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	pol, err := policy.Load(fix.Policy)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(fix.Policy)
	sum := sha256.Sum256(b)
	src := &TCPSource{Interval: 100 * time.Millisecond, Dial: adb.DialOptions{Keys: []*rsa.PrivateKey{hostKey}, AuthWait: time.Second}}
	for _, d := range s.Devices() {
		src.Targets = append(src.Targets, TCPTarget{ADB: d.ADBAddr(), Fastboot: d.FastbootAddr()})
	}
	l, err := ledger.Open(context.Background(), filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &rig{fix: fix, sim: s, pol: pol, polSHA: hex.EncodeToString(sum[:]), src: src, ledger: l}
}

// collector gathers updates.
type collector struct {
	mu sync.Mutex
	us []Update
	ch chan Update
}

func newCollector() *collector { return &collector{ch: make(chan Update, 1000)} }

func (c *collector) report(u Update) {
	c.mu.Lock()
	c.us = append(c.us, u)
	c.mu.Unlock()
	select {
	case c.ch <- u:
	default:
	}
}

func (c *collector) of(typ string) []Update {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Update
	for _, u := range c.us {
		if u.Type == typ {
			out = append(out, u)
		}
	}
	return out
}

func (r *rig) config(c *collector) Config {
	return Config{Name: "st1", Policy: r.pol, PolicySHA256: r.polSHA, Ledger: r.ledger, Sources: []Source{r.src}, Jobs: 4,
		Timeout: 2 * time.Minute, BootTimeout: time.Minute, Report: c.report}
}

func run(t *testing.T, cfg Config) Summary {
	t.Helper()
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sum, err := st.Run(ctx)
	if err != nil {
		t.Fatalf("station: %v", err)
	}
	return sum
}

func TestCheckOnlyStationAndReprocessingRules(t *testing.T) {
	r := newRig(t, 3, testline.Options{Missing: 3})
	hooks := filepath.Join(t.TempDir(), "hooks.log")
	c := newCollector()
	cfg := r.config(c)
	cfg.StopAfter = 3
	// The hooks see the serial and verdict only through the environment.
	cfg.OnPass = `printf 'pass %s %s\n' "$PROVKIT_SERIAL" "$PROVKIT_VERDICT" >> ` + hooks
	cfg.OnFail = `printf 'fail %s %s %s\n' "$PROVKIT_SERIAL" "$PROVKIT_VERDICT" "$PROVKIT_REASON" >> ` + hooks
	sum := run(t, cfg)
	if sum.Pass != 2 || sum.Fail != 1 {
		t.Fatalf("summary %+v, want 2 pass 1 fail; updates %+v", sum, c.us)
	}
	log, _ := os.ReadFile(hooks)
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	sort.Strings(lines)
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "fail LINE-MISSING-003 fail app-") ||
		lines[1] != "pass LINE-OK-001 pass" || lines[2] != "pass LINE-OK-002 pass" {
		t.Fatalf("hooks ran as %q", lines)
	}
	vs, err := r.ledger.Verdicts(context.Background(), ledger.Filter{})
	if err != nil || len(vs) != 3 {
		t.Fatalf("verdicts %+v, %v", vs, err)
	}
	for _, v := range vs {
		var ev verdictEvidence
		if err := json.Unmarshal(v.Evidence, &ev); err != nil || ev.Check == nil || ev.Check.Serial != v.Serial || ev.PolicySHA256 != r.polSHA {
			t.Fatalf("evidence of %s: %s, %v", v.Serial, v.Evidence, err)
		}
	}

	// The same phones, still plugged in, at a restarted station: the PASS ones are skipped for
	// the same policy, and the FAIL one, never unplugged, is not run again.
	c2 := newCollector()
	cfg2 := r.config(c2)
	cfg2.StopAfter = 3
	sum = run(t, cfg2)
	if sum.Skipped != 3 || sum.Pass+sum.Fail+sum.Error != 0 {
		t.Fatalf("restart: %+v, want 3 skipped", sum)
	}
	// --force re-runs the PASS ones; the FAIL one stays skipped.
	c3 := newCollector()
	cfg3 := r.config(c3)
	cfg3.StopAfter, cfg3.Force = 3, true
	sum = run(t, cfg3)
	if sum.Pass != 2 || sum.Skipped != 1 {
		t.Fatalf("--force: %+v, want 2 pass 1 skipped", sum)
	}
}

// A FAIL phone unplugged and plugged back is run again; one that stays is not.
func TestReplugRunsFailedPhoneAgain(t *testing.T) {
	r := newRig(t, 2, testline.Options{Missing: 2, RebootDelay: "1500ms"})
	c := newCollector()
	st, err := New(r.config(c))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := st.Run(ctx); done <- err }()
	waitVerdicts := func(n int) {
		t.Helper()
		deadline := time.After(2 * time.Minute)
		for len(c.of(UpdateVerdict)) < n {
			select {
			case <-c.ch:
			case <-time.After(100 * time.Millisecond):
			case <-deadline:
				t.Fatalf("waiting for %d verdicts: %+v", n, c.of(UpdateVerdict))
			}
		}
	}
	waitVerdicts(2)
	// Unplug and re-plug the failed phone (a reboot takes it away for 1.5 s).
	r.sim.Device("LINE-MISSING-002").Reboot("")
	waitVerdicts(3)
	vs := c.of(UpdateVerdict)
	if vs[2].Serial != "LINE-MISSING-002" || vs[2].Verdict != ledger.VerdictFail {
		t.Fatalf("third verdict %+v", vs[2])
	}
	if len(c.of(UpdateGone)) == 0 {
		t.Fatal("the unplugging was not reported")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
	// The compliant phone, never unplugged, was processed once.
	vsl, _ := r.ledger.Verdicts(context.Background(), ledger.Filter{Serial: "LINE-OK-001"})
	if len(vsl) != 1 {
		t.Fatalf("LINE-OK-001 has %d verdicts", len(vsl))
	}
}

func TestFlashStation(t *testing.T) {
	r := newRig(t, 2, testline.Options{})
	fl, err := NewDirFlasher(r.fix.Firmware)
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	cfg := r.config(c)
	cfg.Flasher, cfg.StopAfter = fl, 2
	sum := run(t, cfg)
	if sum.Pass != 2 {
		t.Fatalf("summary %+v; updates %+v", sum, c.us)
	}
	for _, d := range r.sim.Devices() {
		for part, want := range r.fix.Images {
			got, err := d.ReadPartition(part)
			if err != nil || !bytes.Equal(got[:len(want)], want) {
				t.Fatalf("%s %s not flashed: %v", d.Serial(), part, err)
			}
		}
		if d.Mode() != sim.ModeAndroid {
			t.Fatalf("%s left in %s", d.Serial(), d.Mode())
		}
	}
	vs, _ := r.ledger.Verdicts(context.Background(), ledger.Filter{})
	for _, v := range vs {
		if v.FirmwareSHA256 != fl.FirmwareSHA256() {
			t.Fatalf("verdict firmware %q", v.FirmwareSHA256)
		}
		var ev verdictEvidence
		_ = json.Unmarshal(v.Evidence, &ev)
		var fe FlashEvidence
		if err := json.Unmarshal(ev.Flash, &fe); err != nil || len(fe.Partitions) != 2 {
			t.Fatalf("flash evidence %s: %v", ev.Flash, err)
		}
	}
	evs, _ := r.ledger.Events(context.Background(), ledger.Filter{Serial: "LINE-OK-001"})
	var steps []string
	for _, e := range evs {
		if e.Kind == ledger.EventStepFinished {
			steps = append(steps, e.Step)
		}
	}
	if strings.Join(steps, ",") != "bootloader,flash,boot,check" {
		t.Fatalf("steps %v", steps)
	}
}

// Ctrl-C mid-flash: the phone is recorded as interrupted, and the next station run flashes it
// again.
func TestInterruptMidFlash(t *testing.T) {
	r := newRig(t, 1, testline.Options{BytesPerSecond: "256K", ImageSize: 1 << 20})
	fl, err := NewDirFlasher(r.fix.Firmware)
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	cfg := r.config(c)
	cfg.Flasher = fl
	st, _ := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := st.Run(ctx); done <- err }()
	deadline := time.After(2 * time.Minute)
	for len(c.of(UpdateProgress)) == 0 {
		select {
		case <-c.ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no flash progress: %+v", c.us)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	vs := c.of(UpdateVerdict)
	if len(vs) != 1 || vs[0].Verdict != ledger.VerdictInterrupted || !strings.Contains(vs[0].Reasons[0], "flash") {
		t.Fatalf("verdicts %+v", vs)
	}
}

func TestParseTCP(t *testing.T) {
	for in, want := range map[string]TCPTarget{
		"127.0.0.1:15555":                  {"127.0.0.1:15555", "127.0.0.1:15556"},
		"10.0.0.7:5555":                    {"10.0.0.7:5555", "10.0.0.7:5554"},
		"[::1]:6000=[::1]:7000":            {"[::1]:6000", "[::1]:7000"},
		"phone.local:5555=phone.local:999": {"phone.local:5555", "phone.local:999"},
	} {
		got, err := ParseTCP(in)
		if err != nil || got != want {
			t.Errorf("ParseTCP(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "host", "host:0", "host:x", "h:1=nope", "h:65535"} {
		if _, err := ParseTCP(bad); err == nil {
			t.Errorf("ParseTCP(%q) accepted", bad)
		}
	}
}

func FuzzParseTCP(f *testing.F) {
	for _, s := range []string{"127.0.0.1:15555", "[::1]:5555=[::1]:5554", "h:1=h", "=", ":", "h:65535", "h:-1", "h:99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTCP(s)
		if err == nil && (tg.ADB == "" || tg.Fastboot == "") {
			t.Fatalf("ParseTCP(%q) = %+v without error", s, tg)
		}
	})
}
