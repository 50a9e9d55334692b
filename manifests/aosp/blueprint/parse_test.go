package blueprint

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

// gappsBp is shaped like a MindTheGapps / partner_gms Android.bp: a namespace, app imports with
// nested maps, prebuilt_etc modules, comments of both kinds, trailing commas, variables and "+".
const gappsBp = `// Automatically generated file. DO NOT MODIFY

soong_namespace {
}

common_overrides = ["Launcher3", "Launcher3QuickStep"]
common_overrides += ["Camera2"]

/* The store.
   Privileged, on product. */
android_app_import {
    name: "Phonesky",
    owner: "gapps",
    apk: "proprietary/product/priv-app/Phonesky/Phonesky.apk",
    presigned: true,
    dex_preopt: {
        enabled: false, // no preopt for presigned
    },
    privileged: true,
    product_specific: true,
    overrides: common_overrides + ["PackageInstaller"],
    required: ["privapp-permissions-google-product.xml",],
}

prebuilt_etc {
    name: "privapp-permissions-google-product.xml",
    src: "proprietary/product/etc/permissions/privapp-permissions-google-product.xml",
    relative_install_path: "permissions",
    filename_from_src: true,
    product_specific: true,
    min_sdk_version: -1,
    raw: "a\\b",
}
`

func TestParseGappsShape(t *testing.T) {
	f, err := Parse("vendor/gapps/common/Android.bp", []byte(gappsBp))
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, m := range f.Modules {
		types = append(types, m.Type+":"+m.Name())
	}
	if !slices.Equal(types, []string{"soong_namespace:", "android_app_import:Phonesky", "prebuilt_etc:privapp-permissions-google-product.xml"}) {
		t.Fatalf("modules = %q", types)
	}
	app := f.Modules[1]
	if !app.Bool("privileged") || !app.Bool("product_specific") || app.Bool("vendor") {
		t.Error("bool properties wrong")
	}
	ov, ok := f.Strings(app.Prop("overrides").Value)
	if !ok || !slices.Equal(ov, []string{"Launcher3", "Launcher3QuickStep", "Camera2", "PackageInstaller"}) {
		t.Errorf("overrides = %q %v", ov, ok)
	}
	if r, err := Parse("r.bp", []byte("foo { cmd: `a \"b\"` }\n")); err != nil || r.Modules[0].Prop("cmd").Value.(*String).Value != `a "b"` {
		t.Errorf("raw string: %v", err)
	}
	if len(f.Comments) != 3 {
		t.Errorf("comments = %d", len(f.Comments))
	}
	if got := gappsBp[app.Start:app.End]; !strings.HasPrefix(got, "android_app_import {") || !strings.HasSuffix(got, "}") {
		t.Errorf("module span = %q", got)
	}
	if f.Line(app.Start) != 11 {
		t.Errorf("module line = %d", f.Line(app.Start))
	}
	etc := f.Modules[2]
	if s := etc.Prop("raw").Value.(*String).Value; s != `a\b` {
		t.Errorf("raw string = %q", s)
	}
}

func TestParseSelect(t *testing.T) {
	src := `foo {
    name: "x",
    srcs: select(soong_config_variable("ns", "v"), {
        "a": ["b"],
        any @ v: [v],
        default: unset,
    }),
    cflags: select((arch(), os()), {
        ("arm64", "android"): ["-DA"],
        (default, default,): [],
    }),
    ldflags: select((arch(),), {
        ("x86",): [],
    }),
}
`
	if _, err := Parse("s.bp", []byte(src)); err != nil {
		t.Fatal(err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"foo {\n  name: \"x\"\n  srcs: [],\n}\n", "x.bp:3:3: expected ',' or \"}\" after the value of \"name\""},
		{"foo {\n  name \"x\",\n}\n", "x.bp:2:8: expected ':' after property \"name\""},
		{"foo {\n  srcs: [\"a\" \"b\"],\n}\n", "x.bp:2:14: expected ',' or ']'"},
		{"foo {\n", "x.bp:2:1: expected a property name or \"}\", found end of file"},
		{"/* open\n", "x.bp:1:1: unterminated /* comment"},
		{"foo {\n  name: \"x,\n}\n", "x.bp:2:9: unterminated string"},
		{"foo bar {}\n", "x.bp:1:5: expected '{' to start module \"foo\""},
		{"x = 1\nx = 2\n", "x.bp:2:1: variable \"x\" is already assigned at line 1"},
		{"foo { a: b: c }\n", "x.bp:1:11: expected ',' or \"}\""},
		{"foo { a: select((arch() os()), {}) }\n", "x.bp:1:25: expected ')' to close the condition tuple, found \"os\""},
		{"foo { a: select(arch(), { (\"a\" \"b\"): 1 }) }\n", "x.bp:1:32: expected ')' to close the pattern tuple"},
		{"foo { a: select((), {}) }\n", "x.bp:1:18: expected a select condition"},
		{"} \n", "x.bp:1:1: expected a module type"},
	} {
		_, err := Parse("x.bp", []byte(tc.src))
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v\nwant prefix %q", tc.src, err, tc.want)
		}
	}
}

// TestAgreesWithBpfmt checks that the parser accepts what Blueprint's own parser (bpfmt) accepts
// and rejects what it rejects, on valid and broken inputs.
func TestAgreesWithBpfmt(t *testing.T) {
	bpfmt := testtool.Require(t, "bpfmt")[0]
	cases := []string{
		gappsBp,
		"",
		"// only a comment\n",
		"foo {}\n",
		"foo { name: \"a\", }\n",
		"foo { m: { a: { b: [1, 2,], }, }, }\n",
		"x = \"a\" + \"b\"\nfoo { name: x }\n",
		"foo { srcs: [\"a\",\n// c\n\"b\", /* d */ ], }\n",
		"foo { n: -3 }\n",
		"foo {\n  name: \"x\"\n  srcs: [],\n}\n",
		"foo {\n",
		"foo { name: \"x\", } }\n",
		"foo { name: 'x' }\n",
		"foo { a: [1 2] }\n",
		"foo { : 1 }\n",
		"x = \n",
		"foo { a: b: c }\n",
		"foo { a: \"\\q\" }\n",
	}
	dir := t.TempDir()
	for i, src := range cases {
		p := filepath.Join(dir, "Android.bp")
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		out, bpErr := exec.Command(bpfmt, "-o", p).CombinedOutput()
		_, err := Parse("Android.bp", []byte(src))
		if (err == nil) != (bpErr == nil) {
			t.Errorf("case %d %q: provkit err=%v, bpfmt err=%v %s", i, src, err, bpErr, out)
		}
	}
}

// TestStringsBounded: variables that double at each step must not make Strings run for ever.
func TestStringsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("v0 = [\"a\"]\n")
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&b, "v%d = v%d + v%d\n", i, i-1, i-1)
	}
	b.WriteString("m { overrides: v39 }\n")
	f, err := Parse("x.bp", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Strings(f.Modules[0].Prop("overrides").Value); ok {
		t.Fatal("an exponentially large list was evaluated")
	}
}

// TestLineOfEveryModule: File.Line agrees with the position the parser recorded for every module,
// and with a plain count of newlines.
func TestLineOfEveryModule(t *testing.T) {
	src := []byte(strings.Repeat("a {}\n// c\nb {\n    name: \"x\",\n}\n", 50))
	f, err := Parse("x.bp", src)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range f.Modules {
		want := 1 + strings.Count(string(src[:m.Start]), "\n")
		if got := f.Line(m.Start); got != want || m.TypePos.Line != want || m.TypePos.Col != 1 {
			t.Fatalf("module at %d: Line %d, TypePos %+v, want line %d col 1", m.Start, got, m.TypePos, want)
		}
	}
	if p := f.Pos(len(src) + 10); p.Offset != len(src) || p.Line != 1+strings.Count(string(src), "\n") {
		t.Fatalf("Pos past the end = %+v", p)
	}
}

// BenchmarkModuleLines: the line of every module of a large file (linear, not quadratic, in the
// number of modules).
func BenchmarkModuleLines(b *testing.B) {
	f, err := Parse("x.bp", []byte(strings.Repeat("a{}\n", 80000)))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for _, m := range f.Modules {
			_ = f.Line(m.Start)
		}
	}
}
