package fastboot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sysfsTree builds a fake /sys: device directories under devices/, and bus/usb/devices holding a
// symlink to each device and each interface, as Linux lays it out.
type sysfsTree struct {
	t    *testing.T
	base string
}

func newSysfsTree(t *testing.T) *sysfsTree {
	s := &sysfsTree{t: t, base: t.TempDir()}
	os.MkdirAll(s.root(), 0o755)
	return s
}

func (s *sysfsTree) root() string { return filepath.Join(s.base, "bus/usb/devices") }

func (s *sysfsTree) write(dir string, files map[string]string) {
	s.t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	for name, v := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
}

// device adds device name with attributes and links it into the bus directory.
func (s *sysfsTree) device(name string, attrs map[string]string) string {
	dir := filepath.Join(s.base, "devices/pci0000:00/usb1", name)
	s.write(dir, attrs)
	if err := os.Symlink(dir, filepath.Join(s.root(), name)); err != nil {
		s.t.Fatal(err)
	}
	return dir
}

// iface adds an interface of device dev with the class triple and files.
func (s *sysfsTree) iface(devDir, name string, files map[string]string) string {
	dir := filepath.Join(devDir, name)
	s.write(dir, files)
	if err := os.Symlink(dir, filepath.Join(s.root(), name)); err != nil {
		s.t.Fatal(err)
	}
	return dir
}

func devAttrs(bus, dev, serial string) map[string]string {
	m := map[string]string{"busnum": bus + "\n", "devnum": dev + "\n", "idVendor": "18d1\n", "idProduct": "4ee0\n",
		"manufacturer": "Google\n", "product": "Android\n"}
	if serial != "" {
		m["serial"] = serial + "\n"
	}
	return m
}

func ifaceFiles(class, sub, proto, num string, in, out, mps string) map[string]string {
	m := map[string]string{"bInterfaceClass": class + "\n", "bInterfaceSubClass": sub + "\n", "bInterfaceProtocol": proto + "\n",
		"bInterfaceNumber": num + "\n"}
	if in != "" {
		m["ep_"+in+"/type"], m["ep_"+in+"/direction"], m["ep_"+in+"/wMaxPacketSize"] = "Bulk\n", "in\n", mps+"\n"
	}
	if out != "" {
		m["ep_"+out+"/type"], m["ep_"+out+"/direction"], m["ep_"+out+"/wMaxPacketSize"] = "Bulk\n", "out\n", mps+"\n"
	}
	return m
}

func buildSysfs(t *testing.T) *sysfsTree {
	s := newSysfsTree(t)
	// The root hub and its hub interface (class 09): not fastboot.
	hub := s.device("usb1", devAttrs("1", "1", "0000:00:14.0"))
	s.iface(hub, "1-0:1.0", ifaceFiles("09", "00", "00", "00", "81", "", "0004"))

	// A phone in the bootloader: fastboot on interface 0, adb (ff/42/01) on interface 1.
	phone := s.device("1-2", devAttrs("1", "5", "FB123"))
	fb := s.iface(phone, "1-2:1.0", ifaceFiles("ff", "42", "03", "00", "81", "01", "0200"))
	// An interrupt endpoint too, which is not the bulk pair.
	s.write(filepath.Join(fb, "ep_83"), map[string]string{"type": "Interrupt\n", "direction": "in\n", "wMaxPacketSize": "0008\n"})
	s.iface(phone, "1-2:1.1", ifaceFiles("ff", "42", "01", "01", "82", "02", "0200"))

	// A full-speed fastboot device with no serial number, bound to a kernel driver, behind a hub.
	noSerial := s.device("1-3.4", devAttrs("1", "12", ""))
	ns := s.iface(noSerial, "1-3.4:1.0", ifaceFiles("ff", "42", "03", "02", "82", "03", "0040"))
	os.MkdirAll(filepath.Join(s.base, "bus/usb/drivers/usbfs"), 0o755)
	os.Symlink(filepath.Join(s.base, "bus/usb/drivers/usbfs"), filepath.Join(ns, "driver"))

	// A serial with an escape sequence: made safe.
	evil := s.device("2-1", devAttrs("2", "3", "EV\x1b[31mIL\\"))
	s.iface(evil, "2-1:1.0", ifaceFiles("ff", "42", "03", "00", "81", "01", "0200"))

	// An adb-only phone: ignored.
	adb := s.device("2-2", devAttrs("2", "4", "ADB999"))
	s.iface(adb, "2-2:1.0", ifaceFiles("ff", "42", "01", "00", "81", "01", "0200"))

	// Malformed fastboot entries: skipped, each with a reason naming the file.
	badHex := s.device("3-1", devAttrs("3", "2", "BADHEX"))
	badHexAttrs := devAttrs("3", "2", "BADHEX")
	badHexAttrs["idVendor"] = "zz\n"
	s.write(badHex, badHexAttrs)
	s.iface(badHex, "3-1:1.0", ifaceFiles("ff", "42", "03", "00", "81", "01", "0200"))

	noBus := s.device("3-2", map[string]string{"devnum": "7\n", "idVendor": "18d1\n", "idProduct": "4ee0\n"})
	s.iface(noBus, "3-2:1.0", ifaceFiles("ff", "42", "03", "00", "81", "01", "0200"))

	badMPS := s.device("3-3", devAttrs("3", "9", "BADMPS"))
	s.iface(badMPS, "3-3:1.0", ifaceFiles("ff", "42", "03", "00", "81", "01", "0x0g"))

	noOut := s.device("3-4", devAttrs("3", "10", "NOOUT"))
	s.iface(noOut, "3-4:1.0", ifaceFiles("ff", "42", "03", "00", "81", "", "0200"))

	// An interface with no class files at all.
	empty := s.device("3-5", devAttrs("3", "11", "EMPTY"))
	s.iface(empty, "3-5:1.0", map[string]string{})

	// A huge serial file: bounded, not believed.
	huge := s.device("3-6", devAttrs("3", "12", strings.Repeat("S", 5000)))
	s.iface(huge, "3-6:1.0", ifaceFiles("ff", "42", "03", "00", "81", "01", "0200"))

	// Names that are not interfaces at all.
	s.write(filepath.Join(s.root(), "..", "stray"), map[string]string{})
	s.write(filepath.Join(s.root(), "x-1:1.0"), ifaceFiles("ff", "42", "03", "00", "81", "01", "0200"))
	return s
}

func TestListUSB(t *testing.T) {
	s := buildSysfs(t)
	devs, skipped, err := ListUSB(s.root())
	if err != nil {
		t.Fatal(err)
	}
	want := []USBDevice{
		{Path: "1-2", Interface: "1-2:1.0", DevNode: "/dev/bus/usb/001/005", Serial: "FB123", VendorID: 0x18d1, ProductID: 0x4ee0,
			Manufacturer: "Google", Product: "Android", Busnum: 1, Devnum: 5, InterfaceNumber: 0,
			EndpointIn: 0x81, EndpointOut: 0x01, MaxPacketIn: 512, MaxPacketOut: 512},
		{Path: "1-3.4", Interface: "1-3.4:1.0", DevNode: "/dev/bus/usb/001/012", VendorID: 0x18d1, ProductID: 0x4ee0,
			Manufacturer: "Google", Product: "Android", Busnum: 1, Devnum: 12, InterfaceNumber: 2,
			EndpointIn: 0x82, EndpointOut: 0x03, MaxPacketIn: 64, MaxPacketOut: 64, Driver: "usbfs"},
		{Path: "2-1", Interface: "2-1:1.0", DevNode: "/dev/bus/usb/002/003", Serial: `EV\x1b[31mIL\x5c`, VendorID: 0x18d1, ProductID: 0x4ee0,
			Manufacturer: "Google", Product: "Android", Busnum: 2, Devnum: 3, InterfaceNumber: 0,
			EndpointIn: 0x81, EndpointOut: 0x01, MaxPacketIn: 512, MaxPacketOut: 512},
	}
	if len(devs) != len(want) {
		t.Fatalf("found %d devices, want %d: %+v", len(devs), len(want), devs)
	}
	for i := range want {
		if devs[i] != want[i] {
			t.Errorf("device %d:\n got %+v\nwant %+v", i, devs[i], want[i])
		}
	}
	reasons := map[string]string{}
	for _, sk := range skipped {
		reasons[filepath.Base(sk.Path)] = sk.Reason
	}
	wantSkip := map[string]string{
		"3-1:1.0": "3-1/idVendor: \"zz\" is not a hex number",
		"3-2:1.0": "busnum",
		"3-3:1.0": "wMaxPacketSize \"0x0g\" is not a packet size",
		"3-4:1.0": "no bulk OUT endpoint",
		"3-5:1.0": "bInterfaceClass",
		"3-6:1.0": "longer than 4096 bytes",
	}
	for name, frag := range wantSkip {
		r, ok := reasons[name]
		if !ok {
			t.Errorf("%s not skipped (skipped: %v)", name, reasons)
			continue
		}
		if !strings.Contains(r, frag) {
			t.Errorf("%s skipped because %q, want it to say %q", name, r, frag)
		}
	}
	if len(skipped) != len(wantSkip) {
		t.Errorf("skipped %d, want %d: %v", len(skipped), len(wantSkip), reasons)
	}
}

func TestFindUSBDevice(t *testing.T) {
	s := buildSysfs(t)
	d, err := FindUSBDevice(s.root(), "FB123")
	if err != nil || d.Path != "1-2" {
		t.Fatalf("by serial: %+v, %v", d, err)
	}
	d, err = FindUSBDevice(s.root(), "1-3.4")
	if err != nil || d.Interface != "1-3.4:1.0" || d.Name() != "usb:1-3.4" {
		t.Fatalf("by bus path: %+v, %v", d, err)
	}
	if _, err := FindUSBDevice(s.root(), "ADB999"); err == nil || !strings.Contains(err.Error(), "no fastboot device with serial \"ADB999\"") || !strings.Contains(err.Error(), s.root()) {
		t.Fatalf("adb-only device: %v", err)
	}
	// Two devices with one serial must be told apart by bus path.
	twin := s.device("4-1", devAttrs("4", "2", "FB123"))
	s.iface(twin, "4-1:1.0", ifaceFiles("ff", "42", "03", "00", "81", "01", "0200"))
	if _, err := FindUSBDevice(s.root(), "FB123"); err == nil || !strings.Contains(err.Error(), "1-2, 4-1") {
		t.Fatalf("twin serials: %v", err)
	}
	if _, _, err := ListUSB(filepath.Join(s.base, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing root: %v", err)
	}
}

func TestDialUSBNamesDevice(t *testing.T) {
	// Dial("usb:...") goes to USB; with no such device the error says where it looked.
	_, err := Dial(t.Context(), "usb:NOSUCHSERIAL")
	if err == nil || !strings.Contains(err.Error(), "NOSUCHSERIAL") {
		t.Fatalf("err %v", err)
	}
}

func TestSysfsParsers(t *testing.T) {
	hex := []struct {
		in   string
		bits int
		want uint64
		ok   bool
	}{
		{"ff\n", 8, 0xff, true}, {"18d1\n", 16, 0x18d1, true}, {"0200\n", 16, 0x200, true}, {"FF", 8, 0xff, true},
		{"100\n", 8, 0, false}, {"", 8, 0, false}, {"\n", 8, 0, false}, {"0x10", 16, 0, false}, {"-1", 8, 0, false},
		{"ff\n\n", 8, 0, false}, {" ff", 8, 0, false}, {strings.Repeat("0", 17), 64, 0, false},
	}
	for _, c := range hex {
		v, err := ParseSysfsHex(c.in, c.bits)
		if (err == nil) != c.ok || v != c.want {
			t.Errorf("ParseSysfsHex(%q, %d) = %d, %v", c.in, c.bits, v, err)
		}
	}
	dec := []struct {
		in   string
		want int
		ok   bool
	}{{"1\n", 1, true}, {"127\n", 127, true}, {"0\n", 0, false}, {"1000\n", 0, false}, {"+1", 0, false}, {"1e2", 0, false}, {"99999999999999999999", 0, false}}
	for _, c := range dec {
		v, err := ParseSysfsDec(c.in, 999)
		if (err == nil) != c.ok || v != c.want {
			t.Errorf("ParseSysfsDec(%q) = %d, %v", c.in, v, err)
		}
	}
	for in, want := range map[string]string{"ABC\n": "ABC", "a b": "a b", "\x00\xff": `\x00\xff`, "é": `\xc3\xa9`, `a\b`: `a\x5cb`, "x\n\n": `x\x0a`} {
		if got := SafeSysfsString(in); got != want {
			t.Errorf("SafeSysfsString(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]bool{"1-2:1.0": true, "1-2.3.4:1.12": true, "usb1": false, "1-2": false, "1-:1.0": false,
		"1-2:1": false, "a-2:1.0": false, "1-2:1.0:3": false, "1-2..3:1.0": false} {
		if _, _, ok := splitInterfaceName(in); ok != want {
			t.Errorf("splitInterfaceName(%q) = %v", in, ok)
		}
	}
}

func FuzzSysfsValues(f *testing.F) {
	for _, s := range []string{"ff\n", "0200\n", "1\n", "", "\n", "zz", "\x00\xff\\", "1-2.3:1.0", strings.Repeat("9", 30)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseSysfsHex(s, 16); err == nil && v > 0xffff {
			t.Fatalf("ParseSysfsHex(%q) = %d: more than 16 bits", s, v)
		}
		if v, err := ParseSysfsDec(s, 999); err == nil && (v < 1 || v > 999) {
			t.Fatalf("ParseSysfsDec(%q) = %d", s, v)
		}
		safe := SafeSysfsString(s)
		for i := 0; i < len(safe); i++ {
			if safe[i] < 0x20 || safe[i] > 0x7e {
				t.Fatalf("SafeSysfsString(%q) = %q: byte %#x", s, safe, safe[i])
			}
		}
		if dev, ci, ok := splitInterfaceName(s); ok && dev+":"+ci != s {
			t.Fatalf("splitInterfaceName(%q) = %q, %q", s, dev, ci)
		}
	})
}
