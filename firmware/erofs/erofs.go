package erofs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Options tune Open. The zero value is ready to use.
type Options struct {
	// Devices are the extra devices (blob files) of an image built with a device table
	// (mkfs.erofs --blobdev): Devices[0] is device 1. A chunk that lives on a device not given here
	// fails to read with an error naming the device.
	Devices []Device
	// CacheBytes bounds the memory kept for decompressed extents shared by all files of the FS.
	// 0 means DefaultCacheBytes; a negative value disables the cache.
	CacheBytes int64
}

// Device is an extra device of a multi-device image: its bytes and size.
type Device struct {
	R    io.ReaderAt
	Size int64
}

// DefaultCacheBytes is the default budget of the decompressed-extent cache.
const DefaultCacheBytes = 32 << 20

// FS is an opened EROFS image. Its methods are safe for concurrent use.
type FS struct {
	r       io.ReaderAt
	size    int64
	sb      *Superblock
	bsBits  uint
	bs      int64
	metaOff int64
	devices []deviceSlot
	lz4     lz4Config
	cache   *extentCache
}

type deviceSlot struct {
	blocks        uint32
	mappedBlkAddr uint32
	r             io.ReaderAt // nil when the caller did not supply the device
	size          int64
}

type lz4Config struct {
	maxPclusterBlks uint16 // from the lz4 compression config; checked against the 1 MiB limit
}

// Open reads the superblock of the EROFS image in r (size bytes) and checks it. Nothing else is
// read until files are looked up.
func Open(r io.ReaderAt, size int64) (*FS, error) { return OpenWithOptions(r, size, Options{}) }

// OpenWithOptions is Open with Options.
func OpenWithOptions(r io.ReaderAt, size int64, opts Options) (*FS, error) {
	if size < SuperblockOffset+superblockSize {
		return nil, fmt.Errorf("reading superblock: image of %d bytes is shorter than %d: %w", size, SuperblockOffset+superblockSize, ErrNotEROFS)
	}
	// Read up to the end of a 4 KiB block (or the image) so the checksum can be verified; the
	// block size is not known before the superblock is parsed, so re-read if it is larger.
	n := int64(4096 - SuperblockOffset)
	raw, err := readFull(r, size, SuperblockOffset, n)
	if err != nil {
		return nil, fmt.Errorf("reading superblock at offset %d: %w", SuperblockOffset, err)
	}
	if len(raw) >= 13 && raw[12] > 12 && raw[12] <= 16 {
		if raw, err = readFull(r, size, SuperblockOffset, (int64(1)<<raw[12])-SuperblockOffset); err != nil {
			return nil, fmt.Errorf("reading superblock at offset %d: %w", SuperblockOffset, err)
		}
	}
	sb, err := parseSuperblock(raw)
	if err != nil {
		return nil, err
	}
	f := &FS{r: r, size: size, sb: sb, bsBits: uint(sb.BlockSizeBits), bs: sb.BlockSize()}
	if want := int64(sb.Blocks) << f.bsBits; want > size {
		return nil, fmt.Errorf("reading superblock at offset %d: the file system has %d blocks of %d bytes (%d bytes) but the image is only %d bytes (truncated?): %w",
			SuperblockOffset, sb.Blocks, f.bs, want, size, ErrCorrupt)
	}
	f.metaOff = int64(sb.MetaBlkAddr) << f.bsBits
	if f.metaOff >= size {
		return nil, fmt.Errorf("reading superblock: metadata block %d is past the end of the %d-byte image: %w", sb.MetaBlkAddr, size, ErrCorrupt)
	}
	if err := f.loadComprCfgs(); err != nil {
		return nil, err
	}
	if err := f.loadDevices(opts.Devices); err != nil {
		return nil, err
	}
	budget := opts.CacheBytes
	if budget == 0 {
		budget = DefaultCacheBytes
	}
	f.cache = newExtentCache(budget)
	if _, err := f.inode(sb.RootNid); err != nil {
		return nil, fmt.Errorf("reading root directory: %w", err)
	}
	return f, nil
}

// Superblock returns a copy of the image's superblock.
func (f *FS) Superblock() Superblock { return *f.sb }

// readFull reads n bytes at off, clamped to the image size (fewer bytes are returned when the
// image ends first).
func readFull(r io.ReaderAt, size, off, n int64) ([]byte, error) {
	if off >= size {
		return nil, io.ErrUnexpectedEOF
	}
	if off+n > size {
		n = size - off
	}
	buf := make([]byte, n)
	m, err := r.ReadAt(buf, off)
	if m == len(buf) {
		return buf, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

// readAt reads exactly len(p) bytes at off of the primary image, naming what is read in errors.
func (f *FS) readAt(p []byte, off int64, what string) error {
	if off < 0 || off > f.size || int64(len(p)) > f.size-off {
		return fmt.Errorf("reading %s: %d bytes at offset %d past the end of the %d-byte image: %w", what, len(p), off, f.size, ErrCorrupt)
	}
	n, err := f.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("reading %s: %d bytes at offset %d: %w", what, len(p), off, err)
}

// loadComprCfgs reads the compression configuration records that follow the superblock when the
// image has FeatureIncompatComprCfgs: for each algorithm bit set, a 2-byte length and the record.
func (f *FS) loadComprCfgs() error {
	sb := f.sb
	f.lz4.maxPclusterBlks = 1
	if sb.FeatureIncompat&FeatureIncompatComprCfgs == 0 {
		return nil
	}
	if sb.ComprAlgs&^1 != 0 {
		return fmt.Errorf("reading superblock: compression algorithms %s not supported (only lz4): %w", algNames(sb.ComprAlgs&^1), ErrUnsupported)
	}
	off := int64(SuperblockOffset + superblockSize + int(sb.ExtSlots)*16)
	for alg := 0; alg < 16; alg++ {
		if sb.ComprAlgs&(1<<alg) == 0 {
			continue
		}
		var lb [2]byte
		if err := f.readAt(lb[:], off, "compression config length"); err != nil {
			return err
		}
		n := int64(binary.LittleEndian.Uint16(lb[:]))
		if n > 256 {
			return fmt.Errorf("reading compression config of %s at offset %d: length %d too large: %w", algName(alg), off, n, ErrCorrupt)
		}
		rec := make([]byte, n)
		if err := f.readAt(rec, off+2, "compression config"); err != nil {
			return err
		}
		if alg == algLZ4 {
			if n < 14 {
				return fmt.Errorf("reading lz4 config at offset %d: %d bytes, need 14: %w", off, n, ErrCorrupt)
			}
			f.lz4.maxPclusterBlks = binary.LittleEndian.Uint16(rec[2:])
			if f.lz4.maxPclusterBlks == 0 {
				f.lz4.maxPclusterBlks = 1
			}
			if int64(f.lz4.maxPclusterBlks)<<f.bsBits > maxPclusterSize {
				return fmt.Errorf("reading lz4 config at offset %d: %d-block pclusters exceed %d bytes: %w", off, f.lz4.maxPclusterBlks, maxPclusterSize, ErrCorrupt)
			}
		}
		off += 2 + n
	}
	return nil
}

const (
	algLZ4 = iota
	algLZMA
	algDeflate
	algZstd
)

func algName(a int) string {
	switch a {
	case algLZ4:
		return "lz4"
	case algLZMA:
		return "lzma"
	case algDeflate:
		return "deflate"
	case algZstd:
		return "zstd"
	}
	return fmt.Sprintf("algorithm %d", a)
}

func algNames(bitmap uint16) string {
	s := ""
	for a := 0; a < 16; a++ {
		if bitmap&(1<<a) != 0 {
			if s != "" {
				s += ", "
			}
			s += algName(a)
		}
	}
	return s
}

const devtSlotSize = 128

// loadDevices reads the device table of a multi-device image and pairs it with the devices given.
func (f *FS) loadDevices(given []Device) error {
	sb := f.sb
	if sb.FeatureIncompat&FeatureIncompatDeviceTable == 0 || sb.ExtraDevices == 0 {
		return nil
	}
	off := int64(sb.DevtSlotOff) * devtSlotSize
	for i := 0; i < int(sb.ExtraDevices); i++ {
		slot := make([]byte, devtSlotSize)
		pos := off + int64(i)*devtSlotSize
		if err := f.readAt(slot, pos, fmt.Sprintf("device table slot %d", i+1)); err != nil {
			return err
		}
		d := deviceSlot{
			blocks:        binary.LittleEndian.Uint32(slot[64:]),
			mappedBlkAddr: binary.LittleEndian.Uint32(slot[68:]),
		}
		if i < len(given) && given[i].R != nil {
			d.r, d.size = given[i].R, given[i].Size
		}
		f.devices = append(f.devices, d)
	}
	return nil
}
