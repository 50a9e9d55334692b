package sim

import (
	"fmt"
	"sort"
	"strings"
)

// BuiltinAPKs are the APK bytes the built-in scenarios install. Genuine is the mandated app as
// released; Update a newer genuine build (optional: Genuine with a higher versionCode is used when
// empty); WrongSigner the same package signed by someone else.
type BuiltinAPKs struct {
	Package     string // default ru.oneme.app
	Genuine     []byte
	Update      []byte
	WrongSigner []byte
	// SystemDir is the code path of the system copy (default /product/app/<Name>).
	SystemDir string
}

// builtinKinds are the named device kinds, in the order "mixed" cycles through them.
var builtinKinds = []string{"compliant", "missing", "updated", "disabled", "wrong-signer", "unauthorized"}

// BuiltinNames lists the built-in scenario names.
func BuiltinNames() []string {
	n := append([]string{"mixed"}, builtinKinds...)
	n = append(n, "offline", "disconnects-mid-flash")
	sort.Strings(n)
	return n
}

// Builtin returns a built-in scenario: one of BuiltinNames. "mixed" cycles through compliant,
// missing, updated, disabled, wrong-signer and unauthorized devices.
func Builtin(name string, apks BuiltinAPKs) (*Scenario, error) {
	if apks.Package == "" {
		apks.Package = "ru.oneme.app"
	}
	if apks.SystemDir == "" {
		apks.SystemDir = "/product/app/Messenger"
	}
	s := &Scenario{APIVersion: "provkit.dev/v1", Kind: "SimulatorScenario", apks: map[string][]byte{}}
	ref := func(key string, b []byte) string {
		if b == nil {
			return ""
		}
		s.apks[key] = b
		return "@" + key
	}
	genuine := ref("genuine", apks.Genuine)
	update := ref("update", apks.Update)
	wrong := ref("wrong-signer", apks.WrongSigner)
	app := func() PackageSpec {
		return PackageSpec{Name: apks.Package, APK: genuine, System: apks.SystemDir,
			Granted: []string{"android.permission.POST_NOTIFICATIONS"}}
	}
	kind := func(k string, i int) (DeviceSpec, error) {
		ds := DeviceSpec{Serial: fmt.Sprintf("SIM-%s-%%03d", strings.ToUpper(strings.ReplaceAll(k, "-", ""))), Android: 14,
			Partitions: []PartitionSpec{{Name: "boot", Size: "8M"}, {Name: "system", Size: "64M", Type: "ext4"}, {Name: "vbmeta", Size: "64K"}}}
		switch k {
		case "compliant":
			ds.Packages = []PackageSpec{app()}
		case "missing":
		case "updated":
			p := app()
			p.Update = &UpdateSpec{APK: update}
			ds.Packages = []PackageSpec{p}
		case "disabled":
			p := app()
			p.Enabled = 3
			ds.Packages = []PackageSpec{p}
		case "wrong-signer":
			if wrong == "" {
				return ds, fmt.Errorf("built-in scenario %q needs the APK signed by another key (BuiltinAPKs.WrongSigner)", k)
			}
			p := app()
			p.APK = wrong
			ds.Packages = []PackageSpec{p}
		case "unauthorized":
			ds.Packages = []PackageSpec{app()}
			ds.Auth = string(AuthRefuse)
		case "offline":
			ds.Packages = []PackageSpec{app()}
			ds.Faults.Offline = true
		case "disconnects-mid-flash":
			ds.Packages = []PackageSpec{app()}
			ds.Faults.FastbootDropAfterBytes = "1M"
			ds.Mode = string(ModeBootloader) // waiting to be flashed
		default:
			return ds, fmt.Errorf("no built-in scenario %q; choose one of %s", k, strings.Join(BuiltinNames(), ", "))
		}
		return ds, nil
	}
	kinds := []string{name}
	if name == "mixed" {
		kinds = builtinKinds
	}
	for i, k := range kinds {
		ds, err := kind(k, i)
		if err != nil {
			return nil, err
		}
		s.Devices = append(s.Devices, ds)
	}
	for i := range s.Devices {
		if err := s.Devices[i].validate(); err != nil {
			return nil, fmt.Errorf("built-in scenario %s: %w", name, err)
		}
	}
	return s, nil
}
