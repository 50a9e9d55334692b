package aosp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzTreeSDKLevel feeds arbitrary bytes as version_defaults.mk and as a release flag value:
// never a panic, a level is either 0 with a reason or 1-999 with the file it came from.
func FuzzTreeSDKLevel(f *testing.F) {
	f.Add([]byte("PLATFORM_SDK_VERSION := 34\n"), []byte(""))
	f.Add([]byte("PLATFORM_SDK_VERSION := $(RELEASE_PLATFORM_SDK_VERSION)\n"), []byte("name: \"RELEASE_PLATFORM_SDK_VERSION\"\nvalue: { string_value: \"35\" }\n"))
	f.Add([]byte("PLATFORM_SDK_VERSION ?= 99999999999999999999\n"), []byte("RELEASE_PLATFORM_SDK_VERSION value: 9"))
	f.Fuzz(func(t *testing.T, defaults, release []byte) {
		root := t.TempDir()
		for rel, body := range map[string][]byte{
			versionDefaults: defaults,
			"build/release/flag_values/x/RELEASE_PLATFORM_SDK_VERSION.textproto": release,
		} {
			p := filepath.Join(root, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		api, where := treeSDKLevel(newTree(root))
		if api < 0 || api >= 1000 || where == "" {
			t.Fatalf("level %d from %q", api, where)
		}
		if api > 0 && !strings.Contains(where, versionDefaults) && !strings.Contains(where, releaseDir) {
			t.Fatalf("level %d from %q, which is not a file it read", api, where)
		}
	})
}

// FuzzParsePrivTable: arbitrary table text is either rejected or yields a sourced, non-empty set
// of well-formed permission names.
func FuzzParsePrivTable(f *testing.F) {
	f.Add([]byte("# source: r p @ c\nandroid.permission.A\n"))
	f.Add([]byte("# source: x\nandroid.permission.A # featureFlag a.b\ncom.android.permission.B\n"))
	f.Add([]byte("android.permission.A\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		tb, err := parsePrivTable(34, "api34.txt", src)
		if err != nil {
			return
		}
		if tb.source == "" || len(tb.perms) == 0 {
			t.Fatalf("accepted a table without source or entries: %+v", tb)
		}
		for p := range tb.perms {
			if !permNameRe.MatchString(p) {
				t.Fatalf("accepted %q", p)
			}
		}
	})
}
