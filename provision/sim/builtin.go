package sim

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/provkit/provkit/internal/demoapk"
	"github.com/provkit/provkit/provision/sim/android"
)

// BuiltinAPKs are the APK bytes the built-in scenarios install. Genuine is the mandated app as
// released; Update a newer genuine build (optional: the "updated" devices then carry Genuine's
// bytes and versionCode in /data, a store update that reinstalled the same build); WrongSigner the
// same package signed by someone else (optional: built from Genuine's manifest facts and signed
// in pure Go by a fresh key).
type BuiltinAPKs struct {
	Package     string // default: Genuine's package, else ru.oneme.app
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
	var info android.APKInfo
	if apks.Genuine != nil {
		var err error
		if info, err = android.ReadAPKInfo(bytes.NewReader(apks.Genuine), int64(len(apks.Genuine))); err != nil {
			return nil, fmt.Errorf("reading the app's APK: %w", err)
		}
		if apks.Package == "" {
			apks.Package = info.Package
		}
	}
	if apks.Package == "" {
		apks.Package = "ru.oneme.app"
	}
	needsWrong := name == "wrong-signer" || name == "mixed"
	if needsWrong && apks.WrongSigner == nil && apks.Genuine != nil && info.Package == apks.Package {
		b, err := impostor(info)
		if err != nil {
			return nil, fmt.Errorf("building the wrong-signer APK: %w", err)
		}
		apks.WrongSigner = b
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
			if update == "" {
				p.Update.APK = genuine
			}
			ds.Packages = []PackageSpec{p}
		case "disabled":
			p := app()
			p.Enabled = 3
			ds.Packages = []PackageSpec{p}
		case "wrong-signer":
			if wrong == "" {
				return ds, fmt.Errorf("built-in scenario %q needs the app's APK (--apk <file>) to build a copy signed by another key", k)
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

// impostor is an APK of the same package, version and permissions as the genuine one, signed by
// a fresh key: what a wrong-signer device holds. Only its signer differs from what a policy pins.
func impostor(info android.APKInfo) ([]byte, error) {
	key, err := demoapk.NewKey("provkit simulator: not the app's signer")
	if err != nil {
		return nil, err
	}
	vc := info.VersionCode
	if vc > math.MaxInt32 || vc < 0 {
		return nil, fmt.Errorf("versionCode %d does not fit the 32-bit versionCode attribute", vc)
	}
	min := int32(max(info.MinSDK, 24))
	spec := demoapk.Spec{Package: info.Package, VersionCode: int32(vc), VersionName: info.VersionName,
		MinSDK: min, TargetSDK: int32(max(info.TargetSDK, int(min))), Permissions: info.Permissions}
	return demoapk.Build(spec, key)
}
