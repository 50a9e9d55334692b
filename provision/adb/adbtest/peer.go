package adbtest

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provkit/provkit/provision/adb/wire"
)

// PeerOptions configure a Peer.
type PeerOptions struct {
	// AcceptKeys are the host keys the peer trusts; nil means no authentication at all.
	AcceptKeys []*rsa.PublicKey
	// Features announced in the banner (default: shell_v2, cmd, stat_v2, ls_v2, abb_exec,
	// fixed_push_mkdir).
	Features []string
	// MaxPayload announced in CNXN (default 256 KiB).
	MaxPayload uint32
	// Props answered by the shell's getprop (ro.product.model etc. also go into the banner).
	Props map[string]string
	// DropAfter closes the connection once this many bytes of stream data have been sent to the
	// host (0: never).
	DropAfter int64
	// Delay is slept before each packet the peer sends (a slow link).
	Delay time.Duration
	// Silent: accept TCP connections but never answer (a device that stays offline).
	Silent bool
	// Greedy: send WRTEs without waiting for OKAY (a peer that ignores flow control).
	Greedy bool
	// Prelude is shell code run before every command (after the built-in getprop and pm), e.g.
	// a dumpsys function for a hostile device.
	Prelude string
}

// Peer is a minimal adbd for tests, on 127.0.0.1: it runs shell and exec commands with the host's
// /bin/sh in a private directory, serves sync: from that directory, and answers installs. It is no
// simulator of Android (provision/sim is): it exists to exercise the transport, authentication and
// fault paths of provkit's client against a peer a test controls, and it is also driven by the real
// adb server ('adb connect').
type Peer struct {
	Addr string
	Root string // the directory device paths are served from ("/sdcard/a" is Root/sdcard/a)

	opts PeerOptions
	ln   net.Listener
	wg   sync.WaitGroup

	mu        sync.Mutex
	conns     []net.Conn
	Installed [][]byte // APKs received by install services, in order
	// PubKeysOffered counts AUTH RSAPUBLICKEY packets received.
	PubKeysOffered atomic.Int32
}

// StartPeer starts a Peer and registers its shutdown with t.Cleanup.
func StartPeer(t testing.TB, opts PeerOptions) *Peer {
	t.Helper()
	if opts.Features == nil {
		opts.Features = []string{wire.FeatureShell2, wire.FeatureCmd, wire.FeatureStat2, wire.FeatureLs2, wire.FeatureAbbExec, wire.FeatureFixedPushMkdir}
	}
	if opts.MaxPayload == 0 {
		opts.MaxPayload = 256 << 10
	}
	if opts.Props == nil {
		opts.Props = map[string]string{}
	}
	for k, v := range map[string]string{"ro.product.name": "peer", "ro.product.model": "Peer_Device", "ro.product.device": "peer",
		"ro.build.fingerprint": "provkit/peer/peer:14/UP1A/1:user/release-keys"} {
		if _, ok := opts.Props[k]; !ok {
			opts.Props[k] = v
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Peer{Addr: ln.Addr().String(), Root: t.TempDir(), opts: opts, ln: ln}
	for _, d := range []string{"sdcard", "data/local/tmp", "system/app"} {
		os.MkdirAll(filepath.Join(p.Root, d), 0o755)
	}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Close stops the peer and every connection, and waits for its goroutines (and shell processes).
func (p *Peer) Close() {
	p.ln.Close()
	p.DropAll()
	p.wg.Wait()
}

// DropAll closes every current connection (a cable pulled out).
func (p *Peer) DropAll() {
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
}

func (p *Peer) accept() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, nc)
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer nc.Close()
			c := &peerConn{p: p, nc: nc, streams: map[uint32]*peerStream{}, version: wire.VersionMin, max: wire.MaxPayloadV1}
			c.serve()
			c.wg.Wait()
		}()
	}
}

type peerConn struct {
	p       *Peer
	nc      net.Conn
	wmu     sync.Mutex
	version uint32
	max     uint32
	sent    int64

	mu      sync.Mutex
	streams map[uint32]*peerStream
	nextID  uint32
	wg      sync.WaitGroup
}

func (c *peerConn) send(pk wire.Packet) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.p.opts.Delay > 0 {
		time.Sleep(c.p.opts.Delay)
	}
	if pk.Command == wire.CmdWRTE && c.p.opts.DropAfter > 0 {
		c.sent += int64(len(pk.Payload))
		if c.sent > c.p.opts.DropAfter {
			c.nc.Close()
			return net.ErrClosed
		}
	}
	return wire.WritePacket(c.nc, pk, c.version)
}

func (c *peerConn) serve() {
	if c.p.opts.Silent {
		io.Copy(io.Discard, c.nc)
		return
	}
	r := wire.NewReader(c.nc)
	var token []byte
	authed := c.p.opts.AcceptKeys == nil
	for {
		pk, err := r.ReadPacket()
		if err != nil {
			c.closeAll()
			return
		}
		switch pk.Command {
		case wire.CmdCNXN:
			c.version, c.max = wire.Negotiate(wire.Version, c.p.opts.MaxPayload, pk.Arg0, pk.Arg1)
			if authed {
				c.hello(r)
				continue
			}
			token, _ = wire.NewToken()
			c.send(wire.Packet{Command: wire.CmdAUTH, Arg0: wire.AuthToken, Payload: token})
		case wire.CmdAUTH:
			switch pk.Arg0 {
			case wire.AuthSignature:
				for _, k := range c.p.opts.AcceptKeys {
					if wire.VerifyToken(k, token, pk.Payload) == nil {
						authed = true
					}
				}
				if authed {
					c.hello(r)
					continue
				}
				token, _ = wire.NewToken()
				c.send(wire.Packet{Command: wire.CmdAUTH, Arg0: wire.AuthToken, Payload: token})
			case wire.AuthRSAPublicKey:
				// Nobody is there to accept the prompt: stay unauthorized.
				c.p.PubKeysOffered.Add(1)
			}
		case wire.CmdOPEN:
			if !authed {
				continue
			}
			c.open(pk)
		case wire.CmdOKAY:
			if s := c.stream(pk.Arg1); s != nil {
				s.signal(s.acked)
			}
		case wire.CmdWRTE:
			if s := c.stream(pk.Arg1); s != nil {
				s.mu.Lock()
				s.in = append(s.in, pk.Payload)
				s.mu.Unlock()
				s.signal(s.wake)
			}
		case wire.CmdCLSE:
			if s := c.stream(pk.Arg1); s != nil {
				s.closeRemote()
			}
		}
	}
}

func (c *peerConn) hello(r *wire.Reader) {
	props := c.p.opts.Props
	b := wire.Banner{SystemType: "device", Props: []wire.Prop{
		{Key: "ro.product.name", Value: props["ro.product.name"]}, {Key: "ro.product.model", Value: props["ro.product.model"]},
		{Key: "ro.product.device", Value: props["ro.product.device"]},
	}, Features: c.p.opts.Features}
	// CNXN goes out under the old version (checksummed); afterwards the negotiated one applies.
	v := c.version
	c.version = wire.VersionMin
	c.send(wire.Packet{Command: wire.CmdCNXN, Arg0: wire.Version, Arg1: c.p.opts.MaxPayload, Payload: []byte(b.String())})
	c.version = v
	r.Version = v
}

func (c *peerConn) stream(id uint32) *peerStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[id]
}

func (c *peerConn) closeAll() {
	c.mu.Lock()
	ss := c.streams
	c.streams = map[uint32]*peerStream{}
	c.mu.Unlock()
	for _, s := range ss {
		s.closeRemote()
	}
}

func (c *peerConn) open(pk wire.Packet) {
	service := strings.TrimRight(string(pk.Payload), "\x00")
	h := c.p.handler(service)
	if h == nil {
		c.send(wire.Packet{Command: wire.CmdCLSE, Arg0: 0, Arg1: pk.Arg0})
		return
	}
	c.mu.Lock()
	c.nextID++
	s := &peerStream{c: c, local: c.nextID, remote: pk.Arg0, wake: make(chan struct{}, 1), acked: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithTimeout(context.Background(), 60*time.Second)
	c.streams[s.local] = s
	c.mu.Unlock()
	c.send(wire.Packet{Command: wire.CmdOKAY, Arg0: s.local, Arg1: s.remote})
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		h(s)
		s.Close()
	}()
}

// peerStream is the device end of one stream.
type peerStream struct {
	c             *peerConn
	local, remote uint32
	wake, acked   chan struct{}
	// ctx ends when either side closes the stream: commands running for it are killed.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	in     [][]byte
	cur    []byte
	closed bool
}

func (s *peerStream) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (s *peerStream) closeRemote() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.signal(s.wake)
	s.signal(s.acked)
}

func (s *peerStream) Read(p []byte) (int, error) {
	for {
		s.mu.Lock()
		if len(s.cur) == 0 && len(s.in) > 0 {
			s.cur, s.in = s.in[0], s.in[1:]
			s.mu.Unlock()
			s.c.send(wire.Packet{Command: wire.CmdOKAY, Arg0: s.local, Arg1: s.remote})
			continue
		}
		if len(s.cur) > 0 {
			n := copy(p, s.cur)
			s.cur = s.cur[n:]
			s.mu.Unlock()
			return n, nil
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return 0, io.EOF
		}
		select {
		case <-s.wake:
		case <-time.After(30 * time.Second):
			return 0, errors.New("peer: nothing from the host for 30s")
		}
	}
}

func (s *peerStream) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), int(s.c.max))
		if err := s.c.send(wire.Packet{Command: wire.CmdWRTE, Arg0: s.local, Arg1: s.remote, Payload: p[:k]}); err != nil {
			return n, err
		}
		if !s.c.p.opts.Greedy {
			select {
			case <-s.acked:
			case <-time.After(30 * time.Second):
				return n, errors.New("peer: no OKAY from the host for 30s")
			}
		}
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return n, io.ErrClosedPipe
		}
		n += k
		p = p[k:]
	}
	return n, nil
}

func (s *peerStream) Close() {
	s.mu.Lock()
	was := s.closed
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.c.mu.Lock()
	delete(s.c.streams, s.local)
	s.c.mu.Unlock()
	if !was {
		s.c.send(wire.Packet{Command: wire.CmdCLSE, Arg0: s.local, Arg1: s.remote})
	}
}

// handler returns the function serving service, nil when the peer does not offer it.
func (p *Peer) handler(service string) func(*peerStream) {
	if sh, ok, err := wire.ParseShellService(service); ok && err == nil {
		if sh.V2 {
			return func(s *peerStream) { p.shellV2(s, sh.Command) }
		}
		return func(s *peerStream) { p.run(s, sh.Command, s, s) }
	}
	if args, _, ok := wire.ParseAbbService(service); ok {
		return func(s *peerStream) { p.install(s, args) }
	}
	switch {
	case strings.HasPrefix(service, "exec:cmd package install"):
		return func(s *peerStream) { p.install(s, strings.Fields(strings.TrimPrefix(service, "exec:cmd "))) }
	case strings.HasPrefix(service, "exec:"):
		return func(s *peerStream) { p.run(s, strings.TrimPrefix(service, "exec:"), s, s) }
	case service == "sync:":
		return p.sync
	case strings.HasPrefix(service, "reboot:"):
		return func(s *peerStream) { p.DropAll() }
	}
	return nil
}

// shellPrelude defines getprop and pm for the host shell, from the peer's props.
func (p *Peer) shellPrelude() string {
	var b strings.Builder
	b.WriteString("getprop() { case \"$1\" in ")
	keys := make([]string, 0, len(p.opts.Props))
	for k := range p.opts.Props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s) printf '%%s\\n' '%s';; ", k, strings.ReplaceAll(p.opts.Props[k], "'", ""))
	}
	b.WriteString("'') ")
	for _, k := range keys {
		fmt.Fprintf(&b, "printf '[%%s]: [%%s]\\n' '%s' '%s'; ", k, strings.ReplaceAll(p.opts.Props[k], "'", ""))
	}
	b.WriteString(";; *) echo;; esac; }\n")
	// pm install <flags> <path>: paths are under the peer's root. rm of absolute paths likewise.
	b.WriteString("pm() { [ \"$1\" = install ] || { echo 'Error: unknown command'; return 1; }; for a; do last=$a; done; " +
		"if [ -f \"$ROOT$last\" ]; then echo Success; else echo 'Failure [INSTALL_FAILED_INVALID_URI]'; return 1; fi; }\n")
	b.WriteString("rm() { for a; do case \"$a\" in /*) command rm -f \"$ROOT$a\";; esac; done; }\n")
	if p.opts.Prelude != "" {
		b.WriteString(p.opts.Prelude + "\n")
	}
	return b.String()
}

func (p *Peer) command(ctx context.Context, cmd string) *exec.Cmd {
	c := exec.CommandContext(ctx, "/bin/sh", "-c", p.shellPrelude()+cmd)
	c.Dir = p.Root
	c.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + p.Root, "ROOT=" + p.Root}
	c.WaitDelay = 2 * time.Second
	killGroup(c)
	return c
}

// run runs cmd with stdout and stderr both going to out (exec: and legacy shell:).
func (p *Peer) run(s *peerStream, cmd string, stdin io.Reader, out io.Writer) {
	c := p.command(s.ctx, cmd)
	c.Stdout = out
	c.Stderr = out
	in, err := c.StdinPipe()
	if err != nil || c.Start() != nil {
		return
	}
	// Copy the host's input until the command exits; there is no end of input on this stream.
	go func() { io.Copy(in, stdin); in.Close() }()
	c.Wait()
}

type shellOut struct {
	s  *peerStream
	id wire.ShellID
	mu *sync.Mutex
}

func (w shellOut) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := wire.WriteShellPacket(w.s, w.id, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (p *Peer) shellV2(s *peerStream, cmd string) {
	c := p.command(s.ctx, cmd)
	var mu sync.Mutex
	c.Stdout = shellOut{s, wire.ShellStdout, &mu}
	c.Stderr = shellOut{s, wire.ShellStderr, &mu}
	stdin, err := c.StdinPipe()
	if err != nil {
		return
	}
	if err := c.Start(); err != nil {
		wire.WriteShellPacket(s, wire.ShellStderr, []byte(err.Error()))
		wire.WriteShellPacket(s, wire.ShellExit, []byte{127})
		return
	}
	go func() {
		defer stdin.Close()
		rd := wire.NewShellReader(s)
		for {
			id, data, err := rd.ReadPacket()
			if err != nil || id == wire.ShellCloseStdin {
				return
			}
			if id == wire.ShellStdin {
				if _, err := stdin.Write(data); err != nil {
					return
				}
			}
		}
	}()
	code := 0
	if err := c.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			code = 255
		}
	}
	mu.Lock()
	wire.WriteShellPacket(s, wire.ShellExit, []byte{byte(code)})
	mu.Unlock()
}

// install reads the -S sized APK and answers like the package manager: an APK starting with "BAD"
// is refused.
func (p *Peer) install(s *peerStream, args []string) {
	size := int64(-1)
	for i, a := range args {
		if a == "-S" && i+1 < len(args) {
			size, _ = strconv.ParseInt(args[i+1], 10, 64)
		}
	}
	if size < 0 {
		io.WriteString(s, "Error: -S is required\n")
		return
	}
	apk := make([]byte, size)
	if _, err := io.ReadFull(s, apk); err != nil {
		return
	}
	if bytes.HasPrefix(apk, []byte("BAD")) {
		io.WriteString(s, "Failure [INSTALL_PARSE_FAILED_NOT_APK: Failed to parse /data/app/vmdl.tmp/base.apk]\n")
		return
	}
	p.mu.Lock()
	p.Installed = append(p.Installed, apk)
	p.mu.Unlock()
	io.WriteString(s, "Success\n")
}

func (p *Peer) local(remote string) string { return filepath.Join(p.Root, filepath.Clean("/"+remote)) }

func statV2(fi fs.FileInfo) wire.StatV2 {
	return wire.StatV2{Mode: linuxMode(fi), Nlink: 1, Size: uint64(fi.Size()), MTime: fi.ModTime().Unix(), ATime: fi.ModTime().Unix(), CTime: fi.ModTime().Unix()}
}

func linuxMode(fi fs.FileInfo) uint32 {
	m := uint32(fi.Mode().Perm())
	switch {
	case fi.IsDir():
		m |= 0o040000
	case fi.Mode()&fs.ModeSymlink != 0:
		m |= 0o120000
	default:
		m |= 0o100000
	}
	return m
}

func (p *Peer) sync(s *peerStream) {
	r := wire.NewSyncReader(s)
	for {
		req, err := r.ReadRequest()
		if err != nil {
			return
		}
		path := p.local(req.Path)
		switch req.ID {
		case wire.SyncQUIT:
			return
		case wire.SyncSTAT:
			fi, err := os.Lstat(path)
			st := wire.StatV1{}
			if err == nil {
				st = wire.StatV1{Mode: linuxMode(fi), Size: uint32(fi.Size()), MTime: uint32(fi.ModTime().Unix())}
			}
			wire.WriteStatV1(s, st)
		case wire.SyncSTA2, wire.SyncLST2:
			stat := os.Stat
			if req.ID == wire.SyncLST2 {
				stat = os.Lstat
			}
			fi, err := stat(path)
			if err != nil {
				wire.WriteStatV2(s, req.ID, wire.StatV2{Error: 2})
				continue
			}
			wire.WriteStatV2(s, req.ID, statV2(fi))
		case wire.SyncLIST, wire.SyncLIS2:
			ents, _ := os.ReadDir(path)
			for _, e := range ents {
				fi, err := e.Info()
				if err != nil {
					continue
				}
				if req.ID == wire.SyncLIS2 {
					wire.WriteDentV2(s, wire.DentV2{StatV2: statV2(fi), Name: e.Name()})
				} else {
					wire.WriteDent(s, wire.Dent{Mode: linuxMode(fi), Size: uint32(fi.Size()), MTime: uint32(fi.ModTime().Unix()), Name: e.Name()})
				}
			}
			wire.WriteListDone(s, req.ID == wire.SyncLIS2)
		case wire.SyncRECV:
			f, err := os.Open(path)
			if err != nil {
				wire.WriteFail(s, strings.TrimPrefix(err.Error(), "open "+path+": "))
				return
			}
			buf := make([]byte, wire.SyncDataMax)
			for {
				n, err := f.Read(buf)
				if n > 0 {
					if wire.WriteData(s, buf[:n]) != nil {
						f.Close()
						return
					}
				}
				if err != nil {
					break
				}
			}
			f.Close()
			wire.WriteDone(s, 0)
		case wire.SyncSEND:
			rpath, mode, err := wire.ParseSendV1Path(req.Path)
			if err != nil {
				wire.WriteFail(s, err.Error())
				return
			}
			path = p.local(rpath)
			os.MkdirAll(filepath.Dir(path), 0o755)
			var data bytes.Buffer
			var mtime uint32
			for {
				c, err := r.ReadChunk()
				if err != nil {
					return
				}
				if c.Done {
					mtime = c.MTime
					break
				}
				data.Write(c.Data)
			}
			if strings.HasPrefix(rpath, "/system/") {
				wire.WriteFail(s, "couldn't create file: Read-only file system")
				return
			}
			if err := os.WriteFile(path, data.Bytes(), fs.FileMode(mode&0o777)); err != nil {
				wire.WriteFail(s, err.Error())
				return
			}
			os.Chtimes(path, time.Unix(int64(mtime), 0), time.Unix(int64(mtime), 0))
			wire.WriteOkay(s)
		default:
			wire.WriteFail(s, "unsupported sync request "+req.ID.String())
			return
		}
	}
}
