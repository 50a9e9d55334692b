package erofs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/internal/unixmode"
)

// rewrite runs Tree and WriteWithStats on the image at img and returns the new image's path and
// what Write reported.
func rewrite(t *testing.T, img string) (string, WriteStats, []Node) {
	t.Helper()
	old := openImage(t, img, Options{})
	nodes, opts, err := Tree(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "new.erofs")
	fh, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, err := WriteWithStats(context.Background(), fh, nodes, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(st.Size); err != nil {
		t.Fatal(err)
	}
	return out, st, nodes
}

// extract runs fsck.erofs --extract on img and returns the directory.
func extract(t *testing.T, img string) string {
	t.Helper()
	if out, err := exec.Command("fsck.erofs", img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs %s: %v\n%s", img, err, out)
	}
	dir := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command("fsck.erofs", "--extract="+dir, img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs --extract %s: %v\n%s", img, err, out)
	}
	return dir
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestRewriteCopiesCompressed rewrites images mkfs.erofs compressed in each layout erofs-utils
// writes for Android (lz4 and lz4hc, compact and full indexes, big pclusters, ztailpacking) and
// wants: every compressed file copied (no fallback), fsck.erofs clean, fsck.erofs --extract of the
// output identical to that of the input (bytes, modes, links; owners when root), the package's own
// reader seeing the same mode, owner, mtime and xattrs on both, and the output about the input's
// size.
//
// The size bound: the pclusters are copied block for block, so the data is the same size; what
// grows is metadata. Each inode becomes extended (64 bytes instead of 32), shared xattrs become
// inline (a label of ~30 bytes instead of a 4-byte id) and compact indexes (2 or 4 bytes per
// lcluster) become full ones (8 bytes per lcluster, 1/512 of the file's decompressed size). So
// the bound is the input, plus 128 bytes per inode, plus 8 bytes per lcluster of compressed
// files, plus a block of slack per 64 inodes for inodes moved so an inline tail does not cross a
// block, plus 4 blocks.
func TestRewriteCopiesCompressed(t *testing.T) {
	testtool.Require(t, "mkfs.erofs", "fsck.erofs")
	src := t.TempDir()
	contexts := buildTree(t, src, treeOptions{seed: 11, manyFiles: 200, bigFile: 2<<20 + 77})
	fc := filepath.Join(t.TempDir(), "file_contexts")
	if err := os.WriteFile(fc, []byte(contexts), 0o644); err != nil {
		t.Fatal(err)
	}
	// want names what each layout must show in the source, so the test proves it copies it:
	// 2B (compact 2-byte packs), full (full indexes), big (pclusters of several blocks), inline
	// (ztailpacking).
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"-zlz4hc"}, []string{"2B"}},
		{[]string{"-zlz4"}, []string{"2B"}},
		{[]string{"-zlz4hc", "-C65536"}, []string{"big"}},
		{[]string{"-zlz4hc", "-Eztailpacking"}, []string{"2B", "inline"}},
		{[]string{"-zlz4hc", "-C65536", "-Eztailpacking"}, []string{"big", "inline"}},
		{[]string{"-zlz4hc", "-Elegacy-compress"}, []string{"full"}}, // full indexes, no 0padding
		{[]string{"-zlz4hc", "-Elegacy-compress", "-Eztailpacking"}, []string{"full", "inline"}},
		{[]string{"-zlz4", "-Eforce-inode-compact", "-T0", "--all-root"}, []string{"2B"}},
	} {
		args := c.args
		t.Run(strings.Join(args, ""), func(t *testing.T) {
			in := mkfs(t, src, append([]string{"--file-contexts=" + fc}, args...)...)
			out, st, nodes := rewrite(t, in)
			compressed, lclusters := 0, int64(0)
			seen := map[string]bool{}
			src := openImage(t, in, Options{})
			for _, n := range nodes {
				if n.Compressed == nil {
					continue
				}
				compressed++
				lclusters += int64(len(n.Compressed.index) / fullIndexSize)
				fi, err := src.Lstat(n.Path)
				if err != nil {
					t.Fatal(err)
				}
				in := fi.Sys().(*Inode)
				z, err := src.newZmap(in)
				if err != nil {
					t.Fatal(err)
				}
				seen["2B"] = seen["2B"] || in.layout == LayoutCompressedCompact && z.advise&zAdviseCompacted2B != 0
				seen["full"] = seen["full"] || in.layout == LayoutCompressedFull
				for i := 0; i < len(n.Compressed.index); i += fullIndexSize {
					e := n.Compressed.index[i:]
					// a NONHEAD carrying the block count of a pcluster of several blocks
					if binary.LittleEndian.Uint16(e)&3 == lclusterNonhead && binary.LittleEndian.Uint16(e[4:])&liD0CBlkCnt != 0 &&
						binary.LittleEndian.Uint16(e[4:])&^liD0CBlkCnt > 1 {
						seen["big"] = true
					}
				}
				seen["inline"] = seen["inline"] || z.ztail
			}
			for _, w := range c.want {
				if !seen[w] {
					t.Errorf("no compressed file with %s in the input (saw %v): the test proves nothing about it", w, seen)
				}
			}
			if compressed < 10 {
				t.Fatalf("only %d compressed files in the input: the test needs many", compressed)
			}
			if len(st.Fallbacks) != 0 {
				t.Errorf("%d files written uncompressed, want 0: %v", len(st.Fallbacks), st.Fallbacks)
			}
			if st.Copied == 0 || st.Copied > compressed {
				t.Errorf("%d files copied, %d compressed in the input", st.Copied, compressed)
			}
			before, after := extract(t, in), extract(t, out)
			compareTrees(t, "fsck.erofs --extract", scanDisk(t, after), scanDisk(t, before), compareOpts{owners: os.Geteuid() == 0})
			// the real kernel: the input mounts (the control), and the output reads the same
			// through the kernel's own decompressor and index walk
			testtool.MountRO(t, in, "erofs")
			compareTrees(t, "kernel mount", scanDisk(t, testtool.MountRO(t, out, "erofs")), scanDisk(t, before), compareOpts{owners: true, mtimes: true})
			oldFS, newFS := openImage(t, in, Options{}), openImage(t, out, Options{})
			a, b := scanImage(t, oldFS), scanImage(t, newFS)
			if len(a) != len(b) {
				t.Errorf("%d entries before, %d after", len(a), len(b))
			}
			for p, e := range a {
				if g, ok := b[p]; !ok || e.String() != g.String() || !reflect.DeepEqual(e.xattrs, g.xattrs) {
					t.Errorf("%s changed:\nbefore %v\nafter  %v", p, e, g)
				}
			}
			inSize, outSize := fileSize(t, in), st.Size
			inodes := int64(len(nodes))
			bound := inSize + 128*inodes + 8*lclusters + (inodes/64+4)*blkSize
			t.Logf("%v: input %d bytes, output %d (%+.2f%%), bound %d; %d files copied compressed, %d lclusters",
				args, inSize, outSize, 100*float64(outSize-inSize)/float64(inSize), bound, st.Copied, lclusters)
			if outSize > bound {
				t.Errorf("output %d bytes, input %d: more than the %d bytes metadata growth explains", outSize, inSize, bound)
			}
			if sb := newFS.Superblock(); sb.FeatureIncompat&copiedIncompat != oldFS.Superblock().FeatureIncompat&copiedIncompat {
				t.Errorf("features %v, source had %v", sb.Features(), oldFS.Superblock().Features())
			}
		})
	}
}

// TestRewriteFallsBack: a file the copy does not handle (interlaced uncompressed pclusters, made
// as TestInterlacedPlainPcluster does) is written decompressed, is reported, and reads the same;
// so is a compressed file whose Data the caller replaced, which is not reported.
func TestRewriteFallsBack(t *testing.T) {
	testtool.Require(t, "mkfs.erofs", "fsck.erofs")
	src := t.TempDir()
	r := rand.New(rand.NewSource(6))
	want := mixedBytes(r, 200<<10)
	other := mixedBytes(r, 90<<10)
	for name, data := range map[string][]byte{"f": want, "g": other, "h": other} {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := mkfs(t, src, "-zlz4")
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if rotated, _ := makeInterlaced(t, raw, "f"); rotated == 0 {
		t.Fatal("no uncompressed pcluster to interlace")
	}
	f, err := openBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	nodes, opts, err := Tree(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	replaced := []byte("replaced by the caller")
	for i := range nodes {
		if nodes[i].Path == "h" {
			nodes[i].Data, nodes[i].Size = bytes.NewReader(replaced), int64(len(replaced))
		}
	}
	var w bufWriterAt
	st, err := WriteWithStats(context.Background(), &w, nodes, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Fallbacks) != 1 || st.Fallbacks[0].Path != "f" || !strings.Contains(st.Fallbacks[0].Reason, "interlaced") || st.Copied != 1 {
		t.Errorf("stats %+v, want f fallen back (interlaced) and g copied", st)
	}
	out := filepath.Join(t.TempDir(), "out.erofs")
	if err := os.WriteFile(out, w.b[:st.Size], 0o644); err != nil {
		t.Fatal(err)
	}
	dir := extract(t, out)
	for name, data := range map[string][]byte{"f": want, "g": other, "h": replaced} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: extracted %d bytes (%v), want %d", name, len(got), err, len(data))
		}
	}
	g := openImage(t, out, Options{})
	for name, layout := range map[string]int{"f": LayoutFlatPlain, "g": LayoutCompressedFull, "h": LayoutFlatInline} {
		info, err := g.Lstat(name)
		if err != nil {
			t.Fatal(err)
		}
		if l := info.Sys().(*Inode).Layout(); l != layout {
			t.Errorf("%s: layout %s, want %s", name, LayoutName(l), LayoutName(layout))
		}
	}
}

// TestRewriteCorruptIndex: a compressed file whose index points past the end of the image makes
// Tree fail with ErrCorrupt naming the file, compact and full indexes alike.
func TestRewriteCorruptIndex(t *testing.T) {
	testtool.Require(t, "mkfs.erofs")
	src := t.TempDir()
	r := rand.New(rand.NewSource(3))
	if err := os.WriteFile(filepath.Join(src, "f"), mixedBytes(r, 100<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-zlz4hc", "-Elegacy-compress"}, {"-zlz4hc"}} {
		raw, err := os.ReadFile(mkfs(t, src, args...))
		if err != nil {
			t.Fatal(err)
		}
		in := lookupInode(t, raw, "f")
		hdr := align(in.tailPos(), 8)
		if in.layout == LayoutCompressedFull {
			// the first lcluster is a HEAD: its block address
			binary.LittleEndian.PutUint32(raw[hdr+mapHeaderSize+fullIndexExtra+4:], 0x7fff0000)
		} else {
			// every pack's base block address (the last 4 bytes of the first pack, 4B or 2B)
			ebase := hdr + mapHeaderSize
			packEnd := ebase + 8
			if initial := (32 - ebase%32) / 4; initial == 0 || initial == 8 {
				packEnd = ebase + 32
			}
			binary.LittleEndian.PutUint32(raw[packEnd-4:], 0x7fff0000)
		}
		fixChecksum(raw)
		f, err := openBytes(raw)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = Tree(context.Background(), f)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "reading f") {
			t.Errorf("%v: Tree: %v, want ErrCorrupt naming f", args, err)
		}
	}
}

// FuzzRewrite reads arbitrary bytes as an image with Tree and writes it again. Whatever the input,
// neither may panic; errors must wrap a sentinel; and when both succeed, the new image must open
// and every file that reads from the old one must read the same from the new one.
func FuzzRewrite(f *testing.F) {
	for _, name := range []string{"plain.erofs", "lz4hc-ztail.erofs", "legacy.erofs", "chunked.erofs"} {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		old, err := OpenWithOptions(bytes.NewReader(img), int64(len(img)), Options{CacheBytes: 1 << 20})
		if err != nil {
			return
		}
		nodes, opts, err := Tree(context.Background(), old)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("Tree error wraps no sentinel: %v", err)
			}
			return
		}
		var total int64
		for _, n := range nodes {
			total += n.Size
		}
		if total > 32<<20 || len(nodes) > 2000 {
			return // a compressed bomb: writing it out would only make the test crawl
		}
		var w bufWriterAt
		st, err := WriteWithStats(context.Background(), &w, nodes, opts)
		if err != nil {
			return // file data that does not decode: the old image cannot be read either
		}
		nf, err := Open(bytes.NewReader(w.b[:st.Size]), st.Size)
		if err != nil {
			t.Fatalf("the rewritten image does not open: %v", err)
		}
		for _, n := range nodes {
			if n.Mode&unixmode.IFMT != unixmode.IFREG {
				continue
			}
			want := make([]byte, n.Size)
			if _, err := n.Data.ReadAt(want, 0); err != nil && n.Size > 0 {
				continue
			}
			got, err := nf.ReadFile(n.Path)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: reads differently after rewrite (%v)", n.Path, err)
			}
		}
	})
}
