package selinux

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/provkit/provkit/firmware/erofs"
	"github.com/provkit/provkit/internal/testtool"
)

const sample = `# product file contexts
/(product|system/product)(/.*)?           u:object_r:system_file:s0
/product/app(/.*)?                        u:object_r:system_file:s0
/product/etc/permissions(/.*)?            u:object_r:product_perm_file:s0
/product/etc/permissions/exact\.xml       u:object_r:exact_file:s0
/product/bin/.*                           u:object_r:exec_file:s0
/product/bin/sh                   --      u:object_r:shell_exec:s0
/product/lib(/.*)?                -d      u:object_r:lib_dir:s0
/product/lib(/.*)?                        u:object_r:lib_file:s0
/product/none(/.*)?                       <<none>>
/product/app/late(/.*)?                   u:object_r:late_file:s0
/product/app/late/X\.apk                  u:object_r:literal_late:s0
/product/app/late/Y.apk                   u:object_r:regex_y:s0
`

func mustParse(t *testing.T, texts ...string) *Contexts {
	t.Helper()
	c := &Contexts{}
	for i, s := range texts {
		if err := c.Parse(strings.NewReader(s), "f"+string(rune('0'+i))); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestLookup(t *testing.T) {
	c := mustParse(t, sample)
	for _, tc := range []struct {
		path  string
		typ   FileType
		label string
		ok    bool
	}{
		{"/product", Dir, "u:object_r:system_file:s0", true},
		{"/product/app/Foo/Foo.apk", Regular, "u:object_r:system_file:s0", true},
		{"/system/product/x", Regular, "u:object_r:system_file:s0", true},
		{"/productx", Regular, "", false}, // anchored: (/.*)? must match the rest
		{"/vendor/product", Regular, "", false},
		{"/product/etc/permissions/a.xml", Regular, "u:object_r:product_perm_file:s0", true},
		// a literal spec wins even though a regex spec comes after it in the file
		{"/product/etc/permissions/exact.xml", Regular, "u:object_r:exact_file:s0", true},
		{"/product/bin/sh", Regular, "u:object_r:shell_exec:s0", true},
		{"/product/bin/sh", Symlink, "u:object_r:exec_file:s0", true}, // "--" only for regular files
		{"/product/bin/sh", Any, "u:object_r:shell_exec:s0", true},
		{"/product/lib/x", Dir, "u:object_r:lib_file:s0", true}, // last regex wins, untyped matches dirs
		{"/product/none/a", Regular, "", false},                 // <<none>>
		{"/product/app/late/a.apk", Regular, "u:object_r:late_file:s0", true},
		{"/product/app/late/X.apk", Regular, "u:object_r:literal_late:s0", true},
		// "Y.apk" has a '.', so it is a regex spec, and it is the last regex that matches
		{"/product/app/late/Y.apk", Regular, "u:object_r:regex_y:s0", true},
		{"/product/app/late/YZapk", Regular, "u:object_r:regex_y:s0", true},
	} {
		got, ok := c.Label(tc.path, tc.typ)
		if got != tc.label || ok != tc.ok {
			t.Errorf("Label(%q, %v) = %q, %v; want %q, %v", tc.path, tc.typ, got, ok, tc.label, tc.ok)
		}
	}
}

func TestLaterFileWins(t *testing.T) {
	c := mustParse(t, "/product(/.*)? u:object_r:a:s0\n", "/product(/.*)? u:object_r:b:s0\n")
	if got, _ := c.Label("/product/x", Regular); got != "u:object_r:b:s0" {
		t.Errorf("got %q, want the later file's label", got)
	}
}

func TestHasMeta(t *testing.T) {
	for re, want := range map[string]bool{
		"/a/b":     false,
		`/a\.b`:    false,
		"/a.b":     true,
		"/a(/.*)?": true,
		`/a\\.b`:   true, // escaped backslash, then a real '.'
		"/a{1}":    true,
		"/a|b":     true,
	} {
		if got := hasMeta(re); got != want {
			t.Errorf("hasMeta(%q) = %v, want %v", re, got, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{
		"/a",                    // no context
		"/a -x u:object_r:a:s0", // bad type
		"/a b c d",              // too many fields
		"/a( u:object_r:a:s0",   // bad regex
		"/a notacontext",        // not a context
	} {
		c := &Contexts{}
		err := c.Parse(strings.NewReader("# c\n"+bad+"\n"), "fc")
		if err == nil || !strings.Contains(err.Error(), "fc line 2") {
			t.Errorf("Parse(%q) = %v, want an error naming fc line 2", bad, err)
		}
	}
}

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/selinux/product_file_contexts": {Data: []byte("/product(/.*)? u:object_r:p:s0\n")},
		"etc/selinux/other":                 {Data: []byte("junk")},
	}
	c, names, err := Load(fsys, "etc/selinux")
	if err != nil || len(names) != 1 {
		t.Fatalf("Load = %v, %v", names, err)
	}
	if got, _ := c.Label("/product/a", Regular); got != "u:object_r:p:s0" {
		t.Errorf("got %q", got)
	}
	if _, _, err := Load(fstest.MapFS{"etc/selinux/x": {}}, "etc/selinux"); err == nil {
		t.Error("Load with no file_contexts: want an error")
	}
}

// TestAgainstLibselinux labels a tree with mkfs.erofs --file-contexts (which looks labels up through
// libselinux's selabel_lookup) and checks that Lookup gives every file the same label.
func TestAgainstLibselinux(t *testing.T) {
	testtool.Require(t, "mkfs.erofs")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	files := []string{
		"app/Foo/Foo.apk", "app/late/a.apk", "app/late/X.apk", "app/late/Y.apk", "app/late/YZapk",
		"etc/permissions/a.xml", "etc/permissions/exact.xml", "bin/sh", "bin/other", "lib/x/y.so",
		"none/a", "priv-app/P/P.apk",
	}
	for _, f := range files {
		p := filepath.Join(src, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("sh", filepath.Join(src, "bin/link")); err != nil {
		t.Fatal(err)
	}
	fc := filepath.Join(dir, "file_contexts")
	// mkfs.erofs 1.5 has no --mount-point: it looks up "/" + the path inside the image, so the
	// sample is re-rooted at "/".
	rooted := strings.Replace(sample, "/(product|system/product)(/.*)?", "(/.*)?", 1)
	rooted = strings.ReplaceAll(rooted, "/product/", "/")
	if err := os.WriteFile(fc, []byte(rooted), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "p.img")
	out, err := exec.Command("mkfs.erofs", "--file-contexts="+fc, img, src).CombinedOutput()
	if err != nil {
		t.Fatalf("mkfs.erofs: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	efs, err := erofs.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, rooted)
	checked := 0
	err = filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		name := filepath.ToSlash(rel)
		devPath := "/"
		if name != "." {
			devPath += name
		}
		fi, err := efs.Lstat(name) // Lstat: a symlink is labelled as itself, not as its target
		if err != nil {
			return err
		}
		in := fi.Sys().(*erofs.Inode)
		want, _ := c.Label(devPath, TypeOf(fi.Mode()))
		if got := in.SELinuxLabel(); got != want {
			t.Errorf("%s: libselinux gave %q, Lookup %q", devPath, got, want)
		}
		checked++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < len(files) {
		t.Fatalf("checked %d paths, want at least %d", checked, len(files))
	}
}
