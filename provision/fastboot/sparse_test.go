package fastboot

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
)

// testImage returns a raw image of n blocks mixing random data, zero runs and a repeated word, so
// that img2simg produces raw, fill and don't-care chunks.
func testImage(n int, tail int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n*4096+tail)
	for blk := 0; blk < n; blk++ {
		p := b[blk*4096 : (blk+1)*4096]
		switch blk % 7 {
		case 0, 1, 2:
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
		case 3:
			for i := 0; i < len(p); i += 4 {
				binary.LittleEndian.PutUint32(p[i:], 0xdeadbeef)
			}
		}
	}
	for i := n * 4096; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// splitToFiles splits the image and writes each piece to dir, checking sizes.
func splitToFiles(t *testing.T, img []byte, limit int64, dir string) []string {
	t.Helper()
	var files []string
	err := SplitImage(bytes.NewReader(img), int64(len(img)), limit, 4096, func(i, n int, size int64, r io.Reader) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if int64(len(data)) != size {
			return fmt.Errorf("piece %d: announced %d bytes, wrote %d", i, size, len(data))
		}
		if size > limit {
			return fmt.Errorf("piece %d: %d bytes, over the limit %d", i, size, limit)
		}
		f := filepath.Join(dir, fmt.Sprintf("piece%03d.simg", i))
		files = append(files, f)
		return os.WriteFile(f, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestSplitMatchesSimg2img cuts sparse (made by img2simg) and raw images into pieces and has the
// reference simg2img put the pieces back together: the result must be the original image.
func TestSplitMatchesSimg2img(t *testing.T) {
	tools := testtool.Require(t, "img2simg", "simg2img")
	for _, tc := range []struct {
		name   string
		blocks int
		tail   int
		limit  int64
		sparse bool
	}{
		{"sparse into many", 300, 0, 100 << 10, true},
		{"sparse into two", 300, 0, 700 << 10, true},
		{"sparse tiny limit", 40, 0, 28 + 36 + 4096, true},
		{"raw into many", 97, 0, 64 << 10, false},
		{"raw with a partial block", 50, 1000, 50 << 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			raw := testImage(tc.blocks, tc.tail)
			rawPath := filepath.Join(dir, "orig.img")
			if err := os.WriteFile(rawPath, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			in := raw
			if tc.sparse {
				simg := filepath.Join(dir, "orig.simg")
				runTool(t, tools[0], rawPath, simg)
				var err error
				if in, err = os.ReadFile(simg); err != nil {
					t.Fatal(err)
				}
			}
			files := splitToFiles(t, in, tc.limit, dir)
			if len(in) > int(tc.limit) && len(files) < 2 {
				t.Fatalf("a %d-byte image was not split under a %d limit", len(in), tc.limit)
			}
			out := filepath.Join(dir, "joined.img")
			runTool(t, tools[1], append(files, out)...)
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want := raw
			if pad := len(raw) % 4096; pad != 0 {
				want = append(append([]byte(nil), raw...), make([]byte, 4096-pad)...)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("simg2img of %d pieces gives %d bytes that differ from the %d-byte original", len(files), len(got), len(want))
			}
		})
	}
}

func TestSplitRejectsBadImages(t *testing.T) {
	good := func() []byte {
		var b bytes.Buffer
		le := binary.LittleEndian
		h := make([]byte, 28)
		le.PutUint32(h[0:], sparseMagic)
		le.PutUint16(h[4:], 1)
		le.PutUint16(h[8:], 28)
		le.PutUint16(h[10:], 12)
		le.PutUint32(h[12:], 4096)
		le.PutUint32(h[16:], 2)
		le.PutUint32(h[20:], 1)
		b.Write(h)
		c := make([]byte, 12)
		le.PutUint16(c[0:], chunkRaw)
		le.PutUint32(c[4:], 2)
		le.PutUint32(c[8:], 12+2*4096)
		b.Write(c)
		b.Write(make([]byte, 2*4096))
		return b.Bytes()
	}
	if err := SplitImage(bytes.NewReader(good()), int64(len(good())), 6000, 4096, func(int, int, int64, io.Reader) error { return nil }); err != nil {
		t.Fatalf("a valid image: %v", err)
	}
	for name, mut := range map[string]func(b []byte) []byte{
		"truncated data":      func(b []byte) []byte { return b[:len(b)-100] },
		"chunk type":          func(b []byte) []byte { b[28] = 0x99; return b },
		"total size":          func(b []byte) []byte { b[28+8]++; return b },
		"too many chunks":     func(b []byte) []byte { binary.LittleEndian.PutUint32(b[20:], 1<<30); return b },
		"blocks past the end": func(b []byte) []byte { binary.LittleEndian.PutUint32(b[16:], 1); return b },
		"block size zero":     func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 0); return b },
	} {
		b := mut(good())
		err := SplitImage(bytes.NewReader(b), int64(len(b)), 6000, 4096, func(_, _ int, _ int64, r io.Reader) error {
			_, err := io.Copy(io.Discard, r)
			return err
		})
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzSplitImage(f *testing.F) {
	f.Add(testImage(3, 0)[:0], int64(20000))
	img := testImage(9, 0)
	f.Add(img, int64(10000))
	// A small valid sparse image: fill, don't care, raw.
	var b bytes.Buffer
	le := binary.LittleEndian
	h := make([]byte, 28)
	le.PutUint32(h[0:], sparseMagic)
	le.PutUint16(h[4:], 1)
	le.PutUint16(h[8:], 28)
	le.PutUint16(h[10:], 12)
	le.PutUint32(h[12:], 512)
	le.PutUint32(h[16:], 7)
	le.PutUint32(h[20:], 4)
	b.Write(h)
	for _, c := range [][3]uint32{{uint32(chunkFill), 2, 16}, {uint32(chunkDontCare), 3, 12}, {uint32(chunkRaw), 2, 12 + 1024}, {uint32(chunkCRC32), 0, 16}} {
		ch := make([]byte, 12)
		le.PutUint16(ch[0:], uint16(c[0]))
		le.PutUint32(ch[4:], c[1])
		le.PutUint32(ch[8:], c[2])
		b.Write(ch)
		b.Write(make([]byte, c[2]-12))
	}
	f.Add(b.Bytes(), int64(700))
	f.Add(b.Bytes(), int64(100000))
	f.Fuzz(func(t *testing.T, data []byte, limit int64) {
		if limit < 0 || limit > 1<<20 {
			return
		}
		watchdog := time.AfterFunc(10*time.Second, func() {
			panic(fmt.Sprintf("SplitImage hangs on limit %d, %d bytes %x", limit, len(data), data[:min(len(data), 64)]))
		})
		defer watchdog.Stop()
		total := int64(0)
		err := SplitImage(bytes.NewReader(data), int64(len(data)), limit, 512, func(i, n int, size int64, r io.Reader) error {
			got, err := io.Copy(io.Discard, r)
			if err != nil {
				return err
			}
			if got != size || size > limit {
				t.Fatalf("piece %d/%d: announced %d, wrote %d, limit %d", i, n, size, got, limit)
			}
			total += got
			return nil
		})
		if err == nil && total > int64(len(data))*4+1<<20 {
			t.Fatalf("%d bytes of pieces from a %d-byte image", total, len(data))
		}
	})
}
