package blueprint

import "strings"

// Append returns src followed by text, keeping every existing byte, with text starting on a line of
// its own. When src does not end with a newline, one is put before text and text's own final
// newline is dropped, so the file keeps its shape (no final newline) and a caller can take exactly
// the added bytes back out. It returns the offset where the added bytes start.
func Append(src []byte, text string) ([]byte, int) {
	out := append([]byte{}, src...)
	at := len(out)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
		text = strings.TrimSuffix(text, "\n")
	}
	return append(out, text...), at
}
