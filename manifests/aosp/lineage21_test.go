package aosp

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readFixture loads testdata/<name> (a tree shaped like a LineageOS 21 checkout for the Pixel 5:
// build/make, vendor/lineage with its 16 GSI/SDK products, device/google/redfin, microG's
// partner_gms, .repo/project.list) as files for writeTree.
func readFixture(t *testing.T, name string) map[string]string {
	t.Helper()
	dir := filepath.Join("testdata", name)
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

const redfinPolicy = `apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata:
  name: national-messenger
apps:
  - package: ru.oneme.app
    apk: ../packages/apps/Messenger.apk
    module: Max
    signers: [{sha256: "` + testSigner + `"}]
    partition: product
    privileged: true
    privappPermissions: [android.permission.READ_LOGS]
`

func TestLineage21Redfin(t *testing.T) {
	files := readFixture(t, "lineage21")
	files["packages/apps/Messenger.apk"] = "fixture APK bytes"
	root := writeTree(t, files)
	tr := newTree(root)
	if _, err := resolveProduct(tr, ""); err == nil || !strings.Contains(err.Error(), "declares 17 products") {
		t.Fatalf("default product: %v", err)
	}
	if got, err := resolveProduct(tr, "aosp_arm64"); err != nil || got != "build/make/target/product/aosp_arm64.mk" {
		t.Fatalf("aosp_arm64: %q %v", got, err)
	}
	pol := loadPolicy(t, root, redfinPolicy)
	ins := testInspector()
	ins["Messenger.apk"].RequestedPermissions = append(ins["Messenger.apk"].RequestedPermissions, "android.permission.READ_LOGS", "android.permission.SET_ANIMATION_SCALE")
	opts := func(o *Options) { o.Product = "lineage_redfin"; o.Inspector = ins }
	p := prepare(t, root, pol, opts)
	var msgs []string
	for _, b := range p.Blockers {
		msgs = append(msgs, b.String())
	}
	all := strings.Join(msgs, "\n")
	// The tree's own manifest says SET_ANIMATION_SCALE is privileged, and the policy leaves it undecided.
	if len(p.Blockers) != 1 || !strings.Contains(all, "android.permission.SET_ANIMATION_SCALE") {
		t.Fatalf("blockers:\n%s", all)
	}
	pol = loadPolicy(t, root, strings.Replace(redfinPolicy, "[android.permission.READ_LOGS]", "[android.permission.READ_LOGS]\n    denyPrivappPermissions: [android.permission.SET_ANIMATION_SCALE]", 1))
	p = prepare(t, root, pol, opts)
	msgs = nil
	for _, b := range p.Blockers {
		msgs = append(msgs, b.String())
	}
	all = strings.Join(msgs, "\n")
	// microG's GmsCore overrides Max, but only WITH_GMS=true brings it in: a conditional blocker
	// saying how to decide. aosp_redfin.mk's relaxed artifact requirement is for aosp_redfin only.
	if len(p.Blockers) != 1 || !strings.Contains(all, "vendor/partner_gms/GmsCore/Android.mk:3: module GmsCore overrides Max and is in the product only when ifeq ($(WITH_GMS),true) at vendor/lineage/config/common.mk:41") ||
		!strings.Contains(all, "--var WITH_GMS=<value>") {
		t.Fatalf("blockers:\n%s", all)
	}
	notes := strings.Join(p.Notes, "\n")
	for _, want := range []string{
		"vendor/google/preinstall belongs to no git project of this repo checkout",
		"(e.g. device/google/redfin/preinstall)",
		"3 product list entries use variables or functions provkit cannot resolve",
		"privileged permissions", // source of the catalog is reported on the plan
	} {
		if want == "privileged permissions" {
			if !strings.Contains(p.PermissionSource, "frameworks/base/core/res/AndroidManifest.xml") {
				t.Errorf("permission source %q", p.PermissionSource)
			}
			continue
		}
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "add-to-product-copy-files-if-exists") || strings.Contains(notes, "find-copy-subdir-files") {
		t.Errorf("a known build/make function is reported unresolved:\n%s", notes)
	}
	// Decided: WITH_GMS=false. The patch applies, inside device/google/redfin, and a rerun is compliant.
	decided := func(o *Options) {
		opts(o)
		o.Vars = map[string]string{"WITH_GMS": "false"}
		o.Dir = "device/google/redfin/preinstall"
	}
	p = prepare(t, root, pol, decided)
	if p.Blocked() || strings.Contains(strings.Join(p.Notes, "\n"), "no git project") {
		t.Fatalf("WITH_GMS=false: blockers %v notes %v", p.Blockers, p.Notes)
	}
	if err := p.Apply(); err != nil {
		t.Fatal(err)
	}
	if p = prepare(t, root, pol, decided); !p.Compliant() {
		t.Fatalf("rerun: changes %v blockers %v", p.Changes, p.Blockers)
	}
	// A partition: system app on this product: the requirement is aosp_redfin's, not ours.
	sys := loadPolicy(t, root, strings.Replace(redfinPolicy, "partition: product", "partition: system", 1)+"    denyPrivappPermissions: [android.permission.SET_ANIMATION_SCALE]\n")
	p = prepare(t, root, sys, decided)
	for _, b := range p.Blockers {
		if strings.Contains(b.Msg, "require-artifacts-in-path") {
			t.Fatalf("lineage_redfin blocked by aosp_redfin's requirement: %s", b)
		}
	}
}
