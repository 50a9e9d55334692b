package keys

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/manifests/evidence"
)

// Options are the inputs of "provkit keys generate".
type Options struct {
	IO   *iostreams.IOStreams
	Out  string
	JSON bool
}

// NewCmdKeys returns "provkit keys".
func NewCmdKeys(ios *iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys <command>",
		Short: "Make the key pair that signs attestations",
		Long: `Make and manage the Ed25519 keys that sign provkit's attestations (--attest).` + cmdutil.ExitStatus(
			"0    ok",
			"1    error: the keys could not be written",
			"2    usage: bad flags or arguments"),
		Example: `  provkit keys generate --out ~/.config/provkit/keys`,
	}
	cmdutil.GroupCommand(cmd)
	cmd.AddCommand(NewCmdGenerate(ios, nil))
	return cmd
}

// NewCmdGenerate returns "provkit keys generate". runF replaces generateRun in tests.
func NewCmdGenerate(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "generate --out <dir> [--json]",
		Short: "Make an Ed25519 key pair: <dir>/provkit.key (private) and <dir>/provkit.pub",
		Long: `Make an Ed25519 key pair for signing attestations:

  <dir>/provkit.key  the private key, PKCS#8 PEM, mode 0600 (provkit refuses to use a private key
                     that its group or others can read, as ssh does)
  <dir>/provkit.pub  the public key, SubjectPublicKeyInfo PEM: give it to whoever verifies

The key id printed is the SHA-256 of the public key (DER); attestations name their signer by it.
Existing files are never overwritten.` + cmdutil.ExitStatus(
			"0    the keys were written",
			"1    error: <dir> is not writable, or already holds provkit.key or provkit.pub",
			"2    usage: bad flags or arguments"),
		Example: `  provkit keys generate --out lab-keys
  provkit image audit --policy policy.yaml --attest audit.dsse.json --key lab-keys/provkit.key firmware.zip
  provkit attest verify --key lab-keys/provkit.pub audit.dsse.json firmware.zip`,
		Args: cmdutil.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if opts.Out == "" {
				return cmdutil.FlagErrorf("--out <dir> is required; see '%s --help'", c.CommandPath())
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return generateRun(c.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Out, "out", "", "`<dir>` to write provkit.key and provkit.pub into (created if missing)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print {privateKey, publicKey, keyId} as JSON")
	return cmd
}

func generateRun(_ context.Context, opts *Options) error {
	id, err := evidence.GenerateKeys(opts.Out)
	if err != nil {
		return err
	}
	priv, pub := filepath.Join(opts.Out, evidence.PrivateKeyFile), filepath.Join(opts.Out, evidence.PublicKeyFile)
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]string{"privateKey": priv, "publicKey": pub, "keyId": id})
	}
	fmt.Fprintf(opts.IO.Out, "private key: %s (keep it secret; mode 0600)\npublic key:  %s\nkey id:      %s\n", priv, pub, id)
	return nil
}
