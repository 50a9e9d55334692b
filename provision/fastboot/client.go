package fastboot

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultPort is fastboot's TCP port.
const DefaultPort = 5554

// maxReply bounds one reply packet; the protocol says 256 bytes, some bootloaders send more.
const maxReply = 64 << 10

// ErrClosed: the connection to the device closed before the command completed.
var ErrClosed = errors.New("connection closed")

// FailError is a FAIL reply: the device refused a command and said why.
type FailError struct {
	Device  string
	Command string
	Message string
}

func (e *FailError) Error() string {
	return fmt.Sprintf("%s on %s failed: remote: %q", e.Command, e.Device, e.Message)
}

// Client is one fastboot session with a device over TCP or USB. Commands are serialised: a Client
// is safe for concurrent use, but one device runs one command at a time.
type Client struct {
	// Progress, if set, receives INFO ("info") and TEXT ("text") messages as they arrive.
	Progress func(kind, msg string)
	// ChunkSize is the size of data-phase packets (default 1 MiB).
	ChunkSize int

	addr    string
	tr      transport
	version int

	mu     sync.Mutex
	broken error // set once the stream is out of sync; every later command fails with it
}

// Addr returns the device's address ("host:port" over TCP, "usb:<serial>" or "usb:<bus path>" over
// USB), which names it in errors.
func (c *Client) Addr() string { return c.addr }

// Version returns the negotiated TCP protocol version (0 over USB, which has no handshake).
func (c *Client) Version() int { return c.version }

// Dial connects to a device in fastboot mode at addr ("host:port", "tcp:host:port" or "host" for
// port 5554) and performs the handshake.
//
// An address "usb:<serial>" (or "usb:<bus path>" such as "usb:1-2.3") opens a USB device instead,
// as DialUSB does.
func Dial(ctx context.Context, addr string) (*Client, error) {
	if s, ok := strings.CutPrefix(addr, "usb:"); ok {
		return DialUSB(ctx, s)
	}
	addr = strings.TrimPrefix(addr, "tcp:")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, strconv.Itoa(DefaultPort))
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to fastboot device %s: %w", addr, err)
	}
	return newClient(ctx, conn, addr)
}

// newClient performs the handshake on an established connection.
func newClient(ctx context.Context, conn net.Conn, addr string) (*Client, error) {
	t := &tcpTransport{conn: conn}
	c := &Client{addr: addr, tr: t}
	stop := c.tr.watch(ctx)
	err := c.handshake(t)
	if !stop() || err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connecting to fastboot device %s: %w", addr, ctx.Err())
		}
		return nil, fmt.Errorf("connecting to fastboot device %s: %w", addr, err)
	}
	return c, nil
}

func (c *Client) handshake(t *tcpTransport) error {
	if _, err := t.conn.Write([]byte("FB01")); err != nil {
		return fmt.Errorf("sending the handshake: %w", err)
	}
	var hs [4]byte
	if _, err := io.ReadFull(t.conn, hs[:]); err != nil {
		return fmt.Errorf("reading the handshake: %w", closedErr(err))
	}
	v, err := ParseHandshake(hs[:])
	if err != nil {
		return err
	}
	c.version = min(v, 1)
	return nil
}

// ParseHandshake checks a 4-byte handshake ("FB" + two decimal digits) and returns the version.
func ParseHandshake(b []byte) (int, error) {
	if len(b) != 4 || b[0] != 'F' || b[1] != 'B' || b[2] < '0' || b[2] > '9' || b[3] < '0' || b[3] > '9' {
		return 0, fmt.Errorf("bad handshake %q: not a fastboot TCP device (want FBnn)", b)
	}
	v := int(b[2]-'0')*10 + int(b[3]-'0')
	if v < 1 {
		return 0, fmt.Errorf("bad handshake %q: protocol version 0", b)
	}
	return v, nil
}

// Close ends the session.
func (c *Client) Close() error { return c.tr.close() }

// transport carries fastboot packets to one device: TCP (length-framed packets after a handshake)
// or USB (one bulk transfer per packet).
type transport interface {
	// writePacket sends a command.
	writePacket(p []byte) error
	// readPacket reads one reply.
	readPacket() ([]byte, error)
	// writeData sends one piece of a data phase; endData ends a data phase of total bytes.
	writeData(p []byte) error
	endData(total int64) error
	// watch makes I/O fail once ctx is done; stop reports whether it had not fired. rearm makes
	// I/O possible again after a watch that fired but did not break a command.
	watch(ctx context.Context) (stop func() bool)
	rearm()
	close() error
	waitGone(d time.Duration) bool
}

// tcpTransport frames each packet with an 8-byte big-endian length.
type tcpTransport struct{ conn net.Conn }

func (t *tcpTransport) watch(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() { t.conn.SetDeadline(time.Unix(1, 0)) })
}

func (t *tcpTransport) rearm()                    { t.conn.SetDeadline(time.Time{}) }
func (t *tcpTransport) close() error              { return t.conn.Close() }
func (t *tcpTransport) writeData(p []byte) error  { return t.writePacket(p) }
func (t *tcpTransport) endData(total int64) error { return nil }

func closedErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%w (%v)", ErrClosed, err)
	}
	return err
}

func (t *tcpTransport) writePacket(p []byte) error {
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(len(p)))
	if _, err := t.conn.Write(hdr[:]); err != nil {
		return closedErr(err)
	}
	if _, err := t.conn.Write(p); err != nil {
		return closedErr(err)
	}
	return nil
}

func (t *tcpTransport) readPacket() ([]byte, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(t.conn, hdr[:]); err != nil {
		return nil, closedErr(err)
	}
	n := binary.BigEndian.Uint64(hdr[:])
	if n > maxReply {
		return nil, fmt.Errorf("reply of %d bytes is longer than %d: not a fastboot reply", n, maxReply)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(t.conn, buf); err != nil {
		return nil, closedErr(err)
	}
	return buf, nil
}

// Reply is how a command ended: its OKAY value and the INFO lines sent on the way.
type Reply struct {
	Value string
	Info  []string
}

// readReply reads packets until OKAY, FAIL or DATA. For DATA it returns the announced size.
func (c *Client) readReply(cmd string, r *Reply) (dataSize int64, isData bool, err error) {
	for i := 0; ; i++ {
		p, err := c.tr.readPacket()
		if err != nil {
			return 0, false, err
		}
		kind, msg, err := ParseReply(p)
		if err != nil {
			return 0, false, err
		}
		switch kind {
		case "OKAY":
			r.Value = msg
			return 0, false, nil
		case "FAIL":
			return 0, false, &FailError{Device: c.addr, Command: cmd, Message: msg}
		case "DATA":
			n, err := strconv.ParseUint(msg, 16, 32)
			if err != nil || len(msg) != 8 {
				return 0, false, fmt.Errorf("bad DATA reply %q", truncate(string(p), 40))
			}
			return int64(n), true, nil
		case "INFO", "TEXT":
			if kind == "INFO" {
				r.Info = append(r.Info, msg)
			}
			if c.Progress != nil {
				c.Progress(strings.ToLower(kind), msg)
			}
		}
	}
}

// ParseReply splits a reply packet into its kind (OKAY, FAIL, DATA, INFO, TEXT) and text.
func ParseReply(p []byte) (kind, msg string, err error) {
	if len(p) < 4 {
		return "", "", fmt.Errorf("reply %q is shorter than 4 bytes", p)
	}
	kind = string(p[:4])
	switch kind {
	case "OKAY", "FAIL", "DATA", "INFO", "TEXT":
		return kind, strings.TrimRight(string(p[4:]), "\x00"), nil
	}
	return "", "", fmt.Errorf("reply %q: unknown kind %q", truncate(string(p), 40), kind)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// run sends cmd, and, when the device asks for data, the size bytes from data; it returns the
// final reply. The session is serialised and bounded by ctx.
func (c *Client) run(ctx context.Context, cmd string, data io.Reader, size int64) (Reply, error) {
	var r Reply
	if len(cmd) > 4096 {
		return r, fmt.Errorf("%s on %s: command longer than 4096 bytes", truncate(cmd, 40), c.addr)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return r, fmt.Errorf("%s on %s: %w", cmd, c.addr, c.broken)
	}
	stop := c.tr.watch(ctx)
	err := c.exchange(cmd, data, size, &r)
	fired := !stop()
	if err != nil {
		var fe *FailError
		if !errors.As(err, &fe) {
			// The stream is out of step (or gone): never reuse it.
			c.broken = err
			if fired {
				err = ctx.Err()
				c.broken = fmt.Errorf("an earlier command was interrupted: %w", err)
			}
			c.tr.close()
			return r, fmt.Errorf("%s on %s: %w", cmd, c.addr, err)
		}
		return r, err
	}
	if fired {
		c.tr.rearm()
	}
	return r, nil
}

func (c *Client) exchange(cmd string, data io.Reader, size int64, r *Reply) error {
	if err := c.tr.writePacket([]byte(cmd)); err != nil {
		return err
	}
	n, isData, err := c.readReply(cmd, r)
	if err != nil || !isData {
		return err
	}
	if data == nil {
		return fmt.Errorf("device asked for %d bytes of data that %s does not send", n, cmd)
	}
	if n != size {
		return fmt.Errorf("device is ready for %d bytes, not the %d announced", n, size)
	}
	chunk := c.ChunkSize
	if chunk <= 0 {
		chunk = 1 << 20
	}
	buf := make([]byte, min(int64(chunk), max(n, 1)))
	for left := n; left > 0; {
		k := min(int64(len(buf)), left)
		if _, err := io.ReadFull(data, buf[:k]); err != nil {
			return fmt.Errorf("reading the data to send (%d of %d bytes sent): %w", n-left, n, err)
		}
		if err := c.tr.writeData(buf[:k]); err != nil {
			return fmt.Errorf("sending data (%d of %d bytes sent): %w", n-left, n, err)
		}
		left -= k
	}
	if err := c.tr.endData(n); err != nil {
		return fmt.Errorf("ending the data phase of %d bytes: %w", n, err)
	}
	_, isData, err = c.readReply(cmd, r)
	if err == nil && isData {
		return fmt.Errorf("a second DATA reply after the data phase")
	}
	return err
}

// Command runs a raw command (e.g. "oem device-info") and returns its reply.
func (c *Client) Command(ctx context.Context, cmd string) (Reply, error) {
	return c.run(ctx, cmd, nil, 0)
}

// GetVar returns a bootloader variable ("product", "serialno", "max-download-size",
// "current-slot", "is-userspace", "partition-size:system_a", ...).
func (c *Client) GetVar(ctx context.Context, name string) (string, error) {
	r, err := c.run(ctx, "getvar:"+name, nil, 0)
	if err != nil {
		return "", fmt.Errorf("reading variable %s: %w", name, err)
	}
	return r.Value, nil
}

// GetVarAll returns the "name: value" lines of getvar:all as the device sent them.
func (c *Client) GetVarAll(ctx context.Context) ([]string, error) {
	r, err := c.run(ctx, "getvar:all", nil, 0)
	if err != nil {
		return nil, fmt.Errorf("reading all variables: %w", err)
	}
	return r.Info, nil
}

// MaxDownloadSize returns max-download-size (hex with 0x, or decimal), 0 when the device does not
// say.
func (c *Client) MaxDownloadSize(ctx context.Context) (int64, error) {
	v, err := c.GetVar(ctx, "max-download-size")
	if err != nil {
		var fe *FailError
		if errors.As(err, &fe) {
			return 0, nil
		}
		return 0, err
	}
	return ParseSize(v)
}

// ParseSize reads a size variable: "0x10000000", "268435456", "" (unknown: 0).
func ParseSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	var n uint64
	var err error
	if h, ok := strings.CutPrefix(strings.ToLower(v), "0x"); ok {
		n, err = strconv.ParseUint(h, 16, 63)
	} else {
		n, err = strconv.ParseUint(v, 10, 63)
	}
	if err != nil {
		return 0, fmt.Errorf("size %q is not a number", v)
	}
	return int64(n), nil
}

// Download sends size bytes from r to the device's download buffer.
func (c *Client) Download(ctx context.Context, r io.Reader, size int64) error {
	if size < 0 || size > 0xffffffff {
		return fmt.Errorf("downloading to %s: %d bytes do not fit one download (at most 4 GiB - 1)", c.addr, size)
	}
	if _, err := c.run(ctx, fmt.Sprintf("download:%08x", size), r, size); err != nil {
		return fmt.Errorf("downloading %d bytes: %w", size, err)
	}
	return nil
}

// FlashDownloaded writes the last download to partition.
func (c *Client) FlashDownloaded(ctx context.Context, partition string) error {
	if err := checkName(partition); err != nil {
		return err
	}
	if _, err := c.run(ctx, "flash:"+partition, nil, 0); err != nil {
		return fmt.Errorf("flashing %s: %w", partition, err)
	}
	return nil
}

// Erase erases partition.
func (c *Client) Erase(ctx context.Context, partition string) error {
	if err := checkName(partition); err != nil {
		return err
	}
	if _, err := c.run(ctx, "erase:"+partition, nil, 0); err != nil {
		return fmt.Errorf("erasing %s: %w", partition, err)
	}
	return nil
}

// SetActive makes slot ("a" or "b", with or without the leading underscore) the one to boot.
func (c *Client) SetActive(ctx context.Context, slot string) error {
	slot = strings.TrimPrefix(slot, "_")
	if err := checkName(slot); err != nil {
		return err
	}
	if _, err := c.run(ctx, "set_active:"+slot, nil, 0); err != nil {
		return fmt.Errorf("setting slot %s active: %w", slot, err)
	}
	return nil
}

// RebootTarget says where the device goes after a reboot.
type RebootTarget string

// Reboot targets.
const (
	RebootSystem     RebootTarget = ""
	RebootBootloader RebootTarget = "bootloader"
	RebootFastboot   RebootTarget = "fastboot" // userspace fastboot (fastbootd)
	RebootRecovery   RebootTarget = "recovery"
)

// Reboot reboots the device. The session is unusable afterwards: close it and dial again once the
// device is back.
func (c *Client) Reboot(ctx context.Context, target RebootTarget) error {
	cmd := "reboot"
	if target != "" {
		cmd += "-" + string(target)
	}
	if _, err := c.run(ctx, cmd, nil, 0); err != nil {
		return fmt.Errorf("rebooting: %w", err)
	}
	return nil
}

// Continue asks the bootloader to go on booting.
func (c *Client) Continue(ctx context.Context) error {
	if _, err := c.run(ctx, "continue", nil, 0); err != nil {
		return fmt.Errorf("continuing the boot: %w", err)
	}
	return nil
}

func checkName(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("invalid partition or slot name %q", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("invalid partition or slot name %q", s)
		}
	}
	return nil
}

// WaitGone waits, at most d, until the device closes the session, as it does when it reboots after
// answering OKAY. It reports whether the device went away in that time. Dialing again before then
// could reach the device that is about to go down.
func (c *Client) WaitGone(d time.Duration) bool { return c.tr.waitGone(d) }

func (t *tcpTransport) waitGone(d time.Duration) bool {
	if err := t.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		return true
	}
	var buf [512]byte
	for {
		if _, err := t.conn.Read(buf[:]); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}
