package ext4

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/provkit/provkit/firmware/sparse"
	"github.com/provkit/provkit/internal/testtool"
)

// treeOptions shapes the Android-like source tree handed to mke2fs -d.
type treeOptions struct {
	manyFiles  int  // files in system/lib64, enough to make it an htree directory
	bigFile    int  // bytes of system/framework/framework.jar
	sparseFile bool // a file with a hole then data far into it (block maps: triple indirect)
	sparseAt   int64
}

// buildTree writes an Android-like system partition tree under dir and returns it.
func buildTree(t testing.TB, dir string, o treeOptions) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(42, uint64(o.manyFiles)))
	src := filepath.Join(dir, "src")
	write := func(p string, data []byte, mode os.FileMode) {
		full := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	write("system/build.prop", []byte("ro.build.fingerprint=provkit/test/test:14/UP1A/1:user/release-keys\nro.product.name=test\n"), 0o600)
	write("system/app/Messenger/Messenger.apk", random(300_000), 0o644)
	write("system/app/Messenger/oat/arm64/Messenger.odex", random(5000), 0o644)
	write("system/priv-app/Settings/Settings.apk", random(123_457), 0o644)
	write("system/etc/permissions/privapp-permissions-messenger.xml", []byte(`<?xml version="1.0" encoding="utf-8"?>
<permissions><privapp-permissions package="ru.oneme.app"><permission name="android.permission.READ_PHONE_STATE"/></privapp-permissions></permissions>
`), 0o644)
	write("system/etc/permissions/platform.xml", bytes.Repeat([]byte("<permission name=\"x\"/>\n"), 200), 0o644)
	write("system/etc/tiny.txt", []byte("tiny\n"), 0o644)                 // inline candidate
	write("system/etc/medium.txt", bytes.Repeat([]byte("m"), 150), 0o644) // inline: i_block + system.data
	write("system/etc/empty", nil, 0o644)
	write("system/bin/sh-setuid", []byte("#!/bin/sh\n"), fs.ModeSetuid|0o755)
	write("system/bin/sticky", []byte("s"), fs.ModeSticky|0o644)
	if o.bigFile > 0 {
		write("system/framework/framework.jar", random(o.bigFile), 0o644)
	}
	for i := 0; i < o.manyFiles; i++ {
		write(fmt.Sprintf("system/lib64/libprovkit_%04d.so", i), random(rng.IntN(300)), 0o644)
	}
	if err := os.MkdirAll(filepath.Join(src, "system/empty-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "system/a/b/c/d"), 0o750); err != nil {
		t.Fatal(err)
	}
	write("system/a/b/c/d/deep.txt", []byte("deep\n"), 0o644)
	// A file with a hole: data at the start and far in.
	os.MkdirAll(filepath.Join(src, "system/holes"), 0o755)
	hole := filepath.Join(src, "system/holes/holey.bin")
	f, err := os.Create(hole)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(random(5000))
	f.WriteAt(random(3000), 1<<20)
	if o.sparseFile {
		f.WriteAt(random(4096), o.sparseAt)
	}
	f.Close()
	links := map[string]string{
		"system/bin/short":   "sh-setuid",
		"system/bin/abs":     "/system/bin/sh-setuid",
		"system/bin/long":    "../../" + strings.Repeat("long-name-", 8) + "target",
		"system/bin/dangle":  "does-not-exist",
		"system/bin/up":      "../etc",
		"system/bin/loop1":   "loop2",
		"system/bin/loop2":   "loop1",
		"system/vendor-link": "/vendor",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(src, "system/etc/tiny.txt"), filepath.Join(src, "system/etc/tiny-hardlink.txt")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(src, "system/fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		os.Lchown(filepath.Join(src, "system/app/Messenger/Messenger.apk"), 1000, 1000)
		os.Lchown(filepath.Join(src, "system/priv-app"), 0, 2000)
		os.Lchown(filepath.Join(src, "system/bin/short"), 2000, 2000)
	}
	return src
}

func runCmd(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// mkfs builds an image with mke2fs -d and sets xattrs with debugfs -w.
func mkfs(t testing.TB, dir, src string, sizeMiB int, args ...string) string {
	t.Helper()
	img := filepath.Join(dir, "fs.img")
	all := append([]string{"-q", "-F", "-E", "root_owner=0:0", "-d", src}, args...)
	all = append(all, img, strconv.Itoa(sizeMiB)+"M")
	runCmd(t, "mke2fs", all...)
	// mke2fs -d writes linear directories; e2fsck -D indexes the big ones as htrees, as a
	// kernel-written Android image has them. Exit status 1 means it changed the file system.
	if out, err := exec.Command("e2fsck", "-fyD", img).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			t.Fatalf("e2fsck -fyD: %v\n%s", err, out)
		}
	}
	// SELinux labels on every file as Android's e2fsdroid sets them (with the trailing NUL),
	// a user attribute, and one big attribute that cannot stay in the inode.
	label := filepath.Join(dir, "label")
	os.WriteFile(label, []byte("u:object_r:system_file:s0\x00"), 0o644)
	apkLabel := filepath.Join(dir, "apklabel")
	os.WriteFile(apkLabel, []byte("u:object_r:system_app_file:s0\x00"), 0o644)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, bytes.Repeat([]byte("v"), 600), 0o644)
	var cmds strings.Builder
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(src, p)
		if rel == "." || strings.Contains(rel, "lib64/") && !strings.HasSuffix(rel, "00.so") {
			return nil
		}
		l := label
		if strings.HasSuffix(rel, ".apk") {
			l = apkLabel
		}
		fmt.Fprintf(&cmds, "ea_set -f %s /%s security.selinux\n", l, rel)
		return nil
	})
	fmt.Fprintf(&cmds, "ea_set /system/build.prop user.provkit hello\n")
	fmt.Fprintf(&cmds, "ea_set -f %s /system/app/Messenger/Messenger.apk user.big\n", big)
	fmt.Fprintf(&cmds, "ea_set -f %s /system/etc user.big\n", big)
	cf := filepath.Join(dir, "xattr.cmds")
	os.WriteFile(cf, []byte(cmds.String()), 0o644)
	out := runCmd(t, "debugfs", "-w", "-f", cf, img)
	if strings.Contains(out, "rror") {
		t.Fatalf("debugfs ea_set: %s", out)
	}
	return img
}

// entry is what the judge (debugfs) says about one path.
type entry struct {
	ino                uint64
	mode               uint32
	uid, gid           uint32
	size               int64
	isDir              bool
	sum                [32]byte // content hash of regular files (from rdump)
	target             string   // symlink target (from rdump)
	xattrs             map[string][]byte
	hasContent, isLink bool
}

// judge asks debugfs about every path in the image: ls -p for the inode fields, rdump for
// contents and link targets, ea_list/ea_get for extended attributes.
func judge(t testing.TB, dir, img string) map[string]*entry {
	t.Helper()
	out := filepath.Join(dir, "rdump")
	os.RemoveAll(out)
	os.MkdirAll(out, 0o755)
	runCmd(t, "debugfs", "-R", "rdump / "+out, img)
	ents := map[string]*entry{}
	// Directories to list: the root and every directory rdump produced.
	dirs := []string{"."}
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != out {
			rel, _ := filepath.Rel(out, p)
			dirs = append(dirs, rel)
		}
		return nil
	})
	var cmds strings.Builder
	for _, d := range dirs {
		fmt.Fprintf(&cmds, "ls -p /%s\n", strings.TrimPrefix(d, "."))
	}
	cf := filepath.Join(dir, "ls.cmds")
	os.WriteFile(cf, []byte(cmds.String()), 0o644)
	lsOut := runCmd(t, "debugfs", "-f", cf, img)
	cur := ""
	for _, line := range strings.Split(lsOut, "\n") {
		if strings.HasPrefix(line, "debugfs: ls -p /") {
			cur = strings.TrimPrefix(line, "debugfs: ls -p /")
			continue
		}
		if !strings.HasPrefix(line, "/") {
			continue
		}
		f := strings.Split(line, "/")
		// "", ino, mode, uid, gid, name, size, ""
		if len(f) != 8 || f[5] == "." || f[5] == ".." || f[5] == "" || f[1] == "0" {
			continue
		}
		e := &entry{}
		e.ino, _ = strconv.ParseUint(f[1], 10, 64)
		m, _ := strconv.ParseUint(f[2], 8, 32)
		e.mode = uint32(m)
		u, _ := strconv.ParseUint(f[3], 10, 32)
		g, _ := strconv.ParseUint(f[4], 10, 32)
		e.uid, e.gid = uint32(u), uint32(g)
		e.isDir = f[6] == ""
		e.size, _ = strconv.ParseInt(f[6], 10, 64)
		ents[path.Join(cur, f[5])] = e
	}
	// Contents and link targets from rdump.
	for p, e := range ents {
		full := filepath.Join(out, p)
		switch e.mode & 0o170000 {
		case 0o100000:
			b, err := os.ReadFile(full)
			if err != nil {
				t.Fatalf("rdump lost %s: %v", p, err)
			}
			if int64(len(b)) > e.size {
				// debugfs 1.47 dumps the whole 60-byte inline data area of an inline file,
				// past i_size (which its ls -p reports right).
				b = b[:e.size]
			}
			e.sum, e.hasContent = sha256.Sum256(b), true
		case 0o120000:
			tg, err := os.Readlink(full)
			if err != nil {
				t.Fatalf("rdump lost symlink %s: %v", p, err)
			}
			e.target, e.isLink = tg, true
		}
	}
	// Extended attributes: names from ea_list, values through ea_get -f.
	var paths []string
	for p := range ents {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	cmds.Reset()
	for _, p := range append([]string{"."}, paths...) {
		fmt.Fprintf(&cmds, "ea_list /%s\n", strings.TrimPrefix(p, "."))
	}
	os.WriteFile(cf, []byte(cmds.String()), 0o644)
	eaOut := runCmd(t, "debugfs", "-f", cf, img)
	ents["."] = &entry{isDir: true}
	names := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(eaOut))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "debugfs: ea_list /") {
			cur = path.Clean(strings.TrimPrefix(line, "debugfs: ea_list /"))
			if cur == "" {
				cur = "."
			}
			continue
		}
		if strings.HasPrefix(line, "  ") && strings.Contains(line, " (") {
			name := strings.TrimSpace(line[:strings.Index(line, " (")])
			names[cur] = append(names[cur], name)
		}
	}
	cmds.Reset()
	valDir := filepath.Join(dir, "xattr-values")
	os.MkdirAll(valDir, 0o755)
	type ref struct{ p, name, file string }
	var refs []ref
	for p, ns := range names {
		for _, n := range ns {
			file := filepath.Join(valDir, strconv.Itoa(len(refs)))
			refs = append(refs, ref{p, n, file})
			fmt.Fprintf(&cmds, "ea_get -f %s /%s %s\n", file, strings.TrimPrefix(p, "."), n)
		}
	}
	os.WriteFile(cf, []byte(cmds.String()), 0o644)
	runCmd(t, "debugfs", "-f", cf, img)
	for _, r := range refs {
		v, err := os.ReadFile(r.file)
		if err != nil {
			t.Fatalf("ea_get %s %s: %v", r.p, r.name, err)
		}
		e := ents[r.p]
		if e.xattrs == nil {
			e.xattrs = map[string][]byte{}
		}
		e.xattrs[r.name] = v
	}
	return ents
}

// compare walks fsys and checks every path against the judge's view, in both directions.
func compare(t *testing.T, fsys fs.FS, want map[string]*entry) {
	t.Helper()
	seen := map[string]bool{}
	rfs := fsys.(fs.ReadLinkFS)
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("walking %s: %v", p, err)
			return nil
		}
		seen[p] = true
		w := want[p]
		if w == nil {
			t.Errorf("provkit lists %s, debugfs does not", p)
			return nil
		}
		fi, err := rfs.Lstat(p)
		if err != nil {
			t.Errorf("Lstat %s: %v", p, err)
			return nil
		}
		n := fi.Sys().(*Inode)
		if p != "." {
			if n.Ino() != w.ino || uint32(n.RawMode()) != w.mode || n.UID() != w.uid || n.GID() != w.gid {
				t.Errorf("%s: ino %d mode 0%o uid %d gid %d; debugfs: ino %d mode 0%o uid %d gid %d", p, n.Ino(), n.RawMode(), n.UID(), n.GID(), w.ino, w.mode, w.uid, w.gid)
			}
			if !w.isDir && fi.Size() != w.size && w.mode&0o170000 != 0o010000 {
				t.Errorf("%s: size %d, debugfs %d", p, fi.Size(), w.size)
			}
		}
		if fi.IsDir() != w.isDir || d.Type() != fi.Mode().Type() {
			t.Errorf("%s: dir %v type %v/%v, debugfs dir %v", p, fi.IsDir(), d.Type(), fi.Mode().Type(), w.isDir)
		}
		if w.hasContent {
			f, err := fsys.Open(p)
			if err != nil {
				t.Errorf("open %s: %v", p, err)
				return nil
			}
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				t.Errorf("reading %s: %v", p, err)
			}
			f.Close()
			if !bytes.Equal(h.Sum(nil), w.sum[:]) {
				t.Errorf("%s: content differs from debugfs rdump", p)
			}
		}
		if w.isLink {
			tg, err := rfs.ReadLink(p)
			if err != nil || tg != w.target {
				t.Errorf("%s: link %q (%v), debugfs %q", p, tg, err, w.target)
			}
		}
		got := n.Xattrs()
		if len(got) != len(w.xattrs) {
			t.Errorf("%s: xattrs %v, debugfs %v", p, keys(got), keys(w.xattrs))
		}
		for k, v := range w.xattrs {
			if g, ok := n.Xattr(k); !ok || !bytes.Equal(g, v) {
				t.Errorf("%s: xattr %s = %q, debugfs %q", p, k, g, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range want {
		if !seen[p] {
			t.Errorf("debugfs lists %s, provkit does not", p)
		}
	}
}

func keys(m map[string][]byte) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

func openImage(t testing.TB, img string) (*FS, *os.File) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	fsys, err := Open(f, st.Size())
	if err != nil {
		t.Fatalf("opening %s: %v", img, err)
	}
	return fsys, f
}

var variants = []struct {
	name        string
	size        int
	args        []string
	tree        treeOptions
	htreeLevels int
}{
	{"ext4-4k-android", 64, []string{"-t", "ext4", "-b", "4096", "-I", "256", "-O", "^has_journal"}, treeOptions{manyFiles: 1500, bigFile: 3 << 20}, 0},
	{"ext4-1k-no64bit-uninit_bg", 64, []string{"-t", "ext4", "-b", "1024", "-O", "^64bit,^metadata_csum,uninit_bg"}, treeOptions{manyFiles: 600, bigFile: 1 << 20}, 0},
	{"ext4-1k-metadata_csum-2level-htree", 48, []string{"-t", "ext4", "-b", "1024", "-I", "256"}, treeOptions{manyFiles: 4500}, 1},
	{"ext4-inline_data", 32, []string{"-t", "ext4", "-b", "4096", "-I", "256", "-O", "inline_data"}, treeOptions{manyFiles: 300}, 0},
	{"ext4-128-byte-inodes", 32, []string{"-t", "ext4", "-b", "4096", "-I", "128"}, treeOptions{manyFiles: 300}, 0},
	{"ext3-1k-blockmap-triple", 96, []string{"-t", "ext3", "-b", "1024"}, treeOptions{manyFiles: 300, bigFile: 2 << 20, sparseFile: true, sparseAt: 80 << 20}, 0},
	{"ext2-4k", 32, []string{"-t", "ext2", "-b", "4096"}, treeOptions{manyFiles: 300, bigFile: 5 << 20}, 0},
	{"ext4-2k-meta_bg", 48, []string{"-t", "ext4", "-b", "2048", "-O", "meta_bg,^resize_inode"}, treeOptions{manyFiles: 300}, 0},
}

// TestAgainstDebugfs builds images with mke2fs -d in several layouts and compares every path, inode
// number, mode, owner, size, content, link target and xattr with what debugfs reports, then runs
// testing/fstest over the file system.
func TestAgainstDebugfs(t *testing.T) {
	testtool.Require(t, "mke2fs", "debugfs", "e2fsck")
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			src := buildTree(t, dir, v.tree)
			img := mkfs(t, dir, src, v.size, v.args...)
			if !slices.Contains(v.args, "inline_data") {
				// mke2fs 1.47.0 leaves a block bitmap difference after ea_set on inline_data
				// images; e2fsck judges the others.
				runCmd(t, "e2fsck", "-fn", img)
			}
			t0 := time.Now()
			want := judge(t, dir, img)
			t1 := time.Now()
			fsys, _ := openImage(t, img)
			compare(t, fsys, want)
			checkAndroidPaths(t, fsys)
			t2 := time.Now()
			if out := runCmd(t, "debugfs", "-R", "htree /system/lib64", img); !strings.Contains(out, "Indirect levels: "+strconv.Itoa(v.htreeLevels)) {
				t.Fatalf("system/lib64 is not an htree with %d indirect levels:\n%.300s", v.htreeLevels, out)
			}
			// fstest opens every entry, so it runs on subtrees without dangling or cyclic links;
			// it reads files a byte at a time, so big directories are left to compare above.
			subs := []string{"system/etc", "system/a"}
			if v.tree.manyFiles <= 300 {
				subs = append(subs, "system/lib64")
			}
			if v.name == "ext4-4k-android" {
				subs = append(subs, "system/app")
			}
			for _, sub := range subs {
				sfs, err := fs.Sub(fsys, sub)
				if err != nil {
					t.Fatal(err)
				}
				if err := fstest.TestFS(sfs); err != nil && !strings.Contains(err.Error(), "expected empty") {
					t.Errorf("fstest %s: %v", sub, err)
				}
			}
			t.Logf("judge %v, compare %v, fstest %v", t1.Sub(t0), t2.Sub(t1), time.Since(t2))
		})
	}
}

// checkAndroidPaths checks path resolution details that debugfs does not exercise.
func checkAndroidPaths(t *testing.T, fsys *FS) {
	t.Helper()
	// Symlinks are followed by Open/Stat, absolute targets from the image root.
	fi, err := fsys.Stat("system/bin/abs")
	if err != nil || fi.Mode()&fs.ModeSetuid == 0 {
		t.Errorf("Stat through absolute symlink: %v %v", fi, err)
	}
	if fi, err := fsys.Stat("system/bin/up/tiny.txt"); err != nil || fi.Size() != 5 {
		t.Errorf("Stat through ../etc symlink: %v %v", fi, err)
	}
	if _, err := fsys.Stat("system/bin/loop1"); err == nil || !strings.Contains(err.Error(), "too many levels of symbolic links") {
		t.Errorf("cyclic symlink: %v", err)
	}
	if _, err := fsys.Stat("system/bin/dangle"); !errorsIs(err, fs.ErrNotExist) {
		t.Errorf("dangling symlink: %v", err)
	}
	if _, err := fsys.Open("system/nope"); !errorsIs(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := fsys.Open("system/build.prop/x"); !errorsIs(err, fs.ErrNotExist) {
		t.Errorf("file as directory: %v", err)
	}
	fi, err = fsys.Stat("system/app/Messenger/Messenger.apk")
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Sys().(*Inode).SELinuxLabel(); got != "u:object_r:system_app_file:s0" {
		t.Errorf("SELinux label %q", got)
	}
	// Random access reads agree with a sequential read.
	data, err := fsys.ReadFile("system/app/Messenger/Messenger.apk")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := fsys.Open("system/app/Messenger/Messenger.apk")
	ra := f.(io.ReaderAt)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		off := rng.IntN(len(data) + 10)
		n := rng.IntN(9000)
		p := make([]byte, n)
		got, err := ra.ReadAt(p, int64(off))
		wantN := max(0, min(n, len(data)-off))
		if got != wantN || !bytes.Equal(p[:got], data[min(off, len(data)):min(off, len(data))+got]) || (got < n && err != io.EOF) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v; want %d", n, off, got, err, wantN)
		}
	}
}

func errorsIs(err, target error) bool {
	for err != nil {
		if err == target {
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// TestThroughSparse reads an ext4 image converted by img2simg through the sparse reader.
func TestThroughSparse(t *testing.T) {
	testtool.Require(t, "mke2fs", "debugfs", "img2simg")
	dir := t.TempDir()
	src := buildTree(t, dir, treeOptions{manyFiles: 400, bigFile: 1 << 20})
	img := mkfs(t, dir, src, 32, "-t", "ext4", "-b", "4096", "-I", "256", "-O", "^has_journal")
	want := judge(t, dir, img)
	simg := filepath.Join(dir, "fs.simg")
	runCmd(t, "img2simg", img, simg)
	f, err := os.Open(simg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	sp, err := sparse.Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := Open(sp, sp.Size())
	if err != nil {
		t.Fatal(err)
	}
	compare(t, fsys, want)
}

// TestRealAndroidImage reads the ext4 system image made by AOSP's mkuserimg_mke2fs (with an AVB
// footer after the file system) from the shared firmware samples.
func TestRealAndroidImage(t *testing.T) {
	testtool.Require(t, "debugfs")
	img := "testdata/empty_system.img"
	fsys, _ := openImage(t, img)
	sb := fsys.Superblock()
	if sb.LastMounted != "/system" || !sb.HasMetadataCsum() || sb.BlocksCount != 100 {
		t.Errorf("superblock: last mounted %q, metadata_csum %v, %d blocks", sb.LastMounted, sb.HasMetadataCsum(), sb.BlocksCount)
	}
	compare(t, fsys, judge(t, t.TempDir(), img))
}
