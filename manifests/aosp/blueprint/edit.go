package blueprint

// Append returns src followed by text, separated by exactly one blank line, so that existing bytes
// are all kept and the added definitions start on a line of their own. It returns the offset where
// text starts in the result.
func Append(src []byte, text string) ([]byte, int) {
	out := append([]byte{}, src...)
	switch {
	case len(out) == 0:
	case out[len(out)-1] != '\n':
		out = append(out, '\n', '\n')
	case len(out) >= 2 && out[len(out)-2] == '\n':
	default:
		out = append(out, '\n')
	}
	at := len(out)
	return append(out, text...), at
}
