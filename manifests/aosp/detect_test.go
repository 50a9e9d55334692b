package aosp

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/manifests/aosp/blueprint"
	"github.com/provkit/provkit/manifests/aosp/makefile"
	"github.com/provkit/provkit/manifests/policy"
)

func blueprintAppend(src, text string) ([]byte, int) { return blueprint.Append([]byte(src), text) }

func TestDetectFormat(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"soong with android_app_import", map[string]string{"build/soong/java/app_import.go": "package java\n"}, FormatBp},
		{"soong before android_app_import (Android 9)", map[string]string{"build/soong/java/app.go": "package java\n"}, FormatMk},
		{"no build/soong, vendor uses Android.mk only", map[string]string{"vendor/acme/app/Android.mk": "LOCAL_PATH := $(call my-dir)\n"}, FormatMk},
		{"no build/soong, Android.bp present", map[string]string{"vendor/acme/app/Android.bp": "cc_library {}\n", "vendor/acme/x/Android.mk": ""}, FormatBp},
		{"nothing to go by", map[string]string{"device/x/y/AndroidProducts.mk": ""}, FormatBp},
	} {
		if got := detectFormat(newTree(writeTree(t, tc.files))); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestInsertionPoint(t *testing.T) {
	for _, tc := range []struct{ src, wantAfter string }{
		{"$(call inherit-product, a.mk)\nX := 1\n", "$(call inherit-product, a.mk)\n"},
		{"$(call inherit-product, a.mk)\nPRODUCT_PACKAGES := x\n", "$(call inherit-product, a.mk)\nPRODUCT_PACKAGES := x\n"},
		{"ifeq ($(A),b)\n$(call inherit-product, a.mk)\nendif\nY := 2", "ifeq ($(A),b)\n$(call inherit-product, a.mk)\nendif\nY := 2"},
		{"$(call inherit-product, a.mk)\n$(call inherit-product-if-exists, b.mk)\nZ := 3\n", "$(call inherit-product, a.mk)\n$(call inherit-product-if-exists, b.mk)\n"},
	} {
		f, err := makefile.Parse("p.mk", []byte(tc.src))
		if err != nil {
			t.Fatal(err)
		}
		if got := tc.src[:insertionPoint(f)]; got != tc.wantAfter {
			t.Errorf("insert after %q, want after %q", got, tc.wantAfter)
		}
	}
}

func TestTwoApps(t *testing.T) {
	files := copyTree(lineageTree)
	files["packages/apps/Store.apk"] = "store"
	root := writeTree(t, files)
	pol := loadPolicy(t, root, basePolicy+`  - package: ru.gov.store
    apk: ../packages/apps/Store.apk
    signers: [{sha256: "`+testSigner+`"}]
    partition: system_ext
    privileged: true
    privappPermissions: [android.permission.INSTALL_PACKAGES]
`)
	ins := testInspector()
	ins["Store.apk"] = &APKFacts{APKFacts: policy.APKFacts{Package: "ru.gov.store", VersionCode: 1, Verified: true, Signers: []string{testSigner}}, RequestedPermissions: []string{"android.permission.INSTALL_PACKAGES"}}
	p := prepare(t, root, pol, func(o *Options) { o.Inspector = ins })
	mk := string(changeNamed(t, p, "vendor/acme/preinstall/preinstall.mk").New)
	if !strings.HasSuffix(mk, "PRODUCT_PACKAGES += \\\n    Max \\\n    RuGovStore\n") {
		t.Fatalf("preinstall.mk:\n%s", mk)
	}
	bp := string(changeNamed(t, p, "vendor/acme/preinstall/RuGovStore/Android.bp").New)
	for _, want := range []string{"privileged: true,\n    system_ext_specific: true,", "sub_dir: \"permissions\",\n    system_ext_specific: true,"} {
		if !strings.Contains(bp, want) {
			t.Errorf("RuGovStore Android.bp lacks %q:\n%s", want, bp)
		}
	}
	apply(t, p)
	judgeTree(t, root, p)
}

func TestUnparsableScannedFileNamesFileAndLine(t *testing.T) {
	files := copyTree(lineageTree)
	files["vendor/oem/broken/Android.bp"] = "android_app {\n    name: \"Broken\"\n    srcs: [],\n}\n"
	files["vendor/oem/broken2/Android.mk"] = "ifeq ($(A),b)\nLOCAL_MODULE := x\n"
	root := writeTree(t, files)
	pol := loadPolicy(t, root, basePolicy)
	_, err := Prepare(context.Background(), Options{Policy: pol, Tree: root, Inspector: testInspector()})
	if err == nil || !strings.Contains(err.Error(), "vendor/oem/broken/Android.bp:3:5: expected ',' or \"}\"") || !strings.Contains(err.Error(), "vendor/oem/broken2/Android.mk:1: missing endif") {
		t.Fatalf("err = %v", err)
	}
	// Limiting the scan leaves the broken files out.
	if _, err := Prepare(context.Background(), Options{Policy: pol, Tree: root, Inspector: testInspector(), ScanDirs: []string{"device", "vendor/lineage"}}); err != nil {
		t.Fatalf("with --scan: %v", err)
	}
}

// TestMarkedBlocksComeOutExactly: a block added anywhere (middle, end, end of a file without a final
// newline, after Append's blank line) is removed to the byte.
func TestMarkedBlocksComeOutExactly(t *testing.T) {
	block := blockHead("#", "p") + "$(call inherit-product, x.mk)\n" + blockTail("#")
	for _, src := range []string{"A := 1\nB := 2\n", "A := 1\nB := 2", "", "A := 1\n\n", "A := 1\n"} {
		for _, off := range []int{0, len(src) / 2, len(src)} {
			// only at line boundaries
			if off > 0 && off < len(src) && src[off-1] != '\n' {
				continue
			}
			out := insertAt([]byte(src), off, block)
			if got := string(removeMarked(out)); got != src {
				t.Errorf("insert at %d of %q: removing gives %q", off, src, got)
			}
		}
		out, _ := blueprintAppend(src, "// "+blockBegin+" p\nfoo {}\n// "+blockEnd+"\n")
		if got := string(removeMarked(out)); got != src {
			t.Errorf("append to %q: removing gives %q", src, got)
		}
	}
}

// TestOverridesCannotInjectMake: an overrides entry is written into Android.mk; one that make would
// expand is refused by the policy loader (file:line) and, should a policy reach the patcher without
// it, by the patcher too.
func TestOverridesCannotInjectMake(t *testing.T) {
	root := writeTree(t, lineageTree)
	p := filepath.Join(root, "policy", "bad.yaml")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte(basePolicy+"    overrides: [\"$(HOME)\"]\n"), 0o644)
	if _, err := policy.Load(p); err == nil || !strings.Contains(err.Error(), "bad.yaml:13: apps[0].overrides[0]") {
		t.Fatalf("policy with a make expansion in overrides: %v", err)
	}
	pol := loadPolicy(t, root, basePolicy)
	pol.Apps[0].Overrides = []string{"$(HOME)"}
	pl := prepare(t, root, pol, func(o *Options) { o.Format = FormatMk })
	if !pl.Blocked() || len(pl.Changes) != 0 || !strings.Contains(pl.Blockers[0].Msg, "is not a module name provkit will write") {
		t.Fatalf("blockers %v, %d changes", pl.Blockers, len(pl.Changes))
	}
}

// TestRenderedPartitionReadsBack: the module provkit renders for each partition, in either format,
// is placed on that partition by the tree scan that judges other people's modules.
func TestRenderedPartitionReadsBack(t *testing.T) {
	for _, part := range policy.Partitions {
		s := &appSpec{app: &policy.App{Package: "ru.oneme.app"}, module: "Max", partition: part, apkName: "Max.apk", dir: "vendor/acme/preinstall/Max"}
		files := map[string]string{
			s.dir + "/Android.bp":           s.bpModules(),
			"vendor/acme/mk/Max/Android.mk": "LOCAL_PATH := $(call my-dir)\n" + s.mkModules(),
		}
		ix, err := scanTree(newTree(writeTree(t, files)), []string{"vendor"})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range ix.modules {
			if m.Name == "Max" {
				n++
				if m.Partition != part {
					t.Errorf("%s (%s at %s): scanned partition %q", part, m.Type, m.Loc, m.Partition)
				}
			}
		}
		if n != 2 {
			t.Errorf("%s: found the app module %d times, want 2 (bp and mk)", part, n)
		}
	}
}
