package avb

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// TestHashtreeFooterWithFEC lays a partition out with FEC (FECRoots 2, as AOSP builds do) and
// judges it with the kernel's userspace twin: veritysetup verify reads the tree and the FEC at the
// descriptor's offsets; with a damaged data block it succeeds only because the FEC repairs it, and
// fails when the FEC is damaged too. avbtool verify_image accepts the vbmeta and info_image shows
// the FEC fields.
func TestHashtreeFooterWithFEC(t *testing.T) {
	testtool.Require(t, "veritysetup")
	ref := referenceTools(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "product.img")
	data := fsImage(700*1024 + 100)
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	salt := []byte("fec salt")
	d, size, err := AddHashtreeFooter(context.Background(), f, int64(len(data)),
		FooterOptions{PartitionName: "product", PartitionSize: 2 << 20, Salt: salt, FECRoots: 2}, Signer{})
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
	if d.FECNumRoots != 2 || d.FECOffset != d.TreeOffset+d.TreeSize || d.FECSize != FECSize(d.FECOffset, 2, 4096) {
		t.Fatalf("descriptor: roots %d, fec at %d+%d, tree at %d+%d", d.FECNumRoots, d.FECOffset, d.FECSize, d.TreeOffset, d.TreeSize)
	}
	raw, _ := os.ReadFile(img)
	a, err := Open(strings.NewReader(string(raw)), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var got *Hashtree
	for _, x := range a.VBMeta.Descriptors {
		if h, ok := x.(*Hashtree); ok {
			got = h
		}
	}
	if got == nil || got.FECOffset != d.FECOffset || got.FECSize != d.FECSize {
		t.Fatalf("footer descriptor %+v", got)
	}
	if err := VerifyFEC(context.Background(), got, strings.NewReader(string(raw)), int64(len(raw))); err != nil {
		t.Fatal(err)
	}
	s := loadSigner(t, ref, "testkey_rsa2048.pem", "")
	vb, err := BuildVBMeta(VBMetaOptions{Descriptors: []Descriptor{d}}, s)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "vbmeta.img"), vb, 0o644)
	out := avbtool(t, ref, "verify_image", "--image", filepath.Join(dir, "vbmeta.img"))
	if !strings.Contains(out, "Successfully verified sha256 hashtree of") {
		t.Fatalf("avbtool verify_image:\n%s", out)
	}
	info := avbtool(t, ref, "info_image", "--image", img)
	for _, want := range []string{"FEC num roots:         2", fmt.Sprintf("FEC offset:            %d", d.FECOffset), fmt.Sprintf("FEC size:              %d bytes", d.FECSize)} {
		if !strings.Contains(info, want) {
			t.Fatalf("info_image lacks %q:\n%s", want, info)
		}
	}

	verify := func(b []byte) error {
		p := filepath.Join(dir, "check.img")
		os.WriteFile(p, b, 0o644)
		cmd := exec.Command("veritysetup", "verify", p, p, hex.EncodeToString(d.RootDigest), "--no-superblock",
			"--hash=sha256", "--salt="+hex.EncodeToString(salt), fmt.Sprintf("--data-blocks=%d", d.ImageSize/4096),
			fmt.Sprintf("--hash-offset=%d", d.TreeOffset), "--fec-device="+p, fmt.Sprintf("--fec-offset=%d", d.FECOffset), "--fec-roots=2")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := verify(raw); err != nil {
		t.Fatalf("veritysetup verify of the intact partition: %v", err)
	}
	damaged := append([]byte(nil), raw...)
	for i := 0; i < 64; i++ {
		damaged[5*4096+i] ^= 0xff // one byte of 64 codewords of one data block
	}
	if err := verify(damaged); err != nil {
		t.Fatalf("veritysetup verify did not repair a damaged data block with the FEC: %v", err)
	}
	for i := uint64(0); i < 4096; i++ {
		damaged[d.FECOffset+i] ^= 0xff
	}
	if err := verify(damaged); err == nil {
		t.Fatal("veritysetup verify passed with a damaged data block and damaged FEC: the check cannot fail")
	}
}
