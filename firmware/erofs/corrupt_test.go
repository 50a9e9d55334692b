package erofs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const seedAPKSHA256 = "d8481ac3ed4b76f0f05fbe9bdc3772f3442bbb45a500184e08667f9114880d21"

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openBytes(b []byte) (*FS, error) { return Open(bytes.NewReader(b), int64(len(b))) }

// fixChecksum recomputes the superblock checksum after a test patched the superblock.
func fixChecksum(img []byte) {
	sb := img[SuperblockOffset:4096] // every seed image has 4 KiB blocks
	binary.LittleEndian.PutUint32(sb[4:], 0)
	binary.LittleEndian.PutUint32(sb[4:], ^crc32.Checksum(sb, castagnoli))
}

// TestGoldenImages reads the committed seed images without any external tool.
func TestGoldenImages(t *testing.T) {
	for _, name := range []string{"plain.erofs", "lz4hc-ztail.erofs", "legacy.erofs", "chunked.erofs"} {
		t.Run(name, func(t *testing.T) {
			f, err := openBytes(readTestdata(t, name))
			if err != nil {
				t.Fatal(err)
			}
			apk, err := f.ReadFile("sys/app/A.apk")
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%x", sha256.Sum256(apk)); got != seedAPKSHA256 {
				t.Errorf("A.apk sha256 %s, want %s", got, seedAPKSHA256)
			}
			if b, err := f.ReadFile("sys/etc/link"); err != nil || string(b) != "ro.build.fingerprint=seed\n" {
				t.Errorf("reading through sys/etc/link: %q, %v", b, err)
			}
			info, err := f.Stat("sys/app/A.apk")
			if err != nil {
				t.Fatal(err)
			}
			in := info.Sys().(*Inode)
			if in.UID() != 0 || in.GID() != 0 || !info.ModTime().Equal(time.Unix(0, 0)) || in.Nlink() != 1 {
				t.Errorf("A.apk uid %d gid %d mtime %v", in.UID(), in.GID(), info.ModTime())
			}
			if name != "chunked.erofs" && in.SELinuxLabel() != "u:object_r:app_file:s0" {
				t.Errorf("A.apk label %q", in.SELinuxLabel())
			}
			if got := f.Superblock().UUID; fmt.Sprintf("%x", got) != "0123456789abcdef0123456789abcdef" {
				t.Errorf("uuid %x", got)
			}
		})
	}
}

// TestNewerInodeFields reads the fields newer erofs-utils write in compact inodes: the mtime as
// seconds after the superblock epoch, and the NLINK_1 format bit that frees the nlink field.
func TestNewerInodeFields(t *testing.T) {
	img := readTestdata(t, "plain.erofs")
	in := lookupInode(t, img, "sys/build.prop")
	if in.extended {
		t.Fatal("want a compact inode")
	}
	binary.LittleEndian.PutUint16(img[in.pos:], binary.LittleEndian.Uint16(img[in.pos:])|inodeFormatNlink1)
	binary.LittleEndian.PutUint16(img[in.pos+6:], 0xbeef)
	binary.LittleEndian.PutUint32(img[in.pos+12:], 1700000000)
	fixChecksum(img)
	f, err := openBytes(img)
	if err != nil {
		t.Fatal(err)
	}
	info, err := f.Stat("sys/build.prop")
	if err != nil {
		t.Fatal(err)
	}
	got := info.Sys().(*Inode)
	if got.Nlink() != 1 || !info.ModTime().Equal(time.Unix(1700000000, 0)) {
		t.Errorf("nlink %d mtime %v, want 1 and 2023-11-14", got.Nlink(), info.ModTime())
	}
	if b, err := f.ReadFile("sys/build.prop"); err != nil || string(b) != "ro.build.fingerprint=seed\n" {
		t.Errorf("content %q, %v", b, err)
	}
}

// lookupInode returns the inode at path p of the image, for tests that patch it.
func lookupInode(t *testing.T, img []byte, p string) *Inode {
	t.Helper()
	f, err := openBytes(img)
	if err != nil {
		t.Fatal(err)
	}
	in, err := f.resolve("lstat", p, false)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// readAll opens the image and reads every file, returning the first error.
func readAll(img []byte) error {
	f, err := openBytes(img)
	if err != nil {
		return err
	}
	return fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, err := f.Lstat(p); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			_, err = f.ReadFile(p)
		}
		return err
	})
}

// TestCorruptImages patches the seed images in the ways a hostile or damaged image would be
// broken, and checks each gives an error that wraps the right sentinel and names the structure.
func TestCorruptImages(t *testing.T) {
	type patch func(t *testing.T, img []byte) []byte
	sbField := func(off int, v uint32, size int) patch {
		return func(t *testing.T, img []byte) []byte {
			switch size {
			case 1:
				img[SuperblockOffset+off] = byte(v)
			case 2:
				binary.LittleEndian.PutUint16(img[SuperblockOffset+off:], uint16(v))
			case 4:
				binary.LittleEndian.PutUint32(img[SuperblockOffset+off:], v)
			}
			fixChecksum(img)
			return img
		}
	}
	inodeField := func(p string, off int, v uint64, size int) patch {
		return func(t *testing.T, img []byte) []byte {
			in := lookupInode(t, img, p)
			switch size {
			case 2:
				binary.LittleEndian.PutUint16(img[in.pos+int64(off):], uint16(v))
			case 4:
				binary.LittleEndian.PutUint32(img[in.pos+int64(off):], uint32(v))
			case 8:
				binary.LittleEndian.PutUint64(img[in.pos+int64(off):], v)
			}
			return img
		}
	}
	cases := []struct {
		name     string
		image    string
		patch    patch
		sentinel error
		mention  string
	}{
		{"bad magic", "plain.erofs", func(t *testing.T, img []byte) []byte { img[SuperblockOffset] ^= 0xff; return img }, ErrNotEROFS, "magic"},
		{"bad checksum", "plain.erofs", func(t *testing.T, img []byte) []byte { img[SuperblockOffset+64] ^= 1; return img }, ErrCorrupt, "checksum"},
		{"unknown incompat feature", "plain.erofs", sbField(80, 0x400, 4), ErrUnsupported, "unknown(0x400)"},
		{"known but unsupported feature", "lz4hc-ztail.erofs", sbField(80, FeatureIncompatZeroPadding|FeatureIncompatFragments, 4), ErrUnsupported, "fragments"},
		{"absurd block size", "plain.erofs", sbField(12, 30, 1), ErrCorrupt, "block size"},
		{"root nid past the end", "plain.erofs", sbField(14, 0xffff, 2), ErrCorrupt, "inode 65535"},
		{"metadata block past the end", "plain.erofs", sbField(40, 0x100000, 4), ErrCorrupt, "metadata block"},
		{"unknown compression algorithm", "lz4hc-ztail.erofs", sbField(84, 0x3, 2), ErrUnsupported, "lzma"},
		{"truncated to the superblock", "plain.erofs", func(t *testing.T, img []byte) []byte { return img[:1100] }, ErrNotEROFS, "superblock"},
		{"truncated image", "lz4hc-ztail.erofs", func(t *testing.T, img []byte) []byte { return img[:4096] }, ErrCorrupt, "truncated?"},
		// The same truncations with the superblock's block count lowered to match (a hostile
		// image, or a damaged one whose superblock lies): the reads past the end are caught too.
		{"truncated after the superblock block", "lz4hc-ztail.erofs", func(t *testing.T, img []byte) []byte {
			return sbField(36, 1, 4)(t, img[:4096])
		}, ErrCorrupt, "past the end"},
		{"truncated data", "plain.erofs", func(t *testing.T, img []byte) []byte {
			in := lookupInode(t, img, "sys/app/A.apk")
			img = img[:int64(in.u)<<12+100]
			return sbField(36, uint32(len(img)>>12), 4)(t, img)
		}, ErrCorrupt, "larger than the 4196-byte image"},
		{"absurd compressed size", "lz4hc-ztail.erofs", inodeField("sys/app/A.apk", 8, 0xffffffff, 4), ErrCorrupt, "absurd"},
		{"extent size mismatch", "lz4hc-ztail.erofs", inodeField("sys/app/A.apk", 8, 20499, 4), ErrCorrupt, "runs past the end of the 20499-byte file"},
		{"garbage lz4 stream", "legacy.erofs", func(t *testing.T, img []byte) []byte {
			f, err := openBytes(img)
			if err != nil {
				t.Fatal(err)
			}
			file, err := f.OpenFile("sys/app/A.apk")
			if err != nil {
				t.Fatal(err)
			}
			for off := int64(0); off < file.in.size; {
				e, err := file.d.z.mapExtent(off)
				if err != nil {
					t.Fatal(err)
				}
				if e.alg == algLZ4 {
					for i := e.pa; i < e.pa+e.plen; i++ {
						img[i] = 0xff
					}
					return img
				}
				off = e.la + e.llen
			}
			t.Fatal("no lz4 extent in A.apk")
			return nil
		}, ErrCorrupt, "decompressing lz4 pcluster of inode 49"},
		{"unknown data layout", "plain.erofs", inodeField("sys/build.prop", 0, 7<<1, 2), ErrUnsupported, "data layout 7"},
		{"flat data past the end", "plain.erofs", inodeField("sys/app/A.apk", 16, 0xfffff, 4), ErrCorrupt, "past the end"},
		{"symlink too long", "plain.erofs", inodeField("sys/etc/link", 8, 1<<20, 4), ErrCorrupt, "symlink"},
		{"chunk past the end", "chunked.erofs", func(t *testing.T, img []byte) []byte {
			in := lookupInode(t, img, "sys/app/A.apk")
			pos := align(in.tailPos(), 4)
			binary.LittleEndian.PutUint32(img[pos:], 0x00ffffff)
			return img
		}, ErrCorrupt, "past the end"},
		{"chunk table larger than the image", "chunked.erofs", inodeField("sys/app/A.apk", 8, 0xffffffff, 4), ErrCorrupt, "cannot fit"},
		{"sparse chunked file too large for ReadFile", "chunked.erofs", func(t *testing.T, img []byte) []byte {
			in := lookupInode(t, img, "sys/app/A.apk")
			binary.LittleEndian.PutUint32(img[in.pos+8:], 0xffffffff)                               // 4 GiB
			binary.LittleEndian.PutUint16(img[in.pos+16:], uint16(in.u&^chunkFormatBlkbitsMask)|20) // one 4 GiB chunk
			return img
		}, ErrTooLarge, "stream it"},
		{"cluster index pointing past the end", "legacy.erofs", func(t *testing.T, img []byte) []byte {
			in := lookupInode(t, img, "sys/app/A.apk")
			pos := align(in.tailPos(), 8) + mapHeaderSize + fullIndexExtra + 4 // lcluster 0 blkaddr
			binary.LittleEndian.PutUint32(img[pos:], 0x00ffffff)
			return img
		}, ErrCorrupt, "runs past the end of the"},
		{"cluster index with a bogus lookback", "legacy.erofs", func(t *testing.T, img []byte) []byte {
			in := lookupInode(t, img, "sys/app/A.apk")
			pos := align(in.tailPos(), 8) + mapHeaderSize + fullIndexExtra // lcluster 0
			binary.LittleEndian.PutUint16(img[pos:], lclusterNonhead)
			binary.LittleEndian.PutUint16(img[pos+4:], 1)
			return img
		}, ErrCorrupt, "lookback"},
		{"xattr body with too many shared ids", "plain.erofs", func(t *testing.T, img []byte) []byte {
			in := lookupInode(t, img, "sys/app/A.apk")
			img[in.pos+in.isize()+4] = 200
			return img
		}, ErrCorrupt, "shared xattr"},
		{"directory name offset out of the block", "plain.erofs", func(t *testing.T, img []byte) []byte {
			in := lookupInode(t, img, "sys")
			var pos int64
			if in.layout == LayoutFlatInline && in.size < 4096 {
				pos = in.tailPos()
			} else {
				pos = int64(in.u) << 12
			}
			binary.LittleEndian.PutUint16(img[pos+8:], 5000)
			return img
		}, ErrCorrupt, "directory block 0"},
		{"directory loop", "plain.erofs", func(t *testing.T, img []byte) []byte {
			// Point the "etc" entry of /sys at the root directory.
			sys, etc := lookupInode(t, img, "sys"), lookupInode(t, img, "sys/etc")
			root := lookupInode(t, img, ".")
			var want [8]byte
			binary.LittleEndian.PutUint64(want[:], etc.nid)
			start := sys.tailPos()
			if sys.layout == LayoutFlatPlain || sys.size >= 4096 {
				start = int64(sys.u) << 12
			}
			i := bytes.Index(img[start:start+4096], want[:])
			if i < 0 {
				t.Fatal("dirent of sys/etc not found")
			}
			binary.LittleEndian.PutUint64(img[start+int64(i):], root.nid)
			return img
		}, ErrCorrupt, "directory loop"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := c.patch(t, readTestdata(t, c.image))
			// Small images keep inodes in block 0, which the superblock checksum covers: fix it
			// so the structure under test is what gets caught.
			if len(img) >= 4096 && c.name != "bad checksum" {
				fixChecksum(img)
			}
			err := readAll(img)
			if c.name == "directory loop" {
				_, err = func() (fs.FileInfo, error) {
					f, err := openBytes(img)
					if err != nil {
						return nil, err
					}
					return f.Stat("sys/etc/sys")
				}()
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, c.sentinel) {
				t.Errorf("error %q does not wrap %v", err, c.sentinel)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("error %q does not mention %q", err, c.mention)
			}
		})
	}
}

// FuzzImage opens arbitrary bytes as an EROFS image and reads everything in it. Whatever the
// input, it must not panic, hang or allocate without bound; errors must wrap a sentinel; what
// reads without error must be self-consistent.
func FuzzImage(f *testing.F) {
	for _, name := range []string{"plain.erofs", "lz4hc-ztail.erofs", "legacy.erofs", "chunked.erofs"} {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		fsys, err := OpenWithOptions(bytes.NewReader(img), int64(len(img)), Options{CacheBytes: 1 << 20})
		if err != nil {
			if !errors.Is(err, ErrNotEROFS) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("Open error wraps no sentinel: %v", err)
			}
			return
		}
		budget := int64(64 << 20) // total bytes read, so a compressed bomb cannot make the test crawl
		visited := 0
		_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			visited++
			if visited > 2000 {
				return fs.SkipAll
			}
			info, err := fsys.Lstat(p)
			if err != nil {
				return nil
			}
			in := info.Sys().(*Inode)
			_ = in.Xattrs()
			if info.Mode()&fs.ModeSymlink != 0 {
				_, _ = fsys.ReadLink(p)
				return nil
			}
			if !info.Mode().IsRegular() || info.Size() > budget {
				return nil
			}
			budget -= info.Size()
			file, err := fsys.OpenFile(p)
			if err != nil {
				return nil
			}
			n, err := io.Copy(io.Discard, file)
			if err == nil && n != info.Size() {
				t.Fatalf("%s: read %d bytes without error, size says %d", p, n, info.Size())
			}
			return nil
		})
	})
}
