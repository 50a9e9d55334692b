package super

import (
	"bytes"
	"context"
	"errors"
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
