package makefile

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

const productMk = "# Copyright\n" +
	"$(call inherit-product, $(SRC_TARGET_DIR)/product/core_64_bit.mk)\n" +
	"$(call inherit-product-if-exists, vendor/extra/product.mk)\n" +
	"\n" +
	"PRODUCT_PACKAGES += \\\n" +
	"    Foo \\\n" +
	"\tBar \\\n" +
	"    $(EXTRA_APPS)\n" +
	"\n" +
	"ifeq ($(TARGET_BUILD_VARIANT),eng)\n" +
	"PRODUCT_PACKAGES += EngOnly\n" +
	"else ifeq ($(TARGET_BUILD_VARIANT),userdebug)\n" +
	"  ifdef WITH_SU\n" +
	"\tPRODUCT_PACKAGES += su\n" +
	"  endif\n" +
	"else\n" +
	"PRODUCT_PACKAGES += UserOnly\n" +
	"endif\n" +
	"TARGET_SCREEN_WIDTH ?= 1080\n" +
	"PRODUCT_NAME := lineage_foo # the name\n" +
	"define my-func\n" +
	"$(1) := x\n" +
	"endef\n" +
	"-include vendor/lineage-priv/keys/keys.mk\n" +
	"include vendor/lineage/config/version.mk\n" +
	"out/foo: bar\n" +
	"\techo hello \\\n" +
	"\t  world\n" +
	"\n" +
	"\t# a comment in the recipe\n" +
	"override X = 1\n" +
	"export Y := 2\n"

func TestParseProductMakefile(t *testing.T) {
	f, err := Parse("device/x/lineage_foo.mk", []byte(productMk))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		line int
		kind Kind
		s    string // name or word
	}
	var got []want
	for _, s := range f.Stmts {
		w := want{s.Line, s.Kind, ""}
		switch s.Kind {
		case Assign:
			w.s = s.Op + s.Name
		case Directive:
			w.s = s.Word + s.ElseIf
		case Define:
			w.s = s.Name
		}
		got = append(got, w)
	}
	exp := []want{
		{1, Comment, ""}, {2, Expr, ""}, {3, Expr, ""}, {4, Blank, ""}, {5, Assign, "+=PRODUCT_PACKAGES"},
		{9, Blank, ""}, {10, Directive, "ifeq"}, {11, Assign, "+=PRODUCT_PACKAGES"}, {12, Directive, "elseifeq"},
		{13, Directive, "ifdef"}, {14, Assign, "+=PRODUCT_PACKAGES"}, {15, Directive, "endif"}, {16, Directive, "else"},
		{17, Assign, "+=PRODUCT_PACKAGES"}, {18, Directive, "endif"}, {19, Assign, "?=TARGET_SCREEN_WIDTH"},
		{20, Assign, ":=PRODUCT_NAME"}, {21, Define, "my-func"}, {24, Directive, "-include"}, {25, Directive, "include"},
		{26, Rule, ""}, {27, Recipe, ""}, {29, Blank, ""}, {30, Recipe, ""}, {31, Assign, "=X"}, {32, Assign, ":=Y"},
	}
	if !slices.Equal(got, exp) {
		t.Errorf("statements:\n got %v\nwant %v", got, exp)
	}
	pk := f.Stmts[4]
	if ws := Words(pk.Value); !slices.Equal(ws, []string{"Foo", "Bar", "$(EXTRA_APPS)"}) {
		t.Errorf("PRODUCT_PACKAGES words = %q", ws)
	}
	if f.Stmts[16].Value != "lineage_foo" {
		t.Errorf("comment not stripped: %q", f.Stmts[16].Value)
	}
	// su sits in branch 1 (else ifeq) of the ifeq at stmt 6, and branch 0 of the ifdef.
	su := f.Stmts[10]
	if len(su.Cond) != 2 || su.Cond[0] != (CondRef{If: 6, Branch: 1}) || su.Cond[1].Branch != 0 {
		t.Errorf("su cond = %+v", su.Cond)
	}
	if f.Stmts[13].Cond[0].Branch != 2 {
		t.Errorf("UserOnly cond = %+v", f.Stmts[13].Cond)
	}
	if pk.Conditional() || !f.Stmts[7].Conditional() {
		t.Error("conditional context wrong")
	}
	name, args, ok := Call(f.Stmts[1].Text)
	if !ok || name != "inherit-product" || args[0] != "$(SRC_TARGET_DIR)/product/core_64_bit.mk" {
		t.Errorf("Call = %q %q %v", name, args, ok)
	}
	assertTiles(t, f)
}

// assertTiles checks that the statements cover the file exactly, in order.
func assertTiles(t testing.TB, f *File) {
	t.Helper()
	at := 0
	for i, s := range f.Stmts {
		if s.Start != at || s.End < s.Start {
			t.Fatalf("statement %d (line %d) spans [%d,%d), expected to start at %d", i, s.Line, s.Start, s.End, at)
		}
		at = s.End
	}
	if at != len(f.Src) {
		t.Fatalf("statements end at %d, file has %d bytes", at, len(f.Src))
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"ifeq (a,b)\nX := 1\n", "x.mk:1: missing endif"},
		{"X := 1\nendif\n", "x.mk:2: endif without"},
		{"else\n", "x.mk:1: else without"},
		{"ifeq (a,b)\nelse foo\nendif\n", "x.mk:2: expected ifeq"},
		{"ifeq a b\nendif\n", "x.mk:1: ifeq: expected (a,b)"},
		{"X := $(foo\n", "x.mk:1: unterminated variable reference"},
		{"define f\nx\n", "x.mk:1: missing endef"},
		{"endef\n", "x.mk:1: endef without"},
		{"PRODUCT_PACKAGES\n", "x.mk:1: missing separator"},
		{"A := 1\n\tb\n", "x.mk:2: recipe commences before first target"},
		{"PRODUCT_PACKAGES += \\   \n\tFoo\n", "x.mk:2: recipe commences"},
		{"ifeq (a,b)\nelse\nelse\nendif\n", "x.mk:3: only one else per conditional: the ifeq at line 1"},
		{"ifdef A\nelse\nelse ifeq (a,b)\nendif\n", "x.mk:3: only one else per conditional"},
	} {
		_, err := Parse("x.mk", []byte(tc.src))
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q...", tc.src, err, tc.want)
		}
	}
}

// TestSecondElseRejectedLikeGNUMake: GNU make refuses a second else in one conditional, and so
// does the scanner (an "else ifeq" chain is fine for both).
func TestSecondElseRejectedLikeGNUMake(t *testing.T) {
	mk := testtool.Require(t, "make")[0]
	for _, tc := range []struct {
		src string
		ok  bool
	}{
		{"ifeq (a,b)\nelse ifeq (a,c)\nelse\nendif\nall:;@:\n", true},
		{"ifeq (a,b)\nelse\nelse\nendif\nall:;@:\n", false},
		{"ifeq (a,b)\nelse\nelse ifeq (a,c)\nendif\nall:;@:\n", false},
	} {
		p := filepath.Join(t.TempDir(), "e.mk")
		if err := os.WriteFile(p, []byte(tc.src), 0o644); err != nil {
			t.Fatal(err)
		}
		out, mkErr := exec.Command(mk, "-s", "-f", p).CombinedOutput()
		_, err := Parse("e.mk", []byte(tc.src))
		if (mkErr == nil) != tc.ok || (err == nil) != tc.ok {
			t.Errorf("%q: make err %v (%s), scanner err %v; want ok=%v", tc.src, mkErr, out, err, tc.ok)
		}
	}
}

// TestConditionalContextIsShared: the statements of one branch share one context slice, so a deeply
// nested file costs memory per branch, not per line; and a file of thousands of branches hundreds
// of levels deep is refused instead of being allowed gigabytes.
func TestConditionalContextIsShared(t *testing.T) {
	src := strings.Repeat("ifeq (a,b)\n", 200) + strings.Repeat("X += y\n", 1000) + strings.Repeat("endif\n", 200)
	f, err := Parse("x.mk", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	a, b := &f.Stmts[200], &f.Stmts[1199]
	if len(a.Cond) != 200 || len(b.Cond) != 200 || &a.Cond[0] != &b.Cond[0] {
		t.Fatalf("context lengths %d, %d; shared %v", len(a.Cond), len(b.Cond), len(a.Cond) > 0 && &a.Cond[0] == &b.Cond[0])
	}
	if last := f.Stmts[len(f.Stmts)-1]; last.Conditional() {
		t.Fatalf("the last endif is at top level, got context %v", last.Cond)
	}

	bomb := strings.Repeat("ifeq (a,b)\n", maxNesting-1) + strings.Repeat("ifeq (a,b)\nelse ifeq (a,c)\nendif\n", 3000) + strings.Repeat("endif\n", maxNesting-1)
	_, err = Parse("x.mk", []byte(bomb))
	var se *SyntaxError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "too many conditional branches") {
		t.Fatalf("Parse(bomb) = %v, want a syntax error about too many branches", err)
	}
}

func TestTrailingSpaceAfterBackslashWarns(t *testing.T) {
	f, err := Parse("x.mk", []byte("A := a \\  \nB := b\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Stmts) != 2 || len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], "x.mk:1:") {
		t.Fatalf("stmts %d warnings %q", len(f.Stmts), f.Warnings)
	}
}

// TestValuesMatchGNUMake runs GNU make on a file and compares each variable's value with the words
// the scanner finds: continuations, tabs, comments and escaped characters joined the same way.
func TestValuesMatchGNUMake(t *testing.T) {
	mk := testtool.Require(t, "make")[0]
	src := "A := a \\\n\tb \\\n    c\n" +
		"B := x\\\ny\n" +
		"C := p \\\\\n" +
		"D := 1 # c \\\n  still comment\n" +
		"E := \\\n\n" +
		"F :=   lead   trail   \n" +
		"G := one \\\n \\\n two\n" +
		"H := h \\  \n" +
		"I := i\\#j\n"
	f, err := Parse("v.mk", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var b strings.Builder
	b.WriteString(src)
	for _, s := range f.Stmts {
		if s.Kind == Assign {
			names = append(names, s.Name)
			fmt.Fprintf(&b, "$(info %s=[$(%s)])\n", s.Name, s.Name)
		}
	}
	b.WriteString("all:;@:\n")
	dir := t.TempDir()
	p := filepath.Join(dir, "v.mk")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(mk, "-s", "-f", p).CombinedOutput()
	if err != nil {
		t.Fatalf("make: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		got[k] = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	}
	for _, s := range f.Stmts {
		if s.Kind != Assign {
			continue
		}
		// make keeps inner whitespace of a value; the scanner's words must match make's words.
		want := strings.Fields(strings.ReplaceAll(got[s.Name], `\#`, "#"))
		have := strings.Fields(strings.ReplaceAll(s.Value, `\#`, "#"))
		if !slices.Equal(want, have) {
			t.Errorf("%s: make says %q, scanner %q", s.Name, want, have)
		}
	}
	if len(names) != 9 {
		t.Errorf("found %d assignments: %v", len(names), names)
	}
}

func TestListInsertion(t *testing.T) {
	src := "PRODUCT_PACKAGES += \\\n\tGmsCore \\\n\tFakeStore\nX := 1\n"
	f, err := Parse("gms.mk", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	off, text, err := f.ListInsertion(&f.Stmts[0], "Max")
	if err != nil {
		t.Fatal(err)
	}
	out := src[:off] + text + src[off:]
	want := "PRODUCT_PACKAGES += \\\n\tMax \\\n\tGmsCore \\\n\tFakeStore\nX := 1\n"
	if out != want {
		t.Fatalf("got %q", out)
	}
	g, err := Parse("gms.mk", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if lines := g.ListEntryLines(&g.Stmts[0], "Max"); len(lines) != 1 || out[:lines[0][0]]+out[lines[0][1]:] != src {
		t.Fatalf("ListEntryLines = %v", lines)
	}
	one, _ := Parse("x.mk", []byte("PRODUCT_PACKAGES += A\n"))
	if _, _, err := one.ListInsertion(&one.Stmts[0], "Max"); !errors.Is(err, ErrNotAList) {
		t.Errorf("single-line list: %v", err)
	}
}

type mapEnv map[string]string

func (m mapEnv) Lookup(n string) (string, bool)   { v, ok := m[n]; return v, ok }
func (m mapEnv) MyDir() string                    { return "device/x/foo" }
func (m mapEnv) Wildcard(string) ([]string, bool) { return nil, false }

func TestExpand(t *testing.T) {
	env := mapEnv{"LOCAL_DIR": "device/x/foo", "A": "$(B) b", "B": "bee", "E": "", "SELF": "$(SELF)"}
	for _, tc := range []struct {
		in, want string
		known    bool
	}{
		{"$(LOCAL_DIR)/lineage_foo.mk", "device/x/foo/lineage_foo.mk", true},
		{"${A}", "bee b", true},
		{"$(call my-dir)/x", "device/x/foo/x", true},
		{"$(strip  a   b )", "a b", true},
		{"$(UNKNOWN)/x", "/x", false},
		{"$(shell ls)", "", false},
		{"$(filter-out b,a b c)", "a c", true},
		{"$(patsubst %.mk,%.bp,x.mk y.mk)", "x.bp y.bp", true},
		{"$(if $(E),yes,no)", "no", true},
		{"$(SELF)", "", false},
		{"$$x", "$x", true},
	} {
		got, known := Expand(tc.in, env)
		if got != tc.want || known != tc.known {
			t.Errorf("Expand(%q) = %q,%v want %q,%v", tc.in, got, known, tc.want, tc.known)
		}
	}
}

func TestUnterminatedReferences(t *testing.T) {
	for _, s := range []string{"$(", "${", "$(call ", "$(call x", "${A", "$(A $(B)"} {
		if _, known := Expand(s, mapEnv{}); known {
			t.Errorf("Expand(%q) claims to know the result", s)
		}
		if _, _, ok := Call(s); ok {
			t.Errorf("Call(%q) accepted", s)
		}
	}
}
