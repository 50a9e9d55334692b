package check

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/internal/termtext"
	"github.com/provkit/provkit/manifests/policy"
	"github.com/provkit/provkit/provision/adb"
	pcheck "github.com/provkit/provkit/provision/check"
	"github.com/provkit/provkit/provision/counter"
	"github.com/provkit/provkit/provision/line"
)

// plainWords says in a shop assistant's words what a failed rule means.
var plainWords = map[string]string{
	policy.RuleInstalled:   "the required app is missing",
	policy.RuleSystemApp:   "the required app is not built into the phone (it can be uninstalled)",
	policy.RuleSystemCopy:  "the built-in copy of the required app was replaced or tampered with",
	policy.RulePrivileged:  "the required app lacks its system privileges",
	policy.RuleEnabled:     "the required app is disabled",
	policy.RulePermissions: "the required app is missing permissions it must have",
	policy.RuleSignerPin:   "the required app is signed by the wrong developer key (not genuine)",
	policy.RuleSignature:   "the required app's signature is broken (modified app)",
	policy.RuleMinVersion:  "the required app is too old",
	policy.RuleFingerprint: "the phone's firmware is not a certified build",
}

// plainReason is the first failed rule of r in plain words, or for a phone that could not be
// checked, what was wrong.
func plainReason(r *pcheck.Result) string {
	if r.Verdict == pcheck.VerdictPass {
		return "compliant"
	}
	var words []string
	seen := map[string]bool{}
	add := func(cs []policy.Check) {
		for _, c := range policy.Failed(cs) {
			if w, ok := plainWords[c.Rule]; ok && !seen[w] {
				seen[w] = true
				words = append(words, w)
			}
		}
	}
	add(r.Checks)
	for _, a := range r.Apps {
		add(a.Checks)
	}
	if len(words) == 0 {
		return reasonText(*r)
	}
	return strings.Join(words, "; ")
}

// watchCSV appends one row per verdict and makes it durable at once: a crash loses nothing.
type watchCSV struct {
	f *os.File
	w *csv.Writer
}

func openWatchCSV(path string) (*watchCSV, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening CSV: %w", err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("opening CSV %s: not a regular file", path)
	}
	c := &watchCSV{f: f, w: csv.NewWriter(f)}
	if fi.Size() == 0 {
		if err := c.row([]string{"time", "serial", "verdict", "model", "fingerprint", "reasons"}); err != nil {
			f.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *watchCSV) row(rec []string) error {
	if err := c.w.Write(rec); err != nil {
		return fmt.Errorf("writing CSV %s: %w", c.f.Name(), err)
	}
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return fmt.Errorf("writing CSV %s: %w", c.f.Name(), err)
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("writing CSV %s: %w", c.f.Name(), err)
	}
	return nil
}

func (c *watchCSV) add(r *pcheck.Result) error {
	return c.row([]string{time.Now().UTC().Format(time.RFC3339), csvCell(r.Serial), r.Verdict, csvCell(r.Model), csvCell(r.Fingerprint), csvCell(strings.Join(r.Reasons, "; "))})
}

// watchRun is the shop counter: check each phone as it is plugged in, until Ctrl-C.
func watchRun(ctx context.Context, opts *Options) error {
	pol, err := policy.Load(opts.Policy)
	if err != nil {
		return err
	}
	if opts.CSVPath == "-" {
		return cmdutil.FlagErrorf("--watch writes its CSV to a file: --csv <file>")
	}
	var sink *watchCSV
	if opts.CSVPath != "" {
		if sink, err = openWatchCSV(opts.CSVPath); err != nil {
			return err
		}
		defer sink.f.Close()
	}
	var sources []line.Source
	if len(opts.Direct) > 0 {
		var ts []line.TCPTarget
		for _, a := range opts.Direct {
			ts = append(ts, line.TCPTarget{ADB: a})
		}
		sources = append(sources, &line.TCPSource{Targets: ts, Interval: 500 * time.Millisecond, Dial: adb.DialOptions{AuthWait: opts.AuthWait}})
	}
	if len(opts.Direct) == 0 || len(opts.Serials) > 0 || opts.All {
		srv, err := adb.NewServer("")
		if err != nil {
			return err
		}
		if _, err := srv.Devices(ctx); err != nil {
			if errors.Is(err, adb.ErrNoServer) {
				return fmt.Errorf("%w (start it with 'adb start-server'), or watch adbd addresses with --direct <host:port>", err)
			}
			return err
		}
		sources = append(sources, &line.ServerSource{Server: srv})
	}
	out, errOut := opts.IO.Out, opts.IO.ErrOut
	tty := opts.IO.IsStdoutTTY()
	fmt.Fprintf(errOut, "provkit: checking phones against %s as they are plugged in; Ctrl-C to finish\n", termtext.Visible(pol.Metadata.Name))
	var writeErr error
	tally, _ := counter.Run(ctx, counter.Config{
		Policy: pol, Sources: sources, Timeout: opts.Timeout, PullAll: opts.PullAll, Jobs: opts.Jobs,
		Events: func(ev counter.Event) {
			key := termtext.Visible(ev.Key)
			switch ev.Kind {
			case counter.EventChecking:
				fmt.Fprintf(errOut, "checking %s ...\n", key)
			case counter.EventWaiting:
				fmt.Fprintf(errOut, "waiting for %s: %s\n", key, termtext.Visible(ev.Why))
			case counter.EventGone:
				fmt.Fprintf(errOut, "%s unplugged\n", key)
			case counter.EventSourceError:
				fmt.Fprintf(errOut, "provkit: %s\n", termtext.Visible(ev.Why))
			case counter.EventVerdict:
				printVerdict(out, ev.Result, tty)
				if sink != nil {
					if err := sink.add(ev.Result); err != nil && writeErr == nil {
						writeErr = err
						fmt.Fprintf(errOut, "provkit: %v\n", err)
					}
				}
			}
		},
	})
	fmt.Fprintf(out, "\n%d phone(s) checked: %d PASS, %d FAIL, %d could not be checked\n", tally.Total(), tally.Pass, tally.Fail, tally.Error)
	switch {
	case writeErr != nil:
		return cmdutil.Silent(cmdutil.ExitError)
	case tally.Error > 0:
		return cmdutil.Silent(cmdutil.ExitDevicesFailed)
	case tally.Fail > 0:
		return cmdutil.Silent(cmdutil.ExitNotCompliant)
	}
	return nil
}

// printVerdict prints one big, unmistakable line; on a terminal in colour, with a bell on FAIL.
func printVerdict(w io.Writer, r *pcheck.Result, tty bool) {
	label := map[string]string{pcheck.VerdictPass: "PASS", pcheck.VerdictFail: "FAIL"}[r.Verdict]
	if label == "" {
		label = "ERROR"
	}
	serial := termtext.Visible(r.Serial)
	model := termtext.Visible(r.Model)
	reason := termtext.Visible(plainReason(r))
	if !tty {
		fmt.Fprintf(w, "%-5s  %s  %s  %s\n", label, serial, model, reason)
		return
	}
	colour := map[string]string{"PASS": "42", "FAIL": "41", "ERROR": "43"}[label]
	bell := ""
	if label != "PASS" {
		bell = "\a"
	}
	fmt.Fprintf(w, "\x1b[1;97;%sm  %-5s  \x1b[0m  \x1b[1m%s\x1b[0m  %s  %s%s\n", colour, label, serial, model, reason, bell)
}
