package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/termtext"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/provision/adb"
	provsim "github.com/provkit/provkit/provision/sim"
)

// Options are the inputs of `provkit sim`.
type Options struct {
	IO             *iostreams.IOStreams
	Devices        int
	Scenario       string
	BasePort       int
	JSON           bool
	ADBConnect     bool
	Verbose        bool
	APK            string
	UpdateAPK      string
	WrongSignerAPK string
	// Ready, when set, is called once the devices are listening (tests).
	Ready func(*provsim.Simulator)
}

// NewCmdSim returns the sim command. runF replaces simRun in tests.
func NewCmdSim(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "sim [--devices <n>] [--scenario {<file>|<builtin>}] [--base-port <port>] [--json] [--adb-connect]",
		Short: "Start simulated Android devices that adb and fastboot accept",
		Long: `Start simulated Android devices on 127.0.0.1, each with an adb port (the real adbd protocol:
shell, exec, sync, install, reboot) and a fastboot TCP port (getvar, download, flash with sparse
images, erase, set_active, reboot). Print one line per device: serial, adb address, fastboot
address, mode. Serve until interrupted.

A device is in one mode at a time, as a phone is, and only that mode's port accepts connections:
android (adb, the default), recovery and sideload (adb, listed as "recovery" and "sideload"),
bootloader and fastbootd (fastboot; getvar is-userspace says no and yes). The scenario sets the
first mode; adb reboot [bootloader|fastboot|recovery|sideload] and fastboot reboot,
reboot-bootloader, reboot-fastboot, reboot-recovery move between them.

The devices' state (properties, packages, partitions, files, faults) comes from a scenario: a YAML
file (see docs/simulator.md) or a built-in name:
  ` + strings.Join(provsim.BuiltinNames(), ", ") + `.
Built-in scenarios install the APK given by --apk and pass or fail "provkit check" exactly as
their names say: "updated" devices carry the same build in /data unless --update-apk gives a
newer one, and "wrong-signer" devices a copy of the app signed by a fresh key unless
--wrong-signer-apk gives one.

A simulated phone trusts the host's adb key, as a factory-line user build with the station's
key baked into adb_keys does: "adb connect" says "connected to". "auth: any" in a scenario file
makes it ask instead (the user taps "Allow"), "auth: refuse" keeps it unauthorized.

--adb-connect attaches every device to the adb server (ANDROID_ADB_SERVER_PORT honoured),
starting one with "adb start-server" when none runs, as adb itself does.

Ports: adb on <base-port>+2i, fastboot on <base-port>+2i+1; never 5555-5585, which the adb server
scans for emulators. --base-port 0 picks free ports.
` + cmdutil.ExitStatus(
			"0    stopped by Ctrl-C or SIGTERM",
			"1    the devices could not be started (bad scenario, port in use, adb server unreachable)",
			"2    bad flags"),
		Example: `  # Six devices, one of each kind of the "mixed" built-in scenario, attached to the local adb server
  provkit sim --devices 6 --scenario mixed --apk messenger.apk --adb-connect

  # Devices described by a scenario file, addresses as JSON
  provkit sim --devices 16 --scenario line.yaml --json

  # Then, in another terminal
  adb -s 127.0.0.1:15555 shell pm path ru.oneme.app
  adb -s 127.0.0.1:15555 reboot bootloader
  fastboot -s tcp:127.0.0.1:15556 getvar all`,
		Args: cmdutil.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if opts.Devices <= 0 || opts.Devices > provsim.MaxDevices {
				return cmdutil.FlagErrorf("--devices %d: use 1 to %d", opts.Devices, provsim.MaxDevices)
			}
			if opts.BasePort < 0 || opts.BasePort > 65535 {
				return cmdutil.FlagErrorf("--base-port %d: use 0 (free ports) or 1024-65535", opts.BasePort)
			}
			if err := provsim.CheckPorts(opts.BasePort, opts.Devices); err != nil {
				return cmdutil.FlagErrorf("--base-port %d with --devices %d: %v", opts.BasePort, opts.Devices, err)
			}
			if !isScenarioFile(opts.Scenario) && !slices.Contains(provsim.BuiltinNames(), opts.Scenario) {
				return cmdutil.FlagErrorf("--scenario %s: no such file, and no built-in scenario of that name; choose a file or one of %s", opts.Scenario, strings.Join(provsim.BuiltinNames(), ", "))
			}
			if !isScenarioFile(opts.Scenario) && opts.APK == "" && opts.Scenario != "missing" {
				return cmdutil.FlagErrorf("--scenario %s installs the mandated app: give its APK with --apk <file> (provkit demo --keep <dir> writes a sample)", opts.Scenario)
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return simRun(c.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Devices, "devices", 1, "start `<n>` devices (scenario templates are cycled)")
	f.StringVar(&opts.Scenario, "scenario", "compliant", "scenario YAML `<file>`, or a built-in scenario name")
	f.IntVar(&opts.BasePort, "base-port", provsim.DefaultBasePort, "first `<port>`: adb on port+2i, fastboot on port+2i+1 (0: free ports)")
	f.BoolVar(&opts.JSON, "json", false, "print the devices as one JSON document: {\"devices\": [{serial, adb, fastboot, mode, attached}]}")
	f.BoolVar(&opts.ADBConnect, "adb-connect", false, "attach every device to the local adb server (adb connect), detach on exit")
	f.BoolVar(&opts.Verbose, "verbose", false, "log connections, services and faults to stderr")
	f.StringVar(&opts.APK, "apk", "", "the mandated app's APK `<file>`, installed by built-in scenarios")
	f.StringVar(&opts.UpdateAPK, "update-apk", "", "a newer APK `<file>` of the app, carried in /data by built-in \"updated\" devices")
	f.StringVar(&opts.WrongSignerAPK, "wrong-signer-apk", "", "the app's APK `<file>` signed by another key, for built-in \"wrong-signer\" devices")
	return cmd
}

// deviceJSON is one device in --json output.
type deviceJSON struct {
	Serial   string `json:"serial"`
	ADB      string `json:"adb"`
	Fastboot string `json:"fastboot"`
	Mode     string `json:"mode"`
	// Attached says whether the device was attached to the adb server: always false without
	// --adb-connect, and for a device whose mode has no adb.
	Attached bool `json:"attached"`
}

// isScenarioFile tells a scenario file from a built-in scenario name.
func isScenarioFile(s string) bool {
	_, err := os.Stat(s)
	return err == nil || strings.ContainsAny(s, "/.")
}

func loadScenario(opts *Options) (*provsim.Scenario, error) {
	if isScenarioFile(opts.Scenario) {
		return provsim.LoadScenario(opts.Scenario)
	}
	read := func(flag, path string) ([]byte, error) {
		if path == "" {
			return nil, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", flag, err)
		}
		return b, nil
	}
	var apks provsim.BuiltinAPKs
	var err error
	if apks.Genuine, err = read("--apk", opts.APK); err != nil {
		return nil, err
	}
	if apks.Update, err = read("--update-apk", opts.UpdateAPK); err != nil {
		return nil, err
	}
	if apks.WrongSigner, err = read("--wrong-signer-apk", opts.WrongSignerAPK); err != nil {
		return nil, err
	}
	return provsim.Builtin(opts.Scenario, apks)
}

func simRun(ctx context.Context, opts *Options) error {
	sc, err := loadScenario(opts)
	if err != nil {
		return err
	}
	var logf func(string)
	if opts.Verbose {
		logf = func(s string) { fmt.Fprintf(opts.IO.ErrOut, "sim: %s\n", termtext.VisibleLines(s)) }
	}
	s, err := provsim.Start(ctx, provsim.Options{Devices: opts.Devices, BasePort: opts.BasePort, Scenario: sc, Log: logf})
	if err != nil {
		return err
	}
	defer s.Close()

	devs := s.Devices()
	out := make([]deviceJSON, len(devs))
	var srv *adb.Server
	if opts.ADBConnect {
		if srv, err = adb.NewServer(""); err != nil {
			return err
		}
		if err := ensureServer(ctx, srv, opts.IO); err != nil {
			return err
		}
	}
	var attached []string
	defer func() {
		for _, a := range attached {
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = srv.Disconnect(dctx, a)
			cancel()
		}
	}()
	for i, d := range devs {
		out[i] = deviceJSON{Serial: d.Serial(), ADB: d.ADBAddr(), Fastboot: d.FastbootAddr(), Mode: string(d.Mode())}
		if srv == nil {
			continue
		}
		if !d.Mode().ADB() {
			// Nothing listens on the adb port: adb connect would only be refused.
			fmt.Fprintf(opts.IO.ErrOut, "sim: %s: in %s mode, adb is not listening; not attached\n", d.Serial(), d.Mode())
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		res, err := srv.Connect(cctx, d.ADBAddr())
		cancel()
		if err != nil && res.Message == "" {
			// No answer from the server at all (a device's refusal comes with the server's text).
			return fmt.Errorf("attaching %s to the adb server: %w", d.Serial(), err)
		}
		ok := err == nil
		out[i].Attached = ok
		attached = append(attached, d.ADBAddr())
		if !ok {
			why := ""
			switch d.Auth() {
			case provsim.AuthRefuse:
				why = " (expected: its scenario says auth: refuse, so it stays unauthorized)"
			case provsim.AuthAny:
				why = " (expected: its scenario says auth: any, so it asks for the host's key first)"
			}
			fmt.Fprintf(opts.IO.ErrOut, "sim: %s: adb server says: %s%s\n", termtext.Visible(d.Serial()), termtext.Visible(res.Message), why)
		}
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"devices": out}); err != nil {
			return err
		}
	} else {
		for _, d := range out {
			fmt.Fprintf(opts.IO.Out, "%s\t%s\t%s\t%s\n", d.Serial, d.ADB, d.Fastboot, d.Mode)
		}
	}
	fmt.Fprintf(opts.IO.ErrOut, "sim: serving %s; press Ctrl-C to stop\n", cmdutil.Count(len(devs), "device", "devices"))
	if opts.Ready != nil {
		opts.Ready(s)
	}
	<-ctx.Done()
	fmt.Fprintln(opts.IO.ErrOut, "sim: stopping")
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// ensureServer starts the adb server with "adb start-server" when none answers at srv's address,
// as every adb command does (the server keeps running after provkit exits, as adb's does).
func ensureServer(ctx context.Context, srv *adb.Server, ios *iostreams.IOStreams) error {
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := srv.Version(vctx)
	cancel()
	if err == nil || !errors.Is(err, adb.ErrNoServer) {
		return err
	}
	prog, lerr := exec.LookPath("adb")
	if lerr != nil {
		return fmt.Errorf("%w; no adb program to start one (install adb, e.g. apt-get install adb, or leave out --adb-connect)", err)
	}
	fmt.Fprintf(ios.ErrOut, "sim: no adb server on %s; starting one (adb start-server)\n", srv.Addr())
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(sctx, prog, "start-server")
	var msg strings.Builder
	cmd.Stdout, cmd.Stderr = &msg, &msg
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("starting the adb server (adb start-server): %w: %s", err, strings.TrimSpace(msg.String()))
	}
	vctx, cancel2 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel2()
	if _, err := srv.Version(vctx); err != nil {
		return fmt.Errorf("adb start-server ran, but the server still does not answer: %w", err)
	}
	return nil
}
