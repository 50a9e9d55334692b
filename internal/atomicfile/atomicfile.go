package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write creates path through a temporary file in the same directory. fill writes the content to
// the open temporary file; when it returns an error, or syncing or renaming fails, the temporary
// file is removed and path is left as it was. The new file gets mode perm.
//
// A path that is a symlink is written through: the file it points to is replaced and the link
// stays a link, as cp and shell redirections do.
func Write(path string, perm os.FileMode, fill func(f *os.File) error) (err error) {
	if path, err = followLinks(path); err != nil {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary file for %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("setting mode of %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmp.Name(), path, err)
	}
	return nil
}

// followLinks returns the file path names once its symlinks are followed (a link may dangle: its
// target is then created).
func followLinks(path string) (string, error) {
	for hops := 0; ; hops++ {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			return path, nil // not a link (or not there yet): written as named
		}
		if hops == 40 {
			return "", fmt.Errorf("writing %s: too many levels of symbolic links", path)
		}
		to, err := os.Readlink(path)
		if err != nil {
			return "", fmt.Errorf("writing %s: %w", path, err)
		}
		if !filepath.IsAbs(to) {
			to = filepath.Join(filepath.Dir(path), to)
		}
		path = to
	}
}
