package testline

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/demoapk"
)

// Options shape the fixture.
type Options struct {
	// Missing makes every Missing-th phone lack the app (0: all compliant).
	Missing int
	// BytesPerSecond slows every link of the phones (0: full speed), e.g. "4M".
	BytesPerSecond string
	// RebootDelay is how long a reboot keeps a phone away (default 300ms).
	RebootDelay string
	// ImageSize is the size of each firmware image (default 256 KiB).
	ImageSize int
}

// Fixture is the generated set-up.
type Fixture struct {
	Dir, Policy, Scenario, Firmware string
	// Images are the firmware's images by partition.
	Images map[string][]byte
}

// New writes the fixture into a fresh temporary directory.
func New(tb testing.TB, o Options) *Fixture {
	tb.Helper()
	dir := tb.TempDir()
	key, err := demoapk.NewKey("Line test release key")
	if err != nil {
		tb.Fatal(err)
	}
	apk, err := demoapk.Build(demoapk.Spec{Package: "ru.oneme.app", VersionCode: 25, VersionName: "25.0", Permissions: []string{"android.permission.POST_NOTIFICATIONS"}}, key)
	if err != nil {
		tb.Fatal(err)
	}
	pol := fmt.Sprintf(`apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: line-test, authority: provkit tests}
apps:
  - package: ru.oneme.app
    signers: [{sha256: "%s"}]
    minVersionCode: 25
    partition: product
    grantPermissions: [android.permission.POST_NOTIFICATIONS]
`, key.CertSHA256())
	delay := o.RebootDelay
	if delay == "" {
		delay = "300ms"
	}
	faults := "{rebootDelay: " + delay
	if o.BytesPerSecond != "" {
		faults += ", bytesPerSecond: " + o.BytesPerSecond
	}
	faults += "}"
	common := `android: 14, model: Line Phone, slotted: false, partitions: [{name: boot, size: 1M}, {name: system, size: 2M}], faults: ` + faults
	app := `packages: [{name: ru.oneme.app, apk: messenger.apk, system: /product/app/Messenger, granted: [android.permission.POST_NOTIFICATIONS]}]`
	var sc strings.Builder
	sc.WriteString("apiVersion: provkit.dev/v1\nkind: SimulatorScenario\ndevices:\n")
	n := o.Missing
	if n <= 0 {
		n = 1
	}
	for i := 0; i < n; i++ {
		if o.Missing > 0 && i == n-1 {
			sc.WriteString(fmt.Sprintf("  - {serial: \"LINE-MISSING-%%03d\", %s}\n", common))
			continue
		}
		sc.WriteString(fmt.Sprintf("  - {serial: \"LINE-OK-%%03d\", %s, %s}\n", common, app))
	}
	f := &Fixture{Dir: dir, Policy: filepath.Join(dir, "policy.yaml"), Scenario: filepath.Join(dir, "scenario.yaml"),
		Firmware: filepath.Join(dir, "firmware"), Images: map[string][]byte{}}
	size := o.ImageSize
	if size <= 0 {
		size = 256 << 10
	}
	if err := os.Mkdir(f.Firmware, 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, part := range []string{"boot", "system"} {
		b := make([]byte, size)
		_, _ = rand.Read(b)
		f.Images[part] = b
		if err := os.WriteFile(filepath.Join(f.Firmware, part+".img"), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	for name, b := range map[string][]byte{"messenger.apk": apk, "policy.yaml": []byte(pol), "scenario.yaml": []byte(sc.String())} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return f
}
