package wire

import (
	"fmt"
	"strconv"
	"strings"
)

// Sideload protocol (recovery's "apply update from ADB"). The host opens
// "sideload-host:<size>:<blocksize>" on a device in sideload mode; the device (minadbd) then asks
// for blocks of the package, each request eight ASCII decimal digits ("00000023" for block 23,
// numbered from 0), and the host answers with that block's bytes (blocksize bytes, the last block
// short). The device ends the exchange with "DONEDONE", or "FAILFAIL" (rescue mode and newer
// recoveries on a failed install), or by closing the stream. Devices older than KitKat only know
// "sideload:<size>": the host streams the whole package and reads an OKAY/FAIL status.
const (
	// SideloadRequestLen is the length of one block request.
	SideloadRequestLen = 8
	// SideloadDone ends a successful transfer. In sideload mode minadbd sends it whatever the
	// install's result: it means "the device has read what it needed".
	SideloadDone = "DONEDONE"
	// SideloadFail ends a transfer whose install failed (rescue mode, and this simulator).
	SideloadFail = "FAILFAIL"
	// SideloadBlockSize is the block size adb uses (its CHUNK_SIZE, 64 KiB).
	SideloadBlockSize = 64 << 10
	// MaxSideloadBlockSize bounds the block size either side accepts.
	MaxSideloadBlockSize = 64 << 10
	// MinSideloadBlockSize is the smallest block size accepted (recovery rejects anything not
	// positive; below 512 bytes a transfer is only overhead).
	MinSideloadBlockSize = 512
	// MaxSideloadSize bounds the package size either side accepts (8 GiB).
	MaxSideloadSize = 8 << 30
	// MaxSideloadBlock is the largest block number eight decimal digits can name.
	MaxSideloadBlock = 99_999_999
)

// SideloadKind says what a device's 8-byte message is.
type SideloadKind int

// Kinds of device message.
const (
	SideloadBlock  SideloadKind = iota // a block request
	SideloadOK                         // "DONEDONE"
	SideloadFailed                     // "FAILFAIL" or any "FAIL..." status
)

// SideloadRequest is one decoded 8-byte message from the device.
type SideloadRequest struct {
	Kind  SideloadKind
	Block int64  // for SideloadBlock
	Raw   string // the 8 bytes as sent, for reports
}

// ParseSideloadRequest decodes the eight bytes a device sends in a sideload-host stream: a block
// number (eight decimal digits, zero-padded as minadbd writes "%08u"), DONEDONE, or a status
// starting with FAIL. Anything else is a protocol error quoting the bytes.
func ParseSideloadRequest(b []byte) (SideloadRequest, error) {
	if len(b) != SideloadRequestLen {
		return SideloadRequest{}, fmt.Errorf("sideload request is %d bytes, want %d", len(b), SideloadRequestLen)
	}
	raw := string(b)
	switch {
	case raw == SideloadDone:
		return SideloadRequest{Kind: SideloadOK, Raw: raw}, nil
	case strings.HasPrefix(raw, "FAIL"):
		return SideloadRequest{Kind: SideloadFailed, Raw: raw}, nil
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return SideloadRequest{}, fmt.Errorf("protocol fault: sideload request %q is neither eight decimal digits, DONEDONE nor FAIL", raw)
		}
		n = n*10 + int64(c-'0')
	}
	return SideloadRequest{Kind: SideloadBlock, Block: n, Raw: raw}, nil
}

// FormatSideloadRequest writes the request for block n as minadbd does ("%08u").
func FormatSideloadRequest(n int64) ([]byte, error) {
	if n < 0 || n > MaxSideloadBlock {
		return nil, fmt.Errorf("sideload block %d does not fit eight decimal digits", n)
	}
	return fmt.Appendf(nil, "%08d", n), nil
}

// SideloadHost is the argument of a "sideload-host:<size>:<blocksize>" service.
type SideloadHost struct {
	Size      int64
	BlockSize int
}

// Blocks returns how many blocks the package has.
func (h SideloadHost) Blocks() int64 {
	return (h.Size + int64(h.BlockSize) - 1) / int64(h.BlockSize)
}

// Service returns the service name.
func (h SideloadHost) Service() string {
	return "sideload-host:" + strconv.FormatInt(h.Size, 10) + ":" + strconv.Itoa(h.BlockSize)
}

// Check bounds the size and the block size.
func (h SideloadHost) Check() error {
	switch {
	case h.Size <= 0:
		return fmt.Errorf("sideload package size %d: must be positive", h.Size)
	case h.Size > MaxSideloadSize:
		return fmt.Errorf("sideload package size %d: larger than the %d-byte limit", h.Size, int64(MaxSideloadSize))
	case h.BlockSize < MinSideloadBlockSize || h.BlockSize > MaxSideloadBlockSize:
		return fmt.Errorf("sideload block size %d: want %d to %d", h.BlockSize, MinSideloadBlockSize, MaxSideloadBlockSize)
	case h.Blocks()-1 > MaxSideloadBlock:
		return fmt.Errorf("sideload package of %d bytes needs %d blocks of %d: more than eight digits can name", h.Size, h.Blocks(), h.BlockSize)
	}
	return nil
}

// ParseSideloadService parses a service name: "sideload-host:<size>:<blocksize>" (legacy false)
// or "sideload:<size>" (legacy true, BlockSize 0). ok is false for other services; err reports
// a sideload service whose arguments are malformed or out of bounds.
func ParseSideloadService(name string) (h SideloadHost, legacy, ok bool, err error) {
	if args, found := strings.CutPrefix(name, "sideload-host:"); found {
		sz, bs, found := strings.Cut(args, ":")
		if !found {
			return h, false, true, fmt.Errorf("bad sideload-host arguments %q: want <size>:<blocksize>", args)
		}
		size, err1 := strconv.ParseInt(sz, 10, 64)
		block, err2 := strconv.Atoi(bs)
		if err1 != nil || err2 != nil {
			return h, false, true, fmt.Errorf("bad sideload-host arguments %q: want two decimal numbers", args)
		}
		h = SideloadHost{Size: size, BlockSize: block}
		return h, false, true, h.Check()
	}
	if args, found := strings.CutPrefix(name, "sideload:"); found {
		size, err := strconv.ParseInt(args, 10, 64)
		if err != nil {
			return h, true, true, fmt.Errorf("bad sideload argument %q: want a decimal size", args)
		}
		h = SideloadHost{Size: size, BlockSize: MaxSideloadBlockSize}
		err = h.Check()
		h.BlockSize = 0
		return h, true, true, err
	}
	return h, false, false, nil
}
