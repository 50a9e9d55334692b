package ext4

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	compatResizeInode = 0x10
	bgItableZeroed    = 0x4
	resizeIno         = 7
	dindSlot          = 0x28 + 13*4 // i_block[EXT2_DIND_BLOCK] in the raw inode
)

// Grow enlarges the file system offline to blocks blocks, as resize2fs does when it enlarges
// one: the last group is extended up to the blocks per group, then whole new groups are added,
// each holding its block bitmap, inode bitmap and (zeroed) inode table, and, in the groups that
// carry one (0, 1 and powers of 3, 5 and 7 with sparse_super), a backup of the superblock and the
// descriptor table with its reserved blocks, which the resize inode then lists. New groups are
// flagged as mke2fs flags them (INODE_UNINIT and ITABLE_ZEROED, BLOCK_UNINIT but for the last
// one) when the file system has group checksums. As resize2fs does, a last group too small to
// hold its metadata and 50 blocks is left out, so the file system may end up a little smaller
// than asked (FS().Superblock().BlocksCount says); when nothing is left to add Grow does
// nothing.
//
// The writer given to Edit must accept writes up to blocks times the block size (a file grows).
// Grow writes the superblock, the descriptors and their backups at once (Close writes them again
// with what is added later). It refuses, with an error wrapping errors.ErrUnsupported and before
// anything is written, meta_bg and sparse_super2 file systems and a growth that needs one more
// block of group descriptors (the reserved descriptor blocks of resize_inode are kept for later,
// not used).
// Zeroing the new groups' inode tables notices ctx being cancelled; the image is then
// inconsistent (as after any error) and must be thrown away.
func (e *Editor) Grow(ctx context.Context, blocks uint64) error {
	if e.closed {
		return errors.New("ext4 editor: closed")
	}
	fsys := e.fsys
	sb := &fsys.sb
	le := binary.LittleEndian
	old := sb.BlocksCount
	switch {
	case blocks <= old:
		return fmt.Errorf("growing the file system to %d blocks: it already has %d", blocks, old)
	case sb.FeatureIncompat&incompatMetaBG != 0:
		return unsupportedf("growing a meta_bg file system is not written")
	case sb.FeatureCompat&compatSparseSup2 != 0:
		return unsupportedf("growing a sparse_super2 file system is not written")
	case sb.FeatureIncompat&incompat64bit == 0 && blocks >= 1<<32:
		return unsupportedf("growing to %d blocks needs the 64bit feature", blocks)
	case blocks > 1<<48:
		return fmt.Errorf("growing the file system to %d blocks: too many", blocks)
	}
	bs := uint64(fsys.bs)
	bpg := uint64(sb.BlocksPerGroup)
	ipg := uint64(sb.InodesPerGroup)
	fdb := uint64(sb.FirstDataBlock)
	perBlock := bs / uint64(fsys.descSize)
	oldGroups := uint64(len(fsys.groups))
	gdtBlocks := (oldGroups + perBlock - 1) / perBlock
	rsv := uint64(sb.ReservedGDT)
	if sb.FeatureCompat&compatResizeInode == 0 {
		rsv = 0 // a stale count without the feature reserves nothing (as the reader assumes)
	}
	itb := (ipg*uint64(fsys.inodeSize) + bs - 1) / bs
	overhead := func(g uint64) uint64 {
		o := 2 + itb
		if fsys.hasSuper(g) {
			o += 1 + gdtBlocks + rsv
		}
		return o
	}
	var groups uint64
	for {
		groups = (blocks - fdb + bpg - 1) / bpg
		rem := (blocks - fdb) % bpg
		if groups > oldGroups && rem != 0 && rem < overhead(groups-1)+50 {
			blocks -= rem // as resize2fs: a last group this small is not worth its metadata
			continue
		}
		break
	}
	if blocks <= old {
		return nil
	}
	if (groups+perBlock-1)/perBlock > gdtBlocks {
		return unsupportedf("growing to %d blocks needs %d groups, more than the %d descriptors that fit in the %d descriptor blocks; using the reserved descriptor blocks is not written",
			blocks, groups, gdtBlocks*perBlock, gdtBlocks)
	}
	if groups*ipg >= 1<<32 {
		return unsupportedf("growing to %d groups of %d inodes makes more than 2^32 inodes", groups, ipg)
	}

	// Read and check everything before anything changes.
	last := oldGroups - 1
	lastBM, err := e.blockBitmap(last)
	if err != nil {
		return err
	}
	if lastBM == nil {
		return unsupportedf("group %d's block bitmap is not initialized (meta_bg); not grown", last)
	}
	resize, err := e.planResizeInode(oldGroups, groups, gdtBlocks, rsv)
	if err != nil {
		return err
	}

	// The old last group takes the blocks up to the end of a full group.
	lastFirst := fsys.groupFirstBlock(last)
	lastEnd := min(lastFirst+bpg, blocks)
	for b := old; b < lastEnd; b++ {
		clearBit(lastBM, b-lastFirst)
	}
	sb.BlocksCount = blocks
	fsys.size = max(fsys.size, int64(blocks*bs))
	e.blockBM[last] = lastBM
	e.dirtyBlock[last] = true
	e.descPut(last, gdFreeBlocksLo, gdFreeBlocksHi, e.descGet(last, gdFreeBlocksLo, gdFreeBlocksHi)+uint32(lastEnd-old))
	e.clearGroupFlag(last, bgBlockUninit)

	csum := fsys.metaCsum || fsys.gdtCsum
	zeros := make([]byte, min(1<<20, itb*bs))
	for g := oldGroups; g < groups; g++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		first := fsys.groupFirstBlock(g)
		n := min(bpg, blocks-first)
		pos := first
		if fsys.hasSuper(g) {
			pos += 1 + gdtBlocks + rsv
			// the reserved descriptor blocks' backups: zeroed
			for b := first + 1 + gdtBlocks; b < pos; b++ {
				if err := e.writeAt(zeros[:bs], int64(b*bs), fmt.Sprintf("group %d reserved descriptor block", g)); err != nil {
					return err
				}
			}
		}
		gd := groupDesc{blockBitmap: pos, inodeBitmap: pos + 1, inodeTable: pos + 2}
		pos += 2 + itb
		for off := gd.inodeTable * bs; off < (gd.inodeTable+itb)*bs; {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := min(uint64(len(zeros)), (gd.inodeTable+itb)*bs-off)
			if err := e.writeAt(zeros[:k], int64(off), fmt.Sprintf("group %d inode table", g)); err != nil {
				return err
			}
			off += k
		}
		bm := make([]byte, bs)
		for i := uint64(0); i < pos-first; i++ {
			setBit(bm, i)
		}
		for i := n; i < bs*8; i++ {
			setBit(bm, i)
		}
		ibm := make([]byte, bs)
		for i := ipg; i < bs*8; i++ {
			setBit(ibm, i)
		}
		if csum {
			gd.flags = bgInodeUninit | bgItableZeroed
			if g < groups-1 {
				gd.flags |= bgBlockUninit
			}
			gd.itableUnused = uint32(ipg)
		}
		fsys.groups = append(fsys.groups, gd)
		d := e.desc(g)
		clear(d)
		le.PutUint32(d[0x0:], uint32(gd.blockBitmap))
		le.PutUint32(d[0x4:], uint32(gd.inodeBitmap))
		le.PutUint32(d[0x8:], uint32(gd.inodeTable))
		if fsys.descSize >= 64 {
			le.PutUint32(d[0x20:], uint32(gd.blockBitmap>>32))
			le.PutUint32(d[0x24:], uint32(gd.inodeBitmap>>32))
			le.PutUint32(d[0x28:], uint32(gd.inodeTable>>32))
		}
		le.PutUint16(d[gdFlags:], gd.flags)
		e.descPut(g, gdFreeBlocksLo, gdFreeBlocksHi, uint32(n-(pos-first)))
		e.descPut(g, gdFreeInodesLo, gdFreeInodesHi, uint32(ipg))
		e.descPut(g, gdItableUnusedLo, gdItableUnusedHi, gd.itableUnused)
		e.blockBM[g], e.inodeBM[g] = bm, ibm
		e.dirtyBlock[g], e.dirtyInode[g] = true, true
	}
	// the image reaches the new end even where nothing else is written
	if err := e.writeAt(zeros[:bs], int64((blocks-1)*bs), "the last block"); err != nil {
		return err
	}
	if err := resize.apply(e); err != nil {
		return err
	}

	raw := e.sbRaw
	le.PutUint32(raw[0x0:], uint32(groups*ipg))
	sb.InodesCount = uint32(groups * ipg)
	le.PutUint32(raw[0x4:], uint32(blocks))
	rOld := uint64(le.Uint32(raw[0x8:]))
	if sb.FeatureIncompat&incompat64bit != 0 {
		le.PutUint32(raw[0x150:], uint32(blocks>>32))
		rOld |= uint64(le.Uint32(raw[0x154:])) << 32
	}
	// reserved blocks keep their share, as resize2fs keeps it
	r := uint64(float64(rOld) * 100 / float64(old) * float64(blocks) / 100)
	le.PutUint32(raw[0x8:], uint32(r))
	if sb.FeatureIncompat&incompat64bit != 0 {
		le.PutUint32(raw[0x154:], uint32(r>>32))
	}
	// the kernel computes the overhead itself when this is 0; resize2fs clears it too
	le.PutUint32(raw[0x248:], 0)
	fsys.buildMetadataRanges()
	if err := e.flush(); err != nil {
		return err
	}
	return e.writeBackups()
}

// writeBackups writes the superblock and the group descriptor table into every group that
// carries a backup of them.
func (e *Editor) writeBackups() error {
	fsys := e.fsys
	le := binary.LittleEndian
	bs := uint64(fsys.bs)
	perBlock := bs / uint64(fsys.descSize)
	gdtBlocks := (uint64(len(fsys.groups)) + perBlock - 1) / perBlock
	for g := uint64(1); g < uint64(len(fsys.groups)); g++ {
		if !fsys.hasSuper(g) {
			continue
		}
		first := fsys.groupFirstBlock(g)
		sb := append([]byte(nil), e.sbRaw...)
		le.PutUint16(sb[0x5A:], uint16(g))
		if fsys.metaCsum {
			le.PutUint32(sb[0x3FC:], crc32c(0xFFFFFFFF, sb[:0x3FC]))
		}
		if err := e.writeAt(sb, int64(first*bs), fmt.Sprintf("group %d superblock backup", g)); err != nil {
			return err
		}
		for bi := uint64(0); bi < gdtBlocks; bi++ {
			if err := e.writeAt(e.gdt[bi], int64((first+1+bi)*bs), fmt.Sprintf("group %d descriptor backup block %d", g, bi)); err != nil {
				return err
			}
		}
	}
	return nil
}

// resizePlan is what the resize inode gains when groups with superblock backups are added: each
// reserved descriptor block of the primary table (an indirect block of the resize inode) lists
// its copies in the backup groups.
type resizePlan struct {
	ind    map[uint64][]byte // reserved descriptor block -> its new contents
	added  uint64            // blocks newly listed
	active bool
}

func (e *Editor) planResizeInode(oldGroups, groups, gdtBlocks, rsv uint64) (*resizePlan, error) {
	fsys := e.fsys
	le := binary.LittleEndian
	p := &resizePlan{ind: map[uint64][]byte{}}
	if rsv == 0 {
		return p, nil
	}
	p.active = true
	n, err := fsys.readInode(resizeIno)
	if err != nil {
		return nil, fmt.Errorf("reading the resize inode: %w", err)
	}
	if n.flags&flagExtents != 0 {
		return nil, corruptf("resize inode %d uses extents", resizeIno)
	}
	apb := uint64(fsys.bs / 4)
	dindBlk := uint64(le.Uint32(n.iblock[13*4:]))
	dind, err := fsys.readBlock(dindBlk, "resize inode double-indirect block")
	if err != nil {
		return nil, err
	}
	bpg := uint64(fsys.sb.BlocksPerGroup)
	for j := uint64(0); j < rsv; j++ {
		pblk := uint64(fsys.sb.FirstDataBlock) + 1 + gdtBlocks + j
		if got := uint64(le.Uint32(dind[((gdtBlocks+j)%apb)*4:])); got != pblk {
			return nil, corruptf("resize inode: double-indirect entry for reserved descriptor block %d is %d", pblk, got)
		}
		ind, err := fsys.readBlock(pblk, "reserved descriptor block")
		if err != nil {
			return nil, err
		}
		k := uint64(0) // slot: backups are listed in group order
		for g := uint64(1); g < groups; g++ {
			if !fsys.hasSuper(g) {
				continue
			}
			if k >= apb {
				return nil, unsupportedf("the resize inode's reserved descriptor block %d cannot list more than %d backups", pblk, apb)
			}
			want := pblk + g*bpg
			switch got := uint64(le.Uint32(ind[k*4:])); {
			case got == want:
			case got == 0 && g >= oldGroups:
				le.PutUint32(ind[k*4:], uint32(want))
				p.added++
			default:
				return nil, corruptf("resize inode: reserved descriptor block %d lists block %d for group %d's backup, want %d", pblk, got, g, want)
			}
			k++
		}
		p.ind[pblk] = ind
	}
	return p, nil
}

func (p *resizePlan) apply(e *Editor) error {
	if !p.active || p.added == 0 {
		return nil
	}
	for blk, b := range p.ind {
		if err := e.writeAt(b, int64(blk)*e.fsys.bs, "resize inode indirect block"); err != nil {
			return err
		}
	}
	return e.updateInode(resizeIno, func(n *Inode, raw []byte) error {
		le := binary.LittleEndian
		b512 := uint64(le.Uint32(raw[0x1C:])) + p.added*uint64(e.fsys.bs/512)
		if b512 >= 1<<32 || n.flags&flagHugeFile != 0 {
			return unsupportedf("resize inode: i_blocks overflow or huge_file flag")
		}
		le.PutUint32(raw[0x1C:], uint32(b512))
		return nil
	})
}

// Free returns the free blocks and free inodes the group descriptors count now.
func (e *Editor) Free() (blocks, inodes uint64) {
	for g := range e.fsys.groups {
		blocks += uint64(e.descGet(uint64(g), gdFreeBlocksLo, gdFreeBlocksHi))
		inodes += uint64(e.descGet(uint64(g), gdFreeInodesLo, gdFreeInodesHi))
	}
	return blocks, inodes
}
