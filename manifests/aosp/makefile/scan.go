package makefile

import (
	"bytes"
	"fmt"
	"strings"
)

// Kind classifies a statement.
type Kind int

// Statement kinds.
const (
	Blank     Kind = iota // only whitespace
	Comment               // only a comment
	Assign                // VAR op value
	Directive             // ifeq, else, endif, include, export, ...
	Define                // define VAR ... endef (the whole block)
	Rule                  // targets: prerequisites
	Recipe                // a tab-led line in a rule's recipe
	Expr                  // a line made only of references, e.g. $(call inherit-product, x.mk)
)

func (k Kind) String() string {
	return [...]string{"blank", "comment", "assignment", "directive", "define", "rule", "recipe", "expression"}[k]
}

// CondRef places a statement inside one conditional: the index (in File.Stmts) of the if-statement
// that opened it, and the branch: 0 for the first branch, 1 after the first else, and so on.
type CondRef struct {
	If     int
	Branch int
}

// Stmt is one statement: a logical line (or a define block) and what make sees in it.
type Stmt struct {
	Kind Kind
	// Start and End are byte offsets in File.Src: Start is the first byte of the first physical
	// line, End the byte after the last physical line's newline (or the end of the file).
	Start, End int
	// Line and EndLine are the 1-based numbers of the first and last physical lines.
	Line, EndLine int
	// Text is the logical line with its continuations joined (backslash-newline and the whitespace
	// around it become one space) and its comment removed. For Define it is the "define" line.
	Text string

	// Assign: Name is the variable name (unexpanded), Op one of "=", ":=", "::=", ":::=", "?=",
	// "+=", "!=", Value the right-hand side with surrounding whitespace trimmed. Prefix holds
	// "override", "export" or "private" when present.
	Name, Op, Value string
	Prefix          []string

	// Directive: Word is the directive ("ifeq", "ifneq", "ifdef", "ifndef", "else", "endif",
	// "include", "-include", "sinclude", "export", "unexport", "vpath", "undefine", "override"),
	// Args what follows it. For "else ifeq (...)" Word is "else" and ElseIf holds "ifeq".
	Word, Args, ElseIf string

	// Cond is the conditional context, outermost first; empty for a top-level statement. The
	// statements of one branch share one slice: read it, never modify it.
	Cond []CondRef
}

// Conditional reports whether the statement sits inside any conditional.
func (s *Stmt) Conditional() bool { return len(s.Cond) > 0 }

// IsIf reports whether the statement opens a conditional (ifeq, ifneq, ifdef, ifndef).
func (s *Stmt) IsIf() bool {
	return s.Kind == Directive && isIfWord(s.Word)
}

func isIfWord(w string) bool { return w == "ifeq" || w == "ifneq" || w == "ifdef" || w == "ifndef" }

// File is a scanned makefile.
type File struct {
	Name  string
	Src   []byte
	Stmts []Stmt
	// Warnings are suspicious but valid constructs (file:line: message), e.g. a backslash followed
	// by spaces that GNU make does not treat as a continuation.
	Warnings []string
}

// SyntaxError is a structural error that GNU make would reject too.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// maxNesting bounds conditional nesting; real makefiles stay far below it.
const maxNesting = 256

// maxCondRefs bounds the conditional contexts one file may make the scanner build: each if and
// else costs one context as deep as its nesting (the statements of a branch share it). Real
// makefiles need a few thousand; a file of thousands of else lines 256 levels deep would need
// gigabytes.
const maxCondRefs = 1 << 20

type physLine struct {
	start, end int // end includes the newline
	text       string
	num        int
}

func splitPhys(src []byte) []physLine {
	out := make([]physLine, 0, bytes.Count(src, []byte{'\n'})+1)
	start, num := 0, 1
	for i, c := range src {
		if c == '\n' {
			out = append(out, physLine{start: start, end: i + 1, text: string(src[start:i]), num: num})
			start = i + 1
			num++
		}
	}
	if start < len(src) {
		out = append(out, physLine{start: start, end: len(src), text: string(src[start:]), num: num})
	}
	return out
}

// continues reports whether a physical line (without its newline) ends with an odd number of
// backslashes, which is how GNU make decides that the next line continues it.
func continues(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// joinLogical joins physical lines [i, j] into make's logical text: each backslash-newline and the
// whitespace around it become a single space.
func joinLogical(ls []physLine) string {
	if len(ls) == 1 {
		return ls[0].text
	}
	var b strings.Builder
	for k, l := range ls {
		t := l.text
		if k > 0 {
			t = strings.TrimLeft(t, " \t")
		}
		if k < len(ls)-1 {
			t = strings.TrimRight(t[:len(t)-1], " \t")
			b.WriteString(t)
			b.WriteByte(' ')
			continue
		}
		b.WriteString(t)
	}
	return b.String()
}

// stripComment removes a comment: the first '#' not escaped by a backslash. Inside a reference
// ($(...)) a '#' still starts a comment in GNU make, so references are not skipped.
func stripComment(s string) (code string, hadComment bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != '#' {
			continue
		}
		n := 0
		for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return s[:i], true
		}
	}
	return s, false
}

// Parse scans src, naming it name in errors.
func Parse(name string, src []byte) (*File, error) {
	f := &File{Name: name, Src: src}
	lines := splitPhys(src)
	f.Stmts = make([]Stmt, 0, len(lines))
	var stack []int    // indices of open if-statements
	var hadElse []bool // whether each open conditional has had its plain else
	var cond []CondRef // the context of the statements of the current branch
	refs := 0          // CondRefs built so far, bounded by maxCondRefs
	// enter makes the context of a branch: the if-statement's own context plus this branch.
	enter := func(line, ifIdx, branch int) error {
		outer := f.Stmts[ifIdx].Cond
		if refs += len(outer) + 1; refs > maxCondRefs {
			return &SyntaxError{name, line, fmt.Sprintf("too many conditional branches this deep (their nesting depths add up to more than %d; real makefiles stay far below that)", maxCondRefs)}
		}
		cond = append(outer[:len(outer):len(outer)], CondRef{If: ifIdx, Branch: branch})
		return nil
	}
	inRule := false // a rule has been seen and no non-recipe line since
	for i := 0; i < len(lines); {
		first := i
		for i < len(lines)-1 && continues(lines[i].text) {
			i++
		}
		group := lines[first : i+1]
		i++
		last := group[len(group)-1]
		if t := last.text; strings.HasSuffix(strings.TrimRight(t, " \t"), "\\") && !continues(t) && strings.TrimRight(t, " \t") != t {
			f.Warnings = append(f.Warnings, fmt.Sprintf("%s:%d: a backslash followed by spaces or tabs does not continue the line in GNU make; the next line starts a new statement", name, last.num))
		}
		st := Stmt{Start: group[0].start, End: last.end, Line: group[0].num, EndLine: last.num}
		st.Cond = cond
		raw := joinLogical(group)
		code, hadComment := stripComment(raw)
		st.Text = code
		trimmed := strings.TrimSpace(code)

		// A tab-led line right after a rule belongs to its recipe.
		if inRule && strings.HasPrefix(group[0].text, "\t") {
			st.Kind = Recipe
			f.Stmts = append(f.Stmts, st)
			continue
		}
		if trimmed == "" {
			if hadComment {
				st.Kind = Comment
			} else {
				st.Kind = Blank
			}
			f.Stmts = append(f.Stmts, st)
			continue
		}
		word, rest := firstWord(trimmed)
		if isDirectiveWord(word) && !looksLikeAssignment(rest) {
			st.Kind = Directive
			st.Word, st.Args = word, strings.TrimSpace(rest)
			switch {
			case isIfWord(word):
				if len(stack) >= maxNesting {
					return nil, &SyntaxError{name, st.Line, fmt.Sprintf("conditionals nested deeper than %d", maxNesting)}
				}
				if err := checkCondArgs(word, st.Args); err != "" {
					return nil, &SyntaxError{name, st.Line, err}
				}
				f.Stmts = append(f.Stmts, st)
				stack = append(stack, len(f.Stmts)-1)
				hadElse = append(hadElse, false)
				if err := enter(st.Line, len(f.Stmts)-1, 0); err != nil {
					return nil, err
				}
				continue
			case word == "else":
				if len(stack) == 0 {
					return nil, &SyntaxError{name, st.Line, "else without a matching ifeq/ifneq/ifdef/ifndef"}
				}
				if hadElse[len(hadElse)-1] {
					return nil, &SyntaxError{name, st.Line, fmt.Sprintf("only one else per conditional: the %s at line %d already had one", f.Stmts[stack[len(stack)-1]].Word, f.Stmts[stack[len(stack)-1]].Line)}
				}
				hadElse[len(hadElse)-1] = st.Args == ""
				if st.Args != "" {
					w2, r2 := firstWord(st.Args)
					if !isIfWord(w2) {
						return nil, &SyntaxError{name, st.Line, fmt.Sprintf("expected ifeq, ifneq, ifdef or ifndef after else, found %q", w2)}
					}
					if err := checkCondArgs(w2, strings.TrimSpace(r2)); err != "" {
						return nil, &SyntaxError{name, st.Line, err}
					}
					st.ElseIf, st.Args = w2, strings.TrimSpace(r2)
				}
				top := stack[len(stack)-1]
				st.Cond = f.Stmts[top].Cond
				f.Stmts = append(f.Stmts, st)
				if err := enter(st.Line, top, cond[len(cond)-1].Branch+1); err != nil {
					return nil, err
				}
				continue
			case word == "endif":
				if len(stack) == 0 {
					return nil, &SyntaxError{name, st.Line, "endif without a matching ifeq/ifneq/ifdef/ifndef"}
				}
				cond = f.Stmts[stack[len(stack)-1]].Cond
				stack, hadElse = stack[:len(stack)-1], hadElse[:len(hadElse)-1]
				st.Cond = cond
				f.Stmts = append(f.Stmts, st)
				continue
			case word == "define" || ((word == "override" || word == "export" || word == "private") && strings.HasPrefix(strings.TrimSpace(rest), "define")):
				// define VAR [op] ... endef: the body is opaque.
				end, err := findEndef(name, lines, i, st.Line)
				if err != nil {
					return nil, err
				}
				st.Kind = Define
				st.Word = "define"
				dw, dr := firstWord(strings.TrimSpace(rest))
				if word != "define" {
					st.Prefix = []string{word}
					dw, dr = firstWord(strings.TrimSpace(dr))
				}
				st.Name = dw
				st.Op = strings.TrimSpace(dr)
				st.End, st.EndLine = lines[end].end, lines[end].num
				i = end + 1
				f.Stmts = append(f.Stmts, st)
				continue
			case word == "endef":
				return nil, &SyntaxError{name, st.Line, "endef without a matching define"}
			case word == "override" || word == "export" || word == "private" || word == "unexport":
				// "export VAR := x" is an assignment with a prefix; "export VAR" is a directive.
				if a, ok := parseAssign(trimmed); ok {
					a.Start, a.End, a.Line, a.EndLine, a.Cond, a.Text = st.Start, st.End, st.Line, st.EndLine, st.Cond, st.Text
					f.Stmts = append(f.Stmts, a)
					inRule = false
					continue
				}
			}
			if err := checkBalanced(st.Args); err != "" {
				return nil, &SyntaxError{name, st.Line, err}
			}
			f.Stmts = append(f.Stmts, st)
			inRule = false
			continue
		}
		if err := checkBalanced(trimmed); err != "" {
			return nil, &SyntaxError{name, st.Line, err}
		}
		if a, ok := parseAssign(trimmed); ok {
			a.Start, a.End, a.Line, a.EndLine, a.Cond, a.Text = st.Start, st.End, st.Line, st.EndLine, st.Cond, st.Text
			f.Stmts = append(f.Stmts, a)
			inRule = false
			continue
		}
		rem := stripRefs(trimmed)
		switch {
		case strings.TrimSpace(rem) == "":
			st.Kind = Expr
			inRule = false
		case topLevelColon(trimmed):
			if strings.HasPrefix(group[0].text, "\t") && !inRule {
				return nil, &SyntaxError{name, st.Line, "recipe commences before first target (a tab-led line that is not an assignment or directive)"}
			}
			st.Kind = Rule
			inRule = true
		default:
			if strings.HasPrefix(group[0].text, "\t") {
				return nil, &SyntaxError{name, st.Line, "recipe commences before first target (a tab-led line that is not an assignment or directive)"}
			}
			return nil, &SyntaxError{name, st.Line, fmt.Sprintf("missing separator: expected an assignment (=, :=, +=, ?=), a rule (target: prerequisites), a directive or a $(...) line, found %q", clip(trimmed))}
		}
		f.Stmts = append(f.Stmts, st)
	}
	if len(stack) > 0 {
		open := f.Stmts[stack[len(stack)-1]]
		return nil, &SyntaxError{name, open.Line, fmt.Sprintf("missing endif: the %s opened here is never closed", open.Word)}
	}
	return f, nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

func firstWord(s string) (string, string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

func isDirectiveWord(w string) bool {
	switch w {
	case "ifeq", "ifneq", "ifdef", "ifndef", "else", "endif", "include", "-include", "sinclude",
		"define", "endef", "export", "unexport", "override", "private", "vpath", "undefine":
		return true
	}
	return false
}

// looksLikeAssignment reports whether the text after a directive-like first word makes the line an
// assignment to a variable of that name ("include := x").
func looksLikeAssignment(rest string) bool {
	r := strings.TrimLeft(rest, " \t")
	for _, op := range []string{"=", ":=", "::=", ":::=", "+=", "?=", "!="} {
		if strings.HasPrefix(r, op) {
			return true
		}
	}
	return false
}

func checkCondArgs(word, args string) string {
	if word == "ifdef" || word == "ifndef" {
		if strings.TrimSpace(args) == "" {
			return fmt.Sprintf("%s needs a variable name", word)
		}
		return checkBalanced(args)
	}
	if _, _, ok := SplitCondArgs(args); !ok {
		return fmt.Sprintf("%s: expected (a,b), \"a\" \"b\" or 'a' 'b', found %q", word, clip(args))
	}
	return ""
}

// SplitCondArgs splits the arguments of ifeq/ifneq: "(a,b)", "(a, b)", "\"a\" \"b\"", "'a' 'b'"
// (and mixed quotes). The comma that separates is the first one outside references.
func SplitCondArgs(args string) (a, b string, ok bool) {
	args = strings.TrimSpace(args)
	if strings.HasPrefix(args, "(") {
		if !strings.HasSuffix(args, ")") {
			return "", "", false
		}
		inner := args[1 : len(args)-1]
		depth := 0
		for i := 0; i < len(inner); i++ {
			switch inner[i] {
			case '(', '{':
				depth++
			case ')', '}':
				depth--
			case ',':
				if depth == 0 {
					return strings.TrimSpace(inner[:i]), strings.TrimSpace(inner[i+1:]), true
				}
			}
		}
		return "", "", false
	}
	q1, r, ok1 := quoted(args)
	if !ok1 {
		return "", "", false
	}
	q2, r, ok2 := quoted(strings.TrimSpace(r))
	if !ok2 || strings.TrimSpace(r) != "" {
		return "", "", false
	}
	return q1, q2, true
}

func quoted(s string) (string, string, bool) {
	if s == "" || (s[0] != '"' && s[0] != '\'') {
		return "", "", false
	}
	j := strings.IndexByte(s[1:], s[0])
	if j < 0 {
		return "", "", false
	}
	return s[1 : 1+j], s[2+j:], true
}

func findEndef(name string, lines []physLine, from, openLine int) (int, error) {
	depth := 1
	for k := from; k < len(lines); k++ {
		t := strings.TrimSpace(lines[k].text)
		w, _ := firstWord(t)
		switch {
		case w == "define":
			depth++
		case w == "endef" || strings.HasPrefix(t, "endef#"):
			depth--
			if depth == 0 {
				return k, nil
			}
		}
	}
	return 0, &SyntaxError{name, openLine, "missing endef: the define opened here is never closed"}
}

// checkBalanced verifies that every $( and ${ is closed.
func checkBalanced(s string) string {
	var stack []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '$' && i+1 < len(s) {
			switch s[i+1] {
			case '(':
				stack = append(stack, ')')
				i++
				continue
			case '{':
				stack = append(stack, '}')
				i++
				continue
			case '$':
				i++
				continue
			}
		}
		if len(stack) > 0 {
			switch c {
			case '(':
				if stack[len(stack)-1] == ')' {
					stack = append(stack, ')')
				}
			case '{':
				if stack[len(stack)-1] == '}' {
					stack = append(stack, '}')
				}
			case ')', '}':
				if stack[len(stack)-1] == c {
					stack = stack[:len(stack)-1]
				}
			}
		}
	}
	if len(stack) > 0 {
		return fmt.Sprintf("unterminated variable reference: expected %q", string(stack[len(stack)-1]))
	}
	return ""
}

// refEnd returns the index just past the reference that starts at s[i] == '$', or i+1 for "$$"
// and single-letter references.
func refEnd(s string, i int) int {
	if i+1 >= len(s) {
		return len(s)
	}
	open := s[i+1]
	var close byte
	switch open {
	case '(':
		close = ')'
	case '{':
		close = '}'
	default:
		return i + 2
	}
	depth := 0
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case open:
			depth++
		case close:
			depth--
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(s)
}

// stripRefs removes every variable reference and function call from s.
func stripRefs(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '$' {
			i = refEnd(s, i)
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// topLevelColon reports whether s has a ':' outside references.
func topLevelColon(s string) bool { return strings.Contains(stripRefs(s), ":") }

// parseAssign recognises "[override|export|private]... NAME op value".
func parseAssign(s string) (Stmt, bool) {
	var prefix []string
	for {
		w, r := firstWord(s)
		if (w == "override" || w == "export" || w == "private") && !looksLikeAssignment(r) && strings.TrimSpace(r) != "" {
			prefix = append(prefix, w)
			s = strings.TrimSpace(r)
			continue
		}
		break
	}
	// Find the first operator outside references; a ':' that is not part of an operator first
	// makes the line a rule.
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '$':
			i = refEnd(s, i) - 1
		case '=':
			return mkAssign(prefix, s[:i], "=", s[i+1:])
		case ':':
			for _, op := range []string{":::=", "::=", ":="} {
				if strings.HasPrefix(s[i:], op) {
					return mkAssign(prefix, s[:i], op, s[i+len(op):])
				}
			}
			return Stmt{}, false
		case '+', '?', '!':
			if i+1 < len(s) && s[i+1] == '=' {
				return mkAssign(prefix, s[:i], string(c)+"=", s[i+2:])
			}
		}
	}
	return Stmt{}, false
}

func mkAssign(prefix []string, name, op, value string) (Stmt, bool) {
	name = strings.TrimSpace(name)
	if name == "" || strings.ContainsAny(stripRefs(name), " \t") {
		return Stmt{}, false
	}
	return Stmt{Kind: Assign, Name: name, Op: op, Value: strings.TrimSpace(value), Prefix: prefix}, true
}

// Words splits a value into whitespace-separated words (make's word list), keeping references
// such as $(call x, y) whole.
func Words(s string) []string {
	var out []string
	start := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
		if c == '$' {
			i = refEnd(s, i) - 1
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// Call parses an expression line of the form $(call NAME, args...) and returns NAME and the
// arguments (trimmed). ok is false for anything else.
func Call(text string) (name string, args []string, ok bool) {
	t := strings.TrimSpace(text)
	if !strings.HasPrefix(t, "$(call ") && !strings.HasPrefix(t, "${call ") && !strings.HasPrefix(t, "$(call\t") {
		return "", nil, false
	}
	if refEnd(t, 0) != len(t) || !closed(t, 0, len(t)) {
		return "", nil, false
	}
	inner := t[len("$(call ") : len(t)-1]
	parts := splitArgs(inner)
	if len(parts) == 0 {
		return "", nil, false
	}
	name = strings.TrimSpace(parts[0])
	for _, p := range parts[1:] {
		args = append(args, strings.TrimSpace(p))
	}
	return name, args, true
}

// splitArgs splits function arguments at top-level commas.
func splitArgs(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '{':
			depth++
		case ')', '}':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// PhysLines returns the physical lines of a statement as byte ranges [start, end) in f.Src,
// newline included.
func (f *File) PhysLines(s *Stmt) [][2]int {
	var out [][2]int
	start := s.Start
	for i := s.Start; i < s.End; i++ {
		if f.Src[i] == '\n' {
			out = append(out, [2]int{start, i + 1})
			start = i + 1
		}
	}
	if start < s.End {
		out = append(out, [2]int{start, s.End})
	}
	return out
}
