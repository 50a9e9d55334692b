package image

import (
	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmd/image/audit"
	"github.com/provkit/provkit/cmd/provkit/internal/cmd/image/cat"
	"github.com/provkit/provkit/cmd/provkit/internal/cmd/image/info"
	"github.com/provkit/provkit/cmd/provkit/internal/cmd/image/ls"
	imagepatch "github.com/provkit/provkit/cmd/provkit/internal/cmd/image/patch"
	"github.com/provkit/provkit/cmd/provkit/internal/cmd/image/sparse"
	"github.com/provkit/provkit/cmd/provkit/internal/cmd/image/unsparse"
	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
)

// subcommands lists the constructors of the image subcommands, one line each.
var subcommands = []func(*iostreams.IOStreams) *cobra.Command{
	func(ios *iostreams.IOStreams) *cobra.Command { return sparse.NewCmdSparse(ios, nil) },
	func(ios *iostreams.IOStreams) *cobra.Command { return unsparse.NewCmdUnsparse(ios, nil) },
	func(ios *iostreams.IOStreams) *cobra.Command { return info.NewCmdInfo(ios, nil) },
	func(ios *iostreams.IOStreams) *cobra.Command { return ls.NewCmdLs(ios, nil) },
	func(ios *iostreams.IOStreams) *cobra.Command { return cat.NewCmdCat(ios, nil) },
	func(ios *iostreams.IOStreams) *cobra.Command { return audit.NewCmdAudit(ios, nil) },
	func(ios *iostreams.IOStreams) *cobra.Command { return imagepatch.NewCmdPatch(ios, nil) },
}

// NewCmdImage returns the "image" command group.
func NewCmdImage(ios *iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image <command>",
		Short: "Read, convert and audit Android firmware images offline",
		Long: `Read, convert and audit Android firmware images without root, loop mounts or expanding them
to disk: partition images (raw or sparse, ext4 or EROFS), super images, factory and image zips,
OTA zips and payload.bin, vbmeta and boot images, or a directory of partition images.` +
			cmdutil.ExitStatus(
				"0    ok (audit: compliant)",
				"1    error: unreadable or corrupt image",
				"2    usage: bad flags or arguments",
				"4    audit: not compliant"),
		Example: `  provkit image info factory-image.zip
  provkit image ls super.img /system/priv-app
  provkit image cat system.img /system/build.prop
  provkit image audit --policy policy.yaml --json images/
  provkit image unsparse system.img system.raw`,
	}
	cmdutil.GroupCommand(cmd)
	for _, add := range subcommands {
		cmd.AddCommand(add(ios))
	}
	return cmd
}
