package aosp

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrBlocked is returned by Apply for a plan with blockers.
var ErrBlocked = errors.New("the patch is blocked")

// ErrChangedUnderneath is returned by Apply when a file changed on disk after the plan was made.
var ErrChangedUnderneath = errors.New("the tree changed since the patch was prepared")

// testHookBeforeRename, when set by tests, runs before each rename of the commit phase; an error
// from it is treated like a failed rename.
var testHookBeforeRename func(path string) error

type staged struct {
	c      Change
	target string // absolute path
	tmp    string // staged new content (create/modify)
	backup string // where the original went during the commit (modify/delete)
	done   bool
}

// Apply writes the plan all or nothing: every new content is first written to a temporary file
// next to its target and synced; only then are the targets replaced by renames. If anything fails,
// the renames already done are undone from backups, temporary files and directories created for the
// patch are removed, and the tree is as it was.
func (p *Plan) Apply() (err error) {
	if p.Blocked() {
		return ErrBlocked
	}
	var created []string // directories created, deepest last
	var st []*staged
	cleanup := func() {
		for i := len(st) - 1; i >= 0; i-- {
			s := st[i]
			if s.done {
				switch s.c.Action {
				case "create":
					os.Remove(s.target)
				default:
					if s.backup != "" {
						if s.c.Action == "modify" {
							os.Remove(s.target)
						}
						os.Rename(s.backup, s.target)
					}
				}
			}
			if s.tmp != "" {
				os.Remove(s.tmp)
			}
		}
		for i := len(created) - 1; i >= 0; i-- {
			os.Remove(created[i])
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	realRoot, err := filepath.EvalSymlinks(p.Tree)
	if err != nil {
		return fmt.Errorf("resolving the tree %s: %w", p.Tree, err)
	}
	// Stage: check that the tree is as planned, write every new content to a temporary file.
	for _, c := range p.Changes {
		target, err := realTarget(realRoot, filepath.Join(p.Tree, filepath.FromSlash(c.Path)), c.Path)
		if err != nil {
			return err
		}
		s := &staged{c: c, target: target}
		st = append(st, s)
		if err := unchanged(s.target, c); err != nil {
			return err
		}
		if c.Action == "delete" {
			continue
		}
		dir := filepath.Dir(s.target)
		made, err := mkdirAll(dir)
		created = append(created, made...)
		if err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
		mode := fs.FileMode(0o644)
		if fi, err := os.Stat(s.target); err == nil {
			mode = fi.Mode().Perm()
		}
		s.tmp = filepath.Join(dir, ".provkit-"+randomSuffix()+".tmp")
		if c.Src != "" {
			err = copySynced(s.tmp, c.Src, c.SHA256, mode)
		} else {
			err = writeSynced(s.tmp, c.New, mode)
		}
		if err != nil {
			return fmt.Errorf("staging %s: %w", c.Path, err)
		}
	}
	// Commit: move originals aside, move staged files in.
	for _, s := range st {
		if testHookBeforeRename != nil {
			if err := testHookBeforeRename(s.c.Path); err != nil {
				return fmt.Errorf("replacing %s: %w", s.c.Path, err)
			}
		}
		if s.c.Action != "create" {
			s.backup = filepath.Join(filepath.Dir(s.target), ".provkit-"+randomSuffix()+".orig")
			if err := os.Rename(s.target, s.backup); err != nil {
				s.backup = ""
				return fmt.Errorf("replacing %s: %w", s.c.Path, err)
			}
			s.done = true
		}
		if s.c.Action != "delete" {
			if err := os.Rename(s.tmp, s.target); err != nil {
				return fmt.Errorf("replacing %s: %w", s.c.Path, err)
			}
			s.tmp = ""
			s.done = true
		}
	}
	// Committed: drop the originals and empty directories a revert leaves.
	for _, s := range st {
		if s.backup != "" {
			os.Remove(s.backup)
		}
	}
	for _, d := range p.removeDirs {
		if !inTree(d) {
			continue
		}
		dir := filepath.Join(p.Tree, filepath.FromSlash(d))
		if fi, err := os.Lstat(dir); err == nil && fi.IsDir() {
			os.Remove(dir) // only succeeds when empty (and never removes a symlink)
		}
	}
	return nil
}

// realTarget returns the path Apply writes for a change at abs: through symlinks (a makefile that
// repo's linkfile made a link is edited where it lives, and the link stays a link), which must
// still be inside the tree, lexically ("../x.mk") and through links (realRoot, the tree's root with its own links resolved). A file that
// does not exist yet is placed under its nearest existing directory, resolved the same way.
func realTarget(realRoot, abs, rel string) (string, error) {
	var rest []string
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			real, err := filepath.EvalSymlinks(d)
			if err != nil {
				return "", fmt.Errorf("resolving %s: %w", rel, err)
			}
			r, err := filepath.Rel(realRoot, real)
			if err != nil || !filepath.IsLocal(r) {
				return "", fmt.Errorf("refusing to write %s: it resolves to %s, %w %s", rel, filepath.Join(real, filepath.Join(rest...)), ErrOutsideTree, realRoot)
			}
			return filepath.Join(append([]string{real}, rest...)...), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("resolving %s: no existing directory above it", rel)
		}
		rest = append([]string{filepath.Base(d)}, rest...)
	}
}

// unchanged checks that the file is still as the plan saw it.
func unchanged(target string, c Change) error {
	if c.Binary {
		sum, exists, err := hashFile(target)
		switch {
		case err != nil:
			return fmt.Errorf("%w: %v", ErrChangedUnderneath, err)
		case c.Action == "create" && exists:
			return fmt.Errorf("%w: %s now exists", ErrChangedUnderneath, c.Path)
		case c.Action != "create" && (!exists || sum != c.oldSHA256):
			return fmt.Errorf("%w: %s was modified", ErrChangedUnderneath, c.Path)
		}
		return nil
	}
	cur, err := os.ReadFile(target)
	switch {
	case c.Action == "create":
		if err == nil {
			return fmt.Errorf("%w: %s now exists", ErrChangedUnderneath, c.Path)
		}
	case err != nil:
		return fmt.Errorf("%w: reading %s: %v", ErrChangedUnderneath, c.Path, err)
	case !bytes.Equal(cur, c.Old):
		return fmt.Errorf("%w: %s was modified", ErrChangedUnderneath, c.Path)
	}
	return nil
}

// ErrSourceChanged is returned by Apply when an APK no longer has the digest it had when verified.
var ErrSourceChanged = errors.New("the APK changed after it was verified")

// copySynced copies src to a new file name, checking the copy's SHA-256 against want.
func copySynced(name, src, want string, mode fs.FileMode) error {
	in, err := openRegular(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), in); err != nil {
		f.Close()
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		f.Close()
		return fmt.Errorf("%w: %s has SHA-256 %s now, %s when verified", ErrSourceChanged, src, got, want)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mkdirAll creates dir and missing parents, returning the directories it created, outermost first.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append([]string{d}, missing...)
		if filepath.Dir(d) == d {
			break
		}
	}
	var made []string
	for _, d := range missing {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return made, err
		}
		made = append(made, d)
	}
	return made, nil
}

func writeSynced(name string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
