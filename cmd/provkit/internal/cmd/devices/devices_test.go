package devices

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
)

// fakeUSB lays out a sysfs tree: a phone in fastboot (with serial), one without a serial, an adb
// phone (not listed), and a fastboot interface that cannot be read (reported, not listed).
func fakeUSB(t *testing.T) string {
	base := t.TempDir()
	root := filepath.Join(base, "bus/usb/devices")
	os.MkdirAll(root, 0o755)
	put := func(dir string, files map[string]string) {
		for n, v := range files {
			p := filepath.Join(dir, n)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	dev := func(name, serial, product, proto string) {
		d := filepath.Join(base, "devices/usb1", name)
		attrs := map[string]string{"busnum": "1", "devnum": "7", "idVendor": "18d1", "idProduct": "4ee0", "product": product}
		if serial != "" {
			attrs["serial"] = serial
		}
		put(d, attrs)
		os.Symlink(d, filepath.Join(root, name))
		i := filepath.Join(d, name+":1.0")
		put(i, map[string]string{"bInterfaceClass": "ff", "bInterfaceSubClass": "42", "bInterfaceProtocol": proto, "bInterfaceNumber": "00",
			"ep_81/type": "Bulk", "ep_81/direction": "in", "ep_81/wMaxPacketSize": "0200",
			"ep_01/type": "Bulk", "ep_01/direction": "out", "ep_01/wMaxPacketSize": "0200"})
		os.Symlink(i, filepath.Join(root, name+":1.0"))
	}
	dev("1-2", "FB123", "Pixel 8", "03")
	dev("1-3.4", "", "Android\x1b[31m", "03")
	dev("1-5", "ADB1", "Pixel", "01")
	bad := filepath.Join(root, "1-6:1.0")
	put(bad, map[string]string{"bInterfaceClass": "ff", "bInterfaceSubClass": "42", "bInterfaceProtocol": "03"})
	return root
}

// TestDevicesListsUSBFastboot: with no adb server, the fastboot phones on USB are listed (serial,
// or bus path without one; state fastboot; the model from the USB product string, made visible),
// the unreadable interface is reported on stderr, and the adb-only interface is not listed.
func TestDevicesListsUSBFastboot(t *testing.T) {
	t.Setenv("ANDROID_ADB_SERVER_PORT", "1") // no adb server there
	root := fakeUSB(t)
	ios, _, out, errOut := iostreams.Test()
	opts := &Options{IO: ios, JSON: true, Timeout: time.Second, SysfsRoot: root}
	if err := devicesRun(context.Background(), opts); err != nil {
		t.Fatalf("%v; stderr %s", err, errOut)
	}
	var doc struct{ Devices []Device }
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(doc.Devices) != 2 {
		t.Fatalf("devices: %+v", doc.Devices)
	}
	a, b := doc.Devices[0], doc.Devices[1]
	if a.Serial != "FB123" || a.State != "fastboot" || a.Model != "Pixel 8" || a.Transport != "usb:1-2" {
		t.Errorf("first: %+v", a)
	}
	if b.Serial != "usb:1-3.4" || b.State != "fastboot" || b.Transport != "usb:1-3.4" {
		t.Errorf("second: %+v", b)
	}
	if !strings.Contains(errOut.String(), "skipping USB interface "+filepath.Join(root, "1-6:1.0")) ||
		!strings.Contains(errOut.String(), "listing only the --direct and USB fastboot devices") {
		t.Errorf("stderr:\n%s", errOut)
	}

	ios, _, out, _ = iostreams.Test()
	opts = &Options{IO: ios, Timeout: time.Second, SysfsRoot: root}
	if err := devicesRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "\x1b") || !strings.Contains(out.String(), "FB123") || !strings.Contains(out.String(), "fastboot") {
		t.Errorf("table:\n%q", out)
	}

	// nothing anywhere: the adb server's error, exit 1
	ios, _, _, _ = iostreams.Test()
	if err := devicesRun(context.Background(), &Options{IO: ios, Timeout: time.Second, SysfsRoot: t.TempDir()}); err == nil {
		t.Error("no adb server and no fastboot phone: no error")
	}
}
