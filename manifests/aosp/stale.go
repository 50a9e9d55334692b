package aosp

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
)

// staleName matches the staging files Apply writes next to a target: ".provkit-<hex>.tmp" (new
// content not yet renamed into place) and ".provkit-<hex>.orig" (an original moved aside while it
// is replaced). A run killed (SIGKILL, power loss) between staging and cleanup leaves them.
var staleName = regexp.MustCompile(`^\.provkit-[0-9a-f]+\.(tmp|orig)$`)

// Stale lists, relative to the tree, the staging files an interrupted Apply left in the
// directories this plan touches: the module directory, the directory of every file it changes and
// of the product makefile.
func (p *Plan) Stale() []string {
	dirs := map[string]bool{}
	if p.Dir != "" {
		dirs[p.Dir] = true
		_ = filepath.WalkDir(filepath.Join(p.Tree, filepath.FromSlash(p.Dir)), func(q string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				if r, err := filepath.Rel(p.Tree, q); err == nil {
					dirs[filepath.ToSlash(r)] = true
				}
			}
			return nil
		})
	}
	for _, c := range p.Changes {
		dirs[path.Dir(c.Path)] = true
	}
	if p.Product != "" {
		dirs[path.Dir(p.Product)] = true
	}
	var out []string
	for d := range dirs {
		if !inTree(d) && d != "." {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(p.Tree, filepath.FromSlash(d)))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.Type().IsRegular() && staleName.MatchString(e.Name()) {
				out = append(out, path.Join(d, e.Name()))
			}
		}
	}
	sort.Strings(out)
	return out
}

// RemoveStale deletes the stale ".tmp" staging files (provkit's own half-written copies, never a
// user's data) and returns them; ".orig" files are kept and returned apart, since one may be the
// only copy of an original whose replacement was cut short: the user decides.
func (p *Plan) RemoveStale() (removed, kept []string) {
	for _, s := range p.Stale() {
		if path.Ext(s) == ".orig" {
			kept = append(kept, s)
			continue
		}
		if err := os.Remove(filepath.Join(p.Tree, filepath.FromSlash(s))); err == nil {
			removed = append(removed, s)
		}
	}
	return removed, kept
}
