package flash

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/provision/sim"
)

const twoPhones = `
devices:
  - serial: GOOD
    android: 14
    slotted: true
    unlocked: true
    mode: bootloader
    partitions:
      - {name: boot, size: 4M}
      - {name: system, size: 8M}
`

// TestFlashManyDevicesOneFails flashes two simulated phones and one address where nothing
// listens: the two are flashed, the third is reported, exit 3.
func TestFlashManyDevicesOneFails(t *testing.T) {
	sc, err := sim.ParseScenario([]byte(twoPhones), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: 2, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	system := bytes.Repeat([]byte("system!!"), 1<<18)
	os.WriteFile(filepath.Join(dir, "android-info.txt"), []byte("require version-bootloader=*\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "boot.img"), []byte("BOOT"), 0o644)
	os.WriteFile(filepath.Join(dir, "system.img"), system, 0o644)

	ios, _, out, errOut := iostreams.Test()
	devs := s.Devices()
	opts := &Options{IO: ios, Firmware: dir, NoAudit: true, Jobs: 2, JSON: true, SkipReboot: true,
		TCP: []string{devs[0].FastbootAddr(), devs[1].FastbootAddr(), "127.0.0.1:1"}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = flashRun(ctx, opts)
	if cmdutil.ExitCode(err) != cmdutil.ExitDevicesFailed {
		t.Fatalf("exit %d (%v), want 3; stderr:\n%s", cmdutil.ExitCode(err), err, errOut)
	}
	var doc Document
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	if len(doc.Devices) != 3 || !doc.Devices[0].OK || !doc.Devices[1].OK || doc.Devices[2].OK ||
		!strings.Contains(doc.Devices[2].Error, "127.0.0.1:1") {
		t.Fatalf("devices: %+v", doc.Devices)
	}
	for _, d := range devs {
		got, err := d.ReadPartition("system_a")
		if err != nil || !bytes.Equal(got[:len(system)], system) {
			t.Errorf("%s: system_a not flashed (%v)", d.Serial(), err)
		}
	}
	if doc.Devices[0].Result.Bytes != int64(len(system)+4) {
		t.Errorf("bytes %d", doc.Devices[0].Result.Bytes)
	}

	// --dry-run prints the plan and writes nothing.
	ios, _, out, _ = iostreams.Test()
	opts = &Options{IO: ios, Firmware: dir, NoAudit: true, Jobs: 1, DryRun: true, TCP: []string{devs[0].FastbootAddr()}}
	if err := devs[0].Reboots(); err != 0 {
		t.Fatalf("reboots %d", err)
	}
	if err := flashRun(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "fastboot flash system_a ") || !strings.Contains(out.String(), "fastboot reboot") {
		t.Errorf("dry run output:\n%s", out)
	}
	if devs[0].Reboots() != 0 {
		t.Error("dry run rebooted the device")
	}
}
