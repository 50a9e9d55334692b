package imagepatch

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/avb"
	"github.com/provkit/provkit/firmware/image"
	"github.com/provkit/provkit/firmware/super"
	"github.com/provkit/provkit/internal/testtool"
)

// tightFooter re-footers the fixture's product.img with the smallest partition its 16 MiB file
// system and hash tree fit in, as a build sized to its content does: any growth of the file
// system then grows the partition too.
func tightFooter(t *testing.T, fx *fixture) int64 {
	t.Helper()
	img := filepath.Join(fx.fw, "product.img")
	testtool.Avbtool(t, fx.ref, "erase_footer", "--image", img)
	const part = 16<<20 + 512<<10
	testtool.Avbtool(t, fx.ref, "add_hashtree_footer", "--do_not_generate_fec", "--image", img, "--partition_name", "product",
		"--partition_size", "17301504", "--hash_algorithm", "sha256", "--salt", "00112233")
	os.Remove(filepath.Join(fx.fw, "vbmeta.img"))
	testtool.Avbtool(t, fx.ref, "make_vbmeta_image", "--output", filepath.Join(fx.fw, "vbmeta.img"), "--key", filepath.Join(fx.ref, "testkey_rsa4096.pem"),
		"--algorithm", "SHA256_RSA4096", "--rollback_index", "5", "--padding_size", "4096", "--include_descriptors_from_image", img)
	return part
}

// TestPatchExt4GrowsPastItsPartition: a full ext4 product whose partition has no slack grows its
// file system, then its partition (as a file, and as a logical partition of super.img, whose LP
// metadata is rewritten in every slot copy); e2fsck, avbtool and the audit accept the output.
func TestPatchExt4GrowsPastItsPartition(t *testing.T) {
	for _, inSuper := range []bool{false, true} {
		name := "file"
		if inSuper {
			name = "super"
		}
		t.Run(name, func(t *testing.T) {
			fx := newExt4Firmware(t, false, true)
			part := tightFooter(t, fx)
			if inSuper {
				superFirmware(t, fx, 64<<20)
			}
			out := filepath.Join(fx.dir, "out")
			o := fx.options(t, out)
			pol := o.Policy
			rep, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			pr := rep.Partitions[0]
			if !strings.Contains(pr.Why, "file system grown from 16777216 to 17825792 bytes") || pr.SizeAfter <= part {
				t.Fatalf("report: %+v (partition was %d bytes)", pr, part)
			}
			if !inSuper && !strings.Contains(pr.Why, "partition grown from 17301504 bytes") {
				t.Errorf("Why %q does not say the partition grew", pr.Why)
			}
			// the partition as the device sees it, for e2fsck and avbtool
			im, err := image.Open(context.Background(), out, nil)
			if err != nil {
				t.Fatal(err)
			}
			r, size, err := im.Lookup("product").ReaderAt()
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, size)
			if _, err := r.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			im.Close()
			a, err := avb.Open(bytes.NewReader(b), size)
			if err != nil {
				t.Fatal(err)
			}
			check := t.TempDir()
			write(t, filepath.Join(check, "product.img"), b)
			write(t, filepath.Join(check, "fs.img"), b[:a.Footer.OriginalImageSize])
			vb, _ := os.ReadFile(filepath.Join(out, "vbmeta.img"))
			write(t, filepath.Join(check, "vbmeta.img"), vb)
			if o, err := exec.Command("e2fsck", "-fn", filepath.Join(check, "fs.img")).CombinedOutput(); err != nil {
				t.Fatalf("e2fsck -fn: %v\n%s", err, o)
			}
			if v := testtool.Avbtool(t, fx.ref, "verify_image", "--image", filepath.Join(check, "vbmeta.img")); !strings.Contains(v, "Successfully verified sha256 hashtree") {
				t.Errorf("verify_image:\n%s", v)
			}
			if a := auditDir(t, pol, out); !a.Compliant {
				t.Fatalf("the patched firmware fails the audit: %+v", a.Apps)
			}
			if !inSuper {
				return
			}
			sb, _ := os.ReadFile(filepath.Join(out, "super.img"))
			sim, err := super.Open(bytes.NewReader(sb), int64(len(sb)), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range sim.Slots {
				if s.PrimaryErr != nil || s.BackupErr != nil || !s.Identical {
					t.Errorf("slot %d: %+v", s.Slot, s)
				}
			}
			lp, ok := sim.Partition("product_a")
			if !ok || lp.Size < size || lp.Size <= part {
				t.Errorf("product_a in the new LP metadata: %+v (partition image %d bytes)", lp, size)
			}
		})
	}
}
