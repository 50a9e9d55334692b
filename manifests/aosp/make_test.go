package aosp

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// productHarness is a reduced build/make/core/product.mk for GNU make, written for these tests: it
// imports a product makefile the way the build does (each makefile evaluated with the product
// variables cleared, inherit-product appending an @inherit:<file> tag to every product variable,
// tags replaced by the inherited makefile's values afterwards) and prints PRODUCT_PACKAGES.
const productHarness = `INHERIT_TAG := @inherit:
_pvars := PRODUCT_PACKAGES PRODUCT_SOONG_NAMESPACES PRODUCT_COPY_FILES
SRC_TARGET_DIR := build/make/target
TARGET_COPY_OUT_SYSTEM := system
TARGET_COPY_OUT_SYSTEM_EXT := system_ext
TARGET_COPY_OUT_PRODUCT := product
TARGET_COPY_OUT_VENDOR := vendor
COMMON_ANDROID_PACKAGE_SUFFIX := .apk

define inherit-product
$(foreach v,$(_pvars),$(eval $(v) := $($(v)) $(INHERIT_TAG)$(strip $(1))))$(eval _children += $(strip $(1)))
endef
inherit-product-if-exists = $(if $(wildcard $(strip $(1))),$(call inherit-product,$(1)),)
my-dir = $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

define _import-node
$(foreach v,$(_pvars),$(eval $(v) :=))$(eval _children :=)$(eval include $(1))$(foreach v,$(_pvars),$(eval NODE.$(1).$(v) := $($(v))))$(eval NODE.$(1).children := $(_children))$(eval NODE.$(1).done := true)$(foreach c,$(NODE.$(1).children),$(if $(NODE.$(c).done),,$(if $(wildcard $(c)),$(call _import-node,$(c)))))
endef

_expand = $(foreach w,$(NODE.$(1).$(2)),$(if $(filter $(INHERIT_TAG)%,$(w)),$(call _expand,$(patsubst $(INHERIT_TAG)%,%,$(w)),$(2)),$(w)))

$(call _import-node,$(PRODUCT_MK))
$(info PRODUCT_PACKAGES=$(strip $(call _expand,$(PRODUCT_MK),PRODUCT_PACKAGES)))
$(info PRODUCT_SOONG_NAMESPACES=$(strip $(call _expand,$(PRODUCT_MK),PRODUCT_SOONG_NAMESPACES)))
all: ; @:
`

// makeProductPackages runs GNU make with the harness on product (relative to root).
func makeProductPackages(t *testing.T, mk, root, product string) []string {
	t.Helper()
	h := filepath.Join(t.TempDir(), "harness.mk")
	if err := os.WriteFile(h, []byte(productHarness), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mk, "-s", "--no-print-directory", "-f", h, "PRODUCT_MK="+product)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make on %s: %v\n%s", product, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "PRODUCT_PACKAGES="); ok {
			return strings.Fields(v)
		}
	}
	t.Fatalf("make printed no PRODUCT_PACKAGES:\n%s", out)
	return nil
}

// TestMakeListsModuleOnlyAfterPatch is the judge: before the patch GNU make does not list the
// module, after it does.
func TestMakeListsModuleOnlyAfterPatch(t *testing.T) {
	mk := testtool.Require(t, "make")[0]
	for _, placement := range []string{PlaceInherit, PlaceAppend} {
		root := writeTree(t, lineageTree)
		pol := loadPolicy(t, root, basePolicy)
		const product = "device/acme/foo/lineage_foo.mk"
		if contains(makeProductPackages(t, mk, root, product), "Max") {
			t.Fatal("Max listed before the patch")
		}
		apply(t, prepare(t, root, pol, func(o *Options) { o.Placement = placement }))
		if !contains(makeProductPackages(t, mk, root, product), "Max") {
			t.Fatalf("%s: Max not listed after the patch", placement)
		}
	}
}

// TestChainAgreesWithMake compares provkit's evaluation of the chain with GNU make's: every package
// provkit is sure of, make lists; every package make lists, provkit has (surely or under a
// condition it could not decide).
func TestChainAgreesWithMake(t *testing.T) {
	mk := testtool.Require(t, "make")[0]
	files := copyTree(lineageTree)
	files["device/acme/foo/lineage_foo.mk"] += "\n$(call inherit-product, vendor/partner_gms/products/gms.mk)\nPRODUCT_PACKAGES := \\\n    Reset\nPRODUCT_PACKAGES += After\n"
	for name, tr := range map[string]map[string]string{"lineage": lineageTree, "reset": files} {
		root := writeTree(t, tr)
		const product = "device/acme/foo/lineage_foo.mk"
		c, err := evalChain(newTree(root), product, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := makeProductPackages(t, mk, root, product)
		all := map[string]bool{}
		for _, e := range c.List(varPackages) {
			all[e.Word] = true
			if e.Sure && !contains(got, e.Word) {
				t.Errorf("%s: provkit is sure of %s (%s), make does not list it: %v", name, e.Word, e.At, got)
			}
		}
		for _, w := range got {
			if !all[w] {
				t.Errorf("%s: make lists %s, provkit does not", name, w)
			}
		}
	}
}
