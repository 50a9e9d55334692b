package erofs

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"time"

	"github.com/provkit/provkit/internal/unixmode"
)

// Data layouts (i_format bits 1-3).
const (
	LayoutFlatPlain         = 0
	LayoutCompressedFull    = 1
	LayoutFlatInline        = 2
	LayoutCompressedCompact = 3
	LayoutChunkBased        = 4
	inodeCompactSize        = 32
	inodeExtendedSize       = 64
	maxSymlinkSize          = 4095
	maxDirSize              = 64 << 20 // far above any real directory; bounds what ReadDir holds
	maxInlineXattrBodySize  = 1 << 16
	xattrIbodyHeaderSize    = 12
	chunkFormatBlkbitsMask  = 0x1f
	chunkFormatIndexes      = 0x20
	chunkFormatAll          = chunkFormatBlkbitsMask | chunkFormatIndexes
	inodeFormatAll          = 0x1f
	inodeFormatNlink1       = 0x10 // compact non-directory inodes: nlink is 1 (erofs-utils 1.9+)
	inodeFormatLayoutShift  = 1
	inodeFormatLayoutMask   = 0x07
	inodeFormatVersionMask  = 0x01
)

// LayoutName returns the name of a data layout, e.g. "FLAT_INLINE".
func LayoutName(l int) string {
	switch l {
	case LayoutFlatPlain:
		return "FLAT_PLAIN"
	case LayoutCompressedFull:
		return "COMPRESSED_FULL"
	case LayoutFlatInline:
		return "FLAT_INLINE"
	case LayoutCompressedCompact:
		return "COMPRESSED_COMPACT"
	case LayoutChunkBased:
		return "CHUNK_BASED"
	}
	return fmt.Sprintf("layout %d", l)
}

// Inode is the decoded on-disk inode of a file, directory, symlink or device. It is what
// FileInfo.Sys() returns.
type Inode struct {
	nid        uint64
	pos        int64 // byte offset of the inode in the image
	extended   bool
	layout     int
	mode       uint16 // Unix mode bits: S_IFMT and permissions
	nlink      uint32
	size       int64
	u          uint32 // raw_blkaddr, compressed_blocks, rdev or chunk info
	uid, gid   uint32
	mtime      time.Time
	xattrIsize int64
	xattrs     []xattr // in on-disk order: shared first, then inline
}

type xattr struct {
	name  string
	value []byte
}

// Inode carries the method set every provkit filesystem reader returns from FileInfo.Sys(), so
// firmware/image can report owners, inode numbers and SELinux labels whatever the format.
var _ interface {
	UID() uint32
	GID() uint32
	Ino() uint64
	Xattr(name string) ([]byte, bool)
	Xattrs() map[string][]byte
} = (*Inode)(nil)

// Nid returns the inode's number (its slot in the metadata area).
func (in *Inode) Nid() uint64 { return in.nid }

// Ino returns the inode number reported to stat: the nid, as Linux reports it on 64-bit systems.
func (in *Inode) Ino() uint64 { return in.nid }

// UID returns the owner user id.
func (in *Inode) UID() uint32 { return in.uid }

// GID returns the owner group id.
func (in *Inode) GID() uint32 { return in.gid }

// Nlink returns the hard link count.
func (in *Inode) Nlink() uint32 { return in.nlink }

// Mode returns the raw Unix mode (file type and permission bits, as in st_mode).
func (in *Inode) Mode() uint16 { return in.mode }

// Size returns the size in bytes.
func (in *Inode) Size() int64 { return in.size }

// Mtime returns the modification time (the image build time for compact inodes).
func (in *Inode) Mtime() time.Time { return in.mtime }

// Layout returns the data layout (LayoutFlatPlain, ...).
func (in *Inode) Layout() int { return in.layout }

// Extended reports whether the inode is the 64-byte extended form.
func (in *Inode) Extended() bool { return in.extended }

// Rdev returns the device number of a character or block device, as Linux's new_encode_dev
// stores it; Major and Minor decode it.
func (in *Inode) Rdev() uint32 {
	if in.isDevice() {
		return in.u
	}
	return 0
}

// Major returns the major device number of a device inode.
func (in *Inode) Major() uint32 { return (in.Rdev() & 0xfff00) >> 8 }

// Minor returns the minor device number of a device inode.
func (in *Inode) Minor() uint32 { r := in.Rdev(); return (r & 0xff) | ((r >> 12) & 0xfff00) }

// Xattr returns the value of the extended attribute with the full name (e.g. "security.selinux").
func (in *Inode) Xattr(name string) ([]byte, bool) {
	for _, x := range in.xattrs {
		if x.name == name {
			return x.value, true
		}
	}
	return nil, false
}

// Xattrs returns all extended attributes by full name.
func (in *Inode) Xattrs() map[string][]byte {
	m := make(map[string][]byte, len(in.xattrs))
	for _, x := range in.xattrs {
		m[x.name] = x.value
	}
	return m
}

// SELinuxLabel returns the security.selinux xattr without its trailing NUL, or "".
func (in *Inode) SELinuxLabel() string {
	v, _ := in.Xattr("security.selinux")
	for len(v) > 0 && v[len(v)-1] == 0 {
		v = v[:len(v)-1]
	}
	return string(v)
}

func (in *Inode) isDir() bool     { return in.mode&unixmode.IFMT == unixmode.IFDIR }
func (in *Inode) isSymlink() bool { return in.mode&unixmode.IFMT == unixmode.IFLNK }
func (in *Inode) isReg() bool     { return in.mode&unixmode.IFMT == unixmode.IFREG }
func (in *Inode) isDevice() bool {
	t := in.mode & unixmode.IFMT
	return t == unixmode.IFCHR || t == unixmode.IFBLK
}

// FileMode converts the Unix mode to an io/fs mode.
func (in *Inode) FileMode() fs.FileMode { return unixmode.FileMode(uint32(in.mode)) }

// inode reads and checks the inode with number nid, including its xattrs.
func (f *FS) inode(nid uint64) (*Inode, error) {
	if nid > uint64(f.size)/inodeCompactSize {
		return nil, fmt.Errorf("reading inode %d: nid past the end of the %d-byte image: %w", nid, f.size, ErrCorrupt)
	}
	pos := f.metaOff + int64(nid)*inodeCompactSize
	if pos+inodeCompactSize > f.size {
		return nil, fmt.Errorf("reading inode %d at offset %d: past the end of the %d-byte image: %w", nid, pos, f.size, ErrCorrupt)
	}
	var raw [inodeExtendedSize]byte
	if err := f.readAt(raw[:inodeCompactSize], pos, fmt.Sprintf("inode %d", nid)); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	format := le.Uint16(raw[0:])
	if format&^inodeFormatAll != 0 {
		return nil, fmt.Errorf("reading inode %d at offset %d: unknown i_format bits %#x: %w", nid, pos, format, ErrUnsupported)
	}
	in := &Inode{nid: nid, pos: pos, extended: format&inodeFormatVersionMask != 0,
		layout: int(format>>inodeFormatLayoutShift) & inodeFormatLayoutMask}
	if in.layout > LayoutChunkBased {
		return nil, fmt.Errorf("reading inode %d at offset %d: unknown data layout %d: %w", nid, pos, in.layout, ErrUnsupported)
	}
	xattrCount := le.Uint16(raw[2:])
	in.mode = le.Uint16(raw[4:])
	if in.extended {
		if err := f.readAt(raw[inodeCompactSize:], pos+inodeCompactSize, fmt.Sprintf("extended inode %d", nid)); err != nil {
			return nil, err
		}
		size := le.Uint64(raw[8:])
		if size > 1<<62 {
			return nil, fmt.Errorf("reading inode %d at offset %d: absurd size %d: %w", nid, pos, size, ErrCorrupt)
		}
		in.size = int64(size)
		in.u = le.Uint32(raw[16:])
		in.uid = le.Uint32(raw[24:])
		in.gid = le.Uint32(raw[28:])
		sec, nsec := le.Uint64(raw[32:]), le.Uint32(raw[40:])
		if nsec >= 1e9 || sec > 1<<62 {
			return nil, fmt.Errorf("reading inode %d at offset %d: invalid mtime %d.%09d: %w", nid, pos, sec, nsec, ErrCorrupt)
		}
		in.mtime = time.Unix(int64(sec), int64(nsec)).UTC()
		in.nlink = le.Uint32(raw[44:])
	} else {
		in.nlink = uint32(le.Uint16(raw[6:]))
		if format&inodeFormatNlink1 != 0 && in.mode&unixmode.IFMT != unixmode.IFDIR {
			in.nlink = 1 // the field then holds high address bits, only used by 48-bit images
		}
		in.size = int64(le.Uint32(raw[8:]))
		// Newer images store the mtime of a compact inode as an offset from the build time in the
		// reserved field; older ones leave it zero, which gives the build time.
		in.u = le.Uint32(raw[16:])
		in.uid = uint32(le.Uint16(raw[24:]))
		in.gid = uint32(le.Uint16(raw[26:]))
		in.mtime = time.Unix(int64(f.sb.BuildTime)+int64(le.Uint32(raw[12:])), int64(f.sb.BuildTimeNsec%1e9)).UTC()
	}
	if xattrCount > 0 {
		in.xattrIsize = xattrIbodyHeaderSize + 4*(int64(xattrCount)-1)
	}
	if err := f.checkInode(in); err != nil {
		return nil, fmt.Errorf("reading inode %d at offset %d: %w", nid, pos, err)
	}
	if in.xattrIsize > 0 {
		if err := f.loadXattrs(in); err != nil {
			return nil, fmt.Errorf("reading xattrs of inode %d at offset %d: %w", nid, pos+in.isize(), err)
		}
	}
	return in, nil
}

func (in *Inode) isize() int64 {
	if in.extended {
		return inodeExtendedSize
	}
	return inodeCompactSize
}

// tailPos is the byte offset right after the inode and its inline xattrs, where inline data, chunk
// tables and compression indexes start.
func (in *Inode) tailPos() int64 { return in.pos + in.isize() + in.xattrIsize }

// checkInode validates sizes and layouts against the file type and the image size.
func (f *FS) checkInode(in *Inode) error {
	switch in.mode & unixmode.IFMT {
	case unixmode.IFREG, unixmode.IFDIR, unixmode.IFLNK:
	case unixmode.IFCHR, unixmode.IFBLK, unixmode.IFIFO, unixmode.IFSOCK:
		return nil // no data; i_u is the device number
	default:
		return fmt.Errorf("unknown file type in mode %#o: %w", in.mode, ErrCorrupt)
	}
	if in.tailPos() > f.size {
		return fmt.Errorf("inline xattrs of %d bytes run past the end of the image: %w", in.xattrIsize, ErrCorrupt)
	}
	if in.isSymlink() && in.size > maxSymlinkSize {
		return fmt.Errorf("symlink target of %d bytes is longer than %d: %w", in.size, maxSymlinkSize, ErrCorrupt)
	}
	if in.isDir() && in.size > maxDirSize {
		return fmt.Errorf("directory of %d bytes is larger than %d: %w", in.size, maxDirSize, ErrCorrupt)
	}
	switch in.layout {
	case LayoutFlatPlain, LayoutFlatInline:
		// Flat data is stored in the image itself, so it cannot be larger than the image.
		if in.size > f.size {
			return fmt.Errorf("%s data of %d bytes is larger than the %d-byte image: %w", LayoutName(in.layout), in.size, f.size, ErrCorrupt)
		}
		full, tail := f.flatBlocks(in)
		start := int64(in.u) << f.bsBits
		if full > 0 && (start > f.size || full<<f.bsBits > f.size-start) {
			return fmt.Errorf("%s data at block %d (%d blocks) runs past the end of the image: %w", LayoutName(in.layout), in.u, full, ErrCorrupt)
		}
		if tail > 0 {
			if (in.tailPos()&(f.bs-1))+tail > f.bs {
				return fmt.Errorf("inline tail of %d bytes at offset %d crosses a block boundary: %w", tail, in.tailPos(), ErrCorrupt)
			}
			if in.tailPos()+tail > f.size {
				return fmt.Errorf("inline tail of %d bytes runs past the end of the image: %w", tail, ErrCorrupt)
			}
		}
	case LayoutChunkBased:
		if f.sb.FeatureIncompat&FeatureIncompatChunkedFile == 0 {
			return fmt.Errorf("chunk-based inode in an image without the chunked_file feature: %w", ErrCorrupt)
		}
		if in.u&0xffff&^chunkFormatAll != 0 {
			return fmt.Errorf("unknown chunk format %#x: %w", in.u&0xffff, ErrUnsupported)
		}
		chunkBits := f.bsBits + uint(in.u&chunkFormatBlkbitsMask)
		if chunkBits > 40 {
			return fmt.Errorf("chunk size 2^%d is absurd: %w", chunkBits, ErrCorrupt)
		}
		// Every chunk has an entry in the table after the inode, inside the image.
		unit := int64(4)
		if in.u&chunkFormatIndexes != 0 {
			unit = 8
		}
		chunks := (in.size + int64(1)<<chunkBits - 1) >> chunkBits
		if chunks > (f.size-in.tailPos())/unit+1 {
			return fmt.Errorf("%d chunks of 2^%d bytes: their table cannot fit in the %d-byte image: %w", chunks, chunkBits, f.size, ErrCorrupt)
		}
	case LayoutCompressedFull, LayoutCompressedCompact:
		if !in.isReg() && !in.isDir() && !in.isSymlink() {
			return fmt.Errorf("compressed layout for a special file: %w", ErrCorrupt)
		}
		// LZ4 cannot expand one byte to more than 255: a compressed file much larger than the
		// image is a lie that would only make readers loop.
		if in.size > 256*f.size+(1<<20) {
			return fmt.Errorf("compressed file of %d bytes is absurd for a %d-byte image: %w", in.size, f.size, ErrCorrupt)
		}
	}
	return nil
}

// flatBlocks returns how many whole blocks of a flat inode live from raw_blkaddr and how many tail
// bytes are inline after the inode (FLAT_INLINE only).
func (f *FS) flatBlocks(in *Inode) (blocks, tail int64) {
	n := (in.size + f.bs - 1) >> f.bsBits
	if in.layout != LayoutFlatInline || n == 0 {
		return n, 0
	}
	return n - 1, in.size - (n-1)<<f.bsBits
}
