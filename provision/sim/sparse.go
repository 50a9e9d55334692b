package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/provkit/provkit/firmware/sparse"
)

// ErrBadSparse is wrapped by errors about malformed sparse images sent to fastboot flash.
var ErrBadSparse = sparse.ErrCorrupt

// IsSparse reports whether b starts with the Android sparse image magic.
func IsSparse(b []byte) bool {
	return len(b) >= 4 && binary.LittleEndian.Uint32(b) == sparse.Magic
}

// applySparse writes the sparse image in r (size bytes) into dst, a partition of partSize bytes,
// chunk by chunk as a bootloader does: raw chunks are copied, fill chunks repeat their 4-byte value,
// don't-care chunks leave the partition untouched. firmware/sparse validates the whole chunk index
// before the first write, so a malformed image leaves the partition as it was.
func applySparse(dst io.WriterAt, partSize int64, r io.ReaderAt, size int64) error {
	im, err := sparse.Open(r, size)
	if err != nil {
		if !errors.Is(err, ErrBadSparse) {
			err = fmt.Errorf("%w: %w", ErrBadSparse, err)
		}
		return fmt.Errorf("reading the sparse image: %w", err)
	}
	if im.Size() > partSize {
		return fmt.Errorf("sparse image of %d bytes does not fit the %d-byte partition: %w", im.Size(), partSize, ErrBadSparse)
	}
	bs := int64(im.Header().BlockSize)
	buf := make([]byte, max(min(1<<20, im.Size()), 4))
	for _, c := range im.Chunks() {
		outOff, n := int64(c.StartBlock)*bs, int64(c.Blocks)*bs
		switch c.Type {
		case sparse.ChunkRaw:
			for done := int64(0); done < n; {
				k := min(int64(len(buf)), n-done)
				if _, err := r.ReadAt(buf[:k], c.DataOffset+done); err != nil {
					return fmt.Errorf("reading sparse raw chunk %d at offset %d: %w", c.Index, c.DataOffset+done, err)
				}
				if _, err := dst.WriteAt(buf[:k], outOff+done); err != nil {
					return fmt.Errorf("writing sparse raw chunk %d at partition offset %d: %w", c.Index, outOff+done, err)
				}
				done += k
			}
		case sparse.ChunkFill:
			fill := buf[:min(int64(len(buf)), n)&^3]
			for j := 0; j < len(fill); j += 4 {
				binary.LittleEndian.PutUint32(fill[j:], c.Value)
			}
			for done := int64(0); done < n; {
				k := min(int64(len(fill)), n-done)
				if _, err := dst.WriteAt(fill[:k], outOff+done); err != nil {
					return fmt.Errorf("writing sparse fill chunk %d at partition offset %d: %w", c.Index, outOff+done, err)
				}
				done += k
			}
		}
	}
	return nil
}
