package imagepatch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/ext4"
	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/manifests/policy"
)

// ext4Label gives the label productContexts gives a path of the product partition.
func ext4Label(rel string) string {
	switch {
	case strings.HasPrefix(rel, "etc/permissions"):
		return "u:object_r:system_perm_file:s0"
	case strings.HasPrefix(rel, "etc/selinux"):
		return "u:object_r:sepolicy_file:s0"
	case strings.HasPrefix(rel, "app"):
		return "u:object_r:system_app_file:s0"
	}
	return "u:object_r:system_file:s0"
}

// newExt4Firmware builds, with the real tools, product.img as AOSP's mkuserimg_mke2fs would: ext4
// made by mke2fs -d (with or without a journal), every path labelled with debugfs ea_set as
// e2fsdroid labels it, a hashtree footer by avbtool, and vbmeta.img holding its descriptor.
func newExt4Firmware(t *testing.T, journal, full bool) *fixture {
	return newExt4FirmwareInodes(t, journal, full, 256)
}

// newExt4FirmwareInodes is newExt4Firmware with inodes of inodeSize bytes (128: as AOSP's
// mkuserimg_mke2fs makes them, no room for xattrs in the inode).
func newExt4FirmwareInodes(t *testing.T, journal, full bool, inodeSize int) *fixture {
	testtool.Require(t, "mke2fs", "debugfs", "e2fsck")
	fx := &fixture{dir: t.TempDir(), ref: testtool.ReferenceTools(t)}
	src := filepath.Join(fx.dir, "src")
	write(t, filepath.Join(src, "etc/selinux/product_file_contexts"), []byte(productContexts))
	write(t, filepath.Join(src, "etc/permissions/existing.xml"), []byte("<permissions/>\n"))
	write(t, filepath.Join(src, "app/Other/Other.apk"), bytes.Repeat([]byte("other"), 3000))
	write(t, filepath.Join(src, "build.prop"), []byte("ro.product.product.name=acme\n"))
	if err := os.Symlink("Other.apk", filepath.Join(src, "app/Other/link")); err != nil {
		t.Fatal(err)
	}
	fx.fw = filepath.Join(fx.dir, "fw")
	os.MkdirAll(fx.fw, 0o755)
	img := filepath.Join(fx.fw, "product.img")
	feat := "metadata_csum,^has_journal"
	if journal {
		feat = "metadata_csum,has_journal"
	}
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-I", strconv.Itoa(inodeSize), "-m", "0", "-O", feat,
		"-E", "root_owner=0:0", "-T", "default", "-d", src, img, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	var cmds strings.Builder
	i := 0
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(src, p)
		lf := filepath.Join(fx.dir, fmt.Sprintf("label%d", i))
		i++
		name := "/"
		if rel != "." {
			name = "/" + rel
		}
		write(t, lf, []byte(ext4Label(strings.TrimPrefix(rel, "."))+"\x00"))
		fmt.Fprintf(&cmds, "ea_set -f %s %s security.selinux\n", lf, name)
		return nil
	})
	cf := filepath.Join(fx.dir, "cmds")
	write(t, cf, []byte(cmds.String()))
	if out, err := exec.Command("debugfs", "-w", "-f", cf, img).CombinedOutput(); err != nil || strings.Contains(string(out), "rror") {
		t.Fatalf("debugfs ea_set: %v\n%s", err, out)
	}
	if full { // a build that used all its room: two free blocks left
		out, err := exec.Command("dumpe2fs", "-h", img).Output()
		if err != nil {
			t.Fatal(err)
		}
		var free int64
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "Free blocks:") {
				fmt.Sscan(strings.TrimPrefix(l, "Free blocks:"), &free)
			}
		}
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		ed, err := ext4.Edit(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		n := (free - 2) * 4096
		if err := ed.Create(context.Background(), "filler", ext4.Meta{Perm: 0o644}, bytes.NewReader(make([]byte, n)), n); err != nil {
			t.Fatal(err)
		}
		if err := ed.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	testtool.Avbtool(t, fx.ref, "add_hashtree_footer", "--do_not_generate_fec", "--image", img, "--partition_name", "product",
		"--partition_size", "18874368", "--hash_algorithm", "sha256", "--salt", "00112233")
	testtool.Avbtool(t, fx.ref, "make_vbmeta_image", "--output", filepath.Join(fx.fw, "vbmeta.img"), "--key", filepath.Join(fx.ref, "testkey_rsa4096.pem"),
		"--algorithm", "SHA256_RSA4096", "--rollback_index", "5", "--padding_size", "4096", "--include_descriptors_from_image", img)
	fx.addPolicy(t)
	return fx
}

// rdumpSums extracts every file of an ext4 image with debugfs rdump and hashes them.
func rdumpSums(t *testing.T, img string) map[string][32]byte {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("debugfs", "-R", "rdump / "+dir, img).CombinedOutput(); err != nil {
		t.Fatalf("debugfs rdump: %v\n%s", err, out)
	}
	sums := map[string][32]byte{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			sums[rel] = sha256.Sum256(b)
		}
		return nil
	})
	return sums
}

func debugfs(t *testing.T, img, req string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", req, img).Output()
	if err != nil {
		t.Fatalf("debugfs -R %q: %v", req, err)
	}
	return string(out)
}

// TestPatchExt4 mirrors TestPatchMakesFirmwareCompliant for an ext4 product partition, with and
// without a journal: the audit fails before and passes after, e2fsck -fn finds no problem,
// debugfs returns the APK's exact bytes with the mode, owner and label file_contexts gives, every
// old file is unchanged, avbtool verifies the re-signed vbmeta against the new hashtree, and the
// partition keeps its size. Patching the output again replaces the files with the same bytes.
func TestPatchExt4(t *testing.T) {
	for _, journal := range []bool{false, true} {
		t.Run(fmt.Sprintf("journal=%v", journal), func(t *testing.T) {
			fx := newExt4Firmware(t, journal, false)
			pol, err := policy.Load(fx.policyPath)
			if err != nil {
				t.Fatal(err)
			}
			if rep := auditDir(t, pol, fx.fw); rep.Compliant {
				t.Fatal("the input firmware already passes the audit: the test proves nothing")
			}
			before := digestDir(t, fx.fw)
			oldFiles := rdumpSums(t, filepath.Join(fx.fw, "product.img"))
			out := filepath.Join(fx.dir, "out")
			oem := signer(t, fx.ref, "testkey_rsa2048.pem")

			dry, err := Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: out, Signer: oem, Inspector: inspector{}, DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(dry.Partitions) != 2 || len(dry.Partitions[0].Files) != 3 || dry.Partitions[0].Format != "ext4" {
				t.Fatalf("dry run reports %+v", dry.Partitions)
			}
			rep, err := Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: out, Signer: oem, Inspector: inspector{}})
			if err != nil {
				t.Fatal(err)
			}
			if after := digestDir(t, fx.fw); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatal("the input was modified")
			}
			if a := auditDir(t, pol, out); !a.Compliant {
				t.Fatalf("the patched firmware fails the audit: %+v", a.Apps)
			}
			v := testtool.Avbtool(t, fx.ref, "verify_image", "--image", filepath.Join(out, "vbmeta.img"))
			if !strings.Contains(v, "Successfully verified sha256 hashtree") {
				t.Errorf("verify_image did not check the product hashtree:\n%s", v)
			}
			img := filepath.Join(out, "product.img")
			if ft := testtool.Avbtool(t, fx.ref, "info_image", "--image", img); !strings.Contains(ft, "Image size:               18874368 bytes") {
				t.Errorf("partition size not kept:\n%s", ft)
			}
			if rep.Partitions[0].RootDigestAfter == rep.Partitions[0].RootDigestBefore {
				t.Error("root digest unchanged")
			}

			if o, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
				t.Fatalf("e2fsck -fn on the patched image: %v\n%s", err, o)
			}
			kernelReads(t, img, "ext4", fx.apkPath, map[string]string{"app/RuOnemeApp/RuOnemeApp.apk": "u:object_r:system_app_file:s0\x00", "app/RuOnemeApp": "u:object_r:system_app_file:s0\x00"}, nil)
			apkWant, _ := os.ReadFile(fx.apkPath)
			if got := debugfs(t, img, "cat /app/RuOnemeApp/RuOnemeApp.apk"); got != string(apkWant) {
				t.Errorf("debugfs cat: the APK differs (%d bytes, want %d)", len(got), len(apkWant))
			}
			st := debugfs(t, img, "stat /app/RuOnemeApp/RuOnemeApp.apk")
			for _, w := range []string{"Type: regular    Mode:  0644", "User:     0   Group:     0"} {
				if !strings.Contains(st, w) {
					t.Errorf("debugfs stat lacks %q:\n%s", w, st)
				}
			}
			if st := debugfs(t, img, "stat /app/RuOnemeApp"); !strings.Contains(st, "Type: directory    Mode:  0755") {
				t.Errorf("new directory:\n%s", st)
			}
			for p, want := range map[string]string{
				"/app/RuOnemeApp":                "u:object_r:system_app_file:s0",
				"/app/RuOnemeApp/RuOnemeApp.apk": "u:object_r:system_app_file:s0",
				"/etc/default-permissions/default-permissions-ru.oneme.app.xml": "u:object_r:system_file:s0",
				"/etc/sysconfig/preinstalled-packages-ru.oneme.app.xml":         "u:object_r:system_file:s0",
			} {
				if got := debugfs(t, img, "ea_get "+p+" security.selinux"); !strings.Contains(got, want) {
					t.Errorf("%s: ea_get says %q, want %q", p, got, want)
				}
			}
			newFiles := rdumpSums(t, img)
			for k, sum := range oldFiles {
				if newFiles[k] != sum {
					t.Errorf("%s changed", k)
				}
			}
			if len(newFiles) != len(oldFiles)+3 {
				t.Errorf("%d files after, %d before: want 3 more", len(newFiles), len(oldFiles))
			}

			// the output as input: the files are there already and are replaced, in the blocks
			// they free, so the second output holds the same files with the same free count
			again := filepath.Join(fx.dir, "again")
			rep2, err := Run(context.Background(), Options{Policy: pol, Input: out, Out: again, Signer: oem, Inspector: inspector{}})
			if err != nil {
				t.Fatalf("patching twice: %v", err)
			}
			for _, f := range rep2.Partitions[0].Files {
				if !f.Replaced {
					t.Errorf("the second patch reports %s not replaced", f.Path)
				}
			}
			if w := rep2.Partitions[0].Why; w != "files added" {
				t.Errorf("the second patch's Why: %q", w)
			}
			img2 := filepath.Join(again, "product.img")
			if o, err := exec.Command("e2fsck", "-fn", img2).CombinedOutput(); err != nil {
				t.Fatalf("e2fsck -fn on the image patched twice: %v\n%s", err, o)
			}
			if got := rdumpSums(t, img2); fmt.Sprint(got) != fmt.Sprint(newFiles) {
				t.Errorf("the second output's files differ from the first's")
			}
			if a, b := freeBlocks(t, img), freeBlocks(t, img2); a != b {
				t.Errorf("free blocks %d after the first patch, %d after the second", a, b)
			}
			if a := auditDir(t, pol, again); !a.Compliant {
				t.Fatalf("the firmware patched twice fails the audit: %+v", a.Apps)
			}
		})
	}
}

func freeBlocks(t *testing.T, img string) int64 {
	t.Helper()
	out, err := exec.Command("dumpe2fs", "-h", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	var free int64
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Free blocks:") {
			fmt.Sscan(strings.TrimPrefix(l, "Free blocks:"), &free)
		}
	}
	return free
}

// TestPatchExt4Grows: an ext4 partition without room for the app (as AOSP builds dynamic
// partitions) is grown by what the app needs plus the margin (1%, rounded up to 1 MiB): the report
// says from what size to what size, e2fsck -fn finds nothing, dumpe2fs gives the counts resize2fs
// gives when it grows a copy of the input to the same size, every old file is unchanged, the app
// is there, and the re-signed vbmeta verifies.
func TestPatchExt4Grows(t *testing.T) {
	testtool.Require(t, "resize2fs", "dumpe2fs")
	fx := newExt4Firmware(t, false, true)
	pol, err := policy.Load(fx.policyPath)
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(fx.fw, "product.img")
	oldFiles := rdumpSums(t, in)
	out := filepath.Join(fx.dir, "out")
	oem := signer(t, fx.ref, "testkey_rsa2048.pem")
	dry, err := Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: out, Signer: oem, Inspector: inspector{}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: out, Signer: oem, Inspector: inspector{}})
	if err != nil {
		t.Fatal(err)
	}
	const from, to = 16 << 20, 17 << 20 // 16 MiB, plus a few blocks and 1%, rounded up to a MiB
	want := fmt.Sprintf("files added; file system grown from %d to %d bytes", from, to)
	if rep.Partitions[0].Why != want || dry.Partitions[0].Why != want {
		t.Errorf("Why %q (dry run %q), want %q", rep.Partitions[0].Why, dry.Partitions[0].Why, want)
	}
	img := filepath.Join(out, "product.img")
	if o, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn on the grown image: %v\n%s", err, o)
	}
	kernelReads(t, img, "ext4", fx.apkPath, map[string]string{"app/RuOnemeApp/RuOnemeApp.apk": "u:object_r:system_app_file:s0\x00"}, nil)
	v := testtool.Avbtool(t, fx.ref, "verify_image", "--image", filepath.Join(out, "vbmeta.img"))
	if !strings.Contains(v, "Successfully verified sha256 hashtree") {
		t.Errorf("verify_image did not check the product hashtree:\n%s", v)
	}
	if a := auditDir(t, pol, out); !a.Compliant {
		t.Fatalf("the patched firmware fails the audit: %+v", a.Apps)
	}
	newFiles := rdumpSums(t, img)
	for k, sum := range oldFiles {
		if newFiles[k] != sum {
			t.Errorf("%s changed", k)
		}
	}
	apkWant, _ := os.ReadFile(fx.apkPath)
	if got := debugfs(t, img, "cat /app/RuOnemeApp/RuOnemeApp.apk"); got != string(apkWant) {
		t.Errorf("debugfs cat: the APK differs (%d bytes, want %d)", len(got), len(apkWant))
	}
	// resize2fs on a copy of the input file system, to the same size
	ref := filepath.Join(fx.dir, "ref.img")
	b, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	write(t, ref, b[:from])
	if err := os.Truncate(ref, to); err != nil {
		t.Fatal(err)
	}
	if o, err := exec.Command("resize2fs", "-f", ref).CombinedOutput(); err != nil {
		t.Fatalf("resize2fs: %v\n%s", err, o)
	}
	counts := func(p string) map[string]string {
		o, err := exec.Command("dumpe2fs", "-h", p).Output()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, l := range strings.Split(string(o), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				m[k] = strings.TrimSpace(v)
			}
		}
		return m
	}
	got, ref2 := counts(img), counts(ref)
	for _, k := range []string{"Block count", "Inode count", "Reserved block count", "Reserved GDT blocks"} {
		if got[k] != ref2[k] {
			t.Errorf("dumpe2fs %s: %s, resize2fs gives %s", k, got[k], ref2[k])
		}
	}
}
