package erofs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"strings"
	"time"
)

// Magic is the EROFS superblock magic number, stored little-endian at byte SuperblockOffset.
const Magic = 0xE0F5E1E2

// SuperblockOffset is where the superblock starts in an image.
const SuperblockOffset = 1024

const superblockSize = 128

// Errors wrapped by what this package returns; check them with errors.Is.
var (
	// ErrNotEROFS means the image does not start with an EROFS superblock (bad magic).
	ErrNotEROFS = errors.New("not an EROFS image")
	// ErrUnsupported means the image is valid EROFS but uses a feature this reader does not implement.
	ErrUnsupported = errors.New("unsupported EROFS feature")
	// ErrCorrupt means a structure of the image is inconsistent or points outside the image.
	ErrCorrupt = errors.New("corrupt EROFS image")
)

// Compat feature bits: a reader that does not know one may still read the image.
const (
	FeatureCompatSBChecksum  = 0x00000001
	FeatureCompatMtime       = 0x00000002
	FeatureCompatXattrFilter = 0x00000004
)

// Incompat feature bits: a reader must understand every one set in an image.
const (
	FeatureIncompatZeroPadding   = 0x00000001 // lz4 streams right-aligned after zero padding ("0padding")
	FeatureIncompatComprCfgs     = 0x00000002 // compression configuration records after the superblock
	FeatureIncompatBigPcluster   = 0x00000002 // pclusters of several blocks (same bit as ComprCfgs)
	FeatureIncompatChunkedFile   = 0x00000004 // CHUNK_BASED data layout
	FeatureIncompatDeviceTable   = 0x00000008 // extra devices (blob files) and the device table
	FeatureIncompatComprHead2    = 0x00000008 // a second compression algorithm (HEAD2 lclusters)
	FeatureIncompatZTailpacking  = 0x00000010 // tail pcluster inline in the metadata block
	FeatureIncompatFragments     = 0x00000020 // file tails packed into the special packed inode
	FeatureIncompatDedupe        = 0x00000020 // pclusters shared by several extents (same bit)
	FeatureIncompatXattrPrefixes = 0x00000040 // long xattr name prefixes
	FeatureIncompat48Bit         = 0x00000080 // 48-bit block addresses and inode numbers
	FeatureIncompatMetabox       = 0x00000100 // metadata in a separate "metabox" inode
)

// supportedIncompat are the incompat features this reader implements.
const supportedIncompat = FeatureIncompatZeroPadding | FeatureIncompatComprCfgs |
	FeatureIncompatChunkedFile | FeatureIncompatDeviceTable | FeatureIncompatZTailpacking

var compatNames = []struct {
	bit  uint32
	name string
}{
	{FeatureCompatSBChecksum, "sb_csum"},
	{FeatureCompatMtime, "mtime"},
	{FeatureCompatXattrFilter, "xattr_filter"},
}

var incompatNames = []struct {
	bit  uint32
	name string
}{
	{FeatureIncompatZeroPadding, "0padding"},
	{FeatureIncompatBigPcluster, "big_pcluster"},
	{FeatureIncompatChunkedFile, "chunked_file"},
	{FeatureIncompatDeviceTable, "device_table"},
	{FeatureIncompatZTailpacking, "ztailpacking"},
	{FeatureIncompatFragments, "fragments/dedupe"},
	{FeatureIncompatXattrPrefixes, "xattr_prefixes"},
	{FeatureIncompat48Bit, "48bit"},
	{FeatureIncompatMetabox, "metabox"},
}

func featureNames(v uint32, table []struct {
	bit  uint32
	name string
}) []string {
	var out []string
	for _, f := range table {
		if v&f.bit != 0 {
			out = append(out, f.name)
			v &^= f.bit
		}
	}
	for v != 0 {
		b := uint32(1) << bits.TrailingZeros32(v)
		out = append(out, fmt.Sprintf("unknown(%#x)", b))
		v &^= b
	}
	return out
}

// Superblock is the decoded EROFS superblock.
type Superblock struct {
	Checksum        uint32
	FeatureCompat   uint32
	FeatureIncompat uint32
	BlockSizeBits   uint8
	ExtSlots        uint8
	RootNid         uint64
	Inodes          uint64 // total valid inodes
	BuildTime       uint64 // seconds ("epoch"); compact inodes store their mtime relative to it
	BuildTimeNsec   uint32 // nanoseconds of every compact inode's mtime
	MkfsTime        uint32 // seconds after BuildTime when mkfs ran (newer images; 0 before)
	Blocks          uint32 // blocks used by the image
	MetaBlkAddr     uint32 // block where inode slots (nids) start
	XattrBlkAddr    uint32 // block where the shared xattr table starts
	UUID            [16]byte
	VolumeName      string
	// ComprAlgs is the bitmap of compression algorithms used (bit 0: lz4, 1: lzma, 2: deflate,
	// 3: zstd) when FeatureIncompatComprCfgs is set; otherwise LZ4MaxDistance holds the field.
	ComprAlgs      uint16
	LZ4MaxDistance uint16
	ExtraDevices   uint16
	DevtSlotOff    uint16
	DirBlockBits   uint8
	XattrPrefixes  uint8
	PackedNid      uint64
}

// BlockSize returns the block size in bytes.
func (sb Superblock) BlockSize() int64 { return int64(1) << sb.BlockSizeBits }

// Built returns the build time recorded in the superblock.
func (sb Superblock) Built() time.Time {
	return time.Unix(int64(sb.BuildTime)+int64(sb.MkfsTime), int64(sb.BuildTimeNsec%1e9)).UTC()
}

// Features returns the names of the compat and incompat features set, e.g. "sb_csum", "0padding".
func (sb Superblock) Features() []string {
	return append(featureNames(sb.FeatureCompat, compatNames), featureNames(sb.FeatureIncompat, incompatNames)...)
}

// Probe reports whether r holds an EROFS superblock magic at byte 1024. It reads 4 bytes.
func Probe(r io.ReaderAt) bool {
	var b [4]byte
	if _, err := r.ReadAt(b[:], SuperblockOffset); err != nil {
		return false
	}
	return binary.LittleEndian.Uint32(b[:]) == Magic
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// parseSuperblock decodes the superblock from the bytes of the first block starting at
// SuperblockOffset (raw holds at least superblockSize bytes; more up to the block end when the
// checksum feature is set). It checks magic, block size, checksum and incompat features.
func parseSuperblock(raw []byte) (*Superblock, error) {
	if len(raw) < superblockSize {
		return nil, fmt.Errorf("reading superblock at offset %d: %d bytes, need %d: %w", SuperblockOffset, len(raw), superblockSize, ErrNotEROFS)
	}
	le := binary.LittleEndian
	if m := le.Uint32(raw[0:]); m != Magic {
		return nil, fmt.Errorf("reading superblock at offset %d: magic %#08x, want %#08x: %w", SuperblockOffset, m, uint32(Magic), ErrNotEROFS)
	}
	sb := &Superblock{
		Checksum:        le.Uint32(raw[4:]),
		FeatureCompat:   le.Uint32(raw[8:]),
		BlockSizeBits:   raw[12],
		ExtSlots:        raw[13],
		RootNid:         uint64(le.Uint16(raw[14:])),
		Inodes:          le.Uint64(raw[16:]),
		BuildTime:       le.Uint64(raw[24:]),
		BuildTimeNsec:   le.Uint32(raw[32:]),
		Blocks:          le.Uint32(raw[36:]),
		MetaBlkAddr:     le.Uint32(raw[40:]),
		XattrBlkAddr:    le.Uint32(raw[44:]),
		FeatureIncompat: le.Uint32(raw[80:]),
		ExtraDevices:    le.Uint16(raw[86:]),
		DevtSlotOff:     le.Uint16(raw[88:]),
		DirBlockBits:    raw[90],
		XattrPrefixes:   raw[91],
		PackedNid:       le.Uint64(raw[96:]),
		MkfsTime:        le.Uint32(raw[108:]),
	}
	copy(sb.UUID[:], raw[48:64])
	sb.VolumeName = strings.TrimRight(string(raw[64:80]), "\x00")
	if sb.FeatureIncompat&FeatureIncompatComprCfgs != 0 {
		sb.ComprAlgs = le.Uint16(raw[84:])
	} else {
		sb.LZ4MaxDistance = le.Uint16(raw[84:])
	}
	// Block sizes from 512 bytes to 64 KiB are what Linux and erofs-utils accept.
	if sb.BlockSizeBits < 9 || sb.BlockSizeBits > 16 {
		return nil, fmt.Errorf("reading superblock: block size 2^%d out of range [2^9, 2^16]: %w", sb.BlockSizeBits, ErrCorrupt)
	}
	if sb.FeatureCompat&FeatureCompatSBChecksum != 0 {
		// The checksum covers the superblock up to the end of its block, with the checksum field
		// zeroed: crc32c seeded with ~0 and not inverted at the end (Linux's crc32c()).
		n := int(sb.BlockSize()) - SuperblockOffset
		if n <= 0 {
			n = superblockSize
		}
		if len(raw) < n {
			return nil, fmt.Errorf("checking superblock checksum at offset %d: it covers the rest of the first %d-byte block, %d bytes, but the image ends after %d (truncated?): %w", SuperblockOffset, sb.BlockSize(), n, len(raw), ErrCorrupt)
		}
		buf := make([]byte, n)
		copy(buf, raw[:n])
		clear(buf[4:8])
		got := ^crc32.Checksum(buf, castagnoli)
		if got != sb.Checksum {
			return nil, fmt.Errorf("checking superblock checksum at offset %d: stored %#08x, computed %#08x: %w", SuperblockOffset+4, sb.Checksum, got, ErrCorrupt)
		}
	}
	if unknown := sb.FeatureIncompat &^ supportedIncompat; unknown != 0 {
		return nil, fmt.Errorf("reading superblock: incompatible features %s not supported (image uses %s): %w",
			strings.Join(featureNames(unknown, incompatNames), ", "),
			strings.Join(featureNames(sb.FeatureIncompat, incompatNames), ", "), ErrUnsupported)
	}
	if sb.DirBlockBits != 0 {
		return nil, fmt.Errorf("reading superblock: directory block size 2^%d differs from block size: %w", int(sb.BlockSizeBits)+int(sb.DirBlockBits), ErrUnsupported)
	}
	return sb, nil
}
