package line

import (
	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
)

// NewCmdLine returns "provkit line".
func NewCmdLine(ios *iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "line <command>",
		Short: "Run an unattended factory station, and watch the plant's stations live",
		Long: `A station watches for phones being plugged in, runs each through its steps (flash, boot,
policy check), records every step and verdict in the ledger, and turns the light green or red.
The dashboard shows every station writing to the same ledger.` + cmdutil.ExitStatus(
			"0    ok",
			"1    error",
			"2    usage: bad flags or arguments",
			"130  interrupted"),
		Example: `  provkit line run --policy policy.yaml --station bench-3
  provkit line run --policy policy.yaml --firmware images/ --station line1-st2 --ledger postgres://provkit@db/plant
  provkit line serve --ledger postgres://provkit@db/plant --listen 127.0.0.1:8080`,
	}
	cmdutil.GroupCommand(cmd)
	cmd.AddCommand(NewCmdRun(ios, nil))
	cmd.AddCommand(NewCmdServe(ios, nil))
	return cmd
}
