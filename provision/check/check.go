package check

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/provkit/provkit/firmware/apk"
	"github.com/provkit/provkit/manifests/policy"
	"github.com/provkit/provkit/provision/adb"
)

// Verdicts.
const (
	VerdictPass  = "pass"
	VerdictFail  = "fail"
	VerdictError = "error"
)

// Transports a target is reached through.
const (
	TransportUSB    = "usb"    // through the adb server, USB
	TransportTCP    = "tcp"    // through the adb server, TCP (adb connect)
	TransportDirect = "direct" // straight to adbd over TCP, no adb server
)

// Target is one device to check.
type Target struct {
	Serial string
	// State is the connection state the adb server listed ("" when unknown, e.g. direct targets).
	State     adb.State
	Transport string
	Model     string
	// Connect opens the device; the returned function releases what it opened.
	Connect func(ctx context.Context) (*adb.Device, func(), error)
}

// ServerTargets lists the adb server's devices as targets: every device it lists when serials is
// empty, whatever its state (an unauthorized or offline device is checked and reported as an
// error, never skipped), or the named ones (a serial the server does not know becomes a target
// in state "gone", reported as an error).
func ServerTargets(ctx context.Context, srv *adb.Server, serials []string) ([]Target, error) {
	infos, err := srv.Devices(ctx)
	if err != nil {
		return nil, err // already "listing devices: ..."
	}
	bySerial := map[string]adb.DeviceInfo{}
	for _, in := range infos {
		bySerial[in.Serial] = in
	}
	if len(serials) == 0 {
		for _, in := range infos {
			serials = append(serials, in.Serial)
		}
	}
	var out []Target
	for _, s := range serials {
		in, ok := bySerial[s]
		if !ok {
			in = adb.DeviceInfo{Serial: s, State: adb.StateGone}
		}
		t := Target{Serial: s, State: in.State, Model: in.Model, Transport: TransportUSB}
		if in.DevPath == "" && strings.Contains(s, ":") || strings.HasPrefix(s, "emulator-") {
			t.Transport = TransportTCP
		}
		serial := s
		t.Connect = func(ctx context.Context) (*adb.Device, func(), error) {
			// Pinned to the current attachment: a device that reboots mid-check is reported gone
			// rather than silently checked across two boots.
			pt, err := srv.PinnedTransport(ctx, serial)
			if err != nil {
				return nil, nil, err
			}
			return adb.NewDevice(pt), func() {}, nil
		}
		out = append(out, t)
	}
	return out, nil
}

// DirectTarget is a device reached straight over TCP at addr ("host:port"), without an adb server.
func DirectTarget(addr string, opts adb.DialOptions) Target {
	return Target{Serial: addr, Transport: TransportDirect, Connect: func(ctx context.Context) (*adb.Device, func(), error) {
		o := opts
		if o.Serial == "" {
			o.Serial = addr
		}
		c, err := adb.Dial(ctx, addr, &o)
		if err != nil {
			return nil, nil, err
		}
		return c.Device(), func() { c.Close() }, nil
	}}
}

// Options configure a run.
type Options struct {
	Policy *policy.Policy
	// Jobs bounds how many devices are checked at once (must be > 0).
	Jobs int
	// Timeout bounds one device's whole check (0: none).
	Timeout time.Duration
	// Cache holds verified APKs; nil: a new one for this run.
	Cache *Cache
	// TempDir is where pulled APKs are kept while they are verified ("": the system's).
	TempDir string
	// PullAll pulls and verifies every APK even when the device's sha256sum names one already
	// verified in this run: nothing the device prints is trusted (slower; for certification).
	PullAll bool
	// Progress, when set, is called when a device's check starts and ends (from worker goroutines).
	Progress func(serial string, done bool, r *Result)
}

// Result is one device's verdict and its evidence. The JSON field names are fixed: scripts build
// on them.
type Result struct {
	Serial      string         `json:"serial"`
	Verdict     string         `json:"verdict"`
	Reasons     []string       `json:"reasons"`
	Apps        []AppEvidence  `json:"apps"`
	State       string         `json:"state,omitempty"`
	Transport   string         `json:"transport,omitempty"`
	Model       string         `json:"model,omitempty"`
	Fingerprint string         `json:"fingerprint,omitempty"`
	SDK         string         `json:"sdk,omitempty"`
	Checks      []policy.Check `json:"checks"` // device-level rules (fingerprint-allowed)
	DurationMS  int64          `json:"durationMs"`
}

// AppEvidence is what was judged for one mandated app on a device.
type AppEvidence struct {
	Package     string   `json:"package"`
	CodePath    string   `json:"codePath"`
	VersionCode int64    `json:"versionCode"`
	APKSHA256   string   `json:"apkSha256"`
	Signer      string   `json:"signer"`
	APKPaths    []string `json:"apkPaths,omitempty"`
	// APKSource says how the APK's bytes were established: "pulled" (pulled and verified now) or
	// "cache" (the device's sha256sum matched an APK verified earlier in this run).
	APKSource       string         `json:"apkSource,omitempty"`
	SystemCodePath  string         `json:"systemCodePath,omitempty"`
	SystemAPKSHA256 string         `json:"systemApkSha256,omitempty"`
	SystemSigner    string         `json:"systemSigner,omitempty"`
	Checks          []policy.Check `json:"checks"`
}

// Summary counts verdicts.
type Summary struct {
	Devices int    `json:"devices"`
	Pass    int    `json:"pass"`
	Fail    int    `json:"fail"`
	Error   int    `json:"error"`
	Policy  string `json:"policy"`
}

// Summarize counts the results' verdicts.
func Summarize(pol *policy.Policy, rs []Result) Summary {
	s := Summary{Devices: len(rs)}
	if pol != nil {
		s.Policy = pol.Metadata.Name
	}
	for _, r := range rs {
		switch r.Verdict {
		case VerdictPass:
			s.Pass++
		case VerdictFail:
			s.Fail++
		default:
			s.Error++
		}
	}
	return s
}

// Run checks every target with at most opts.Jobs at once and returns one result per target, in
// the targets' order. A device that fails, vanishes or times out gets an "error" verdict and never
// stops the others. When ctx is cancelled, devices not finished get an "error" verdict saying so,
// and the results of those that finished are kept.
func Run(ctx context.Context, targets []Target, opts Options) ([]Result, error) {
	if opts.Policy == nil {
		return nil, errors.New("checking devices: no policy")
	}
	if opts.Jobs <= 0 {
		return nil, fmt.Errorf("checking devices: jobs must be at least 1, got %d", opts.Jobs)
	}
	if opts.Cache == nil {
		opts.Cache = NewCache()
	}
	results := make([]Result, len(targets))
	sem := make(chan struct{}, opts.Jobs)
	var wg sync.WaitGroup
	for i := range targets {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			if opts.Progress != nil {
				opts.Progress(targets[i].Serial, false, nil)
			}
			results[i] = checkTarget(ctx, targets[i], opts)
			if opts.Progress != nil {
				opts.Progress(targets[i].Serial, true, &results[i])
			}
		}(i)
	}
	wg.Wait()
	for i, t := range targets {
		if results[i].Verdict == "" {
			results[i] = errorResult(t, "interrupted before this device was checked; run the check again", 0)
		}
	}
	return results, nil
}

func errorResult(t Target, reason string, d time.Duration) Result {
	return Result{Serial: t.Serial, Verdict: VerdictError, Reasons: []string{reason}, Apps: []AppEvidence{},
		State: string(t.State), Transport: t.Transport, Model: t.Model, Checks: []policy.Check{}, DurationMS: d.Milliseconds()}
}

// explain turns an error that kept a device from being checked into a reason: the error (which
// names the device and its state) followed once by what to do. checking says whether the check
// had started (a device lost then went away during it).
func explain(err error, checking bool) string {
	msg := err.Error()
	st := adb.StateOf(err)
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted during the check; run the check again"
	case checking && (st == adb.StateGone || st == "" && errors.Is(err, adb.ErrClosed)):
		return msg + "; " + wentAway
	case st.Hint() != "":
		return msg + "; " + st.Hint()
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out: " + msg + "; the device or its link is too slow, raise --timeout or check the cable"
	}
	return msg
}

// timedOut reports whether the device's own deadline (Options.Timeout) expired while the run
// itself is still going: whatever error the device's link then reports (a handshake without an
// answer looks like an offline device), the reason is the timeout.
func timedOut(ctx, dctx context.Context) bool {
	return ctx.Err() == nil && errors.Is(dctx.Err(), context.DeadlineExceeded)
}

func timeoutReason(err error, limit time.Duration) string {
	return fmt.Sprintf("timed out after %s: %v; the device or its link is too slow, raise --timeout or check the cable", limit, err)
}

// wentAway is the advice for a device that left during its check.
const wentAway = "the device went away during the check (rebooted, unplugged or disconnected); check it again once it is back"

func checkTarget(ctx context.Context, t Target, opts Options) Result {
	start := time.Now()
	if t.State != "" && t.State != adb.StateDevice {
		why := fmt.Sprintf("the adb server lists %s as %q", t.Serial, t.State)
		if t.State == adb.StateGone {
			why = fmt.Sprintf("the adb server does not list %s", t.Serial)
		}
		if h := t.State.Hint(); h != "" {
			why += "; " + h
		}
		return errorResult(t, why, time.Since(start))
	}
	dctx := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	dev, release, err := t.Connect(dctx)
	if err != nil {
		if timedOut(ctx, dctx) {
			return errorResult(t, timeoutReason(err, opts.Timeout), time.Since(start))
		}
		return errorResult(t, explain(err, false), time.Since(start))
	}
	defer release()
	r, err := CheckDevice(dctx, dev, opts)
	r.Serial, r.Transport = t.Serial, t.Transport
	if r.Model == "" {
		r.Model = t.Model
	}
	if err != nil && timedOut(ctx, dctx) {
		e := errorResult(t, timeoutReason(err, opts.Timeout), time.Since(start))
		e.Model, e.Fingerprint, e.SDK = r.Model, r.Fingerprint, r.SDK
		return e
	}
	if err != nil {
		reason := explain(err, true)
		if st := adb.StateOf(err); (st == "" || st == adb.StateDevice) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			// The error does not say the device left: ask the link, briefly, so the reason says so.
			sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
			now, serr := dev.State(sctx)
			scancel()
			if serr != nil || now != adb.StateDevice {
				if now == "" {
					now = adb.StateGone
				}
				reason = fmt.Sprintf("%v; the device went away during the check (now %s); check it again once it is back", err, now)
			}
		}
		e := errorResult(t, reason, time.Since(start))
		e.Model, e.Fingerprint, e.SDK = r.Model, r.Fingerprint, r.SDK
		return e
	}
	r.State = string(adb.StateDevice)
	r.DurationMS = time.Since(start).Milliseconds()
	return r
}

// CheckDevice gathers one device's facts and judges them. An error means the device could not be
// checked (it is not a compliance failure).
func CheckDevice(ctx context.Context, dev *adb.Device, opts Options) (Result, error) {
	if opts.Cache == nil {
		opts.Cache = NewCache()
	}
	r := Result{Serial: dev.Serial(), Apps: []AppEvidence{}, Reasons: []string{}}
	props, err := dev.GetProps(ctx)
	if err != nil {
		return r, err
	}
	r.Fingerprint, r.Model, r.SDK = props["ro.build.fingerprint"], props["ro.product.model"], props["ro.build.version.sdk"]
	fp := opts.Policy.CheckFingerprint(r.Fingerprint)
	r.Checks = []policy.Check{fp}
	if !fp.Pass {
		r.Reasons = append(r.Reasons, fp.Rule+": "+fp.Detail)
	}
	for i := range opts.Policy.Apps {
		app := &opts.Policy.Apps[i]
		ev, err := checkApp(ctx, dev, app, opts)
		if err != nil {
			return r, fmt.Errorf("checking %s: %w", app.Package, err)
		}
		for _, c := range policy.Failed(ev.Checks) {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s (%s): %s", c.Rule, app.Package, c.Detail))
		}
		r.Apps = append(r.Apps, ev)
	}
	r.Verdict = VerdictPass
	if len(r.Reasons) > 0 {
		r.Verdict = VerdictFail
	}
	return r, nil
}

func checkApp(ctx context.Context, dev *adb.Device, app *policy.App, opts Options) (AppEvidence, error) {
	ev := AppEvidence{Package: app.Package, VersionCode: -1}
	pkg := app.Package
	res, err := dev.ShellLimit(ctx, adb.Quote("dumpsys", "package", pkg), MaxDumpsysOutput)
	if err != nil {
		return ev, err
	}
	if res.ExitCode != 0 {
		return ev, fmt.Errorf("dumpsys package %s exited with %d: %s", pkg, res.ExitCode, truncate(string(res.Stderr), 200))
	}
	dump, err := ParseDumpsysPackage(string(res.Stdout), pkg)
	if err != nil {
		return ev, fmt.Errorf("reading dumpsys package %s from %s: %w", pkg, dev.Serial(), err)
	}
	res, err = dev.ShellLimit(ctx, adb.Quote("pm", "path", "--user", "0", pkg), MaxPmOutput)
	if err != nil {
		return ev, err
	}
	var paths []string
	if res.ExitCode == 0 {
		if paths, err = ParsePmPath(string(res.Stdout)); err != nil {
			return ev, fmt.Errorf("reading pm path %s from %s: %w", pkg, dev.Serial(), err)
		}
	}
	res, err = dev.ShellLimit(ctx, adb.Quote("pm", "list", "packages", "-f", "-U", "--show-versioncode", "--user", "0", pkg), MaxPmOutput)
	if err != nil {
		return ev, err
	}
	var listed *ListEntry
	if res.ExitCode == 0 {
		list, err := ParsePmList(string(res.Stdout))
		if err != nil {
			return ev, fmt.Errorf("reading pm list packages from %s: %w", dev.Serial(), err)
		}
		for i := range list {
			if list[i].Package == pkg {
				listed = &list[i]
			}
		}
	}

	f := policy.DeviceAppFacts{Package: pkg, DeviceVersionCode: -1, Granted: map[string]bool{}}
	a := dump.Active
	if a == nil {
		if len(paths) > 0 {
			return ev, fmt.Errorf("the package manager contradicts itself: pm path names %s but dumpsys does not know %s", paths[0], pkg)
		}
		ev.Checks = app.CheckDeviceApp(f)
		return ev, nil
	}
	f.Present = true
	u0 := a.Users[0]
	f.InstalledUser0 = u0.Installed && len(paths) > 0
	if u0.Installed != (len(paths) > 0) || (listed != nil) != (len(paths) > 0) {
		return ev, fmt.Errorf("the package manager contradicts itself about %s for user 0: dumpsys installed=%t, pm path %d APK(s), pm list %t", pkg, u0.Installed, len(paths), listed != nil)
	}
	f.CodePath = a.CodePath
	ev.CodePath = a.CodePath
	f.EnabledState = u0.Enabled
	f.DeviceVersionCode = a.VersionCode
	for _, p := range app.GrantPermissions {
		f.Granted[p] = a.Granted(0, p)
	}
	sys := (*PackageBlock)(nil)
	switch {
	case dump.Hidden != nil:
		sys, f.Updated = dump.Hidden, true
	case a.HasFlag("UPDATED_SYSTEM_APP"):
		f.Updated = true
		f.SystemError = "the device flags the app UPDATED_SYSTEM_APP but lists no hidden system package"
	case a.HasFlag("SYSTEM") && policy.PartitionOf(a.CodePath) != "data":
		sys = a
	}
	if sys != nil {
		f.SystemCodePath = sys.CodePath
		f.Privileged = sys.HasFlag("PRIVILEGED")
		ev.SystemCodePath = sys.CodePath
	}

	// The active APKs: pm path's when installed for user 0, else the code path's files.
	if len(paths) == 0 {
		paths, err = apksIn(ctx, dev, a.CodePath)
		if err != nil {
			if !isFileError(err) {
				return ev, err
			}
			f.APKError = err.Error()
		}
	}
	ev.APKPaths = paths
	for i, p := range paths {
		v, err := verifyRemote(ctx, dev, p, opts)
		if err != nil {
			if !isFileError(err) {
				return ev, err
			}
			if i == 0 {
				f.APKError = err.Error()
				break
			}
			f.Splits = append(f.Splits, policy.APKFacts{Verified: false, VerifyErrors: []string{err.Error()}})
			continue
		}
		if i == 0 {
			f.APK = v.facts
			ev.APKSHA256, ev.APKSource = v.sha, v.source
			ev.VersionCode = v.facts.VersionCode
			ev.Signer = provenSigner(v.facts)
		} else {
			f.Splits = append(f.Splits, *v.facts)
		}
	}
	if ev.VersionCode < 0 {
		ev.VersionCode = a.VersionCode
	}

	// The system copy under an update: pulled and verified too.
	if f.Updated && sys != nil {
		sp, err := apksIn(ctx, dev, sys.CodePath)
		switch {
		case err != nil && !isFileError(err):
			return ev, err
		case err != nil:
			f.SystemError = err.Error()
		case len(sp) == 0:
			f.SystemError = fmt.Sprintf("no APK in %s", sys.CodePath)
		default:
			v, err := verifyRemote(ctx, dev, sp[0], opts)
			switch {
			case err != nil && !isFileError(err):
				return ev, err
			case err != nil:
				f.SystemError = err.Error()
			default:
				f.System = v.facts
				ev.SystemAPKSHA256 = v.sha
				ev.SystemSigner = provenSigner(v.facts)
			}
		}
	}
	ev.Checks = app.CheckDeviceApp(f)
	return ev, nil
}

// factsOf turns a verification result into the facts the policy judges. claimed are the signers
// an unverified APK's signature names (apk.Inspect), so that the verdict can say whose signature
// failed rather than suggest the APK is unsigned.
func factsOf(r *apk.Result, claimed []apk.Signer) *policy.APKFacts {
	f := policy.APKFactsOf(r)
	if !r.Verified {
		f.Signers = nil
		for _, s := range claimed {
			f.Signers = append(f.Signers, s.SHA256)
		}
	}
	return &f
}

// provenSigner is the evidence's signer: the first signer of a verified APK, "" otherwise.
func provenSigner(f *policy.APKFacts) string {
	if !f.Verified || len(f.Signers) == 0 {
		return ""
	}
	return f.Signers[0]
}

// fileError is a problem with one remote file (missing, unreadable, not an APK): a fact about the
// device, not a failure to talk to it.
type fileError struct{ err error }

func (e *fileError) Error() string { return e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

func isFileError(err error) bool {
	var fe *fileError
	var re *adb.RemoteFileError
	return errors.As(err, &fe) || errors.As(err, &re)
}

// apksIn lists the APKs of a code path: the path itself when it names an APK, else the *.apk files
// of the directory, the base (base.apk or <dir>.apk) first.
func apksIn(ctx context.Context, dev *adb.Device, codePath string) ([]string, error) {
	if strings.HasSuffix(codePath, ".apk") {
		return []string{codePath}, nil
	}
	fis, err := dev.List(ctx, codePath)
	if err != nil {
		return nil, err
	}
	var out []string
	base := ""
	for _, fi := range fis {
		if !fi.Mode.IsRegular() || !strings.HasSuffix(fi.Name, ".apk") {
			continue
		}
		p := path.Join(codePath, fi.Name)
		if fi.Name == "base.apk" || fi.Name == path.Base(codePath)+".apk" {
			base = p
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	if base != "" {
		out = append([]string{base}, out...)
	}
	if len(out) == 0 {
		return nil, &fileError{fmt.Errorf("no APK in %s on %s", codePath, dev.Serial())}
	}
	return out, nil
}

type verified struct {
	facts  *policy.APKFacts
	sha    string
	source string
}

// verifyRemote establishes the verified facts of one APK on the device: from the cache when the
// device's sha256sum names an APK verified earlier in this run, else (or always, with PullAll) by
// pulling and verifying it.
func verifyRemote(ctx context.Context, dev *adb.Device, remote string, opts Options) (verified, error) {
	if opts.PullAll {
		return pullAndVerify(ctx, dev, remote, opts)
	}
	claimed := ""
	if res, err := dev.ShellLimit(ctx, adb.Quote("sha256sum", remote), 4<<10); err != nil { // one line: a digest and the path
		return verified{}, err
	} else if res.ExitCode == 0 {
		claimed, _ = ParseSha256sum(string(res.Stdout))
	}
	if claimed != "" {
		r, owner, release, err := opts.Cache.claim(ctx, claimed)
		if err != nil {
			return verified{}, err
		}
		if !owner {
			return verified{facts: r, sha: claimed, source: "cache"}, nil
		}
		v, err := pullAndVerify(ctx, dev, remote, opts)
		if err != nil || v.sha != claimed {
			release(nil)
			if err == nil {
				opts.Cache.store(v.sha, v.facts)
			}
			return v, err
		}
		release(v.facts)
		return v, nil
	}
	v, err := pullAndVerify(ctx, dev, remote, opts)
	if err == nil {
		opts.Cache.store(v.sha, v.facts)
	}
	return v, err
}

func pullAndVerify(ctx context.Context, dev *adb.Device, remote string, opts Options) (verified, error) {
	f, err := os.CreateTemp(opts.TempDir, "provkit-check-*.apk")
	if err != nil {
		return verified{}, fmt.Errorf("creating a temporary file for %s: %w", remote, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	// Bounded by the size the device declares for the file and by the largest APK Android installs.
	n, err := dev.PullAtMost(ctx, remote, io.MultiWriter(f, h), adb.MaxPullSize)
	if err != nil {
		return verified{}, fmt.Errorf("pulling %s from %s: %w", remote, dev.Serial(), err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	res, err := apk.Verify(ctx, f, n, apk.Options{NoFileDigest: true})
	if err != nil {
		if ctx.Err() != nil {
			return verified{}, ctx.Err()
		}
		// Not an APK at all: a fact about the file.
		return verified{}, &fileError{fmt.Errorf("verifying %s pulled from %s: %w", remote, dev.Serial(), err)}
	}
	var claimed []apk.Signer
	if !res.Verified {
		// Whose signature failed: the signers the signing block names, unproven.
		if info, err := apk.Inspect(ctx, f, n); err == nil {
			claimed = info.Signers
		}
	}
	return verified{facts: factsOf(res, claimed), sha: sum, source: "pulled"}, nil
}
