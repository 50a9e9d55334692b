package jarsig

import (
	"strings"
	"unicode/utf8"
)

// attribute is one "Name: value" line of a manifest or signature file section, continuation
// lines joined.
type attribute struct{ name, value string }

// section is one section of a manifest or signature file.
type section struct {
	start, size int // byte range in the file, including the blank line that ends it
	name        string
	named       bool // the first attribute is "Name"
	attrs       []attribute
}

// get returns the first attribute with the given name, compared ignoring case.
func (s *section) get(name string) (string, bool) {
	if s == nil {
		return "", false
	}
	for _, a := range s.attrs {
		if strings.EqualFold(a.name, name) {
			return a.value, true
		}
	}
	return "", false
}

// manifestReader splits a manifest or signature file into sections exactly as apksig's
// ManifestParser does: lines end at CRLF, LF or a lone CR; a line starting with a space
// continues the attribute before it; a blank line ends a section; "Name: value" splits at the
// first ": " (so names may end and values start with spaces); a line without ": " is an
// attribute with that name and an empty value. Line lengths are not limited.
type manifestReader struct {
	data []byte
	off  int
	// pending is a line already read but not yet returned: an attribute line, or (when
	// pendingEnd) the end of the section.
	pending    []byte
	hasPending bool
	pendingEnd bool
}

// lineKind is what readAttr found.
type lineKind int

const (
	kindEOF lineKind = iota
	kindEnd          // blank line: end of section
	kindAttr
)

// readLine returns the next line without its terminator, ok false at the end of the input.
func (r *manifestReader) readLine() ([]byte, bool) {
	if r.off >= len(r.data) {
		return nil, false
	}
	start := r.off
	for i := start; i < len(r.data); i++ {
		switch r.data[i] {
		case '\n':
			r.off = i + 1
			return r.data[start:i], true
		case '\r':
			r.off = i + 1
			if i+1 < len(r.data) && r.data[i+1] == '\n' {
				r.off = i + 2
			}
			return r.data[start:i], true
		}
	}
	r.off = len(r.data)
	return r.data[start:], true
}

func (r *manifestReader) setPendingLine(l []byte) {
	r.pending, r.hasPending, r.pendingEnd = l, true, false
}

func (r *manifestReader) setPendingEnd() {
	r.pending, r.hasPending, r.pendingEnd = nil, true, true
}

func (r *manifestReader) takePending() {
	r.pending, r.hasPending, r.pendingEnd = nil, false, false
}

// readAttr returns the next attribute (continuation lines joined), or the end of a section, or
// the end of the input.
func (r *manifestReader) readAttr() (lineKind, []byte) {
	if r.hasPending && r.pendingEnd {
		r.takePending()
		return kindEnd, nil
	}
	line, ok := r.readLine()
	if !ok {
		if r.hasPending {
			p := r.pending
			r.takePending()
			return kindAttr, p
		}
		return kindEOF, nil
	}
	if len(line) == 0 {
		if r.hasPending {
			p := r.pending
			r.setPendingEnd()
			return kindAttr, p
		}
		return kindEnd, nil
	}
	var attr []byte
	if !r.hasPending {
		attr = append([]byte(nil), line...)
	} else {
		if line[0] != ' ' {
			p := r.pending
			r.setPendingLine(line)
			return kindAttr, p
		}
		attr = append(append([]byte(nil), r.pending...), line[1:]...)
		r.takePending()
	}
	for {
		line, ok = r.readLine()
		switch {
		case !ok:
			return kindAttr, attr
		case len(line) == 0:
			r.setPendingEnd()
			return kindAttr, attr
		case line[0] == ' ':
			attr = append(attr, line[1:]...)
		default:
			r.setPendingLine(line)
			return kindAttr, attr
		}
	}
}

// readSection returns the next section, or nil at the end of the input. Blank lines before a
// section are skipped and not part of it.
func (r *manifestReader) readSection() *section {
	var start int
	var first []byte
	for {
		start = r.off
		kind, attr := r.readAttr()
		if kind == kindEOF {
			return nil
		}
		if kind == kindAttr {
			first = attr
			break
		}
	}
	s := &section{start: start}
	s.attrs = append(s.attrs, parseAttr(first))
	for {
		kind, attr := r.readAttr()
		if kind != kindAttr {
			break
		}
		s.attrs = append(s.attrs, parseAttr(attr))
	}
	s.size = r.off - start
	if strings.EqualFold(s.attrs[0].name, "Name") {
		s.name, s.named = s.attrs[0].value, true
	}
	return s
}

// readSections returns all remaining sections.
func (r *manifestReader) readSections() []*section {
	var out []*section
	for s := r.readSection(); s != nil; s = r.readSection() {
		out = append(out, s)
	}
	return out
}

func parseAttr(b []byte) attribute {
	s := javaString(b)
	if i := strings.Index(s, ": "); i >= 0 {
		return attribute{name: s[:i], value: s[i+2:]}
	}
	return attribute{name: s}
}

// javaString decodes UTF-8 as Java's String constructor does, replacing invalid bytes with
// U+FFFD, so that names from the manifest and from the ZIP compare as they do in apksig.
func javaString(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		sb.WriteRune(r)
		b = b[n:]
	}
	return sb.String()
}
