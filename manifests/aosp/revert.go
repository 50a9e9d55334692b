package aosp

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/provkit/provkit/manifests/aosp/makefile"
)

// revert plans the removal of what provkit added: its generated files (and the APKs their modules
// name) under the preinstall directory, its marked blocks in build files there and in the product
// makefiles, and the list lines it inserted into PRODUCT_PACKAGES for its own modules.
func (pl *planner) revert(ctx context.Context) error {
	ix := &index{namespaces: map[string]Loc{}}
	var generatedModules []string
	var files []string
	if err := pl.t.walk([]string{pl.p.Dir}, func(rel string) error {
		files = append(files, rel)
		return nil
	}); err != nil {
		return err
	}
	deleted := map[string]bool{}
	del := func(rel string, old []byte, reason string) {
		if deleted[rel] {
			return
		}
		deleted[rel] = true
		pl.t.overlay[rel] = nil
		pl.p.Changes = append(pl.p.Changes, Change{Path: rel, Action: "delete", Reason: reason, Old: old, Binary: strings.HasSuffix(rel, ".apk")})
	}
	for _, rel := range files {
		base := path.Base(rel)
		if !(base == "Android.bp" || base == "Android.mk" || strings.HasSuffix(base, ".mk") || strings.HasSuffix(base, ".xml")) {
			continue
		}
		src, err := pl.t.read(rel)
		if err != nil {
			return err
		}
		before := len(ix.modules)
		switch base {
		case "Android.bp":
			if err := ix.scanBp(pl.t, rel); err != nil {
				return fmt.Errorf("reading %s to revert it: %w", rel, err)
			}
		case "Android.mk":
			if err := ix.scanMk(pl.t, rel); err != nil {
				return fmt.Errorf("reading %s to revert it: %w", rel, err)
			}
		}
		for _, m := range ix.modules[before:] {
			if !m.Generated {
				continue
			}
			// Once per name: each name's list lines are cut once, and cutting a range twice
			// would remove the line after it.
			if !contains(generatedModules, m.Name) {
				generatedModules = append(generatedModules, m.Name)
			}
			// The APK a generated app module installs came with it.
			if m.APK != "" && path.Dir(m.APK) == path.Dir(rel) && pl.t.exists(m.APK) && !deleted[m.APK] {
				sum, _, err := hashFile(pl.t.abs(m.APK))
				if err != nil {
					return err
				}
				del(m.APK, nil, "the APK of provkit's module "+m.Name)
				pl.p.Changes[len(pl.p.Changes)-1].oldSHA256 = sum
			}
		}
		switch {
		case isGenerated(src):
			del(rel, src, "written by provkit")
		case len(markedRanges(src)) > 0:
			if err := pl.set(rel, removeMarked(src), false, "provkit's block removed"); err != nil {
				return err
			}
		}
	}
	for _, rel := range files {
		if !deleted[rel] {
			continue
		}
		// Directories the revert empties go too, up to the tree root: provkit created
		// vendor/<vendor>/preinstall and often vendor/<vendor> (an empty directory is never part of
		// a checkout, so removing one cannot lose anything).
		for d := path.Dir(rel); d != "." && d != "/"; d = path.Dir(d) {
			if !contains(pl.p.removeDirs, d) {
				pl.p.removeDirs = append(pl.p.removeDirs, d)
			}
		}
	}
	sort.Slice(pl.p.removeDirs, func(i, j int) bool { return len(pl.p.removeDirs[i]) > len(pl.p.removeDirs[j]) })

	chain, err := evalChain(newTree(pl.o.Tree), pl.p.Product, pl.o.Vars)
	if err != nil {
		return err
	}
	for _, fname := range chain.Files() {
		if strings.HasPrefix(fname, pl.p.Dir+"/") {
			continue // handled above
		}
		src, err := pl.t.read(fname)
		if err != nil {
			return err
		}
		out := removeMarked(src)
		if len(generatedModules) > 0 {
			f, err := makefile.Parse(fname, out)
			if err != nil {
				return err
			}
			var cut [][2]int
			for i := range f.Stmts {
				s := &f.Stmts[i]
				if s.Kind != makefile.Assign || s.Name != varPackages {
					continue
				}
				for _, m := range generatedModules {
					cut = append(cut, f.ListEntryLines(s, m)...)
				}
			}
			sort.Slice(cut, func(i, j int) bool { return cut[i][0] > cut[j][0] })
			for _, c := range cut {
				out = append(append([]byte{}, out[:c[0]]...), out[c[1]:]...)
			}
		}
		// A line provkit did not mark that still names a file the revert deletes would break the
		// build: say so rather than leave a dangling reference.
		if g, err := makefile.Parse(fname, src); err == nil {
			marked := markedRanges(src)
			for i := range g.Stmts {
				st := &g.Stmts[i]
				if inRanges(st.Start, marked) {
					continue
				}
				var target string
				if n, args, ok := makefile.Call(st.Text); ok && strings.HasPrefix(n, "inherit-product") && len(args) > 0 {
					target = path.Clean(args[0])
				} else if st.Kind == makefile.Directive && strings.HasSuffix(st.Word, "include") {
					target = path.Clean(strings.TrimSpace(st.Args))
				}
				if target != "" && deleted[target] {
					pl.block("", Loc{fname, st.Line}, "this line still names %s, which the revert deletes; remove it (provkit did not add it)", target)
				}
			}
		}
		if string(out) != string(src) {
			if err := pl.set(fname, out, false, "provkit's additions removed"); err != nil {
				return err
			}
		}
	}
	return pl.validate()
}
