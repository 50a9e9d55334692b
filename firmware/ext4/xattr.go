package ext4

import (
	"encoding/binary"
	"fmt"
	"io"
)

const xattrMagic = 0xEA020000

var xattrPrefixes = map[uint8]string{
	0: "",
	1: "user.",
	2: "system.posix_acl_access",
	3: "system.posix_acl_default",
	4: "trusted.",
	5: "lustre.",
	6: "security.",
	7: "system.",
	8: "system.richacl",
	9: "encryption.",
}

// parseXattrs decodes the entries in entries (an in-inode area after its magic, or an external
// block after its 32-byte header) into m. Value offsets are relative to valueBase, whose first
// byte sits at byte baseOff of entries' region (0 for both layouts here). what names the region.
func (fsys *FS) parseXattrs(m map[string][]byte, entries, valueBase []byte, _ int, what string) error {
	le := binary.LittleEndian
	off := 0
	for count := 0; ; count++ {
		if off+4 > len(entries) {
			return corruptf("%s: entry list at byte %d runs past the end without a terminator", what, off)
		}
		if le.Uint32(entries[off:]) == 0 {
			return nil
		}
		if off+16 > len(entries) {
			return corruptf("%s: entry at byte %d is truncated", what, off)
		}
		nameLen := int(entries[off])
		index := entries[off+1]
		valueOff := int(le.Uint16(entries[off+2:]))
		valueInum := le.Uint32(entries[off+4:])
		valueSize := int(le.Uint32(entries[off+8:]))
		if off+16+nameLen > len(entries) {
			return corruptf("%s: entry at byte %d: name of %d bytes runs past the end", what, off, nameLen)
		}
		prefix, ok := xattrPrefixes[index]
		if !ok {
			return corruptf("%s: entry at byte %d: unknown name index %d", what, off, index)
		}
		name := prefix + string(entries[off+16:off+16+nameLen])
		if valueSize > maxXattrValue {
			return corruptf("%s: attribute %q: value size %d exceeds %d", what, name, valueSize, maxXattrValue)
		}
		var val []byte
		if valueInum != 0 {
			if fsys.sb.FeatureIncompat&incompatEAInode == 0 {
				return corruptf("%s: attribute %q stored in inode %d without the ea_inode feature", what, name, valueInum)
			}
			v, err := fsys.readEAInode(valueInum, valueSize)
			if err != nil {
				return fmt.Errorf("reading %s: attribute %q: %w", what, name, err)
			}
			val = v
		} else {
			if valueOff+valueSize > len(valueBase) {
				return corruptf("%s: attribute %q: value at %d (%d bytes) runs past the end of its %d-byte area", what, name, valueOff, valueSize, len(valueBase))
			}
			val = append([]byte(nil), valueBase[valueOff:valueOff+valueSize]...)
		}
		m[name] = val
		off += (16 + nameLen + 3) &^ 3
	}
}

// readEAInode reads an xattr value stored in its own inode (the ea_inode feature).
func (fsys *FS) readEAInode(ino uint32, size int) ([]byte, error) {
	n, err := fsys.readInode(ino)
	if err != nil {
		return nil, err
	}
	if n.flags&flagEAInode == 0 || !n.isReg() || n.size != uint64(size) {
		return nil, corruptf("inode %d is not an xattr value inode of %d bytes", ino, size)
	}
	f := &File{fsys: fsys, n: n}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return buf, nil
}

// xattrBlock reads and caches the external xattr block b, referenced by inode ino.
func (fsys *FS) xattrBlock(b uint64, ino uint32) (map[string][]byte, error) {
	fsys.xattrMu.Lock()
	m, ok := fsys.xattrCache[b]
	fsys.xattrMu.Unlock()
	if ok {
		return m, nil
	}
	what := fmt.Sprintf("xattr block %d (inode %d) at offset %d", b, ino, int64(b)*fsys.bs)
	blk, err := fsys.readBlock(b, what)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if le.Uint32(blk) != xattrMagic {
		return nil, corruptf("%s: bad magic 0x%08x", what, le.Uint32(blk))
	}
	if nb := le.Uint32(blk[8:]); nb != 1 {
		return nil, corruptf("%s: header says it spans %d blocks, want 1", what, nb)
	}
	if fsys.metaCsum {
		var num [8]byte
		le.PutUint64(num[:], b)
		c := crc32c(fsys.csumSeed, num[:])
		stored := le.Uint32(blk[0x10:])
		tmp := append([]byte(nil), blk...)
		le.PutUint32(tmp[0x10:], 0)
		if got := crc32c(c, tmp); got != stored {
			return nil, checksumf("%s: checksum 0x%08x, computed 0x%08x", what, stored, got)
		}
	}
	m = map[string][]byte{}
	if err := fsys.parseXattrs(m, blk[32:], blk, 0, what); err != nil {
		return nil, err
	}
	fsys.xattrMu.Lock()
	if len(fsys.xattrCache) > 1024 {
		clear(fsys.xattrCache)
	}
	fsys.xattrCache[b] = m
	fsys.xattrMu.Unlock()
	return m, nil
}
