package flash

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/provision/fastboot"
	"github.com/provkit/provkit/provision/sim"
)

const twoSims = `
devices:
  - serial: CROSS
    slotted: true
    unlocked: true
    mode: bootloader
    faults: {rebootDelay: 200ms}
    partitions:
      - {name: boot, size: 4M}
      - {name: vbmeta, size: 64K}
      - {name: system, size: 8M}
`

// TestCrossCheckFastbootFlashall flashes the same directory with Debian's "fastboot flashall"
// into one simulated phone and with Run into another: every partition must end up identical.
// (Dynamic partitions: see TestCrossCheckSuperWithFastboot.)
func TestCrossCheckFastbootFlashall(t *testing.T) {
	fb := testtool.Require(t, "fastboot")[0]
	sc, err := sim.ParseScenario([]byte(twoSims), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: 2, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	files := map[string][]byte{
		"android-info.txt": []byte("require board=" + "x*\n"),
		"boot.img":         bytes.Repeat([]byte{1, 2, 3, 4}, 300000),
		"vbmeta.img":       bytes.Repeat([]byte("V"), 4096),
		"system.img":       bytes.Repeat([]byte("system.."), 5<<17),
	}
	for n, c := range files {
		os.WriteFile(filepath.Join(dir, n), c, 0o644)
	}
	devs := s.Devices()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	product, err := func() (string, error) {
		c, err := fastboot.Dial(ctx, "tcp:"+devs[0].FastbootAddr())
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.GetVar(ctx, "product")
	}()
	if err != nil {
		t.Fatal(err)
	}
	files["android-info.txt"] = []byte("require board=" + product + "\n")
	os.WriteFile(filepath.Join(dir, "android-info.txt"), files["android-info.txt"], 0o644)

	cmd := exec.CommandContext(ctx, fb, "-s", "tcp:"+devs[0].FastbootAddr(), "--skip-reboot", "flashall")
	cmd.Env = append(os.Environ(), "ANDROID_PRODUCT_OUT="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fastboot flashall: %v\n%s", err, out)
	}
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
		t.Fatal(err)
	}
	for _, p := range []string{"boot_a", "boot_b", "vbmeta_a", "vbmeta_b", "system_a", "system_b"} {
		a, errA := devs[0].ReadPartition(p)
		b, errB := devs[1].ReadPartition(p)
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between fastboot flashall and Run (%v %v)", p, errA, errB)
		}
	}
	if a, _ := devs[0].ReadPartition("system_a"); !bytes.Equal(a[:len(files["system.img"])], files["system.img"]) {
		t.Error("fastboot flashall did not write system_a: the cross-check compares nothing")
	}
}
