package buildprop

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	src := "# begin build properties\n" +
		"ro.build.id=UP1A.231005.007\n" +
		"  ro.build.type = user  \n" +
		"\n" +
		"import /vendor/etc/extra.prop ro.*\n" +
		"not a property line\n" +
		"bad name!=1\n" +
		"ro.build.id=UP1A.231005.008\n" +
		"ro.empty=\n" +
		"ro.eq=a=b"
	f, err := Parse("/system/build.prop", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Props) != 5 {
		t.Fatalf("props %+v", f.Props)
	}
	if f.Props[1].Key != "ro.build.type" || f.Props[1].Value != "user" || f.Props[1].Line != 3 {
		t.Fatalf("trimmed prop %+v", f.Props[1])
	}
	if f.Props[4].Value != "a=b" {
		t.Fatalf("value with '=': %+v", f.Props[4])
	}
	if len(f.Imports) != 1 || f.Imports[0] != "/vendor/etc/extra.prop ro.*" {
		t.Fatalf("imports %q", f.Imports)
	}
	if len(f.Problems) != 2 || !strings.HasPrefix(f.Problems[0], "/system/build.prop:6:") || !strings.HasPrefix(f.Problems[1], "/system/build.prop:7:") {
		t.Fatalf("problems %q", f.Problems)
	}
	s := NewSet()
	s.Add(f)
	if p, _ := s.Get("ro.build.id"); p.Value != "UP1A.231005.008" || p.Line != 8 {
		t.Fatalf("last one wins: %+v", p)
	}
	if _, err := Parse("x", make([]byte, MaxFileSize+1)); err == nil {
		t.Fatal("oversized file accepted")
	}
}

func set(t *testing.T, files ...string) *Set {
	s := NewSet()
	for i, src := range files {
		f, err := Parse(string(rune('a'+i)), []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		s.Add(f)
	}
	return s
}

func TestDeviceFingerprint(t *testing.T) {
	// Written explicitly: used as is.
	s := set(t, "ro.build.fingerprint=google/oriole/oriole:14/UP1A/1:user/release-keys\n")
	if fp := s.DeviceFingerprint(); fp.Derived || fp.Value != "google/oriole/oriole:14/UP1A/1:user/release-keys" || fp.Source != "ro.build.fingerprint at a:1" {
		t.Fatalf("%+v", fp)
	}
	// Android 11+: derived from the parts, product properties from the partitions in the default
	// source order (product before system), later files overriding earlier ones.
	sys := "ro.product.system.brand=Android\nro.product.system.name=aosp\nro.product.system.device=generic\n" +
		"ro.build.version.release_or_codename=14\nro.build.id=AP1A\nro.build.version.incremental=eng.1\nro.build.type=userdebug\nro.build.tags=test-keys\n" +
		"ro.system.build.fingerprint=Android/aosp/generic:14/AP1A/eng.1:userdebug/test-keys\n"
	prod := "ro.product.product.brand=acme\nro.product.product.name=phone\nro.product.product.device=phone\nro.product.build.fingerprint=acme/phone/phone:14/AP1A/eng.1:userdebug/test-keys\n"
	fp := set(t, sys, prod).DeviceFingerprint()
	if !fp.Derived || fp.Value != "acme/phone/phone:14/AP1A/eng.1:userdebug/test-keys" || len(fp.Unknown) != 0 {
		t.Fatalf("%+v", fp)
	}
	// An explicit source order puts system first.
	fp = set(t, sys, prod, "ro.product.property_source_order=system,product\n").DeviceFingerprint()
	if fp.Value != "Android/aosp/generic:14/AP1A/eng.1:userdebug/test-keys" {
		t.Fatalf("%+v", fp)
	}
	// An invalid order falls back to the default.
	fp = set(t, sys, prod, "ro.product.property_source_order=bogus,system\n").DeviceFingerprint()
	if fp.Value != "acme/phone/phone:14/AP1A/eng.1:userdebug/test-keys" {
		t.Fatalf("%+v", fp)
	}
	// Missing parts read "unknown", as init writes them, and are listed.
	fp = set(t, "ro.build.version.release=10\n").DeviceFingerprint()
	if fp.Value != "unknown/unknown/unknown:10/unknown/unknown:unknown/unknown" || len(fp.Unknown) != 7 {
		t.Fatalf("%+v", fp)
	}
	parts := set(t, sys, prod).PartitionFingerprints()
	if len(parts) != 2 || parts["system"] == "" || parts["product"] != "acme/phone/phone:14/AP1A/eng.1:userdebug/test-keys" {
		t.Fatalf("%v", parts)
	}
}

func TestLegalName(t *testing.T) {
	for k, want := range map[string]bool{"ro.build.id": true, "a": true, "persist.x-y_z@1:2": true, "": false, ".a": false, "a.": false, "a..b": false, "a b": false, "a/b": false} {
		if LegalName(k) != want {
			t.Errorf("LegalName(%q) != %v", k, want)
		}
	}
}

// FuzzParse: any bytes parse without panic; every property has a legal name, a line number within
// the file, and no surrounding whitespace.
func FuzzParse(f *testing.F) {
	f.Add([]byte("ro.build.id=A\n# c\nimport x\nbad\n"))
	f.Add([]byte("ro.product.system.brand=Android\r\nro.build.fingerprint=a/b/c:1/2/3:4/5\n"))
	f.Add([]byte("=\n==\n a = b \n\x00=\x01\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("f", data)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Count(string(data), "\n") + 1
		for _, p := range file.Props {
			if !LegalName(p.Key) || p.Line < 1 || p.Line > lines || strings.TrimSpace(p.Value) != p.Value {
				t.Fatalf("bad prop %+v", p)
			}
		}
		s := NewSet()
		s.Add(file)
		_ = s.DeviceFingerprint()
	})
}
