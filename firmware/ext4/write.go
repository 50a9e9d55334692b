package ext4

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/provkit/provkit/internal/unixmode"
)

// ErrNoSpace means the file system has no free block or inode left for what is being added.
var ErrNoSpace = errors.New("no room left in the ext4 file system")

// ReadWriterAt is an image opened for reading and writing.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// Meta is the owner, permissions, time and extended attributes of a file or directory an Editor
// creates.
type Meta struct {
	Perm     uint16 // permission bits (07777)
	UID, GID uint32
	Mtime    time.Time // also used as atime, ctime and crtime
	// Xattrs are stored in the inode's extra space (as e2fsdroid stores security.selinux)
	// while they fit; the rest go to an external xattr block of the inode's own. Attributes
	// that do not fit one block are refused (xattr inodes are not written).
	Xattrs map[string][]byte
}

// Group descriptor flags and offsets this writer updates.
const (
	bgBlockUninit = 0x2

	gdFreeBlocksLo, gdFreeBlocksHi     = 0x0C, 0x2C
	gdFreeInodesLo, gdFreeInodesHi     = 0x0E, 0x2E
	gdUsedDirsLo, gdUsedDirsHi         = 0x10, 0x30
	gdFlags                            = 0x12
	gdBlockCsumLo, gdBlockCsumHi       = 0x18, 0x38
	gdInodeCsumLo, gdInodeCsumHi       = 0x1A, 0x3A
	gdItableUnusedLo, gdItableUnusedHi = 0x1C, 0x32
	gdChecksum                         = 0x1E

	flagCasefold  = 0x40000000
	maxExtentLen  = 32768 // blocks in one initialized extent
	maxInodeLinks = 65000
)

// Editor adds directories and files to an ext4 file system in place, as the kernel would: it
// allocates inodes and blocks from the bitmaps, links new entries into linear directories and
// keeps the group descriptors, superblock counters and metadata_csum checksums right.
//
// Changes to data, inodes and directories are written as they are made; bitmaps, group
// descriptors and the superblock are written by Close. After an error the image is inconsistent
// and must be thrown away: edit a copy.
type Editor struct {
	fsys       *FS
	w          io.WriterAt
	sbRaw      []byte
	gdt        map[uint64][]byte // descriptor table block index -> block
	blockBM    map[uint64][]byte // group -> block bitmap (bs bytes)
	inodeBM    map[uint64][]byte
	dirtyBlock map[uint64]bool
	dirtyInode map[uint64]bool
	dirtyDesc  map[uint64]bool
	extraIsize uint16
	closed     bool
}

// Edit opens the ext4 file system in rw (size bytes) for adding files. It refuses file systems
// whose layout this writer cannot keep consistent (a journal needing recovery, bigalloc, quota,
// no extents) with an error wrapping errors.ErrUnsupported.
func Edit(rw ReadWriterAt, size int64) (*Editor, error) {
	fsys, err := Open(rw, size)
	if err != nil {
		return nil, err
	}
	sb := fsys.sb
	switch {
	case sb.FeatureIncompat&incompatRecover != 0:
		return nil, unsupportedf("the journal needs recovery (the file system was not cleanly unmounted); run e2fsck on it first")
	case sb.FeatureROCompat&roCompatBigalloc != 0:
		return nil, unsupportedf("bigalloc file systems (clusters larger than blocks) are not written")
	case sb.FeatureROCompat&(roCompatQuota|roCompatProject) != 0:
		return nil, unsupportedf("file systems with the quota or project feature are not written (the quota files would need updating)")
	case sb.FeatureIncompat&incompatExtents == 0:
		return nil, unsupportedf("file systems without the extent feature (ext2/ext3 block maps) are not written")
	case sb.FeatureIncompat&incompatMMP != 0:
		return nil, unsupportedf("file systems with multi-mount protection are not written")
	case sb.RevLevel < 1:
		return nil, unsupportedf("revision 0 file systems are not written")
	}
	e := &Editor{fsys: fsys, w: rw, gdt: map[uint64][]byte{}, blockBM: map[uint64][]byte{}, inodeBM: map[uint64][]byte{},
		dirtyBlock: map[uint64]bool{}, dirtyInode: map[uint64]bool{}, dirtyDesc: map[uint64]bool{}}
	e.sbRaw = make([]byte, 1024)
	if err := fsys.readAt(e.sbRaw, 1024, "superblock"); err != nil {
		return nil, err
	}
	e.extraIsize = fsys.newExtraIsize
	perBlock := uint64(fsys.bs / fsys.descSize)
	for bi := uint64(0); bi*perBlock < uint64(len(fsys.groups)); bi++ {
		b, err := fsys.readBlock(fsys.gdtBlock(bi), fmt.Sprintf("group descriptor block %d", bi))
		if err != nil {
			return nil, err
		}
		e.gdt[bi] = b
	}
	return e, nil
}

// FS returns the file system being edited; it sees every change written so far except the
// counters Close writes.
func (e *Editor) FS() *FS { return e.fsys }

func (e *Editor) desc(g uint64) []byte {
	perBlock := uint64(e.fsys.bs / e.fsys.descSize)
	off := int64(g%perBlock) * e.fsys.descSize
	return e.gdt[g/perBlock][off : off+e.fsys.descSize]
}

func (e *Editor) descGet(g uint64, lo, hi int) uint32 {
	d := e.desc(g)
	v := uint32(binary.LittleEndian.Uint16(d[lo:]))
	if e.fsys.descSize >= 64 {
		v |= uint32(binary.LittleEndian.Uint16(d[hi:])) << 16
	}
	return v
}

func (e *Editor) descPut(g uint64, lo, hi int, v uint32) {
	d := e.desc(g)
	binary.LittleEndian.PutUint16(d[lo:], uint16(v))
	if e.fsys.descSize >= 64 {
		binary.LittleEndian.PutUint16(d[hi:], uint16(v>>16))
	}
	e.dirtyDesc[g] = true
}

func (e *Editor) clearGroupFlag(g uint64, f uint16) {
	d := e.desc(g)
	fl := binary.LittleEndian.Uint16(d[gdFlags:])
	if fl&f != 0 {
		binary.LittleEndian.PutUint16(d[gdFlags:], fl&^f)
		e.fsys.groups[g].flags = fl &^ f
		e.dirtyDesc[g] = true
	}
}

func (e *Editor) groupFlags(g uint64) uint16 { return binary.LittleEndian.Uint16(e.desc(g)[gdFlags:]) }

// groupBlocks returns the number of blocks in group g (the last group may be short).
func (e *Editor) groupBlocks(g uint64) uint64 {
	first := e.fsys.groupFirstBlock(g)
	return min(uint64(e.fsys.sb.BlocksPerGroup), e.fsys.sb.BlocksCount-first)
}

func setBit(b []byte, i uint64)       { b[i/8] |= 1 << (i % 8) }
func clearBit(b []byte, i uint64)     { b[i/8] &^= 1 << (i % 8) }
func testBit(b []byte, i uint64) bool { return b[i/8]&(1<<(i%8)) != 0 }

// blockBitmap returns group g's block bitmap, building it for a group whose bitmap was never
// initialized (BLOCK_UNINIT) from the metadata the group holds.
func (e *Editor) blockBitmap(g uint64) ([]byte, error) {
	if b, ok := e.blockBM[g]; ok {
		return b, nil
	}
	fsys := e.fsys
	var b []byte
	if (fsys.metaCsum || fsys.gdtCsum) && e.groupFlags(g)&bgBlockUninit != 0 {
		if fsys.sb.FeatureIncompat&incompatMetaBG != 0 {
			return nil, nil // not built for meta_bg layouts: such groups are skipped
		}
		b = make([]byte, fsys.bs)
		for i := range b {
			b[i] = 0xFF
		}
		first, n := fsys.groupFirstBlock(g), e.groupBlocks(g)
		for i := uint64(0); i < n; i++ {
			clearBit(b, i)
		}
		mark := func(s, cnt uint64) {
			for x := s; x < s+cnt; x++ {
				if x >= first && x < first+n {
					setBit(b, x-first)
				}
			}
		}
		if fsys.hasSuper(g) {
			perBlock := uint64(fsys.bs / fsys.descSize)
			gdtBlocks := (uint64(len(fsys.groups)) + perBlock - 1) / perBlock
			mark(first, 1+gdtBlocks+uint64(fsys.sb.ReservedGDT))
		}
		itable := (uint64(fsys.sb.InodesPerGroup)*uint64(fsys.inodeSize) + uint64(fsys.bs) - 1) / uint64(fsys.bs)
		for _, gd := range fsys.groups {
			mark(gd.blockBitmap, 1)
			mark(gd.inodeBitmap, 1)
			mark(gd.inodeTable, itable)
		}
	} else {
		gd := fsys.groups[g]
		var err error
		if b, err = fsys.readBlock(gd.blockBitmap, fmt.Sprintf("group %d block bitmap", g)); err != nil {
			return nil, err
		}
		if fsys.metaCsum {
			got := crc32c(fsys.csumSeed, b[:fsys.sb.BlocksPerGroup/8])
			if want := e.descGet(g, gdBlockCsumLo, gdBlockCsumHi); !e.csumMatch(got, want) {
				return nil, checksumf("group %d block bitmap at block %d: checksum 0x%x, computed 0x%x", g, gd.blockBitmap, want, got)
			}
		}
	}
	e.blockBM[g] = b
	return b, nil
}

func (e *Editor) csumMatch(got, want uint32) bool {
	if e.fsys.descSize < 64 {
		return got&0xFFFF == want
	}
	return got == want
}

// inodeBitmap returns group g's inode bitmap (all free for an INODE_UNINIT group).
func (e *Editor) inodeBitmap(g uint64) ([]byte, error) {
	if b, ok := e.inodeBM[g]; ok {
		return b, nil
	}
	fsys := e.fsys
	ipg := uint64(fsys.sb.InodesPerGroup)
	var b []byte
	if (fsys.metaCsum || fsys.gdtCsum) && e.groupFlags(g)&bgInodeUninit != 0 {
		b = make([]byte, fsys.bs)
		for i := range b {
			b[i] = 0xFF
		}
		for i := uint64(0); i < ipg; i++ {
			clearBit(b, i)
		}
	} else {
		gd := fsys.groups[g]
		var err error
		if b, err = fsys.readBlock(gd.inodeBitmap, fmt.Sprintf("group %d inode bitmap", g)); err != nil {
			return nil, err
		}
		if fsys.metaCsum {
			got := crc32c(fsys.csumSeed, b[:ipg/8])
			if want := e.descGet(g, gdInodeCsumLo, gdInodeCsumHi); !e.csumMatch(got, want) {
				return nil, checksumf("group %d inode bitmap at block %d: checksum 0x%x, computed 0x%x", g, gd.inodeBitmap, want, got)
			}
		}
	}
	e.inodeBM[g] = b
	return b, nil
}

// allocInode takes the lowest free inode number.
func (e *Editor) allocInode(dir bool) (uint32, error) {
	fsys := e.fsys
	ipg := uint64(fsys.sb.InodesPerGroup)
	for g := uint64(0); g < uint64(len(fsys.groups)); g++ {
		if e.descGet(g, gdFreeInodesLo, gdFreeInodesHi) == 0 {
			continue
		}
		bm, err := e.inodeBitmap(g)
		if err != nil {
			return 0, err
		}
		for i := uint64(0); i < ipg; i++ {
			ino := g*ipg + i + 1
			if ino < uint64(fsys.sb.FirstIno) || testBit(bm, i) {
				continue
			}
			setBit(bm, i)
			e.dirtyInode[g] = true
			e.descPut(g, gdFreeInodesLo, gdFreeInodesHi, e.descGet(g, gdFreeInodesLo, gdFreeInodesHi)-1)
			if dir {
				e.descPut(g, gdUsedDirsLo, gdUsedDirsHi, e.descGet(g, gdUsedDirsLo, gdUsedDirsHi)+1)
			}
			e.clearGroupFlag(g, bgInodeUninit)
			if fsys.metaCsum || fsys.gdtCsum {
				unused := e.descGet(g, gdItableUnusedLo, gdItableUnusedHi)
				if i >= ipg-uint64(unused) {
					unused = uint32(ipg - i - 1)
					e.descPut(g, gdItableUnusedLo, gdItableUnusedHi, unused)
					fsys.groups[g].itableUnused = unused
				}
			}
			return uint32(ino), nil
		}
	}
	return 0, fmt.Errorf("allocating an inode: %w: all %d inodes are in use", ErrNoSpace, fsys.sb.InodesCount)
}

// run is a run of physical blocks.
type run struct{ start, n uint64 }

// freeRuns calls fn for each run of free blocks, in block order, until it returns false.
func (e *Editor) freeRuns(fn func(g uint64, r run) bool) error {
	fsys := e.fsys
	for g := uint64(0); g < uint64(len(fsys.groups)); g++ {
		if e.descGet(g, gdFreeBlocksLo, gdFreeBlocksHi) == 0 {
			continue
		}
		bm, err := e.blockBitmap(g)
		if err != nil {
			return err
		}
		if bm == nil {
			continue
		}
		first, n := fsys.groupFirstBlock(g), e.groupBlocks(g)
		for i := uint64(0); i < n; {
			if testBit(bm, i) {
				i++
				continue
			}
			j := i
			for j < n && !testBit(bm, j) && j-i < maxExtentLen {
				j++
			}
			if !fn(g, run{first + i, j - i}) {
				return nil
			}
			i = j
		}
	}
	return nil
}

// markUsed takes blocks [r.start, r.start+r.n), all in group g, from the free pool.
func (e *Editor) markUsed(g uint64, r run) {
	bm := e.blockBM[g]
	first := e.fsys.groupFirstBlock(g)
	for b := r.start; b < r.start+r.n; b++ {
		setBit(bm, b-first)
	}
	e.dirtyBlock[g] = true
	e.descPut(g, gdFreeBlocksLo, gdFreeBlocksHi, e.descGet(g, gdFreeBlocksLo, gdFreeBlocksHi)-uint32(r.n))
	e.clearGroupFlag(g, bgBlockUninit)
}

// allocBlocks takes n blocks: one run when a free run is long enough, else the first free runs.
func (e *Editor) allocBlocks(n uint64, what string) ([]run, error) {
	if n == 0 {
		return nil, nil
	}
	type grun struct {
		g uint64
		r run
	}
	var pick []grun
	err := e.freeRuns(func(g uint64, r run) bool {
		if r.n >= n {
			pick = []grun{{g, run{r.start, n}}}
			return false
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if pick == nil {
		left := n
		err := e.freeRuns(func(g uint64, r run) bool {
			take := min(r.n, left)
			pick = append(pick, grun{g, run{r.start, take}})
			left -= take
			return left > 0
		})
		if err != nil {
			return nil, err
		}
		if left > 0 {
			return nil, fmt.Errorf("allocating %d blocks for %s: %w: only %d blocks of %d bytes are free (the image must be made larger)", n, what, ErrNoSpace, n-left, e.fsys.bs)
		}
	}
	out := make([]run, 0, len(pick))
	for _, p := range pick {
		e.markUsed(p.g, p.r)
		// merge runs that continue each other across a group boundary
		if k := len(out) - 1; k >= 0 && out[k].start+out[k].n == p.r.start && out[k].n+p.r.n <= maxExtentLen {
			out[k].n += p.r.n
			continue
		}
		out = append(out, p.r)
	}
	return out, nil
}

// allocBlockAt takes block b if it is free.
func (e *Editor) allocBlockAt(b uint64) (bool, error) {
	fsys := e.fsys
	if b < uint64(fsys.sb.FirstDataBlock) || b >= fsys.sb.BlocksCount {
		return false, nil
	}
	g := (b - uint64(fsys.sb.FirstDataBlock)) / uint64(fsys.sb.BlocksPerGroup)
	bm, err := e.blockBitmap(g)
	if err != nil || bm == nil {
		return false, err
	}
	if testBit(bm, b-fsys.groupFirstBlock(g)) {
		return false, nil
	}
	e.markUsed(g, run{b, 1})
	return true, nil
}

// inodeOffset returns the byte offset of inode ino in the image.
func (e *Editor) inodeOffset(ino uint32) int64 {
	sb := &e.fsys.sb
	g := (ino - 1) / sb.InodesPerGroup
	idx := (ino - 1) % sb.InodesPerGroup
	return int64(e.fsys.groups[g].inodeTable)*e.fsys.bs + int64(idx)*e.fsys.inodeSize
}

// writeInode sets raw's checksum and writes it as inode ino.
func (e *Editor) writeInode(ino uint32, raw []byte) error {
	le := binary.LittleEndian
	if e.fsys.metaCsum {
		le.PutUint16(raw[0x7C:], 0)
		hasHi := len(raw) > 128 && le.Uint16(raw[0x80:]) >= 4
		if hasHi {
			le.PutUint16(raw[0x82:], 0)
		}
		seed := crc32cU32(crc32cU32(e.fsys.csumSeed, ino), le.Uint32(raw[0x64:]))
		c := crc32c(seed, raw)
		le.PutUint16(raw[0x7C:], uint16(c))
		if hasHi {
			le.PutUint16(raw[0x82:], uint16(c>>16))
		}
	}
	return e.writeAt(raw, e.inodeOffset(ino), fmt.Sprintf("inode %d", ino))
}

func (e *Editor) writeAt(p []byte, off int64, what string) error {
	if off < 0 || off+int64(len(p)) > int64(e.fsys.sb.BlocksCount)*e.fsys.bs {
		return fmt.Errorf("writing %s at offset %d: past the end of the file system", what, off)
	}
	if _, err := e.w.WriteAt(p, off); err != nil {
		return fmt.Errorf("writing %s at offset %d: %w", what, off, err)
	}
	return nil
}

// updateInode reads inode ino (checking it), lets fn change its raw bytes, and writes it back.
func (e *Editor) updateInode(ino uint32, fn func(n *Inode, raw []byte) error) error {
	n, err := e.fsys.readInode(ino)
	if err != nil {
		return err
	}
	raw := make([]byte, e.fsys.inodeSize)
	if err := e.fsys.readAt(raw, n.off, fmt.Sprintf("inode %d", ino)); err != nil {
		return err
	}
	if err := fn(n, raw); err != nil {
		return err
	}
	e.invalidate()
	return e.writeInode(ino, raw)
}

func (e *Editor) invalidate() {
	e.fsys.dirMu.Lock()
	clear(e.fsys.dirCache)
	e.fsys.dirCached = 0
	e.fsys.dirMu.Unlock()
}

func putTime(raw []byte, lo, extra int, extraIsize uint16, t time.Time) {
	le := binary.LittleEndian
	secs := t.Unix()
	if t.IsZero() {
		secs, t = 0, time.Unix(0, 0)
	}
	le.PutUint32(raw[lo:], uint32(secs))
	if extra >= 0 && extra+4 <= 128+int(extraIsize) {
		epoch := uint32((secs-int64(int32(uint32(secs))))>>32) & 3
		le.PutUint32(raw[extra:], epoch|uint32(t.Nanosecond())<<2)
	}
}

// newInode builds the raw bytes of a new inode with the given mapping root in i_block.
func (e *Editor) newInode(mode uint16, m Meta, size uint64, links uint16, blocks uint64, iblock []byte, name string) ([]byte, error) {
	le := binary.LittleEndian
	raw := make([]byte, e.fsys.inodeSize)
	le.PutUint16(raw[0x0:], mode)
	le.PutUint16(raw[0x2:], uint16(m.UID))
	le.PutUint16(raw[0x78:], uint16(m.UID>>16))
	le.PutUint16(raw[0x18:], uint16(m.GID))
	le.PutUint16(raw[0x7A:], uint16(m.GID>>16))
	le.PutUint32(raw[0x4:], uint32(size))
	le.PutUint32(raw[0x6C:], uint32(size>>32))
	le.PutUint16(raw[0x1A:], links)
	b512 := blocks * uint64(e.fsys.bs/512)
	if b512 >= 1<<32 {
		return nil, unsupportedf("%s: %d blocks is more than this writer stores in i_blocks", name, blocks)
	}
	le.PutUint32(raw[0x1C:], uint32(b512))
	le.PutUint32(raw[0x20:], flagExtents)
	copy(raw[0x28:0x64], iblock)
	if len(raw) > 128 {
		le.PutUint16(raw[0x80:], e.extraIsize)
	}
	for _, f := range [][2]int{{0x08, 0x8C}, {0x0C, 0x84}, {0x10, 0x88}} {
		putTime(raw, f[0], f[1], e.extraIsize, m.Mtime)
	}
	if e.extraIsize >= 0x98-0x80 {
		putTime(raw, 0x90, 0x94, e.extraIsize, m.Mtime)
	}
	if err := e.putXattrs(raw, m.Xattrs, name); err != nil {
		return nil, err
	}
	return raw, nil
}

// putExtents writes an extent node header and leaf entries for runs (logical blocks from lblk0).
func putExtents(b []byte, runs []run, lblk0 uint64, max int) {
	le := binary.LittleEndian
	le.PutUint16(b[0:], extentMagic)
	le.PutUint16(b[2:], uint16(len(runs)))
	le.PutUint16(b[4:], uint16(max))
	le.PutUint16(b[6:], 0)
	lb := lblk0
	for i, r := range runs {
		x := b[12+12*i:]
		le.PutUint32(x[0:], uint32(lb))
		le.PutUint16(x[4:], uint16(r.n))
		le.PutUint16(x[6:], uint16(r.start>>32))
		le.PutUint32(x[8:], uint32(r.start))
		lb += r.n
	}
}

// leafMax is how many extents one extent tree block holds.
func (e *Editor) leafMax() int { return int((e.fsys.bs - 12) / 12) }

// writeLeaf writes runs as the extent leaf block leaf of inode ino.
func (e *Editor) writeLeaf(leaf uint64, runs []run, ino, generation uint32, name string) error {
	max := e.leafMax()
	blk := make([]byte, e.fsys.bs)
	putExtents(blk, runs, 0, max)
	if e.fsys.metaCsum {
		t := 12 + 12*max
		seed := crc32cU32(crc32cU32(e.fsys.csumSeed, ino), generation)
		binary.LittleEndian.PutUint32(blk[t:], crc32c(seed, blk[:t]))
	}
	return e.writeAt(blk, int64(leaf)*e.fsys.bs, name+" extent block")
}

// putIndexRoot makes i_block an index root (depth 1) pointing to leaf.
func putIndexRoot(ib []byte, leaf uint64) {
	le := binary.LittleEndian
	clear(ib)
	le.PutUint16(ib[0:], extentMagic)
	le.PutUint16(ib[2:], 1)
	le.PutUint16(ib[4:], 4)
	le.PutUint16(ib[6:], 1)
	le.PutUint32(ib[12:], 0)
	le.PutUint32(ib[16:], uint32(leaf))
	le.PutUint16(ib[20:], uint16(leaf>>32))
}

// extentRoot builds i_block for a file stored in runs (logical blocks from 0), allocating an
// extent leaf block when more than four runs are needed. It returns the extra blocks used.
func (e *Editor) extentRoot(runs []run, ino uint32, generation uint32, name string) ([]byte, uint64, error) {
	ib := make([]byte, 60)
	if len(runs) <= 4 {
		putExtents(ib, runs, 0, 4)
		return ib, 0, nil
	}
	if len(runs) > e.leafMax() {
		return nil, 0, unsupportedf("%s: the free space is split into %d pieces; more than one extent leaf block (%d extents) is not written", name, len(runs), e.leafMax())
	}
	leafRuns, err := e.allocBlocks(1, name+" extent block")
	if err != nil {
		return nil, 0, err
	}
	if err := e.writeLeaf(leafRuns[0].start, runs, ino, generation, name); err != nil {
		return nil, 0, err
	}
	putIndexRoot(ib, leafRuns[0].start)
	return ib, 1, nil
}

// parseRuns reads the leaf entries of an extent node whose logical blocks run from 0 without
// holes (as directories have them).
func parseRuns(node []byte, where string) ([]run, error) {
	le := binary.LittleEndian
	n := int(le.Uint16(node[2:]))
	if le.Uint16(node[0:]) != extentMagic || 12+12*n > len(node) {
		return nil, corruptf("%s: bad extent node", where)
	}
	var out []run
	var lb uint64
	for i := 0; i < n; i++ {
		x := node[12+12*i:]
		l := uint64(le.Uint16(x[4:]))
		if uint64(le.Uint32(x[0:])) != lb || l == 0 || l > maxExtentLen {
			return nil, unsupportedf("%s: extent %d is not the next initialized run of the directory; growing it is not written", where, i)
		}
		out = append(out, run{uint64(le.Uint32(x[8:])) | uint64(le.Uint16(x[6:]))<<32, l})
		lb += l
	}
	return out, nil
}

// lookup resolves the parent directory of name and checks the last element.
func (e *Editor) parentOf(name string) (*Inode, string, error) {
	if !fs.ValidPath(name) || name == "." {
		return nil, "", fmt.Errorf("adding %q: %w", name, fs.ErrInvalid)
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	if len(base) > 255 {
		return nil, "", fmt.Errorf("adding %q: the name is longer than 255 bytes", name)
	}
	r, err := e.fsys.walk(dir, true)
	if err != nil {
		return nil, "", fmt.Errorf("adding %q: parent directory: %w", name, err)
	}
	if !r.n.isDir() {
		return nil, "", fmt.Errorf("adding %q: %s is not a directory", name, dir)
	}
	if _, err := e.fsys.walk(name, false); err == nil {
		return nil, "", fmt.Errorf("adding %q: %w", name, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("adding %q: %w", name, err)
	}
	return r.n, base, nil
}

// Mkdir creates directory name (its parent must exist) with mode m.
func (e *Editor) Mkdir(name string, m Meta) error {
	if e.closed {
		return errors.New("ext4 editor: closed")
	}
	parent, base, err := e.parentOf(name)
	if err != nil {
		return err
	}
	if err := e.checkDirWritable(parent, name); err != nil {
		return err
	}
	xblocks, err := e.xattrBlocksNeeded(m.Xattrs, name)
	if err != nil {
		return err // refused before anything is allocated
	}
	if free := e.freeBlocks(); 1+xblocks > free {
		return fmt.Errorf("adding directory %q: %w: it needs %d blocks of %d bytes and %d are free (the image must be made larger)", name, ErrNoSpace, 1+xblocks, e.fsys.bs, free)
	}
	if parent.links >= maxInodeLinks-1 && e.fsys.sb.FeatureROCompat&roCompatDirNlink == 0 {
		return fmt.Errorf("adding %q: its parent has %d links, the most without dir_nlink", name, parent.links)
	}
	ino, err := e.allocInode(true)
	if err != nil {
		return fmt.Errorf("adding %q: %w", name, err)
	}
	runs, err := e.allocBlocks(1, name)
	if err != nil {
		return err
	}
	blk := e.dirBlock([]dirent{{ino: ino, name: ".", ftype: 2}, {ino: parent.ino, name: "..", ftype: 2}}, ino, 0)
	if err := e.writeAt(blk, int64(runs[0].start)*e.fsys.bs, fmt.Sprintf("directory %q block", name)); err != nil {
		return err
	}
	ib, _, err := e.extentRoot(runs, ino, 0, name)
	if err != nil {
		return err
	}
	raw, err := e.newInode(unixmode.IFDIR|m.Perm&0o7777, m, uint64(e.fsys.bs), 2, 1, ib, name)
	if err != nil {
		return err
	}
	if err := e.writeInode(ino, raw); err != nil {
		return err
	}
	if err := e.addEntry(parent.ino, base, ino, 2, name); err != nil {
		return err
	}
	return e.updateInode(parent.ino, func(n *Inode, raw []byte) error {
		l := binary.LittleEndian.Uint16(raw[0x1A:])
		switch {
		case l == 1 && e.fsys.sb.FeatureROCompat&roCompatDirNlink != 0:
		case l+1 >= maxInodeLinks:
			l = 1 // dir_nlink: too many to count
		default:
			l++
		}
		binary.LittleEndian.PutUint16(raw[0x1A:], l)
		return nil
	})
}

// Create adds regular file name (its parent must exist) holding the size bytes read from r.
func (e *Editor) Create(ctx context.Context, name string, m Meta, r io.Reader, size int64) error {
	if e.closed {
		return errors.New("ext4 editor: closed")
	}
	parent, base, err := e.parentOf(name)
	if err != nil {
		return err
	}
	if err := e.checkDirWritable(parent, name); err != nil {
		return err
	}
	if size < 0 || (size >= 1<<31 && e.fsys.sb.FeatureROCompat&roCompatLargeFile == 0) {
		return unsupportedf("adding %q: size %d needs the large_file feature", name, size)
	}
	bs := e.fsys.bs
	nblocks := uint64((size + bs - 1) / bs)
	xblocks, err := e.xattrBlocksNeeded(m.Xattrs, name)
	if err != nil {
		return err // refused before anything is allocated
	}
	if free := e.freeBlocks(); nblocks+1+xblocks > free {
		return fmt.Errorf("adding %q (%d bytes): %w: it needs %d blocks of %d bytes and %d are free (the image must be made larger)", name, size, ErrNoSpace, nblocks+xblocks, bs, free)
	}
	ino, err := e.allocInode(false)
	if err != nil {
		return fmt.Errorf("adding %q: %w", name, err)
	}
	runs, err := e.writeData(ctx, name, r, size)
	if err != nil {
		return err
	}
	ib, extra, err := e.extentRoot(runs, ino, 0, name)
	if err != nil {
		return err
	}
	raw, err := e.newInode(unixmode.IFREG|m.Perm&0o7777, m, uint64(size), 1, nblocks+extra, ib, name)
	if err != nil {
		return err
	}
	if err := e.writeInode(ino, raw); err != nil {
		return err
	}
	return e.addEntry(parent.ino, base, ino, 1, name)
}

// writeData allocates the blocks for size bytes and fills them from r (the last block padded
// with zeros).
func (e *Editor) writeData(ctx context.Context, name string, r io.Reader, size int64) ([]run, error) {
	bs := e.fsys.bs
	runs, err := e.allocBlocks(uint64((size+bs-1)/bs), name)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, rn := range runs {
		total += int64(rn.n) * bs
	}
	buf := make([]byte, min(1<<20, total))
	left := size
	for _, rn := range runs {
		off := int64(rn.start) * bs
		end := off + int64(rn.n)*bs
		for off < end {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			chunk := min(int64(len(buf)), end-off)
			want := min(chunk, left)
			if _, err := io.ReadFull(r, buf[:want]); err != nil {
				return nil, fmt.Errorf("writing %q: reading its data: %w", name, err)
			}
			clear(buf[want:chunk])
			if err := e.writeAt(buf[:chunk], off, fmt.Sprintf("file %q data", name)); err != nil {
				return nil, err
			}
			left -= want
			off += chunk
		}
	}
	return runs, nil
}

// checkDirWritable refuses directories whose entries this writer cannot add to.
func (e *Editor) checkDirWritable(d *Inode, name string) error {
	switch {
	case d.flags&flagIndex != 0 && e.fsys.sb.FeatureCompat&compatDirIndex != 0:
		return unsupportedf("adding %q: its parent directory (inode %d) is hash-indexed (htree); adding entries to htree directories is not written yet", name, d.ino)
	case d.flags&flagInlineData != 0:
		return unsupportedf("adding %q: its parent directory (inode %d) keeps its entries inline; not written", name, d.ino)
	case d.flags&(flagEncrypt|flagCasefold) != 0:
		return unsupportedf("adding %q: its parent directory (inode %d) is encrypted or case-folded; not written", name, d.ino)
	case d.flags&flagExtents == 0:
		return unsupportedf("adding %q: its parent directory (inode %d) uses a legacy block map; not written", name, d.ino)
	}
	return nil
}

func direntLen(nameLen int) int { return (8 + nameLen + 3) &^ 3 }

// dirBlock builds a directory leaf block holding ents (the last one takes the rest of the block)
// and, with metadata_csum, its checksum tail.
func (e *Editor) dirBlock(ents []dirent, dirIno uint32, generation uint32) []byte {
	le := binary.LittleEndian
	bs := int(e.fsys.bs)
	blk := make([]byte, bs)
	end := bs
	if e.fsys.metaCsum {
		end -= 12
	}
	off := 0
	for i, d := range ents {
		rl := direntLen(len(d.name))
		if i == len(ents)-1 {
			rl = end - off
		}
		le.PutUint32(blk[off:], d.ino)
		le.PutUint16(blk[off+4:], uint16(rl))
		blk[off+6] = byte(len(d.name))
		blk[off+7] = d.ftype
		copy(blk[off+8:], d.name)
		off += rl
	}
	if e.fsys.metaCsum {
		e.setDirTail(blk, dirIno, generation)
	}
	return blk
}

func (e *Editor) setDirTail(blk []byte, dirIno, generation uint32) {
	le := binary.LittleEndian
	t := len(blk) - 12
	le.PutUint32(blk[t:], 0)
	le.PutUint16(blk[t+4:], 12)
	blk[t+6], blk[t+7] = 0, 0xDE
	seed := crc32cU32(crc32cU32(e.fsys.csumSeed, dirIno), generation)
	le.PutUint32(blk[t+8:], crc32c(seed, blk[:t]))
}

// addEntry links name (inode ino, type ftype) into directory dirIno: into the first leaf block
// with room, else into a new block appended to the directory.
func (e *Editor) addEntry(dirIno uint32, base string, ino uint32, ftype uint8, name string) error {
	le := binary.LittleEndian
	d, err := e.fsys.readInode(dirIno)
	if err != nil {
		return err
	}
	bs := e.fsys.bs
	need := direntLen(len(base))
	nblocks := d.size / uint64(bs)
	m := newMapper(d)
	if e.fsys.sb.FeatureIncompat&incompatFiletype == 0 {
		ftype = 0
	}
	for lb := uint64(0); lb < nblocks; lb++ {
		sp, err := m.lookup(lb)
		if err != nil {
			return err
		}
		if sp.hole {
			return corruptf("directory inode %d: logical block %d is a hole", dirIno, lb)
		}
		off := int64(sp.phys) * bs
		blk := make([]byte, bs)
		if err := e.fsys.readAt(blk, off, fmt.Sprintf("directory inode %d block %d", dirIno, lb)); err != nil {
			return err
		}
		end := int(bs)
		where := fmt.Sprintf("directory inode %d block %d at offset %d", dirIno, lb, off)
		if e.fsys.metaCsum {
			if _, err := e.fsys.checkDirTail(d, blk, where); err != nil {
				return err
			}
			end -= 12
		}
		for p := 0; p < end; {
			if p+8 > end {
				return corruptf("%s: entry at byte %d is truncated", where, p)
			}
			rl := int(le.Uint16(blk[p+4:]))
			if bs >= 65536 && (rl == 65535 || rl == 0) {
				rl = int(bs)
			}
			if rl < 8 || rl%4 != 0 || p+rl > end {
				return corruptf("%s: entry at byte %d has record length %d", where, p, rl)
			}
			used := 0
			if le.Uint32(blk[p:]) != 0 || (lb == 0 && p == 0) {
				used = direntLen(int(blk[p+6]))
			}
			if rl-used >= need {
				at := p + used
				if used > 0 {
					le.PutUint16(blk[p+4:], uint16(used))
				}
				le.PutUint32(blk[at:], ino)
				le.PutUint16(blk[at+4:], uint16(rl-used))
				blk[at+6] = byte(len(base))
				blk[at+7] = ftype
				copy(blk[at+8:], base)
				if e.fsys.metaCsum {
					e.setDirTail(blk, dirIno, d.generation)
				}
				e.invalidate()
				return e.writeAt(blk, off, where)
			}
			p += rl
		}
	}
	// no room: a new block at the end of the directory
	phys, err := e.growDir(d, name)
	if err != nil {
		return err
	}
	blk := e.dirBlock([]dirent{{ino: ino, name: base, ftype: ftype}}, dirIno, d.generation)
	e.invalidate()
	return e.writeAt(blk, int64(phys)*bs, fmt.Sprintf("directory inode %d new block", dirIno))
}

// growDir appends one block to directory d, extending its last extent when the next block is
// free, moving the extents into a leaf block when the inode's four are used, and returns the
// new block.
func (e *Editor) growDir(d *Inode, name string) (uint64, error) {
	le := binary.LittleEndian
	var phys uint64
	err := e.updateInode(d.ino, func(n *Inode, raw []byte) error {
		ib := raw[0x28:0x64]
		where := fmt.Sprintf("directory inode %d", d.ino)
		var runs []run
		var leaf uint64
		extra := uint64(0) // blocks added besides the directory block
		switch depth := le.Uint16(ib[6:]); {
		case le.Uint16(ib[0:]) == extentMagic && depth == 0:
			var err error
			if runs, err = parseRuns(ib, where); err != nil {
				return err
			}
		case le.Uint16(ib[0:]) == extentMagic && depth == 1 && le.Uint16(ib[2:]) == 1:
			leaf = uint64(le.Uint32(ib[16:])) | uint64(le.Uint16(ib[20:]))<<32
			blk, err := e.fsys.readBlock(leaf, where+" extent leaf")
			if err != nil {
				return err
			}
			if le.Uint16(blk[6:]) != 0 {
				return corruptf("%s: extent leaf %d has depth %d", where, leaf, le.Uint16(blk[6:]))
			}
			if runs, err = parseRuns(blk, where+" extent leaf"); err != nil {
				return err
			}
		default:
			return unsupportedf("adding %q: its directory (inode %d) is full and has a deeper extent tree; growing it is not written", name, d.ino)
		}
		var total uint64
		for _, r := range runs {
			total += r.n
		}
		if total != n.size/uint64(e.fsys.bs) {
			return corruptf("%s: extents map %d blocks, size says %d", where, total, n.size/uint64(e.fsys.bs))
		}
		if k := len(runs) - 1; k >= 0 && runs[k].n < maxExtentLen {
			ok, err := e.allocBlockAt(runs[k].start + runs[k].n)
			if err != nil {
				return err
			}
			if ok {
				phys = runs[k].start + runs[k].n
				runs[k].n++
			}
		}
		if phys == 0 {
			if len(runs) >= e.leafMax() {
				return unsupportedf("adding %q: its directory (inode %d) has %d extents; growing it is not written", name, d.ino, len(runs))
			}
			rs, err := e.allocBlocks(1, where)
			if err != nil {
				return err
			}
			phys = rs[0].start
			runs = append(runs, run{phys, 1})
		}
		switch {
		case leaf == 0 && len(runs) <= 4:
			putExtents(ib, runs, 0, 4)
		default:
			if leaf == 0 {
				rs, err := e.allocBlocks(1, where+" extent leaf")
				if err != nil {
					return err
				}
				leaf, extra = rs[0].start, 1
				putIndexRoot(ib, leaf)
			}
			if err := e.writeLeaf(leaf, runs, d.ino, d.generation, where); err != nil {
				return err
			}
		}
		size := n.size + uint64(e.fsys.bs)
		le.PutUint32(raw[0x4:], uint32(size))
		le.PutUint32(raw[0x6C:], uint32(size>>32))
		b512 := uint64(le.Uint32(raw[0x1C:])) + (1+extra)*uint64(e.fsys.bs/512)
		if b512 >= 1<<32 || n.flags&flagHugeFile != 0 {
			return unsupportedf("directory inode %d: i_blocks overflow or huge_file flag", d.ino)
		}
		le.PutUint32(raw[0x1C:], uint32(b512))
		return nil
	})
	return phys, err
}

// freeBlocks sums the free block counts of the group descriptors.
func (e *Editor) freeBlocks() uint64 {
	var n uint64
	for g := range e.fsys.groups {
		n += uint64(e.descGet(uint64(g), gdFreeBlocksLo, gdFreeBlocksHi))
	}
	return n
}

// Close writes the bitmaps, group descriptors and superblock with their checksums. The editor
// cannot be used after.
func (e *Editor) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	return e.flush()
}

// flush writes the changed bitmaps and group descriptors and the superblock with their
// checksums.
func (e *Editor) flush() error {
	fsys := e.fsys
	le := binary.LittleEndian
	for g := range e.dirtyBlock {
		bm := e.blockBM[g]
		if fsys.metaCsum {
			e.descPut(g, gdBlockCsumLo, gdBlockCsumHi, crc32c(fsys.csumSeed, bm[:fsys.sb.BlocksPerGroup/8]))
		}
		if err := e.writeAt(bm, int64(fsys.groups[g].blockBitmap)*fsys.bs, fmt.Sprintf("group %d block bitmap", g)); err != nil {
			return err
		}
	}
	for g := range e.dirtyInode {
		bm := e.inodeBM[g]
		if fsys.metaCsum {
			e.descPut(g, gdInodeCsumLo, gdInodeCsumHi, crc32c(fsys.csumSeed, bm[:fsys.sb.InodesPerGroup/8]))
		}
		if err := e.writeAt(bm, int64(fsys.groups[g].inodeBitmap)*fsys.bs, fmt.Sprintf("group %d inode bitmap", g)); err != nil {
			return err
		}
	}
	perBlock := uint64(fsys.bs / fsys.descSize)
	dirtyGDT := map[uint64]bool{}
	for g := range e.dirtyDesc {
		d := e.desc(g)
		var group [4]byte
		le.PutUint32(group[:], uint32(g))
		switch {
		case fsys.metaCsum:
			le.PutUint16(d[gdChecksum:], 0)
			c := crc32c(fsys.csumSeed, group[:])
			c = crc32c(c, d[:gdChecksum])
			c = crc32c(c, []byte{0, 0})
			c = crc32c(c, d[gdChecksum+2:])
			le.PutUint16(d[gdChecksum:], uint16(c))
		case fsys.gdtCsum:
			c := crc16(0xFFFF, fsys.sb.UUID[:])
			c = crc16(c, group[:])
			c = crc16(c, d[:gdChecksum])
			if len(d) > gdChecksum+2 {
				c = crc16(c, d[gdChecksum+2:])
			}
			le.PutUint16(d[gdChecksum:], c)
		}
		dirtyGDT[g/perBlock] = true
	}
	for bi := range dirtyGDT {
		if err := e.writeAt(e.gdt[bi], int64(fsys.gdtBlock(bi))*fsys.bs, fmt.Sprintf("group descriptor block %d", bi)); err != nil {
			return err
		}
	}
	var freeBlocks uint64
	var freeInodes uint32
	for g := range fsys.groups {
		freeBlocks += uint64(e.descGet(uint64(g), gdFreeBlocksLo, gdFreeBlocksHi))
		freeInodes += e.descGet(uint64(g), gdFreeInodesLo, gdFreeInodesHi)
	}
	sb := e.sbRaw
	le.PutUint32(sb[0x0C:], uint32(freeBlocks))
	if fsys.sb.FeatureIncompat&incompat64bit != 0 {
		le.PutUint32(sb[0x158:], uint32(freeBlocks>>32))
	}
	le.PutUint32(sb[0x10:], freeInodes)
	if fsys.metaCsum {
		le.PutUint32(sb[0x3FC:], crc32c(0xFFFFFFFF, sb[:0x3FC]))
	}
	e.invalidate()
	if err := e.writeAt(sb, 1024, "superblock"); err != nil {
		return err
	}
	clear(e.dirtyBlock)
	clear(e.dirtyInode)
	clear(e.dirtyDesc)
	return nil
}
