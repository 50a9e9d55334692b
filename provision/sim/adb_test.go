package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testapk"
)

func startSim(t *testing.T, sc *Scenario, n int) *Simulator {
	t.Helper()
	s, err := Start(context.Background(), Options{Devices: n, Scenario: sc, Log: func(l string) { t.Log(time.Now().Format("05.000"), l) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRealADBDrivesSimulator(t *testing.T) {
	h := newADB(t)
	genuine := testapk.Build(t, testapk.Spec{Package: "ru.oneme.app", VersionCode: 25, Permissions: []string{"android.permission.POST_NOTIFICATIONS"}})
	sc, err := Builtin("compliant", BuiltinAPKs{Genuine: genuine})
	if err != nil {
		t.Fatal(err)
	}
	s := startSim(t, sc, 1)
	d := s.Devices()[0]
	addr := d.ADBAddr()
	h.connect(addr, "device")

	out, errOut, err := h.run(20*time.Second, "-s", addr, "shell", "getprop", "ro.build.fingerprint")
	if err != nil || !strings.HasPrefix(out, "provkit/sim_phone/sim:14/") {
		t.Fatalf("shell getprop: %v %q %q", err, out, errOut)
	}
	out, _, err = h.run(20*time.Second, "-s", addr, "shell", "pm", "path", "ru.oneme.app")
	if err != nil || out != "package:/product/app/Messenger/Messenger.apk\n" {
		t.Fatalf("pm path: %v %q", err, out)
	}
	// shell v2 carries exit codes and stderr separately.
	out, errOut, err = h.run(20*time.Second, "-s", addr, "shell", "nosuchcmd")
	if ee, ok := err.(interface{ ExitCode() int }); !ok || ee.ExitCode() != 127 || out != "" || !strings.Contains(errOut, "nosuchcmd: inaccessible or not found") {
		t.Fatalf("unknown command: %v %q %q", err, out, errOut)
	}

	// pull the APK that pm path names: the bytes are the APK, and the device's sha256sum agrees.
	dir := t.TempDir()
	local := filepath.Join(dir, "pulled.apk")
	if out, errOut, err := h.run(60*time.Second, "-s", addr, "pull", "/product/app/Messenger/Messenger.apk", local); err != nil {
		t.Fatalf("pull: %v %s %s", err, out, errOut)
	}
	pulled, _ := os.ReadFile(local)
	if !bytes.Equal(pulled, genuine) {
		t.Fatalf("pulled %d bytes, want the %d-byte APK", len(pulled), len(genuine))
	}
	sum := sha256.Sum256(genuine)
	out, _, _ = h.run(20*time.Second, "-s", addr, "shell", "sha256sum /product/app/Messenger/Messenger.apk")
	if !strings.HasPrefix(out, hex.EncodeToString(sum[:])) {
		t.Fatalf("sha256sum: %q", out)
	}

	// push a file larger than one DATA chunk and one WRTE, read it back.
	big := bytes.Repeat([]byte("provkit-sim "), 300_000) // 3.6 MB
	src := filepath.Join(dir, "big.bin")
	os.WriteFile(src, big, 0o644)
	if out, errOut, err := h.run(60*time.Second, "-s", addr, "push", src, "/data/local/tmp/big.bin"); err != nil {
		t.Fatalf("push: %v %s %s", err, out, errOut)
	}
	back := filepath.Join(dir, "back.bin")
	if _, errOut, err := h.run(60*time.Second, "-s", addr, "pull", "/data/local/tmp/big.bin", back); err != nil {
		t.Fatalf("pull back: %v %s", err, errOut)
	}
	if got, _ := os.ReadFile(back); !bytes.Equal(got, big) {
		t.Fatalf("round trip of %d bytes came back as %d bytes", len(big), len(got))
	}
	if out, errOut, err := h.run(20*time.Second, "-s", addr, "push", src, "/system/x.bin"); err == nil || !strings.Contains(out+errOut, "Permission denied") {
		t.Fatalf("push to /system: %v %q %q", err, out, errOut)
	}

	// install a new app: streamed through abb_exec (adb 29 picks it from the features).
	other := testapk.Build(t, testapk.Spec{Package: "com.example.other", VersionCode: 7})
	apkPath := filepath.Join(dir, "other.apk")
	os.WriteFile(apkPath, other, 0o644)
	out, errOut, err = h.run(60*time.Second, "-s", addr, "install", apkPath)
	if err != nil || !strings.Contains(out, "Success") {
		t.Fatalf("install: %v %q %q", err, out, errOut)
	}
	out, _, _ = h.run(20*time.Second, "-s", addr, "shell", "pm", "list", "packages", "-3", "--show-versioncode")
	if out != "package:com.example.other versionCode:7\n" {
		t.Fatalf("after install: %q", out)
	}
	p := d.Android.Package("com.example.other")
	if p == nil || p.Update == nil {
		t.Fatal("installed package missing from device state")
	}
	b, _ := d.Android.FS().ReadFile(p.Update.APKPath())
	if !bytes.Equal(b, other) {
		t.Fatal("installed APK bytes differ")
	}

	// adb install -r over the system app: the update lands in /data, the system copy stays hidden.
	update := testapk.Build(t, testapk.Spec{Package: "ru.oneme.app", VersionCode: 26})
	updPath := filepath.Join(dir, "update.apk")
	os.WriteFile(updPath, update, 0o644)
	if out, errOut, err := h.run(60*time.Second, "-s", addr, "install", "-r", updPath); err != nil || !strings.Contains(out, "Success") {
		t.Fatalf("install -r: %v %q %q", err, out, errOut)
	}
	out, _, _ = h.run(20*time.Second, "-s", addr, "shell", "dumpsys", "package", "ru.oneme.app")
	if !strings.Contains(out, "Hidden system packages:") || !strings.Contains(out, "UPDATED_SYSTEM_APP") {
		t.Fatalf("dumpsys after an update over the system app:\n%s", out)
	}
	// adb uninstall removes the update; the system app remains.
	if out, errOut, err := h.run(30*time.Second, "-s", addr, "uninstall", "ru.oneme.app"); err != nil || !strings.Contains(out, "Success") {
		t.Fatalf("uninstall: %v %q %q", err, out, errOut)
	}
	out, _, _ = h.run(20*time.Second, "-s", addr, "shell", "cmd", "package", "list", "packages", "-f", "ru.oneme")
	if out != "package:/product/app/Messenger/Messenger.apk=ru.oneme.app\n" {
		t.Fatalf("after uninstalling the update: %q", out)
	}
}
