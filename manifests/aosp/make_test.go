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

// makeAndroidMk evaluates an Android.mk with GNU make and stand-ins for the build system's
// CLEAR_VARS and BUILD_PREBUILT, returning "LOCAL_MODULE CLASS PARTITION-FLAGS SRC" per module.
func makeAndroidMk(t *testing.T, mk, root, androidMk string) []string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"clear.mk":  "$(foreach v,$(filter-out LOCAL_PATH,$(filter LOCAL_%,$(.VARIABLES))),$(eval $(v) :=))\n",
		"record.mk": "$(info MODULE $(LOCAL_MODULE) $(LOCAL_MODULE_CLASS) $(LOCAL_MODULE_RELATIVE_PATH)|$(LOCAL_PRODUCT_MODULE)$(LOCAL_SYSTEM_EXT_MODULE)$(LOCAL_VENDOR_MODULE)|$(LOCAL_PRIVILEGED_MODULE)|$(LOCAL_CERTIFICATE)|$(wildcard $(LOCAL_PATH)/$(LOCAL_SRC_FILES)))\n",
		"harness.mk": "my-dir = $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))\nCLEAR_VARS := " + filepath.Join(dir, "clear.mk") +
			"\nBUILD_PREBUILT := " + filepath.Join(dir, "record.mk") + "\ninclude $(ANDROID_MK)\nall: ; @:\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(mk, "-s", "--no-print-directory", "-f", filepath.Join(dir, "harness.mk"), "ANDROID_MK="+androidMk, "all")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make on %s: %v\n%s", androidMk, err, out)
	}
	var mods []string
	for _, l := range strings.Split(string(out), "\n") {
		if m, ok := strings.CutPrefix(l, "MODULE "); ok {
			mods = append(mods, m)
		}
	}
	return mods
}

// TestAndroidMkJudgedByMake: the Android.mk provkit writes defines, under GNU make, the app module
// (APPS, PRESIGNED, privileged, on its partition, its APK present) and one ETC module per XML.
func TestAndroidMkJudgedByMake(t *testing.T) {
	mk := testtool.Require(t, "make")[0]
	root := writeTree(t, lineageTree)
	pol := loadPolicy(t, root, strings.Replace(basePolicy, "    partition: product\n",
		"    partition: system_ext\n    privileged: true\n    privappPermissions: [android.permission.INSTALL_PACKAGES]\n", 1))
	ins := testInspector()
	ins["Messenger.apk"].RequestedPermissions = append(ins["Messenger.apk"].RequestedPermissions, "android.permission.INSTALL_PACKAGES")
	apply(t, prepare(t, root, pol, func(o *Options) { o.Format = FormatMk; o.Inspector = ins }))
	got := makeAndroidMk(t, mk, root, "vendor/acme/preinstall/Max/Android.mk")
	d := "vendor/acme/preinstall/Max/"
	want := []string{
		"privapp-permissions-ru.oneme.app.xml ETC permissions|true|||" + d + "privapp-permissions-ru.oneme.app.xml",
		"default-permissions-ru.oneme.app.xml ETC default-permissions|true|||" + d + "default-permissions-ru.oneme.app.xml",
		"preinstalled-packages-ru.oneme.app.xml ETC sysconfig|true|||" + d + "preinstalled-packages-ru.oneme.app.xml",
		"Max APPS |true|true|PRESIGNED|" + d + "Max.apk",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("make sees:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
