package sparse

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/provkit/provkit/internal/safeopen"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	simg "github.com/provkit/provkit/firmware/sparse"
	"github.com/provkit/provkit/internal/atomicfile"
)

// Options holds what "image sparse" needs.
type Options struct {
	IO            *iostreams.IOStreams
	Raw           string
	Out           string
	BlockSize     int
	DontCareZeros bool
	CRC           bool
	JSON          bool
}

// NewCmdSparse returns the command. runF replaces sparseRun in tests.
func NewCmdSparse(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "sparse <raw-image> <sparse-image>",
		Short: "Convert a raw image to an Android sparse image (like img2simg)",
		Long: `Convert a raw image to an Android sparse image, the format fastboot flashes.

Blocks made of one repeated 32-bit word become FILL chunks, everything else RAW chunks: the
output is byte-identical to img2simg's for the same block size, and simg2img expands it back.
With --dont-care-zeros, zero blocks become DONT_CARE chunks (not stored, flashed as holes).
A raw image whose size is not a multiple of the block size is padded with zeros, as img2simg
does. The output is written to a temporary file and renamed into place only when complete; an
existing <sparse-image> is replaced, but never the input itself, a directory or "-" (stdout).

With --json, stdout is one document: input, output, blockSize, blocks, expandedSize, sparseSize,
chunks {RAW, FILL, DONT_CARE, CRC32: count of each type present}.

Example:
  provkit image sparse system.img system.simg
  provkit image sparse --block-size 1024 --crc vendor.img vendor.simg
  provkit image sparse --json system.img system.simg` +
			cmdutil.ExitStatus(
				"0    the sparse image was written",
				"1    error: unreadable input or unwritable output",
				"2    usage: bad flags or arguments (<sparse-image> is the input, a directory or -)",
				"130  interrupted (nothing is left at <sparse-image>)"),
		Args: cmdutil.ExactArgs(2, "<raw-image> <sparse-image>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Raw, opts.Out = args[0], args[1]
			if opts.BlockSize < 4 || opts.BlockSize%4 != 0 || opts.BlockSize > 1<<28 {
				return cmdutil.FlagErrorf("--block-size %d: must be a positive multiple of 4 (img2simg uses 4096)", opts.BlockSize)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return sparseRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.BlockSize, "block-size", 4096, "block size of the sparse image in `<bytes>`")
	cmd.Flags().BoolVar(&opts.DontCareZeros, "dont-care-zeros", false, "write zero blocks as DONT_CARE chunks instead of FILL")
	cmd.Flags().BoolVar(&opts.CRC, "crc", false, "append a CRC32 chunk")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	return cmd
}

// Result describes a sparse image: what both image sparse and image unsparse report.
type Result struct {
	Input        string         `json:"input"`
	Output       string         `json:"output"`
	BlockSize    uint32         `json:"blockSize"`
	Blocks       uint32         `json:"blocks"`
	ExpandedSize int64          `json:"expandedSize"`
	SparseSize   int64          `json:"sparseSize"`
	Chunks       map[string]int `json:"chunks"`
}

func sparseRun(ctx context.Context, opts *Options) error {
	in, err := safeopen.OpenImage(opts.Raw)
	if err != nil {
		return fmt.Errorf("opening raw image: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("reading raw image %s: %w", opts.Raw, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("reading raw image %s: not a regular file", opts.Raw)
	}
	if err := CheckOutput(st, opts.Raw, opts.Out, "<sparse-image>"); err != nil {
		return err
	}
	if simg.IsSparse(in) {
		return fmt.Errorf("%s is already an Android sparse image; use 'provkit image unsparse' to expand it", opts.Raw)
	}
	r := &ctxReaderAt{ctx: ctx, r: in}
	var size int64
	err = atomicfile.Write(opts.Out, 0o644, func(f *os.File) error {
		if err := simg.Write(f, r, st.Size(), uint32(opts.BlockSize), simg.WriteOptions{DontCareZeros: opts.DontCareZeros, CRC: opts.CRC}); err != nil {
			return fmt.Errorf("writing sparse image %s from %s: %w", opts.Out, opts.Raw, err)
		}
		off, err := f.Seek(0, io.SeekCurrent)
		size = off
		return err
	})
	if err != nil {
		return err
	}
	return report(opts.IO, opts.JSON, opts.Raw, opts.Out, opts.Out, size)
}

// CheckOutput refuses an output path that would destroy the input or cannot hold the result,
// before any work is done: "-" (the output is a file that is fsynced and renamed into place, never
// a stream), an existing directory, and the input file itself (also through a link). in is the
// input's FileInfo; what names the argument in messages.
func CheckOutput(in os.FileInfo, inPath, out, what string) error {
	if out == "-" {
		return cmdutil.FlagErrorf("%s %q: writing to stdout is not supported; give the path of the output file", what, out)
	}
	st, err := os.Stat(out)
	if err != nil {
		return nil // does not exist yet (or cannot be read: creating the temporary file says why)
	}
	if st.IsDir() {
		return cmdutil.FlagErrorf("%s %q is a directory; give the path of the output file", what, out)
	}
	if os.SameFile(in, st) {
		return cmdutil.FlagErrorf("%s %q is the input file %q: writing it would replace the input; choose another output file", what, out, inPath)
	}
	return nil
}

// report opens the sparse image at sparsePath and prints its summary.
func report(ios *iostreams.IOStreams, asJSON bool, input, output, sparsePath string, sparseSize int64) error {
	f, err := safeopen.Open(sparsePath)
	if err != nil {
		return fmt.Errorf("reopening %s: %w", sparsePath, err)
	}
	defer f.Close()
	im, err := simg.Open(f, sparseSize)
	if err != nil {
		return fmt.Errorf("reading back sparse image %s: %w", sparsePath, err)
	}
	return Report(ios, asJSON, input, output, im, sparseSize)
}

// Report prints the summary of the sparse image im, as text or JSON.
func Report(ios *iostreams.IOStreams, asJSON bool, input, output string, im *simg.Image, sparseSize int64) error {
	res := Result{Input: input, Output: output, BlockSize: im.Header().BlockSize, Blocks: im.Header().TotalBlocks,
		ExpandedSize: im.Size(), SparseSize: sparseSize, Chunks: map[string]int{}}
	for _, c := range im.Chunks() {
		res.Chunks[simg.TypeName(c.Type)]++
	}
	if asJSON {
		enc := json.NewEncoder(ios.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	_, err := fmt.Fprintf(ios.Out, "%s: %d blocks of %d bytes (%d bytes expanded, %d sparse); chunks: RAW %d, FILL %d, DONT_CARE %d, CRC32 %d\n",
		output, res.Blocks, res.BlockSize, res.ExpandedSize, res.SparseSize,
		res.Chunks["RAW"], res.Chunks["FILL"], res.Chunks["DONT_CARE"], res.Chunks["CRC32"])
	return err
}

// ReaderAtContext returns r, stopping reading once ctx is cancelled, so Ctrl-C interrupts a long
// conversion (sparse and unsparse).
func ReaderAtContext(ctx context.Context, r io.ReaderAt) io.ReaderAt {
	return &ctxReaderAt{ctx: ctx, r: r}
}

type ctxReaderAt struct {
	ctx context.Context
	r   io.ReaderAt
}

func (c *ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.ReadAt(p, off)
}
