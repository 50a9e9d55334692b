package imagepatch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// TestPatchVBMetaSystem: the layout of Android 10+ devices: vbmeta.img chains to the
// vbmeta_system partition (its own key), which holds product's hashtree descriptor. The patch
// re-signs vbmeta_system.img with the new descriptor and vbmeta.img with the chain descriptor's
// new key (its other descriptors, and rollback index location, kept); avbtool verify_image
// follows the chain from vbmeta.img down to product's hashtree.
func TestPatchVBMetaSystem(t *testing.T) {
	fx := newFirmware(t, false, 0)
	product := filepath.Join(fx.fw, "product.img")
	os.Remove(filepath.Join(fx.fw, "vbmeta.img"))
	testtool.Avbtool(t, fx.ref, "make_vbmeta_image", "--output", filepath.Join(fx.fw, "vbmeta_system.img"), "--key", filepath.Join(fx.ref, "testkey_rsa4096.pem"),
		"--algorithm", "SHA256_RSA4096", "--rollback_index", "9", "--rollback_index_location", "1", "--padding_size", "4096",
		"--include_descriptors_from_image", product)
	pub := filepath.Join(fx.dir, "pub4096")
	testtool.Avbtool(t, fx.ref, "extract_public_key", "--key", filepath.Join(fx.ref, "testkey_rsa4096.pem"), "--output", pub)
	testtool.Avbtool(t, fx.ref, "make_vbmeta_image", "--output", filepath.Join(fx.fw, "vbmeta.img"), "--key", filepath.Join(fx.ref, "testkey_rsa4096.pem"),
		"--algorithm", "SHA256_RSA4096", "--rollback_index", "5", "--padding_size", "4096",
		"--chain_partition", "vbmeta_system:1:"+pub, "--prop", "com.example.kept:yes")
	out := filepath.Join(fx.dir, "out")
	o := fx.options(t, out)
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	whys := map[string]string{}
	for _, p := range rep.Partitions {
		whys[p.Name] = p.Why + " " + strings.Join(p.Descriptors, "; ")
	}
	if !strings.Contains(whys["vbmeta_system"], "hashtree descriptor of product replaced") || !strings.Contains(whys["vbmeta"], "chain descriptor of vbmeta_system given the new key") {
		t.Fatalf("report: %v", whys)
	}
	// avbtool checks the chain descriptor's key against the one expected: the new key's
	newPub := filepath.Join(fx.dir, "pub2048")
	testtool.Avbtool(t, fx.ref, "extract_public_key", "--key", filepath.Join(fx.ref, "testkey_rsa2048.pem"), "--output", newPub)
	v := testtool.Avbtool(t, fx.ref, "verify_image", "--image", filepath.Join(out, "vbmeta.img"), "--follow_chain_partitions",
		"--expected_chain_partition", "vbmeta_system:1:"+newPub)
	for _, w := range []string{"vbmeta_system: Successfully verified chain partition descriptor matches expected data",
		"Successfully verified SHA256_RSA2048 vbmeta struct in " + filepath.Join(out, "vbmeta_system.img"),
		"Successfully verified sha256 hashtree of " + filepath.Join(out, "product.img")} {
		if !strings.Contains(v, w) {
			t.Errorf("verify_image lacks %q:\n%s", w, v)
		}
	}
	info := testtool.Avbtool(t, fx.ref, "info_image", "--image", filepath.Join(out, "vbmeta_system.img"))
	for _, w := range []string{"Rollback Index:           9", "Rollback Index Location:  1", "Algorithm:                SHA256_RSA2048"} {
		if !strings.Contains(info, w) {
			t.Errorf("vbmeta_system lacks %q:\n%s", w, info)
		}
	}
	if info := testtool.Avbtool(t, fx.ref, "info_image", "--image", filepath.Join(out, "vbmeta.img")); !strings.Contains(info, "com.example.kept -> 'yes'") {
		t.Errorf("vbmeta.img lost its property:\n%s", info)
	}
	if a := auditDir(t, o.Policy, out); !a.Compliant {
		t.Fatalf("audit: %+v", a.Apps)
	}
}
