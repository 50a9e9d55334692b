package attest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/internal/termtext"
	"github.com/provkit/provkit/manifests/evidence"
)

// Options are the inputs of "attest verify" and "attest show".
type Options struct {
	IO         *iostreams.IOStreams
	Envelope   string
	Files      []string
	KeyPath    string
	PolicyPath string
	JSON       bool
}

// NewCmdAttest returns "provkit attest".
func NewCmdAttest(ios *iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attest <command>",
		Short: "Verify and show signed attestations (--attest)",
		Long: `Check the signed in-toto attestations that --attest writes (DSSE envelopes, Ed25519) and
print them for a person.` + cmdutil.ExitStatus(
			"0    ok: the attestation is valid",
			"1    error: a file could not be read, or is not an attestation",
			"2    usage: bad flags or arguments",
			"4    invalid: the signature does not verify, or a file or the policy is not the one attested"),
		Example: `  provkit attest verify --key lab.pub audit.dsse.json firmware.zip
  provkit attest show audit.dsse.json`,
	}
	cmdutil.GroupCommand(cmd)
	cmd.AddCommand(NewCmdVerify(ios, nil), NewCmdShow(ios, nil))
	return cmd
}

// NewCmdVerify returns "provkit attest verify".
func NewCmdVerify(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "verify --key <public key> <envelope> [<file>...] [--policy <file>] [--json]",
		Short: "Check an attestation's signature, and that files and the policy are the ones it attests",
		Long: `Check that <envelope> is signed by <public key> (the signature over the DSSE
pre-authentication encoding of its payload), that it is a provkit compliance statement, that each
<file> given is one of its subjects (by SHA-256), and with --policy that <file> is the policy it was
judged against (by SHA-256). It then prints the verdict the attestation records.

A valid attestation of a NOT COMPLIANT verdict is still valid: the exit status says whether the
evidence is genuine; the verdict printed says what it proves.` + cmdutil.ExitStatus(
			"0    valid",
			"1    error: an input could not be read, or is not a provkit attestation",
			"2    usage: bad flags or arguments",
			"4    invalid: bad signature, another key, a file or the policy not attested"),
		Example: `  provkit attest verify --key lab.pub audit.dsse.json
  provkit attest verify --key lab.pub --policy policy.yaml audit.dsse.json oriole-factory.zip
  provkit attest verify --key lab.pub --json check.dsse.json`,
		Args: cmdutil.MinimumArgs(1, "<envelope>"),
		RunE: func(c *cobra.Command, args []string) error {
			if opts.KeyPath == "" {
				return cmdutil.FlagErrorf("--key <public key> is required; see '%s --help'", c.CommandPath())
			}
			opts.Envelope, opts.Files = args[0], args[1:]
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return verifyRun(c.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.KeyPath, "key", "", "the signer's public `<key>` (PEM)")
	cmd.Flags().StringVar(&opts.PolicyPath, "policy", "", "check that the attestation is about this policy `<file>`")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print {valid, reason, keyId, files, statement} as JSON")
	return cmd
}

// NewCmdShow returns "provkit attest show".
func NewCmdShow(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "show <envelope> [--key <public key>] [--json]",
		Short: "Print an attestation readably (its signature checked when --key is given)",
		Long: `Print what an attestation says: what was judged (subjects and digests), against which policy,
by which provkit, when, the verdict and every rule. Without --key the signature is NOT checked and
the output says so; use 'provkit attest verify' to rely on it.` + cmdutil.ExitStatus(
			"0    printed",
			"1    error: the file could not be read, or is not a provkit attestation",
			"2    usage: bad flags or arguments",
			"4    --key given and the signature does not verify"),
		Example: `  provkit attest show audit.dsse.json
  provkit attest show --json audit.dsse.json | jq .predicate.verdict`,
		Args: cmdutil.ExactArgs(1, "<envelope>"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Envelope = args[0]
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return showRun(c.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.KeyPath, "key", "", "also check the signature with this public `<key>`")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the statement as JSON")
	return cmd
}

type verifyDoc struct {
	Valid     bool                 `json:"valid"`
	Reason    string               `json:"reason,omitempty"`
	KeyID     string               `json:"keyId,omitempty"`
	Files     []evidence.FileMatch `json:"files,omitempty"`
	Statement *evidence.Statement  `json:"statement,omitempty"`
}

func verifyRun(_ context.Context, opts *Options) error {
	pub, err := evidence.LoadPublicKey(opts.KeyPath)
	if err != nil {
		return err
	}
	env, err := evidence.ReadFile(opts.Envelope)
	if err != nil {
		return err
	}
	c, err := evidence.Verify(env, pub, evidence.VerifyOptions{Files: opts.Files, PolicyPath: opts.PolicyPath})
	if err != nil {
		invalid := errors.Is(err, evidence.ErrBadSignature) || errors.Is(err, evidence.ErrNotAttested)
		if !invalid {
			return fmt.Errorf("verifying %s: %w", opts.Envelope, err)
		}
		if opts.JSON {
			if err := writeJSON(opts.IO.Out, verifyDoc{Valid: false, Reason: err.Error()}); err != nil {
				return err
			}
		}
		return cmdutil.NotCompliant(fmt.Errorf("INVALID %s: %w", opts.Envelope, err))
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, verifyDoc{Valid: true, KeyID: c.KeyID, Files: c.Files, Statement: c.Statement})
	}
	w := opts.IO.Out
	fmt.Fprintf(w, "VALID %s: signed by key %s\n", termtext.Visible(opts.Envelope), c.KeyID)
	for _, f := range c.Files {
		fmt.Fprintf(w, "  file %s (sha256 %s) is subject %s\n", termtext.Visible(f.Path), f.SHA256, termtext.Visible(f.Subject))
	}
	if opts.PolicyPath != "" {
		fmt.Fprintf(w, "  policy %s is the attested policy\n", termtext.Visible(opts.PolicyPath))
	}
	printStatement(w, c.Statement, "verified with "+c.KeyID)
	return nil
}

func showRun(_ context.Context, opts *Options) error {
	env, err := evidence.ReadFile(opts.Envelope)
	if err != nil {
		return err
	}
	sigState := "NOT CHECKED (give --key, or use 'provkit attest verify')"
	if opts.KeyPath != "" {
		pub, err := evidence.LoadPublicKey(opts.KeyPath)
		if err != nil {
			return err
		}
		id, err := env.Verify(pub)
		if err != nil {
			return cmdutil.NotCompliant(fmt.Errorf("INVALID %s: %w", opts.Envelope, err))
		}
		sigState = "verified with " + id
	}
	st, err := evidence.DecodeStatement(env)
	if err != nil {
		return fmt.Errorf("reading %s: %w", opts.Envelope, err)
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, st)
	}
	printStatement(opts.IO.Out, st, sigState)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

// printStatement prints st for a person; every string from the statement is made visible first
// (an attestation is input: it may come from anyone).
func printStatement(w io.Writer, st *evidence.Statement, sigState string) {
	v := termtext.Visible
	p := st.Predicate
	fmt.Fprintf(w, "Verdict:    %s\n", strings.ToUpper(v(p.Verdict)))
	fmt.Fprintf(w, "Kind:       %s\n", v(p.Kind))
	fmt.Fprintf(w, "Policy:     %s (%s), sha256 %s\n", v(p.Policy.Name), v(p.Policy.Path), v(p.Policy.SHA256))
	if p.Policy.Authority != "" {
		fmt.Fprintf(w, "Authority:  %s\n", v(p.Policy.Authority))
	}
	fmt.Fprintf(w, "Tool:       %s %s\n", v(p.Tool.Name), v(p.Tool.Info.String()))
	fmt.Fprintf(w, "Time:       %s on %s\n", p.Time.UTC().Format("2006-01-02 15:04:05 MST"), v(p.Host))
	fmt.Fprintf(w, "Signature:  %s\n", sigState)
	fmt.Fprintln(w, "Subjects:")
	for _, s := range st.Subject {
		line := fmt.Sprintf("  %s  sha256:%s", v(s.Name), v(s.Digest["sha256"]))
		if fp := s.Annotations["fingerprint"]; fp != "" {
			line += "  fingerprint " + v(fp)
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w, "Rules:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range p.Rules {
		res := "PASS"
		if !r.Pass {
			res = "FAIL"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", res, v(r.Subject), v(r.Rule), v(r.Detail))
	}
	tw.Flush()
}
