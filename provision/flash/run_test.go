package flash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/provision/fastboot"
	"github.com/provkit/provkit/provision/sim"
)

const simAB = `
devices:
  - serial: FL1
    android: 14
    slotted: true
    unlocked: true
    mode: bootloader
    partitions:
      - {name: bootloader, size: 1M}
      - {name: boot, size: 4M}
      - {name: vbmeta, size: 64K}
      - {name: system, size: 8M}
`

// TestRunOnSimulator runs a whole plan (flash, reboot into the bootloader and back, flash across
// several sparse pieces, set_active) on a simulated phone and checks the bytes that landed.
func TestRunOnSimulator(t *testing.T) {
	sc, err := sim.ParseScenario([]byte(simAB), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: 1, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := s.Devices()[0]

	dir := t.TempDir()
	system := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16)
	files := map[string][]byte{
		"android-info.txt":       []byte("require board=" + "sim\n"),
		"bootloader-sim-1.0.img": []byte("BOOTLOADER"),
		"boot.img":               bytes.Repeat([]byte{7}, 100000),
		"vbmeta.img":             []byte("VBMETA"),
		"system.img":             system,
	}
	for n, c := range files {
		os.WriteFile(filepath.Join(dir, n), c, 0o644)
	}
	fw, err := OpenFirmware(dir, FirmwareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := BuildPlan(fw, PlanOptions{Slot: "b", SlotCount: 2, CurrentSlot: "a", SetActive: true, SkipReboot: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dial := func(ctx context.Context) (*fastboot.Client, error) {
		return fastboot.Dial(ctx, "tcp:"+d.FastbootAddr())
	}
	var events int
	res, err := Run(ctx, dial, plan, RunOptions{MaxDownload: 1 << 20}, func(Event) { events++ })
	if err != nil {
		t.Fatalf("run: %v (%+v)", err, res)
	}
	for part, want := range map[string][]byte{"bootloader_b": files["bootloader-sim-1.0.img"], "boot_b": files["boot.img"], "vbmeta_b": files["vbmeta.img"], "system_b": system} {
		got, err := d.ReadPartition(part)
		if err != nil || !bytes.Equal(got[:len(want)], want) {
			t.Errorf("%s: flashed bytes differ (%v)", part, err)
		}
	}
	if got, _ := d.ReadPartition("system_a"); bytes.Contains(got[:64], []byte("0123")) {
		t.Error("slot a written though slot b was asked")
	}
	if d.CurrentSlot() != "b" || d.Reboots() != 1 {
		t.Errorf("slot %q reboots %d", d.CurrentSlot(), d.Reboots())
	}
	sum := sha256.Sum256(system)
	var found bool
	for _, st := range res.Steps {
		if st.Partition == "system_b" {
			found = st.SHA256 == hex.EncodeToString(sum[:]) && st.Bytes == int64(len(system))
		}
	}
	if !found || events < len(plan.Steps) {
		t.Errorf("evidence: %+v, %d events", res.Steps, events)
	}

	// A failing step names the step and stops the run.
	bad := &Plan{Steps: []Step{{Kind: StepFlash, Partition: "nonexistent", Image: &fw.Images[0]}}}
	if _, err := Run(ctx, dial, bad, RunOptions{}, nil); err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("flash to a missing partition: %v", err)
	}
}
