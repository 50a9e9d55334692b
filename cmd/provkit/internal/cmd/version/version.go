package version

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/internal/buildinfo"
)

// Options are the inputs of `provkit version`.
type Options struct {
	IO   *iostreams.IOStreams
	JSON bool
	// Info is the build being described; buildinfo.Get() unless a test sets it.
	Info func() buildinfo.Info
}

// NewCmdVersion returns the version command.
func NewCmdVersion(ios *iostreams.IOStreams) *cobra.Command {
	opts := &Options{IO: ios, Info: buildinfo.Get}
	cmd := &cobra.Command{
		Use:   "version [--json]",
		Short: "Print provkit's version, the commit it was built from, and the Go toolchain",
		Long: `Print which provkit this is: the module version ("v0.3.1", a pseudo-version, or "(devel)" for a
build Go could not stamp), the VCS revision and commit time the binary was built from (absent for
"go run" and for builds with -buildvcs=false), whether the working tree had uncommitted changes, and
the Go toolchain. "provkit --version" prints the same on one line. Quote it in a bug report; reports
and evidence record the same values.
` + cmdutil.ExitStatus(
			"0    printed",
			"2    bad flags"),
		Example: `  provkit version
  provkit version --json
  provkit --version`,
		Args: cmdutil.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			return versionRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON document: {version, revision, time, modified, goVersion}")
	return cmd
}

func versionRun(opts *Options) error {
	in := opts.Info()
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(in); err != nil {
			return fmt.Errorf("writing JSON: %w", err)
		}
		return nil
	}
	fmt.Fprintf(opts.IO.Out, "provkit %s\n", in.Version)
	if in.Revision != "" {
		mod := ""
		if in.Modified {
			mod = " (modified)"
		}
		fmt.Fprintf(opts.IO.Out, "revision: %s%s\n", in.Revision, mod)
	}
	if !in.Time.IsZero() {
		fmt.Fprintf(opts.IO.Out, "commit time: %s\n", in.Time.UTC().Format("2006-01-02T15:04:05Z"))
	}
	fmt.Fprintf(opts.IO.Out, "go: %s\n", in.GoVersion)
	return nil
}
