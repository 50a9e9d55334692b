package devices

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/termtext"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/check"
	"github.com/provkit/provkit/provision/fastboot"
)

// Options are the inputs of `provkit devices`.
type Options struct {
	IO      *iostreams.IOStreams
	JSON    bool
	Direct  []string
	Timeout time.Duration
	// SysfsRoot is where USB fastboot devices are listed (default fastboot.DefaultSysfsRoot);
	// tests set it.
	SysfsRoot string
}

// Device is one row of the listing; the JSON field names are fixed.
type Device struct {
	Serial      string `json:"serial"`
	State       string `json:"state"`
	Model       string `json:"model"`
	Fingerprint string `json:"fingerprint"`
	Transport   string `json:"transport"`
	Error       string `json:"error,omitempty"`
}

// NewCmdDevices returns the devices command. runF replaces devicesRun in tests.
func NewCmdDevices(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "devices [--json] [--direct <host:port>]...",
		Short: "List attached devices with their state, model, build fingerprint and transport",
		Long: `List every device the adb server knows (ANDROID_ADB_SERVER_PORT honoured), whatever its state,
any device reached directly over TCP with --direct (no adb server needed for those), and, on
Linux, every phone in fastboot mode on USB (state "fastboot", model from its USB product string;
they are listed from sysfs, not opened, so a flash in progress is not disturbed; "provkit flash
--serial" takes the serial shown). For each online adb device the model and ro.build.fingerprint
are read from the device. Why a device could
not be read goes to stderr after the table ("provkit: <serial>: <reason>"), or into its "error"
field with --json; stdout holds only the listing.
` + cmdutil.ExitStatus(
			"0    listed (devices in any state)",
			"1    the adb server could not be reached, no --direct device was given and no fastboot phone is on USB",
			"2    bad flags"),
		Example: `  provkit devices
  provkit devices --json
  provkit devices --direct 127.0.0.1:15555`,
		Args: cmdutil.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if opts.Timeout <= 0 {
				return cmdutil.FlagErrorf("--timeout %s: must be positive", opts.Timeout)
			}
			opts.Direct = cmdutil.Unique(opts.Direct)
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return devicesRun(c.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON document: {\"devices\": [{serial, state, model, fingerprint, transport}]}")
	cmd.Flags().StringArrayVar(&opts.Direct, "direct", nil, "also list the adbd at `<host:port>`, reached without the adb server (repeatable)")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 10*time.Second, "`<duration>` allowed per device")
	return cmd
}

func devicesRun(ctx context.Context, opts *Options) error {
	var targets []check.Target
	srvErr := error(nil)
	if srv, err := adb.NewServer(""); err != nil {
		srvErr = err
	} else if ts, err := check.ServerTargets(ctx, srv, nil); err != nil {
		srvErr = err
	} else {
		targets = ts
	}
	fbRows, fbSkipped := usbFastboot(opts)
	if srvErr != nil && len(opts.Direct) == 0 && len(fbRows) == 0 {
		if errors.Is(srvErr, adb.ErrNoServer) {
			return fmt.Errorf("%w, or reach devices with --direct <host:port>", srvErr)
		}
		return srvErr
	}
	for _, a := range opts.Direct {
		targets = append(targets, check.DirectTarget(a, adb.DialOptions{AuthWait: 2 * time.Second}))
	}
	rows := make([]Device, len(targets))
	done := make(chan int)
	for i, t := range targets {
		go func(i int, t check.Target) {
			rows[i] = describe(ctx, t, opts.Timeout)
			done <- i
		}(i, t)
	}
	for range targets {
		<-done
	}
	rows = append(rows, fbRows...)
	if srvErr != nil {
		// Not fatal with --direct or fastboot devices, but never silent (not even with --json).
		fmt.Fprintf(opts.IO.ErrOut, "provkit: warning: %v; listing only the --direct and USB fastboot devices\n", srvErr)
	}
	for _, sk := range fbSkipped {
		fmt.Fprintf(opts.IO.ErrOut, "provkit: skipping USB interface %s: %s\n", termtext.Visible(sk.Path), termtext.Visible(sk.Reason))
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"devices": rows}); err != nil {
			return fmt.Errorf("writing JSON: %w", err)
		}
		return nil
	}
	// The table holds data only; why a device could not be read goes to stderr after it.
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tSTATE\tMODEL\tFINGERPRINT\tTRANSPORT")
	for _, r := range rows {
		v := termtext.Visible // every field comes from the device or the adb server
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v(r.Serial), v(string(r.State)), v(dash(r.Model)), v(dash(r.Fingerprint)), v(r.Transport))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(opts.IO.ErrOut, "provkit: %s: %s\n", termtext.Visible(r.Serial), termtext.Visible(r.Error))
		}
	}
	return nil
}

// usbFastboot lists the phones in fastboot mode on USB, from sysfs (nothing is opened). A system
// without sysfs USB (not Linux, a container) has none.
func usbFastboot(opts *Options) ([]Device, []fastboot.SkippedUSB) {
	root := opts.SysfsRoot
	if root == "" {
		root = fastboot.DefaultSysfsRoot
	}
	devs, skipped, err := fastboot.ListUSB(root)
	if err != nil {
		return nil, nil
	}
	rows := make([]Device, 0, len(devs))
	for _, d := range devs {
		serial := d.Serial
		if serial == "" {
			serial = d.Name()
		}
		rows = append(rows, Device{Serial: serial, State: "fastboot", Model: d.Product, Transport: "usb:" + d.Path})
	}
	return rows, skipped
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func describe(ctx context.Context, t check.Target, timeout time.Duration) Device {
	d := Device{Serial: t.Serial, State: string(t.State), Model: t.Model, Transport: t.Transport}
	if t.State != "" && t.State != adb.StateDevice {
		d.Error = t.State.Hint()
		return d
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dev, release, err := t.Connect(ctx)
	if err != nil {
		st := adb.StateOf(err)
		if st == "" {
			st = adb.StateGone
		}
		d.State, d.Error = string(st), withHint(err)
		return d
	}
	defer release()
	d.State = string(adb.StateDevice)
	props, err := dev.GetProps(ctx)
	if err != nil {
		d.Error = withHint(err)
		return d
	}
	d.Fingerprint = props["ro.build.fingerprint"]
	if m := props["ro.product.model"]; m != "" {
		d.Model = m
	}
	return d
}

// withHint is err's text followed, once, by what to do about the device state it reports.
func withHint(err error) string {
	if h := adb.StateOf(err).Hint(); h != "" {
		return err.Error() + "; " + h
	}
	return err.Error()
}
