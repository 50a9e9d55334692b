package erofs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxSymlinkHops bounds how many symlinks one path lookup follows (Linux's MAXSYMLINKS).
const maxSymlinkHops = 40

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadFileFS = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)
)

// resolve walks name from the root directory. Symlinks in the middle of the path are followed
// (relative targets from their directory, absolute ones from the image root); the last component
// is followed only when followLast. A directory met again inside its own path is a loop.
func (f *FS) resolve(op, name string, followLast bool) (*Inode, error) {
	pathErr := func(err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }
	if !fs.ValidPath(name) {
		return nil, pathErr(fs.ErrInvalid)
	}
	root, err := f.inode(f.sb.RootNid)
	if err != nil {
		return nil, pathErr(err)
	}
	if !root.isDir() {
		return nil, pathErr(fmt.Errorf("root inode %d is not a directory: %w", root.nid, ErrCorrupt))
	}
	stack := []*Inode{root}
	var comps []string
	if name != "." {
		comps = strings.Split(name, "/")
	}
	hops := 0
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		dir := stack[len(stack)-1]
		if !dir.isDir() {
			return nil, pathErr(syscall.ENOTDIR)
		}
		ent, ok, err := f.lookup(dir, c)
		if err != nil {
			return nil, pathErr(err)
		}
		if !ok {
			return nil, pathErr(fs.ErrNotExist)
		}
		child, err := f.inode(ent.nid)
		if err != nil {
			return nil, pathErr(fmt.Errorf("entry %q of directory inode %d: %w", c, dir.nid, err))
		}
		if child.isSymlink() && (len(comps) > 0 || followLast) {
			hops++
			if hops > maxSymlinkHops {
				return nil, pathErr(fmt.Errorf("more than %d symlinks: %w", maxSymlinkHops, syscall.ELOOP))
			}
			target, err := f.readLink(child)
			if err != nil {
				return nil, pathErr(err)
			}
			if strings.HasPrefix(target, "/") {
				stack = stack[:1]
			}
			comps = append(strings.Split(target, "/"), comps...)
			continue
		}
		if child.isDir() {
			for _, anc := range stack {
				if anc.nid == child.nid {
					return nil, pathErr(fmt.Errorf("directory loop: entry %q of directory inode %d is its ancestor inode %d: %w", c, dir.nid, child.nid, ErrCorrupt))
				}
			}
		}
		stack = append(stack, child)
	}
	return stack[len(stack)-1], nil
}

func (f *FS) readLink(in *Inode) (string, error) {
	if in.size == 0 {
		return "", fmt.Errorf("reading symlink inode %d: empty target: %w", in.nid, ErrCorrupt)
	}
	d, err := f.newDataReader(in)
	if err != nil {
		return "", err
	}
	buf := make([]byte, in.size)
	if _, err := d.ReadAt(buf, 0); err != nil {
		return "", fmt.Errorf("reading symlink inode %d: %w", in.nid, err)
	}
	return string(buf), nil
}

// Open opens the named file (following symlinks). The fs.File it returns is a *File.
func (f *FS) Open(name string) (fs.File, error) {
	file, err := f.OpenFile(name)
	if err != nil {
		return nil, err
	}
	return file, nil
}

// OpenFile is Open returning the concrete *File (io.ReaderAt, io.Seeker).
func (f *FS) OpenFile(name string) (*File, error) {
	in, err := f.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	d, err := f.newDataReader(in)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &File{fsys: f, in: in, name: name, d: d}, nil
}

// Stat returns the FileInfo of the named file, following symlinks.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	in, err := f.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return &fileInfo{name: path.Base(name), in: in}, nil
}

// Lstat returns the FileInfo of the named file without following a final symlink.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	in, err := f.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return &fileInfo{name: path.Base(name), in: in}, nil
}

// ReadLink returns the target of the named symlink.
func (f *FS) ReadLink(name string) (string, error) {
	in, err := f.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	if !in.isSymlink() {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	t, err := f.readLink(in)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return t, nil
}

// ReadDir returns the entries of the named directory sorted by name, without "." and "..".
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	in, err := f.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !in.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: syscall.ENOTDIR}
	}
	ents, err := f.readDirAll(in)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	out, err := f.dirEntries(ents)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return out, nil
}

func (f *FS) dirEntries(ents []dirent) ([]fs.DirEntry, error) {
	out := make([]fs.DirEntry, 0, len(ents))
	for _, e := range ents {
		de := &dirEntry{fsys: f, name: e.name, nid: e.nid}
		if m, ok := ftypeMode(e.ftype); ok {
			de.typ = m
		} else {
			in, err := f.inode(e.nid)
			if err != nil {
				return nil, fmt.Errorf("entry %q: %w", e.name, err)
			}
			de.typ = in.FileMode().Type()
		}
		out = append(out, de)
	}
	return out, nil
}

// MaxReadFileSize is the largest file ReadFile loads into memory; larger ones (a sparse chunked
// file can claim terabytes) must be streamed through Open.
const MaxReadFileSize = 1 << 30

// ErrTooLarge is returned by ReadFile for files larger than MaxReadFileSize.
var ErrTooLarge = errors.New("file too large to read into memory")

// ReadFile returns the whole content of the named file.
func (f *FS) ReadFile(name string) ([]byte, error) {
	file, err := f.OpenFile(name)
	if err != nil {
		return nil, err
	}
	if file.in.isDir() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: syscall.EISDIR}
	}
	if file.in.size > MaxReadFileSize {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("file of %d bytes is larger than %d: open it and stream it instead: %w", file.in.size, int64(MaxReadFileSize), ErrTooLarge)}
	}
	buf := make([]byte, file.in.size)
	if _, err := file.d.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return buf, nil
}

// File is an open file or directory of the image. ReadAt is safe for concurrent use; Read, Seek
// and ReadDir share a position and are serialized.
type File struct {
	fsys *FS
	in   *Inode
	name string
	d    *dataReader

	mu      sync.Mutex
	off     int64
	closed  bool
	dirents []dirent
	dirRead bool
}

var (
	_ io.ReaderAt    = (*File)(nil)
	_ io.ReadSeeker  = (*File)(nil)
	_ fs.ReadDirFile = (*File)(nil)
)

// Inode returns the file's inode.
func (fl *File) Inode() *Inode { return fl.in }

// Stat returns the file's FileInfo.
func (fl *File) Stat() (fs.FileInfo, error) {
	return &fileInfo{name: path.Base(fl.name), in: fl.in}, nil
}

func (fl *File) pathErr(op string, err error) error {
	return &fs.PathError{Op: op, Path: fl.name, Err: err}
}

// ReadAt reads len(p) bytes at off, decompressing only the clusters that hold them.
func (fl *File) ReadAt(p []byte, off int64) (int, error) {
	if fl.in.isDir() {
		return 0, fl.pathErr("read", syscall.EISDIR)
	}
	n, err := fl.d.ReadAt(p, off)
	if err != nil && err != io.EOF {
		return n, fl.pathErr("read", err)
	}
	return n, err
}

// Read reads from the current position.
func (fl *File) Read(p []byte) (int, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.closed {
		return 0, fl.pathErr("read", fs.ErrClosed)
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := fl.ReadAt(p, fl.off)
	fl.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the position for Read.
func (fl *File) Seek(offset int64, whence int) (int64, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += fl.off
	case io.SeekEnd:
		offset += fl.in.size
	default:
		return 0, fl.pathErr("seek", fs.ErrInvalid)
	}
	if offset < 0 {
		return 0, fl.pathErr("seek", fs.ErrInvalid)
	}
	fl.off = offset
	return offset, nil
}

// Close marks the file closed.
func (fl *File) Close() error {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.closed {
		return fl.pathErr("close", fs.ErrClosed)
	}
	fl.closed = true
	return nil
}

// ReadDir reads the next n entries of a directory (all of them when n <= 0), as fs.ReadDirFile.
func (fl *File) ReadDir(n int) ([]fs.DirEntry, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if !fl.in.isDir() {
		return nil, fl.pathErr("readdir", syscall.ENOTDIR)
	}
	if fl.closed {
		return nil, fl.pathErr("readdir", fs.ErrClosed)
	}
	if !fl.dirRead {
		ents, err := fl.fsys.readDirAll(fl.in)
		if err != nil {
			return nil, fl.pathErr("readdir", err)
		}
		fl.dirents, fl.dirRead = ents, true
	}
	take := len(fl.dirents)
	if n > 0 && n < take {
		take = n
	}
	out, err := fl.fsys.dirEntries(fl.dirents[:take])
	if err != nil {
		return nil, fl.pathErr("readdir", err)
	}
	fl.dirents = fl.dirents[take:]
	if n > 0 && len(out) == 0 {
		return out, io.EOF
	}
	return out, nil
}

type fileInfo struct {
	name string
	in   *Inode
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.in.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.in.FileMode() }
func (fi *fileInfo) ModTime() time.Time { return fi.in.mtime }
func (fi *fileInfo) IsDir() bool        { return fi.in.isDir() }
func (fi *fileInfo) Sys() any           { return fi.in }

type dirEntry struct {
	fsys *FS
	name string
	nid  uint64
	typ  fs.FileMode
}

func (de *dirEntry) Name() string      { return de.name }
func (de *dirEntry) IsDir() bool       { return de.typ.IsDir() }
func (de *dirEntry) Type() fs.FileMode { return de.typ }
func (de *dirEntry) Info() (fs.FileInfo, error) {
	in, err := de.fsys.inode(de.nid)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: de.name, Err: err}
	}
	return &fileInfo{name: de.name, in: in}, nil
}
func (de *dirEntry) String() string { return fs.FormatDirEntry(de) }
