package imagepatch

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// TestPatchSingleImage: a product.img given alone becomes one patched product.img (the input
// untouched, nothing left beside the output), which audits compliant, verifies with avbtool and
// passes fsck.erofs; the report notes that no vbmeta image came with it. A super.img alone is
// patched the same way. A file not named for its partition, and a .zip --out, are refused.
func TestPatchSingleImage(t *testing.T) {
	for _, inSuper := range []bool{false, true} {
		name := "product.img"
		if inSuper {
			name = "super.img"
		}
		t.Run(name, func(t *testing.T) {
			fx := newFirmware(t, false, 0)
			if inSuper {
				superFirmware(t, fx, 32<<20)
			}
			in := filepath.Join(fx.fw, name)
			before, _, err := hashFile(in)
			if err != nil {
				t.Fatal(err)
			}
			outDir := filepath.Join(fx.dir, "single")
			os.MkdirAll(outDir, 0o755)
			out := filepath.Join(outDir, name)
			o := fx.options(t, out)
			o.Input = in
			pol := o.Policy
			dry := o
			dry.DryRun = true
			if _, err := Run(context.Background(), dry); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("the dry run wrote the output")
			}
			rep, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Output != out || rep.Input != in || len(rep.Partitions) != 1 {
				t.Errorf("report: %+v", rep)
			}
			if !strings.Contains(strings.Join(rep.Notes, "\n"), "no vbmeta image of this firmware describes product") {
				t.Errorf("notes: %v", rep.Notes)
			}
			if after, _, _ := hashFile(in); after != before {
				t.Error("the input changed")
			}
			ents, _ := os.ReadDir(outDir)
			if len(ents) != 1 {
				t.Errorf("beside the output: %v", ents)
			}
			if a := auditDir(t, pol, outDir); !a.Compliant {
				t.Fatalf("the patched image fails the audit: %+v", a.Apps)
			}
			if !inSuper {
				if v := testtool.Avbtool(t, fx.ref, "verify_image", "--image", out); !strings.Contains(v, "Successfully verified sha256 hashtree") {
					t.Errorf("verify_image:\n%s", v)
				}
				if o, err := exec.Command("fsck.erofs", out).CombinedOutput(); err != nil {
					t.Errorf("fsck.erofs: %v\n%s", err, o)
				}
			}
		})
	}
	fx := newFirmware(t, false, 0)
	odd := filepath.Join(fx.dir, "product.bin")
	b, _ := os.ReadFile(filepath.Join(fx.fw, "product.img"))
	write(t, odd, b)
	for in, out := range map[string]string{odd: filepath.Join(fx.dir, "o.img"), filepath.Join(fx.fw, "product.img"): filepath.Join(fx.dir, "o.zip")} {
		o := fx.options(t, out)
		o.Input = in
		_, err := Run(context.Background(), o)
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s -> %s: %v, want ErrUnsupported", in, out, err)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s written", out)
		}
	}
}
