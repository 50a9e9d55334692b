package ext4

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"

	"github.com/provkit/provkit/internal/unixmode"
)

// ErrNotReplaceable means Replace was asked to replace what is not a plain regular file: a
// directory, a symlink, a device or a file with more than one hard link.
var ErrNotReplaceable = errors.New("not a regular file with one link")

const flagVerity = 0x100000

// Replace puts the size bytes read from r in place of the contents of the regular file name,
// which must exist: its data blocks and extent tree blocks are freed (the new data may reuse
// them), the new data is written as Create writes it, and the inode (same number, same directory
// entry) takes the size, block count, permissions, owner, times and xattrs of m.
//
// A directory, a symlink, any other non-regular file and a file with more than one hard link are
// refused with ErrNotReplaceable; a file the writer cannot free exactly (a legacy block map,
// inline data, encryption, verity, an external xattr block other inodes share, or a file system
// with shared_blocks, whose blocks other files may use too) with an error wrapping
// errors.ErrUnsupported. An external xattr block of the file's own is freed with its data, and
// the new xattrs are stored as Create stores them. Both
// refusals, and a lack of room (ErrNoSpace), are found before anything is changed.
func (e *Editor) Replace(ctx context.Context, name string, m Meta, r io.Reader, size int64) error {
	if e.closed {
		return errors.New("ext4 editor: closed")
	}
	if !fs.ValidPath(name) || name == "." {
		return fmt.Errorf("replacing %q: %w", name, fs.ErrInvalid)
	}
	res, err := e.fsys.walk(name, false)
	if err != nil {
		return fmt.Errorf("replacing %q: %w", name, err)
	}
	n := res.n
	switch {
	case n.isDir():
		return fmt.Errorf("replacing %q: %w: it is a directory", name, ErrNotReplaceable)
	case n.isSymlink():
		return fmt.Errorf("replacing %q: %w: it is a symlink", name, ErrNotReplaceable)
	case !n.isReg():
		return fmt.Errorf("replacing %q: %w: its mode is 0%o", name, ErrNotReplaceable, n.mode)
	case n.links != 1:
		return fmt.Errorf("replacing %q: %w: it has %d hard links, and replacing it would change the other names too", name, ErrNotReplaceable, n.links)
	case e.fsys.sb.HasSharedBlocks():
		return unsupportedf("replacing %q: the file system has shared_blocks (deduplicated blocks): its blocks may belong to other files too", name)
	case n.flags&flagExtents == 0:
		return unsupportedf("replacing %q: it uses a legacy block map (or inline data); freeing it is not written", name)
	case n.flags&(flagEncrypt|flagVerity|flagEAInode|flagHugeFile) != 0:
		return unsupportedf("replacing %q: its flags 0x%x (encrypted, verity, xattr inode or huge_file) are not written", name, n.flags)
	case size < 0 || (size >= 1<<31 && e.fsys.sb.FeatureROCompat&roCompatLargeFile == 0):
		return unsupportedf("replacing %q: size %d needs the large_file feature", name, size)
	}
	xblocks, err := e.xattrBlocksNeeded(m.Xattrs, name)
	if err != nil {
		return err
	}
	f := &freer{e: e, bms: map[uint64][]byte{}, freed: map[uint64]uint64{}}
	if n.fileACL != 0 {
		if err := e.freeXattrBlock(f, n, name); err != nil {
			return err
		}
	}
	if err := f.extents(n); err != nil {
		return fmt.Errorf("replacing %q: %w", name, err)
	}
	if got := f.total * uint64(e.fsys.bs/512); got != n.blocks512 {
		return fmt.Errorf("replacing %q: %w", name, corruptf("inode %d: its extents hold %d blocks of 512 bytes, i_blocks says %d", n.ino, got, n.blocks512))
	}
	bs := e.fsys.bs
	nblocks := uint64((size + bs - 1) / bs)
	if free := e.freeBlocks() + f.total; nblocks+1+xblocks > free {
		return fmt.Errorf("replacing %q (%d bytes): %w: it needs %d blocks of %d bytes and %d are free with its old ones (the image must be made larger)", name, size, ErrNoSpace, nblocks+xblocks, bs, free)
	}
	// nothing changed so far: free the old blocks
	if n.fileACL != 0 {
		e.fsys.xattrMu.Lock()
		delete(e.fsys.xattrCache, n.fileACL)
		e.fsys.xattrMu.Unlock()
	}
	for g, bm := range f.bms {
		e.blockBM[g] = bm
		e.dirtyBlock[g] = true
		e.descPut(g, gdFreeBlocksLo, gdFreeBlocksHi, e.descGet(g, gdFreeBlocksLo, gdFreeBlocksHi)+uint32(f.freed[g]))
		e.clearGroupFlag(g, bgBlockUninit)
	}
	runs, err := e.writeData(ctx, name, r, size)
	if err != nil {
		return err
	}
	ib, extra, err := e.extentRoot(runs, n.ino, n.generation, name)
	if err != nil {
		return err
	}
	raw, err := e.newInode(unixmode.IFREG|m.Perm&0o7777, m, uint64(size), 1, nblocks+extra, ib, name)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(raw[0x64:], n.generation) // extent block checksums are seeded with it
	e.invalidate()
	return e.writeInode(n.ino, raw)
}

// freer frees blocks in copies of the block bitmaps, so a refusal leaves the editor unchanged.
// A block freed twice (listed twice by a hostile tree, or already free) is corruption; it also
// bounds the tree walk by the blocks in use.
type freer struct {
	e     *Editor
	bms   map[uint64][]byte // group -> bitmap copy
	freed map[uint64]uint64 // group -> blocks freed
	total uint64
}

func (f *freer) free(b, n uint64, what func() string) error {
	fsys := f.e.fsys
	if err := fsys.checkData(b, n, what); err != nil {
		return err
	}
	bpg := uint64(fsys.sb.BlocksPerGroup)
	for n > 0 {
		g := (b - uint64(fsys.sb.FirstDataBlock)) / bpg
		first := fsys.groupFirstBlock(g)
		k := min(n, first+bpg-b)
		bm, ok := f.bms[g]
		if !ok {
			orig, err := f.e.blockBitmap(g)
			if err != nil {
				return err
			}
			if orig == nil {
				return unsupportedf("%s: group %d's block bitmap is not initialized (meta_bg)", what(), g)
			}
			bm = slices.Clone(orig)
			f.bms[g] = bm
		}
		for x := b; x < b+k; x++ {
			if !testBit(bm, x-first) {
				return corruptf("%s: block %d is free in the bitmap, or listed twice", what(), x)
			}
			clearBit(bm, x-first)
		}
		f.freed[g] += k
		f.total += k
		b, n = b+k, n-k
	}
	return nil
}

// extents frees every block inode n's extent tree maps, and the tree's own blocks.
func (f *freer) extents(n *Inode) error {
	m := newMapper(n)
	root, err := m.parseExtNode(n.iblock[:], "root in i_block", -1)
	if err != nil {
		return err
	}
	return f.node(m, root)
}

func (f *freer) node(m *mapper, nd *extNode) error {
	for i, x := range nd.entries {
		what := func() string {
			return fmt.Sprintf("inode %d extent entry %d at depth %d (block %d)", m.n.ino, i, nd.depth, x.phys)
		}
		if nd.depth == 0 {
			if err := f.free(x.phys, x.len, what); err != nil {
				return err
			}
			continue
		}
		if err := f.free(x.phys, 1, what); err != nil {
			return err
		}
		child, err := m.extBlock(x.phys, int(nd.depth)-1)
		if err != nil {
			return err
		}
		if err := f.node(m, child); err != nil {
			return err
		}
	}
	return nil
}

// Blocks512 returns i_blocks in 512-byte units: the blocks the file holds (data, extent tree and
// external xattr block), which replacing it frees.
func (n *Inode) Blocks512() uint64 { return n.blocks512 }

// freeXattrBlock frees (in f) inode n's external xattr block, after checking that it is a valid
// xattr block (magic, size, checksum, entries) that no other inode shares.
func (e *Editor) freeXattrBlock(f *freer, n *Inode, name string) error {
	if _, err := e.fsys.xattrBlock(n.fileACL, n.ino); err != nil {
		return fmt.Errorf("replacing %q: %w", name, err)
	}
	blk, err := e.fsys.readBlock(n.fileACL, fmt.Sprintf("xattr block %d (inode %d)", n.fileACL, n.ino))
	if err != nil {
		return fmt.Errorf("replacing %q: %w", name, err)
	}
	if ref := binary.LittleEndian.Uint32(blk[4:]); ref != 1 {
		return unsupportedf("replacing %q: its xattrs are in external block %d shared by %d inodes; unsharing it is not written", name, n.fileACL, ref)
	}
	return f.free(n.fileACL, 1, func() string { return fmt.Sprintf("inode %d xattr block", n.ino) })
}
