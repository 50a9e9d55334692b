package aosp

import (
	"strings"
	"testing"
)

// gsfAllowlist is Google's privapp-permissions entry for com.google.android.gsf (Android 14,
// privapp-permissions-google-se.xml of MindTheGapps and the Pixel images): 19 permissions.
var gsfAllowlist = []string{
	"ACCESS_CACHE_FILESYSTEM", "BACKUP", "CHANGE_COMPONENT_ENABLED_STATE", "DUMP", "INTERACT_ACROSS_USERS",
	"INVOKE_CARRIER_SETUP", "MANAGE_USERS", "MASTER_CLEAR", "READ_DREAM_STATE", "READ_LOGS",
	"READ_NETWORK_USAGE_HISTORY", "REBOOT", "RECEIVE_DATA_ACTIVITY_CHANGE", "RECOVERY", "SET_TIME",
	"STATUS_BAR", "UPDATE_DEVICE_STATS", "WRITE_GSERVICES", "WRITE_SECURE_SETTINGS",
}

func TestBuiltinKnowsGSFAllowlist(t *testing.T) {
	var req []string
	for _, p := range gsfAllowlist {
		req = append(req, "android.permission."+p)
	}
	// What GSF also requests that is not privileged: never in an allowlist.
	req = append(req, "android.permission.INTERNET", "android.permission.RECEIVE_BOOT_COMPLETED", "android.permission.WAKE_LOCK",
		"com.google.android.providers.gsf.permission.READ_GSERVICES")
	got := UncoveredPrivileged(req, nil, nil)
	if len(got) != 19 {
		t.Fatalf("newest table: %d of GSF's requested permissions need an allowlist entry, want 19: %v", len(got), got)
	}
	// Every level's table agrees: GSF's allowlist has been the same 19 privileged permissions.
	for _, api := range PrivilegedLevels() {
		if got := UncoveredPrivilegedAt(api, req, nil, nil); len(got) != 19 {
			t.Errorf("API %d table: %d of GSF's requested permissions need an allowlist entry, want 19: %v", api, len(got), got)
		}
	}
	if got := UncoveredPrivileged(req, req[:10], req[10:19]); len(got) != 0 {
		t.Fatalf("all decided, still uncovered: %v", got)
	}
}

// frameworkManifestFixture is shaped like Android 14's frameworks/base/core/res/AndroidManifest.xml:
// comments, protected-broadcast lines, permissions with multi-flag protection levels, a
// permission-group, uses-permission lines and an application element.
const frameworkManifestFixture = `<?xml version="1.0" encoding="utf-8"?>
<!--
/* //device/apps/common/AndroidManifest.xml
**
** Copyright 2006, The Android Open Source Project
*/
-->
<manifest xmlns:android="http://schemas.android.com/apk/res/android"
    package="android" coreApp="true" android:sharedUserId="android.uid.system"
    android:sharedUserLabel="@string/android_system_label">

    <protected-broadcast android:name="android.intent.action.SCREEN_OFF" />

    <!-- Allows an application to change the animation scale.
         <p>Not for use by third-party applications. -->
    <permission android:name="android.permission.SET_ANIMATION_SCALE"
        android:protectionLevel="signature|privileged|development" />

    <!-- @SystemApi Allows an application to read the low-level system log files. -->
    <permission android:name="android.permission.READ_LOGS"
        android:protectionLevel="signature|privileged|development" />

    <permission android:name="android.permission.INTERNET"
        android:description="@string/permdesc_createNetworkSockets"
        android:label="@string/permlab_createNetworkSockets"
        android:protectionLevel="normal" />

    <!-- Old spelling, as in Android 5 and some OEM forks -->
    <permission android:name="android.permission.OLD_STYLE"
        android:protectionLevel="signatureOrSystem" />

    <permission android:name="android.permission.MANAGE_SENSOR_PRIVACY"
        android:protectionLevel="signature" />

    <permission-group android:name="android.permission-group.CONTACTS"
        android:priority="100" />

    <uses-permission android:name="android.permission.SET_TIME" />

    <application android:process="system" android:persistent="true">
        <activity android:name="com.android.internal.app.ChooserActivity">
            <permission android:name="android.permission.NOT_A_DECLARATION" android:protectionLevel="privileged" />
        </activity>
    </application>
</manifest>
`

func TestPermCatalogFromTree(t *testing.T) {
	files := map[string]string{}
	for k, v := range lineageTree {
		files[k] = v
	}
	files[frameworkManifest] = frameworkManifestFixture
	files["packages/apps/Settings/AndroidManifest.xml"] = `<manifest xmlns:android="http://schemas.android.com/apk/res/android"
        package="com.android.settings" coreApp="true" android:sharedUserId="android.uid.system">
    <permission android:name="com.android.settings.SEARCH_INDEXABLES"
        android:protectionLevel="signature|privileged" />
    <uses-permission android:name="android.permission.READ_LOGS" />
</manifest>
`
	root := writeTree(t, files)
	c, _, err := loadPermCatalog(newTree(root), 0)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"android.permission.SET_ANIMATION_SCALE": true, "android.permission.READ_LOGS": true, "android.permission.OLD_STYLE": true,
		"com.android.settings.SEARCH_INDEXABLES": true, "android.permission.INTERNET": false, "android.permission.MANAGE_SENSOR_PRIVACY": false,
		"android.permission.SET_TIME": false, "android.permission.NOT_A_DECLARATION": false,
		// Privileged in the built-in list, but this tree does not declare it: the tree wins.
		"android.permission.INSTALL_PACKAGES": false,
	} {
		if c.isPrivileged(p) != want {
			t.Errorf("%s: privileged = %v, want %v", p, !want, want)
		}
	}
	if loc := c.privileged["android.permission.SET_ANIMATION_SCALE"]; loc.File != frameworkManifest || loc.Line != 16 {
		t.Errorf("SET_ANIMATION_SCALE declared at %s, want %s:16", loc, frameworkManifest)
	}
	if !strings.Contains(c.Source, "(3 privileged permissions)") || !strings.Contains(c.Source, "(1 more)") {
		t.Errorf("source = %q", c.Source)
	}

	// The patcher uses it: an undecided SET_ANIMATION_SCALE blocks.
	pol := loadPolicy(t, root, strings.Replace(basePolicy, "    partition: product\n", "    partition: product\n    privileged: true\n    privappPermissions: [android.permission.INTERNET]\n", 1))
	ins := testInspector()
	ins["Messenger.apk"].RequestedPermissions = append(ins["Messenger.apk"].RequestedPermissions, "android.permission.SET_ANIMATION_SCALE", "android.permission.INTERNET")
	p := prepare(t, root, pol, func(o *Options) { o.Inspector = ins })
	if !p.Blocked() || strings.Join(p.Apps[0].Uncovered, ",") != "android.permission.SET_ANIMATION_SCALE" {
		t.Fatalf("blockers %v, uncovered %v", p.Blockers, p.Apps[0].Uncovered)
	}
	if !strings.Contains(p.PermissionSource, frameworkManifest) {
		t.Errorf("permission source = %q", p.PermissionSource)
	}
	if !strings.Contains(strings.Join(p.Notes, "\n"), "grants android.permission.INTERNET, which the tree does not declare privileged") {
		t.Errorf("no note about a useless allowlist entry: %v", p.Notes)
	}
}

// FuzzPermCatalog feeds arbitrary bytes as a manifest: never a panic, and a privileged entry's
// line is inside the file.
func FuzzPermCatalog(f *testing.F) {
	f.Add([]byte(frameworkManifestFixture))
	f.Add([]byte(`<manifest><permission name="a" protectionLevel="privileged"/></manifest>`))
	f.Add([]byte(`<manifest><permission`))
	f.Fuzz(func(t *testing.T, src []byte) {
		c := &permCatalog{privileged: map[string]Loc{}, declared: map[string]bool{}}
		_ = c.add("m.xml", src)
		lines := 1 + strings.Count(string(src), "\n")
		for p, loc := range c.privileged {
			if loc.Line < 1 || loc.Line > lines {
				t.Fatalf("%s declared at line %d of a %d-line file", p, loc.Line, lines)
			}
		}
	})
}
