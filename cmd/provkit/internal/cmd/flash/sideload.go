package flash

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/internal/termtext"
	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/adb/wire"
)

// SideloadDocument is the JSON output of flash --sideload.
type SideloadDocument struct {
	Package string                 `json:"package"`
	Size    int64                  `json:"size"`
	DryRun  bool                   `json:"dryRun,omitempty"`
	Audit   AuditSummary           `json:"audit"`
	Devices []SideloadDeviceResult `json:"devices"`
}

// SideloadDeviceResult is one phone's outcome.
type SideloadDeviceResult struct {
	Device string              `json:"device"`
	OK     bool                `json:"ok"`
	State  string              `json:"state,omitempty"` // the adb state seen before sending
	Plan   string              `json:"plan,omitempty"`  // with --dry-run
	Result *adb.SideloadResult `json:"result,omitempty"`
	Error  string              `json:"error,omitempty"`
}

// checkSideloadFlags refuses the flags that only mean something for a fastboot flash.
func checkSideloadFlags(cmd *cobra.Command, opts *Options) error {
	if len(opts.Serials) == 0 && len(opts.TCP) == 0 {
		return cmdutil.FlagErrorf("name the phones with --serial <serial> (through the adb server) or --tcp <host:port> (adbd, direct)")
	}
	for _, name := range []string{"partition", "slot", "set-active", "wipe", "skip-reboot"} {
		if cmd.Flags().Changed(name) {
			return cmdutil.FlagErrorf("--%s is a fastboot flash option; it does not apply to --sideload", name)
		}
	}
	return nil
}

// sideloadTarget is one phone to sideload to and how to reach it.
type sideloadTarget struct {
	name string
	open func(ctx context.Context) (*adb.Device, func(), error)
}

func sideloadRun(ctx context.Context, opts *Options) error {
	f, err := os.Open(opts.Sideload)
	if err != nil {
		return fmt.Errorf("opening the sideload package: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("opening the sideload package: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("sideload package %s is not a regular file", termtext.Visible(opts.Sideload))
	}
	size := fi.Size()
	if err := (wire.SideloadHost{Size: size, BlockSize: wire.SideloadBlockSize}).Check(); err != nil {
		return fmt.Errorf("sideload package %s: %w", termtext.Visible(opts.Sideload), err)
	}
	doc := SideloadDocument{Package: opts.Sideload, Size: size, DryRun: opts.DryRun, Audit: AuditSummary{Skipped: opts.NoAudit}}
	if !opts.NoAudit {
		if err := requirePayload(f, size, opts.Sideload); err != nil {
			return err
		}
		ao := *opts
		ao.Firmware, ao.Partition = opts.Sideload, ""
		ok, err := auditFirmware(ctx, &ao)
		if err != nil {
			return err
		}
		doc.Audit.Policy, doc.Audit.Compliant = opts.PolicyPath, ok
		if !ok {
			fmt.Fprintf(opts.IO.ErrOut, "refusing %s: not compliant with %s (see 'provkit image audit'); nothing was sent\n",
				termtext.Visible(opts.Sideload), termtext.Visible(opts.PolicyPath))
			if opts.JSON {
				writeSideloadJSON(opts, doc)
			}
			if err := attestSideload(opts, doc); err != nil {
				return err
			}
			return cmdutil.Silent(cmdutil.ExitNotCompliant)
		}
	}

	targets, err := sideloadTargets(opts)
	if err != nil {
		return err
	}
	results := make([]SideloadDeviceResult, len(targets))
	var outMu sync.Mutex
	eachDevice(ctx, len(targets), opts.Jobs, func(i int) {
		results[i] = sideloadDevice(ctx, opts, targets[i], f, size, &outMu)
	}, func(i int, err error) {
		results[i] = SideloadDeviceResult{Device: targets[i].name, Error: fmt.Sprintf("%s: not started: %v", targets[i].name, err)}
	})
	doc.Devices = results
	failed := 0
	for _, r := range results {
		if !r.OK {
			failed++
		}
	}
	if opts.JSON {
		if err := writeSideloadJSON(opts, doc); err != nil {
			return err
		}
	} else {
		if opts.NoAudit {
			fmt.Fprintf(opts.IO.ErrOut, "%s was not audited (--no-audit)\n", termtext.Visible(opts.Sideload))
		}
		for _, r := range results {
			switch {
			case !r.OK:
				fmt.Fprintf(opts.IO.Out, "%s\tFAILED\t%s\n", termtext.Visible(r.Device), termtext.Visible(r.Error))
			case opts.DryRun:
				fmt.Fprintf(opts.IO.Out, "%s\t%s\twould run: %s\n", termtext.Visible(r.Device), termtext.Visible(r.State), termtext.Visible(r.Plan))
			default:
				res := r.Result
				fmt.Fprintf(opts.IO.Out, "%s\tsideloaded\t%d bytes in %d blocks\tsha256 %s\t%s\t%s\n", termtext.Visible(r.Device),
					res.BytesServed, res.BlocksServed, res.SHA256, res.Duration.Round(time.Millisecond), termtext.Visible(res.Status))
			}
		}
	}
	if !opts.DryRun {
		if err := attestSideload(opts, doc); err != nil {
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

// attestSideload writes the signed attestation of a sideload (with --attest): the subjects are
// the package by SHA-256 and each phone by address, whose digest is the SHA-256 of the package
// bytes it was served; the rules are the package's audit and each phone's sideload. A real
// recovery answers DONEDONE whatever the install's outcome, so "sideloaded" attests that the
// whole package was served and accepted for install, not that the install succeeded.
func attestSideload(opts *Options, doc SideloadDocument) error {
	if !opts.Attest.Enabled() {
		return nil
	}
	st, c, err := flashStatement(opts, []string{opts.Sideload}, doc.Audit, "the OTA package")
	if err != nil {
		return err
	}
	for _, d := range doc.Devices {
		digest := ""
		if d.Result != nil {
			digest = d.Result.SHA256
		}
		if digest == "" { // nothing was served: the digest of nothing
			e := sha256.Sum256(nil)
			digest = hex.EncodeToString(e[:])
		}
		detail := d.Error
		if d.OK && d.Result != nil {
			detail = fmt.Sprintf("%d bytes in %d blocks served, recovery answered %s (the install's outcome shows on the phone)", d.Result.BytesServed, d.Result.BlocksServed, d.Result.Status)
		}
		attestDevice(st, c, d.Device, digest, "sideloaded", d.OK, detail)
	}
	return opts.Attest.Write(opts.IO.ErrOut, st, doc)
}

// requirePayload refuses, before auditing, a package the audit cannot read: one without
// payload.bin (a non-A/B OTA with an update-binary, or not an OTA at all).
func requirePayload(f *os.File, size int64, path string) error {
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return fmt.Errorf("reading sideload package %s: %w; it is not a zip (an OTA package is)", termtext.Visible(path), err)
	}
	for _, e := range zr.File {
		if e.Name == "payload.bin" {
			return nil
		}
	}
	return fmt.Errorf("sideload package %s has no payload.bin: only A/B OTA packages can be audited; use --no-audit to send it unaudited", termtext.Visible(path))
}

// sideloadTargets lists the phones: --serial through the adb server, --tcp directly to adbd.
func sideloadTargets(opts *Options) ([]sideloadTarget, error) {
	var targets []sideloadTarget
	if len(opts.Serials) > 0 {
		srv, err := adb.NewServer("")
		if err != nil {
			return nil, err
		}
		for _, serial := range opts.Serials {
			targets = append(targets, sideloadTarget{name: serial, open: func(ctx context.Context) (*adb.Device, func(), error) {
				return srv.Device(serial), func() {}, nil
			}})
		}
	}
	for _, addr := range opts.TCP {
		targets = append(targets, sideloadTarget{name: "tcp:" + addr, open: func(ctx context.Context) (*adb.Device, func(), error) {
			c, err := adb.Dial(ctx, addr, nil)
			if err != nil {
				return nil, nil, err
			}
			return c.Device(), func() { c.Close() }, nil
		}})
	}
	return targets, nil
}

func sideloadDevice(ctx context.Context, opts *Options, tg sideloadTarget, pkg *os.File, size int64, outMu *sync.Mutex) SideloadDeviceResult {
	res := SideloadDeviceResult{Device: tg.name}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	fail := func(err error) SideloadDeviceResult {
		msg := err.Error()
		if h := adb.StateOf(err).Hint(); h != "" {
			msg += " (" + h + ")"
		}
		res.Error = fmt.Sprintf("%s: %s", tg.name, msg)
		return res
	}
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	dev, closeDev, err := tg.open(dctx)
	if err != nil {
		dcancel()
		return fail(err)
	}
	defer closeDev()
	st, err := dev.State(dctx)
	dcancel()
	if err != nil {
		return fail(err)
	}
	res.State = string(st)
	if st != adb.StateSideload {
		return fail(fmt.Errorf("the phone is in state %q, not sideload: nothing was sent; put it in sideload mode first (adb reboot sideload)", st))
	}
	if opts.DryRun {
		res.Plan = fmt.Sprintf("adb sideload %s (%s)", opts.Sideload, wire.SideloadHost{Size: size, BlockSize: wire.SideloadBlockSize}.Service())
		res.OK = true
		return res
	}
	last := -1
	progress := func(p adb.SideloadProgress) {
		if opts.JSON || p.Percent/25 == last {
			return
		}
		last = p.Percent / 25
		outMu.Lock()
		fmt.Fprintf(opts.IO.ErrOut, "%s serving %s: block %d of %d (~%d%%), %d bytes sent\n", termtext.Visible(tg.name),
			termtext.Visible(opts.Sideload), p.HighestBlock+1, p.Blocks, p.Percent, p.BytesServed)
		outMu.Unlock()
	}
	r, err := dev.Sideload(ctx, pkg, size, &adb.SideloadOptions{Progress: progress})
	res.Result = r
	if err != nil {
		if errors.Is(err, adb.ErrSideloadFailed) {
			return fail(fmt.Errorf("%w (see the phone's recovery screen or log)", err))
		}
		return fail(err)
	}
	res.OK = true
	return res
}

func writeSideloadJSON(opts *Options, doc SideloadDocument) error {
	enc := json.NewEncoder(opts.IO.Out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}
