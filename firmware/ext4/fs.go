package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
)

// Errors. Structural problems wrap ErrCorrupt; checksum mismatches wrap both ErrCorrupt and
// ErrChecksum; features this reader cannot handle wrap errors.ErrUnsupported.
var (
	ErrNotExt4  = errors.New("not an ext2/3/4 file system (bad superblock magic)")
	ErrCorrupt  = errors.New("corrupt ext4 image")
	ErrChecksum = errors.New("ext4 checksum mismatch")
)

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func checksumf(format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", ErrCorrupt, ErrChecksum, fmt.Sprintf(format, args...))
}

func unsupportedf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errors.ErrUnsupported, fmt.Sprintf(format, args...))
}

// Feature flags (superblock s_feature_*).
const (
	compatDirIndex   = 0x20
	compatSparseSup2 = 0x200

	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBG      = 0x10
	incompatExtents     = 0x40
	incompat64bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBG      = 0x200
	incompatEAInode     = 0x400
	incompatDirData     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargeDir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000

	roCompatSparseSuper  = 0x1
	roCompatLargeFile    = 0x2
	roCompatHugeFile     = 0x8
	roCompatGdtCsum      = 0x10
	roCompatDirNlink     = 0x20
	roCompatExtraIsize   = 0x40
	roCompatQuota        = 0x100
	roCompatBigalloc     = 0x200
	roCompatMetadataCsum = 0x400
	roCompatReadonly     = 0x1000
	roCompatProject      = 0x2000
	roCompatSharedBlocks = 0x4000
	roCompatVerity       = 0x8000
)

const supportedIncompat = incompatFiletype | incompatRecover | incompatMetaBG | incompatExtents | incompat64bit |
	incompatMMP | incompatFlexBG | incompatEAInode | incompatCsumSeed | incompatLargeDir | incompatInlineData |
	incompatEncrypt | incompatCasefold

// Superblock holds the superblock fields the reader uses.
type Superblock struct {
	InodesCount     uint32
	BlocksCount     uint64
	FreeBlocks      uint64 // as the superblock counts them (the descriptors are the truth)
	FreeInodes      uint32
	FirstDataBlock  uint32
	LogBlockSize    uint32
	BlocksPerGroup  uint32
	InodesPerGroup  uint32
	Magic           uint16
	RevLevel        uint32
	FirstIno        uint32
	InodeSize       uint16
	FeatureCompat   uint32
	FeatureIncompat uint32
	FeatureROCompat uint32
	UUID            [16]byte
	VolumeName      string
	LastMounted     string
	ReservedGDT     uint16
	DescSize        uint16
	FirstMetaBG     uint32
	BackupBGs       [2]uint32
	ChecksumType    uint8
	ChecksumSeed    uint32
	Checksum        uint32
}

// BlockSize returns the block size in bytes.
func (sb Superblock) BlockSize() int64 { return 1024 << sb.LogBlockSize }

// HasSharedBlocks reports the shared_blocks feature (Android block deduplication).
func (sb Superblock) HasSharedBlocks() bool { return sb.FeatureROCompat&roCompatSharedBlocks != 0 }

// HasMetadataCsum reports the metadata_csum feature.
func (sb Superblock) HasMetadataCsum() bool { return sb.FeatureROCompat&roCompatMetadataCsum != 0 }

// Features returns the names of the feature flags set, as mke2fs and dumpe2fs spell them.
func (sb Superblock) Features() []string {
	var out []string
	add := func(set uint32, names map[uint32]string) {
		var bits []uint32
		for b := range names {
			bits = append(bits, b)
		}
		sort.Slice(bits, func(i, j int) bool { return bits[i] < bits[j] })
		for _, b := range bits {
			if set&b != 0 {
				out = append(out, names[b])
			}
		}
	}
	add(sb.FeatureCompat, map[uint32]string{0x1: "dir_prealloc", 0x2: "imagic_inodes", 0x4: "has_journal", 0x8: "ext_attr",
		0x10: "resize_inode", 0x20: "dir_index", 0x200: "sparse_super2", 0x400: "fast_commit", 0x1000: "orphan_file"})
	add(sb.FeatureIncompat, map[uint32]string{0x1: "compression", 0x2: "filetype", 0x4: "needs_recovery", 0x8: "journal_dev",
		0x10: "meta_bg", 0x40: "extent", 0x80: "64bit", 0x100: "mmp", 0x200: "flex_bg", 0x400: "ea_inode",
		0x1000: "dirdata", 0x2000: "metadata_csum_seed", 0x4000: "large_dir", 0x8000: "inline_data",
		0x10000: "encrypt", 0x20000: "casefold"})
	add(sb.FeatureROCompat, map[uint32]string{0x1: "sparse_super", 0x2: "large_file", 0x8: "huge_file", 0x10: "uninit_bg",
		0x20: "dir_nlink", 0x40: "extra_isize", 0x100: "quota", 0x200: "bigalloc", 0x400: "metadata_csum",
		0x1000: "read-only", 0x2000: "project", 0x4000: "shared_blocks", 0x8000: "verity"})
	return out
}

type groupDesc struct {
	blockBitmap, inodeBitmap, inodeTable uint64
	flags                                uint16
	itableUnused                         uint32
}

const (
	bgInodeUninit = 0x1
)

// FS is an opened ext4 file system. It is safe for concurrent use when the io.ReaderAt is.
type FS struct {
	r         io.ReaderAt
	size      int64
	sb        Superblock
	bs        int64
	groups    []groupDesc
	descSize  int64
	csumSeed  uint32
	metaCsum  bool
	gdtCsum   bool
	meta      []blockRange // sorted, merged metadata block ranges
	inodeSize int64
	// newExtraIsize is the i_extra_isize the Editor gives new inodes (0 for 128-byte inodes).
	newExtraIsize uint16

	xattrMu    sync.Mutex
	xattrCache map[uint64]map[string][]byte // external xattr blocks by block number

	dirMu     sync.Mutex
	dirCache  map[uint32]*dirListing // directory listings by inode
	dirCached int                    // entries in dirCache
}

type blockRange struct{ start, end uint64 } // [start, end)

// Limits on what a hostile image can make the reader allocate or walk.
const (
	maxDirSize      = 256 << 20 // bytes of one directory
	maxSymlinkHops  = 40
	maxExtentDepth  = 5
	maxReadFileSize = 1 << 30 // ReadFile refuses bigger files; open and read in pieces instead
	maxXattrValue   = 1 << 16
)

// Open reads the superblock and group descriptors of the file system in r (size bytes) and checks
// them, including their checksums when the file system has them.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	fsys := &FS{r: r, size: size, xattrCache: map[uint64]map[string][]byte{}, dirCache: map[uint32]*dirListing{}}
	raw := make([]byte, 1024)
	if err := fsys.readAt(raw, 1024, "superblock"); err != nil {
		return nil, err
	}
	if err := fsys.parseSuperblock(raw); err != nil {
		return nil, err
	}
	if err := fsys.readGroups(); err != nil {
		return nil, err
	}
	fsys.buildMetadataRanges()
	return fsys, nil
}

// Superblock returns a copy of the parsed superblock.
func (fsys *FS) Superblock() Superblock { return fsys.sb }

// readAt reads exactly len(p) bytes at off, naming what for in errors.
func (fsys *FS) readAt(p []byte, off int64, what string) error {
	if off < 0 || off+int64(len(p)) > fsys.size {
		return corruptf("%s at offset %d (%d bytes) lies past the end of the %d-byte image", what, off, len(p), fsys.size)
	}
	n, err := fsys.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return corruptf("%s at offset %d: image truncated (read %d of %d bytes)", what, off, n, len(p))
	}
	return fmt.Errorf("reading %s at offset %d: %w", what, off, err)
}

// readBlock reads block b (validated against the file system size).
func (fsys *FS) readBlock(b uint64, what string) ([]byte, error) {
	if b >= fsys.sb.BlocksCount {
		return nil, corruptf("%s: block %d is past the end of the file system (%d blocks)", what, b, fsys.sb.BlocksCount)
	}
	p := make([]byte, fsys.bs)
	if err := fsys.readAt(p, int64(b)*fsys.bs, what); err != nil {
		return nil, err
	}
	return p, nil
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func (fsys *FS) parseSuperblock(b []byte) error {
	le := binary.LittleEndian
	sb := &fsys.sb
	sb.Magic = le.Uint16(b[0x38:])
	if sb.Magic != 0xEF53 {
		return fmt.Errorf("reading superblock at offset 1024: %w (0x%04X)", ErrNotExt4, sb.Magic)
	}
	sb.InodesCount = le.Uint32(b[0x0:])
	sb.BlocksCount = uint64(le.Uint32(b[0x4:]))
	sb.FreeBlocks = uint64(le.Uint32(b[0xC:]))
	sb.FreeInodes = le.Uint32(b[0x10:])
	sb.FirstDataBlock = le.Uint32(b[0x14:])
	sb.LogBlockSize = le.Uint32(b[0x18:])
	sb.BlocksPerGroup = le.Uint32(b[0x20:])
	sb.InodesPerGroup = le.Uint32(b[0x28:])
	sb.RevLevel = le.Uint32(b[0x4C:])
	sb.FirstIno = 11
	sb.InodeSize = 128
	if sb.RevLevel >= 1 {
		sb.FirstIno = le.Uint32(b[0x54:])
		sb.InodeSize = le.Uint16(b[0x58:])
		sb.FeatureCompat = le.Uint32(b[0x5C:])
		sb.FeatureIncompat = le.Uint32(b[0x60:])
		sb.FeatureROCompat = le.Uint32(b[0x64:])
	}
	copy(sb.UUID[:], b[0x68:0x78])
	sb.VolumeName = cstring(b[0x78:0x88])
	sb.LastMounted = cstring(b[0x88:0xC8])
	sb.ReservedGDT = le.Uint16(b[0xCE:])
	sb.DescSize = le.Uint16(b[0xFE:])
	sb.FirstMetaBG = le.Uint32(b[0x104:])
	sb.BackupBGs = [2]uint32{le.Uint32(b[0x24C:]), le.Uint32(b[0x250:])}
	sb.ChecksumType = b[0x175]
	sb.ChecksumSeed = le.Uint32(b[0x270:])
	sb.Checksum = le.Uint32(b[0x3FC:])

	if sb.FeatureIncompat&incompat64bit != 0 {
		sb.BlocksCount |= uint64(le.Uint32(b[0x150:])) << 32
		sb.FreeBlocks |= uint64(le.Uint32(b[0x158:])) << 32
	}
	fsys.metaCsum = sb.FeatureROCompat&roCompatMetadataCsum != 0
	fsys.gdtCsum = sb.FeatureROCompat&roCompatGdtCsum != 0
	if fsys.metaCsum {
		if sb.ChecksumType != 1 {
			return corruptf("superblock at offset 1024: metadata_csum with unknown checksum type %d", sb.ChecksumType)
		}
		if got := crc32c(0xFFFFFFFF, b[:0x3FC]); got != sb.Checksum {
			return checksumf("superblock at offset 1024: checksum 0x%08x, computed 0x%08x", sb.Checksum, got)
		}
		if sb.FeatureIncompat&incompatCsumSeed != 0 {
			fsys.csumSeed = sb.ChecksumSeed
		} else {
			fsys.csumSeed = crc32c(0xFFFFFFFF, sb.UUID[:])
		}
	}
	if bad := sb.FeatureIncompat &^ supportedIncompat; bad != 0 {
		return unsupportedf("superblock at offset 1024: incompatible features 0x%x (journal_dev, compression or dirdata) are not supported", bad)
	}
	switch {
	case sb.LogBlockSize > 6:
		return corruptf("superblock at offset 1024: block size 1024<<%d is above 64 KiB", sb.LogBlockSize)
	case sb.BlocksPerGroup == 0 || int64(sb.BlocksPerGroup) > 8*sb.BlockSize():
		return corruptf("superblock at offset 1024: %d blocks per group (a block bitmap covers at most %d)", sb.BlocksPerGroup, 8*sb.BlockSize())
	case sb.InodesPerGroup == 0 || int64(sb.InodesPerGroup) > 8*sb.BlockSize():
		return corruptf("superblock at offset 1024: %d inodes per group (an inode bitmap covers at most %d)", sb.InodesPerGroup, 8*sb.BlockSize())
	case sb.InodeSize < 128 || sb.InodeSize&(sb.InodeSize-1) != 0 || int64(sb.InodeSize) > sb.BlockSize():
		return corruptf("superblock at offset 1024: inode size %d is not a power of two between 128 and the block size", sb.InodeSize)
	case sb.BlocksCount <= uint64(sb.FirstDataBlock):
		return corruptf("superblock at offset 1024: %d blocks, first data block %d", sb.BlocksCount, sb.FirstDataBlock)
	case sb.FirstDataBlock != 0 && !(sb.LogBlockSize == 0 && sb.FirstDataBlock == 1):
		return corruptf("superblock at offset 1024: first data block %d with %d-byte blocks", sb.FirstDataBlock, sb.BlockSize())
	}
	fsys.bs = sb.BlockSize()
	fsys.inodeSize = int64(sb.InodeSize)
	if fsys.inodeSize > 128 {
		want := le.Uint16(b[0x15E:])
		if minI := le.Uint16(b[0x15C:]); want < minI {
			want = minI
		}
		if want == 0 {
			want = 32
		}
		fsys.newExtraIsize = min(want, uint16(fsys.inodeSize-128)) &^ 3
	}
	if sb.BlocksCount > uint64(fsys.size/fsys.bs) {
		return corruptf("superblock at offset 1024: the file system has %d blocks of %d bytes (%d bytes) but the image is only %d bytes (truncated?)",
			sb.BlocksCount, fsys.bs, sb.BlocksCount*uint64(fsys.bs), fsys.size)
	}
	groups := (sb.BlocksCount - uint64(sb.FirstDataBlock) + uint64(sb.BlocksPerGroup) - 1) / uint64(sb.BlocksPerGroup)
	if uint64(sb.InodesPerGroup)*groups != uint64(sb.InodesCount) {
		return corruptf("superblock at offset 1024: %d inodes, but %d groups of %d inodes make %d", sb.InodesCount, groups, sb.InodesPerGroup, uint64(sb.InodesPerGroup)*groups)
	}
	if sb.RevLevel >= 1 && (sb.FirstIno < 11 || sb.FirstIno > sb.InodesCount) {
		return corruptf("superblock at offset 1024: first non-reserved inode %d", sb.FirstIno)
	}
	fsys.descSize = 32
	if sb.FeatureIncompat&incompat64bit != 0 {
		fsys.descSize = int64(sb.DescSize)
		if fsys.descSize < 64 || fsys.descSize > 1024 || fsys.descSize&(fsys.descSize-1) != 0 {
			return corruptf("superblock at offset 1024: group descriptor size %d (64bit needs a power of two from 64 to 1024)", sb.DescSize)
		}
	}
	fsys.groups = make([]groupDesc, groups)
	return nil
}

// hasSuper reports whether group g holds a superblock backup (and so the group descriptor table).
func (fsys *FS) hasSuper(g uint64) bool {
	if g == 0 {
		return true
	}
	if fsys.sb.FeatureCompat&compatSparseSup2 != 0 {
		return g == uint64(fsys.sb.BackupBGs[0]) || g == uint64(fsys.sb.BackupBGs[1])
	}
	if fsys.sb.FeatureROCompat&roCompatSparseSuper == 0 || g == 1 {
		return true
	}
	for _, base := range []uint64{3, 5, 7} {
		p := base
		for p < g {
			p *= base
		}
		if p == g {
			return true
		}
	}
	return false
}

func (fsys *FS) groupFirstBlock(g uint64) uint64 {
	return uint64(fsys.sb.FirstDataBlock) + g*uint64(fsys.sb.BlocksPerGroup)
}

// gdtBlock returns the block holding the i-th block of group descriptors.
func (fsys *FS) gdtBlock(i uint64) uint64 {
	perBlock := uint64(fsys.bs / fsys.descSize)
	if fsys.sb.FeatureIncompat&incompatMetaBG == 0 || i < uint64(fsys.sb.FirstMetaBG) {
		return uint64(fsys.sb.FirstDataBlock) + 1 + i
	}
	g := i * perBlock
	b := fsys.groupFirstBlock(g)
	if fsys.hasSuper(g) {
		b++
	}
	return b
}

func (fsys *FS) readGroups() error {
	le := binary.LittleEndian
	perBlock := uint64(fsys.bs / fsys.descSize)
	n := uint64(len(fsys.groups))
	var blk []byte
	var cur uint64 = ^uint64(0)
	itableBlocks := (uint64(fsys.sb.InodesPerGroup)*uint64(fsys.inodeSize) + uint64(fsys.bs) - 1) / uint64(fsys.bs)
	for g := uint64(0); g < n; g++ {
		if bi := g / perBlock; bi != cur {
			var err error
			b := fsys.gdtBlock(bi)
			blk, err = fsys.readBlock(b, fmt.Sprintf("group descriptor block %d", bi))
			if err != nil {
				return err
			}
			cur = bi
		}
		off := int64(g%perBlock) * fsys.descSize
		d := blk[off : off+fsys.descSize]
		gd := groupDesc{
			blockBitmap:  uint64(le.Uint32(d[0x0:])),
			inodeBitmap:  uint64(le.Uint32(d[0x4:])),
			inodeTable:   uint64(le.Uint32(d[0x8:])),
			flags:        le.Uint16(d[0x12:]),
			itableUnused: uint32(le.Uint16(d[0x1C:])),
		}
		if fsys.descSize >= 64 {
			gd.blockBitmap |= uint64(le.Uint32(d[0x20:])) << 32
			gd.inodeBitmap |= uint64(le.Uint32(d[0x24:])) << 32
			gd.inodeTable |= uint64(le.Uint32(d[0x28:])) << 32
			gd.itableUnused |= uint32(le.Uint16(d[0x32:])) << 16
		}
		where := int64(fsys.gdtBlock(g/perBlock))*fsys.bs + off
		if err := fsys.checkGroupDesc(g, d, where); err != nil {
			return err
		}
		if gd.inodeTable < uint64(fsys.sb.FirstDataBlock) || gd.inodeTable+itableBlocks > fsys.sb.BlocksCount {
			return corruptf("group descriptor %d at offset %d: inode table at block %d (%d blocks) is outside the file system", g, where, gd.inodeTable, itableBlocks)
		}
		if gd.itableUnused > fsys.sb.InodesPerGroup {
			return corruptf("group descriptor %d at offset %d: %d unused inodes in a group of %d", g, where, gd.itableUnused, fsys.sb.InodesPerGroup)
		}
		fsys.groups[g] = gd
	}
	return nil
}

func (fsys *FS) checkGroupDesc(g uint64, d []byte, where int64) error {
	stored := binary.LittleEndian.Uint16(d[0x1E:])
	var group [4]byte
	binary.LittleEndian.PutUint32(group[:], uint32(g))
	var got uint16
	switch {
	case fsys.metaCsum:
		c := crc32c(fsys.csumSeed, group[:])
		c = crc32c(c, d[:0x1E])
		c = crc32c(c, []byte{0, 0})
		c = crc32c(c, d[0x20:])
		got = uint16(c)
	case fsys.gdtCsum:
		c := crc16(0xFFFF, fsys.sb.UUID[:])
		c = crc16(c, group[:])
		c = crc16(c, d[:0x1E])
		if len(d) > 0x20 {
			c = crc16(c, d[0x20:])
		}
		got = c
	default:
		return nil
	}
	if got != stored {
		return checksumf("group descriptor %d at offset %d: checksum 0x%04x, computed 0x%04x", g, where, stored, got)
	}
	return nil
}

// buildMetadataRanges records the blocks that hold file system metadata (superblocks, group
// descriptors, bitmaps, inode tables) so file data pointing into them is reported as corrupt.
func (fsys *FS) buildMetadataRanges() {
	var rs []blockRange
	add := func(s, n uint64) {
		if n > 0 {
			rs = append(rs, blockRange{s, s + n})
		}
	}
	perBlock := uint64(fsys.bs / fsys.descSize)
	gdtBlocks := (uint64(len(fsys.groups)) + perBlock - 1) / perBlock
	itableBlocks := (uint64(fsys.sb.InodesPerGroup)*uint64(fsys.inodeSize) + uint64(fsys.bs) - 1) / uint64(fsys.bs)
	// The primary superblock (and the boot block before it) and descriptor table.
	add(0, uint64(fsys.sb.FirstDataBlock)+1)
	if fsys.sb.FeatureIncompat&incompatMetaBG == 0 {
		add(uint64(fsys.sb.FirstDataBlock)+1, gdtBlocks+uint64(fsys.sb.ReservedGDT))
	} else {
		for i := uint64(0); i < gdtBlocks; i++ {
			add(fsys.gdtBlock(i), 1)
		}
	}
	for _, gd := range fsys.groups {
		add(gd.blockBitmap, 1)
		add(gd.inodeBitmap, 1)
		add(gd.inodeTable, itableBlocks)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].start < rs[j].start })
	var merged []blockRange
	for _, r := range rs {
		if k := len(merged) - 1; k >= 0 && r.start <= merged[k].end {
			merged[k].end = max(merged[k].end, r.end)
			continue
		}
		merged = append(merged, r)
	}
	fsys.meta = merged
}

// checkData reports whether physical blocks [b, b+n) are valid file data: inside the file system
// and not in its metadata.
func (fsys *FS) checkData(b, n uint64, what func() string) error {
	if n == 0 {
		return nil
	}
	if b+n < b || b+n > fsys.sb.BlocksCount {
		return corruptf("%s: blocks %d..%d lie past the end of the file system (%d blocks)", what(), b, b+n-1, fsys.sb.BlocksCount)
	}
	i := sort.Search(len(fsys.meta), func(i int) bool { return fsys.meta[i].end > b })
	if i < len(fsys.meta) && fsys.meta[i].start < b+n {
		m := fsys.meta[i]
		return corruptf("%s: blocks %d..%d overlap file system metadata (blocks %d..%d: superblock, group descriptors, bitmaps or inode table)", what(), b, b+n-1, m.start, m.end-1)
	}
	return nil
}
