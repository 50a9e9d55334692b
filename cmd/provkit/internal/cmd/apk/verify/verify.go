package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/provkit/provkit/internal/termtext"
	"io"
	"math"
	"strings"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/attestflag"
	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/firmware/apk"
	"github.com/provkit/provkit/manifests/evidence"
	"github.com/provkit/provkit/manifests/policy"
)

// Options are the flags and arguments of "provkit apk verify".
type Options struct {
	IO         *iostreams.IOStreams
	APKs       []string
	JSON       bool
	MinSDK     int
	MaxSDK     int
	V4File     string
	PolicyPath string
	Verbose    bool
	Attest     attestflag.Flags
}

// NewCmdVerify returns "provkit apk verify". runF replaces the run function in tests.
func NewCmdVerify(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "verify <apk>... [flags]",
		Short: "Verify APK signatures (v1, v2, v3, v3.1, v4) as Android does",
		Long: `Verify that each APK is signed and unmodified, with the rules of Google's apksig: which
signature schemes must verify for the APK's platform range (minSdkVersion from its manifest, or
--min-sdk-version), how the schemes' signers must agree, and proof-of-rotation lineages. A v4
signature "<apk>.idsig" next to the APK is verified too.

The report names each signer as apksigner prints them: "Signer #1" is the key Android
associates with the APK (the newest key of a rotated app). Certificate digests are taken over
the certificate exactly as encoded in the signature, so they can be pinned.

With --policy, the APK must also be named in the policy, be signed by a pinned key (a pin on an
older key of a verified rotation lineage counts) and have versionCode >= minVersionCode.

With --json, stdout is one JSON document per APK (an array when several): file, sha256,
verified, schemes {v1,v2,v3,v31,v4}, signers [{sha256, sha1, md5, subject, keyAlgorithm,
keySize, publicKeySha256, minSdk, maxSdk, scheme}], lineage, sourceStamp, package, versionCode,
versionName, minSdk, targetSdk, errors, warnings (and policy when --policy is given).` + cmdutil.ExitStatus(
			"0    every APK verifies (and passes the policy)",
			"1    a file could not be read",
			"2    usage: bad flags or arguments",
			"4    an APK does not verify (malformed and truncated files too), or fails the policy"),
		Example: `  provkit apk verify app.apk
  provkit apk verify --json app.apk other.apk
  provkit apk verify --min-sdk-version 24 --v4-signature-file app.apk.idsig app.apk
  provkit apk verify --policy policy.yaml apks/messenger.apk`,
		Args: cmdutil.MinimumArgs(1, "<apk>..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.APKs = args
			if opts.MinSDK < 0 || opts.MaxSDK < 0 {
				return cmdutil.FlagErrorf("SDK versions must be positive; see '%s --help'", cmd.CommandPath())
			}
			if cmd.Flags().Changed("min-sdk-version") && opts.MinSDK == 0 {
				return cmdutil.FlagErrorf("--min-sdk-version must be at least 1")
			}
			if cmd.Flags().Changed("max-sdk-version") && opts.MaxSDK == 0 {
				return cmdutil.FlagErrorf("--max-sdk-version must be at least 1")
			}
			if opts.MinSDK > 0 && opts.MaxSDK > 0 && opts.MinSDK > opts.MaxSDK {
				return cmdutil.FlagErrorf("--min-sdk-version %d is above --max-sdk-version %d", opts.MinSDK, opts.MaxSDK)
			}
			if opts.V4File != "" && len(args) != 1 {
				return cmdutil.FlagErrorf("--v4-signature-file needs exactly one APK, got %d", len(args))
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			if opts.Attest.Enabled() && opts.PolicyPath == "" {
				return cmdutil.FlagErrorf("--attest needs --policy <file>: an attestation says what the APK was judged against")
			}
			if err := opts.Attest.Validate(); err != nil {
				return err
			}
			return verifyRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.JSON, "json", false, "print JSON instead of text")
	f.IntVar(&opts.MinSDK, "min-sdk-version", 0, "lowest Android API level to verify for `<level>` (default: the APK's minSdkVersion)")
	f.IntVar(&opts.MaxSDK, "max-sdk-version", 0, "highest Android API level to verify for `<level>` (default: no limit)")
	f.StringVar(&opts.V4File, "v4-signature-file", "", "APK Signature Scheme v4 `<file>` (default: <apk>.idsig when it exists)")
	f.StringVar(&opts.PolicyPath, "policy", "", "also check the APK against the pins of the policy `<file>`")
	f.BoolVarP(&opts.Verbose, "verbose", "v", false, "also print warnings, SDK-targeted signers and the file digest")
	opts.Attest.Register(cmd)
	return cmd
}

// policyReport is the policy part of a verification.
type policyReport struct {
	Source string         `json:"source"`
	Pass   bool           `json:"pass"`
	Checks []policy.Check `json:"checks"`
}

type report struct {
	*apk.Result
	Policy *policyReport `json:"policy,omitempty"`
}

func verifyRun(ctx context.Context, opts *Options) error {
	var pol *policy.Policy
	if opts.PolicyPath != "" {
		p, err := policy.Load(opts.PolicyPath)
		if err != nil {
			return err
		}
		pol = p
	}
	var reports []report
	var ioErrs []error
	failed := 0
	for _, path := range opts.APKs {
		if err := ctx.Err(); err != nil {
			return err
		}
		// The whole-file SHA-256 costs one more hash pass; compute it only when it is printed.
		noFileDigest := !opts.JSON && !opts.Verbose
		res, err := apk.VerifyFile(ctx, path, apk.Options{MinSDK: opts.MinSDK, MaxSDK: opts.MaxSDK, V4File: opts.V4File, NoFileDigest: noFileDigest})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			ioErrs = append(ioErrs, err)
			fmt.Fprintf(opts.IO.ErrOut, "provkit: %v\n", err)
			res = &apk.Result{File: path, Errors: []apk.Issue{{Code: "UNREADABLE", Message: err.Error()}}, Warnings: []apk.Issue{}, Signers: []apk.Signer{}}
		}
		rep := report{Result: res}
		if pol != nil && err == nil {
			rep.Policy = checkPolicy(pol, res)
		}
		if err == nil && (!res.Verified || (rep.Policy != nil && !rep.Policy.Pass)) {
			failed++
		}
		reports = append(reports, rep)
		if !opts.JSON && err == nil {
			printText(termtext.NewWriter(opts.IO.Out), rep, opts.Verbose, len(opts.APKs) > 1)
		}
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		var err error
		if len(reports) == 1 {
			err = enc.Encode(reports[0])
		} else {
			err = enc.Encode(reports)
		}
		if err != nil {
			return fmt.Errorf("writing JSON: %w", err)
		}
	}
	if opts.Attest.Enabled() {
		if err := attest(opts, pol, reports, len(ioErrs) > 0, failed); err != nil {
			return err
		}
	}
	if len(ioErrs) > 0 {
		return cmdutil.Silent(cmdutil.ExitError)
	}
	if failed > 0 {
		return cmdutil.Silent(cmdutil.ExitNotCompliant)
	}
	return nil
}

// attest writes the signed attestation of the verdicts: one subject per APK that could be read.
func attest(opts *Options, pol *policy.Policy, reports []report, ioErr bool, failed int) error {
	c, err := evidence.NewCompliance(evidence.KindAPKVerify, pol)
	if err != nil {
		return err
	}
	st := &evidence.Statement{Predicate: c}
	for _, r := range reports {
		if len(r.Errors) > 0 && r.Errors[0].Code == "UNREADABLE" {
			continue
		}
		sub, err := evidence.FileSubject(r.File)
		if err != nil {
			return err
		}
		st.Subject = append(st.Subject, sub)
		if r.Policy != nil {
			c.Rules = append(c.Rules, evidence.Rules(r.File, r.Policy.Checks)...)
		}
	}
	switch {
	case ioErr:
		c.Verdict = evidence.VerdictError
	case failed > 0:
		c.Verdict = evidence.VerdictNotCompliant
	default:
		c.Verdict = evidence.VerdictCompliant
	}
	var doc any = reports
	if len(reports) == 1 {
		doc = reports[0]
	}
	return opts.Attest.Write(opts.IO.ErrOut, st, doc)
}

func checkPolicy(pol *policy.Policy, res *apk.Result) *policyReport {
	_, checks := pol.CheckAPK(policy.APKFactsOf(res))
	return &policyReport{Source: pol.Source, Pass: policy.AllPass(checks), Checks: checks}
}

func yes(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func sdk(n int) string {
	if n == math.MaxInt32 {
		return "any"
	}
	return fmt.Sprint(n)
}

// printText prints a report in the spirit of "apksigner verify -v --print-certs".
func printText(w io.Writer, rep report, verbose, many bool) {
	r := rep.Result
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	if many {
		p("%s:", r.File)
	}
	if r.Verified {
		p("Verifies")
	} else {
		p("DOES NOT VERIFY")
	}
	p("Verified using v1 scheme (JAR signing): %s", yes(r.Schemes.V1))
	p("Verified using v2 scheme (APK Signature Scheme v2): %s", yes(r.Schemes.V2))
	p("Verified using v3 scheme (APK Signature Scheme v3): %s", yes(r.Schemes.V3))
	p("Verified using v3.1 scheme (APK Signature Scheme v3.1): %s", yes(r.Schemes.V31))
	p("Verified using v4 scheme (APK Signature Scheme v4): %s", yes(r.Schemes.V4))
	stamp := r.SourceStamp != nil && r.SourceStamp.Verified
	p("Verified for SourceStamp: %s", yes(stamp))
	if r.Package != "" {
		p("Package: %s versionCode=%d versionName=%q minSdk=%d targetSdk=%d", r.Package, r.VersionCode, r.VersionName, r.MinSDK, r.TargetSDK)
	}
	if r.CheckedSDK.Min > 0 {
		p("Verified for SDK levels: %d to %s", r.CheckedSDK.Min, sdk(r.CheckedSDK.Max))
	}
	if len(r.Signers) > 0 {
		p("Number of signers: %d", len(r.Signers))
	}
	for i, s := range r.Signers {
		n := fmt.Sprintf("Signer #%d", i+1)
		p("%s certificate DN: %s", n, s.Subject)
		p("%s certificate SHA-256 digest: %s", n, s.SHA256)
		p("%s certificate SHA-1 digest: %s", n, s.SHA1)
		p("%s certificate MD5 digest: %s", n, s.MD5)
		p("%s key algorithm: %s", n, s.KeyAlgorithm)
		p("%s key size (bits): %d", n, s.KeySize)
		p("%s public key SHA-256 digest: %s", n, s.PublicKeySHA256)
	}
	if verbose {
		for _, s := range r.SDKSigners {
			p("Signer (%s, minSdkVersion=%d, maxSdkVersion=%s) certificate DN: %s", s.Scheme, s.MinSDK, sdk(s.MaxSDK), s.Subject)
			p("Signer (%s, minSdkVersion=%d, maxSdkVersion=%s) certificate SHA-256 digest: %s", s.Scheme, s.MinSDK, sdk(s.MaxSDK), s.SHA256)
		}
	}
	for i, l := range r.Lineage {
		var caps []string
		c := l.Capabilities
		for _, x := range []struct {
			on   bool
			name string
		}{{c.InstalledData, "installed-data"}, {c.SharedUID, "shared-uid"}, {c.Permission, "permission"}, {c.Rollback, "rollback"}, {c.Auth, "auth"}} {
			if x.on {
				caps = append(caps, x.name)
			}
		}
		p("Lineage #%d (oldest first) certificate SHA-256 digest: %s (%s) capabilities: %s", i+1, l.SHA256, l.Subject, strings.Join(caps, ","))
	}
	if s := r.SourceStamp; s != nil {
		p("Source stamp: %s certificate SHA-256 digest: %s", s.Status, s.SHA256)
		if verbose {
			for _, w := range s.Warnings {
				p("WARNING: source stamp: %s", w)
			}
		}
	}
	if verbose && r.SHA256 != "" {
		p("File SHA-256 digest: %s (%d bytes)", r.SHA256, r.Size)
	}
	malformed := false
	for _, e := range r.Errors {
		p("ERROR: %s", e)
		malformed = malformed || e.Code == "MALFORMED_APK"
	}
	if malformed {
		p("%s is not a well-formed APK (damaged, truncated, or not an APK at all): rebuild it or download it again.", r.File)
	}
	if verbose {
		for _, e := range r.Warnings {
			p("WARNING: %s", e)
		}
	}
	if rep.Policy != nil {
		verdict := "PASSES"
		if !rep.Policy.Pass {
			verdict = "FAILS"
		}
		p("Policy %s: %s", rep.Policy.Source, verdict)
		for _, c := range rep.Policy.Checks {
			p("  %s", c)
		}
	}
	if many {
		p("")
	}
}
