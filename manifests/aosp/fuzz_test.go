package aosp

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzPatchProductMakefile runs the whole planner on a tree whose product makefile is arbitrary
// bytes. It must never panic; when it plans an edit of the product makefile, the edit must be one
// insertion: every byte of the original kept, in order, around one inserted run of text.
func FuzzPatchProductMakefile(f *testing.F) {
	for _, k := range []string{"device/acme/foo/lineage_foo.mk", "device/acme/foo/device.mk", "vendor/lineage/config/common.mk", "vendor/partner_gms/products/gms.mk"} {
		f.Add([]byte(lineageTree[k]), false)
		f.Add([]byte(lineageTree[k]), true)
	}
	f.Add([]byte("PRODUCT_PACKAGES += \\\n\tA \\\n\tB\nPRODUCT_PACKAGES := C\n$(call inherit-product, x.mk)\n"), true)
	f.Add([]byte("$(call inherit-product, a.mk)"), false)
	root := writeTree(f, lineageTree)
	pol := loadPolicy(f, root, basePolicy)
	prod := filepath.Join(root, "device/acme/foo/lineage_foo.mk")
	f.Fuzz(func(t *testing.T, src []byte, appendPlacement bool) {
		if len(src) > 1<<16 {
			return
		}
		if err := os.WriteFile(prod, src, 0o644); err != nil {
			t.Fatal(err)
		}
		o := Options{Policy: pol, Tree: root, Inspector: testInspector(), Product: "device/acme/foo/lineage_foo.mk"}
		if appendPlacement {
			o.Placement = PlaceAppend
		}
		p, err := Prepare(context.Background(), o)
		if err != nil {
			return
		}
		for _, c := range p.Changes {
			if c.Path != "device/acme/foo/lineage_foo.mk" {
				continue
			}
			if !bytes.Equal(c.Old, src) {
				t.Fatal("planned change does not start from the file's bytes")
			}
			if !oneInsertion(c.Old, c.New) {
				t.Fatalf("the edit is not a single insertion:\n%q\n->\n%q", c.Old, c.New)
			}
		}
	})
}

// oneInsertion reports whether b is a with one run of bytes inserted somewhere.
func oneInsertion(a, b []byte) bool {
	if len(b) < len(a) {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	return bytes.Equal(a[i:], b[len(b)-(len(a)-i):])
}
