package audit

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testapk"
	"github.com/provkit/provkit/manifests/policy"
)

const (
	pkg         = "ru.oneme.app"
	fingerprint = "acme/phone/phone:14/AP1A.240505.004/7:user/release-keys"
)

// fixture holds the APKs the scenarios place on images.
type fixture struct {
	good, old, wrongSigner, calc, oldMessenger, framework []byte
	pin                                                   string
}

func buildFixture(t *testing.T) *fixture {
	signer := testapk.NewSigner(t, "Max release")
	other := testapk.NewSigner(t, "Somebody else")
	perms := []string{"android.permission.POST_NOTIFICATIONS", "android.permission.INSTALL_PACKAGES", "android.permission.MANAGE_USERS", "android.permission.INTERNET"}
	f := &fixture{pin: signer.CertSHA256()}
	f.good = testapk.Build(t, testapk.Spec{Package: pkg, VersionCode: 12, Permissions: perms, Signer: signer})
	f.old = testapk.Build(t, testapk.Spec{Package: pkg, VersionCode: 5, Permissions: perms, Signer: signer})
	f.wrongSigner = testapk.Build(t, testapk.Spec{Package: pkg, VersionCode: 12, Permissions: perms, Signer: other})
	f.calc = testapk.Build(t, testapk.Spec{Package: "com.example.calc", VersionCode: 1, Signer: other})
	f.oldMessenger = testapk.Build(t, testapk.Spec{Package: "com.old.messenger", VersionCode: 1, Signer: other})
	f.framework = testapk.BuildFramework(t, []testapk.Permission{
		{Name: "android.permission.INSTALL_PACKAGES", ProtectionLevel: "signature|privileged"},
		{Name: "android.permission.MANAGE_USERS", ProtectionLevel: "signature|privileged|development"},
		{Name: "android.permission.POST_NOTIFICATIONS", ProtectionLevel: "dangerous"},
		{Name: "android.permission.INTERNET", ProtectionLevel: "normal"},
	})
	return f
}

// tree is a firmware tree: partition -> path -> content.
type tree map[string]map[string][]byte

const privappXML = `<?xml version="1.0" encoding="utf-8"?>
<!-- Max needs these to install its updates. -->
<permissions>
    <privapp-permissions package="ru.oneme.app">
        <permission name="android.permission.INSTALL_PACKAGES"/>
        <permission name='android.permission.MANAGE_USERS'/>
    </privapp-permissions>
</permissions>
`

const defaultsXML = `<exceptions>
    <exception package="ru.oneme.app">
        <permission name="android.permission.POST_NOTIFICATIONS" fixed="false"/>
    </exception>
</exceptions>
`

const sysconfigXML = `<config>
    <install-in-user-type package="ru.oneme.app">
        <install-in user-type="FULL"/>
        <install-in user-type="SYSTEM"/>
    </install-in-user-type>
</config>
`

// compliant is a system-as-root system partition and a product partition with the app as a
// privileged app, its privapp allowlist, default grant and sysconfig entry.
func (fx *fixture) compliant() tree {
	return tree{
		"system": {
			"system/build.prop":                                       []byte("ro.build.fingerprint=" + fingerprint + "\nro.control_privapp_permissions=enforce\n"),
			"system/framework/framework-res.apk":                      fx.framework,
			"system/app/Calculator/Calculator.apk":                    fx.calc,
			"system/etc/permissions/privapp-permissions-platform.xml": []byte("<permissions/>\n"),
		},
		"product": {
			"etc/build.prop":                                  []byte("ro.product.build.fingerprint=" + fingerprint + "\n"),
			"priv-app/Max/Max.apk":                            fx.good,
			"etc/permissions/privapp-permissions-max.xml":     []byte(privappXML),
			"etc/default-permissions/default-permissions.xml": []byte(defaultsXML),
			"etc/sysconfig/preinstalled-packages-max.xml":     []byte(sysconfigXML),
		},
	}
}

func (tr tree) clone() tree {
	out := tree{}
	for p, files := range tr {
		out[p] = map[string][]byte{}
		for k, v := range files {
			out[p][k] = v
		}
	}
	return out
}

func (tr tree) write(t *testing.T) map[string]fs.FS {
	root := t.TempDir()
	parts := map[string]fs.FS{}
	for p, files := range tr {
		for name, data := range files {
			full := filepath.Join(root, p, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		parts[p] = os.DirFS(filepath.Join(root, p))
	}
	return parts
}

func testPolicy(t *testing.T, fx *fixture, extra string) *policy.Policy {
	src := fmt.Sprintf(`apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: national-messenger}
apps:
  - package: ru.oneme.app
    signers: [{sha256: "%s"}]
    minVersionCode: 10
    partition: product
    privileged: true
    grantPermissions: [android.permission.POST_NOTIFICATIONS]
    privappPermissions: [android.permission.INSTALL_PACKAGES]
    overrides: [com.old.messenger]
devices:
  fingerprints: ["%s"%s]
`, fx.pin, fingerprint, extra)
	p, err := policy.Parse([]byte(src), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func failed(rep *Report) []string {
	var out []string
	for _, c := range rep.Checks {
		if !c.Pass {
			out = append(out, c.Rule)
		}
	}
	for _, a := range rep.Apps {
		for _, c := range a.Checks {
			if !c.Pass {
				out = append(out, c.Rule)
			}
		}
	}
	return out
}

func detail(rep *Report, rule string) string {
	for _, c := range rep.Checks {
		if c.Rule == rule {
			return c.Detail
		}
	}
	for _, a := range rep.Apps {
		for _, c := range a.Checks {
			if c.Rule == rule {
				return c.Detail
			}
		}
	}
	return ""
}

// TestScenarios runs the audit over firmware trees holding real APKs (built with aapt, signed with
// apksigner) and the XML files the platform reads, one defect at a time.
func TestScenarios(t *testing.T) {
	fx := buildFixture(t)
	pol := testPolicy(t, fx, "")
	ctx := context.Background()

	rep, err := Run(ctx, pol, fx.compliant().write(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Compliant || len(failed(rep)) != 0 {
		t.Fatalf("compliant tree judged non-compliant: %v\n%+v", failed(rep), rep)
	}
	a := rep.Apps[0]
	sum := sha256.Sum256(fx.good)
	if a.Partition != "product" || a.Path != "/product/priv-app/Max/Max.apk" || a.SHA256 != hex.EncodeToString(sum[:]) ||
		a.VersionCode != 12 || len(a.Signers) != 1 || a.Signers[0] != fx.pin || !a.Privileged {
		t.Fatalf("evidence %+v", a)
	}
	if rep.Fingerprint == nil || rep.Fingerprint.Value != fingerprint || rep.Platform.PermissionDefinitions == "" ||
		rep.Platform.PrivilegedPermissions != 2 || rep.Platform.PrivappControl != "enforce" || rep.Packages != 2 {
		t.Fatalf("image evidence %+v %+v", rep.Fingerprint, rep.Platform)
	}
	if d := detail(rep, policy.RulePrivapp); !strings.Contains(d, "2 privileged permissions decided") {
		t.Fatalf("privapp detail %q", d)
	}
	if d := detail(rep, policy.RuleDefaultGrants); !strings.Contains(d, "/product/etc/default-permissions/default-permissions.xml:3") {
		t.Fatalf("grant detail %q", d)
	}

	// Flip a byte inside META-INF/MANIFEST.MF: the manifest still reads, the v1/v2/v3 digests
	// no longer match.
	tamper := bytes.Clone(fx.good)
	zr, err := zip.NewReader(bytes.NewReader(tamper), int64(len(tamper)))
	if err != nil {
		t.Fatal(err)
	}
	flipped := false
	for _, zf := range zr.File {
		if zf.Name == "META-INF/MANIFEST.MF" {
			off, err := zf.DataOffset()
			if err != nil {
				t.Fatal(err)
			}
			tamper[off+int64(zf.CompressedSize64)/2] ^= 0xff
			flipped = true
		}
	}
	if !flipped {
		t.Fatal("no META-INF/MANIFEST.MF in the test APK")
	}

	cases := []struct {
		name   string
		edit   func(tree)
		fails  []string
		detail string
	}{
		{"app missing", func(tr tree) { delete(tr["product"], "priv-app/Max/Max.apk") }, []string{policy.RuleAppPresent}, "no APK on the image declares package ru.oneme.app"},
		{"found by package, not by file name", func(tr tree) {
			delete(tr["product"], "priv-app/Max/Max.apk")
			tr["product"]["priv-app/Z9/whatever.apk"] = fx.good
		}, nil, ""},
		{"wrong partition", func(tr tree) {
			delete(tr["product"], "priv-app/Max/Max.apk")
			tr["system"]["system/priv-app/Max/Max.apk"] = fx.good
			tr["system"]["system/etc/permissions/privapp-permissions-max.xml"] = []byte(privappXML)
		}, []string{policy.RuleSystemApp}, "the policy requires product"},
		{"not privileged", func(tr tree) {
			delete(tr["product"], "priv-app/Max/Max.apk")
			tr["product"]["app/Max/Max.apk"] = fx.good
		}, []string{policy.RulePrivileged}, "not in a priv-app directory"},
		{"wrong signer", func(tr tree) { tr["product"]["priv-app/Max/Max.apk"] = fx.wrongSigner }, []string{policy.RuleSignerPin}, "is not pinned"},
		{"too old", func(tr tree) { tr["product"]["priv-app/Max/Max.apk"] = fx.old }, []string{policy.RuleMinVersion}, "versionCode 5 is below the minimum 10"},
		{"tampered APK", func(tr tree) { tr["product"]["priv-app/Max/Max.apk"] = tamper }, []string{policy.RuleSignature, policy.RuleSignerPin}, "signatures do not verify"},
		{"privapp permission not allowlisted", func(tr tree) {
			tr["product"]["etc/permissions/privapp-permissions-max.xml"] = []byte(strings.Replace(privappXML, "<permission name='android.permission.MANAGE_USERS'/>", "", 1))
		}, []string{policy.RulePrivapp}, "android.permission.MANAGE_USERS"},
		{"privapp allowlist on another partition", func(tr tree) {
			delete(tr["product"], "etc/permissions/privapp-permissions-max.xml")
			tr["system"]["system/etc/permissions/privapp-permissions-max.xml"] = []byte(privappXML)
		}, []string{policy.RulePrivapp}, "in no privapp-permissions file of /product"},
		{"privapp file broken before the entry", func(tr tree) {
			tr["product"]["etc/permissions/privapp-permissions-max.xml"] = []byte("<permissions>\n<privapp-permissions package=\"ru.oneme.app\">\n<permission name=\"android.permission.INSTALL_PACKAGES\">\n</privapp-permissions>\n")
		}, []string{policy.RulePrivapp}, "android.permission.MANAGE_USERS"},
		{"default permission missing", func(tr tree) { delete(tr["product"], "etc/default-permissions/default-permissions.xml") }, []string{policy.RuleDefaultGrants}, "no default-permissions exception grants android.permission.POST_NOTIFICATIONS"},
		{"default permission on the vendor partition counts", func(tr tree) {
			delete(tr["product"], "etc/default-permissions/default-permissions.xml")
			tr["vendor"] = map[string][]byte{"etc/default-permissions/d.xml": []byte(defaultsXML)}
		}, nil, ""},
		{"excluded by sysconfig", func(tr tree) {
			tr["product"]["etc/sysconfig/preinstalled-packages-max.xml"] = []byte(strings.Replace(sysconfigXML, `<install-in user-type="SYSTEM"/>`, `<do-not-install-in user-type="android.os.usertype.full.SYSTEM"/>`, 1))
		}, []string{policy.RuleInstalledUsers}, "excluded by do-not-install-in android.os.usertype.full.SYSTEM at /product/etc/sysconfig/preinstalled-packages-max.xml:4"},
		{"shadowed by a system copy", func(tr tree) { tr["system"]["system/app/MaxOld/MaxOld.apk"] = fx.old }, []string{policy.RuleSystemApp, policy.RulePrivileged, policy.RuleMinVersion, policy.RuleNotOverridden}, "shadowed by /system/app/MaxOld/MaxOld.apk"},
		{"overridden package still there", func(tr tree) { tr["system"]["system/app/OldMessenger/OldMessenger.apk"] = fx.oldMessenger }, []string{policy.RuleNotOverridden}, "overrides com.old.messenger but it is still on the image at /system/app/OldMessenger/OldMessenger.apk"},
		{"fingerprint not certified", func(tr tree) {
			tr["system"]["system/build.prop"] = []byte("ro.build.fingerprint=acme/phone/phone:14/AP1A.240505.004/8:user/release-keys\n")
		}, []string{policy.RuleFingerprint}, "is not among the 1 certified fingerprints"},
		{"fingerprint derived as init does", func(tr tree) {
			tr["system"]["system/build.prop"] = []byte("ro.product.system.brand=acme\nro.product.system.name=phone\nro.product.system.device=phone\nro.build.version.release_or_codename=14\nro.build.id=AP1A.240505.004\nro.build.version.incremental=7\nro.build.type=user\nro.build.tags=release-keys\n")
		}, nil, ""},
		{"no framework-res: only the policy's privapp permissions checked", func(tr tree) {
			delete(tr["system"], "system/framework/framework-res.apk")
			tr["product"]["etc/permissions/privapp-permissions-max.xml"] = []byte(strings.Replace(privappXML, "<permission name='android.permission.MANAGE_USERS'/>", "", 1))
		}, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := fx.compliant().clone()
			tc.edit(tr)
			rep, err := Run(ctx, pol, tr.write(t), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := failed(rep)
			if strings.Join(got, ",") != strings.Join(tc.fails, ",") {
				t.Fatalf("failed rules %v, want %v\n%+v", got, tc.fails, rep.Apps)
			}
			if rep.Compliant != (len(tc.fails) == 0) {
				t.Fatalf("compliant=%v", rep.Compliant)
			}
			if tc.detail != "" {
				rule := tc.fails[len(tc.fails)-1]
				if tc.name == "tampered APK" {
					rule = tc.fails[0]
				}
				d := detail(rep, rule)
				if !strings.Contains(d, tc.detail) {
					t.Fatalf("%s detail %q, want %q", rule, d, tc.detail)
				}
			}
		})
	}
}

// BenchmarkRun audits a firmware tree on disk (os.DirFS) holding the compliant app (a 4 MiB APK)
// among 50 other APKs: the cost of indexing manifests, reading the XML files and verifying the APK.
func BenchmarkRun(b *testing.B) {
	signer := testapk.NewSigner(b, "Max release")
	good := testapk.Build(b, testapk.Spec{Package: pkg, VersionCode: 12, Signer: signer, Padding: 4 << 20,
		Permissions: []string{"android.permission.POST_NOTIFICATIONS", "android.permission.INSTALL_PACKAGES", "android.permission.MANAGE_USERS"}})
	other := testapk.Build(b, testapk.Spec{Package: "com.example.other", VersionCode: 1})
	fx := &fixture{good: good, pin: signer.CertSHA256(), framework: testapk.BuildFramework(b, nil)}
	tr := fx.compliant()
	delete(tr["system"], "system/app/Calculator/Calculator.apk")
	root := b.TempDir()
	parts := map[string]fs.FS{}
	for p, files := range tr {
		for name, data := range files {
			full := filepath.Join(root, p, filepath.FromSlash(name))
			os.MkdirAll(filepath.Dir(full), 0o755)
			os.WriteFile(full, data, 0o644)
		}
		parts[p] = os.DirFS(filepath.Join(root, p))
	}
	// 50 more APKs with their own package names (one file copied: ReadManifest reads the same
	// package, which makes them duplicates of one another, not of the mandated app).
	for i := 0; i < 50; i++ {
		p := filepath.Join(root, "system", "system", "app", fmt.Sprintf("A%02d", i), fmt.Sprintf("A%02d.apk", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, other, 0o644)
	}
	src := fmt.Sprintf("apiVersion: provkit.dev/v1\nkind: PreinstallPolicy\nmetadata: {name: b}\napps:\n  - package: %s\n    signers: [{sha256: %q}]\n    partition: product\n", pkg, fx.pin)
	pol, err := policy.Parse([]byte(src), "p.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := Run(context.Background(), pol, parts, Options{})
		if err != nil || !rep.Compliant {
			b.Fatalf("%v %+v", err, rep)
		}
	}
}
