package ext4

import (
	"encoding/binary"
	"fmt"
	"io/fs"

	"github.com/provkit/provkit/internal/unixmode"
)

// dirent is one directory entry.
type dirent struct {
	ino   uint32
	name  string
	ftype uint8 // EXT4_FT_*: 1 reg, 2 dir, 3 chr, 4 blk, 5 fifo, 6 sock, 7 symlink; 0 unknown
}

func (d dirent) typeMode() fs.FileMode {
	switch d.ftype {
	case 2:
		return fs.ModeDir
	case 3:
		return fs.ModeDevice | fs.ModeCharDevice
	case 4:
		return fs.ModeDevice
	case 5:
		return fs.ModeNamedPipe
	case 6:
		return fs.ModeSocket
	case 7:
		return fs.ModeSymlink
	}
	return 0
}

var ftypeOfMode = map[uint16]uint8{unixmode.IFREG: 1, unixmode.IFDIR: 2, unixmode.IFCHR: 3, unixmode.IFBLK: 4, unixmode.IFIFO: 5, unixmode.IFSOCK: 6, unixmode.IFLNK: 7}

// scanDir calls fn for each entry of directory d other than "." and "..", stopping early when fn
// returns false. It returns the inode number recorded in "..". Every block is checked: entry
// lengths, names, inode numbers, and checksums (directory leaf tails, htree nodes) when present.
func (fsys *FS) scanDir(d *Inode, fn func(dirent) bool) (parent uint32, err error) {
	if !d.isDir() {
		return 0, corruptf("inode %d is not a directory", d.ino)
	}
	if d.flags&flagEncrypt != 0 {
		return 0, unsupportedf("directory inode %d is encrypted", d.ino)
	}
	if d.flags&flagInlineData != 0 {
		return fsys.scanInlineDir(d, fn)
	}
	if d.size%uint64(fsys.bs) != 0 || d.size == 0 {
		return 0, corruptf("directory inode %d at offset %d: size %d is not a positive multiple of the block size", d.ino, d.off, d.size)
	}
	if d.size > maxDirSize {
		return 0, corruptf("directory inode %d at offset %d: size %d exceeds provkit's limit of %d", d.ino, d.off, d.size, maxDirSize)
	}
	nblocks := d.size / uint64(fsys.bs)
	isDX := d.flags&flagIndex != 0 && fsys.sb.FeatureCompat&compatDirIndex != 0
	var dxBlocks map[uint64]bool
	if isDX {
		if dxBlocks, err = fsys.dxTree(d, nblocks); err != nil {
			return 0, err
		}
	}
	m := newMapper(d)
	buf := make([]byte, fsys.bs)
	seenDot := false
	for lb := uint64(0); lb < nblocks; {
		sp, err := m.lookup(lb)
		if err != nil {
			return 0, err
		}
		n := min(sp.n, nblocks-lb)
		if sp.hole {
			return 0, corruptf("directory inode %d: logical block %d is a hole", d.ino, lb)
		}
		for k := uint64(0); k < n; k++ {
			blk := lb + k
			phys := sp.phys + k
			off := int64(phys) * fsys.bs
			if err := fsys.readAt(buf, off, fmt.Sprintf("directory inode %d block %d", d.ino, blk)); err != nil {
				return 0, err
			}
			if isDX && blk != 0 && dxBlocks[blk] {
				continue // interior htree node, already checked
			}
			where := fmt.Sprintf("directory inode %d block %d at offset %d", d.ino, blk, off)
			if isDX && blk == 0 {
				// The htree root (checked by dxTree): "." and ".." then the index.
				le := binary.LittleEndian
				if le.Uint32(buf) != d.ino || buf[6] != 1 || buf[8] != '.' || buf[12+6] != 2 || buf[12+8] != '.' || buf[12+9] != '.' {
					return 0, corruptf("%s: htree root does not start with \".\" (this directory) and \"..\"", where)
				}
				seenDot, parent = true, le.Uint32(buf[12:])
				continue
			}
			region := buf
			if fsys.metaCsum {
				if region, err = fsys.checkDirTail(d, buf, where); err != nil {
					return 0, err
				}
			}
			stop := false
			err := fsys.parseDirBlock(region, where, func(e dirent, pos int) error {
				if blk == 0 && pos < 2 {
					want := [2]string{".", ".."}[pos]
					if e.name != want {
						return corruptf("%s: entry %d is %q, want %q", where, pos, e.name, want)
					}
					if pos == 0 {
						if e.ino != d.ino {
							return corruptf("%s: \".\" points to inode %d, not to the directory itself", where, e.ino)
						}
						seenDot = true
					} else {
						parent = e.ino
					}
					return nil
				}
				if e.name == "." || e.name == ".." {
					return corruptf("%s: stray %q entry", where, e.name)
				}
				if !stop && !fn(e) {
					stop = true
				}
				return nil
			})
			if err != nil {
				return 0, err
			}
			if stop {
				return parent, nil
			}
		}
		lb += n
	}
	if !seenDot || parent == 0 {
		return 0, corruptf("directory inode %d: no \".\" and \"..\" entries", d.ino)
	}
	return parent, nil
}

// parseDirBlock walks the linked entries in region. fn gets each used entry and its position.
func (fsys *FS) parseDirBlock(region []byte, where string, fn func(dirent, int) error) error {
	le := binary.LittleEndian
	pos := 0
	for off := 0; off < len(region); {
		if off+8 > len(region) {
			return corruptf("%s: entry at byte %d is truncated", where, off)
		}
		ino := le.Uint32(region[off:])
		recLen := int(le.Uint16(region[off+4:]))
		if fsys.bs >= 65536 && (recLen == 65535 || recLen == 0) {
			recLen = int(fsys.bs)
		}
		nameLen := int(region[off+6])
		ftype := region[off+7]
		if fsys.sb.FeatureIncompat&incompatFiletype == 0 {
			nameLen |= int(ftype) << 8
			ftype = 0
		}
		if recLen < 8 || recLen%4 != 0 || off+recLen > len(region) || 8+nameLen > recLen {
			return corruptf("%s: entry at byte %d has record length %d (name %d bytes) in a %d-byte area", where, off, recLen, nameLen, len(region))
		}
		if ino != 0 {
			if ino > fsys.sb.InodesCount {
				return corruptf("%s: entry at byte %d points to inode %d of %d", where, off, ino, fsys.sb.InodesCount)
			}
			if nameLen == 0 {
				return corruptf("%s: entry at byte %d has an empty name", where, off)
			}
			name := string(region[off+8 : off+8+nameLen])
			for i := 0; i < len(name); i++ {
				if name[i] == '/' || name[i] == 0 {
					return corruptf("%s: entry at byte %d: name %q contains '/' or NUL", where, off, name)
				}
			}
			if ftype > 7 {
				return corruptf("%s: entry %q at byte %d has unknown file type %d", where, name, off, ftype)
			}
			if err := fn(dirent{ino: ino, name: name, ftype: ftype}, pos); err != nil {
				return err
			}
			pos++
		}
		off += recLen
	}
	return nil
}

// checkDirTail verifies the checksum tail of a directory leaf block and returns the block without it.
func (fsys *FS) checkDirTail(d *Inode, buf []byte, where string) ([]byte, error) {
	le := binary.LittleEndian
	t := len(buf) - 12
	if le.Uint32(buf[t:]) != 0 || le.Uint16(buf[t+4:]) != 12 || buf[t+6] != 0 || buf[t+7] != 0xDE {
		return nil, corruptf("%s: missing directory checksum tail", where)
	}
	stored := le.Uint32(buf[t+8:])
	if got := crc32c(d.csumSeed(), buf[:t]); got != stored {
		return nil, checksumf("%s: checksum 0x%08x, computed 0x%08x", where, stored, got)
	}
	return buf[:t], nil
}

// dxTree checks an htree directory's index (root in block 0, interior nodes below) and returns
// the logical blocks that hold interior nodes.
func (fsys *FS) dxTree(d *Inode, nblocks uint64) (map[uint64]bool, error) {
	le := binary.LittleEndian
	m := newMapper(d)
	read := func(lb uint64) ([]byte, int64, error) {
		sp, err := m.lookup(lb)
		if err != nil {
			return nil, 0, err
		}
		if sp.hole {
			return nil, 0, corruptf("directory inode %d: htree block %d is a hole", d.ino, lb)
		}
		off := int64(sp.phys) * fsys.bs
		b := make([]byte, fsys.bs)
		if err := fsys.readAt(b, off, fmt.Sprintf("directory inode %d htree block %d", d.ino, lb)); err != nil {
			return nil, 0, err
		}
		return b, off, nil
	}
	root, off, err := read(0)
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("directory inode %d htree root at offset %d", d.ino, off)
	if le.Uint16(root[4:]) != 12 || int64(le.Uint16(root[12+4:])) != fsys.bs-12 {
		return nil, corruptf("%s: \".\" and \"..\" entries do not have the htree root layout", where)
	}
	if le.Uint32(root[24:]) != 0 || root[24+5] != 8 {
		return nil, corruptf("%s: bad dx_root_info", where)
	}
	levels := int(root[24+6])
	maxLevels := 2
	if fsys.sb.FeatureIncompat&incompatLargeDir != 0 {
		maxLevels = 3
	}
	if levels >= maxLevels {
		return nil, corruptf("%s: %d indirect levels (at most %d)", where, levels, maxLevels-1)
	}
	interior := map[uint64]bool{}
	var walk func(b []byte, countOff int, where string, level int) error
	walk = func(b []byte, countOff int, where string, level int) error {
		limit := int(le.Uint16(b[countOff:]))
		count := int(le.Uint16(b[countOff+2:]))
		space := (len(b) - countOff) / 8
		if fsys.metaCsum {
			space-- // the dx_tail
		}
		if limit != space || count == 0 || count > limit {
			return corruptf("%s: count %d, limit %d (room for %d entries)", where, count, limit, space)
		}
		if fsys.metaCsum {
			t := countOff + limit*8
			c := crc32c(d.csumSeed(), b[:countOff+count*8])
			c = crc32c(c, b[t:t+4])
			c = crc32c(c, []byte{0, 0, 0, 0})
			if stored := le.Uint32(b[t+4:]); stored != c {
				return checksumf("%s: checksum 0x%08x, computed 0x%08x", where, stored, c)
			}
		}
		for i := 0; i < count; i++ {
			child := uint64(le.Uint32(b[countOff+4+8*i:]))
			if child == 0 || child >= nblocks {
				return corruptf("%s: entry %d points to block %d of a %d-block directory", where, i, child, nblocks)
			}
			if level == 0 {
				continue
			}
			if interior[child] {
				return corruptf("%s: entry %d points to interior block %d again (loop)", where, i, child)
			}
			interior[child] = true
			cb, coff, err := read(child)
			if err != nil {
				return err
			}
			cw := fmt.Sprintf("directory inode %d htree node %d at offset %d", d.ino, child, coff)
			if le.Uint32(cb) != 0 || int64(le.Uint16(cb[4:])) != fsys.bs && !(fsys.bs >= 65536 && le.Uint16(cb[4:]) == 0) {
				return corruptf("%s: not an htree interior node", cw)
			}
			if err := walk(cb, 8, cw, level-1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, 32, where, levels); err != nil {
		return nil, err
	}
	return interior, nil
}

// scanInlineDir reads a directory stored in the inode: the parent inode number, then entries in
// the rest of i_block and in the system.data attribute.
func (fsys *FS) scanInlineDir(d *Inode, fn func(dirent) bool) (uint32, error) {
	data, err := d.inlineData()
	if err != nil {
		return 0, err
	}
	parent := binary.LittleEndian.Uint32(data)
	if parent == 0 || parent > fsys.sb.InodesCount {
		return 0, corruptf("inline directory inode %d at offset %d: parent inode %d", d.ino, d.off, parent)
	}
	stop := false
	visit := func(e dirent, _ int) error {
		if e.name == "." || e.name == ".." {
			return corruptf("inline directory inode %d: stray %q entry", d.ino, e.name)
		}
		if !stop && !fn(e) {
			stop = true
		}
		return nil
	}
	if err := fsys.parseDirBlock(data[4:60], fmt.Sprintf("inline directory inode %d i_block", d.ino), visit); err != nil {
		return 0, err
	}
	if extra := data[60:]; len(extra) > 0 && !stop {
		if err := fsys.parseDirBlock(extra, fmt.Sprintf("inline directory inode %d system.data", d.ino), visit); err != nil {
			return 0, err
		}
	}
	return parent, nil
}
