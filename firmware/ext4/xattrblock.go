package ext4

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// New inodes keep their extended attributes as the kernel and e2fsprogs keep them: in the
// inode's extra space after i_extra_isize while they fit, the rest in one external xattr block
// of their own (h_refcount 1) that i_file_acl points to.
//
// The external block is a 32-byte header (magic, refcount, block count, hash, checksum), entries
// from byte 32 sorted by name index, name length and name (the kernel stops its lookup at the
// first entry past the name), a 4-byte zero terminator, and the values packed from the end of the
// block, each padded to 4 bytes, e_value_offs counting from the start of the block.

const (
	compatExtAttr   = 0x8
	xattrHeaderSize = 32
)

// xattrEntry is one attribute to store.
type xattrEntry struct {
	full   string
	idx    uint8
	suffix string
	value  []byte
}

func (x xattrEntry) entrySize() int { return (16 + len(x.suffix) + 3) &^ 3 }
func (x xattrEntry) valueSize() int { return (len(x.value) + 3) &^ 3 }

// xattrName splits a full attribute name into its name index and suffix.
func xattrName(full string) (uint8, string) {
	for _, idx := range []uint8{2, 3, 8} {
		if full == xattrPrefixes[idx] {
			return idx, ""
		}
	}
	for _, idx := range []uint8{1, 4, 5, 6, 7, 9} {
		if p := xattrPrefixes[idx]; strings.HasPrefix(full, p) && len(full) > len(p) {
			return idx, full[len(p):]
		}
	}
	return 0, full
}

// xattrHash is ext4's entry hash (e_hash) over the name suffix and, for values stored in place,
// the value read as little-endian 32-bit words (zero padded). Name bytes are taken as signed
// chars, as the kernel long did; e2fsck accepts both signed and unsigned forms.
func xattrHash(name string, value []byte) uint32 {
	var h uint32
	for i := 0; i < len(name); i++ {
		h = h<<5 ^ h>>27 ^ uint32(int32(int8(name[i])))
	}
	padded := make([]byte, (len(value)+3)&^3)
	copy(padded, value)
	for i := 0; i < len(padded); i += 4 {
		h = h<<16 ^ h>>16 ^ binary.LittleEndian.Uint32(padded[i:])
	}
	return h
}

// xattrBlockHash is the block's h_hash: the entry hashes folded together, or 0 when an entry has
// no hash (such a block is never shared).
func xattrBlockHash(hashes []uint32) uint32 {
	var h uint32
	for _, eh := range hashes {
		if eh == 0 {
			return 0
		}
		h = h<<16 ^ h>>16 ^ eh
	}
	return h
}

// splitXattrs sorts xs as e2fsprogs sorts an xattr block and decides where each one goes: into
// the inode's extra space while it still has room (in that order, as the kernel tries the inode
// first for each attribute), the rest into an external block. It refuses names the format cannot
// hold and attributes that do not fit one block.
func (fsys *FS) splitXattrs(xs map[string][]byte, name string) (ibody, block []xattrEntry, err error) {
	all := make([]xattrEntry, 0, len(xs))
	for full, v := range xs {
		idx, suffix := xattrName(full)
		if len(suffix) > 255 || suffix == "" && idx == 0 {
			return nil, nil, fmt.Errorf("%s: attribute name %q is empty or longer than 255 bytes", name, full)
		}
		all = append(all, xattrEntry{full: full, idx: idx, suffix: suffix, value: v})
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.idx != b.idx {
			return a.idx < b.idx
		}
		if len(a.suffix) != len(b.suffix) {
			return len(a.suffix) < len(b.suffix)
		}
		return a.suffix < b.suffix
	})
	// the in-inode area: after the extra fields, a 4-byte magic, then entries, a 4-byte
	// terminator, and values packed from the end of the inode
	room := int(fsys.inodeSize) - 128 - int(fsys.newExtraIsize) - 4 - 4
	if fsys.inodeSize <= 128 {
		room = -1
	}
	blockRoom := int(fsys.bs) - xattrHeaderSize - 4
	used, bused := 0, 0
	for _, x := range all {
		need := x.entrySize() + x.valueSize()
		if used+need <= room {
			ibody = append(ibody, x)
			used += need
			continue
		}
		if len(x.value) > maxXattrValue {
			return nil, nil, unsupportedf("%s: attribute %s has a value of %d bytes; values over %d bytes are not written", name, x.full, len(x.value), maxXattrValue)
		}
		block = append(block, x)
		bused += need
	}
	if bused > blockRoom {
		names := make([]string, len(block))
		for i, x := range block {
			names[i] = x.full
		}
		return nil, nil, unsupportedf("%s: extended attributes (%s) fit neither in the inode nor in one %d-byte xattr block (%d bytes needed); xattr inodes (ea_inode) are not written",
			name, strings.Join(names, ", "), fsys.bs, bused+xattrHeaderSize+4)
	}
	return ibody, block, nil
}

// XattrBlocks returns how many external xattr blocks (0 or 1) an Editor writes for a new inode
// carrying xs: 1 when they do not all fit in the inode's extra space (always, with 128-byte
// inodes). Attributes that cannot be stored at all count 0 (the Editor refuses them).
func (fsys *FS) XattrBlocks(xs map[string][]byte) uint64 {
	_, block, err := fsys.splitXattrs(xs, "")
	if err != nil || len(block) == 0 {
		return 0
	}
	return 1
}

// xattrBlocksNeeded checks that xs can be stored and returns the external blocks they take.
func (e *Editor) xattrBlocksNeeded(xs map[string][]byte, name string) (uint64, error) {
	_, block, err := e.fsys.splitXattrs(xs, name)
	if err != nil {
		return 0, err
	}
	if len(block) > 0 {
		return 1, nil
	}
	return 0, nil
}

// putXattrs stores xs in new inode raw: in its extra space, and what does not fit there in a
// newly allocated external block, whose number goes to i_file_acl and which i_blocks counts.
func (e *Editor) putXattrs(raw []byte, xs map[string][]byte, name string) error {
	if len(xs) == 0 {
		return nil
	}
	ibody, block, err := e.fsys.splitXattrs(xs, name)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	if len(ibody) > 0 {
		start := 128 + int(e.extraIsize)
		le.PutUint32(raw[start:], xattrMagic)
		body := raw[start+4:]
		off, vend := 0, len(body)
		for _, x := range ibody {
			vend -= x.valueSize()
			copy(body[vend:], x.value)
			putXattrEntry(body[off:], x, vend)
			off += x.entrySize()
		}
	}
	if len(block) == 0 {
		return nil
	}
	rs, err := e.allocBlocks(1, name+" xattr block")
	if err != nil {
		return err
	}
	b := rs[0].start
	if err := e.writeXattrBlock(b, block, name); err != nil {
		return err
	}
	le.PutUint32(raw[0x68:], uint32(b))
	le.PutUint16(raw[0x76:], uint16(b>>32))
	add := uint64(e.fsys.bs / 512)
	if le.Uint32(raw[0x20:])&flagHugeFile != 0 {
		add = 1 // i_blocks counts file system blocks
	}
	b512 := uint64(le.Uint32(raw[0x1C:])) + add
	if e.fsys.sb.FeatureROCompat&roCompatHugeFile != 0 {
		b512 |= uint64(le.Uint16(raw[0x74:])) << 32
	}
	if b512 >= 1<<32 {
		return unsupportedf("%s: its block count with the xattr block is more than this writer stores in i_blocks", name)
	}
	le.PutUint32(raw[0x1C:], uint32(b512))
	if e.fsys.sb.FeatureCompat&compatExtAttr == 0 {
		// the kernel sets ext_attr with the first xattr it writes; e2fsck drops xattr blocks
		// of file systems without it
		e.fsys.sb.FeatureCompat |= compatExtAttr
		le.PutUint32(e.sbRaw[0x5C:], e.fsys.sb.FeatureCompat)
	}
	return nil
}

// putXattrEntry writes entry x (its value at voff) at the start of p.
func putXattrEntry(p []byte, x xattrEntry, voff int) {
	le := binary.LittleEndian
	p[0] = byte(len(x.suffix))
	p[1] = x.idx
	le.PutUint16(p[2:], uint16(voff))
	le.PutUint32(p[4:], 0) // e_value_inum: the value is in place
	le.PutUint32(p[8:], uint32(len(x.value)))
	le.PutUint32(p[12:], xattrHash(x.suffix, x.value))
	copy(p[16:], x.suffix)
}

// writeXattrBlock writes entries (sorted, known to fit) as the external xattr block b, used by
// one inode.
func (e *Editor) writeXattrBlock(b uint64, entries []xattrEntry, name string) error {
	le := binary.LittleEndian
	blk := make([]byte, e.fsys.bs)
	le.PutUint32(blk[0x0:], xattrMagic)
	le.PutUint32(blk[0x4:], 1) // h_refcount
	le.PutUint32(blk[0x8:], 1) // h_blocks
	off, vend := xattrHeaderSize, len(blk)
	hashes := make([]uint32, 0, len(entries))
	for _, x := range entries {
		vend -= x.valueSize()
		copy(blk[vend:], x.value)
		putXattrEntry(blk[off:], x, vend)
		hashes = append(hashes, le.Uint32(blk[off+12:]))
		off += x.entrySize()
	}
	if off+4 > vend {
		return fmt.Errorf("%s: xattr block entries overlap their values", name) // splitXattrs keeps this from happening
	}
	le.PutUint32(blk[0xC:], xattrBlockHash(hashes))
	if e.fsys.metaCsum {
		le.PutUint32(blk[0x10:], e.xattrBlockCsum(b, blk))
	}
	e.fsys.xattrMu.Lock()
	delete(e.fsys.xattrCache, b)
	e.fsys.xattrMu.Unlock()
	return e.writeAt(blk, int64(b)*e.fsys.bs, fmt.Sprintf("%s xattr block %d", name, b))
}

// xattrBlockCsum is the metadata_csum checksum of xattr block blk at block number b: CRC32C from
// the file system's seed over the 64-bit block number, then over the block with h_checksum
// taken as zero.
func (e *Editor) xattrBlockCsum(b uint64, blk []byte) uint32 {
	var num [8]byte
	binary.LittleEndian.PutUint64(num[:], b)
	c := crc32c(e.fsys.csumSeed, num[:])
	c = crc32c(c, blk[:0x10])
	c = crc32c(c, []byte{0, 0, 0, 0})
	return crc32c(c, blk[0x14:])
}
