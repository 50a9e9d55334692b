package sparse

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fillBomb is the 44-byte sparse image of the review: one FILL chunk of blocks blocks of a
// non-zero value.
func fillBomb(blocks uint32) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	binary.Write(&b, le, uint32(0xed26ff3a))
	binary.Write(&b, le, []uint16{1, 0, 28, 12})
	binary.Write(&b, le, []uint32{4096, blocks, 1, 0})
	binary.Write(&b, le, []uint16{0xCAC2, 0})
	binary.Write(&b, le, []uint32{blocks, 16, 0xdeadbeef})
	return b.Bytes()
}

// A FILL chunk reads nothing from the input, so only the writes can see Ctrl-C: ExpandContext
// stops at the first write after the context is done.
func TestExpandStopsOnCancel(t *testing.T) {
	bomb := fillBomb(1 << 20) // 4 GiB of 0xdeadbeef
	if len(bomb) != 44 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	im, err := Open(bytes.NewReader(bomb), int64(len(bomb)))
	if err != nil {
		t.Fatal(err)
	}
	if got := im.DataBytes(); got != 4<<30 {
		t.Fatalf("DataBytes = %d, want 4 GiB", got)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	w := &cancelAfter{File: f, n: 3, cancel: cancel}
	err = im.ExpandContext(ctx, w)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ExpandContext: %v, want context.Canceled", err)
	}
	if st, _ := f.Stat(); st.Size() > 8<<20 {
		t.Fatalf("%d bytes written after cancellation", st.Size())
	}
}

// cancelAfter cancels its context after n writes.
type cancelAfter struct {
	*os.File
	n      int
	cancel func()
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return c.File.Write(p)
}
