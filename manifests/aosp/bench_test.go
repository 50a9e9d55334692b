package aosp

import (
	"fmt"
	"strings"
	"testing"

	"github.com/provkit/provkit/manifests/aosp/blueprint"
	"github.com/provkit/provkit/manifests/aosp/makefile"
)

// BenchmarkParseMakefile scans a product makefile the size of a large vendor config (LineageOS'
// common.mk repeated to ~100 KiB).
func BenchmarkParseMakefile(b *testing.B) {
	src := []byte(strings.Repeat(lineageTree["vendor/lineage/config/common.mk"]+lineageTree["device/acme/foo/device.mk"], 60))
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := makefile.Parse("common.mk", src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseBlueprint parses a generated Android.bp with 500 app and etc modules (a GApps-sized
// file).
func BenchmarkParseBlueprint(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 250; i++ {
		fmt.Fprintf(&sb, "android_app_import {\n    name: \"App%d\",\n    apk: \"App%d.apk\",\n    presigned: true,\n    dex_preopt: {\n        enabled: false,\n    },\n    required: [\"etc%d\"],\n}\n\n", i, i, i)
		fmt.Fprintf(&sb, "prebuilt_etc {\n    name: \"etc%d\",\n    src: \"etc%d.xml\",\n    sub_dir: \"permissions\", // comment\n    product_specific: true,\n}\n\n", i, i)
	}
	src := []byte(sb.String())
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := blueprint.Parse("Android.bp", src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrepare plans the patch of the LineageOS-shaped fixture tree: product resolution, two
// chain evaluations, the conflict scan and rendering.
func BenchmarkPrepare(b *testing.B) {
	root := writeTree(b, lineageTree)
	pol := loadPolicy(b, root, basePolicy)
	for b.Loop() {
		prepare(b, root, pol, nil)
	}
}

// largeTree adds n generated module directories (Android.bp, and an Android.mk every tenth) and a
// product list naming them to the fixture tree, the shape scripts/bench-patch.sh times.
func largeTree(n int) map[string]string {
	files := copyTree(lineageTree)
	var prod strings.Builder
	prod.WriteString("PRODUCT_PACKAGES += \\\n")
	for i := 0; i < n; i++ {
		d := fmt.Sprintf("vendor/gen/m%d/", i)
		files[d+"Android.bp"] = fmt.Sprintf("// generated module directory %d\nandroid_app_import {\n    name: \"App%d\",\n    apk: \"App%d.apk\",\n    presigned: true,\n    dex_preopt: {\n        enabled: false,\n    },\n    product_specific: true,\n    required: [\"etc%d\"],\n}\n\nprebuilt_etc {\n    name: \"etc%d\",\n    src: \"etc%d.xml\",\n    sub_dir: \"permissions\",\n    product_specific: true,\n}\n", i, i, i, i, i, i)
		if i%10 == 0 {
			files[d+"Android.mk"] = fmt.Sprintf("LOCAL_PATH := $(call my-dir)\ninclude $(CLEAR_VARS)\nLOCAL_MODULE := Mk%d\nLOCAL_MODULE_CLASS := APPS\nLOCAL_SRC_FILES := Mk%d.apk\ninclude $(BUILD_PREBUILT)\n", i, i)
		}
		fmt.Fprintf(&prod, "    App%d \\\n", i)
	}
	prod.WriteString("    Last\n")
	files["device/acme/foo/lineage_foo.mk"] += prod.String()
	return files
}

// BenchmarkPrepareLarge plans the patch of a tree with 2000 module directories.
func BenchmarkPrepareLarge(b *testing.B) {
	root := writeTree(b, largeTree(2000))
	pol := loadPolicy(b, root, basePolicy)
	for b.Loop() {
		prepare(b, root, pol, nil)
	}
}
