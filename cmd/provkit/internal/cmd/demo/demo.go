package demo

import (
	"bytes"
	"crypto/ed25519"
	"strconv"

	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"github.com/provkit/provkit/manifests/evidence"
	"github.com/provkit/provkit/manifests/report"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	checkcmd "github.com/provkit/provkit/cmd/provkit/internal/cmd/check"
	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/internal/demoapk"
	"github.com/provkit/provkit/manifests/policy"
	"github.com/provkit/provkit/provision/adb"
	pcheck "github.com/provkit/provkit/provision/check"
	"github.com/provkit/provkit/provision/fastboot"
	pflash "github.com/provkit/provkit/provision/flash"
	"github.com/provkit/provkit/provision/sim"
)

// Options are the inputs of `provkit demo`.
type Options struct {
	IO   *iostreams.IOStreams
	JSON bool
	Keep string
	// AssetSize pads the sample APK (hidden flag, for scripts/bench-check.sh).
	AssetSize int
}

// NewCmdDemo returns the demo command.
func NewCmdDemo(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "demo [--json] [--keep <dir>]",
		Short: "Run provkit's main job on built-in defaults: check simulated devices against a sample policy",
		Long: `Run provkit's main job with nothing to set up: make a sample signed APK (in pure Go) and a policy
that pins its key, start simulated phones on 127.0.0.1 (some compliant, some not: app missing,
wrong signer, disabled, an update over a tampered system copy, a device that refuses this host's
key), check them all in parallel over the direct ADB transport exactly as 'provkit check' does,
and print the verdict per device. The FAIL and ERROR verdicts are expected: each shows how
provkit reports that kind of non-compliant or unreachable device.
` + cmdutil.ExitStatus(
			"0    the demo ran and every device got the verdict it was built for",
			"1    the demo could not run, or a device got an unexpected verdict",
			"2    bad flags"),
		Example: `  provkit demo
  provkit demo --json
  provkit demo --keep /tmp/demo   # keep the APKs, policy and scenario to rerun with provkit sim/check`,
		Args: cmdutil.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return demoRun(c.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the check report as one JSON document (as 'provkit check --json')")
	cmd.Flags().StringVar(&opts.Keep, "keep", "", "write the sample APKs, policy and scenario to `<dir>` and keep them (never over existing files)")
	cmd.Flags().IntVar(&opts.AssetSize, "asset-size", 0, "pad the sample APK with a stored asset of `<n>` bytes")
	_ = cmd.Flags().MarkHidden("asset-size")
	return cmd
}

// device is one simulated phone of the demo and the verdict it is built to get.
type device struct {
	serial, spec, want, why string
}

var devices = []device{
	{"DEMO-COMPLIANT", `{serial: DEMO-COMPLIANT, android: 14, model: Demo Phone, packages: [{name: ru.oneme.app, apk: messenger.apk, system: /product/app/Messenger, granted: [android.permission.POST_NOTIFICATIONS]}]}`,
		pcheck.VerdictPass, "the app on /product, signed by the pinned key, enabled, permission granted"},
	{"DEMO-ANDROID10", `{serial: DEMO-ANDROID10, android: 10, model: Old Phone, packages: [{name: ru.oneme.app, apk: messenger.apk, system: /product/app/Messenger, granted: [android.permission.POST_NOTIFICATIONS]}]}`,
		pcheck.VerdictPass, "the same on Android 10, whose package manager prints other formats"},
	{"DEMO-UPDATED", `{serial: DEMO-UPDATED, android: 14, model: Demo Phone, packages: [{name: ru.oneme.app, apk: messenger.apk, system: /product/app/Messenger, update: {apk: messenger-v26.apk}, granted: [android.permission.POST_NOTIFICATIONS]}]}`,
		pcheck.VerdictPass, "a store update in /data over an intact system copy"},
	{"DEMO-MISSING", `{serial: DEMO-MISSING, android: 14, model: Demo Phone}`,
		pcheck.VerdictFail, "the app is not installed"},
	{"DEMO-WRONG-SIGNER", `{serial: DEMO-WRONG-SIGNER, android: 13, model: Demo Phone, packages: [{name: ru.oneme.app, apk: impostor.apk, system: /product/app/Messenger, granted: [android.permission.POST_NOTIFICATIONS]}]}`,
		pcheck.VerdictFail, "same package name, signed by another key"},
	{"DEMO-DISABLED", `{serial: DEMO-DISABLED, android: 12, model: Demo Phone, packages: [{name: ru.oneme.app, apk: messenger.apk, system: /product/app/Messenger, enabled: 3, granted: [android.permission.POST_NOTIFICATIONS]}]}`,
		pcheck.VerdictFail, "disabled by the user"},
	{"DEMO-TAMPERED-SYSTEM", `{serial: DEMO-TAMPERED-SYSTEM, android: 15, model: Demo Phone, packages: [{name: ru.oneme.app, apk: tampered.apk, system: /product/app/Messenger, update: {apk: messenger-v26.apk}, granted: [android.permission.POST_NOTIFICATIONS]}]}`,
		pcheck.VerdictFail, "a genuine update running over a modified system copy"},
	{"DEMO-UNAUTHORIZED", `{serial: DEMO-UNAUTHORIZED, android: 14, model: Demo Phone, auth: refuse, packages: [{name: ru.oneme.app, apk: messenger.apk, system: /product/app/Messenger}]}`,
		pcheck.VerdictError, "refuses this host's ADB key"},
}

// keptFiles are the files the demo writes into its directory.
var keptFiles = []string{odmDir, patchedDir, oemKeyFile, "messenger.apk", "messenger-v26.apk", "impostor.apk", "tampered.apk", "policy.yaml", "scenario.yaml",
	"keys", "check.dsse.json", "report.html"}

func demoRun(ctx context.Context, opts *Options) error {
	ios := opts.IO
	dir := opts.Keep
	if dir == "" {
		d, err := os.MkdirTemp("", "provkit-demo-")
		if err != nil {
			return fmt.Errorf("creating a working directory: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	} else {
		// Never overwrite a user's file: --keep wants a new directory or one without these names.
		for _, name := range keptFiles {
			if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
				return cmdutil.FlagErrorf("--keep %s: %s already exists and the demo never overwrites files; give a new or empty directory", dir, filepath.Join(dir, name))
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	say := func(format string, a ...any) {
		if !opts.JSON {
			fmt.Fprintf(ios.ErrOut, format+"\n", a...)
		}
	}

	say("provkit demo: making a sample app signed in pure Go, a policy pinning its key, and %d simulated phones", len(devices))
	release, err := demoapk.NewKey("Messenger release key")
	if err != nil {
		return err
	}
	other, err := demoapk.NewKey("Someone else")
	if err != nil {
		return err
	}
	spec := demoapk.Spec{Package: "ru.oneme.app", VersionCode: 25, VersionName: "25.0", Permissions: []string{"android.permission.POST_NOTIFICATIONS"}}
	if opts.AssetSize > 0 {
		if opts.AssetSize > 1<<30 {
			return cmdutil.FlagErrorf("--asset-size %d: at most 1 GiB", opts.AssetSize)
		}
		spec.Asset = make([]byte, opts.AssetSize)
		if _, err := rand.Read(spec.Asset); err != nil {
			return err
		}
	}
	genuine, err := demoapk.Build(spec, release)
	if err != nil {
		return err
	}
	upd := spec
	upd.VersionCode, upd.VersionName = 26, "26.0"
	update, err := demoapk.Build(upd, release)
	if err != nil {
		return err
	}
	impostor, err := demoapk.Build(spec, other)
	if err != nil {
		return err
	}
	off, err := demoapk.AssetOffset(genuine)
	if err != nil {
		return err
	}
	tampered := append([]byte(nil), genuine...)
	tampered[off] ^= 0x20
	pol := fmt.Sprintf(`apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: demo-messenger, authority: provkit demo}
apps:
  - package: ru.oneme.app
    apk: messenger.apk
    signers: [{sha256: "%s", name: demo release key}]
    minVersionCode: 25
    partition: product
    grantPermissions: [android.permission.POST_NOTIFICATIONS]
`, release.CertSHA256())
	var sc strings.Builder
	sc.WriteString("apiVersion: provkit.dev/v1\nkind: SimulatorScenario\ndevices:\n")
	for _, d := range devices {
		// Each phone waits in the bootloader for the factory firmware, as on a line.
		spec := strings.TrimSuffix(d.spec, "}") + ", mode: bootloader, unlocked: true, faults: {rebootDelay: 100ms}, partitions: [{name: boot, size: 1M}, {name: vbmeta, size: 64K}, {name: product, size: 4M}]}"
		sc.WriteString("  - " + spec + "\n")
	}
	for name, b := range map[string][]byte{"messenger.apk": genuine, "messenger-v26.apk": update, "impostor.apk": impostor,
		"tampered.apk": tampered, "policy.yaml": []byte(pol), "scenario.yaml": []byte(sc.String())} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	p, err := policy.Load(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		return err
	}
	scenario, err := sim.LoadScenario(filepath.Join(dir, "scenario.yaml"))
	if err != nil {
		return err
	}
	s, err := sim.Start(ctx, sim.Options{Devices: len(devices), Scenario: scenario})
	if err != nil {
		return fmt.Errorf("starting the simulated devices: %w", err)
	}
	defer s.Close()
	fdir, err := patchStep(ctx, dir, p, say)
	if err != nil {
		return err
	}
	if err := flashStep(ctx, fdir, s, say); err != nil {
		return err
	}
	// A throw-away host key, so the demo never touches ~/.android.
	hostKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating the host key: %w", err)
	}
	var targets []pcheck.Target
	for _, d := range s.Devices() {
		t := pcheck.DirectTarget(d.ADBAddr(), adb.DialOptions{Keys: []*rsa.PrivateKey{hostKey}, Serial: d.Serial(), AuthWait: 500 * time.Millisecond})
		t.Serial = d.Serial()
		targets = append(targets, t)
	}
	say("checking them against %s over the direct ADB transport (no adb server needed)...\n", filepath.Join(dir, "policy.yaml"))
	results, err := pcheck.Run(ctx, targets, pcheck.Options{Policy: p, Jobs: 4, Timeout: time.Minute})
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("demo interrupted: %w", context.Canceled)
	}
	if opts.JSON {
		enc := json.NewEncoder(ios.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"devices": results, "summary": pcheck.Summarize(p, results)}); err != nil {
			return fmt.Errorf("writing JSON: %w", err)
		}
	} else {
		checkcmd.WriteTable(ios.Out, results)
	}
	var wrong []string
	for i, r := range results {
		d := devices[i]
		if r.Verdict != d.want {
			wrong = append(wrong, fmt.Sprintf("%s got %s, built for %s (%s)", r.Serial, r.Verdict, d.want, strings.Join(r.Reasons, "; ")))
		}
	}
	say("")
	say("What happened: each phone was built to show one case, and got the verdict it was built for:")
	for _, d := range devices {
		say("  %-22s %-5s %s", d.serial, strings.ToUpper(d.want), d.why)
	}
	say(`FAIL means the phone answered and is not compliant (provkit check exits 4); ERROR means it could
not be checked (exit 3). Signers were proven by pulling each APK and verifying it on this host.
Try it on real phones: provkit check --policy policy.yaml --all   (docs/checking-devices.md)`)
	if opts.Keep != "" {
		say("The APKs, policy.yaml and scenario.yaml are in %s: 'provkit sim --scenario %s' serves the same phones.", dir, filepath.Join(dir, "scenario.yaml"))
	}
	evDir, err := writeEvidence(opts, dir, p, results)
	if err != nil {
		return err
	}
	say(`
Evidence (docs/evidence.md): the check is signed as an in-toto attestation and rendered as a report:
  %s          signed with %s
  %s              open it in a browser, or print it
  provkit attest verify --key %s %s`,
		filepath.Join(evDir, "check.dsse.json"), filepath.Join(evDir, "keys", evidence.PrivateKeyFile), filepath.Join(evDir, "report.html"),
		filepath.Join(evDir, "keys", evidence.PublicKeyFile), filepath.Join(evDir, "check.dsse.json"))
	if len(wrong) > 0 {
		return fmt.Errorf("the demo did not reach the expected verdicts: %s", strings.Join(wrong, "; "))
	}
	return nil
}

// flashStep flashes the firmware directory fdir to every simulated phone over fastboot, as
// "provkit flash" does; each phone then reboots into Android for the check.
func flashStep(ctx context.Context, fdir string, s *sim.Simulator, say func(string, ...any)) error {
	fw, err := pflash.OpenFirmware(fdir, pflash.FirmwareOptions{})
	if err != nil {
		return err
	}
	defer fw.Close()
	say("flashing %s (boot, product, vbmeta) to the %d phones waiting in the bootloader, as 'provkit flash' does...", fdir, len(s.Devices()))
	devs := s.Devices()
	errs := make([]error, len(devs))
	var wg sync.WaitGroup
	for i, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dial := func(ctx context.Context) (*fastboot.Client, error) {
				return fastboot.Dial(ctx, "tcp:"+d.FastbootAddr())
			}
			c, err := dial(ctx)
			if err != nil {
				errs[i] = err
				return
			}
			plan, err := pflash.PlanDevice(ctx, c, fw, pflash.PlanOptions{})
			c.Close()
			if err != nil {
				errs[i] = err
				return
			}
			if _, err := pflash.Run(ctx, dial, plan, pflash.RunOptions{}, nil); err != nil {
				errs[i] = err
				return
			}
			// The plan ends with "reboot": wait for Android to come up (bounded).
			deadline := time.Now().Add(30 * time.Second)
			for d.Mode() != sim.ModeAndroid || !d.Up() {
				if time.Now().After(deadline) || ctx.Err() != nil {
					errs[i] = fmt.Errorf("did not boot into Android after the flash (mode %s)", d.Mode())
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("flashing the demo firmware to %s: %w", devs[i].Serial(), err)
		}
	}
	var total int64
	for _, im := range fw.Images {
		total += im.Size
	}
	say("flashed: %d phones, %d bytes each, rebooted into Android.", len(devs), total)
	return nil
}

// writeEvidence signs the check's results with a fresh key and renders the report, into the
// --keep directory or else a new directory that the demo leaves for the user to open.
func writeEvidence(opts *Options, dir string, p *policy.Policy, results []pcheck.Result) (string, error) {
	evDir := opts.Keep
	if evDir == "" {
		d, err := os.MkdirTemp("", "provkit-demo-evidence-")
		if err != nil {
			return "", fmt.Errorf("creating the evidence directory: %w", err)
		}
		evDir = d
		// The policy goes with the evidence, so that 'attest verify --policy' can be tried.
		b, err := os.ReadFile(filepath.Join(dir, "policy.yaml"))
		if err == nil {
			err = os.WriteFile(filepath.Join(evDir, "policy.yaml"), b, 0o644)
		}
		if err != nil {
			return "", fmt.Errorf("copying the policy: %w", err)
		}
	}
	keys := filepath.Join(evDir, "keys")
	if _, err := evidence.GenerateKeys(keys); err != nil {
		return "", err
	}
	key, err := evidence.LoadPrivateKey(filepath.Join(keys, evidence.PrivateKeyFile))
	if err != nil {
		return "", err
	}
	st, err := pcheck.Statement(p, results)
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(map[string]any{"devices": results, "summary": pcheck.Summarize(p, results)})
	if err != nil {
		return "", err
	}
	st.Predicate.Result = raw
	env, err := evidence.Sign(st, key)
	if err != nil {
		return "", err
	}
	envPath := filepath.Join(evDir, "check.dsse.json")
	if err := evidence.WriteEnvelope(envPath, env); err != nil {
		return "", err
	}
	r, err := report.Load([]string{envPath}, report.Options{Key: key.Public().(ed25519.PublicKey)})
	if err != nil {
		return "", err
	}
	r.Title = "provkit demo: " + strconv.Itoa(len(results)) + " simulated phones"
	var buf bytes.Buffer
	if err := r.Render(&buf); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(evDir, "report.html"), buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("writing the report: %w", err)
	}
	return evDir, nil
}
