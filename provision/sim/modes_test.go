package sim

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testapk"
)

// refused checks that nothing listens on addr, as on a phone whose mode does not serve it.
func refused(t *testing.T, what, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("%s %s accepted a connection", what, addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("%s %s: %v, want connection refused", what, addr, err)
	}
}

// waitADB waits until the adb server lists addr in state want, attaching it again if the server
// gave up reconnecting while the device was in a mode without adbd.
func (h *adbHarness) waitADB(addr, want string, timeout time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	got := ""
	for time.Now().Before(deadline) {
		switch got = h.state(addr); got {
		case want:
			return
		case "":
			h.run(10*time.Second, "connect", addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, _, _ := h.run(10*time.Second, "devices", "-l")
	h.t.Fatalf("device %s: state %q after %v, want %q\n%s", addr, got, timeout, want, out)
}

// TestRebootModesWithRealTools walks a factory line's round trip with the real adb and fastboot:
// adb reboot bootloader, fastboot reboot fastboot and flash a logical partition, fastboot reboot,
// adb again.
func TestRebootModesWithRealTools(t *testing.T) {
	h := newADB(t)
	s := startSim(t, scenario(t, `
devices:
  - serial: MODE1
    unlocked: true
    partitions:
      - {name: boot, size: 4M}
      - {name: system, size: 16M, logical: true}
    faults: {rebootDelay: 300ms}
`), 1)
	d := s.Devices()[0]
	addr, fb := d.ADBAddr(), "tcp:"+d.FastbootAddr()
	if d.Mode() != ModeAndroid {
		t.Fatalf("initial mode %s", d.Mode())
	}

	// Booted Android: adb answers, fastboot does not.
	h.connect(addr, "device")
	refused(t, "fastboot in android", d.FastbootAddr())

	// adb reboot bootloader: fastboot answers (the real fastboot waits for the device to come up),
	// as the bootloader; adb no longer connects.
	if _, errOut, err := h.run(30*time.Second, "-s", addr, "reboot", "bootloader"); err != nil {
		t.Fatalf("adb reboot bootloader: %v %s", err, errOut)
	}
	if out, err := runFastboot(t, 30*time.Second, "-s", fb, "getvar", "is-userspace"); err != nil || !strings.Contains(out, "is-userspace: no") {
		t.Fatalf("getvar is-userspace in the bootloader: %v\n%s", err, out)
	}
	if d.Mode() != ModeBootloader || d.LastRebootTarget() != "bootloader" {
		t.Fatalf("mode %s, last target %q", d.Mode(), d.LastRebootTarget())
	}
	refused(t, "adb in the bootloader", addr)
	if st := h.state(addr); st == "device" {
		t.Fatalf("adb still lists %s as %q in the bootloader", addr, st)
	}
	if out, errOut, err := h.run(20*time.Second, "-s", addr, "shell", "true"); err == nil {
		t.Fatalf("adb shell reached a device in the bootloader: %q %q", out, errOut)
	}

	// The bootloader knows no logical partition: flashing one fails and says where to go.
	dir := t.TempDir()
	img := make([]byte, 2<<20)
	rand.Read(img)
	sysImg := filepath.Join(dir, "system.img")
	os.WriteFile(sysImg, img, 0o644)
	if out, err := runFastboot(t, 30*time.Second, "-s", fb, "flash", "system", sysImg); err == nil || !strings.Contains(out, "use fastbootd") {
		t.Fatalf("flash of a logical partition in the bootloader: %v\n%s", err, out)
	}
	if out, err := runFastboot(t, 30*time.Second, "-s", fb, "getvar", "all"); err != nil || strings.Contains(out, "system_a") || !strings.Contains(out, "partition-size:boot_a") {
		t.Fatalf("getvar all in the bootloader (logical partitions must not show): %v\n%s", err, out)
	}

	// fastboot reboot fastboot: fastboot itself reconnects and checks is-userspace.
	if out, err := runFastboot(t, 60*time.Second, "-s", fb, "reboot", "fastboot"); err != nil {
		t.Fatalf("fastboot reboot fastboot: %v\n%s", err, out)
	}
	if out, err := runFastboot(t, 30*time.Second, "-s", fb, "getvar", "is-userspace"); err != nil || !strings.Contains(out, "is-userspace: yes") {
		t.Fatalf("getvar is-userspace in fastbootd: %v\n%s", err, out)
	}
	if d.Mode() != ModeFastbootd {
		t.Fatalf("mode %s after reboot fastboot", d.Mode())
	}
	refused(t, "adb in fastbootd", addr)
	// fastbootd flashes the logical partition (fastboot resizes it first).
	if out, err := runFastboot(t, 60*time.Second, "-s", fb, "flash", "system", sysImg); err != nil || !strings.Contains(out, "Resizing 'system_a'") {
		t.Fatalf("flash system in fastbootd: %v\n%s", err, out)
	}
	if got, err := d.ReadPartition("system_a"); err != nil || !bytes.Equal(got[:len(img)], img) {
		t.Fatalf("system_a does not hold the image flashed in fastbootd (%v)", err)
	}

	// fastboot reboot: back in Android, adb lists the device as "device" again.
	if out, err := runFastboot(t, 30*time.Second, "-s", fb, "reboot"); err != nil {
		t.Fatalf("fastboot reboot: %v\n%s", err, out)
	}
	h.waitADB(addr, "device", 60*time.Second)
	if out, _, err := h.run(20*time.Second, "-s", addr, "shell", "getprop", "sys.boot_completed"); err != nil || out != "1\n" {
		t.Fatalf("after fastboot reboot: %v %q", err, out)
	}
	if d.Mode() != ModeAndroid || !d.Up() {
		t.Fatalf("mode %s (up %v) after fastboot reboot", d.Mode(), d.Up())
	}
	refused(t, "fastboot in android", d.FastbootAddr())
	if d.Reboots() != 3 {
		t.Fatalf("reboots: %d, want 3", d.Reboots())
	}
}

// TestRecoveryAndSideloadWithRealADB: a device in recovery shows as "recovery" in the real adb
// devices, without the framework's commands; adb reboot sideload shows "sideload"; adb reboot
// brings Android back.
func TestRecoveryAndSideloadWithRealADB(t *testing.T) {
	h := newADB(t)
	s := startSim(t, scenario(t, "devices: [{serial: REC1, mode: recovery, faults: {rebootDelay: 300ms}}]"), 1)
	d := s.Devices()[0]
	addr := d.ADBAddr()
	refused(t, "fastboot in recovery", d.FastbootAddr())
	h.connect(addr, "recovery")

	if out, _, err := h.run(20*time.Second, "-s", addr, "shell", "getprop", "ro.serialno"); err != nil || out != "REC1\n" {
		t.Fatalf("getprop in recovery: %v %q", err, out)
	}
	if out, _, err := h.run(20*time.Second, "-s", addr, "shell", "getprop", "sys.boot_completed"); err != nil || out != "\n" {
		t.Fatalf("sys.boot_completed in recovery: %v %q, want empty", err, out)
	}
	out, errOut, err := h.run(20*time.Second, "-s", addr, "shell", "pm", "list", "packages")
	if ee, ok := err.(interface{ ExitCode() int }); !ok || ee.ExitCode() != 127 || !strings.Contains(errOut, "pm: inaccessible or not found") {
		t.Fatalf("pm in recovery: %v %q %q", err, out, errOut)
	}
	if out, _, err := h.run(20*time.Second, "-s", addr, "shell", "which", "pm"); err == nil || out != "" {
		t.Fatalf("which pm in recovery: %v %q", err, out)
	}
	apk := filepath.Join(t.TempDir(), "app.apk")
	os.WriteFile(apk, testapk.Build(t, testapk.Spec{Package: "com.example.rec", VersionCode: 1}), 0o644)
	if out, errOut, err := h.run(60*time.Second, "-s", addr, "install", apk); err == nil || d.Android.Package("com.example.rec") != nil {
		t.Fatalf("adb install in recovery succeeded: %q %q", out, errOut)
	}

	if _, errOut, err := h.run(30*time.Second, "-s", addr, "reboot", "sideload"); err != nil {
		t.Fatalf("adb reboot sideload: %v %s", err, errOut)
	}
	h.waitADB(addr, "sideload", 60*time.Second)
	if d.Mode() != ModeSideload {
		t.Fatalf("mode %s after reboot sideload", d.Mode())
	}
	if out, errOut, err := h.run(20*time.Second, "-s", addr, "shell", "getprop", "ro.serialno"); err == nil {
		t.Fatalf("shell served in sideload: %q %q", out, errOut)
	}

	if _, errOut, err := h.run(30*time.Second, "-s", addr, "reboot"); err != nil {
		t.Fatalf("adb reboot from sideload: %v %s", err, errOut)
	}
	h.waitADB(addr, "device", 60*time.Second)
	if out, errOut, err := h.run(20*time.Second, "-s", addr, "shell", "which", "pm"); err != nil || out != "/system/bin/pm\n" {
		t.Fatalf("pm after booting Android: %v %q %q", err, out, errOut)
	}
	if out, _, err := h.run(20*time.Second, "-s", addr, "shell", "getprop", "sys.boot_completed"); err != nil || out != "1\n" {
		t.Fatalf("sys.boot_completed after booting Android: %v %q", err, out)
	}
}

func TestModeForTarget(t *testing.T) {
	for target, want := range map[string]Mode{"": ModeAndroid, "bootloader": ModeBootloader, "fastboot": ModeFastbootd,
		"recovery": ModeRecovery, "sideload": ModeSideload, "sideload-auto-reboot": ModeSideload, "nonsense": ModeAndroid} {
		if got := ModeForTarget(target); got != want {
			t.Errorf("ModeForTarget(%q) = %s, want %s", target, got, want)
		}
	}
	for _, m := range Modes {
		if m.ADB() == m.Fastboot() {
			t.Errorf("mode %s: adb %v fastboot %v: exactly one port must listen", m, m.ADB(), m.Fastboot())
		}
	}
}
