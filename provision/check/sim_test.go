package check

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testapk"
	"github.com/provkit/provkit/manifests/policy"
	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/adb/adbtest"
	"github.com/provkit/provkit/provision/sim"
)

const pkgName = "ru.oneme.app"

// fixture holds the APKs and policy the device tests share: a genuine app, an update of it, the
// same package signed by another key, and a genuine build with one byte changed.
type fixture struct {
	dir    string
	policy *policy.Policy
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  string
)

func loadFixture(t *testing.T) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		dir, err := os.MkdirTemp("", "provkit-check-fixture-")
		if err != nil {
			fixErr = err.Error()
			return
		}
		signer := testapk.NewSigner(t, "Messenger release")
		perms := []string{"android.permission.POST_NOTIFICATIONS"}
		genuine := testapk.Build(t, testapk.Spec{Package: pkgName, VersionCode: 25, Permissions: perms, Signer: signer, Padding: 8192})
		update := testapk.Build(t, testapk.Spec{Package: pkgName, VersionCode: 31, Permissions: perms, Signer: signer})
		wrong := testapk.Build(t, testapk.Spec{Package: pkgName, VersionCode: 25, Permissions: perms})
		tampered := tamper(t, genuine)
		for name, b := range map[string][]byte{"genuine.apk": genuine, "update.apk": update, "wrong.apk": wrong, "tampered.apk": tampered} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				fixErr = err.Error()
				return
			}
		}
		pol, err := policy.Parse([]byte(`apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: test}
apps:
  - package: ru.oneme.app
    signers: [{sha256: "`+signer.CertSHA256()+`"}]
    minVersionCode: 20
    partition: product
    grantPermissions: [android.permission.POST_NOTIFICATIONS]
`), "policy.yaml")
		if err != nil {
			fixErr = err.Error()
			return
		}
		fix = &fixture{dir: dir, policy: pol}
	})
	if fix == nil {
		if t.Skipped() {
			t.SkipNow()
		}
		t.Fatalf("fixture: %s", fixErr)
	}
	return fix
}

// tamper changes one byte of the stored padding asset: the ZIP still reads, the signature no
// longer verifies.
func tamper(t *testing.T, b []byte) []byte {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(nil), b...)
	for _, f := range zr.File {
		if f.Name == "assets/padding.bin" {
			off, err := f.DataOffset()
			if err != nil {
				t.Fatal(err)
			}
			out[off+100] ^= 0xff
			return out
		}
	}
	t.Fatal("no padding entry")
	return nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fix != nil {
		os.RemoveAll(fix.dir)
	}
	os.Exit(code)
}

// expectation is a device's expected verdict and the rules that must fail (for "fail"), or a word
// the error reason must hold (for "error").
type expectation struct {
	verdict string
	rules   []string
	reason  string
}

const scenarioDoc = `apiVersion: provkit.dev/v1
kind: SimulatorScenario
devices:
  - {serial: COMPLIANT14, android: 14, packages: [{name: ru.oneme.app, apk: genuine.apk, system: /product/app/Messenger, granted: [android.permission.POST_NOTIFICATIONS]}]}
  - {serial: OLD10, android: 10, packages: [{name: ru.oneme.app, apk: genuine.apk, system: /product/app/Messenger, granted: [android.permission.POST_NOTIFICATIONS]}]}
  - {serial: OLD11, android: 11, packages: [{name: ru.oneme.app, apk: genuine.apk, system: /system/product/app/Messenger, granted: [android.permission.POST_NOTIFICATIONS]}]}
  - {serial: OLD12, android: 12, packages: [{name: ru.oneme.app, apk: genuine.apk, system: /product/app/Messenger, enabled: 1, granted: [android.permission.POST_NOTIFICATIONS]}]}
  - {serial: OLD13, android: 13, packages: [{name: ru.oneme.app, apk: genuine.apk, system: /product/app/Messenger, granted: [android.permission.POST_NOTIFICATIONS]}]}
  - {serial: NEW15, android: 15, packages: [{name: ru.oneme.app, apk: genuine.apk, system: /product/app/Messenger, granted: [android.permission.POST_NOTIFICATIONS]}]}
  - {serial: MISSING, android: 14}
  - {serial: UPDATED, android: 14, packages: [{name: ru.oneme.app, apk: genuine.apk, system: /product/app/Messenger, update: {apk: update.apk}, granted: [android.permission.POST_NOTIFICATIONS]}]}
  - {serial: TAMPEREDSYS, android: 13, packages: [{name: ru.oneme.app, apk: tampered.apk, system: /product/app/Messenger, update: {apk: update.apk}, granted: [android.permission.POST_NOTIFICATIONS]}]}
  - {serial: OTHERSYS, android: 14, packages: [{name: ru.oneme.app, apk: wrong.apk, system: /product/app/Messenger, update: {apk: update.apk}, granted: [android.permission.POST_NOTIFICATIONS]}]}
  - {serial: DISABLED2, android: 14, packages: [{name: ru.oneme.app, apk: genuine.apk, system: /product/app/Messenger, enabled: 2, granted: [android.permission.POST_NOTIFICATIONS]}]}
  - {serial: DISABLED3, android: 11, packages: [{name: ru.oneme.app, apk: genuine.apk, system: /product/app/Messenger, enabled: 3, granted: [android.permission.POST_NOTIFICATIONS]}]}
  - {serial: DISABLED4, android: 15, packages: [{name: ru.oneme.app, apk: genuine.apk, system: /product/app/Messenger, enabled: 4, granted: [android.permission.POST_NOTIFICATIONS]}]}
  - {serial: WRONGSIGNER, android: 14, packages: [{name: ru.oneme.app, apk: wrong.apk, system: /product/app/Messenger, granted: [android.permission.POST_NOTIFICATIONS]}]}
  - {serial: UNINSTALLED0, android: 14, packages: [{name: ru.oneme.app, apk: genuine.apk, system: /product/app/Messenger, installed: false}]}
  - {serial: WRONGPART, android: 14, packages: [{name: ru.oneme.app, apk: genuine.apk, system: /system/app/Messenger, granted: [android.permission.POST_NOTIFICATIONS]}]}
  - {serial: UNAUTH, android: 14, auth: refuse, packages: [{name: ru.oneme.app, apk: genuine.apk, system: /product/app/Messenger}]}
  - {serial: OFFLINE, android: 14, faults: {offline: true}}
  - {serial: VANISHES, android: 14, faults: {dropOnCommand: sha256sum}, packages: [{name: ru.oneme.app, apk: genuine.apk, system: /product/app/Messenger}]}
  - {serial: REBOOTS, android: 14, faults: {rebootDelay: 3s}, packages: [{name: ru.oneme.app, apk: genuine.apk, system: /product/app/Messenger}]}
`

var expected = map[string]expectation{
	"COMPLIANT14":  {verdict: VerdictPass},
	"OLD10":        {verdict: VerdictPass},
	"OLD11":        {verdict: VerdictPass},
	"OLD12":        {verdict: VerdictPass},
	"OLD13":        {verdict: VerdictPass},
	"NEW15":        {verdict: VerdictPass},
	"MISSING":      {verdict: VerdictFail, rules: []string{policy.RuleInstalled}},
	"UPDATED":      {verdict: VerdictPass},
	"TAMPEREDSYS":  {verdict: VerdictFail, rules: []string{policy.RuleSystemCopy}},
	"OTHERSYS":     {verdict: VerdictFail, rules: []string{policy.RuleSystemCopy}},
	"DISABLED2":    {verdict: VerdictFail, rules: []string{policy.RuleEnabled}},
	"DISABLED3":    {verdict: VerdictFail, rules: []string{policy.RuleEnabled}},
	"DISABLED4":    {verdict: VerdictFail, rules: []string{policy.RuleEnabled}},
	"WRONGSIGNER":  {verdict: VerdictFail, rules: []string{policy.RuleSignerPin}},
	"UNINSTALLED0": {verdict: VerdictFail, rules: []string{policy.RuleInstalled, policy.RulePermissions}},
	"WRONGPART":    {verdict: VerdictFail, rules: []string{policy.RuleSystemApp}},
	"UNAUTH":       {verdict: VerdictError, reason: "unauthorized"},
	"OFFLINE":      {verdict: VerdictError, reason: "offline"},
	"VANISHES":     {verdict: VerdictError, reason: "went away"},
	"REBOOTS":      {verdict: VerdictError, reason: ""},
}

func startScenario(t *testing.T, f *fixture) *sim.Simulator {
	t.Helper()
	sc, err := sim.ParseScenario([]byte(scenarioDoc), f.dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: len(sc.Devices), Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func hostKey(t *testing.T) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func judge(t *testing.T, results []Result, skip map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range results {
		seen[r.Serial] = true
		want, ok := expected[r.Serial]
		if !ok || skip[r.Serial] {
			continue
		}
		if r.Verdict != want.verdict {
			t.Errorf("%s: verdict %s, want %s; reasons %q", r.Serial, r.Verdict, want.verdict, r.Reasons)
			continue
		}
		if len(r.Reasons) == 0 && r.Verdict != VerdictPass {
			t.Errorf("%s: %s without a reason", r.Serial, r.Verdict)
		}
		switch r.Verdict {
		case VerdictFail:
			var failed []string
			for _, a := range r.Apps {
				for _, c := range policy.Failed(a.Checks) {
					failed = append(failed, c.Rule)
				}
			}
			sort.Strings(failed)
			w := append([]string(nil), want.rules...)
			sort.Strings(w)
			if strings.Join(failed, ",") != strings.Join(w, ",") {
				t.Errorf("%s: failed rules %v, want %v; reasons %q", r.Serial, failed, w, r.Reasons)
			}
		case VerdictError:
			if !strings.Contains(strings.Join(r.Reasons, " "), want.reason) {
				t.Errorf("%s: reasons %q, want one mentioning %q", r.Serial, r.Reasons, want.reason)
			}
		case VerdictPass:
			if len(r.Apps) != 1 || r.Apps[0].Signer == "" || len(r.Apps[0].APKSHA256) != 64 || r.Apps[0].CodePath == "" || r.Apps[0].VersionCode < 25 {
				t.Errorf("%s: evidence incomplete: %+v", r.Serial, r.Apps)
			}
		}
	}
	for serial := range expected {
		if !seen[serial] && !skip[serial] {
			t.Errorf("no result for %s", serial)
		}
	}
}

// rebootOnStart reboots the REBOOTS device just as its check starts.
func rebootOnStart(s *sim.Simulator) func(string, bool, *Result) {
	return func(serial string, done bool, _ *Result) {
		if !done && strings.Contains(serial, "REBOOTS") || !done && serial == s.Device("REBOOTS").ADBAddr() {
			s.Device("REBOOTS").Reboot("")
		}
	}
}

func TestCheckDirect(t *testing.T) {
	f := loadFixture(t)
	s := startScenario(t, f)
	key := hostKey(t)
	var targets []Target
	for _, d := range s.Devices() {
		targets = append(targets, DirectTarget(d.ADBAddr(), adb.DialOptions{Keys: []*rsa.PrivateKey{key}, Serial: d.Serial(), AuthWait: 500 * time.Millisecond}))
		targets[len(targets)-1].Serial = d.Serial()
	}
	cache := NewCache()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := Run(ctx, targets, Options{Policy: f.policy, Jobs: 4, Timeout: 8 * time.Second, Cache: cache, Progress: rebootOnStart(s)})
	if err != nil {
		t.Fatal(err)
	}
	judge(t, results, nil)
	// An error reason names the device once, its state once, and ends with what to do.
	for _, r := range results {
		if r.Verdict != VerdictError {
			continue
		}
		reason := strings.Join(r.Reasons, " ")
		if n := strings.Count(reason, r.Serial); n != 1 {
			t.Errorf("%s: the reason names the device %d times: %q", r.Serial, n, reason)
		}
		what, _, _ := strings.Cut(reason, "; ") // the advice may name a state in a command
		for _, st := range []string{"unauthorized", "offline", "gone"} {
			if n := strings.Count(what, st); n > 1 {
				t.Errorf("%s: the reason says %q %d times: %q", r.Serial, st, n, reason)
			}
		}
		if !strings.Contains(reason, "; ") {
			t.Errorf("%s: the reason does not say what to do: %q", r.Serial, reason)
		}
	}
	// genuine, update, wrong, tampered: each verified once whatever the number of devices.
	if n := cache.Len(); n != 4 {
		t.Errorf("cache holds %d APKs, want 4", n)
	}
	cached := 0
	for _, r := range results {
		for _, a := range r.Apps {
			if a.APKSource == "cache" {
				cached++
			}
		}
	}
	if cached == 0 {
		t.Error("no device's APK came from the cache")
	}
}

// TestCheckPullAll: with PullAll nothing the device prints stands in for the APK: every APK is
// pulled and verified, the cache serves none, and the verdicts are the same as with the cache.
func TestCheckPullAll(t *testing.T) {
	f := loadFixture(t)
	s := startScenario(t, f)
	key := hostKey(t)
	var targets []Target
	for _, d := range s.Devices() {
		if d.Serial() == "REBOOTS" || d.Serial() == "VANISHES" {
			continue // their faults fire on a reboot or on sha256sum, which PullAll never runs
		}
		targets = append(targets, DirectTarget(d.ADBAddr(), adb.DialOptions{Keys: []*rsa.PrivateKey{key}, Serial: d.Serial(), AuthWait: 500 * time.Millisecond}))
		targets[len(targets)-1].Serial = d.Serial()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := Run(ctx, targets, Options{Policy: f.policy, Jobs: 4, Timeout: 8 * time.Second, PullAll: true})
	if err != nil {
		t.Fatal(err)
	}
	judge(t, results, map[string]bool{"REBOOTS": true, "VANISHES": true})
	pulled := 0
	for _, r := range results {
		for _, a := range r.Apps {
			switch a.APKSource {
			case "cache":
				t.Errorf("%s: %s came from the cache although PullAll is set", r.Serial, a.Package)
			case "pulled":
				pulled++
			}
		}
	}
	if pulled < 2 {
		t.Errorf("only %d APKs were pulled", pulled)
	}
}

func TestCheckThroughADBServer(t *testing.T) {
	f := loadFixture(t)
	srv := adbtest.StartServer(t)
	s := startScenario(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, d := range s.Devices() {
		if _, err := srv.Connect(ctx, d.ADBAddr()); err != nil && !errors.Is(err, adb.ErrUnauthorized) {
			t.Logf("connect %s: %v", d.Serial(), err)
		}
		addr := d.ADBAddr()
		t.Cleanup(func() { srv.Disconnect(context.Background(), addr) })
	}
	// Wait (bounded) until the healthy devices are usable.
	for _, d := range s.Devices() {
		if _, ok := map[string]bool{"UNAUTH": true, "OFFLINE": true}[d.Serial()]; ok {
			continue
		}
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		if _, err := srv.WaitFor(wctx, d.ADBAddr()); err != nil {
			t.Fatalf("%s: %v", d.Serial(), err)
		}
		wcancel()
	}
	targets, err := ServerTargets(ctx, srv.Server, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The server knows the devices by address: map back to the scenario's serials.
	byAddr := map[string]string{}
	for _, d := range s.Devices() {
		byAddr[d.ADBAddr()] = d.Serial()
	}
	if len(targets) != len(s.Devices()) {
		t.Errorf("--all found %d devices, want %d (every state)", len(targets), len(s.Devices()))
	}
	results, err := Run(ctx, targets, Options{Policy: f.policy, Jobs: 4, Timeout: 30 * time.Second, Progress: rebootOnStart(s)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range results {
		if results[i].Transport != TransportTCP {
			t.Errorf("%s: transport %q", results[i].Serial, results[i].Transport)
		}
		results[i].Serial = byAddr[results[i].Serial]
	}
	judge(t, results, nil)
}

func TestRunRejectsBadJobs(t *testing.T) {
	if _, err := Run(context.Background(), nil, Options{Policy: &policy.Policy{}, Jobs: 0}); err == nil {
		t.Fatal("jobs 0 accepted")
	}
}

func TestRunCancelled(t *testing.T) {
	f := loadFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	targets := []Target{DirectTarget("127.0.0.1:1", adb.DialOptions{}), DirectTarget("127.0.0.1:2", adb.DialOptions{})}
	results, err := Run(ctx, targets, Options{Policy: f.policy, Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Verdict != VerdictError || !strings.Contains(strings.Join(r.Reasons, " "), "interrupted") {
			t.Errorf("%+v", r)
		}
	}
}

// TestRunTimeoutSaysTimedOut: a device that accepts the connection and then says nothing until
// --timeout expires is reported as timed out (with the limit, and what to do), not as a device
// still booting.
func TestRunTimeoutSaysTimedOut(t *testing.T) {
	f := loadFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	targets := []Target{DirectTarget(ln.Addr().String(), adb.DialOptions{Keys: []*rsa.PrivateKey{hostKey(t)}})}
	results, err := Run(context.Background(), targets, Options{Policy: f.policy, Jobs: 1, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Verdict != VerdictError {
		t.Fatalf("results: %+v", results)
	}
	reason := strings.Join(results[0].Reasons, " ")
	if !strings.Contains(reason, "timed out after 200ms") || !strings.Contains(reason, "--timeout") || strings.Contains(reason, "finish booting") {
		t.Errorf("reason %q: want a timeout naming the limit and --timeout, not the offline hint", reason)
	}
}
