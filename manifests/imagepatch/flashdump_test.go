package imagepatch

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/provkit/provkit/manifests/policy"
	"github.com/provkit/provkit/provision/fastboot"
	"github.com/provkit/provkit/provision/flash"
	"github.com/provkit/provkit/provision/sim"
)

// TestPatchedFirmwareFlashedAuditsFromThePhone closes the loop of a factory line: the patched
// firmware is flashed (provision/flash, as "provkit flash" does) into a simulated phone, the
// phone's partitions are dumped, and the dump passes the audit the input failed, with the same
// bytes as the files that were flashed.
func TestPatchedFirmwareFlashedAuditsFromThePhone(t *testing.T) {
	fx := newFirmware(t, false, 0)
	pol, err := policy.Load(fx.policyPath)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(fx.dir, "out")
	if _, err := Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: out, Signer: signer(t, fx.ref, "testkey_rsa2048.pem"), Inspector: inspector{}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "android-info.txt"), []byte("require version-bootloader=*\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for _, n := range []string{"product", "vbmeta"} {
		st, err := os.Stat(filepath.Join(out, n+".img"))
		if err != nil {
			t.Fatal(err)
		}
		sizes[n] = st.Size()
	}
	sc, err := sim.ParseScenario([]byte(`
devices:
  - serial: PATCHED
    slotted: false
    unlocked: true
    mode: bootloader
    partitions:
      - {name: product, size: `+itoa(sizes["product"])+`, type: erofs}
      - {name: vbmeta, size: `+itoa(sizes["vbmeta"])+`}
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: 1, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := s.Devices()[0]
	fw, err := flash.OpenFirmware(out, flash.FirmwareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	plan, err := flash.BuildPlan(fw, flash.PlanOptions{SkipReboot: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dial := func(ctx context.Context) (*fastboot.Client, error) {
		return fastboot.Dial(ctx, "tcp:"+d.FastbootAddr())
	}
	if _, err := flash.Run(ctx, dial, plan, flash.RunOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	dump := t.TempDir()
	if _, err := d.DumpPartitions(dump); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"product", "vbmeta"} {
		a, _ := os.ReadFile(filepath.Join(out, n+".img"))
		b, _ := os.ReadFile(filepath.Join(dump, n+".img"))
		if !bytes.Equal(a, b) {
			t.Fatalf("%s on the phone (%d bytes) differs from the patched image (%d bytes)", n, len(b), len(a))
		}
	}
	if rep := auditDir(t, pol, fx.fw); rep.Compliant {
		t.Fatal("the input already passes: the test proves nothing")
	}
	if rep := auditDir(t, pol, dump); !rep.Compliant {
		t.Fatalf("the phone's partitions fail the audit: %+v", rep.Apps)
	}
}

func itoa(n int64) string {
	return strconv.FormatInt(n, 10)
}
