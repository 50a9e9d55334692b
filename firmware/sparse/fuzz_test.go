package sparse

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to Open and, when they index, reads the whole image both ways.
// Invariants: no panic; an indexed image covers exactly TotalBlocks blocks; random access and the
// stream agree; a read never returns more than Size bytes.
func FuzzOpen(f *testing.F) {
	for _, name := range []string{"sparse_test.bin", "sparse_test_blk1024.bin", "test_file.bin.sparse"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	raw := bytes.Repeat([]byte("provkit!"), 300)
	raw = append(raw, make([]byte, 2048)...)
	for _, opts := range []WriteOptions{{}, {DontCareZeros: true, CRC: true}} {
		var b bytes.Buffer
		if err := Write(&b, bytes.NewReader(raw), int64(len(raw)), 512, opts); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Add(sparseBytes(8, 3, chunk(ChunkRaw, 1, 20, make([]byte, 8)), chunk(ChunkFill, 1, 16, []byte{1, 2, 3, 4}), chunk(ChunkCRC32, 0, 16, []byte{0, 0, 0, 0}), chunk(ChunkDontCare, 1, 12, nil)))
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		h := im.Header()
		var blocks uint64
		for _, c := range im.Chunks() {
			blocks += uint64(c.Blocks)
		}
		if blocks != uint64(h.TotalBlocks) || im.Size() != int64(h.TotalBlocks)*int64(h.BlockSize) {
			t.Fatalf("chunks cover %d blocks, header %d, size %d", blocks, h.TotalBlocks, im.Size())
		}
		if im.Size() > 1<<20 {
			// Still exercise random access on huge FILL/DONT_CARE images, without expanding them.
			p := make([]byte, 4096)
			if _, err := im.ReadAt(p, im.Size()-int64(len(p))); err != nil && err != io.EOF {
				t.Fatalf("ReadAt at the end: %v", err)
			}
			return
		}
		var stream bytes.Buffer
		_, serr := im.WriteTo(&stream)
		all, rerr := io.ReadAll(io.NewSectionReader(im, 0, im.Size()))
		if rerr != nil {
			t.Fatalf("ReadAt over an indexed in-memory image: %v", rerr)
		}
		if int64(len(all)) != im.Size() {
			t.Fatalf("read %d bytes, Size %d", len(all), im.Size())
		}
		if serr == nil && !bytes.Equal(stream.Bytes(), all) {
			t.Fatal("WriteTo and ReadAt disagree")
		}
	})
}

// FuzzWriteRoundTrip checks that any raw image survives Write then Open byte for byte.
func FuzzWriteRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), uint16(4), false, false)
	f.Add(bytes.Repeat([]byte{0, 0, 0, 0, 1, 2, 3, 4}, 100), uint16(16), true, true)
	f.Fuzz(func(t *testing.T, raw []byte, bs uint16, dontCare, crc bool) {
		bs = (bs%64 + 1) * 4
		if len(raw) == 0 {
			return
		}
		var b bytes.Buffer
		if err := Write(&b, bytes.NewReader(raw), int64(len(raw)), uint32(bs), WriteOptions{DontCareZeros: dontCare, CRC: crc}); err != nil {
			t.Fatal(err)
		}
		im, err := Open(bytes.NewReader(b.Bytes()), int64(b.Len()))
		if err != nil {
			t.Fatalf("reading what Write wrote: %v", err)
		}
		if err := im.Verify(); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, im.Size())
		if _, err := im.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:len(raw)], raw) || bytes.Count(got[len(raw):], []byte{0}) != len(got)-len(raw) {
			t.Fatal("round trip changed the image")
		}
	})
}
