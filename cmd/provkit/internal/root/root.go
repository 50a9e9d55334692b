package root

import (
	"context"
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/termtext"
	"strings"

	"github.com/spf13/cobra"

	apkcmd "github.com/provkit/provkit/cmd/provkit/internal/cmd/apk"
	attestcmd "github.com/provkit/provkit/cmd/provkit/internal/cmd/attest"
	checkcmd "github.com/provkit/provkit/cmd/provkit/internal/cmd/check"
	democmd "github.com/provkit/provkit/cmd/provkit/internal/cmd/demo"
	devicescmd "github.com/provkit/provkit/cmd/provkit/internal/cmd/devices"
	flashcmd "github.com/provkit/provkit/cmd/provkit/internal/cmd/flash"
	"github.com/provkit/provkit/cmd/provkit/internal/cmd/image"
	keyscmd "github.com/provkit/provkit/cmd/provkit/internal/cmd/keys"
	ledgercmd "github.com/provkit/provkit/cmd/provkit/internal/cmd/ledger"
	linecmd "github.com/provkit/provkit/cmd/provkit/internal/cmd/line"
	"github.com/provkit/provkit/cmd/provkit/internal/cmd/patch"
	reportcmd "github.com/provkit/provkit/cmd/provkit/internal/cmd/report"
	simcmd "github.com/provkit/provkit/cmd/provkit/internal/cmd/sim"
	versioncmd "github.com/provkit/provkit/cmd/provkit/internal/cmd/version"
	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/internal/buildinfo"
)

// Version is provkit's version as "--version" prints it: the module version, VCS revision and time
// from the build information (internal/buildinfo; a packaged build sets buildinfo.Version at link time).
var Version = buildinfo.Get().String()

// NewCmdRoot returns the provkit command with every subcommand attached.
func NewCmdRoot(ios *iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "provkit <command> [flags]",
		Short: "Get Android devices compliant with a preinstall mandate, and prove it",
		Long: `provkit verifies signed APKs, patches AOSP build trees to include a mandated app, reads
firmware images, and validates devices over ADB and fastboot, all against one policy file.` +
			cmdutil.ExitStatus(
				"0    ok: verified, compliant, done",
				"1    error: the command could not do its job",
				"2    usage: bad flags or arguments",
				"3    some devices could not be processed",
				"4    verification or compliance failed",
				"130  interrupted"),
		Version: Version,
		Example: `  provkit demo                                         # simulated phones, a sample app and policy
  provkit apk verify --policy policy.yaml messenger.apk
  provkit patch --policy policy.yaml --tree ~/aosp --dry-run
  provkit image audit --policy policy.yaml factory-image.zip
  provkit check --policy policy.yaml --all --csv > stock.csv
  provkit sim --devices 4 --adb-connect                # rehearse without phones`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	cmdutil.GroupCommand(cmd)
	cmd.SetIn(ios.In)
	cmd.SetOut(ios.Out)
	cmd.SetErr(ios.ErrOut)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &cmdutil.FlagError{Err: fmt.Errorf("%w; see '%s --help'", err, c.CommandPath())}
	})
	// cobra's own "completion bash|zsh|fish|powershell" command; its scripts call back into the
	// hidden __complete command, so flags and subcommands added later complete without regenerating.
	cmd.CompletionOptions.HiddenDefaultCmd = false
	cmd.SetVersionTemplate("provkit {{.Version}}\n")

	for _, add := range subcommands {
		cmd.AddCommand(add(ios))
	}
	// Add the completion command now rather than at Execute, so that the reference pages generated
	// from this tree (docs/cli, docs/man) include it and "completion <unknown shell>" is a usage error.
	cmd.InitDefaultCompletionCmd()
	for _, c := range cmd.Commands() {
		if c.Name() == "completion" {
			cmdutil.GroupCommand(c)
			c.Example = `  source <(provkit completion bash)                            # this shell only
  provkit completion bash > /etc/bash_completion.d/provkit       # every bash (needs bash-completion)
  provkit completion zsh > "${fpath[1]}/_provkit"
  provkit completion fish > ~/.config/fish/completions/provkit.fish`
		}
	}
	return cmd
}

// subcommands lists the constructors of provkit's top-level commands, one line each.
var subcommands = []func(*iostreams.IOStreams) *cobra.Command{
	image.NewCmdImage,
	func(ios *iostreams.IOStreams) *cobra.Command { return patch.NewCmdPatch(ios, nil) },
	func(ios *iostreams.IOStreams) *cobra.Command { return simcmd.NewCmdSim(ios, nil) },
	apkcmd.NewCmdAPK,
	func(ios *iostreams.IOStreams) *cobra.Command { return devicescmd.NewCmdDevices(ios, nil) },
	func(ios *iostreams.IOStreams) *cobra.Command { return checkcmd.NewCmdCheck(ios, nil) },
	func(ios *iostreams.IOStreams) *cobra.Command { return democmd.NewCmdDemo(ios, nil) },
	linecmd.NewCmdLine,
	ledgercmd.NewCmdLedger,
	keyscmd.NewCmdKeys,
	attestcmd.NewCmdAttest,
	func(ios *iostreams.IOStreams) *cobra.Command { return reportcmd.NewCmdReport(ios, nil) },
	versioncmd.NewCmdVersion,
	func(ios *iostreams.IOStreams) *cobra.Command { return flashcmd.NewCmdFlash(ios, nil) },
}

// Run executes provkit with args and returns the process exit code. Errors are printed to stderr
// here and nowhere else.
func Run(ctx context.Context, ios *iostreams.IOStreams, args []string) int {
	cmd := NewCmdRoot(ios)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return cmdutil.ExitOK
	}
	if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w: %w", context.Canceled, err)
	}
	if !cmdutil.IsSilent(err) {
		fmt.Fprintf(ios.ErrOut, "provkit: %s\n", termtext.VisibleLines(message(ctx, err)))
	}
	return cmdutil.ExitCode(err)
}

// message is err as the user reads it: after Ctrl-C or SIGTERM, "interrupted" rather than Go's
// "context canceled".
func message(ctx context.Context, err error) string {
	msg := err.Error()
	if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
		return msg
	}
	canceled := context.Canceled.Error()
	msg = strings.TrimPrefix(strings.TrimSuffix(msg, ": "+canceled), canceled+": ")
	switch {
	case msg == canceled:
		return "interrupted"
	case strings.Contains(msg, "interrupted"):
		return msg
	}
	return "interrupted: " + msg
}
