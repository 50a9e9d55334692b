package apk

import (
	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmd/apk/inspect"
	"github.com/provkit/provkit/cmd/provkit/internal/cmd/apk/verify"
	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
)

// NewCmdAPK returns "provkit apk".
func NewCmdAPK(ios *iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apk <command>",
		Short: "Verify and inspect signed APKs",
		Long: `Verify APK signatures (JAR v1, APK Signature Schemes v2, v3, v3.1, v4) with the rules of
Google's apksig, and read an APK's package facts.` + cmdutil.ExitStatus(
			"0    ok",
			"1    error: a file could not be read",
			"2    usage: bad flags or arguments",
			"4    an APK does not verify, or fails the policy"),
		Example: `  provkit apk verify app.apk
  provkit apk verify --json a.apk b.apk
  provkit apk verify --policy policy.yaml messenger.apk
  provkit apk inspect --json app.apk`,
	}
	cmdutil.GroupCommand(cmd)
	cmd.AddCommand(verify.NewCmdVerify(ios, nil))
	cmd.AddCommand(inspect.NewCmdInspect(ios, nil))
	return cmd
}
