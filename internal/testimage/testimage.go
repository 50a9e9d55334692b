package testimage

import (
	"archive/zip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testimage/lpwrite"
	"github.com/provkit/provkit/internal/testtool"
)

// File is one entry of a source tree.
type File struct {
	Path string // slash-separated, relative
	Data []byte
	Mode os.FileMode // default 0644; 0o4000, 0o2000, 0o1000 set setuid, setgid, sticky
	Dir  bool
	Link string // symbolic link target
}

// WriteTree creates files under dir.
func WriteTree(t testing.TB, dir string, files []File) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case f.Dir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case f.Link != "":
			if err := os.Symlink(f.Link, p); err != nil {
				t.Fatal(err)
			}
		default:
			mode := f.Mode
			if mode == 0 {
				mode = 0o644
			}
			if err := os.WriteFile(p, f.Data, mode.Perm()); err != nil {
				t.Fatal(err)
			}
			// Unix setuid, setgid and sticky bits (0o4000...) as Go's mode flags, after the umask.
			gm := mode.Perm()
			for bit, flag := range map[os.FileMode]os.FileMode{0o4000: os.ModeSetuid, 0o2000: os.ModeSetgid, 0o1000: os.ModeSticky} {
				if mode&bit != 0 || mode&flag != 0 {
					gm |= flag
				}
			}
			if err := os.Chmod(p, gm); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Ext4 builds an ext4 image of sizeMiB from src with mke2fs -d (4 KiB blocks, files owned by
// root as Android's are) and labels every file with an SELinux context as e2fsdroid does
// (u:object_r:system_file:s0 on every file and directory).
// It returns the image path.
func Ext4(t testing.TB, src string, sizeMiB int) string {
	t.Helper()
	testtool.Require(t, "mke2fs", "debugfs")
	img := filepath.Join(t.TempDir(), "ext4.img")
	run(t, "mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-E", "root_owner=0:0", "-d", src, img, strconv.Itoa(sizeMiB)+"M")
	label := filepath.Join(t.TempDir(), "label")
	if err := os.WriteFile(label, []byte("u:object_r:system_file:s0\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	var cmds strings.Builder
	var paths []string
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(src, p); rel != "." {
			paths = append(paths, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(&cmds, "ea_set -f %s /%s security.selinux\n", label, p)
	}
	script := filepath.Join(t.TempDir(), "debugfs.cmds")
	if err := os.WriteFile(script, []byte(cmds.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "debugfs", "-w", "-f", script, img)
	return img
}

// EROFS builds an EROFS image from src with mkfs.erofs and extra args (e.g. "-zlz4hc").
func EROFS(t testing.TB, src string, args ...string) string {
	t.Helper()
	testtool.Require(t, "mkfs.erofs")
	img := filepath.Join(t.TempDir(), "erofs.img")
	run(t, "mkfs.erofs", append(append([]string{"--all-root"}, args...), img, src)...)
	return img
}

// Sparse converts a raw image with img2simg and returns the sparse image's path.
func Sparse(t testing.TB, raw string) string {
	t.Helper()
	testtool.Require(t, "img2simg")
	out := filepath.Join(t.TempDir(), filepath.Base(raw)+".simg")
	run(t, "img2simg", raw, out)
	return out
}

// Super writes a super image (lpmake's layout) to a file and returns its path.
func Super(t testing.TB, spec lpwrite.Spec) string {
	t.Helper()
	b, err := lpwrite.Write(spec)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "super.img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Read returns a file's bytes.
func Read(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ZipEntry is one entry of a zip written by Zip.
type ZipEntry struct {
	Name    string
	Data    []byte
	File    string // read the data from this file instead
	Deflate bool
}

// Zip writes a zip archive.
func Zip(t testing.TB, path string, entries []ZipEntry) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, e := range entries {
		m := zip.Store
		if e.Deflate {
			m = zip.Deflate
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.Name, Method: m})
		if err != nil {
			t.Fatal(err)
		}
		data := e.Data
		if e.File != "" {
			data = Read(t, e.File)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// FactoryZip writes a factory image zip as Google ships them: <device>-<build>/ holding
// flash-all.sh, a bootloader image and image-<device>-<build>.zip with the partition images
// (images: file name -> path) and android-info.txt. deflate compresses the images in the image
// zip (Google's do).
func FactoryZip(t testing.TB, dir, device, build string, images map[string]string, deflate bool) string {
	t.Helper()
	names := make([]string, 0, len(images))
	for n := range images {
		names = append(names, n)
	}
	sort.Strings(names)
	inner := []ZipEntry{{Name: "android-info.txt", Data: []byte("require board=" + device + "\nrequire version-bootloader=1.0\n"), Deflate: true}}
	for _, n := range names {
		inner = append(inner, ZipEntry{Name: n, File: images[n], Deflate: deflate})
	}
	imgZip := filepath.Join(t.TempDir(), "image.zip")
	Zip(t, imgZip, inner)
	prefix := device + "-" + build + "/"
	out := filepath.Join(dir, device+"-"+build+"-factory.zip")
	Zip(t, out, []ZipEntry{
		{Name: prefix + "flash-all.sh", Data: []byte("#!/bin/sh\nfastboot update image-" + device + "-" + build + ".zip\n"), Deflate: true},
		{Name: prefix + "bootloader-" + device + "-1.0.img", Data: []byte("bootloader")},
		{Name: prefix + "image-" + device + "-" + build + ".zip", File: imgZip},
	})
	return out
}
