package aosp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrivilegedTablesKnownFacts checks each built-in table against protection levels read from
// the AOSP manifests by hand: a table that lost or gained these by a transcription slip fails.
func TestPrivilegedTablesKnownFacts(t *testing.T) {
	levels := PrivilegedLevels()
	if len(levels) == 0 {
		t.Fatal("no built-in table")
	}
	// Privileged at every level 29-35.
	always := []string{"INSTALL_PACKAGES", "MANAGE_USERS", "SET_ANIMATION_SCALE", "WRITE_SECURE_SETTINGS", "READ_LOGS",
		"DUMP", "REBOOT", "STATUS_BAR", "BACKUP", "MODIFY_PHONE_STATE", "READ_PRIVILEGED_PHONE_STATE", "PACKAGE_USAGE_STATS",
		"CHANGE_COMPONENT_ENABLED_STATE", "INTERACT_ACROSS_USERS", "BIND_APPWIDGET", "WRITE_GSERVICES"}
	// Never privileged at 29-35: signature only, or not signature at all.
	never := []string{"INTERNET", "CAMERA", "INTERACT_ACROSS_USERS_FULL", "MANAGE_SENSOR_PRIVACY", "BIND_JOB_SERVICE",
		"CREATE_USERS", "REQUEST_INSTALL_PACKAGES", "SYSTEM_ALERT_WINDOW", "NETWORK_SETTINGS", "INJECT_EVENTS"}
	// introduced[p] is the first level whose table has p (privileged from its introduction on).
	introduced := map[string]int{
		"LOADER_USAGE_STATS":        30, // Android 11: signature|privileged|appop
		"MANAGE_ROLLBACKS":          30, // signature|verifier in Android 10
		"SYSTEM_CAMERA":             30, // Android 11: "system|signature", system being the old name of privileged
		"UWB_PRIVILEGED":            31, // Android 12
		"UPDATE_FONTS":              31,
		"RENOUNCE_PERMISSIONS":      31, // YAAP, the API 33 source, lowers it to normal; AOSP does not
		"SEND_SAFETY_CENTER_UPDATE": 33, // Android 13: internal|privileged
		"READ_SAFETY_CENTER_STATUS": 33,
		"QUERY_CLONED_APPS":         34, // Android 14
		"SATELLITE_COMMUNICATION":   34,
		"SCHEDULE_EXACT_ALARM":      34, // normal|appop until Android 13, signature|privileged|appop in 14
		"QUERY_USERS":               34, // signature|role in 13, signature|privileged|role in 14
		"THREAD_NETWORK_PRIVILEGED": 35, // Android 15
	}
	// Privileged at some levels only: the levels that have it.
	only := map[string][]int{
		"INTERACT_ACROSS_PROFILES": {29}, // signature|privileged in 10, signature|appop from 11
	}
	for _, api := range levels {
		set, src, ok := PrivilegedPermissions(api)
		if !ok || src == "" {
			t.Fatalf("API %d: ok=%v source=%q", api, ok, src)
		}
		if !strings.Contains(src, "core/res/AndroidManifest.xml @ ") {
			t.Errorf("API %d: source %q does not name the manifest and its commit", api, src)
		}
		// API 28 had 192; every later release adds some.
		if n := len(set); n < 200 || n > 400 {
			t.Errorf("API %d: %d privileged permissions, want 200-400", api, n)
		}
		for _, p := range always {
			if !set["android.permission."+p] {
				t.Errorf("API %d: %s is missing", api, p)
			}
		}
		for _, p := range never {
			if set["android.permission."+p] {
				t.Errorf("API %d: %s is not privileged", api, p)
			}
		}
		for p, at := range only {
			want := false
			for _, l := range at {
				want = want || l == api
			}
			if got := set["android.permission."+p]; got != want {
				t.Errorf("API %d: %s in table = %v, want %v (privileged at API %v only)", api, p, got, want, at)
			}
		}
		for p, from := range introduced {
			if got := set["android.permission."+p]; got != (api >= from) {
				t.Errorf("API %d: %s in table = %v, want %v (privileged from API %d)", api, p, got, api >= from, from)
			}
		}
	}
	// Roughly monotonic: each level keeps at least 95% of the previous one.
	for i := 1; i < len(levels); i++ {
		prev, _, _ := PrivilegedPermissions(levels[i-1])
		cur, _, _ := PrivilegedPermissions(levels[i])
		kept := 0
		for p := range prev {
			if cur[p] {
				kept++
			}
		}
		if kept*100 < len(prev)*95 || len(cur) < len(prev) {
			t.Errorf("API %d keeps %d of API %d's %d privileged permissions and has %d", levels[i], kept, levels[i-1], len(prev), len(cur))
		}
	}
	if _, _, ok := PrivilegedPermissions(28); ok {
		t.Error("a table for API 28, which provkit does not ship")
	}
}

// TestPrivilegedPermissionsIsACopy: a caller changing the returned set does not change the table.
func TestPrivilegedPermissionsIsACopy(t *testing.T) {
	api := PrivilegedLevels()[0]
	a, _, _ := PrivilegedPermissions(api)
	delete(a, "android.permission.INSTALL_PACKAGES")
	b, _, _ := PrivilegedPermissions(api)
	if !b["android.permission.INSTALL_PACKAGES"] {
		t.Fatal("deleting from the returned set changed the table")
	}
}

func TestParsePrivTableRejects(t *testing.T) {
	for name, src := range map[string]string{
		"no source":  "android.permission.A\n",
		"bad name":   "# source: x\nandroid permission A\n",
		"twice":      "# source: x\nandroid.permission.A\nandroid.permission.A\n",
		"empty":      "# source: x\n",
		"bare word":  "# source: x\nINSTALL_PACKAGES\n",
		"injected <": "# source: x\nandroid.permission.A<b\n",
	} {
		if _, err := parsePrivTable(34, "api34.txt", []byte(src)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	tb, err := parsePrivTable(34, "api34.txt", []byte("# header\n# source: repo path @ c\n\nandroid.permission.A # featureFlag a.b\ncom.android.permission.B\n"))
	if err != nil || len(tb.perms) != 2 || tb.source != "repo path @ c" {
		t.Fatalf("table %+v, %v", tb, err)
	}
}

func TestTableFor(t *testing.T) {
	levels := PrivilegedLevels()
	oldest, newest := levels[0], levels[len(levels)-1]
	for _, tc := range []struct {
		api, want int
		why       string
	}{
		{newest, newest, ""},
		{oldest, oldest, ""},
		{0, newest, "unknown"},
		{newest + 1, newest, "no privileged permission table for API"},
		{oldest - 1, oldest, "the oldest"},
		// Android 12L (32) has no table: the next older one (Android 12's) answers for it.
		{32, 31, "API 31's was used"},
	} {
		tb, why := tableFor(tc.api)
		if tb.api != tc.want || (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
			t.Errorf("tableFor(%d) = API %d, %q; want API %d, %q", tc.api, tb.api, why, tc.want, tc.why)
		}
	}
}

func TestTreeSDKLevel(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int
		where string
	}{
		{"android 14 style", map[string]string{versionDefaults: "ifndef PLATFORM_SDK_VERSION\n  # The canonical SDK version\n  PLATFORM_SDK_VERSION := 34\nendif\n"}, 34, versionDefaults + ":3"},
		{"android 15 release flag", map[string]string{
			versionDefaults: "ifndef PLATFORM_SDK_VERSION\n  PLATFORM_SDK_VERSION := $(RELEASE_PLATFORM_SDK_VERSION)\nendif\n",
			"build/release/flag_values/ap3a/RELEASE_PLATFORM_SDK_VERSION.textproto": "name: \"RELEASE_PLATFORM_SDK_VERSION\"\nvalue: {\n  string_value: \"35\"\n}\n",
		}, 35, "RELEASE_PLATFORM_SDK_VERSION.textproto"},
		{"release flags disagree", map[string]string{
			versionDefaults: "PLATFORM_SDK_VERSION := $(RELEASE_PLATFORM_SDK_VERSION)\n",
			"build/release/flag_values/a/RELEASE_PLATFORM_SDK_VERSION.textproto": "name: \"RELEASE_PLATFORM_SDK_VERSION\" value: { string_value: \"35\" }\n",
			"build/release/flag_values/b/RELEASE_PLATFORM_SDK_VERSION.textproto": "name: \"RELEASE_PLATFORM_SDK_VERSION\" value: { string_value: \"36\" }\n",
		}, 0, "disagree"},
		{"no build/make", map[string]string{"device/x/y.mk": ""}, 0, "no readable"},
		{"no number", map[string]string{versionDefaults: "# nothing here\n"}, 0, "sets no PLATFORM_SDK_VERSION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for rel, body := range tc.files {
				p := filepath.Join(root, filepath.FromSlash(rel))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, where := treeSDKLevel(newTree(root))
			if got != tc.want || !strings.Contains(where, tc.where) {
				t.Fatalf("level %d from %q; want %d from %q", got, where, tc.want, tc.where)
			}
		})
	}
}

// TestPatchUsesLevelTableWithoutFrameworks: a tree without frameworks/base is checked against
// the table of its own API level (from version_defaults.mk), an undecided privileged permission
// blocks, and the plan says which table was used; --api-level overrides; an unknown level uses
// the newest table and says so.
func TestPatchUsesLevelTableWithoutFrameworks(t *testing.T) {
	newest := PrivilegedLevels()[len(PrivilegedLevels())-1]
	for _, tc := range []struct {
		name      string
		sdk       string // version_defaults.mk body; "" for none
		flag      int
		wantAPI   int
		wantNote  string
		wantWhere string
	}{
		{"tree level", "  PLATFORM_SDK_VERSION := 34\n", 0, 34, "", versionDefaults + ":1"},
		{"flag", "  PLATFORM_SDK_VERSION := 34\n", newest, newest, "", "--api-level"},
		{"unknown", "", 0, newest, "unknown, so the newest built-in table", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := copyTree(lineageTree)
			if tc.sdk != "" {
				files[versionDefaults] = tc.sdk
			}
			root := writeTree(t, files)
			pol := loadPolicy(t, root, strings.Replace(basePolicy, "    partition: product\n", "    partition: product\n    privileged: true\n    privappPermissions: [android.permission.INSTALL_PACKAGES]\n", 1))
			ins := testInspector()
			ins["Messenger.apk"].RequestedPermissions = append(ins["Messenger.apk"].RequestedPermissions,
				"android.permission.INSTALL_PACKAGES", "android.permission.SET_ANIMATION_SCALE", "android.permission.INTERNET")
			p := prepare(t, root, pol, func(o *Options) { o.Inspector = ins; o.APILevel = tc.flag })
			if !p.Blocked() || strings.Join(p.Apps[0].Uncovered, ",") != "android.permission.SET_ANIMATION_SCALE" {
				t.Fatalf("blockers %v, uncovered %v", p.Blockers, p.Apps[0].Uncovered)
			}
			if !strings.Contains(p.PermissionSource, fmt.Sprintf("privileged platform permissions of API %d (", tc.wantAPI)) ||
				!strings.Contains(p.PermissionSource, "as the tree has no "+frameworkManifest) {
				t.Errorf("permission source = %q", p.PermissionSource)
			}
			if tc.wantWhere != "" && !strings.Contains(p.PermissionSource, "from "+tc.wantWhere) {
				t.Errorf("permission source %q does not say the level came from %s", p.PermissionSource, tc.wantWhere)
			}
			notes := strings.Join(p.Notes, "\n")
			if tc.wantNote != "" && !strings.Contains(notes, tc.wantNote) {
				t.Errorf("no note %q in:\n%s", tc.wantNote, notes)
			}
			if tc.wantNote == "" && strings.Contains(notes, "privileged permissions:") {
				t.Errorf("unexpected table note:\n%s", notes)
			}
		})
	}
	// A level outside the tables is refused as an option only when it is not an API level.
	root := writeTree(t, copyTree(lineageTree))
	pol := loadPolicy(t, root, basePolicy)
	if _, err := Prepare(context.Background(), Options{Policy: pol, Tree: root, APILevel: -3, Inspector: testInspector()}); !errors.Is(err, ErrBadOptions) {
		t.Fatalf("APILevel -3: %v", err)
	}
}
