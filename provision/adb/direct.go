package adb

import (
	"bufio"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/provkit/provkit/provision/adb/wire"
)

// hostFeatures are the features this client announces in its CNXN banner: the ones it implements.
// delayed_ack is not among them, so every stream keeps one unacknowledged WRTE per direction.
var hostFeatures = []string{
	wire.FeatureShell2, wire.FeatureCmd, wire.FeatureStat2, wire.FeatureLs2,
	wire.FeatureFixedPushMkdir, wire.FeatureAbb, wire.FeatureAbbExec, wire.FeatureFixedPushSymlinkTime,
}

// DialOptions configure a direct connection to adbd.
type DialOptions struct {
	// Keys are tried in order to answer AUTH; the first one's public key is offered when none is
	// accepted. Nil: the user key (LoadOrCreateKey(AndroidDir())) and ADB_VENDOR_KEYS.
	Keys []*rsa.PrivateKey
	// AuthWait bounds how long to wait, after offering the public key, for someone to accept it on
	// the device (default 10s; the context's deadline still applies). Past it: ErrUnauthorized.
	AuthWait time.Duration
	// MaxPayload is the largest packet payload announced (default 1 MiB).
	MaxPayload uint32
	// Serial names the device in errors (default: the address).
	Serial string
}

// Conn is a direct connection to one adbd over TCP, without an adb server. Many streams are
// multiplexed on it; one reader goroutine dispatches packets to them by local id. It implements
// Transport and is safe for concurrent use. When the connection drops, every open stream fails with
// an error naming the device; none hangs.
type Conn struct {
	addr, serial string
	nc           net.Conn
	banner       wire.Banner
	features     Features
	version      uint32
	maxPayload   uint32 // for what we send
	r            *wire.Reader

	wmu  sync.Mutex       // serialises whole packets on nc
	ctrl chan wire.Packet // OKAY/CLSE from the reader goroutine, written by ctrlLoop

	mu      sync.Mutex
	streams map[uint32]*directStream
	nextID  uint32
	err     error // why the connection ended; nil while it is up
	done    chan struct{}
}

// Dial connects to adbd at addr ("host:port"), authenticates with this host's RSA key and
// returns the connection. A device that does not accept the key within AuthWait fails with an
// error matching ErrUnauthorized.
func Dial(ctx context.Context, addr string, opts *DialOptions) (*Conn, error) {
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	serial := o.Serial
	if serial == "" {
		serial = addr
	}
	fail := func(st State, err error) error {
		return &DeviceError{Op: "connecting directly to adbd", Serial: serial, State: st, Err: err}
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = wire.MaxPayload
	}
	if o.AuthWait <= 0 {
		o.AuthWait = 10 * time.Second
	}
	if o.Keys == nil {
		dir, err := AndroidDir()
		if err != nil {
			return nil, fail("", err)
		}
		k, _, err := LoadOrCreateKey(dir)
		if err != nil {
			return nil, fail("", err)
		}
		o.Keys = []*rsa.PrivateKey{k}
		vk, _ := VendorKeys() // unreadable vendor keys are not fatal: the user key may do
		o.Keys = append(o.Keys, vk...)
	}
	if len(o.Keys) == 0 {
		return nil, fail("", errors.New("no RSA key to authenticate with"))
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fail("", ctx.Err())
		}
		return nil, fail(StateGone, err) // matches ErrDeviceNotFound by its state
	}
	return newConn(ctx, nc, addr, serial, &o)
}

// newConn runs the handshake on an established byte stream and starts the reader.
func newConn(ctx context.Context, nc net.Conn, addr, serial string, o *DialOptions) (*Conn, error) {
	fail := func(st State, err error) error {
		return &DeviceError{Op: "connecting directly to adbd", Serial: serial, State: st, Err: err}
	}
	c := &Conn{addr: addr, serial: serial, nc: nc, streams: map[uint32]*directStream{}, nextID: 1, done: make(chan struct{}),
		ctrl: make(chan wire.Packet, 1024)}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	st, r, err := c.handshake(ctx, o)
	if !stop() {
		nc.Close()
		// The states match ErrUnauthorized and ErrOffline (DeviceError.Is): the causes need not say so.
		if st == StateUnauthorized {
			return nil, fail(st, fmt.Errorf("the device did not accept this host's key in time: %w", ctx.Err()))
		}
		if st == StateOffline || st == StateConnecting {
			return nil, fail(StateOffline, fmt.Errorf("no answer to CNXN: %w", ctx.Err()))
		}
		return nil, fail(st, ctx.Err())
	}
	if err != nil {
		nc.Close()
		return nil, fail(st, err)
	}
	nc.SetDeadline(time.Time{})
	go c.readLoop(r)
	go c.ctrlLoop()
	return c, nil
}

// handshake exchanges CNXN and AUTH. It returns the state reached (for errors) and the packet
// reader, positioned after the device's CNXN.
func (c *Conn) handshake(ctx context.Context, o *DialOptions) (State, *wire.Reader, error) {
	st, err := c.exchange(ctx, o)
	return st, c.r, err
}

func (c *Conn) exchange(ctx context.Context, o *DialOptions) (State, error) {
	hello := wire.Banner{SystemType: "host", Features: hostFeatures}
	// Before CNXN is exchanged the checksum is always sent: an old adbd checks it.
	if err := c.write(wire.Packet{Command: wire.CmdCNXN, Arg0: wire.Version, Arg1: o.MaxPayload, Payload: []byte(hello.String())}, wire.VersionMin); err != nil {
		return StateOffline, err
	}
	r := wire.NewReader(bufio.NewReaderSize(c.nc, 256<<10))
	r.MaxPayload = max(o.MaxPayload, wire.MaxPayload)
	// Like adb itself, never verify payload checksums: adbd stops sending them as soon as it has
	// read our CNXN (even in its AUTH packets), and TCP already guards the bytes.
	r.Version = wire.VersionSkipChecksum
	c.r = r
	keyIdx, sentPub := 0, false
	state := StateConnecting
	for {
		p, err := r.ReadPacket()
		if err != nil {
			if state == StateUnauthorized || state == StateAuthorizing {
				if ctx.Err() == nil && isTimeout(err) {
					return StateUnauthorized, fmt.Errorf("the device did not accept this host's key within %v", o.AuthWait)
				}
			}
			// Only once the public key is offered can a close mean the key was not accepted: adbd
			// answers a signature it rejects with a new token, so a close before that is a device
			// that went away.
			if state == StateUnauthorized && ctx.Err() == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
				return StateUnauthorized, errors.New("the device closed the connection without accepting this host's key")
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return StateOffline, fmt.Errorf("%w: adbd closed the connection during the handshake", ErrClosed)
			}
			return StateOffline, fmt.Errorf("reading the handshake: %w", err)
		}
		switch p.Command {
		case wire.CmdCNXN:
			b, err := wire.ParseBanner(string(p.Payload))
			if err != nil {
				return StateOffline, err
			}
			if p.Arg1 == 0 {
				return StateOffline, fmt.Errorf("device announced a max payload of 0")
			}
			c.banner = b
			c.features = Features{}
			for _, f := range b.Features {
				c.features[f] = true
			}
			c.version, c.maxPayload = wire.Negotiate(wire.Version, o.MaxPayload, p.Arg0, p.Arg1)
			if c.version < wire.VersionMin {
				return StateOffline, fmt.Errorf("device speaks protocol version %#x, older than %#x", p.Arg0, wire.VersionMin)
			}
			return stateOfBanner(b.SystemType), nil
		case wire.CmdAUTH:
			if p.Arg0 != wire.AuthToken {
				continue
			}
			state = StateAuthorizing
			if keyIdx < len(o.Keys) {
				sig, err := wire.SignToken(o.Keys[keyIdx], p.Payload)
				keyIdx++
				if err != nil {
					return state, err
				}
				if err := c.write(wire.Packet{Command: wire.CmdAUTH, Arg0: wire.AuthSignature, Payload: sig}, wire.VersionMin); err != nil {
					return state, err
				}
				continue
			}
			if sentPub {
				return StateUnauthorized, errors.New("the device refused this host's key")
			}
			pub, err := PublicKeyText(o.Keys[0])
			if err != nil {
				return state, err
			}
			if err := c.write(wire.Packet{Command: wire.CmdAUTH, Arg0: wire.AuthRSAPublicKey, Payload: append([]byte(pub), 0)}, wire.VersionMin); err != nil {
				return state, err
			}
			sentPub = true
			state = StateUnauthorized
			// Wait for a person to accept the key, but not forever.
			if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > o.AuthWait {
				c.nc.SetReadDeadline(time.Now().Add(o.AuthWait))
			}
		case wire.CmdSTLS:
			return StateUnauthorized, fmt.Errorf("%w: the device requires TLS (wireless debugging pairing), which provkit's direct transport does not speak; use the adb server", ErrNotSupported)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func stateOfBanner(systemType string) State {
	switch systemType {
	case "device":
		return StateDevice
	case "recovery":
		return StateRecovery
	case "sideload":
		return StateSideload
	case "rescue":
		return StateRescue
	case "bootloader":
		return StateBootloader
	}
	return StateUnknown
}

// write sends one packet; packets from concurrent goroutines never interleave.
func (c *Conn) write(p wire.Packet, version uint32) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return wire.WritePacket(c.nc, p, version)
}

// send writes a packet under the negotiated version; a failure ends the connection.
func (c *Conn) send(p wire.Packet) error {
	if err := c.write(p, c.version); err != nil {
		c.shutdown(fmt.Errorf("%w: writing: %v", ErrClosed, err))
		return c.Err()
	}
	return nil
}

// Serial returns the name the device goes by (the address unless DialOptions.Serial was set).
func (c *Conn) Serial() string { return c.serial }

// Banner returns the identity adbd announced.
func (c *Conn) Banner() wire.Banner { return c.banner }

// Features returns the features adbd announced.
func (c *Conn) Features(context.Context) (Features, error) { return c.features, nil }

// MaxPayload returns the negotiated max payload.
func (c *Conn) MaxPayload() uint32 { return c.maxPayload }

// State returns the device's state from its banner, or StateGone once the connection has ended.
func (c *Conn) State(context.Context) (State, error) {
	if c.Err() != nil {
		return StateGone, nil
	}
	return stateOfBanner(c.banner.SystemType), nil
}

// Info describes the device as a devices -l line would: serial, state and the banner's product,
// model and device.
func (c *Conn) Info() DeviceInfo {
	st, _ := c.State(context.Background())
	d := DeviceInfo{Serial: c.serial, State: st}
	d.Product, _ = c.banner.Prop("ro.product.name")
	d.Model, _ = c.banner.Prop("ro.product.model")
	d.Device, _ = c.banner.Prop("ro.product.device")
	return d
}

// Device returns a Device working over this connection.
func (c *Conn) Device() *Device { return NewDevice(c) }

// Done is closed when the connection ends.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, nil while it is up.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection and every stream on it.
func (c *Conn) Close() error {
	c.shutdown(fmt.Errorf("%w by the client", ErrClosed))
	return nil
}

// shutdown ends the connection once, failing every stream with err.
func (c *Conn) shutdown(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	streams := c.streams
	c.streams = map[uint32]*directStream{}
	c.mu.Unlock()
	c.nc.Close()
	for _, s := range streams {
		s.fail(err)
	}
	close(c.done)
}

// sendCtrl queues a small control packet for ctrlLoop, so that the reader goroutine never blocks
// on a socket write (a device busy writing to us may not be reading).
func (c *Conn) sendCtrl(p wire.Packet) {
	select {
	case c.ctrl <- p:
	case <-c.done:
	}
}

func (c *Conn) ctrlLoop() {
	for {
		select {
		case p := <-c.ctrl:
			if c.send(p) != nil {
				return
			}
		case <-c.done:
			return
		}
	}
}

func (c *Conn) readLoop(r *wire.Reader) {
	for {
		p, err := r.ReadPacket()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
				c.shutdown(fmt.Errorf("%w by the device (%v)", ErrClosed, err))
			} else {
				c.shutdown(fmt.Errorf("%w: %v", ErrClosed, err))
			}
			return
		}
		switch p.Command {
		case wire.CmdOKAY:
			if s := c.stream(p.Arg1); s != nil {
				s.okay(p.Arg0)
			} else if p.Arg0 != 0 {
				// An answer to an OPEN we gave up on: close the device's end.
				c.sendCtrl(wire.Packet{Command: wire.CmdCLSE, Arg0: p.Arg1, Arg1: p.Arg0})
			}
		case wire.CmdWRTE:
			s := c.stream(p.Arg1)
			if s == nil {
				c.sendCtrl(wire.Packet{Command: wire.CmdCLSE, Arg0: p.Arg1, Arg1: p.Arg0})
				continue
			}
			if !s.data(p.Payload) {
				c.shutdown(fmt.Errorf("%w: the device broke flow control on stream %d (too many unacknowledged writes)", ErrClosed, p.Arg1))
				return
			}
		case wire.CmdCLSE:
			if s := c.stream(p.Arg1); s != nil {
				s.closedByDevice()
				c.forget(s.local)
			}
		case wire.CmdOPEN:
			// The device opening a stream to us (reverse forwarding): not offered.
			c.sendCtrl(wire.Packet{Command: wire.CmdCLSE, Arg0: 0, Arg1: p.Arg0})
		case wire.CmdCNXN:
			c.shutdown(fmt.Errorf("%w: the device restarted its adb daemon (new CNXN)", ErrClosed))
			return
		}
	}
}

func (c *Conn) stream(local uint32) *directStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[local]
}

func (c *Conn) forget(local uint32) {
	c.mu.Lock()
	delete(c.streams, local)
	c.mu.Unlock()
}

// Open opens service on the device. ctx bounds the stream's whole life.
func (c *Conn) Open(ctx context.Context, service string) (Stream, error) {
	if len(service)+1 > int(c.maxPayload) {
		return nil, fmt.Errorf("opening %.40q on %s: service name longer than the max payload %d", service, c.serial, c.maxPayload)
	}
	s := &directStream{c: c, service: service, opened: make(chan struct{}), wake: make(chan struct{}, 1), acked: make(chan struct{}, 1)}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	for c.streams[c.nextID] != nil || c.nextID == 0 {
		c.nextID++
	}
	s.local = c.nextID
	c.nextID++
	c.streams[s.local] = s
	c.mu.Unlock()

	if err := c.send(wire.Packet{Command: wire.CmdOPEN, Arg0: s.local, Payload: append([]byte(service), 0)}); err != nil {
		return nil, err
	}
	select {
	case <-s.opened:
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
	s.mu.Lock()
	err, accepted := s.err, s.accepted
	s.mu.Unlock()
	if !accepted {
		return nil, err
	}
	// Accepted, even if it has ended since: reads return what arrived, then the error.
	s.stop = context.AfterFunc(ctx, func() { s.abort(ctx.Err()) })
	return s, nil
}

// directStream is one stream on a direct connection.
type directStream struct {
	c       *Conn
	service string
	local   uint32
	stop    func() bool

	opened chan struct{} // closed when the OPEN is answered (OKAY or CLSE) or the conn ends
	wake   chan struct{} // signalled when data arrives or the stream ends
	acked  chan struct{} // signalled by the OKAY that acknowledges our WRTE

	wmu sync.Mutex // one Write at a time

	mu          sync.Mutex
	remote      uint32
	isOpen      bool
	accepted    bool     // the device answered the OPEN with OKAY
	queue       [][]byte // received, not yet taken by Read
	owed        bool     // the last WRTE is not acknowledged yet (the window was full)
	acks        uint64   // OKAYs received for our WRTEs
	cur         []byte   // being read
	rclosed     bool
	localClosed bool
	err         error // terminal error for reads after the queue drains, and for writes
}

func (s *directStream) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// okay handles an OKAY: the answer to our OPEN, or the acknowledgement of our WRTE.
func (s *directStream) okay(remote uint32) {
	s.mu.Lock()
	if !s.isOpen {
		s.isOpen = true
		s.accepted = true
		s.remote = remote
		s.mu.Unlock()
		close(s.opened)
		return
	}
	s.acks++
	s.mu.Unlock()
	s.signal(s.acked)
}

// recvWindow is how many received WRTEs a stream holds before it stops acknowledging them: the
// device keeps one WRTE in flight, and we acknowledge it at once while fewer than recvWindow
// wait to be read (as the adb server does by buffering in its socket), so a reader that pauses
// costs at most recvWindow packets of memory.
const recvWindow = 4

// data queues a WRTE's payload and acknowledges it when the window allows; false when the device
// sent more than flow control allows.
func (s *directStream) data(p []byte) bool {
	s.mu.Lock()
	if s.localClosed {
		s.mu.Unlock()
		return true
	}
	if len(s.queue) > recvWindow || s.owed {
		// A WRTE before we acknowledged the previous one.
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, p)
	ack := len(s.queue) < recvWindow
	s.owed = !ack
	remote := s.remote
	s.mu.Unlock()
	if ack {
		s.c.sendCtrl(wire.Packet{Command: wire.CmdOKAY, Arg0: s.local, Arg1: remote})
	}
	s.signal(s.wake)
	return true
}

func (s *directStream) closedByDevice() {
	s.mu.Lock()
	wasOpen := s.isOpen
	s.rclosed = true
	if !wasOpen {
		s.isOpen = true
		s.err = &FailError{Request: s.service, Message: "the device closed the stream without opening it"}
	}
	s.mu.Unlock()
	if !wasOpen {
		close(s.opened)
	}
	s.signal(s.wake)
	s.signal(s.acked)
}

// fail ends the stream because the connection ended.
func (s *directStream) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	wasOpen := s.isOpen
	s.isOpen = true
	s.rclosed = true
	s.mu.Unlock()
	if !wasOpen {
		close(s.opened)
	}
	s.signal(s.wake)
	s.signal(s.acked)
}

// abort ends the stream because its context ended.
func (s *directStream) abort(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.Close()
}

func (s *directStream) Read(p []byte) (int, error) {
	for {
		s.mu.Lock()
		if len(s.cur) == 0 && len(s.queue) > 0 {
			s.cur = s.queue[0]
			s.queue = s.queue[1:]
			ack := s.owed && !s.rclosed && !s.localClosed
			s.owed = s.owed && !ack
			remote := s.remote
			s.mu.Unlock()
			if ack {
				// Room in the window again: let the device send the next WRTE.
				if err := s.c.send(wire.Packet{Command: wire.CmdOKAY, Arg0: s.local, Arg1: remote}); err != nil {
					return 0, err
				}
			}
			continue
		}
		if len(s.cur) > 0 {
			n := copy(p, s.cur)
			s.cur = s.cur[n:]
			s.mu.Unlock()
			return n, nil
		}
		if s.localClosed {
			err := s.err
			s.mu.Unlock()
			if err == nil {
				err = fmt.Errorf("%w: stream %q closed by this client", ErrClosed, s.service)
			}
			return 0, err
		}
		if s.rclosed {
			err := s.err
			s.mu.Unlock()
			if err == nil {
				return 0, io.EOF
			}
			return 0, err
		}
		s.mu.Unlock()
		<-s.wake
	}
}

func (s *directStream) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		s.mu.Lock()
		if err := s.writeErr(); err != nil {
			s.mu.Unlock()
			return written, err
		}
		remote, want := s.remote, s.acks+1
		s.mu.Unlock()
		n := min(len(p), int(s.c.maxPayload))
		if err := s.c.send(wire.Packet{Command: wire.CmdWRTE, Arg0: s.local, Arg1: remote, Payload: p[:n]}); err != nil {
			return written, err
		}
		// Wait for this WRTE's OKAY. A close that comes after the OKAY does not undo the write.
		for {
			s.mu.Lock()
			if s.acks >= want {
				s.mu.Unlock()
				break
			}
			err := s.writeErr()
			s.mu.Unlock()
			if err != nil {
				// Closed before the acknowledgement: the data may or may not have been taken.
				return written, err
			}
			<-s.acked
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// writeErr says why writing is impossible, nil when it is possible; s.mu held.
func (s *directStream) writeErr() error {
	switch {
	case s.err != nil:
		return s.err
	case s.localClosed:
		return fmt.Errorf("%w: stream %q closed by this client", ErrClosed, s.service)
	case s.rclosed:
		return fmt.Errorf("%w: stream %q closed by the device", ErrClosed, s.service)
	}
	return nil
}

func (s *directStream) Close() error {
	s.mu.Lock()
	if s.localClosed {
		s.mu.Unlock()
		return nil
	}
	s.localClosed = true
	remote, tellDevice := s.remote, s.isOpen && !s.rclosed
	wasOpen := s.isOpen
	s.isOpen = true
	s.queue, s.cur = nil, nil
	s.mu.Unlock()
	if s.stop != nil {
		s.stop()
	}
	if !wasOpen {
		close(s.opened)
	}
	s.c.forget(s.local)
	s.signal(s.wake)
	s.signal(s.acked)
	if tellDevice && s.c.Err() == nil {
		s.c.send(wire.Packet{Command: wire.CmdCLSE, Arg0: s.local, Arg1: remote})
	}
	return nil
}

var _ Transport = (*Conn)(nil)

// String describes the connection for logs.
func (c *Conn) String() string {
	return fmt.Sprintf("adbd %s (%s, %s)", c.serial, c.banner.SystemType, strings.Join(c.banner.Features, ","))
}
