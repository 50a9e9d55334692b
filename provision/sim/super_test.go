package sim

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/firmware/super"
)

// TestSuperModelWithRealFastboot drives the simulated super partition with Debian's fastboot:
// logical partitions are created, resized, flashed, listed and deleted in fastbootd, their bytes
// land inside super at their extents, and a raw super image flashed from the bootloader replaces
// the table.
func TestSuperModelWithRealFastboot(t *testing.T) {
	s := startSim(t, scenario(t, `
devices:
  - serial: LP1
    unlocked: true
    mode: fastbootd
    partitions:
      - {name: super, size: 24M}
      - {name: system, size: 4M, logical: true, type: ext4}
    faults: {rebootDelay: 100ms}
`), 1)
	d := s.Devices()[0]
	fb := "tcp:" + d.FastbootAddr()
	must := func(args ...string) string {
		t.Helper()
		out, err := runFastboot(t, 30*time.Second, append([]string{"-s", fb}, args...)...)
		if err != nil {
			t.Fatalf("fastboot %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	out := must("getvar", "all")
	for _, w := range []string{"partition-size:system_a:0x400000", "is-logical:system_b:yes", "partition-type:system_a:ext4", "has-slot:super:no", "partition-size:super:0x1800000", "super-partition-name:super"} {
		if !strings.Contains(out, w) {
			t.Errorf("getvar all lacks %q:\n%s", w, out)
		}
	}
	must("create-logical-partition", "product", "1000000")
	if out := must("getvar", "partition-size:product"); !strings.Contains(out, "0xf5000") { // rounded up to 4 KiB blocks
		t.Errorf("product size: %s", out)
	}
	dir := t.TempDir()
	img := bytes.Repeat([]byte("PRODUCT!"), 150000) // 1.2 MB: fastboot resizes product first
	os.WriteFile(filepath.Join(dir, "product.img"), img, 0o644)
	must("flash", "product", filepath.Join(dir, "product.img"))
	got, err := d.ReadPartition("product")
	if err != nil || !bytes.Equal(got[:len(img)], img) {
		t.Fatalf("product does not hold its image (%v)", err)
	}
	// The bytes are inside super, where the metadata says.
	md := d.SuperMetadata()
	p := md.Partitions[md.Find("product")]
	raw, _ := d.ReadPartition("super")
	var logical int64
	for _, e := range p.Extents {
		off, n := int64(e.TargetData)*super.SectorSize, min(int64(e.NumSectors)*super.SectorSize, int64(len(img))-logical)
		if n > 0 && !bytes.Equal(raw[off:off+n], img[logical:logical+n]) {
			t.Fatalf("product's bytes %d..%d are not at super offset %d", logical, logical+n, off)
		}
		logical += int64(e.NumSectors) * super.SectorSize
	}
	if len(p.Extents) != 2 {
		t.Errorf("product grew from 1000000 to 1200000 bytes in %d extents, want 2 (its first one is followed by system's)", len(p.Extents))
	}
	if _, m, err := super.Parse(raw); err != nil || m.Find("product") < 0 {
		t.Fatalf("super read back by firmware/super: %v", err)
	}
	if out, err := runFastboot(t, 30*time.Second, "-s", fb, "resize-logical-partition", "product", "99999999999"); err == nil || !strings.Contains(out, "Not enough space") {
		t.Fatalf("resizing past super: %v\n%s", err, out)
	}
	must("delete-logical-partition", "product")
	if out, _ := runFastboot(t, 30*time.Second, "-s", fb, "getvar", "all"); strings.Contains(out, "partition-size:product") {
		t.Fatalf("product still listed after delete:\n%s", out)
	}

	// A whole super image flashed from the bootloader replaces the table.
	dump := t.TempDir()
	if _, err := d.DumpPartitions(dump); err != nil {
		t.Fatal(err)
	}
	g, md2, _ := super.Parse(raw)
	md2.RemovePartition("product")
	md2.AddPartition("odm", "default", 0)
	if err := md2.Resize(g, "odm", 1<<20); err != nil {
		t.Fatal(err)
	}
	w := &memFile{b: append([]byte(nil), raw...)}
	if err := super.Format(w, g, md2); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "super.img"), w.b, 0o644)
	must("reboot", "bootloader")
	for i := 0; i < 100 && !(d.Mode() == ModeBootloader && d.Up()); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	must("flash", "super", filepath.Join(dir, "super.img"))
	must("reboot", "fastboot")
	if out := must("getvar", "all"); !strings.Contains(out, "partition-size:odm:0x100000") {
		t.Fatalf("after flashing super.img, getvar all lacks odm:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dump, "system_a.img")); err != nil {
		t.Fatalf("dump lacks the logical partition system: %v", err)
	}
}

type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }
