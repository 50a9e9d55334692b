package super

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Sizes and magics of the LP metadata format.
const (
	SectorSize     = 512
	GeometrySize   = 4096 // bytes reserved for one geometry copy
	ReservedBytes  = 4096 // bytes at the start of a full super partition before the primary geometry
	geometryMagic  = 0x616c4467
	headerMagic    = 0x414c5030
	geometryStruct = 52 // sizeof(LpMetadataGeometry)
	headerV0Size   = 128
	headerV2Size   = 256
	partitionSize  = 52
	extentSize     = 24
	groupSize      = 48
	blockDevSize   = 64

	// maxMetadataSize bounds metadata_max_size. liblp writes 64 KiB at most; 16 MiB leaves room and
	// keeps one copy cheap to read.
	maxMetadataSize = 16 << 20
	// maxSlots bounds metadata_slot_count (2 for A/B devices, 3 in lpmake tests).
	maxSlots = 64
)

// Partition attributes.
const (
	AttrReadonly     = 1 << 0
	AttrSlotSuffixed = 1 << 1
	AttrUpdated      = 1 << 2
	AttrDisabled     = 1 << 3
)

// Header flags (metadata 10.2).
const (
	HeaderFlagVirtualAB      = 1 << 0
	HeaderFlagOverlaysActive = 1 << 1
)

// Group and block-device flags.
const (
	GroupSlotSuffixed       = 1 << 0
	BlockDeviceSlotSuffixed = 1 << 0
)

// Extent target types.
const (
	TargetLinear = 0
	TargetZero   = 1
)

// Errors callers can test with errors.Is.
var (
	ErrNotSuper           = errors.New("not an LP super image: no geometry magic at offset 0 or 4096")
	ErrChecksum           = errors.New("checksum mismatch")
	ErrCorrupt            = errors.New("corrupt LP metadata")
	ErrNoPartition        = errors.New("no such logical partition")
	ErrMissingBlockDevice = errors.New("extent is on a block device that was not supplied")
)

// Layout says where the geometry and the metadata copies sit.
type Layout int

const (
	// LayoutFull is a super partition image: geometry at 4096 and 8192, metadata from 12288.
	LayoutFull Layout = iota
	// LayoutEmpty is super_empty.img: geometry at 0, one metadata copy at 4096, no partition data.
	LayoutEmpty
)

func (l Layout) String() string {
	if l == LayoutEmpty {
		return "empty"
	}
	return "full"
}

// Geometry is the decoded LpMetadataGeometry.
type Geometry struct {
	Offset            int64 // where it was read
	MetadataMaxSize   uint32
	MetadataSlotCount uint32
	LogicalBlockSize  uint32
}

// Header is the decoded LpMetadataHeader.
type Header struct {
	Major, Minor uint16
	HeaderSize   uint32
	TablesSize   uint32
	Flags        uint32 // 10.2 only
}

// Version returns "10.0", "10.1" or "10.2".
func (h Header) Version() string { return fmt.Sprintf("%d.%d", h.Major, h.Minor) }

// Extent is one LpMetadataExtent.
type Extent struct {
	NumSectors   uint64
	TargetType   uint32 // TargetLinear or TargetZero
	TargetData   uint64 // first physical sector for a linear extent
	TargetSource uint32 // block device index for a linear extent
}

// Partition is one logical partition with its extents resolved.
type Partition struct {
	Name       string
	Attributes uint32
	Group      string
	GroupIndex uint32
	Extents    []Extent
	Size       int64 // sum of the extents, in bytes
}

// Group is one partition group.
type Group struct {
	Name        string
	Flags       uint32
	MaximumSize uint64 // 0: no limit
}

// BlockDevice is one physical device holding extents.
type BlockDevice struct {
	Name               string
	FirstLogicalSector uint64
	Alignment          uint32
	AlignmentOffset    uint32
	Size               uint64
	Flags              uint32
}

// Metadata is one decoded, checksum-verified metadata copy.
type Metadata struct {
	Slot         int
	Offset       int64 // byte offset of its header in the image
	Header       Header
	Partitions   []Partition
	Groups       []Group
	BlockDevices []BlockDevice
	raw          []byte // header + tables, for comparing copies
}

// SlotStatus reports one slot's primary and backup copies.
type SlotStatus struct {
	Slot          int
	PrimaryOffset int64
	PrimaryErr    error // nil when the primary copy decoded and its checksums verified
	BackupOffset  int64 // -1 when the layout keeps no backup
	BackupErr     error
	// Identical is true when both copies decoded and are byte-identical.
	Identical bool
}

// Options changes how Open reads an image.
type Options struct {
	// Slot selects the metadata slot (default 0).
	Slot int
	// Devices supplies block devices other than the super image itself (retrofit layouts), by name.
	Devices map[string]Device
}

// Device is a block device: bytes and their size.
type Device struct {
	R    io.ReaderAt
	Size int64
}

// Image is an opened super image.
type Image struct {
	r    io.ReaderAt
	size int64

	Layout   Layout
	Geometry Geometry
	// BackupGeometryIdentical is true when the backup geometry (full layout) equals the primary one.
	BackupGeometryIdentical bool
	// BackupGeometryErr says why the backup geometry is unusable, if it is.
	BackupGeometryErr error
	// Metadata is the selected slot's metadata (the primary copy, or the backup when the primary is bad).
	Metadata *Metadata
	// Slots reports every slot's copies; Disagreements lists human-readable differences.
	Slots         []SlotStatus
	Disagreements []string

	devices map[string]Device
}

// Open reads the geometry and the metadata of slot 0 (or opts.Slot) of a super image of the given
// size. The image may itself be a view of a sparse image: any io.ReaderAt works.
func Open(r io.ReaderAt, size int64, opts *Options) (*Image, error) {
	if opts == nil {
		opts = &Options{}
	}
	im := &Image{r: r, size: size, devices: opts.Devices}
	g, gerr := readGeometry(r, size, ReservedBytes)
	switch {
	case gerr == nil:
		im.Layout = LayoutFull
		im.Geometry = g
		backup, berr := readGeometry(r, size, ReservedBytes+GeometrySize)
		if berr != nil {
			im.BackupGeometryErr = berr
		} else {
			im.BackupGeometryIdentical = backup.MetadataMaxSize == g.MetadataMaxSize &&
				backup.MetadataSlotCount == g.MetadataSlotCount && backup.LogicalBlockSize == g.LogicalBlockSize
			if !im.BackupGeometryIdentical {
				im.Disagreements = append(im.Disagreements, "backup geometry at offset 8192 differs from the primary at 4096")
			}
		}
	case errors.Is(gerr, ErrNotSuper):
		// Primary geometry missing: try the backup, then the empty layout.
		if b, berr := readGeometry(r, size, ReservedBytes+GeometrySize); berr == nil {
			im.Layout = LayoutFull
			im.Geometry = b
			im.BackupGeometryErr = nil
			im.Disagreements = append(im.Disagreements, "primary geometry at offset 4096 is missing; using the backup at 8192")
		} else if e, eerr := readGeometry(r, size, 0); eerr == nil {
			im.Layout = LayoutEmpty
			im.Geometry = e
		} else if errors.Is(eerr, ErrNotSuper) {
			return nil, ErrNotSuper
		} else {
			return nil, eerr
		}
	default:
		// The primary is there but corrupt: fall back to the backup, as liblp does.
		b, berr := readGeometry(r, size, ReservedBytes+GeometrySize)
		if berr != nil {
			return nil, fmt.Errorf("reading LP geometry: primary: %w; backup: %v", gerr, berr)
		}
		im.Layout = LayoutFull
		im.Geometry = b
		im.Disagreements = append(im.Disagreements, fmt.Sprintf("primary geometry unusable (%v); using the backup at 8192", gerr))
	}
	if opts.Slot < 0 || opts.Slot >= int(im.Geometry.MetadataSlotCount) {
		return nil, fmt.Errorf("selecting metadata slot %d: image has %d slots", opts.Slot, im.Geometry.MetadataSlotCount)
	}
	if im.Layout == LayoutFull {
		end := im.backupOffset(int(im.Geometry.MetadataSlotCount))
		if end > size {
			return nil, fmt.Errorf("reading LP geometry at offset %d: %d slots of %d bytes (primary and backup) end at %d, past the image end %d: %w",
				im.Geometry.Offset, im.Geometry.MetadataSlotCount, im.Geometry.MetadataMaxSize, end, size, ErrCorrupt)
		}
	}
	slotCount := int(im.Geometry.MetadataSlotCount)
	if im.Layout == LayoutEmpty {
		slotCount = 1 // an empty image keeps only slot 0
		if opts.Slot != 0 {
			return nil, fmt.Errorf("selecting metadata slot %d: an empty (super_empty) image holds only slot 0", opts.Slot)
		}
	}
	for s := 0; s < slotCount; s++ {
		st := SlotStatus{Slot: s, PrimaryOffset: im.primaryOffset(s), BackupOffset: -1}
		pm, perr := im.readMetadata(st.PrimaryOffset, s)
		st.PrimaryErr = perr
		var bm *Metadata
		if im.Layout == LayoutFull {
			st.BackupOffset = im.backupOffset(s)
			bm, st.BackupErr = im.readMetadata(st.BackupOffset, s)
			if perr == nil && st.BackupErr == nil {
				st.Identical = bytes.Equal(pm.raw, bm.raw)
				if !st.Identical {
					im.Disagreements = append(im.Disagreements, fmt.Sprintf("slot %d: primary metadata at offset %d differs from the backup at %d", s, st.PrimaryOffset, st.BackupOffset))
				}
			} else if perr != nil && st.BackupErr == nil {
				im.Disagreements = append(im.Disagreements, fmt.Sprintf("slot %d: primary metadata unusable (%v); backup at offset %d is good", s, perr, st.BackupOffset))
			} else if perr == nil {
				im.Disagreements = append(im.Disagreements, fmt.Sprintf("slot %d: backup metadata unusable (%v)", s, st.BackupErr))
			}
		}
		im.Slots = append(im.Slots, st)
		if s == opts.Slot {
			switch {
			case perr == nil:
				im.Metadata = pm
			case bm != nil:
				im.Metadata = bm
			default:
				if st.BackupErr != nil {
					return nil, fmt.Errorf("reading metadata slot %d: primary: %w; backup: %v", s, perr, st.BackupErr)
				}
				return nil, fmt.Errorf("reading metadata slot %d: %w", s, perr)
			}
		}
	}
	if err := im.checkExtents(im.Metadata); err != nil {
		return nil, err
	}
	return im, nil
}

func (im *Image) primaryOffset(slot int) int64 {
	if im.Layout == LayoutEmpty {
		return GeometrySize
	}
	return ReservedBytes + 2*GeometrySize + int64(slot)*int64(im.Geometry.MetadataMaxSize)
}

func (im *Image) backupOffset(slot int) int64 {
	g := im.Geometry
	return ReservedBytes + 2*GeometrySize + int64(g.MetadataSlotCount)*int64(g.MetadataMaxSize) + int64(slot)*int64(g.MetadataMaxSize)
}

func readGeometry(r io.ReaderAt, size, off int64) (Geometry, error) {
	g := Geometry{Offset: off}
	if off+geometryStruct > size {
		return g, ErrNotSuper
	}
	buf := make([]byte, geometryStruct)
	if _, err := r.ReadAt(buf, off); err != nil {
		return g, fmt.Errorf("reading LP geometry at offset %d: %w", off, err)
	}
	if binary.LittleEndian.Uint32(buf) != geometryMagic {
		return g, ErrNotSuper
	}
	if n := binary.LittleEndian.Uint32(buf[4:]); n != geometryStruct {
		return g, fmt.Errorf("reading LP geometry at offset %d: struct_size %d, want %d: %w", off, n, geometryStruct, ErrCorrupt)
	}
	want := append([]byte(nil), buf[8:40]...)
	clear(buf[8:40])
	if got := sha256.Sum256(buf); !bytes.Equal(got[:], want) {
		return g, fmt.Errorf("reading LP geometry at offset %d: %w", off, ErrChecksum)
	}
	g.MetadataMaxSize = binary.LittleEndian.Uint32(buf[40:])
	g.MetadataSlotCount = binary.LittleEndian.Uint32(buf[44:])
	g.LogicalBlockSize = binary.LittleEndian.Uint32(buf[48:])
	switch {
	case g.MetadataMaxSize == 0 || g.MetadataMaxSize%SectorSize != 0 || g.MetadataMaxSize > maxMetadataSize:
		return g, fmt.Errorf("reading LP geometry at offset %d: metadata_max_size %d is not a multiple of %d in (0, %d]: %w", off, g.MetadataMaxSize, SectorSize, maxMetadataSize, ErrCorrupt)
	case g.MetadataSlotCount == 0 || g.MetadataSlotCount > maxSlots:
		return g, fmt.Errorf("reading LP geometry at offset %d: metadata_slot_count %d not in [1, %d]: %w", off, g.MetadataSlotCount, maxSlots, ErrCorrupt)
	case g.LogicalBlockSize == 0 || g.LogicalBlockSize%SectorSize != 0:
		return g, fmt.Errorf("reading LP geometry at offset %d: logical_block_size %d is not a multiple of %d: %w", off, g.LogicalBlockSize, SectorSize, ErrCorrupt)
	}
	return g, nil
}

type tableDesc struct{ offset, num, entrySize uint32 }

func (im *Image) readMetadata(off int64, slot int) (*Metadata, error) {
	maxSize := int64(im.Geometry.MetadataMaxSize)
	if off+headerV0Size > im.size {
		return nil, fmt.Errorf("reading LP metadata header at offset %d: past the image end %d: %w", off, im.size, ErrCorrupt)
	}
	hdr := make([]byte, headerV2Size)
	n, err := im.r.ReadAt(hdr, off)
	if n < headerV0Size {
		return nil, fmt.Errorf("reading LP metadata header at offset %d: %w", off, err)
	}
	hdr = hdr[:n]
	if m := binary.LittleEndian.Uint32(hdr); m != headerMagic {
		return nil, fmt.Errorf("reading LP metadata header at offset %d: bad magic %#08x: %w", off, m, ErrCorrupt)
	}
	h := Header{
		Major:      binary.LittleEndian.Uint16(hdr[4:]),
		Minor:      binary.LittleEndian.Uint16(hdr[6:]),
		HeaderSize: binary.LittleEndian.Uint32(hdr[8:]),
		TablesSize: binary.LittleEndian.Uint32(hdr[44:]),
	}
	if h.Major != 10 || h.Minor > 2 {
		return nil, fmt.Errorf("reading LP metadata header at offset %d: version %s is not 10.0-10.2: %w", off, h.Version(), ErrCorrupt)
	}
	wantSize := uint32(headerV0Size)
	if h.Minor >= 2 {
		wantSize = headerV2Size
	}
	if h.HeaderSize != wantSize {
		return nil, fmt.Errorf("reading LP metadata header at offset %d: header_size %d, want %d for version %s: %w", off, h.HeaderSize, wantSize, h.Version(), ErrCorrupt)
	}
	if int(h.HeaderSize) > len(hdr) {
		return nil, fmt.Errorf("reading LP metadata header at offset %d: truncated at %d bytes: %w", off, len(hdr), ErrCorrupt)
	}
	hdr = hdr[:h.HeaderSize]
	wantSum := append([]byte(nil), hdr[12:44]...)
	check := append([]byte(nil), hdr...)
	clear(check[12:44])
	if got := sha256.Sum256(check); !bytes.Equal(got[:], wantSum) {
		return nil, fmt.Errorf("reading LP metadata header at offset %d: header %w", off, ErrChecksum)
	}
	if h.Minor >= 2 {
		h.Flags = binary.LittleEndian.Uint32(hdr[128:])
	}
	if int64(h.TablesSize) > maxSize-int64(h.HeaderSize) {
		return nil, fmt.Errorf("reading LP metadata header at offset %d: tables_size %d exceeds metadata_max_size %d minus the header: %w", off, h.TablesSize, maxSize, ErrCorrupt)
	}
	tablesOff := off + int64(h.HeaderSize)
	if tablesOff+int64(h.TablesSize) > im.size {
		return nil, fmt.Errorf("reading LP metadata tables at offset %d: %d bytes run past the image end %d: %w", tablesOff, h.TablesSize, im.size, ErrCorrupt)
	}
	tables := make([]byte, h.TablesSize)
	if _, err := im.r.ReadAt(tables, tablesOff); err != nil {
		return nil, fmt.Errorf("reading LP metadata tables at offset %d: %w", tablesOff, err)
	}
	if got := sha256.Sum256(tables); !bytes.Equal(got[:], hdr[48:80]) {
		return nil, fmt.Errorf("reading LP metadata tables at offset %d: tables %w", tablesOff, ErrChecksum)
	}
	descs := [4]tableDesc{}
	names := [4]string{"partitions", "extents", "groups", "block_devices"}
	sizes := [4]uint32{partitionSize, extentSize, groupSize, blockDevSize}
	for i := range descs {
		b := hdr[80+12*i:]
		d := tableDesc{binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])}
		if d.entrySize != sizes[i] {
			return nil, fmt.Errorf("reading LP %s table descriptor at offset %d: entry_size %d, want %d: %w", names[i], off+80+12*int64(i), d.entrySize, sizes[i], ErrCorrupt)
		}
		if uint64(d.offset)+uint64(d.num)*uint64(d.entrySize) > uint64(h.TablesSize) {
			return nil, fmt.Errorf("reading LP %s table descriptor at offset %d: %d entries at table offset %d run past tables_size %d: %w", names[i], off+80+12*int64(i), d.num, d.offset, h.TablesSize, ErrCorrupt)
		}
		descs[i] = d
	}
	md := &Metadata{Slot: slot, Offset: off, Header: h, raw: append(hdr, tables...)}
	entry := func(t, i int) []byte {
		d := descs[t]
		s := d.offset + uint32(i)*d.entrySize
		return tables[s : s+d.entrySize]
	}
	entryOff := func(t, i int) int64 {
		return tablesOff + int64(descs[t].offset) + int64(i)*int64(descs[t].entrySize)
	}
	for i := 0; i < int(descs[2].num); i++ {
		b := entry(2, i)
		md.Groups = append(md.Groups, Group{Name: cstring(b[:36]), Flags: binary.LittleEndian.Uint32(b[36:]), MaximumSize: binary.LittleEndian.Uint64(b[40:])})
	}
	for i := 0; i < int(descs[3].num); i++ {
		b := entry(3, i)
		md.BlockDevices = append(md.BlockDevices, BlockDevice{
			FirstLogicalSector: binary.LittleEndian.Uint64(b),
			Alignment:          binary.LittleEndian.Uint32(b[8:]),
			AlignmentOffset:    binary.LittleEndian.Uint32(b[12:]),
			Size:               binary.LittleEndian.Uint64(b[16:]),
			Name:               cstring(b[24:60]),
			Flags:              binary.LittleEndian.Uint32(b[60:]),
		})
	}
	if len(md.BlockDevices) == 0 {
		return nil, fmt.Errorf("reading LP metadata at offset %d: no block devices: %w", off, ErrCorrupt)
	}
	extents := make([]Extent, descs[1].num)
	for i := range extents {
		b := entry(1, i)
		extents[i] = Extent{
			NumSectors:   binary.LittleEndian.Uint64(b),
			TargetType:   binary.LittleEndian.Uint32(b[8:]),
			TargetData:   binary.LittleEndian.Uint64(b[12:]),
			TargetSource: binary.LittleEndian.Uint32(b[20:]),
		}
		e := extents[i]
		switch e.TargetType {
		case TargetLinear:
			if int(e.TargetSource) >= len(md.BlockDevices) {
				return nil, fmt.Errorf("reading LP extent %d at offset %d: block device index %d, only %d devices: %w", i, entryOff(1, i), e.TargetSource, len(md.BlockDevices), ErrCorrupt)
			}
		case TargetZero:
		default:
			return nil, fmt.Errorf("reading LP extent %d at offset %d: unknown target type %d: %w", i, entryOff(1, i), e.TargetType, ErrCorrupt)
		}
	}
	seen := map[string]bool{}
	for i := 0; i < int(descs[0].num); i++ {
		b := entry(0, i)
		p := Partition{
			Name:       cstring(b[:36]),
			Attributes: binary.LittleEndian.Uint32(b[36:]),
			GroupIndex: binary.LittleEndian.Uint32(b[48:]),
		}
		first := binary.LittleEndian.Uint32(b[40:])
		num := binary.LittleEndian.Uint32(b[44:])
		where := fmt.Sprintf("LP partition %d (%q) at offset %d", i, p.Name, entryOff(0, i))
		if p.Name == "" || seen[p.Name] {
			return nil, fmt.Errorf("reading %s: empty or duplicate name: %w", where, ErrCorrupt)
		}
		seen[p.Name] = true
		mask := uint32(AttrReadonly | AttrSlotSuffixed)
		if h.Minor >= 1 {
			mask |= AttrUpdated | AttrDisabled
		}
		if p.Attributes&^mask != 0 {
			return nil, fmt.Errorf("reading %s: attributes %#x not valid for version %s: %w", where, p.Attributes, h.Version(), ErrCorrupt)
		}
		if uint64(first)+uint64(num) > uint64(len(extents)) {
			return nil, fmt.Errorf("reading %s: extents %d..%d past the extent table of %d: %w", where, first, uint64(first)+uint64(num), len(extents), ErrCorrupt)
		}
		if int(p.GroupIndex) >= len(md.Groups) {
			return nil, fmt.Errorf("reading %s: group index %d, only %d groups: %w", where, p.GroupIndex, len(md.Groups), ErrCorrupt)
		}
		p.Group = md.Groups[p.GroupIndex].Name
		p.Extents = extents[first : first+num : first+num]
		var sectors uint64
		for _, e := range p.Extents {
			if e.NumSectors > (1<<63-1)/SectorSize-sectors {
				return nil, fmt.Errorf("reading %s: size overflows: %w", where, ErrCorrupt)
			}
			sectors += e.NumSectors
		}
		p.Size = int64(sectors * SectorSize)
		md.Partitions = append(md.Partitions, p)
	}
	return md, nil
}

// checkExtents rejects linear extents that leave their block device, overlap the metadata area, or
// overlap one another; and, for a full image, extents on device 0 that run past the image end.
func (im *Image) checkExtents(md *Metadata) error {
	type span struct {
		start, end uint64
		part       string
		idx        int
	}
	perDev := map[uint32][]span{}
	for _, p := range md.Partitions {
		for i, e := range p.Extents {
			if e.TargetType != TargetLinear {
				continue
			}
			dev := md.BlockDevices[e.TargetSource]
			end := e.TargetData + e.NumSectors
			where := fmt.Sprintf("LP partition %q extent %d (sectors %d+%d on %q)", p.Name, i, e.TargetData, e.NumSectors, dev.Name)
			if end < e.TargetData || end > dev.Size/SectorSize || end > (1<<62)/SectorSize {
				return fmt.Errorf("checking %s: runs past the block device size %d: %w", where, dev.Size, ErrCorrupt)
			}
			if e.TargetData < dev.FirstLogicalSector {
				return fmt.Errorf("checking %s: starts before the first logical sector %d, inside the metadata: %w", where, dev.FirstLogicalSector, ErrCorrupt)
			}
			if e.TargetSource == 0 && im.Layout == LayoutFull && int64(end) > im.size/SectorSize {
				return fmt.Errorf("checking %s: ends at byte %d, past the image end %d: %w", where, end*SectorSize, im.size, ErrCorrupt)
			}
			perDev[e.TargetSource] = append(perDev[e.TargetSource], span{e.TargetData, end, p.Name, i})
		}
	}
	for dev, spans := range perDev {
		sort.Slice(spans, func(a, b int) bool { return spans[a].start < spans[b].start })
		for i := 1; i < len(spans); i++ {
			if spans[i].start < spans[i-1].end {
				return fmt.Errorf("checking LP extents on %q: partition %q extent %d (sector %d) overlaps partition %q extent %d (sectors %d..%d): %w",
					md.BlockDevices[dev].Name, spans[i].part, spans[i].idx, spans[i].start, spans[i-1].part, spans[i-1].idx, spans[i-1].start, spans[i-1].end, ErrCorrupt)
			}
		}
	}
	return nil
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.ToValidUTF8(string(b), "?")
}

// Partition returns the selected slot's partition called name.
func (im *Image) Partition(name string) (*Partition, bool) {
	for i := range im.Metadata.Partitions {
		if im.Metadata.Partitions[i].Name == name {
			return &im.Metadata.Partitions[i], true
		}
	}
	return nil, false
}

// ReadSlot decodes another slot's metadata (primary copy, else backup) without changing the selection.
func (im *Image) ReadSlot(slot int) (*Metadata, error) {
	if slot < 0 || slot >= len(im.Slots) {
		return nil, fmt.Errorf("reading metadata slot %d: image has %d readable slots", slot, len(im.Slots))
	}
	md, err := im.readMetadata(im.primaryOffset(slot), slot)
	if err != nil && im.Layout == LayoutFull {
		md, err = im.readMetadata(im.backupOffset(slot), slot)
	}
	if err != nil {
		return nil, err
	}
	return md, im.checkExtents(md)
}

// PartitionReader reads one logical partition in place through its extents.
type PartitionReader struct {
	name    string
	size    int64
	extents []mappedExtent
}

type mappedExtent struct {
	logical int64 // byte offset in the partition
	length  int64
	dev     io.ReaderAt // nil for a zero extent
	devName string
	devErr  error
	phys    int64
}

// Size returns the partition size in bytes.
func (p *PartitionReader) Size() int64 { return p.size }

// Name returns the partition name.
func (p *PartitionReader) Name() string { return p.name }

// OpenPartition returns a reader over the logical partition name of the selected slot. Linear
// extents read from their block device (device 0 is the image itself); zero extents read as zeros.
func (im *Image) OpenPartition(name string) (*PartitionReader, error) {
	p, ok := im.Partition(name)
	if !ok {
		return nil, fmt.Errorf("opening logical partition %q: %w", name, ErrNoPartition)
	}
	pr := &PartitionReader{name: name, size: p.Size}
	var logical int64
	for _, e := range p.Extents {
		me := mappedExtent{logical: logical, length: int64(e.NumSectors) * SectorSize}
		if e.TargetType == TargetLinear {
			dev := im.Metadata.BlockDevices[e.TargetSource]
			me.devName = dev.Name
			me.phys = int64(e.TargetData) * SectorSize
			if e.TargetSource == 0 {
				me.dev = im.r
				if im.Layout == LayoutEmpty {
					me.devErr = fmt.Errorf("extent on %q: an empty (super_empty) image holds no partition data", dev.Name)
				}
			} else if d, ok := im.devices[dev.Name]; ok {
				if me.phys+me.length > d.Size {
					return nil, fmt.Errorf("opening logical partition %q: extent at byte %d+%d runs past block device %q of %d bytes: %w", name, me.phys, me.length, dev.Name, d.Size, ErrCorrupt)
				}
				me.dev = d.R
			} else {
				me.devErr = fmt.Errorf("block device %q (index %d): %w", dev.Name, e.TargetSource, ErrMissingBlockDevice)
			}
		}
		pr.extents = append(pr.extents, me)
		logical += me.length
	}
	return pr, nil
}

// ReadAt implements io.ReaderAt.
func (p *PartitionReader) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("reading logical partition %q: negative offset %d", p.name, off)
	}
	if off >= p.size {
		return 0, io.EOF
	}
	want := len(b)
	if int64(want) > p.size-off {
		b = b[:p.size-off]
	}
	i := sort.Search(len(p.extents), func(i int) bool { return p.extents[i].logical+p.extents[i].length > off })
	n := 0
	for n < len(b) && i < len(p.extents) {
		e := p.extents[i]
		in := off + int64(n) - e.logical
		chunk := b[n:]
		if int64(len(chunk)) > e.length-in {
			chunk = chunk[:e.length-in]
		}
		switch {
		case e.devErr != nil:
			return n, fmt.Errorf("reading logical partition %q at offset %d: %w", p.name, off+int64(n), e.devErr)
		case e.dev == nil:
			clear(chunk)
		default:
			if m, err := e.dev.ReadAt(chunk, e.phys+in); m < len(chunk) {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return n + m, fmt.Errorf("reading logical partition %q at offset %d (byte %d of %q): %w", p.name, off+int64(n), e.phys+in, e.devName, err)
			}
		}
		n += len(chunk)
		i++
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}
