package sim

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/internal/demoapk"
	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/manifests/policy"
	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/adb/adbtest"
	pcheck "github.com/provkit/provkit/provision/check"
	provsim "github.com/provkit/provkit/provision/sim"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader in different goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runSim runs `provkit sim args...` until ready is called, lets check look at the running devices,
// then interrupts it and returns stdout, stderr and the error.
func runSim(t *testing.T, args []string, check func(*provsim.Simulator)) (string, string, error) {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	ios.Out, ios.ErrOut = out, errOut
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := NewCmdSim(ios, func(ctx context.Context, o *Options) error {
		o.Ready = func(s *provsim.Simulator) {
			if check != nil {
				check(s)
			}
			cancel()
		}
		return simRun(ctx, o)
	})
	cmd.SetArgs(args)
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestSimPrintsDevices(t *testing.T) {
	out, errOut, err := runSim(t, []string{"--devices", "3", "--base-port", "0", "--scenario", "missing"}, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("stdout:\n%s", out)
	}
	for i, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 4 || f[0] != "SIM-MISSING-00"+strconv.Itoa(i+1) || !strings.HasPrefix(f[1], "127.0.0.1:") || !strings.HasPrefix(f[2], "127.0.0.1:") || f[3] != "android" {
			t.Errorf("line %q", l)
		}
	}
	if !strings.Contains(errOut, "serving 3 devices") {
		t.Errorf("stderr: %q", errOut)
	}
}

func TestSimJSON(t *testing.T) {
	dir := t.TempDir()
	sc := filepath.Join(dir, "line.yaml")
	os.WriteFile(sc, []byte("devices: [{serial: 'LINE%02d', android: 13}, {serial: 'BL%02d', mode: bootloader}]\n"), 0o644)
	out, errOut, err := runSim(t, []string{"--devices", "3", "--base-port", "0", "--scenario", sc, "--json"}, func(s *provsim.Simulator) {
		if v := s.Devices()[2].Android.Prop("ro.build.version.release"); v != "13" {
			t.Errorf("release %q", v)
		}
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var doc struct {
		Devices []struct{ Serial, ADB, Fastboot, Mode string } `json:"devices"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
	}
	if len(doc.Devices) != 3 || doc.Devices[2].Serial != "LINE03" || doc.Devices[0].ADB == "" || doc.Devices[0].Fastboot == "" ||
		doc.Devices[0].Mode != "android" || doc.Devices[1].Serial != "BL02" || doc.Devices[1].Mode != "bootloader" {
		t.Fatalf("%+v", doc)
	}
}

func TestSimFlagErrors(t *testing.T) {
	for _, args := range [][]string{{"--devices", "0"}, {"--base-port", "-1"}, {"extra"}, {"--base-port", "5560"},
		{"--base-port", "5550", "--devices", "4"}, {"--base-port", "65535", "--devices", "2"}, {"--scenario", "nonsense"},
		{"--scenario", "compliant"}} {
		ios, _, _, _ := iostreams.Test()
		cmd := NewCmdSim(ios, func(context.Context, *Options) error { t.Fatal("ran with bad flags"); return nil })
		cmd.SetArgs(args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		if err := cmd.Execute(); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%v: %v", args, err)
		}
	}
	_, _, err := runSim(t, []string{"--scenario", "nonsense", "--base-port", "0"}, nil)
	if err == nil || !strings.Contains(err.Error(), "no built-in scenario") {
		t.Errorf("unknown scenario: %v", err)
	}
	_, _, err = runSim(t, []string{"--base-port", "5550", "--devices", "4"}, nil)
	if err == nil || !strings.Contains(err.Error(), "5555-5585") {
		t.Errorf("reserved ports: %v", err)
	}
	_, _, err = runSim(t, []string{"--scenario", "updated", "--base-port", "0"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--apk <file>") {
		t.Errorf("built-in scenario without --apk: %v", err)
	}
}

// TestSimAttachesToADBServer runs --adb-connect against a real adb server of its own.
func TestSimAttachesToADBServer(t *testing.T) {
	srv := adbtest.StartServer(t)
	adbRun := func(args ...string) string {
		out, _ := srv.ADB(t, 30*time.Second, args...)
		return out
	}
	t.Setenv("ANDROID_ADB_SERVER_PORT", strconv.Itoa(srv.Port))

	// The second device sits in the bootloader: nothing to attach.
	sc := filepath.Join(t.TempDir(), "two.yaml")
	os.WriteFile(sc, []byte("devices: [{serial: ATT1}, {serial: BL1, mode: bootloader}, {serial: REF1, auth: refuse}]\n"), 0o644)
	var listed string
	_, errOut, err := runSim(t, []string{"--base-port", "0", "--devices", "3", "--scenario", sc, "--adb-connect"}, func(s *provsim.Simulator) {
		addr := s.Devices()[0].ADBAddr()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if listed = adbRun("devices"); strings.Contains(listed, addr+"\tdevice") {
				return
			}
		}
		t.Errorf("adb devices:\n%s", listed)
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	// Only the device whose scenario refuses the key fails to authenticate, and stderr says it
	// was meant to; a default (trusted) device is accepted at once.
	if strings.Count(errOut, "failed to authenticate") != 1 || !strings.Contains(errOut, "REF1: adb server says: failed to authenticate") ||
		!strings.Contains(errOut, "(expected: its scenario says auth: refuse, so it stays unauthorized)") {
		t.Errorf("authentication messages: %q", errOut)
	}
	if !strings.Contains(errOut, "BL1: in bootloader mode, adb is not listening; not attached") || strings.Count(listed, "127.0.0.1:") != 2 {
		t.Errorf("the bootloader device: stderr %q, adb devices:\n%s", errOut, listed)
	}
	if after := adbRun("devices"); strings.Contains(after, "127.0.0.1:") {
		t.Errorf("device still attached after sim stopped:\n%s", after)
	}
}

// TestSimStartsADBServer: --adb-connect with no adb server running starts one, as adb does, and
// the device is attached ("attached": true) without an authentication round.
func TestSimStartsADBServer(t *testing.T) {
	adbPath := testtool.Require(t, "adb")[0]
	home := t.TempDir()
	port := adbtest.FreePort(t)
	for _, kv := range adbtest.ServerEnv(home, port)[len(os.Environ()):] {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = exec.CommandContext(ctx, adbPath, "-P", strconv.Itoa(port), "kill-server").Run()
	})
	out, errOut, err := runSim(t, []string{"--base-port", "0", "--scenario", "missing", "--adb-connect", "--json"}, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "starting one (adb start-server)") {
		t.Errorf("stderr does not say the server was started: %q", errOut)
	}
	var doc struct {
		Devices []deviceJSON `json:"devices"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Devices) != 1 || !doc.Devices[0].Attached {
		t.Errorf("want one attached device: %v\n%s\n%s", err, out, errOut)
	}
}

// TestBuiltinScenariosGetTheirVerdicts: with only --apk, every kind of the "mixed" built-in
// scenario gets from provkit check exactly the verdict its name says (the wrong-signer APK is built
// in pure Go, the update carries the APK's own versionCode), and no phone asks for authorization
// except the unauthorized one.
func TestBuiltinScenariosGetTheirVerdicts(t *testing.T) {
	dir := t.TempDir()
	key, err := demoapk.NewKey("release")
	if err != nil {
		t.Fatal(err)
	}
	apk, err := demoapk.Build(demoapk.Spec{Package: "com.example.mandated", VersionCode: 40, Permissions: []string{"android.permission.POST_NOTIFICATIONS"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	apkPath := filepath.Join(dir, "app.apk")
	os.WriteFile(apkPath, apk, 0o644)
	polPath := filepath.Join(dir, "policy.yaml")
	os.WriteFile(polPath, []byte(`apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: t}
apps:
  - package: com.example.mandated
    signers: [{sha256: "`+key.CertSHA256()+`"}]
    minVersionCode: 40
    partition: product
    grantPermissions: [android.permission.POST_NOTIFICATIONS]
`), 0o644)
	pol, err := policy.Load(polPath)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := rsa.GenerateKey(crand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"COMPLIANT": "pass", "MISSING": "fail", "UPDATED": "pass", "DISABLED": "fail", "WRONGSIGNER": "fail", "UNAUTHORIZED": "error"}
	var results []pcheck.Result
	_, errOut, err := runSim(t, []string{"--scenario", "mixed", "--apk", apkPath, "--devices", "6", "--base-port", "0"}, func(s *provsim.Simulator) {
		var targets []pcheck.Target
		for _, d := range s.Devices() {
			tg := pcheck.DirectTarget(d.ADBAddr(), adb.DialOptions{Keys: []*rsa.PrivateKey{hostKey}, Serial: d.Serial(), AuthWait: 500 * time.Millisecond})
			tg.Serial = d.Serial()
			targets = append(targets, tg)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var err error
		if results, err = pcheck.Run(ctx, targets, pcheck.Options{Policy: pol, Jobs: 3, Timeout: time.Minute}); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if len(results) != 6 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		kind := strings.TrimPrefix(r.Serial[:strings.LastIndexByte(r.Serial, '-')], "SIM-")
		if w, ok := want[kind]; !ok || r.Verdict != w {
			t.Errorf("%s: verdict %s, want %s (%s)", r.Serial, r.Verdict, w, strings.Join(r.Reasons, "; "))
		}
	}
}
