package fastboot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// USB transfer sizes and timeouts.
const (
	// usbMaxCommand bounds one command: the protocol's 4096 bytes, sent as one bulk OUT transfer.
	usbMaxCommand = 4096
	// usbReplyBuf is the bulk IN buffer a reply is read into: replies are at most 256 bytes, and a
	// buffer that is a multiple of every full/high-speed wMaxPacketSize keeps a long reply from
	// overflowing the transfer.
	usbReplyBuf = 512
	// usbMaxBulk is the largest bulk OUT transfer tried first; on ENOMEM (the kernel could not find
	// the memory for it) it is halved down to usbMinBulk, as fastboot does.
	usbMaxBulk = 1 << 20
	usbMinBulk = 16 << 10
	// usbWriteTimeout bounds one bulk OUT transfer: a device that takes longer to accept at most
	// usbMaxBulk bytes has stalled. A timed-out write leaves the stream out of step.
	usbWriteTimeout = 10 * time.Second
	// usbReadPoll bounds one bulk IN wait. A reply may take minutes (flashing, erasing), so the read
	// is repeated until the context ends; the short wait keeps cancellation prompt.
	usbReadPoll = 250 * time.Millisecond
)

// ErrDeviceGone: the USB device went away (unplugged, rebooted) during the session.
var ErrDeviceGone = errors.New("USB device is gone")

// usbIO is the usbfs interface of one opened device node: the ioctls the USB transport uses. The
// Linux implementation issues them on /dev/bus/usb/BBB/DDD; tests use a fake that records them.
type usbIO interface {
	// Detach disconnects the kernel driver bound to interface iface (USBDEVFS_DISCONNECT).
	Detach(iface int) error
	// Claim claims interface iface for this process (USBDEVFS_CLAIMINTERFACE).
	Claim(iface int) error
	// Bulk runs one bulk transfer on endpoint ep (bit 7 set: IN, read into buf; else OUT, write
	// buf) and returns the bytes transferred (USBDEVFS_BULK).
	Bulk(ep uint8, buf []byte, timeout time.Duration) (int, error)
	// ClearHalt clears a stall on endpoint ep (USBDEVFS_CLEAR_HALT).
	ClearHalt(ep uint8) error
	// Release gives interface iface back (USBDEVFS_RELEASEINTERFACE).
	Release(iface int) error
	// Close closes the device node.
	Close() error
}

// openUSBIO opens a device node; replaced in tests. It is set by the platform's usb_*.go file.
var openUSBIO func(path string) (usbIO, error)

// usbTransport sends each command as one bulk OUT transfer and reads each reply as one bulk IN
// transfer. There is no framing and no handshake.
type usbTransport struct {
	dev     USBDevice
	io      usbIO
	ctx     context.Context
	maxBulk int
	reply   []byte
	closed  bool
}

// DialUSB opens the fastboot device on USB whose serial number is serial (or whose bus path, such
// as "1-2.3", is serial), found under /sys/bus/usb/devices.
func DialUSB(ctx context.Context, serial string) (*Client, error) {
	dev, err := FindUSBDevice(DefaultSysfsRoot, serial)
	if err != nil {
		return nil, err
	}
	return OpenUSB(ctx, dev)
}

// OpenUSB opens dev (found by ListUSB), detaches any kernel driver bound to its fastboot interface
// and claims it.
func OpenUSB(ctx context.Context, dev USBDevice) (*Client, error) {
	if openUSBIO == nil {
		return nil, fmt.Errorf("opening fastboot device %s: USB is supported on Linux only", dev)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("opening fastboot device %s: %w", dev, err)
	}
	uio, err := openUSBIO(dev.DevNode)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			err = fmt.Errorf("%w (a udev rule must give this user access to Android devices, e.g. the android-sdk-platform-tools-common package)", err)
		}
		return nil, fmt.Errorf("opening fastboot device %s: %w", dev, err)
	}
	return newUSBClient(ctx, dev, uio)
}

// newUSBClient claims dev's interface through uio and returns the session.
func newUSBClient(ctx context.Context, dev USBDevice, uio usbIO) (*Client, error) {
	if dev.Driver != "" && dev.Driver != "usbfs" {
		if err := uio.Detach(dev.InterfaceNumber); err != nil && !errors.Is(err, syscall.ENODATA) {
			uio.Close()
			return nil, fmt.Errorf("opening fastboot device %s: detaching kernel driver %s: %w", dev, dev.Driver, usbErr(err))
		}
	}
	if err := uio.Claim(dev.InterfaceNumber); err != nil {
		uio.Close()
		if errors.Is(err, syscall.EBUSY) {
			err = fmt.Errorf("%w (another program, such as fastboot, has it open)", err)
		}
		return nil, fmt.Errorf("opening fastboot device %s: claiming interface %d: %w", dev, dev.InterfaceNumber, usbErr(err))
	}
	t := &usbTransport{dev: dev, io: uio, ctx: context.Background(), maxBulk: usbMaxBulk,
		reply: make([]byte, max(usbReplyBuf, dev.MaxPacketIn))}
	return &Client{addr: dev.Name(), tr: t}, nil
}

// usbErr makes the errnos of a vanished device one error, ErrDeviceGone (and ErrClosed, which the
// flash runner treats as a device that went away).
func usbErr(err error) error {
	if isGone(err) {
		return fmt.Errorf("%w: %w (%w)", ErrDeviceGone, ErrClosed, err)
	}
	return err
}

func isGone(err error) bool {
	return errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ESHUTDOWN) || errors.Is(err, syscall.ENOENT)
}

// gone names the device in the error of a device that went away: the Client's errors say
// "usb:<serial>", this says where it was.
func (t *usbTransport) gone(err error) error {
	if isGone(err) {
		return fmt.Errorf("%w: %s was disconnected or rebooted: %w (%w)", ErrDeviceGone, t.dev, ErrClosed, err)
	}
	return err
}

func (t *usbTransport) watch(ctx context.Context) (stop func() bool) {
	t.ctx = ctx
	return func() bool {
		t.ctx = context.Background()
		return ctx.Err() == nil
	}
}

func (t *usbTransport) rearm() {}

// bulk runs one transfer; a stalled endpoint (EPIPE) is cleared and the transfer tried once more.
func (t *usbTransport) bulk(ep uint8, buf []byte, timeout time.Duration) (int, error) {
	n, err := t.io.Bulk(ep, buf, timeout)
	if errors.Is(err, syscall.EPIPE) {
		if cerr := t.io.ClearHalt(ep); cerr != nil {
			return 0, fmt.Errorf("endpoint %#02x stalled and clearing it failed: %w", ep, t.gone(cerr))
		}
		n, err = t.io.Bulk(ep, buf, timeout)
		if err != nil {
			return n, fmt.Errorf("endpoint %#02x stalled again after clearing it: %w", ep, t.gone(err))
		}
	}
	if err != nil {
		return n, t.gone(err)
	}
	return n, nil
}

// writeTimeout is usbWriteTimeout, shortened to what is left of the context's deadline.
func (t *usbTransport) writeTimeout() time.Duration {
	d := usbWriteTimeout
	if dl, ok := t.ctx.Deadline(); ok {
		d = min(d, max(time.Until(dl), time.Millisecond))
	}
	return d
}

// write sends p as bulk OUT transfers of at most maxBulk bytes, checking the context between them.
func (t *usbTransport) write(p []byte) error {
	for len(p) > 0 {
		if err := t.ctx.Err(); err != nil {
			return err
		}
		k := min(len(p), t.maxBulk)
		n, err := t.bulk(t.dev.EndpointOut, p[:k], t.writeTimeout())
		if errors.Is(err, syscall.ENOMEM) && t.maxBulk > usbMinBulk {
			t.maxBulk /= 2
			continue
		}
		if err != nil {
			if errors.Is(err, syscall.ETIMEDOUT) {
				return fmt.Errorf("the device accepted no data for %v: %w", usbWriteTimeout, err)
			}
			return err
		}
		if n != k {
			return fmt.Errorf("short bulk write: %d of %d bytes", n, k)
		}
		p = p[k:]
	}
	return nil
}

// zlp ends a transfer of n bytes with a zero-length packet when n is a non-zero multiple of the
// OUT endpoint's wMaxPacketSize: without it the device cannot tell the transfer has ended.
func (t *usbTransport) zlp(n int64) error {
	mps := int64(t.dev.MaxPacketOut)
	if n == 0 || mps <= 0 || n%mps != 0 {
		return nil
	}
	if _, err := t.bulk(t.dev.EndpointOut, nil, t.writeTimeout()); err != nil {
		return fmt.Errorf("sending the zero-length packet: %w", err)
	}
	return nil
}

func (t *usbTransport) writePacket(p []byte) error {
	if len(p) > usbMaxCommand {
		return fmt.Errorf("command of %d bytes is longer than %d", len(p), usbMaxCommand)
	}
	if err := t.write(p); err != nil {
		return err
	}
	return t.zlp(int64(len(p)))
}

func (t *usbTransport) writeData(p []byte) error  { return t.write(p) }
func (t *usbTransport) endData(total int64) error { return t.zlp(total) }

// readPacket reads one reply: one bulk IN transfer, waited for until the context ends.
func (t *usbTransport) readPacket() ([]byte, error) {
	for {
		if err := t.ctx.Err(); err != nil {
			return nil, err
		}
		n, err := t.bulk(t.dev.EndpointIn, t.reply, usbReadPoll)
		if errors.Is(err, syscall.ETIMEDOUT) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n < 0 || n > len(t.reply) {
			return nil, fmt.Errorf("bulk read returned %d bytes for a %d-byte buffer", n, len(t.reply))
		}
		if n == 0 {
			continue // a zero-length packet ends nothing we wait for
		}
		return append([]byte(nil), t.reply[:n]...), nil
	}
}

func (t *usbTransport) close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	rerr := t.io.Release(t.dev.InterfaceNumber)
	cerr := t.io.Close()
	if rerr != nil && !isGone(rerr) {
		return fmt.Errorf("releasing interface %d of %s: %w", t.dev.InterfaceNumber, t.dev, rerr)
	}
	return cerr
}

// waitGone waits until the device node disappears or the device stops answering (ENODEV), as it
// does when it reboots.
func (t *usbTransport) waitGone(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if t.closed {
			if _, err := os.Stat(t.dev.DevNode); errors.Is(err, os.ErrNotExist) {
				return true
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		_, err := t.io.Bulk(t.dev.EndpointIn, t.reply, min(usbReadPoll, max(time.Until(deadline), time.Millisecond)))
		if err != nil && !errors.Is(err, syscall.ETIMEDOUT) && !errors.Is(err, syscall.EPIPE) {
			return true
		}
	}
	return false
}

// Name is how the device is named to users: "usb:<serial>", or "usb:<bus path>" when the device
// has no serial number.
func (d USBDevice) Name() string {
	if d.Serial != "" {
		return "usb:" + d.Serial
	}
	return "usb:" + d.Path
}

// String names the device in errors: serial, bus path and device node.
func (d USBDevice) String() string {
	var b strings.Builder
	b.WriteString(d.Name())
	fmt.Fprintf(&b, " (bus path %s", d.Path)
	if d.DevNode != "" {
		fmt.Fprintf(&b, ", %s", d.DevNode)
	}
	b.WriteString(")")
	return b.String()
}
