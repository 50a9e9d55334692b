package patch

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/manifests/aosp"
	"github.com/provkit/provkit/manifests/policy"
)

const signer = "3f2a5c7e9b1d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f99"

var tree = map[string]string{
	"device/acme/foo/AndroidProducts.mk": "PRODUCT_MAKEFILES := $(LOCAL_DIR)/acme_foo.mk\n",
	"device/acme/foo/acme_foo.mk":        "$(call inherit-product, device/acme/foo/device.mk)\nPRODUCT_NAME := acme_foo\n",
	"device/acme/foo/device.mk":          "PRODUCT_PACKAGES += \\\n    AcmeCamera\n",
	"apks/messenger.apk":                 "fixture",
	"policy.yaml": `apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: national-messenger}
apps:
  - package: ru.oneme.app
    apk: apks/messenger.apk
    module: Max
    signers: [{sha256: "` + signer + `"}]
`,
}

type fakeInspector struct{ facts aosp.APKFacts }

func (f fakeInspector) InspectAPK(context.Context, string) (*aosp.APKFacts, error) {
	c := f.facts
	return &c, nil
}

func good() fakeInspector {
	return fakeInspector{aosp.APKFacts{APKFacts: policy.APKFacts{Package: "ru.oneme.app", VersionCode: 3, Verified: true, Signers: []string{signer}}}}
}

func setup(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for rel, c := range tree {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func run(t *testing.T, root string, ins aosp.Inspector, args ...string) (string, string, int) {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	cmd := NewCmdPatch(ios, func(ctx context.Context, o *Options) error {
		o.Inspector = ins
		return patchRun(ctx, o)
	})
	cmd.SetArgs(append([]string{"--policy", filepath.Join(root, "policy.yaml"), "--tree", root}, args...))
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), cmdutil.ExitCode(err)
}

func TestPatchModes(t *testing.T) {
	root := setup(t)
	out, _, code := run(t, root, good(), "--check")
	if code != cmdutil.ExitNotCompliant || !strings.Contains(out, "NOT COMPLIANT vendor/acme/preinstall/Max/Android.bp is missing") {
		t.Fatalf("check before: %d\n%s", code, out)
	}
	out, errOut, code := run(t, root, good(), "--dry-run")
	if code != 0 || !strings.Contains(out, "+++ b/vendor/acme/preinstall/Max/Android.bp") || !strings.Contains(errOut, "nothing was written") {
		t.Fatalf("dry-run: %d\n%s\n%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(root, "vendor")); !os.IsNotExist(err) {
		t.Fatal("dry-run wrote to the tree")
	}
	out, _, code = run(t, root, good())
	if code != 0 || !strings.Contains(out, "create vendor/acme/preinstall/preinstall.mk") || !strings.Contains(out, "modify device/acme/foo/acme_foo.mk") {
		t.Fatalf("apply: %d\n%s", code, out)
	}
	out, _, code = run(t, root, good())
	if code != 0 || strings.TrimSpace(out) != "nothing to change" {
		t.Fatalf("second apply: %d\n%s", code, out)
	}
	out, _, code = run(t, root, good(), "--check")
	if code != 0 || !strings.HasPrefix(out, "compliant") {
		t.Fatalf("check after: %d\n%s", code, out)
	}
	out, _, code = run(t, root, good(), "--check", "--json")
	var rep report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || !rep.Compliant || rep.Mode != "check" || rep.Product != "device/acme/foo/acme_foo.mk" {
		t.Fatalf("check --json: %d %v\n%s", code, err, out)
	}
	out, _, code = run(t, root, good(), "--revert")
	if code != 0 || !strings.Contains(out, "delete vendor/acme/preinstall/Max/Max.apk") {
		t.Fatalf("revert: %d\n%s", code, out)
	}
	for rel, want := range tree {
		got, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil || string(got) != want {
			t.Errorf("%s after revert: %v\n%s", rel, err, got)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "vendor")); !os.IsNotExist(err) {
		t.Error("revert left vendor/")
	}
}

func TestPatchBlockedExit4(t *testing.T) {
	root := setup(t)
	bad := good()
	bad.facts.Signers = []string{strings.Repeat("00", 32)}
	out, errOut, code := run(t, root, bad)
	if code != cmdutil.ExitNotCompliant || !strings.Contains(out, "BLOCKED ru.oneme.app") || !strings.Contains(out, "signer-pinned") || !strings.Contains(errOut, "nothing was written") {
		t.Fatalf("%d\n%s\n%s", code, out, errOut)
	}
	out, _, code = run(t, root, bad, "--json")
	var rep report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 4 || len(rep.Blockers) != 1 || rep.Blockers[0].App != "ru.oneme.app" {
		t.Fatalf("json: %d %v\n%s", code, err, out)
	}
	if _, err := os.Stat(filepath.Join(root, "vendor")); !os.IsNotExist(err) {
		t.Fatal("a blocked patch wrote to the tree")
	}
}

func TestPatchUsageErrors(t *testing.T) {
	root := setup(t)
	for _, args := range [][]string{
		{"--format", "gradle"},
		{"--placement", "sideways"},
		{"--dry-run", "--check"},
		{"--var", "NOEQUALS"},
		{"--dir", "vendor/$(HOME)"},
		{"extra-arg"},
	} {
		if _, _, code := run(t, root, good(), args...); code != cmdutil.ExitUsage {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if _, errOut, code := run(t, root, good(), "--product", "nope"); code != cmdutil.ExitError {
		t.Errorf("unknown product: exit %d %s", code, errOut)
	}
}

// snapshot records every path of a tree with its type and content.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(b)
		case d.Type()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "symlink " + target
		default:
			out[rel] = d.Type().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPatchHostileTree: a half-written or hostile tree gets an error naming the file (and line)
// and what was expected; nothing is written; a FIFO or a symlink loop never hangs the command.
func TestPatchHostileTree(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string // "FIFO" makes a named pipe
		links map[string]string
		scan  []string
		want  string // in the error; "" means the patch succeeds
	}{
		{name: "unterminated ifeq in the product makefile",
			files: map[string]string{"device/acme/foo/acme_foo.mk": "ifeq ($(A),b)\n$(call inherit-product, device/acme/foo/device.mk)\nPRODUCT_NAME := acme_foo\n"},
			want:  "device/acme/foo/acme_foo.mk:1: missing endif: the ifeq opened here is never closed"},
		{name: "unterminated ifdef in an inherited makefile",
			files: map[string]string{"device/acme/foo/device.mk": "PRODUCT_PACKAGES += \\\n    AcmeCamera\nifdef X\n"},
			want:  "device/acme/foo/device.mk:3: missing endif: the ifdef opened here is never closed"},
		{name: "unterminated ifeq in a scanned Android.mk",
			files: map[string]string{"vendor/other/Android.mk": "LOCAL_PATH := $(call my-dir)\nifeq ($(A),b)\ninclude $(CLEAR_VARS)\n"},
			want:  "vendor/other/Android.mk:2: missing endif"},
		{name: "unclosed brace in a scanned Android.bp",
			files: map[string]string{"vendor/other/Android.bp": "android_app_import {\n    name: \"x\",\n"},
			want:  "vendor/other/Android.bp:3:1: expected a property name or \"}\", found end of file"},
		{name: "half-written permission XML",
			files: map[string]string{"vendor/other/privapp-permissions-x.xml": "<permissions>\n<privapp-permissions package=\"x\">\n"},
			want:  "vendor/other/privapp-permissions-x.xml:3: not well-formed XML"},
		{name: "an inherited makefile that is a FIFO",
			files: map[string]string{"device/acme/foo/device.mk": "FIFO"},
			want:  "reading device/acme/foo/device.mk: a named pipe (FIFO), not a file"},
		{name: "an included path that is a directory",
			files: map[string]string{"device/acme/foo/sub.mk/x": "", "device/acme/foo/acme_foo.mk": "include device/acme/foo/sub.mk\nPRODUCT_NAME := acme_foo\n"},
			want:  "reading device/acme/foo/sub.mk: a directory, not a file"},
		{name: "symlink loops under --scan are not followed",
			links: map[string]string{"vendor/loop/self": ".", "vendor/loop/a/up": "../../loop"},
			scan:  []string{"vendor"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := setup(t)
			for rel, c := range tc.files {
				p := filepath.Join(root, rel)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				os.Remove(p)
				if c == "FIFO" {
					if err := syscall.Mkfifo(p, 0o644); err != nil {
						t.Skipf("no FIFOs here: %v", err)
					}
					continue
				}
				if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for rel, target := range tc.links {
				p := filepath.Join(root, rel)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, p); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, root)
			ios, _, _, _ := iostreams.Test()
			err := patchRun(context.Background(), &Options{IO: ios, PolicyPath: filepath.Join(root, "policy.yaml"), Tree: root, Scan: tc.scan, Inspector: good()})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), root) {
				t.Fatalf("error %v\nwant it to contain %q and to name files relative to the tree", err, tc.want)
			}
			if cmdutil.ExitCode(err) != cmdutil.ExitError {
				t.Errorf("exit %d, want 1", cmdutil.ExitCode(err))
			}
			if after := snapshot(t, root); !maps.Equal(before, after) {
				t.Errorf("the tree changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// TestPatchProductFromLunch: with two products and no --product, TARGET_PRODUCT (what lunch sets)
// picks one; --product still wins.
func TestPatchProductFromLunch(t *testing.T) {
	root := setup(t)
	other := filepath.Join(root, "device/acme/bar")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(other, "AndroidProducts.mk"), []byte("PRODUCT_MAKEFILES := $(LOCAL_DIR)/acme_bar.mk\n"), 0o644)
	os.WriteFile(filepath.Join(other, "acme_bar.mk"), []byte("PRODUCT_NAME := acme_bar\n"), 0o644)
	t.Setenv("TARGET_PRODUCT", "")
	if _, errOut, code := run(t, root, good(), "--check"); code != 1 {
		t.Fatalf("two products, no TARGET_PRODUCT: exit %d\n%s", code, errOut)
	}
	t.Setenv("TARGET_PRODUCT", "acme_bar")
	t.Setenv("TARGET_BUILD_VARIANT", "user")
	out, errOut, code := run(t, root, good(), "--dry-run")
	if code != 0 || !strings.Contains(out, "device/acme/bar/acme_bar.mk") || !strings.Contains(errOut, "product acme_bar from TARGET_PRODUCT") ||
		!strings.Contains(errOut, "TARGET_BUILD_VARIANT=user from the environment") {
		t.Fatalf("TARGET_PRODUCT=acme_bar: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = run(t, root, good(), "--dry-run", "--product", "acme_foo")
	if code != 0 || !strings.Contains(out, "device/acme/foo/acme_foo.mk") {
		t.Fatalf("--product acme_foo: exit %d\n%s", code, out)
	}
}

func TestPatchModuleDir(t *testing.T) {
	root := setup(t)
	t.Setenv("TARGET_PRODUCT", "")
	out, errOut, code := run(t, root, good(), "--module-dir", "device/acme/foo/preinstall")
	if code != 0 || !strings.Contains(out, "device/acme/foo/preinstall/Max/Android.bp") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if _, _, code := run(t, root, good(), "--check", "--module-dir", "device/acme/foo/preinstall"); code != 0 {
		t.Fatalf("--check after --module-dir: exit %d", code)
	}
}
