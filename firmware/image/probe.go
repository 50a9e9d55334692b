package image

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/provkit/provkit/firmware/avb"
	"github.com/provkit/provkit/firmware/bootimg"
	"github.com/provkit/provkit/firmware/erofs"
	"github.com/provkit/provkit/firmware/ext4"
	"github.com/provkit/provkit/firmware/sparse"
	"github.com/provkit/provkit/firmware/super"
)

// Magic numbers and where they are.
const (
	ext4MagicOffset  = 1024 + 56
	ext4Magic        = 0xEF53
	erofsMagicOffset = 1024
	erofsMagic       = 0xE0F5E1E2
	lpGeometryMagic  = 0x616c4467 // "gDla"
	f2fsMagic        = 0xF2F52010
	dtTableMagic     = 0xd7b7ab1e // big-endian
	probeBytes       = 4096 + 4
)

// probe finds the format of a partition's bytes r (size bytes), opens what it can and returns the
// partitions it contains (the logical partitions of a super image). Errors end in p.Err.
func (im *Image) probe(p *Partition, r io.ReaderAt, size int64, depth int) []*Partition {
	p.r, p.Size = r, size
	if depth > maxNesting {
		p.Err = fmt.Errorf("reading %s: %w", p.Source, ErrTooDeep)
		return nil
	}
	if size == 0 {
		p.Format = FormatEmpty
		return nil
	}
	head := make([]byte, min(size, probeBytes))
	if n, err := r.ReadAt(head, 0); n < len(head) {
		p.Err = fmt.Errorf("reading %s: first %d bytes: %w", p.Source, len(head), err)
		return nil
	}
	le := binary.LittleEndian
	at32 := func(off int) uint32 {
		if off+4 > len(head) {
			return 0
		}
		return le.Uint32(head[off:])
	}
	if size >= 64 && p.Footer == nil {
		var tail [4]byte
		if _, err := r.ReadAt(tail[:], size-64); err == nil && string(tail[:]) == "AVBf" {
			if f, err := avb.ReadFooter(r, size); err == nil {
				p.Footer = f
			} else {
				p.Detail = fmt.Sprintf("unreadable AVB footer: %v", err)
			}
		}
	}
	switch {
	case at32(0) == sparse.Magic:
		s, err := sparse.Open(r, size)
		if err != nil {
			p.Format = FormatSparse
			p.Err = fmt.Errorf("reading sparse image %s: %w", p.Source, err)
			return nil
		}
		p.Layers = append(p.Layers, layerSparse)
		p.Footer = nil
		return im.probe(p, s, s.Size(), depth+1)
	case string(head[:min(4, len(head))]) == "AVB0":
		p.Format = FormatVBMeta
		vb, err := avb.Open(r, size)
		if err != nil {
			p.Err = fmt.Errorf("reading vbmeta image %s: %w", p.Source, err)
			return nil
		}
		p.Detail = fmt.Sprintf("vbmeta %s, %d descriptors, rollback index %d", vb.VBMeta.Algorithm, len(vb.VBMeta.Descriptors), vb.VBMeta.RollbackIndex)
	case len(head) >= 8 && (string(head[:8]) == "ANDROID!" || string(head[:8]) == "VNDRBOOT"):
		b, err := bootimg.Open(r, size)
		p.Format = FormatBoot
		if string(head[:8]) == "VNDRBOOT" {
			p.Format = FormatVendorBoot
		}
		if err != nil {
			p.Err = fmt.Errorf("reading %s image %s: %w", p.Format, p.Source, err)
			return nil
		}
		p.Detail = fmt.Sprintf("%s header v%d", b.Kind, b.HeaderVersion)
		if b.OSVersion != nil {
			p.Detail += fmt.Sprintf(", os %v", b.OSVersion)
		}
	case len(head) >= 4 && binary.BigEndian.Uint32(head) == dtTableMagic:
		p.Format = FormatDTTable
		t, err := bootimg.OpenDTTable(r, size)
		if err != nil {
			p.Err = fmt.Errorf("reading DT table %s: %w", p.Source, err)
			return nil
		}
		p.Detail = fmt.Sprintf("%d device-tree entries", len(t.Entries))
	case len(head) >= ext4MagicOffset+2 && le.Uint16(head[ext4MagicOffset:]) == ext4Magic:
		p.Format = FormatExt4
		fsys, err := ext4.Open(r, size)
		if err != nil {
			p.Err = fmt.Errorf("reading ext4 file system %s: %w", p.Source, err)
			return nil
		}
		p.fsys = fsys
		sb := fsys.Superblock()
		p.Detail = fmt.Sprintf("ext4, %d-byte blocks, %d blocks", sb.BlockSize(), sb.BlocksCount)
		if sb.VolumeName != "" {
			p.Detail += fmt.Sprintf(", volume %q", sb.VolumeName)
		}
	case at32(erofsMagicOffset) == erofsMagic:
		p.Format = FormatEROFS
		fsys, err := erofs.Open(r, size)
		if err != nil {
			p.Err = fmt.Errorf("reading EROFS file system %s: %w", p.Source, err)
			return nil
		}
		p.fsys = fsys
		sb := fsys.Superblock()
		p.Detail = fmt.Sprintf("erofs, %d-byte blocks, %d blocks", sb.BlockSize(), sb.Blocks)
		if f := sb.Features(); len(f) > 0 {
			p.Detail += ", " + strings.Join(f, " ")
		}
	case at32(4096) == lpGeometryMagic || at32(0) == lpGeometryMagic:
		p.Format = FormatSuper
		return im.openSuper(p, r, size, depth)
	case len(head) >= 4 && string(head[:4]) == "hsqs":
		p.Format = FormatSquashFS
		p.Err = fmt.Errorf("reading %s: squashfs: %w", p.Source, ErrUnsupported)
	case at32(1024) == f2fsMagic:
		p.Format = FormatF2FS
		p.Err = fmt.Errorf("reading %s: f2fs: %w", p.Source, ErrUnsupported)
	default:
		p.Format = FormatRaw
		p.Detail = "no file system or image format recognised (raw data)"
	}
	return nil
}

// openSuper reads a super image's LP metadata and returns its logical partitions.
func (im *Image) openSuper(p *Partition, r io.ReaderAt, size int64, depth int) []*Partition {
	s, err := super.Open(r, size, nil)
	if err != nil {
		p.Err = fmt.Errorf("reading super image %s: %w", p.Source, err)
		return nil
	}
	md := s.Metadata
	var names []string
	for _, lp := range md.Partitions {
		names = append(names, lp.Name)
	}
	p.Detail = fmt.Sprintf("LP metadata %s, %s layout, %d slots, %d partitions (%s)", md.Header.Version(), s.Layout, s.Geometry.MetadataSlotCount, len(md.Partitions), strings.Join(names, ", "))
	if len(s.Disagreements) > 0 {
		p.Detail += "; " + strings.Join(s.Disagreements, "; ")
	}
	if s.Layout == super.LayoutEmpty {
		// super_empty.img: metadata only, the partitions' data comes from their own images.
		return nil
	}
	var out []*Partition
	for _, lp := range md.Partitions {
		name, slot := splitSlot(lp.Name)
		c := im.newPartition(name, slot, p.Source+"!"+lp.Name, append(append([]string{}, p.Layers...), layerSuper))
		c.Size = lp.Size
		out = append(out, c)
		if lp.Size == 0 {
			c.Format = FormatEmpty
			continue
		}
		pr, err := s.OpenPartition(lp.Name)
		if err != nil {
			c.Err = fmt.Errorf("reading %s: %w", c.Source, err)
			continue
		}
		out = append(out, im.probe(c, pr, pr.Size(), depth+1)...)
	}
	return out
}
