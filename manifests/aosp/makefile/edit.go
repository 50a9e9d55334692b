package makefile

import (
	"errors"
	"strings"
)

// ErrNotAList is returned by ListInsertion for an assignment written on one physical line: a word
// cannot be added to it without rewriting an existing line.
var ErrNotAList = errors.New("the assignment is not a continued list")

// ListInsertion returns where and what to insert so that word becomes an entry of the continued
// list assignment s (e.g. "PRODUCT_PACKAGES += \" followed by one entry per line) without changing
// any existing byte: a new physical line "<indent><word> \" right after the assignment's first
// line, indented like the line that follows it.
func (f *File) ListInsertion(s *Stmt, word string) (offset int, text string, err error) {
	if s.Kind != Assign {
		return 0, "", errors.New("not an assignment")
	}
	phys := f.PhysLines(s)
	if len(phys) < 2 {
		return 0, "", ErrNotAList
	}
	first := string(f.Src[phys[0][0]:phys[0][1]])
	if strings.Contains(first, "#") {
		// A comment on the first line swallows the continuation; never insert into it.
		return 0, "", ErrNotAList
	}
	// The variable name and the operator must both sit on the first line.
	head := strings.TrimSuffix(strings.TrimRight(first, "\r\n"), "\\")
	if th := strings.TrimRight(head, " \t"); strings.HasSuffix(th, "$") || strings.HasSuffix(th, "\\") {
		return 0, "", ErrNotAList
	}
	// A reference left open on the first line ("X := $(foo \") would take the new line in as
	// an argument rather than a list entry.
	if checkBalanced(head) != "" {
		return 0, "", ErrNotAList
	}
	if a, ok := parseAssign(strings.TrimSpace(head)); !ok || a.Name != s.Name || a.Op != s.Op {
		return 0, "", ErrNotAList
	}
	second := string(f.Src[phys[1][0]:phys[1][1]])
	indent := second[:len(second)-len(strings.TrimLeft(second, " \t"))]
	if indent == "" {
		indent = "    "
	}
	return phys[1][0], indent + word + " \\\n", nil
}

// ListEntryLines returns the byte ranges of the physical lines of the continued assignment s that
// hold exactly word followed by a continuation ("<ws>word<ws>\"): the lines ListInsertion makes,
// which can be removed without touching any other line.
func (f *File) ListEntryLines(s *Stmt, word string) [][2]int {
	if s.Kind != Assign {
		return nil
	}
	phys := f.PhysLines(s)
	var out [][2]int
	for k := 1; k < len(phys)-1; k++ {
		l := strings.TrimRight(string(f.Src[phys[k][0]:phys[k][1]]), "\n")
		t := strings.TrimSpace(l)
		if !strings.HasSuffix(t, "\\") {
			continue
		}
		if strings.TrimSpace(strings.TrimSuffix(t, "\\")) == word {
			out = append(out, phys[k])
		}
	}
	return out
}
