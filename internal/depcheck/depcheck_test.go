package depcheck

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/provkit/provkit/"

// forbiddenImports maps a floor to the import path prefixes it must not use.
var forbiddenImports = map[string][]string{
	"firmware":  {module + "manifests", module + "provision", module + "cmd"},
	"manifests": {module + "provision", module + "cmd"},
	"provision": {module + "cmd"},
}

var uiImports = []string{
	"github.com/spf13/cobra",
	"github.com/spf13/pflag",
	"github.com/schollz/progressbar",
	"github.com/vbauerster/mpb",
}

var forbiddenCalls = []string{"os.Stdout", "os.Exit(", "log.Fatal"}

func TestDomainPackagesStayOnTheirFloor(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for floor, forbidden := range forbiddenImports {
		dir := filepath.Join(root, floor)
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			continue
		}
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			checked++
			rel, _ := filepath.Rel(root, path)
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ImportsOnly)
			if err != nil {
				t.Errorf("%s: %v", rel, err)
				return nil
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				for _, bad := range append(forbidden, uiImports...) {
					if p == bad || strings.HasPrefix(p, bad+"/") {
						t.Errorf("%s imports %s: the %s floor must not", rel, p, floor)
					}
				}
			}
			for i, line := range strings.Split(string(src), "\n") {
				code, _, _ := strings.Cut(line, "//")
				for _, call := range forbiddenCalls {
					if strings.Contains(code, call) {
						t.Errorf("%s:%d uses %s: domain packages return errors and data, the command layer prints and exits", rel, i+1, strings.TrimSuffix(call, "("))
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("checked %d files", checked)
}

// TestEveryPackageHasDocGo enforces the convention that each package says what it is for in doc.go.
func TestEveryPackageHasDocGo(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		hasGo, hasDoc := false, false
		for _, e := range entries {
			n := e.Name()
			if strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
				hasGo = true
			}
			if n == "doc.go" {
				hasDoc = true
			}
		}
		rel, _ := filepath.Rel(root, path)
		if hasGo && !hasDoc && rel != filepath.Join("cmd", "provkit") {
			t.Errorf("%s has no doc.go saying what the package is for", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
