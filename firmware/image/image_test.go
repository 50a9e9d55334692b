package image

import (
	"archive/tar"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/ext4"
	"github.com/provkit/provkit/firmware/sparse"
	"github.com/provkit/provkit/firmware/super"
	"github.com/provkit/provkit/internal/testimage"
	"github.com/provkit/provkit/internal/testimage/lpwrite"
	"github.com/provkit/provkit/internal/testtool"
)

// systemTree is a system-as-root system partition as Android 10+ builds it.
func systemTree(fingerprint string) []testimage.File {
	return []testimage.File{
		{Path: "system/build.prop", Data: []byte("# begin build properties\nro.build.fingerprint=" + fingerprint + "\nro.system.build.fingerprint=" + fingerprint + "\nro.build.version.sdk=34\n")},
		{Path: "system/app/Calc/Calc.apk", Data: []byte(strings.Repeat("calculator ", 5000))},
		{Path: "system/priv-app/Settings/Settings.apk", Data: []byte("settings")},
		{Path: "system/etc/permissions/privapp-permissions-platform.xml", Data: []byte("<permissions/>\n")},
		{Path: "system/framework/framework-res.apk", Data: []byte("res")},
		{Path: "system/bin/sh", Data: []byte("#!"), Mode: 0o755},
		{Path: "init", Link: "/system/bin/init"},
		{Path: "product", Link: "/product"},
		{Path: "system/product", Link: "/product"},
		{Path: "dev", Dir: true},
	}
}

func productTree() []testimage.File {
	return []testimage.File{
		{Path: "etc/build.prop", Data: []byte("ro.product.product.brand=acme\nro.product.build.fingerprint=acme/phone/phone:14/AP1A/7:user/release-keys\n")},
		{Path: "app/Messenger/Messenger.apk", Data: []byte(strings.Repeat("m", 70000))},
		{Path: "etc/permissions/privapp-permissions-messenger.xml", Data: []byte("<permissions/>\n")},
	}
}

func srcDir(t *testing.T, files []testimage.File) string {
	dir := t.TempDir()
	testimage.WriteTree(t, dir, files)
	return dir
}

// content lists a tree: regular files by SHA-256, links by target, directories.
func content(t *testing.T, fsys fs.FS) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." || p == "lost+found" || strings.HasPrefix(p, "lost+found/") {
			return nil
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := fs.ReadLink(fsys, p)
			if err != nil {
				return err
			}
			out[p] = "-> " + target
		case d.IsDir():
			out[p] = "dir"
		default:
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			out[p] = hex.EncodeToString(sum[:])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diskContent(t *testing.T, dir string) map[string]string {
	t.Helper()
	return content(t, os.DirFS(dir).(fs.FS))
}

func open(t *testing.T, path string, opts *Options) *Image {
	t.Helper()
	im, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	return im
}

func copyFile(t *testing.T, src, dst string) string {
	t.Helper()
	if err := os.WriteFile(dst, testimage.Read(t, src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestPartitionImages opens ext4 and EROFS images, raw and through img2simg, and compares what
// their file systems hold with the trees mke2fs and mkfs.erofs were given.
func TestPartitionImages(t *testing.T) {
	fp := "acme/phone/phone:14/AP1A/7:user/release-keys"
	src := srcDir(t, systemTree(fp))
	want := diskContent(t, src)
	ext4Img := testimage.Ext4(t, src, 16)
	erofsImg := testimage.EROFS(t, src, "-zlz4hc")
	for _, v := range []struct {
		name, img string
		format    Format
		sparse    bool
	}{
		{"ext4", ext4Img, FormatExt4, false},
		{"ext4-sparse", testimage.Sparse(t, ext4Img), FormatExt4, true},
		{"erofs-lz4hc", erofsImg, FormatEROFS, false},
		{"erofs-lz4hc-sparse", testimage.Sparse(t, erofsImg), FormatEROFS, true},
	} {
		t.Run(v.name, func(t *testing.T) {
			path := copyFile(t, v.img, filepath.Join(t.TempDir(), "system_a.img"))
			im := open(t, path, nil)
			if im.Kind != KindPartition || len(im.Partitions) != 1 || im.Slot != "a" {
				t.Fatalf("kind %s, slot %q, %d partitions", im.Kind, im.Slot, len(im.Partitions))
			}
			p := im.Partitions[0]
			if p.Name != "system" || p.Slot != "a" || p.Format != v.format || p.Err != nil {
				t.Fatalf("partition %+v: %v", p, p.Err)
			}
			if got := contains(p.Layers, layerSparse); got != v.sparse {
				t.Fatalf("layers %v", p.Layers)
			}
			fsys, err := p.FS()
			if err != nil {
				t.Fatal(err)
			}
			if got := content(t, fsys); !reflect.DeepEqual(got, want) {
				t.Fatalf("file system differs from the source tree:\n got %v\nwant %v", got, want)
			}
			b, err := im.Build()
			if err != nil || b == nil {
				t.Fatalf("build: %v %v", b, err)
			}
			if b.Fingerprint.Value != fp || b.Fingerprint.Derived || b.Files[0] != "/system/build.prop" {
				t.Fatalf("build %+v", b)
			}
			part, fsys2, inner, err := im.Resolve("/system/app/Calc/Calc.apk")
			if err != nil || part != "system" || inner != "app/Calc/Calc.apk" {
				t.Fatalf("resolve: %s %s %v", part, inner, err)
			}
			if data, err := fs.ReadFile(fsys2, inner); err != nil || len(data) != 55000 {
				t.Fatalf("read %d bytes: %v", len(data), err)
			}
			if _, _, inner, err := im.Resolve("system:/system/bin/sh"); err != nil || inner != "system/bin/sh" {
				t.Fatalf("partition path: %s %v", inner, err)
			}
			if _, _, _, err := im.Resolve("/vendor/build.prop"); err == nil {
				t.Fatal("resolved a partition the image does not have")
			}
		})
	}
	// An explicit partition name wins over the file name.
	im := open(t, ext4Img, &Options{Partition: "product"})
	if im.Partitions[0].Name != "product" || im.Slot != "" {
		t.Fatalf("%+v", im.Partitions[0])
	}
	if _, err := Open(context.Background(), t.TempDir(), &Options{Partition: "system"}); !errors.Is(err, errSingleOnly) {
		t.Fatalf("partition name for a directory: %v", err)
	}
}

// superSpec places file systems in both slots' partitions the way an A/B factory super image
// has them: slot a filled, slot b empty.
func superSpec(t *testing.T, system, product, vendor string) lpwrite.Spec {
	return lpwrite.Spec{DeviceSize: 64 << 20, MetadataMaxSize: 65536, Slots: 3, Alignment: 1 << 20, Partitions: []lpwrite.Partition{
		{Name: "system_a", Attributes: 1, Data: testimage.Read(t, system)},
		{Name: "system_b", Attributes: 1},
		{Name: "product_a", Attributes: 1, Data: testimage.Read(t, product)},
		{Name: "product_b", Attributes: 1},
		{Name: "vendor_a", Attributes: 1, Data: testimage.Read(t, vendor)},
		{Name: "vendor_b", Attributes: 1},
	}}
}

// TestSuperImage reads ext4 and EROFS logical partitions of a super image written with lpmake's
// layout, raw and sparse, and picks the slot that holds data.
func TestSuperImage(t *testing.T) {
	fp := "acme/phone/phone:14/AP1A/7:user/release-keys"
	sysSrc := srcDir(t, systemTree(fp))
	prodSrc := srcDir(t, productTree())
	vendSrc := srcDir(t, []testimage.File{{Path: "build.prop", Data: []byte("ro.vendor.build.fingerprint=acme/v\n")}})
	sys := testimage.Ext4(t, sysSrc, 8)
	prod := testimage.EROFS(t, prodSrc, "-zlz4hc")
	vend := testimage.Ext4(t, vendSrc, 2)
	raw := testimage.Super(t, superSpec(t, sys, prod, vend))
	for _, path := range []string{raw, testimage.Sparse(t, raw)} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			im := open(t, path, nil)
			if im.Kind != KindSuper || im.Slot != "a" {
				t.Fatalf("kind %s slot %s", im.Kind, im.Slot)
			}
			fss := im.FileSystems()
			if len(fss) != 3 || fss["system"] == nil || fss["product"] == nil || fss["vendor"] == nil {
				t.Fatalf("file systems %v", fss)
			}
			if got, want := content(t, fss["product"]), diskContent(t, prodSrc); !reflect.DeepEqual(got, want) {
				t.Fatalf("product differs:\n got %v\nwant %v", got, want)
			}
			if p, _ := im.Partition("product"); p.Format != FormatEROFS || p.Source != "super.img!product_a" && !strings.HasSuffix(p.Source, "!product_a") {
				t.Fatalf("%+v", p)
			}
			b, err := im.Build()
			if err != nil || b.Fingerprint.Value != fp || b.Partitions["product"] != "acme/phone/phone:14/AP1A/7:user/release-keys" || b.Partitions["vendor"] != "acme/v" {
				t.Fatalf("%+v %v", b, err)
			}
			inactive := 0
			for _, p := range im.Partitions {
				if !p.Active {
					inactive++
					if p.Slot != "b" || p.Format != FormatEmpty {
						t.Fatalf("inactive %+v", p)
					}
				}
			}
			if inactive != 3 {
				t.Fatalf("%d inactive partitions", inactive)
			}
			// Slot b was never written: no file system there.
			imb := open(t, path, &Options{Slot: "b"})
			if len(imb.FileSystems()) != 0 {
				t.Fatalf("slot b has file systems %v", imb.FileSystems())
			}
		})
	}
}

// TestFactoryZip reads a factory zip whose image zip deflates (as Google's do) or stores its
// images: deflated partitions are extracted only when loaded.
func TestFactoryZip(t *testing.T) {
	fp := "acme/phone/phone:14/AP1A/7:user/release-keys"
	sysSrc := srcDir(t, systemTree(fp))
	prodSrc := srcDir(t, productTree())
	sys := testimage.Sparse(t, testimage.Ext4(t, sysSrc, 8))
	prod := testimage.EROFS(t, prodSrc, "-zlz4hc")
	for _, deflate := range []bool{true, false} {
		t.Run(fmt.Sprintf("deflate=%v", deflate), func(t *testing.T) {
			z := testimage.FactoryZip(t, t.TempDir(), "phone", "ap1a.240505.004", map[string]string{"system.img": sys, "product.img": prod}, deflate)
			im := open(t, z, nil)
			if im.Kind != KindFactoryZip || im.AndroidInfo == nil || im.AndroidInfo.Board() != "phone" {
				t.Fatalf("kind %s info %+v", im.Kind, im.AndroidInfo)
			}
			sp, err := im.Partition("system")
			if err != nil {
				t.Fatal(err)
			}
			if sp.Pending != deflate || !strings.Contains(sp.Source, "image-phone-ap1a.240505.004.zip!system.img") {
				t.Fatalf("%+v", sp)
			}
			if err := im.Load("system", "product"); err != nil {
				t.Fatal(err)
			}
			if sp.Pending || sp.Format != FormatExt4 || !contains(sp.Layers, layerSparse) || contains(sp.Layers, layerExtracted) != deflate {
				t.Fatalf("%+v", sp)
			}
			fss := im.FileSystems()
			if got, want := content(t, fss["system"]), diskContent(t, sysSrc); !reflect.DeepEqual(got, want) {
				t.Fatalf("system differs:\n got %v\nwant %v", got, want)
			}
			if b, err := im.Build(); err != nil || b.Fingerprint.Value != fp {
				t.Fatalf("%+v %v", b, err)
			}
			if p, _ := im.Partition("bootloader"); p == nil {
				t.Fatalf("bootloader image not listed: %v", im.Names())
			}
		})
	}
}

// TestDirectory maps image files to partitions by name; a partition image of its own wins over
// the same partition inside super.img, and the choice is noted.
func TestDirectory(t *testing.T) {
	sysSrc := srcDir(t, systemTree("a/b/c:14/X/1:user/release-keys"))
	otherSrc := srcDir(t, systemTree("other/b/c:14/X/1:user/release-keys"))
	sys := testimage.Ext4(t, sysSrc, 8)
	other := testimage.Ext4(t, otherSrc, 8)
	prod := testimage.EROFS(t, srcDir(t, productTree()))
	dir := t.TempDir()
	copyFile(t, testimage.Sparse(t, sys), filepath.Join(dir, "system.img"))
	copyFile(t, testimage.Super(t, superSpec(t, other, prod, sys)), filepath.Join(dir, "super.img"))
	os.WriteFile(filepath.Join(dir, "flash-all.sh"), []byte("#!/bin/sh\n"), 0o755)
	im := open(t, dir, nil)
	if im.Kind != KindDirectory {
		t.Fatal(im.Kind)
	}
	if p := im.Lookup("system"); p.Source != "system.img" {
		t.Fatalf("system from %s", p.Source)
	}
	if b, _ := im.Build(); b.Fingerprint.Value != "a/b/c:14/X/1:user/release-keys" {
		t.Fatalf("%+v", b.Fingerprint)
	}
	notes := strings.Join(im.Notes, "\n")
	if !strings.Contains(notes, "partition system is provided 2 times") || !strings.Contains(notes, "flash-all.sh") {
		t.Fatalf("notes: %s", notes)
	}
}

// TestCorruptImages: damaged containers and file systems are errors naming the structure and the
// offset, never a panic.
func TestCorruptImages(t *testing.T) {
	sys := testimage.Ext4(t, srcDir(t, systemTree("x")), 8)
	simg := testimage.Read(t, testimage.Sparse(t, sys))
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A sparse image cut in the middle of its chunks.
	if _, err := Open(context.Background(), write("trunc.simg", simg[:len(simg)/2]), nil); !errors.Is(err, sparse.ErrCorrupt) || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("truncated sparse: %v", err)
	}
	// An ext4 superblock claiming more blocks than the image has.
	raw := testimage.Read(t, sys)
	bad := append([]byte{}, raw...)
	bad[1024+4], bad[1024+5], bad[1024+6] = 0xff, 0xff, 0x7f
	_, err := Open(context.Background(), write("bad-ext4.img", bad), nil)
	if err == nil || !strings.Contains(err.Error(), "ext4") {
		t.Fatalf("bad ext4: %v", err)
	}
	t.Logf("bad ext4: %v", err)
	// LP metadata with a damaged table checksum in every copy.
	sup := testimage.Read(t, testimage.Super(t, superSpec(t, sys, sys, sys)))
	for slot := 0; slot < 6; slot++ {
		sup[12288+slot*65536+200] ^= 0xff
	}
	if _, err := Open(context.Background(), write("super.img", sup), nil); !errors.Is(err, super.ErrChecksum) && !errors.Is(err, super.ErrCorrupt) {
		t.Fatalf("bad super: %v", err)
	}
	// Not firmware at all.
	if _, err := Open(context.Background(), write("notes.zip", []byte("PK\x05\x06"+strings.Repeat("\x00", 18))), nil); err == nil {
		t.Fatal("empty zip accepted")
	}
	// A single file in no known format is refused, unless named as a raw partition.
	random := write("random.img", []byte(strings.Repeat("x", 10000)))
	if _, err := Open(context.Background(), random, nil); !errors.Is(err, ErrNotFirmware) ||
		!strings.Contains(err.Error(), "not a firmware image: no sparse, ext4, EROFS, super, vbmeta, boot, zip or payload magic at offset 0") {
		t.Fatalf("random bytes without a partition name: %v", err)
	}
	if im, err := Open(context.Background(), random, &Options{Partition: "radio"}); err != nil || im.Partitions[0].Format != FormatRaw {
		t.Fatalf("raw: %v", err)
	}
	// An ext4 image whose superblock was overwritten is no image either.
	wiped := testimage.Read(t, sys)
	copy(wiped[1024:2048], bytes.Repeat([]byte{0}, 1024))
	if _, err := Open(context.Background(), write("wiped.img", wiped), nil); !errors.Is(err, ErrNotFirmware) {
		t.Fatalf("ext4 image with its superblock overwritten: %v", err)
	}
	// A corrupt partition inside a directory does not stop the others; it carries its error.
	d2 := t.TempDir()
	copyFile(t, sys, filepath.Join(d2, "system.img"))
	os.WriteFile(filepath.Join(d2, "vendor.img"), bad, 0o644)
	im := open(t, d2, nil)
	if p := im.Lookup("vendor"); p.Err == nil || !errors.Is(p.Err, ext4.ErrCorrupt) && !strings.Contains(p.Err.Error(), "ext4") {
		t.Fatalf("vendor: %v", p.Err)
	}
	if _, err := im.Lookup("system").FS(); err != nil {
		t.Fatal(err)
	}
}

// TestDigests hashes the input files.
func TestDigests(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.img"), []byte("hello"), 0o644)
	im := open(t, dir, nil)
	d, err := im.Digests(context.Background())
	if err != nil || len(d) != 1 || d[0].SHA256 != "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" || d[0].Size != 5 {
		t.Fatalf("%+v %v", d, err)
	}
}

// TestPayloadFileSystem reads the ext2 file system that AOSP's full payload sample carries in its
// "kernel" partition (REPLACE_BZ operations) and compares its root directory with what debugfs
// lists in the tar member the payload was generated from.
func TestPayloadFileSystem(t *testing.T) {
	debugfs := testtool.Require(t, "debugfs")[0]
	f, err := os.Open(samplePath("aosp-update-engine/sample_images.tar.bz2"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(bzip2.NewReader(f))
	member := filepath.Join(t.TempDir(), "disk_ext2_4k.img")
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no disk_ext2_4k.img in the tar: %v", err)
		}
		if h.Name == "disk_ext2_4k.img" {
			out, _ := os.Create(member)
			if _, err := io.Copy(out, io.LimitReader(tr, 64<<20)); err != nil {
				t.Fatal(err)
			}
			out.Close()
			break
		}
	}
	im := open(t, samplePath("aosp-update-engine/full_payload.bin"), nil)
	fsys, err := im.Lookup("kernel").FS()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(debugfs, "-R", "ls -p /", member).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// /ino/mode/uid/gid/name/size/ (size empty for directories)
		fields := strings.Split(l, "/")
		if len(fields) != 8 || fields[5] == "." || fields[5] == ".." {
			continue
		}
		want[fields[5]] = fields[1] + " " + fields[6]
	}
	got := map[string]string{}
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fi, _ := e.Info()
		size := ""
		if !e.IsDir() {
			size = fmt.Sprint(fi.Size())
		}
		got[e.Name()] = fmt.Sprintf("%d %s", fi.Sys().(*ext4.Inode).Ino(), size)
	}
	if len(want) < 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("payload kernel partition /:\nprovkit %v\ndebugfs %v", got, want)
	}
}

// A file with no format provkit knows is a raw partition, and says that nothing was recognised.
func TestRawDataSaysNothingWasRecognised(t *testing.T) {
	path := filepath.Join(t.TempDir(), "radio.img")
	if err := os.WriteFile(path, bytes.Repeat([]byte("modem firmware "), 500), 0o644); err != nil {
		t.Fatal(err)
	}
	im := open(t, path, &Options{Partition: "radio"})
	if len(im.Partitions) != 1 {
		t.Fatalf("%d partitions", len(im.Partitions))
	}
	p := im.Partitions[0]
	if p.Format != FormatRaw || p.Err != nil || !strings.Contains(p.Detail, "no file system or image format recognised") {
		t.Fatalf("partition %+v: %v", p, p.Err)
	}
}
