package fastboot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// DefaultSysfsRoot is where Linux lists USB devices and their interfaces.
const DefaultSysfsRoot = "/sys/bus/usb/devices"

// The interface triple that marks fastboot (adb is ff/42/01).
const (
	fastbootClass    = 0xff
	fastbootSubClass = 0x42
	fastbootProtocol = 0x03
)

// maxSysfsFile bounds one sysfs attribute read: attributes are short, anything longer is not one.
const maxSysfsFile = 4096

// maxSerial bounds a serial number (a USB string descriptor holds at most 126 UTF-16 units).
const maxSerial = 255

// USBDevice is a fastboot interface of a USB device, as sysfs describes it.
type USBDevice struct {
	Path         string `json:"path"`         // bus path, the sysfs device name: "1-2.3"
	Interface    string `json:"interface"`    // sysfs interface name: "1-2.3:1.0"
	DevNode      string `json:"devNode"`      // "/dev/bus/usb/001/005"
	Serial       string `json:"serial"`       // may be empty; bytes outside printable ASCII are escaped \xNN
	VendorID     uint16 `json:"vendorId"`     // idVendor
	ProductID    uint16 `json:"productId"`    // idProduct
	Manufacturer string `json:"manufacturer"` // may be empty
	Product      string `json:"product"`      // may be empty
	Busnum       int    `json:"busnum"`
	Devnum       int    `json:"devnum"`

	InterfaceNumber int    `json:"interfaceNumber"`  // bInterfaceNumber
	EndpointIn      uint8  `json:"endpointIn"`       // bulk IN endpoint address (bit 7 set)
	EndpointOut     uint8  `json:"endpointOut"`      // bulk OUT endpoint address
	MaxPacketIn     int    `json:"maxPacketIn"`      // wMaxPacketSize of the IN endpoint
	MaxPacketOut    int    `json:"maxPacketOut"`     // wMaxPacketSize of the OUT endpoint
	Driver          string `json:"driver,omitempty"` // the kernel driver bound to the interface, if any
}

// SkippedUSB is an interface that looked like fastboot but could not be used, and why.
type SkippedUSB struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// ListUSB finds the fastboot interfaces under a sysfs root (DefaultSysfsRoot on a live system).
// Interfaces that are not fastboot are ignored; fastboot interfaces whose description is
// incomplete or malformed are returned in skipped with the reason. A missing root is an error
// wrapping os.ErrNotExist.
func ListUSB(root string) (devs []USBDevice, skipped []SkippedUSB, err error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, fmt.Errorf("listing USB devices: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		devName, _, ok := splitInterfaceName(name)
		if !ok {
			continue
		}
		dir := filepath.Join(root, name)
		match, err := isFastbootInterface(dir)
		if err != nil {
			// An interface that does not say what it is could be fastboot: report it.
			skipped = append(skipped, SkippedUSB{Path: dir, Reason: err.Error()})
			continue
		}
		if !match {
			continue
		}
		d, err := readUSBDevice(root, devName, name)
		if err != nil {
			skipped = append(skipped, SkippedUSB{Path: dir, Reason: err.Error()})
			continue
		}
		devs = append(devs, d)
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].Interface < devs[j].Interface })
	return devs, skipped, nil
}

// FindUSBDevice returns the one fastboot device under root whose serial (or, failing that, bus
// path) is serial.
func FindUSBDevice(root, serial string) (USBDevice, error) {
	devs, skipped, err := ListUSB(root)
	if errors.Is(err, os.ErrNotExist) {
		return USBDevice{}, fmt.Errorf("no fastboot device with serial %q on USB (%s does not exist: no USB bus): %w", serial, root, err)
	}
	if err != nil {
		return USBDevice{}, fmt.Errorf("looking for fastboot device %q: %w", serial, err)
	}
	var bySerial, byPath []USBDevice
	for _, d := range devs {
		if d.Serial != "" && d.Serial == serial {
			bySerial = append(bySerial, d)
		}
		if d.Path == serial {
			byPath = append(byPath, d)
		}
	}
	found := bySerial
	if len(found) == 0 {
		found = byPath
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		msg := fmt.Sprintf("no fastboot device with serial %q on USB (looked in %s", serial, root)
		if len(skipped) > 0 {
			msg += fmt.Sprintf("; skipped %d unreadable interfaces, first %s: %s", len(skipped), skipped[0].Path, skipped[0].Reason)
		}
		return USBDevice{}, errors.New(msg + ")")
	}
	names := make([]string, len(found))
	for i, d := range found {
		names[i] = d.Path
	}
	return USBDevice{}, fmt.Errorf("%d fastboot devices on USB have serial %q (bus paths %s): name one by bus path, usb:<bus path>", len(found), serial, strings.Join(names, ", "))
}

// splitInterfaceName splits a sysfs interface name "B-P[.P...]:C.I" into the device name "B-P..."
// and "C.I". Device directories ("1-2"), root hubs ("usb1") and anything else are not interfaces.
func splitInterfaceName(name string) (dev, ci string, ok bool) {
	dev, ci, ok = strings.Cut(name, ":")
	if !ok || !validDevName(dev) {
		return "", "", false
	}
	c, i, ok := strings.Cut(ci, ".")
	if !ok || !allDigits(c) || !allDigits(i) {
		return "", "", false
	}
	return dev, ci, true
}

// validDevName accepts "B-P" and "B-P.P...", B and P decimal numbers.
func validDevName(s string) bool {
	bus, ports, ok := strings.Cut(s, "-")
	if !ok || !allDigits(bus) {
		return false
	}
	for p := range strings.SplitSeq(ports, ".") {
		if !allDigits(p) {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	if s == "" || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isFastbootInterface reads the interface's class triple.
func isFastbootInterface(dir string) (bool, error) {
	var v [3]uint64
	for i, f := range []string{"bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol"} {
		s, err := readSysfs(dir, f)
		if err != nil {
			return false, err
		}
		if v[i], err = ParseSysfsHex(s, 8); err != nil {
			return false, fmt.Errorf("%s: %w", filepath.Join(dir, f), err)
		}
		if i == 0 && v[0] != fastbootClass {
			return false, nil // not vendor-specific: not worth reading further
		}
	}
	return v == [3]uint64{fastbootClass, fastbootSubClass, fastbootProtocol}, nil
}

// readUSBDevice reads a fastboot interface and its parent device.
func readUSBDevice(root, devName, ifName string) (USBDevice, error) {
	d := USBDevice{Path: devName, Interface: ifName}
	devDir := filepath.Join(root, devName)
	ifDir := filepath.Join(root, ifName)
	var err error
	num := func(dir, f string, max int) (int, error) {
		s, err := readSysfs(dir, f)
		if err != nil {
			return 0, err
		}
		n, err := ParseSysfsDec(s, max)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", filepath.Join(dir, f), err)
		}
		return n, nil
	}
	hex := func(dir, f string, bits int) (uint64, error) {
		s, err := readSysfs(dir, f)
		if err != nil {
			return 0, err
		}
		n, err := ParseSysfsHex(s, bits)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", filepath.Join(dir, f), err)
		}
		return n, nil
	}
	if d.Busnum, err = num(devDir, "busnum", 999); err != nil {
		return d, err
	}
	if d.Devnum, err = num(devDir, "devnum", 999); err != nil {
		return d, err
	}
	d.DevNode = fmt.Sprintf("/dev/bus/usb/%03d/%03d", d.Busnum, d.Devnum)
	v, err := hex(devDir, "idVendor", 16)
	if err != nil {
		return d, err
	}
	d.VendorID = uint16(v)
	if v, err = hex(devDir, "idProduct", 16); err != nil {
		return d, err
	}
	d.ProductID = uint16(v)
	// Optional strings: a device need not have them.
	for _, o := range []struct {
		f   string
		dst *string
	}{{"serial", &d.Serial}, {"manufacturer", &d.Manufacturer}, {"product", &d.Product}} {
		s, err := readSysfs(devDir, o.f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return d, err
		}
		*o.dst = SafeSysfsString(s)
	}
	if len(d.Serial) > maxSerial {
		return d, fmt.Errorf("%s: serial of %d bytes is longer than %d", filepath.Join(devDir, "serial"), len(d.Serial), maxSerial)
	}
	if v, err = hex(ifDir, "bInterfaceNumber", 8); err != nil {
		return d, err
	}
	d.InterfaceNumber = int(v)
	if link, err := os.Readlink(filepath.Join(ifDir, "driver")); err == nil {
		d.Driver = SafeSysfsString(filepath.Base(link))
	}
	if err := readEndpoints(ifDir, &d); err != nil {
		return d, err
	}
	return d, nil
}

// readEndpoints finds the interface's bulk IN and OUT endpoints (the first of each).
func readEndpoints(ifDir string, d *USBDevice) error {
	ents, err := os.ReadDir(ifDir)
	if err != nil {
		return fmt.Errorf("listing endpoints: %w", err)
	}
	for _, e := range ents {
		h, ok := strings.CutPrefix(e.Name(), "ep_")
		if !ok {
			continue
		}
		addr, err := ParseSysfsHex(h, 8)
		if err != nil || len(h) != 2 {
			return fmt.Errorf("%s: endpoint directory name is not ep_XX", filepath.Join(ifDir, e.Name()))
		}
		dir := filepath.Join(ifDir, e.Name())
		typ, err := readSysfs(dir, "type")
		if err != nil {
			return err
		}
		if strings.TrimSpace(typ) != "Bulk" {
			continue
		}
		dirn, err := readSysfs(dir, "direction")
		if err != nil {
			return err
		}
		s, err := readSysfs(dir, "wMaxPacketSize")
		if err != nil {
			return err
		}
		mps, err := ParseSysfsHex(s, 16)
		if err != nil || mps == 0 || mps > 1024 {
			return fmt.Errorf("%s: wMaxPacketSize %q is not a packet size (1..1024)", filepath.Join(dir, "wMaxPacketSize"), truncate(strings.TrimSpace(s), 20))
		}
		in := addr&0x80 != 0
		switch strings.TrimSpace(dirn) {
		case "in":
			if !in {
				return fmt.Errorf("%s: direction in, but address %#02x is an OUT endpoint", dir, addr)
			}
			if d.EndpointIn == 0 {
				d.EndpointIn, d.MaxPacketIn = uint8(addr), int(mps)
			}
		case "out":
			if in {
				return fmt.Errorf("%s: direction out, but address %#02x is an IN endpoint", dir, addr)
			}
			if d.EndpointOut == 0 && addr != 0 {
				d.EndpointOut, d.MaxPacketOut = uint8(addr), int(mps)
			}
		default:
			return fmt.Errorf("%s: direction %q is neither in nor out", filepath.Join(dir, "direction"), truncate(SafeSysfsString(dirn), 20))
		}
	}
	switch {
	case d.EndpointIn == 0 && d.EndpointOut == 0:
		return fmt.Errorf("%s: no bulk endpoints", ifDir)
	case d.EndpointIn == 0:
		return fmt.Errorf("%s: no bulk IN endpoint", ifDir)
	case d.EndpointOut == 0:
		return fmt.Errorf("%s: no bulk OUT endpoint", ifDir)
	}
	return nil
}

// readSysfs reads one attribute, at most maxSysfsFile bytes; longer is an error naming the file.
func readSysfs(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSysfsFile+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", p, err)
	}
	if len(b) > maxSysfsFile {
		return "", fmt.Errorf("%s: longer than %d bytes, not a sysfs attribute", p, maxSysfsFile)
	}
	return string(b), nil
}

// ParseSysfsHex reads a sysfs hex attribute ("ff\n", "18d1\n", "0200\n") of at most bits bits.
func ParseSysfsHex(s string, bits int) (uint64, error) {
	t := strings.TrimSuffix(s, "\n")
	if t == "" || len(t) > 16 {
		return 0, fmt.Errorf("%q is not a hex number", truncate(SafeSysfsString(s), 20))
	}
	v, err := strconv.ParseUint(t, 16, bits)
	if err != nil {
		return 0, fmt.Errorf("%q is not a hex number of at most %d bits", truncate(SafeSysfsString(s), 20), bits)
	}
	return v, nil
}

// ParseSysfsDec reads a sysfs decimal attribute ("1\n", "12\n") in 1..max.
func ParseSysfsDec(s string, max int) (int, error) {
	t := strings.TrimSuffix(s, "\n")
	if !allDigits(t) {
		return 0, fmt.Errorf("%q is not a decimal number", truncate(SafeSysfsString(s), 20))
	}
	v, err := strconv.Atoi(t)
	if err != nil || v < 1 || v > max {
		return 0, fmt.Errorf("%q is not a number in 1..%d", truncate(SafeSysfsString(s), 20), max)
	}
	return v, nil
}

// SafeSysfsString makes a sysfs string attribute safe to print and to compare: the trailing
// newline is dropped and every byte outside printable ASCII (and the backslash) is written \xNN,
// so a serial number with control or invalid bytes still names one device, unambiguously.
func SafeSysfsString(s string) string {
	s = strings.TrimSuffix(s, "\n")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '\\' {
			fmt.Fprintf(&b, "\\x%02x", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
