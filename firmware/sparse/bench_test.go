package sparse

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"
)

// benchImage is a 64 MiB raw image: a third random data, a third zeros, a third fill.
func benchImage() []byte {
	const bs = 4096
	raw := make([]byte, 64<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for b := 0; b < len(raw)/bs; b++ {
		blk := raw[b*bs : (b+1)*bs]
		switch (b / 16) % 3 {
		case 0:
			for i := 0; i+8 <= bs; i += 8 {
				binary.LittleEndian.PutUint64(blk[i:], rng.Uint64())
			}
		case 2:
			for i := 0; i < bs; i += 4 {
				binary.LittleEndian.PutUint32(blk[i:], 0xDEADBEEF)
			}
		}
	}
	return raw
}

func BenchmarkWrite(b *testing.B) {
	raw := benchImage()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if err := Write(io.Discard, bytes.NewReader(raw), int64(len(raw)), 4096, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExpand(b *testing.B) {
	raw := benchImage()
	var s bytes.Buffer
	if err := Write(&s, bytes.NewReader(raw), int64(len(raw)), 4096, WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	im, err := Open(bytes.NewReader(s.Bytes()), int64(s.Len()))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(im.Size())
	for b.Loop() {
		if _, err := im.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadAtRandom reads 4 KiB at random block offsets: the access pattern of a file system
// reader on top of a sparse image.
func BenchmarkReadAtRandom(b *testing.B) {
	raw := benchImage()
	var s bytes.Buffer
	if err := Write(&s, bytes.NewReader(raw), int64(len(raw)), 4096, WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	im, err := Open(bytes.NewReader(s.Bytes()), int64(s.Len()))
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	p := make([]byte, 4096)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		off := rng.Int64N(im.Size()/4096) * 4096
		if _, err := im.ReadAt(p, off); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	raw := benchImage()
	var s bytes.Buffer
	if err := Write(&s, bytes.NewReader(raw), int64(len(raw)), 4096, WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Open(bytes.NewReader(s.Bytes()), int64(s.Len())); err != nil {
			b.Fatal(err)
		}
	}
}
