package super

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrNoRoom means new contents are larger than the logical partition that should hold them.
var ErrNoRoom = errors.New("logical partition too small")

// WriteInPlace writes the size bytes of r into the logical partition name of the selected slot, at
// the physical sectors its extents map (w is a copy of the super image the Image was opened from),
// and zeroes the rest of the partition. The LP metadata does not change. It fails with ErrNoRoom
// when size exceeds the partition (growing or moving a partition means rewriting the metadata,
// which this package does not do), and when an extent lies on another block device.
func (im *Image) WriteInPlace(ctx context.Context, w io.WriterAt, name string, r io.ReaderAt, size int64) error {
	p, ok := im.Partition(name)
	if !ok {
		return fmt.Errorf("writing logical partition %q: %w", name, ErrNoPartition)
	}
	if im.Layout != LayoutFull {
		return fmt.Errorf("writing logical partition %q: a %s super image holds no partition data", name, im.Layout)
	}
	if size > p.Size {
		return fmt.Errorf("writing logical partition %q: %d bytes, the partition holds %d: %w", name, size, p.Size, ErrNoRoom)
	}
	buf := make([]byte, 1<<20)
	var logical int64
	for _, e := range p.Extents {
		length := int64(e.NumSectors) * SectorSize
		if e.TargetType != TargetLinear || e.TargetSource != 0 {
			if logical < size {
				return fmt.Errorf("writing logical partition %q: an extent at logical byte %d is not a linear extent of the super device", name, logical)
			}
			logical += length
			continue
		}
		phys := int64(e.TargetData) * SectorSize
		for done := int64(0); done < length; {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := min(int64(len(buf)), length-done)
			chunk := buf[:n]
			src := logical + done
			clear(chunk)
			if src < size {
				k := min(n, size-src)
				if got, err := r.ReadAt(chunk[:k], src); int64(got) < k {
					if err == nil || err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					return fmt.Errorf("writing logical partition %q: reading its new contents at %d: %w", name, src, err)
				}
			}
			if _, err := w.WriteAt(chunk, phys+done); err != nil {
				return fmt.Errorf("writing logical partition %q at super offset %d: %w", name, phys+done, err)
			}
			done += n
		}
		logical += length
	}
	return nil
}
