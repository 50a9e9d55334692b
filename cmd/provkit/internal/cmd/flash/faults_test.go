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

const faultyPhones = `
devices:
  - serial: OK1
    slotted: true
    unlocked: true
    mode: bootloader
    partitions: [{name: boot, size: 4M}, {name: system, size: 8M}]
  - serial: DROP
    slotted: true
    unlocked: true
    mode: bootloader
    partitions: [{name: boot, size: 4M}, {name: system, size: 8M}]
    faults: {fastbootDropAfterBytes: 1M}
  - serial: FAILS
    slotted: true
    unlocked: true
    mode: bootloader
    partitions: [{name: boot, size: 4M}, {name: system, size: 8M}]
    faults: {fastbootFailFlash: system}
`

// TestFlashFaultsOthersFinish: a phone that vanishes mid-download and one that answers FAIL are
// reported with the device and partition; the healthy phone is flashed; exit 3.
func TestFlashFaultsOthersFinish(t *testing.T) {
	sc, err := sim.ParseScenario([]byte(faultyPhones), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: 3, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	system := bytes.Repeat([]byte("abcdefgh"), 3<<18) // 6 MiB
	os.WriteFile(filepath.Join(dir, "android-info.txt"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "system.img"), system, 0o644)
	var addrs []string
	bySerial := map[string]int{}
	for i, d := range s.Devices() {
		addrs = append(addrs, d.FastbootAddr())
		bySerial[d.Serial()] = i
	}
	ios, _, out, errOut := iostreams.Test()
	opts := &Options{IO: ios, Firmware: dir, NoAudit: true, Jobs: 3, JSON: true, SkipReboot: true, TCP: addrs}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = flashRun(ctx, opts)
	if cmdutil.ExitCode(err) != cmdutil.ExitDevicesFailed {
		t.Fatalf("exit %d (%v); stderr:\n%s", cmdutil.ExitCode(err), err, errOut)
	}
	var doc Document
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	ok, drop, fails := doc.Devices[bySerial["OK1"]], doc.Devices[bySerial["DROP"]], doc.Devices[bySerial["FAILS"]]
	if !ok.OK {
		t.Errorf("healthy phone not flashed: %+v", ok)
	}
	for _, d := range []DeviceResult{drop, fails} {
		if d.OK || !strings.Contains(d.Error, d.Device) || !strings.Contains(d.Error, "system_a") || !strings.Contains(d.Error, "at byte ") {
			t.Errorf("fault not reported with device and partition: %+v", d)
		}
	}
	if got, _ := s.Devices()[bySerial["OK1"]].ReadPartition("system_a"); !bytes.Equal(got[:len(system)], system) {
		t.Error("healthy phone's system_a differs")
	}
}
