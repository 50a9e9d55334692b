package aosp

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// outsideTree writes the Lineage-like fixture under outer/tree with the given files replaced, and
// a product makefile at outer/outside.mk, outside the tree; it returns the tree's root and the
// outside file's path and content.
func outsideTree(t *testing.T, replace map[string]string) (root, outside, text string) {
	t.Helper()
	outer := t.TempDir()
	outside = filepath.Join(outer, "outside.mk")
	text = "PRODUCT_NAME := outside\nPRODUCT_PACKAGES += Dialer\n"
	if err := os.WriteFile(outside, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	files := copyTree(lineageTree)
	for k, v := range replace {
		files[k] = v
	}
	root = filepath.Join(outer, "tree")
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside, text
}

func unchangedFile(t *testing.T, p, want string) {
	t.Helper()
	if b, err := os.ReadFile(p); err != nil || string(b) != want {
		t.Fatalf("%s changed (%v):\n%s", p, err, b)
	}
}

// A product that AndroidProducts.mk (or --product) places outside the tree is refused: provkit
// would otherwise edit a file that is not part of the build tree it was given.
func TestProductOutsideTheTreeIsRefused(t *testing.T) {
	for name, tc := range map[string]struct{ androidProducts, product string }{
		"PRODUCT_MAKEFILES": {"PRODUCT_MAKEFILES := $(LOCAL_DIR)/../../../../outside.mk\n", ""},
		"--product":         {"", "../outside.mk"},
		"--product nested":  {"", "device/acme/../../../outside.mk"},
	} {
		t.Run(name, func(t *testing.T) {
			replace := map[string]string{}
			if tc.androidProducts != "" {
				replace["device/acme/foo/AndroidProducts.mk"] = tc.androidProducts
			}
			root, outside, text := outsideTree(t, replace)
			pol := loadPolicy(t, root, basePolicy)
			before := snapshot(t, root)
			_, err := Prepare(context.Background(), Options{Policy: pol, Tree: root, Product: tc.product, Inspector: testInspector()})
			if !errors.Is(err, ErrOutsideTree) {
				t.Fatalf("Prepare: err = %v, want %v", err, ErrOutsideTree)
			}
			unchangedFile(t, outside, text)
			if d := diffSnapshots(before, snapshot(t, root)); d != "" {
				t.Fatalf("tree changed:\n%s", d)
			}
		})
	}
}

// An inherit-product or include that climbs out of the tree is not followed (a note says so) and
// the patch goes into the product makefile inside the tree.
func TestInheritOutsideTheTreeIsNotFollowed(t *testing.T) {
	for _, line := range []string{"$(call inherit-product, ../outside.mk)", "include ../outside.mk", "$(call inherit-product, /etc/passwd)"} {
		t.Run(line, func(t *testing.T) {
			prod := "device/acme/foo/lineage_foo.mk"
			root, outside, text := outsideTree(t, map[string]string{prod: line + "\n" + lineageTree[prod]})
			pol := loadPolicy(t, root, basePolicy)
			p := prepare(t, root, pol, nil)
			if !strings.Contains(strings.Join(p.Notes, "\n"), "is outside the tree") {
				t.Errorf("no note about the makefile outside the tree: %q", p.Notes)
			}
			for _, c := range p.Changes {
				if !inTree(c.Path) {
					t.Errorf("the plan writes %s, outside the tree", c.Path)
				}
			}
			apply(t, p)
			unchangedFile(t, outside, text)
			if b, _ := os.ReadFile(filepath.Join(root, prod)); !strings.Contains(string(b), "preinstall.mk") {
				t.Errorf("%s does not inherit the preinstall makefile:\n%s", prod, b)
			}
		})
	}
}

// Apply itself refuses a change outside the tree before writing anything, whatever built the plan.
func TestApplyRefusesPathsOutsideTheTree(t *testing.T) {
	root, outside, text := outsideTree(t, nil)
	pol := loadPolicy(t, root, basePolicy)
	p := prepare(t, root, pol, nil)
	p.Changes = append(p.Changes, Change{Path: "../outside.mk", Action: "modify", New: []byte("x\n")})
	before := snapshot(t, root)
	if err := p.Apply(); !errors.Is(err, ErrOutsideTree) {
		t.Fatalf("Apply = %v, want %v", err, ErrOutsideTree)
	}
	unchangedFile(t, outside, text)
	if d := diffSnapshots(before, snapshot(t, root)); d != "" {
		t.Fatalf("tree changed:\n%s", d)
	}
}

func TestInTree(t *testing.T) {
	for rel, want := range map[string]bool{
		"device/acme/foo.mk": true, "device/acme/../common/x.mk": true, "a": true,
		"../x.mk": false, "a/../../x.mk": false, "/etc/passwd": false, "": false, "..": false,
	} {
		if got := inTree(rel); got != want {
			t.Errorf("inTree(%q) = %v, want %v", rel, got, want)
		}
	}
}

// A build file that is a symlink (repo's linkfile makes them) is scanned like the file it points
// to: an overrides in it still blocks the patch. A symlink to a directory is not entered.
func TestSymlinkedBuildFileIsScanned(t *testing.T) {
	files := copyTree(lineageTree)
	files["device/acme/common/overrides.bp"] = "android_app_import {\n    name: \"OldMessenger\",\n    apk: \"Old.apk\",\n    presigned: true,\n    overrides: [\"Max\"],\n}\n"
	files["device/acme/foo/device.mk"] += "PRODUCT_PACKAGES += OldMessenger\n"
	root := writeTree(t, files)
	if err := os.MkdirAll(filepath.Join(root, "device/acme/foo/old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../common/overrides.bp", filepath.Join(root, "device/acme/foo/old/Android.bp")); err != nil {
		t.Fatal(err)
	}
	// A directory link back up would loop if it were entered.
	if err := os.Symlink("../..", filepath.Join(root, "device/acme/foo/loop")); err != nil {
		t.Fatal(err)
	}
	pol := loadPolicy(t, root, basePolicy)
	p := prepare(t, root, pol, nil)
	found := false
	for _, b := range p.Blockers {
		if strings.Contains(b.String(), "device/acme/foo/old/Android.bp:1:") && strings.Contains(b.Msg, "overrides Max") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no blocker from the symlinked Android.bp; blockers:\n%v", p.Blockers)
	}
}

// A product makefile that is a symlink inside the tree is edited where it lives and stays a link;
// one that links out of the tree, or a module directory that does, is refused before anything is
// written.
func TestApplyThroughSymlinks(t *testing.T) {
	const prod = "device/acme/foo/lineage_foo.mk"
	linkProduct := func(t *testing.T, root, to string) {
		t.Helper()
		p := filepath.Join(root, prod)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(to, p); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("inside", func(t *testing.T) {
		files := copyTree(lineageTree)
		files["device/acme/common/lineage_foo.mk"] = files[prod]
		root := writeTree(t, files)
		linkProduct(t, root, "../common/lineage_foo.mk")
		pol := loadPolicy(t, root, basePolicy)
		apply(t, prepare(t, root, pol, nil))
		if fi, err := os.Lstat(filepath.Join(root, prod)); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Fatalf("%s is no longer a symlink (%v)", prod, err)
		}
		b, _ := os.ReadFile(filepath.Join(root, "device/acme/common/lineage_foo.mk"))
		if !strings.Contains(string(b), "preinstall.mk") {
			t.Fatalf("the link's target was not patched:\n%s", b)
		}
		// A second run finds the tree compliant through the link.
		if p := prepare(t, root, pol, nil); len(p.Changes) != 0 {
			t.Fatalf("second run changes %v", p.Changes)
		}
	})
	t.Run("product links outside", func(t *testing.T) {
		root, outside, text := outsideTree(t, nil)
		linkProduct(t, root, outside)
		pol := loadPolicy(t, root, basePolicy)
		p := prepare(t, root, pol, nil)
		before := snapshot(t, root)
		if err := p.Apply(); !errors.Is(err, ErrOutsideTree) {
			t.Fatalf("Apply = %v, want %v", err, ErrOutsideTree)
		}
		unchangedFile(t, outside, text)
		if d := diffSnapshots(before, snapshot(t, root)); d != "" {
			t.Fatalf("tree changed:\n%s", d)
		}
	})
	t.Run("module directory links outside", func(t *testing.T) {
		root, _, _ := outsideTree(t, nil)
		elsewhere := t.TempDir()
		if err := os.Symlink(elsewhere, filepath.Join(root, "vendor/acme")); err != nil {
			t.Fatal(err)
		}
		pol := loadPolicy(t, root, basePolicy)
		p := prepare(t, root, pol, func(o *Options) { o.Vendor = "acme" })
		if err := p.Apply(); !errors.Is(err, ErrOutsideTree) {
			t.Fatalf("Apply = %v, want %v", err, ErrOutsideTree)
		}
		if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
			t.Fatalf("provkit wrote outside the tree: %v", ents)
		}
	})
}
