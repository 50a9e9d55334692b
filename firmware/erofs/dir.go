package erofs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

const (
	direntSize = 12
	maxNameLen = 255
)

// Directory entry file types (erofs_dirent.file_type).
const (
	ftUnknown = iota
	ftReg
	ftDir
	ftChr
	ftBlk
	ftFifo
	ftSock
	ftSymlink
)

type dirent struct {
	name  string
	nid   uint64
	ftype uint8
}

func ftypeMode(t uint8) (fs.FileMode, bool) {
	switch t {
	case ftReg:
		return 0, true
	case ftDir:
		return fs.ModeDir, true
	case ftChr:
		return fs.ModeDevice | fs.ModeCharDevice, true
	case ftBlk:
		return fs.ModeDevice, true
	case ftFifo:
		return fs.ModeNamedPipe, true
	case ftSock:
		return fs.ModeSocket, true
	case ftSymlink:
		return fs.ModeSymlink, true
	}
	return 0, false
}

// dirBlocks returns how many directory blocks dir has.
func (f *FS) dirBlocks(dir *Inode) int64 { return (dir.size + f.bs - 1) >> f.bsBits }

// readDirBlock reads and parses directory block blk of dir: an array of 12-byte dirents (nid,
// name offset, file type) followed by the names they point to, sorted by name.
func (f *FS) readDirBlock(d *dataReader, blk int64, buf []byte) ([]dirent, error) {
	dir := d.in
	start := blk << f.bsBits
	n := dir.size - start
	if n > f.bs {
		n = f.bs
	}
	b := buf[:n]
	if _, err := d.ReadAt(b, start); err != nil {
		return nil, fmt.Errorf("reading directory block %d of inode %d: %w", blk, dir.nid, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("reading directory block %d of inode %d: %s: %w", blk, dir.nid, fmt.Sprintf(format, args...), ErrCorrupt)
	}
	if n < direntSize {
		return nil, bad("%d bytes, shorter than one entry", n)
	}
	first := int64(binary.LittleEndian.Uint16(b[8:]))
	if first < direntSize || first >= n || first%direntSize != 0 {
		return nil, bad("first name offset %d invalid for a %d-byte block", first, n)
	}
	count := int(first / direntSize)
	out := make([]dirent, 0, count)
	for i := 0; i < count; i++ {
		e := b[i*direntSize:]
		nameOff := int64(binary.LittleEndian.Uint16(e[8:]))
		var nameEnd int64
		if i+1 < count {
			nameEnd = int64(binary.LittleEndian.Uint16(b[(i+1)*direntSize+8:]))
		} else {
			nameEnd = n
			if nameOff < n {
				if z := bytes.IndexByte(b[nameOff:], 0); z >= 0 {
					nameEnd = nameOff + int64(z)
				}
			}
		}
		if nameOff < first || nameEnd > n || nameEnd <= nameOff {
			return nil, bad("entry %d name at [%d, %d) outside the names area [%d, %d)", i, nameOff, nameEnd, first, n)
		}
		if nameEnd-nameOff > maxNameLen {
			return nil, bad("entry %d name of %d bytes is longer than %d", i, nameEnd-nameOff, maxNameLen)
		}
		name := string(b[nameOff:nameEnd])
		if strings.ContainsAny(name, "/\x00") {
			return nil, bad("entry %d name %q contains '/' or NUL", i, name)
		}
		out = append(out, dirent{name: name, nid: binary.LittleEndian.Uint64(e[0:]), ftype: e[10]})
	}
	return out, nil
}

// readDirAll returns the entries of dir except "." and "..", sorted by name.
func (f *FS) readDirAll(dir *Inode) ([]dirent, error) {
	d, err := f.newDataReader(dir)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, f.bs)
	var all []dirent
	for blk := int64(0); blk < f.dirBlocks(dir); blk++ {
		ents, err := f.readDirBlock(d, blk, buf)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.name != "." && e.name != ".." {
				all = append(all, e)
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].name < all[j].name })
	return all, nil
}

// lookup finds name in dir by binary search over its blocks (entries are sorted by name across
// the whole directory), reading O(log blocks) blocks.
func (f *FS) lookup(dir *Inode, name string) (dirent, bool, error) {
	d, err := f.newDataReader(dir)
	if err != nil {
		return dirent{}, false, err
	}
	buf := make([]byte, f.bs)
	lo, hi := int64(0), f.dirBlocks(dir)
	for lo < hi {
		mid := lo + (hi-lo)/2
		ents, err := f.readDirBlock(d, mid, buf)
		if err != nil {
			return dirent{}, false, err
		}
		switch {
		case name < ents[0].name:
			hi = mid
		case name > ents[len(ents)-1].name:
			lo = mid + 1
		default:
			i := sort.Search(len(ents), func(i int) bool { return ents[i].name >= name })
			if i < len(ents) && ents[i].name == name {
				return ents[i], true, nil
			}
			return dirent{}, false, nil
		}
	}
	return dirent{}, false, nil
}
