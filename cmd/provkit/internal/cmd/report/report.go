package report

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/internal/atomicfile"
	"github.com/provkit/provkit/manifests/evidence"
	preport "github.com/provkit/provkit/manifests/report"
)

// Options are the inputs of "provkit report".
type Options struct {
	IO      *iostreams.IOStreams
	Inputs  []string
	Out     string
	KeyPath string
	Title   string
}

// NewCmdReport returns "provkit report". runF replaces reportRun in tests.
func NewCmdReport(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "report <attestation or JSON>... --out <file.html> [--key <public key>] [--title <text>]",
		Short: "Render attestations and JSON results as one printable HTML report",
		Long: `Render evidence as one self-contained HTML page that a person can read and print on A4: what
was judged, against which policy (name and SHA-256), by which provkit, when, the verdict, every
rule with its evidence, the digests, and whether each attestation's signature verified. The page
fetches nothing (no script, font or image from anywhere), so it can be archived or mailed as is.

Inputs: attestations written by --attest, and the JSON of 'check --json', 'image audit --json'
and 'ledger export --json'. With many phones (a check or a ledger export) the page opens with
counts by verdict and by failed rule, then one row per phone.

With --key every attestation's signature is checked and shown as "verified" or "INVALID";
without it, as "not checked". An invalid signature does not stop the report (it says so at the
top and on the document) but makes the exit status 4.` + cmdutil.ExitStatus(
			"0    the report was written",
			"1    error: an input could not be read or is not provkit evidence",
			"2    usage: bad flags or arguments",
			"4    the report was written, but an attestation's signature does not verify"),
		Example: `  provkit report audit.dsse.json --out audit.html --key lab.pub
  provkit check --policy policy.yaml --all --json > stock.json && provkit report stock.json --out stock.html
  provkit ledger export --json --since 24h > today.json && provkit report today.json --out today.html
  chromium --headless --print-to-pdf=audit.pdf audit.html`,
		Args: cmdutil.MinimumArgs(1, "<attestation or JSON>"),
		RunE: func(c *cobra.Command, args []string) error {
			if opts.Out == "" {
				return cmdutil.FlagErrorf("--out <file.html> is required; see '%s --help'", c.CommandPath())
			}
			opts.Inputs = args
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return reportRun(c.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Out, "out", "o", "", "write the HTML report to `<file>`")
	cmd.Flags().StringVar(&opts.KeyPath, "key", "", "check every attestation's signature with this public `<key>`")
	cmd.Flags().StringVar(&opts.Title, "title", "", "the report's `<title>` (default: provkit compliance report)")
	return cmd
}

func reportRun(_ context.Context, opts *Options) error {
	var key ed25519.PublicKey
	if opts.KeyPath != "" {
		k, err := evidence.LoadPublicKey(opts.KeyPath)
		if err != nil {
			return err
		}
		key = k
	}
	r, err := preport.Load(opts.Inputs, preport.Options{Key: key})
	if err != nil {
		return err
	}
	if opts.Title != "" {
		r.Title = opts.Title
	}
	if err := atomicfile.Write(opts.Out, 0o644, func(f *os.File) error { return r.Render(f) }); err != nil {
		return fmt.Errorf("writing report %s: %w", opts.Out, err)
	}
	fmt.Fprintf(opts.IO.ErrOut, "provkit: report of %d document(s), %d phone(s) written to %s\n", len(r.Documents), r.Phones, opts.Out)
	if r.Invalid > 0 {
		return cmdutil.NotCompliant(fmt.Errorf("%d attestation(s) in the report do not verify with %s", r.Invalid, opts.KeyPath))
	}
	return nil
}
