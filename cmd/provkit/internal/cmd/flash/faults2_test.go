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

// TestFlashWrongModeAndTinyDownload: a phone that comes back from "reboot bootloader" in fastbootd,
// and one whose bootloader announces a max-download-size too small for one block of a sparse
// piece, each fail with an error naming the phone and what went wrong; the healthy one is
// flashed; exit 3.
func TestFlashWrongModeAndTinyDownload(t *testing.T) {
	sc, err := sim.ParseScenario([]byte(`
devices:
  - serial: OK2
    unlocked: true
    mode: bootloader
    faults: {rebootDelay: 100ms}
    partitions: [{name: bootloader, size: 1M}, {name: system, size: 8M}]
  - serial: WRONGMODE
    unlocked: true
    mode: bootloader
    faults: {rebootDelay: 100ms, rebootWrongMode: true}
    partitions: [{name: bootloader, size: 1M}, {name: system, size: 8M}]
  - serial: TINY
    unlocked: true
    mode: bootloader
    faults: {rebootDelay: 100ms, fastbootMaxDownloadSize: 4K}
    partitions: [{name: bootloader, size: 1M}, {name: system, size: 8M}]
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: 3, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	system := bytes.Repeat([]byte("12345678"), 1<<17) // 1 MiB
	os.WriteFile(filepath.Join(dir, "android-info.txt"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "bootloader.img"), []byte("BOOTLOADER"), 0o644)
	os.WriteFile(filepath.Join(dir, "system.img"), system, 0o644)
	var addrs []string
	for _, d := range s.Devices() {
		addrs = append(addrs, d.FastbootAddr())
	}
	ios, _, out, errOut := iostreams.Test()
	opts := &Options{IO: ios, Firmware: dir, NoAudit: true, Jobs: 3, JSON: true, SkipReboot: true, TCP: addrs, Timeout: time.Minute}
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
	if !doc.Devices[0].OK {
		t.Errorf("the healthy phone failed: %s", doc.Devices[0].Error)
	}
	if e := doc.Devices[1].Error; doc.Devices[1].OK || !strings.Contains(e, addrs[1]) || !strings.Contains(e, "reboot bootloader") || !strings.Contains(e, "wrong mode") {
		t.Errorf("wrong-mode phone: ok=%v error %q", doc.Devices[1].OK, e)
	}
	if e := doc.Devices[2].Error; doc.Devices[2].OK || !strings.Contains(e, addrs[2]) || !strings.Contains(e, "max-download-size") {
		t.Errorf("tiny-download phone: ok=%v error %q", doc.Devices[2].OK, e)
	}
	got, err := s.Devices()[0].ReadPartition("system")
	if err != nil {
		got, err = s.Devices()[0].ReadPartition("system_a")
	}
	if err != nil || len(got) < len(system) || !bytes.Equal(got[:len(system)], system) {
		t.Error("the healthy phone's system was not written")
	}
	t.Logf("errors:\n%s\n%s", doc.Devices[1].Error, doc.Devices[2].Error)
}
