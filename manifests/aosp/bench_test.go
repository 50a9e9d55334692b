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
