package super

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// This file changes LP metadata the way liblp's MetadataBuilder does for fastbootd: format a super
// partition, add, remove and resize logical partitions, import the partitions a device keeps across
// an update-super. The device simulator's super partition is built on it.

// ErrExists is returned when a logical partition to add already exists.
var ErrExists = errors.New("logical partition already exists")

// EncodeGeometry encodes g as one geometry copy, padded to GeometrySize bytes.
func EncodeGeometry(g Geometry) []byte {
	le := binary.LittleEndian
	b := make([]byte, GeometrySize)
	le.PutUint32(b[0:], geometryMagic)
	le.PutUint32(b[4:], geometryStruct)
	le.PutUint32(b[40:], g.MetadataMaxSize)
	le.PutUint32(b[44:], g.MetadataSlotCount)
	le.PutUint32(b[48:], g.LogicalBlockSize)
	sum := sha256.Sum256(b[:geometryStruct])
	copy(b[8:40], sum[:])
	return b
}

// Same reports whether g and o describe the same layout (where each was read does not matter).
func (g Geometry) Same(o Geometry) bool {
	return g.MetadataMaxSize == o.MetadataMaxSize && g.MetadataSlotCount == o.MetadataSlotCount && g.LogicalBlockSize == o.LogicalBlockSize
}

// MetadataEnd is the first byte past the geometry and every primary and backup metadata copy of a
// full super partition with geometry g.
func MetadataEnd(g Geometry) int64 {
	return ReservedBytes + 2*GeometrySize + 2*int64(g.MetadataSlotCount)*int64(g.MetadataMaxSize)
}

// Format writes a complete LP header into w, a super partition: both geometry copies and md in every
// slot's primary and backup copy, as liblp's FlashPartitionTable does. Partition data is untouched.
func Format(w io.WriterAt, g Geometry, md *Metadata) error {
	b := EncodeMetadata(md)
	if len(b) > int(g.MetadataMaxSize) {
		return fmt.Errorf("writing LP metadata: %d bytes exceed metadata_max_size %d", len(b), g.MetadataMaxSize)
	}
	b = append(b, make([]byte, int(g.MetadataMaxSize)-len(b))...)
	geo := EncodeGeometry(g)
	if _, err := w.WriteAt(make([]byte, ReservedBytes), 0); err != nil {
		return fmt.Errorf("writing LP geometry: %w", err)
	}
	for _, off := range []int64{ReservedBytes, ReservedBytes + GeometrySize} {
		if _, err := w.WriteAt(geo, off); err != nil {
			return fmt.Errorf("writing LP geometry at offset %d: %w", off, err)
		}
	}
	for s := int64(0); s < int64(g.MetadataSlotCount); s++ {
		for _, off := range []int64{
			ReservedBytes + 2*GeometrySize + s*int64(g.MetadataMaxSize),
			ReservedBytes + 2*GeometrySize + (int64(g.MetadataSlotCount)+s)*int64(g.MetadataMaxSize),
		} {
			if _, err := w.WriteAt(b, off); err != nil {
				return fmt.Errorf("writing LP metadata slot %d at offset %d: %w", s, off, err)
			}
		}
	}
	return nil
}

// EncodeEmpty returns a super_empty.img: geometry then one metadata copy, as lpmake writes it for a
// build's super_empty.img.
func EncodeEmpty(g Geometry, md *Metadata) []byte {
	out := EncodeGeometry(g)
	b := EncodeMetadata(md)
	out = append(out, b...)
	if pad := len(out) % SectorSize; pad != 0 {
		out = append(out, make([]byte, SectorSize-pad)...)
	}
	return out
}

// Clone returns a deep copy of md, safe to change.
func (md *Metadata) Clone() *Metadata {
	out := *md
	out.raw = nil
	out.Partitions = make([]Partition, len(md.Partitions))
	for i, p := range md.Partitions {
		out.Partitions[i] = p
		out.Partitions[i].Extents = append([]Extent(nil), p.Extents...)
	}
	out.Groups = append([]Group(nil), md.Groups...)
	out.BlockDevices = append([]BlockDevice(nil), md.BlockDevices...)
	return &out
}

// Find returns the index of logical partition name, or -1.
func (md *Metadata) Find(name string) int {
	for i, p := range md.Partitions {
		if p.Name == name {
			return i
		}
	}
	return -1
}

func (md *Metadata) findGroup(name string) int {
	for i, g := range md.Groups {
		if g.Name == name {
			return i
		}
	}
	return -1
}

// AddPartition adds an empty logical partition to group (which must exist).
func (md *Metadata) AddPartition(name, group string, attrs uint32) error {
	if name == "" || len(name) > 36 {
		return fmt.Errorf("adding logical partition %q: a name is 1 to 36 bytes", name)
	}
	if md.Find(name) >= 0 {
		return fmt.Errorf("adding logical partition %q: %w", name, ErrExists)
	}
	gi := md.findGroup(group)
	if gi < 0 {
		return fmt.Errorf("adding logical partition %q: no group %q", name, group)
	}
	md.Partitions = append(md.Partitions, Partition{Name: name, Attributes: attrs, Group: group, GroupIndex: uint32(gi)})
	return nil
}

// RemovePartition removes logical partition name and frees its extents.
func (md *Metadata) RemovePartition(name string) error {
	i := md.Find(name)
	if i < 0 {
		return fmt.Errorf("removing logical partition %q: %w", name, ErrNoPartition)
	}
	md.Partitions = append(md.Partitions[:i], md.Partitions[i+1:]...)
	return nil
}

// Resize makes logical partition name size bytes (rounded up to the logical block size of g):
// shrinking drops sectors from its end, growing allocates the first free, aligned regions of the
// first block device (liblp's order), within the group's maximum size.
func (md *Metadata) Resize(g Geometry, name string, size int64) error {
	i := md.Find(name)
	if i < 0 {
		return fmt.Errorf("resizing logical partition %q: %w", name, ErrNoPartition)
	}
	if size < 0 {
		return fmt.Errorf("resizing logical partition %q: negative size %d", name, size)
	}
	bs := int64(g.LogicalBlockSize)
	if bs <= 0 {
		bs = 4096
	}
	size = (size + bs - 1) / bs * bs
	p := &md.Partitions[i]
	switch {
	case size == p.Size:
		return nil
	case size < p.Size:
		keep := size / SectorSize
		var out []Extent
		for _, e := range p.Extents {
			if keep == 0 {
				break
			}
			if int64(e.NumSectors) > keep {
				e.NumSectors = uint64(keep)
			}
			keep -= int64(e.NumSectors)
			out = append(out, e)
		}
		p.Extents = out
		p.Size = size
		return nil
	}
	grow := size - p.Size
	if int(p.GroupIndex) < len(md.Groups) {
		grp := md.Groups[p.GroupIndex]
		if grp.MaximumSize > 0 {
			var used int64
			for _, q := range md.Partitions {
				if q.GroupIndex == p.GroupIndex {
					used += q.Size
				}
			}
			if uint64(used+grow) > grp.MaximumSize {
				return fmt.Errorf("resizing logical partition %q to %d bytes: group %q holds %d of its %d bytes: %w", name, size, grp.Name, used, grp.MaximumSize, ErrNoRoom)
			}
		}
	}
	if len(md.BlockDevices) == 0 {
		return fmt.Errorf("resizing logical partition %q: no block device: %w", name, ErrCorrupt)
	}
	free := md.freeRegions()
	need := grow / SectorSize
	var add []Extent
	for _, r := range free {
		if need == 0 {
			break
		}
		n := min(need, r.end-r.start)
		if n <= 0 {
			continue
		}
		add = append(add, Extent{NumSectors: uint64(n), TargetType: TargetLinear, TargetData: uint64(r.start)})
		need -= n
	}
	if need > 0 {
		return fmt.Errorf("resizing logical partition %q to %d bytes: the %d-byte super device lacks %d free bytes: %w", name, size, md.BlockDevices[0].Size, need*SectorSize, ErrNoRoom)
	}
	for _, e := range add {
		if k := len(p.Extents); k > 0 {
			last := &p.Extents[k-1]
			if last.TargetType == TargetLinear && last.TargetSource == 0 && last.TargetData+last.NumSectors == e.TargetData {
				last.NumSectors += e.NumSectors
				continue
			}
		}
		p.Extents = append(p.Extents, e)
	}
	p.Size = size
	return nil
}

type sectorSpan struct{ start, end int64 }

// freeRegions lists the free sector ranges of block device 0, each start aligned as liblp aligns.
func (md *Metadata) freeRegions() []sectorSpan {
	dev := md.BlockDevices[0]
	var used []sectorSpan
	for _, q := range md.Partitions {
		for _, e := range q.Extents {
			if e.TargetType == TargetLinear && e.TargetSource == 0 {
				used = append(used, sectorSpan{int64(e.TargetData), int64(e.TargetData + e.NumSectors)})
			}
		}
	}
	sort.Slice(used, func(i, j int) bool { return used[i].start < used[j].start })
	align := func(s int64) int64 {
		a := int64(dev.Alignment) / SectorSize
		off := int64(dev.AlignmentOffset) / SectorSize
		if a <= 1 {
			return s
		}
		r := (s - off + a - 1) / a * a
		return r + off
	}
	var out []sectorSpan
	cur := int64(dev.FirstLogicalSector)
	end := int64(dev.Size / SectorSize)
	for _, u := range used {
		if u.start > cur {
			if s := align(cur); s < u.start {
				out = append(out, sectorSpan{s, u.start})
			}
		}
		cur = max(cur, u.end)
	}
	if s := align(cur); s < end {
		out = append(out, sectorSpan{s, end})
	}
	return out
}

// ImportPartitions copies the named partitions, with their extents, from old into md, as fastbootd's
// update-super keeps the other slot's partitions: a partition md already declares must be empty;
// a group it lacks is added. Block devices must match.
func (md *Metadata) ImportPartitions(old *Metadata, names map[string]bool) error {
	if len(old.BlockDevices) != len(md.BlockDevices) {
		return fmt.Errorf("importing partitions: %d block devices, the new metadata has %d", len(old.BlockDevices), len(md.BlockDevices))
	}
	for i := range old.BlockDevices {
		a, b := old.BlockDevices[i], md.BlockDevices[i]
		if a.Name != b.Name || a.Size != b.Size || a.FirstLogicalSector != b.FirstLogicalSector || a.Alignment != b.Alignment {
			return fmt.Errorf("importing partitions: block device %q differs from the new metadata's %q", a.Name, b.Name)
		}
	}
	for _, p := range old.Partitions {
		if !names[p.Name] {
			continue
		}
		group := ""
		if int(p.GroupIndex) < len(old.Groups) {
			group = old.Groups[p.GroupIndex].Name
		}
		gi := md.findGroup(group)
		if gi < 0 {
			var g Group
			if int(p.GroupIndex) < len(old.Groups) {
				g = old.Groups[p.GroupIndex]
			}
			md.Groups = append(md.Groups, g)
			gi = len(md.Groups) - 1
		}
		i := md.Find(p.Name)
		if i < 0 {
			md.Partitions = append(md.Partitions, Partition{Name: p.Name, Attributes: p.Attributes, Group: group, GroupIndex: uint32(gi)})
			i = len(md.Partitions) - 1
		}
		if md.Partitions[i].Size > 0 {
			return fmt.Errorf("importing partition %q would overwrite a non-empty partition", p.Name)
		}
		md.Partitions[i].Extents = append([]Extent(nil), p.Extents...)
		md.Partitions[i].Size = p.Size
	}
	return nil
}

// Parse decodes a super image held in memory (full or empty layout) and returns its geometry and
// slot-0 metadata.
func Parse(b []byte) (Geometry, *Metadata, error) {
	im, err := Open(bytes.NewReader(b), int64(len(b)), nil)
	if err != nil {
		return Geometry{}, nil, err
	}
	return im.Geometry, im.Metadata, nil
}
