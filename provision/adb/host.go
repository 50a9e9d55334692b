package adb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultServerPort is the adb server's TCP port when ANDROID_ADB_SERVER_PORT is not set.
const DefaultServerPort = 5037

// maxHostMessage bounds a length-prefixed host-protocol message: its length is four hex digits.
const maxHostMessage = 0xffff

// Server is a client of the adb server's host protocol (the "smart socket" protocol on
// 127.0.0.1:5037). Each call opens its own connection, so a Server is safe for concurrent use by
// any number of goroutines and devices.
type Server struct {
	addr   string
	dialer net.Dialer
	// dialFn replaces the TCP dial in tests that feed the client arbitrary replies.
	dialFn func(ctx context.Context) (net.Conn, error)
}

// ServerAddrFromEnv returns the adb server address adb itself would use: 127.0.0.1 and the port in
// ANDROID_ADB_SERVER_PORT, or 5037.
func ServerAddrFromEnv() (string, error) {
	port := DefaultServerPort
	if v := os.Getenv("ANDROID_ADB_SERVER_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p <= 0 || p > 65535 {
			return "", fmt.Errorf("reading ANDROID_ADB_SERVER_PORT: %q is not a TCP port (1-65535)", v)
		}
		port = p
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// NewServer returns a client of the adb server at addr ("host:port"); an empty addr means the
// address from the environment (see ServerAddrFromEnv).
func NewServer(addr string) (*Server, error) {
	if addr == "" {
		a, err := ServerAddrFromEnv()
		if err != nil {
			return nil, err
		}
		addr = a
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("parsing adb server address %q: %w", addr, err)
	}
	return &Server{addr: addr, dialer: net.Dialer{Timeout: 5 * time.Second}}, nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// hostConn is one connection to the adb server; its reads and writes obey a context.
type hostConn struct {
	net.Conn
	ctx  context.Context
	stop func() bool
}

func (s *Server) dial(ctx context.Context) (*hostConn, error) {
	var c net.Conn
	var err error
	if s.dialFn != nil {
		c, err = s.dialFn(ctx)
	} else {
		c, err = s.dialer.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
			return nil, &NoServerError{Addr: s.addr, Err: err}
		}
		return nil, fmt.Errorf("connecting to the adb server at %s: %w", s.addr, err)
	}
	return watchConn(ctx, c), nil
}

// watchConn makes blocking reads and writes on c return when ctx is done.
func watchConn(ctx context.Context, c net.Conn) *hostConn {
	hc := &hostConn{Conn: c, ctx: ctx}
	hc.stop = context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	return hc
}

func (c *hostConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// fix turns an I/O error caused by the context into the context's error.
func (c *hostConn) fix(err error) error {
	if err == nil {
		return nil
	}
	if c.ctx.Err() != nil {
		return c.ctx.Err()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%w (%v)", ErrClosed, err)
	}
	return err
}

// send writes one host-protocol request: four hex digits of length, then the request.
func (c *hostConn) send(req string) error {
	if len(req) > maxHostMessage {
		return fmt.Errorf("sending %.40q to the adb server: request longer than %d bytes", req, maxHostMessage)
	}
	if _, err := io.WriteString(c, fmt.Sprintf("%04x%s", len(req), req)); err != nil {
		return fmt.Errorf("sending %q to the adb server: %w", req, c.fix(err))
	}
	return nil
}

// status reads OKAY, or FAIL and its message (returned as a *FailError).
func (c *hostConn) status(req string) error {
	var st [4]byte
	if _, err := io.ReadFull(c, st[:]); err != nil {
		return fmt.Errorf("reading the reply to %q: %w", req, c.fix(err))
	}
	return c.statusFrom(req, st)
}

func (c *hostConn) statusFrom(req string, st [4]byte) error {
	switch string(st[:]) {
	case "OKAY":
		return nil
	case "FAIL":
		msg, err := c.readString()
		if err != nil {
			return fmt.Errorf("reading why %q was refused: %w", req, err)
		}
		return &FailError{Request: req, Message: msg}
	}
	return fmt.Errorf("reading the reply to %q: protocol fault: got %q, want OKAY or FAIL", req, st[:])
}

// readString reads a length-prefixed (four hex digits) message.
func (c *hostConn) readString() (string, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return "", c.fix(err)
	}
	n, err := ParseHexLength(hdr[:])
	if err != nil {
		return "", err
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		return "", c.fix(err)
	}
	return string(buf), nil
}

// ParseHexLength decodes the four hexadecimal digits that prefix host-protocol messages.
func ParseHexLength(b []byte) (int, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("protocol fault: length prefix is %d bytes, want 4", len(b))
	}
	n := 0
	for _, ch := range b {
		var v byte
		switch {
		case ch >= '0' && ch <= '9':
			v = ch - '0'
		case ch >= 'a' && ch <= 'f':
			v = ch - 'a' + 10
		case ch >= 'A' && ch <= 'F':
			v = ch - 'A' + 10
		default:
			return 0, fmt.Errorf("protocol fault: length prefix %q is not hexadecimal", b)
		}
		n = n<<4 | int(v)
	}
	return n, nil
}

// query sends a request that answers OKAY plus one length-prefixed message (or FAIL).
func (s *Server) query(ctx context.Context, req string) (string, error) {
	c, err := s.dial(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.send(req); err != nil {
		return "", err
	}
	if err := c.status(req); err != nil {
		return "", err
	}
	msg, err := c.readString()
	if err != nil {
		return "", fmt.Errorf("reading the answer to %q: %w", req, err)
	}
	return msg, nil
}

// Version returns the adb server's protocol version (41 for platform-tools 29 and later).
func (s *Server) Version(ctx context.Context) (int, error) {
	msg, err := s.query(ctx, "host:version")
	if err != nil {
		return 0, fmt.Errorf("asking the adb server at %s its version: %w", s.addr, err)
	}
	// The server answers "%04x" of its version (adb.cpp handle_host_request).
	v, err := strconv.ParseUint(strings.TrimSpace(msg), 16, 16)
	if err != nil {
		return 0, fmt.Errorf("asking the adb server at %s its version: %q is not a 16-bit hex number", s.addr, truncate(msg, 40))
	}
	return int(v), nil
}

// Devices lists every device the server knows, whatever its state (host:devices-l).
func (s *Server) Devices(ctx context.Context) ([]DeviceInfo, error) {
	msg, err := s.query(ctx, "host:devices-l")
	if err != nil {
		return nil, fmt.Errorf("listing devices: %w", err)
	}
	return ParseDevices(msg)
}

// DeviceInfo returns the server's view of one device, or an error matching ErrDeviceNotFound.
func (s *Server) DeviceInfo(ctx context.Context, serial string) (DeviceInfo, error) {
	devs, err := s.Devices(ctx)
	if err != nil {
		return DeviceInfo{}, err
	}
	for _, d := range devs {
		if d.Serial == serial {
			return d, nil
		}
	}
	return DeviceInfo{}, fmt.Errorf("looking up %s: %w (the adb server at %s does not list it)", serial, ErrDeviceNotFound, s.addr)
}

// State returns the device's state (host-serial:<serial>:get-state). A device the server does not
// know is reported as StateGone with an error matching ErrDeviceNotFound.
func (s *Server) State(ctx context.Context, serial string) (State, error) {
	msg, err := s.query(ctx, "host-serial:"+serial+":get-state")
	if err != nil {
		if errors.Is(err, ErrDeviceNotFound) {
			return StateGone, fmt.Errorf("getting the state of %s: %w", serial, err)
		}
		return "", fmt.Errorf("getting the state of %s: %w", serial, err)
	}
	return State(strings.TrimSpace(msg)), nil
}

// Features returns the feature list the device announced (host-serial:<serial>:features).
func (s *Server) Features(ctx context.Context, serial string) (Features, error) {
	f, err := s.features(ctx, serial)
	if err != nil {
		return nil, fmt.Errorf("reading the features of %s: %w", serial, err)
	}
	return f, nil
}

// features is Features with the server's error as it is, for callers that name the device
// themselves.
func (s *Server) features(ctx context.Context, serial string) (Features, error) {
	msg, err := s.query(ctx, "host-serial:"+serial+":features")
	if err != nil {
		return nil, err
	}
	return ParseFeatures(msg), nil
}

// HostFeatures returns the features of the adb server itself (host:host-features).
func (s *Server) HostFeatures(ctx context.Context) (Features, error) {
	msg, err := s.query(ctx, "host:host-features")
	if err != nil {
		return nil, fmt.Errorf("reading the adb server's features: %w", err)
	}
	return ParseFeatures(msg), nil
}

// ConnectResult says what the server did with a host:connect request.
type ConnectResult struct {
	Serial           string // the serial the device is known by (the address as given)
	AlreadyConnected bool
	Message          string // the server's text, verbatim
}

// Connect asks the server to attach the adbd at addr ("host[:port]", port 5555 by default). The
// server answers OKAY even when connecting fails, so the reply text is interpreted: "connected to"
// and "already connected to" succeed, "failed to authenticate" matches ErrUnauthorized, anything
// else ("failed to connect", "cannot connect", "failed to resolve host") is an error carrying the
// server's words. "failed to authenticate" is not final: the device stays attached while it asks
// its user about this host's key, and turns "device" once accepted. A connected device may also be
// "offline" or "authorizing" for a moment. In every case, WaitFor says when it is usable.
func (s *Server) Connect(ctx context.Context, addr string) (ConnectResult, error) {
	msg, err := s.query(ctx, "host:connect:"+addr)
	if err != nil {
		return ConnectResult{}, fmt.Errorf("connecting the adb server to %s: %w", addr, err)
	}
	return interpretConnect(addr, msg)
}

func interpretConnect(addr, msg string) (ConnectResult, error) {
	msg = strings.TrimSpace(msg)
	r := ConnectResult{Serial: addr, Message: msg}
	switch {
	case strings.HasPrefix(msg, "already connected to "):
		r.AlreadyConnected = true
		r.Serial = strings.TrimPrefix(msg, "already connected to ")
		return r, nil
	case strings.HasPrefix(msg, "connected to "):
		r.Serial = strings.TrimPrefix(msg, "connected to ")
		return r, nil
	case strings.Contains(msg, "failed to authenticate"):
		return r, fmt.Errorf("connecting the adb server to %s: %s: %w", addr, msg, ErrUnauthorized)
	case msg == "failed to connect to "+addr:
		// No reason given: the TCP connection was made but adbd never completed the handshake.
		// The server keeps the device listed as offline and retries.
		return r, fmt.Errorf("connecting the adb server to %s: %s (it answers but does not complete the handshake): %w", addr, msg, ErrOffline)
	case strings.Contains(msg, "failed to resolve host"):
		return r, fmt.Errorf("connecting the adb server to %s: %s: %w", addr, msg, ErrDeviceNotFound)
	case msg == "":
		return r, fmt.Errorf("connecting the adb server to %s: empty reply", addr)
	}
	return r, fmt.Errorf("connecting the adb server to %s: %s", addr, msg)
}

// Disconnect detaches a TCP device from the server (host:disconnect:<addr>); an empty addr
// disconnects every TCP device. Disconnecting a device the server does not know matches
// ErrDeviceNotFound.
func (s *Server) Disconnect(ctx context.Context, addr string) error {
	msg, err := s.query(ctx, "host:disconnect:"+addr)
	if err != nil {
		return fmt.Errorf("disconnecting %s: %w", addr, err)
	}
	if m := strings.TrimSpace(msg); !strings.HasPrefix(m, "disconnected") {
		return fmt.Errorf("disconnecting %s: the adb server answered %q", addr, m)
	}
	return nil
}

// Kill asks the adb server to exit (host:kill).
func (s *Server) Kill(ctx context.Context) error {
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.send("host:kill"); err != nil {
		return err
	}
	if err := c.status("host:kill"); err != nil {
		return fmt.Errorf("stopping the adb server at %s: %w", s.addr, err)
	}
	return nil
}

// TransportID returns the server's transport id for serial (host:tport:serial:<serial>). The id
// names one attachment of the device: after the device leaves and comes back it gets a new one.
func (s *Server) TransportID(ctx context.Context, serial string) (uint64, error) {
	c, err := s.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	req := "host:tport:serial:" + serial
	if err := c.send(req); err != nil {
		return 0, err
	}
	if err := c.status(req); err != nil {
		return 0, fmt.Errorf("selecting %s: %w", serial, err)
	}
	var id [8]byte
	if _, err := io.ReadFull(c, id[:]); err != nil {
		return 0, fmt.Errorf("selecting %s: reading the transport id: %w", serial, c.fix(err))
	}
	return binary.LittleEndian.Uint64(id[:]), nil
}

// openService connects to the server, switches the connection to the device (by transport id when
// tid is non-zero, else by serial) and opens service on it. The returned connection carries the
// service's bytes both ways.
func (s *Server) openService(ctx context.Context, serial string, tid uint64, service string) (*hostConn, error) {
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	sel := "host:transport:" + serial
	if tid != 0 {
		sel = "host:transport-id:" + strconv.FormatUint(tid, 10)
	}
	if err := c.send(sel); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.status(sel); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.send(service); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.status(service); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Features is the set of protocol features a device (or server) announced: "shell_v2", "cmd",
// "stat_v2", "ls_v2", "abb_exec", ...
type Features map[string]bool

// Feature names this client acts on.
const (
	FeatureShellV2 = "shell_v2"
	FeatureCmd     = "cmd"
	FeatureStatV2  = "stat_v2"
	FeatureLsV2    = "ls_v2"
	FeatureAbb     = "abb"
	FeatureAbbExec = "abb_exec"
)

// ParseFeatures parses a comma-separated feature list.
func ParseFeatures(s string) Features {
	f := Features{}
	for _, name := range strings.Split(strings.TrimSpace(s), ",") {
		if name = strings.TrimSpace(name); name != "" {
			f[name] = true
		}
	}
	return f
}

// Has reports whether the feature was announced.
func (f Features) Has(name string) bool { return f[name] }
