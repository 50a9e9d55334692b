package ext4

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
)

var (
	testCap      = []byte{1, 0, 0, 2, 0, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // vfs_cap_data v2: CAP_NET_RAW...
	testAppLabel = []byte("u:object_r:system_app_file:s0\x00")
	testDirLabel = []byte("u:object_r:system_file:s0\x00")
)

// fileACL returns the File ACL block debugfs stat shows for path.
func fileACL(t *testing.T, img, path string) uint64 {
	t.Helper()
	st := debugfsOut(t, img, "stat "+path)
	m := regexp.MustCompile(`File ACL: (\d+)`).FindStringSubmatch(st)
	if m == nil {
		t.Fatalf("debugfs stat %s has no File ACL line:\n%s", path, st)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// wantEAList checks that debugfs ea_list shows exactly the label and (when cpb) the capability.
func wantEAList(t *testing.T, img, path string, label []byte, cpb bool) {
	t.Helper()
	got := debugfsOut(t, img, "ea_list "+path)
	want := fmt.Sprintf("security.selinux (%d) = %q", len(label), strings.TrimSuffix(string(label), "\x00"))
	want = strings.TrimSuffix(want, `"`) + `\000"`
	if !strings.Contains(got, want) {
		t.Errorf("debugfs ea_list %s lacks %s:\n%s", path, want, got)
	}
	capLine := "security.capability (20) = 01 00 00 02 00 30 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
	if strings.Contains(got, capLine) != cpb {
		t.Errorf("debugfs ea_list %s: capability shown %v, want %v:\n%s", path, !cpb, cpb, got)
	}
	if n := strings.Count(got, " = "); n != 1+map[bool]int{true: 1}[cpb] {
		t.Errorf("debugfs ea_list %s shows %d attributes:\n%s", path, n, got)
	}
}

func readBlockOf(t *testing.T, img string, b uint64, bs int64) []byte {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blk := make([]byte, bs)
	if _, err := f.ReadAt(blk, int64(b)*bs); err != nil {
		t.Fatal(err)
	}
	return blk
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// e2fsckFails says whether e2fsck -fn finds something wrong in img.
func e2fsckFails(img string) (bool, string) {
	out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput()
	return err != nil, string(out)
}

// TestXattrBlocks adds files whose xattrs do not fit in the inode (128-byte inodes, and a label
// plus a capability in 256-byte inodes) and replaces a file that has an external xattr block,
// then judges with the real tools: e2fsck -fn is clean (and notices a corrupted byte in a block
// written), debugfs shows the exact values and the File ACL block, the block matches the one
// debugfs writes for the same attributes, and a label that fits stays in the inode.
func TestXattrBlocks(t *testing.T) {
	testtool.Require(t, "mke2fs", "debugfs", "e2fsck")
	ctx := context.Background()
	for _, v := range []xattrVariant{
		{"4k-128-metadata_csum", []string{"-t", "ext4", "-b", "4096", "-I", "128", "-O", "metadata_csum,64bit"}, true, true},
		{"1k-128-metadata_csum", []string{"-t", "ext4", "-b", "1024", "-I", "128", "-O", "metadata_csum"}, true, true},
		{"4k-128-no-csum", []string{"-t", "ext4", "-b", "4096", "-I", "128", "-O", "^metadata_csum"}, true, false},
		{"1k-128-uninit_bg", []string{"-t", "ext4", "-b", "1024", "-I", "128", "-O", "^metadata_csum,uninit_bg"}, true, false},
		{"4k-256-metadata_csum", []string{"-t", "ext4", "-b", "4096", "-I", "256", "-O", "metadata_csum"}, false, true},
	} {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			src := buildWriteTree(t, dir)
			img := mkfsForWrite(t, dir, src, 24, v.args...)
			before := dumpSums(t, img)
			if v.small && fileACL(t, img, "/system/build.prop") == 0 {
				t.Fatal("debugfs did not put build.prop's label in an xattr block")
			}
			mtime := time.Date(2009, 1, 1, 0, 0, 0, 0, time.UTC)
			label := map[string][]byte{"security.selinux": testAppLabel}
			both := map[string][]byte{"security.selinux": testAppLabel, "security.capability": testCap}
			var freeBefore, freeAfter uint64
			editImage(t, img, func(e *Editor) {
				freeBefore, _ = e.Free()
				dm := Meta{Perm: 0o755, Mtime: mtime, Xattrs: map[string][]byte{"security.selinux": testDirLabel}}
				if err := e.Mkdir("system/priv-app/X", dm); err != nil {
					t.Fatal(err)
				}
				for _, f := range []struct {
					name string
					xs   map[string][]byte
					size int
				}{{"system/priv-app/X/x.apk", both, 5000}, {"system/priv-app/X/plain", label, 0}, {"system/priv-app/X/empty", both, 0}} {
					data := bytes.Repeat([]byte{7}, f.size)
					if err := e.Create(ctx, f.name, Meta{Perm: 0o644, Mtime: mtime, Xattrs: f.xs}, bytes.NewReader(data), int64(len(data))); err != nil {
						t.Fatal(err)
					}
				}
				// build.prop has debugfs's xattr block with 128-byte inodes
				if err := e.Replace(ctx, "system/build.prop", Meta{Perm: 0o644, Mtime: mtime, Xattrs: both}, strings.NewReader("ro.x=1\n"), 7); err != nil {
					t.Fatal(err)
				}
				freeAfter, _ = e.Free()
			})
			e2fsckClean(t, img)
			after := dumpSums(t, img)
			for k, sum := range before {
				if k != "system/build.prop" && after[k] != sum {
					t.Errorf("%s changed", k)
				}
			}
			wantEAList(t, img, "/system/priv-app/X", testDirLabel, false)
			wantEAList(t, img, "/system/priv-app/X/x.apk", testAppLabel, true)
			wantEAList(t, img, "/system/priv-app/X/plain", testAppLabel, false)
			wantEAList(t, img, "/system/priv-app/X/empty", testAppLabel, true)
			wantEAList(t, img, "/system/build.prop", testAppLabel, true)
			if got := debugfsOut(t, img, "ea_get /system/priv-app/X/x.apk security.capability"); !strings.Contains(got, "01 00 00 02 00 30 00 00") {
				t.Errorf("debugfs ea_get security.capability: %q", got)
			}
			if got := debugfsOut(t, img, "cat /system/build.prop"); got != "ro.x=1\n" {
				t.Errorf("replaced build.prop: %q", got)
			}
			// blocks used: directory 1 + x.apk's data (build.prop's new block takes the place
			// of its old one), and the xattr blocks: every new inode's own with 128-byte inodes
			// (build.prop's new one in place of its old one), only the two new capability
			// holders and build.prop with 256-byte ones
			wantUsed := uint64(1 + (5000+v.bsKiB()<<10-1)/(v.bsKiB()<<10))
			if v.small {
				wantUsed += 4
			} else {
				wantUsed += 3
			}
			if got := freeBefore - freeAfter; got != wantUsed {
				t.Errorf("the edit took %d blocks, want %d", got, wantUsed)
			}
			acl := fileACL(t, img, "/system/priv-app/X/x.apk")
			if acl == 0 {
				t.Fatal("x.apk has no external xattr block")
			}
			if a := fileACL(t, img, "/system/priv-app/X/plain"); (a != 0) != v.small {
				t.Errorf("plain: File ACL %d; a label alone goes to a block only with 128-byte inodes", a)
			}
			if st := debugfsOut(t, img, "stat /system/priv-app/X/empty"); !strings.Contains(st, fmt.Sprintf("Blockcount: %d", v.bsKiB()*2)) {
				t.Errorf("empty file with an xattr block: i_blocks is not one block:\n%s", st)
			}
			// the reader agrees
			fsys, _ := openImage(t, img)
			for _, p := range []string{"system/priv-app/X/x.apk", "system/build.prop", "system/priv-app/X/empty"} {
				fi, err := fsys.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				n := fi.Sys().(*Inode)
				if got := n.Xattrs(); len(got) != 2 || !bytes.Equal(got["security.capability"], testCap) || !bytes.Equal(got["security.selinux"], testAppLabel) {
					t.Errorf("%s: reader sees xattrs %v", p, keys(got))
				}
			}

			// the block is laid out as debugfs (e2fsprogs) lays out the same attributes
			cf := filepath.Join(dir, "ea.cmds")
			lf, capf := filepath.Join(dir, "l.bin"), filepath.Join(dir, "c.bin")
			os.WriteFile(lf, testAppLabel, 0o644)
			os.WriteFile(capf, testCap, 0o644)
			os.WriteFile(cf, []byte(fmt.Sprintf("ea_set -f %[1]s /system/etc/permissions/existing.xml security.selinux\nea_set -f %[2]s /system/etc/permissions/existing.xml security.capability\n", lf, capf)), 0o644)
			runCmd(t, "debugfs", "-w", "-f", cf, img)
			bs := int64(v.bsKiB()) << 10
			ours := readBlockOf(t, img, acl, bs)
			theirs := readBlockOf(t, img, fileACL(t, img, "/system/etc/permissions/existing.xml"), bs)
			if !bytes.Equal(ours[:12], theirs[:12]) || !bytes.Equal(ours[32:], theirs[32:]) {
				t.Errorf("our xattr block differs from debugfs's for the same attributes:\nours   %x\ntheirs %x", ours[:160], theirs[:160])
			}
			var hashes []uint32
			for off := 32; binary.LittleEndian.Uint32(ours[off:]) != 0; off += (16 + int(ours[off]) + 3) &^ 3 {
				hashes = append(hashes, binary.LittleEndian.Uint32(ours[off+12:]))
			}
			if h := binary.LittleEndian.Uint32(ours[12:]); h != xattrBlockHash(hashes) || h == 0 {
				t.Errorf("h_hash 0x%x, want the rehash of %x", h, hashes)
			}
			e2fsckClean(t, img)

			// e2fsck notices one changed byte in a value of the block written
			bad := filepath.Join(dir, "bad.img")
			copyFile(t, img, bad)
			voff := int64(binary.LittleEndian.Uint16(ours[32+2:]))
			f, _ := os.OpenFile(bad, os.O_RDWR, 0)
			f.WriteAt([]byte{ours[voff] ^ 0x01}, int64(acl)*bs+voff)
			f.Close()
			if fails, out := e2fsckFails(bad); !fails {
				t.Errorf("e2fsck -fn did not notice a corrupted xattr block value:\n%s", out)
			} else if !strings.Contains(out, "has a hash") || v.csumed != strings.Contains(out, "checksum does not match block") {
				// the entry hash is checked everywhere, the block checksum with metadata_csum
				t.Errorf("e2fsck -fn on the corrupted block (want a hash complaint, and a checksum one with metadata_csum):\n%s", out)
			}

			// a block shared by two inodes is not replaced
			shared := filepath.Join(dir, "shared.img")
			copyFile(t, img, shared)
			sf, _ := os.OpenFile(shared, os.O_RDWR, 0)
			st, _ := sf.Stat()
			e, err := Edit(sf, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			blk := append([]byte(nil), ours...)
			binary.LittleEndian.PutUint32(blk[4:], 2)
			if e.fsys.metaCsum {
				binary.LittleEndian.PutUint32(blk[0x10:], e.xattrBlockCsum(acl, blk))
			}
			sf.WriteAt(blk, int64(acl)*bs)
			err = e.Replace(ctx, "system/priv-app/X/x.apk", Meta{Perm: 0o644}, strings.NewReader("x"), 1)
			if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "shared by 2") {
				t.Errorf("replacing a file whose xattr block is shared: %v", err)
			}
			sf.Close()
		})
	}
}

// TestXattrBlockRealAndroid adds a labelled directory and a file with a capability to AOSP's
// mkuserimg_mke2fs-built system image (128-byte inodes, metadata_csum, 64bit, flex_bg,
// resize_inode), whose inodes have no room for xattrs.
func TestXattrBlockRealAndroid(t *testing.T) {
	testtool.Require(t, "debugfs", "e2fsck")
	raw, err := os.ReadFile("testdata/empty_system.img")
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "system.img")
	os.WriteFile(img, raw[:409600], 0o644) // the file system, without the AVB footer
	editImage(t, img, func(e *Editor) {
		if e.FS().inodeSize != 128 {
			t.Fatalf("inode size %d, want 128", e.FS().inodeSize)
		}
		if err := e.Mkdir("app", Meta{Perm: 0o755, Xattrs: map[string][]byte{"security.selinux": testDirLabel}}); err != nil {
			t.Fatal(err)
		}
		m := Meta{Perm: 0o755, Xattrs: map[string][]byte{"security.selinux": testAppLabel, "security.capability": testCap}}
		if err := e.Create(context.Background(), "app/tool", m, strings.NewReader("#!/bin/sh\n"), 10); err != nil {
			t.Fatal(err)
		}
	})
	e2fsckClean(t, img)
	wantEAList(t, img, "/app", testDirLabel, false)
	wantEAList(t, img, "/app/tool", testAppLabel, true)
	if fileACL(t, img, "/app") == 0 || fileACL(t, img, "/app/tool") == 0 {
		t.Error("no File ACL block on the new inodes")
	}
}

type xattrVariant struct {
	name   string
	args   []string
	small  bool // 128-byte inodes: every xattr goes to the block
	csumed bool
}

func (v xattrVariant) bsKiB() int {
	for i, a := range v.args {
		if a == "-b" {
			n, _ := strconv.Atoi(v.args[i+1])
			return n >> 10
		}
	}
	return 4
}
