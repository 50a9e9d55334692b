package erofs

import (
	"encoding/binary"
	"fmt"
)

// Xattr name prefix indexes (e_name_index).
const (
	xattrIndexUser            = 1
	xattrIndexPosixACLAccess  = 2
	xattrIndexPosixACLDefault = 3
	xattrIndexTrusted         = 4
	xattrIndexLustre          = 5
	xattrIndexSecurity        = 6
	xattrLongPrefixFlag       = 0x80
	xattrEntryHeaderSize      = 4
)

func xattrPrefix(index uint8) (string, bool) {
	switch index {
	case xattrIndexUser:
		return "user.", true
	case xattrIndexPosixACLAccess:
		return "system.posix_acl_access", true
	case xattrIndexPosixACLDefault:
		return "system.posix_acl_default", true
	case xattrIndexTrusted:
		return "trusted.", true
	case xattrIndexLustre:
		return "lustre.", true
	case xattrIndexSecurity:
		return "security.", true
	}
	return "", false
}

// loadXattrs reads the inline xattr body of in: a 12-byte header with the count of shared xattr
// ids, the ids (4 bytes each), then inline entries until the end of the body.
func (f *FS) loadXattrs(in *Inode) error {
	if in.xattrIsize > maxInlineXattrBodySize {
		return fmt.Errorf("inline xattr body of %d bytes: %w", in.xattrIsize, ErrCorrupt)
	}
	pos := in.pos + in.isize()
	body := make([]byte, in.xattrIsize)
	if err := f.readAt(body, pos, "inline xattr body"); err != nil {
		return err
	}
	shared := int(body[4])
	off := xattrIbodyHeaderSize + 4*shared
	if off > len(body) {
		return fmt.Errorf("%d shared xattr ids do not fit the %d-byte xattr body: %w", shared, len(body), ErrCorrupt)
	}
	for i := 0; i < shared; i++ {
		id := binary.LittleEndian.Uint32(body[xattrIbodyHeaderSize+4*i:])
		x, err := f.sharedXattr(id)
		if err != nil {
			return fmt.Errorf("shared xattr %d (id %d): %w", i, id, err)
		}
		if x != nil {
			in.xattrs = append(in.xattrs, *x)
		}
	}
	for off < len(body) {
		x, n, err := parseXattrEntry(body[off:])
		if err != nil {
			return fmt.Errorf("inline xattr entry at offset %d: %w", pos+int64(off), err)
		}
		if x != nil {
			in.xattrs = append(in.xattrs, *x)
		}
		off += n
	}
	return nil
}

// sharedXattr reads the shared xattr with id (its position in 4-byte units from xattr_blkaddr).
func (f *FS) sharedXattr(id uint32) (*xattr, error) {
	pos := int64(f.sb.XattrBlkAddr)<<f.bsBits + int64(id)*4
	var hdr [xattrEntryHeaderSize]byte
	if err := f.readAt(hdr[:], pos, "shared xattr entry"); err != nil {
		return nil, err
	}
	n := xattrEntryHeaderSize + int(hdr[0]) + int(binary.LittleEndian.Uint16(hdr[2:]))
	buf := make([]byte, n)
	if err := f.readAt(buf, pos, "shared xattr entry"); err != nil {
		return nil, err
	}
	x, _, err := parseXattrEntry(buf)
	if err != nil {
		return nil, fmt.Errorf("at offset %d: %w", pos, err)
	}
	return x, nil
}

// parseXattrEntry decodes one entry (name length, prefix index, value size, name, value) and
// returns it with its size rounded up to 4 bytes. Entries with a prefix index this reader does not
// know are skipped (nil), as Linux skips them.
func parseXattrEntry(b []byte) (*xattr, int, error) {
	if len(b) < xattrEntryHeaderSize {
		return nil, 0, fmt.Errorf("entry header of %d bytes truncated: %w", len(b), ErrCorrupt)
	}
	nameLen, index, valueLen := int(b[0]), b[1], int(binary.LittleEndian.Uint16(b[2:]))
	end := xattrEntryHeaderSize + nameLen + valueLen
	if end > len(b) {
		return nil, 0, fmt.Errorf("entry of %d bytes (name %d, value %d) runs past its %d-byte area: %w", end, nameLen, valueLen, len(b), ErrCorrupt)
	}
	size := (end + 3) &^ 3
	if size > len(b) {
		size = len(b)
	}
	if index&xattrLongPrefixFlag != 0 {
		return nil, 0, fmt.Errorf("long xattr name prefix %d: %w", index&^xattrLongPrefixFlag, ErrUnsupported)
	}
	prefix, ok := xattrPrefix(index)
	if !ok {
		return nil, size, nil
	}
	name := prefix + string(b[xattrEntryHeaderSize:xattrEntryHeaderSize+nameLen])
	value := make([]byte, valueLen)
	copy(value, b[xattrEntryHeaderSize+nameLen:end])
	return &xattr{name: name, value: value}, size, nil
}
