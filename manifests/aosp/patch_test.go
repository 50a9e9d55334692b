package aosp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", p, got)
	}
}

func apply(t *testing.T, p *Plan) {
	t.Helper()
	if p.Blocked() {
		t.Fatalf("plan blocked: %v", p.Blockers)
	}
	if err := p.Apply(); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func TestPatchLineageTreeInherit(t *testing.T) {
	root := writeTree(t, lineageTree)
	pol := loadPolicy(t, root, basePolicy)
	before := snapshot(t, root)
	p := prepare(t, root, pol, nil)
	if p.Product != "device/acme/foo/lineage_foo.mk" || p.Format != FormatBp || p.Dir != "vendor/acme/preinstall" {
		t.Fatalf("product %s format %s dir %s", p.Product, p.Format, p.Dir)
	}
	if p.Blocked() {
		t.Fatalf("blocked: %v", p.Blockers)
	}
	golden(t, "lineage-inherit.diff", p.Diff())
	if got := diffSnapshots(before, snapshot(t, root)); got != "" {
		t.Fatalf("Prepare wrote to the tree:\n%s", got)
	}
	apply(t, p)
	judgeTree(t, root, p)

	// Idempotent: a second run has nothing to change.
	again := prepare(t, root, pol, nil)
	if !again.Compliant() {
		t.Fatalf("second run is not a no-op: %d changes %v, blockers %v\n%s", len(again.Changes), again.Changes, again.Blockers, again.Diff())
	}

	// Revert restores the tree byte for byte, and a second revert does nothing.
	rv := prepare(t, root, pol, func(o *Options) { o.Revert = true })
	golden(t, "lineage-revert.diff", rv.Diff())
	apply(t, rv)
	if got := diffSnapshots(before, snapshot(t, root)); got != "" {
		t.Fatalf("revert left differences:\n%s", got)
	}
	if rv2 := prepare(t, root, pol, func(o *Options) { o.Revert = true }); len(rv2.Changes) != 0 {
		t.Fatalf("second revert plans %v", rv2.Changes)
	}
}

func TestPatchAppendPlacement(t *testing.T) {
	root := writeTree(t, lineageTree)
	pol := loadPolicy(t, root, basePolicy)
	before := snapshot(t, root)
	p := prepare(t, root, pol, func(o *Options) { o.Placement = PlaceAppend; o.Product = "lineage_foo" })
	// lineage_foo.mk has no PRODUCT_PACKAGES list: provkit adds a marked block.
	golden(t, "lineage-append.diff", p.Diff())
	apply(t, p)
	judgeTree(t, root, p)
	if again := prepare(t, root, pol, func(o *Options) { o.Placement = PlaceAppend }); !again.Compliant() {
		t.Fatalf("second run: %s", again.Diff())
	}
	apply(t, prepare(t, root, pol, func(o *Options) { o.Revert = true; o.Placement = PlaceAppend }))
	if got := diffSnapshots(before, snapshot(t, root)); got != "" {
		t.Fatalf("revert left differences:\n%s", got)
	}
}

// TestPatchAppendIntoList uses a product makefile with an unconditional continued list (tabs, as in
// partner_gms' gms.mk): the module becomes one new line of it, everything else byte for byte.
func TestPatchAppendIntoList(t *testing.T) {
	files := copyTree(lineageTree)
	files["device/acme/foo/lineage_foo.mk"] += "\nPRODUCT_PACKAGES += \\\n\tFooCamera \\\n\tFooGallery\n\nifeq ($(TARGET_BUILD_VARIANT),eng)\nPRODUCT_PACKAGES += \\\n    EngTool\nendif\n"
	root := writeTree(t, files)
	pol := loadPolicy(t, root, basePolicy)
	before := snapshot(t, root)
	p := prepare(t, root, pol, func(o *Options) { o.Placement = PlaceAppend })
	golden(t, "append-into-list.diff", p.Diff())
	apply(t, p)
	judgeTree(t, root, p)
	prod, _ := os.ReadFile(filepath.Join(root, "device/acme/foo/lineage_foo.mk"))
	if !strings.Contains(string(prod), "PRODUCT_PACKAGES += \\\n\tMax \\\n\tFooCamera \\\n") {
		t.Fatalf("module not inserted into the unconditional list:\n%s", prod)
	}
	apply(t, prepare(t, root, pol, func(o *Options) { o.Revert = true }))
	if got := diffSnapshots(before, snapshot(t, root)); got != "" {
		t.Fatalf("revert left differences:\n%s", got)
	}
}

// TestRevertWithTheModuleDefinedTwice: when provkit's module is defined by two generated files
// (both formats left from runs with different --format, or a copy), revert still removes exactly
// the one list line it inserted.
func TestRevertWithTheModuleDefinedTwice(t *testing.T) {
	files := copyTree(lineageTree)
	files["device/acme/foo/lineage_foo.mk"] += "\nPRODUCT_PACKAGES += \\\n\tFooCamera \\\n\tFooGallery\n"
	root := writeTree(t, files)
	pol := loadPolicy(t, root, basePolicy)
	before := snapshot(t, root)
	apply(t, prepare(t, root, pol, func(o *Options) { o.Placement = PlaceAppend }))
	bp, err := os.ReadFile(filepath.Join(root, "vendor/acme/preinstall/Max/Android.bp"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "vendor/acme/preinstall/Copy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "vendor/acme/preinstall/Copy/Android.bp"), bp, 0o644); err != nil {
		t.Fatal(err)
	}
	apply(t, prepare(t, root, pol, func(o *Options) { o.Revert = true }))
	if got := diffSnapshots(before, snapshot(t, root)); got != "" {
		t.Fatalf("revert left differences:\n%s", got)
	}
}

func TestPatchMkFormatPrivileged(t *testing.T) {
	root := writeTree(t, lineageTree)
	pol := loadPolicy(t, root, strings.Replace(basePolicy, "    partition: product\n",
		"    partition: system_ext\n    privileged: true\n    privappPermissions: [android.permission.INSTALL_PACKAGES]\n    denyPrivappPermissions: [android.permission.READ_PRIVILEGED_PHONE_STATE]\n    overrides: [OldMessenger]\n    installInUserTypes: [FULL, SYSTEM]\n", 1))
	ins := testInspector()
	ins["Messenger.apk"].RequestedPermissions = append(ins["Messenger.apk"].RequestedPermissions, "android.permission.INSTALL_PACKAGES", "android.permission.READ_PRIVILEGED_PHONE_STATE")
	p := prepare(t, root, pol, func(o *Options) { o.Format = FormatMk; o.Inspector = ins })
	golden(t, "lineage-mk-privileged.diff", p.Diff())
	apply(t, p)
	judgeTree(t, root, p)
	if again := prepare(t, root, pol, func(o *Options) { o.Format = FormatMk; o.Inspector = ins }); !again.Compliant() {
		t.Fatalf("second run: %s", again.Diff())
	}
	// Switching to Android.bp replaces the generated Android.mk.
	sw := prepare(t, root, pol, func(o *Options) { o.Format = FormatBp; o.Inspector = ins })
	var actions []string
	for _, c := range sw.Changes {
		actions = append(actions, c.Action+" "+c.Path)
	}
	if strings.Join(actions, ",") != "create vendor/acme/preinstall/Max/Android.bp,delete vendor/acme/preinstall/Max/Android.mk" {
		t.Fatalf("format switch plans %v", actions)
	}
}

func TestPatchSoongNamespace(t *testing.T) {
	// Put the module under vendor/gapps/common, a Soong namespace. A product without GApps does not
	// list it: provkit adds it to PRODUCT_SOONG_NAMESPACES.
	files := copyTree(lineageTree)
	files["device/acme/foo/lineage_foo.mk"] = strings.Replace(files["device/acme/foo/lineage_foo.mk"], "$(call inherit-product-if-exists, vendor/gapps/arm64/arm64-vendor.mk)\n", "", 1)
	root := writeTree(t, files)
	pol := loadPolicy(t, root, basePolicy)
	p := prepare(t, root, pol, func(o *Options) { o.Dir = "vendor/gapps/common/preinstall" })
	mk := string(changeNamed(t, p, "vendor/gapps/common/preinstall/preinstall.mk").New)
	if !strings.Contains(mk, "PRODUCT_SOONG_NAMESPACES += \\\n    vendor/gapps/common\n") {
		t.Fatalf("namespace not added:\n%s", mk)
	}
	apply(t, p)
	judgeTree(t, root, p)

	// The GApps product lists it already (common-vendor.mk): nothing to add.
	root = writeTree(t, lineageTree)
	pol = loadPolicy(t, root, basePolicy)
	p = prepare(t, root, pol, func(o *Options) { o.Dir = "vendor/gapps/common/preinstall" })
	if mk := string(changeNamed(t, p, "vendor/gapps/common/preinstall/preinstall.mk").New); strings.Contains(mk, "SOONG_NAMESPACES") {
		t.Fatalf("namespace added although listed:\n%s", mk)
	}
}

func TestPatchIntoForeignBuildFile(t *testing.T) {
	files := copyTree(lineageTree)
	files["vendor/acme/apps/Max/Android.bp"] = "// Acme's own apps\nandroid_app_import {\n    name: \"AcmeNotes\",\n    apk: \"AcmeNotes.apk\",\n    presigned: true,\n}\n"
	root := writeTree(t, files)
	pol := loadPolicy(t, root, basePolicy)
	before := snapshot(t, root)
	p := prepare(t, root, pol, func(o *Options) { o.Dir = "vendor/acme/apps" })
	golden(t, "foreign-bp.diff", p.Diff())
	apply(t, p)
	judgeTree(t, root, p)
	if again := prepare(t, root, pol, func(o *Options) { o.Dir = "vendor/acme/apps" }); !again.Compliant() {
		t.Fatalf("second run: %s", again.Diff())
	}
	apply(t, prepare(t, root, pol, func(o *Options) { o.Dir = "vendor/acme/apps"; o.Revert = true }))
	if got := diffSnapshots(before, snapshot(t, root)); got != "" {
		t.Fatalf("revert left differences:\n%s", got)
	}
}

func changeNamed(t *testing.T, p *Plan, path string) Change {
	t.Helper()
	for _, c := range p.Changes {
		if c.Path == path {
			return c
		}
	}
	t.Fatalf("no change to %s in %v", path, p.Changes)
	return Change{}
}

func copyTree(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestAPKFailingPolicyIsNeverCopied(t *testing.T) {
	root := writeTree(t, lineageTree)
	pol := loadPolicy(t, root, basePolicy)
	before := snapshot(t, root)
	for name, mut := range map[string]func(*APKFacts){
		"unverified":   func(f *APKFacts) { f.Verified = false; f.VerifyErrors = []string{"v2 digest mismatch"} },
		"wrong-signer": func(f *APKFacts) { f.Signers = []string{strings.Repeat("ab", 32)} },
		"old-version":  func(f *APKFacts) { f.VersionCode = 0 },
		"other-pkg":    func(f *APKFacts) { f.Package = "com.evil.app" },
	} {
		ins := testInspector()
		mut(ins["Messenger.apk"])
		p := prepare(t, root, pol, func(o *Options) { o.Inspector = ins })
		if !p.Blocked() || len(p.Changes) != 0 {
			t.Errorf("%s: blocked=%v changes=%d", name, p.Blocked(), len(p.Changes))
		}
		if err := p.Apply(); !errors.Is(err, ErrBlocked) {
			t.Errorf("%s: Apply = %v", name, err)
		}
	}
	if got := diffSnapshots(before, snapshot(t, root)); got != "" {
		t.Fatalf("tree changed:\n%s", got)
	}
}

func TestUncoveredPrivilegedPermissionsBlock(t *testing.T) {
	root := writeTree(t, lineageTree)
	pol := loadPolicy(t, root, strings.Replace(basePolicy, "    partition: product\n", "    partition: product\n    privileged: true\n    privappPermissions: [android.permission.INSTALL_PACKAGES]\n", 1))
	ins := testInspector()
	ins["Messenger.apk"].RequestedPermissions = append(ins["Messenger.apk"].RequestedPermissions,
		"android.permission.INSTALL_PACKAGES", "android.permission.WRITE_SECURE_SETTINGS", "android.permission.READ_PRIVILEGED_PHONE_STATE", "com.acme.permission.FOO")
	p := prepare(t, root, pol, func(o *Options) { o.Inspector = ins })
	if !p.Blocked() || len(p.Apps) != 1 {
		t.Fatalf("not blocked: %+v", p)
	}
	want := []string{"android.permission.READ_PRIVILEGED_PHONE_STATE", "android.permission.WRITE_SECURE_SETTINGS"}
	if strings.Join(p.Apps[0].Uncovered, ",") != strings.Join(want, ",") {
		t.Fatalf("uncovered = %v", p.Apps[0].Uncovered)
	}
	if !strings.Contains(p.Blockers[0].String(), "policy.yaml:") || !strings.Contains(p.Blockers[0].String(), "WRITE_SECURE_SETTINGS") {
		t.Fatalf("blocker = %s", p.Blockers[0])
	}
}

var locRe = regexp.MustCompile(`^ru\.oneme\.app: ([^ ]+:\d+): `)

func TestConflictsNameFileAndLine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(map[string]string)
		want  string // file:line of the blocker
		match string
	}{
		{"later reset drops the inherited module", func(m map[string]string) {
			// As if an earlier run had added the inherit, and someone then reset the list after it.
			m["device/acme/foo/lineage_foo.mk"] += "\n$(call inherit-product, vendor/acme/preinstall/preinstall.mk)\nPRODUCT_PACKAGES := \\\n    OnlyThis\n"
		}, "device/acme/foo/lineage_foo.mk:21", "resets PRODUCT_PACKAGES"},
		{"bp overrides", func(m map[string]string) {
			m["device/acme/foo/parts/Android.bp"] += "\nandroid_app_import {\n    name: \"OldMessenger\",\n    apk: \"Old.apk\",\n    presigned: true,\n    overrides: [\"Max\"],\n}\n"
			m["device/acme/foo/device.mk"] += "PRODUCT_PACKAGES += OldMessenger\n"
		}, "device/acme/foo/parts/Android.bp:9", "overrides Max"},
		{"LOCAL_OVERRIDES_PACKAGES", func(m map[string]string) {
			m["vendor/partner_gms/GmsCore/Android.mk"] = strings.Replace(m["vendor/partner_gms/GmsCore/Android.mk"], "com.qualcomm.location", "com.qualcomm.location Max", 1)
			m["device/acme/foo/lineage_foo.mk"] += "$(call inherit-product, vendor/partner_gms/products/gms.mk)\n"
		}, "vendor/partner_gms/GmsCore/Android.mk:3", "overrides Max"},
		{"same package in another module", func(m map[string]string) {
			m["vendor/partner_gms/GmsCore/GmsCore.apk"] = "fixture gms APK"
			m["device/acme/foo/lineage_foo.mk"] += "$(call inherit-product, vendor/partner_gms/products/gms.mk)\n"
		}, "vendor/partner_gms/GmsCore/Android.mk:3", "already ships package ru.oneme.app"},
		{"same package built from source", func(m map[string]string) {
			m["device/acme/foo/parts/AndroidManifest.xml"] = "<?xml version='1.0' encoding='utf-8'?>\n<!-- <manifest package=\"com.example\"> -->\n<manifest xmlns:android=\"http://schemas.android.com/apk/res/android\" package=\"ru.oneme.app\"/>\n"
		}, "device/acme/foo/parts/Android.bp:1", "module FooParts already ships package ru.oneme.app"},
		{"privapp XML on another partition", func(m map[string]string) {
			m["device/acme/foo/configs/privapp-permissions-foo.xml"] = strings.Replace(m["device/acme/foo/configs/privapp-permissions-foo.xml"], "org.acme.parts", "ru.oneme.app", 1)
		}, "device/acme/foo/configs/privapp-permissions-foo.xml:5", "installed to /system_ext"},
		{"module name taken", func(m map[string]string) {
			m["device/acme/foo/parts/Android.bp"] += "\nandroid_app {\n    name: \"Max\",\n}\n"
		}, "device/acme/foo/parts/Android.bp:9", "a module named Max already exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := copyTree(lineageTree)
			tc.edit(files)
			root := writeTree(t, files)
			pol := loadPolicy(t, root, basePolicy)
			ins := testInspector()
			if tc.name == "same package in another module" {
				ins["GmsCore.apk"].Package = "ru.oneme.app"
			}
			p := prepare(t, root, pol, func(o *Options) { o.Inspector = ins })
			found := false
			for _, b := range p.Blockers {
				m := locRe.FindStringSubmatch(b.String())
				if m != nil && m[1] == tc.want && strings.Contains(b.Msg, tc.match) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no blocker at %s matching %q; blockers:\n%v", tc.want, tc.match, p.Blockers)
			}
		})
	}
}

func TestUnparsableProductMakefile(t *testing.T) {
	files := copyTree(lineageTree)
	files["device/acme/foo/device.mk"] += "ifeq ($(TARGET_HAS_NFC),true)\nPRODUCT_PACKAGES += Nfc\n"
	root := writeTree(t, files)
	pol := loadPolicy(t, root, basePolicy)
	_, err := Prepare(context.Background(), Options{Policy: pol, Tree: root, Inspector: testInspector()})
	if err == nil || !strings.Contains(err.Error(), "device/acme/foo/device.mk:") || !strings.Contains(err.Error(), "missing endif") {
		t.Fatalf("err = %v", err)
	}
}

// TestIncludeDiamondsAreBounded: makefiles that each include the next one twice double the work
// per level; the evaluation stops with where it stopped instead of running for hours.
func TestIncludeDiamondsAreBounded(t *testing.T) {
	files := copyTree(lineageTree)
	files["device/acme/foo/device.mk"] += "include device/acme/foo/l0.mk device/acme/foo/l0.mk\n"
	const depth = 20
	for i := 0; i < depth; i++ {
		files[fmt.Sprintf("device/acme/foo/l%d.mk", i)] = fmt.Sprintf("include device/acme/foo/l%d.mk device/acme/foo/l%d.mk\nPRODUCT_PACKAGES += Y%d\n", i+1, i+1, i)
	}
	files[fmt.Sprintf("device/acme/foo/l%d.mk", depth)] = "PRODUCT_PACKAGES += Z\n"
	root := writeTree(t, files)
	pol := loadPolicy(t, root, basePolicy)
	_, err := Prepare(context.Background(), Options{Policy: pol, Tree: root, Inspector: testInspector()})
	if err == nil || !strings.Contains(err.Error(), "include each other over and over") || !strings.Contains(err.Error(), "device/acme/foo/l") {
		t.Fatalf("err = %v", err)
	}
}

func TestProductResolution(t *testing.T) {
	files := copyTree(lineageTree)
	files["device/acme/bar/AndroidProducts.mk"] = "PRODUCT_MAKEFILES := \\\n    lineage_bar:$(LOCAL_DIR)/lineage_bar.mk\n"
	files["device/acme/bar/lineage_bar.mk"] = "PRODUCT_NAME := lineage_bar\n"
	root := writeTree(t, files)
	pol := loadPolicy(t, root, basePolicy)
	_, err := Prepare(context.Background(), Options{Policy: pol, Tree: root, Inspector: testInspector()})
	if err == nil || !strings.Contains(err.Error(), "declares 2 products") {
		t.Fatalf("err = %v", err)
	}
	p := prepare(t, root, pol, func(o *Options) { o.Product = "lineage_bar" })
	if p.Product != "device/acme/bar/lineage_bar.mk" {
		t.Fatalf("product = %s", p.Product)
	}
}

// TestInjectedFailureLeavesTreeUntouched fails the commit at each rename in turn: every time, the
// tree must be exactly as before, including no new directories and no temporary files.
func TestInjectedFailureLeavesTreeUntouched(t *testing.T) {
	root := writeTree(t, lineageTree)
	pol := loadPolicy(t, root, basePolicy)
	before := snapshot(t, root)
	n := len(prepare(t, root, pol, nil).Changes)
	if n < 3 {
		t.Fatalf("only %d changes", n)
	}
	for fail := 0; fail < n; fail++ {
		p := prepare(t, root, pol, nil)
		count := 0
		testHookBeforeRename = func(path string) error {
			if count == fail {
				return errors.New("injected failure")
			}
			count++
			return nil
		}
		err := p.Apply()
		testHookBeforeRename = nil
		if err == nil || !strings.Contains(err.Error(), "injected failure") {
			t.Fatalf("fail at %d: Apply = %v", fail, err)
		}
		if got := diffSnapshots(before, snapshot(t, root)); got != "" {
			t.Fatalf("fail at %d left differences:\n%s", fail, got)
		}
	}
	// The same for a revert.
	apply(t, prepare(t, root, pol, nil))
	patched := snapshot(t, root)
	rv := prepare(t, root, pol, func(o *Options) { o.Revert = true })
	testHookBeforeRename = func(path string) error {
		if strings.HasSuffix(path, ".xml") {
			return errors.New("injected failure")
		}
		return nil
	}
	err := rv.Apply()
	testHookBeforeRename = nil
	if err == nil {
		t.Fatal("revert did not fail")
	}
	if got := diffSnapshots(patched, snapshot(t, root)); got != "" {
		t.Fatalf("failed revert left differences:\n%s", got)
	}
}

func TestApplyRefusesChangedTree(t *testing.T) {
	root := writeTree(t, lineageTree)
	pol := loadPolicy(t, root, basePolicy)
	p := prepare(t, root, pol, nil)
	prod := filepath.Join(root, "device/acme/foo/lineage_foo.mk")
	if err := os.WriteFile(prod, []byte("PRODUCT_NAME := changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, root)
	if err := p.Apply(); !errors.Is(err, ErrChangedUnderneath) {
		t.Fatalf("Apply = %v", err)
	}
	if got := diffSnapshots(before, snapshot(t, root)); got != "" {
		t.Fatalf("tree changed:\n%s", got)
	}
}

// judgeTree runs the real tools on the patched tree: bpfmt parses every Android.bp the plan wrote,
// xmllint every XML, and GNU make evaluates the product makefile with a stand-in for
// build/make/core/product.mk: the modules must be in PRODUCT_PACKAGES.
func judgeTree(t *testing.T, root string, p *Plan) {
	t.Helper()
	tools := testtool.Require(t, "bpfmt", "xmllint", "make")
	for _, c := range p.Changes {
		if c.Action == "delete" {
			continue
		}
		abs := filepath.Join(root, c.Path)
		switch {
		case strings.HasSuffix(c.Path, ".bp"):
			out, err := exec.Command(tools[0], "-l", abs).CombinedOutput()
			if err != nil {
				t.Errorf("bpfmt rejects %s: %v\n%s", c.Path, err, out)
			}
			if strings.TrimSpace(string(out)) != "" && c.Action == "create" {
				t.Errorf("bpfmt would reformat %s (provkit should write bpfmt's format)", c.Path)
			}
		case strings.HasSuffix(c.Path, ".xml"):
			if out, err := exec.Command(tools[1], "--noout", abs).CombinedOutput(); err != nil {
				t.Errorf("xmllint rejects %s: %v\n%s", c.Path, err, out)
			}
		}
	}
	pkgs := makeProductPackages(t, tools[2], root, p.Product)
	for _, a := range p.Apps {
		if !contains(pkgs, a.Module) {
			t.Errorf("GNU make does not list %s in PRODUCT_PACKAGES: %v", a.Module, pkgs)
		}
	}
}

// TestAPKReplacedAfterVerification: Apply copies the APK checking it against the digest taken when
// it was verified; an APK swapped in between is refused and nothing is written. The APK is larger
// than any text file provkit reads whole (it is streamed).
func TestAPKReplacedAfterVerification(t *testing.T) {
	files := copyTree(lineageTree)
	files["packages/apps/Messenger.apk"] = strings.Repeat("large APK bytes ", 1<<20) // 16 MiB
	root := writeTree(t, files)
	pol := loadPolicy(t, root, basePolicy)
	p := prepare(t, root, pol, nil)
	c := changeNamed(t, p, "vendor/acme/preinstall/Max/Max.apk")
	if !c.Binary || c.Src == "" || len(c.SHA256) != 64 || c.New != nil {
		t.Fatalf("APK change = %+v", c)
	}
	before := snapshot(t, root)
	if err := os.WriteFile(filepath.Join(root, "packages/apps/Messenger.apk"), []byte("evil"), 0o644); err != nil {
		t.Fatal(err)
	}
	before["packages/apps/Messenger.apk"] = snapshot(t, root)["packages/apps/Messenger.apk"]
	if err := p.Apply(); !errors.Is(err, ErrSourceChanged) {
		t.Fatalf("Apply = %v", err)
	}
	if got := diffSnapshots(before, snapshot(t, root)); got != "" {
		t.Fatalf("tree changed:\n%s", got)
	}
}

// TestConflictsOutsideTheProductAreNotes: a module that overrides the app but is not in the product
// does not block; it is reported as a note. A reset under a condition provkit cannot decide blocks,
// saying so.
func TestConflictsOutsideTheProductAreNotes(t *testing.T) {
	files := copyTree(lineageTree)
	files["device/acme/foo/parts/Android.bp"] += "\nandroid_app_import {\n    name: \"OldMessenger\",\n    apk: \"Old.apk\",\n    presigned: true,\n    overrides: [\"Max\"],\n}\n"
	root := writeTree(t, files)
	pol := loadPolicy(t, root, basePolicy)
	p := prepare(t, root, pol, nil)
	if p.Blocked() {
		t.Fatalf("blocked: %v", p.Blockers)
	}
	if !strings.Contains(strings.Join(p.Notes, "\n"), "device/acme/foo/parts/Android.bp:9: module OldMessenger overrides Max; it is not in this product now") {
		t.Fatalf("notes: %v", p.Notes)
	}

	files = copyTree(lineageTree)
	files["device/acme/foo/lineage_foo.mk"] += "\n$(call inherit-product, vendor/acme/preinstall/preinstall.mk)\nifeq ($(TARGET_BUILD_VARIANT),user)\nPRODUCT_PACKAGES := OnlyThis\nendif\n"
	root = writeTree(t, files)
	pol = loadPolicy(t, root, basePolicy)
	p = prepare(t, root, pol, nil)
	if !p.Blocked() || !strings.Contains(p.Blockers[0].String(), "lineage_foo.mk:22: this assignment resets PRODUCT_PACKAGES") || !strings.Contains(p.Blockers[0].Msg, "ifeq ($(TARGET_BUILD_VARIANT),user) at device/acme/foo/lineage_foo.mk:21, which provkit cannot decide; decide it with --var TARGET_BUILD_VARIANT=<value>") {
		t.Fatalf("blockers: %v", p.Blockers)
	}
	// Deciding the condition with a preset variable settles it.
	if p := prepare(t, root, pol, func(o *Options) { o.Vars = map[string]string{"TARGET_BUILD_VARIANT": "userdebug"} }); p.Blocked() {
		t.Fatalf("with TARGET_BUILD_VARIANT=userdebug: %v", p.Blockers)
	}
}

// TestRevertRefusesToLeaveADanglingInherit: a hand-written (unmarked) inherit of provkit's
// preinstall.mk would break the build once the file is gone; the revert blocks and names the line.
func TestRevertRefusesToLeaveADanglingInherit(t *testing.T) {
	root := writeTree(t, lineageTree)
	pol := loadPolicy(t, root, basePolicy)
	apply(t, prepare(t, root, pol, nil))
	prod := filepath.Join(root, "device/acme/foo/lineage_foo.mk")
	b, _ := os.ReadFile(prod)
	if err := os.WriteFile(prod, append(b, "$(call inherit-product, vendor/acme/preinstall/preinstall.mk)\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	rv := prepare(t, root, pol, func(o *Options) { o.Revert = true })
	if !rv.Blocked() || !strings.Contains(rv.Blockers[0].String(), "lineage_foo.mk:22: this line still names vendor/acme/preinstall/preinstall.mk") {
		t.Fatalf("blockers: %v", rv.Blockers)
	}
}
