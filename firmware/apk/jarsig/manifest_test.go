package jarsig

import (
	"archive/zip"
	"bytes"
	"crypto"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestManifestReader(t *testing.T) {
	type sec struct {
		start, size int
		name        string
		named       bool
		attrs       []attribute
	}
	cases := []struct {
		name string
		in   string
		want []sec
	}{
		{"CRLF sections", "Manifest-Version: 1.0\r\n\r\nName: a\r\nSHA-256-Digest: x\r\n\r\n",
			[]sec{{0, 25, "", false, []attribute{{"Manifest-Version", "1.0"}}}, {25, 30, "a", true, []attribute{{"Name", "a"}, {"SHA-256-Digest", "x"}}}}},
		{"LF and lone CR", "A: 1\nB: 2\r\rname: b\rC: 3",
			[]sec{{0, 11, "", false, []attribute{{"A", "1"}, {"B", "2"}}}, {11, 12, "b", true, []attribute{{"name", "b"}, {"C", "3"}}}}},
		{"continuation lines", "Name: abc\r\n def\r\n  ghi\r\nX: 1\r\n\r\n",
			[]sec{{0, 32, "abcdef ghi", true, []attribute{{"Name", "abcdef ghi"}, {"X", "1"}}}}},
		{"continuation after a pending line", "A: 1\nB: 2\n 3\n\n",
			[]sec{{0, 14, "", false, []attribute{{"A", "1"}, {"B", "23"}}}}},
		{"leading blank lines are not part of a section", "\r\n\r\nA: 1\r\n\r\n\r\n\r\nName: x\r\n",
			[]sec{{4, 8, "", false, []attribute{{"A", "1"}}}, {16, 9, "x", true, []attribute{{"Name", "x"}}}}},
		{"no space after colon, spaces kept", "Odd:value\nName:  spaced \nK : v\n",
			[]sec{{0, 31, "", false, []attribute{{"Odd:value", ""}, {"Name", " spaced "}, {"K ", "v"}}}}},
		{"first attribute decides the name", "X: 1\nName: late\n\nNAME: up\n",
			[]sec{{0, 17, "", false, []attribute{{"X", "1"}, {"Name", "late"}}}, {17, 9, "up", true, []attribute{{"NAME", "up"}}}}},
		{"invalid UTF-8 becomes U+FFFD", "Name: a\xffb\n",
			[]sec{{0, 10, "a\ufffdb", true, []attribute{{"Name", "a\ufffdb"}}}}},
		{"empty", "", nil},
		{"only blank lines", "\r\n\n\r", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &manifestReader{data: []byte(tc.in)}
			var got []sec
			for _, s := range r.readSections() {
				got = append(got, sec{s.start, s.size, s.name, s.named, s.attrs})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDigestsToVerify(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	sec := func(attrs ...string) *section {
		s := &section{}
		for i := 0; i < len(attrs); i += 2 {
			s.attrs = append(s.attrs, attribute{attrs[i], attrs[i+1]})
		}
		return s
	}
	type dg struct {
		alg, digest string
	}
	cases := []struct {
		name     string
		s        *section
		min, max int
		want     []dg
	}{
		{"strongest from JB MR2", sec("SHA1-Digest", b64("1"), "SHA-256-Digest", b64("256"), "SHA-512-Digest", b64("512")), 18, 30, []dg{{"SHA-512", "512"}}},
		{"SHA-1 before JB MR2, strongest after", sec("SHA1-Digest", b64("1"), "SHA-256-Digest", b64("256")), 1, 30, []dg{{"SHA-1", "1"}, {"SHA-256", "256"}}},
		{"only SHA-256 before JB MR2: nothing", sec("SHA-256-Digest", b64("256")), 1, 30, nil},
		{"SHA-256 through Digest-Algorithms", sec("Digest-Algorithms", "SHA-256", "SHA-256-Digest", b64("256")), 1, 17, []dg{{"SHA-256", "256"}}},
		{"same digest twice is kept once", sec("SHA1-Digest", b64("1")), 1, 30, []dg{{"SHA-1", "1"}}},
		{"SHA-512 not read before Gingerbread", sec("Digest-Algorithms", "SHA-512 SHA1", "SHA-512-Digest", b64("512"), "SHA1-Digest", b64("1")), 5, 8, []dg{{"SHA-1", "1"}}},
		{"SHA-512 read from Gingerbread", sec("Digest-Algorithms", "SHA-512 SHA1", "SHA-512-Digest", b64("512"), "SHA1-Digest", b64("1")), 9, 17, []dg{{"SHA-512", "512"}}},
		{"MD5 and SHA names, any case", sec("Digest-Algorithms", "md5", "md5-Digest", b64("5")), 1, 17, []dg{{"MD5", "5"}}},
		{"SHA attribute name", sec("SHA-Digest", b64("1")), 1, 17, []dg{{"SHA-1", "1"}}},
		{"SHA-224 is unknown", sec("Digest-Algorithms", "SHA-224", "SHA-224-Digest", b64("224")), 1, 17, nil},
		{"attribute names ignore case", sec("sha-256-digest", b64("256")), 18, 30, []dg{{"SHA-256", "256"}}},
		{"unpadded base64", sec("SHA-256-Digest", strings.TrimRight(b64("25"), "=")), 18, 30, []dg{{"SHA-256", "25"}}},
		{"invalid base64 matches nothing", sec("SHA-256-Digest", "!!"), 18, 30, []dg{{"SHA-256", ""}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []dg
			for _, d := range digestsToVerify(tc.s, "-Digest", tc.min, tc.max) {
				if d.hash != digestAlgs[d.alg] || d.hash == crypto.Hash(0) {
					t.Errorf("%s has hash %v", d.alg, d.hash)
				}
				got = append(got, dg{d.alg, string(d.digest)})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzManifestReader checks that the manifest reader never panics or loops, and that the
// sections it returns are ordered, disjoint, inside the input, and start with their first
// attribute's name.
func FuzzManifestReader(f *testing.F) {
	f.Add([]byte("Manifest-Version: 1.0\r\n\r\nName: a\r\n b\r\nSHA-256-Digest: x\r\n\r\n"))
	f.Add([]byte("A\rB: \n\n\r\n C\n"))
	// Manifests and signature files of the suite.
	files, _ := filepath.Glob("../testdata/apksig/v1-*.apk")
	for i, p := range files {
		if i%8 != 0 {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			continue
		}
		for _, zf := range zr.File {
			if zf.Name == "META-INF/MANIFEST.MF" || strings.HasSuffix(zf.Name, ".SF") {
				if rc, err := zf.Open(); err == nil {
					data, _ := io.ReadAll(io.LimitReader(rc, 1<<16))
					rc.Close()
					f.Add(data)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &manifestReader{data: b}
		end := 0
		for n := 0; ; n++ {
			if n > len(b) {
				t.Fatal("more sections than bytes")
			}
			s := r.readSection()
			if s == nil {
				break
			}
			if s.start < end || s.size <= 0 || s.start+s.size > len(b) || len(s.attrs) == 0 {
				t.Fatalf("section %d: [%d, +%d) after %d in %d bytes, %d attributes", n, s.start, s.size, end, len(b), len(s.attrs))
			}
			end = s.start + s.size
			first := s.attrs[0].name
			raw := string(b[s.start:end])
			unwrapped := strings.NewReplacer("\r\n ", "", "\r ", "", "\n ", "").Replace(raw)
			if javaString([]byte(raw)) == raw && !strings.HasPrefix(unwrapped, first) {
				t.Fatalf("section %d starts %q, first attribute %q", n, raw, first)
			}
			_ = digestsToVerify(s, "-Digest", 1, 1<<30)
		}
	})
}
