package super

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testimage/lpwrite"
)

type memWriterAt struct{ b []byte }

func (m *memWriterAt) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }

func TestWriteInPlace(t *testing.T) {
	old := bytes.Repeat([]byte{0xaa}, 3<<20)
	img, err := lpwrite.Write(lpwrite.Spec{DeviceSize: 16 << 20, MetadataMaxSize: 65536, Slots: 2, Alignment: 1 << 20,
		Partitions: []lpwrite.Partition{{Name: "system_a", Data: bytes.Repeat([]byte{0x11}, 1<<20)}, {Name: "product_a", Data: old}}})
	if err != nil {
		t.Fatal(err)
	}
	im, err := Open(bytes.NewReader(img), int64(len(img)), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &memWriterAt{b: append([]byte(nil), img...)}
	repl := bytes.Repeat([]byte("new"), 100000)
	if err := im.WriteInPlace(context.Background(), w, "product_a", bytes.NewReader(repl), int64(len(repl))); err != nil {
		t.Fatal(err)
	}
	got, err := Open(bytes.NewReader(w.b), int64(len(w.b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		pr, err := got.OpenPartition(name)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, pr.Size())
		if _, err := pr.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		return b
	}
	p := read("product_a")
	if !bytes.Equal(p[:len(repl)], repl) || !bytes.Equal(p[len(repl):], make([]byte, len(p)-len(repl))) {
		t.Error("product_a does not hold the new bytes followed by zeros")
	}
	if s := read("system_a"); !bytes.Equal(s, bytes.Repeat([]byte{0x11}, 1<<20)) {
		t.Error("system_a changed")
	}
	if !bytes.Equal(w.b[:1<<20], img[:1<<20]) {
		t.Error("the LP metadata area changed")
	}
	big := make([]byte, 4<<20)
	if err := im.WriteInPlace(context.Background(), w, "product_a", bytes.NewReader(big), int64(len(big))); !errors.Is(err, ErrNoRoom) {
		t.Errorf("too large: %v", err)
	}
	if err := im.WriteInPlace(context.Background(), w, "vendor_a", bytes.NewReader(big), 1); !errors.Is(err, ErrNoPartition) {
		t.Errorf("missing partition: %v", err)
	}
}

func TestEncodeMetadataRoundTrip(t *testing.T) {
	img, err := lpwrite.Write(lpwrite.Spec{DeviceSize: 16 << 20, MetadataMaxSize: 65536, Slots: 3, Alignment: 1 << 20,
		Partitions: []lpwrite.Partition{{Name: "system_a", Attributes: 1, Data: make([]byte, 1<<20)}, {Name: "system_b"}, {Name: "product_a", Data: make([]byte, 8192)}}})
	if err != nil {
		t.Fatal(err)
	}
	im, err := Open(bytes.NewReader(img), int64(len(img)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := EncodeMetadata(im.Metadata); !bytes.Equal(got, im.Metadata.raw) {
		t.Fatalf("re-encoded metadata (%d bytes) differs from the image's (%d bytes)", len(got), len(im.Metadata.raw))
	}
}

// TestGrow grows product_a past its extent, writes the metadata to every slot copy, and reads the
// image back: every copy verifies and agrees, product_a holds the larger contents, system_a is
// untouched; then a group limit and a full device are refused.
func TestGrow(t *testing.T) {
	sys := bytes.Repeat([]byte{0x11}, 1<<20)
	img, err := lpwrite.Write(lpwrite.Spec{DeviceSize: 16 << 20, MetadataMaxSize: 65536, Slots: 2, Alignment: 1 << 20,
		Partitions: []lpwrite.Partition{{Name: "product_a", Data: make([]byte, 1<<20)}, {Name: "system_a", Data: sys}}})
	if err != nil {
		t.Fatal(err)
	}
	im, err := Open(bytes.NewReader(img), int64(len(img)), nil)
	if err != nil {
		t.Fatal(err)
	}
	md, err := im.Grow("product_a", 3<<20)
	if err != nil {
		t.Fatal(err)
	}
	w := &memWriterAt{b: append([]byte(nil), img...)}
	if err := im.WriteMetadata(w, md); err != nil {
		t.Fatal(err)
	}
	got, err := Open(bytes.NewReader(w.b), int64(len(w.b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got.Slots {
		if s.PrimaryErr != nil || s.BackupErr != nil || !s.Identical {
			t.Errorf("slot %d: %+v", s.Slot, s)
		}
	}
	p, _ := got.Partition("product_a")
	if p.Size != 3<<20 || len(p.Extents) != 2 {
		t.Fatalf("product_a: %+v", p)
	}
	data := bytes.Repeat([]byte("grown"), (3<<20)/5)
	if err := got.WriteInPlace(context.Background(), w, "product_a", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	again, _ := Open(bytes.NewReader(w.b), int64(len(w.b)), nil)
	for name, want := range map[string][]byte{"product_a": data, "system_a": sys} {
		pr, err := again.OpenPartition(name)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, len(want))
		if _, err := pr.ReadAt(b, 0); err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s: contents differ (%v)", name, err)
		}
	}
	if _, err := again.Grow("product_a", 64<<20); !errors.Is(err, ErrNoRoom) {
		t.Errorf("grow past the device: %v", err)
	}
	again.Metadata.Groups[0].MaximumSize = 5 << 20
	if _, err := again.Grow("product_a", 6<<20); !errors.Is(err, ErrNoRoom) || !strings.Contains(err.Error(), "group") {
		t.Errorf("grow past the group limit: %v", err)
	}
}
