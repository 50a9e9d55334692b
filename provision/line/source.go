package line

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/provkit/provkit/provision/adb"
)

// Modes a phone can arrive in.
const (
	ModeAndroid  = "android"  // adbd answers
	ModeFastboot = "fastboot" // only fastboot answers
)

// Phone is a phone as a source reports it.
type Phone struct {
	// Key names the phone in its source: the adb server's serial or a TCP address.
	Key string
	// Mode is ModeAndroid or ModeFastboot.
	Mode string
	// FastbootAddr is the phone's fastboot TCP address ("" when unknown, e.g. on USB).
	FastbootAddr string
	// Connect opens adb to the phone; the returned function releases it.
	Connect func(ctx context.Context) (*adb.Device, func(), error)
}

// Presence is a change a source saw.
type Presence struct {
	Phone   Phone
	Present bool
	// Waiting, for a phone present but not usable (unauthorized, offline), says why.
	Waiting string
}

// Source reports phones arriving and leaving on ch until ctx is done. It returns the reason it
// stopped (nil or ctx's error when cancelled).
type Source interface {
	Watch(ctx context.Context, ch chan<- Presence) error
	String() string
}

// Pauser is a source that can stop looking at a phone while the station works on it (a probe
// could disturb a bootloader that serves one connection at a time).
type Pauser interface {
	Pause(key string, paused bool)
}

// TCPTarget is a phone reached over TCP: its adbd and its fastboot server.
type TCPTarget struct {
	ADB      string
	Fastboot string
}

// ParseTCP reads "<host:port>[=<fastboot host:port>]". Without a fastboot address it is the adb
// port's neighbour as the provkit simulator lays them out (adb on an even port, fastboot on the
// next), except that adb's standard 5555 pairs with fastboot's standard 5554.
func ParseTCP(s string) (TCPTarget, error) {
	a, f, _ := strings.Cut(s, "=")
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return TCPTarget{}, fmt.Errorf("--tcp %q: %w; use <host:port>[=<fastboot host:port>]", s, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return TCPTarget{}, fmt.Errorf("--tcp %q: bad port %q", s, port)
	}
	if f == "" {
		fp := p + 1
		if p == 5555 {
			fp = 5554
		}
		if fp > 65535 {
			return TCPTarget{}, fmt.Errorf("--tcp %q: no port after %d for fastboot; give <host:port>=<fastboot host:port>", s, p)
		}
		f = net.JoinHostPort(host, strconv.Itoa(fp))
	} else if _, _, err := net.SplitHostPort(f); err != nil {
		return TCPTarget{}, fmt.Errorf("--tcp %q: fastboot address: %w", s, err)
	}
	return TCPTarget{ADB: a, Fastboot: f}, nil
}

// TCPSource polls TCP addresses: a phone is present in Android mode while its adbd accepts
// connections, in fastboot mode while only its fastboot server does.
type TCPSource struct {
	Targets []TCPTarget
	// Interval between polls (default 1s).
	Interval time.Duration
	// Dial tunes the adb connections the station opens.
	Dial adb.DialOptions

	mu     sync.Mutex
	paused map[string]bool
}

// Pause stops (or resumes) probing the phone at key while the station works on it.
func (s *TCPSource) Pause(key string, paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused == nil {
		s.paused = map[string]bool{}
	}
	if paused {
		s.paused[key] = true
	} else {
		delete(s.paused, key)
	}
}

func (s *TCPSource) isPaused(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused[key]
}

func (s *TCPSource) String() string { return fmt.Sprintf("%d TCP address(es)", len(s.Targets)) }

// Phone returns the phone at target t in mode.
func (s *TCPSource) Phone(t TCPTarget, mode string) Phone {
	opts := s.Dial
	return Phone{Key: t.ADB, Mode: mode, FastbootAddr: t.Fastboot, Connect: func(ctx context.Context) (*adb.Device, func(), error) {
		o := opts
		o.Serial = t.ADB
		c, err := adb.Dial(ctx, t.ADB, &o)
		if err != nil {
			return nil, nil, err
		}
		return c.Device(), func() { c.Close() }, nil
	}}
}

func probe(ctx context.Context, addr string) bool {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Watch polls every target until ctx is done.
func (s *TCPSource) Watch(ctx context.Context, ch chan<- Presence) error {
	iv := s.Interval
	if iv <= 0 {
		iv = time.Second
	}
	last := make([]string, len(s.Targets)) // "", android, fastboot
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		for i, tg := range s.Targets {
			if s.isPaused(tg.ADB) {
				continue
			}
			mode := ""
			switch {
			case probe(ctx, tg.ADB):
				mode = ModeAndroid
			case probe(ctx, tg.Fastboot):
				mode = ModeFastboot
			}
			if mode == last[i] || ctx.Err() != nil {
				continue
			}
			// A phone going from Android to fastboot (or back) is still present: only the
			// change of presence is reported, with the mode it is in now.
			p := Presence{Phone: s.Phone(tg, mode), Present: mode != ""}
			if mode == "" {
				p.Phone.Mode = last[i]
			}
			if (last[i] == "") != (mode == "") {
				select {
				case ch <- p:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			last[i] = mode
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ServerSource follows the adb server's device list.
type ServerSource struct {
	Server *adb.Server
}

func (s *ServerSource) String() string { return "the adb server at " + s.Server.Addr() }

// Phone returns the server's device serial as a phone.
func (s *ServerSource) Phone(serial string) Phone {
	p := Phone{Key: serial, Mode: ModeAndroid, Connect: func(ctx context.Context) (*adb.Device, func(), error) {
		pt, err := s.Server.PinnedTransport(ctx, serial)
		if err != nil {
			return nil, nil, err
		}
		return adb.NewDevice(pt), func() {}, nil
	}}
	// A phone attached with `adb connect host:port` has a fastboot server next to its adbd.
	if strings.Contains(serial, ":") {
		if t, err := ParseTCP(serial); err == nil {
			p.FastbootAddr = t.Fastboot
		}
	}
	return p
}

// Watch follows track-devices until ctx is done or the server goes away.
func (s *ServerSource) Watch(ctx context.Context, ch chan<- Presence) error {
	tr, err := s.Server.TrackDevices(ctx)
	if err != nil {
		return err
	}
	defer tr.Close()
	for ev := range tr.C {
		var p Presence
		switch {
		case ev.Kind == adb.DeviceRemoved:
			p = Presence{Phone: s.Phone(ev.Device.Serial), Present: false}
		case ev.Device.State == adb.StateDevice:
			p = Presence{Phone: s.Phone(ev.Device.Serial), Present: true}
		default:
			why := fmt.Sprintf("the adb server lists it as %q", ev.Device.State)
			if h := ev.Device.State.Hint(); h != "" {
				why += "; " + h
			}
			p = Presence{Phone: s.Phone(ev.Device.Serial), Present: false, Waiting: why}
		}
		select {
		case ch <- p:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := tr.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("following the adb server's devices: %w", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("the adb server stopped sending its device list")
}
