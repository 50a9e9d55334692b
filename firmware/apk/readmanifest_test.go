package apk

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/provkit/provkit/internal/testapk"
)

// TestReadManifestAgreesWithInspect reads an aapt-built, apksigner-signed APK both ways.
func TestReadManifestAgreesWithInspect(t *testing.T) {
	b := testapk.Build(t, testapk.Spec{Package: "ru.oneme.app", VersionCode: 42, VersionName: "4.2", MinSDK: 26, TargetSDK: 34,
		Permissions: []string{"android.permission.POST_NOTIFICATIONS", "android.permission.INSTALL_PACKAGES"}})
	m, err := ReadManifest(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(context.Background(), bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if m.Package != info.Package || m.VersionCode != info.VersionCode || m.VersionName != info.VersionName || m.MinSDK != info.MinSDK || m.TargetSDK != info.TargetSDK {
		t.Fatalf("ReadManifest %+v, Inspect %+v", m, info)
	}
	if !reflect.DeepEqual(m.RequestedPermissions, info.RequestedPermissions) || len(m.RequestedPermissions) != 2 {
		t.Fatalf("permissions %v vs %v", m.RequestedPermissions, info.RequestedPermissions)
	}
	// A truncated APK is a format error, never a panic.
	if _, err := ReadManifest(bytes.NewReader(b[:len(b)/2]), int64(len(b)/2)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
}

// TestReadDeclaredPermissions reads protection levels compiled by aapt into flag bits.
func TestReadDeclaredPermissions(t *testing.T) {
	b := testapk.BuildFramework(t, []testapk.Permission{
		{Name: "android.permission.INSTALL_PACKAGES", ProtectionLevel: "signature|privileged"},
		{Name: "android.permission.CAMERA", ProtectionLevel: "dangerous"},
		{Name: "android.permission.INTERNET", ProtectionLevel: "normal"},
		{Name: "android.permission.REBOOT", ProtectionLevel: "signatureOrSystem"},
		{Name: "android.permission.MANAGE_USERS", ProtectionLevel: "signature|privileged|development"},
	})
	pkg, perms, err := ReadDeclaredPermissions(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if pkg != "android" || len(perms) != 5 {
		t.Fatalf("package %q, %d permissions: %+v", pkg, len(perms), perms)
	}
	want := map[string][3]bool{ // privileged, dangerous, level==expected
		"android.permission.INSTALL_PACKAGES": {true, false},
		"android.permission.CAMERA":           {false, true},
		"android.permission.INTERNET":         {false, false},
		"android.permission.REBOOT":           {true, false},
		"android.permission.MANAGE_USERS":     {true, false},
	}
	levels := map[string]uint32{"android.permission.INSTALL_PACKAGES": 0x12, "android.permission.CAMERA": 1, "android.permission.INTERNET": 0,
		"android.permission.REBOOT": 3, "android.permission.MANAGE_USERS": 0x32}
	for _, p := range perms {
		w := want[p.Name]
		if p.Privileged() != w[0] || p.Dangerous() != w[1] || p.ProtectionLevel != levels[p.Name] {
			t.Errorf("%s: level %#x privileged %v dangerous %v", p.Name, p.ProtectionLevel, p.Privileged(), p.Dangerous())
		}
	}
}

func TestProtectionLevelNames(t *testing.T) {
	for s, want := range map[string]uint32{"signature|privileged": 0x12, "0x12": 0x12, "18": 18, "dangerous": 1, "": 0, "signature | role": 0x4000002} {
		if got := protectionLevel(s); got != want {
			t.Errorf("protectionLevel(%q) = %#x, want %#x", s, got, want)
		}
	}
}

// FuzzReadManifest: on any bytes, ReadManifest and ReadDeclaredPermissions return a manifest or an
// error matching ErrMalformed (never another error for bytes in memory, never a panic), and agree
// with Inspect on the package name when both succeed.
func FuzzReadManifest(f *testing.F) {
	for _, s := range suiteSeeds(f, 8) {
		f.Add(s)
	}
	f.Add(fixtureBytes(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		m, err := ReadManifest(r, int64(len(data)))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("non-format error %T: %v", err, err)
			}
		} else {
			info, ierr := Inspect(context.Background(), r, int64(len(data)))
			if ierr != nil {
				t.Fatalf("Inspect: %v", ierr)
			}
			if len(info.Problems) == 0 && info.Package != m.Package {
				t.Fatalf("ReadManifest package %q, Inspect %q", m.Package, info.Package)
			}
		}
		pkg, _, err := ReadDeclaredPermissions(r, int64(len(data)))
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("non-format error %T: %v", err, err)
		}
		if err == nil && m != nil && pkg != m.Package {
			t.Fatalf("package %q vs %q", pkg, m.Package)
		}
	})
}
