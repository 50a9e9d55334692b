package super

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
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

// ErrSlotsDisagree means the metadata slots of an image differ, so one cannot be rewritten into all.
var ErrSlotsDisagree = errors.New("metadata slots differ")

// EncodeMetadata encodes md (header and tables, checksums computed) as the LP format stores one
// metadata copy.
func EncodeMetadata(md *Metadata) []byte {
	le := binary.LittleEndian
	var parts, exts, groups, devs []byte
	for _, p := range md.Partitions {
		rec := make([]byte, partitionSize)
		copy(rec[:36], p.Name)
		le.PutUint32(rec[36:], p.Attributes)
		le.PutUint32(rec[40:], uint32(len(exts)/extentSize))
		le.PutUint32(rec[44:], uint32(len(p.Extents)))
		le.PutUint32(rec[48:], p.GroupIndex)
		parts = append(parts, rec...)
		for _, e := range p.Extents {
			x := make([]byte, extentSize)
			le.PutUint64(x[0:], e.NumSectors)
			le.PutUint32(x[8:], e.TargetType)
			le.PutUint64(x[12:], e.TargetData)
			le.PutUint32(x[20:], e.TargetSource)
			exts = append(exts, x...)
		}
	}
	for _, g := range md.Groups {
		rec := make([]byte, groupSize)
		copy(rec[:36], g.Name)
		le.PutUint32(rec[36:], g.Flags)
		le.PutUint64(rec[40:], g.MaximumSize)
		groups = append(groups, rec...)
	}
	for _, d := range md.BlockDevices {
		rec := make([]byte, blockDevSize)
		le.PutUint64(rec[0:], d.FirstLogicalSector)
		le.PutUint32(rec[8:], d.Alignment)
		le.PutUint32(rec[12:], d.AlignmentOffset)
		le.PutUint64(rec[16:], d.Size)
		copy(rec[24:60], d.Name)
		le.PutUint32(rec[60:], d.Flags)
		devs = append(devs, rec...)
	}
	tables := append(append(append(append([]byte{}, parts...), exts...), groups...), devs...)
	hsize := headerV0Size
	if md.Header.Minor >= 2 {
		hsize = headerV2Size
	}
	h := make([]byte, hsize)
	le.PutUint32(h[0:], headerMagic)
	le.PutUint16(h[4:], md.Header.Major)
	le.PutUint16(h[6:], md.Header.Minor)
	le.PutUint32(h[8:], uint32(hsize))
	le.PutUint32(h[44:], uint32(len(tables)))
	ts := sha256.Sum256(tables)
	copy(h[48:80], ts[:])
	off := 0
	for i, t := range []struct {
		n, size int
	}{{len(parts), partitionSize}, {len(exts), extentSize}, {len(groups), groupSize}, {len(devs), blockDevSize}} {
		b := h[80+12*i:]
		le.PutUint32(b[0:], uint32(off))
		le.PutUint32(b[4:], uint32(t.n/t.size))
		le.PutUint32(b[8:], uint32(t.size))
		off += t.n
	}
	if md.Header.Minor >= 2 {
		le.PutUint32(h[128:], md.Header.Flags)
	}
	hs := sha256.Sum256(h)
	copy(h[12:44], hs[:])
	return append(h, tables...)
}

// Grow returns a copy of the selected slot's metadata in which logical partition name is at
// least newSize bytes: a linear extent is appended from the first free, aligned space of the super
// device. It fails when the partition's group would exceed its maximum size or the device has no
// free space large enough; it never moves or shrinks another partition.
func (im *Image) Grow(name string, newSize int64) (*Metadata, error) {
	md := im.Metadata
	for _, s := range im.Slots {
		if !s.Identical || s.PrimaryErr != nil {
			return nil, fmt.Errorf("growing %q: slot %d: primary and backup copies differ or do not read: %w", name, s.Slot, ErrSlotsDisagree)
		}
	}
	for i := 0; i < int(im.Geometry.MetadataSlotCount); i++ {
		other, err := im.ReadSlot(i)
		if err != nil {
			return nil, fmt.Errorf("growing %q: %w", name, err)
		}
		if !bytes.Equal(other.raw, md.raw) {
			return nil, fmt.Errorf("growing %q: slot %d differs from slot %d: %w", name, i, md.Slot, ErrSlotsDisagree)
		}
	}
	out := *md
	out.Partitions = make([]Partition, len(md.Partitions))
	idx := -1
	for i, p := range md.Partitions {
		out.Partitions[i] = p
		out.Partitions[i].Extents = append([]Extent(nil), p.Extents...)
		if p.Name == name {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("growing %q: %w", name, ErrNoPartition)
	}
	p := &out.Partitions[idx]
	bs := int64(im.Geometry.LogicalBlockSize)
	if bs == 0 {
		bs = 4096
	}
	newSize = (newSize + bs - 1) / bs * bs
	grow := newSize - p.Size
	if grow <= 0 {
		return &out, nil
	}
	if int(p.GroupIndex) < len(md.Groups) {
		g := md.Groups[p.GroupIndex]
		if g.MaximumSize > 0 {
			var used int64
			for _, q := range md.Partitions {
				if q.GroupIndex == p.GroupIndex {
					used += q.Size
				}
			}
			if uint64(used+grow) > g.MaximumSize {
				return nil, fmt.Errorf("growing %q by %d bytes: group %q holds %d of its %d bytes: %w", name, grow, g.Name, used, g.MaximumSize, ErrNoRoom)
			}
		}
	}
	if len(md.BlockDevices) == 0 {
		return nil, fmt.Errorf("growing %q: no block device: %w", name, ErrCorrupt)
	}
	dev := md.BlockDevices[0]
	need := grow / SectorSize
	place := int64(-1)
	for _, r := range md.freeRegions() {
		if r.end-r.start >= need {
			place = r.start
			break
		}
	}
	if place < 0 {
		return nil, fmt.Errorf("growing %q by %d bytes: the %d-byte super device has no free space that large: %w", name, grow, dev.Size, ErrNoRoom)
	}
	p.Extents = append(p.Extents, Extent{NumSectors: uint64(need), TargetType: TargetLinear, TargetData: uint64(place)})
	p.Size = newSize
	return &out, nil
}

// WriteMetadata writes md into every slot's primary and backup copy of the super image in w (a copy
// of the image im was opened from), each padded with zeros to metadata_max_size.
func (im *Image) WriteMetadata(w io.WriterAt, md *Metadata) error {
	if im.Layout != LayoutFull {
		return fmt.Errorf("writing LP metadata: a %s super image is not rewritten", im.Layout)
	}
	b := EncodeMetadata(md)
	if len(b) > int(im.Geometry.MetadataMaxSize) {
		return fmt.Errorf("writing LP metadata: %d bytes exceed metadata_max_size %d", len(b), im.Geometry.MetadataMaxSize)
	}
	b = append(b, make([]byte, int(im.Geometry.MetadataMaxSize)-len(b))...)
	for _, s := range im.Slots {
		for _, off := range []int64{s.PrimaryOffset, s.BackupOffset} {
			if off < 0 {
				continue
			}
			if _, err := w.WriteAt(b, off); err != nil {
				return fmt.Errorf("writing LP metadata slot %d at offset %d: %w", s.Slot, off, err)
			}
		}
	}
	return nil
}
