package fastboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeUSB is a fastboot device behind the usbIO interface: it answers commands, takes downloads,
// and records every ioctl the transport issues, in order, so tests can check the exact sequence.
type fakeUSB struct {
	mu      sync.Mutex
	ops     []string
	replies [][]byte
	vars    map[string]string

	want     int64  // bytes of data phase still expected
	received []byte // the last download

	stallIn   int            // answer this many IN transfers with EPIPE (each needs a clear halt)
	goneAfter int            // after this many bulk transfers, every ioctl fails ENODEV (0: never)
	outDelay  time.Duration  // each OUT transfer takes this long
	onOut     func(outs int) // called after each OUT transfer with the count so far
	outs      int
	silent    bool // never answer
	halted    map[uint8]bool
	bulks     int
	closed    bool
	claimErr  error
}

func newFakeUSB() *fakeUSB {
	return &fakeUSB{vars: map[string]string{"product": "usbphone", "max-download-size": "0x100000"}, halted: map[uint8]bool{}}
}

func (f *fakeUSB) record(format string, args ...any) {
	f.ops = append(f.ops, fmt.Sprintf(format, args...))
}

func (f *fakeUSB) Detach(iface int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("detach %d", iface)
	return nil
}

func (f *fakeUSB) Claim(iface int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("claim %d", iface)
	return f.claimErr
}

func (f *fakeUSB) Release(iface int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("release %d", iface)
	if f.goneAfter > 0 && f.bulks >= f.goneAfter {
		return syscall.ENODEV
	}
	return nil
}

func (f *fakeUSB) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("close")
	f.closed = true
	return nil
}

func (f *fakeUSB) ClearHalt(ep uint8) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("clear-halt %02x", ep)
	delete(f.halted, ep)
	return nil
}

func (f *fakeUSB) Bulk(ep uint8, buf []byte, timeout time.Duration) (int, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return 0, syscall.EBADF
	}
	f.bulks++
	if f.goneAfter > 0 && f.bulks > f.goneAfter {
		f.record("bulk %02x ENODEV", ep)
		f.mu.Unlock()
		return 0, syscall.ENODEV
	}
	if ep&0x80 == 0 {
		f.record("out %02x %d", ep, len(buf))
		d, hook := f.outDelay, f.onOut
		f.receive(buf)
		f.outs++
		outs := f.outs
		f.mu.Unlock()
		time.Sleep(d)
		if hook != nil {
			hook(outs)
		}
		return len(buf), nil
	}
	if f.stallIn > 0 && !f.halted[ep] {
		f.stallIn--
		f.halted[ep] = true
	}
	if f.halted[ep] {
		f.record("in %02x EPIPE", ep)
		f.mu.Unlock()
		return 0, syscall.EPIPE
	}
	if len(f.replies) == 0 || f.silent {
		f.record("in %02x ETIMEDOUT", ep)
		f.mu.Unlock()
		time.Sleep(min(timeout, 20*time.Millisecond))
		return 0, syscall.ETIMEDOUT
	}
	r := f.replies[0]
	f.replies = f.replies[1:]
	f.record("in %02x %q", ep, r)
	f.mu.Unlock()
	if len(r) > len(buf) {
		return 0, syscall.EOVERFLOW
	}
	return copy(buf, r), nil
}

// receive handles one OUT transfer: a command, a piece of data, or a zero-length packet.
func (f *fakeUSB) receive(p []byte) {
	if f.want > 0 {
		f.received = append(f.received, p...)
		f.want -= int64(len(p))
		if f.want == 0 {
			f.replies = append(f.replies, []byte("OKAY"))
		}
		return
	}
	if len(p) == 0 {
		return // ZLP
	}
	cmd := string(p)
	switch {
	case strings.HasPrefix(cmd, "getvar:"):
		if v, ok := f.vars[cmd[7:]]; ok {
			f.replies = append(f.replies, []byte("INFOlooking it up"), []byte("OKAY"+v))
		} else {
			f.replies = append(f.replies, []byte("FAILunknown variable"))
		}
	case strings.HasPrefix(cmd, "download:"):
		n, err := strconv.ParseUint(cmd[9:], 16, 32)
		if err != nil {
			f.replies = append(f.replies, []byte("FAILbad size"))
			return
		}
		f.want, f.received = int64(n), nil
		f.replies = append(f.replies, fmt.Appendf(nil, "DATA%08x", n))
		if n == 0 {
			f.replies = append(f.replies, []byte("OKAY"))
		}
	default:
		f.replies = append(f.replies, []byte("OKAY"))
	}
}

func (f *fakeUSB) opList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops...)
}

var testUSBDev = USBDevice{Path: "1-2.3", Interface: "1-2.3:1.0", DevNode: "/dev/bus/usb/001/007", Serial: "FAKE01",
	InterfaceNumber: 1, EndpointIn: 0x81, EndpointOut: 0x02, MaxPacketIn: 512, MaxPacketOut: 512}

func openFake(t *testing.T, f *fakeUSB, dev USBDevice) *Client {
	t.Helper()
	c, err := newUSBClient(context.Background(), dev, f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func eqOps(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("ioctl sequence:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestUSBGetVarRoundTrip(t *testing.T) {
	f := newFakeUSB()
	dev := testUSBDev
	dev.Driver = "some_driver"
	c := openFake(t, f, dev)
	var progress []string
	c.Progress = func(kind, msg string) { progress = append(progress, kind+":"+msg) }
	v, err := c.GetVar(context.Background(), "product")
	if err != nil || v != "usbphone" {
		t.Fatalf("GetVar = %q, %v", v, err)
	}
	if c.Addr() != "usb:FAKE01" || c.Version() != 0 {
		t.Errorf("Addr %q Version %d", c.Addr(), c.Version())
	}
	if len(progress) != 1 || progress[0] != "info:looking it up" {
		t.Errorf("progress %q", progress)
	}
	_, err = c.GetVar(context.Background(), "nope")
	var fe *FailError
	if !errors.As(err, &fe) || fe.Device != "usb:FAKE01" || fe.Message != "unknown variable" {
		t.Fatalf("unknown var: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	eqOps(t, f.opList(), []string{
		"detach 1", "claim 1",
		"out 02 14", `in 81 "INFOlooking it up"`, `in 81 "OKAYusbphone"`,
		"out 02 11", `in 81 "FAILunknown variable"`,
		"release 1", "close",
	})
}

func TestUSBNoDetachWithoutDriver(t *testing.T) {
	f := newFakeUSB()
	c := openFake(t, f, testUSBDev)
	c.Close()
	eqOps(t, f.opList(), []string{"claim 1", "release 1", "close"})
}

func TestUSBClaimBusy(t *testing.T) {
	f := newFakeUSB()
	f.claimErr = syscall.EBUSY
	_, err := newUSBClient(context.Background(), testUSBDev, f)
	if err == nil || !strings.Contains(err.Error(), "usb:FAKE01 (bus path 1-2.3, /dev/bus/usb/001/007)") || !strings.Contains(err.Error(), "another program") {
		t.Fatalf("claim error %v", err)
	}
	eqOps(t, f.opList(), []string{"claim 1", "close"})
}

// download sends size bytes with the given chunk size and returns the ioctls between the DATA
// reply and the final OKAY.
func download(t *testing.T, size int, chunk int) (*fakeUSB, []string) {
	t.Helper()
	f := newFakeUSB()
	c := openFake(t, f, testUSBDev)
	c.ChunkSize = chunk
	data := bytes.Repeat([]byte{0xa5, 0x5a, 0x01}, size/3+1)[:size]
	if err := c.Download(context.Background(), bytes.NewReader(data), int64(size)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.received, data) {
		t.Fatalf("device received %d bytes, not the %d sent", len(f.received), size)
	}
	ops := f.opList()
	start, end := -1, -1
	for i, o := range ops {
		if strings.HasPrefix(o, `in 81 "DATA`) {
			start = i + 1
		}
		if o == `in 81 "OKAY"` {
			end = i
		}
	}
	if start < 0 || end < start {
		t.Fatalf("no DATA/OKAY in %q", ops)
	}
	return f, ops[start:end]
}

func TestUSBDownloadMultipleOfMaxPacketSendsZLP(t *testing.T) {
	// 3 x 512 bytes, sent in 1 KiB pieces: two data transfers, then the zero-length packet.
	_, ops := download(t, 3*512, 1024)
	eqOps(t, ops, []string{"out 02 1024", "out 02 512", "out 02 0"})
}

func TestUSBDownloadNotMultipleNoZLP(t *testing.T) {
	_, ops := download(t, 3*512+1, 1024)
	eqOps(t, ops, []string{"out 02 1024", "out 02 513"})
}

func TestUSBDownloadSplitsAtMaxBulk(t *testing.T) {
	// A 1 MiB + 10 bytes data phase read in 4 MiB pieces still goes out as bulk transfers of at
	// most usbMaxBulk bytes.
	_, ops := download(t, usbMaxBulk+10, 4<<20)
	eqOps(t, ops, []string{fmt.Sprintf("out 02 %d", usbMaxBulk), "out 02 10"})
}

func TestUSBCommandOfMaxPacketSendsZLP(t *testing.T) {
	f := newFakeUSB()
	c := openFake(t, f, testUSBDev)
	cmd := "oem " + strings.Repeat("x", 512-4)
	if _, err := c.Command(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	eqOps(t, f.opList()[1:3], []string{"out 02 512", "out 02 0"})
	if _, err := c.Command(context.Background(), "oem "+strings.Repeat("x", 4093)); err == nil {
		t.Fatal("a command of 4097 bytes was sent")
	}
}

func TestUSBStallClearedAndRetried(t *testing.T) {
	f := newFakeUSB()
	f.stallIn = 1
	c := openFake(t, f, testUSBDev)
	v, err := c.GetVar(context.Background(), "product")
	if err != nil || v != "usbphone" {
		t.Fatalf("GetVar after a stall = %q, %v", v, err)
	}
	eqOps(t, f.opList(), []string{"claim 1", "out 02 14", "in 81 EPIPE", "clear-halt 81", `in 81 "INFOlooking it up"`, `in 81 "OKAYusbphone"`})
}

func TestUSBStallTwiceFails(t *testing.T) {
	f := newFakeUSB()
	f.stallIn = 2
	c := openFake(t, f, testUSBDev)
	_, err := c.GetVar(context.Background(), "product")
	if err == nil || !strings.Contains(err.Error(), "stalled again") || !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("err %v", err)
	}
	eqOps(t, f.opList()[1:], []string{"out 02 14", "in 81 EPIPE", "clear-halt 81", "in 81 EPIPE", "release 1", "close"})
}

func TestUSBDeviceVanishes(t *testing.T) {
	f := newFakeUSB()
	f.goneAfter = 3 // the command, INFO, OKAY of the first getvar; then it is gone
	c := openFake(t, f, testUSBDev)
	ctx := context.Background()
	if _, err := c.GetVar(ctx, "product"); err != nil {
		t.Fatal(err)
	}
	_, err := c.GetVar(ctx, "product")
	if !errors.Is(err, ErrDeviceGone) || !errors.Is(err, ErrClosed) || !errors.Is(err, syscall.ENODEV) {
		t.Fatalf("err %v: want ErrDeviceGone, ErrClosed and ENODEV", err)
	}
	for _, want := range []string{"usb:FAKE01", "bus path 1-2.3", "disconnected or rebooted"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// The session is broken: later commands fail at once, naming the first error.
	n := len(f.opList())
	if _, err := c.GetVar(ctx, "product"); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("third command: %v", err)
	}
	if len(f.opList()) != n {
		t.Errorf("a broken session still issued ioctls: %q", f.opList()[n:])
	}
	if !c.WaitGone(time.Second) {
		t.Error("WaitGone: a closed session of a vanished device is not gone")
	}
}

func TestUSBWaitGoneSeesENODEV(t *testing.T) {
	f := newFakeUSB()
	f.goneAfter = 5
	c := openFake(t, f, testUSBDev)
	start := time.Now()
	if !c.WaitGone(10 * time.Second) {
		t.Fatal("WaitGone = false for a device that went away")
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("WaitGone took %v", time.Since(start))
	}
	f2 := newFakeUSB()
	c2 := openFake(t, f2, testUSBDev)
	if c2.WaitGone(100 * time.Millisecond) {
		t.Fatal("WaitGone = true for a device still there")
	}
}

func TestUSBCancelDuringLongDownload(t *testing.T) {
	f := newFakeUSB()
	f.outDelay = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	f.onOut = func(outs int) {
		if outs == 11 { // the command and 10 pieces of data
			cancel()
		}
	}
	c := openFake(t, f, testUSBDev)
	c.ChunkSize = 16 << 10
	size := 64 << 20 // 4096 transfers of 16 KiB
	start := time.Now()
	err := c.Download(ctx, bytes.NewReader(make([]byte, size)), int64(size))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the cancelled download went on for %v", d)
	}
	if got := len(f.received); got != 10*16<<10 {
		t.Errorf("device received %d of %d bytes: want the 10 pieces sent before the cancel, none after", got, size)
	}
	ops := f.opList()
	if ops[len(ops)-2] != "release 1" || ops[len(ops)-1] != "close" {
		t.Errorf("a cancelled session was not released and closed: ends %q", ops[len(ops)-2:])
	}
	if _, err := c.GetVar(context.Background(), "product"); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("after the cancel: %v", err)
	}
}

func TestUSBCancelWhileWaitingForReply(t *testing.T) {
	f := newFakeUSB()
	f.silent = true
	c := openFake(t, f, testUSBDev)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, err := c.Command(ctx, "flash:system")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want DeadlineExceeded", err)
	}
	ins := 0
	for _, o := range f.opList() {
		if o == "in 81 ETIMEDOUT" {
			ins++
		}
	}
	if ins < 2 {
		t.Errorf("the reply was polled %d times: a long command must be waited for", ins)
	}
}

func TestUSBFlashThroughClient(t *testing.T) {
	// Client.Flash (getvar max-download-size, download, flash) over the USB transport.
	f := newFakeUSB()
	c := openFake(t, f, testUSBDev)
	img := bytes.Repeat([]byte("img!"), 4096)
	if err := c.Flash(context.Background(), "boot", bytes.NewReader(img), int64(len(img)), FlashOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.received, img) {
		t.Fatal("image not received")
	}
	ops := f.opList()
	if ops[len(ops)-2] != "out 02 10" || ops[len(ops)-1] != `in 81 "OKAY"` {
		t.Errorf("flash:boot not sent last: %q", ops[len(ops)-2:])
	}
}

func TestOpenUSBMissingNode(t *testing.T) {
	if openUSBIO == nil {
		t.Skip("no usbfs on this platform")
	}
	dev := testUSBDev
	dev.DevNode = t.TempDir() + "/001/009"
	_, err := OpenUSB(context.Background(), dev)
	if err == nil || !strings.Contains(err.Error(), "usb:FAKE01 (bus path 1-2.3, "+dev.DevNode+")") || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("err %v", err)
	}
}
