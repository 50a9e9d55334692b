package image

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"testing"
)

// FuzzOpen: any bytes given as an input file either fail to open with an error or open into
// partitions whose sizes are not negative, whose file systems can be walked (bounded) and read,
// and whose AVB data can be verified, all without panicking.
func FuzzOpen(f *testing.F) {
	for _, s := range []string{
		"aosp-system-core/super.img", "aosp-system-core/super_empty.img", "aosp-update-engine/full_payload.bin",
		"aosp-gbl/android/vbmeta_v2_a.img", "aosp-gbl/android/boot_v2_a.img", "aosp-gbl/android/dtb_a.img",
		"aosp-build/tuna_vbmeta.zip", "aosp-gbl/sparse_test.bin",
	} {
		if b, err := os.ReadFile(samplePath(s)); err == nil {
			f.Add(b)
		}
	}
	if b, err := os.ReadFile(samplePath("aosp-external-avb-change-969943/empty_images/system.img")); err == nil {
		f.Add(b) // ext4 with an AVB hash footer
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
				if err != nil || n > 200 {
					return fs.SkipAll
				}
				n++
				if d.Type().IsRegular() {
					if f, err := fsys.Open(path); err == nil {
						io.Copy(io.Discard, io.LimitReader(f, 1<<20))
						f.Close()
					}
				}
				return nil
			})
		}
		if _, err := im.VerifyAVB(ctx, AVBOptions{}); err != nil {
			t.Fatalf("VerifyAVB: %v", err)
		}
		_, _ = im.Build()
	})
}
