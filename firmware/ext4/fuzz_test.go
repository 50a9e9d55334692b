package ext4

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tinyImages builds 128 KiB seed images with mke2fs: ext4 with metadata_csum, ext2 with block
// maps, ext4 with inline data, ext4 with 256-block groups and a resize inode, and ext4 with
// 128-byte inodes whose file "big" has an external xattr block; each holds a directory, a file,
// fast and slow symlinks.
func tinyImages(f *testing.F) [][]byte { return tinyImagesT(f) }

func tinyImagesT(f testing.TB) [][]byte {
	f.Helper()
	if _, err := exec.LookPath("mke2fs"); err != nil {
		return nil
	}
	dir := f.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d/f"), []byte("hello\n"), 0o644)
	os.WriteFile(filepath.Join(src, "big"), bytes.Repeat([]byte("0123456789abcdef"), 200), 0o644)
	os.Symlink("d/f", filepath.Join(src, "l"))
	os.Symlink(strings.Repeat("x", 80), filepath.Join(src, "long"))
	var out [][]byte
	for i, args := range [][]string{
		{"-t", "ext4", "-O", "^has_journal,^resize_inode"},
		{"-t", "ext2", "-O", "^resize_inode"},
		{"-t", "ext4", "-I", "256", "-O", "^has_journal,^resize_inode,inline_data"},
		// small groups with reserved descriptor blocks: Grow adds groups with backups to it
		{"-t", "ext4", "-g", "256", "-O", "^has_journal"},
		// 128-byte inodes (as AOSP's mkuserimg_mke2fs makes them): every xattr is in a block
		{"-t", "ext4", "-I", "128", "-N", "32", "-O", "^has_journal,metadata_csum"},
	} {
		img := filepath.Join(dir, "img"+string(rune('0'+i)))
		if err := os.WriteFile(img, make([]byte, 128<<10), 0o644); err != nil {
			f.Fatal(err)
		}
		all := append([]string{"-q", "-F", "-b", "1024", "-N", "16", "-d", src}, args...)
		if b, err := exec.Command("mke2fs", append(all, img)...).CombinedOutput(); err != nil {
			f.Fatalf("mke2fs: %v\n%s", err, b)
		}
		if slices.Contains(args, "128") {
			// an external xattr block for Replace to free
			if _, err := exec.LookPath("debugfs"); err == nil {
				if b, err := exec.Command("debugfs", "-w", "-R", "ea_set /big user.origin seed", img).CombinedOutput(); err != nil {
					f.Fatalf("debugfs: %v\n%s", err, b)
				}
			}
		}
		b, err := os.ReadFile(img)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// expected reports whether err is one of the errors the reader is allowed to return for a
// hostile image.
func expected(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotExt4) || errors.Is(err, errors.ErrUnsupported) ||
		errors.Is(err, fs.ErrNotExist) || errors.Is(err, errLoop) || errors.Is(err, fs.ErrInvalid) ||
		strings.Contains(err.Error(), "is a directory")
}

// FuzzImage mutates whole small images: Open, walk every path, stat, read links and read every
// file. Invariants: no panic, no unbounded work, every error is one of the documented kinds, and
// no read returns more bytes than the file's size.
func FuzzImage(f *testing.F) {
	for _, b := range tinyImages(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !expected(err) {
				t.Fatalf("Open: unexpected error kind: %v", err)
			}
			return
		}
		visited := 0
		fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			visited++
			if visited > 500 {
				return fs.SkipAll
			}
			if err != nil {
				if !expected(err) {
					t.Fatalf("walking %s: unexpected error kind: %v", p, err)
				}
				return nil
			}
			fi, err := fsys.Lstat(p)
			if err != nil {
				if !expected(err) {
					t.Fatalf("Lstat %s: %v", p, err)
				}
				return nil
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				if _, err := fsys.ReadLink(p); err != nil && !expected(err) {
					t.Fatalf("ReadLink %s: %v", p, err)
				}
				return nil
			}
			if !fi.Mode().IsRegular() {
				return nil
			}
			file, err := fsys.Open(p)
			if err != nil {
				if !expected(err) {
					t.Fatalf("Open %s: %v", p, err)
				}
				return nil
			}
			n, err := io.Copy(io.Discard, io.LimitReader(file, 1<<20))
			if err != nil && !expected(err) {
				t.Fatalf("reading %s: %v", p, err)
			}
			if n > fi.Size() {
				t.Fatalf("%s: read %d bytes of a %d-byte file", p, n, fi.Size())
			}
			return nil
		})
	})
}

// FuzzDirBlock feeds arbitrary bytes to the directory block parser of a real file system.
func FuzzDirBlock(f *testing.F) {
	imgs := tinyImages(f)
	if len(imgs) == 0 {
		f.Skip("mke2fs not installed")
	}
	fsys, err := Open(bytes.NewReader(imgs[1]), int64(len(imgs[1])))
	if err != nil {
		f.Fatal(err)
	}
	root, err := fsys.readInode(rootIno)
	if err != nil {
		f.Fatal(err)
	}
	sp, err := newMapper(root).lookup(0)
	if err != nil {
		f.Fatal(err)
	}
	blk, _ := fsys.readBlock(sp.phys, "root")
	f.Add(blk)
	f.Add(blk[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		names := 0
		err := fsys.parseDirBlock(b, "fuzz", func(e dirent, _ int) error {
			names++
			if e.name == "" || strings.ContainsAny(e.name, "/\x00") || e.ino == 0 || e.ino > fsys.sb.InodesCount {
				t.Fatalf("parser returned a bad entry %+v", e)
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if names > len(b)/8 {
			t.Fatalf("%d entries from %d bytes", names, len(b))
		}
	})
}

// FuzzExtentNode feeds arbitrary i_block contents to the extent lookup.
func FuzzExtentNode(f *testing.F) {
	imgs := tinyImages(f)
	if len(imgs) == 0 {
		f.Skip("mke2fs not installed")
	}
	fsys, err := Open(bytes.NewReader(imgs[0]), int64(len(imgs[0])))
	if err != nil {
		f.Fatal(err)
	}
	fi, err := fsys.Lstat("big")
	if err != nil {
		f.Fatal(err)
	}
	n := fi.Sys().(*Inode)
	f.Add(n.iblock[:], uint32(0))
	f.Add(n.iblock[:], uint32(3))
	f.Fuzz(func(t *testing.T, iblock []byte, lblk uint32) {
		c := *n
		copy(c.iblock[:], iblock)
		sp, err := newMapper(&c).lookup(uint64(lblk))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if sp.n == 0 {
			t.Fatal("empty span")
		}
		if !sp.hole && sp.phys+sp.n > fsys.sb.BlocksCount {
			t.Fatalf("span %+v past the end of the file system", sp)
		}
	})
}
