package imagepatch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/ext4"
	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/manifests/policy"
)

// fileACLOf returns the File ACL block debugfs stat reports for p ("" when the line is missing).
func fileACLOf(t *testing.T, img, p string) string {
	t.Helper()
	m := regexp.MustCompile(`File ACL: (\d+)`).FindStringSubmatch(debugfs(t, img, "stat "+p))
	if m == nil {
		return ""
	}
	return m[1]
}

// TestPatchExt4SmallInodes patches an ext4 product image made with 128-byte inodes (as AOSP's
// mkuserimg_mke2fs makes them), where no xattr fits in the inode: every new file and directory
// gets its SELinux label in an external xattr block. e2fsck -fn finds nothing, debugfs shows the
// labels and the blocks, the audit passes; patching the output again replaces the files (freeing
// their xattr blocks) with the same free count; and a full image of that kind is grown and
// patched too.
func TestPatchExt4SmallInodes(t *testing.T) {
	for _, full := range []bool{false, true} {
		name := "room"
		if full {
			name = "full"
		}
		t.Run(name, func(t *testing.T) {
			fx := newExt4FirmwareInodes(t, false, full, 128)
			pol, err := policy.Load(fx.policyPath)
			if err != nil {
				t.Fatal(err)
			}
			if rep := auditDir(t, pol, fx.fw); rep.Compliant {
				t.Fatal("the input firmware already passes the audit: the test proves nothing")
			}
			if st := debugfs(t, filepath.Join(fx.fw, "product.img"), "stats"); !strings.Contains(st, "Inode size:	          128") {
				t.Fatalf("the fixture does not have 128-byte inodes:\n%s", st)
			}
			out := filepath.Join(fx.dir, "out")
			oem := signer(t, fx.ref, "testkey_rsa2048.pem")
			rep, err := Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: out, Signer: oem, Inspector: inspector{}})
			if err != nil {
				t.Fatal(err)
			}
			if full != strings.Contains(rep.Partitions[0].Why, "grown") {
				t.Errorf("Why: %q", rep.Partitions[0].Why)
			}
			img := filepath.Join(out, "product.img")
			if o, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
				t.Fatalf("e2fsck -fn on the patched image: %v\n%s", err, o)
			}
			// labels in external xattr blocks, read by the kernel
			kernelReads(t, img, "ext4", fx.apkPath, map[string]string{"app/RuOnemeApp/RuOnemeApp.apk": "u:object_r:system_app_file:s0\x00", "app/RuOnemeApp": "u:object_r:system_app_file:s0\x00"}, nil)
			if a := auditDir(t, pol, out); !a.Compliant {
				t.Fatalf("the patched firmware fails the audit: %+v", a.Apps)
			}
			apkWant, _ := os.ReadFile(fx.apkPath)
			if got := debugfs(t, img, "cat /app/RuOnemeApp/RuOnemeApp.apk"); got != string(apkWant) {
				t.Errorf("debugfs cat: the APK differs (%d bytes, want %d)", len(got), len(apkWant))
			}
			for p, want := range map[string]string{
				"/app/RuOnemeApp":                `security.selinux (30) = "u:object_r:system_app_file:s0\000"`,
				"/app/RuOnemeApp/RuOnemeApp.apk": `security.selinux (30) = "u:object_r:system_app_file:s0\000"`,
				"/etc/default-permissions/default-permissions-ru.oneme.app.xml": `security.selinux (26) = "u:object_r:system_file:s0\000"`,
			} {
				if got := debugfs(t, img, "ea_list "+p); !strings.Contains(got, want) {
					t.Errorf("%s: ea_list says %q, want %q", p, got, want)
				}
				if acl := fileACLOf(t, img, p); acl == "" || acl == "0" {
					t.Errorf("%s: File ACL %q, want an xattr block", p, acl)
				}
			}
			if full {
				return
			}
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
			img2 := filepath.Join(again, "product.img")
			if o, err := exec.Command("e2fsck", "-fn", img2).CombinedOutput(); err != nil {
				t.Fatalf("e2fsck -fn on the image patched twice: %v\n%s", err, o)
			}
			if a, b := freeBlocks(t, img), freeBlocks(t, img2); a != b {
				t.Errorf("free blocks %d after the first patch, %d after the second", a, b)
			}
			if got := debugfs(t, img2, "ea_list /app/RuOnemeApp/RuOnemeApp.apk"); !strings.Contains(got, `"u:object_r:system_app_file:s0\000"`) {
				t.Errorf("after the second patch: ea_list %q", got)
			}
			if a := auditDir(t, pol, again); !a.Compliant {
				t.Fatalf("the firmware patched twice fails the audit: %+v", a.Apps)
			}
		})
	}
}

// TestExt4PlanCountsXattrBlocks: the room planned for new inodes counts one external xattr
// block per inode whose xattrs do not fit in it: every labelled inode with 128-byte inodes, only
// the one with a label and a capability with 256-byte inodes.
func TestExt4PlanCountsXattrBlocks(t *testing.T) {
	testtool.Require(t, "mke2fs")
	label := map[string][]byte{"security.selinux": []byte("u:object_r:system_app_file:s0\x00")}
	both := map[string][]byte{"security.selinux": label["security.selinux"], "security.capability": capabilityXattr(1 << 12)}
	ops := []ext4Op{
		{rel: "app/X", dir: true, meta: ext4.Meta{Xattrs: label}},
		{rel: "app/X/x.apk", meta: ext4.Meta{Xattrs: both}, add: addition{size: 5000}},
		{rel: "etc/x.xml", meta: ext4.Meta{Xattrs: label}, add: addition{size: 100}},
		{rel: "etc/old.xml", replace: true, meta: ext4.Meta{Xattrs: label}, add: addition{size: 100}},
	}
	need := map[int]uint64{}
	for _, isz := range []int{128, 256} {
		img := filepath.Join(t.TempDir(), "fs.img")
		if o, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-I", map[int]string{128: "128", 256: "256"}[isz], img, "8M").CombinedOutput(); err != nil {
			t.Fatalf("mke2fs: %v\n%s", err, o)
		}
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		xfs, err := ext4.Open(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		need[isz] = newExt4Plan(xfs, ops, &Partition{}).needBlocks
		f.Close()
	}
	// without xattr blocks: 3 (directory) + 2+3 (x.apk) + 1+3 (x.xml) + 1+1 (old.xml)
	if need[256] != 14+1 || need[128] != 14+4 {
		t.Errorf("blocks planned: %d with 256-byte inodes (want 15), %d with 128-byte inodes (want 18)", need[256], need[128])
	}
}
