//go:build linux && (amd64 || arm64 || 386 || arm || riscv64 || loong64 || s390x)

package fastboot

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// usbdevfsBulk is struct usbdevfs_bulktransfer of <linux/usbdevice_fs.h>.
type usbdevfsBulk struct {
	ep      uint32
	len     uint32
	timeout uint32 // milliseconds; 0 waits for ever
	data    unsafe.Pointer
}

// usbdevfsIoctl is struct usbdevfs_ioctl: an ioctl passed to the driver of interface ifno.
type usbdevfsIoctl struct {
	ifno      int32
	ioctlCode int32
	data      unsafe.Pointer
}

// The ioctl request encoding of <asm-generic/ioctl.h> (the architectures in the build tag use it).
const (
	iocNone  = 0
	iocWrite = 1
	iocRead  = 2
)

func ioc(dir, typ, nr, size uintptr) uintptr { return dir<<30 | size<<16 | typ<<8 | nr }

var (
	usbdevfsBULK             = ioc(iocRead|iocWrite, 'U', 2, unsafe.Sizeof(usbdevfsBulk{}))
	usbdevfsCLAIMINTERFACE   = ioc(iocRead, 'U', 15, unsafe.Sizeof(uint32(0)))
	usbdevfsRELEASEINTERFACE = ioc(iocRead, 'U', 16, unsafe.Sizeof(uint32(0)))
	usbdevfsIOCTL            = ioc(iocRead|iocWrite, 'U', 18, unsafe.Sizeof(usbdevfsIoctl{}))
	usbdevfsCLEARHALT        = ioc(iocRead, 'U', 21, unsafe.Sizeof(uint32(0)))
	usbdevfsDISCONNECT       = ioc(iocNone, 'U', 22, 0)
)

func init() { openUSBIO = openUSBFS }

// usbfs is a device node opened for usbfs ioctls.
type usbfs struct {
	fd   int
	path string
}

func openUSBFS(path string) (usbIO, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &usbfs{fd: fd, path: path}, nil
}

func (u *usbfs) ioctl(req uintptr, arg unsafe.Pointer) (int, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(u.fd), req, uintptr(arg))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return int(r), errno
		}
		return int(r), nil
	}
}

func (u *usbfs) intIoctl(name string, req uintptr, v int) error {
	n := uint32(v)
	_, err := u.ioctl(req, unsafe.Pointer(&n))
	if err != nil {
		return fmt.Errorf("%s on %s: %w", name, u.path, err)
	}
	return nil
}

func (u *usbfs) Claim(iface int) error {
	return u.intIoctl("USBDEVFS_CLAIMINTERFACE", usbdevfsCLAIMINTERFACE, iface)
}

func (u *usbfs) Release(iface int) error {
	return u.intIoctl("USBDEVFS_RELEASEINTERFACE", usbdevfsRELEASEINTERFACE, iface)
}

func (u *usbfs) ClearHalt(ep uint8) error {
	return u.intIoctl("USBDEVFS_CLEAR_HALT", usbdevfsCLEARHALT, int(ep))
}

// Detach disconnects the kernel driver of iface; ENODATA says none was bound.
func (u *usbfs) Detach(iface int) error {
	req := usbdevfsIoctl{ifno: int32(iface), ioctlCode: int32(usbdevfsDISCONNECT)}
	if _, err := u.ioctl(usbdevfsIOCTL, unsafe.Pointer(&req)); err != nil {
		return fmt.Errorf("USBDEVFS_DISCONNECT on %s interface %d: %w", u.path, iface, err)
	}
	return nil
}

func (u *usbfs) Bulk(ep uint8, buf []byte, timeout time.Duration) (int, error) {
	if len(buf) > 1<<30 {
		return 0, errors.New("bulk transfer longer than 1 GiB")
	}
	ms := timeout.Milliseconds()
	if ms < 1 {
		ms = 1 // 0 would wait for ever
	}
	b := usbdevfsBulk{ep: uint32(ep), len: uint32(len(buf)), timeout: uint32(min(ms, 1<<31))}
	if len(buf) > 0 {
		b.data = unsafe.Pointer(&buf[0])
	}
	n, err := u.ioctl(usbdevfsBULK, unsafe.Pointer(&b))
	runtime.KeepAlive(buf)
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (u *usbfs) Close() error { return unix.Close(u.fd) }
