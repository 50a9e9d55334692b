package ext4

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"time"

	"github.com/provkit/provkit/internal/unixmode"
)

// Inode flags (i_flags).
const (
	flagIndex      = 0x1000
	flagEncrypt    = 0x800
	flagHugeFile   = 0x40000
	flagExtents    = 0x80000
	flagEAInode    = 0x200000
	flagInlineData = 0x10000000
)

const rootIno = 2

// Inode is one file's inode. It is what FileInfo.Sys returns. Its methods are the same as those
// of the EROFS reader's inode, so callers can treat both alike.
type Inode struct {
	fsys *FS
	ino  uint32
	off  int64 // byte offset of the inode in the image

	mode       uint16
	uid, gid   uint32
	size       uint64
	links      uint16
	flags      uint32
	blocks512  uint64
	fileACL    uint64
	generation uint32
	mtime      time.Time
	iblock     [60]byte
	extraIsize uint16
	ibody      []byte // the in-inode xattr area (after the extra fields), nil if none

	xattrs map[string][]byte // loaded by loadXattrs

	parentWant uint32 // directories: the inode ".." must name (set by walk), 0 if unknown
}

// Ino returns the inode number.
func (n *Inode) Ino() uint64 { return uint64(n.ino) }

// UID returns the owner's user id.
func (n *Inode) UID() uint32 { return n.uid }

// GID returns the owner's group id.
func (n *Inode) GID() uint32 { return n.gid }

// RawMode returns i_mode: the file type and permission bits as stored.
func (n *Inode) RawMode() uint16 { return n.mode }

// Links returns the hard link count.
func (n *Inode) Links() uint16 { return n.links }

// Flags returns i_flags.
func (n *Inode) Flags() uint32 { return n.flags }

// Size returns i_size.
func (n *Inode) Size() uint64 { return n.size }

// Xattr returns the value of the extended attribute name (e.g. "security.selinux").
func (n *Inode) Xattr(name string) ([]byte, bool) {
	v, ok := n.xattrs[name]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), v...), true
}

// Xattrs returns all extended attributes by full name. The system.data attribute that holds inline
// data is not listed, as debugfs does not list it either.
func (n *Inode) Xattrs() map[string][]byte {
	m := make(map[string][]byte, len(n.xattrs))
	for k, v := range n.xattrs {
		m[k] = append([]byte(nil), v...)
	}
	return m
}

// SELinuxLabel returns the security.selinux label without its trailing NUL, or "".
func (n *Inode) SELinuxLabel() string {
	v := n.xattrs["security.selinux"]
	for len(v) > 0 && v[len(v)-1] == 0 {
		v = v[:len(v)-1]
	}
	return string(v)
}

func (n *Inode) isDir() bool     { return n.mode&unixmode.IFMT == unixmode.IFDIR }
func (n *Inode) isSymlink() bool { return n.mode&unixmode.IFMT == unixmode.IFLNK }
func (n *Inode) isReg() bool     { return n.mode&unixmode.IFMT == unixmode.IFREG }

// fileMode converts i_mode to an fs.FileMode.
func (n *Inode) fileMode() fs.FileMode { return unixmode.FileMode(uint32(n.mode)) }

// csumSeed is the per-inode checksum seed used by extent, directory and inode checksums.
func (n *Inode) csumSeed() uint32 {
	return crc32cU32(crc32cU32(n.fsys.csumSeed, n.ino), n.generation)
}

// readInode reads and checks inode ino.
func (fsys *FS) readInode(ino uint32) (*Inode, error) {
	sb := &fsys.sb
	if ino == 0 || ino > sb.InodesCount {
		return nil, corruptf("inode %d does not exist (the file system has %d inodes)", ino, sb.InodesCount)
	}
	g := (ino - 1) / sb.InodesPerGroup
	idx := (ino - 1) % sb.InodesPerGroup
	gd := &fsys.groups[g]
	if (fsys.metaCsum || fsys.gdtCsum) && ino >= sb.FirstIno {
		if gd.flags&bgInodeUninit != 0 || idx >= sb.InodesPerGroup-gd.itableUnused {
			return nil, corruptf("inode %d is in the uninitialized part of group %d's inode table: nothing can refer to it", ino, g)
		}
	}
	off := int64(gd.inodeTable)*fsys.bs + int64(idx)*fsys.inodeSize
	raw := make([]byte, fsys.inodeSize)
	if err := fsys.readAt(raw, off, fmt.Sprintf("inode %d", ino)); err != nil {
		return nil, err
	}
	return fsys.parseInode(ino, off, raw)
}

func (fsys *FS) parseInode(ino uint32, off int64, raw []byte) (*Inode, error) {
	le := binary.LittleEndian
	n := &Inode{fsys: fsys, ino: ino, off: off}
	n.mode = le.Uint16(raw[0x0:])
	n.uid = uint32(le.Uint16(raw[0x2:])) | uint32(le.Uint16(raw[0x78:]))<<16
	n.gid = uint32(le.Uint16(raw[0x18:])) | uint32(le.Uint16(raw[0x7A:]))<<16
	n.size = uint64(le.Uint32(raw[0x4:])) | uint64(le.Uint32(raw[0x6C:]))<<32
	n.links = le.Uint16(raw[0x1A:])
	n.flags = le.Uint32(raw[0x20:])
	copy(n.iblock[:], raw[0x28:0x64])
	n.generation = le.Uint32(raw[0x64:])
	n.fileACL = uint64(le.Uint32(raw[0x68:])) | uint64(le.Uint16(raw[0x76:]))<<32
	n.blocks512 = uint64(le.Uint32(raw[0x1C:]))
	if fsys.sb.FeatureROCompat&roCompatHugeFile != 0 {
		n.blocks512 |= uint64(le.Uint16(raw[0x74:])) << 32
		if n.flags&flagHugeFile != 0 {
			n.blocks512 *= uint64(fsys.bs / 512)
		}
	}
	mtimeExtra := uint32(0)
	if len(raw) > 128 {
		n.extraIsize = le.Uint16(raw[0x80:])
		if n.extraIsize%4 != 0 || 128+int(n.extraIsize) > len(raw) {
			return nil, corruptf("inode %d at offset %d: extra inode size %d does not fit a %d-byte inode", ino, off, n.extraIsize, len(raw))
		}
		if n.extraIsize >= 0x8C-0x80 {
			mtimeExtra = le.Uint32(raw[0x88:])
		}
		if body := raw[128+int(n.extraIsize):]; len(body) >= 4 && le.Uint32(body) == xattrMagic {
			n.ibody = body[4:]
		}
	}
	secs := int64(int32(le.Uint32(raw[0x10:]))) + int64(mtimeExtra&3)<<32
	n.mtime = time.Unix(secs, int64(mtimeExtra>>2)).UTC()

	if fsys.metaCsum {
		if err := n.verifyChecksum(raw); err != nil {
			return nil, err
		}
	}
	if err := n.check(); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *Inode) verifyChecksum(raw []byte) error {
	le := binary.LittleEndian
	c := make([]byte, len(raw))
	copy(c, raw)
	stored := uint32(le.Uint16(c[0x7C:]))
	c[0x7C], c[0x7D] = 0, 0
	hasHi := len(c) > 128 && n.extraIsize >= 4
	if hasHi {
		stored |= uint32(le.Uint16(c[0x82:])) << 16
		c[0x82], c[0x83] = 0, 0
	}
	got := crc32c(n.csumSeed(), c)
	if !hasHi {
		got &= 0xFFFF
	}
	if got != stored {
		return checksumf("inode %d at offset %d: checksum 0x%x, computed 0x%x", n.ino, n.off, stored, got)
	}
	return nil
}

// check validates the inode's fields against each other and the file system.
func (n *Inode) check() error {
	fsys := n.fsys
	switch n.mode & unixmode.IFMT {
	case unixmode.IFREG, unixmode.IFDIR, unixmode.IFLNK, unixmode.IFCHR, unixmode.IFBLK, unixmode.IFIFO, unixmode.IFSOCK:
	default:
		return corruptf("inode %d at offset %d: unknown file type in mode 0%o", n.ino, n.off, n.mode)
	}
	if n.flags&flagExtents != 0 && n.flags&flagInlineData != 0 {
		return corruptf("inode %d at offset %d: both extents and inline data flags are set", n.ino, n.off)
	}
	if n.flags&flagExtents != 0 && fsys.sb.FeatureIncompat&incompatExtents == 0 {
		return corruptf("inode %d at offset %d: extents flag on a file system without the extent feature", n.ino, n.off)
	}
	if n.flags&flagInlineData != 0 && fsys.sb.FeatureIncompat&incompatInlineData == 0 {
		return corruptf("inode %d at offset %d: inline data flag on a file system without the inline_data feature", n.ino, n.off)
	}
	if max := n.maxSize(); n.size > max {
		return corruptf("inode %d at offset %d: size %d exceeds the %d bytes its block mapping can address", n.ino, n.off, n.size, max)
	}
	if n.fileACL != 0 {
		if err := fsys.checkData(n.fileACL, 1, func() string { return fmt.Sprintf("inode %d xattr block", n.ino) }); err != nil {
			return err
		}
	}
	return nil
}

// maxSize is the largest i_size the inode's mapping can address.
func (n *Inode) maxSize() uint64 {
	bs := uint64(n.fsys.bs)
	switch {
	case n.flags&flagInlineData != 0:
		return 60 + maxXattrValue
	case n.flags&flagExtents != 0:
		return (1 << 32) * bs
	}
	p := bs / 4
	return (12 + p + p*p + p*p*p) * bs
}

// loadXattrs reads the in-inode and external-block extended attributes.
func (n *Inode) loadXattrs() error {
	if n.xattrs != nil {
		return nil
	}
	m := map[string][]byte{}
	if n.ibody != nil {
		if err := n.fsys.parseXattrs(m, n.ibody, n.ibody, 0, fmt.Sprintf("inode %d in-inode xattrs at offset %d", n.ino, n.off+128+int64(n.extraIsize))); err != nil {
			return err
		}
	}
	if n.fileACL != 0 {
		bm, err := n.fsys.xattrBlock(n.fileACL, n.ino)
		if err != nil {
			return err
		}
		for k, v := range bm {
			if _, dup := m[k]; !dup {
				m[k] = v
			}
		}
	}
	n.xattrs = m
	return nil
}

// inlineData returns the inline data of an inode with the inline data flag: i_block followed by
// the system.data xattr.
func (n *Inode) inlineData() ([]byte, error) {
	if err := n.loadXattrs(); err != nil {
		return nil, err
	}
	data := append(n.iblock[:], n.xattrs["system.data"]...)
	if n.size > uint64(len(data)) {
		return nil, corruptf("inode %d at offset %d: inline data of %d bytes, i_size says %d", n.ino, n.off, len(data), n.size)
	}
	return data, nil
}
