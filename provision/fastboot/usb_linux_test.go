//go:build linux && amd64

package fastboot

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestUsbfsLayout checks the Go structs and ioctl numbers against the kernel's amd64 values
// (<linux/usbdevice_fs.h>, _IOWR('U', 2, struct usbdevfs_bulktransfer) and so on).
func TestUsbfsLayout(t *testing.T) {
	var b usbdevfsBulk
	if got := [5]uintptr{unsafe.Sizeof(b), unsafe.Offsetof(b.ep), unsafe.Offsetof(b.len), unsafe.Offsetof(b.timeout), unsafe.Offsetof(b.data)}; got != [5]uintptr{24, 0, 4, 8, 16} {
		t.Errorf("usbdevfs_bulktransfer size, offsets = %v, want 24 0 4 8 16", got)
	}
	var i usbdevfsIoctl
	if got := [4]uintptr{unsafe.Sizeof(i), unsafe.Offsetof(i.ifno), unsafe.Offsetof(i.ioctlCode), unsafe.Offsetof(i.data)}; got != [4]uintptr{16, 0, 4, 8} {
		t.Errorf("usbdevfs_ioctl size, offsets = %v, want 16 0 4 8", got)
	}
	for name, c := range map[string][2]uintptr{
		"USBDEVFS_BULK":             {usbdevfsBULK, 0xc0185502},
		"USBDEVFS_CLAIMINTERFACE":   {usbdevfsCLAIMINTERFACE, 0x8004550f},
		"USBDEVFS_RELEASEINTERFACE": {usbdevfsRELEASEINTERFACE, 0x80045510},
		"USBDEVFS_IOCTL":            {usbdevfsIOCTL, 0xc0105512},
		"USBDEVFS_CLEAR_HALT":       {usbdevfsCLEARHALT, 0x80045515},
		"USBDEVFS_DISCONNECT":       {usbdevfsDISCONNECT, 0x5516},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %#x, want %#x", name, c[0], c[1])
		}
	}
}

// TestUsbfsLayoutAgainstKernelHeader compiles a C program against the installed kernel header and
// compares every number it prints with the Go side.
func TestUsbfsLayoutAgainstKernelHeader(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed")
	}
	if _, err := os.Stat("/usr/include/linux/usbdevice_fs.h"); err != nil {
		t.Skip("kernel headers not installed (linux-libc-dev)")
	}
	dir := t.TempDir()
	src := `#include <stdio.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <linux/usbdevice_fs.h>
int main(void) {
	printf("%lu %lu %lu %lu %lu\n", sizeof(struct usbdevfs_bulktransfer), offsetof(struct usbdevfs_bulktransfer, ep),
		offsetof(struct usbdevfs_bulktransfer, len), offsetof(struct usbdevfs_bulktransfer, timeout), offsetof(struct usbdevfs_bulktransfer, data));
	printf("%lu %lu %lu %lu\n", sizeof(struct usbdevfs_ioctl), offsetof(struct usbdevfs_ioctl, ifno),
		offsetof(struct usbdevfs_ioctl, ioctl_code), offsetof(struct usbdevfs_ioctl, data));
	printf("%lu %lu %lu %lu %lu %lu\n", (unsigned long)USBDEVFS_BULK, (unsigned long)USBDEVFS_CLAIMINTERFACE,
		(unsigned long)USBDEVFS_RELEASEINTERFACE, (unsigned long)USBDEVFS_IOCTL, (unsigned long)USBDEVFS_CLEAR_HALT,
		(unsigned long)USBDEVFS_DISCONNECT);
	return 0;
}
`
	os.WriteFile(filepath.Join(dir, "l.c"), []byte(src), 0o644)
	if out, err := exec.Command(cc, "-o", filepath.Join(dir, "l"), filepath.Join(dir, "l.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(dir, "l")).Output()
	if err != nil {
		t.Fatal(err)
	}
	var b usbdevfsBulk
	var i usbdevfsIoctl
	want := []uintptr{
		unsafe.Sizeof(b), unsafe.Offsetof(b.ep), unsafe.Offsetof(b.len), unsafe.Offsetof(b.timeout), unsafe.Offsetof(b.data),
		unsafe.Sizeof(i), unsafe.Offsetof(i.ifno), unsafe.Offsetof(i.ioctlCode), unsafe.Offsetof(i.data),
		usbdevfsBULK, usbdevfsCLAIMINTERFACE, usbdevfsRELEASEINTERFACE, usbdevfsIOCTL, usbdevfsCLEARHALT, usbdevfsDISCONNECT,
	}
	got := strings.Fields(string(out))
	if len(got) != len(want) {
		t.Fatalf("C printed %q", out)
	}
	for k, g := range got {
		v, _ := strconv.ParseUint(g, 10, 64)
		if uintptr(v) != want[k] {
			t.Errorf("value %d: kernel header says %#x, Go has %#x", k, v, want[k])
		}
	}
}

// TestUsbfsRealIoctlOnNonDevice issues the real ioctls on a file that is not a USB device node:
// the kernel refuses (ENOTTY) and the error names the node and the ioctl.
func TestUsbfsRealIoctlOnNonDevice(t *testing.T) {
	p := filepath.Join(t.TempDir(), "005")
	os.WriteFile(p, nil, 0o644)
	uio, err := openUSBFS(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uio.Bulk(0x81, make([]byte, 512), 10*time.Millisecond); !errors.Is(err, syscall.ENOTTY) {
		t.Errorf("Bulk on a regular file: %v", err)
	}
	uio.Close()
	dev := testUSBDev
	dev.DevNode = p
	_, err = OpenUSB(context.Background(), dev)
	if !errors.Is(err, syscall.ENOTTY) || !strings.Contains(err.Error(), "USBDEVFS_CLAIMINTERFACE on "+p) || !strings.Contains(err.Error(), "usb:FAKE01") {
		t.Fatalf("OpenUSB on a regular file: %v", err)
	}
}
