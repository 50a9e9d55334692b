package imagepatch

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/provkit/provkit/firmware/image"
	"github.com/provkit/provkit/firmware/sparse"
)

// isSparseFile reports whether the partition is a partition image file stored as an Android
// sparse image (and nothing else: not inside a zip, not a logical partition of a sparse super).
func isSparseFile(p *image.Partition) bool {
	return len(p.Layers) == 1 && p.Layers[0] == "sparse" && !strings.Contains(p.Source, "!")
}

// sparseInput is a sparse partition image file and, unless it is a dry run, its expansion in the
// output's temporary directory, which the patch reads instead of the sparse file.
type sparseInput struct {
	blockSize uint32
	size      int64    // expanded size
	raw       *os.File // the expanded image (nil for a dry run)
}

func (s *sparseInput) close() {
	if s.raw != nil {
		s.raw.Close()
		os.Remove(s.raw.Name())
	}
}

// openSparse checks the sparse image src and, unless dryRun, expands it into tmp. Every CRC32
// chunk is checked on the way (a dry run reads the image through once to check them), so a
// corrupt image is refused before anything is written.
func openSparse(ctx context.Context, src, tmp string, dryRun bool) (*sparseInput, error) {
	f, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	sim, err := sparse.Open(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("reading sparse image %s: %w", src, err)
	}
	s := &sparseInput{blockSize: sim.Header().BlockSize, size: sim.Size()}
	if dryRun {
		if _, err := sim.WriteTo(ctxWriter{ctx: ctx, w: io.Discard}); err != nil {
			return nil, fmt.Errorf("reading sparse image %s: %w", src, err)
		}
		return s, nil
	}
	raw, err := os.CreateTemp(tmp, "."+filepath.Base(src)+".raw-in-")
	if err != nil {
		return nil, err
	}
	s.raw = raw
	if err := sim.ExpandContext(ctx, raw); err != nil {
		s.close()
		return nil, fmt.Errorf("expanding sparse image %s: %w", src, err)
	}
	return s, nil
}

// writeSparse writes the first size bytes of r to dst as a sparse image of blockSize blocks:
// RAW chunks for data and FILL chunks for blocks of one repeated 32-bit word, zeros included.
// Zeros are not written as DONT_CARE: fastboot leaves DONT_CARE blocks as they were on the
// device, and dm-verity hashes every block of the file system, free ones included.
func writeSparse(ctx context.Context, dst string, r io.ReaderAt, size int64, blockSize uint32) error {
	if size%int64(blockSize) != 0 {
		return fmt.Errorf("%w: the new image is %d bytes, not a whole number of the input's %d-byte sparse blocks (its AVB footer must stay at the end)", ErrUnsupported, size, blockSize)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = sparse.Write(ctxWriter{ctx: ctx, w: out}, ctxReaderAt{ctx: ctx, r: r}, size, blockSize, sparse.WriteOptions{})
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

// ctxWriter fails every write once ctx is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// ctxReaderAt fails every read once ctx is done.
type ctxReaderAt struct {
	ctx context.Context
	r   io.ReaderAt
}

func (c ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.ReadAt(p, off)
}
