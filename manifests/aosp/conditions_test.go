package aosp

import (
	"strings"
	"testing"
)

// genericSystemMk is shaped like Android 14's build/make/target/product/generic_system.mk: the
// system image of a GSI-compliant product, which may install only under root/ and system/.
const genericSystemMk = "# This makefile is the basis of a generic system image for a handheld device.\n" +
	"$(call inherit-product, $(SRC_TARGET_DIR)/product/handheld_system.mk)\n" +
	"$(call inherit-product, $(SRC_TARGET_DIR)/product/telephony_system.mk)\n\n" +
	"# Shared java libs\nPRODUCT_PACKAGES += \\\n    com.android.nfc_extras \\\n\n" +
	"# Applications\nPRODUCT_PACKAGES += \\\n    LiveWallpapersPicker \\\n    PartnerBookmarksProvider \\\n    Stk \\\n    Tag \\\n\n" +
	"_base_mk_allowed_list :=\n\n" +
	"_my_allowed_list := $(_base_mk_allowed_list)\n\n" +
	"# For mainline, system.img should be mounted at /, so we include ROOT here.\n" +
	"_my_paths := \\\n  $(TARGET_COPY_OUT_ROOT)/ \\\n  $(TARGET_COPY_OUT_SYSTEM)/ \\\n\n" +
	"$(call require-artifacts-in-path, $(_my_paths), $(_my_allowed_list))\n"

func artifactTree(level string) map[string]string {
	files := lineage21Products()
	files["build/make/target/product/generic_system.mk"] = genericSystemMk
	files["device/acme/foo/lineage_foo.mk"] = "# Inherit from those products. Most specific first.\n" +
		"$(call inherit-product, $(SRC_TARGET_DIR)/product/core_64_bit_only.mk)\n" +
		"$(call inherit-product, $(SRC_TARGET_DIR)/product/generic_system.mk)\n\n" +
		"# Enable mainline checking\nPRODUCT_ENFORCE_ARTIFACT_PATH_REQUIREMENTS := " + level + "\n\n" +
		"$(call inherit-product, device/acme/foo/device.mk)\n" +
		"$(call inherit-product, vendor/lineage/config/common_full_phone.mk)\n\n" +
		"PRODUCT_NAME := lineage_foo\nPRODUCT_DEVICE := foo\n"
	return files
}

func TestArtifactPathRequirementsBlockSystem(t *testing.T) {
	root := writeTree(t, artifactTree("strict"))
	sysPolicy := strings.Replace(basePolicy, "partition: product", "partition: system", 1)
	p := prepare(t, root, loadPolicy(t, root, sysPolicy), func(o *Options) { o.Product = "lineage_foo" })
	var found string
	for _, b := range p.Blockers {
		if strings.Contains(b.Msg, "require-artifacts-in-path") {
			found = b.String()
		}
	}
	if !strings.HasPrefix(found, "ru.oneme.app: device/acme/foo/lineage_foo.mk:6: PRODUCT_ENFORCE_ARTIFACT_PATH_REQUIREMENTS := strict and build/make/target/product/generic_system.mk:25 calls") ||
		!strings.Contains(found, "partition: product") {
		t.Fatalf("blocker = %q\nall: %v", found, p.Blockers)
	}
	// On the product partition, nothing to say.
	p = prepare(t, root, loadPolicy(t, root, basePolicy), func(o *Options) { o.Product = "lineage_foo" })
	for _, b := range p.Blockers {
		if strings.Contains(b.Msg, "require-artifacts-in-path") {
			t.Fatalf("product partition blocked: %s", b)
		}
	}
	// relaxed: a note, not a blocker.
	root = writeTree(t, artifactTree("relaxed"))
	p = prepare(t, root, loadPolicy(t, root, sysPolicy), func(o *Options) { o.Product = "lineage_foo" })
	if p.Blocked() || !strings.Contains(strings.Join(p.Notes, "\n"), "PRODUCT_ENFORCE_ARTIFACT_PATH_REQUIREMENTS := relaxed") {
		t.Fatalf("relaxed: blockers %v notes %v", p.Blockers, p.Notes)
	}
}

// TestArtifactPathRequirementsConditional: aosp_arm64.mk enforces only "for exactly this product
// name"; with --product aosp_arm64 the condition is decided.
func TestArtifactPathRequirementsConditional(t *testing.T) {
	files := artifactTree("strict")
	files["device/acme/foo/lineage_foo.mk"] = strings.Replace(files["device/acme/foo/lineage_foo.mk"],
		"PRODUCT_ENFORCE_ARTIFACT_PATH_REQUIREMENTS := strict\n", "ifeq (lineage_foo,$(TARGET_PRODUCT))\nPRODUCT_ENFORCE_ARTIFACT_PATH_REQUIREMENTS := strict\nendif\n", 1)
	root := writeTree(t, files)
	sysPolicy := strings.Replace(basePolicy, "partition: product", "partition: system", 1)
	p := prepare(t, root, loadPolicy(t, root, sysPolicy), func(o *Options) { o.Product = "device/acme/foo/lineage_foo.mk" })
	var msg string
	for _, b := range p.Blockers {
		if strings.Contains(b.Msg, "require-artifacts-in-path") {
			msg = b.Msg
		}
	}
	if !strings.HasPrefix(msg, "conditionally: ") || !strings.Contains(msg, "ifeq (lineage_foo,$(TARGET_PRODUCT)) at device/acme/foo/lineage_foo.mk:6") ||
		!strings.Contains(msg, "--var TARGET_PRODUCT=<value>") {
		t.Fatalf("conditional blocker = %q", msg)
	}
	p = prepare(t, root, loadPolicy(t, root, sysPolicy), func(o *Options) { o.Product = "lineage_foo" })
	for _, b := range p.Blockers {
		if strings.Contains(b.Msg, "require-artifacts-in-path") && strings.HasPrefix(b.Msg, "conditionally") {
			t.Fatalf("product named, still conditional: %s", b)
		}
	}
}

// TestUndecidedConflictSaysSo: GmsCore overriding the app is in the product only when WITH_GMS is
// true, as microG's partner_gms is inherited in LineageOS device trees.
func TestUndecidedConflictSaysSo(t *testing.T) {
	files := map[string]string{}
	for k, v := range lineageTree {
		files[k] = v
	}
	files["device/acme/foo/lineage_foo.mk"] += "\nifeq ($(WITH_GMS),true)\n$(call inherit-product, vendor/partner_gms/products/gms.mk)\nendif\n"
	files["vendor/partner_gms/GmsCore/Android.mk"] = strings.Replace(files["vendor/partner_gms/GmsCore/Android.mk"],
		"LOCAL_OVERRIDES_PACKAGES := com.qualcomm.location", "LOCAL_OVERRIDES_PACKAGES := com.qualcomm.location Max", 1)
	root := writeTree(t, files)
	pol := loadPolicy(t, root, basePolicy)
	p := prepare(t, root, pol, nil)
	var msg string
	for _, b := range p.Blockers {
		if strings.Contains(b.Msg, "GmsCore overrides Max") {
			msg = b.String()
		}
	}
	want := "module GmsCore overrides Max and is in the product only when ifeq ($(WITH_GMS),true) at device/acme/foo/lineage_foo.mk:23, which provkit cannot decide; decide it with --var WITH_GMS=<value>"
	if !strings.Contains(msg, want) {
		t.Fatalf("blocker = %q\nwant it to contain %q", msg, want)
	}
	// Decided: WITH_GMS=false leaves GmsCore out, and nothing blocks.
	p = prepare(t, root, pol, func(o *Options) { o.Vars = map[string]string{"WITH_GMS": "false"} })
	if p.Blocked() {
		t.Fatalf("WITH_GMS=false: %v", p.Blockers)
	}
	p = prepare(t, root, pol, func(o *Options) { o.Vars = map[string]string{"WITH_GMS": "true"} })
	if len(p.Blockers) != 1 || !strings.Contains(p.Blockers[0].Msg, "overrides Max and is in the product, so") {
		t.Fatalf("WITH_GMS=true: %v", p.Blockers)
	}
}

// TestBuildMakeFunctionsInTheChain: a redfin-shaped device.mk whose PRODUCT_COPY_FILES come from
// find-copy-subdir-files, add-to-product-copy-files-if-exists and foreach: provkit follows them
// (here to a permission file for the app on the wrong partition), and what it cannot resolve is
// one grouped note unless Verbose.
func TestBuildMakeFunctionsInTheChain(t *testing.T) {
	files := copyTree(lineageTree)
	files["device/acme/foo/device.mk"] += "\n# Permissions\nPRODUCT_COPY_FILES += \\\n" +
		"    $(call find-copy-subdir-files,*,$(LOCAL_PATH)/permissions,$(TARGET_COPY_OUT_VENDOR)/etc/permissions)\n\n" +
		"PRODUCT_COPY_FILES += \\\n    $(call add-to-product-copy-files-if-exists, vendor/acme/foo/proprietary/missing.xml:$(TARGET_COPY_OUT_VENDOR)/etc/missing.xml)\n\n" +
		"PRODUCT_COPY_FILES += $(foreach f,$(wildcard $(LOCAL_PATH)/audio/*.xml),$(f):$(TARGET_COPY_OUT_VENDOR)/etc/$(notdir $(f)))\n\n" +
		"PRODUCT_PACKAGES += \\\n    $(TARGET_EXTRA_A) \\\n    $(call is-board-platform-in-list,lito)\n"
	files["device/acme/foo/permissions/privapp-permissions-messenger.xml"] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<permissions>\n" +
		"    <privapp-permissions package=\"ru.oneme.app\">\n        <permission name=\"android.permission.READ_PRIVILEGED_PHONE_STATE\"/>\n    </privapp-permissions>\n</permissions>\n"
	files["device/acme/foo/audio/mixer_paths.xml"] = "<mixer/>\n"
	root := writeTree(t, files)
	pol := loadPolicy(t, root, basePolicy)
	p := prepare(t, root, pol, nil)
	var found bool
	for _, b := range p.Blockers {
		if strings.Contains(b.String(), "device/acme/foo/permissions/privapp-permissions-messenger.xml") && strings.Contains(b.Msg, "installed to /vendor (PRODUCT_COPY_FILES at device/acme/foo/device.mk:") {
			found = true
		}
	}
	if !found {
		t.Fatalf("the find-copy-subdir-files copy was not followed: %v", p.Blockers)
	}
	notes := strings.Join(p.Notes, "\n")
	if !strings.Contains(notes, "3 product list entries use variables or functions provkit cannot resolve") || strings.Contains(notes, "add-to-product-copy-files-if-exists") {
		t.Fatalf("notes:\n%s", notes)
	}
	p = prepare(t, root, pol, func(o *Options) { o.Verbose = true })
	notes = strings.Join(p.Notes, "\n")
	for _, want := range []string{`PRODUCT_PACKAGES entry "$(TARGET_EXTRA_A)"`, `PRODUCT_PACKAGES entry "$(call is-board-platform-in-list,lito)"`} {
		if !strings.Contains(notes, want) {
			t.Errorf("verbose notes lack %s:\n%s", want, notes)
		}
	}
}
