package ledger

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/internal/termtext"
	pledger "github.com/provkit/provkit/provision/ledger"
)

// NewCmdLedger returns "provkit ledger".
func NewCmdLedger(ios *iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger <command>",
		Short: "Export and summarise the verdicts stations recorded",
		Long: `Read the ledger that 'provkit line run' writes: a SQLite file (default
~/.local/state/provkit/ledger.db) or a PostgreSQL database (--ledger postgres://...).` + cmdutil.ExitStatus(
			"0    ok",
			"1    error: the ledger could not be read",
			"2    usage: bad flags or arguments"),
		Example: `  provkit ledger export --since 24h --csv > today.csv
  provkit ledger stats --ledger postgres://provkit@db.plant/ledger --station line1-st2`,
	}
	cmdutil.GroupCommand(cmd)
	cmd.AddCommand(NewCmdExport(ios, nil))
	cmd.AddCommand(NewCmdStats(ios, nil))
	return cmd
}

// Options are the inputs of export and stats.
type Options struct {
	IO      *iostreams.IOStreams
	Ledger  string
	Since   string
	Station string
	Serial  string
	CSV     bool
	JSON    bool

	since time.Time
}

func addFilterFlags(cmd *cobra.Command, opts *Options) {
	f := cmd.Flags()
	f.StringVar(&opts.Ledger, "ledger", "", "the ledger: a SQLite `<path>` or a postgres:// URL (default ~/.local/state/provkit/ledger.db)")
	f.StringVar(&opts.Since, "since", "", "only verdicts from `<time>` on: a duration back from now (24h, 90m) or a date (2026-05-01, RFC 3339)")
	f.StringVar(&opts.Station, "station", "", "only the verdicts of station `<name>`")
	f.StringVar(&opts.Serial, "serial", "", "only the verdicts of the phone `<serial>`")
}

// ParseSince reads --since: a duration back from now, a date or an RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: a duration back from now must be positive", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: use a duration (24h) or a date (2026-05-01, 2026-05-01T08:00:00Z)", s)
}

func (o *Options) validate() error {
	if o.CSV && o.JSON {
		return cmdutil.FlagErrorf("--csv and --json cannot be used together")
	}
	t, err := ParseSince(o.Since, time.Now())
	if err != nil {
		return cmdutil.FlagErrorf("%v", err)
	}
	o.since = t
	return nil
}

func (o *Options) filter() pledger.Filter {
	return pledger.Filter{Since: o.since, Station: o.Station, Serial: o.Serial}
}

// NewCmdExport returns "provkit ledger export".
func NewCmdExport(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "export [--ledger <dsn>] [--since <time>] [--station <name>] [--serial <serial>] [--csv | --json]",
		Short: "Export one record per verdict: serial, verdict, station, time, digests, failed rules",
		Long: `Export the verdicts, oldest first. CSV (the default) has the columns
serial,verdict,station,time,policySha256,firmwareSha256,failedRules,reasons,runId; a value a
phone supplied that a spreadsheet would run as a formula (starting with = + - @, a tab or a
carriage return) gets a leading apostrophe. --json prints one document {"verdicts": [...]} with
each verdict's evidence (the check result, the flashed images' digests).
Verdicts: pass, fail, error (the phone could not be processed), interrupted (the station was
stopped during its run).
` + cmdutil.ExitStatus(
			"0    exported (possibly nothing)",
			"1    the ledger could not be read",
			"2    bad flags"),
		Example: `  provkit ledger export --since 24h > today.csv
  provkit ledger export --ledger postgres://provkit@db.plant/ledger --station line1-st2 --json`,
		Args: cmdutil.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return exportRun(c.Context(), opts)
		},
	}
	addFilterFlags(cmd, opts)
	cmd.Flags().BoolVar(&opts.CSV, "csv", false, "print CSV (the default)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON document with the evidence")
	return cmd
}

func exportRun(ctx context.Context, opts *Options) error {
	l, err := pledger.Open(ctx, opts.Ledger)
	if err != nil {
		return err
	}
	defer l.Close()
	vs, err := l.Verdicts(ctx, opts.filter())
	if err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Verdicts []pledger.VerdictRecord `json:"verdicts"`
		}{vs}); err != nil {
			return fmt.Errorf("writing JSON: %w", err)
		}
		return nil
	}
	if err := WriteCSV(opts.IO.Out, vs); err != nil {
		return fmt.Errorf("writing CSV: %w", err)
	}
	return nil
}

// csvCell neutralises a value that a spreadsheet would run as a formula (OWASP's advice against
// CSV injection), as 'provkit check --csv' does.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteCSV writes one row per verdict.
func WriteCSV(w io.Writer, vs []pledger.VerdictRecord) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"serial", "verdict", "station", "time", "policySha256", "firmwareSha256", "failedRules", "reasons", "runId"}); err != nil {
		return err
	}
	for _, v := range vs {
		if err := cw.Write([]string{csvCell(v.Serial), v.Verdict, csvCell(v.Station), v.Time.Format(time.RFC3339Nano), v.PolicySHA256, v.FirmwareSHA256,
			csvCell(strings.Join(v.FailedRules, " ")), csvCell(strings.Join(v.Reasons, "; ")), v.RunID}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// NewCmdStats returns "provkit ledger stats".
func NewCmdStats(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "stats [--ledger <dsn>] [--since <time>] [--station <name>] [--json]",
		Short: "Summarise verdicts: devices per hour, pass rate, failures by rule, per station",
		Long: `Summarise the verdicts: how many, the pass rate (pass over pass+fail+error; interrupted runs
are counted apart), devices per hour (UTC), the rules that failed most, and per station its counts
and rate per hour; and where the time of the runs went: in the steps, or in the station itself
(identifying phones, the ledger, scheduling), as the station's overhead.
` + cmdutil.ExitStatus(
			"0    ok",
			"1    the ledger could not be read",
			"2    bad flags"),
		Example: `  provkit ledger stats
  provkit ledger stats --since 8h --station line1-st2
  provkit ledger stats --ledger postgres://provkit@db.plant/ledger --json`,
		Args: cmdutil.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return statsRun(c.Context(), opts)
		},
	}
	addFilterFlags(cmd, opts)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON document")
	return cmd
}

func statsRun(ctx context.Context, opts *Options) error {
	l, err := pledger.Open(ctx, opts.Ledger)
	if err != nil {
		return err
	}
	defer l.Close()
	vs, err := l.Verdicts(ctx, opts.filter())
	if err != nil {
		return err
	}
	s := pledger.ComputeStats(vs)
	if !opts.since.IsZero() {
		t := opts.since.UTC()
		s.Since = &t
	}
	timing, err := l.Timing(ctx, opts.filter())
	if err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			pledger.Stats
			Timing pledger.Timing `json:"timing"`
		}{s, timing})
	}
	w := opts.IO.Out
	fmt.Fprintf(w, "verdicts: %d (pass %d, fail %d, error %d, interrupted %d), pass rate %.1f%%\n",
		s.Verdicts, s.Pass, s.Fail, s.Error, s.Interrupt, 100*s.PassRate)
	if timing.Runs > 0 {
		fmt.Fprintf(w, "time: %d runs, %.1f s in steps of %.1f s, station overhead %.1f%%\n", timing.Runs, timing.StepSeconds, timing.RunSeconds, 100*timing.Overhead)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(s.ByStation) > 0 {
		fmt.Fprintln(tw, "\nSTATION\tVERDICTS\tPASS\tFAIL\tERROR\tPER HOUR")
		for _, st := range s.ByStation {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.1f\n", termtext.Visible(st.Station), st.Total, st.Pass, st.Fail, st.Error, st.Rate)
		}
	}
	if len(s.PerHour) > 0 {
		fmt.Fprintln(tw, "\nHOUR (UTC)\tDEVICES\tPASS")
		for _, h := range s.PerHour {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", h.Hour.Format("2006-01-02 15:04"), h.Total, h.Pass)
		}
	}
	if len(s.ByRule) > 0 {
		fmt.Fprintln(tw, "\nFAILED RULE\tDEVICES")
		for _, r := range s.ByRule {
			fmt.Fprintf(tw, "%s\t%d\n", termtext.Visible(r.Rule), r.Count)
		}
	}
	return tw.Flush()
}
