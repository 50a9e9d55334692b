package imagepatch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// TestPatchHashFootedPartition: a partition verified whole (an AVB hash footer, as avbtool
// add_hash_footer makes it, like the ext4 system.img of AOSP's avb tests) instead of by a hash
// tree. Its hash descriptor is recomputed (same algorithm and salt, same partition size), the
// vbmeta image's is replaced, and avbtool verify_image checks the new digest; e2fsck and the
// audit accept the file system.
func TestPatchHashFootedPartition(t *testing.T) {
	fx := newExt4Firmware(t, false, false)
	img := filepath.Join(fx.fw, "product.img")
	testtool.Avbtool(t, fx.ref, "erase_footer", "--image", img)
	testtool.Avbtool(t, fx.ref, "add_hash_footer", "--image", img, "--partition_name", "product",
		"--partition_size", "18874368", "--hash_algorithm", "sha256", "--salt", "8899aabb")
	os.Remove(filepath.Join(fx.fw, "vbmeta.img"))
	testtool.Avbtool(t, fx.ref, "make_vbmeta_image", "--output", filepath.Join(fx.fw, "vbmeta.img"), "--key", filepath.Join(fx.ref, "testkey_rsa4096.pem"),
		"--algorithm", "SHA256_RSA4096", "--rollback_index", "5", "--padding_size", "4096", "--include_descriptors_from_image", img)
	out := filepath.Join(fx.dir, "out")
	o := fx.options(t, out)
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	pr := rep.Partitions[0]
	if pr.RootDigestBefore == "" || pr.RootDigestBefore == pr.RootDigestAfter || pr.SizeAfter != 18874368 {
		t.Errorf("report: %+v", pr)
	}
	if d := strings.Join(rep.Partitions[1].Descriptors, ";"); d != "hash descriptor of product replaced" {
		t.Errorf("vbmeta: %q", d)
	}
	v := testtool.Avbtool(t, fx.ref, "verify_image", "--image", filepath.Join(out, "vbmeta.img"))
	if !strings.Contains(v, "product: Successfully verified sha256 hash of "+filepath.Join(out, "product.img")) {
		t.Errorf("verify_image:\n%s", v)
	}
	info := testtool.Avbtool(t, fx.ref, "info_image", "--image", filepath.Join(out, "product.img"))
	if !strings.Contains(info, "Salt:                  8899aabb") || !strings.Contains(info, "Image size:               18874368 bytes") {
		t.Errorf("footer:\n%s", info)
	}
	if o, err := exec.Command("e2fsck", "-fn", filepath.Join(out, "product.img")).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck: %v\n%s", err, o)
	}
	if a := auditDir(t, o.Policy, out); !a.Compliant {
		t.Fatalf("audit: %+v", a.Apps)
	}
}
