package imagepatch

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/provkit/provkit/firmware/image"
	"github.com/provkit/provkit/firmware/sparse"
)

// A sparse super.img and a sparse vbmeta image are patched as raw images: the super image is
// expanded (every CRC32 chunk checked) into the output's temporary directory under its own name
// the first time a logical partition is written into it, a vbmeta image is re-signed raw, and
// resparse then writes each of them back sparse with the input's block size.

// isSparseSuperChild reports whether p is a logical partition of a sparse super image file
// ("super.img!product_a" read through sparse, then super).
func isSparseSuperChild(p *image.Partition) bool {
	return len(p.Layers) == 2 && p.Layers[0] == "sparse" && p.Layers[1] == "super" && strings.Count(p.Source, "!") == 1
}

// sparseBlockSize returns the block size of the sparse image at path, or 0 when the file is not
// a sparse image.
func sparseBlockSize(path string) (uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var h [28]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return 0, nil // too short to be sparse
	}
	if binary.LittleEndian.Uint32(h[0:]) != sparse.Magic {
		return 0, nil
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	sim, err := sparse.Open(f, st.Size())
	if err != nil {
		return 0, fmt.Errorf("reading sparse image %s: %w", path, err)
	}
	return sim.Header().BlockSize, nil
}

// copyOrExpand copies src to dst, expanding it when it is a sparse image (every CRC32 chunk
// checked on the way).
func copyOrExpand(ctx context.Context, src, dst string) error {
	bs, err := sparseBlockSize(src)
	if err != nil {
		return err
	}
	if bs == 0 {
		return copyFile(ctx, src, dst)
	}
	s, err := openSparse(ctx, src, filepath.Dir(dst), false)
	if err != nil {
		return err
	}
	if err := os.Rename(s.raw.Name(), dst); err != nil {
		s.close()
		return err
	}
	return s.raw.Close()
}

// checkSparseSupers reads every sparse super image that holds a target through once, checking
// its chunk index and CRC32 chunks, so a dry run refuses what the real run would.
func checkSparseSupers(ctx context.Context, input string, targets map[string]*image.Partition) error {
	seen := map[string]bool{}
	for _, p := range targets {
		if !isSparseSuperChild(p) {
			continue
		}
		file, _, _ := strings.Cut(p.Source, "!")
		if seen[file] {
			continue
		}
		seen[file] = true
		if _, err := openSparse(ctx, filepath.Join(input, file), "", true); err != nil {
			return err
		}
	}
	return nil
}

// resparse writes back sparse every changed file of the output (tmp) whose input is a sparse
// image but which was written raw (a super image, a vbmeta image), with the input's block size,
// and marks its report entries Sparse.
func resparse(ctx context.Context, input, tmp string, rep *Report) error {
	done := map[string]bool{}
	for i := range rep.Partitions {
		file, _, _ := strings.Cut(rep.Partitions[i].File, "!")
		if done[file] {
			rep.Partitions[i].Sparse = true
			continue
		}
		bs, err := sparseBlockSize(filepath.Join(input, file))
		if err != nil {
			return err
		}
		if bs == 0 {
			continue
		}
		rep.Partitions[i].Sparse = true
		out := filepath.Join(tmp, file)
		obs, err := sparseBlockSize(out)
		if err != nil {
			return err
		}
		if obs != 0 { // a partition image file: already written sparse
			continue
		}
		done[file] = true
		if err := resparseFile(ctx, out, bs); err != nil {
			return fmt.Errorf("writing %s as a sparse image: %w", file, err)
		}
	}
	return nil
}

// resparseFile replaces the raw image path with a sparse image of blockSize blocks, padding it
// with zeros to a whole number of blocks first.
func resparseFile(ctx context.Context, path string, blockSize uint32) error {
	raw, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer raw.Close()
	st, err := raw.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if r := size % int64(blockSize); r != 0 {
		size += int64(blockSize) - r
		if err := raw.Truncate(size); err != nil {
			return err
		}
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".sparse-out")
	if err := writeSparse(ctx, tmp, raw, size, blockSize); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
