package image

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"testing"

	"github.com/provkit/provkit/internal/testimage/lpwrite"
)

// FuzzOpen: any bytes given as an input file either fail to open with an error or open into
// partitions whose sizes are not negative, whose file systems can be walked and read, and whose
// AVB data can be verified, all without panicking. The work per input is bounded (a mutated
// header may declare terabytes of zeros, which are valid but slow to read under coverage
// instrumentation): 100 entries, 64 KiB per file, AVB only when every partition is under 8 MiB.
func FuzzOpen(f *testing.F) {
	for _, s := range []string{
		// Small seeds: the fuzzer minimizes every new interesting input (up to -fuzzminimizetime,
		// 60 s by default), which for big inputs is most of a short run; run it with
		// -fuzzminimizetime=2s. The formats inside are fuzzed in their own packages; this fuzzes
		// how they are detected and stacked.
		"aosp-system-core/super_empty.img", "aosp-update-engine/full_payload.bin",
		"aosp-gbl/android/vbmeta_v2_a.img", "aosp-gbl/android/boot_v2_a.img", "aosp-gbl/android/dtb_a.img",
		"aosp-build/tuna_vbmeta.zip", "aosp-gbl/sparse_test.bin",
	} {
		if b, err := os.ReadFile(samplePath(s)); err == nil {
			f.Add(b)
		}
	}
	// A small super image with one logical partition holding a vbmeta image.
	if vb, err := os.ReadFile(samplePath("aosp-gbl/android/vbmeta_v2_a.img")); err == nil {
		if b, err := lpwrite.Write(lpwrite.Spec{DeviceSize: 40960, MetadataMaxSize: 4096, Slots: 2, Alignment: 4096,
			Partitions: []lpwrite.Partition{{Name: "vbmeta_a", Data: vb}, {Name: "vbmeta_b"}}}); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		im := &Image{ctx: ctx}
		if err := im.openReader("fuzz.img", bytes.NewReader(data), int64(len(data))); err != nil {
			return
		}
		im.selectSlot()
		im.noteDuplicates()
		for _, p := range im.Partitions {
			if p.Size < 0 {
				t.Fatalf("negative size %+v", p)
			}
			fsys, err := p.FS()
			if err != nil {
				continue
			}
			n := 0
			fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
				if err != nil || n > 100 {
					return fs.SkipAll
				}
				n++
				if d.Type().IsRegular() {
					if f, err := fsys.Open(path); err == nil {
						io.Copy(io.Discard, io.LimitReader(f, 64<<10))
						f.Close()
					}
				}
				return nil
			})
		}
		small := true
		for _, p := range im.Partitions {
			small = small && p.Size < 8<<20
		}
		if small {
			if _, err := im.VerifyAVB(ctx, AVBOptions{}); err != nil {
				t.Fatalf("VerifyAVB: %v", err)
			}
		}
		_, _ = im.Build()
	})
}
