package cat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/firmware/image"
)

// Options holds what "image cat" needs.
type Options struct {
	IO        *iostreams.IOStreams
	Image     string
	Path      string
	Partition string
	Slot      string
}

// NewCmdCat returns the command. runF replaces catRun in tests.
func NewCmdCat(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "cat <image> <path>",
		Short: "Write a file from inside a firmware image to stdout",
		Long: `Write the bytes of a file inside a firmware image to stdout, reading only the blocks it
occupies (no mount, no root, nothing expanded to disk). Symbolic links are followed inside the
image.

<path> is a device path, /system/app/X/X.apk or /product/etc/build.prop (placed as the device
mounts the partitions, system-as-root images included), or partition:/path for a partition's own
file system (system:/system/build.prop).

Example:
  provkit image cat system.img /system/build.prop
  provkit image cat super.img /product/app/Max/Max.apk > Max.apk
  provkit image cat image-oriole.zip vendor:/build.prop` +
			cmdutil.ExitStatus(
				"0    written",
				"1    error: unreadable or corrupt image, no such file, a directory",
				"2    usage: bad flags or arguments"),
		Args: cmdutil.ExactArgs(2, "<image> <path>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Image, opts.Path = args[0], args[1]
			if opts.Slot != "" && opts.Slot != "a" && opts.Slot != "b" {
				return cmdutil.FlagErrorf("--slot %q: want a or b", opts.Slot)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return image.Explain(catRun(cmd.Context(), opts))
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Partition, "partition", "", "partition `<name>` of a single partition image (default: from its file name)")
	f.StringVar(&opts.Slot, "slot", "", "A/B slot `{a|b}` (default: the slot whose partitions hold data)")
	return cmd
}

func catRun(ctx context.Context, opts *Options) error {
	im, err := image.Open(ctx, opts.Image, &image.Options{Partition: opts.Partition, Slot: opts.Slot})
	if err != nil {
		return err
	}
	defer im.Close()
	_, fsys, inner, err := im.Resolve(opts.Path)
	if err != nil {
		return err
	}
	f, err := fsys.Open(inner)
	if err != nil {
		// The file system names the path inside the partition ("open nope"); the message names
		// the whole path asked for instead.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		// Say when the path is a symbolic link whose target is not in the image.
		if l, ok := fsys.(fs.ReadLinkFS); ok && errors.Is(err, fs.ErrNotExist) {
			if t, lerr := l.ReadLink(inner); lerr == nil {
				return fmt.Errorf("reading %s in %s: a symbolic link to %q, which is not in the image: %w", opts.Path, opts.Image, t, err)
			}
		}
		return fmt.Errorf("reading %s in %s: %w", opts.Path, opts.Image, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading %s in %s: %w", opts.Path, opts.Image, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("reading %s in %s: is a directory; list it with 'provkit image ls'", opts.Path, opts.Image)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("reading %s in %s: not a regular file (%s)", opts.Path, opts.Image, fi.Mode().Type())
	}
	n, err := io.Copy(opts.IO.Out, f.(io.Reader))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("reading %s in %s at offset %d: %w", opts.Path, opts.Image, n, err)
	}
	if n != fi.Size() {
		return fmt.Errorf("reading %s in %s: %d bytes read, the file has %d: %w", opts.Path, opts.Image, n, fi.Size(), fs.ErrInvalid)
	}
	return nil
}
