package attestflag

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/manifests/evidence"
)

// Flags holds --attest and --key.
type Flags struct {
	Path    string
	KeyPath string
	key     ed25519.PrivateKey
}

// Register adds --attest and --key to cmd.
func (f *Flags) Register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.Path, "attest", "", "write a signed in-toto attestation of the verdict to `<file>` (needs --key)")
	cmd.Flags().StringVar(&f.KeyPath, "key", "", "Ed25519 private `<key>` to sign the attestation with (see 'provkit keys generate')")
}

// Enabled reports whether an attestation was asked for.
func (f *Flags) Enabled() bool { return f.Path != "" }

// Validate checks the flags together and loads the key: a usage error when one is given without
// the other, an error when the key cannot be used.
func (f *Flags) Validate() error {
	switch {
	case f.Path == "" && f.KeyPath == "":
		return nil
	case f.Path == "":
		return cmdutil.FlagErrorf("--key is only used with --attest <file>")
	case f.KeyPath == "":
		return cmdutil.FlagErrorf("--attest needs --key <private key>; make one with 'provkit keys generate --out <dir>'")
	}
	k, err := evidence.LoadPrivateKey(f.KeyPath)
	if err != nil {
		return err
	}
	f.key = k
	return nil
}

// Write signs st (its predicate's Result set from result, the command's JSON document) and writes
// it, then says so on errOut.
func (f *Flags) Write(errOut io.Writer, st *evidence.Statement, result any) error {
	if !f.Enabled() {
		return nil
	}
	if f.key == nil {
		if err := f.Validate(); err != nil {
			return err
		}
	}
	if result != nil && st.Predicate != nil {
		raw, err := json.Marshal(result)
		if err != nil {
			return fmt.Errorf("encoding the attested result: %w", err)
		}
		st.Predicate.Result = raw
	}
	env, err := evidence.Sign(st, f.key)
	if err != nil {
		return err
	}
	if err := evidence.WriteEnvelope(f.Path, env); err != nil {
		return err
	}
	fmt.Fprintf(errOut, "provkit: attestation written to %s (key %s)\n", f.Path, env.Signatures[0].KeyID)
	return nil
}
