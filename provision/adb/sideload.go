package adb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/provkit/provkit/provision/adb/wire"
)

// ErrSideloadFailed: the device ended a sideload with a failure status (FAILFAIL, or FAIL and a
// reason on the legacy service).
var ErrSideloadFailed = errors.New("the device reported the sideload failed")

// SideloadOptions tune Device.Sideload. The zero value is what adb does.
type SideloadOptions struct {
	// BlockSize is the block size offered to the device (default and maximum 64 KiB).
	BlockSize int
	// NoLegacy: when the device refuses sideload-host, fail instead of trying "sideload:<size>".
	NoLegacy bool
	// MaxServed bounds the bytes served before giving up on a device that keeps asking (default
	// 16 times the package plus 64 MiB; a normal install reads it about twice).
	MaxServed int64
	// Progress, if set, is called when the highest block requested reaches a new percent, and
	// once at the end. It runs on the sideloading goroutine: keep it short.
	Progress func(SideloadProgress)
}

// SideloadProgress is how far a sideload has gone.
type SideloadProgress struct {
	Blocks       int64 // blocks in the package (legacy: 64 KiB units)
	BlocksServed int64 // requests answered, repeats included
	BytesServed  int64
	HighestBlock int64 // the highest block requested so far (-1 before the first)
	Percent      int   // (HighestBlock+1) of Blocks, as percent
}

// SideloadResult is what a sideload did. It is returned, filled as far as the sideload got, with
// any error.
type SideloadResult struct {
	Serial       string        `json:"serial"`
	Service      string        `json:"service"` // "sideload-host" or "sideload" (legacy)
	Size         int64         `json:"size"`
	SHA256       string        `json:"sha256"` // of the whole package
	BlockSize    int           `json:"blockSize,omitempty"`
	Blocks       int64         `json:"blocks"`
	BlocksServed int64         `json:"blocksServed"`
	BytesServed  int64         `json:"bytesServed"`
	HighestBlock int64         `json:"highestBlock"`
	Duration     time.Duration `json:"duration"`
	// Status is how the device ended: "DONEDONE", "FAILFAIL" (or another FAIL...), "OKAY" or
	// "FAIL: <reason>" (legacy), "closed" when it hung up without a status, "" when the host
	// stopped first. In sideload mode a real recovery sends DONEDONE whatever the install's
	// outcome (the result is on the phone's screen); FAILFAIL comes from rescue mode and newer
	// recoveries.
	Status string `json:"status"`
}

// Sideload serves an OTA package to a device in sideload mode (recovery's "apply update from
// ADB", adb sideload): it opens sideload-host:<size>:<blocksize> and answers the device's block
// requests until it ends with DONEDONE (nil error) or a failure (ErrSideloadFailed). A device
// that refuses sideload-host gets the legacy sideload:<size> service (the whole package
// streamed), unless opts.NoLegacy. r holds the package's size bytes; it is read twice (once to
// hash it, then as the device asks). ctx cancels the transfer.
func (d *Device) Sideload(ctx context.Context, r io.ReaderAt, size int64, opts *SideloadOptions) (*SideloadResult, error) {
	var o SideloadOptions
	if opts != nil {
		o = *opts
	}
	if o.BlockSize == 0 {
		o.BlockSize = wire.SideloadBlockSize
	}
	start := time.Now()
	res := &SideloadResult{Serial: d.Serial(), Service: "sideload-host", Size: size, BlockSize: o.BlockSize, HighestBlock: -1}
	defer func() { res.Duration = time.Since(start) }()
	op := fmt.Sprintf("sideloading a %d-byte package", size)
	h := wire.SideloadHost{Size: size, BlockSize: o.BlockSize}
	if err := h.Check(); err != nil {
		return res, &DeviceError{Op: op, Serial: d.Serial(), Err: err}
	}
	res.Blocks = h.Blocks()
	if o.MaxServed <= 0 {
		o.MaxServed = 64<<20 + min(size, math.MaxInt64/32)*16
	}
	sum, err := hashPackage(ctx, r, size)
	if err != nil {
		return res, &DeviceError{Op: op, Serial: d.Serial(), Err: err}
	}
	res.SHA256 = sum

	s, err := d.t.Open(ctx, h.Service())
	if err != nil {
		var fe *FailError
		if errors.As(err, &fe) && classifyFail(fe.Message) == nil && !o.NoLegacy {
			// An older device (<= KitKat) that does not know sideload-host.
			return d.sideloadLegacy(ctx, r, res, &o, err)
		}
		return res, d.fail(ctx, op, err)
	}
	defer s.Close()
	err = serveSideload(ctx, s, r, h, res, &o)
	if err != nil {
		if errors.Is(err, ErrSideloadFailed) {
			return res, &DeviceError{Op: op, Serial: d.Serial(), Err: err}
		}
		return res, d.fail(ctx, op, err)
	}
	return res, nil
}

// hashPackage returns the hex SHA-256 of the package's size bytes, checking ctx as it goes.
func hashPackage(ctx context.Context, r io.ReaderAt, size int64) (string, error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n := int(min(int64(len(buf)), size-off))
		m, err := r.ReadAt(buf[:n], off)
		if m < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", fmt.Errorf("reading the package at offset %d: %w", off+int64(m), err)
		}
		h.Write(buf[:n])
		off += int64(n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// serveSideload answers block requests on s until the device ends the transfer.
func serveSideload(ctx context.Context, s Stream, r io.ReaderAt, h wire.SideloadHost, res *SideloadResult, o *SideloadOptions) error {
	buf := make([]byte, h.BlockSize)
	var req [wire.SideloadRequestLen]byte
	lastPercent := -1
	report := func(force bool) {
		if o.Progress == nil {
			return
		}
		p := SideloadProgress{Blocks: res.Blocks, BlocksServed: res.BlocksServed, BytesServed: res.BytesServed, HighestBlock: res.HighestBlock,
			Percent: int((res.HighestBlock + 1) * 100 / res.Blocks)}
		if force || p.Percent != lastPercent {
			lastPercent = p.Percent
			o.Progress(p)
		}
	}
	defer report(true)
	for {
		if _, err := io.ReadFull(s, req[:]); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrClosed) {
				res.Status = "closed"
				return fmt.Errorf("%w: the device hung up without DONEDONE after %d block requests (highest block %d of %d)",
					ErrClosed, res.BlocksServed, res.HighestBlock, res.Blocks)
			}
			return fmt.Errorf("reading the device's block request: %w", err)
		}
		m, err := wire.ParseSideloadRequest(req[:])
		if err != nil {
			return err
		}
		switch m.Kind {
		case wire.SideloadOK:
			res.Status = m.Raw
			return nil
		case wire.SideloadFailed:
			res.Status = m.Raw
			return fmt.Errorf("%w: it sent %q after %d block requests", ErrSideloadFailed, m.Raw, res.BlocksServed)
		}
		if m.Block >= res.Blocks {
			return fmt.Errorf("protocol fault: the device asked for block %d, but the %d-byte package has blocks 0 to %d", m.Block, h.Size, res.Blocks-1)
		}
		off := m.Block * int64(h.BlockSize)
		n := int(min(int64(h.BlockSize), h.Size-off))
		if res.BytesServed+int64(n) > o.MaxServed {
			return fmt.Errorf("the device asked for more than %d bytes of a %d-byte package (%d requests); giving up on it", o.MaxServed, h.Size, res.BlocksServed)
		}
		if k, err := r.ReadAt(buf[:n], off); k < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading block %d of the package at offset %d: %w", m.Block, off, err)
		}
		if _, err := s.Write(buf[:n]); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("sending block %d: %w", m.Block, err)
		}
		res.BlocksServed++
		res.BytesServed += int64(n)
		res.HighestBlock = max(res.HighestBlock, m.Block)
		report(false)
	}
}

// sideloadLegacy streams the whole package over sideload:<size> and reads the device's
// OKAY/FAIL status, as adb does for devices that refuse sideload-host.
func (d *Device) sideloadLegacy(ctx context.Context, r io.ReaderAt, res *SideloadResult, o *SideloadOptions, hostErr error) (*SideloadResult, error) {
	op := fmt.Sprintf("sideloading a %d-byte package (legacy sideload after %v)", res.Size, hostErr)
	res.Service, res.BlockSize = "sideload", 0
	const chunk = 64 << 10
	res.Blocks = (res.Size + chunk - 1) / chunk
	if res.Size > math.MaxInt32 {
		// adb sends the legacy size as a C int.
		return res, &DeviceError{Op: op, Serial: d.Serial(), Err: fmt.Errorf("package of %d bytes too large for the legacy sideload service (max %d)", res.Size, math.MaxInt32)}
	}
	s, err := d.t.Open(ctx, fmt.Sprintf("sideload:%d", res.Size))
	if err != nil {
		return res, d.fail(ctx, op, err)
	}
	defer s.Close()
	buf := make([]byte, chunk)
	lastPercent := -1
	for off := int64(0); off < res.Size; {
		n := int(min(int64(chunk), res.Size-off))
		if k, err := r.ReadAt(buf[:n], off); k < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return res, &DeviceError{Op: op, Serial: d.Serial(), Err: fmt.Errorf("reading the package at offset %d: %w", off, err)}
		}
		if _, err := s.Write(buf[:n]); err != nil {
			if ctx.Err() != nil {
				return res, d.fail(ctx, op, ctx.Err())
			}
			return res, d.fail(ctx, op, fmt.Errorf("sending bytes %d to %d: %w", off, off+int64(n), err))
		}
		off += int64(n)
		res.BlocksServed++
		res.BytesServed = off
		res.HighestBlock = res.BlocksServed - 1
		if p := int(off * 100 / res.Size); o.Progress != nil && p != lastPercent {
			lastPercent = p
			o.Progress(SideloadProgress{Blocks: res.Blocks, BlocksServed: res.BlocksServed, BytesServed: off, HighestBlock: res.HighestBlock, Percent: p})
		}
	}
	var st [4]byte
	if _, err := io.ReadFull(s, st[:]); err != nil {
		if ctx.Err() != nil {
			return res, d.fail(ctx, op, ctx.Err())
		}
		res.Status = "closed"
		return res, d.fail(ctx, op, fmt.Errorf("reading the device's status after the package: %w", err))
	}
	switch string(st[:]) {
	case "OKAY":
		res.Status = "OKAY"
		return res, nil
	case "FAIL":
		var hdr [4]byte
		msg := ""
		if _, err := io.ReadFull(s, hdr[:]); err == nil {
			if n, err := ParseHexLength(hdr[:]); err == nil {
				b := make([]byte, n)
				k, _ := io.ReadFull(s, b)
				msg = string(b[:k])
			}
		}
		res.Status = "FAIL: " + msg
		return res, &DeviceError{Op: op, Serial: d.Serial(), Err: fmt.Errorf("%w: %s", ErrSideloadFailed, truncate(msg, 200))}
	}
	return res, &DeviceError{Op: op, Serial: d.Serial(), Err: fmt.Errorf("protocol fault: status %q, want OKAY or FAIL", st[:])}
}
