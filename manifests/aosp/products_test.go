package aosp

import (
	"strings"
	"testing"
)

// lineage21Products adds what every LineageOS 21 tree has: vendor/lineage/AndroidProducts.mk
// declaring GSI and SDK products, and AOSP's build/make/target/product/AndroidProducts.mk.
func lineage21Products() map[string]string {
	files := map[string]string{}
	for k, v := range lineageTree {
		files[k] = v
	}
	files["vendor/lineage/AndroidProducts.mk"] = "PRODUCT_MAKEFILES := \\\n" +
		"    $(LOCAL_DIR)/build/target/product/lineage_gsi_arm.mk \\\n" +
		"    $(LOCAL_DIR)/build/target/product/lineage_gsi_arm64.mk \\\n" +
		"    $(LOCAL_DIR)/build/target/product/lineage_gsi_x86.mk \\\n" +
		"    $(LOCAL_DIR)/build/target/product/lineage_gsi_x86_64.mk \\\n" +
		"    $(LOCAL_DIR)/build/target/product/lineage_sdk_phone_x86_64.mk\n"
	for _, p := range []string{"arm", "arm64", "x86", "x86_64"} {
		files["vendor/lineage/build/target/product/lineage_gsi_"+p+".mk"] = "$(call inherit-product, build/make/target/product/aosp_" + p + ".mk)\n"
	}
	files["vendor/lineage/build/target/product/lineage_sdk_phone_x86_64.mk"] = "PRODUCT_NAME := lineage_sdk_phone_x86_64\n"
	files["build/make/target/product/AndroidProducts.mk"] = "#\n# Copyright (C) 2008 The Android Open Source Project\n#\n\n" +
		"# This file should set PRODUCT_MAKEFILES to a list of product makefiles\n# to expose to the build system.\n\n" +
		"ifneq ($(TARGET_BUILD_APPS),)\nPRODUCT_MAKEFILES := \\\n    $(LOCAL_DIR)/aosp_arm64.mk \\\n    $(LOCAL_DIR)/aosp_arm.mk \\\n    $(LOCAL_DIR)/full.mk \\\n\n" +
		"else\nPRODUCT_MAKEFILES := \\\n    $(LOCAL_DIR)/aosp_64bitonly_x86_64.mk \\\n    $(LOCAL_DIR)/aosp_arm64.mk \\\n    $(LOCAL_DIR)/aosp_arm.mk \\\n    $(LOCAL_DIR)/aosp_x86_64.mk \\\n\n" +
		"endif\n\nPRODUCT_MAKEFILES += \\\n    $(LOCAL_DIR)/mainline_sdk.mk \\\n    $(LOCAL_DIR)/module_arm64.mk \\\n\n" +
		"COMMON_LUNCH_CHOICES := \\\n    aosp_arm64-trunk_staging-eng \\\n    aosp_x86_64-trunk_staging-eng \\\n"
	files["build/make/target/product/aosp_arm64.mk"] = "PRODUCT_ENFORCE_ARTIFACT_PATH_REQUIREMENTS := relaxed\n\n" +
		"$(call inherit-product, $(SRC_TARGET_DIR)/product/generic_system.mk)\n\nPRODUCT_NAME := aosp_arm64\nPRODUCT_DEVICE := generic_arm64\n"
	files["build/make/target/product/generic_system.mk"] = "PRODUCT_PACKAGES += \\\n    Browser2\n"
	return files
}

func TestResolveProductLineage21(t *testing.T) {
	root := writeTree(t, lineage21Products())
	tr := newTree(root)
	_, err := resolveProduct(tr, "")
	if err == nil || !strings.Contains(err.Error(), "declares 6 products") || !strings.Contains(err.Error(), "TARGET_PRODUCT") {
		t.Fatalf("default on a LineageOS 21 tree: %v", err)
	}
	for want, file := range map[string]string{
		"lineage_foo":       "device/acme/foo/lineage_foo.mk",
		"lineage_gsi_arm64": "vendor/lineage/build/target/product/lineage_gsi_arm64.mk",
		"aosp_arm64":        "build/make/target/product/aosp_arm64.mk",
	} {
		got, err := resolveProduct(tr, want)
		if err != nil || got != file {
			t.Errorf("--product %s: %q, %v; want %s", want, got, err, file)
		}
	}
	if _, err := resolveProduct(tr, "aosp_nothing"); err == nil || !strings.Contains(err.Error(), "build/make/target/product") {
		t.Errorf("unknown product: %v", err)
	}
}
