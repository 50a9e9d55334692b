package makefile

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the scanner. It must never panic; when it accepts a file, its
// statements must tile the file exactly, and inserting a word into any continued list must leave
// every byte outside the inserted line unchanged and produce a file that still scans, with the word
// now among the list's words.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		productMk,
		"PRODUCT_PACKAGES += \\\n\tGmsCore \\\n\tFakeStore\n",
		"PRODUCT_MAKEFILES := \\\n    $(LOCAL_DIR)/lineage_foo.mk\n\nCOMMON_LUNCH_CHOICES := lineage_foo-userdebug\n",
		"ifeq ($(A),b)\nelse ifneq \"x\" 'y'\n\tX += 1\nendif\n",
		"define x\nifeq\nendef\n",
		"a: b\n\trecipe \\\n\tmore\n",
		"A := a \\  \nB := b\\\\\n",
		"X := $(foo $(bar)\n",
		"PRODUCT_PACKAGES += \\\r\n  Foo\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := Parse("fuzz.mk", src)
		if err != nil {
			if _, ok := err.(*SyntaxError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		assertTiles(t, file)
		for i := range file.Stmts {
			s := &file.Stmts[i]
			if s.Kind != Assign {
				continue
			}
			off, text, err := file.ListInsertion(s, "ProvkitFuzzModule")
			if err != nil {
				continue
			}
			out := append(append(append([]byte{}, src[:off]...), text...), src[off:]...)
			if !bytes.Equal(out[:off], src[:off]) || !bytes.Equal(out[off+len(text):], src[off:]) {
				t.Fatal("bytes outside the insertion changed")
			}
			g, err := Parse("fuzz.mk", out)
			if err != nil {
				t.Fatalf("inserting into the list at line %d broke the file: %v\n%q", s.Line, err, out)
			}
			if len(g.Stmts) != len(file.Stmts) {
				t.Fatalf("insertion changed the statement count %d -> %d\n%q", len(file.Stmts), len(g.Stmts), out)
			}
			found := false
			for _, w := range Words(g.Stmts[i].Value) {
				found = found || w == "ProvkitFuzzModule"
			}
			if !found {
				t.Fatalf("word not in the list after insertion: %q", g.Stmts[i].Value)
			}
			if lines := g.ListEntryLines(&g.Stmts[i], "ProvkitFuzzModule"); len(lines) == 0 {
				t.Fatalf("inserted line not found again")
			}
			break
		}
	})
}

// FuzzExpand: expansion of arbitrary text with self-referencing and unknown variables terminates
// without panicking, and text without '$' expands to itself.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"$(LOCAL_DIR)/x.mk", "$(call my-dir)", "$(SELF)", "$(patsubst %.mk,%,$(A))", "$(if $(E),a,b)", "$(filter a%,$(wildcard x/*))", "${A", "$$(x)", "plain text", "$(foreach f,$(A) $(A),$(foreach g,$(A),$(f)$(g)))", "$(call add-to-product-copy-files-if-exists, a:b c:d)", "$(call find-copy-subdir-files,*,x,y)"} {
		f.Add(s)
	}
	env := mapEnv{"LOCAL_DIR": "device/x", "A": "$(B) a.mk", "B": "$(A)", "SELF": "$(SELF)$(SELF)", "E": ""}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		out, known := Expand(s, env)
		if !strings.Contains(s, "$") && (out != s || !known) {
			t.Fatalf("Expand(%q) = %q, %v", s, out, known)
		}
	})
}
