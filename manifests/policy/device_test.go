package policy

import (
	"strings"
	"testing"
)

func TestCheckDeviceApp(t *testing.T) {
	p, err := Parse([]byte(good), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	app, _ := p.App("ru.oneme.app")
	genuine := &APKFacts{Package: "ru.oneme.app", VersionCode: 5, Verified: true, Signers: []string{pinA}}
	other := &APKFacts{Package: "ru.oneme.app", VersionCode: 5, Verified: true, Signers: []string{pinB}}
	tampered := &APKFacts{Package: "ru.oneme.app", VersionCode: 5, Verified: false, VerifyErrors: []string{"V2_SIG_APK_DIGEST_DID_NOT_VERIFY"}, Signers: nil}
	base := func() DeviceAppFacts {
		return DeviceAppFacts{Package: "ru.oneme.app", Present: true, InstalledUser0: true, CodePath: "/product/app/M",
			SystemCodePath: "/product/app/M", Granted: map[string]bool{"android.permission.POST_NOTIFICATIONS": true},
			DeviceVersionCode: 5, APK: genuine}
	}
	tests := []struct {
		name   string
		mod    func(*DeviceAppFacts)
		app    func(*App) *App
		failed []string // rules expected to fail, in order
	}{
		{"compliant", func(*DeviceAppFacts) {}, nil, nil},
		{"missing", func(f *DeviceAppFacts) { *f = DeviceAppFacts{Package: "ru.oneme.app"} }, nil, []string{RuleInstalled}},
		{"uninstalled for user 0", func(f *DeviceAppFacts) { f.InstalledUser0 = false }, nil, []string{RuleInstalled}},
		{"uninstalled for user 0, removable", func(f *DeviceAppFacts) { f.InstalledUser0 = false; f.EnabledState = 3; f.Granted = nil },
			func(a *App) *App { c := *a; c.Removable = true; return &c }, nil},
		{"data only", func(f *DeviceAppFacts) { f.SystemCodePath = ""; f.CodePath = "/data/app/x" }, nil, []string{RuleSystemApp}},
		{"wrong partition", func(f *DeviceAppFacts) { f.SystemCodePath = "/system/app/M" }, nil, []string{RuleSystemApp}},
		{"product under system", func(f *DeviceAppFacts) { f.SystemCodePath = "/system/product/app/M" }, nil, nil},
		{"updated, intact", func(f *DeviceAppFacts) { f.Updated = true; f.CodePath = "/data/app/~~a==/x"; f.System = genuine }, nil, nil},
		{"updated, tampered", func(f *DeviceAppFacts) { f.Updated = true; f.System = tampered }, nil, []string{RuleSystemCopy}},
		{"updated, other key", func(f *DeviceAppFacts) { f.Updated = true; f.System = other }, nil, []string{RuleSystemCopy}},
		{"updated, unreadable", func(f *DeviceAppFacts) { f.Updated = true; f.SystemError = "no such file" }, nil, []string{RuleSystemCopy}},
		{"disabled 2", func(f *DeviceAppFacts) { f.EnabledState = 2 }, nil, []string{RuleEnabled}},
		{"disabled 3", func(f *DeviceAppFacts) { f.EnabledState = 3 }, nil, []string{RuleEnabled}},
		{"disabled 4", func(f *DeviceAppFacts) { f.EnabledState = 4 }, nil, []string{RuleEnabled}},
		{"enabled 1", func(f *DeviceAppFacts) { f.EnabledState = 1 }, nil, nil},
		{"not granted", func(f *DeviceAppFacts) { f.Granted = nil }, nil, []string{RulePermissions}},
		{"wrong signer", func(f *DeviceAppFacts) { f.APK = other }, nil, []string{RuleSignerPin}},
		{"unverifiable", func(f *DeviceAppFacts) { f.APK = nil; f.APKError = "pull failed" }, nil, []string{RuleSignature, RuleSignerPin, RuleMinVersion}},
		{"device lies about version", func(f *DeviceAppFacts) { f.DeviceVersionCode = 99 }, nil, []string{RuleMinVersion}},
		{"privileged required", func(*DeviceAppFacts) {}, func(a *App) *App { c := *a; c.Privileged = true; return &c }, []string{RulePrivileged}},
		{"privileged ok", func(f *DeviceAppFacts) { f.SystemCodePath = "/product/priv-app/M" }, func(a *App) *App { c := *a; c.Privileged = true; return &c }, nil},
		{"split by other key", func(f *DeviceAppFacts) { f.Splits = []APKFacts{*other} }, nil, []string{RuleSignature}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := base()
			tt.mod(&f)
			a := app
			if tt.app != nil {
				a = tt.app(app)
			}
			checks := a.CheckDeviceApp(f)
			var failed []string
			for _, c := range Failed(checks) {
				failed = append(failed, c.Rule)
				if c.Detail == "" {
					t.Errorf("%s: empty detail", c.Rule)
				}
			}
			if strings.Join(failed, ",") != strings.Join(tt.failed, ",") {
				t.Fatalf("failed rules %v, want %v\n%v", failed, tt.failed, checks)
			}
			if f.Present && len(checks) != len(DeviceRules)-1 {
				t.Errorf("%d checks, want one per device app rule (%d)", len(checks), len(DeviceRules)-1)
			}
		})
	}
}

func TestPartitionOf(t *testing.T) {
	for in, want := range map[string]string{"/product/app/X": "product", "/system/product/app/X": "product", "/system/priv-app/X": "system",
		"/system_ext/priv-app/X": "system_ext", "/vendor/app/X": "vendor", "/system/vendor/app/X": "vendor", "/data/app/~~a==/x": "data", "/sdcard/x": "", "": ""} {
		if got := PartitionOf(in); got != want {
			t.Errorf("PartitionOf(%q) = %q, want %q", in, got, want)
		}
	}
}
