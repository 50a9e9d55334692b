package super

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/internal/samplefacts"
)

// lpSpec describes a synthetic LP image for tests: what lpmake would write, built from the format spec.
type lpSpec struct {
	minor      uint16
	flags      uint32
	slots      uint32
	maxSize    uint32
	parts      []lpPart
	groups     []Group
	devs       []BlockDevice
	imageBytes int64
}

type lpPart struct {
	name    string
	attrs   uint32
	group   uint32
	extents []Extent
}

func putName(b []byte, s string) { copy(b[:36], s) }

func (s lpSpec) metadata() []byte {
	hsize := uint32(headerV0Size)
	if s.minor >= 2 {
		hsize = headerV2Size
	}
	var parts, exts, groups, devs []byte
	for _, p := range s.parts {
		b := make([]byte, partitionSize)
		putName(b, p.name)
		binary.LittleEndian.PutUint32(b[36:], p.attrs)
		binary.LittleEndian.PutUint32(b[40:], uint32(len(exts)/extentSize))
		binary.LittleEndian.PutUint32(b[44:], uint32(len(p.extents)))
		binary.LittleEndian.PutUint32(b[48:], p.group)
		parts = append(parts, b...)
		for _, e := range p.extents {
			eb := make([]byte, extentSize)
			binary.LittleEndian.PutUint64(eb, e.NumSectors)
			binary.LittleEndian.PutUint32(eb[8:], e.TargetType)
			binary.LittleEndian.PutUint64(eb[12:], e.TargetData)
			binary.LittleEndian.PutUint32(eb[20:], e.TargetSource)
			exts = append(exts, eb...)
		}
	}
	for _, g := range s.groups {
		b := make([]byte, groupSize)
		putName(b, g.Name)
		binary.LittleEndian.PutUint32(b[36:], g.Flags)
		binary.LittleEndian.PutUint64(b[40:], g.MaximumSize)
		groups = append(groups, b...)
	}
	for _, d := range s.devs {
		b := make([]byte, blockDevSize)
		binary.LittleEndian.PutUint64(b, d.FirstLogicalSector)
		binary.LittleEndian.PutUint32(b[8:], d.Alignment)
		binary.LittleEndian.PutUint32(b[12:], d.AlignmentOffset)
		binary.LittleEndian.PutUint64(b[16:], d.Size)
		copy(b[24:60], d.Name)
		binary.LittleEndian.PutUint32(b[60:], d.Flags)
		devs = append(devs, b...)
	}
	tables := bytes.Join([][]byte{parts, exts, groups, devs}, nil)
	h := make([]byte, hsize)
	binary.LittleEndian.PutUint32(h, headerMagic)
	binary.LittleEndian.PutUint16(h[4:], 10)
	binary.LittleEndian.PutUint16(h[6:], s.minor)
	binary.LittleEndian.PutUint32(h[8:], hsize)
	binary.LittleEndian.PutUint32(h[44:], uint32(len(tables)))
	ts := sha256.Sum256(tables)
	copy(h[48:], ts[:])
	off := uint32(0)
	for i, t := range [][]byte{parts, exts, groups, devs} {
		size := []uint32{partitionSize, extentSize, groupSize, blockDevSize}[i]
		binary.LittleEndian.PutUint32(h[80+12*i:], off)
		binary.LittleEndian.PutUint32(h[84+12*i:], uint32(len(t))/size)
		binary.LittleEndian.PutUint32(h[88+12*i:], size)
		off += uint32(len(t))
	}
	if s.minor >= 2 {
		binary.LittleEndian.PutUint32(h[128:], s.flags)
	}
	hs := sha256.Sum256(h)
	copy(h[12:], hs[:])
	return append(h, tables...)
}

func (s lpSpec) geometry() []byte {
	g := make([]byte, GeometrySize)
	binary.LittleEndian.PutUint32(g, geometryMagic)
	binary.LittleEndian.PutUint32(g[4:], geometryStruct)
	binary.LittleEndian.PutUint32(g[40:], s.maxSize)
	binary.LittleEndian.PutUint32(g[44:], s.slots)
	binary.LittleEndian.PutUint32(g[48:], 4096)
	sum := sha256.Sum256(g[:geometryStruct])
	copy(g[8:], sum[:])
	return g
}

// full builds a full super image with every slot's primary and backup copies.
func (s lpSpec) full() []byte {
	img := make([]byte, s.imageBytes)
	copy(img[ReservedBytes:], s.geometry())
	copy(img[ReservedBytes+GeometrySize:], s.geometry())
	md := s.metadata()
	for slot := 0; slot < int(s.slots); slot++ {
		copy(img[ReservedBytes+2*GeometrySize+slot*int(s.maxSize):], md)
		copy(img[ReservedBytes+2*GeometrySize+(int(s.slots)+slot)*int(s.maxSize):], md)
	}
	return img
}

// empty builds a super_empty.img-style image: geometry at 0, one metadata copy at 4096.
func (s lpSpec) empty() []byte {
	return append(s.geometry(), s.metadata()...)
}

func TestEmptyLayoutWithSizedPartitions(t *testing.T) {
	spec := twoPartSpec()
	img := spec.empty()
	im, err := Open(bytes.NewReader(img), int64(len(img)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if im.Layout != LayoutEmpty || len(im.Slots) != 1 || im.Slots[0].BackupOffset != -1 {
		t.Fatalf("layout %v slots %+v", im.Layout, im.Slots)
	}
	pr, err := im.OpenPartition("vendor_a")
	if err != nil {
		t.Fatal(err)
	}
	if pr.Size() != 16*512 {
		t.Fatalf("vendor_a size %d", pr.Size())
	}
	if _, err := pr.ReadAt(make([]byte, 16), 0); err == nil || !strings.Contains(err.Error(), "holds no partition data") {
		t.Fatalf("reading from an empty image: %v", err)
	}
	if _, err := Open(bytes.NewReader(img), int64(len(img)), &Options{Slot: 1}); err == nil {
		t.Fatal("slot 1 of an empty image accepted")
	}
}

func twoPartSpec() lpSpec {
	const first = 96 // sector of byte 49152
	return lpSpec{
		minor: 2, flags: HeaderFlagVirtualAB, slots: 2, maxSize: 4096, imageBytes: 256 << 10,
		groups: []Group{{Name: "default"}, {Name: "main_a", MaximumSize: 128 << 10, Flags: 0}},
		devs:   []BlockDevice{{Name: "super", FirstLogicalSector: first, Alignment: 4096, Size: 256 << 10}},
		parts: []lpPart{
			{name: "system_a", attrs: AttrReadonly | AttrUpdated, group: 1, extents: []Extent{
				{NumSectors: 8, TargetType: TargetLinear, TargetData: first + 16},
				{NumSectors: 8, TargetType: TargetZero},
				{NumSectors: 8, TargetType: TargetLinear, TargetData: first},
			}},
			{name: "vendor_a", attrs: AttrReadonly, group: 1, extents: []Extent{{NumSectors: 16, TargetType: TargetLinear, TargetData: first + 32}}},
			{name: "system_b", attrs: AttrReadonly, group: 0},
		},
	}
}

func TestV102ZeroAndSplitExtents(t *testing.T) {
	spec := twoPartSpec()
	img := spec.full()
	for i := range 24 * 512 {
		img[96*512+i] = byte(i * 7)
	}
	im, err := Open(bytes.NewReader(img), int64(len(img)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if im.Metadata.Header.Version() != "10.2" || im.Metadata.Header.HeaderSize != 256 || im.Metadata.Header.Flags != HeaderFlagVirtualAB {
		t.Fatalf("header = %+v", im.Metadata.Header)
	}
	if len(im.Disagreements) != 0 || len(im.Slots) != 2 || !im.Slots[1].Identical {
		t.Fatalf("slots %+v disagreements %v", im.Slots, im.Disagreements)
	}
	p, _ := im.Partition("system_a")
	if p.Size != 24*512 || p.Group != "main_a" || p.Attributes != AttrReadonly|AttrUpdated {
		t.Fatalf("system_a = %+v", p)
	}
	pr, err := im.OpenPartition("system_a")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.NewSectionReader(pr, 0, pr.Size()))
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte(nil), img[(96+16)*512:(96+24)*512]...), make([]byte, 8*512)...), img[96*512:(96+8)*512]...)
	if !bytes.Equal(got, want) {
		t.Fatal("system_a bytes do not follow its extents")
	}
	// A read that straddles the zero extent and the next linear one.
	buf := make([]byte, 1000)
	if n, err := pr.ReadAt(buf, 16*512-500+8*512-8*512+4096-500); err != nil || n != 1000 {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	if n, err := pr.ReadAt(buf, pr.Size()-10); n != 10 || err != io.EOF {
		t.Fatalf("ReadAt at end = %d, %v", n, err)
	}
	if pb, _ := im.OpenPartition("system_b"); pb.Size() != 0 {
		t.Fatal("system_b should be empty")
	}
	if _, err := im.OpenPartition("nope"); !errors.Is(err, ErrNoPartition) {
		t.Fatalf("OpenPartition(nope) = %v", err)
	}
}

func TestSlotSelectionAndBackupDisagreement(t *testing.T) {
	spec := twoPartSpec()
	img := spec.full()
	// Slot 1 primary gets different (valid) metadata: drop vendor_a.
	other := spec
	other.parts = spec.parts[:1]
	md := other.metadata()
	off := ReservedBytes + 2*GeometrySize + 1*4096
	copy(img[off:off+4096], make([]byte, 4096))
	copy(img[off:], md)
	im, err := Open(bytes.NewReader(img), int64(len(img)), &Options{Slot: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Metadata.Partitions) != 1 || im.Slots[1].Identical {
		t.Fatalf("slot 1 = %+v", im.Slots[1])
	}
	if len(im.Disagreements) != 1 || !strings.Contains(im.Disagreements[0], "slot 1") {
		t.Fatalf("disagreements = %v", im.Disagreements)
	}
	// Corrupt slot 0's primary header checksum: the backup is used and the problem reported.
	img[ReservedBytes+2*GeometrySize+20] ^= 0xff
	im, err = Open(bytes.NewReader(img), int64(len(img)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(im.Slots[0].PrimaryErr, ErrChecksum) || len(im.Metadata.Partitions) != 3 {
		t.Fatalf("slot 0 = %+v", im.Slots[0])
	}
	// Corrupt the primary geometry: the backup geometry is used.
	img[ReservedBytes+45] ^= 1
	if im, err = Open(bytes.NewReader(img), int64(len(img)), nil); err != nil || len(im.Disagreements) == 0 {
		t.Fatalf("Open with bad primary geometry = %v, %v", err, im)
	}
	if _, err := Open(bytes.NewReader(img), int64(len(img)), &Options{Slot: 2}); err == nil {
		t.Fatal("slot 2 of 2 accepted")
	}
}

func TestMultipleBlockDevices(t *testing.T) {
	spec := twoPartSpec()
	spec.devs = append(spec.devs, BlockDevice{Name: "system_b", Size: 64 << 10})
	spec.parts[2].extents = []Extent{{NumSectors: 4, TargetType: TargetLinear, TargetData: 8, TargetSource: 1}}
	img := spec.full()
	im, err := Open(bytes.NewReader(img), int64(len(img)), nil)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := im.OpenPartition("system_b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pr.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrMissingBlockDevice) {
		t.Fatalf("read without the device = %v", err)
	}
	dev := bytes.Repeat([]byte{0xab}, 64<<10)
	im, err = Open(bytes.NewReader(img), int64(len(img)), &Options{Devices: map[string]Device{"system_b": {bytes.NewReader(dev), int64(len(dev))}}})
	if err != nil {
		t.Fatal(err)
	}
	pr, _ = im.OpenPartition("system_b")
	buf := make([]byte, pr.Size())
	if _, err := pr.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, dev[:len(buf)]) {
		t.Fatalf("read from second device = %v", err)
	}
}

func TestHostileMetadata(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*lpSpec)
		want   string
	}{
		{"extent past device", func(s *lpSpec) { s.parts[1].extents[0].TargetData = 510 }, "runs past the block device size"},
		{"extent past image", func(s *lpSpec) { s.devs[0].Size = 1 << 30; s.parts[1].extents[0].TargetData = 1 << 20 }, "past the image end"},
		{"extent in metadata", func(s *lpSpec) { s.parts[1].extents[0].TargetData = 10 }, "inside the metadata"},
		{"overlap", func(s *lpSpec) { s.parts[1].extents[0].TargetData = 96 + 4 }, "overlaps"},
		{"bad group", func(s *lpSpec) { s.parts[0].group = 7 }, "group index 7"},
		{"bad device", func(s *lpSpec) { s.parts[0].extents[0].TargetSource = 3 }, "block device index 3"},
		{"bad type", func(s *lpSpec) { s.parts[0].extents[1].TargetType = 9 }, "unknown target type 9"},
		{"bad attrs", func(s *lpSpec) { s.minor = 0; s.parts[0].attrs = AttrUpdated }, "not valid for version 10.0"},
		{"duplicate name", func(s *lpSpec) { s.parts[1].name = "system_a" }, "duplicate"},
		{"no devices", func(s *lpSpec) { s.devs = nil }, "no block devices"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := twoPartSpec()
			c.modify(&spec)
			img := spec.full()
			_, err := Open(bytes.NewReader(img), int64(len(img)), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open = %v, want an error containing %q", err, c.want)
			}
		})
	}
	// Absurd counts and sizes in raw bytes.
	spec := twoPartSpec()
	img := spec.full()
	mdOff := ReservedBytes + 2*GeometrySize
	raw := func(mut func([]byte)) error {
		b := append([]byte(nil), img...)
		mut(b)
		// Re-seal the header checksum of both copies of slot 0 so the table checks are reached.
		for _, off := range []int{mdOff, mdOff + 2*4096} {
			h := b[off : off+headerV2Size]
			clear(h[12:44])
			s := sha256.Sum256(h)
			copy(h[12:], s[:])
		}
		_, err := Open(bytes.NewReader(b), int64(len(b)), nil)
		return err
	}
	if err := raw(func(b []byte) {
		for _, off := range []int{mdOff, mdOff + 2*4096} {
			binary.LittleEndian.PutUint32(b[off+84:], 1<<30)
		}
	}); err == nil || !strings.Contains(err.Error(), "run past tables_size") {
		t.Fatalf("absurd partition count: %v", err)
	}
	if err := raw(func(b []byte) {
		for _, off := range []int{mdOff, mdOff + 2*4096} {
			binary.LittleEndian.PutUint32(b[off+44:], 1<<31)
		}
	}); err == nil || !strings.Contains(err.Error(), "exceeds metadata_max_size") {
		t.Fatalf("absurd tables_size: %v", err)
	}
	if err := raw(func(b []byte) {
		for _, off := range []int{mdOff, mdOff + 2*4096} {
			b[off+300] ^= 1 // inside the tables
		}
	}); !errors.Is(err, ErrChecksum) {
		t.Fatalf("bad tables checksum: %v", err)
	}
	// Geometry claiming more slots than the image holds.
	g := spec
	g.slots = 60
	b := append([]byte(nil), img...)
	copy(b[ReservedBytes:], g.geometry())
	copy(b[ReservedBytes+GeometrySize:], g.geometry())
	if _, err := Open(bytes.NewReader(b), int64(len(b)), nil); err == nil || !strings.Contains(err.Error(), "past the image end") {
		t.Fatalf("too many slots: %v", err)
	}
	if _, err := Open(bytes.NewReader(nil), 0, nil); !errors.Is(err, ErrNotSuper) {
		t.Fatalf("empty input: %v", err)
	}
}

func sampleBytes(t testing.TB, name string) []byte {
	b, err := os.ReadFile(samplefacts.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzOpen(f *testing.F) {
	f.Add(sampleBytes(f, "aosp-system-core/super.img"))
	f.Add(sampleBytes(f, "aosp-system-core/super_empty.img"))
	f.Add(twoPartSpec().full())
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := Open(bytes.NewReader(data), int64(len(data)), nil)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, p := range im.Metadata.Partitions {
			pr, err := im.OpenPartition(p.Name)
			if err != nil {
				continue
			}
			if pr.Size() != p.Size {
				t.Fatalf("reader size %d != partition size %d", pr.Size(), p.Size)
			}
			buf := make([]byte, 4096)
			n, err := pr.ReadAt(buf, 0)
			if n > len(buf) || (err == nil && int64(n) != min(4096, p.Size)) {
				t.Fatalf("ReadAt = %d, %v", n, err)
			}
		}
	})
}
