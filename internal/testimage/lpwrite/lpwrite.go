package lpwrite

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Partition is one logical partition to place.
type Partition struct {
	Name       string
	Attributes uint32 // 1: READONLY
	Data       []byte // placed in one linear extent, padded to the logical block size; nil: no extent
}

// Spec describes the super image.
type Spec struct {
	DeviceSize      uint64 // bytes of the super partition
	MetadataMaxSize uint32 // per slot copy (lpmake --metadata-size)
	Slots           uint32 // lpmake --metadata-slots
	Alignment       uint32 // lpmake --alignment
	BlockSize       uint32 // logical block size (default 4096)
	Group           string // the group of every partition (default "default", no size limit)
	Partitions      []Partition
}

const (
	geometryMagic = 0x616c4467
	headerMagic   = 0x414C5030
	sector        = 512
)

// Write returns the super image bytes.
func Write(s Spec) ([]byte, error) {
	if s.BlockSize == 0 {
		s.BlockSize = 4096
	}
	if s.Group == "" {
		s.Group = "default"
	}
	le := binary.LittleEndian
	metaEnd := uint64(4096+2*4096) + 2*uint64(s.Slots)*uint64(s.MetadataMaxSize)
	first := (metaEnd + uint64(s.Alignment) - 1) / uint64(s.Alignment) * uint64(s.Alignment)
	img := make([]byte, s.DeviceSize)

	// Tables.
	var parts, extents, groups, devs []byte
	next := first
	for i, p := range s.Partitions {
		rec := make([]byte, 52)
		copy(rec, p.Name)
		le.PutUint32(rec[36:], p.Attributes)
		le.PutUint32(rec[40:], uint32(len(extents)/24))
		if p.Data != nil {
			n := (uint64(len(p.Data)) + uint64(s.BlockSize) - 1) / uint64(s.BlockSize) * uint64(s.BlockSize)
			if next+n > s.DeviceSize {
				return nil, fmt.Errorf("partition %d (%s) does not fit", i, p.Name)
			}
			copy(img[next:], p.Data)
			ext := make([]byte, 24)
			le.PutUint64(ext[0:], n/sector)
			le.PutUint32(ext[8:], 0) // LINEAR
			le.PutUint64(ext[12:], next/sector)
			le.PutUint32(ext[20:], 0)
			extents = append(extents, ext...)
			le.PutUint32(rec[44:], 1)
			next += n
			// lpmake aligns each partition's start to the alignment.
			next = (next + uint64(s.Alignment) - 1) / uint64(s.Alignment) * uint64(s.Alignment)
		}
		le.PutUint32(rec[48:], 0)
		parts = append(parts, rec...)
	}
	g := make([]byte, 48)
	copy(g, s.Group)
	groups = append(groups, g...)
	d := make([]byte, 64)
	le.PutUint64(d[0:], first/sector)
	le.PutUint32(d[8:], s.Alignment)
	le.PutUint32(d[12:], 0)
	le.PutUint64(d[16:], s.DeviceSize)
	copy(d[24:], "super")
	devs = append(devs, d...)
	tables := append(append(append(append([]byte{}, parts...), extents...), groups...), devs...)

	hdr := make([]byte, 128)
	le.PutUint32(hdr[0:], headerMagic)
	le.PutUint16(hdr[4:], 10)
	le.PutUint16(hdr[6:], 0)
	le.PutUint32(hdr[8:], 128)
	le.PutUint32(hdr[44:], uint32(len(tables)))
	tsum := sha256.Sum256(tables)
	copy(hdr[48:], tsum[:])
	off := uint32(0)
	for i, t := range []struct {
		b    []byte
		size uint32
	}{{parts, 52}, {extents, 24}, {groups, 48}, {devs, 64}} {
		base := 80 + 12*i
		le.PutUint32(hdr[base:], off)
		le.PutUint32(hdr[base+4:], uint32(len(t.b))/t.size)
		le.PutUint32(hdr[base+8:], t.size)
		off += uint32(len(t.b))
	}
	hsum := sha256.Sum256(hdr)
	copy(hdr[12:], hsum[:])
	meta := append(hdr, tables...)
	if uint32(len(meta)) > s.MetadataMaxSize {
		return nil, fmt.Errorf("metadata of %d bytes exceeds %d", len(meta), s.MetadataMaxSize)
	}

	geo := make([]byte, 52)
	le.PutUint32(geo[0:], geometryMagic)
	le.PutUint32(geo[4:], 52)
	le.PutUint32(geo[40:], s.MetadataMaxSize)
	le.PutUint32(geo[44:], s.Slots)
	le.PutUint32(geo[48:], s.BlockSize)
	gsum := sha256.Sum256(geo)
	copy(geo[8:], gsum[:])
	copy(img[4096:], geo)
	copy(img[8192:], geo)
	for slot := uint64(0); slot < uint64(s.Slots); slot++ {
		copy(img[12288+slot*uint64(s.MetadataMaxSize):], meta)
		copy(img[12288+uint64(s.Slots)*uint64(s.MetadataMaxSize)+slot*uint64(s.MetadataMaxSize):], meta)
	}
	return img, nil
}
