package fastboot

import (
	"context"
	"fmt"
	"io"
)

// FlashOptions tune Flash.
type FlashOptions struct {
	// MaxDownload overrides the device's max-download-size (0: ask the device).
	MaxDownload int64
	// BlockSize is the block size used to describe a raw image that must be split (default 4096).
	BlockSize uint32
	// OnPiece, if set, is told before each download: piece i of n, its size in bytes.
	OnPiece func(i, n int, size int64)
}

// Flash writes the image (raw or sparse, read through r, size bytes) to partition. An image larger
// than the device's max-download-size is sent as several sparse images, each written by its own
// flash command, as the fastboot program does.
func (c *Client) Flash(ctx context.Context, partition string, r io.ReaderAt, size int64, opts FlashOptions) error {
	if err := checkName(partition); err != nil {
		return err
	}
	limit := opts.MaxDownload
	if limit == 0 {
		var err error
		if limit, err = c.MaxDownloadSize(ctx); err != nil {
			return fmt.Errorf("flashing %s on %s: %w", partition, c.addr, err)
		}
	}
	if limit <= 0 || size <= limit {
		if err := c.Download(ctx, io.NewSectionReader(r, 0, size), size); err != nil {
			return fmt.Errorf("flashing %s: %w", partition, err)
		}
		return c.FlashDownloaded(ctx, partition)
	}
	var devErr error // an error from the device, as opposed to one from reading the image
	err := SplitImage(r, size, limit, opts.BlockSize, func(i, n int, psize int64, piece io.Reader) error {
		if opts.OnPiece != nil {
			opts.OnPiece(i, n, psize)
		}
		if err := c.Download(ctx, piece, psize); err != nil {
			devErr = fmt.Errorf("flashing %s: sparse piece %d of %d: %w", partition, i+1, n, err)
			return devErr
		}
		if err := c.FlashDownloaded(ctx, partition); err != nil {
			devErr = fmt.Errorf("sparse piece %d of %d: %w", i+1, n, err)
			return devErr
		}
		return nil
	})
	if devErr != nil {
		return devErr
	}
	if err != nil {
		return fmt.Errorf("flashing %s on %s: splitting the image: %w", partition, c.addr, err)
	}
	return nil
}

// SplitImage cuts an image (raw or sparse) into the sparse pieces of at most limit bytes that
// Flash sends, calling emit for piece i of n with its size and a reader of its bytes. It is exported for tools and tests that
// check the split against the reference simg2img.
func SplitImage(r io.ReaderAt, size, limit int64, blockSize uint32, emit func(i, n int, size int64, piece io.Reader) error) error {
	if blockSize == 0 {
		blockSize = 4096
	}
	src, err := newChunkSource(r, size, blockSize)
	if err != nil {
		return err
	}
	pieces, err := planPieces(src, limit)
	if err != nil {
		return err
	}
	for i, p := range pieces {
		n, err := writePiece(nil, r, size, blockSize, p)
		if err != nil {
			return err
		}
		pr, pw := io.Pipe()
		go func() {
			_, err := writePiece(pw, r, size, blockSize, p)
			pw.CloseWithError(err)
		}()
		err = emit(i, len(pieces), n, pr)
		pr.CloseWithError(io.ErrClosedPipe)
		if err != nil {
			return err
		}
	}
	return nil
}
