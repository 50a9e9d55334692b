package fsconfig

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseRoundTrip(t *testing.T) {
	in := []Entry{
		{Mode: 0o750, UID: 1000, GID: 2000, Capabilities: 1 << 12, Prefix: "vendor/bin/tool"},
		{Mode: 0o644, UID: 0, GID: 0, Prefix: "product/app/*"},
		{Mode: 0o4755, UID: 0, GID: 2000, Prefix: "x"},
	}
	b := Encode(in)
	if len(b)%8 != 0 {
		t.Fatalf("records not padded to 8 bytes: %d", len(b))
	}
	got, err := Parse(b, "f")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("%d entries, want %d", len(got), len(in))
	}
	for i := range in {
		g := got[i]
		g.Source = ""
		if g != in[i] {
			t.Errorf("entry %d: %+v, want %+v", i, g, in[i])
		}
	}
	if got[1].Source != "f@32" {
		t.Errorf("source %q", got[1].Source)
	}
}

func TestParseRefusesCorrupt(t *testing.T) {
	good := Encode([]Entry{{Mode: 0o755, Prefix: "product/app"}, {Mode: 0o700, Prefix: "product/bin"}})
	for name, tc := range map[string]struct {
		b    []byte
		want string
	}{
		"short tail":       {append(append([]byte(nil), good...), 1, 2, 3), "3 stray bytes at offset 64"},
		"length too large": {func() []byte { b := append([]byte(nil), good...); b[32] = 200; return b }(), "record at offset 32 claims 200 bytes"},
		"length too small": {func() []byte { b := append([]byte(nil), good...); b[0] = 8; return b }(), "record at offset 0 claims 8 bytes"},
		"no NUL":           {func() []byte { b := Encode([]Entry{{Prefix: "abcdefg"}}); b[23] = 'x'; return b }(), "no terminating NUL"},
		"too big":          {make([]byte, MaxFileSize+1), "more than the"},
	} {
		_, err := Parse(tc.b, "product:etc/fs_config_dirs")
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "product:etc/fs_config_dirs") {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// TestLookup: the order of the files (system before product), the first matching record of a
// file, directory prefixes, exact and wildcard file names, and the defaults.
func TestLookup(t *testing.T) {
	sys := fstest.MapFS{
		"system/etc/fs_config_files": {Data: Encode([]Entry{{Mode: 0o600, UID: 1000, GID: 1000, Prefix: "product/app/Special/Special.apk"}})},
		"system/build.prop":          {Data: []byte("x")},
	}
	prod := fstest.MapFS{
		"etc/fs_config_dirs": {Data: Encode([]Entry{
			{Mode: 0o750, UID: 1000, GID: 1001, Prefix: "product/app/Locked"},
			{Mode: 0o700, Prefix: "product/app/Locked/Inner"}, // shadowed by the record before
		})},
		"etc/fs_config_files": {Data: Encode([]Entry{
			{Mode: 0o600, UID: 0, GID: 0, Prefix: "product/app/Special/Special.apk"}, // system's wins
			{Mode: 0o640, UID: 1000, GID: 1000, Prefix: "product/etc/permissions/*.xml"},
			{Mode: 0o444, Prefix: "product/etc/sysconfig/*"},
		})},
	}
	c, err := Load(mapFSes{"system": sys, "product": prod}.fs())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Files, ",") != "/system/etc/fs_config_files,/product/etc/fs_config_dirs,/product/etc/fs_config_files" {
		t.Errorf("files read: %v", c.Files)
	}
	for _, tc := range []struct {
		p              string
		dir            bool
		mode, uid, gid uint16
		src            string
	}{
		{"product/app/Locked", true, 0o750, 1000, 1001, "product:etc/fs_config_dirs@0"},
		{"product/app/Locked/Inner", true, 0o750, 1000, 1001, "product:etc/fs_config_dirs@0"},
		{"product/app/Other", true, 0o755, 0, 0, ""},
		{"product/app/Special/Special.apk", false, 0o600, 1000, 1000, "system:system/etc/fs_config_files@0"},
		{"/product/app/Special/Special.apk", false, 0o600, 1000, 1000, "system:system/etc/fs_config_files@0"},
		{"product/app/Special/Special.apk.bak", false, 0o644, 0, 0, ""},
		{"product/etc/permissions/a.xml", false, 0o640, 1000, 1000, "product:etc/fs_config_files@48"},
		{"product/etc/permissions/a.txt", false, 0o644, 0, 0, ""},
		{"product/etc/sysconfig/deep/x", false, 0o444, 0, 0, "product:etc/fs_config_files@96"},
		{"product/etc/sysconfig", true, 0o755, 0, 0, ""},
	} {
		e := c.Lookup(tc.p, tc.dir)
		if e.Mode != tc.mode || e.UID != tc.uid || e.GID != tc.gid || e.Source != tc.src {
			t.Errorf("%s (dir %v): %o %d:%d from %q, want %o %d:%d from %q", tc.p, tc.dir, e.Mode, e.UID, e.GID, e.Source, tc.mode, tc.uid, tc.gid, tc.src)
		}
	}
	var none *Config
	if e := none.Lookup("product/app/X", true); e != DefaultDir {
		t.Errorf("nil config: %+v", e)
	}
}

func TestLoadRefusesCorrupt(t *testing.T) {
	prod := fstest.MapFS{"etc/fs_config_files": {Data: []byte{40, 0, 1, 2}}}
	_, err := Load(mapFSes{"product": prod}.fs())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "product:etc/fs_config_files") {
		t.Fatalf("got %v", err)
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pat, s string
		want   bool
	}{
		{"a/*", "a/b/c", true},
		{"a/*/bin/*", "a/x/y/bin/z", true},
		{"a/*/bin/*", "a/x/lib/z", false},
		{"*.xml", "dir/f.xml", true},
		{"*.xml", "f.xmll", false},
		{"a**b", "ab", true},
		{"abc", "abc", true},
		{"abc", "ab", false},
		{strings.Repeat("*a", 30), strings.Repeat("a", 200) + "b", false}, // no exponential blow-up
	} {
		if got := glob(tc.pat, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v", tc.pat, tc.s, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Encode([]Entry{{Mode: 0o755, Prefix: "product/app"}, {Mode: 0o640, UID: 1000, Prefix: "product/etc/*"}}))
	f.Add([]byte{17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := Parse(b, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		// what parses re-encodes to records that parse to the same entries
		again, err := Parse(Encode(es), "again")
		if err != nil || len(again) != len(es) {
			t.Fatalf("re-encoding: %v (%d vs %d)", err, len(again), len(es))
		}
		c := &Config{dirs: es, files: es}
		for _, e := range es {
			c.Lookup(e.Prefix, true)
			c.Lookup(e.Prefix, false)
		}
	})
}

type mapFSes map[string]fstest.MapFS

func (m mapFSes) fs() map[string]fs.FS {
	out := map[string]fs.FS{}
	for k, v := range m {
		out[k] = v
	}
	return out
}
