package adb

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
)

// Stream is one open device service: its output is read, its input written, Close ends it. The
// adb transport has no half-close: a service cannot be told "end of input" except by a protocol of
// its own (shell v2's close-stdin packet, a size given up front). The context given to
// Transport.Open bounds the stream's whole life: when it ends, reads and writes fail with the
// context's error.
type Stream interface {
	io.Reader
	io.Writer
	Close() error
}

// Transport opens services on one device: through the adb server (Server.Transport) or over a
// direct connection to adbd (Dial). Implementations are safe for concurrent use.
type Transport interface {
	// Serial names the device in errors and reports.
	Serial() string
	// Open opens service (e.g. "shell,v2,raw:id") on the device.
	Open(ctx context.Context, service string) (Stream, error)
	// Features returns the features the device announced.
	Features(ctx context.Context) (Features, error)
	// State returns the device's connection state now, StateGone if it is no longer attached.
	State(ctx context.Context) (State, error)
}

// ServerTransport reaches one device through the adb server.
type ServerTransport struct {
	srv    *Server
	serial string
	tid    uint64 // non-zero: pinned to this attachment of the device

	mu       sync.Mutex
	features Features
}

// Transport returns a Transport to the device serial through this server. Nothing is sent until
// the first call.
func (s *Server) Transport(serial string) *ServerTransport {
	return &ServerTransport{srv: s, serial: serial}
}

// PinnedTransport returns a Transport to the device's current attachment: services are opened by
// the transport id the server gives the device now, so a device that leaves and comes back
// (reboot, replug, reconnect) is reported gone (ErrDeviceNotFound) instead of being talked to
// again as if nothing had happened. A check that must see one boot of a device uses it.
func (s *Server) PinnedTransport(ctx context.Context, serial string) (*ServerTransport, error) {
	tid, err := s.TransportID(ctx, serial)
	if err != nil {
		return nil, err
	}
	return &ServerTransport{srv: s, serial: serial, tid: tid}, nil
}

// Device returns a Device for serial through this server.
func (s *Server) Device(serial string) *Device { return NewDevice(s.Transport(serial)) }

// Serial returns the device's serial.
func (t *ServerTransport) Serial() string { return t.serial }

// Open switches a new server connection to the device and opens service on it.
func (t *ServerTransport) Open(ctx context.Context, service string) (Stream, error) {
	c, err := t.srv.openService(ctx, t.serial, t.tid, service)
	if err != nil {
		return nil, err
	}
	return &serverStream{hostConn: c}, nil
}

// Features returns the device's features (asked once, then cached).
func (t *ServerTransport) Features(ctx context.Context) (Features, error) {
	t.mu.Lock()
	f := t.features
	t.mu.Unlock()
	if f != nil {
		return f, nil
	}
	f, err := t.srv.features(ctx, t.serial) // Device names the serial in its error
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.features = f
	t.mu.Unlock()
	return f, nil
}

// TransportID returns the transport id the transport is pinned to (0: not pinned).
func (t *ServerTransport) TransportID() uint64 { return t.tid }

// State asks the server for the device's state. A pinned transport whose attachment has ended is
// StateGone even if the device is back under a new transport id.
func (t *ServerTransport) State(ctx context.Context) (State, error) {
	if t.tid == 0 {
		return t.srv.State(ctx, t.serial)
	}
	info, err := t.srv.DeviceInfo(ctx, t.serial)
	if err != nil {
		if errors.Is(err, ErrDeviceNotFound) {
			return StateGone, nil
		}
		return "", err
	}
	if info.TransportID != t.tid {
		return StateGone, nil
	}
	return info.State, nil
}

// serverStream is a service stream carried by an adb server connection.
type serverStream struct {
	*hostConn
}

func (s *serverStream) Read(p []byte) (int, error) {
	n, err := s.hostConn.Conn.Read(p)
	if err != nil && err != io.EOF {
		err = s.fix(err)
	}
	return n, err
}

func (s *serverStream) Write(p []byte) (int, error) {
	n, err := s.hostConn.Conn.Write(p)
	return n, s.fix(err)
}

var _ net.Conn = (*hostConn)(nil)

// Quote returns args as one POSIX shell command line, each argument single-quoted when it holds
// anything but safe characters, so that device shells see exactly these arguments.
func Quote(args ...string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(quoteArg(a))
	}
	return b.String()
}

func quoteArg(a string) string {
	if a == "" {
		return "''"
	}
	safe := true
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-./=:,+@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}
