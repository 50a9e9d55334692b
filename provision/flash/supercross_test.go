package flash

import (
	"archive/zip"
	"bytes"
	"context"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provkit/provkit/firmware/super"
	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/provision/fastboot"
	"github.com/provkit/provkit/provision/sim"
)

const superSims = `
devices:
  - serial: SUPER
    slotted: true
    unlocked: true
    mode: bootloader
    faults: {rebootDelay: 150ms}
    partitions:
      - {name: boot, size: 4M}
      - {name: vbmeta, size: 64K}
      - {name: super, size: 48M}
      - {name: system, size: 8M, logical: true, type: ext4}
      - {name: vendor, size: 4M, logical: true, type: ext4}
`

const superSize = 48 << 20

// superEmpty builds the super_empty.img an AOSP build of an A/B device would ship for a super of
// superSize bytes: groups main_a and main_b of 20 MiB, partitions of both slots without extents.
func superEmpty(t testing.TB, names ...string) []byte {
	geo := super.Geometry{MetadataMaxSize: 65536, MetadataSlotCount: 3, LogicalBlockSize: 4096}
	first := (super.MetadataEnd(geo) + 1<<20 - 1) / (1 << 20) * (1 << 20)
	md := &super.Metadata{
		Header: super.Header{Major: 10, Minor: 0},
		Groups: []super.Group{{Name: "default"}, {Name: "main_a", MaximumSize: 20 << 20}, {Name: "main_b", MaximumSize: 20 << 20}},
		BlockDevices: []super.BlockDevice{{Name: "super", FirstLogicalSector: uint64(first / 512), Alignment: 1 << 20,
			Size: superSize}},
	}
	for _, slot := range []string{"a", "b"} {
		for _, n := range names {
			if err := md.AddPartition(n+"_"+slot, "main_"+slot, super.AttrReadonly); err != nil {
				t.Fatal(err)
			}
		}
	}
	return super.EncodeEmpty(geo, md)
}

// superFirmware writes a factory directory with logical system and vendor images.
func superFirmware(t testing.TB, dir, product string) map[string][]byte {
	rng := rand.New(rand.NewSource(7))
	rnd := func(n int) []byte { b := make([]byte, n); rng.Read(b); return b }
	files := map[string][]byte{
		"android-info.txt": []byte("require board=" + product + "\n"),
		"boot.img":         rnd(3 << 20),
		"vbmeta.img":       rnd(4096),
		"system.img":       rnd(5<<20 + 12345),
		"vendor.img":       rnd(2 << 20),
		"super_empty.img":  superEmpty(t, "system", "vendor"),
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), c, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// TestCrossCheckSuperWithFastboot flashes the same firmware, with dynamic partitions, into three
// simulated phones: with Debian's "fastboot flashall" from a directory, with "fastboot update" from
// an image zip, and with Run. Every partition, super (its LP metadata and the logical partitions'
// bytes inside it) included, must end up byte-identical.
func TestCrossCheckSuperWithFastboot(t *testing.T) {
	fb := testtool.Require(t, "fastboot")[0]
	sc, err := sim.ParseScenario([]byte(superSims), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var log []string
	s, err := sim.Start(context.Background(), sim.Options{Devices: 3, Scenario: sc, Log: func(l string) {
		logMu.Lock()
		log = append(log, l)
		logMu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	devs := s.Devices()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := fastboot.Dial(ctx, "tcp:"+devs[0].FastbootAddr())
	if err != nil {
		t.Fatal(err)
	}
	product, err := c.GetVar(ctx, "product")
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := superFirmware(t, dir, product)

	// 1. fastboot flashall from the directory.
	cmd := exec.CommandContext(ctx, fb, "-s", "tcp:"+devs[0].FastbootAddr(), "--skip-reboot", "flashall")
	cmd.Env = append(os.Environ(), "ANDROID_PRODUCT_OUT="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fastboot flashall: %v\n%s\n%s", err, out, strings.Join(log, "\n"))
	}
	// 2. fastboot update from an image zip.
	zpath := filepath.Join(t.TempDir(), "image-sim.zip")
	zf, _ := os.Create(zpath)
	zw := zip.NewWriter(zf)
	for _, n := range []string{"android-info.txt", "boot.img", "vbmeta.img", "system.img", "vendor.img", "super_empty.img"} {
		w, _ := zw.Create(n)
		w.Write(files[n])
	}
	zw.Close()
	zf.Close()
	cmd = exec.CommandContext(ctx, fb, "-s", "tcp:"+devs[2].FastbootAddr(), "--skip-reboot", "update", zpath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fastboot update: %v\n%s\n%s", err, out, strings.Join(log, "\n"))
	}
	// 3. provkit.
	fw, err := OpenFirmware(dir, FirmwareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := BuildPlan(fw, PlanOptions{SlotCount: 2, CurrentSlot: "a", SkipReboot: true})
	if err != nil {
		t.Fatal(err)
	}
	dial := func(ctx context.Context) (*fastboot.Client, error) {
		return fastboot.Dial(ctx, "tcp:"+devs[1].FastbootAddr())
	}
	if _, err := Run(ctx, dial, plan, RunOptions{}, nil); err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(log, "\n"))
	}
	if t.Failed() || testing.Verbose() {
		t.Log(strings.Join(log, "\n"))
	}
	dumps := make([]string, 3)
	for i, d := range devs {
		dumps[i] = t.TempDir()
		if _, err := d.DumpPartitions(dumps[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"boot_a", "boot_b", "vbmeta_a", "vbmeta_b", "super", "system_a", "vendor_a", "system_b", "vendor_b"} {
		var got [3][]byte
		for i := range devs {
			got[i], _ = os.ReadFile(filepath.Join(dumps[i], p+".img"))
		}
		if got[0] == nil || !bytes.Equal(got[0], got[1]) || !bytes.Equal(got[0], got[2]) {
			t.Errorf("%s differs: flashall %d bytes, provkit %d bytes, update %d bytes", p, len(got[0]), len(got[1]), len(got[2]))
		}
	}
	// The cross-check compares something: the images are where they belong.
	sys, _ := os.ReadFile(filepath.Join(dumps[1], "system_a.img"))
	if len(sys) < len(files["system.img"]) || !bytes.Equal(sys[:len(files["system.img"])], files["system.img"]) {
		t.Errorf("system_a (%d bytes) does not hold system.img", len(sys))
	}
	md := devs[1].SuperMetadata()
	if md == nil || md.Find("system_a") < 0 || md.Partitions[md.Find("system_a")].Group != "main_a" {
		t.Fatalf("super metadata after the flash: %+v", md)
	}
}
