package aosp

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"strings"
)

// maxProjectList bounds .repo/project.list (a real checkout lists about 1,200 projects).
const maxProjectList = 4 << 20

// gitProjectNote says when the module directory belongs to no git project of the checkout: in a
// repo checkout a directory outside every project is versioned by nothing, `repo status` does not
// show it, and a fresh checkout lacks it. It returns "" when the directory is inside a project,
// or when the tree is not a checkout provkit recognises.
func gitProjectNote(t *tree, dir, product string) string {
	if b, err := readSmall(t.abs(".repo/project.list")); err == nil {
		var projects []string
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if p := strings.TrimSpace(sc.Text()); p != "" {
				projects = append(projects, path.Clean(p))
			}
		}
		if p := owningProject(projects, dir); p != "" {
			return ""
		}
		return fmt.Sprintf("%s belongs to no git project of this repo checkout (.repo/project.list): nothing versions it and a fresh `repo sync` checkout lacks it; place the modules inside a project you own with --module-dir <dir> (e.g. %s), or add a project for it to your manifest",
			dir, suggestDir(projects, dir, product))
	}
	// A plain git checkout: some directory from dir up to the root has a .git.
	if _, err := os.Lstat(t.abs(".git")); err == nil {
		return ""
	}
	for d := dir; d != "." && d != "/" && d != ""; d = path.Dir(d) {
		if _, err := os.Lstat(t.abs(path.Join(d, ".git"))); err == nil {
			return ""
		}
	}
	// Some projects of the tree are git checkouts but none holds dir.
	for _, top := range []string{"build/make", "device", "vendor", "frameworks/base"} {
		if _, err := os.Lstat(t.abs(path.Join(top, ".git"))); err == nil {
			return fmt.Sprintf("%s is inside no git checkout of the tree: nothing versions it; place the modules inside a project you own with --module-dir <dir>", dir)
		}
	}
	return ""
}

func readSmall(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(&limited{f, maxProjectList}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type limited struct {
	f *os.File
	n int
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("larger than %d bytes", maxProjectList)
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= n
	return n, err
}

// owningProject is the project path that contains dir ("" when none).
func owningProject(projects []string, dir string) string {
	best := ""
	for _, p := range projects {
		if (dir == p || strings.HasPrefix(dir, p+"/")) && len(p) > len(best) {
			best = p
		}
	}
	return best
}

// suggestDir proposes a module directory: beside the product makefile when a project holds it,
// else inside a project under device/<vendor>/ or vendor/<vendor>/.
func suggestDir(projects []string, dir, product string) string {
	if owningProject(projects, path.Dir(product)) != "" {
		return path.Join(path.Dir(product), "preinstall")
	}
	parts := strings.Split(dir, "/")
	if len(parts) >= 2 {
		for _, p := range projects {
			if strings.HasPrefix(p, "device/"+parts[1]+"/") || strings.HasPrefix(p, "vendor/"+parts[1]+"/") {
				return path.Join(p, "preinstall")
			}
		}
	}
	return "device/<vendor>/<device>/preinstall"
}
