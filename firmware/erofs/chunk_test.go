package erofs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// chunkTree writes a tree with duplicated data under dir: x and y identical (300000 random
// bytes), z sharing x's first 64 KiB then different, w holding x twice (a chunk shared inside one
// file), a sparse file (holes), small files, user xattrs when the host file system takes them. It
// returns the file_contexts text that labels it.
func chunkTree(t *testing.T, dir string) string {
	t.Helper()
	r := rand.New(rand.NewSource(21))
	x := randomBytes(r, 300000)
	files := map[string][]byte{
		"a/x":           x,
		"a/y":           x,
		"b/z":           append(append([]byte(nil), x[:64<<10]...), randomBytes(r, 100000)...),
		"b/w":           append(append([]byte(nil), x[:128<<10]...), x[:128<<10]...),
		"small/1":       []byte("hello\n"),
		"small/2":       randomBytes(r, 5000),
		"etc/build.txt": bytes.Repeat([]byte("ro.product=chunky\n"), 300),
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// sparse: 96 KiB of hole, 5 bytes, 64 KiB of hole, 5 bytes
	fh, err := os.Create(filepath.Join(dir, "b/sparse"))
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{96 << 10, 160<<10 + 5} {
		if _, err := fh.WriteAt([]byte("data!"), off); err != nil {
			t.Fatal(err)
		}
	}
	fh.Close()
	if err := syscall.Setxattr(filepath.Join(dir, "a/x"), "user.origin", []byte("chunky"), 0); err != nil {
		t.Logf("no user xattrs on this file system: %v", err)
	}
	return "/ u:object_r:system_file:s0\n/a(/.*)? u:object_r:a_file:s0\n/b/sparse u:object_r:sparse_file:s0\n"
}

// punchHoles makes the zero chunks of p in the image at img holes (mkfs.erofs 1.5 stores a
// sparse file's zero chunks as one shared zero block; newer versions write holes) and returns how
// many it made.
func punchHoles(t *testing.T, img, p string) int {
	t.Helper()
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	in := lookupInode(t, raw, p)
	if in.layout != LayoutChunkBased || in.u&chunkFormatIndexes != 0 {
		t.Fatalf("%s: layout %s format %#x, want 4-byte chunk maps", p, LayoutName(in.layout), in.u)
	}
	chunkSize := int64(blkSize) << (in.u & chunkFormatBlkbitsMask)
	pos := align(in.tailPos(), 4)
	zero := make([]byte, chunkSize)
	holes := 0
	for i := int64(0); i*chunkSize < in.size; i++ {
		e := raw[pos+4*i:]
		blk := int64(binary.LittleEndian.Uint32(e))
		if n := min(chunkSize, in.size-i*chunkSize); blk != nullAddr && bytes.Equal(raw[blk*blkSize:][:n], zero[:n]) {
			binary.LittleEndian.PutUint32(e, nullAddr)
			holes++
		}
	}
	fixChecksum(raw)
	if err := os.WriteFile(img, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return holes
}

// chunkAddrs returns the chunk size and block addresses of p in f, as Tree finds them.
func chunkAddrs(t *testing.T, nodes []Node, p string) *Chunked {
	t.Helper()
	for _, n := range nodes {
		if n.Path == p {
			if n.Chunked == nil {
				t.Fatalf("%s is not chunk-based", p)
			}
			return n.Chunked
		}
	}
	t.Fatalf("%s not in the tree", p)
	return nil
}

// TestRewriteKeepsChunks rewrites images mkfs.erofs made chunk-based (4 KiB and 16 KiB chunks, as
// BOARD_EROFS_SHARE_DUP_BLOCKS builds do) and wants: every chunk-based file kept chunk-based (no
// fallback), fsck.erofs clean, fsck.erofs --extract and the kernel's mount of the output identical
// to the input's, files that shared blocks still sharing them, holes still holes, and the output
// the input's size.
//
// The size bound: every distinct source chunk is copied once, so the data takes the same blocks;
// chunk indexes keep their form, so the index arrays are the same size. What grows is metadata:
// each inode becomes extended (64 bytes instead of 32) and shared xattrs become inline (a label of
// ~30 bytes instead of a 4-byte id), so 128 bytes per inode, plus 4 blocks of slack (the shared
// xattr block the output does not have, rounding of the metadata area).
func TestRewriteKeepsChunks(t *testing.T) {
	testtool.Require(t, "mkfs.erofs", "fsck.erofs")
	src := t.TempDir()
	fc := filepath.Join(t.TempDir(), "file_contexts")
	if err := os.WriteFile(fc, []byte(chunkTree(t, src)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cs := range []string{"4096", "16384"} {
		t.Run(cs, func(t *testing.T) {
			in := mkfs(t, src, "--chunksize="+cs, "--file-contexts="+fc)
			if punchHoles(t, in, "b/sparse") == 0 {
				t.Fatal("no zero chunk in the sparse file")
			}
			out, st, nodes := rewrite(t, in)
			if len(st.Fallbacks) != 0 {
				t.Errorf("%d files written flat, want 0: %v", len(st.Fallbacks), st.Fallbacks)
			}
			chunked := 0
			for _, n := range nodes {
				if n.Chunked != nil {
					chunked++
					if n.Chunked.ChunkSize() != map[string]int64{"4096": 4096, "16384": 16384}[cs] {
						t.Errorf("%s: chunk size %d, want %s", n.Path, n.Chunked.ChunkSize(), cs)
					}
				}
			}
			if chunked < 4 || st.Chunked != chunked {
				t.Errorf("%d chunk-based files in the input, %d written chunk-based", chunked, st.Chunked)
			}
			// the input shares: x and y use the same blocks, so do z's and w's first chunks
			srcX, srcY := chunkAddrs(t, nodes, "a/x"), chunkAddrs(t, nodes, "a/y")
			if !reflect.DeepEqual(srcX.addrs, srcY.addrs) {
				t.Fatalf("the input does not share x's blocks with y: the test proves nothing")
			}
			before, after := extract(t, in), extract(t, out)
			// fsck.erofs 1.5 extracts a file with holes short, input and output alike: the sparse
			// file is checked through the kernel below
			notSparse := func(m map[string]entry) map[string]entry { delete(m, "b/sparse"); return m }
			compareTrees(t, "fsck.erofs --extract", notSparse(scanDisk(t, after)), notSparse(scanDisk(t, before)), compareOpts{owners: os.Geteuid() == 0})

			newFS := openImage(t, out, Options{})
			newNodes, _, err := Tree(context.Background(), newFS)
			if err != nil {
				t.Fatal(err)
			}
			x, y := chunkAddrs(t, newNodes, "a/x"), chunkAddrs(t, newNodes, "a/y")
			if !reflect.DeepEqual(x.addrs, y.addrs) {
				t.Errorf("x and y no longer share blocks: %v / %v", x.addrs, y.addrs)
			}
			z, w := chunkAddrs(t, newNodes, "b/z"), chunkAddrs(t, newNodes, "b/w")
			if z.addrs[0] != x.addrs[0] || w.addrs[0] != x.addrs[0] || w.addrs[len(w.addrs)/2] != x.addrs[0] {
				t.Errorf("first chunks of x %d, z %d, w %d and w's second half %d: want one block", x.addrs[0], z.addrs[0], w.addrs[0], w.addrs[len(w.addrs)/2])
			}
			srcSparse, sparse := chunkAddrs(t, nodes, "b/sparse"), chunkAddrs(t, newNodes, "b/sparse")
			holes := 0
			for i, a := range srcSparse.addrs {
				if (a == nullAddr) != (sparse.addrs[i] == nullAddr) {
					t.Errorf("sparse chunk %d: source address %#x, output %#x: holes must stay holes", i, a, sparse.addrs[i])
				}
				if a == nullAddr {
					holes++
				}
			}
			if holes == 0 {
				t.Error("no hole in the sparse file: the test proves nothing about holes")
			}
			if sb := newFS.Superblock(); sb.FeatureIncompat&FeatureIncompatChunkedFile == 0 {
				t.Errorf("output features %v: no chunked_file", sb.Features())
			}

			inSize, outSize := fileSize(t, in), st.Size
			bound := inSize + 128*int64(len(nodes)) + 4*blkSize
			t.Logf("chunks of %s: input %d bytes, output %d (%+d), bound %d; %d files chunk-based, %d chunk blocks", cs, inSize, outSize, outSize-inSize, bound, st.Chunked, st.ChunkBlocks)
			if outSize > bound {
				t.Errorf("output %d bytes, input %d: more than the %d bytes metadata growth explains", outSize, inSize, bound)
			}

			// the real kernel reads the same through the output's chunk indexes as through the
			// input's (fsck.erofs --extract does not restore xattrs, the mount shows them)
			mounted := scanDisk(t, testtool.MountRO(t, in, "erofs"))
			compareTrees(t, "kernel mount", scanDisk(t, testtool.MountRO(t, out, "erofs")), mounted, compareOpts{owners: true, mtimes: true, xattrs: true})
			compareTrees(t, "kernel mount of the input", notSparse(maps.Clone(mounted)), notSparse(scanDisk(t, before)), compareOpts{owners: true, mtimes: true})
			if got, want := mounted["b/sparse"].sha, scanDisk(t, src)["b/sparse"].sha; got != want {
				t.Errorf("kernel reads the sparse file with sha %.12s, source %.12s", got, want)
			}
		})
	}
}

// TestRewriteChunkIndexes: a file with 8-byte chunk indexes (what mkfs.erofs writes with a blob
// device; made here by rewriting a 4-byte-map image's Chunked) is written with 8-byte indexes and
// reads the same; a chunk-based file whose Data the caller replaced is written flat and not
// reported.
func TestRewriteChunkIndexes(t *testing.T) {
	testtool.Require(t, "mkfs.erofs", "fsck.erofs")
	src := t.TempDir()
	chunkTree(t, src)
	in := mkfs(t, src, "--chunksize=4096")
	old := openImage(t, in, Options{})
	nodes, opts, err := Tree(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	replaced := []byte("replaced by the caller")
	for i := range nodes {
		switch nodes[i].Path {
		case "a/y":
			nodes[i].Chunked.indexes = true
		case "b/z":
			nodes[i].Data, nodes[i].Size = bytes.NewReader(replaced), int64(len(replaced))
		}
	}
	var buf bufWriterAt
	st, err := WriteWithStats(context.Background(), &buf, nodes, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Fallbacks) != 0 {
		t.Errorf("fallbacks %v, want none", st.Fallbacks)
	}
	out := filepath.Join(t.TempDir(), "out.erofs")
	if err := os.WriteFile(out, buf.b[:st.Size], 0o644); err != nil {
		t.Fatal(err)
	}
	dir := extract(t, out)
	x, _ := os.ReadFile(filepath.Join(src, "a/x"))
	for name, data := range map[string][]byte{"a/y": x, "b/z": replaced} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: extracted %d bytes (%v), want %d", name, len(got), err, len(data))
		}
	}
	g := openImage(t, out, Options{})
	for name, want := range map[string]uint32{"a/y": chunkFormatIndexes, "a/x": 0} {
		info, err := g.Lstat(name)
		if err != nil {
			t.Fatal(err)
		}
		if in := info.Sys().(*Inode); in.Layout() != LayoutChunkBased || in.u&chunkFormatIndexes != want {
			t.Errorf("%s: layout %s, chunk format %#x, want chunk-based with index flag %#x", name, LayoutName(in.Layout()), in.u, want)
		}
	}
	if info, err := g.Lstat("b/z"); err != nil || info.Sys().(*Inode).Layout() != LayoutFlatInline {
		t.Errorf("b/z (replaced): %v, want FLAT_INLINE", err)
	}
	testtool.MountRO(t, in, "erofs")
	mnt := testtool.MountRO(t, out, "erofs")
	if got, err := os.ReadFile(filepath.Join(mnt, "a/y")); err != nil || !bytes.Equal(got, x) {
		t.Errorf("kernel reads a/y (8-byte indexes) as %d bytes (%v), want x", len(got), err)
	}
}

// TestRewriteCorruptChunk: a chunk index pointing past the end of the image makes Tree fail with
// ErrCorrupt naming the file, and a chunked image with an extra device falls back to flat.
func TestRewriteCorruptChunk(t *testing.T) {
	testtool.Require(t, "mkfs.erofs")
	src := t.TempDir()
	chunkTree(t, src)
	raw, err := os.ReadFile(mkfs(t, src, "--chunksize=4096"))
	if err != nil {
		t.Fatal(err)
	}
	in := lookupInode(t, raw, "a/x")
	if in.layout != LayoutChunkBased || in.u&chunkFormatIndexes != 0 {
		t.Fatalf("a/x: layout %s format %#x, want 4-byte chunk maps", LayoutName(in.layout), in.u)
	}
	for _, blk := range []uint32{0x7fff0000, uint32(len(raw) / blkSize)} {
		bad := append([]byte(nil), raw...)
		binary.LittleEndian.PutUint32(bad[align(in.tailPos(), 4)+4:], blk) // chunk 1
		fixChecksum(bad)
		f, err := openBytes(bad)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = Tree(context.Background(), f)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "reading a/x") || !strings.Contains(err.Error(), "chunk 1") {
			t.Errorf("block %d: Tree: %v, want ErrCorrupt naming a/x and chunk 1", blk, err)
		}
	}
}

// TestRewriteChunksBlobdevFallsBack: chunk-based files whose data is on an extra device
// (mkfs.erofs --blobdev) are written flat, each reported as a fallback, and read the same.
func TestRewriteChunksBlobdevFallsBack(t *testing.T) {
	testtool.Require(t, "mkfs.erofs", "fsck.erofs")
	src := t.TempDir()
	chunkTree(t, src)
	blob := filepath.Join(t.TempDir(), "blob")
	img := mkfs(t, src, "--chunksize=4096", "--blobdev="+blob)
	bf, err := os.Open(blob)
	if err != nil {
		t.Fatal(err)
	}
	defer bf.Close()
	bst, err := bf.Stat()
	if err != nil {
		t.Fatal(err)
	}
	old := openImage(t, img, Options{Devices: []Device{{R: bf, Size: bst.Size()}}})
	nodes, opts, err := Tree(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	var w bufWriterAt
	st, err := WriteWithStats(context.Background(), &w, nodes, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Chunked != 0 || len(st.Fallbacks) < 4 || !strings.Contains(st.Fallbacks[0].Reason, "extra devices") {
		t.Errorf("stats %+v: want every chunk-based file written flat, reported as on extra devices", st)
	}
	out := filepath.Join(t.TempDir(), "out.erofs")
	if err := os.WriteFile(out, w.b[:st.Size], 0o644); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, "rewritten from a blob device", scanImage(t, openImage(t, out, Options{})), scanDisk(t, src), compareOpts{owners: true, xattrs: true})
}
