package line

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/provkit/provkit/manifests/evidence"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/internal/termtext"
	"github.com/provkit/provkit/manifests/policy"
	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/ledger"
	pline "github.com/provkit/provkit/provision/line"
)

// RunOptions are the inputs of `provkit line run`.
type RunOptions struct {
	IO          *iostreams.IOStreams
	Policy      string
	Firmware    string
	Station     string
	Ledger      string
	Jobs        int
	OnPass      string
	OnFail      string
	Force       bool
	TCP         []string
	ADBServer   bool
	JSON        bool
	Timeout     time.Duration
	BootTimeout time.Duration
	MaxPhones   int
	PollEvery   time.Duration
	PullAll     bool
	AttestKey   string

	targets []pline.TCPTarget
}

// NewCmdRun returns "provkit line run". runF replaces the run function in tests.
func NewCmdRun(ios *iostreams.IOStreams, runF func(context.Context, *RunOptions) error) *cobra.Command {
	opts := &RunOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "run --policy <file> [--firmware <dir>] [--station <name>] [--ledger <path|postgres://...>] [--tcp <host:port>]... [--jobs <n>] [--on-pass <cmd>] [--on-fail <cmd>] [--force] [--json]",
		Short: "Run a factory station: every phone plugged in is flashed, checked and recorded",
		Long: `Run an unattended station. Phones are watched for as they arrive (the adb server's device list,
and the --tcp addresses: an adbd, or a fastboot server next to it, as the provkit simulator and
phones on the network offer), and each goes through the station's steps, several at once:

  with --firmware: bootloader (adb reboot bootloader), flash, boot (reboot, wait for Android
  and adb), then check (the policy check of 'provkit check'); without: check only.

Every step and the verdict are recorded in the ledger before they are reported. A line per phone
goes to stdout ("PASS  SERIAL  compliant", "FAIL  SERIAL  reason"); on a terminal, stderr shows
a live status area (one row per phone: step, progress, elapsed). --json prints JSON Lines instead
(one object per event, each with "type" and "serial").

Phones are not processed twice by mistake: a phone recorded PASS for the same policy and
firmware digests is skipped (--force runs it again); a phone that stays plugged in after its
verdict is not run again; a phone unplugged and plugged back after a FAIL or ERROR is. A station
that crashed resumes on restart: a phone whose run was cut short is taken up again and the step
it was in (a flash, say) done again.

--ledger is a file (SQLite; default $XDG_STATE_HOME/provkit/ledger.db, that is
~/.local/state/provkit/ledger.db) or a postgres:// URL, for a plant with many stations.

--on-pass and --on-fail run a command through /bin/sh after each verdict, with PROVKIT_SERIAL,
PROVKIT_VERDICT (pass, fail, error, interrupted), PROVKIT_STATION, PROVKIT_RUN_ID and
PROVKIT_REASON in the environment. The serial is never put into the command text: refer to
"$PROVKIT_SERIAL", quoted.

--tcp <host:port> names a phone's adbd; its fastboot server is taken as the next port (5554
for 5555), or give it: <host:port>=<fastboot host:port>. Flashing needs that fastboot address:
this station flashes over fastboot TCP (phones on USB: 'provkit flash').

Ctrl-C stops the station: phones mid-step are recorded as interrupted, and it exits 130.
` + cmdutil.ExitStatus(
			"0    --max-phones reached and every phone passed",
			"1    the station could not run (unreadable policy or firmware, ledger unreachable)",
			"2    bad flags",
			"3    --max-phones reached and some phone got ERROR or was interrupted",
			"4    --max-phones reached and some phone got FAIL",
			"130  interrupted (Ctrl-C): phones mid-step are recorded as interrupted"),
		Example: `  provkit line run --policy policy.yaml --station bench-3
  provkit line run --policy policy.yaml --firmware images/ --station line1-st2 \
      --ledger postgres://provkit@db.plant/ledger --jobs 16 \
      --on-pass 'light green "$PROVKIT_SERIAL"' --on-fail 'light red "$PROVKIT_SERIAL"'
  provkit sim --devices 8 &   # rehearse on simulated phones:
  provkit line run --policy policy.yaml --tcp 127.0.0.1:15555 --tcp 127.0.0.1:15557`,
		Args: cmdutil.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if opts.Policy == "" {
				return cmdutil.FlagErrorf("--policy is required; see 'provkit line run --help'")
			}
			if opts.Jobs <= 0 {
				return cmdutil.FlagErrorf("--jobs %d: must be at least 1", opts.Jobs)
			}
			if opts.Timeout <= 0 || opts.BootTimeout <= 0 || opts.PollEvery <= 0 {
				return cmdutil.FlagErrorf("--timeout, --boot-timeout and --poll must be positive")
			}
			if opts.MaxPhones < 0 {
				return cmdutil.FlagErrorf("--max-phones %d: must not be negative", opts.MaxPhones)
			}
			if opts.Station == "" {
				h, err := os.Hostname()
				if err != nil || h == "" {
					return cmdutil.FlagErrorf("--station is required (the host name is unknown)")
				}
				opts.Station = h
			}
			if len(opts.Station) > 64 || strings.ContainsFunc(opts.Station, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				return cmdutil.FlagErrorf("--station %q: use at most 64 printable characters", opts.Station)
			}
			opts.TCP = cmdutil.Unique(opts.TCP)
			opts.targets = nil
			for _, a := range opts.TCP {
				t, err := pline.ParseTCP(a)
				if err != nil {
					return cmdutil.FlagErrorf("%v", err)
				}
				opts.targets = append(opts.targets, t)
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runRun(c.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Policy, "policy", "", "the policy `<file>` (YAML)")
	f.StringVar(&opts.Firmware, "firmware", "", "flash the `<dir>` of <partition>.img files before checking")
	f.StringVar(&opts.Station, "station", "", "this station's `<name>` in the ledger (default: the host name)")
	f.StringVar(&opts.Ledger, "ledger", "", "the ledger: a SQLite `<path>` or a postgres:// URL (default ~/.local/state/provkit/ledger.db)")
	f.IntVarP(&opts.Jobs, "jobs", "j", 8, "process at most `<n>` phones at once")
	f.StringVar(&opts.OnPass, "on-pass", "", "run `<cmd>` (through /bin/sh) after a PASS, with $PROVKIT_SERIAL and $PROVKIT_VERDICT set")
	f.StringVar(&opts.OnFail, "on-fail", "", "run `<cmd>` after any other verdict (fail, error, interrupted)")
	f.BoolVar(&opts.Force, "force", false, "run phones already recorded PASS for this policy and firmware again")
	f.StringArrayVar(&opts.TCP, "tcp", nil, "watch the phone at `<host:port>[=<fastboot host:port>]` (repeatable)")
	f.BoolVar(&opts.ADBServer, "adb-server", false, "also watch the adb server's devices when --tcp is given (without --tcp it is always watched)")
	f.BoolVar(&opts.JSON, "json", false, "print JSON Lines (one object per event) instead of verdict lines")
	f.DurationVar(&opts.Timeout, "timeout", 20*time.Minute, "`<duration>` allowed for one phone's whole run")
	f.DurationVar(&opts.BootTimeout, "boot-timeout", 3*time.Minute, "`<duration>` to wait for a phone to come back after each reboot")
	f.IntVar(&opts.MaxPhones, "max-phones", 0, "stop after `<n>` phones got a verdict or were skipped (0: run until Ctrl-C)")
	f.DurationVar(&opts.PollEvery, "poll", time.Second, "how often the --tcp addresses are polled (`<duration>`)")
	f.BoolVar(&opts.PullAll, "pull-all", false, "pull and verify every APK (as 'provkit check --pull-all')")
	f.StringVar(&opts.AttestKey, "attest-key", "", "sign an in-toto attestation of each phone's verdict with this Ed25519 private `<key>` and record it in the ledger")
	return cmd
}

func runRun(ctx context.Context, opts *RunOptions) error {
	pb, err := os.ReadFile(opts.Policy)
	if err != nil {
		return fmt.Errorf("reading policy: %w", err)
	}
	pol, err := policy.Load(opts.Policy)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(pb)
	cfg := pline.Config{Name: opts.Station, Policy: pol, PolicySHA256: hex.EncodeToString(sum[:]), Jobs: opts.Jobs,
		Timeout: opts.Timeout, BootTimeout: opts.BootTimeout, Force: opts.Force, PullAll: opts.PullAll,
		OnPass: opts.OnPass, OnFail: opts.OnFail, HookOutput: opts.IO.ErrOut, StopAfter: opts.MaxPhones}
	if opts.AttestKey != "" {
		key, err := evidence.LoadPrivateKey(opts.AttestKey)
		if err != nil {
			return err
		}
		cfg.AttestKey = key
	}
	if opts.Firmware != "" {
		fi, err := os.Stat(opts.Firmware)
		if err != nil {
			return fmt.Errorf("reading firmware: %w", err)
		}
		if !fi.IsDir() {
			return cmdutil.FlagErrorf("--firmware %s: give a directory of <partition>.img files (factory zips are flashed by 'provkit flash')", opts.Firmware)
		}
		fl, err := pline.NewDirFlasher(opts.Firmware)
		if err != nil {
			return err
		}
		cfg.Flasher = fl
	}
	if len(opts.TCP) > 0 {
		// The host's adb key, loaded (or made) once: phones reached at once must not each see
		// a key of their own, and no dial should parse it again.
		dir, err := adb.AndroidDir()
		if err != nil {
			return err
		}
		key, _, err := adb.LoadOrCreateKey(dir)
		if err != nil {
			return fmt.Errorf("loading this host's adb key: %w", err)
		}
		keys := []*rsa.PrivateKey{key}
		vk, _ := adb.VendorKeys() // unreadable vendor keys are not fatal: the user key may do
		src := &pline.TCPSource{Interval: opts.PollEvery, Targets: opts.targets, Dial: adb.DialOptions{Keys: append(keys, vk...)}}
		cfg.Sources = append(cfg.Sources, src)
	}
	if len(opts.TCP) == 0 || opts.ADBServer {
		srv, err := adb.NewServer("")
		if err != nil {
			return err
		}
		if _, err := srv.Version(ctx); err != nil {
			if errors.Is(err, adb.ErrNoServer) {
				return fmt.Errorf("%w; start it (adb start-server) or watch phones with --tcp <host:port>", err)
			}
			return err
		}
		cfg.Sources = append(cfg.Sources, &pline.ServerSource{Server: srv})
	}
	l, err := ledger.Open(ctx, opts.Ledger)
	if err != nil {
		return err
	}
	defer l.Close()
	cfg.Ledger = l
	ui := newRunUI(opts.IO, opts.JSON)
	cfg.Report = ui.report
	st, err := pline.New(cfg)
	if err != nil {
		return err
	}
	ui.start()
	s, err := st.Run(ctx)
	ui.stop()
	if !opts.JSON {
		fmt.Fprintf(opts.IO.ErrOut, "station %s: %d pass, %d fail, %d error, %d interrupted, %d skipped\n",
			termtext.Visible(opts.Station), s.Pass, s.Fail, s.Error, s.Interrupted, s.Skipped)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("station stopped; phones mid-step were recorded as interrupted: %w", err)
		}
		return err
	}
	switch {
	case s.Error > 0 || s.Interrupted > 0:
		return cmdutil.Silent(cmdutil.ExitDevicesFailed)
	case s.Fail > 0:
		return cmdutil.Silent(cmdutil.ExitNotCompliant)
	}
	return nil
}

// runUI prints verdict lines (or JSON Lines) on stdout and, on a terminal, a status area on
// stderr that is cleared before each line and drawn again after.
type runUI struct {
	ios  *iostreams.IOStreams
	json bool
	tty  bool

	mu     sync.Mutex
	rows   map[string]*row
	drawn  int
	quit   chan struct{}
	closed chan struct{}
}

type row struct {
	serial, step string
	done, total  int64
	started      time.Time
}

func newRunUI(ios *iostreams.IOStreams, jsonOut bool) *runUI {
	return &runUI{ios: ios, json: jsonOut, tty: ios.IsStderrTTY() && !jsonOut, rows: map[string]*row{}, quit: make(chan struct{}), closed: make(chan struct{})}
}

func (u *runUI) start() {
	if !u.tty {
		close(u.closed)
		return
	}
	go func() {
		defer close(u.closed)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				u.mu.Lock()
				u.clear()
				u.draw()
				u.mu.Unlock()
			case <-u.quit:
				u.mu.Lock()
				u.clear()
				u.mu.Unlock()
				return
			}
		}
	}()
}

func (u *runUI) stop() {
	close(u.quit)
	<-u.closed
}

// clear erases the status area; u.mu is held.
func (u *runUI) clear() {
	for ; u.drawn > 0; u.drawn-- {
		fmt.Fprint(u.ios.ErrOut, "\x1b[1A\x1b[2K")
	}
}

// draw prints the status area; u.mu is held.
func (u *runUI) draw() {
	if len(u.rows) == 0 {
		return
	}
	keys := make([]string, 0, len(u.rows))
	for k := range u.rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r := u.rows[k]
		prog := ""
		if r.total > 0 {
			prog = fmt.Sprintf("%3d%%", r.done*100/r.total)
		}
		fmt.Fprintf(u.ios.ErrOut, "\r\x1b[2K  %-24s %-10s %4s %8s\n", termtext.Visible(r.serial), r.step, prog, time.Since(r.started).Truncate(time.Second))
		u.drawn++
	}
}

func (u *runUI) line(w io.Writer, s string) {
	u.clear()
	fmt.Fprintln(w, s)
	if u.tty {
		u.draw()
	}
}

func (u *runUI) report(up pline.Update) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.json {
		b, err := json.Marshal(up)
		if err == nil {
			fmt.Fprintln(u.ios.Out, string(b))
		}
		return
	}
	serial := termtext.Visible(up.Serial)
	switch up.Type {
	case pline.UpdateStep, pline.UpdateProgress:
		r := u.rows[up.Serial]
		if r == nil {
			r = &row{serial: up.Serial, started: up.Started}
			if r.started.IsZero() {
				r.started = time.Now()
			}
			u.rows[up.Serial] = r
		}
		if r.step != up.Step {
			r.done, r.total = 0, 0
		}
		r.step = up.Step
		if up.Type == pline.UpdateProgress {
			r.done, r.total = up.Done, up.Total
		}
	case pline.UpdateVerdict:
		delete(u.rows, up.Serial)
		reason := "compliant"
		if len(up.Reasons) > 0 {
			reason = strings.Join(up.Reasons, "; ")
		}
		u.line(u.ios.Out, fmt.Sprintf("%-5s  %s  %s", strings.ToUpper(up.Verdict), serial, termtext.Visible(reason)))
	case pline.UpdateSkip:
		u.line(u.ios.ErrOut, fmt.Sprintf("skip   %s  %s", serial, termtext.Visible(up.Message)))
	case pline.UpdateWarning:
		who := serial
		if who == "" {
			who = termtext.Visible(up.Key)
		}
		if who != "" {
			who += ": "
		}
		u.line(u.ios.ErrOut, "warning: "+who+termtext.Visible(up.Message))
	case pline.UpdateWaiting:
		u.line(u.ios.ErrOut, fmt.Sprintf("waiting %s: %s", termtext.Visible(up.Key), termtext.Visible(up.Message)))
	case pline.UpdateStation:
		u.line(u.ios.ErrOut, termtext.Visible(up.Message))
	}
}
