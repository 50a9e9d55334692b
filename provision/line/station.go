package line

import (
	"crypto/ed25519"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/provkit/provkit/manifests/evidence"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/provkit/provkit/internal/buildinfo"
	"github.com/provkit/provkit/manifests/policy"
	"github.com/provkit/provkit/provision/adb"
	pcheck "github.com/provkit/provkit/provision/check"
	"github.com/provkit/provkit/provision/fastboot"
	"github.com/provkit/provkit/provision/ledger"
)

// Steps.
const (
	StepBootloader = "bootloader"
	StepFlash      = "flash"
	StepBoot       = "boot"
	StepCheck      = "check"
)

// Config is a station's set-up.
type Config struct {
	Name         string
	Policy       *policy.Policy
	PolicySHA256 string
	// Flasher, when set, makes the station flash before it checks.
	Flasher Flasher
	Ledger  *ledger.Ledger
	Sources []Source
	// Jobs bounds how many phones are processed at once (> 0).
	Jobs int
	// Timeout bounds one phone's whole run (0: none).
	Timeout time.Duration
	// BootTimeout bounds each wait for a phone to come back after a reboot (default 3m).
	BootTimeout time.Duration
	// Force re-runs phones already recorded PASS for this policy and firmware.
	Force bool
	// PullAll is check's --pull-all.
	PullAll bool
	// OnPass and OnFail are shell commands run after a verdict, with PROVKIT_SERIAL,
	// PROVKIT_VERDICT, PROVKIT_STATION, PROVKIT_RUN_ID and PROVKIT_REASON in their environment.
	// The serial is never put into the command text.
	OnPass, OnFail string
	// HookOutput receives the hooks' output (nil discards it).
	HookOutput io.Writer
	// HookTimeout bounds a hook (default 30s).
	HookTimeout time.Duration
	// Report receives updates (from several goroutines, serialised by the station).
	Report func(Update)
	// AttestKey, when set, signs an in-toto attestation of each phone's check (the same statement
	// as `provkit check --attest`, with the flashed firmware's digest as a further subject) and
	// records it with the verdict in the ledger.
	AttestKey ed25519.PrivateKey
	// StopAfter, when > 0, stops the station once this many phones got a verdict or were
	// skipped and none is in progress (0: run until ctx is cancelled). For tests and benchmarks.
	StopAfter int
}

// Update types.
const (
	UpdateStation  = "station"  // the station started or stopped
	UpdateSeen     = "seen"     // a phone arrived
	UpdateGone     = "gone"     // a phone left
	UpdateWaiting  = "waiting"  // a phone is present but not usable
	UpdateStep     = "step"     // a step started
	UpdateProgress = "progress" // a step's progress
	UpdateVerdict  = "verdict"  // a verdict was recorded
	UpdateSkip     = "skip"     // a phone is not processed, and why
	UpdateWarning  = "warning"  // something the operator should know (hook failed, source lost)
)

// Update is one thing the station reports. JSON field names are fixed (the --json stream).
type Update struct {
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	Serial  string    `json:"serial,omitempty"`
	Key     string    `json:"key,omitempty"`
	Step    string    `json:"step,omitempty"`
	Done    int64     `json:"done,omitempty"`
	Total   int64     `json:"total,omitempty"`
	Verdict string    `json:"verdict,omitempty"`
	Reasons []string  `json:"reasons,omitempty"`
	Message string    `json:"message,omitempty"`
	RunID   string    `json:"runId,omitempty"`
	// Started is when the phone's run started (for the status area's elapsed time).
	Started time.Time `json:"-"`
}

// Summary is what a station did in one session.
type Summary struct {
	Pass, Fail, Error, Interrupted, Skipped int
}

// Station runs the line.
type Station struct {
	cfg   Config
	st    *ledger.Station
	cache *pcheck.Cache

	repMu sync.Mutex

	mu      sync.Mutex
	summary Summary
	verdict int
}

// New checks cfg and returns a station.
func New(cfg Config) (*Station, error) {
	switch {
	case cfg.Name == "":
		return nil, errors.New("station: no name")
	case cfg.Policy == nil:
		return nil, errors.New("station: no policy")
	case cfg.Ledger == nil:
		return nil, errors.New("station: no ledger")
	case cfg.Jobs <= 0:
		return nil, fmt.Errorf("station: jobs must be at least 1, got %d", cfg.Jobs)
	case len(cfg.Sources) == 0:
		return nil, errors.New("station: no source of phones")
	}
	if cfg.BootTimeout <= 0 {
		cfg.BootTimeout = 3 * time.Minute
	}
	if cfg.HookTimeout <= 0 {
		cfg.HookTimeout = 30 * time.Second
	}
	return &Station{cfg: cfg, cache: pcheck.NewCache()}, nil
}

func (s *Station) report(u Update) {
	if s.cfg.Report == nil {
		return
	}
	if u.Time.IsZero() {
		u.Time = time.Now().UTC()
	}
	s.repMu.Lock()
	defer s.repMu.Unlock()
	s.cfg.Report(u)
}

func (s *Station) firmwareSHA() string {
	if s.cfg.Flasher == nil {
		return ""
	}
	return s.cfg.Flasher.FirmwareSHA256()
}

// phoneState is what the loop knows of one source key.
type phoneState struct {
	phone  Phone
	up     bool   // the source says it is present
	busy   bool   // a worker holds it
	done   bool   // processed (or skipped) during this presence
	serial string // as identified
}

type workerDone struct {
	key    string
	serial string
}

// Run runs the station until ctx is cancelled (or StopAfter verdicts). Phones mid-run when ctx is
// cancelled are recorded as interrupted; Run then returns ctx's error.
func (s *Station) Run(ctx context.Context) (Summary, error) {
	host, _ := os.Hostname()
	st, err := s.cfg.Ledger.StartStation(ctx, ledger.StationInfo{Name: s.cfg.Name, Host: host, PID: os.Getpid(),
		Version: buildinfo.Get().String(), PolicySHA256: s.cfg.PolicySHA256, FirmwareSHA256: s.firmwareSHA()})
	if err != nil {
		return Summary{}, err
	}
	s.st = st
	s.report(Update{Type: UpdateStation, Message: fmt.Sprintf("station %q started, recording to %s", s.cfg.Name, s.cfg.Ledger.Where())})

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ch := make(chan Presence)
	for _, src := range s.cfg.Sources {
		// A source that fails (the adb server restarted, say) is watched again: a station
		// runs unattended for hours.
		go func(src Source) {
			delay := time.Second
			for runCtx.Err() == nil {
				err := src.Watch(runCtx, ch)
				if runCtx.Err() != nil {
					return
				}
				s.report(Update{Type: UpdateWarning, Message: fmt.Sprintf("watching %s: %v; trying again in %s", src, err, delay)})
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-runCtx.Done():
					t.Stop()
					return
				}
				if delay < 30*time.Second {
					delay *= 2
				}
			}
		}(src)
	}
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = st.Heartbeat(runCtx)
			case <-runCtx.Done():
				return
			}
		}
	}()

	phones := map[string]*phoneState{}
	sem := make(chan struct{}, s.cfg.Jobs)
	done := make(chan workerDone)
	var wg sync.WaitGroup
	busy := 0
	pause := func(key string, paused bool) {
		for _, src := range s.cfg.Sources {
			if p, ok := src.(Pauser); ok {
				p.Pause(key, paused)
			}
		}
	}
	start := func(ps *phoneState) {
		ps.busy = true
		busy++
		pause(ps.phone.Key, true)
		wg.Add(1)
		go func(p Phone) {
			defer wg.Done()
			serial := ""
			select {
			case sem <- struct{}{}:
				serial = s.process(runCtx, p)
				<-sem
			case <-runCtx.Done():
			}
			done <- workerDone{key: p.Key, serial: serial}
		}(ps.phone)
	}
	gone := func(ps *phoneState) {
		if ps.serial == "" {
			return
		}
		if err := st.DeviceSeen(context.WithoutCancel(ctx), ps.serial, false, ps.phone.Key); err != nil {
			s.report(Update{Type: UpdateWarning, Serial: ps.serial, Message: err.Error()})
		}
		s.report(Update{Type: UpdateGone, Serial: ps.serial, Key: ps.phone.Key})
	}
loop:
	for {
		if s.cfg.StopAfter > 0 && busy == 0 {
			s.mu.Lock()
			n := s.verdict + s.summary.Skipped
			s.mu.Unlock()
			if n >= s.cfg.StopAfter {
				break
			}
		}
		select {
		case <-ctx.Done():
			break loop
		case p := <-ch:
			ps := phones[p.Phone.Key]
			if ps == nil {
				ps = &phoneState{}
				phones[p.Phone.Key] = ps
			}
			if p.Waiting != "" {
				s.report(Update{Type: UpdateWaiting, Key: p.Phone.Key, Message: p.Waiting})
			}
			if p.Present {
				ps.phone, ps.up = p.Phone, true
				if !ps.busy && !ps.done {
					start(ps)
				}
				continue
			}
			ps.up = false
			if !ps.busy && ps.done {
				ps.done = false
				gone(ps)
			}
		case d := <-done:
			busy--
			pause(d.key, false)
			ps := phones[d.key]
			ps.busy, ps.done = false, true
			if d.serial != "" {
				ps.serial = d.serial
			}
			if !ps.up {
				ps.done = false
				gone(ps)
			}
		}
	}
	stop()
	// Workers see runCtx cancelled, record their phones as interrupted and end.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for range done {
		}
	}()
	sum, err := s.finish(ctx, &wg, ctx.Err())
	close(done)
	<-drained
	return sum, err
}

func (s *Station) finish(ctx context.Context, wg *sync.WaitGroup, err error) (Summary, error) {
	wg.Wait()
	_ = s.st.Stop(context.WithoutCancel(ctx))
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.summary, err
}

// plan is the steps a run needs, given the mode the phone is in.
func (s *Station) plan(mode string, finished map[string]bool) []string {
	var steps []string
	if s.cfg.Flasher != nil {
		if finished[StepFlash] {
			// An earlier attempt flashed it: only boot (if needed) and check are left.
			if mode == ModeFastboot {
				steps = append(steps, StepBoot)
			}
			return append(steps, StepCheck)
		}
		if mode != ModeFastboot {
			steps = append(steps, StepBootloader)
		}
		return append(steps, StepFlash, StepBoot, StepCheck)
	}
	if mode == ModeFastboot {
		steps = append(steps, StepBoot)
	}
	return append(steps, StepCheck)
}

// identify asks the phone its serial.
func identify(ctx context.Context, p Phone) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var sn string
	if p.Mode == ModeFastboot {
		if p.FastbootAddr == "" {
			return "", errors.New("in fastboot mode with no fastboot address")
		}
		c, err := fastboot.Dial(ctx, p.FastbootAddr)
		if err != nil {
			return "", err
		}
		defer c.Close()
		if sn, err = c.GetVar(ctx, "serialno"); err != nil {
			return "", err
		}
	} else {
		dev, release, err := p.Connect(ctx)
		if err != nil {
			return "", err
		}
		defer release()
		if sn, err = dev.GetProp(ctx, "ro.serialno"); err != nil {
			return "", err
		}
	}
	sn = strings.TrimSpace(sn)
	if sn == "" {
		return p.Key, nil
	}
	if len(sn) > 128 {
		return "", fmt.Errorf("the phone reports a serial of %d bytes (at most 128 accepted)", len(sn))
	}
	return sn, nil
}

// process runs one phone from its arrival to its verdict and returns the serial it was recorded
// under ("" when it could not be identified).
func (s *Station) process(ctx context.Context, p Phone) string {
	serial, err := identify(ctx, p)
	if err != nil {
		if ctx.Err() != nil {
			return ""
		}
		// Recorded under the source's name for it: the phone never said who it is.
		serial = p.Key
		s.report(Update{Type: UpdateWarning, Key: p.Key, Message: fmt.Sprintf("cannot identify the phone: %v", err)})
		s.runOne(ctx, p, serial, fmt.Errorf("identifying the phone: %w", err))
		return serial
	}
	s.runOne(ctx, p, serial, nil)
	return serial
}

func (s *Station) runOne(ctx context.Context, p Phone, serial string, identErr error) {
	bg := context.WithoutCancel(ctx)
	s.report(Update{Type: UpdateSeen, Serial: serial, Key: p.Key, Message: p.Mode})
	if err := s.st.DeviceSeen(bg, serial, true, p.Key); err != nil {
		s.report(Update{Type: UpdateWarning, Serial: serial, Message: err.Error()})
		return
	}
	fw := s.firmwareSHA()
	last, err := s.cfg.Ledger.Last(bg, serial)
	if err != nil {
		s.report(Update{Type: UpdateWarning, Serial: serial, Message: err.Error()})
		return
	}
	if why := s.skip(last, fw); why != "" {
		s.mu.Lock()
		s.summary.Skipped++
		s.mu.Unlock()
		s.report(Update{Type: UpdateSkip, Serial: serial, Key: p.Key, Message: why, Verdict: last.Verdict, RunID: last.RunID})
		return
	}
	run, err := s.st.BeginRun(bg, ledger.RunSpec{Serial: serial, PolicySHA256: s.cfg.PolicySHA256, FirmwareSHA256: fw})
	if err != nil {
		s.report(Update{Type: UpdateWarning, Serial: serial, Message: err.Error()})
		return
	}
	started := time.Now()
	rctx := ctx
	if s.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	ev := verdictEvidence{Serial: serial, Station: s.cfg.Name, PolicySHA256: s.cfg.PolicySHA256, FirmwareSHA256: fw, Provkit: buildinfo.Get().String(), Attempt: run.Attempt}
	v := ledger.Verdict{}
	if identErr != nil {
		v = ledger.Verdict{Verdict: ledger.VerdictError, Reasons: []string{identErr.Error()}}
	} else {
		v = s.steps(rctx, ctx, p, serial, run, started, &ev)
	}
	if s.cfg.AttestKey != nil && ev.Check != nil {
		if att, err := s.attest(ev, fw); err != nil {
			s.report(Update{Type: UpdateWarning, Serial: serial, Message: "attesting: " + err.Error()})
		} else {
			v.Attestation = att
		}
	}
	v.Evidence = ev
	if err := run.Finish(bg, v); err != nil {
		s.report(Update{Type: UpdateWarning, Serial: serial, Message: err.Error()})
		return
	}
	s.mu.Lock()
	s.verdict++
	switch v.Verdict {
	case ledger.VerdictPass:
		s.summary.Pass++
	case ledger.VerdictFail:
		s.summary.Fail++
	case ledger.VerdictInterrupted:
		s.summary.Interrupted++
	default:
		s.summary.Error++
	}
	s.mu.Unlock()
	s.report(Update{Type: UpdateVerdict, Serial: serial, Key: p.Key, Verdict: v.Verdict, Reasons: v.Reasons, RunID: run.ID, Started: started})
	s.hook(bg, serial, run.ID, v)
}

// attest signs the statement of one phone's check; the predicate's result is the verdict's
// evidence (flash and check), and the flashed firmware is a subject when there was one.
func (s *Station) attest(ev verdictEvidence, fw string) (json.RawMessage, error) {
	st, err := pcheck.Statement(s.cfg.Policy, []pcheck.Result{*ev.Check})
	if err != nil {
		return nil, err
	}
	if fw != "" {
		st.Subject = append(st.Subject, evidence.Subject{Name: "firmware", Digest: map[string]string{"sha256": fw}})
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	st.Predicate.Result = raw
	env, err := evidence.Sign(st, s.cfg.AttestKey)
	if err != nil {
		return nil, err
	}
	return json.Marshal(env)
}

// skip says why a phone is not run (or "").
func (s *Station) skip(last *ledger.LastRun, fw string) string {
	if last == nil || last.Open {
		return ""
	}
	same := last.PolicySHA256 == s.cfg.PolicySHA256 && last.FirmwareSHA256 == fw
	if !same {
		return ""
	}
	when := last.VerdictTime.Local().Format("2006-01-02 15:04:05")
	switch last.Verdict {
	case ledger.VerdictPass:
		if s.cfg.Force {
			return ""
		}
		return fmt.Sprintf("already PASS for this policy and firmware (station %s, %s); --force runs it again", last.Station, when)
	case ledger.VerdictFail, ledger.VerdictError:
		if last.LeftAfterVerdict {
			return ""
		}
		return fmt.Sprintf("%s at %s and not unplugged since; unplug it and plug it back to run it again", strings.ToUpper(last.Verdict), when)
	}
	return "" // interrupted: run again
}

// verdictEvidence is the evidence recorded with a verdict.
type verdictEvidence struct {
	Serial         string          `json:"serial"`
	Station        string          `json:"station"`
	Provkit        string          `json:"provkit"`
	Attempt        int             `json:"attempt"`
	PolicySHA256   string          `json:"policySha256"`
	FirmwareSHA256 string          `json:"firmwareSha256,omitempty"`
	Flash          json.RawMessage `json:"flash,omitempty"`
	Check          *pcheck.Result  `json:"check,omitempty"`
	FailedStep     string          `json:"failedStep,omitempty"`
	// Attestation is left for a signed statement over this evidence.
	Attestation json.RawMessage `json:"attestation,omitempty"`
}

// steps runs the plan and returns the verdict (without evidence).
func (s *Station) steps(ctx, outer context.Context, p Phone, serial string, run *ledger.Run, started time.Time, ev *verdictEvidence) ledger.Verdict {
	bg := context.WithoutCancel(ctx)
	if run.Finished[StepFlash] {
		ev.Flash = run.Evidence[StepFlash]
	}
	mode := p.Mode
	for _, step := range s.plan(mode, run.Finished) {
		// Recorded first, reported after: whatever the station reports is in the ledger.
		if err := run.StepStarted(bg, step); err != nil {
			return ledger.Verdict{Verdict: ledger.VerdictError, Reasons: []string{err.Error()}}
		}
		s.report(Update{Type: UpdateStep, Serial: serial, Step: step, Started: started, RunID: run.ID})
		evidence, detail, err := s.step(ctx, step, p, serial, started, ev)
		ok := err == nil
		if err != nil {
			detail = err.Error()
		}
		if ferr := run.StepFinished(bg, step, ok, detail, evidence); ferr != nil {
			return ledger.Verdict{Verdict: ledger.VerdictError, Reasons: []string{ferr.Error()}}
		}
		if err != nil {
			ev.FailedStep = step
			if outer.Err() != nil {
				return ledger.Verdict{Verdict: ledger.VerdictInterrupted, Reasons: []string{fmt.Sprintf("interrupted during %s: the station was stopped", step)}}
			}
			if ctx.Err() != nil && s.cfg.Timeout > 0 {
				return ledger.Verdict{Verdict: ledger.VerdictError, Reasons: []string{fmt.Sprintf("%s: timed out after %s (--timeout): %v", step, s.cfg.Timeout, err)}}
			}
			return ledger.Verdict{Verdict: ledger.VerdictError, Reasons: []string{step + ": " + err.Error()}}
		}
	}
	if ev.Check == nil {
		return ledger.Verdict{Verdict: ledger.VerdictError, Reasons: []string{"no check was run"}}
	}
	if ev.Check.Verdict == pcheck.VerdictPass {
		return ledger.Verdict{Verdict: ledger.VerdictPass, Reasons: []string{}}
	}
	return ledger.Verdict{Verdict: ledger.VerdictFail, Reasons: ev.Check.Reasons}
}

// step runs one step and returns its evidence and a one-line detail.
func (s *Station) step(ctx context.Context, step string, p Phone, serial string, started time.Time, ev *verdictEvidence) (any, string, error) {
	switch step {
	case StepBootloader:
		if p.FastbootAddr == "" {
			return nil, "", errors.New("no fastboot TCP address for this phone: phones on USB are flashed by `provkit flash`")
		}
		dev, release, err := p.Connect(ctx)
		if err != nil {
			return nil, "", err
		}
		err = dev.Reboot(ctx, adb.RebootBootloader)
		release()
		if err != nil {
			return nil, "", err
		}
		if err := waitFastboot(ctx, p.FastbootAddr, serial, s.cfg.BootTimeout); err != nil {
			return nil, "", err
		}
		return nil, "in the bootloader at " + p.FastbootAddr, nil
	case StepFlash:
		fe, err := s.cfg.Flasher.Flash(ctx, FastbootTarget{Serial: serial, Addr: p.FastbootAddr}, func(done, total int64) {
			s.report(Update{Type: UpdateProgress, Serial: serial, Step: StepFlash, Done: done, Total: total, Started: started})
		})
		if err != nil {
			return fe, "", err
		}
		b, _ := json.Marshal(fe)
		ev.Flash = b
		return fe, fmt.Sprintf("%d image(s) written", len(fe.Partitions)), nil
	case StepBoot:
		if p.FastbootAddr == "" {
			return nil, "", errors.New("no fastboot TCP address for this phone")
		}
		c, err := fastboot.Dial(ctx, p.FastbootAddr)
		if err != nil {
			return nil, "", err
		}
		err = c.Reboot(ctx, fastboot.RebootSystem)
		c.Close()
		if err != nil {
			return nil, "", err
		}
		if err := waitAndroid(ctx, p, serial, s.cfg.BootTimeout); err != nil {
			return nil, "", err
		}
		return nil, "booted, adb answers", nil
	case StepCheck:
		dev, release, err := p.Connect(ctx)
		if err != nil {
			return nil, "", err
		}
		defer release()
		res, err := pcheck.CheckDevice(ctx, dev, pcheck.Options{Policy: s.cfg.Policy, Jobs: 1, Cache: s.cache, PullAll: s.cfg.PullAll})
		if err != nil {
			return nil, "", err
		}
		res.Serial = serial
		ev.Check = &res
		return res, strings.ToUpper(res.Verdict), nil
	}
	return nil, "", fmt.Errorf("unknown step %q", step)
}

// waitFastboot waits until the fastboot server at addr answers as serial.
func waitFastboot(ctx context.Context, addr, serial string, limit time.Duration) error {
	return poll(ctx, limit, "the bootloader", func(ctx context.Context) error {
		c, err := fastboot.Dial(ctx, addr)
		if err != nil {
			return err
		}
		defer c.Close()
		sn, err := c.GetVar(ctx, "serialno")
		if err != nil {
			return err
		}
		if sn != serial {
			return fmt.Errorf("the phone at %s says it is %q, not %q", addr, sn, serial)
		}
		return nil
	})
}

// waitAndroid waits until adb answers as serial with sys.boot_completed=1.
func waitAndroid(ctx context.Context, p Phone, serial string, limit time.Duration) error {
	return poll(ctx, limit, "Android", func(ctx context.Context) error {
		dev, release, err := p.Connect(ctx)
		if err != nil {
			return err
		}
		defer release()
		props, err := dev.GetProps(ctx)
		if err != nil {
			return err
		}
		if sn := props["ro.serialno"]; sn != "" && sn != serial {
			return fmt.Errorf("the phone at %s says it is %q, not %q", p.Key, sn, serial)
		}
		if props["sys.boot_completed"] != "1" {
			return errors.New("still booting")
		}
		return nil
	})
}

func poll(ctx context.Context, limit time.Duration, what string, try func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	delay := 200 * time.Millisecond
	for {
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		err := try(actx)
		acancel()
		if err == nil {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("waiting for %s: not back after %s: %w", what, limit, err)
			}
			return ctx.Err()
		}
		if delay < 2*time.Second {
			delay *= 2
		}
	}
}

// hook runs --on-pass or --on-fail.
func (s *Station) hook(ctx context.Context, serial, runID string, v ledger.Verdict) {
	cmdText := s.cfg.OnFail
	if v.Verdict == ledger.VerdictPass {
		cmdText = s.cfg.OnPass
	}
	if cmdText == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HookTimeout)
	defer cancel()
	// The operator's command is the shell text; what the phone supplied (its serial, reasons
	// quoting it) only ever reaches the hook through the environment.
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", cmdText)
	cmd.Env = append(os.Environ(),
		"PROVKIT_SERIAL="+serial, "PROVKIT_VERDICT="+v.Verdict, "PROVKIT_STATION="+s.cfg.Name,
		"PROVKIT_RUN_ID="+runID, "PROVKIT_REASON="+strings.Join(v.Reasons, "; "))
	if s.cfg.HookOutput != nil {
		cmd.Stdout, cmd.Stderr = s.cfg.HookOutput, s.cfg.HookOutput
	}
	if err := cmd.Run(); err != nil {
		s.report(Update{Type: UpdateWarning, Serial: serial, Message: fmt.Sprintf("the %s hook failed: %v", v.Verdict, err)})
	}
}
