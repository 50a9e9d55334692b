package adb_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/adb/adbtest"
	"github.com/provkit/provkit/provision/adb/wire"
)

var (
	otherOnce sync.Once
	otherKey  *rsa.PrivateKey
)

// strangerKey returns a key the peers under test do not trust.
func strangerKey(t testing.TB) *rsa.PrivateKey {
	otherOnce.Do(func() { otherKey, _ = wire.GenerateKey() })
	if otherKey == nil {
		t.Fatal("generating a key failed")
	}
	return otherKey
}

// within fails the test if fn does not return within d: no fault may hang the client.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

func TestDirectAuth(t *testing.T) {
	key := hostKey(t)
	t.Run("accepted key", func(t *testing.T) {
		p := adbtest.StartPeer(t, adbtest.PeerOptions{AcceptKeys: []*rsa.PublicKey{&key.PublicKey}})
		// The first key is refused, the second signs: no public key is offered.
		c, err := adb.Dial(ctxT(t, 10*time.Second), p.Addr, &adb.DialOptions{Keys: []*rsa.PrivateKey{strangerKey(t), key}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if p.PubKeysOffered.Load() != 0 {
			t.Fatal("a public key was offered although a signature was accepted")
		}
		if r, err := c.Device().Shell(ctxT(t, 10*time.Second), "echo ok"); err != nil || string(r.Stdout) != "ok\n" {
			t.Fatalf("shell after auth: %+v %v", r, err)
		}
		if c.Banner().SystemType != "device" || !c.Banner().Has(wire.FeatureShell2) {
			t.Fatalf("banner: %+v", c.Banner())
		}
	})
	t.Run("unauthorized", func(t *testing.T) {
		p := adbtest.StartPeer(t, adbtest.PeerOptions{AcceptKeys: []*rsa.PublicKey{&strangerKey(t).PublicKey}})
		var err error
		within(t, 10*time.Second, "Dial to an unauthorized device", func() {
			_, err = adb.Dial(ctxT(t, 10*time.Second), p.Addr, &adb.DialOptions{Keys: []*rsa.PrivateKey{key}, AuthWait: 300 * time.Millisecond})
		})
		if !errors.Is(err, adb.ErrUnauthorized) {
			t.Fatalf("Dial: %v, want ErrUnauthorized", err)
		}
		if !strings.Contains(err.Error(), p.Addr) || strings.Count(err.Error(), "unauthorized") != 1 {
			t.Fatalf("error does not name the device and its state exactly once: %v", err)
		}
		if h := adb.StateOf(err).Hint(); !strings.Contains(h, "adb_keys") {
			t.Fatalf("hint for %v: %q, want one about adb_keys", err, h)
		}
		if p.PubKeysOffered.Load() != 1 {
			t.Fatalf("public key offered %d times, want once", p.PubKeysOffered.Load())
		}
	})
}

func TestDirectKeyCreation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "android")
	t.Setenv("ANDROID_USER_HOME", dir)
	t.Setenv("ADB_VENDOR_KEYS", "")
	p := adbtest.StartPeer(t, adbtest.PeerOptions{})
	c, err := adb.Dial(ctxT(t, 30*time.Second), p.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	key, err := adb.LoadKey(filepath.Join(dir, "adbkey"))
	if err != nil {
		t.Fatal(err)
	}
	pubText, err := os.ReadFile(filepath.Join(dir, "adbkey.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := wire.ParsePublicKey(strings.TrimSpace(string(pubText)))
	if err != nil || pub.N.Cmp(key.N) != 0 {
		t.Fatalf("adbkey.pub does not hold adbkey's public half: %v", err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "adbkey")); st.Mode().Perm() != 0o600 {
		t.Fatalf("adbkey is %v, want 0600", st.Mode().Perm())
	}
	// A second use loads the same key rather than replacing it.
	again, created, err := adb.LoadOrCreateKey(dir)
	if err != nil || created || again.N.Cmp(key.N) != 0 {
		t.Fatalf("LoadOrCreateKey replaced the key: created=%v err=%v", created, err)
	}
}

// TestKeyReadByRealADB has the real adb server use a key provkit generated: the server must
// authenticate with it to a peer that trusts only that key.
func TestKeyReadByRealADB(t *testing.T) {
	srv := adbtest.StartServer(t)
	// The server already made its own key in its HOME; read it as provkit would.
	key, err := adb.LoadKey(filepath.Join(srv.Home, ".android", "adbkey"))
	if err != nil {
		t.Fatal(err)
	}
	p := adbtest.StartPeer(t, adbtest.PeerOptions{AcceptKeys: []*rsa.PublicKey{&key.PublicKey}})
	ctx := ctxT(t, 30*time.Second)
	if _, err := srv.Connect(ctx, p.Addr); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitFor(ctx, p.Addr); err != nil {
		t.Fatalf("the adb server did not authenticate with the key provkit read: %v", err)
	}
	// And provkit authenticates with the adb server's key file directly.
	c, err := adb.Dial(ctx, p.Addr, &adb.DialOptions{Keys: []*rsa.PrivateKey{key}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestDirectFaults(t *testing.T) {
	key := hostKey(t)
	dial := func(t *testing.T, p *adbtest.Peer) *adb.Conn {
		c, err := adb.Dial(ctxT(t, 10*time.Second), p.Addr, &adb.DialOptions{Keys: []*rsa.PrivateKey{key}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	t.Run("offline device", func(t *testing.T) {
		p := adbtest.StartPeer(t, adbtest.PeerOptions{Silent: true})
		var err error
		within(t, 5*time.Second, "Dial to a silent device", func() {
			_, err = adb.Dial(ctxT(t, 300*time.Millisecond), p.Addr, &adb.DialOptions{Keys: []*rsa.PrivateKey{key}})
		})
		if !errors.Is(err, adb.ErrOffline) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), p.Addr) {
			t.Fatalf("Dial: %v", err)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		addr := "127.0.0.1:" + strconv.Itoa(adbtest.FreePort(t))
		_, err := adb.Dial(ctxT(t, 5*time.Second), addr, &adb.DialOptions{Keys: []*rsa.PrivateKey{key}})
		if !errors.Is(err, adb.ErrDeviceNotFound) || !strings.Contains(err.Error(), addr) {
			t.Fatalf("Dial: %v", err)
		}
	})
	t.Run("dropped mid-pull fails every stream", func(t *testing.T) {
		p := adbtest.StartPeer(t, adbtest.PeerOptions{DropAfter: 200 << 10})
		os.MkdirAll(filepath.Join(p.Root, "sdcard"), 0o755)
		os.WriteFile(filepath.Join(p.Root, "sdcard/big"), randomBytes(2<<20, 5), 0o644)
		c := dial(t, p)
		d := c.Device()
		ctx := ctxT(t, 30*time.Second)
		// A command that would run for a long time, open while the link drops: wait until it runs.
		sleeping := make(chan error, 1)
		go func() { _, err := d.Shell(ctx, ": > sdcard/sleeping; sleep 20"); sleeping <- err }()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(p.Root, "sdcard/sleeping")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the long command did not start")
			}
		}
		var err error
		within(t, 10*time.Second, "Pull over a dropping link", func() {
			_, err = d.Pull(ctx, "/sdcard/big", &bytes.Buffer{})
		})
		if !errors.Is(err, adb.ErrClosed) || !strings.Contains(err.Error(), p.Addr) || !strings.Contains(err.Error(), "/sdcard/big") || !strings.Contains(err.Error(), "(gone)") {
			t.Fatalf("Pull: %v", err)
		}
		select {
		case err := <-sleeping:
			if !errors.Is(err, adb.ErrClosed) || !strings.Contains(err.Error(), p.Addr) {
				t.Fatalf("the other stream: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a stream hung after the connection dropped")
		}
		if _, err := d.Shell(ctx, "true"); !errors.Is(err, adb.ErrClosed) {
			t.Fatalf("a new command on a dead connection: %v", err)
		}
	})
	t.Run("dropped mid-command", func(t *testing.T) {
		p := adbtest.StartPeer(t, adbtest.PeerOptions{DropAfter: 50 << 10})
		d := dial(t, p).Device()
		var err error
		within(t, 10*time.Second, "Shell over a dropping link", func() {
			_, err = d.Shell(ctxT(t, 20*time.Second), "head -c 1000000 /dev/zero")
		})
		if !errors.Is(err, adb.ErrClosed) || !strings.Contains(err.Error(), p.Addr) {
			t.Fatalf("Shell: %v", err)
		}
	})
	t.Run("slow link", func(t *testing.T) {
		p := adbtest.StartPeer(t, adbtest.PeerOptions{Delay: 3 * time.Millisecond, MaxPayload: 4096})
		data := randomBytes(200<<10, 6)
		os.WriteFile(filepath.Join(p.Root, "sdcard/slow"), data, 0o644)
		d := dial(t, p).Device()
		var err error
		within(t, 5*time.Second, "Pull past its deadline", func() {
			_, err = d.Pull(ctxT(t, 100*time.Millisecond), "/sdcard/slow", &bytes.Buffer{})
		})
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), p.Addr) {
			t.Fatalf("Pull on a slow link with a short deadline: %v", err)
		}
		// Given time, the slow link delivers every byte, and the connection survived the timeout.
		var b bytes.Buffer
		if _, err := d.Pull(ctxT(t, 30*time.Second), "/sdcard/slow", &b); err != nil || !bytes.Equal(b.Bytes(), data) {
			t.Fatalf("Pull on a slow link: %v", err)
		}
	})
	t.Run("cancelled command leaves the connection usable", func(t *testing.T) {
		p := adbtest.StartPeer(t, adbtest.PeerOptions{})
		d := dial(t, p).Device()
		var err error
		within(t, 5*time.Second, "a cancelled Shell", func() {
			_, err = d.Shell(ctxT(t, 200*time.Millisecond), "sleep 10")
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shell past its deadline: %v", err)
		}
		if r, err := d.Shell(ctxT(t, 10*time.Second), "echo still"); err != nil || string(r.Stdout) != "still\n" {
			t.Fatalf("the next command: %+v %v", r, err)
		}
	})
	t.Run("device ignoring flow control", func(t *testing.T) {
		p := adbtest.StartPeer(t, adbtest.PeerOptions{Greedy: true, MaxPayload: 1024})
		d := dial(t, p).Device()
		var err error
		within(t, 10*time.Second, "Shell against a flooding device", func() {
			_, err = d.Shell(ctxT(t, 20*time.Second), "head -c 300000 /dev/zero")
		})
		if !errors.Is(err, adb.ErrClosed) || !strings.Contains(err.Error(), "flow control") {
			t.Fatalf("Shell: %v", err)
		}
	})
	t.Run("unknown service", func(t *testing.T) {
		p := adbtest.StartPeer(t, adbtest.PeerOptions{})
		c := dial(t, p)
		_, err := c.Open(ctxT(t, 5*time.Second), "frobnicate:")
		var fe *adb.FailError
		if !errors.As(err, &fe) || fe.Request != "frobnicate:" {
			t.Fatalf("Open of an unknown service: %v", err)
		}
	})
	t.Run("closed by the client", func(t *testing.T) {
		p := adbtest.StartPeer(t, adbtest.PeerOptions{})
		c := dial(t, p)
		c.Close()
		if _, err := c.Device().Shell(ctxT(t, 5*time.Second), "true"); !errors.Is(err, adb.ErrClosed) {
			t.Fatalf("Shell after Close: %v", err)
		}
	})
}

func TestServerFaults(t *testing.T) {
	srv := adbtest.StartServer(t)
	ctx := ctxT(t, 60*time.Second)
	t.Run("unauthorized", func(t *testing.T) {
		p := adbtest.StartPeer(t, adbtest.PeerOptions{AcceptKeys: []*rsa.PublicKey{&strangerKey(t).PublicKey}})
		// adb connect waits for authentication and reports its failure; the device stays listed.
		if _, err := srv.Connect(ctx, p.Addr); !errors.Is(err, adb.ErrUnauthorized) {
			t.Fatalf("Connect to a device that refuses the server's key: %v", err)
		}
		defer srv.Disconnect(context.Background(), p.Addr)
		if _, err := srv.WaitFor(ctx, p.Addr, adb.StateUnauthorized); err != nil {
			t.Fatal(err)
		}
		_, err := srv.Device(p.Addr).Shell(ctx, "true")
		if !errors.Is(err, adb.ErrUnauthorized) || !strings.Contains(err.Error(), p.Addr) || !strings.Contains(err.Error(), "(unauthorized)") {
			t.Fatalf("Shell on an unauthorized device: %v", err)
		}
	})
	t.Run("offline", func(t *testing.T) {
		p := adbtest.StartPeer(t, adbtest.PeerOptions{Silent: true})
		// adb connect waits 10s for the handshake before saying "failed to connect"; do not wait
		// for that: the server lists the device as offline meanwhile.
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		srv.Connect(cctx, p.Addr)
		cancel()
		defer srv.Disconnect(context.Background(), p.Addr)
		if _, err := srv.WaitFor(ctxT(t, 10*time.Second), p.Addr, adb.StateOffline); err != nil {
			t.Fatal(err)
		}
		_, err := srv.Device(p.Addr).Shell(ctx, "true")
		if !errors.Is(err, adb.ErrOffline) || !strings.Contains(err.Error(), p.Addr) {
			t.Fatalf("Shell on an offline device: %v", err)
		}
	})
	t.Run("dropped mid-pull", func(t *testing.T) {
		p := adbtest.StartPeer(t, adbtest.PeerOptions{DropAfter: 300 << 10})
		os.WriteFile(filepath.Join(p.Root, "sdcard/big"), randomBytes(2<<20, 8), 0o644)
		d := serverLink(srv).dev(t, p)
		var err error
		within(t, 20*time.Second, "Pull through the server over a dropping link", func() {
			_, err = d.Pull(ctx, "/sdcard/big", &bytes.Buffer{})
		})
		if !errors.Is(err, adb.ErrClosed) || !strings.Contains(err.Error(), p.Addr) || !strings.Contains(err.Error(), "/sdcard/big") {
			t.Fatalf("Pull: %v", err)
		}
	})
	t.Run("gone", func(t *testing.T) {
		_, err := srv.Device("127.0.0.1:1").Shell(ctx, "true")
		if !errors.Is(err, adb.ErrDeviceNotFound) || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "(gone)") {
			t.Fatalf("Shell on an unknown device: %v", err)
		}
	})
	t.Run("track sees a device come and go", func(t *testing.T) {
		p := adbtest.StartPeer(t, adbtest.PeerOptions{})
		tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		tr, err := srv.TrackDevices(tctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if _, err := srv.Connect(ctx, p.Addr); err != nil {
			t.Fatal(err)
		}
		var sawDevice, sawRemoved bool
		for ev := range tr.C {
			if ev.Device.Serial != p.Addr {
				continue
			}
			if ev.Device.State == adb.StateDevice && ev.Kind != adb.DeviceRemoved && !sawDevice {
				sawDevice = true
				if ev.Device.Model != "Peer_Device" || ev.Device.TransportID == 0 {
					t.Errorf("device event without -l fields: %+v", ev.Device)
				}
				srv.Disconnect(ctx, p.Addr)
			}
			if ev.Kind == adb.DeviceRemoved && sawDevice {
				sawRemoved = true
				break
			}
		}
		if !sawDevice || !sawRemoved {
			t.Fatalf("events: device=%v removed=%v (tracker: %v)", sawDevice, sawRemoved, tr.Err())
		}
	})
}

// TestPinnedTransport: a device that comes back under a new transport id is not silently reused.
func TestPinnedTransport(t *testing.T) {
	srv := adbtest.StartServer(t)
	p := adbtest.StartPeer(t, adbtest.PeerOptions{})
	serverLink(srv).dev(t, p)
	ctx := ctxT(t, 30*time.Second)
	tr, err := srv.PinnedTransport(ctx, p.Addr)
	if err != nil || tr.TransportID() == 0 {
		t.Fatalf("PinnedTransport: %v", err)
	}
	d := adb.NewDevice(tr)
	if _, err := d.Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Disconnect(ctx, p.Addr); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Connect(ctx, p.Addr); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitFor(ctx, p.Addr); err != nil {
		t.Fatal(err)
	}
	_, err = d.Run(ctx, "true")
	if !errors.Is(err, adb.ErrDeviceNotFound) || !strings.Contains(err.Error(), p.Addr+" (gone)") {
		t.Fatalf("a command on the old attachment: %v", err)
	}
	// An unpinned transport follows the device to its new attachment.
	if _, err := srv.Device(p.Addr).Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
}

// A device that vanishes while this host's signature is being checked is gone, not unauthorized:
// adbd answers a signature it rejects with a new token and never closes the connection for it.
// Only after the public key has been offered does a close count as the key not being accepted.
func TestDirectVanishesDuringAuth(t *testing.T) {
	for _, tc := range []struct {
		name      string
		offerKey  bool // the device refuses the signature and waits for the public key, then closes
		wantState error
	}{
		{"after the signature", false, adb.ErrOffline},
		{"after the public key", true, adb.ErrUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				r := wire.NewReader(c)
				if _, err := r.ReadPacket(); err != nil { // CNXN
					return
				}
				token := bytes.Repeat([]byte{7}, wire.TokenSize)
				if wire.WritePacket(c, wire.Packet{Command: wire.CmdAUTH, Arg0: wire.AuthToken, Payload: token}, wire.VersionMin) != nil {
					return
				}
				if _, err := r.ReadPacket(); err != nil { // the signature
					return
				}
				if tc.offerKey {
					if wire.WritePacket(c, wire.Packet{Command: wire.CmdAUTH, Arg0: wire.AuthToken, Payload: token}, wire.VersionMin) != nil {
						return
					}
					if _, err := r.ReadPacket(); err != nil { // the public key
						return
					}
				}
			}()
			_, err = adb.Dial(ctxT(t, 10*time.Second), ln.Addr().String(), &adb.DialOptions{Keys: []*rsa.PrivateKey{hostKey(t)}, AuthWait: 5 * time.Second})
			if !errors.Is(err, tc.wantState) {
				t.Fatalf("Dial: %v, want %v", err, tc.wantState)
			}
		})
	}
}
