package sim

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/provkit/provkit/provision/adb/wire"
)

// MaxSideloadSize bounds the OTA package a simulated device holds in memory (1 GiB).
const MaxSideloadSize = 1 << 30

// SideloadConfig says how a device in sideload mode takes a package.
type SideloadConfig struct {
	Legacy        bool  // serve sideload:<size> (pre-KitKat) instead of sideload-host
	Stay          bool  // stay in sideload mode after a good install instead of rebooting to Android
	MaxSize       int64 // largest package accepted (0: MaxSideloadSize)
	DoneOnFailure bool  // end a failed install with DONEDONE, as a real recovery in sideload mode does
}

func (s SideloadSpec) config() (SideloadConfig, error) {
	c := SideloadConfig{Legacy: s.Legacy, Stay: s.Stay, DoneOnFailure: s.DoneOnFailure}
	if s.MaxSize != "" {
		n, err := parseSize(s.MaxSize)
		if err != nil {
			return c, fmt.Errorf("sideload.maxSize: %w", err)
		}
		if n <= 0 || n > MaxSideloadSize {
			return c, fmt.Errorf("sideload.maxSize: %s: use 1 byte to 1G", s.MaxSize)
		}
		c.MaxSize = n
	}
	return c, nil
}

// SideloadRecord is what one sideload did to a simulated device.
type SideloadRecord struct {
	Service  string // "sideload-host" or "sideload"
	Size     int64  // announced by the host
	SHA256   string // hex, of the package as received ("" if it was not received whole)
	OK       bool   // the package passed the checks and was "installed"
	Reason   string // why it failed (recovery's words)
	Requests int    // block requests sent (sideload-host)
	Time     time.Time
}

// Sideloaded returns every sideload the device has taken, oldest first.
func (d *Device) Sideloaded() []SideloadRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]SideloadRecord(nil), d.sideloads...)
}

func (d *Device) recordSideload(r SideloadRecord) {
	r.Time = time.Now()
	d.mu.Lock()
	d.sideloads = append(d.sideloads, r)
	d.mu.Unlock()
}

// sideloadService returns the handler for a sideload service in sideload mode, or nil to refuse
// it (a device configured as legacy does not know sideload-host, a current one not sideload:).
func (d *Device) sideloadService(name string) handler {
	h, legacy, ok, err := wire.ParseSideloadService(name)
	if !ok || legacy != d.cfg.Sideload.Legacy {
		return nil
	}
	if err != nil {
		d.logf("E:%v", err)
		return nil
	}
	return func(ctx context.Context, s *stream) {
		// A host that got DONEDONE may open the next sideload before the last one's handler
		// has returned: wait for it a little (bounded) before refusing a concurrent one.
		deadline := time.Now().Add(2 * time.Second)
		for !d.sideloadBusy.TryLock() {
			if time.Now().After(deadline) || ctx.Err() != nil {
				d.logf("E:a sideload is already running; refusing another")
				s.Close()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		defer d.sideloadBusy.Unlock()
		if legacy {
			d.sideloadLegacy(ctx, s, h.Size)
		} else {
			d.sideloadHost(ctx, s, h)
		}
	}
}

func (d *Device) maxSideload() int64 {
	if d.cfg.Sideload.MaxSize > 0 {
		return d.cfg.Sideload.MaxSize
	}
	return MaxSideloadSize
}

// sideloadHost plays minadbd's sideload-host: it asks for the zip's end (end of central
// directory), then its central directory, then every other block in order, as recovery's zip
// reader does through the fuse file, checks the package and ends with DONEDONE or FAILFAIL.
func (d *Device) sideloadHost(ctx context.Context, s *stream, h wire.SideloadHost) {
	rec := SideloadRecord{Service: "sideload-host", Size: h.Size}
	d.logf("sideload-host file size %d, block size %d", h.Size, h.BlockSize)
	if h.Size > d.maxSideload() {
		rec.Reason = fmt.Sprintf("package of %d bytes exceeds the simulator's limit of %d bytes", h.Size, d.maxSideload())
		d.finishSideload(s, rec)
		return
	}
	pkg := make([]byte, h.Size)
	blocks := h.Blocks()
	have := make([]bool, blocks)
	fetch := func(b int64) error {
		if b < 0 || b >= blocks || have[b] {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		req, err := wire.FormatSideloadRequest(b)
		if err != nil {
			return err
		}
		if _, err := s.Write(req); err != nil {
			return fmt.Errorf("requesting block %d: %w", b, err)
		}
		rec.Requests++
		off := b * int64(h.BlockSize)
		end := min(off+int64(h.BlockSize), h.Size)
		if _, err := io.ReadFull(s, pkg[off:end]); err != nil {
			return fmt.Errorf("reading block %d (bytes %d to %d): %w", b, off, end, err)
		}
		have[b] = true
		return nil
	}
	fetchRange := func(off, n int64) error {
		if n <= 0 {
			return nil
		}
		for b := off / int64(h.BlockSize); b <= (off+n-1)/int64(h.BlockSize); b++ {
			if err := fetch(b); err != nil {
				return err
			}
		}
		return nil
	}
	// The end of central directory record is in the last 22+65535 bytes.
	tail := min(h.Size, 22+0xffff)
	err := fetchRange(h.Size-tail, tail)
	if err == nil {
		if cdOff, cdSize, ok := centralDirectory(pkg[h.Size-tail:], h.Size); ok {
			err = fetchRange(cdOff, cdSize)
		}
	}
	for b := int64(0); err == nil && b < blocks; b++ {
		err = fetch(b)
	}
	if err != nil {
		// The host went away or broke the protocol: recovery's fuse read fails.
		d.logf("E:sideload: %v", err)
		rec.Reason = "transfer failed: " + err.Error()
		d.recordSideload(rec)
		s.Close()
		return
	}
	sum := sha256.Sum256(pkg)
	rec.SHA256 = hex.EncodeToString(sum[:])
	if err := checkOTA(pkg, d.cfg.Device); err != nil {
		rec.Reason = err.Error()
	} else {
		rec.OK = true
	}
	d.finishSideload(s, rec)
}

// finishSideload logs and records the outcome, ends the host's transfer and, after a good
// install, reboots to Android unless the scenario keeps the device in sideload.
func (d *Device) finishSideload(s *stream, rec SideloadRecord) {
	status := wire.SideloadDone
	if rec.OK {
		d.logf("Installing update... sha256 %s: Install from ADB complete (status: 0)", rec.SHA256)
	} else {
		d.logf("E:%s", rec.Reason)
		d.logf("Installation aborted.")
		if !d.cfg.Sideload.DoneOnFailure {
			status = wire.SideloadFail
		}
	}
	d.recordSideload(rec)
	if rec.Service == "sideload" {
		if rec.OK {
			io.WriteString(s, "OKAY")
		} else {
			msg := rec.Reason
			if len(msg) > 0xffff {
				msg = msg[:0xffff]
			}
			fmt.Fprintf(s, "FAIL%04x%s", len(msg), msg)
		}
	} else {
		io.WriteString(s, status)
	}
	s.Close()
	if rec.OK && !d.cfg.Sideload.Stay {
		time.Sleep(50 * time.Millisecond)
		d.Reboot("")
	}
}

// sideloadLegacy plays the pre-KitKat sideload:<size> service: the host streams the package,
// the device answers OKAY or FAIL and a reason.
func (d *Device) sideloadLegacy(ctx context.Context, s *stream, size int64) {
	rec := SideloadRecord{Service: "sideload", Size: size}
	d.logf("sideload file size %d", size)
	if size > d.maxSideload() {
		rec.Reason = fmt.Sprintf("package of %d bytes exceeds the simulator's limit of %d bytes", size, d.maxSideload())
		d.finishSideload(s, rec)
		return
	}
	pkg := make([]byte, size)
	if _, err := io.ReadFull(s, pkg); err != nil {
		d.logf("E:sideload: reading the package: %v", err)
		rec.Reason = "transfer failed: " + err.Error()
		d.recordSideload(rec)
		s.Close()
		return
	}
	sum := sha256.Sum256(pkg)
	rec.SHA256 = hex.EncodeToString(sum[:])
	if err := checkOTA(pkg, d.cfg.Device); err != nil {
		rec.Reason = err.Error()
	} else {
		rec.OK = true
	}
	d.finishSideload(s, rec)
}

// centralDirectory finds the end of central directory record in tail (the last bytes of a zip of
// size bytes) and returns where the central directory is, if it lies inside the zip.
func centralDirectory(tail []byte, size int64) (off, n int64, ok bool) {
	i := bytes.LastIndex(tail, []byte("PK\x05\x06"))
	if i < 0 || len(tail)-i < 22 {
		return 0, 0, false
	}
	e := tail[i:]
	n = int64(binary.LittleEndian.Uint32(e[12:]))
	off = int64(binary.LittleEndian.Uint32(e[16:]))
	if off > size || n > size-off {
		return 0, 0, false
	}
	return off, n, true
}

// maxPropertiesSize bounds payload_properties.txt and the metadata entry.
const maxPropertiesSize = 64 << 10

// checkOTA judges a package as recovery would before installing it, with recovery's words: it
// must be a zip; an A/B package's payload.bin must be stored, start with "CrAU", and match
// payload_properties.txt's FILE_SIZE and FILE_HASH; a non-A/B package needs
// META-INF/com/google/android/update-binary; a pre-device in META-INF/com/android/metadata must
// name this device. Signatures are not checked.
func checkOTA(pkg []byte, device string) error {
	zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		return fmt.Errorf("footer is wrong: not a zip package (%v)", err)
	}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
	}
	if f := files["META-INF/com/android/metadata"]; f != nil {
		meta, err := readSmall(f)
		if err != nil {
			return fmt.Errorf("Failed to read metadata in update package: %v", err)
		}
		if pre := meta["pre-device"]; pre != "" && device != "" {
			match := false
			for _, dev := range strings.Split(pre, ",") {
				match = match || strings.TrimSpace(dev) == device
			}
			if !match {
				return fmt.Errorf("Package is for product %s but expected %s", pre, device)
			}
		}
	}
	pf := files["payload.bin"]
	if pf == nil {
		if files["META-INF/com/google/android/update-binary"] != nil {
			return nil
		}
		return errors.New("Can't find payload.bin nor update-binary in the update package")
	}
	props := files["payload_properties.txt"]
	if props == nil {
		return errors.New("Can't find payload_properties.txt in the update package")
	}
	if pf.Method != zip.Store {
		return errors.New("payload.bin is compressed; it must be stored")
	}
	off, err := pf.DataOffset()
	size := int64(pf.CompressedSize64)
	if err != nil || off < 0 || size < 0 || off > int64(len(pkg)) || size > int64(len(pkg))-off {
		return errors.New("payload.bin lies outside the package")
	}
	payload := pkg[off : off+size]
	if !bytes.HasPrefix(payload, []byte("CrAU")) {
		return errors.New("payload.bin: bad magic, not an update_engine payload")
	}
	kv, err := readSmall(props)
	if err != nil {
		return fmt.Errorf("reading payload_properties.txt: %v", err)
	}
	if want := kv["FILE_SIZE"]; want != strconv.FormatInt(size, 10) {
		return fmt.Errorf("payload.bin is %d bytes, payload_properties.txt FILE_SIZE says %q", size, want)
	}
	sum := sha256.Sum256(payload)
	if got := base64.StdEncoding.EncodeToString(sum[:]); kv["FILE_HASH"] != got {
		return fmt.Errorf("payload.bin hash mismatch: FILE_HASH %q, computed %q", kv["FILE_HASH"], got)
	}
	return nil
}

// readSmall reads a key=value text entry of at most maxPropertiesSize bytes.
func readSmall(f *zip.File) (map[string]string, error) {
	if f.UncompressedSize64 > maxPropertiesSize {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", f.Name, f.UncompressedSize64, maxPropertiesSize)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(rc, maxPropertiesSize))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m, sc.Err()
}
