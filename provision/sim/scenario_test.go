package sim

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/demoapk"
	"github.com/provkit/provkit/internal/testapk"
	"github.com/provkit/provkit/provision/sim/android"
)

func TestScenarioValidation(t *testing.T) {
	bad := map[string]string{
		"no devices":      "devices: []",
		"unknown field":   "devices: [{serial: A, colour: red}]",
		"bad release":     "devices: [{android: 9}]",
		"bad auth":        "devices: [{auth: maybe}]",
		"keys without":    "devices: [{auth: keys}]",
		"data system":     "devices: [{packages: [{name: a.b, system: /data/app/x}]}]",
		"update no sys":   "devices: [{packages: [{name: a.b, update: {versionCode: 2}}]}]",
		"bad enabled":     "devices: [{packages: [{name: a.b, system: /system/app/A, enabled: 7}]}]",
		"twice":           "devices: [{packages: [{name: a.b}, {name: a.b}]}]",
		"bad size":        "devices: [{partitions: [{name: boot, size: lots}]}]",
		"bad duration":    "devices: [{faults: {rebootAfter: soon}}]",
		"wrong kind":      "kind: Policy\ndevices: [{}]",
		"relative system": "devices: [{packages: [{name: a.b, system: product/app/A}]}]",
		"bad mode":        "devices: [{mode: download}]",
	}
	for name, y := range bad {
		_, err := ParseScenario([]byte(y), ".")
		if err == nil {
			t.Errorf("%s: accepted %q", name, y)
			continue
		}
		// Every problem is "line N: field: ...", in the user's words, never a Go type name.
		for _, l := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(l, "line ") || strings.Contains(l, "sim.") || strings.Contains(l, "in type") || strings.Contains(l, "unmarshal") {
				t.Errorf("%s: problem %q: want 'line N: field: ...' without Go types", name, l)
			}
		}
	}
}

// TestScenarioErrorsNameFileLineAndField: a scenario file's problems all come at once, each as
// file:line: field path: what is wrong and what is allowed.
func TestScenarioErrorsNameFileLineAndField(t *testing.T) {
	p := filepath.Join(t.TempDir(), "line.yaml")
	os.WriteFile(p, []byte(`devices:
  - serial: A
    colour: red
    android: fourteen
    packages:
      - name: a.b
        enabled: [1]
  - serial: B
    faults: {rebootAfter: soon}
`), 0o644)
	_, err := LoadScenario(p)
	var se *ScenarioError
	if !errors.As(err, &se) {
		t.Fatalf("want a *ScenarioError, got %v", err)
	}
	want := []string{
		p + ":3: devices[0].colour: unknown field; allowed here: serial, android,",
		p + `:4: devices[0].android: "fourteen" is not a whole number`,
		p + ":7: devices[0].packages[0].enabled: a list is not a whole number",
	}
	if len(se.Problems) != len(want) {
		t.Fatalf("problems:\n%s", err)
	}
	for i, w := range want {
		if !strings.HasPrefix(se.Problems[i], w) {
			t.Errorf("problem %d = %q, want prefix %q", i, se.Problems[i], w)
		}
	}
	// Shape problems fixed, the validation problems come with their lines too.
	os.WriteFile(p, []byte("devices:\n  - serial: A\n  - serial: B\n    faults: {rebootAfter: soon}\n    auth: maybe\n"), 0o644)
	_, err = LoadScenario(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":4: devices[1].faults: ") && !strings.HasPrefix(err.Error(), p+":5: devices[1].auth: ") {
		t.Errorf("validation problem: %v", err)
	}
}

func TestScenarioBuildsDevices(t *testing.T) {
	dir := t.TempDir()
	apk := testapk.Build(t, testapk.Spec{Package: "ru.oneme.app", VersionCode: 12, Permissions: []string{"android.permission.POST_NOTIFICATIONS"}})
	os.WriteFile(filepath.Join(dir, "max.apk"), apk, 0o644)
	sc, err := ParseScenario([]byte(`
apiVersion: provkit.dev/v1
kind: SimulatorScenario
devices:
  - serial: "LINE%02d"
    android: 12
    properties: {ro.build.fingerprint: "oem/x/y:12/SQ1A/7:user/release-keys"}
    settings: {secure: {install_non_market_apps: "0"}}
    users: [0, 10]
    packages:
      - name: ru.oneme.app
        apk: max.apk
        system: /system/priv-app/Max
        privileged: true
        update: {versionCode: 40}
        granted: [android.permission.POST_NOTIFICATIONS]
        userStates: {10: {installed: false}}
    partitions: [{name: boot, size: 1M}]
    faults: {rebootDelay: 500ms}
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), Options{Devices: 2, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := s.Device("LINE02")
	if d == nil {
		t.Fatalf("devices: %v, %v", s.Devices()[0].Serial(), s.Devices()[1].Serial())
	}
	var out, errb strings.Builder
	d.Android.Run(context.Background(), "getprop ro.build.fingerprint; pm path ru.oneme.app; pm path --user 10 ru.oneme.app; settings get secure install_non_market_apps; dumpsys package ru.oneme.app | grep -c 'User 10:'", strings.NewReader(""), &out, &errb)
	lines := strings.Split(out.String(), "\n")
	if lines[0] != "oem/x/y:12/SQ1A/7:user/release-keys" || !strings.HasPrefix(lines[1], "package:/data/app/~~") || lines[2] != "0" || lines[3] != "2" {
		t.Fatalf("device state:\n%s\n%s", out.String(), errb.String())
	}
	p := d.Android.Package("ru.oneme.app")
	if p.System.VersionCode != 12 || p.Update.VersionCode != 40 || !p.Privileged {
		t.Fatalf("package: %+v %+v", p.System, p.Update)
	}
	if b, _ := d.Android.FS().ReadFile("/system/priv-app/Max/Max.apk"); len(b) != len(apk) {
		t.Fatal("the system APK is not on the device")
	}
}

func TestBuiltins(t *testing.T) {
	key, err := demoapk.NewKey("release")
	if err != nil {
		t.Fatal(err)
	}
	genuine, err := demoapk.Build(demoapk.Spec{Package: "com.example.app", VersionCode: 7}, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range BuiltinNames() {
		_, err := Builtin(name, BuiltinAPKs{Genuine: genuine, WrongSigner: []byte("y")})
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Only --apk: the wrong-signer copy is built, same package and version, another signer; the
	// package comes from the APK.
	sc, err := Builtin("mixed", BuiltinAPKs{Genuine: genuine})
	if err != nil {
		t.Fatal(err)
	}
	wrong := sc.apks["wrong-signer"]
	info, err := android.ReadAPKInfo(bytes.NewReader(wrong), int64(len(wrong)))
	if err != nil || info.Package != "com.example.app" || info.VersionCode != 7 {
		t.Fatalf("built wrong-signer APK: %+v %v", info, err)
	}
	if bytes.Equal(wrong, genuine) {
		t.Fatal("wrong-signer APK is the genuine one")
	}
	for _, d := range sc.Devices {
		if len(d.Packages) > 0 && d.Packages[0].Name != "com.example.app" {
			t.Errorf("%s: package %s, want the APK's", d.Serial, d.Packages[0].Name)
		}
	}
	if _, err := Builtin("wrong-signer", BuiltinAPKs{}); err == nil {
		t.Error("wrong-signer without an APK signed by another key")
	}
	if _, err := Builtin("nonsense", BuiltinAPKs{}); err == nil || !strings.Contains(err.Error(), "mixed") {
		t.Errorf("unknown built-in: %v", err)
	}
	if _, err := Start(context.Background(), Options{Devices: 1, BasePort: 5554}); err == nil {
		t.Error("ports overlapping 5555-5585 accepted")
	}
}

// TestREADMEScenarioParses keeps the scenario example of docs/simulator.md valid.
func TestREADMEScenarioParses(t *testing.T) {
	b, err := os.ReadFile("../../docs/simulator.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## Scenario file")
	if !ok {
		t.Fatal("docs/simulator.md has no scenario section")
	}
	_, rest, _ = strings.Cut(rest, "```yaml\n")
	example, _, _ := strings.Cut(rest, "```")
	sc, err := ParseScenario([]byte(example), t.TempDir())
	if err != nil {
		t.Fatalf("README scenario: %v", err)
	}
	d := sc.Devices[0]
	if d.Files[0].Mode != 0o644 || d.Packages[0].Update.VersionCode != 31 || d.Faults.RebootDelay != "5s" {
		t.Fatalf("README scenario decoded as %+v", d)
	}
}

func FuzzParseScenario(f *testing.F) {
	f.Add([]byte("devices: [{serial: 'A%02d', android: 12, packages: [{name: a.b, system: /system/app/A, enabled: 3}], partitions: [{name: boot, size: 1M}], faults: {rebootDelay: 1s, bytesPerSecond: 2M}}]"))
	f.Add([]byte("apiVersion: provkit.dev/v1\nkind: SimulatorScenario\ndevices: [{auth: refuse}]"))
	f.Add([]byte("devices: [{partitions: [{name: x, size: 99999999999G}]}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, err := ParseScenario(b, t.TempDir())
		if err != nil {
			return
		}
		// Whatever validates must build (APK paths aside) or fail with an error, never panic.
		for i := range sc.Devices {
			for j := range sc.Devices[i].Packages {
				sc.Devices[i].Packages[j].APK = ""
				if u := sc.Devices[i].Packages[j].Update; u != nil {
					u.APK = ""
				}
			}
			sc.Devices[i].Files = nil
			sc.Devices[i].Partitions = nil
			sc.Devices[i].AuthorizedKeys = nil
			if sc.Devices[i].Auth == "keys" {
				sc.Devices[i].Auth = "refuse"
			}
			if _, _, err := sc.build(i, len(sc.Devices)); err != nil {
				t.Logf("build: %v", err)
			}
		}
	})
}
