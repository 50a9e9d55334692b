package blueprint

import (
	"bytes"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the parser. It must never panic; when it accepts a file, every
// definition's span lies inside the file, in order, without overlap; and appending a module with
// Append must keep every existing byte and give a file that parses with that module added.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		gappsBp,
		"foo { name: \"a\", }\n",
		"x = [\"a\"] + [\"b\"]\nfoo { name: x, m: { k: -1, }, }\n",
		"foo { srcs: select(arch(), { \"arm\": [\"a\"], default: [], }), }\n",
		"/* c */ // d\nfoo {}",
		"foo { a: \"\\u00e9\\n\" }",
		"soong_namespace {\n    imports: [\"vendor/x\"],\n}\n",
	} {
		f.Add([]byte(s))
	}
	const added = "android_app_import {\n    name: \"ProvkitFuzz\",\n    apk: \"a.apk\",\n    presigned: true,\n}\n"
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := Parse("fuzz.bp", src)
		if err != nil {
			if _, ok := err.(*SyntaxError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		last := 0
		for _, d := range file.Defs {
			var s, e int
			switch v := d.(type) {
			case *Module:
				s, e = v.Start, v.End
			case *Assignment:
				s, e = v.Start, v.End
			}
			if s < last || e < s || e > len(src) {
				t.Fatalf("definition span [%d,%d) after %d in %d bytes", s, e, last, len(src))
			}
			last = e
		}
		out, at := Append(src, added)
		if at != len(src) || !bytes.Equal(out[:len(src)], src) || !bytes.Contains(out[at:], []byte(added[:len(added)-1])) {
			t.Fatal("Append changed existing bytes")
		}
		g, err := Parse("fuzz.bp", out)
		if err != nil {
			// Only a trailing // comment without a newline could swallow the addition, and Append
			// adds newlines; anything else is a bug.
			t.Fatalf("appending a module broke the file: %v\n%q", err, out)
		}
		if len(g.Modules) != len(file.Modules)+1 || g.Modules[len(g.Modules)-1].Name() != "ProvkitFuzz" {
			t.Fatalf("appended module not found: %d -> %d modules", len(file.Modules), len(g.Modules))
		}
	})
}
