package sim

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/provkit/provkit/firmware/sparse"

	"github.com/provkit/provkit/internal/testtool"
)

// memDisk is an io.WriterAt over a fixed buffer.
type memDisk []byte

func (m memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, errors.New("write past the end of the partition")
	}
	return copy(m[off:], p), nil
}

// TestApplySparseMatchesSimg2img converts an image with the real img2simg and checks that applying
// the sparse file gives back the raw image, as simg2img does.
func TestApplySparseMatchesSimg2img(t *testing.T) {
	img2simg := testtool.Require(t, "img2simg")[0]
	dir := t.TempDir()
	raw := make([]byte, 6<<20)
	rand.Read(raw[:1<<20])
	for i := 2 << 20; i < 3<<20; i += 4 {
		copy(raw[i:], []byte{0xde, 0xad, 0xbe, 0xef}) // a fill run
	}
	rand.Read(raw[5<<20 : 5<<20+4096])
	os.WriteFile(filepath.Join(dir, "raw.img"), raw, 0o644)
	if out, err := exec.Command(img2simg, filepath.Join(dir, "raw.img"), filepath.Join(dir, "sparse.img")).CombinedOutput(); err != nil {
		t.Fatalf("img2simg: %v\n%s", err, out)
	}
	sparse, _ := os.ReadFile(filepath.Join(dir, "sparse.img"))
	if !IsSparse(sparse) {
		t.Fatal("img2simg output lacks the sparse magic")
	}
	disk := make(memDisk, len(raw))
	if err := applySparse(disk, int64(len(disk)), bytes.NewReader(sparse), int64(len(sparse))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(disk, raw) {
		t.Fatal("applied sparse image differs from the raw image")
	}
	// The partition is untouched when the image is malformed anywhere, even in its last chunk.
	bad := append([]byte(nil), sparse...)
	bad = bad[:len(bad)-1]
	disk2 := make(memDisk, len(raw))
	if err := applySparse(disk2, int64(len(disk2)), bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrBadSparse) {
		t.Fatalf("truncated image: %v", err)
	}
	if !bytes.Equal(disk2, make(memDisk, len(raw))) {
		t.Fatal("a malformed image was partly written")
	}
	// Too big for the partition.
	if err := applySparse(make(memDisk, 1<<20), 1<<20, bytes.NewReader(sparse), int64(len(sparse))); !errors.Is(err, ErrBadSparse) {
		t.Fatalf("oversized image: %v", err)
	}
}

func sparseImage(blockSize uint32, chunks ...[]byte) []byte {
	var blocks uint32
	var body []byte
	for _, c := range chunks {
		blocks += binary.LittleEndian.Uint32(c[4:])
		body = append(body, c...)
	}
	h := make([]byte, 28)
	le := binary.LittleEndian
	le.PutUint32(h[0:], sparse.Magic)
	le.PutUint16(h[4:], 1)
	le.PutUint16(h[8:], 28)
	le.PutUint16(h[10:], 12)
	le.PutUint32(h[12:], blockSize)
	le.PutUint32(h[16:], blocks)
	le.PutUint32(h[20:], uint32(len(chunks)))
	return append(h, body...)
}

func chunk(typ uint16, blocks uint32, data []byte) []byte {
	c := make([]byte, 12)
	binary.LittleEndian.PutUint16(c[0:], typ)
	binary.LittleEndian.PutUint32(c[4:], blocks)
	binary.LittleEndian.PutUint32(c[8:], uint32(12+len(data)))
	return append(c, data...)
}

func FuzzApplySparse(f *testing.F) {
	f.Add(sparseImage(4096, chunk(sparse.ChunkRaw, 1, make([]byte, 4096)), chunk(sparse.ChunkFill, 2, []byte{1, 2, 3, 4}), chunk(sparse.ChunkDontCare, 1, nil), chunk(sparse.ChunkCRC32, 0, []byte{0, 0, 0, 0})))
	f.Add(sparseImage(1024, chunk(sparse.ChunkRaw, 1, make([]byte, 1024))))
	f.Add([]byte{0x3a, 0xff, 0x26, 0xed})
	f.Fuzz(func(t *testing.T, img []byte) {
		disk := make(memDisk, 64<<10)
		err := applySparse(disk, int64(len(disk)), bytes.NewReader(img), int64(len(img)))
		if err != nil && !errors.Is(err, ErrBadSparse) {
			t.Fatalf("unclassified error: %v", err)
		}
		if err != nil && !bytes.Equal(disk, make(memDisk, len(disk))) {
			t.Fatal("a rejected image changed the partition")
		}
	})
}
