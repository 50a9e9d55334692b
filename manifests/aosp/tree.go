package aosp

import (
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/safeopen"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// maxTextFile bounds what the patcher reads of a makefile, Blueprint file or XML: build files are
// small; a multi-megabyte "Android.bp" is not something to edit blindly.
const maxTextFile = 8 << 20

// tree reads an AOSP tree through an overlay of planned contents, so the patch can be evaluated
// as if it had been applied before anything is written. Paths are slash-separated and relative to
// the tree root.
type tree struct {
	root    string
	overlay map[string][]byte // nil value: deleted
	// listing caches the regular files under each directory walked, so that the several scans of
	// one Prepare (format detection, products, conflicts) read the directories once.
	listing map[string][]string
}

func newTree(root string) *tree {
	return &tree{root: root, overlay: map[string][]byte{}, listing: map[string][]string{}}
}

// list returns the regular files (and symlinks to regular files) under dir (relative to the root),
// lexically ordered, from the disk (not the overlay), reading the directory tree once.
func (t *tree) list(dir string) ([]string, error) {
	if l, ok := t.listing[dir]; ok {
		return l, nil
	}
	var out []string
	err := filepath.WalkDir(t.abs(dir), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("scanning %s: %w", p, err)
		}
		if e.IsDir() {
			if skipDir(e.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if e.Type()&fs.ModeSymlink != 0 {
			// A symlinked build file (repo's linkfile makes some) is read as the build reads it,
			// through the link; a link to a directory is not entered, as Soong's finder does not.
			if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
				return nil
			}
		} else if !e.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(t.root, p)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, err
	}
	t.listing[dir] = out
	return out, nil
}

func (t *tree) abs(rel string) string { return filepath.Join(t.root, filepath.FromSlash(rel)) }

// ErrOutsideTree is wrapped by errors about a path that leads out of the tree (an absolute path or
// one whose ".." climbs above the root): provkit neither reads build files there nor writes there.
var ErrOutsideTree = errors.New("outside the tree")

// inTree reports whether rel (slash-separated, relative to the root) names something inside the
// tree: "device/acme/../common/x.mk" does, "../x.mk" and "/x.mk" do not.
func inTree(rel string) bool { return rel != "" && filepath.IsLocal(filepath.FromSlash(rel)) }

func (t *tree) read(rel string) ([]byte, error) {
	if b, ok := t.overlay[rel]; ok {
		if b == nil {
			return nil, fmt.Errorf("reading %s: %w", rel, fs.ErrNotExist)
		}
		return b, nil
	}
	if !inTree(rel) {
		return nil, fmt.Errorf("reading %s: %w", rel, ErrOutsideTree)
	}
	return readBounded(t.abs(rel), rel)
}

// openRegular opens a regular file (following symlinks) for reading. Anything else is refused
// before it is opened: opening a FIFO a hostile or half-written tree holds would block forever, and a
// device or directory is not a build file either.
func openRegular(abs string) (*os.File, error) {
	// safeopen opens without blocking and checks the opened file, so a FIFO swapped in after a
	// check cannot hang the patch; the tree's own wording names what was found instead.
	f, err := safeopen.Open(abs)
	if err != nil {
		if errors.Is(err, safeopen.ErrNotRegular) {
			if fi, serr := os.Stat(abs); serr == nil {
				return nil, &fs.PathError{Op: "open", Path: abs, Err: errNotRegular(fi.Mode())}
			}
		}
		return nil, err
	}
	return f, nil
}

func errNotRegular(m fs.FileMode) error {
	what := "not a regular file"
	switch {
	case m.IsDir():
		what = "a directory, not a file"
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe (FIFO), not a file"
	case m&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		what = "a device, not a file"
	case m&fs.ModeSocket != 0:
		what = "a socket, not a file"
	}
	return errors.New(what)
}

// readBounded reads a build file of the tree; rel names it in errors.
func readBounded(abs, rel string) ([]byte, error) {
	f, err := openRegular(abs)
	if err != nil {
		// The tree-relative name says where; the absolute one in a *PathError would repeat it.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("reading %s: %w", rel, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTextFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", rel, err)
	}
	if len(b) > maxTextFile {
		return nil, fmt.Errorf("reading %s: larger than %d bytes; not a build file provkit will edit", rel, maxTextFile)
	}
	return b, nil
}

// onDisk reads the file as it is on disk, ignoring the overlay; ok is false when it does not exist.
func (t *tree) onDisk(rel string) ([]byte, bool, error) {
	if !inTree(rel) {
		return nil, false, fmt.Errorf("reading %s: %w", rel, ErrOutsideTree)
	}
	b, err := readBounded(t.abs(rel), rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

func (t *tree) exists(rel string) bool {
	if b, ok := t.overlay[rel]; ok {
		return b != nil
	}
	if !inTree(rel) {
		return false
	}
	_, err := os.Stat(t.abs(rel))
	return err == nil
}

func (t *tree) isDir(rel string) bool {
	if !inTree(rel) {
		return false
	}
	fi, err := os.Stat(t.abs(rel))
	return err == nil && fi.IsDir()
}

// glob expands a make wildcard pattern relative to the root.
func (t *tree) glob(pattern string) ([]string, bool) {
	if !inTree(path.Clean(pattern)) {
		return nil, false // not followed: the caller notes that it cannot resolve it
	}
	m, err := filepath.Glob(t.abs(pattern))
	if err != nil {
		return nil, false
	}
	var out []string
	for _, p := range m {
		rel, err := filepath.Rel(t.root, p)
		if err != nil {
			return nil, false
		}
		out = append(out, filepath.ToSlash(rel))
	}
	for rel, b := range t.overlay {
		if ok, _ := path.Match(pattern, rel); ok && b != nil && !contains(out, rel) {
			out = append(out, rel)
		}
	}
	sort.Strings(out)
	return out, true
}

// skipDir reports directories the scans never enter: version control, build output, and trees
// that are data rather than build definitions.
func skipDir(name string) bool {
	return name == ".git" || name == ".repo" || name == "out" || name == "node_modules" || name == "testdata"
}

// walk calls fn for every regular file under the given top-level directories (relative paths),
// in lexical order, including files the overlay adds. Overlay deletions are skipped.
func (t *tree) walk(dirs []string, fn func(rel string) error) error {
	seen := map[string]bool{}
	for _, d := range dirs {
		if !t.isDir(d) {
			continue
		}
		files, err := t.list(d)
		if err != nil {
			return err
		}
		for _, rel := range files {
			seen[rel] = true
			if b, ok := t.overlay[rel]; ok && b == nil {
				continue
			}
			if err := fn(rel); err != nil {
				return err
			}
		}
	}
	var added []string
	for rel, b := range t.overlay {
		if b == nil || seen[rel] {
			continue
		}
		for _, d := range dirs {
			if strings.HasPrefix(rel, d+"/") {
				added = append(added, rel)
				break
			}
		}
	}
	sort.Strings(added)
	for _, rel := range added {
		if err := fn(rel); err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
