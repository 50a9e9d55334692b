package sim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PartitionConfig describes one partition of a simulated device.
type PartitionConfig struct {
	Name     string
	Size     int64
	Type     string // partition-type: raw, ext4, f2fs (default raw)
	Logical  bool   // is-logical (dynamic partition in super)
	Contents string // optional host file copied in at start
}

// Fastboot limits.
const (
	// DefaultMaxDownload is the max-download-size the simulator announces (64 MiB): fastboot
	// splits larger images into sparse pieces.
	DefaultMaxDownload = 64 << 20
	fastbootVersion    = "0.4"
	maxFastbootCommand = 4096
	fbResponseSize     = 64 // fastboot reads responses into a 64-byte buffer
)

type partition struct {
	cfg  PartitionConfig
	file *os.File
}

type fastbootState struct {
	mu          sync.Mutex
	parts       map[string]*partition
	currentSlot string
	maxDownload int64
	dir         string
	flashed     []string // partitions flashed, in order (for tests and reports)
}

func (s *fastbootState) closePartitions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.parts {
		p.file.Close()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// initPartitions creates the partition files in a temporary directory.
func (d *Device) initPartitions() error {
	fb := &d.fb
	fb.parts = map[string]*partition{}
	fb.maxDownload = DefaultMaxDownload
	if d.cfg.Slotted {
		fb.currentSlot = "a"
	}
	if len(d.cfg.Partitions) == 0 {
		return nil
	}
	dir, err := os.MkdirTemp("", "provkit-sim-"+sanitize(d.cfg.Serial)+"-")
	if err != nil {
		return fmt.Errorf("creating partitions of %s: %w", d.cfg.Serial, err)
	}
	fb.dir = dir
	for _, pc := range d.cfg.Partitions {
		names := []string{pc.Name}
		if d.cfg.Slotted {
			names = []string{pc.Name + "_a", pc.Name + "_b"}
		}
		for _, n := range names {
			f, err := os.CreateTemp(dir, n+"-")
			if err != nil {
				return fmt.Errorf("creating partition %s of %s: %w", n, d.cfg.Serial, err)
			}
			if err := f.Truncate(pc.Size); err != nil {
				f.Close()
				return fmt.Errorf("creating partition %s of %s: %w", n, d.cfg.Serial, err)
			}
			if pc.Contents != "" {
				src, err := os.Open(pc.Contents)
				if err != nil {
					f.Close()
					return fmt.Errorf("filling partition %s of %s: %w", n, d.cfg.Serial, err)
				}
				_, err = io.Copy(io.NewOffsetWriter(f, 0), io.LimitReader(src, pc.Size))
				src.Close()
				if err != nil {
					f.Close()
					return fmt.Errorf("filling partition %s of %s: %w", n, d.cfg.Serial, err)
				}
			}
			fb.parts[n] = &partition{cfg: pc, file: f}
		}
	}
	return nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ':' || r == ' ' {
			return '_'
		}
		return r
	}, s)
}

// ReadPartition returns the current contents of a partition (name as fastboot sees it, with a slot
// suffix on A/B devices).
func (d *Device) ReadPartition(name string) ([]byte, error) {
	d.fb.mu.Lock()
	p := d.fb.parts[name]
	d.fb.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("reading partition %q of %s: no such partition", name, d.cfg.Serial)
	}
	b := make([]byte, p.cfg.Size)
	if _, err := p.file.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading partition %q of %s: %w", name, d.cfg.Serial, err)
	}
	return b, nil
}

// CurrentSlot returns the active slot ("" on non-A/B devices).
func (d *Device) CurrentSlot() string {
	d.fb.mu.Lock()
	defer d.fb.mu.Unlock()
	return d.fb.currentSlot
}

// Flashed lists the partitions flashed so far, in order.
func (d *Device) Flashed() []string {
	d.fb.mu.Lock()
	defer d.fb.mu.Unlock()
	return append([]string(nil), d.fb.flashed...)
}

// fbConn speaks the fastboot TCP framing: 8-byte big-endian length, then the message.
type fbConn struct {
	c       net.Conn
	partial int64 // bytes left in the current incoming message
}

func (f *fbConn) writeMsg(s string) error {
	if len(s) > fbResponseSize {
		s = s[:fbResponseSize]
	}
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(s)), uint64(len(s)))
	_, err := f.c.Write(append(b, s...))
	return err
}

// readMsg reads one whole message of at most max bytes.
func (f *fbConn) readMsg(max int64) ([]byte, error) {
	var h [8]byte
	if _, err := io.ReadFull(f.c, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint64(h[:])
	if n > uint64(max) {
		return nil, fmt.Errorf("fastboot message of %d bytes, max %d", n, max)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(f.c, b)
	return b, err
}

// readData reads exactly n bytes of download data, which the host may split over messages.
func (f *fbConn) readData(dst []byte, dropAfter int64) error {
	got := 0
	for got < len(dst) {
		if f.partial == 0 {
			var h [8]byte
			if _, err := io.ReadFull(f.c, h[:]); err != nil {
				return err
			}
			f.partial = int64(binary.BigEndian.Uint64(h[:]))
			if f.partial > int64(len(dst)-got) {
				return fmt.Errorf("fastboot data message of %d bytes overruns the %d-byte download", f.partial, len(dst))
			}
		}
		want := min(int64(len(dst)-got), f.partial)
		if dropAfter > 0 && int64(got)+want > dropAfter {
			want = dropAfter - int64(got)
			if want <= 0 {
				return errDropped
			}
		}
		n, err := io.ReadFull(f.c, dst[got:got+int(want)])
		got += n
		f.partial -= int64(n)
		if err != nil {
			return err
		}
		if dropAfter > 0 && int64(got) >= dropAfter {
			return errDropped
		}
	}
	return nil
}

// serveFastboot handles one fastboot TCP connection.
func (d *Device) serveFastboot(c net.Conn) {
	var hs [4]byte
	if _, err := io.ReadFull(c, hs[:]); err != nil || string(hs[:2]) != "FB" {
		return
	}
	if _, err := c.Write([]byte("FB01")); err != nil {
		return
	}
	f := &fbConn{c: c}
	var download []byte
	for {
		msg, err := f.readMsg(maxFastbootCommand)
		if err != nil {
			return
		}
		cmd := string(msg)
		d.logf("fastboot: %s", cmd)
		switch {
		case strings.HasPrefix(cmd, "getvar:"):
			d.fbGetvar(f, strings.TrimPrefix(cmd, "getvar:"))
		case strings.HasPrefix(cmd, "download:"):
			n, err := strconv.ParseUint(strings.TrimPrefix(cmd, "download:"), 16, 32)
			if err != nil {
				f.writeMsg("FAILinvalid download size")
				continue
			}
			if int64(n) > d.fb.maxDownload {
				f.writeMsg(fmt.Sprintf("FAILdata too large (max 0x%x)", d.fb.maxDownload))
				continue
			}
			download = make([]byte, n)
			if f.writeMsg(fmt.Sprintf("DATA%08x", n)) != nil {
				return
			}
			if err := f.readData(download, d.cfg.Faults.FastbootDropAfter); err != nil {
				if errors.Is(err, errDropped) {
					// Like a phone whose link glitched: it goes away and comes back in the
					// mode it was in.
					d.logf("fault: fastboot link dropped mid-download")
					d.reboot("", d.Mode())
				}
				return
			}
			f.writeMsg("OKAY")
		case strings.HasPrefix(cmd, "flash:"):
			name := d.fbPartitionName(strings.TrimPrefix(cmd, "flash:"))
			if download == nil {
				f.writeMsg("FAILno image downloaded")
				continue
			}
			if err := d.fbFlash(name, download); err != nil {
				f.writeMsg("FAIL" + err.Error())
				continue
			}
			f.writeMsg("OKAY")
		case strings.HasPrefix(cmd, "erase:"):
			name := d.fbPartitionName(strings.TrimPrefix(cmd, "erase:"))
			if err := d.fbErase(name); err != nil {
				f.writeMsg("FAIL" + err.Error())
				continue
			}
			f.writeMsg("OKAY")
		case strings.HasPrefix(cmd, "set_active:"):
			slot := strings.TrimPrefix(strings.TrimPrefix(cmd, "set_active:"), "_")
			if !d.cfg.Slotted || (slot != "a" && slot != "b") {
				f.writeMsg("FAILinvalid slot")
				continue
			}
			d.fb.mu.Lock()
			d.fb.currentSlot = slot
			d.fb.mu.Unlock()
			f.writeMsg("OKAY")
		case strings.HasPrefix(cmd, "resize-logical-partition:"):
			if err := d.fbResize(strings.TrimPrefix(cmd, "resize-logical-partition:")); err != nil {
				f.writeMsg("FAIL" + err.Error())
				continue
			}
			f.writeMsg("OKAY")
		case cmd == "reboot" || cmd == "reboot-bootloader" || cmd == "reboot-fastboot" || cmd == "reboot-recovery" || strings.HasPrefix(cmd, "reboot:"):
			f.writeMsg("OKAY")
			time.Sleep(20 * time.Millisecond)
			target := strings.TrimPrefix(cmd, "reboot")
			target = strings.TrimPrefix(strings.TrimPrefix(target, "-"), ":")
			d.Reboot(target)
			return
		case cmd == "continue":
			f.writeMsg("OKAY")
		default:
			f.writeMsg("FAILunknown command")
		}
	}
}

// fbPartitionName adds the current slot suffix to a slotted partition named without one.
func (d *Device) fbPartitionName(name string) string {
	d.fb.mu.Lock()
	defer d.fb.mu.Unlock()
	if _, ok := d.fb.parts[name]; ok || !d.cfg.Slotted {
		return name
	}
	if _, ok := d.fb.parts[name+"_"+d.fb.currentSlot]; ok {
		return name + "_" + d.fb.currentSlot
	}
	return name
}

// fbPart returns a partition as the current mode sees it: the bootloader knows only physical
// partitions; logical ones live in super and are reached through fastbootd.
func (d *Device) fbPart(name string) (*partition, error) {
	d.fb.mu.Lock()
	p := d.fb.parts[name]
	d.fb.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("partition %s not found", name)
	}
	if p.cfg.Logical && d.Mode() != ModeFastbootd {
		return nil, fmt.Errorf("logical partition %s: use fastbootd", name)
	}
	return p, nil
}

// fbResize serves resize-logical-partition:<name>:<size>, which fastboot sends before flashing a
// logical partition. The simulator's logical partitions have a fixed capacity; a size within it is
// accepted.
func (d *Device) fbResize(arg string) error {
	if d.Mode() != ModeFastbootd {
		return errors.New("unknown command")
	}
	name, size, ok := strings.Cut(arg, ":")
	n, err := strconv.ParseInt(size, 10, 64)
	if !ok || err != nil || n < 0 {
		return errors.New("Invalid partition size")
	}
	p, err := d.fbPart(d.fbPartitionName(name))
	if err != nil {
		return err
	}
	if !p.cfg.Logical {
		return fmt.Errorf("%s is not a logical partition", name)
	}
	if !d.cfg.Unlocked {
		return errors.New("Command not available on locked devices")
	}
	if n > p.cfg.Size {
		return errors.New("Not enough space to resize partition")
	}
	return nil
}

func (d *Device) fbFlash(name string, img []byte) error {
	if !d.cfg.Unlocked {
		return errors.New("Flashing is not allowed in Lock State")
	}
	if d.cfg.Faults.FastbootFailFlash != "" && strings.TrimSuffix(strings.TrimSuffix(name, "_a"), "_b") == d.cfg.Faults.FastbootFailFlash {
		return errors.New("flash write failure")
	}
	p, err := d.fbPart(name)
	if err != nil {
		return err
	}
	if IsSparse(img) {
		if err := applySparse(p.file, p.cfg.Size, bytes.NewReader(img), int64(len(img))); err != nil {
			return fmt.Errorf("bad sparse image: %v", err)
		}
	} else {
		if int64(len(img)) > p.cfg.Size {
			return fmt.Errorf("image too large for partition")
		}
		if _, err := p.file.WriteAt(img, 0); err != nil {
			return fmt.Errorf("write failed: %v", err)
		}
	}
	d.fb.mu.Lock()
	d.fb.flashed = append(d.fb.flashed, name)
	d.fb.mu.Unlock()
	return nil
}

func (d *Device) fbErase(name string) error {
	if !d.cfg.Unlocked {
		return errors.New("Erase is not allowed in Lock State")
	}
	p, err := d.fbPart(name)
	if err != nil {
		return err
	}
	if err := p.file.Truncate(0); err != nil {
		return err
	}
	return p.file.Truncate(p.cfg.Size)
}

func (d *Device) hasLogical() bool {
	for _, pc := range d.cfg.Partitions {
		if pc.Logical {
			return true
		}
	}
	return false
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// fbVars returns the value of one variable and whether it exists.
func (d *Device) fbVar(name string) (string, bool) {
	fb := &d.fb
	base, arg, _ := strings.Cut(name, ":")
	switch base {
	case "product":
		return d.cfg.Device, true
	case "serialno":
		return d.cfg.Serial, true
	case "max-download-size":
		return fmt.Sprintf("0x%x", fb.maxDownload), true
	case "version":
		return fastbootVersion, true
	case "version-bootloader":
		return "sim-1.0", true
	case "version-baseband":
		return "", true
	case "secure":
		return "yes", true
	case "unlocked":
		return yesNo(d.cfg.Unlocked), true
	case "is-userspace":
		return yesNo(d.Mode() == ModeFastbootd), true
	case "super-partition-name":
		if d.Mode() != ModeFastbootd || !d.hasLogical() {
			return "", false
		}
		return "super", true
	case "current-slot":
		if !d.cfg.Slotted {
			return "", false
		}
		fb.mu.Lock()
		defer fb.mu.Unlock()
		return fb.currentSlot, true
	case "slot-count":
		if !d.cfg.Slotted {
			return "", false
		}
		return "2", true
	case "has-slot":
		for _, pc := range d.cfg.Partitions {
			if pc.Name == arg {
				return yesNo(d.cfg.Slotted), true
			}
		}
		return "no", true
	case "partition-size", "partition-type", "is-logical":
		p, err := d.fbPart(d.fbPartitionName(arg))
		if err != nil {
			return "", false
		}
		switch base {
		case "partition-size":
			return fmt.Sprintf("0x%x", p.cfg.Size), true
		case "partition-type":
			if p.cfg.Type == "" {
				return "raw", true
			}
			return p.cfg.Type, true
		default:
			return yesNo(p.cfg.Logical), true
		}
	case "slot-successful", "slot-unbootable", "slot-retry-count":
		if !d.cfg.Slotted || (arg != "a" && arg != "b") {
			return "", false
		}
		switch base {
		case "slot-successful":
			return "yes", true
		case "slot-unbootable":
			return "no", true
		}
		return "7", true
	}
	return "", false
}

func (d *Device) fbGetvar(f *fbConn, name string) {
	if name != "all" {
		v, ok := d.fbVar(name)
		if !ok {
			f.writeMsg("FAILGetVar Variable Not found")
			return
		}
		f.writeMsg("OKAY" + v)
		return
	}
	vars := []string{"version", "version-bootloader", "version-baseband", "product", "serialno", "secure", "unlocked",
		"is-userspace", "max-download-size"}
	if d.cfg.Slotted {
		vars = append(vars, "current-slot", "slot-count", "slot-successful:a", "slot-successful:b", "slot-unbootable:a", "slot-unbootable:b")
	}
	userspace := d.Mode() == ModeFastbootd
	if userspace && d.hasLogical() {
		vars = append(vars, "super-partition-name")
	}
	d.fb.mu.Lock()
	names := make([]string, 0, len(d.fb.parts))
	for n, p := range d.fb.parts {
		if p.cfg.Logical && !userspace {
			continue // unknown to the bootloader
		}
		names = append(names, n)
	}
	d.fb.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		vars = append(vars, "partition-size:"+n, "partition-type:"+n, "is-logical:"+n)
	}
	for _, pc := range d.cfg.Partitions {
		vars = append(vars, "has-slot:"+pc.Name)
	}
	for _, v := range vars {
		val, ok := d.fbVar(v)
		if !ok {
			continue
		}
		if f.writeMsg("INFO"+v+":"+val) != nil {
			return
		}
	}
	f.writeMsg("OKAY")
}
