package aosp

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/provkit/provkit/manifests/aosp/blueprint"
	"github.com/provkit/provkit/manifests/aosp/makefile"
	"github.com/provkit/provkit/manifests/policy"
)

// FuzzPolicyStrings puts arbitrary strings in every policy field that reaches a build file, loads
// the policy as provkit does, and when the loader accepts it, plans the patch of a LineageOS-shaped
// tree in both formats. Whatever the strings, the product makefiles keep every statement that is
// not provkit's, provkit's own block holds exactly "PRODUCT_PACKAGES += <module>", the generated
// Android.bp/Android.mk declare exactly the module meant, and the XML files are well-formed.
func FuzzPolicyStrings(f *testing.F) {
	f.Add("national-messenger", "Ministry of Digital Development", "Max", "GmsCore", "android.permission.READ_CONTACTS", "../packages/apps/Messenger.apk", false)
	f.Add("x\n$(shell touch /tmp/pwned)", "a", "Max", "Foo", "android.permission.A", "../packages/apps/Messenger.apk", true)
	f.Add("a --> <x/>", "\x1b[2J", "M$(X)", "$(HOME)", "p\"><x/>", "a\nb", false)
	f.Add("name \\", "", "Max", "a b", "android.permission.A", "../packages/apps/Messenger.apk", true)
	f.Add("Мессенджер 2025", "Минцифры", "Max", "com.qualcomm.location", "android.permission.POST_NOTIFICATIONS", "../packages/apps/Messenger.apk", false)
	root := writeTree(f, lineageTree)
	dir := filepath.Join(root, "policy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	polPath := filepath.Join(dir, "fuzz.yaml")
	f.Fuzz(func(t *testing.T, name, authority, module, override, perm, apk string, mk bool) {
		doc := map[string]any{
			"apiVersion": policy.APIVersion, "kind": policy.Kind,
			"metadata": map[string]any{"name": name, "authority": authority},
			"apps": []map[string]any{{
				"package": "ru.oneme.app", "apk": apk, "module": module, "partition": "product",
				"signers":   []map[string]any{{"sha256": testSigner, "name": authority}},
				"overrides": []string{override}, "grantPermissions": []string{perm},
			}},
		}
		text, err := yaml.Marshal(doc)
		if err != nil {
			return
		}
		if err := os.WriteFile(polPath, text, 0o644); err != nil {
			t.Fatal(err)
		}
		pol, err := policy.Load(polPath)
		if err != nil {
			if !errors.Is(err, policy.ErrInvalid) && !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("a policy error that names no file: %v", err)
			}
			return
		}
		o := Options{Policy: pol, Tree: root, Inspector: testInspector(), Product: "device/acme/foo/lineage_foo.mk"}
		if mk {
			o.Format = FormatMk
		}
		p, err := Prepare(context.Background(), o)
		if err != nil || p.Blocked() {
			return
		}
		wantModule := pol.Apps[0].ModuleName()
		for _, c := range p.Changes {
			if c.Binary {
				continue
			}
			switch {
			case strings.HasSuffix(c.Path, ".xml"):
				checkXML(t, c.Path, c.New)
			case isGenerated(c.New) && strings.HasSuffix(c.Path, "Android.bp"):
				bp, err := blueprint.Parse(c.Path, c.New)
				if err != nil {
					t.Fatalf("%s does not parse: %v\n%s", c.Path, err, c.New)
				}
				for _, m := range bp.Modules {
					for _, pr := range m.Props {
						if pr.Name == "name" {
							if s, ok := pr.Value.(*blueprint.String); !ok || (s.Value != wantModule && !strings.HasPrefix(s.Value, wantModule)) && !strings.HasSuffix(s.Value, ".xml") {
								t.Fatalf("%s declares module %#v, want %s", c.Path, pr.Value, wantModule)
							}
						}
					}
				}
			case isGenerated(c.New) && strings.HasSuffix(c.Path, ".mk"):
				mf, err := makefile.Parse(c.Path, c.New)
				if err != nil {
					t.Fatalf("%s does not parse: %v", c.Path, err)
				}
				for _, s := range mf.Stmts {
					if s.Kind == makefile.Assign && s.Name == "LOCAL_MODULE" && s.Value != wantModule && !strings.HasSuffix(s.Value, ".xml") {
						t.Fatalf("%s sets LOCAL_MODULE %q, want %s", c.Path, s.Value, wantModule)
					}
					if s.Kind == makefile.Assign && s.Name == "PRODUCT_PACKAGES" {
						for _, w := range makefile.Words(s.Value) {
							if w != module && !strings.HasSuffix(w, ".xml") {
								t.Fatalf("%s adds package %q, want only %s and its XML modules", c.Path, w, module)
							}
						}
					}
					if strings.Contains(s.Text, "$(shell") {
						t.Fatalf("%s holds a $(shell ...): %q", c.Path, s.Text)
					}
				}
			case strings.HasSuffix(c.Path, ".mk"):
				checkProductEdit(t, c, lineageTree[c.Path], wantModule, p.Dir)
			}
		}
	})
}

func checkXML(t *testing.T, name string, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v\n%s", name, err, b)
		}
	}
}

// checkProductEdit: every statement outside provkit's block is the original's, in order; inside
// it there is only PRODUCT_PACKAGES += <module> or the inherit-product of provkit's own
// preinstall.mk (and comments).
func checkProductEdit(t *testing.T, c Change, orig, module, dir string) {
	t.Helper()
	if string(c.Old) != orig {
		t.Fatalf("%s: the change does not start from the file's bytes", c.Path)
	}
	before, err := makefile.Parse(c.Path, c.Old)
	if err != nil {
		return
	}
	after, err := makefile.Parse(c.Path, c.New)
	if err != nil {
		t.Fatalf("%s no longer parses after the patch: %v", c.Path, err)
	}
	ranges := markedRanges(c.New)
	var outside []string
	for _, s := range after.Stmts {
		if inRanges(s.Start, ranges) {
			switch {
			case s.Kind == makefile.Comment || s.Kind == makefile.Blank:
			case s.Kind == makefile.Assign && s.Name == "PRODUCT_PACKAGES" && s.Op == "+=" && strings.Join(makefile.Words(s.Value), " ") == module:
			case s.Kind == makefile.Expr && s.Text == "$(call inherit-product, "+dir+"/preinstall.mk)":
			default:
				t.Fatalf("%s: provkit's block holds %s %q", c.Path, s.Kind, s.Text)
			}
			continue
		}
		outside = append(outside, s.Kind.String()+" "+s.Text)
	}
	var want []string
	for _, s := range before.Stmts {
		want = append(want, s.Kind.String()+" "+s.Text)
	}
	if strings.Join(outside, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s: statements outside provkit's block changed:\n%s\n---\n%s", c.Path, strings.Join(want, "\n"), strings.Join(outside, "\n"))
	}
}
