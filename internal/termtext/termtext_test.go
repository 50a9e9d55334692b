package termtext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestVisible(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"google/redfin/redfin:14/UQ1A/123:user/release-keys", "google/redfin/redfin:14/UQ1A/123:user/release-keys"},
		{"Pixel\x1b[2K\rPASS", `Pixel\x1b[2K\rPASS`},
		{"a\nb\tc", `a\nb\tc`},
		{"\x1b]0;title\x07", `\x1b]0;title\x07`},
		{"del\x7f", `del\x7f`},
		{"c1\u009b31m", `c1\x9b31m`},
		{"bidi\u202eevil", `bidi\u202eevil`},
		{"zero\u200bwidth", `zero\u200bwidth`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"Телефон 手机", "Телефон 手机"},
		{`C:\path\file`, `C:\path\file`},
		{`lit\x1b`, `lit\\x1b`},
	} {
		if got := Visible(tc.in); got != tc.want {
			t.Errorf("Visible(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzVisible(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[31mred", "\u202e", "\xff\xfe", `\x41`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := Visible(s)
		if !utf8.ValidString(v) {
			t.Fatalf("Visible(%q) = %q is not valid UTF-8", s, v)
		}
		for _, r := range v {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				t.Fatalf("Visible(%q) = %q still holds control %U", s, v, r)
			}
		}
		if strings.ContainsRune(v, 0x202e) {
			t.Fatalf("Visible(%q) kept a bidi override", s)
		}
	})
}

func TestVisibleLinesAndWriter(t *testing.T) {
	if got := VisibleLines("a\n\tb\x1b[2K\rc"); got != "a\n\tb\\x1b[2K\\rc" {
		t.Fatalf("VisibleLines = %q", got)
	}
	var b strings.Builder
	w := NewWriter(&b)
	msg := "Тел\x1bефон\n"
	for i := 0; i < len(msg); i++ { // one byte at a time: runes split across writes
		if _, err := w.Write([]byte{msg[i]}); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.String(); got != "Тел\\x1bефон\n" {
		t.Fatalf("Writer wrote %q", got)
	}
}
