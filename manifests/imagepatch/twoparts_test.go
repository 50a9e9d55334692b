package imagepatch

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/demoapk"
	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/manifests/policy"
)

// TestPatchTwoAppsTwoPartitions: a mandate of two apps, one on product and one privileged on
// system_ext (two EROFS images made by mkfs.erofs, both described by one vbmeta.img). Both
// partitions are rewritten, vbmeta.img is re-signed once with both new hashtree descriptors,
// avbtool verify_image checks both against it, and the audit passes for both apps.
func TestPatchTwoAppsTwoPartitions(t *testing.T) {
	fx := newFirmware(t, false, 0)
	// system_ext: its own file_contexts (naming /system_ext paths, as AOSP's do), a hashtree footer
	src := filepath.Join(fx.dir, "sysext")
	write(t, filepath.Join(src, "etc/selinux/system_ext_file_contexts"), []byte(`/system_ext(/.*)?                 u:object_r:system_file:s0
/system_ext/priv-app(/.*)?        u:object_r:system_app_file:s0
/system_ext/etc/permissions(/.*)? u:object_r:system_perm_file:s0
`))
	write(t, filepath.Join(src, "build.prop"), []byte("ro.system_ext.build.id=X\n"))
	img := filepath.Join(fx.fw, "system_ext.img")
	if out, err := exec.Command("mkfs.erofs", "-zlz4hc", "-T1230768000", img, src).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs: %v\n%s", err, out)
	}
	testtool.Avbtool(t, fx.ref, "add_hashtree_footer", "--do_not_generate_fec", "--image", img, "--partition_name", "system_ext",
		"--partition_size", "4194304", "--hash_algorithm", "sha256", "--salt", "44556677")
	os.Remove(filepath.Join(fx.fw, "vbmeta.img"))
	testtool.Avbtool(t, fx.ref, "make_vbmeta_image", "--output", filepath.Join(fx.fw, "vbmeta.img"), "--key", filepath.Join(fx.ref, "testkey_rsa4096.pem"),
		"--algorithm", "SHA256_RSA4096", "--rollback_index", "5", "--padding_size", "4096",
		"--include_descriptors_from_image", filepath.Join(fx.fw, "product.img"), "--include_descriptors_from_image", img)

	key2, err := demoapk.NewKey("second app")
	if err != nil {
		t.Fatal(err)
	}
	second, err := demoapk.Build(demoapk.Spec{Package: "ru.gosuslugi.app", VersionCode: 7, Permissions: []string{"android.permission.INTERNET"}}, key2)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(fx.dir, "second.apk"), second)
	b, _ := os.ReadFile(fx.policyPath)
	write(t, fx.policyPath, append(b, []byte(fmt.Sprintf(`  - package: ru.gosuslugi.app
    apk: second.apk
    signers: [{sha256: %q}]
    partition: system_ext
    privileged: true
`, key2.CertSHA256()))...))
	pol, err := policy.Load(fx.policyPath)
	if err != nil {
		t.Fatal(err)
	}
	if a := auditDir(t, pol, fx.fw); a.Compliant {
		t.Fatal("the input already passes")
	}
	out := filepath.Join(fx.dir, "out")
	rep, err := Run(context.Background(), fx.options(t, out))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range rep.Partitions {
		names = append(names, p.Name+":"+p.Why)
	}
	if len(rep.Partitions) != 3 || !strings.Contains(strings.Join(names, ","), "vbmeta:vbmeta re-signed") {
		t.Fatalf("partitions: %v", names)
	}
	vb := rep.Partitions[2]
	if len(vb.Descriptors) != 2 {
		t.Errorf("vbmeta: %v, want both hashtree descriptors replaced", vb.Descriptors)
	}
	v := testtool.Avbtool(t, fx.ref, "verify_image", "--image", filepath.Join(out, "vbmeta.img"))
	for _, part := range []string{"product", "system_ext"} {
		if !strings.Contains(v, "Successfully verified sha256 hashtree of "+filepath.Join(out, part+".img")) {
			t.Errorf("verify_image did not check %s:\n%s", part, v)
		}
	}
	a := auditDir(t, pol, out)
	if !a.Compliant {
		t.Fatalf("the patched firmware fails the audit: %+v", a.Apps)
	}
	if a.Apps[1].Path != "/system_ext/priv-app/RuGosuslugiApp/RuGosuslugiApp.apk" {
		t.Errorf("second app at %q", a.Apps[1].Path)
	}
	kernelReads(t, filepath.Join(out, "product.img"), "erofs", fx.apkPath, map[string]string{"app/RuOnemeApp/RuOnemeApp.apk": "u:object_r:system_app_file:s0"}, nil)
}
