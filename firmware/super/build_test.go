package super

import (
	"bytes"
	"errors"
	"testing"
)

type memWA struct{ b []byte }

func (m *memWA) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }

func testMetadata(size uint64) (Geometry, *Metadata) {
	g := Geometry{MetadataMaxSize: 65536, MetadataSlotCount: 2, LogicalBlockSize: 4096}
	first := (MetadataEnd(g) + 1<<20 - 1) / (1 << 20) * (1 << 20)
	return g, &Metadata{
		Header:       Header{Major: 10, Minor: 0},
		Groups:       []Group{{Name: "default"}, {Name: "small", MaximumSize: 2 << 20}},
		BlockDevices: []BlockDevice{{Name: "super", FirstLogicalSector: uint64(first / SectorSize), Alignment: 1 << 20, Size: size}},
	}
}

func TestFormatResizeRoundTrip(t *testing.T) {
	g, md := testMetadata(16 << 20)
	for _, n := range []string{"system", "vendor", "odm"} {
		if err := md.AddPartition(n, "default", AttrReadonly); err != nil {
			t.Fatal(err)
		}
	}
	if err := md.AddPartition("system", "default", 0); !errors.Is(err, ErrExists) {
		t.Fatalf("adding system twice: %v", err)
	}
	if err := md.AddPartition("x", "nogroup", 0); err == nil {
		t.Fatal("a partition in a missing group was added")
	}
	// system 3 MiB + 1 byte rounds up to a block; vendor takes the next aligned region.
	if err := md.Resize(g, "system", 3<<20+1); err != nil {
		t.Fatal(err)
	}
	if err := md.Resize(g, "vendor", 2<<20); err != nil {
		t.Fatal(err)
	}
	sys := md.Partitions[md.Find("system")]
	if sys.Size != 3<<20+4096 || len(sys.Extents) != 1 || sys.Extents[0].TargetData*SectorSize != 1<<20 {
		t.Fatalf("system after resize: %+v", sys)
	}
	ven := md.Partitions[md.Find("vendor")]
	if ven.Extents[0].TargetData*SectorSize != 5<<20 {
		t.Fatalf("vendor starts at %d, want the next 1 MiB boundary after system (5 MiB)", ven.Extents[0].TargetData*SectorSize)
	}
	// Shrink system to 1 MiB, grow odm by 4 MiB: odm fills the freed gap first, then continues
	// after vendor, in two extents.
	if err := md.Resize(g, "system", 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := md.Resize(g, "odm", 4<<20); err != nil {
		t.Fatal(err)
	}
	odm := md.Partitions[md.Find("odm")]
	if len(odm.Extents) != 2 || odm.Extents[0].TargetData*SectorSize != 2<<20 || odm.Size != 4<<20 {
		t.Fatalf("odm: %+v", odm)
	}
	if err := md.Resize(g, "odm", 64<<20); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("growing past the device: %v", err)
	}
	if err := md.AddPartition("tiny", "small", 0); err != nil {
		t.Fatal(err)
	}
	if err := md.Resize(g, "tiny", 3<<20); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("growing past the group maximum: %v", err)
	}

	img := &memWA{b: make([]byte, 16<<20)}
	if err := Format(img, g, md); err != nil {
		t.Fatal(err)
	}
	g2, md2, err := Parse(img.b)
	if err != nil {
		t.Fatal(err)
	}
	if g2.MetadataSlotCount != 2 || g2.MetadataMaxSize != 65536 {
		t.Fatalf("geometry read back: %+v", g2)
	}
	for _, p := range md.Partitions {
		q := md2.Partitions[md2.Find(p.Name)]
		if q.Size != p.Size || len(q.Extents) != len(p.Extents) || q.Group != p.Group {
			t.Errorf("%s read back as %+v, wrote %+v", p.Name, q, p)
		}
	}
	im, err := Open(bytes.NewReader(img.b), int64(len(img.b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range im.Slots {
		if !s.Identical {
			t.Errorf("slot %d: primary and backup differ", s.Slot)
		}
	}

	// super_empty.img: the same metadata, empty layout.
	ge, me, err := Parse(EncodeEmpty(g, md))
	if err != nil {
		t.Fatal(err)
	}
	if !ge.Same(g2) || len(me.Partitions) != len(md.Partitions) {
		t.Fatalf("empty image read back: %+v %d partitions", ge, len(me.Partitions))
	}
}

func TestImportPartitions(t *testing.T) {
	g, old := testMetadata(16 << 20)
	for _, n := range []string{"system_a", "system_b"} {
		old.AddPartition(n, "default", 0)
		if err := old.Resize(g, n, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	_, md := testMetadata(16 << 20)
	md.AddPartition("system_a", "default", 0)
	md.AddPartition("system_b", "default", 0)
	if err := md.ImportPartitions(old, map[string]bool{"system_b": true}); err != nil {
		t.Fatal(err)
	}
	if md.Partitions[md.Find("system_b")].Size != 1<<20 || md.Partitions[md.Find("system_a")].Size != 0 {
		t.Fatalf("after import: %+v", md.Partitions)
	}
	if err := md.ImportPartitions(old, map[string]bool{"system_b": true}); err == nil {
		t.Fatal("importing over a non-empty partition succeeded")
	}
	_, other := testMetadata(32 << 20)
	if err := other.ImportPartitions(old, map[string]bool{"system_b": true}); err == nil {
		t.Fatal("importing from a different block device succeeded")
	}
}
