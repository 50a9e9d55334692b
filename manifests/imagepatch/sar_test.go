package imagepatch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/manifests/policy"
)

// TestPatchSystemAsRoot patches a system-as-root system.img (the partition under system/, its
// plat_file_contexts in system/etc/selinux): the APK lands in system/app, labelled from it.
func TestPatchSystemAsRoot(t *testing.T) {
	fx := newFirmware(t, false, 0) // for its APK, policy and keys; the firmware is replaced
	src := filepath.Join(fx.dir, "sar")
	write(t, filepath.Join(src, "system/build.prop"), []byte("ro.build.fingerprint=acme/acme/acme:14/X/1:user/release-keys\n"))
	write(t, filepath.Join(src, "system/etc/selinux/plat_file_contexts"), []byte("/(.*)?                 u:object_r:rootfs:s0\n/system(/.*)?           u:object_r:system_file:s0\n/system/app(/.*)?       u:object_r:system_app_file:s0\n"))
	write(t, filepath.Join(src, "init"), []byte("init"))
	fw := filepath.Join(fx.dir, "fw2")
	os.MkdirAll(fw, 0o755)
	img := filepath.Join(fw, "system.img")
	if out, err := exec.Command("mkfs.erofs", "--quiet", img, src).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs: %v\n%s", err, out)
	}
	testtool.Avbtool(t, fx.ref, "add_hashtree_footer", "--do_not_generate_fec", "--image", img, "--partition_name", "system",
		"--partition_size", "4194304", "--hash_algorithm", "sha256")
	testtool.Avbtool(t, fx.ref, "make_vbmeta_image", "--output", filepath.Join(fw, "vbmeta.img"), "--key", filepath.Join(fx.ref, "testkey_rsa4096.pem"),
		"--algorithm", "SHA256_RSA4096", "--include_descriptors_from_image", img)
	b, _ := os.ReadFile(fx.policyPath)
	write(t, fx.policyPath, []byte(strings.Replace(string(b), "partition: product", "partition: system", 1)))
	pol, err := policy.Load(fx.policyPath)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(fx.dir, "out")
	rep, err := Run(context.Background(), Options{Policy: pol, Input: fw, Out: out, Signer: signer(t, fx.ref, "testkey_rsa2048.pem"), Inspector: inspector{}})
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Partitions[0].Files[0]
	if f.Path != "/system/app/RuOnemeApp/RuOnemeApp.apk" || f.Label != "u:object_r:system_app_file:s0" {
		t.Errorf("APK placed as %+v", f)
	}
	x := filepath.Join(fx.dir, "x")
	if o, err := exec.Command("fsck.erofs", "--extract="+x, filepath.Join(out, "system.img")).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs: %v\n%s", err, o)
	}
	if _, err := os.Stat(filepath.Join(x, "system/app/RuOnemeApp/RuOnemeApp.apk")); err != nil {
		t.Errorf("APK not under system/app: %v", err)
	}
	if a := auditDir(t, pol, out); !a.Compliant {
		t.Errorf("audit fails after patch: %+v", a.Apps)
	}
	if v := testtool.Avbtool(t, fx.ref, "verify_image", "--image", filepath.Join(out, "vbmeta.img")); !strings.Contains(v, "Successfully verified sha256 hashtree") {
		t.Errorf("verify_image:\n%s", v)
	}
}
