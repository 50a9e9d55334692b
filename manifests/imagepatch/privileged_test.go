package imagepatch

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/firmware/erofs"
	"github.com/provkit/provkit/internal/demoapk"
	"github.com/provkit/provkit/internal/unixmode"
)

// TestPrivilegedPermissionsFollowTheFirmwareLevel: a privileged app requesting
// SCHEDULE_EXACT_ALARM (privileged from API 34 in AOSP's manifest, not before) without a decision
// in the policy is blocked on firmware whose level is unknown (the newest table), and on firmware
// whose system build.prop says API 34, but not on firmware that says API 31; the report's notes
// name where the decision came from. SET_ANIMATION_SCALE is privileged at every level.
func TestPrivilegedPermissionsFollowTheFirmwareLevel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sdk     string // "" : no system image
		perms   []string
		blocked bool
		note    string
	}{
		{"unknown level", "", []string{"android.permission.SCHEDULE_EXACT_ALARM"}, true, "newest built-in table"},
		{"API 34", "34", []string{"android.permission.SCHEDULE_EXACT_ALARM"}, true, "built-in table for API 34 (ro.build.version.sdk in /system/build.prop"},
		{"API 31", "31", []string{"android.permission.SCHEDULE_EXACT_ALARM"}, false, "built-in table for API 31"},
		{"API 31, always privileged", "31", []string{"android.permission.SET_ANIMATION_SCALE"}, true, "API 31"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFirmware(t, false, 0)
			key, err := demoapk.NewKey("priv")
			if err != nil {
				t.Fatal(err)
			}
			b, err := demoapk.Build(demoapk.Spec{Package: "ru.oneme.app", VersionCode: 25, Permissions: tc.perms}, key)
			if err != nil {
				t.Fatal(err)
			}
			write(t, fx.apkPath, b)
			privilegedPolicy(t, fx, key)
			if tc.sdk != "" {
				writeSystem(t, filepath.Join(fx.fw, "system.img"), "ro.build.version.sdk="+tc.sdk+"\n")
			}
			o := fx.options(t, filepath.Join(fx.dir, "out"))
			o.DryRun = true
			rep, err := Run(context.Background(), o)
			if blocked := errors.Is(err, ErrBlocked); blocked != tc.blocked {
				t.Fatalf("blocked %v, want %v (err %v)", blocked, tc.blocked, err)
			} else if err != nil && !blocked {
				t.Fatal(err)
			}
			if tc.blocked && !strings.Contains(strings.Join(rep.Blockers, "\n"), tc.perms[0]) {
				t.Errorf("blockers do not name %s: %v", tc.perms[0], rep.Blockers)
			}
			if !strings.Contains(strings.Join(rep.Notes, "\n"), tc.note) {
				t.Errorf("notes do not say %q: %v", tc.note, rep.Notes)
			}
		})
	}
}

// TestPrivilegedPermissionsFromFrameworkRes: with a framework-res.apk in the system image, its
// declarations decide, over the built-in table of the build.prop's level: a permission it
// declares signature|privileged is blocked, one the table calls privileged but it declares
// normal is not.
func TestPrivilegedPermissionsFromFrameworkRes(t *testing.T) {
	fx := newFirmware(t, false, 0)
	key, err := demoapk.NewKey("priv")
	if err != nil {
		t.Fatal(err)
	}
	const secret, alarm = "com.acme.permission.SECRET", "android.permission.SCHEDULE_EXACT_ALARM"
	b, err := demoapk.Build(demoapk.Spec{Package: "ru.oneme.app", VersionCode: 25, Permissions: []string{secret, alarm}}, key)
	if err != nil {
		t.Fatal(err)
	}
	write(t, fx.apkPath, b)
	privilegedPolicy(t, fx, key)
	platform, err := demoapk.Build(demoapk.Spec{Package: "android", VersionCode: 34, Declares: map[string]string{secret: "signature|privileged", alarm: "normal"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	writeSystem(t, filepath.Join(fx.fw, "system.img"), "ro.build.version.sdk=34\n", erofs.Node{Path: "framework"}, erofs.Node{Path: "framework/framework-res.apk", Data: bytes.NewReader(platform), Size: int64(len(platform))})
	o := fx.options(t, filepath.Join(fx.dir, "out"))
	o.DryRun = true
	rep, err := Run(context.Background(), o)
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("not blocked: %v", err)
	}
	all := strings.Join(rep.Blockers, "\n")
	if !strings.Contains(all, secret) || strings.Contains(all, alarm) {
		t.Errorf("blockers: %v", rep.Blockers)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "the firmware's own /system/framework/framework-res.apk (1 privileged permissions)") {
		t.Errorf("notes: %v", rep.Notes)
	}
}

// writeSystem writes a small EROFS system image holding build.prop and extra entries (a Node
// with Data is a 0644 file, without it a 0755 directory).
func writeSystem(t *testing.T, path, buildProp string, extra ...erofs.Node) {
	t.Helper()
	mt := time.Unix(1230768000, 0)
	nodes := []erofs.Node{
		{Path: ".", Mode: unixmode.IFDIR | 0o755, Mtime: mt},
		{Path: "build.prop", Mode: unixmode.IFREG | 0o644, Mtime: mt, Size: int64(len(buildProp)), Data: bytes.NewReader([]byte(buildProp))},
	}
	for _, n := range extra {
		n.Mtime, n.Mode = mt, unixmode.IFDIR|0o755
		if n.Data != nil {
			n.Mode = unixmode.IFREG | 0o644
		}
		nodes = append(nodes, n)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := erofs.Write(context.Background(), f, nodes, erofs.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// privilegedPolicy writes a policy that puts the messenger, signed by key, on product as a
// privileged app, deciding none of its privileged permissions.
func privilegedPolicy(t *testing.T, fx *fixture, key *demoapk.Key) {
	write(t, fx.policyPath, []byte(`apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: national-messenger}
apps:
  - package: ru.oneme.app
    apk: messenger.apk
    signers: [{sha256: "`+key.CertSHA256()+`"}]
    partition: product
    privileged: true
`))
}
