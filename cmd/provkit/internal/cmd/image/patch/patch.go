package patch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	apkpatch "github.com/provkit/provkit/cmd/provkit/internal/cmd/patch"
	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/firmware/avb"
	"github.com/provkit/provkit/internal/termtext"
	"github.com/provkit/provkit/manifests/aosp"
	"github.com/provkit/provkit/manifests/imagepatch"
	"github.com/provkit/provkit/manifests/policy"
)

// Options are the command's flags and arguments.
type Options struct {
	IO         *iostreams.IOStreams
	Firmware   string
	PolicyPath string
	KeyPath    string
	Algorithm  string
	Out        string
	DryRun     bool
	JSON       bool
	Inspector  aosp.Inspector // nil: the one `provkit patch` uses
}

// NewCmdPatch builds the command; runF replaces the run function in tests.
func NewCmdPatch(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "patch --policy <file> --avb-key <pem> [--avb-algorithm <name>] <firmware> --out {<dir>|<file.zip>|<file.img>} [--dry-run] [--json]",
		Short: "Put a policy's apps into built firmware and re-sign it",
		Long: `Make built firmware compliant without rebuilding Android: each app of the policy (its APK,
verified and pinned first exactly as 'provkit patch' does) goes to
/<partition>/app/<Name>/<Name>.apk (priv-app/ when privileged), with the privapp-permissions,
default-permissions and sysconfig XMLs 'provkit patch' writes, into the same partition's etc/.
New files get their SELinux label from the image's own file_contexts, and their mode, owner
and capabilities from its fs_config files (else AOSP's defaults: 0644/0755, root). Every
other file keeps its bytes, mode, owner, xattrs and time.

The changed partition's file system is written anew (EROFS: compressed files keep their
compressed clusters, copied as they are, not recompressed) or, for ext4, the new files are
added in place to a copy of it (grown, as resize2fs grows it, when it has no room; a file that
is there is replaced; refused when a parent directory is hash-indexed), its AVB hashtree (and
FEC, when it had one) recomputed with the same algorithm and salt, and every vbmeta image describing it, or chaining to a re-signed one, is re-signed
with --avb-key, keeping every other descriptor, property and rollback index. A locked
bootloader boots the result only if --avb-key is the key it trusts
(the OEM's): the report prints the new key's SHA-256.

<firmware> is a directory of partition images (product.img, vbmeta.img, super.img, ...), a
factory zip (with its nested image-<device>-<build>.zip), an image zip alone, or one image alone
(product.img, super.img: named for its partition; --out is then the patched image file, and no
vbmeta image is re-signed since none came with it). A partition
image file, super.img or vbmeta image may be raw or an Android sparse image (img2simg): a sparse
one is expanded into the temporary output, patched, and written back sparse under its name, with
its block size (FILL chunks for repeated words and zeros, RAW for the rest). A logical partition
of super.img is rewritten in its extents, and grown (LP metadata rewritten in every slot) when it
must, within its group.

A zip input with --out <file>.zip gives a zip of the same shape: the same entries in the same
order, names, compression methods, times, attributes and comments; unchanged entries copied
raw (not recompressed), changed images compressed with their entry's method, the nested image
zip rebuilt and stored as it was. A zip input with --out <dir> gives the patched image
directory (the image zip's members), which 'provkit flash' and 'provkit image audit' accept. A
directory input is written as a directory (a .zip --out is refused). The zip's image members are
unpacked next to --out first (names checked, sizes bounded, CRCs checked): that needs about the
image zip's uncompressed size in free space, plus the output. The input is never modified; the
output is written under a temporary name and renamed when complete; it must not exist.

--dry-run reports what would change and writes nothing. --json prints one JSON document
(apps, partitions with files, sizes and SHA-256 before and after, key digest). Without --json,
each long step (unpacking, writing a file system, its hash tree, re-signing, writing the zip)
is named on stderr as it starts.

Example:
  provkit image patch --policy policy.yaml --avb-key oem.pem images/ --out patched/
  provkit image patch --policy policy.yaml --avb-key oem.pem oriole-factory.zip --out patched.zip
  provkit image patch --policy policy.yaml --avb-key oem.pem product.img --out product-patched.img
  provkit image patch --policy policy.yaml --avb-key oem.pem --dry-run --json images/` +
			cmdutil.ExitStatus(
				"0    patched (or, with --dry-run, would patch)",
				"1    error: unreadable or corrupt input (zip, sparse image), unsupported layout, write failure",
				"2    usage: bad flags or arguments",
				"4    an APK fails the policy: nothing written"),
		Args: cmdutil.ExactArgs(1, "<firmware>"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Firmware = args[0]
			if opts.PolicyPath == "" || opts.KeyPath == "" {
				return cmdutil.FlagErrorf("--policy <file> and --avb-key <pem> are required; see '%s --help'", c.CommandPath())
			}
			if opts.Out == "" && !opts.DryRun {
				return cmdutil.FlagErrorf("--out {<dir>|<file.zip>|<file.img>} is required (or --dry-run)")
			}
			if opts.Algorithm != "" {
				if _, err := avb.AlgorithmByName(opts.Algorithm); err != nil {
					return cmdutil.FlagErrorf("--avb-algorithm: %v", err)
				}
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return patchRun(c.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.PolicyPath, "policy", "", "the preinstall policy `<file>` (YAML)")
	f.StringVar(&opts.KeyPath, "avb-key", "", "RSA private key `<pem>` to re-sign vbmeta with")
	f.StringVar(&opts.Algorithm, "avb-algorithm", "", "AVB algorithm `<name>` (default SHA256_RSA<key bits>)")
	f.StringVar(&opts.Out, "out", "", "output `{<dir>|<file.zip>|<file.img>}` (must not exist; a .zip only for a zip input, a file for a single image)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "report what would change, write nothing")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON document")
	return cmd
}

func patchRun(ctx context.Context, opts *Options) error {
	pol, err := policy.Load(opts.PolicyPath)
	if err != nil {
		return err
	}
	pem, err := os.ReadFile(opts.KeyPath)
	if err != nil {
		return fmt.Errorf("reading --avb-key: %w", err)
	}
	key, err := avb.ParsePrivateKeyPEM(pem)
	if err != nil {
		return fmt.Errorf("reading --avb-key %s: %w", opts.KeyPath, err)
	}
	signer, err := avb.NewSigner(key, opts.Algorithm)
	if err != nil {
		return &cmdutil.FlagError{Err: fmt.Errorf("--avb-key %s: %w", opts.KeyPath, err)}
	}
	insp := opts.Inspector
	if insp == nil {
		insp = apkpatch.NewInspector()
	}
	io := imagepatch.Options{Policy: pol, Input: opts.Firmware, Out: opts.Out, Signer: signer, Inspector: insp, DryRun: opts.DryRun}
	if !opts.JSON { // each long step on stderr as it starts, so a patch of gigabytes is seen to move
		io.Progress = func(step string) { fmt.Fprintf(opts.IO.ErrOut, "image patch: %s\n", termtext.Visible(step)) }
	}
	rep, err := imagepatch.Run(ctx, io)
	if rep != nil {
		if opts.JSON {
			enc := json.NewEncoder(opts.IO.Out)
			enc.SetIndent("", "  ")
			if perr := enc.Encode(rep); perr != nil {
				return perr
			}
		} else {
			printText(opts.IO.Out, rep)
		}
	}
	if errors.Is(err, imagepatch.ErrBlocked) {
		return cmdutil.NotCompliant(err)
	}
	return err
}

func printText(w io.Writer, r *imagepatch.Report) {
	v := termtext.Visible
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	for _, a := range r.Apps {
		p("App %s: %s -> %s", v(a.Package), v(a.APK), v(a.Path))
		for _, c := range a.Checks {
			state := "PASS"
			if !c.Pass {
				state = "FAIL"
			}
			p("  %s %-24s %s", state, c.Rule, v(c.Detail))
		}
	}
	for _, pt := range r.Partitions {
		p("Partition %s (%s): %s", v(pt.Name), v(pt.File), v(pt.Why))
		if pt.SizeAfter > 0 {
			p("  size      %d -> %d bytes", pt.SizeBefore, pt.SizeAfter)
			p("  sha256    %s -> %s", pt.SHA256Before, pt.SHA256After)
		}
		if pt.RootDigestAfter != "" {
			p("  hashtree  %s -> %s", pt.RootDigestBefore, pt.RootDigestAfter)
		}
		for _, f := range pt.Files {
			p("  + %s (%d bytes, %s, %d:%d, %s)", v(f.Path), f.Size, f.Mode, f.UID, f.GID, v(f.Label))
		}
		for _, d := range pt.Descriptors {
			p("  %s", v(d))
		}
	}
	for _, b := range r.Blockers {
		p("Blocked: %s", v(b))
	}
	for _, n := range r.Notes {
		p("Note: %s", v(n))
	}
	p("Signed with %s, key SHA-256 %s", r.Algorithm, r.KeySHA256)
	p("(a locked bootloader boots this firmware only if that key is its OEM key)")
	switch {
	case len(r.Blockers) > 0:
		p("Nothing written.")
	case r.DryRun:
		p("Dry run: nothing written.")
	default:
		p("Written: %s", v(r.Output))
	}
}
