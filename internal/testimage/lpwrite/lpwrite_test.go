package lpwrite

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// samples holds AOSP's lpmake output (see firmware/testdata/samples/README.md for its source and
// licence).
const samples = "../../../firmware/testdata/samples/aosp-system-core"

// TestReproducesLpmake writes the super image AOSP's fastboot test data was made with
// (make_super_images.sh: lpmake --device-size=auto --metadata-size=4096 --metadata-slots=3
// --alignment=16384 --partition system_a:readonly) and compares it with lpmake's output.
func TestReproducesLpmake(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(samples, "super.img"))
	if err != nil {
		t.Fatal(err)
	}
	sys, err := os.ReadFile(filepath.Join(samples, "system.img"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Write(Spec{DeviceSize: uint64(len(want)), MetadataMaxSize: 4096, Slots: 3, Alignment: 16384,
		Partitions: []Partition{{Name: "system_a", Attributes: 1, Data: sys}}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("differs from lpmake's super.img first at byte %d: %#x, want %#x", i, got[i], want[i])
			}
		}
	}
}
