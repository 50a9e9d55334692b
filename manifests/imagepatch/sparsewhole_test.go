package imagepatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/sparse"
	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/manifests/policy"
)

func img2simg(t *testing.T, src, dst string, blockSize int) {
	t.Helper()
	testtool.Require(t, "img2simg", "simg2img")
	if out, err := exec.Command("img2simg", src, dst, fmt.Sprint(blockSize)).CombinedOutput(); err != nil {
		t.Fatalf("img2simg: %v\n%s", err, out)
	}
}

func sparseHeader(t *testing.T, p string) sparse.Header {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sparse.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return s.Header()
}

// TestPatchSparseSuperAndVBMeta: super.img (8 KiB blocks) and vbmeta.img (4 KiB blocks) made
// sparse by img2simg are patched; both come out sparse with their block sizes, and simg2img
// makes them byte for byte what the patch writes from the raw images; the audit passes on the
// sparse output and a dry run reports the same. A sparse super with a bad CRC32 chunk is refused
// (dry run too), naming the file, with nothing written.
func TestPatchSparseSuperAndVBMeta(t *testing.T) {
	fx := newFirmware(t, false, 0)
	superFirmware(t, fx, 32<<20)
	pol, err := policy.Load(fx.policyPath)
	if err != nil {
		t.Fatal(err)
	}
	s := signer(t, fx.ref, "testkey_rsa2048.pem")
	sfw := filepath.Join(fx.dir, "sparse-fw")
	os.Mkdir(sfw, 0o755)
	img2simg(t, filepath.Join(fx.fw, "super.img"), filepath.Join(sfw, "super.img"), 8192)
	img2simg(t, filepath.Join(fx.fw, "vbmeta.img"), filepath.Join(sfw, "vbmeta.img"), 4096)

	rawOut := filepath.Join(fx.dir, "raw-out")
	if _, err := Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: rawOut, Signer: s, Inspector: inspector{}}); err != nil {
		t.Fatal(err)
	}
	dry, err := Run(context.Background(), Options{Policy: pol, Input: sfw, Signer: s, Inspector: inspector{}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(fx.dir, "sparse-out")
	rep, err := Run(context.Background(), Options{Policy: pol, Input: sfw, Out: out, Signer: s, Inspector: inspector{}})
	if err != nil {
		t.Fatal(err)
	}
	for name, bs := range map[string]uint32{"super.img": 8192, "vbmeta.img": 4096} {
		if h := sparseHeader(t, filepath.Join(out, name)); h.BlockSize != bs {
			t.Errorf("%s: block size %d, want %d", name, h.BlockSize, bs)
		}
		want, _ := os.ReadFile(filepath.Join(rawOut, name))
		if got := unsparse(t, filepath.Join(out, name)); !bytes.Equal(got, want) {
			t.Errorf("simg2img %s (%d bytes) differs from the raw patch's (%d bytes)", name, len(got), len(want))
		}
		if in := unsparse(t, filepath.Join(sfw, name)); bytes.Equal(in, unsparse(t, filepath.Join(out, name))) {
			t.Errorf("%s unchanged", name)
		}
	}
	if len(rep.Partitions) != 2 || len(dry.Partitions) != 2 {
		t.Fatalf("partitions: %+v / dry run %+v", rep.Partitions, dry.Partitions)
	}
	for i, p := range rep.Partitions {
		if !p.Sparse {
			t.Errorf("%s not reported sparse", p.File)
		}
		if d := dry.Partitions[i]; d.File != p.File || d.SHA256Before != p.SHA256Before {
			t.Errorf("dry run %+v, run %+v", d, p)
		}
	}
	if a := auditDir(t, pol, out); !a.Compliant {
		t.Fatalf("the sparse output fails the audit: %+v", a.Apps)
	}

	// a CRC32 chunk that does not match: refused before anything is written
	raw, _ := os.ReadFile(filepath.Join(fx.fw, "super.img"))
	var crcImg bytes.Buffer
	if err := sparse.Write(&crcImg, bytes.NewReader(raw), int64(len(raw)), 4096, sparse.WriteOptions{CRC: true}); err != nil {
		t.Fatal(err)
	}
	b := crcImg.Bytes()
	b[len(b)-1] ^= 0xff // the value of the trailing CRC32 chunk: every block reads well, the sum does not
	bad := filepath.Join(fx.dir, "bad-fw")
	write(t, filepath.Join(bad, "super.img"), b)
	vb, _ := os.ReadFile(filepath.Join(fx.fw, "vbmeta.img"))
	write(t, filepath.Join(bad, "vbmeta.img"), vb)
	for _, dryRun := range []bool{false, true} {
		parent := t.TempDir()
		_, err := Run(context.Background(), Options{Policy: pol, Input: bad, Out: filepath.Join(parent, "out"), Signer: s, Inspector: inspector{}, DryRun: dryRun})
		if !errors.Is(err, sparse.ErrChecksum) || !strings.Contains(err.Error(), filepath.Join(bad, "super.img")) {
			t.Errorf("dry run %v: %v", dryRun, err)
		}
		onlyFiles(t, parent)
	}
}
