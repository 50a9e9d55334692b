package imagepatch

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/avb"
	"github.com/provkit/provkit/firmware/erofs"
	"github.com/provkit/provkit/firmware/fsconfig"
	"github.com/provkit/provkit/manifests/policy"
)

// TestPatchFollowsFSConfig: the firmware's fs_config files (here the system partition's, as AOSP
// builds carry them) give the app's directory 0750 system:system and its APK 0640 with a
// capability (on ext4 in an external xattr block, as it does not fit in the inode with the
// label); the default-permissions XML has no record and keeps AOSP's 0644
// root:root. The outputs carry exactly that (read back with provkit's reader and fsck.erofs,
// debugfs and e2fsck for ext4), and the report says which record was used.
func TestPatchFollowsFSConfig(t *testing.T) {
	dirs := fsconfig.Encode([]fsconfig.Entry{{Mode: 0o750, UID: 1000, GID: 1000, Prefix: "product/app/RuOnemeApp"}})
	filesWith := func(caps uint64) []byte {
		return fsconfig.Encode([]fsconfig.Entry{
			{Mode: 0o640, UID: 1000, GID: 1001, Capabilities: caps, Prefix: "product/app/RuOnemeApp/*.apk"},
			{Mode: 0o600, Prefix: "system/build.prop"},
		})
	}
	for _, fsType := range []string{"erofs", "ext4"} {
		t.Run(fsType, func(t *testing.T) {
			// ext4: a label and a capability do not fit in a 256-byte inode: the capability
			// goes to an external xattr block
			files := filesWith(1 << 12)
			var fx *fixture
			if fsType == "erofs" {
				fx = newFirmware(t, false, 0)
			} else {
				fx = newExt4Firmware(t, false, false)
			}
			writeSystem(t, filepath.Join(fx.fw, "system.img"), "ro.build.version.sdk=34\n",
				erofs.Node{Path: "etc"},
				erofs.Node{Path: "etc/fs_config_dirs", Data: bytes.NewReader(dirs), Size: int64(len(dirs))},
				erofs.Node{Path: "etc/fs_config_files", Data: bytes.NewReader(files), Size: int64(len(files))})
			pol, err := policy.Load(fx.policyPath)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(fx.dir, "out")
			rep, err := Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: out, Signer: signer(t, fx.ref, "testkey_rsa2048.pem"), Inspector: inspector{}})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]File{}
			for _, f := range rep.Partitions[0].Files {
				got[f.Path] = f
			}
			apk := got["/product/app/RuOnemeApp/RuOnemeApp.apk"]
			if apk.Mode != "0640" || apk.UID != 1000 || apk.GID != 1001 || apk.FSConfig != "system:etc/fs_config_files@0" {
				t.Errorf("report for the APK: %+v", apk)
			}
			xml := got["/product/etc/default-permissions/default-permissions-ru.oneme.app.xml"]
			if xml.Mode != "0644" || xml.UID != 0 || xml.FSConfig != "" {
				t.Errorf("report for the XML: %+v", xml)
			}
			img := filepath.Join(out, "product.img")
			b, _ := os.ReadFile(img)
			a, err := avb.Open(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			fsb := b[:a.Footer.OriginalImageSize]
			wantCap := make([]byte, 20)
			binary.LittleEndian.PutUint32(wantCap, 0x02000001)
			binary.LittleEndian.PutUint32(wantCap[4:], 1<<12)
			if fsType == "erofs" {
				nf, err := erofs.Open(bytes.NewReader(fsb), int64(len(fsb)))
				if err != nil {
					t.Fatal(err)
				}
				for p, want := range map[string]string{"app/RuOnemeApp": "drwxr-x--- 1000:1000", "app/RuOnemeApp/RuOnemeApp.apk": "-rw-r----- 1000:1001",
					"etc/default-permissions/default-permissions-ru.oneme.app.xml": "-rw-r--r-- 0:0", "etc/default-permissions": "drwxr-xr-x 0:0"} {
					fi, err := nf.Lstat(p)
					if err != nil {
						t.Fatal(err)
					}
					in := fi.Sys().(*erofs.Inode)
					if g := fmt.Sprintf("%v %d:%d", fi.Mode(), in.UID(), in.GID()); g != want {
						t.Errorf("%s: %s, want %s", p, g, want)
					}
				}
				fi, _ := nf.Lstat("app/RuOnemeApp/RuOnemeApp.apk")
				xs := fi.Sys().(*erofs.Inode).Xattrs()
				if !bytes.Equal(xs["security.capability"], wantCap) {
					t.Errorf("capability xattr %x, want %x", xs["security.capability"], wantCap)
				}
				if o, err := exec.Command("fsck.erofs", img).CombinedOutput(); err != nil {
					t.Errorf("fsck.erofs: %v\n%s", err, o)
				}
				kernelReads(t, img, "erofs", fx.apkPath, map[string]string{"app/RuOnemeApp/RuOnemeApp.apk": "u:object_r:system_app_file:s0"},
					map[string][]byte{"app/RuOnemeApp/RuOnemeApp.apk": wantCap})
				return
			}
			fsImg := filepath.Join(fx.dir, "fs.img")
			write(t, fsImg, fsb)
			if o, err := exec.Command("e2fsck", "-fn", fsImg).CombinedOutput(); err != nil {
				t.Fatalf("e2fsck -fn: %v\n%s", err, o)
			}
			for p, want := range map[string][]string{
				"/app/RuOnemeApp":                {"Mode:  0750", "User:  1000", "Group:  1000"},
				"/app/RuOnemeApp/RuOnemeApp.apk": {"Mode:  0640", "User:  1000", "Group:  1001"},
				"/etc/default-permissions/default-permissions-ru.oneme.app.xml": {"Mode:  0644", "User:     0", "Group:     0"},
			} {
				st := debugfs(t, fsImg, "stat "+p)
				for _, w := range want {
					if !strings.Contains(st, w) {
						t.Errorf("debugfs stat %s lacks %q:\n%s", p, w, st)
					}
				}
			}
			capHex := make([]string, len(wantCap))
			for i, c := range wantCap {
				capHex[i] = fmt.Sprintf("%02x", c)
			}
			wantEA := []string{`security.selinux (30) = "u:object_r:system_app_file:s0\000"`, "security.capability (20) = " + strings.Join(capHex, " ")}
			if ea := debugfs(t, fsImg, "ea_list /app/RuOnemeApp/RuOnemeApp.apk"); !strings.Contains(ea, wantEA[0]) || !strings.Contains(ea, wantEA[1]) {
				t.Errorf("debugfs ea_list: %q, want %q", ea, wantEA)
			}
			if st := debugfs(t, fsImg, "stat /app/RuOnemeApp/RuOnemeApp.apk"); !strings.Contains(st, "File ACL: ") || strings.Contains(st, "File ACL: 0") {
				t.Errorf("the APK's capability is not in an external xattr block:\n%s", st)
			}
			if st := debugfs(t, fsImg, "stat /etc/default-permissions/default-permissions-ru.oneme.app.xml"); !strings.Contains(st, "File ACL: 0") {
				t.Errorf("a label alone took an external xattr block:\n%s", st)
			}
		})
	}
}
