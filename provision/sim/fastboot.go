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

	"github.com/provkit/provkit/firmware/super"
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

	// The super partition's LP metadata (nil: no super), the same in every slot, and the
	// partition-type of each logical partition (by name without slot suffix).
	lpGeo        super.Geometry
	lp           *super.Metadata
	logicalTypes map[string]string
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
	if n := d.cfg.Faults.FastbootMaxDownload; n > 0 {
		fb.maxDownload = n
	}
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
		if pc.Logical {
			continue // in super, below
		}
		names := []string{pc.Name}
		if d.cfg.Slotted && pc.Name != superName { // one super serves both slots
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
	return d.initSuper(dir)
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
// suffix on A/B devices); a logical partition is read through super's metadata.
func (d *Device) ReadPartition(name string) ([]byte, error) {
	d.fb.mu.Lock()
	var r io.ReaderAt
	var size int64
	if p := d.fb.parts[name]; p != nil {
		r, size = p.file, p.cfg.Size
	} else if v := d.fb.logicalLocked(name); v != nil {
		r, size = v, v.size
	}
	d.fb.mu.Unlock()
	if r == nil {
		return nil, fmt.Errorf("reading partition %q of %s: no such partition", name, d.cfg.Serial)
	}
	b := make([]byte, size)
	if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
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

var downloadBuffers = sync.Pool{New: func() any { return new([]byte) }}

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
	// The download buffer is reused across downloads and connections: a fresh 64 MiB slice per
	// download costs the host more in page faults than the transfer itself.
	buf := downloadBuffers.Get().(*[]byte)
	defer downloadBuffers.Put(buf)
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
			if uint64(cap(*buf)) < n {
				*buf = make([]byte, n)
			}
			download = (*buf)[:n]
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
		case strings.HasPrefix(cmd, "resize-logical-partition:"), strings.HasPrefix(cmd, "create-logical-partition:"),
			strings.HasPrefix(cmd, "delete-logical-partition:"):
			op, arg, _ := strings.Cut(cmd, ":")
			if err := d.fbLogicalOp(strings.TrimSuffix(op, "-logical-partition"), arg); err != nil {
				f.writeMsg("FAIL" + err.Error())
				continue
			}
			f.writeMsg("OKAY")
		case strings.HasPrefix(cmd, "update-super:"):
			if err := d.fbUpdateSuper(strings.TrimPrefix(cmd, "update-super:"), download); err != nil {
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
	exists := func(n string) bool {
		if _, ok := d.fb.parts[n]; ok {
			return true
		}
		return d.fb.lp != nil && d.fb.lp.Find(n) >= 0
	}
	if exists(name) || !d.cfg.Slotted {
		return name
	}
	if exists(name + "_" + d.fb.currentSlot) {
		return name + "_" + d.fb.currentSlot
	}
	return name
}

// target is a partition as a fastboot command reaches it.
type target struct {
	name    string
	logical bool
	typ     string
	size    int64
	rw      interface {
		io.ReaderAt
		io.WriterAt
	}
	phys *partition // nil for a logical partition
}

// fbPart returns a partition as the current mode sees it: the bootloader knows only physical
// partitions; logical ones live in super and are reached through fastbootd.
func (d *Device) fbPart(name string) (*target, error) {
	d.fb.mu.Lock()
	defer d.fb.mu.Unlock()
	if p := d.fb.parts[name]; p != nil {
		return &target{name: name, typ: p.cfg.Type, size: p.cfg.Size, rw: p.file, phys: p}, nil
	}
	v := d.fb.logicalLocked(name)
	if v == nil {
		return nil, fmt.Errorf("partition %s not found", name)
	}
	if d.Mode() != ModeFastbootd {
		return nil, fmt.Errorf("logical partition %s: use fastbootd", name)
	}
	return &target{name: name, logical: true, typ: d.fb.logicalTypes[stripSlotSuffix(name)], size: v.size, rw: v}, nil
}

func stripSlotSuffix(s string) string {
	if strings.HasSuffix(s, "_a") || strings.HasSuffix(s, "_b") {
		return s[:len(s)-2]
	}
	return s
}

func (d *Device) fbFlash(name string, img []byte) error {
	if !d.cfg.Unlocked {
		return errors.New("Flashing is not allowed in Lock State")
	}
	if f := d.cfg.Faults.FastbootFailFlash; f != "" && (name == f || stripSlotSuffix(name) == f) {
		return errors.New("flash write failure")
	}
	p, err := d.fbPart(name)
	if err != nil {
		return err
	}
	if IsSparse(img) {
		if err := applySparse(p.rw, p.size, bytes.NewReader(img), int64(len(img))); err != nil {
			return fmt.Errorf("bad sparse image: %v", err)
		}
	} else {
		if int64(len(img)) > p.size {
			if p.logical {
				return errors.New("Partition not large enough")
			}
			return fmt.Errorf("image too large for partition")
		}
		if _, err := p.rw.WriteAt(img, 0); err != nil {
			return fmt.Errorf("write failed: %v", err)
		}
	}
	d.fb.mu.Lock()
	d.fb.flashed = append(d.fb.flashed, name)
	if name == superName {
		d.fb.reloadSuperLocked()
	}
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
	if p.logical {
		zero := make([]byte, 1<<20)
		for off := int64(0); off < p.size; off += int64(len(zero)) {
			if _, err := p.rw.WriteAt(zero[:min(int64(len(zero)), p.size-off)], off); err != nil {
				return err
			}
		}
		return nil
	}
	if err := p.phys.file.Truncate(0); err != nil {
		return err
	}
	if err := p.phys.file.Truncate(p.size); err != nil {
		return err
	}
	if name == superName {
		d.fb.mu.Lock()
		d.fb.reloadSuperLocked()
		d.fb.mu.Unlock()
	}
	return nil
}

func (d *Device) hasLogical() bool {
	d.fb.mu.Lock()
	defer d.fb.mu.Unlock()
	return d.fb.lp != nil
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
				return yesNo(d.cfg.Slotted && arg != superName), true
			}
		}
		for _, n := range fb.logicalNames() {
			if n == arg+"_a" {
				return "yes", true
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
			return fmt.Sprintf("0x%x", p.size), true
		case "partition-type":
			if p.typ == "" {
				return "raw", true
			}
			return p.typ, true
		default:
			return yesNo(p.logical), true
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
	for n := range d.fb.parts {
		names = append(names, n)
	}
	if userspace && d.fb.lp != nil { // logical partitions are unknown to the bootloader
		for _, p := range d.fb.lp.Partitions {
			names = append(names, p.Name)
		}
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
