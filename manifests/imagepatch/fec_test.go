package imagepatch

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/avb"
	"github.com/provkit/provkit/internal/testtool"
)

// TestPatchRegeneratesFEC: a product image whose hashtree descriptor carries FEC (as AOSP builds
// make them; laid out here by provkit's footer writer, since Debian has no libfec 'fec' tool for
// avbtool) keeps FEC after the patch: same number of roots, at the end of the new tree, and the
// parity matches libfec's layout over the new data and tree (VerifyFEC, which is cross-checked
// against veritysetup in firmware/avb).
func TestPatchRegeneratesFEC(t *testing.T) {
	fx := newFirmware(t, false, 0)
	img := filepath.Join(fx.fw, "product.img")
	testtool.Avbtool(t, fx.ref, "erase_footer", "--image", img)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	_, size, err := avb.AddHashtreeFooter(context.Background(), f, st.Size(),
		avb.FooterOptions{PartitionName: "product", PartitionSize: 8 << 20, Salt: []byte{0, 0x11, 0x22, 0x33}, FECRoots: 2}, avb.Signer{})
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
	os.Remove(filepath.Join(fx.fw, "vbmeta.img"))
	testtool.Avbtool(t, fx.ref, "make_vbmeta_image", "--output", filepath.Join(fx.fw, "vbmeta.img"), "--key", filepath.Join(fx.ref, "testkey_rsa4096.pem"),
		"--algorithm", "SHA256_RSA4096", "--include_descriptors_from_image", img, "--padding_size", "4096")
	before := hashtreeOf(t, img)
	if before.FECNumRoots != 2 || before.FECSize == 0 {
		t.Fatalf("the input has no FEC: %+v", before)
	}
	out := filepath.Join(fx.dir, "out")
	rep, err := Run(context.Background(), fx.options(t, out))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rep.Partitions[0].Why, "error correction") {
		t.Errorf("report says FEC was dropped: %q", rep.Partitions[0].Why)
	}
	outImg := filepath.Join(out, "product.img")
	after := hashtreeOf(t, outImg)
	if after.FECNumRoots != 2 || after.FECOffset != after.TreeOffset+after.TreeSize || after.FECSize != avb.FECSize(after.FECOffset, 2, 4096) {
		t.Fatalf("FEC after the patch: %+v", after)
	}
	if bytes.Equal(after.RootDigest, before.RootDigest) {
		t.Fatal("the file system did not change: the test proves nothing")
	}
	b, _ := os.ReadFile(outImg)
	if err := avb.VerifyFEC(context.Background(), after, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("the new FEC does not match the new data and tree: %v", err)
	}
	// the vbmeta partition holds the same descriptor, FEC fields included
	v := testtool.Avbtool(t, fx.ref, "verify_image", "--image", filepath.Join(out, "vbmeta.img"))
	if !strings.Contains(v, "Successfully verified sha256 hashtree") {
		t.Errorf("verify_image:\n%s", v)
	}
	info := testtool.Avbtool(t, fx.ref, "info_image", "--image", filepath.Join(out, "vbmeta.img"))
	if !strings.Contains(info, "FEC num roots:         2") {
		t.Errorf("vbmeta's descriptor lost its FEC:\n%s", info)
	}
}

func hashtreeOf(t *testing.T, path string) *avb.Hashtree {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := avb.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range a.VBMeta.Descriptors {
		if h, ok := d.(*avb.Hashtree); ok {
			return h
		}
	}
	t.Fatalf("%s: no hashtree descriptor", path)
	return nil
}
