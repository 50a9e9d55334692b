package ext4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// hostileBase builds one small image without metadata_csum (so single fields can be patched
// without recomputing checksums) and returns its bytes.
func hostileBase(t *testing.T, extra ...string) []byte {
	t.Helper()
	testtool.Require(t, "mke2fs", "debugfs", "e2fsck")
	dir := t.TempDir()
	src := buildTree(t, dir, treeOptions{manyFiles: 20, bigFile: 200 << 10})
	args := append([]string{"-t", "ext4", "-b", "1024", "-I", "256"}, extra...)
	img := mkfs(t, dir, src, 16, args...)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openBytes(b []byte) (*FS, error) { return Open(bytes.NewReader(b), int64(len(b))) }

func mustOpen(t *testing.T, b []byte) *FS {
	t.Helper()
	fsys, err := openBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func inodeOf(t *testing.T, fsys *FS, name string) *Inode {
	t.Helper()
	fi, err := fsys.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*Inode)
}

// dirBlockOffset returns the image offset of the first block of directory name.
func dirBlockOffset(t *testing.T, fsys *FS, name string) int64 {
	t.Helper()
	n := inodeOf(t, fsys, name)
	sp, err := newMapper(n).lookup(0)
	if err != nil {
		t.Fatal(err)
	}
	return int64(sp.phys) * fsys.bs
}

// readAll walks the whole file system reading every file; it returns the first error.
func readAll(fsys *FS) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, err := d.Info(); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			f, err := fsys.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(io.Discard, f); err != nil {
				return err
			}
		}
		return nil
	})
}

func wantErr(t *testing.T, err error, sentinel error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", substr)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("error %v does not wrap %v", err, sentinel)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Errorf("error %q does not mention %q", err, substr)
	}
}

func TestHostileImages(t *testing.T) {
	base := hostileBase(t, "-O", "^metadata_csum,^has_journal")
	fsys := mustOpen(t, base)
	if err := readAll(fsys); err != nil {
		t.Fatalf("the unpatched image: %v", err)
	}
	le := binary.LittleEndian
	patch := func(f func(b []byte)) []byte {
		c := append([]byte(nil), base...)
		f(c)
		return c
	}
	apk := inodeOf(t, fsys, "system/app/Messenger/Messenger.apk")

	t.Run("bad magic", func(t *testing.T) {
		_, err := openBytes(patch(func(b []byte) { b[1024+0x38] = 0 }))
		wantErr(t, err, ErrNotExt4, "offset 1024")
	})
	t.Run("truncated", func(t *testing.T) {
		_, err := openBytes(base[:len(base)/2])
		wantErr(t, err, ErrCorrupt, "truncated")
		_, err = openBytes(base[:1500])
		wantErr(t, err, ErrCorrupt, "superblock")
	})
	t.Run("absurd blocks per group", func(t *testing.T) {
		_, err := openBytes(patch(func(b []byte) { le.PutUint32(b[1024+0x20:], 1<<30) }))
		wantErr(t, err, ErrCorrupt, "blocks per group")
	})
	t.Run("absurd inode count", func(t *testing.T) {
		_, err := openBytes(patch(func(b []byte) { le.PutUint32(b[1024:], 0xFFFFFFFF) }))
		wantErr(t, err, ErrCorrupt, "inodes")
	})
	t.Run("absurd block size", func(t *testing.T) {
		_, err := openBytes(patch(func(b []byte) { le.PutUint32(b[1024+0x18:], 30) }))
		wantErr(t, err, ErrCorrupt, "block size")
	})
	t.Run("extent past the end", func(t *testing.T) {
		b := patch(func(b []byte) { le.PutUint32(b[apk.off+0x28+12+8:], 0x7FFFFFF0) })
		_, err := mustOpen(t, b).ReadFile("system/app/Messenger/Messenger.apk")
		wantErr(t, err, ErrCorrupt, "past the end of the file system")
	})
	t.Run("extent into the inode table", func(t *testing.T) {
		b := patch(func(b []byte) { le.PutUint32(b[apk.off+0x28+12+8:], uint32(fsys.groups[0].inodeTable)) })
		_, err := mustOpen(t, b).ReadFile("system/app/Messenger/Messenger.apk")
		wantErr(t, err, ErrCorrupt, "overlap file system metadata")
	})
	t.Run("deep extent tree", func(t *testing.T) {
		b := patch(func(b []byte) { le.PutUint16(b[apk.off+0x28+6:], 9) })
		_, err := mustOpen(t, b).ReadFile("system/app/Messenger/Messenger.apk")
		wantErr(t, err, ErrCorrupt, "depth 9 exceeds 5")
	})
	t.Run("extent entry count above max", func(t *testing.T) {
		b := patch(func(b []byte) { le.PutUint16(b[apk.off+0x28+2:], 200) })
		_, err := mustOpen(t, b).ReadFile("system/app/Messenger/Messenger.apk")
		wantErr(t, err, ErrCorrupt, "entries of at most")
	})
	t.Run("absurd file size", func(t *testing.T) {
		b := patch(func(b []byte) { le.PutUint32(b[apk.off+0x6C:], 0xFFFFFFFF) })
		_, err := mustOpen(t, b).Stat("system/app/Messenger/Messenger.apk")
		wantErr(t, err, ErrCorrupt, "exceeds the")
	})
	t.Run("directory loop", func(t *testing.T) {
		a := inodeOf(t, fsys, "system/a")
		off := dirBlockOffset(t, fsys, "system/a/b/c")
		b := patch(func(b []byte) {
			blk := b[off : off+fsys.bs]
			i := bytes.Index(blk, []byte("\x01\x02d")) // name_len 1, type dir, "d"
			if i < 6 {
				t.Fatal("entry d not found")
			}
			le.PutUint32(blk[i-6:], a.ino)
		})
		err := readAll(mustOpen(t, b))
		wantErr(t, err, ErrCorrupt, "directory loop")
	})
	t.Run("directory entry record length", func(t *testing.T) {
		off := dirBlockOffset(t, fsys, "system/a/b/c")
		b := patch(func(b []byte) { le.PutUint16(b[off+12+4:], 7) }) // ".." rec_len
		_, err := mustOpen(t, b).ReadDir("system/a/b/c")
		wantErr(t, err, ErrCorrupt, "record length 7")
	})
	t.Run("directory entry to a missing inode", func(t *testing.T) {
		off := dirBlockOffset(t, fsys, "system/a/b/c")
		b := patch(func(b []byte) { le.PutUint32(b[off+24:], 0xFFFFFF) })
		_, err := mustOpen(t, b).ReadDir("system/a/b/c")
		wantErr(t, err, ErrCorrupt, "points to inode 16777215")
	})
	t.Run("entry type disagrees with inode", func(t *testing.T) {
		off := dirBlockOffset(t, fsys, "system/a/b/c/d")
		b := patch(func(b []byte) {
			blk := b[off : off+fsys.bs]
			i := bytes.Index(blk, []byte("deep.txt"))
			blk[i-1] = 2 // claims directory
		})
		_, err := mustOpen(t, b).Stat("system/a/b/c/d/deep.txt")
		wantErr(t, err, ErrCorrupt, "says file type 2")
	})
	t.Run("unknown incompatible feature", func(t *testing.T) {
		_, err := openBytes(patch(func(b []byte) { le.PutUint32(b[1024+0x60:], le.Uint32(b[1024+0x60:])|incompatDirData) }))
		wantErr(t, err, errors.ErrUnsupported, "not supported")
	})
}

func TestChecksumMismatches(t *testing.T) {
	base := hostileBase(t) // metadata_csum on
	fsys := mustOpen(t, base)
	if !fsys.Superblock().HasMetadataCsum() {
		t.Fatal("expected metadata_csum")
	}
	patch := func(off int64) []byte {
		c := append([]byte(nil), base...)
		c[off] ^= 0x40
		return c
	}
	t.Run("superblock", func(t *testing.T) {
		_, err := openBytes(patch(1024 + 0x78)) // volume name
		wantErr(t, err, ErrChecksum, "superblock at offset 1024")
	})
	t.Run("group descriptor", func(t *testing.T) {
		_, err := openBytes(patch(2048 + 0x0E)) // free inodes count of group 0
		wantErr(t, err, ErrChecksum, "group descriptor 0")
	})
	t.Run("inode", func(t *testing.T) {
		n := inodeOf(t, fsys, "system/build.prop")
		_, err := mustOpen(t, patch(n.off+0x10)).Stat("system/build.prop") // mtime
		wantErr(t, err, ErrChecksum, "inode")
	})
	t.Run("directory block", func(t *testing.T) {
		off := dirBlockOffset(t, fsys, "system/a/b")
		_, err := mustOpen(t, patch(off+30)).ReadDir("system/a/b")
		wantErr(t, err, ErrChecksum, "directory inode")
	})
	t.Run("xattr block", func(t *testing.T) {
		n := inodeOf(t, fsys, "system/app/Messenger/Messenger.apk")
		if n.fileACL == 0 {
			t.Skip("no external xattr block")
		}
		_, err := mustOpen(t, patch(int64(n.fileACL)*fsys.bs+40)).Stat("system/app/Messenger/Messenger.apk")
		wantErr(t, err, ErrChecksum, "xattr block")
	})
}

// TestSharedBlocks builds Android's dedup layout, which mke2fs cannot make ("Invalid filesystem
// option set: shared_blocks"): two files point at the same blocks (debugfs set_inode_field on the
// first extent) and the shared_blocks feature is set (debugfs feature).
func TestSharedBlocks(t *testing.T) {
	testtool.Require(t, "mke2fs", "debugfs")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	data := bytes.Repeat([]byte("shared block content "), 3000)
	os.WriteFile(filepath.Join(src, "a.apk"), data, 0o644)
	os.WriteFile(filepath.Join(src, "b.apk"), append([]byte(nil), data...), 0o644)
	img := filepath.Join(dir, "fs.img")
	runCmd(t, "mke2fs", "-q", "-t", "ext4", "-O", "^has_journal", "-d", src, img, "8M")
	if out, _ := runCmdErr("mke2fs", "-q", "-F", "-t", "ext4", "-O", "shared_blocks", filepath.Join(dir, "x.img"), "8M"); !strings.Contains(out, "shared_blocks") {
		t.Logf("mke2fs now accepts -O shared_blocks: %s", out)
	}
	fsys, _ := openImage(t, img)
	a := inodeOf(t, fsys, "a.apk")
	sp, err := newMapper(a).lookup(0)
	if err != nil {
		t.Fatal(err)
	}
	cmds := filepath.Join(dir, "cmds")
	// b.apk takes a.apk's whole extent tree root (both are the same size).
	var sb strings.Builder
	for i := 0; i < 15; i++ {
		fmt.Fprintf(&sb, "sif /b.apk block[%d] %d\n", i, binary.LittleEndian.Uint32(a.iblock[4*i:]))
	}
	sb.WriteString("feature shared_blocks\n")
	os.WriteFile(cmds, []byte(sb.String()), 0o644)
	runCmd(t, "debugfs", "-w", "-f", cmds, img)
	if out := runCmd(t, "debugfs", "-R", "stats", img); !strings.Contains(out, "shared_blocks") {
		t.Fatalf("feature not set:\n%.500s", out)
	}
	fsys, _ = openImage(t, img)
	if !fsys.Superblock().HasSharedBlocks() {
		t.Fatal("HasSharedBlocks = false")
	}
	b := inodeOf(t, fsys, "b.apk")
	spb, err := newMapper(b).lookup(0)
	if err != nil || spb.phys != sp.phys {
		t.Fatalf("b.apk starts at block %d, a.apk at %d: patch failed", spb.phys, sp.phys)
	}
	ga, err := fsys.ReadFile("a.apk")
	if err != nil {
		t.Fatal(err)
	}
	gb, err := fsys.ReadFile("b.apk")
	if err != nil {
		t.Fatal(err)
	}
	judged := runCmd(t, "debugfs", "-R", "cat /b.apk", img)
	if !bytes.Equal(ga, data) || !bytes.Equal(gb, data) || judged != string(data) {
		t.Fatal("shared files do not read as their content")
	}
}

func runCmdErr(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
