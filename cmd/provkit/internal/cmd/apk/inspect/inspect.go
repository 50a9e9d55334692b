package inspect

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/provkit/provkit/internal/termtext"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/firmware/apk"
)

// Options are the flags and arguments of "provkit apk inspect".
type Options struct {
	IO   *iostreams.IOStreams
	APK  string
	JSON bool
}

// NewCmdInspect returns "provkit apk inspect". runF replaces the run function in tests.
func NewCmdInspect(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "inspect <apk> [--json]",
		Short: "Show an APK's package, versions, SDK levels, permissions, native ABIs and signers",
		Long: `Show what an APK says about itself: package name, versionCode and versionName, minSdkVersion
and targetSdkVersion, requested permissions, native ABIs (lib/<abi>/), which signature schemes
it carries and its signer certificates. This is not a verdict: nothing is checked against the
APK's contents. Use "provkit apk verify" to know whether the APK is authentic.` + cmdutil.ExitStatus(
			"0    the APK was read (even if parts of it are malformed: see problems)",
			"1    the file could not be read, or is not an APK (no package manifest could be read);\n     only the error is printed",
			"2    usage: bad flags or arguments"),
		Example: `  provkit apk inspect app.apk
  provkit apk inspect --json app.apk | jq .signers[0].sha256`,
		Args: cmdutil.ExactArgs(1, "<apk>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.APK = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return inspectRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON instead of text")
	return cmd
}

func inspectRun(ctx context.Context, opts *Options) error {
	info, err := apk.InspectFile(ctx, opts.APK)
	if err != nil {
		return err
	}
	if info.Package == "" {
		// Nothing an APK is made of could be read: only the error, no empty report a script could
		// take for an APK's.
		why := "no AndroidManifest.xml with a package name"
		if len(info.Problems) > 0 {
			why = fmt.Sprint(info.Problems[0])
		}
		return fmt.Errorf("%s: not an APK: %s", opts.APK, why)
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(info); err != nil {
			return fmt.Errorf("writing JSON: %w", err)
		}
	} else {
		printText(termtext.NewWriter(opts.IO.Out), info)
	}
	return nil
}

func printText(w io.Writer, info *apk.Info) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("File: %s (%s, %s)", info.File, cmdutil.Count(int(info.Size), "byte", "bytes"), cmdutil.Count(info.Entries, "entry", "entries"))
	p("Package: %s", info.Package)
	p("Version: %s (versionCode %d)", info.VersionName, info.VersionCode)
	p("SDK: minSdkVersion %d, targetSdkVersion %d", info.MinSDK, info.TargetSDK)
	p("Native ABIs: %s", orNone(info.NativeABIs))
	p("Requested permissions: %d", len(info.RequestedPermissions))
	for _, perm := range info.RequestedPermissions {
		p("  %s", perm)
	}
	s := info.Schemes
	var present []string
	for _, x := range []struct {
		on   bool
		name string
	}{{s.V1, "v1"}, {s.V2, "v2"}, {s.V3, "v3"}, {s.V31, "v3.1"}, {s.V4, "v4 (.idsig)"}, {s.SourceStamp, "source stamp"}} {
		if x.on {
			present = append(present, x.name)
		}
	}
	p("Signatures present (not verified): %s", orNone(present))
	for i, sg := range info.Signers {
		n := fmt.Sprintf("Signer #%d", i+1)
		p("%s (%s) certificate DN: %s", n, sg.Scheme, sg.Subject)
		p("%s certificate SHA-256 digest: %s", n, sg.SHA256)
		p("%s key algorithm: %s, key size (bits): %d", n, sg.KeyAlgorithm, sg.KeySize)
	}
	for i, l := range info.Lineage {
		p("Lineage #%d (oldest first) certificate SHA-256 digest: %s (%s)", i+1, l.SHA256, l.Subject)
	}
	for _, pr := range info.Problems {
		p("PROBLEM: %s", pr)
	}
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}
