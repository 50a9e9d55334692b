package flash

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/provkit/provkit/cmd/provkit/internal/attestflag"
	"github.com/provkit/provkit/manifests/evidence"
	"io/fs"
	"strings"
	"time"

	"github.com/spf13/cobra"

	auditcmd "github.com/provkit/provkit/cmd/provkit/internal/cmd/image/audit"
	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/firmware/image"
	"github.com/provkit/provkit/internal/termtext"
	"github.com/provkit/provkit/manifests/audit"
	"github.com/provkit/provkit/manifests/policy"
	"github.com/provkit/provkit/provision/fastboot"
	pflash "github.com/provkit/provkit/provision/flash"
)

// Options holds what "flash" needs.
type Options struct {
	IO         *iostreams.IOStreams
	Firmware   string
	PolicyPath string
	NoAudit    bool
	TCP        []string
	Serials    []string
	All        bool
	// SysfsRoot is where USB devices are listed (default fastboot.DefaultSysfsRoot); tests set it.
	SysfsRoot  string
	Partition  string
	Slot       string
	SetActive  bool
	Wipe       bool
	SkipReboot bool
	Jobs       int
	DryRun     bool
	JSON       bool
	Timeout    time.Duration
	Attest     attestflag.Flags
	// Sideload is an OTA package to sideload to phones in sideload mode (adb sideload) instead
	// of flashing over fastboot; Serials and TCP then name adb devices.
	Sideload string
}

// NewCmdFlash returns the command. runF replaces flashRun in tests.
func NewCmdFlash(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "flash --policy <file> {<firmware> {--serial <serial>... | --tcp <host:port>... | --all} | --sideload <ota.zip> {--serial <serial> | --tcp <host:port>}...} [--jobs <n>] [--dry-run] [--json]",
		Short: "Flash audited firmware onto phones in fastboot mode, many at once",
		Long: `Flash firmware onto phones in fastboot mode, as 'fastboot update' does, after auditing it
against the policy with the engine of 'provkit image audit': a firmware that is not compliant is
refused before a byte is sent (exit 4) unless --no-audit.

<firmware> is a factory zip (read in place), a directory with android-info.txt and *.img, or one
image with --partition <name>. The plan: android-info.txt requirements checked against getvar;
bootloader and radio, each followed by reboot-bootloader; boot-time images; with super_empty.img,
reboot into fastbootd, update-super, every logical partition resized to 0 and then to its image's
size before it is flashed, in fastboot flashall's order; --wipe, --set-active, reboot.

Devices are named with --serial (repeatable: a USB device's serial number, or its bus path such as
1-2.3; "tcp:<host:port>" names a device over TCP, as with fastboot -s), --tcp <host:port>
(repeatable), or --all (every fastboot device on USB). USB works on Linux only, through usbfs: the
user needs write access to /dev/bus/usb (a udev rule). Up to --jobs devices are flashed at once and
one failing never stops the others. Progress goes to stderr: one bar per device on a terminal,
otherwise one line per step. --dry-run prints each device's plan
without sending anything that writes. --json prints one document: audit summary and, per device,
the steps with bytes, SHA-256 of the image sent, duration and error.

--sideload <ota.zip> sends an OTA package to phones in recovery's sideload mode ('adb reboot
sideload'), as 'adb sideload' does; there is no <firmware> argument. Phones are named with
--serial (through the adb server) or --tcp (adbd's address, reached directly without a server).
An A/B package (with payload.bin) is audited like firmware first; a package without payload.bin
cannot be audited and is refused unless --no-audit. Per phone the result is the blocks and bytes
served, the package's SHA-256 and the phone's final status (DONEDONE, or FAILFAIL when its install
failed; a real recovery in sideload mode says DONEDONE either way and shows the outcome on its
screen).

Example:
  provkit flash --policy policy.yaml --serial 0A1B2C3D --serial 0A1B2C3E factory/
  provkit flash --policy policy.yaml --all oriole-factory.zip
  provkit flash --policy policy.yaml --tcp 127.0.0.1:5554 --tcp 127.0.0.1:5556 factory/
  provkit flash --policy policy.yaml --dry-run --tcp 127.0.0.1:5554 oriole-factory.zip
  provkit flash --no-audit --partition boot --tcp 127.0.0.1:5554 boot.img
  provkit flash --policy policy.yaml --sideload ota.zip --serial 0A1B2C3D --serial 0A1B2C3E` +
			cmdutil.ExitStatus(
				"0    every device flashed",
				"1    error: unreadable firmware or policy",
				"2    usage: bad flags or arguments",
				"3    some devices could not be flashed, or --all found none",
				"4    the firmware is not compliant with the policy (nothing was sent)"),
		Args: func(cmd *cobra.Command, args []string) error {
			if opts.Sideload != "" {
				if len(args) != 0 {
					return cmdutil.FlagErrorf("with --sideload the package is the flag's value: drop the <firmware> argument %q", args[0])
				}
				return nil
			}
			return cmdutil.ExactArgs(1, "<firmware>")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.PolicyPath == "" && !opts.NoAudit {
				return cmdutil.FlagErrorf("--policy <file> is required (or --no-audit); see '%s --help'", cmd.CommandPath())
			}
			if opts.Timeout <= 0 {
				return cmdutil.FlagErrorf("--timeout must be positive, got %v", opts.Timeout)
			}
			if opts.Jobs <= 0 {
				return cmdutil.FlagErrorf("--jobs must be at least 1, got %d", opts.Jobs)
			}
			if opts.Sideload != "" {
				if err := checkSideloadFlags(cmd, opts); err != nil {
					return err
				}
				if runF != nil {
					return runF(cmd.Context(), opts)
				}
				return sideloadRun(cmd.Context(), opts)
			}
			opts.Firmware = args[0]
			if len(opts.TCP) == 0 && len(opts.Serials) == 0 && !opts.All {
				return cmdutil.FlagErrorf("name the devices with --serial <serial>, --tcp <host:port> or --all")
			}
			for _, s := range opts.Serials {
				if strings.TrimPrefix(strings.TrimPrefix(s, "usb:"), "tcp:") == "" {
					return cmdutil.FlagErrorf("--serial %q: empty serial", s)
				}
			}
			switch opts.Slot {
			case "", "a", "b", "all", "other":
			default:
				return cmdutil.FlagErrorf("--slot %q: want a, b, all or other", opts.Slot)
			}
			if opts.Attest.Enabled() && opts.PolicyPath == "" {
				return cmdutil.FlagErrorf("--attest needs --policy <file>: an attestation says what the firmware was judged against")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			if err := opts.Attest.Validate(); err != nil {
				return err
			}
			return flashRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.PolicyPath, "policy", "", "the preinstall policy `<file>` the firmware is audited against")
	f.BoolVar(&opts.NoAudit, "no-audit", false, "flash without auditing the firmware first")
	f.StringArrayVar(&opts.Serials, "serial", nil, "a device in fastboot mode on USB by `<serial>` or bus path, or tcp:<host:port> (with --sideload: an adb serial) (repeatable)")
	f.BoolVar(&opts.All, "all", false, "flash every fastboot device on USB")
	f.StringArrayVar(&opts.TCP, "tcp", nil, "a device in fastboot mode over TCP (with --sideload: adbd over TCP, direct), `<host:port>` (repeatable)")
	f.StringVar(&opts.Partition, "partition", "", "flash one image file to partition `<name>`")
	f.StringVar(&opts.Slot, "slot", "", "A/B slot `{a|b|all|other}` (default: the current slot)")
	f.BoolVar(&opts.SetActive, "set-active", false, "make the flashed slot active")
	f.BoolVar(&opts.Wipe, "wipe", false, "erase userdata and metadata")
	f.BoolVar(&opts.SkipReboot, "skip-reboot", false, "leave the device in fastboot mode at the end")
	f.IntVar(&opts.Jobs, "jobs", 8, "devices flashed at once (`<n>`)")
	f.DurationVar(&opts.Timeout, "timeout", 30*time.Minute, "give up on a device after `<duration>` (a stalled phone fails, the others go on)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print each device's plan, send nothing that writes")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON document with the evidence")
	f.StringVar(&opts.Sideload, "sideload", "", "sideload the OTA package `<ota.zip>` to phones in sideload mode (adb) instead of flashing")
	opts.Attest.Register(cmd)
	return cmd
}

// AuditSummary is the audit's verdict in the flash report.
type AuditSummary struct {
	Skipped   bool   `json:"skipped,omitempty"`
	Policy    string `json:"policy,omitempty"`
	Compliant bool   `json:"compliant"`
}

// DeviceResult is one device's outcome.
type DeviceResult struct {
	Device string         `json:"device"`
	OK     bool           `json:"ok"`
	Plan   []string       `json:"plan,omitempty"`
	Result *pflash.Result `json:"result,omitempty"`
	Error  string         `json:"error,omitempty"`
}

// Document is the JSON output.
type Document struct {
	Firmware string         `json:"firmware"`
	DryRun   bool           `json:"dryRun,omitempty"`
	Audit    AuditSummary   `json:"audit"`
	Devices  []DeviceResult `json:"devices"`
}

// targets lists the devices to flash, each as its fastboot name: "tcp:<host:port>" or "usb:<serial>",
// without duplicates. With --all and no device on USB it returns the no-device error (exit 3).
func targets(opts *Options) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(t string) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, a := range opts.TCP {
		add("tcp:" + strings.TrimPrefix(a, "tcp:"))
	}
	for _, s := range opts.Serials {
		if strings.HasPrefix(s, "tcp:") || strings.HasPrefix(s, "usb:") {
			add(s)
		} else {
			add("usb:" + s)
		}
	}
	if !opts.All {
		return out, nil
	}
	root := sysfsRoot(opts)
	devs, skipped, err := fastboot.ListUSB(root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, sk := range skipped {
		fmt.Fprintf(opts.IO.ErrOut, "provkit: skipping USB interface %s: %s\n", termtext.Visible(sk.Path), termtext.Visible(sk.Reason))
	}
	if len(devs) == 0 {
		return nil, &cmdutil.CodeError{Code: cmdutil.ExitDevicesFailed,
			Err: fmt.Errorf("no fastboot devices on USB (looked in %s)", root)}
	}
	for _, d := range devs {
		add(d.Name())
	}
	return out, nil
}

func sysfsRoot(opts *Options) string {
	if opts.SysfsRoot != "" {
		return opts.SysfsRoot
	}
	return fastboot.DefaultSysfsRoot
}

func flashRun(ctx context.Context, opts *Options) error {
	devices, err := targets(opts)
	if err != nil {
		return err
	}
	doc := Document{Firmware: opts.Firmware, DryRun: opts.DryRun, Audit: AuditSummary{Skipped: opts.NoAudit}}
	if !opts.NoAudit {
		ok, err := auditFirmware(ctx, opts)
		if err != nil {
			return err
		}
		doc.Audit.Policy, doc.Audit.Compliant = opts.PolicyPath, ok
		if !ok {
			fmt.Fprintf(opts.IO.ErrOut, "refusing %s: not compliant with %s (see 'provkit image audit'); nothing was sent\n",
				termtext.Visible(opts.Firmware), termtext.Visible(opts.PolicyPath))
			if opts.JSON {
				writeJSON(opts, doc)
			}
			if err := attestFlash(opts, doc); err != nil {
				return err
			}
			return cmdutil.Silent(cmdutil.ExitNotCompliant)
		}
	}
	fw, err := pflash.OpenFirmware(opts.Firmware, pflash.FirmwareOptions{Partition: opts.Partition})
	if err != nil {
		return err
	}
	defer fw.Close()

	results := make([]DeviceResult, len(devices))
	prog := newProgress(opts.IO.ErrOut, opts.IO.IsStderrTTY(), opts.JSON || opts.DryRun)
	eachDevice(ctx, len(devices), opts.Jobs, func(i int) {
		results[i] = flashDevice(ctx, opts, fw, devices[i], prog)
	}, func(i int, err error) {
		results[i] = DeviceResult{Device: devices[i], Error: fmt.Sprintf("%s: not started: %v", devices[i], err)}
	})
	prog.wait()
	doc.Devices = results
	failed := 0
	for _, r := range results {
		if !r.OK {
			failed++
		}
	}
	if opts.JSON {
		if err := writeJSON(opts, doc); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			if opts.DryRun {
				fmt.Fprintf(opts.IO.Out, "%s:\n", termtext.Visible(r.Device))
				for _, c := range r.Plan {
					fmt.Fprintf(opts.IO.Out, "  fastboot %s\n", termtext.Visible(c))
				}
			}
			if r.OK {
				if !opts.DryRun {
					fmt.Fprintf(opts.IO.Out, "%s\tflashed\t%d bytes\t%s\n", termtext.Visible(r.Device), r.Result.Bytes, r.Result.Duration.Round(time.Millisecond))
				}
			} else {
				fmt.Fprintf(opts.IO.Out, "%s\tFAILED\t%s\n", termtext.Visible(r.Device), termtext.Visible(r.Error))
			}
		}
	}
	if !opts.DryRun {
		if err := attestFlash(opts, doc); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if failed > 0 {
		return cmdutil.Silent(cmdutil.ExitDevicesFailed)
	}
	return nil
}

// attestFlash writes the signed attestation of a flash (with --attest): the subjects are the
// firmware file(s) by SHA-256 and each device by address, whose digest is over the SHA-256 of
// every image sent to it, in order; the rules are the firmware's audit and each device's flash.
func attestFlash(opts *Options, doc Document) error {
	if !opts.Attest.Enabled() {
		return nil
	}
	files := []string{opts.Firmware}
	if fi, err := os.Stat(opts.Firmware); err == nil && fi.IsDir() {
		files, _ = filepath.Glob(filepath.Join(opts.Firmware, "*.img"))
	}
	st, c, err := flashStatement(opts, files, doc.Audit, "the firmware")
	if err != nil {
		return err
	}
	for _, d := range doc.Devices {
		h := sha256.New()
		if d.Result != nil {
			for _, s := range d.Result.Steps {
				io.WriteString(h, s.SHA256+"\n")
			}
		}
		detail := d.Error
		if d.OK && d.Result != nil {
			detail = fmt.Sprintf("%d bytes in %d steps", d.Result.Bytes, len(d.Result.Steps))
		}
		attestDevice(st, c, d.Device, hex.EncodeToString(h.Sum(nil)), "flashed", d.OK, detail)
	}
	return opts.Attest.Write(opts.IO.ErrOut, st, doc)
}

// attestDevice adds one device to a flash or sideload attestation: a subject named by its address
// with the digest of what it was sent, and its rule; a device that failed makes a compliant
// verdict "error".
func attestDevice(st *evidence.Statement, c *evidence.Compliance, device, digest, rule string, ok bool, detail string) {
	st.Subject = append(st.Subject, evidence.Subject{Name: "device:" + device, Digest: map[string]string{"sha256": digest},
		Annotations: map[string]string{"address": device}})
	c.Rules = append(c.Rules, evidence.RuleResult{Subject: "device:" + device, Rule: rule, Pass: ok, Detail: detail})
	if !ok && c.Verdict == evidence.VerdictCompliant {
		c.Verdict = evidence.VerdictError
	}
}

// flashStatement starts the attestation of a flash or sideload: the policy, the files sent as
// subjects, and the rule of their audit (what names them in its detail).
func flashStatement(opts *Options, files []string, a AuditSummary, what string) (*evidence.Statement, *evidence.Compliance, error) {
	pol, err := policy.Load(opts.PolicyPath)
	if err != nil {
		return nil, nil, err
	}
	c, err := evidence.NewCompliance(evidence.KindFlash, pol)
	if err != nil {
		return nil, nil, err
	}
	st := &evidence.Statement{Predicate: c}
	for _, f := range files {
		sub, err := evidence.FileSubject(f)
		if err != nil {
			return nil, nil, err
		}
		st.Subject = append(st.Subject, sub)
	}
	audit := evidence.RuleResult{Subject: "firmware", Rule: "firmware-audit", Pass: a.Compliant || a.Skipped, Detail: what + " is compliant with the policy (provkit image audit)"}
	switch {
	case a.Skipped:
		audit.Detail = "not audited (--no-audit)"
	case !a.Compliant:
		audit.Detail = "not compliant with the policy: refused, nothing was sent"
	}
	c.Rules = append(c.Rules, audit)
	c.Verdict = evidence.VerdictCompliant
	if !audit.Pass {
		c.Verdict = evidence.VerdictNotCompliant
	}
	return st, c, nil
}

func writeJSON(opts *Options, doc Document) error {
	enc := json.NewEncoder(opts.IO.Out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

func auditFirmware(ctx context.Context, opts *Options) (bool, error) {
	pol, err := policy.Load(opts.PolicyPath)
	if err != nil {
		return false, err
	}
	im, err := image.Open(ctx, opts.Firmware, &image.Options{Partition: opts.Partition})
	if err != nil {
		return false, err
	}
	defer im.Close()
	parts, _, err := auditcmd.FileSystems(im)
	if err != nil {
		return false, err
	}
	rep, err := audit.Run(ctx, pol, parts, audit.Options{Jobs: 4})
	if err != nil {
		return false, fmt.Errorf("auditing %s: %w", opts.Firmware, err)
	}
	return rep.Compliant, nil
}

// flashDevice flashes the device named target ("tcp:<host:port>" or "usb:<serial>").
func flashDevice(ctx context.Context, opts *Options, fw *pflash.Firmware, target string, prog *progress) DeviceResult {
	res := DeviceResult{Device: target}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	fail := func(err error) DeviceResult {
		res.Error = fmt.Sprintf("%s: %v", res.Device, err)
		return res
	}
	dial := func(ctx context.Context) (*fastboot.Client, error) {
		if s, ok := strings.CutPrefix(target, "usb:"); ok {
			// Found again on each dial: after a reboot the device comes back with a new devnum.
			d, err := fastboot.FindUSBDevice(sysfsRoot(opts), s)
			if err != nil {
				return nil, err
			}
			return fastboot.OpenUSB(ctx, d)
		}
		return fastboot.Dial(ctx, target)
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	c, err := dial(dctx)
	cancel()
	if err != nil {
		return fail(err)
	}
	po := pflash.PlanOptions{Slot: opts.Slot, SetActive: opts.SetActive, Wipe: opts.Wipe, SkipReboot: opts.SkipReboot}
	plan, err := pflash.PlanDevice(ctx, c, fw, po)
	c.Close()
	if err != nil {
		return fail(err)
	}
	for _, s := range plan.Steps {
		res.Plan = append(res.Plan, s.Command())
	}
	if opts.DryRun {
		res.OK = true
		return res
	}
	progress, end := prog.device(res.Device, plan)
	r, err := pflash.Run(ctx, dial, plan, pflash.RunOptions{}, progress)
	res.Result = r
	end(err == nil)
	if err != nil {
		return fail(err)
	}
	res.OK = true
	return res
}
