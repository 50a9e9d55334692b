package flash

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/provision/sim"
)

// TestFlashAllNoUSBDevices: --all with nothing on USB is exit 3 with a message that says where it
// looked, before any firmware is read.
func TestFlashAllNoUSBDevices(t *testing.T) {
	for _, root := range []string{filepath.Join(t.TempDir(), "missing"), t.TempDir()} {
		ios, _, _, _ := iostreams.Test()
		opts := &Options{IO: ios, Firmware: "/nonexistent/firmware", NoAudit: true, Jobs: 1, All: true, SysfsRoot: root}
		err := flashRun(context.Background(), opts)
		if cmdutil.ExitCode(err) != cmdutil.ExitDevicesFailed {
			t.Fatalf("root %s: exit %d (%v), want 3", root, cmdutil.ExitCode(err), err)
		}
		if want := "no fastboot devices on USB (looked in " + root + ")"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	}
}

// TestFlashAllSkipsMalformedInterfaces: an interface that claims to be fastboot but cannot be read
// is reported on stderr and does not count as a device.
func TestFlashAllSkipsMalformedInterfaces(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "1-2:1.0")
	os.MkdirAll(dir, 0o755)
	for f, v := range map[string]string{"bInterfaceClass": "ff\n", "bInterfaceSubClass": "42\n", "bInterfaceProtocol": "03\n"} {
		os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644)
	}
	ios, _, _, errOut := iostreams.Test()
	opts := &Options{IO: ios, Firmware: "/nonexistent", NoAudit: true, Jobs: 1, All: true, SysfsRoot: root}
	err := flashRun(context.Background(), opts)
	if cmdutil.ExitCode(err) != cmdutil.ExitDevicesFailed || !strings.Contains(errOut.String(), "skipping USB interface "+dir) ||
		!strings.Contains(errOut.String(), "busnum") {
		t.Fatalf("exit %d (%v); stderr:\n%s", cmdutil.ExitCode(err), err, errOut)
	}
}

func TestFlashDeviceFlags(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	var got *Options
	cmd := NewCmdFlash(ios, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--no-audit", "--serial", "A1", "--serial", "tcp:127.0.0.1:5554", "--all", "--tcp", "127.0.0.1:5556", "fw/"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Serials, ",") != "A1,tcp:127.0.0.1:5554" || !got.All || len(got.TCP) != 1 {
		t.Fatalf("parsed %+v", got)
	}
	got.SysfsRoot = t.TempDir()
	got.All = false
	got.TCP = append(got.TCP, "tcp:127.0.0.1:5554")
	ts, err := targets(got)
	if err != nil || strings.Join(ts, " ") != "tcp:127.0.0.1:5556 tcp:127.0.0.1:5554 usb:A1" {
		t.Fatalf("targets %q, %v", ts, err)
	}

	cmd = NewCmdFlash(ios, func(context.Context, *Options) error { return nil })
	cmd.SetArgs([]string{"--no-audit", "fw/"})
	cmd.SetErr(&strings.Builder{})
	if err := cmd.Execute(); cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "--serial <serial>, --tcp <host:port> or --all") {
		t.Fatalf("no devices: %v", err)
	}
	cmd = NewCmdFlash(ios, func(context.Context, *Options) error { return nil })
	cmd.SetArgs([]string{"--no-audit", "--serial", "usb:", "fw/"})
	if err := cmd.Execute(); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("empty serial: %v", err)
	}
}

// TestFlashSerialTCPAndMissingUSB: --serial tcp:<addr> flashes a simulated phone over TCP, and a
// USB serial that is not attached fails alone (exit 3), named.
func TestFlashSerialTCPAndMissingUSB(t *testing.T) {
	sc, err := sim.ParseScenario([]byte(twoPhones), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: 1, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "android-info.txt"), []byte("require version-bootloader=*\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "boot.img"), []byte("BOOT"), 0o644)
	ios, _, out, errOut := iostreams.Test()
	opts := &Options{IO: ios, Firmware: dir, NoAudit: true, Jobs: 2, JSON: true, SkipReboot: true, SysfsRoot: t.TempDir(),
		Serials: []string{"tcp:" + s.Devices()[0].FastbootAddr(), "NOTPLUGGED"}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = flashRun(ctx, opts)
	if cmdutil.ExitCode(err) != cmdutil.ExitDevicesFailed {
		t.Fatalf("exit %d (%v); stderr:\n%s", cmdutil.ExitCode(err), err, errOut)
	}
	var doc Document
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Devices) != 2 || !doc.Devices[0].OK || doc.Devices[0].Device != "tcp:"+s.Devices()[0].FastbootAddr() ||
		doc.Devices[1].OK || doc.Devices[1].Device != "usb:NOTPLUGGED" || !strings.Contains(doc.Devices[1].Error, `no fastboot device with serial "NOTPLUGGED"`) {
		t.Fatalf("devices %+v", doc.Devices)
	}
	if got, err := s.Devices()[0].ReadPartition("boot_a"); err != nil || string(got[:4]) != "BOOT" {
		t.Errorf("boot_a not flashed: %v", errors.Join(err))
	}
}
