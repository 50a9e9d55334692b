package imagepatch

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/image"
	"github.com/provkit/provkit/firmware/super"
	"github.com/provkit/provkit/internal/testimage/lpwrite"
	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/manifests/policy"
)

// superFirmware moves the fixture's product.img into an A/B super.img (product_a, product_b
// empty), as a device with dynamic partitions ships it.
func superFirmware(t *testing.T, fx *fixture, deviceSize uint64) {
	t.Helper()
	img := filepath.Join(fx.fw, "product.img")
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	b, err := lpwrite.Write(lpwrite.Spec{DeviceSize: deviceSize, MetadataMaxSize: 65536, Slots: 2, Alignment: 1 << 20,
		Partitions: []lpwrite.Partition{{Name: "product_a", Attributes: 1, Data: data}, {Name: "product_b", Attributes: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fx.fw, "super.img"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(img); err != nil {
		t.Fatal(err)
	}
}

// TestPatchInsideSuper patches product_a inside super.img: the audit passes after, the LP
// metadata reads back unchanged, the partition verifies against the re-signed vbmeta with
// avbtool, and fsck.erofs accepts it.
func TestPatchInsideSuper(t *testing.T) {
	fx := newFirmware(t, false, 0)
	superFirmware(t, fx, 32<<20)
	pol, err := policy.Load(fx.policyPath)
	if err != nil {
		t.Fatal(err)
	}
	if auditDir(t, pol, fx.fw).Compliant {
		t.Fatal("the input already passes")
	}
	out := filepath.Join(fx.dir, "out")
	rep, err := Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: out, Signer: signer(t, fx.ref, "testkey_rsa2048.pem"), Inspector: inspector{}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Partitions[0].File != "super.img!product_a" {
		t.Errorf("report: %+v", rep.Partitions[0])
	}
	if a := auditDir(t, pol, out); !a.Compliant {
		t.Fatalf("the patched firmware fails the audit: %+v", a.Apps)
	}
	// LP metadata: every slot's copies still verify and list the same partitions
	for _, dir := range []string{fx.fw, out} {
		b, _ := os.ReadFile(filepath.Join(dir, "super.img"))
		sim, err := super.Open(bytes.NewReader(b), int64(len(b)), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sim.Slots {
			if s.PrimaryErr != nil || s.BackupErr != nil || !s.Identical {
				t.Errorf("%s slot %d: %+v", dir, s.Slot, s)
			}
		}
	}
	// avbtool wants product.img beside vbmeta.img: extract the logical partition with provkit
	im, err := image.Open(context.Background(), out, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := im.Lookup("product")
	r, size, err := p.ReaderAt()
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, size)
	if _, err := r.ReadAt(part, 0); err != nil {
		t.Fatal(err)
	}
	im.Close()
	check := t.TempDir()
	os.WriteFile(filepath.Join(check, "product.img"), part, 0o644)
	vb, _ := os.ReadFile(filepath.Join(out, "vbmeta.img"))
	os.WriteFile(filepath.Join(check, "vbmeta.img"), vb, 0o644)
	if v := testtool.Avbtool(t, fx.ref, "verify_image", "--image", filepath.Join(check, "vbmeta.img")); !strings.Contains(v, "Successfully verified sha256 hashtree") {
		t.Errorf("verify_image:\n%s", v)
	}
	if o, err := exec.Command("fsck.erofs", filepath.Join(check, "product.img")).CombinedOutput(); err != nil {
		t.Errorf("fsck.erofs: %v\n%s", err, o)
	}
}

// TestPatchInsideSuperGrows: the rewrite no longer fits product_a, so the logical partition grows
// into the super device's free space (LP metadata rewritten in every slot copy); the output still
// audits and verifies. In a super device without the room, the patch stops saying so.
func TestPatchInsideSuperGrows(t *testing.T) {
	fx := newFirmware(t, false, 12<<20) // a 12 MiB APK, in an 8 MiB partition
	superFirmware(t, fx, 32<<20)
	pol, err := policy.Load(fx.policyPath)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(fx.dir, "out")
	rep, err := Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: out, Signer: signer(t, fx.ref, "testkey_rsa2048.pem"), Inspector: inspector{}})
	if err != nil {
		t.Fatal(err)
	}
	if pr := rep.Partitions[0]; pr.SizeAfter <= pr.SizeBefore {
		t.Errorf("not grown: %+v", pr)
	}
	b, _ := os.ReadFile(filepath.Join(out, "super.img"))
	sim, err := super.Open(bytes.NewReader(b), int64(len(b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sim.Slots {
		if s.PrimaryErr != nil || s.BackupErr != nil || !s.Identical {
			t.Errorf("slot %d: %+v", s.Slot, s)
		}
	}
	if !auditDir(t, pol, out).Compliant {
		t.Error("audit fails after patch")
	}
	im, err := image.Open(context.Background(), out, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, size, err := im.Lookup("product").ReaderAt()
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, size)
	r.ReadAt(part, 0)
	im.Close()
	check := t.TempDir()
	os.WriteFile(filepath.Join(check, "product.img"), part, 0o644)
	vb, _ := os.ReadFile(filepath.Join(out, "vbmeta.img"))
	os.WriteFile(filepath.Join(check, "vbmeta.img"), vb, 0o644)
	if v := testtool.Avbtool(t, fx.ref, "verify_image", "--image", filepath.Join(check, "vbmeta.img")); !strings.Contains(v, "Successfully verified sha256 hashtree") {
		t.Errorf("verify_image:\n%s", v)
	}

	small := newFirmware(t, false, 12<<20)
	superFirmware(t, small, 10<<20) // 1 MiB metadata + 8 MiB product: no room for 12 MiB
	pol2, err := policy.Load(small.policyPath)
	if err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(small.dir, "out")
	_, err = Run(context.Background(), Options{Policy: pol2, Input: small.fw, Out: out2, Signer: signer(t, small.ref, "testkey_rsa2048.pem"), Inspector: inspector{}})
	if !errors.Is(err, super.ErrNoRoom) || !strings.Contains(err.Error(), "growing product_a") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(out2); !errors.Is(err, os.ErrNotExist) {
		t.Error("output written")
	}
}

// TestPatchGrowsPartitionImage: a plain product.img whose rewrite no longer fits its partition
// size grows, the report says so, and avbtool still verifies it.
func TestPatchGrowsPartitionImage(t *testing.T) {
	fx := newFirmware(t, false, 12<<20)
	pol, err := policy.Load(fx.policyPath)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(fx.dir, "out")
	rep, err := Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: out, Signer: signer(t, fx.ref, "testkey_rsa2048.pem"), Inspector: inspector{}})
	if err != nil {
		t.Fatal(err)
	}
	pr := rep.Partitions[0]
	if pr.SizeAfter <= pr.SizeBefore || !strings.Contains(pr.Why, "grown") {
		t.Errorf("partition not reported grown: %+v", pr)
	}
	if v := testtool.Avbtool(t, fx.ref, "verify_image", "--image", filepath.Join(out, "vbmeta.img")); !strings.Contains(v, "Successfully verified sha256 hashtree") {
		t.Errorf("verify_image:\n%s", v)
	}
	if !auditDir(t, pol, out).Compliant {
		t.Error("audit fails after patch")
	}
}
