package sim

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
)

func runFastboot(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	fb := testtool.Require(t, "fastboot")[0]
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, fb, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "ANDROID_SERIAL=")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("fastboot %s: timed out", strings.Join(args, " "))
	}
	return string(out), err
}

func fastbootScenario(t *testing.T, faults FaultSpec) *Scenario {
	t.Helper()
	sc, err := ParseScenario([]byte(`
devices:
  - serial: FB%03d
    device: simfb
    mode: bootloader
    partitions:
      - {name: boot, size: 8M}
      - {name: system, size: 96M, type: ext4}
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sc.Devices[0].Faults = faults
	return sc
}

func TestRealFastbootDrivesSimulator(t *testing.T) {
	s := startSim(t, fastbootScenario(t, FaultSpec{}), 1)
	d := s.Devices()[0]
	target := "tcp:" + d.FastbootAddr()

	out, err := runFastboot(t, 30*time.Second, "-s", target, "getvar", "all")
	if err != nil {
		t.Fatalf("getvar all: %v\n%s", err, out)
	}
	for _, want := range []string{"(bootloader) serialno:FB001", "(bootloader) product:simfb", "(bootloader) current-slot:a",
		"(bootloader) partition-size:system_a:0x6000000", "(bootloader) partition-type:system_b:ext4", "(bootloader) max-download-size:0x4000000"} {
		if !strings.Contains(out, want) {
			t.Errorf("getvar all lacks %q:\n%s", want, out)
		}
	}
	if out, err := runFastboot(t, 30*time.Second, "-s", target, "getvar", "product"); err != nil || !strings.Contains(out, "product: simfb") {
		t.Fatalf("getvar product: %v\n%s", err, out)
	}

	// A raw image smaller than max-download-size goes in one download.
	dir := t.TempDir()
	boot := make([]byte, 3<<20+123)
	rand.Read(boot)
	os.WriteFile(filepath.Join(dir, "boot.img"), boot, 0o644)
	if out, err := runFastboot(t, 60*time.Second, "-s", target, "flash", "boot", filepath.Join(dir, "boot.img")); err != nil {
		t.Fatalf("flash boot: %v\n%s", err, out)
	}
	got, err := d.ReadPartition("boot_a")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(boot)], boot) {
		t.Fatal("boot_a does not hold the flashed image")
	}

	// An image above max-download-size: fastboot resparses it and sends several sparse pieces,
	// which the device applies chunk by chunk.
	sys := make([]byte, 90<<20)
	for i := 0; i < len(sys); i += 1 << 20 {
		rand.Read(sys[i : i+800<<10]) // 72 MiB of data between runs of zeros
	}
	os.WriteFile(filepath.Join(dir, "system.img"), sys, 0o644)
	if out, err := runFastboot(t, 120*time.Second, "-s", target, "flash", "system", filepath.Join(dir, "system.img")); err != nil {
		t.Fatalf("flash system: %v\n%s", err, out)
	} else if !strings.Contains(out, "Sending sparse 'system_a' 2/") {
		t.Errorf("fastboot did not split the image into sparse pieces:\n%s", out)
	}
	got, _ = d.ReadPartition("system_a")
	if !bytes.Equal(got[:len(sys)], sys) {
		t.Fatal("system_a does not hold the flashed image")
	}

	if out, err := runFastboot(t, 30*time.Second, "-s", target, "erase", "boot"); err != nil {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	got, _ = d.ReadPartition("boot_a")
	if !bytes.Equal(got, make([]byte, len(got))) {
		t.Fatal("boot_a not erased")
	}
	if out, err := runFastboot(t, 30*time.Second, "-s", target, "set_active", "b"); err != nil || d.CurrentSlot() != "b" {
		t.Fatalf("set_active b: %v slot %q\n%s", err, d.CurrentSlot(), out)
	}
	if out, err := runFastboot(t, 30*time.Second, "-s", target, "flash", "nosuch", filepath.Join(dir, "boot.img")); err == nil {
		t.Fatalf("flash of a missing partition succeeded:\n%s", out)
	}
	if out, err := runFastboot(t, 30*time.Second, "-s", target, "reboot"); err != nil {
		t.Fatalf("reboot: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(5 * time.Second); d.Reboots() == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if d.Reboots() != 1 || d.Mode() != ModeAndroid {
		t.Fatalf("reboots: %d, mode %s", d.Reboots(), d.Mode())
	}
}

func TestFastbootDisconnectMidFlash(t *testing.T) {
	s := startSim(t, fastbootScenario(t, FaultSpec{FastbootDropAfterBytes: "1M", RebootDelay: "100ms"}), 1)
	d := s.Devices()[0]
	dir := t.TempDir()
	img := make([]byte, 4<<20)
	rand.Read(img)
	os.WriteFile(filepath.Join(dir, "boot.img"), img, 0o644)
	out, err := runFastboot(t, 60*time.Second, "-s", "tcp:"+d.FastbootAddr(), "flash", "boot", filepath.Join(dir, "boot.img"))
	if err == nil {
		t.Fatalf("flash survived a dropped link:\n%s", out)
	}
	got, _ := d.ReadPartition("boot_a")
	if !bytes.Equal(got, make([]byte, len(got))) {
		t.Fatal("a half-downloaded image was written to boot_a")
	}
	if len(d.Flashed()) != 0 {
		t.Fatalf("flashed: %v", d.Flashed())
	}
}
