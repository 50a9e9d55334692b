package flash

import (
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/provkit/provkit/provision/fastboot"
	"github.com/provkit/provkit/provision/sim"
)

// BenchmarkRun flashes a 32 MiB system image (over the simulator's 64 MiB max-download-size, so
// in one piece) and a 4 MiB boot image to one simulated phone per iteration, over loopback TCP.
// scripts/bench-flash.sh compares the whole command with Debian's fastboot.
func BenchmarkRun(b *testing.B) {
	sc, err := sim.ParseScenario([]byte(`
devices:
  - serial: BENCH
    unlocked: true
    mode: bootloader
    partitions:
      - {name: boot, size: 8M}
      - {name: system, size: 64M}
`), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: 1, Scenario: sc})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	dir := b.TempDir()
	rng := rand.New(rand.NewSource(1))
	for name, n := range map[string]int{"boot.img": 4 << 20, "system.img": 32 << 20} {
		buf := make([]byte, n)
		rng.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "android-info.txt"), []byte("require version-bootloader=*\n"), 0o644)
	addr := "tcp:" + s.Devices()[0].FastbootAddr()
	dial := func(ctx context.Context) (*fastboot.Client, error) { return fastboot.Dial(ctx, addr) }
	b.SetBytes(36 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fw, err := OpenFirmware(dir, FirmwareOptions{}) // a fresh firmware: the image hash is not cached
		if err != nil {
			b.Fatal(err)
		}
		plan, err := BuildPlan(fw, PlanOptions{SkipReboot: true})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := Run(ctx, dial, plan, RunOptions{}, nil)
		cancel()
		fw.Close()
		if err != nil {
			b.Fatal(err)
		}
		if res.Bytes != 36<<20 {
			b.Fatalf("sent %d bytes", res.Bytes)
		}
	}
}
