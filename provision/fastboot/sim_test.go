package fastboot_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/provision/fastboot"
	"github.com/provkit/provkit/provision/sim"
)

func startSim(t *testing.T, doc string) *sim.Device {
	t.Helper()
	sc, err := sim.ParseScenario([]byte(doc), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: 1, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Devices()[0]
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mixed(n int) []byte {
	r := rand.New(rand.NewPCG(5, 6))
	b := make([]byte, n)
	for blk := 0; blk+4096 <= n; blk += 4096 {
		if (blk/4096)%3 == 0 {
			continue // zero blocks: don't-care after img2simg
		}
		for i := blk; i < blk+4096; i++ {
			b[i] = byte(r.Uint32())
		}
	}
	return b
}

const unlockedAB = `
devices:
  - serial: FB1
    android: 14
    slotted: true
    unlocked: true
    mode: bootloader
    partitions:
      - {name: boot, size: 8M}
      - {name: system, size: 32M}
`

func TestFlashSimulator(t *testing.T) {
	tools := testtool.Require(t, "img2simg")
	d := startSim(t, unlockedAB)
	ctx := ctxT(t, 120*time.Second)
	c, err := fastboot.Dial(ctx, "tcp:"+d.FastbootAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.GetVar(ctx, "serialno"); err != nil || v != "FB1" {
		t.Fatalf("serialno: %q %v", v, err)
	}
	if n, err := c.MaxDownloadSize(ctx); err != nil || n <= 0 {
		t.Fatalf("max-download-size: %d %v", n, err)
	}
	if all, err := c.GetVarAll(ctx); err != nil || len(all) < 5 {
		t.Fatalf("getvar all: %q %v", all, err)
	}
	if _, err := c.GetVar(ctx, "no-such-variable"); err == nil {
		t.Fatal("an unknown variable was answered")
	}

	boot := mixed(1 << 20)
	if err := c.Flash(ctx, "boot_a", bytes.NewReader(boot), int64(len(boot)), fastboot.FlashOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := d.ReadPartition("boot_a")
	if err != nil || !bytes.Equal(got[:len(boot)], boot) {
		t.Fatalf("boot_a after flash: %v", err)
	}

	// A sparse system image sent in pieces of at most 1 MiB: the simulator applies each one.
	dir := t.TempDir()
	raw := mixed(12 << 20)
	os.WriteFile(filepath.Join(dir, "system.img"), raw, 0o644)
	if out, err := exec.Command(tools[0], filepath.Join(dir, "system.img"), filepath.Join(dir, "system.simg")).CombinedOutput(); err != nil {
		t.Fatalf("img2simg: %v %s", err, out)
	}
	simg, _ := os.ReadFile(filepath.Join(dir, "system.simg"))
	pieces := 0
	err = c.Flash(ctx, "system", bytes.NewReader(simg), int64(len(simg)), fastboot.FlashOptions{MaxDownload: 1 << 20, OnPiece: func(i, n int, size int64) {
		pieces = n
		if size > 1<<20 {
			t.Errorf("piece %d is %d bytes", i, size)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if pieces < 5 {
		t.Fatalf("a %d-byte sparse image went in %d pieces under a 1 MiB limit", len(simg), pieces)
	}
	got, err = d.ReadPartition("system_a")
	if err != nil || !bytes.Equal(got[:len(raw)], raw) {
		t.Fatalf("system_a after a split sparse flash differs from the image (%v)", err)
	}
	if err := c.Erase(ctx, "boot_a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.ReadPartition("boot_a"); !bytes.Equal(got[:len(boot)], make([]byte, len(boot))) {
		t.Fatal("boot_a not erased")
	}
	if err := c.SetActive(ctx, "b"); err != nil || d.CurrentSlot() != "b" {
		t.Fatalf("set_active b: %v, slot %q", err, d.CurrentSlot())
	}
	var fe *fastboot.FailError
	if err := c.SetActive(ctx, "c"); !errors.As(err, &fe) {
		t.Fatalf("set_active c: %v", err)
	}
	if err := c.Reboot(ctx, fastboot.RebootBootloader); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.Reboots() != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if d.Reboots() != 1 || d.Mode() != sim.ModeBootloader {
		t.Fatalf("the simulator counted %d reboots, mode %s", d.Reboots(), d.Mode())
	}
}

func TestFlashSimulatorFaults(t *testing.T) {
	img := mixed(2 << 20)
	t.Run("locked", func(t *testing.T) {
		d := startSim(t, "devices: [{serial: FBL, android: 14, mode: bootloader, unlocked: false, partitions: [{name: boot, size: 8M}]}]\n")
		c, err := fastboot.Dial(ctxT(t, 10*time.Second), d.FastbootAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.Flash(ctxT(t, 30*time.Second), "boot", bytes.NewReader(img), int64(len(img)), fastboot.FlashOptions{})
		var fe *fastboot.FailError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "Lock State") || !strings.Contains(err.Error(), d.FastbootAddr()) {
			t.Fatalf("Flash on a locked device: %v", err)
		}
	})
	t.Run("flash fails", func(t *testing.T) {
		d := startSim(t, "devices: [{serial: FBF, android: 14, mode: bootloader, unlocked: true, partitions: [{name: boot, size: 8M}], faults: {fastbootFailFlash: boot}}]\n")
		c, err := fastboot.Dial(ctxT(t, 10*time.Second), d.FastbootAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.Flash(ctxT(t, 30*time.Second), "boot", bytes.NewReader(img), int64(len(img)), fastboot.FlashOptions{})
		var fe *fastboot.FailError
		if !errors.As(err, &fe) || fe.Message != "flash write failure" {
			t.Fatalf("Flash: %v", err)
		}
		// A FAIL leaves the session usable.
		if _, err := c.GetVar(ctxT(t, 10*time.Second), "product"); err != nil {
			t.Fatalf("getvar after a FAIL: %v", err)
		}
	})
	t.Run("link dropped mid-download", func(t *testing.T) {
		d := startSim(t, "devices: [{serial: FBD, android: 14, mode: bootloader, unlocked: true, partitions: [{name: boot, size: 8M}], faults: {fastbootDropAfterBytes: 500K}}]\n")
		c, err := fastboot.Dial(ctxT(t, 10*time.Second), d.FastbootAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.ChunkSize = 64 << 10
		done := make(chan error, 1)
		go func() {
			done <- c.Flash(ctxT(t, 30*time.Second), "boot", bytes.NewReader(img), int64(len(img)), fastboot.FlashOptions{})
		}()
		select {
		case err := <-done:
			if !errors.Is(err, fastboot.ErrClosed) || !strings.Contains(err.Error(), d.FastbootAddr()) {
				t.Fatalf("Flash over a dropped link: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Flash hung after the link dropped")
		}
	})
}
