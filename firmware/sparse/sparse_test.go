package sparse

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// checkReadAt compares n random ReadAt calls on im with raw.
func checkReadAt(t *testing.T, im *Image, raw []byte, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, uint64(len(raw))))
	for i := 0; i < n; i++ {
		off := rng.Int64N(int64(len(raw)) + 1)
		ln := rng.IntN(3*int(im.Header().BlockSize) + 1)
		p := make([]byte, ln)
		got, err := im.ReadAt(p, off)
		want := min(ln, len(raw)-int(off))
		if got != want {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, want %d (err %v)", ln, off, got, want, err)
		}
		if got < ln && err != io.EOF {
			t.Fatalf("short ReadAt(%d at %d) returned err %v, want io.EOF", ln, off, err)
		}
		if got == ln && err != nil {
			t.Fatalf("ReadAt(%d at %d): %v", ln, off, err)
		}
		if !bytes.Equal(p[:got], raw[off:int(off)+got]) {
			t.Fatalf("ReadAt(%d at %d) returned wrong bytes", ln, off)
		}
	}
}

// randomImage builds a raw image of nblocks blocks mixing random data, zero blocks (some of them
// holes in the file), blocks of one repeated word, and near-fill blocks that differ in one byte.
func randomImage(t *testing.T, dir string, rng *rand.Rand, bs, nblocks int, tail int) (string, []byte) {
	t.Helper()
	raw := make([]byte, bs*nblocks+tail)
	for b := 0; b < nblocks; {
		runLen := 1 + rng.IntN(6)
		kind := rng.IntN(5)
		word := rng.Uint32()
		if rng.IntN(3) == 0 {
			word = 0xFFFFFFFF
		}
		for i := 0; i < runLen && b < nblocks; i, b = i+1, b+1 {
			blk := raw[b*bs : (b+1)*bs]
			switch kind {
			case 0: // random
				for j := range blk {
					blk[j] = byte(rng.Uint32())
				}
			case 1: // zeros
			case 2: // fill
				for j := 0; j < bs; j += 4 {
					binary.LittleEndian.PutUint32(blk[j:], word)
				}
			case 3: // fill but one byte off: must stay RAW
				for j := 0; j < bs; j += 4 {
					binary.LittleEndian.PutUint32(blk[j:], word)
				}
				blk[rng.IntN(bs)] ^= 0x5A
			case 4: // text-like
				for j := range blk {
					blk[j] = 'a' + byte(rng.IntN(26))
				}
			}
		}
	}
	for j := bs * nblocks; j < len(raw); j++ {
		raw[j] = byte(rng.Uint32())
	}
	p := filepath.Join(dir, "raw.img")
	// Write with holes where the data is zero so img2simg also sees a sparse input file.
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; b < len(raw); b += bs {
		blk := raw[b:min(b+bs, len(raw))]
		if bytes.Count(blk, []byte{0}) == len(blk) && rng.IntN(2) == 0 {
			continue
		}
		if _, err := f.WriteAt(blk, int64(b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(int64(len(raw))); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p, raw
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func writeSparse(t *testing.T, raw []byte, bs uint32, opts WriteOptions) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := Write(&out, bytes.NewReader(raw), int64(len(raw)), bs, opts); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestAgainstLibsparse cross-checks reading and writing with Debian's img2simg and simg2img on
// random images: provkit reads img2simg's output back to the raw bytes, writes the same bytes
// img2simg writes, and simg2img expands provkit's output (plain, with DONT_CARE zeros, with a CRC32
// chunk) back to the raw image.
func TestAgainstLibsparse(t *testing.T) {
	testtool.Require(t, "img2simg", "simg2img")
	for _, tc := range []struct {
		bs, blocks, tail int
	}{
		{4096, 1, 0}, {4096, 97, 0}, {1024, 300, 0}, {8192, 40, 0}, {4096, 33, 1000}, {2048, 64, 4},
	} {
		t.Run("", func(t *testing.T) {
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(uint64(tc.bs), uint64(tc.blocks)))
			rawPath, raw := randomImage(t, dir, rng, tc.bs, tc.blocks, tc.tail)
			padded := append(append([]byte(nil), raw...), make([]byte, (tc.bs-len(raw)%tc.bs)%tc.bs)...)

			ref := filepath.Join(dir, "ref.simg")
			runTool(t, "img2simg", rawPath, ref, strconv.Itoa(tc.bs))
			refBytes, err := os.ReadFile(ref)
			if err != nil {
				t.Fatal(err)
			}
			im, err := Open(bytes.NewReader(refBytes), int64(len(refBytes)))
			if err != nil {
				t.Fatalf("opening img2simg output: %v", err)
			}
			if im.Size() != int64(len(padded)) {
				t.Fatalf("Size = %d, want %d", im.Size(), len(padded))
			}
			checkReadAt(t, im, padded, 300)
			var exp bytes.Buffer
			if _, err := im.WriteTo(&exp); err != nil || !bytes.Equal(exp.Bytes(), padded) {
				t.Fatalf("WriteTo differs from the raw image (err %v)", err)
			}

			ours := writeSparse(t, raw, uint32(tc.bs), WriteOptions{})
			if !bytes.Equal(ours, refBytes) {
				t.Errorf("Write output (%d bytes) differs from img2simg's (%d bytes)", len(ours), len(refBytes))
			}
			for name, opts := range map[string]WriteOptions{
				"plain": {}, "dontcare": {DontCareZeros: true}, "crc": {CRC: true}, "both": {DontCareZeros: true, CRC: true},
			} {
				s := writeSparse(t, raw, uint32(tc.bs), opts)
				sp := filepath.Join(dir, name+".simg")
				if err := os.WriteFile(sp, s, 0o644); err != nil {
					t.Fatal(err)
				}
				back := filepath.Join(dir, name+".raw")
				runTool(t, "simg2img", sp, back)
				got, err := os.ReadFile(back)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, padded) {
					t.Errorf("%s: simg2img of provkit's sparse image differs from the raw image", name)
				}
				im2, err := Open(bytes.NewReader(s), int64(len(s)))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if err := im2.Verify(); err != nil {
					t.Errorf("%s: Verify: %v", name, err)
				}
				if opts.DontCareZeros {
					for _, c := range im2.Chunks() {
						if c.Type == ChunkFill && c.Value == 0 {
							t.Errorf("%s: FILL 0 chunk %d with DontCareZeros", name, c.Index)
						}
					}
				}
			}
		})
	}
}

// TestExpandKeepsHoles checks that Expand writes the same bytes as simg2img and leaves DONT_CARE
// chunks as holes.
func TestExpandKeepsHoles(t *testing.T) {
	raw := make([]byte, 4096*64)
	for i := 0; i < 4096; i++ {
		raw[i] = byte(i)
	}
	s := writeSparse(t, raw, 4096, WriteOptions{DontCareZeros: true})
	im, err := Open(bytes.NewReader(s), int64(len(s)))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "out.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Expand(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, _ := os.ReadFile(p)
	if !bytes.Equal(got, raw) {
		t.Fatal("Expand output differs")
	}
}

// TestCRC checks that a CRC32 chunk is checked, both by provkit and by what it writes.
func TestCRC(t *testing.T) {
	raw := make([]byte, 4096*8)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	copy(raw[4096*3:], bytes.Repeat([]byte{1, 2, 3, 4}, 1024))
	s := writeSparse(t, raw, 4096, WriteOptions{CRC: true, DontCareZeros: true})
	im, err := Open(bytes.NewReader(s), int64(len(s)))
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Verify(); err != nil {
		t.Fatalf("Verify of a good image: %v", err)
	}
	// Flip one data byte: structure still fine, CRC must fail.
	bad := append([]byte(nil), s...)
	bad[HeaderSize+ChunkHeaderSize+10] ^= 1
	im, err = Open(bytes.NewReader(bad), int64(len(bad)))
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Verify(); !errors.Is(err, ErrChecksum) {
		t.Fatalf("Verify of a corrupted image = %v, want ErrChecksum", err)
	}
	// The header image checksum is checked when set.
	bad = append([]byte(nil), s...)
	binary.LittleEndian.PutUint32(bad[24:], 0x12345678)
	im, _ = Open(bytes.NewReader(bad), int64(len(bad)))
	if err := im.Verify(); !errors.Is(err, ErrChecksum) {
		t.Fatalf("Verify with a wrong header checksum = %v, want ErrChecksum", err)
	}
}

// sparseBytes assembles a sparse file from a header and raw chunk descriptions.
func sparseBytes(bs, totalBlocks uint32, chunks ...[]byte) []byte {
	var b bytes.Buffer
	h := make([]byte, HeaderSize)
	le := binary.LittleEndian
	le.PutUint32(h[0:], Magic)
	le.PutUint16(h[4:], 1)
	le.PutUint16(h[8:], HeaderSize)
	le.PutUint16(h[10:], ChunkHeaderSize)
	le.PutUint32(h[12:], bs)
	le.PutUint32(h[16:], totalBlocks)
	le.PutUint32(h[20:], uint32(len(chunks)))
	b.Write(h)
	for _, c := range chunks {
		b.Write(c)
	}
	return b.Bytes()
}

func chunk(typ uint16, blocks, total uint32, data []byte) []byte {
	c := make([]byte, ChunkHeaderSize)
	le := binary.LittleEndian
	le.PutUint16(c[0:], typ)
	le.PutUint32(c[4:], blocks)
	le.PutUint32(c[8:], total)
	return append(c, data...)
}

// TestHostile checks that malformed images fail with ErrCorrupt and an error naming the chunk and
// offset, never a panic.
func TestHostile(t *testing.T) {
	good := sparseBytes(8, 3, chunk(ChunkRaw, 1, 20, make([]byte, 8)), chunk(ChunkFill, 1, 16, []byte{1, 2, 3, 4}), chunk(ChunkDontCare, 1, 12, nil))
	if _, err := Open(bytes.NewReader(good), int64(len(good))); err != nil {
		t.Fatalf("good image: %v", err)
	}
	set := func(b []byte, off int, v uint32) []byte {
		c := append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(c[off:], v)
		return c
	}
	set16 := func(b []byte, off int, v uint16) []byte {
		c := append([]byte(nil), b...)
		binary.LittleEndian.PutUint16(c[off:], v)
		return c
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"magic", set(good, 0, 1), "bad magic"},
		{"major", set16(good, 4, 2), "major version 2"},
		{"file header size", set16(good, 8, 20), "file header size 20"},
		{"chunk header size", set16(good, 10, 8), "chunk header size 8"},
		{"block size", set(good, 12, 6), "block size 6"},
		{"zero blocks", set(good, 16, 0), "total block count"},
		{"absurd chunk count", set(good, 20, 0xFFFFFFF0), "declares 4294967280 chunks"},
		{"too few blocks declared", set(good, 16, 2), "chunk 2 (DONT_CARE) at offset 64: chunks cover 3 blocks, more than the 2"},
		{"too many blocks declared", set(good, 16, 9), "chunks cover 3 blocks but the header declares 9"},
		{"raw size mismatch", set(good, 28+4, 2), "chunk 0 (RAW) at offset 28: 2 blocks need 16 data bytes"},
		{"raw past end", set(set(good, 28+4, 1000), 28+8, 8012), "chunk 0 (RAW) at offset 28: 8000 bytes of data run past the end"},
		{"fill size", set(good, 48+8, 20), "chunk 1 (FILL) at offset 48"},
		{"total below header", set(good, 48+8, 4), "total size 4 is smaller than the chunk header"},
		{"dont care with data", set(good, 64+8, 16), "chunk 2 (DONT_CARE) at offset 64"},
		{"unknown type", set16(good, 64, 0xCAC9), "unknown chunk type 0xCAC9"},
		{"truncated header", good[:20], "file truncated"},
		{"truncated chunks", good[:len(good)-6], "chunk"},
		{"overflow", set(set(good, 12, 0xFFFFFFFC), 16, 0xFFFFFFFF), "overflow"},
		{"wrapping total", sparseBytes(4, 2, chunk(ChunkDontCare, 0xFFFFFFFF, 12, nil), chunk(ChunkDontCare, 3, 12, nil)), "more than the 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(tc.data), int64(len(tc.data)))
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotSparse) {
				t.Errorf("error %v is neither ErrCorrupt nor ErrNotSparse", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestTruncatedRawData checks that data missing behind a valid index is reported on read with the
// chunk and file offset, not returned as zeros.
func TestTruncatedRawData(t *testing.T) {
	s := sparseBytes(8, 2, chunk(ChunkRaw, 2, 28, make([]byte, 16)))
	im, err := Open(bytes.NewReader(s), int64(len(s))+100) // caller claims a bigger file
	if err != nil {
		t.Fatal(err)
	}
	short := &shortReader{bytes.NewReader(s[:len(s)-4])}
	im.r = short
	_, err = im.ReadAt(make([]byte, 16), 0)
	if err == nil || !strings.Contains(err.Error(), "chunk 0 (RAW) data at file offset 40") {
		t.Fatalf("ReadAt on truncated data = %v", err)
	}
}

type shortReader struct{ r *bytes.Reader }

func (s *shortReader) ReadAt(p []byte, off int64) (int, error) { return s.r.ReadAt(p, off) }

func TestWriteRejects(t *testing.T) {
	for _, bs := range []uint32{0, 6} {
		if err := Write(io.Discard, bytes.NewReader(nil), 8, bs, WriteOptions{}); err == nil {
			t.Errorf("block size %d accepted", bs)
		}
	}
	if err := Write(io.Discard, bytes.NewReader(nil), 0, 4096, WriteOptions{}); err == nil {
		t.Error("empty image accepted")
	}
	// A raw image shorter than its claimed size is an error naming the offset.
	err := Write(io.Discard, bytes.NewReader(make([]byte, 100)), 8192, 4096, WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "offset 0") {
		t.Errorf("short raw image: %v", err)
	}
}

// TestRoundTrip writes and reads back random images of many sizes with no external tool.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 40; i++ {
		bs := uint32(4 * (1 + rng.IntN(300)))
		n := rng.IntN(20 * int(bs))
		raw := make([]byte, n)
		for j := 0; j < n; j += int(bs) {
			switch rng.IntN(3) {
			case 0:
				for k := j; k < min(j+int(bs), n); k++ {
					raw[k] = byte(rng.Uint32())
				}
			case 1:
				w := rng.Uint32()
				for k := j; k+4 <= min(j+int(bs), n); k += 4 {
					binary.LittleEndian.PutUint32(raw[k:], w)
				}
			}
		}
		if n == 0 {
			continue
		}
		s := writeSparse(t, raw, bs, WriteOptions{DontCareZeros: i%2 == 0, CRC: i%3 == 0})
		im, err := Open(bytes.NewReader(s), int64(len(s)))
		if err != nil {
			t.Fatal(err)
		}
		padded := append(append([]byte(nil), raw...), make([]byte, int(im.Size())-n)...)
		checkReadAt(t, im, padded, 50)
		if err := im.Verify(); err != nil {
			t.Fatal(err)
		}
	}
}
