package unixmode

import "io/fs"

// File types: mode & IFMT.
const (
	IFMT   = 0o170000
	IFSOCK = 0o140000
	IFLNK  = 0o120000
	IFREG  = 0o100000
	IFBLK  = 0o060000
	IFDIR  = 0o040000
	IFCHR  = 0o020000
	IFIFO  = 0o010000
)

// FileMode converts a Unix mode to an fs.FileMode. An unknown file type gives a mode with no type
// bits (a regular file to io/fs); the file system readers refuse such inodes before asking.
func FileMode(mode uint32) fs.FileMode {
	m := fs.FileMode(mode & 0o777)
	switch mode & IFMT {
	case IFDIR:
		m |= fs.ModeDir
	case IFLNK:
		m |= fs.ModeSymlink
	case IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case IFBLK:
		m |= fs.ModeDevice
	case IFIFO:
		m |= fs.ModeNamedPipe
	case IFSOCK:
		m |= fs.ModeSocket
	}
	if mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// Unix converts an fs.FileMode back to a Unix mode: the inverse of FileMode for every mode
// FileMode returns (a mode with no type bits is a regular file).
func Unix(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	switch {
	case m&fs.ModeDir != 0:
		u |= IFDIR
	case m&fs.ModeSymlink != 0:
		u |= IFLNK
	case m&fs.ModeCharDevice != 0:
		u |= IFCHR
	case m&fs.ModeDevice != 0:
		u |= IFBLK
	case m&fs.ModeNamedPipe != 0:
		u |= IFIFO
	case m&fs.ModeSocket != 0:
		u |= IFSOCK
	default:
		u |= IFREG
	}
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}
