package sim

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testapk"
)

func scenario(t *testing.T, yml string) *Scenario {
	t.Helper()
	sc, err := ParseScenario([]byte(yml), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestUnauthorizedDevice(t *testing.T) {
	h := newADB(t)
	s := startSim(t, scenario(t, "devices: [{serial: LOCKED, auth: refuse}]"), 1)
	addr := s.Devices()[0].ADBAddr()
	h.connect(addr, "unauthorized")
	_, errOut, err := h.run(20*time.Second, "-s", addr, "shell", "true")
	if err == nil || !strings.Contains(errOut, "unauthorized") {
		t.Fatalf("shell on an unauthorized device: %v %q", err, errOut)
	}
}

func TestAuthorizedKeysOnly(t *testing.T) {
	h := newADB(t)
	pub, err := os.ReadFile(filepath.Join(h.home, ".android", "adbkey.pub"))
	if err != nil {
		t.Fatalf("the adb server did not create its key: %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "host.pub"), pub, 0o644)
	sc, err := ParseScenario([]byte("devices: [{serial: KEYED, auth: keys, authorizedKeys: [host.pub]}]"), dir)
	if err != nil {
		t.Fatal(err)
	}
	s := startSim(t, sc, 1)
	addr := s.Devices()[0].ADBAddr()
	out, _, err := h.run(30*time.Second, "connect", addr)
	if err != nil || !strings.Contains(out, "connected to "+addr) {
		t.Fatalf("connect with a pre-authorised key: %v %q", err, out)
	}
	h.waitState(addr, "device", 20*time.Second)

	// A device that knows only another key stays unauthorized.
	other := testapk.NewSigner(t, "other")
	_ = other
	sc2 := scenario(t, "devices: [{serial: OTHERKEY, auth: keys, authorizedKeys: ['"+otherKey(t)+"']}]")
	s2 := startSim(t, sc2, 1)
	h.connect(s2.Devices()[0].ADBAddr(), "unauthorized")
}

func TestOfflineDevice(t *testing.T) {
	h := newADB(t)
	s := startSim(t, scenario(t, "devices: [{faults: {offline: true}}]"), 1)
	h.connect(s.Devices()[0].ADBAddr(), "offline")
}

func TestDeviceRebootsAndComesBack(t *testing.T) {
	h := newADB(t)
	s := startSim(t, scenario(t, "devices: [{faults: {rebootDelay: 1s}}]"), 1)
	d := s.Devices()[0]
	addr := d.ADBAddr()
	h.connect(addr, "device")
	if _, errOut, err := h.run(30*time.Second, "-s", addr, "reboot"); err != nil {
		t.Fatalf("adb reboot: %v %s", err, errOut)
	}
	for deadline := time.Now().Add(5 * time.Second); d.Reboots() == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if d.Reboots() != 1 {
		t.Fatalf("reboots: %d", d.Reboots())
	}
	// The adb server reconnects to a TCP device by itself once it is back.
	h.waitState(addr, "device", 30*time.Second)
	if out, _, err := h.run(20*time.Second, "-s", addr, "shell", "getprop", "sys.boot_completed"); err != nil || out != "1\n" {
		t.Fatalf("after reboot: %v %q", err, out)
	}
}

func TestConnectionDroppedAfterBytes(t *testing.T) {
	h := newADB(t)
	s := startSim(t, scenario(t, "devices: [{faults: {dropAfterBytes: 256K}, files: [{path: /sdcard/big.bin, content: '"+strings.Repeat("x", 600_000)+"'}]}]"), 1)
	addr := s.Devices()[0].ADBAddr()
	h.connect(addr, "device")
	out, errOut, err := h.run(30*time.Second, "-s", addr, "pull", "/sdcard/big.bin", filepath.Join(t.TempDir(), "big.bin"))
	if err == nil {
		t.Fatalf("a pull of 600 KB survived a link that drops after 256 KB: %s %s", out, errOut)
	}
}

func TestConnectionDroppedMidCommand(t *testing.T) {
	h := newADB(t)
	s := startSim(t, scenario(t, "devices: [{faults: {dropOnCommand: 'dumpsys package'}}]"), 1)
	addr := s.Devices()[0].ADBAddr()
	h.connect(addr, "device")
	if out, _, err := h.run(20*time.Second, "-s", addr, "shell", "getprop", "sys.boot_completed"); err != nil || out != "1\n" {
		t.Fatalf("unaffected command: %v %q", err, out)
	}
	_, _, err := h.run(20*time.Second, "-s", addr, "shell", "dumpsys", "package", "x")
	if err == nil {
		t.Fatal("dumpsys survived a connection dropped mid-command")
	}
}

func TestSlowLinkStillCorrect(t *testing.T) {
	h := newADB(t)
	s := startSim(t, scenario(t, "devices: [{faults: {bytesPerSecond: 4M}}]"), 1)
	addr := s.Devices()[0].ADBAddr()
	h.connect(addr, "device")
	data := bytes.Repeat([]byte("slow"), 256<<10) // 1 MiB
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, data, 0o644)
	if _, errOut, err := h.run(60*time.Second, "-s", addr, "push", src, "/data/local/tmp/f"); err != nil {
		t.Fatalf("push over a slow link: %v %s", err, errOut)
	}
	got, _ := s.Devices()[0].Android.FS().ReadFile("/data/local/tmp/f")
	if !bytes.Equal(got, data) {
		t.Fatal("pushed bytes differ")
	}
}

// TestLegacyDevice: a device without shell_v2, cmd or abb_exec makes adb fall back to "shell:" and
// to push + pm install.
func TestLegacyDevice(t *testing.T) {
	h := newADB(t)
	s := startSim(t, scenario(t, "devices: [{serial: OLD, android: 10, features: [stat_v2]}]"), 1)
	d := s.Devices()[0]
	addr := d.ADBAddr()
	h.connect(addr, "device")
	out, _, err := h.run(20*time.Second, "-s", addr, "shell", "echo", "legacy")
	if err != nil || out != "legacy\n" {
		t.Fatalf("legacy shell: %v %q", err, out)
	}
	apk := testapk.Build(t, testapk.Spec{Package: "com.example.legacy", VersionCode: 3})
	p := filepath.Join(t.TempDir(), "legacy.apk")
	os.WriteFile(p, apk, 0o644)
	out, errOut, err := h.run(60*time.Second, "-s", addr, "install", p)
	if err != nil || !strings.Contains(out, "Success") {
		t.Fatalf("legacy install: %v %q %q", err, out, errOut)
	}
	if pk := d.Android.Package("com.example.legacy"); pk == nil || !strings.HasPrefix(pk.Update.CodePath, "/data/app/com.example.legacy-") {
		t.Fatalf("installed package: %+v", pk)
	}
}

// TestManyDevicesInParallel runs shells on several devices at once through one adb server.
func TestManyDevicesInParallel(t *testing.T) {
	h := newADB(t)
	s := startSim(t, scenario(t, "devices: [{serial: 'PAR%02d'}]"), 4)
	for _, d := range s.Devices() {
		h.connect(d.ADBAddr(), "device")
	}
	var wg sync.WaitGroup
	errs := make(chan string, 32)
	for _, d := range s.Devices() {
		for k := 0; k < 3; k++ {
			wg.Add(1)
			go func(addr, serial string) {
				defer wg.Done()
				out, _, err := h.run(30*time.Second, "-s", addr, "shell", "getprop", "ro.serialno")
				if err != nil || out != serial+"\n" {
					errs <- addr + ": " + out
				}
			}(d.ADBAddr(), d.Serial())
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func otherKey(t *testing.T) string {
	t.Helper()
	k, err := wireGenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
