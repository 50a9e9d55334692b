package layout

import (
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"
)

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s), Mode: 0o644} }

func TestSystemAsRootAndNested(t *testing.T) {
	system := fstest.MapFS{
		"init":                     {Data: []byte("/system/bin/init"), Mode: fs.ModeSymlink | 0o777},
		"system/build.prop":        file("ro.build.fingerprint=acme/phone/phone:10/Q/1:user/release-keys\nro.product.system.brand=acme\n"),
		"system/app/A/A.apk":       file("apk"),
		"system/product/app/P.apk": file("p"),
		"system/vendor":            {Data: []byte("/vendor"), Mode: fs.ModeSymlink | 0o777},
	}
	vendor := fstest.MapFS{
		"build.prop":         file("ro.vendor.build.fingerprint=acme/v\nro.build.fingerprint=vendor-overrides\n"),
		"odm/etc/build.prop": file("ro.odm.build.fingerprint=acme/o\n"),
	}
	tr := New(map[string]fs.FS{"system": system, "vendor": vendor})
	if got := tr.Names(); len(got) != 4 || got[0] != "odm" || got[1] != "product" || got[2] != "system" || got[3] != "vendor" {
		t.Fatalf("names %v", got)
	}
	if m, _ := tr.Mount("system"); m.Dir != "system" {
		t.Fatalf("system mount %+v", m)
	}
	if m, _ := tr.Mount("product"); m.From != "system" || m.Dir != "system/product" {
		t.Fatalf("product mount %+v", m)
	}
	if m, _ := tr.Mount("odm"); m.From != "vendor" || m.Dir != "odm" {
		t.Fatalf("odm mount %+v", m)
	}
	part, inner, err := tr.Resolve("/system/app/A/A.apk")
	if err != nil || part != "system" || inner != "app/A/A.apk" {
		t.Fatalf("resolve: %s %s %v", part, inner, err)
	}
	fsys, _ := tr.FS(part)
	if b, err := fs.ReadFile(fsys, inner); err != nil || string(b) != "apk" {
		t.Fatalf("read: %q %v", b, err)
	}
	if _, _, err := tr.Resolve("/data/app"); !errors.Is(err, ErrNotMounted) {
		t.Fatalf("/data: %v", err)
	}
	if _, _, err := tr.Resolve("system/app"); err == nil {
		t.Fatal("relative path accepted")
	}
	if p, in, _ := tr.Resolve("/product/"); p != "product" || in != "." {
		t.Fatalf("mount point: %s %s", p, in)
	}
	set, problems, err := tr.Props()
	if err != nil || len(problems) != 0 {
		t.Fatal(err, problems)
	}
	// vendor/build.prop is loaded after system's, so it overrides ro.build.fingerprint.
	if fp := set.DeviceFingerprint(); fp.Value != "vendor-overrides" {
		t.Fatalf("%+v", fp)
	}
	if pf := set.PartitionFingerprints(); pf["odm"] != "acme/o" || pf["vendor"] != "acme/v" {
		t.Fatalf("%v", pf)
	}
}

func TestNonSystemAsRoot(t *testing.T) {
	system := fstest.MapFS{"build.prop": file("ro.build.id=A\n"), "app/X/X.apk": file("x"), "system": {Mode: fs.ModeDir | 0o755}}
	product := fstest.MapFS{"etc/build.prop": file("ro.product.product.brand=b\n"), "build.prop": file("ro.legacy=1\n")}
	tr := New(map[string]fs.FS{"system": system, "product": product})
	if m, _ := tr.Mount("system"); m.Dir != "." {
		t.Fatalf("%+v", m)
	}
	set, _, err := tr.Props()
	if err != nil {
		t.Fatal(err)
	}
	if set.Value("ro.build.id") != "A" || set.Value("ro.product.product.brand") != "b" || set.Value("ro.legacy") != "" {
		t.Fatalf("props %v (legacy product/build.prop must not be read when etc/build.prop exists)", set.Keys())
	}
}
