package policy

import (
	"strings"
	"testing"
)

func imageApp() *App {
	return &App{Package: "ru.oneme.app", Signers: []Signer{{SHA256: strings.Repeat("ab", 32)}}, MinVersionCode: 10,
		Partition: PartitionProduct, Privileged: true,
		GrantPermissions:       []string{"android.permission.POST_NOTIFICATIONS"},
		PrivappPermissions:     []string{"android.permission.INSTALL_PACKAGES"},
		DenyPrivappPermissions: []string{"android.permission.REBOOT"}}
}

func goodFacts() ImageAppFacts {
	return ImageAppFacts{
		Copies: []APKCopy{{Partition: "product", Path: "/product/priv-app/Max/Max.apk", ScanDir: "/product/priv-app", Privileged: true, VersionCode: 12}},
		APK:    &APKFacts{Package: "ru.oneme.app", VersionCode: 12, Verified: true, Signers: []string{strings.Repeat("ab", 32)}},
		RequestedPermissions: []string{"android.permission.POST_NOTIFICATIONS", "android.permission.INSTALL_PACKAGES",
			"android.permission.REBOOT", "android.permission.MANAGE_USERS"},
		TargetSDK:                34,
		PrivilegedRequested:      []string{"android.permission.INSTALL_PACKAGES", "android.permission.REBOOT", "android.permission.MANAGE_USERS"},
		PlatformPermissionsKnown: true,
		PrivappAllow:             map[string]string{"android.permission.INSTALL_PACKAGES": "p.xml:3", "android.permission.MANAGE_USERS": "p.xml:4"},
		PrivappDeny:              map[string]string{"android.permission.REBOOT": "p.xml:5"},
		DefaultGrants:            map[string]string{"android.permission.POST_NOTIFICATIONS": "d.xml:6"},
		UserTypes:                &UserTypeFacts{InstallIn: []Located{{Name: "FULL", Where: "s.xml:2"}}},
	}
}

func result(checks []Check, rule string) *Check {
	for i := range checks {
		if checks[i].Rule == rule {
			return &checks[i]
		}
	}
	return nil
}

func TestCheckImageCompliant(t *testing.T) {
	checks := imageApp().CheckImage(goodFacts())
	want := []string{RuleAppPresent, RuleSystemApp, RulePrivileged, RuleSignature, RuleSignerPin, RuleMinVersion, RulePrivapp, RuleDefaultGrants, RuleInstalledUsers, RuleNotOverridden}
	if len(checks) != len(want) {
		t.Fatalf("%d checks: %v", len(checks), checks)
	}
	for i, c := range checks {
		if c.Rule != want[i] || !c.Pass {
			t.Errorf("check %d: %s", i, c)
		}
	}
}

func TestCheckImageFailures(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*App, *ImageAppFacts)
		rule   string
		detail string
	}{
		{"missing", func(a *App, f *ImageAppFacts) { f.Copies = nil }, RuleAppPresent, "no APK on the image declares package ru.oneme.app"},
		{"wrong partition", func(a *App, f *ImageAppFacts) {
			f.Copies[0].Partition, f.Copies[0].Path = "system", "/system/priv-app/Max/Max.apk"
		}, RuleSystemApp, "the policy requires product"},
		{"not privileged", func(a *App, f *ImageAppFacts) { f.Copies[0].Privileged = false }, RulePrivileged, "not in a priv-app directory"},
		{"unsigned", func(a *App, f *ImageAppFacts) { f.APK.Verified = false }, RuleSignature, "do not verify"},
		{"wrong signer", func(a *App, f *ImageAppFacts) { f.APK.Signers = []string{strings.Repeat("cd", 32)} }, RuleSignerPin, "is not pinned"},
		{"too old", func(a *App, f *ImageAppFacts) { f.APK.VersionCode = 3 }, RuleMinVersion, "below the minimum 10"},
		{"privapp missing", func(a *App, f *ImageAppFacts) { delete(f.PrivappAllow, "android.permission.MANAGE_USERS") }, RulePrivapp, "android.permission.MANAGE_USERS"},
		{"privapp policy grant missing", func(a *App, f *ImageAppFacts) { delete(f.PrivappAllow, "android.permission.INSTALL_PACKAGES") }, RulePrivapp, "android.permission.INSTALL_PACKAGES"},
		{"privapp denied but policy grants", func(a *App, f *ImageAppFacts) {
			delete(f.PrivappAllow, "android.permission.INSTALL_PACKAGES")
			f.PrivappDeny["android.permission.INSTALL_PACKAGES"] = "p.xml:9"
		}, RulePrivapp, "denied at p.xml:9 but the policy grants it"},
		{"privapp granted but policy denies", func(a *App, f *ImageAppFacts) { f.PrivappAllow["android.permission.REBOOT"] = "p.xml:8" }, RulePrivapp, "granted at p.xml:8 but the policy denies it"},
		{"default grant missing", func(a *App, f *ImageAppFacts) { f.DefaultGrants = nil }, RuleDefaultGrants, "no default-permissions exception grants android.permission.POST_NOTIFICATIONS"},
		{"default grant not requested", func(a *App, f *ImageAppFacts) { f.RequestedPermissions = f.RequestedPermissions[1:] }, RuleDefaultGrants, "not requested"},
		{"excluded for system user", func(a *App, f *ImageAppFacts) {
			f.UserTypes.DoNotInstallIn = []Located{{Name: "android.os.usertype.full.SYSTEM", Where: "s.xml:3"}}
		}, RuleInstalledUsers, "excluded by do-not-install-in android.os.usertype.full.SYSTEM at s.xml:3"},
		{"only profiles", func(a *App, f *ImageAppFacts) { f.UserTypes.InstallIn = []Located{{Name: "PROFILE", Where: "s.xml:2"}} }, RuleInstalledUsers, "not among the install-in user types"},
		{"required guest", func(a *App, f *ImageAppFacts) {
			a.InstallInUserTypes = []string{"android.os.usertype.full.GUEST"}
			f.UserTypes.InstallIn = []Located{{Name: "SYSTEM", Where: "s.xml:2"}}
		}, RuleInstalledUsers, "android.os.usertype.full.GUEST not among"},
		{"shadowed", func(a *App, f *ImageAppFacts) {
			f.Copies = append([]APKCopy{{Partition: "system", Path: "/system/app/Old/Old.apk", ScanDir: "/system/app"}}, f.Copies...)
		}, RuleNotOverridden, "is shadowed by /system/app/Old/Old.apk"},
		{"ambiguous", func(a *App, f *ImageAppFacts) {
			f.Copies = append(f.Copies, APKCopy{Partition: "product", Path: "/product/priv-app/Max2/Max2.apk", ScanDir: "/product/priv-app"})
		}, RuleNotOverridden, "not determined"},
		{"override left", func(a *App, f *ImageAppFacts) {
			a.Overrides = []string{"com.old.messenger"}
			f.OverriddenPresent = []Located{{Name: "com.old.messenger", Where: "/system/app/Old/Old.apk"}}
		}, RuleNotOverridden, "overrides com.old.messenger but it is still on the image"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, f := imageApp(), goodFacts()
			tc.mutate(a, &f)
			checks := a.CheckImage(f)
			c := result(checks, tc.rule)
			if c == nil || c.Pass || !strings.Contains(c.Detail, tc.detail) {
				t.Fatalf("%s: %v", tc.rule, checks)
			}
			// Exactly the intended rule fails (the signer check follows the signature verdict).
			for _, o := range checks {
				// A shadowing copy is the one judged, so its placement fails too.
				shadow := tc.name == "shadowed" && (o.Rule == RuleSystemApp || o.Rule == RulePrivileged)
				if !o.Pass && o.Rule != tc.rule && !(tc.rule == RuleSignature && o.Rule == RuleSignerPin) && !shadow {
					t.Errorf("also failed: %s", o)
				}
			}
		})
	}
}

func TestCheckImageLenient(t *testing.T) {
	a := &App{Package: "p", Signers: []Signer{{SHA256: strings.Repeat("ab", 32)}}}
	f := ImageAppFacts{Copies: []APKCopy{{Partition: "system", Path: "/system/app/P/P.apk", ScanDir: "/system/app"},
		{Partition: "vendor", Path: "/vendor/app/P/P.apk", ScanDir: "/vendor/app"}},
		APK: &APKFacts{Package: "p", Verified: true, Signers: []string{strings.Repeat("ab", 32)}}, TargetSDK: 34}
	for _, c := range a.CheckImage(f) {
		if !c.Pass {
			t.Errorf("%s", c)
		}
	}
	if c := result(a.CheckImage(f), RuleNotOverridden); !strings.Contains(c.Detail, "skipped duplicates: /vendor/app/P/P.apk") {
		t.Fatal(c)
	}
	if c := result(a.CheckImage(f), RuleInstalledUsers); !strings.Contains(c.Detail, "config_userTypePackageWhitelistMode") {
		t.Fatal(c)
	}
	// Without the platform's definitions the privapp rule says what it could not check.
	a.Privileged, a.PrivappPermissions = true, []string{"x"}
	f.Copies[0].Privileged = true
	f.PrivappAllow = map[string]string{"x": "f:1"}
	if c := result(a.CheckImage(f), RulePrivapp); !c.Pass || !strings.Contains(c.Detail, "framework-res.apk") {
		t.Fatal(c)
	}
}
