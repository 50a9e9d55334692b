package super

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/provkit/provkit/firmware/internal/samplefacts"
	"github.com/provkit/provkit/firmware/sparse"
	"github.com/provkit/provkit/internal/testtool"
)

// TestSparseSuper reads the real lpmake super.img after img2simg made it sparse (as super.img ships
// in factory images and `lpmake --sparse` writes it), through firmware/sparse: nothing is expanded.
func TestSparseSuper(t *testing.T) {
	testtool.Require(t, "img2simg")
	sparsePath := filepath.Join(t.TempDir(), "super.simg")
	if out, err := exec.Command("img2simg", samplefacts.Path("aosp-system-core/super.img"), sparsePath).CombinedOutput(); err != nil {
		t.Fatalf("img2simg: %v\n%s", err, out)
	}
	f, err := os.Open(sparsePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	sp, err := sparse.Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	im, err := Open(sp, sp.Size(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := im.OpenPartition("system_a")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.NewSectionReader(pr, 0, pr.Size()))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(samplefacts.Path("aosp-system-core/system.img"))
	if !bytes.Equal(got, want) {
		t.Fatal("system_a read through the sparse super image differs from system.img")
	}
}
