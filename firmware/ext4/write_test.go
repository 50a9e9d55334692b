package ext4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
)

// writeVariants are the layouts the editor is judged on: mke2fs's ext4 defaults (journal,
// metadata_csum, 64bit, flex_bg), AOSP's mkuserimg_mke2fs options (no journal), 1 KiB blocks in
// many groups (most of them BLOCK_UNINIT, and so few inodes per group that new ones land in
// INODE_UNINIT groups), and gdt_csum without metadata_csum.
var writeVariants = []struct {
	name   string
	sizeMB int
	args   []string
}{
	{"ext4-journal", 24, []string{"-t", "ext4", "-b", "4096", "-I", "256", "-O", "metadata_csum,64bit"}},
	{"android-nojournal", 24, []string{"-t", "ext4", "-b", "4096", "-I", "256", "-m", "0", "-O", "^has_journal,metadata_csum,^64bit"}},
	{"1k-many-groups", 40, []string{"-t", "ext4", "-b", "1024", "-I", "256", "-N", "800", "-O", "metadata_csum,^resize_inode"}},
	{"uninit-bg", 24, []string{"-t", "ext4", "-b", "4096", "-I", "256", "-O", "^metadata_csum,uninit_bg"}},
}

func buildWriteTree(t *testing.T, dir string) string {
	src := filepath.Join(dir, "src")
	w := func(rel string, data []byte) {
		p := filepath.Join(src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w("system/build.prop", []byte("ro.build.id=TEST\n"))
	w("system/etc/permissions/existing.xml", []byte("<permissions/>\n"))
	w("system/app/Other/Other.apk", bytes.Repeat([]byte("other apk "), 5000))
	os.MkdirAll(filepath.Join(src, "system/priv-app"), 0o755)
	for i := 0; i < 400; i++ { // indexed as an htree by e2fsck -D
		w(fmt.Sprintf("system/big/file-with-a-long-name-%04d", i), []byte{byte(i)})
	}
	for i := 0; i < 40; i++ {
		w(fmt.Sprintf("frag/f%03d", i), bytes.Repeat([]byte{byte(i)}, 3000))
	}
	return src
}

func mkfsForWrite(t *testing.T, dir, src string, sizeMB int, args ...string) string {
	img := filepath.Join(dir, "fs.img")
	all := append([]string{"-q", "-F", "-E", "root_owner=0:0", "-d", src}, args...)
	runCmd(t, "mke2fs", append(all, img, fmt.Sprintf("%dM", sizeMB))...)
	if out, err := exec.Command("e2fsck", "-fyD", img).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			t.Fatalf("e2fsck -fyD: %v\n%s", err, out)
		}
	}
	label := filepath.Join(dir, "label")
	os.WriteFile(label, []byte("u:object_r:system_file:s0\x00"), 0o644)
	cmds := fmt.Sprintf("ea_set -f %[1]s /system security.selinux\nea_set -f %[1]s /system/build.prop security.selinux\n", label)
	cf := filepath.Join(dir, "cmds")
	os.WriteFile(cf, []byte(cmds), 0o644)
	if out := runCmd(t, "debugfs", "-w", "-f", cf, img); strings.Contains(out, "rror") {
		t.Fatalf("debugfs: %s", out)
	}
	return img
}

// dumpSums returns the SHA-256 of every regular file debugfs rdump extracts from img.
func dumpSums(t *testing.T, img string) map[string][32]byte {
	t.Helper()
	out := t.TempDir()
	runCmd(t, "debugfs", "-R", "rdump / "+out, img)
	sums := map[string][32]byte{}
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(out, p)
			sums[rel] = sha256.Sum256(b)
		}
		return nil
	})
	return sums
}

func e2fsckClean(t *testing.T, img string) {
	t.Helper()
	out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn after editing: %v\n%s", err, out)
	}
}

func debugfsOut(t *testing.T, img, req string) string {
	t.Helper()
	return runCmd(t, "debugfs", "-R", req, img)
}

func editImage(t *testing.T, img string, fn func(e *Editor)) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	e, err := Edit(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	fn(e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestEditorAgainstE2fsck adds directories and files (one of them big, one directory grown past a
// block) to images made by mke2fs, then asks the real tools: e2fsck -fn finds nothing, debugfs
// returns the exact bytes, mode, owner and SELinux label, and every old file is unchanged.
func TestEditorAgainstE2fsck(t *testing.T) {
	testtool.Require(t, "mke2fs", "debugfs", "e2fsck")
	ctx := context.Background()
	for _, v := range writeVariants {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			src := buildWriteTree(t, dir)
			img := mkfsForWrite(t, dir, src, v.sizeMB, v.args...)
			before := dumpSums(t, img)
			label := []byte("u:object_r:system_app_file:s0\x00")
			mtime := time.Date(2009, 1, 1, 0, 0, 0, 0, time.UTC)
			apk := bytes.Repeat([]byte("new apk bytes "), 300000) // ~4 MiB
			apk = append(apk, 1, 2, 3)
			xml := []byte("<permissions><privapp-permissions package=\"x\"/></permissions>\n")
			names := []string{}
			editImage(t, img, func(e *Editor) {
				dm := Meta{Perm: 0o755, Mtime: mtime, Xattrs: map[string][]byte{"security.selinux": []byte("u:object_r:system_file:s0\x00")}}
				if err := e.Mkdir("system/priv-app/Messenger", dm); err != nil {
					t.Fatal(err)
				}
				fm := Meta{Perm: 0o644, UID: 1000, GID: 1007, Mtime: mtime, Xattrs: map[string][]byte{"security.selinux": label}}
				if err := e.Create(ctx, "system/priv-app/Messenger/Messenger.apk", fm, bytes.NewReader(apk), int64(len(apk))); err != nil {
					t.Fatal(err)
				}
				if err := e.Create(ctx, "system/etc/permissions/privapp-messenger.xml", fm, bytes.NewReader(xml), int64(len(xml))); err != nil {
					t.Fatal(err)
				}
				if err := e.Create(ctx, "system/empty", fm, bytes.NewReader(nil), 0); err != nil {
					t.Fatal(err)
				}
				// a directory that outgrows its first block
				if err := e.Mkdir("system/many", dm); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 120; i++ {
					n := fmt.Sprintf("system/many/%s-%03d", strings.Repeat("n", 60), i)
					names = append(names, n)
					if err := e.Create(ctx, n, fm, strings.NewReader(n), int64(len(n))); err != nil {
						t.Fatal(err)
					}
				}
			})
			e2fsckClean(t, img)
			after := dumpSums(t, img)
			for k, sum := range before {
				if after[k] != sum {
					t.Errorf("%s changed", k)
				}
			}
			if got := debugfsOut(t, img, "cat /system/priv-app/Messenger/Messenger.apk"); got != string(apk) {
				t.Errorf("debugfs cat of the new APK: %d bytes, want %d", len(got), len(apk))
			}
			if got := debugfsOut(t, img, "cat /system/etc/permissions/privapp-messenger.xml"); got != string(xml) {
				t.Errorf("debugfs cat of the new XML: %q", got)
			}
			for _, n := range names {
				if got := debugfsOut(t, img, "cat /"+n); got != n {
					t.Fatalf("debugfs cat /%s: %q", n, got)
				}
			}
			st := debugfsOut(t, img, "stat /system/priv-app/Messenger/Messenger.apk")
			for _, want := range []string{"Type: regular    Mode:  0644", "User:  1000   Group:  1007", fmt.Sprintf("Size: %d", len(apk))} {
				if !strings.Contains(st, want) {
					t.Errorf("debugfs stat lacks %q:\n%s", want, st)
				}
			}
			if st := debugfsOut(t, img, "stat /system/priv-app/Messenger"); !strings.Contains(st, "Type: directory    Mode:  0755") {
				t.Errorf("debugfs stat of the new directory:\n%s", st)
			}
			if got := debugfsOut(t, img, "ea_get /system/priv-app/Messenger/Messenger.apk security.selinux"); !strings.Contains(got, "u:object_r:system_app_file:s0") {
				t.Errorf("debugfs ea_get: %q", got)
			}
			// the reader agrees
			f, _ := openImage(t, img)
			if b, err := f.ReadFile("system/priv-app/Messenger/Messenger.apk"); err != nil || !bytes.Equal(b, apk) {
				t.Errorf("reading the new APK back: %v", err)
			}

			// refusals change nothing
			sumBefore := fileSum(t, img)
			editImage(t, img, func(e *Editor) {
				fm := Meta{Perm: 0o644, Mtime: mtime}
				if err := e.Create(ctx, "system/build.prop", fm, strings.NewReader("x"), 1); !errors.Is(err, fs.ErrExist) {
					t.Errorf("creating an existing file: %v, want fs.ErrExist", err)
				}
				if err := e.Create(ctx, "system/big/new", fm, strings.NewReader("x"), 1); !errors.Is(err, errors.ErrUnsupported) {
					t.Errorf("adding to an htree directory: %v, want errors.ErrUnsupported", err)
				}
				if err := e.Create(ctx, "nope/x", fm, strings.NewReader("x"), 1); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("adding under a missing directory: %v, want fs.ErrNotExist", err)
				}
				huge := Meta{Perm: 0o644, Xattrs: map[string][]byte{"user.big": bytes.Repeat([]byte("v"), 5000)}}
				if err := e.Create(ctx, "system/hugexattr", huge, strings.NewReader("x"), 1); !errors.Is(err, errors.ErrUnsupported) {
					t.Errorf("an xattr too big for the inode and an xattr block: %v, want errors.ErrUnsupported", err)
				}
				if err := e.Create(ctx, "system/toobig", fm, bytes.NewReader(nil), int64(v.sizeMB)<<20); !errors.Is(err, ErrNoSpace) {
					t.Errorf("a file bigger than the free space: %v, want ErrNoSpace", err)
				}
			})
			if fileSum(t, img) != sumBefore {
				t.Errorf("refused edits changed the image")
			}
		})
	}
}

func fileSum(t *testing.T, p string) [32]byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestEditorFragmented fills an image, frees every other small file with debugfs, and adds a file
// that needs more than the inode's four extents: the editor writes an extent leaf block, and
// e2fsck and debugfs agree with it.
func TestEditorFragmented(t *testing.T) {
	testtool.Require(t, "mke2fs", "debugfs", "e2fsck")
	ctx := context.Background()
	v := writeVariants[1]
	dir := t.TempDir()
	img := mkfsForWrite(t, dir, buildWriteTree(t, dir), v.sizeMB, v.args...)
	editImage(t, img, func(e *Editor) {
		n := int64(e.freeBlocks()-4) * e.fsys.bs
		if err := e.Create(ctx, "filler", Meta{Perm: 0o600}, bytes.NewReader(make([]byte, n)), n); err != nil {
			t.Fatal(err)
		}
	})
	var rm strings.Builder
	for i := 0; i < 40; i += 2 {
		fmt.Fprintf(&rm, "rm /frag/f%03d\n", i)
	}
	cf := filepath.Join(dir, "rm")
	os.WriteFile(cf, []byte(rm.String()), 0o644)
	runCmd(t, "debugfs", "-w", "-f", cf, img)
	e2fsckClean(t, img)
	data := bytes.Repeat([]byte("0123456789abcdef"), 15*4096/16-3)
	editImage(t, img, func(e *Editor) {
		if err := e.Create(ctx, "frag/spread", Meta{Perm: 0o644}, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		if err := e.Create(ctx, "frag/nospace", Meta{Perm: 0o644}, bytes.NewReader(data), int64(len(data))); !errors.Is(err, ErrNoSpace) {
			t.Errorf("a file bigger than the free space: %v, want ErrNoSpace", err)
		}
	})
	e2fsckClean(t, img)
	if got := debugfsOut(t, img, "cat /frag/spread"); got != string(data) {
		t.Errorf("debugfs cat: %d bytes, want %d", len(got), len(data))
	}
	if st := debugfsOut(t, img, "stat /frag/spread"); !strings.Contains(st, "(ETB0)") {
		t.Errorf("the file has no extent tree block:\n%s", st)
	}
	for i := 1; i < 40; i += 2 {
		if got := debugfsOut(t, img, fmt.Sprintf("cat /frag/f%03d", i)); got != string(bytes.Repeat([]byte{byte(i)}, 3000)) {
			t.Errorf("frag/f%03d changed", i)
		}
	}
}

// memImage is an in-memory image for the editor.
type memImage []byte

func (m memImage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m memImage) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, errors.New("write past the end")
	}
	return copy(m[off:], p), nil
}

// FuzzEdit mutates small images, replaces files in them, grows them and adds a directory and
// files to them: the editor must return an error or succeed, never panic or loop, whatever the bitmaps, descriptors, directories and
// extent trees say.
func FuzzEdit(f *testing.F) {
	for _, img := range tinyImages(f) {
		f.Add(img)
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		if len(img) > 1<<20 {
			return
		}
		editHostile(append([]byte(nil), img...))
	})
}

// editHostile replaces, grows, creates and closes on img, ignoring errors; it returns the image
// (grown into room after it).
func editHostile(img []byte) memImage {
	// room for Grow after the image
	m := memImage(make([]byte, 8*len(img)))
	copy(m, img)
	e, err := Edit(m, int64(len(img)))
	if err != nil {
		return m
	}
	ctx := context.Background()
	meta := Meta{Perm: 0o644, Xattrs: map[string][]byte{"security.selinux": []byte("u:object_r:system_file:s0\x00")}}
	for _, name := range []string{"big", "d/f", "l", "d"} {
		_ = e.Replace(ctx, name, meta, bytes.NewReader(make([]byte, 3000)), 3000)
	}
	if bs := e.FS().Superblock().BlockSize(); bs > 0 {
		_ = e.Grow(context.Background(), uint64(len(m))/uint64(bs))
	}
	_ = e.Mkdir("d/new", meta)
	_ = e.Create(ctx, "d/new/f", meta, bytes.NewReader(make([]byte, 5000)), 5000)
	for i := 0; i < 20; i++ {
		_ = e.Create(ctx, fmt.Sprintf("d/%s%d", strings.Repeat("n", 100), i), meta, strings.NewReader("x"), 1)
	}
	_ = e.Close()
	return m
}

// TestEditHostileSeed128 runs the FuzzEdit body on the unmutated 128-byte-inode seed and judges
// the result with e2fsck and debugfs, so the fuzz body is known to reach the xattr block writer
// and Replace's freeing of an xattr block.
func TestEditHostileSeed128(t *testing.T) {
	testtool.Require(t, "mke2fs", "e2fsck", "debugfs")
	seeds := tinyImagesT(t)
	fsys, err := Open(bytes.NewReader(seeds[4]), int64(len(seeds[4])))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := fsys.Stat("big"); err != nil || fi.Sys().(*Inode).fileACL == 0 || fsys.inodeSize != 128 {
		t.Fatalf("the seed's big has no xattr block (or inodes are not 128 bytes): %v", err)
	}
	m := editHostile(seeds[4])
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, m, 0o644); err != nil {
		t.Fatal(err)
	}
	e2fsckClean(t, p)
	for _, f := range []string{"/big", "/d/new", "/d/new/f"} {
		if out := debugfsOut(t, p, "ea_list "+f); !strings.Contains(out, `security.selinux (26) = "u:object_r:system_file:s0\000"`) || strings.Contains(out, "user.origin") {
			t.Errorf("ea_list %s:\n%s", f, out)
		}
		if st := debugfsOut(t, p, "stat "+f); strings.Contains(st, "File ACL: 0") {
			t.Errorf("%s has no xattr block:\n%s", f, st)
		}
	}
}

// TestEditMutations runs the fuzz body over a few thousand seeded random byte mutations of the
// seed images, so every test run covers hostile metadata (the fuzzer itself is slow on images
// this size).
func TestEditMutations(t *testing.T) {
	seeds := tinyImagesT(t)
	rnd := rand.New(rand.NewSource(15))
	for it := 0; it < 3000 && len(seeds) > 0; it++ {
		img := append([]byte(nil), seeds[it%len(seeds)]...)
		// mutate the metadata area (first 16 KiB: superblock, descriptors, bitmaps, inodes)
		for k := 0; k < 1+rnd.Intn(8); k++ {
			img[rnd.Intn(16<<10)] = byte(rnd.Intn(256))
		}
		editHostile(img)
	}
}
