package erofs

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
)

// treeOptions shape the Android-like source trees the tests feed to mkfs.erofs.
type treeOptions struct {
	seed      int64
	manyFiles int   // files in system/lib64, so the directory spans several blocks
	bigFile   int64 // size of a mixed random/compressible file spanning many pclusters
}

// mixedBytes returns n bytes alternating compressible runs (text-like) and random runs, like the
// contents of an APK: some entries stored, some deflated.
func mixedBytes(r *rand.Rand, n int) []byte {
	var b bytes.Buffer
	words := []string{"android", "permission", "activity", "<manifest ", "xmlns", "com.example.", "INTERNET", "\n", "    ", "0000"}
	for b.Len() < n {
		switch r.Intn(3) {
		case 0:
			chunk := make([]byte, 256+r.Intn(8192))
			r.Read(chunk)
			b.Write(chunk)
		default:
			for i := 0; i < 200+r.Intn(2000); i++ {
				b.WriteString(words[r.Intn(len(words))])
			}
		}
	}
	return b.Bytes()[:n]
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	r.Read(b)
	return b
}

// buildTree writes an Android-like system partition tree under dir and returns the file_contexts
// text that labels it (for mkfs.erofs --file-contexts).
func buildTree(t testing.TB, dir string, o treeOptions) string {
	t.Helper()
	r := rand.New(rand.NewSource(o.seed))
	write := func(rel string, data []byte, mode os.FileMode) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	symlink := func(target, rel string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	var prop strings.Builder
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&prop, "ro.product.property%d=value-%d\n", i, r.Intn(1000))
	}
	prop.WriteString("ro.build.fingerprint=provkit/test/device:14/UP1A.231005.007/1234:user/release-keys\n")
	write("system/build.prop", []byte(prop.String()), 0o600)
	write("system/app/Messenger/Messenger.apk", mixedBytes(r, 700<<10+123), 0o644)
	write("system/app/Calc/Calc.apk", mixedBytes(r, 50<<10+7), 0o644)
	write("system/priv-app/Settings/Settings.apk", mixedBytes(r, 1200<<10+999), 0o644)
	write("system/priv-app/Settings/oat/arm64/Settings.odex", bytes.Repeat([]byte("dex\n035\x00odex-section "), 10000), 0o644)
	var xml strings.Builder
	xml.WriteString("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<permissions>\n")
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&xml, "  <privapp-permissions package=\"com.example.app%d\">\n    <permission name=\"android.permission.INSTALL_PACKAGES\"/>\n  </privapp-permissions>\n", i)
	}
	xml.WriteString("</permissions>\n")
	write("system/etc/permissions/privapp-permissions-platform.xml", []byte(xml.String()), 0o644)
	write("system/etc/permissions/com.example.messenger.xml", []byte("<permissions><privapp-permissions package=\"ru.example.messenger\"/></permissions>\n"), 0o644)
	write("system/etc/sysconfig/preinstalled-packages.xml", []byte("<config>\n<install-in-user-type package=\"ru.example.messenger\"><install-in user-type=\"FULL\"/></install-in-user-type>\n</config>\n"), 0o644)
	write("system/etc/empty.conf", nil, 0o644)
	write("system/bin/toybox", mixedBytes(r, 100<<10), 0o755)
	write("system/bin/su", randomBytes(r, 777), 0o4750)
	write("system/bin/sgid", randomBytes(r, 10), 0o2755)
	write("system/bin/sticky", nil, 0o1777)
	symlink("toybox", "system/bin/sh")
	symlink("toybox", "system/bin/ls")
	symlink("/vendor", "system/vendor")
	symlink("../bin/toybox", "system/xbin/tb")
	symlink("/system/etc", "system/etc-abs")
	if err := os.Link(filepath.Join(dir, "system/bin/toybox"), filepath.Join(dir, "system/bin/toybox-hardlink")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 4095, 4096, 4097, 8192, 12289, 65536, 65537} {
		write(fmt.Sprintf("system/blocks/random-%d", n), randomBytes(r, n), 0o644)
		write(fmt.Sprintf("system/blocks/text-%d", n), mixedBytes(r, n), 0o644)
	}
	write("system/blocks/zeros-1M", make([]byte, 1<<20), 0o644)
	write("system/blocks/zeros-3M-plus", make([]byte, 3<<20+17), 0o644)
	if o.bigFile > 0 {
		write("system/blocks/big.img", mixedBytes(r, int(o.bigFile)), 0o644)
	}
	for i := 0; i < o.manyFiles; i++ {
		n := r.Intn(3000)
		if i%7 == 0 {
			write(fmt.Sprintf("system/lib64/libfoo%04d.so", i), mixedBytes(r, n), 0o644)
		} else {
			write(fmt.Sprintf("system/lib64/libfoo%04d.so", i), randomBytes(r, n%200), 0o644)
		}
	}
	// mkfs.erofs 1.5 fails ("No such file or directory") on 255-byte names: 250 is long enough.
	write("system/names/"+strings.Repeat("n", 250), []byte("long name"), 0o644)
	write("system/names/with space", []byte("space"), 0o644)
	write("system/names/ünïcødé", []byte("utf-8"), 0o644)
	write("system/names/-dash-sorts-before-dot", []byte("x"), 0o644)
	if err := os.MkdirAll(filepath.Join(dir, "system/emptydir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "system/dev/fifo"), 0o600); err != nil {
		if err := os.MkdirAll(filepath.Join(dir, "system/dev"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(filepath.Join(dir, "system/dev/fifo"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() == 0 {
		// Device nodes and foreign owners need root; CI runs as root.
		if err := syscall.Mknod(filepath.Join(dir, "system/dev/null"), syscall.S_IFCHR|0o666, int(makedev(1, 3))); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mknod(filepath.Join(dir, "system/dev/block"), syscall.S_IFBLK|0o600, int(makedev(259, 70000))); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			rel      string
			uid, gid int
		}{{"system/app/Messenger/Messenger.apk", 1000, 1000}, {"system/bin/su", 0, 2000}, {"system/etc/permissions", 1000, 9999}, {"system/bin/sh", 70000, 80000}} {
			if err := os.Lchown(filepath.Join(dir, c.rel), c.uid, c.gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	// User xattrs, where the filesystem of the temporary directory takes them.
	for _, rel := range []string{"system/app/Messenger/Messenger.apk", "system/build.prop", "system/etc"} {
		if err := syscall.Setxattr(filepath.Join(dir, rel), "user.provkit.test", []byte("value of "+rel), 0); err != nil {
			t.Logf("user xattrs not supported here (%v): only security.selinux is checked", err)
			break
		}
	}
	// Spread mtimes so some inodes need the extended form.
	base := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	i := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		i++
		return os.Chtimes(p, base, base.Add(time.Duration(i)*time.Hour+time.Duration(i*7919)))
	})
	if err != nil {
		t.Fatal(err)
	}
	return "/.*                u:object_r:system_file:s0\n" +
		"/system/app(/.*)?  u:object_r:app_file:s0\n" +
		"/system/bin/su     u:object_r:su_exec:s0\n" +
		"/system/etc/permissions(/.*)? u:object_r:permissions_file:s0\n"
}

func makedev(major, minor uint32) uint64 {
	return uint64(minor&0xff) | uint64(major&0xfff)<<8 | uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
}

// mkfs runs mkfs.erofs with args on src and returns the image path.
func mkfs(t testing.TB, src string, args ...string) string {
	t.Helper()
	testtool.Require(t, "mkfs.erofs")
	img := filepath.Join(t.TempDir(), "image.erofs")
	cmd := exec.Command("mkfs.erofs", append(append([]string{"--quiet"}, args...), img, src)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs %v: %v\n%s", args, err, out)
	}
	return img
}

// openImage opens an image file with the package under test.
func openImage(t testing.TB, img string, opts Options) *FS {
	t.Helper()
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	f, err := OpenWithOptions(fh, st.Size(), opts)
	if err != nil {
		t.Fatalf("opening %s: %v", img, err)
	}
	return f
}

// entry is what both sides of a comparison report for one path.
type entry struct {
	mode   fs.FileMode
	size   int64
	uid    uint32
	gid    uint32
	mtime  time.Time
	sha    string
	link   string
	rdev   uint64
	xattrs map[string]string
}

func (e entry) String() string {
	return fmt.Sprintf("mode=%v size=%d uid=%d gid=%d mtime=%v sha=%.12s link=%q rdev=%d xattrs=%v", e.mode, e.size, e.uid, e.gid, e.mtime.UTC().Format(time.RFC3339Nano), e.sha, e.link, e.rdev, e.xattrs)
}

// scanDisk describes a directory tree on the host, keyed by slash path relative to root.
func scanDisk(t testing.TB, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		e := entry{mode: info.Mode(), uid: st.Uid, gid: st.Gid, mtime: info.ModTime(), xattrs: map[string]string{}}
		switch {
		case info.Mode().IsRegular():
			e.size = info.Size()
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.sha = fmt.Sprintf("%x", sha256.Sum256(data))
		case info.Mode()&fs.ModeSymlink != 0:
			e.size = info.Size()
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.Mode()&fs.ModeDevice != 0:
			e.rdev = uint64(st.Rdev)
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			buf := make([]byte, 4096)
			n, err := syscall.Listxattr(p, buf)
			if err == nil {
				for _, name := range strings.Split(string(buf[:n]), "\x00") {
					if !strings.HasPrefix(name, "user.") {
						continue
					}
					v := make([]byte, 4096)
					m, err := syscall.Getxattr(p, name, v)
					if err != nil {
						return err
					}
					e.xattrs[name] = string(v[:m])
				}
			}
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// scanImage describes the whole image through the fs.FS API only.
func scanImage(t testing.TB, f *FS) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		info, err := f.Lstat(p)
		if err != nil {
			return err
		}
		if d.Type() != info.Mode().Type() {
			t.Errorf("%s: dirent type %v, inode type %v", p, d.Type(), info.Mode().Type())
		}
		in := info.Sys().(*Inode)
		e := entry{mode: info.Mode(), uid: in.UID(), gid: in.GID(), mtime: info.ModTime(), xattrs: map[string]string{}}
		switch {
		case info.Mode().IsRegular():
			e.size = info.Size()
			file, err := f.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			// Read through Read with an odd buffer size to exercise partial extent copies.
			if _, err := io.CopyBuffer(h, struct{ io.Reader }{file}, make([]byte, 3001)); err != nil {
				return fmt.Errorf("reading %s: %w", p, err)
			}
			file.Close()
			e.sha = fmt.Sprintf("%x", h.Sum(nil))
		case info.Mode()&fs.ModeSymlink != 0:
			e.size = info.Size()
			if e.link, err = f.ReadLink(p); err != nil {
				return err
			}
		case info.Mode()&fs.ModeDevice != 0:
			e.rdev = makedev(in.Major(), in.Minor())
		}
		for k, v := range in.Xattrs() {
			e.xattrs[k] = string(v)
		}
		out[p] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type compareOpts struct {
	owners  bool // compare uid/gid
	mtimes  bool // compare mtimes
	xattrs  bool // compare user.* xattrs (the disk side lists only those)
	onlyKey func(string) bool
}

// compareTrees reports every difference between what the image says and what the disk says.
func compareTrees(t testing.TB, what string, img, disk map[string]entry, o compareOpts) {
	t.Helper()
	var paths []string
	for p := range disk {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	bad := 0
	for _, p := range paths {
		d := disk[p]
		e, ok := img[p]
		if !ok {
			t.Errorf("%s: %s missing from the image", what, p)
			bad++
			continue
		}
		diff := e.mode != d.mode || e.size != d.size && !d.mode.IsDir() || e.sha != d.sha || e.link != d.link || e.rdev != d.rdev
		if o.owners && (e.uid != d.uid || e.gid != d.gid) {
			diff = true
		}
		if o.mtimes && !e.mtime.Equal(d.mtime) && d.mode&fs.ModeSymlink == 0 {
			diff = true
		}
		if o.xattrs {
			for k, v := range d.xattrs {
				if e.xattrs[k] != v {
					diff = true
				}
			}
			for k := range e.xattrs {
				if _, ok := d.xattrs[k]; !ok && strings.HasPrefix(k, "user.") {
					diff = true
				}
			}
		}
		if diff {
			bad++
			if bad < 20 {
				t.Errorf("%s: %s differs:\n image: %v\n  disk: %v", what, p, e, d)
			}
		}
	}
	for p := range img {
		if _, ok := disk[p]; !ok {
			t.Errorf("%s: %s is in the image but not on disk", what, p)
		}
	}
	if bad >= 20 {
		t.Errorf("%s: %d paths differ", what, bad)
	}
}
