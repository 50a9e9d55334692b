package termtext

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Visible returns s with every byte or rune that a terminal would act on instead of print made
// visible: C0 and C1 controls and DEL as \xNN (\t, \n and \r as themselves escaped), invalid UTF-8
// bytes as \xNN, and Unicode format characters (bidirectional overrides, zero-width characters) as
// \uNNNN. A backslash is doubled only when it would otherwise read as one of these escapes, so
// ordinary paths stay readable. Printable text, including non-Latin scripts, is kept.
func Visible(s string) string { return visible(s, false) }

// VisibleLines is Visible but keeps newlines and tabs: for multi-line text such as an error that
// lists several problems, one per line. A carriage return, escape sequence or any other control
// is still made visible, so no line can be rewritten.
func VisibleLines(s string) string { return visible(s, true) }

func visible(s string, lines bool) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			if next := s[i+1:]; strings.HasPrefix(next, "x") || strings.HasPrefix(next, "u") ||
				strings.HasPrefix(next, "n") || strings.HasPrefix(next, "r") || strings.HasPrefix(next, "t") ||
				strings.HasPrefix(next, `\`) {
				b.WriteString(`\\`)
			} else {
				b.WriteByte('\\')
			}
		case lines && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.Is(unicode.Cf, r) || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// isPlain reports whether s is printable ASCII without backslashes: the common case, returned as is.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// Writer passes text through VisibleLines: wrap a human report's writer in it so that every name,
// label or message it prints from an APK, an image, a tree or a phone reaches the terminal as
// visible text. A UTF-8 sequence split across writes is held until it is complete.
type Writer struct {
	w    io.Writer
	tail []byte
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write escapes p and writes it; it reports len(p) written when the escaped text was written.
func (tw *Writer) Write(p []byte) (int, error) {
	buf := append(tw.tail, p...)
	tw.tail = nil
	// Hold back an incomplete UTF-8 sequence at the end (at most 3 bytes).
	cut := len(buf)
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-3; i-- {
		if utf8.RuneStart(buf[i]) {
			if !utf8.FullRune(buf[i:]) {
				cut = i
			}
			break
		}
	}
	tw.tail = append([]byte(nil), buf[cut:]...)
	if _, err := io.WriteString(tw.w, VisibleLines(string(buf[:cut]))); err != nil {
		return 0, err
	}
	return len(p), nil
}
