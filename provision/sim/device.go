package sim

import (
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
	"github.com/provkit/provkit/provision/sim/android"
)

// AuthMode says how a simulated adbd treats the host's keys.
type AuthMode string

// Auth modes.
const (
	// AuthTrusted is a factory-line phone whose adb_keys already trust the host (a user build
	// with the station's key baked in): the first signature is accepted, no prompt, and
	// "adb connect" says "connected to". The default.
	AuthTrusted AuthMode = "trusted"
	// AuthAny accepts any host key the first time it is offered (the user taps "Always allow"):
	// the signature is refused first, so the adb server says "failed to authenticate" before
	// the device comes up; later connections with the same key are authorised by signature.
	AuthAny AuthMode = "any"
	// AuthKeys accepts only the listed public keys.
	AuthKeys AuthMode = "keys"
	// AuthRefuse never authorises: the device stays "unauthorized".
	AuthRefuse AuthMode = "refuse"
	// AuthNone skips AUTH entirely (ro.adb.secure=0).
	AuthNone AuthMode = "none"
)

// AuthConfig is a device's AUTH policy.
type AuthConfig struct {
	Mode AuthMode
	Keys []*rsa.PublicKey
}

// Faults are a device's scripted misbehaviours.
type Faults struct {
	Offline           bool          // CNXN never answered
	BytesPerSecond    int64         // slow link: bandwidth limit per connection (0: none)
	DropAfterBytes    int64         // close each adb connection after this many bytes (0: never)
	DropOnCommand     string        // close the adb connection when a service containing this is opened
	RebootAfter       time.Duration // reboot by itself this long after starting (0: never)
	RebootDelay       time.Duration // how long a reboot keeps the device away (default 2s)
	FastbootDropAfter int64         // close the fastboot connection after this many download bytes
	FastbootFailFlash string        // partition whose flash fails with FAIL
	// FastbootMaxDownload replaces the announced (and enforced) max-download-size (0: 64 MiB).
	FastbootMaxDownload int64
	// RebootWrongMode makes "reboot fastboot" land in the bootloader and "reboot bootloader" in
	// fastbootd, as a phone with a broken recovery or misc partition does.
	RebootWrongMode bool
}

// DeviceConfig is everything needed to start a simulated device.
type DeviceConfig struct {
	Serial   string
	Product  string // ro.product.name
	Model    string // ro.product.model
	Device   string // ro.product.device
	Features []string
	Auth     AuthConfig
	Faults   Faults
	// Partitions for fastboot; see Partition.
	Partitions []PartitionConfig
	Slotted    bool // A/B: partitions get _a/_b
	Unlocked   bool
	Mode       Mode // initial mode ("" is ModeAndroid)
	Sideload   SideloadConfig
}

// DefaultFeatures are the features a current adbd announces that the simulator implements.
var DefaultFeatures = []string{
	wire.FeatureShell2, wire.FeatureCmd, wire.FeatureStat2, wire.FeatureLs2, wire.FeatureFixedPushMkdir,
	wire.FeatureApex, wire.FeatureAbb, wire.FeatureFixedPushSymlinkTime, wire.FeatureAbbExec,
	wire.FeatureRemountShell, wire.FeatureTrackApp, wire.FeatureSendRecv2,
}

// Device is one running simulated phone.
type Device struct {
	cfg     DeviceConfig
	Android *android.Device
	log     func(string)

	mu       sync.Mutex
	adbLn    net.Listener // nil while adbd is not listening
	fbLn     net.Listener // nil while fastboot is not listening
	conns    map[net.Conn]struct{}
	adbAddr  string
	fbAddr   string
	mode     Mode
	booting  bool             // rebooting: both ports closed
	keys     []*rsa.PublicKey // accepted host keys
	reboots  int
	rebootTo string

	fb fastbootState

	sideloadBusy sync.Mutex // one sideload at a time, as minadbd serves one
	sideloads    []SideloadRecord

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Serial returns the device serial.
func (d *Device) Serial() string { return d.cfg.Serial }

// ADBAddr returns the adb address (host:port).
func (d *Device) ADBAddr() string { return d.adbAddr }

// Auth returns how the device treats the host's key (its scenario's auth: setting).
func (d *Device) Auth() AuthMode { return d.cfg.Auth.Mode }

// FastbootAddr returns the fastboot address (host:port).
func (d *Device) FastbootAddr() string { return d.fbAddr }

// LastRebootTarget returns the target of the last reboot as adb or fastboot named it: ""
// (normal), "bootloader", "recovery", "fastboot", "sideload".
func (d *Device) LastRebootTarget() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rebootTo
}

// Reboots returns how many times the device has rebooted.
func (d *Device) Reboots() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reboots
}

func (d *Device) logf(format string, args ...any) {
	if d.log != nil {
		d.log(d.cfg.Serial + ": " + fmt.Sprintf(format, args...))
	}
}

func (d *Device) banner() string {
	b := wire.Banner{SystemType: d.Mode().adbState(), Props: []wire.Prop{
		{Key: "ro.product.name", Value: d.cfg.Product},
		{Key: "ro.product.model", Value: d.cfg.Model},
		{Key: "ro.product.device", Value: d.cfg.Device},
	}, Features: d.cfg.Features}
	return b.String()
}

func (d *Device) verifyAuth(token, sig []byte) bool {
	d.mu.Lock()
	keys := append(append([]*rsa.PublicKey(nil), d.keys...), d.cfg.Auth.Keys...)
	d.mu.Unlock()
	switch d.cfg.Auth.Mode {
	case AuthRefuse:
		return false
	case AuthTrusted:
		// The simulator does not know which key the station baked into adb_keys: whatever
		// key signed, it is the station's.
		return len(sig) > 0
	}
	for _, k := range keys {
		if wire.VerifyToken(k, token, sig) == nil {
			return true
		}
	}
	return false
}

func (d *Device) acceptKey(pub *rsa.PublicKey) bool {
	switch d.cfg.Auth.Mode {
	case AuthAny, AuthTrusted:
		d.mu.Lock()
		d.keys = append(d.keys, pub)
		d.mu.Unlock()
		return true
	case AuthKeys:
		for _, k := range d.cfg.Auth.Keys {
			if k.N.Cmp(pub.N) == 0 && k.E == pub.E {
				return true
			}
		}
	}
	return false
}

func (d *Device) dropOnService(service string) bool {
	c := d.cfg.Faults.DropOnCommand
	return c != "" && strings.Contains(service, c)
}

// start reserves both ports, keeps listening on the one of the initial mode and serves until
// Close.
func (d *Device) start(ctx context.Context, adbAddr, fbAddr string) error {
	a, err := net.Listen("tcp", adbAddr)
	if err != nil {
		return fmt.Errorf("starting simulated device %s: adb listener: %w", d.cfg.Serial, err)
	}
	f, err := net.Listen("tcp", fbAddr)
	if err != nil {
		a.Close()
		return fmt.Errorf("starting simulated device %s: fastboot listener: %w", d.cfg.Serial, err)
	}
	d.adbAddr, d.fbAddr = a.Addr().String(), f.Addr().String()
	d.ctx, d.cancel = context.WithCancel(ctx)
	d.conns = map[net.Conn]struct{}{}
	d.mode = d.cfg.Mode
	if d.mode == "" {
		d.mode = ModeAndroid
	}
	d.Android.SetRecovery(d.mode == ModeRecovery)
	d.Android.OnReboot = func(target string) { go d.Reboot(target) }
	if !d.mode.ADB() {
		a.Close()
		a = nil
	}
	if !d.mode.Fastboot() {
		f.Close()
		f = nil
	}
	d.mu.Lock()
	d.serveListeners(a, f)
	d.mu.Unlock()
	if after := d.cfg.Faults.RebootAfter; after > 0 {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			t := time.NewTimer(after)
			defer t.Stop()
			select {
			case <-t.C:
				d.logf("fault: rebooting by itself")
				d.Reboot("")
			case <-d.ctx.Done():
			}
		}()
	}
	return nil
}

// serveListeners installs the listeners of the current mode (nil for a port that stays closed)
// and starts their accept loops. d.mu is held and d.ctx is not done, so the WaitGroup Add cannot
// race Close's Wait.
func (d *Device) serveListeners(a, f net.Listener) {
	d.adbLn, d.fbLn = a, f
	if a != nil {
		d.wg.Add(1)
		go d.acceptLoop(a, func(c net.Conn) { (&transport{dev: d, conn: c}).serve(d.ctx) })
	}
	if f != nil {
		d.wg.Add(1)
		go d.acceptLoop(f, d.serveFastboot)
	}
}

// acceptLoop serves one listener until it is closed (by a reboot or Close).
func (d *Device) acceptLoop(ln net.Listener, serve func(net.Conn)) {
	defer d.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			d.mu.Lock()
			current := d.adbLn == ln || d.fbLn == ln
			d.mu.Unlock()
			if current && d.ctx.Err() == nil {
				d.logf("accept: %v", err)
			}
			return
		}
		d.mu.Lock()
		if (d.adbLn != ln && d.fbLn != ln) || d.ctx.Err() != nil {
			// Accepted just as a reboot or Close closed the port: the phone was already going
			// down.
			d.mu.Unlock()
			c.Close()
			return
		}
		d.conns[c] = struct{}{}
		// Counted while this loop is: the count is above zero, so Add cannot race Wait.
		d.wg.Add(1)
		d.mu.Unlock()
		go func() {
			defer d.wg.Done()
			defer func() {
				d.mu.Lock()
				delete(d.conns, c)
				d.mu.Unlock()
				c.Close()
			}()
			serve(d.wrap(c))
		}()
	}
}

// wrap applies the link faults to a connection.
func (d *Device) wrap(c net.Conn) net.Conn {
	f := d.cfg.Faults
	if f.BytesPerSecond <= 0 && f.DropAfterBytes <= 0 {
		return c
	}
	return &faultConn{Conn: c, rate: f.BytesPerSecond, dropAfter: f.DropAfterBytes, dev: d}
}

// Mode returns the mode the device is in or, during a reboot, is booting into.
func (d *Device) Mode() Mode {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mode
}

// Up reports whether the device has finished booting (its mode's port is listening).
func (d *Device) Up() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.booting && d.ctx != nil && d.ctx.Err() == nil
}

// Reboot drops every connection and closes both ports for the reboot delay (connections are
// refused meanwhile), then comes up in the mode the target leads to (see ModeForTarget) and
// listens on that mode's port only. A reboot asked for while one is under way is ignored, as
// the phone is not listening.
func (d *Device) Reboot(target string) {
	to := ModeForTarget(target)
	if d.cfg.Faults.RebootWrongMode {
		switch to {
		case ModeFastbootd:
			to = ModeBootloader
		case ModeBootloader:
			to = ModeFastbootd
		}
	}
	d.reboot(target, to)
}

func (d *Device) reboot(target string, to Mode) {
	delay := d.cfg.Faults.RebootDelay
	if delay <= 0 {
		delay = 2 * time.Second
	}
	d.mu.Lock()
	if d.booting || d.ctx == nil || d.ctx.Err() != nil {
		d.mu.Unlock()
		return
	}
	d.booting = true
	d.reboots++
	d.rebootTo = target
	d.mode = to
	for _, ln := range []net.Listener{d.adbLn, d.fbLn} {
		if ln != nil {
			ln.Close()
		}
	}
	d.adbLn, d.fbLn = nil, nil
	conns := make([]net.Conn, 0, len(d.conns))
	for c := range d.conns {
		conns = append(conns, c)
	}
	// Added under d.mu, after the ctx check: Close cancels first and waits only after taking
	// d.mu, so this Add never races its Wait.
	d.wg.Add(1)
	d.mu.Unlock()
	d.logf("rebooting (%q) into %s, back in %v", target, to, delay)
	for _, c := range conns {
		c.Close()
	}
	go func() {
		defer d.wg.Done()
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-d.ctx.Done():
			return
		}
		d.Android.SetRecovery(to == ModeRecovery)
		for attempt := 0; ; attempt++ {
			var a, f net.Listener
			var err error
			if to.ADB() {
				a, err = net.Listen("tcp", d.adbAddr)
			} else {
				f, err = net.Listen("tcp", d.fbAddr)
			}
			if err == nil {
				d.mu.Lock()
				if d.ctx.Err() != nil {
					// Closed meanwhile: Close has already closed the old listeners and waits
					// for this goroutine; listeners set now would never be closed.
					d.mu.Unlock()
					if a != nil {
						a.Close()
					}
					if f != nil {
						f.Close()
					}
					return
				}
				d.serveListeners(a, f)
				d.booting = false
				d.mu.Unlock()
				d.logf("up in %s", to)
				return
			}
			if attempt == 50 || d.ctx.Err() != nil {
				d.logf("cannot listen again after reboot: %v", err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
}

// Close stops the device's listeners and connections and waits for its goroutines.
func (d *Device) Close() error {
	if d.cancel == nil {
		return nil
	}
	d.cancel()
	d.mu.Lock()
	for _, ln := range []net.Listener{d.adbLn, d.fbLn} {
		if ln != nil {
			ln.Close()
		}
	}
	for c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
	d.fb.closePartitions()
	return nil
}

// faultConn imposes a bandwidth limit and a byte budget on a connection.
type faultConn struct {
	net.Conn
	rate      int64
	dropAfter int64
	dev       *Device
	mu        sync.Mutex
	used      int64
}

var errDropped = errors.New("connection dropped by fault")

func (c *faultConn) account(n int) error {
	c.mu.Lock()
	c.used += int64(n)
	over := c.dropAfter > 0 && c.used >= c.dropAfter
	c.mu.Unlock()
	if over {
		c.dev.logf("fault: dropping the connection after %d bytes", c.dropAfter)
		c.Conn.Close()
		return errDropped
	}
	return nil
}

func (c *faultConn) budget(n int) int {
	if c.dropAfter <= 0 {
		return n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	left := c.dropAfter - c.used
	if left <= 0 {
		return 0
	}
	return int(min(int64(n), left))
}

func (c *faultConn) pace(n int) {
	if c.rate > 0 && n > 0 {
		time.Sleep(time.Duration(float64(n) / float64(c.rate) * float64(time.Second)))
	}
}

func (c *faultConn) Read(p []byte) (int, error) {
	if c.rate > 0 && len(p) > 16*1024 {
		p = p[:16*1024]
	}
	if b := c.budget(len(p)); b < len(p) {
		if b == 0 {
			_ = c.account(0)
			return 0, errDropped
		}
		p = p[:b]
	}
	n, err := c.Conn.Read(p)
	c.pace(n)
	if aerr := c.account(n); aerr != nil && err == nil {
		return n, nil // deliver what was read; the next call fails
	}
	return n, err
}

func (c *faultConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := len(p)
		if c.rate > 0 {
			chunk = min(chunk, 16*1024)
		}
		if b := c.budget(chunk); b < chunk {
			if b > 0 {
				n, _ := c.Conn.Write(p[:b])
				written += n
			}
			_ = c.account(b)
			return written, errDropped
		}
		n, err := c.Conn.Write(p[:chunk])
		written += n
		c.pace(n)
		if err != nil {
			return written, err
		}
		if err := c.account(n); err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

var _ io.ReadWriter = (*faultConn)(nil)
