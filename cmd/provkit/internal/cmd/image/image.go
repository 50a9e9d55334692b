package image

import (
	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmd/image/sparse"
	"github.com/provkit/provkit/cmd/provkit/internal/cmd/image/unsparse"
	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
)

// subcommands lists the constructors of the image subcommands, one line each.
var subcommands = []func(*iostreams.IOStreams) *cobra.Command{
	func(ios *iostreams.IOStreams) *cobra.Command { return sparse.NewCmdSparse(ios, nil) },
	func(ios *iostreams.IOStreams) *cobra.Command { return unsparse.NewCmdUnsparse(ios, nil) },
}

// NewCmdImage returns the "image" command group.
func NewCmdImage(ios *iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image <command>",
		Short: "Read and convert Android firmware images offline",
		Long: `Read and convert Android firmware images without root, loop mounts or expanding them to disk.` +
			cmdutil.ExitStatus(
				"0    ok",
				"1    error: unreadable or corrupt image",
				"2    usage: bad flags or arguments"),
	}
	cmdutil.GroupCommand(cmd)
	for _, add := range subcommands {
		cmd.AddCommand(add(ios))
	}
	return cmd
}
