package erofs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/provkit/provkit/internal/testtool"
)

// variants are the mkfs.erofs option sets the reader is judged on: uncompressed, lz4 and lz4hc
// (Android's default), big pclusters, ztailpacking, legacy (full) indexes without 0padding,
// compact/extended inodes, inline data off, and chunk-based files.
var variants = []struct {
	name string
	args []string
	// features that must show in the superblock, to prove the variant tests what it says
	features []string
	// layouts that must appear among regular files
	layouts []int
	// kinds of extents that must appear in compressed files (see extentKinds)
	extents []string
}{
	{"uncompressed", []string{"-T0"}, nil, []int{LayoutFlatInline}, nil},
	{"uncompressed-noinline", []string{"-Enoinline_data"}, nil, []int{LayoutFlatPlain}, nil},
	{"uncompressed-extended", []string{"-Eforce-inode-extended"}, nil, []int{LayoutFlatInline}, nil},
	{"lz4", []string{"-zlz4"}, []string{"0padding"}, []int{LayoutCompressedCompact}, []string{"lz4", "plain"}},
	{"lz4hc", []string{"-zlz4hc"}, []string{"0padding"}, []int{LayoutCompressedCompact}, []string{"lz4", "plain", "2B-indexes"}},
	{"lz4hc-9-big-pcluster", []string{"-zlz4hc,9", "-C65536"}, []string{"big_pcluster"}, []int{LayoutCompressedCompact}, []string{"lz4", "big-pcluster"}},
	{"lz4hc-ztailpacking", []string{"-zlz4hc", "-Eztailpacking"}, []string{"ztailpacking"}, []int{LayoutCompressedCompact}, []string{"lz4", "inline"}},
	{"lz4hc-ztailpacking-big-pcluster", []string{"-zlz4hc,9", "-C32768", "-Eztailpacking", "--all-root", "-T1700000000"}, []string{"ztailpacking", "big_pcluster"}, []int{LayoutCompressedCompact}, []string{"lz4", "inline", "big-pcluster"}},
	{"lz4-legacy-compress", []string{"-zlz4", "-Elegacy-compress"}, nil, []int{LayoutCompressedFull}, []string{"lz4", "plain"}},
	{"lz4-legacy-big-pcluster", []string{"-zlz4hc", "-Elegacy-compress", "-C16384"}, []string{"big_pcluster"}, []int{LayoutCompressedFull}, []string{"lz4", "big-pcluster"}},
	{"lz4-compact-inodes", []string{"-zlz4", "-Eforce-inode-compact", "-T0", "--all-root"}, nil, []int{LayoutCompressedCompact}, nil},
	{"lz4-nosbcrc", []string{"-zlz4hc", "-Enosbcrc"}, nil, []int{LayoutCompressedCompact}, nil},
	{"chunked-4k", []string{"--chunksize=4096"}, []string{"chunked_file"}, []int{LayoutChunkBased}, nil},
	{"chunked-64k", []string{"--chunksize=65536"}, []string{"chunked_file"}, []int{LayoutChunkBased}, nil},
}

// TestMatchesSourceAndFsck builds an Android-like tree, makes an image of it with each variant of
// mkfs.erofs, and checks that every path, mode, size, owner, mtime, content digest, link target,
// device number and xattr the reader reports matches both the source tree and what
// fsck.erofs --extract writes out.
func TestMatchesSourceAndFsck(t *testing.T) {
	testtool.Require(t, "mkfs.erofs", "fsck.erofs")
	src := t.TempDir()
	contexts := buildTree(t, src, treeOptions{seed: 1, manyFiles: 400, bigFile: 3<<20 + 4321})
	fc := filepath.Join(t.TempDir(), "file_contexts")
	if err := os.WriteFile(fc, []byte(contexts), 0o644); err != nil {
		t.Fatal(err)
	}
	srcTree := scanDisk(t, src)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			args := append([]string{"--file-contexts=" + fc}, v.args...)
			img := mkfs(t, src, args...)
			f := openImage(t, img, Options{})
			feats := strings.Join(f.Superblock().Features(), " ")
			for _, want := range v.features {
				if !strings.Contains(feats, want) {
					t.Errorf("image features %q lack %q: the variant does not test what it claims", feats, want)
				}
			}
			got := scanImage(t, f)

			seen := map[int]bool{}
			for p, e := range got {
				if e.mode.IsRegular() {
					info, _ := f.Lstat(p)
					seen[info.Sys().(*Inode).Layout()] = true
				}
			}
			for _, l := range v.layouts {
				if !seen[l] {
					t.Errorf("no regular file has layout %s (seen %v)", LayoutName(l), seen)
				}
			}

			kinds := extentKinds(t, f)
			for _, k := range v.extents {
				if kinds[k] == 0 {
					t.Errorf("no %s extent in the image (seen %v): the variant does not test what it claims", k, kinds)
				}
			}
			xattrKinds := map[string]int{}
			for p := range got {
				info, _ := f.Lstat(p)
				in := info.Sys().(*Inode)
				if in.xattrIsize == 0 {
					continue
				}
				body := make([]byte, in.xattrIsize)
				if err := f.readAt(body, in.pos+in.isize(), "xattr body"); err != nil {
					t.Fatal(err)
				}
				if body[4] > 0 {
					xattrKinds["shared"]++
				}
				if int64(xattrIbodyHeaderSize+4*int(body[4])) < in.xattrIsize {
					xattrKinds["inline"]++
				}
			}
			if xattrKinds["shared"] == 0 || xattrKinds["inline"] == 0 {
				t.Errorf("xattrs seen %v: want both shared and inline ones", xattrKinds)
			}

			allRoot := strings.Contains(strings.Join(v.args, " "), "--all-root")
			compareTrees(t, "source", got, srcTree, compareOpts{owners: !allRoot, xattrs: true})
			if allRoot {
				for p, e := range got {
					if e.uid != 0 || e.gid != 0 {
						t.Errorf("--all-root image: %s owned by %d:%d", p, e.uid, e.gid)
					}
				}
			}
			checkLabels(t, f)

			out := filepath.Join(t.TempDir(), "extract")
			cmd := exec.Command("fsck.erofs", "--extract="+out, "--preserve", img)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("fsck.erofs --extract: %v\n%s", err, b)
			}
			compareTrees(t, "fsck.erofs --extract", got, scanDisk(t, out), compareOpts{owners: true, mtimes: true})
		})
	}
}

// checkLabels checks the security.selinux labels mkfs.erofs set from the file_contexts.
func checkLabels(t *testing.T, f *FS) {
	t.Helper()
	for p, want := range map[string]string{
		".":                                  "u:object_r:system_file:s0",
		"system/build.prop":                  "u:object_r:system_file:s0",
		"system/app/Messenger/Messenger.apk": "u:object_r:app_file:s0",
		"system/app":                         "u:object_r:app_file:s0",
		"system/bin/su":                      "u:object_r:su_exec:s0",
		"system/etc/permissions/com.example.messenger.xml": "u:object_r:permissions_file:s0",
	} {
		info, err := f.Lstat(p)
		if err != nil {
			t.Errorf("lstat %s: %v", p, err)
			continue
		}
		in := info.Sys().(*Inode)
		if got := in.SELinuxLabel(); got != want {
			t.Errorf("%s: security.selinux %q, want %q (xattrs %v)", p, got, want, in.Xattrs())
		}
		if raw, ok := in.Xattr("security.selinux"); !ok || !bytes.HasPrefix(raw, []byte(want)) {
			t.Errorf("%s: Xattr(security.selinux) = %q, %v", p, raw, ok)
		}
	}
}

// TestFSConformance runs testing/fstest over a compressed image: Open, ReadDir, Stat, ReadFile,
// ReadLink/Lstat, Seek and ReadAt must agree with each other.
func TestFSConformance(t *testing.T) {
	// fstest reads each file at every offset (quadratic in its size): keep the files small, yet
	// several pclusters long.
	src := t.TempDir()
	r := rand.New(rand.NewSource(2))
	files := map[string][]byte{
		"system/build.prop":                  []byte("ro.build.fingerprint=x\n"),
		"system/app/Messenger/Messenger.apk": mixedBytes(r, 21000),
		"system/etc/empty":                   nil,
		"system/lib64/libc.so":               randomBytes(r, 9000),
		"system/lib64/libm.so":               bytes.Repeat([]byte("libm"), 3000),
	}
	for p, data := range files {
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../lib64/libc.so", filepath.Join(src, "system/etc/libc-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/system/lib64", filepath.Join(src, "system/lib")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-zlz4hc", "-Eztailpacking"}, {"-zlz4", "-Elegacy-compress"}, {"--chunksize=8192"}, {}} {
		f := openImage(t, mkfs(t, src, args...), Options{})
		if err := fstest.TestFS(f, "system/build.prop", "system/app/Messenger/Messenger.apk", "system/etc/libc-link", "system/lib64/libm.so", "system/lib"); err != nil {
			t.Errorf("mkfs.erofs %v: %v", args, err)
		}
	}
}

// TestReadAtRandom reads a big compressed file at random offsets and lengths, concurrently, and
// compares with the source; a tiny cache forces pclusters to be decompressed again and again.
func TestReadAtRandom(t *testing.T) {
	src := t.TempDir()
	r := rand.New(rand.NewSource(3))
	want := mixedBytes(r, 5<<20+77)
	if err := os.WriteFile(filepath.Join(src, "big"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-zlz4hc", "-C65536", "-Eztailpacking"}, {"-zlz4", "-Elegacy-compress"}} {
		img := mkfs(t, src, args...)
		for _, cache := range []int64{-1, 200 << 10, 0} {
			f := openImage(t, img, Options{CacheBytes: cache})
			file, err := f.OpenFile("big")
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func(seed int64) {
					defer wg.Done()
					r := rand.New(rand.NewSource(seed))
					for i := 0; i < 60; i++ {
						off := r.Int63n(int64(len(want)))
						n := r.Intn(300 << 10)
						buf := make([]byte, n)
						m, err := file.ReadAt(buf, off)
						end := off + int64(n)
						if end > int64(len(want)) {
							end = int64(len(want))
							if !errors.Is(err, io.EOF) {
								t.Errorf("%v: ReadAt past the end: err %v, want io.EOF", args, err)
							}
						} else if err != nil {
							t.Errorf("%v: ReadAt(%d, %d): %v", args, n, off, err)
							return
						}
						if !bytes.Equal(buf[:m], want[off:end]) {
							t.Errorf("%v cache %d: ReadAt(%d bytes at %d) returned different bytes", args, cache, n, off)
							return
						}
					}
				}(int64(g))
			}
			wg.Wait()
			if f.cache.used > f.cache.budget && cache > 0 {
				t.Errorf("cache holds %d bytes, budget %d", f.cache.used, f.cache.budget)
			}
		}
	}
}

// TestExtraDevice reads chunked files whose data lives in a separate blob device.
func TestExtraDevice(t *testing.T) {
	testtool.Require(t, "mkfs.erofs", "fsck.erofs")
	src := t.TempDir()
	buildTree(t, src, treeOptions{seed: 4, manyFiles: 20})
	blob := filepath.Join(t.TempDir(), "blob")
	img := mkfs(t, src, "--chunksize=4096", "--blobdev="+blob)
	bf, err := os.Open(blob)
	if err != nil {
		t.Fatal(err)
	}
	defer bf.Close()
	st, err := bf.Stat()
	if err != nil {
		t.Fatal(err)
	}
	f := openImage(t, img, Options{Devices: []Device{{R: bf, Size: st.Size()}}})
	if !strings.Contains(strings.Join(f.Superblock().Features(), " "), "device_table") {
		t.Fatalf("features %v lack device_table", f.Superblock().Features())
	}
	compareTrees(t, "source", scanImage(t, f), scanDisk(t, src), compareOpts{owners: true, xattrs: true})

	// Without the blob, reading data on it must fail clearly, not return zeros.
	g := openImage(t, img, Options{})
	_, err = g.ReadFile("system/app/Messenger/Messenger.apk")
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "extra device 1") {
		t.Errorf("reading blob data without the device: %v", err)
	}
}

// TestLookupAndSymlinks covers path resolution: nested symlinks, absolute targets, loops, ENOTDIR.
func TestLookupAndSymlinks(t *testing.T) {
	src := t.TempDir()
	buildTree(t, src, treeOptions{seed: 5, manyFiles: 700})
	for _, l := range [][2]string{{"loop-b", "loop-a"}, {"loop-a", "loop-b"}, {"system/bin", "bin-link"}, {"bin-link/sh", "sh-via-dirlink"}} {
		if err := os.Symlink(l[0], filepath.Join(src, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	f := openImage(t, mkfs(t, src, "-zlz4hc"), Options{})
	want, err := os.ReadFile(filepath.Join(src, "system/bin/toybox"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"system/bin/sh", "system/xbin/tb", "sh-via-dirlink", "bin-link/ls"} {
		got, err := f.ReadFile(p)
		if err != nil {
			t.Errorf("ReadFile(%s): %v", p, err)
		} else if !bytes.Equal(got, want) {
			t.Errorf("ReadFile(%s): wrong content", p)
		}
	}
	if info, err := f.Stat("system/etc-abs"); err != nil || !info.IsDir() {
		t.Errorf("Stat(system/etc-abs) = %v, %v; want the directory /system/etc", info, err)
	}
	if _, err := f.Open("loop-a"); err == nil || !strings.Contains(err.Error(), "symlinks") {
		t.Errorf("Open(loop-a) = %v, want a symlink loop error", err)
	}
	if _, err := f.Open("system/build.prop/x"); err == nil {
		t.Error("Open through a regular file succeeded")
	}
	if _, err := f.Open("system/lib64/libfoo9999.so"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := f.Open("/system"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Open(/system) = %v, want fs.ErrInvalid", err)
	}
	// Every one of the many files is found by the binary search over directory blocks.
	ents, err := f.ReadDir("system/lib64")
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 700 {
		t.Fatalf("system/lib64 has %d entries, want 700", len(ents))
	}
	info, _ := f.Stat("system/lib64")
	if info.Size() <= 3*4096 {
		t.Fatalf("system/lib64 is %d bytes: the test wants a directory of several blocks", info.Size())
	}
	for _, e := range ents {
		want, err := os.ReadFile(filepath.Join(src, "system/lib64", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.ReadFile("system/lib64/" + e.Name())
		if err != nil || sha256.Sum256(got) != sha256.Sum256(want) {
			t.Errorf("system/lib64/%s: %v", e.Name(), err)
		}
	}
	if ln, err := f.ReadLink("system/vendor"); err != nil || ln != "/vendor" {
		t.Errorf("ReadLink(system/vendor) = %q, %v", ln, err)
	}
	if _, err := f.ReadLink("system/build.prop"); err == nil {
		t.Error("ReadLink of a regular file succeeded")
	}
}

// extentKinds maps every extent of every compressed file of the image and counts them by kind,
// so a variant proves it exercises the decoding paths it claims to.
func extentKinds(t *testing.T, f *FS) map[string]int {
	t.Helper()
	kinds := map[string]int{}
	err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		file, err := f.OpenFile(p)
		if err != nil {
			return err
		}
		z := file.d.z
		if z == nil {
			return nil
		}
		if z.advise&zAdviseCompacted2B != 0 {
			kinds["2B-indexes"]++
		}
		for off := int64(0); off < file.in.size; {
			e, err := z.mapExtent(off)
			if err != nil {
				return fmt.Errorf("%s at %d: %w", p, off, err)
			}
			switch {
			case e.inline:
				kinds["inline"]++
			case e.alg == -1:
				kinds["plain"]++
			default:
				kinds["lz4"]++
			}
			if e.plen > f.bs && !e.inline {
				kinds["big-pcluster"]++
			}
			off = e.la + e.llen
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return kinds
}

// TestInterlacedPlainPcluster converts the uncompressed (PLAIN) pclusters of a file made by
// mkfs.erofs from the "shifted" layout erofs-utils 1.5 writes to the "interlaced" layout newer
// erofs-utils write (each byte at its offset within the block, the extent's first bytes wrapping
// to the end of the block), sets the interlaced advise bit, and checks the file reads the same.
func TestInterlacedPlainPcluster(t *testing.T) {
	src := t.TempDir()
	r := rand.New(rand.NewSource(6))
	want := mixedBytes(r, 200<<10)
	if err := os.WriteFile(filepath.Join(src, "f"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	img := mkfs(t, src, "-zlz4")
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	rotated, unaligned := makeInterlaced(t, raw, "f")
	if rotated == 0 || unaligned == 0 {
		t.Fatalf("%d plain pclusters, %d not block-aligned: the test needs both", rotated, unaligned)
	}
	g, err := openBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.ReadFile("f")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("interlaced file reads differently (%d plain pclusters rotated)", rotated)
	}
}

// makeInterlaced rewrites the PLAIN pclusters of the compressed file name of image raw (opened as
// f) in the interlaced layout and sets the interlaced advise bit. It returns how many pclusters
// it rotated and how many of them did not start on a block boundary of the file.
func makeInterlaced(t *testing.T, raw []byte, name string) (rotated, unaligned int) {
	t.Helper()
	f, err := openBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	file, err := f.OpenFile(name)
	if err != nil {
		t.Fatal(err)
	}
	z := file.d.z
	for off := int64(0); off < file.in.size; {
		e, err := z.mapExtent(off)
		if err != nil {
			t.Fatal(err)
		}
		if e.alg == -1 && !e.inline {
			if e.plen != f.bs {
				t.Fatalf("plain pcluster of %d bytes", e.plen)
			}
			block := append([]byte(nil), raw[e.pa:e.pa+e.plen]...)
			shift := e.la & (f.bs - 1)
			for i := int64(0); i < f.bs; i++ {
				raw[e.pa+(i+shift)%f.bs] = block[i]
			}
			rotated++
			if shift != 0 {
				unaligned++
			}
		}
		off = e.la + e.llen
	}
	hdr := align(file.in.tailPos(), 8)
	binary.LittleEndian.PutUint16(raw[hdr+4:], binary.LittleEndian.Uint16(raw[hdr+4:])|zAdviseInterlaced)
	if len(raw) >= 4096 {
		fixChecksum(raw)
	}
	return rotated, unaligned
}
