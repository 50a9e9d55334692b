package ext4

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/provkit/provkit/internal/unixmode"
)

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.ReadFileFS = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)
)

// errLoop is returned when symbolic links nest deeper than maxSymlinkHops.
var errLoop = errors.New("too many levels of symbolic links")

// resolved is the result of a path walk: the inode and the chain of directory inodes above it.
type resolved struct {
	n    *Inode
	name string // base name, "." for the root
}

// walk resolves name (a valid fs path) from the root. follow says whether a symlink as the last
// element is followed. Every directory entered is checked to name the directory it was entered
// from as "..", which rejects directory loops and hard-linked directories.
func (fsys *FS) walk(name string, follow bool) (*resolved, error) {
	if !fs.ValidPath(name) {
		return nil, fs.ErrInvalid
	}
	root, err := fsys.readInode(rootIno)
	if err != nil {
		return nil, err
	}
	if !root.isDir() {
		return nil, corruptf("root inode %d is not a directory", rootIno)
	}
	chain := []*Inode{root}
	var parts []string
	if name != "." {
		parts = strings.Split(name, "/")
	}
	hops := 0
	base := "."
	for len(parts) > 0 {
		elem := parts[0]
		parts = parts[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			if len(chain) > 1 {
				chain = chain[:len(chain)-1]
			}
			continue
		}
		dir := chain[len(chain)-1]
		var parentIno uint32 = rootIno
		if len(chain) > 1 {
			parentIno = chain[len(chain)-2].ino
		}
		l, err := fsys.dirList(dir)
		if err != nil {
			return nil, err
		}
		if l.parent != parentIno {
			return nil, corruptf("directory inode %d: \"..\" points to inode %d but it was reached from inode %d (directory loop or hard-linked directory)", dir.ino, l.parent, parentIno)
		}
		i, ok := l.byName[elem]
		if !ok {
			return nil, fs.ErrNotExist
		}
		found := &l.entries[i]
		n, err := fsys.readInode(found.ino)
		if err != nil {
			return nil, err
		}
		if fsys.sb.FeatureIncompat&incompatFiletype != 0 && found.ftype != 0 && ftypeOfMode[n.mode&unixmode.IFMT] != found.ftype {
			return nil, corruptf("directory inode %d: entry %q says file type %d but inode %d has mode 0%o", dir.ino, elem, found.ftype, n.ino, n.mode)
		}
		if n.isSymlink() && (len(parts) > 0 || follow) {
			hops++
			if hops > maxSymlinkHops {
				return nil, errLoop
			}
			target, err := fsys.readLink(n)
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(target, "/") {
				chain = chain[:1]
			}
			parts = append(strings.Split(target, "/"), parts...)
			continue
		}
		if len(parts) > 0 && !n.isDir() {
			// A file in the middle of the path: ENOTDIR, reported as not found.
			more := false
			for _, p := range parts {
				if p != "" && p != "." {
					more = true
				}
			}
			if more {
				return nil, fs.ErrNotExist
			}
		}
		chain = append(chain, n)
		base = elem
	}
	last := chain[len(chain)-1]
	if len(chain) == 1 {
		base = "."
	}
	if last.isDir() && len(chain) > 1 {
		// Check the final directory's ".." too, when it is listed or opened.
		last.parentWant = chain[len(chain)-2].ino
	} else if last.isDir() {
		last.parentWant = rootIno
	}
	return &resolved{n: last, name: base}, nil
}

// readLink returns the target of symlink n.
func (fsys *FS) readLink(n *Inode) (string, error) {
	if n.size == 0 {
		return "", corruptf("symlink inode %d at offset %d has an empty target", n.ino, n.off)
	}
	if n.size >= uint64(fsys.bs) || n.size > 4095 {
		return "", corruptf("symlink inode %d at offset %d: target of %d bytes is too long", n.ino, n.off, n.size)
	}
	var b []byte
	switch {
	case n.flags&flagInlineData != 0:
		data, err := n.inlineData()
		if err != nil {
			return "", err
		}
		b = data[:n.size]
	case n.flags&flagExtents == 0 && n.size < 60 && n.blocks512 == n.xattrBlocks512():
		b = n.iblock[:n.size]
	default:
		f := &File{fsys: fsys, n: n}
		b = make([]byte, n.size)
		if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
			return "", err
		}
	}
	if slices.Contains(b, 0) {
		return "", corruptf("symlink inode %d at offset %d: target contains NUL", n.ino, n.off)
	}
	return string(b), nil
}

// xattrBlocks512 is the i_blocks share of the external xattr block.
func (n *Inode) xattrBlocks512() uint64 {
	if n.fileACL == 0 {
		return 0
	}
	return uint64(n.fsys.bs / 512)
}

func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// Open opens the named file, following symlinks. Regular files are *File (io.ReaderAt, io.Seeker).
func (fsys *FS) Open(name string) (fs.File, error) {
	r, err := fsys.walk(name, true)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if err := r.n.loadXattrs(); err != nil {
		return nil, pathErr("open", name, err)
	}
	if r.n.isDir() {
		return &dirFile{fsys: fsys, n: r.n, name: r.name, path: name}, nil
	}
	if r.n.flags&flagEncrypt != 0 {
		return nil, pathErr("open", name, unsupportedf("inode %d is encrypted", r.n.ino))
	}
	return &File{fsys: fsys, n: r.n, name: r.name}, nil
}

// Stat returns the FileInfo of name, following symlinks.
func (fsys *FS) Stat(name string) (fs.FileInfo, error) {
	r, err := fsys.walk(name, true)
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	fi, err := newFileInfo(r.n, r.name)
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	return fi, nil
}

// Lstat returns the FileInfo of name without following a final symlink.
func (fsys *FS) Lstat(name string) (fs.FileInfo, error) {
	r, err := fsys.walk(name, false)
	if err != nil {
		return nil, pathErr("lstat", name, err)
	}
	fi, err := newFileInfo(r.n, r.name)
	if err != nil {
		return nil, pathErr("lstat", name, err)
	}
	return fi, nil
}

// ReadLink returns the target of the symlink name.
func (fsys *FS) ReadLink(name string) (string, error) {
	r, err := fsys.walk(name, false)
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	if !r.n.isSymlink() {
		return "", pathErr("readlink", name, fs.ErrInvalid)
	}
	t, err := fsys.readLink(r.n)
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	return t, nil
}

// ReadDir lists the directory name, sorted by file name.
func (fsys *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	r, err := fsys.walk(name, true)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	ents, err := fsys.listDir(r.n)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	return ents, nil
}

// ReadFile reads the whole named file. Files above 1 GiB are refused: open them and read in
// pieces.
func (fsys *FS) ReadFile(name string) ([]byte, error) {
	r, err := fsys.walk(name, true)
	if err != nil {
		return nil, pathErr("readfile", name, err)
	}
	if r.n.isDir() {
		return nil, pathErr("readfile", name, errors.New("is a directory"))
	}
	if r.n.size > maxReadFileSize {
		return nil, pathErr("readfile", name, fmt.Errorf("file of %d bytes is too large to read whole; open it and read in pieces", r.n.size))
	}
	f := &File{fsys: fsys, n: r.n, name: r.name}
	b := make([]byte, r.n.size)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, pathErr("readfile", name, err)
	}
	return b, nil
}

func (fsys *FS) listDir(d *Inode) ([]fs.DirEntry, error) {
	l, err := fsys.dirList(d)
	if err != nil {
		return nil, err
	}
	if d.parentWant != 0 && l.parent != d.parentWant {
		return nil, corruptf("directory inode %d: \"..\" points to inode %d but it was reached from inode %d (directory loop or hard-linked directory)", d.ino, l.parent, d.parentWant)
	}
	ents := make([]fs.DirEntry, len(l.entries))
	for i, e := range l.entries {
		ents[i] = &dirEntry{fsys: fsys, e: e}
	}
	return ents, nil
}

// dirListing is a directory's entries sorted by name, as cached by dirList.
type dirListing struct {
	parent  uint32
	entries []dirent
	byName  map[string]int
}

// maxCachedEntries bounds the directory cache; past it the cache starts over.
const maxCachedEntries = 1 << 18

// dirList reads (or returns the cached) listing of directory d.
func (fsys *FS) dirList(d *Inode) (*dirListing, error) {
	fsys.dirMu.Lock()
	l, ok := fsys.dirCache[d.ino]
	fsys.dirMu.Unlock()
	if ok {
		return l, nil
	}
	l = &dirListing{byName: map[string]int{}}
	var dupErr error
	parent, err := fsys.scanDir(d, func(e dirent) bool {
		if _, dup := l.byName[e.name]; dup {
			dupErr = corruptf("directory inode %d lists %q twice", d.ino, e.name)
			return false
		}
		l.byName[e.name] = len(l.entries)
		l.entries = append(l.entries, e)
		return true
	})
	if err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, dupErr
	}
	l.parent = parent
	slices.SortFunc(l.entries, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	for i, e := range l.entries {
		l.byName[e.name] = i
	}
	fsys.dirMu.Lock()
	if fsys.dirCached+len(l.entries) > maxCachedEntries {
		clear(fsys.dirCache)
		fsys.dirCached = 0
	}
	fsys.dirCache[d.ino] = l
	fsys.dirCached += len(l.entries)
	fsys.dirMu.Unlock()
	return l, nil
}

// File is an open regular file (or special file, which reads as empty). It implements io.ReaderAt
// and io.Seeker; reads touch only the blocks they need.
type File struct {
	fsys   *FS
	n      *Inode
	name   string
	off    int64
	mu     sync.Mutex // guards m and inline: ReadAt may be called concurrently
	m      *mapper
	inline []byte
}

// Stat returns the file's FileInfo.
func (f *File) Stat() (fs.FileInfo, error) { return newFileInfo(f.n, f.name) }

// Close does nothing: the FS holds no per-file resources.
func (f *File) Close() error { return nil }

// Size returns the file size in bytes.
func (f *File) Size() int64 { return int64(f.n.size) }

// Read reads from the current offset.
func (f *File) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	return n, err
}

// Seek sets the offset for the next Read.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += int64(f.n.size)
	default:
		return 0, fmt.Errorf("seeking %s: invalid whence %d", f.name, whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seeking %s: negative offset %d", f.name, offset)
	}
	f.off = offset
	return offset, nil
}

// ReadAt reads len(p) bytes at off, returning io.EOF at the end of the file.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("reading %s: negative offset %d", f.name, off)
	}
	size := int64(f.n.size)
	if !f.n.isReg() && !f.n.isSymlink() {
		size = 0
	}
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > size-off {
		p = p[:size-off]
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n.flags&flagInlineData != 0 {
		if f.inline == nil {
			data, err := f.n.inlineData()
			if err != nil {
				return 0, err
			}
			f.inline = data
		}
		n := copy(p, f.inline[off:])
		if n < want {
			return n, io.EOF
		}
		return n, nil
	}
	if f.m == nil {
		f.m = newMapper(f.n)
	}
	bs := f.fsys.bs
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		lblk := uint64(pos / bs)
		sp, err := f.m.lookup(lblk)
		if err != nil {
			return done, err
		}
		in := pos % bs
		avail := int64(sp.n)*bs - in
		m := int(min(int64(len(p)-done), avail))
		dst := p[done : done+m]
		if sp.hole {
			clear(dst)
		} else {
			phys := int64(sp.phys)*bs + in
			if err := f.fsys.readAt(dst, phys, "file data"); err != nil {
				return done, fmt.Errorf("reading inode %d at file offset %d: %w", f.n.ino, pos, err)
			}
		}
		done += m
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}

// dirFile is an open directory.
type dirFile struct {
	fsys *FS
	n    *Inode
	name string
	path string
	ents []fs.DirEntry
	read bool
	pos  int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return newFileInfo(d.n, d.name) }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, pathErr("read", d.path, errors.New("is a directory"))
}

// ReadDir returns the next n entries (all remaining when n <= 0), sorted by name.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		ents, err := d.fsys.listDir(d.n)
		if err != nil {
			return nil, pathErr("readdir", d.path, err)
		}
		d.ents, d.read = ents, true
	}
	rest := d.ents[d.pos:]
	if n <= 0 {
		d.pos = len(d.ents)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.pos += n
	return rest[:n], nil
}

// dirEntry is one entry returned by ReadDir.
type dirEntry struct {
	fsys *FS
	e    dirent
}

func (e *dirEntry) Name() string { return e.e.name }
func (e *dirEntry) IsDir() bool  { return e.Type().IsDir() }

func (e *dirEntry) Type() fs.FileMode {
	if e.fsys.sb.FeatureIncompat&incompatFiletype != 0 && e.e.ftype != 0 {
		return e.e.typeMode()
	}
	if n, err := e.fsys.readInode(e.e.ino); err == nil {
		return n.fileMode().Type()
	}
	return 0
}

// Info reads the entry's inode; it fails when the inode's type disagrees with the entry's.
func (e *dirEntry) Info() (fs.FileInfo, error) {
	n, err := e.fsys.readInode(e.e.ino)
	if err != nil {
		return nil, pathErr("stat", e.e.name, err)
	}
	if e.fsys.sb.FeatureIncompat&incompatFiletype != 0 && e.e.ftype != 0 && ftypeOfMode[n.mode&unixmode.IFMT] != e.e.ftype {
		return nil, pathErr("stat", e.e.name, corruptf("entry %q says file type %d but inode %d has mode 0%o", e.e.name, e.e.ftype, n.ino, n.mode))
	}
	return newFileInfo(n, e.e.name)
}

func (e *dirEntry) String() string { return fs.FormatDirEntry(e) }

// fileInfo implements fs.FileInfo.
type fileInfo struct {
	n    *Inode
	name string
}

func newFileInfo(n *Inode, name string) (*fileInfo, error) {
	if err := n.loadXattrs(); err != nil {
		return nil, err
	}
	return &fileInfo{n: n, name: name}, nil
}

func (fi *fileInfo) Name() string { return path.Base(fi.name) }
func (fi *fileInfo) Size() int64 {
	if fi.n.isReg() || fi.n.isSymlink() || fi.n.isDir() {
		return int64(fi.n.size)
	}
	return 0
}
func (fi *fileInfo) Mode() fs.FileMode  { return fi.n.fileMode() }
func (fi *fileInfo) ModTime() time.Time { return fi.n.mtime }
func (fi *fileInfo) IsDir() bool        { return fi.n.isDir() }

// Sys returns the *Inode.
func (fi *fileInfo) Sys() any       { return fi.n }
func (fi *fileInfo) String() string { return fs.FormatFileInfo(fi) }
