package android

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrNotExist and friends are the errors FS returns (wrapped with the path).
var (
	ErrNotExist = fs.ErrNotExist
	ErrIsDir    = errors.New("is a directory")
	ErrNotDir   = errors.New("not a directory")
)

// FileInfo describes one node of an FS.
type FileInfo struct {
	Path  string
	Mode  fs.FileMode // type bits as in io/fs plus permission bits
	Size  int64
	MTime time.Time
	UID   int
	GID   int
}

// Name is the last element of the path.
func (fi FileInfo) Name() string { return path.Base(fi.Path) }

// UnixMode returns the mode as Linux st_mode (S_IFREG/S_IFDIR | permissions).
func (fi FileInfo) UnixMode() uint32 {
	m := uint32(fi.Mode.Perm())
	switch {
	case fi.Mode.IsDir():
		m |= 0o040000
	case fi.Mode&fs.ModeSymlink != 0:
		m |= 0o120000
	default:
		m |= 0o100000
	}
	return m
}

type node struct {
	info    FileInfo
	data    []byte // in-memory content
	hostSrc string // or: content read from this host file
}

// FS is a simulated device file system, safe for concurrent use.
type FS struct {
	mu    sync.RWMutex
	nodes map[string]*node
}

// NewFS returns a file system holding the usual top-level directories.
func NewFS() *FS {
	f := &FS{nodes: map[string]*node{}}
	f.nodes["/"] = &node{info: FileInfo{Path: "/", Mode: fs.ModeDir | 0o755}}
	for _, d := range []string{"/system/app", "/system/priv-app", "/system/bin", "/product/app", "/product/priv-app",
		"/system_ext/app", "/system_ext/priv-app", "/vendor/app", "/data/app", "/data/local/tmp", "/sdcard"} {
		f.mkdirAll(d, time.Date(2009, 1, 1, 0, 0, 0, 0, time.UTC))
	}
	return f
}

// Clean normalises a device path (absolute, no trailing slash).
func Clean(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return path.Clean(p)
}

func (f *FS) mkdirAll(p string, mtime time.Time) {
	p = Clean(p)
	for cur := p; ; cur = path.Dir(cur) {
		if n, ok := f.nodes[cur]; ok {
			if n.info.Mode.IsDir() {
				break
			}
		}
		f.nodes[cur] = &node{info: FileInfo{Path: cur, Mode: fs.ModeDir | 0o755, MTime: mtime}}
		if cur == "/" {
			break
		}
	}
}

// MkdirAll creates a directory and its parents.
func (f *FS) MkdirAll(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p = Clean(p)
	for cur := p; cur != "/"; cur = path.Dir(cur) {
		if n, ok := f.nodes[cur]; ok && !n.info.Mode.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: cur, Err: ErrNotDir}
		}
	}
	f.mkdirAll(p, time.Now())
	return nil
}

// WriteFile stores data at p (parents created), replacing any file there.
func (f *FS) WriteFile(p string, data []byte, perm fs.FileMode, mtime time.Time) error {
	return f.put(p, &node{data: data, info: FileInfo{Size: int64(len(data))}}, perm, mtime)
}

// LinkHostFile makes p a file whose content is read from the host file src on demand.
func (f *FS) LinkHostFile(p, src string, perm fs.FileMode, mtime time.Time) error {
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("linking %s to host file: %w", p, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("linking %s to host file %s: not a regular file", p, src)
	}
	return f.put(p, &node{hostSrc: src, info: FileInfo{Size: st.Size()}}, perm, mtime)
}

func (f *FS) put(p string, n *node, perm fs.FileMode, mtime time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p = Clean(p)
	if old, ok := f.nodes[p]; ok && old.info.Mode.IsDir() {
		return &fs.PathError{Op: "write", Path: p, Err: ErrIsDir}
	}
	dir := path.Dir(p)
	if d, ok := f.nodes[dir]; ok && !d.info.Mode.IsDir() {
		return &fs.PathError{Op: "write", Path: p, Err: ErrNotDir}
	}
	f.mkdirAll(dir, mtime)
	n.info.Path, n.info.Mode, n.info.MTime = p, perm.Perm(), mtime
	f.nodes[p] = n
	return nil
}

// Stat describes p.
func (f *FS) Stat(p string) (FileInfo, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n, ok := f.nodes[Clean(p)]
	if !ok {
		return FileInfo{}, &fs.PathError{Op: "stat", Path: p, Err: ErrNotExist}
	}
	return n.info, nil
}

// ReadDir lists the direct children of dir, sorted by name.
func (f *FS) ReadDir(dir string) ([]FileInfo, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	dir = Clean(dir)
	n, ok := f.nodes[dir]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: ErrNotExist}
	}
	if !n.info.Mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: ErrNotDir}
	}
	var out []FileInfo
	for p, c := range f.nodes {
		if p != "/" && path.Dir(p) == dir {
			out = append(out, c.info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// Open returns a reader over the file p and its size.
func (f *FS) Open(p string) (io.ReadCloser, int64, error) {
	f.mu.RLock()
	n, ok := f.nodes[Clean(p)]
	f.mu.RUnlock()
	if !ok {
		return nil, 0, &fs.PathError{Op: "open", Path: p, Err: ErrNotExist}
	}
	if n.info.Mode.IsDir() {
		return nil, 0, &fs.PathError{Op: "read", Path: p, Err: ErrIsDir}
	}
	if n.hostSrc != "" {
		h, err := os.Open(n.hostSrc)
		if err != nil {
			return nil, 0, &fs.PathError{Op: "open", Path: p, Err: err}
		}
		return h, n.info.Size, nil
	}
	return io.NopCloser(bytes.NewReader(n.data)), n.info.Size, nil
}

// ReadFile returns the whole content of p (for small files).
func (f *FS) ReadFile(p string) ([]byte, error) {
	r, _, err := f.Open(p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// Remove deletes p; with recursive, a directory and everything under it.
func (f *FS) Remove(p string, recursive bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p = Clean(p)
	n, ok := f.nodes[p]
	if !ok {
		return &fs.PathError{Op: "remove", Path: p, Err: ErrNotExist}
	}
	if n.info.Mode.IsDir() {
		prefix := p + "/"
		var children []string
		for c := range f.nodes {
			if strings.HasPrefix(c, prefix) {
				children = append(children, c)
			}
		}
		if len(children) > 0 && !recursive {
			return &fs.PathError{Op: "remove", Path: p, Err: errors.New("directory not empty")}
		}
		for _, c := range children {
			delete(f.nodes, c)
		}
	}
	if p != "/" {
		delete(f.nodes, p)
	}
	return nil
}
