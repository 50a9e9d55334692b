package aosp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/provkit/provkit/manifests/policy"
)

// Fixture trees are written by the tests, modelled on public trees: a LineageOS device tree
// (AndroidProducts.mk naming lineage_<device>.mk, which inherits vendor/lineage/config), LineageOS's
// vendor/lineage/config/common.mk (conditionals, PRODUCT_COPY_FILES, -include), MindTheGapps'
// vendor/gapps (soong_namespace, android_app_import, prebuilt_etc) and lineageos4microg's
// vendor/partner_gms (Android.mk prebuilts with LOCAL_OVERRIDES_PACKAGES, tab-indented lists).

const testSigner = "3f2a5c7e9b1d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f99"

var lineageTree = map[string]string{
	"device/acme/foo/AndroidProducts.mk": "PRODUCT_MAKEFILES := \\\n    $(LOCAL_DIR)/lineage_foo.mk\n\nCOMMON_LUNCH_CHOICES := \\\n    lineage_foo-userdebug\n",
	"device/acme/foo/lineage_foo.mk": "# Inherit from those products. Most specific first.\n" +
		"$(call inherit-product, $(SRC_TARGET_DIR)/product/core_64_bit.mk)\n" +
		"$(call inherit-product, $(SRC_TARGET_DIR)/product/full_base_telephony.mk)\n" +
		"\n# Inherit from foo device\n" +
		"$(call inherit-product, device/acme/foo/device.mk)\n" +
		"\n# GApps (MindTheGapps)\n$(call inherit-product-if-exists, vendor/gapps/arm64/arm64-vendor.mk)\n" +
		"\n# Inherit some common Lineage stuff.\n" +
		"$(call inherit-product, vendor/lineage/config/common_full_phone.mk)\n" +
		"\nPRODUCT_NAME := lineage_foo\nPRODUCT_DEVICE := foo\nPRODUCT_BRAND := Acme\nPRODUCT_MODEL := Foo\n" +
		"PRODUCT_MANUFACTURER := acme\n",
	"device/acme/foo/device.mk": "LOCAL_PATH := device/acme/foo\n\n" +
		"PRODUCT_SOONG_NAMESPACES += \\\n    $(LOCAL_PATH)\n\n" +
		"# Overlays\nDEVICE_PACKAGE_OVERLAYS += $(LOCAL_PATH)/overlay\n\n" +
		"PRODUCT_PACKAGES += \\\n    FooParts \\\n\tFooDoze \\\n    $(FOO_EXTRA)\n\n" +
		"ifeq ($(TARGET_HAS_NFC),true)\nPRODUCT_PACKAGES += \\\n    NfcNci\nendif\n\n" +
		"PRODUCT_COPY_FILES += \\\n    $(LOCAL_PATH)/configs/privapp-permissions-foo.xml:$(TARGET_COPY_OUT_SYSTEM_EXT)/etc/permissions/privapp-permissions-foo.xml\n",
	"device/acme/foo/configs/privapp-permissions-foo.xml": "<?xml version='1.0' encoding='utf-8'?>\n<!-- Example:\n  <privapp-permissions package=\"ru.oneme.app\"> is how an entry looks -->\n" +
		"<permissions>\n    <privapp-permissions package=\"org.acme.parts\">\n        <permission name=\"android.permission.WRITE_SECURE_SETTINGS\"/>\n    </privapp-permissions>\n</permissions>\n",
	"device/acme/foo/parts/Android.bp":           "android_app {\n    name: \"FooParts\",\n    srcs: [\"src/**/*.java\"],\n    certificate: \"platform\",\n    privileged: true,\n    system_ext_specific: true,\n}\n",
	"vendor/lineage/config/common_full_phone.mk": "# Inherit full common Lineage stuff\n$(call inherit-product, vendor/lineage/config/common_full.mk)\n\nPRODUCT_PACKAGES += \\\n    LineageParts\n",
	"vendor/lineage/config/common_full.mk":       "$(call inherit-product, vendor/lineage/config/common.mk)\n\nPRODUCT_PACKAGES += \\\n    Recorder\n",
	"vendor/lineage/config/common.mk": "# Allow vendor/extra to override any property by setting it first\n" +
		"$(call inherit-product-if-exists, vendor/extra/product.mk)\n\n" +
		"PRODUCT_BRAND ?= LineageOS\n\n" +
		"ifeq ($(TARGET_BUILD_VARIANT),eng)\n# Disable ADB authentication\nPRODUCT_SYSTEM_DEFAULT_PROPERTIES += ro.adb.secure=0\nelse\n" +
		"PRODUCT_SYSTEM_DEFAULT_PROPERTIES += ro.adb.secure=1\nendif\n\n" +
		"# Lineage packages\nPRODUCT_PACKAGES += \\\n    LineageSettingsProvider \\\n    Updater\n\n" +
		"ifeq ($(PRODUCT_IS_ATV),)\nPRODUCT_PACKAGES += \\\n    ExactCalculator \\\n    Jelly\nendif\n\n" +
		"ifneq ($(TARGET_BUILD_VARIANT),user)\nifeq ($(WITH_SU),true)\nPRODUCT_PACKAGES += \\\n    su\nendif\nendif\n\n" +
		"PRODUCT_COPY_FILES += \\\n    vendor/lineage/config/permissions/lineage-sysconfig.xml:$(TARGET_COPY_OUT_PRODUCT)/etc/sysconfig/lineage-sysconfig.xml\n\n" +
		"-include vendor/lineage-priv/keys/keys.mk\n",
	"vendor/lineage/config/permissions/lineage-sysconfig.xml": "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<config>\n    <allow-in-power-save package=\"org.lineageos.updater\" />\n</config>\n",
	"vendor/gapps/common/Android.bp": "// Automatically generated file. DO NOT MODIFY\n\nsoong_namespace {\n}\n\n" +
		"android_app_import {\n    name: \"GoogleCalendarSyncAdapter\",\n    owner: \"gapps\",\n    apk: \"proprietary/product/app/GoogleCalendarSyncAdapter/GoogleCalendarSyncAdapter.apk\",\n" +
		"    preprocessed: true,\n    presigned: true,\n    dex_preopt: {\n        enabled: false,\n    },\n    product_specific: true,\n}\n\n" +
		"prebuilt_etc {\n    name: \"privapp-permissions-google-product.xml\",\n    src: \"proprietary/product/etc/permissions/privapp-permissions-google-product.xml\",\n" +
		"    relative_install_path: \"permissions\",\n    filename_from_src: true,\n    product_specific: true,\n}\n",
	"vendor/gapps/common/proprietary/product/etc/permissions/privapp-permissions-google-product.xml": "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<permissions>\n" +
		"    <privapp-permissions package=\"com.google.android.gms\">\n        <permission name=\"android.permission.INSTALL_PACKAGES\"/>\n    </privapp-permissions>\n</permissions>\n",
	"vendor/partner_gms/GmsCore/Android.mk": "LOCAL_PATH := $(call my-dir)\n\ninclude $(CLEAR_VARS)\nLOCAL_MODULE := GmsCore\nLOCAL_SRC_FILES := GmsCore.apk\n" +
		"LOCAL_MODULE_CLASS := APPS\nLOCAL_PRIVILEGED_MODULE := true\nLOCAL_MODULE_SUFFIX := $(COMMON_ANDROID_PACKAGE_SUFFIX)\nLOCAL_CERTIFICATE := PRESIGNED\n" +
		"LOCAL_OVERRIDES_PACKAGES := com.qualcomm.location\nLOCAL_PRODUCT_MODULE := true\ninclude $(BUILD_PREBUILT)\n\n" +
		"$(LOCAL_PATH)/GmsCore.stamp: $(LOCAL_PATH)/GmsCore.apk\n\t@echo \"Stamping $@\"\n\t$(hide) touch $@ \\\n\t    && true\n",
	"vendor/gapps/arm64/arm64-vendor.mk":     "# This file is generated by device/gapps//setup-makefiles.sh\n\n\nPRODUCT_PACKAGES += \\\n    AndroidMediaShell \\\n    Katniss\n\n$(call inherit-product, vendor/gapps/common/common-vendor.mk)\n",
	"vendor/gapps/common/common-vendor.mk":   "PRODUCT_SOONG_NAMESPACES += \\\n    vendor/gapps/common\n\nPRODUCT_PACKAGES += \\\n    GoogleCalendarSyncAdapter \\\n    privapp-permissions-google-product.xml\n",
	"vendor/partner_gms/products/gms.mk":     "PRODUCT_PACKAGES += \\\n\tGmsCore \\\n\tFakeStore\n",
	"packages/apps/Messenger.apk":            "fixture APK bytes",
	"vendor/partner_gms/GmsCore/GmsCore.apk": "fixture gms APK",
}

// writeTree materialises files under a new temporary directory.
func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// snapshot returns every file and directory under root with the SHA-256 of its content.
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			out[rel+"/"] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffSnapshots(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, fmt.Sprintf("%s: %s -> %s", k, v, b[k]))
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("%s: added (%s)", k, v))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// fakeInspector returns facts the test supplies, keyed by APK base name; it stands in for
// firmware/apk in tests of the patcher's own logic.
type fakeInspector map[string]*APKFacts

func (f fakeInspector) InspectAPK(_ context.Context, p string) (*APKFacts, error) {
	if facts, ok := f[filepath.Base(p)]; ok {
		c := *facts
		return &c, nil
	}
	return nil, fmt.Errorf("reading APK %s: not a fixture APK", p)
}

func messengerFacts() *APKFacts {
	return &APKFacts{APKFacts: policy.APKFacts{Package: "ru.oneme.app", VersionCode: 42, Verified: true, Signers: []string{testSigner}},
		RequestedPermissions: []string{"android.permission.INTERNET", "android.permission.POST_NOTIFICATIONS", "android.permission.READ_CONTACTS"}}
}

func testInspector() fakeInspector {
	return fakeInspector{
		"Messenger.apk": messengerFacts(),
		"GmsCore.apk":   {APKFacts: policy.APKFacts{Package: "com.google.android.gms", Verified: true, Signers: []string{testSigner}}},
	}
}

const basePolicy = `apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata:
  name: national-messenger
apps:
  - package: ru.oneme.app
    apk: ../packages/apps/Messenger.apk
    module: Max
    signers: [{sha256: "` + testSigner + `"}]
    minVersionCode: 1
    partition: product
    grantPermissions: [android.permission.POST_NOTIFICATIONS, android.permission.READ_CONTACTS]
`

// loadPolicy writes a policy into root/policy/ and loads it.
func loadPolicy(t testing.TB, root, text string) *policy.Policy {
	t.Helper()
	dir := filepath.Join(root, "policy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func prepare(t testing.TB, root string, pol *policy.Policy, mod func(*Options)) *Plan {
	t.Helper()
	o := Options{Policy: pol, Tree: root, Inspector: testInspector()}
	if mod != nil {
		mod(&o)
	}
	p, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return p
}
