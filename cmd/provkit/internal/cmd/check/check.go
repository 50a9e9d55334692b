package check

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"github.com/provkit/provkit/internal/termtext"
	"os"

	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/attestflag"
	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/internal/atomicfile"
	"github.com/provkit/provkit/manifests/policy"
	"github.com/provkit/provkit/provision/adb"
	pcheck "github.com/provkit/provkit/provision/check"
)

// Options are the inputs of `provkit check`.
type Options struct {
	IO       *iostreams.IOStreams
	Policy   string
	Serials  []string
	All      bool
	JSON     bool
	CSV      bool
	Jobs     int
	Timeout  time.Duration
	Direct   []string
	AuthWait time.Duration
	PullAll  bool
	Attest   attestflag.Flags
	// CSVPath is where --csv writes: "-" for stdout.
	CSVPath string
	Watch   bool
}

// NewCmdCheck returns the check command. runF replaces checkRun in tests.
func NewCmdCheck(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "check --policy <file> [--serial <serial>]... [--all] [--direct <host:port>]... [--json | --csv] [--jobs <n>] [--timeout <duration>] [--pull-all]",
		Short: "Check devices against a preinstall policy: PASS or FAIL per device, with the reason",
		Long: `Check devices against a policy, in parallel: the build fingerprint (if the policy lists any), and
for every app of the policy: installed for user 0, a system app on the policy's partition (an
update in /data only over an intact, genuine system copy), privileged if required, enabled,
pre-granted permissions granted, versionCode at least the minimum, and signed by a pinned key.
The signer is proven by pulling the APKs and verifying them on this host, never by trusting what
the device prints; an APK whose device-side sha256sum matches one already verified in this run
is not pulled again, unless --pull-all says to trust nothing the device prints (a device whose
sha256sum lies could otherwise borrow the verdict of an APK it does not hold).

Devices: --serial (repeatable) picks devices of the adb server; --all takes every device it
lists, whatever its state (an offline or unauthorized device is reported as an error with what to
do, never skipped); --direct reaches an adbd over TCP without the adb server. With none of them,
--all is assumed.

Output: a table (SERIAL, VERDICT, REASON) on stdout; --csv one row per device
(serial,verdict,model,fingerprint,reasons); --json one document
{"devices": [{serial, verdict, reasons, apps: [{package, codePath, versionCode, apkSha256, signer,
checks: [{rule, pass, detail}]}]}], "summary": {...}}. Rule IDs are listed in README.
Progress goes to stderr when it is a terminal.
` + cmdutil.ExitStatus(
			"0    every device passed",
			"1    the check could not run (unreadable policy, no adb server)",
			"2    bad flags",
			"3    some device could not be checked (offline, unauthorized, gone, timed out)",
			"4    some device is not compliant (and every device was checked)",
			"130  interrupted (the devices that finished are reported)"),
		Example: `  provkit check --policy policy.yaml
  provkit check --policy policy.yaml --serial R58M123 --serial R58M456 --json
  provkit check --policy policy.yaml --all --csv > stock.csv
  provkit check --policy policy.yaml --direct 127.0.0.1:15555 --jobs 8 --timeout 2m`,
		Args: func(c *cobra.Command, args []string) error {
			// "--csv <file>": pflag takes a bare --csv as stdout, so the file comes as an argument.
			if len(args) == 1 && c.Flags().Changed("csv") && opts.CSVPath == "-" {
				opts.CSVPath = args[0]
				return nil
			}
			return cmdutil.NoArgs(c, args)
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.CSV = opts.CSVPath != ""
			if opts.Policy == "" {
				return cmdutil.FlagErrorf("--policy is required; see 'provkit check --help'")
			}
			if opts.Jobs <= 0 {
				return cmdutil.FlagErrorf("--jobs %d: must be at least 1", opts.Jobs)
			}
			if opts.Timeout <= 0 {
				return cmdutil.FlagErrorf("--timeout %s: must be positive", opts.Timeout)
			}
			if opts.JSON && opts.CSV {
				return cmdutil.FlagErrorf("--json and --csv cannot be used together")
			}
			if opts.All && len(opts.Serials) > 0 {
				return cmdutil.FlagErrorf("--all and --serial cannot be used together")
			}
			// A device named twice is checked, and counted, once.
			opts.Serials, opts.Direct = cmdutil.Unique(opts.Serials), cmdutil.Unique(opts.Direct)
			if opts.Watch && (opts.JSON || opts.Attest.Enabled()) {
				return cmdutil.FlagErrorf("--watch prints a line per phone as it is checked; --json and --attest are for one-shot checks")
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			if err := opts.Attest.Validate(); err != nil {
				return err
			}
			if opts.Watch {
				return watchRun(c.Context(), opts)
			}
			return checkRun(c.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Policy, "policy", "", "the policy `<file>` (YAML)")
	f.StringArrayVarP(&opts.Serials, "serial", "s", nil, "check the device with this `<serial>` (repeatable)")
	f.BoolVar(&opts.All, "all", false, "check every device the adb server lists, whatever its state")
	f.StringArrayVar(&opts.Direct, "direct", nil, "also check the adbd at `<host:port>`, without the adb server (repeatable)")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON document")
	f.StringVar(&opts.CSVPath, "csv", "", "write CSV, one row per device, to stdout or `[<file>]`")
	f.Lookup("csv").NoOptDefVal = "-"
	f.BoolVar(&opts.Watch, "watch", false, "shop counter: wait for phones, check each as it is plugged in, until Ctrl-C")
	f.IntVarP(&opts.Jobs, "jobs", "j", 8, "check at most `<n>` devices at once")
	f.DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "`<duration>` allowed for one device (e.g. 90s, 2m)")
	f.BoolVar(&opts.PullAll, "pull-all", false, "pull and verify every APK, even when the device's sha256sum names one already verified")
	f.DurationVar(&opts.AuthWait, "auth-wait", 10*time.Second, "with --direct: `<duration>` to wait for the user to accept this host's key")
	opts.Attest.Register(cmd)
	return cmd
}

func checkRun(ctx context.Context, opts *Options) error {
	if opts.CSV && opts.CSVPath != "-" {
		// --csv <file>: the report goes to the file (whole, or not at all), the rest as usual.
		var buf bytes.Buffer
		o := *opts
		ios := *opts.IO
		ios.Out = &buf
		o.IO = &ios
		err := checkRun1(ctx, &o)
		if buf.Len() > 0 {
			if werr := atomicfile.Write(opts.CSVPath, 0o644, func(f *os.File) error { _, err := f.Write(buf.Bytes()); return err }); werr != nil {
				return fmt.Errorf("writing CSV %s: %w", opts.CSVPath, werr)
			}
		}
		return err
	}
	return checkRun1(ctx, opts)
}

func checkRun1(ctx context.Context, opts *Options) error {
	pol, err := policy.Load(opts.Policy)
	if err != nil {
		return err
	}
	var targets []pcheck.Target
	if len(opts.Serials) > 0 || opts.All || len(opts.Direct) == 0 {
		srv, err := adb.NewServer("")
		if err != nil {
			return err
		}
		ts, err := pcheck.ServerTargets(ctx, srv, opts.Serials)
		if err != nil {
			if errors.Is(err, adb.ErrNoServer) {
				return fmt.Errorf("%w, or reach devices with --direct <host:port>", err)
			}
			return err
		}
		targets = ts
	}
	for _, a := range opts.Direct {
		targets = append(targets, pcheck.DirectTarget(a, adb.DialOptions{AuthWait: opts.AuthWait}))
	}
	if len(targets) == 0 {
		// Still one valid (empty) document for --json and --csv, so a script parses it.
		if err := writeReport(opts.IO, pol, nil, Settings{JSON: opts.JSON, CSV: opts.CSV}, false); err != nil {
			return err
		}
		fmt.Fprintln(opts.IO.ErrOut, "provkit: no device to check (the adb server lists none); attach devices or use --direct <host:port>")
		return cmdutil.Silent(cmdutil.ExitDevicesFailed)
	}
	return Execute(ctx, opts.IO, pol, targets, Settings{Jobs: opts.Jobs, Timeout: opts.Timeout, JSON: opts.JSON, CSV: opts.CSV, PullAll: opts.PullAll, Attest: &opts.Attest})
}

// Settings tune Execute.
type Settings struct {
	Jobs      int
	Timeout   time.Duration
	JSON, CSV bool
	PullAll   bool
	// Attest, when enabled, receives the signed attestation of the results.
	Attest *attestflag.Flags
}

// Execute checks targets against pol and prints the report; it returns the exit status error. It
// is shared with `provkit demo`.
func Execute(ctx context.Context, ios *iostreams.IOStreams, pol *policy.Policy, targets []pcheck.Target, s Settings) error {
	var bar *progressbar.ProgressBar
	var mu sync.Mutex
	progress := func(serial string, done bool, r *pcheck.Result) {}
	if ios.IsStderrTTY() && !s.JSON {
		bar = progressbar.NewOptions(len(targets), progressbar.OptionSetWriter(ios.ErrOut),
			progressbar.OptionSetDescription("checking devices"), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
		progress = func(serial string, done bool, r *pcheck.Result) {
			if done {
				mu.Lock()
				_ = bar.Add(1)
				mu.Unlock()
			}
		}
	}
	results, err := pcheck.Run(ctx, targets, pcheck.Options{Policy: pol, Jobs: s.Jobs, Timeout: s.Timeout, PullAll: s.PullAll, Progress: progress})
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return err
	}
	if err := writeReport(ios, pol, results, s, true); err != nil {
		return err
	}
	sum := pcheck.Summarize(pol, results)
	if s.Attest != nil && s.Attest.Enabled() {
		st, err := pcheck.Statement(pol, results)
		if err != nil {
			return err
		}
		if err := s.Attest.Write(ios.ErrOut, st, struct {
			Devices []pcheck.Result `json:"devices"`
			Summary pcheck.Summary  `json:"summary"`
		}{results, sum}); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("check interrupted; the devices that finished are reported: %w", context.Canceled)
	}
	switch {
	case sum.Error > 0:
		return cmdutil.Silent(cmdutil.ExitDevicesFailed)
	case sum.Fail > 0:
		return cmdutil.Silent(cmdutil.ExitNotCompliant)
	}
	return nil
}

// writeReport prints results in the format s asks for; table says whether a table (and its
// summary line) is printed at all.
func writeReport(ios *iostreams.IOStreams, pol *policy.Policy, results []pcheck.Result, s Settings, table bool) error {
	if results == nil {
		results = []pcheck.Result{}
	}
	sum := pcheck.Summarize(pol, results)
	switch {
	case s.JSON:
		enc := json.NewEncoder(ios.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Devices []pcheck.Result `json:"devices"`
			Summary pcheck.Summary  `json:"summary"`
		}{results, sum}); err != nil {
			return fmt.Errorf("writing JSON: %w", err)
		}
	case s.CSV:
		if err := writeCSV(ios.Out, results); err != nil {
			return fmt.Errorf("writing CSV: %w", err)
		}
	case table:
		WriteTable(ios.Out, results)
		fmt.Fprintf(ios.ErrOut, "%s: %d pass, %d fail, %d could not be checked\n", cmdutil.Count(sum.Devices, "device", "devices"), sum.Pass, sum.Fail, sum.Error)
	}
	return nil
}

func reasonText(r pcheck.Result) string {
	if len(r.Reasons) == 0 {
		return "compliant"
	}
	return strings.Join(r.Reasons, "; ")
}

// WriteTable prints results as the SERIAL/VERDICT/REASON table.
func WriteTable(w io.Writer, rs []pcheck.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tVERDICT\tREASON")
	for _, r := range rs {
		v := strings.ToUpper(r.Verdict)
		// Serials and reasons quote the device: made visible, so a phone cannot rewrite the table.
		fmt.Fprintf(tw, "%s\t%s\t%s\n", termtext.Visible(r.Serial), v, termtext.Visible(reasonText(r)))
	}
	tw.Flush()
}

// csvCell neutralises a value a device supplied (model, fingerprint, serial, reasons quoting
// device output) that a spreadsheet would run as a formula: one starting with = + - @ or a tab
// or carriage return gets a leading apostrophe, which spreadsheets show as text (OWASP's advice
// against CSV injection). A shop opens this file in Excel; a phone must not be able to put a
// formula in it.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func writeCSV(w io.Writer, rs []pcheck.Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"serial", "verdict", "model", "fingerprint", "reasons"}); err != nil {
		return err
	}
	for _, r := range rs {
		if err := cw.Write([]string{csvCell(r.Serial), r.Verdict, csvCell(r.Model), csvCell(r.Fingerprint), csvCell(strings.Join(r.Reasons, "; "))}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
