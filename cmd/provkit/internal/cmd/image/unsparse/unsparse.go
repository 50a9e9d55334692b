package unsparse

import (
	"path/filepath"

	"context"
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/safeopen"
	"golang.org/x/sys/unix"
	"os"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmd/image/sparse"
	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	simg "github.com/provkit/provkit/firmware/sparse"
	"github.com/provkit/provkit/internal/atomicfile"
)

// Options holds what "image unsparse" needs.
type Options struct {
	IO     *iostreams.IOStreams
	Sparse string
	Out    string
	JSON   bool
	Force  bool
}

// NewCmdUnsparse returns the command. runF replaces unsparseRun in tests.
func NewCmdUnsparse(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "unsparse <sparse-image> <raw-image>",
		Short: "Expand an Android sparse image to a raw image (like simg2img)",
		Long: `Expand an Android sparse image to the raw image it describes.

Every chunk is checked (sizes, block counts, CRC32 chunks); DONT_CARE chunks become holes in
the output file. The output is written to a temporary file and renamed into place only when
complete, so a corrupt input never leaves a half-written <raw-image>. An existing <raw-image> is
replaced, but never the input itself, a directory or "-" (stdout: holes need a file).

With --json, stdout is one document with the fields of 'provkit image sparse --json'.

Example:
  provkit image unsparse system.simg system.img
  provkit image unsparse --json super.simg super.img` +
			cmdutil.ExitStatus(
				"0    the raw image was written",
				"1    error: not a sparse image, corrupt input, or unwritable output",
				"2    usage: bad flags or arguments (<raw-image> is the input, a directory or -)",
				"130  interrupted (nothing is left at <raw-image>)"),
		Args: cmdutil.ExactArgs(2, "<sparse-image> <raw-image>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Sparse, opts.Out = args[0], args[1]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return unsparseRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "expand even when the output's file system seems too small")
	return cmd
}

func unsparseRun(ctx context.Context, opts *Options) error {
	in, err := safeopen.OpenImage(opts.Sparse)
	if err != nil {
		return fmt.Errorf("opening sparse image: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("reading sparse image %s: %w", opts.Sparse, err)
	}
	if err := sparse.CheckOutput(st, opts.Sparse, opts.Out, "<raw-image>"); err != nil {
		return err
	}
	im, err := simg.Open(sparse.ReaderAtContext(ctx, in), st.Size())
	if err != nil {
		if errors.Is(err, simg.ErrNotSparse) {
			return fmt.Errorf("reading %s: %w; it may already be a raw image", opts.Sparse, err)
		}
		return fmt.Errorf("reading sparse image %s: %w", opts.Sparse, err)
	}
	if need := im.DataBytes(); !opts.Force {
		if avail, err := freeSpace(opts.Out); err == nil && need > avail {
			return fmt.Errorf("expanding %s needs %d bytes (%s) of data but the file system of %s has %d bytes free; nothing was written (use --force to try anyway)", opts.Sparse, need, human(need), opts.Out, avail)
		}
	}
	err = atomicfile.Write(opts.Out, 0o644, func(f *os.File) error {
		if err := im.ExpandContext(ctx, f); err != nil {
			return fmt.Errorf("expanding %s to %s: %w", opts.Sparse, opts.Out, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return sparse.Report(opts.IO, opts.JSON, opts.Sparse, opts.Out, im, st.Size())
}

// freeSpace returns the bytes available to this user on the file system that will hold path.
func freeSpace(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
