package sim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/provkit/provkit/provision/adb/wire"
)

// errStreamClosed is returned by stream reads and writes after either side closed it.
var errStreamClosed = errors.New("stream closed")

// maxQueuedWrites bounds the WRTE payloads queued on one stream before the peer is considered to
// ignore flow control.
const maxQueuedWrites = 8

// transport is one adb host connection to a simulated adbd.
type transport struct {
	dev  *Device
	conn net.Conn
	r    *wire.Reader

	wmu        sync.Mutex
	w          *bufio.Writer
	version    uint32
	maxPayload uint32

	mu      sync.Mutex
	streams map[uint32]*stream
	nextID  uint32
	done    chan struct{}
	once    sync.Once
}

func (t *transport) send(p wire.Packet) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if err := wire.WritePacket(t.w, p, t.version); err != nil {
		return err
	}
	return t.w.Flush()
}

func (t *transport) close() {
	t.once.Do(func() {
		close(t.done)
		t.conn.Close()
		t.mu.Lock()
		for _, s := range t.streams {
			s.peerClosed()
		}
		t.mu.Unlock()
	})
}

// serve runs the handshake, then dispatches packets until the connection ends.
func (t *transport) serve(ctx context.Context) {
	defer t.close()
	t.r = wire.NewReader(t.conn)
	t.w = bufio.NewWriterSize(t.conn, 64*1024)
	t.version = wire.VersionMin
	t.streams = map[uint32]*stream{}
	t.done = make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			t.close()
		case <-t.done:
		}
	}()
	if !t.handshake() {
		return
	}
	for {
		p, err := t.r.ReadPacket()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.dev.logf("adb transport: %v", err)
			}
			return
		}
		switch p.Command {
		case wire.CmdOPEN:
			t.open(ctx, p)
		case wire.CmdOKAY:
			if s := t.stream(p.Arg1); s != nil {
				s.acked()
			}
		case wire.CmdWRTE:
			s := t.stream(p.Arg1)
			if s == nil {
				_ = t.send(wire.Packet{Command: wire.CmdCLSE, Arg1: p.Arg0})
				continue
			}
			if !s.push(p.Payload) {
				t.dev.logf("adb transport: peer ignored flow control on stream %d", s.local)
				return
			}
		case wire.CmdCLSE:
			if s := t.stream(p.Arg1); s != nil {
				s.peerClosed()
				t.forget(s.local)
			}
		case wire.CmdCNXN:
			// A host that reconnects on the same socket: answer again.
			_ = t.send(wire.Packet{Command: wire.CmdCNXN, Arg0: t.version, Arg1: t.maxPayload, Payload: []byte(t.dev.banner())})
		}
	}
}

// handshake reads the host's CNXN, runs AUTH and answers CNXN. It returns false when the
// connection must end (or, for an offline device, once the host gives up).
func (t *transport) handshake() bool {
	p, err := t.r.ReadPacket()
	if err != nil || p.Command != wire.CmdCNXN {
		t.dev.logf("adb handshake: no CNXN from the host: %v %v", p.Command, err)
		return false
	}
	t.version, t.maxPayload = wire.Negotiate(wire.Version, wire.MaxPayload, p.Arg0, p.Arg1)
	if t.maxPayload < 256 {
		t.maxPayload = 256
	}
	if t.dev.cfg.Faults.Offline {
		// The device never finishes connecting: the host shows it as offline.
		_, _ = io.Copy(io.Discard, t.conn)
		return false
	}
	mode := t.dev.cfg.Auth.Mode
	if mode == AuthNone {
		t.r.Version = t.version
		return t.send(wire.Packet{Command: wire.CmdCNXN, Arg0: t.version, Arg1: t.maxPayload, Payload: []byte(t.dev.banner())}) == nil
	}
	token, err := wire.NewToken()
	if err != nil {
		return false
	}
	if t.send(wire.Packet{Command: wire.CmdAUTH, Arg0: wire.AuthToken, Payload: token}) != nil {
		return false
	}
	for {
		p, err := t.r.ReadPacket()
		if err != nil {
			return false
		}
		if p.Command != wire.CmdAUTH {
			continue
		}
		switch p.Arg0 {
		case wire.AuthSignature:
			if t.dev.verifyAuth(token, p.Payload) {
				t.r.Version = t.version
				return t.send(wire.Packet{Command: wire.CmdCNXN, Arg0: t.version, Arg1: t.maxPayload, Payload: []byte(t.dev.banner())}) == nil
			}
			if token, err = wire.NewToken(); err != nil {
				return false
			}
			if t.send(wire.Packet{Command: wire.CmdAUTH, Arg0: wire.AuthToken, Payload: token}) != nil {
				return false
			}
		case wire.AuthRSAPublicKey:
			pub, _, err := wire.ParsePublicKey(string(p.Payload))
			if err != nil {
				t.dev.logf("adb auth: %v", err)
				continue
			}
			if t.dev.acceptKey(pub) {
				t.r.Version = t.version
				return t.send(wire.Packet{Command: wire.CmdCNXN, Arg0: t.version, Arg1: t.maxPayload, Payload: []byte(t.dev.banner())}) == nil
			}
			// Refused: like a phone whose user never taps "Allow", stay unauthorized.
		}
	}
}

func (t *transport) stream(local uint32) *stream {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.streams[local]
}

func (t *transport) forget(local uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.streams, local)
}

func (t *transport) open(ctx context.Context, p wire.Packet) {
	service := string(p.Payload)
	for len(service) > 0 && service[len(service)-1] == 0 {
		service = service[:len(service)-1]
	}
	if t.dev.dropOnService(service) {
		t.dev.logf("fault: dropping the connection on %q", service)
		t.close()
		return
	}
	h := t.dev.service(service)
	t.dev.logf("adb: open %q", strings.ReplaceAll(service, "\x00", " "))
	if h == nil {
		_ = t.send(wire.Packet{Command: wire.CmdCLSE, Arg1: p.Arg0})
		return
	}
	t.mu.Lock()
	t.nextID++
	s := &stream{t: t, local: t.nextID, remote: p.Arg0, closed: make(chan struct{}), ack: make(chan struct{}, 1)}
	s.cond = sync.NewCond(&s.mu)
	t.streams[s.local] = s
	t.mu.Unlock()
	if t.send(wire.Packet{Command: wire.CmdOKAY, Arg0: s.local, Arg1: s.remote}) != nil {
		return
	}
	// Counted in the device's WaitGroup (this connection's goroutine is, so the count is above
	// zero here): Close returns only when every service has stopped touching the device's state.
	t.dev.wg.Add(1)
	go func() {
		defer t.dev.wg.Done()
		defer s.Close()
		h(ctx, s)
	}()
}

// stream is one adb stream as seen by a service: an io.ReadWriteCloser with adb flow control.
type stream struct {
	t             *transport
	local, remote uint32

	mu       sync.Mutex
	cond     *sync.Cond
	queue    [][]byte
	cur      []byte
	eof      bool
	closed   chan struct{}
	closeOne sync.Once
	sentCLSE bool
	ack      chan struct{}
}

// push queues a WRTE payload; false when the peer overran the queue.
func (s *stream) push(b []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eof {
		return true
	}
	if len(s.queue) >= maxQueuedWrites {
		return false
	}
	s.queue = append(s.queue, b)
	s.cond.Broadcast()
	return true
}

func (s *stream) acked() {
	select {
	case s.ack <- struct{}{}:
	default:
	}
}

func (s *stream) peerClosed() {
	s.mu.Lock()
	s.eof = true
	s.sentCLSE = true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.closeOne.Do(func() { close(s.closed) })
}

// Read returns stream data; it acknowledges each WRTE once its payload has been consumed, which is
// what throttles the host.
func (s *stream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.cur) == 0 {
		if len(s.queue) > 0 {
			s.cur, s.queue = s.queue[0], s.queue[1:]
			if len(s.cur) == 0 {
				s.mu.Unlock()
				_ = s.t.send(wire.Packet{Command: wire.CmdOKAY, Arg0: s.local, Arg1: s.remote})
				s.mu.Lock()
			}
			continue
		}
		if s.eof {
			return 0, io.EOF
		}
		s.cond.Wait()
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	if len(s.cur) == 0 {
		s.mu.Unlock()
		err := s.t.send(wire.Packet{Command: wire.CmdOKAY, Arg0: s.local, Arg1: s.remote})
		s.mu.Lock()
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Write sends p in WRTE packets of at most the negotiated max payload, waiting for the host's OKAY
// after each.
func (s *stream) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), int(s.t.maxPayload))
		select {
		case <-s.closed:
			return written, errStreamClosed
		default:
		}
		if err := s.t.send(wire.Packet{Command: wire.CmdWRTE, Arg0: s.local, Arg1: s.remote, Payload: p[:n]}); err != nil {
			return written, err
		}
		select {
		case <-s.ack:
		case <-s.closed:
			return written, errStreamClosed
		case <-s.t.done:
			return written, errStreamClosed
		case <-time.After(2 * time.Minute):
			return written, fmt.Errorf("adb stream %d: no OKAY from the host for 2 minutes", s.local)
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// Close sends CLSE once and ends the stream.
func (s *stream) Close() error {
	s.mu.Lock()
	send := !s.sentCLSE
	s.sentCLSE = true
	s.eof = true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.closeOne.Do(func() { close(s.closed) })
	if send {
		s.t.forget(s.local)
		return s.t.send(wire.Packet{Command: wire.CmdCLSE, Arg0: s.local, Arg1: s.remote})
	}
	return nil
}

// buffered returns a writer that gathers output into WRTEs of the negotiated max payload; the
// caller flushes it when the command is done.
func (s *stream) buffered() *bufio.Writer { return bufio.NewWriterSize(s, int(s.t.maxPayload)) }

var _ io.ReadWriteCloser = (*stream)(nil)
