package android

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testapk"
)

func run(t *testing.T, d *Device, line string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := d.Run(context.Background(), line, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func systemDevice(t *testing.T, sdk int, apk []byte) *Device {
	t.Helper()
	d, err := NewDevice(sdk)
	if err != nil {
		t.Fatal(err)
	}
	d.SetProp("ro.build.fingerprint", "provkit/sim/sim:14/UP1A.231005.007/1:user/release-keys")
	d.SetProp("ro.product.model", "Sim\nPhone")
	if err := d.FS().WriteFile("/product/app/Max/Max.apk", apk, 0o644, epochSystem); err != nil {
		t.Fatal(err)
	}
	info, err := ReadAPKInfo(bytes.NewReader(apk), int64(len(apk)))
	if err != nil {
		t.Fatal(err)
	}
	d.AddPackage(&Package{
		Name:      info.Package,
		System:    &Install{CodePath: "/product/app/Max", APK: "Max.apk", VersionCode: info.VersionCode, VersionName: info.VersionName, MinSDK: info.MinSDK, TargetSDK: info.TargetSDK},
		Requested: info.Permissions,
		Users:     map[int]*UserState{0: {Installed: true, Granted: map[string]bool{"android.permission.POST_NOTIFICATIONS": true}}},
	})
	return d
}

func TestShellAgainstPackageState(t *testing.T) {
	apk := testapk.Build(t, testapk.Spec{Package: "ru.oneme.app", VersionCode: 25, VersionName: "25.1", Permissions: []string{"android.permission.POST_NOTIFICATIONS", "android.permission.INTERNET"}})
	d := systemDevice(t, 34, apk)

	if out, _, code := run(t, d, "pm path ru.oneme.app"); code != 0 || out != "package:/product/app/Max/Max.apk\n" {
		t.Fatalf("pm path: %q %d", out, code)
	}
	sum := sha256.Sum256(apk)
	if out, _, _ := run(t, d, "sha256sum /product/app/Max/Max.apk"); out != hex.EncodeToString(sum[:])+"  /product/app/Max/Max.apk\n" {
		t.Fatalf("sha256sum: %q", out)
	}
	if out, _, _ := run(t, d, "pm list packages -f -s --show-versioncode -U"); out != "package:/product/app/Max/Max.apk=ru.oneme.app versionCode:25 uid:10100\n" {
		t.Fatalf("pm list: %q", out)
	}
	if out, _, _ := run(t, d, "pm list packages -3"); out != "" {
		t.Fatalf("pm list -3: %q", out)
	}
	out, _, _ := run(t, d, "dumpsys package ru.oneme.app")
	for _, want := range []string{"Packages:\n  Package [ru.oneme.app] (", "    appId=10100\n", "    codePath=/product/app/Max\n",
		"    versionCode=25 minSdk=24 targetSdk=34\n", "    flags=[ SYSTEM HAS_CODE ALLOW_CLEAR_USER_DATA ALLOW_BACKUP ]\n",
		" PRODUCT ", "    User 0: ceDataInode=", " installed=true hidden=false ", " enabled=0 instant=false virtual=false\n",
		"        android.permission.POST_NOTIFICATIONS: granted=true, flags=[ USER_SET"} {
		if !strings.Contains(out, want) {
			t.Errorf("dumpsys lacks %q", want)
		}
	}
	if strings.Contains(out, "Hidden system packages:") || strings.Contains(out, "userId=") {
		t.Errorf("dumpsys of a plain system app on API 34:\n%s", out)
	}

	// A store update lands in /data/app; the system copy moves under Hidden system packages.
	update := testapk.Build(t, testapk.Spec{Package: "ru.oneme.app", VersionCode: 30})
	var o, e bytes.Buffer
	if code := d.Run(context.Background(), "pm install -r -S "+strconv.Itoa(len(update)), bytes.NewReader(update), &o, &e); code != 0 || o.String() != "Success\n" {
		t.Fatalf("streamed install: %q %q %d", o.String(), e.String(), code)
	}
	out, _, _ = run(t, d, "pm path ru.oneme.app")
	if !strings.HasPrefix(out, "package:/data/app/~~") || !strings.HasSuffix(out, "/base.apk\n") {
		t.Fatalf("pm path after update: %q", out)
	}
	out, _, _ = run(t, d, "dumpsys package ru.oneme.app")
	pk, hidden, ok := strings.Cut(out, "\nHidden system packages:\n")
	if !ok || !strings.Contains(pk, "UPDATED_SYSTEM_APP") || !strings.Contains(hidden, "codePath=/product/app/Max\n") || !strings.Contains(hidden, "versionCode=25 ") {
		t.Fatalf("dumpsys after update:\n%s", out)
	}

	// Disable, then uninstall for user 0: pm path prints nothing and fails, dumpsys still knows it.
	if out, _, _ := run(t, d, "pm disable-user --user 0 ru.oneme.app"); out != "Package ru.oneme.app new state: disabled-user\n" {
		t.Fatalf("disable-user: %q", out)
	}
	if out, _, _ := run(t, d, "pm list packages -d"); out != "package:ru.oneme.app\n" {
		t.Fatalf("list -d: %q", out)
	}
	if out, _, _ := run(t, d, "pm uninstall --user 0 ru.oneme.app"); out != "Success\n" {
		t.Fatalf("uninstall: %q", out)
	}
	if out, _, code := run(t, d, "pm path ru.oneme.app"); out != "" || code != 1 {
		t.Fatalf("pm path uninstalled: %q %d", out, code)
	}
	if out, _, _ := run(t, d, "dumpsys package ru.oneme.app"); !strings.Contains(out, "installed=false") || !strings.Contains(out, "enabled=3") {
		t.Fatalf("dumpsys uninstalled:\n%s", out)
	}
}

func TestDumpsysFormatByRelease(t *testing.T) {
	d, _ := NewDevice(29)
	d.AddPackage(&Package{Name: "a.b", System: &Install{CodePath: "/system/priv-app/AB", APK: "AB.apk", VersionCode: 3, VersionName: "3", MinSDK: 21, TargetSDK: 29}, Privileged: true,
		Users: map[int]*UserState{0: {Installed: true}}})
	var b bytes.Buffer
	DumpsysPackage(&b, d, "a.b")
	out := b.String()
	for _, want := range []string{"    userId=", "applicationInfo=ApplicationInfo{", " PRIVILEGED ", "    firstInstallTime=2009-01-01 00:00:00\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("API 29 dumpsys lacks %q:\n%s", want, out)
		}
	}
	for _, absent := range []string{"appId=", "minExtensionVersions", "Queries:", "quarantined"} {
		if strings.Contains(out, absent) {
			t.Errorf("API 29 dumpsys has %q", absent)
		}
	}
	d35, _ := NewDevice(35)
	d35.AddPackage(&Package{Name: "a.b", System: &Install{CodePath: "/system/app/AB", APK: "AB.apk", VersionCode: 3, MinSDK: 21, TargetSDK: 35}, Users: map[int]*UserState{0: {Installed: true}}})
	b.Reset()
	DumpsysPackage(&b, d35, "a.b")
	if !strings.Contains(b.String(), " deDataInode=") || !strings.Contains(b.String(), " quarantined=false\n") || !strings.Contains(b.String(), "appId=") {
		t.Errorf("API 35 dumpsys:\n%s", b.String())
	}
}

func TestShellBasics(t *testing.T) {
	d, _ := NewDevice(33)
	d.SetProp("ro.build.fingerprint", "a/b/c:13/X/1:user/release-keys")
	d.SetProp("persist.multi", "line1\nline2")
	tests := []struct {
		line, out, errOut string
		code              int
	}{
		{"getprop ro.build.fingerprint", "a/b/c:13/X/1:user/release-keys\n", "", 0},
		{"getprop persist.multi", "line1\nline2\n", "", 0},
		{"getprop no.such.prop", "\n", "", 0},
		{"foo --bar", "", "/system/bin/sh: foo: inaccessible or not found\n", 127},
		{"echo 'a  b' \"c\"", "a  b c\n", "", 0},
		{"false || echo yes; true && echo ok", "yes\nok\n", "", 0},
		{"settings get secure no_such_key", "null\n", "", 0},
		{"settings put global k v; settings get global k", "v\n", "", 0},
		{"cat /nope", "", "cat: /nope: No such file or directory\n", 1},
		{"ls /nope", "", "ls: /nope: No such file or directory\n", 1},
		{"pm path not.there", "", "", 1},
		{"echo hi > /data/local/tmp/x; cat /data/local/tmp/x", "hi\n", "", 0},
		{"echo hi > /system/x", "", "/system/bin/sh: can't create /system/x: Permission denied\n", 1},
		{"getprop | grep fingerprint", "[ro.build.fingerprint]: [a/b/c:13/X/1:user/release-keys]\n", "", 0},
		{"which pm getprop", "/system/bin/pm\n/system/bin/getprop\n", "", 0},
		{"which nothing", "", "", 1},
		{"id", ShellID + "\n", "", 0},
		{"cmd nosuch", "", "cmd: Can't find service: nosuch\n", 20},
		{"exit 3", "", "", 3},
		// wc as toybox counts: one number per selected count, no padding for standard input.
		{"echo fallback | wc -c", "9\n", "", 0},
		{"echo fallback | wc -l", "1\n", "", 0},
		{"echo 'a b' | wc -w", "2\n", "", 0},
		{"echo 'a b' | wc -lc", "1 4\n", "", 0},
		{"echo fallback | wc", "1 1 9\n", "", 0},
		{"echo hi > /data/local/tmp/w; wc -c /data/local/tmp/w", "3 /data/local/tmp/w\n", "", 0},
		{"wc -c /nope", "", "wc: /nope: No such file or directory\n", 1},
		{"echo x | wc -z", "", "wc: Unknown option 'z' (see \"wc --help\")\n", 1},
		// Variables: assignments, $NAME, ${NAME}, "$NAME", $?, the shell user's environment.
		{"x=1; echo $x ${x}2 \"[$x]\"", "1 12 [1]\n", "", 0},
		{"x='a  b'; echo \"$x\"; echo $x", "a  b\na b\n", "", 0},
		{"echo $HOME $USER $TMPDIR", "/ shell /data/local/tmp\n", "", 0},
		{"echo [$unset] $unset end", "[] end\n", "", 0},
		{"false; echo $?", "1\n", "", 0},
		{"echo '$HOME' \\$HOME", "$HOME $HOME\n", "", 0},
		{"d=/data/local/tmp; echo v > $d/f; cat $d/f", "v\n", "", 0},
		// What the simulator cannot do fails as "not found", never with a wrong answer.
		{"echo $(id)", "", "/system/bin/sh: $(: inaccessible or not found (not supported by the provkit simulator)\n", 127},
		{"echo `id`", "", "/system/bin/sh: `...`: inaccessible or not found (not supported by the provkit simulator)\n", 127},
		{"echo ${x:-d}", "", "/system/bin/sh: ${x:-d}: inaccessible or not found (not supported by the provkit simulator)\n", 127},
		{"echo $PATH", "", "/system/bin/sh: $PATH: inaccessible or not found (not supported by the provkit simulator)\n", 127},
		{"echo $1", "", "/system/bin/sh: $1: inaccessible or not found (not supported by the provkit simulator)\n", 127},
	}
	for _, tt := range tests {
		out, errOut, code := run(t, d, tt.line)
		if out != tt.out || errOut != tt.errOut || code != tt.code {
			t.Errorf("%q: got (%q, %q, %d), want (%q, %q, %d)", tt.line, out, errOut, code, tt.out, tt.errOut, tt.code)
		}
	}
	_ = time.Second
	// An interactive session keeps its variables from one line to the next.
	sess := d.NewSession()
	var o, e bytes.Buffer
	sess.Run(context.Background(), "y=kept", strings.NewReader(""), &o, &e)
	sess.Run(context.Background(), "echo $y", strings.NewReader(""), &o, &e)
	if o.String() != "kept\n" || e.Len() != 0 {
		t.Errorf("session variables: stdout %q stderr %q", o.String(), e.String())
	}
}

func FuzzShellLine(f *testing.F) {
	f.Add("pm list packages -f | grep x && echo 'a\"b' > /data/local/tmp/f 2>&1; cat /data/local/tmp/f")
	f.Add("echo \"unterminated")
	f.Add("2>")
	d, _ := NewDevice(34)
	f.Fuzz(func(t *testing.T, line string) {
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		code := d.Run(ctx, line, strings.NewReader(""), &out, &errb)
		if code < 0 || code > 255 {
			t.Fatalf("exit status %d", code)
		}
	})
}

func FuzzReadAPKInfo(f *testing.F) {
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Add([]byte("not a zip"))
	f.Add(testapk.Build(f, testapk.Spec{Package: "a.b", VersionCode: 1, Permissions: []string{"android.permission.CAMERA"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ReadAPKInfo(bytes.NewReader(b), int64(len(b)))
		if err == nil && info.Package == "" {
			t.Fatal("accepted an APK without a package name")
		}
	})
}
