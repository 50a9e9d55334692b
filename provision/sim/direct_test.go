package sim

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provkit/provkit/provision/adb/wire"
)

// miniHost is a minimal adb host written against the wire package, used to test the transport
// without an adb server: AUTH, many streams at once, flow control.
type miniHost struct {
	t    testing.TB
	conn net.Conn
	r    *wire.Reader
	wmu  sync.Mutex
	mu   sync.Mutex
	next uint32
	in   map[uint32]chan wire.Packet
	max  uint32
	// firstSignatureAccepted: the device answered the first signature with CNXN.
	firstSignatureAccepted bool
}

func dialHost(t testing.TB, addr string) (*miniHost, wire.Banner) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	h := &miniHost{t: t, conn: c, r: wire.NewReader(c), in: map[uint32]chan wire.Packet{}}
	key, err := wire.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	h.send(wire.Packet{Command: wire.CmdCNXN, Arg0: wire.Version, Arg1: wire.MaxPayload, Payload: []byte("host::features=shell_v2,cmd")})
	sentKey := false
	for {
		p, err := h.r.ReadPacket()
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		switch p.Command {
		case wire.CmdAUTH:
			if !sentKey {
				sig, _ := wire.SignToken(key, p.Payload)
				h.send(wire.Packet{Command: wire.CmdAUTH, Arg0: wire.AuthSignature, Payload: sig})
				p2, err := h.r.ReadPacket()
				if err == nil && p2.Command == wire.CmdCNXN {
					// A device that trusts this host (auth: trusted, the default).
					h.firstSignatureAccepted = true
					p = p2
					return h.connected(p)
				}
				if err != nil || p2.Command != wire.CmdAUTH {
					t.Fatalf("expected a new token after an unknown key: %v %v", p2, err)
				}
				pub, _ := wire.EncodePublicKey(&key.PublicKey, "test@host")
				h.send(wire.Packet{Command: wire.CmdAUTH, Arg0: wire.AuthRSAPublicKey, Payload: append([]byte(pub), 0)})
				sentKey = true
			}
		case wire.CmdCNXN:
			return h.connected(p)
		}
	}
}

func (h *miniHost) connected(p wire.Packet) (*miniHost, wire.Banner) {
	b, err := wire.ParseBanner(string(p.Payload))
	if err != nil {
		h.t.Fatal(err)
	}
	h.r.Version, h.max = wire.Negotiate(wire.Version, wire.MaxPayload, p.Arg0, p.Arg1)
	go h.loop()
	return h, b
}

// TestAuthDefaultTrustsHost: by default a simulated phone trusts the host's key (a factory-line
// build with the station's key in adb_keys) and accepts the first signature; "auth: any" makes it
// ask for the public key first (the user taps "Allow").
func TestAuthDefaultTrustsHost(t *testing.T) {
	s := startSim(t, scenario(t, "devices: [{serial: T1}, {serial: A1, auth: any}]"), 2)
	h, _ := dialHost(t, s.Devices()[0].ADBAddr())
	if !h.firstSignatureAccepted {
		t.Error("default device did not accept the first signature")
	}
	h2, _ := dialHost(t, s.Devices()[1].ADBAddr())
	if h2.firstSignatureAccepted {
		t.Error("auth: any device accepted an unknown key's signature without asking")
	}
}

func (h *miniHost) send(p wire.Packet) {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if err := wire.WritePacket(h.conn, p, wire.VersionSkipChecksum); err != nil {
		h.t.Error(err)
	}
}

func (h *miniHost) loop() {
	for {
		p, err := h.r.ReadPacket()
		if err != nil {
			h.mu.Lock()
			for _, c := range h.in {
				close(c)
			}
			h.in = map[uint32]chan wire.Packet{}
			h.mu.Unlock()
			return
		}
		h.mu.Lock()
		c := h.in[p.Arg1]
		h.mu.Unlock()
		if c != nil {
			c <- p
		}
	}
}

// run opens service, sends stdin (if any) and returns everything the device wrote.
func (h *miniHost) run(service string, stdin []byte) ([]byte, error) {
	h.mu.Lock()
	h.next++
	local := h.next
	c := make(chan wire.Packet, 16)
	h.in[local] = c
	h.mu.Unlock()
	h.send(wire.Packet{Command: wire.CmdOPEN, Arg0: local, Payload: append([]byte(service), 0)})
	var remote uint32
	var out bytes.Buffer
	for p := range c {
		switch p.Command {
		case wire.CmdOKAY:
			if remote == 0 {
				remote = p.Arg0
				if len(stdin) > 0 {
					go func() {
						// One WRTE; the device acknowledges it with OKAY (handled below).
						h.send(wire.Packet{Command: wire.CmdWRTE, Arg0: local, Arg1: remote, Payload: stdin})
					}()
				}
			}
		case wire.CmdWRTE:
			out.Write(p.Payload)
			h.send(wire.Packet{Command: wire.CmdOKAY, Arg0: local, Arg1: remote})
		case wire.CmdCLSE:
			if remote == 0 {
				return nil, fmt.Errorf("service %q refused", service)
			}
			return out.Bytes(), nil
		}
	}
	return out.Bytes(), fmt.Errorf("connection lost")
}

func TestDirectTransportMultiplexing(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1<<17) // 2 MiB: several WRTEs at the 1 MiB max payload
	s := startSim(t, scenario(t, "devices: [{files: [{path: /sdcard/big.txt, content: '"+big+"'}]}]"), 1)
	h, banner := dialHost(t, s.Devices()[0].ADBAddr())
	if !banner.Has(wire.FeatureShell2) || banner.SystemType != "device" {
		t.Fatalf("banner %+v", banner)
	}
	if m, _ := banner.Prop("ro.product.model"); m != "Simulated Phone" {
		t.Fatalf("model %q", m)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, err := h.run(fmt.Sprintf("exec:echo stream-%d", i), nil)
			if err != nil || string(out) != fmt.Sprintf("stream-%d\n", i) {
				t.Errorf("stream %d: %q %v", i, out, err)
			}
		}(i)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		out, err := h.run("exec:cat /sdcard/big.txt", nil)
		if err != nil || string(out) != big {
			t.Errorf("big cat: %d bytes %v", len(out), err)
		}
	}()
	wg.Wait()

	// shell v2: stdout, stderr and the exit code come back framed.
	out, err := h.run("shell,v2,raw:echo out; nosuch", nil)
	if err != nil {
		t.Fatal(err)
	}
	sr := wire.NewShellReader(bytes.NewReader(out))
	var stdout, stderr string
	exit := -1
	for {
		id, data, err := sr.ReadPacket()
		if err != nil {
			break
		}
		switch id {
		case wire.ShellStdout:
			stdout += string(data)
		case wire.ShellStderr:
			stderr += string(data)
		case wire.ShellExit:
			exit = int(data[0])
		}
	}
	if stdout != "out\n" || !strings.Contains(stderr, "nosuch: inaccessible or not found") || exit != 127 {
		t.Fatalf("shell v2: %q %q %d", stdout, stderr, exit)
	}
	if _, err := h.run("framebuffer:", nil); err == nil {
		t.Fatal("an unknown service was opened")
	}
}

// BenchmarkTransportThroughput measures how fast a simulated device streams a 20 MB file over one
// adb connection (exec:cat: WRTE at the 1 MiB max payload, one OKAY per WRTE).
func BenchmarkTransportThroughput(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 20<<20/16)
	s, err := Start(context.Background(), Options{Devices: 1, Scenario: &Scenario{Devices: []DeviceSpec{{}}}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.Devices()[0].Android.FS().WriteFile("/sdcard/big.bin", data, 0o644, time.Now())
	h, _ := dialHost(b, s.Devices()[0].ADBAddr())
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.conn.SetDeadline(time.Now().Add(60 * time.Second))
		out, err := h.run("exec:cat /sdcard/big.bin", nil)
		if err != nil || len(out) != len(data) {
			b.Fatalf("%d bytes, %v", len(out), err)
		}
	}
}

func TestDirectInteractiveShellAndReboot(t *testing.T) {
	s := startSim(t, scenario(t, "devices: [{serial: PTY1, device: simdev, auth: any, faults: {rebootDelay: 100ms}}]"), 1)
	d := s.Devices()[0]
	h, _ := dialHost(t, d.ADBAddr())
	stdin := wire.AppendShellPacket(nil, wire.ShellStdin, []byte("getprop ro.serialno\nexit\n"))
	out, err := h.run("shell,v2,TERM=xterm,pty:", stdin)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	sr := wire.NewShellReader(bytes.NewReader(out))
	for {
		id, data, err := sr.ReadPacket()
		if err != nil {
			break
		}
		if id == wire.ShellStdout {
			text.Write(data)
		}
	}
	if text.String() != "simdev:/ $ PTY1\nsimdev:/ $ " {
		t.Fatalf("interactive shell: %q", text.String())
	}
	if _, err := h.run("reboot:bootloader", nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); d.Reboots() == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if d.Reboots() != 1 || d.LastRebootTarget() != "bootloader" || d.Mode() != ModeBootloader {
		t.Fatalf("reboots %d target %q mode %s", d.Reboots(), d.LastRebootTarget(), d.Mode())
	}
}
