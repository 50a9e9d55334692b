package blueprint

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Pos is a position in a file: byte offset, 1-based line and column.
type Pos struct{ Offset, Line, Col int }

// SyntaxError says where a file stops being Blueprint and what was expected there.
type SyntaxError struct {
	File string
	Pos  Pos
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Col, e.Msg)
}

// Expr is a value.
type Expr interface {
	// Span returns the byte offsets [start, end) of the value in the file.
	Span() (int, int)
}

type span struct{ start, end int }

func (s span) Span() (int, int) { return s.start, s.end }

// String is a string literal; Value is unquoted.
type String struct {
	span
	Value string
}

// Int is an integer literal.
type Int struct {
	span
	Value int64
}

// Bool is true or false.
type Bool struct {
	span
	Value bool
}

// Variable references a file-level assignment.
type Variable struct {
	span
	Name string
}

// List is [a, b, ...].
type List struct {
	span
	Values []Expr
}

// Map is { k: v, ... }.
type Map struct {
	span
	Props []*Property
}

// Operator is a + b.
type Operator struct {
	span
	Left, Right Expr
}

// Unset is the keyword unset (inside select cases).
type Unset struct{ span }

// Select is select(condition, { cases }). Its cases' values are kept; conditions and patterns are
// only checked for shape.
type Select struct {
	span
	Cases []Expr
}

// Property is name: value.
type Property struct {
	Name    string
	NamePos Pos
	Value   Expr
}

// Module is type { properties }.
type Module struct {
	Type       string
	TypePos    Pos
	Start, End int // [type name, after the closing brace)
	Props      []*Property
	// RBrace is the offset of the closing brace.
	RBrace int
}

// Assignment is name = value or name += value at file level.
type Assignment struct {
	Name       string
	NamePos    Pos
	Op         string
	Value      Expr
	Start, End int
}

// Comment is a // or /* */ comment.
type Comment struct {
	Start, End int
	Text       string
}

// File is a parsed Android.bp.
type File struct {
	Name        string
	Src         []byte
	Modules     []*Module
	Assignments []*Assignment
	Comments    []Comment
	// Defs lists modules and assignments in file order (*Module or *Assignment).
	Defs []any

	lines []int // offsets where lines start
}

func lineStarts(src []byte) []int {
	out := []int{0}
	for i, c := range src {
		if c == '\n' {
			out = append(out, i+1)
		}
	}
	return out
}

// Prop returns the module's property called name, or nil.
func (m *Module) Prop(name string) *Property {
	for _, p := range m.Props {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Name returns the module's name property when it is a plain string.
func (m *Module) Name() string {
	if p := m.Prop("name"); p != nil {
		if s, ok := p.Value.(*String); ok {
			return s.Value
		}
	}
	return ""
}

// Bool returns the value of a boolean property, false when absent or not a literal.
func (m *Module) Bool(name string) bool {
	if p := m.Prop(name); p != nil {
		if b, ok := p.Value.(*Bool); ok {
			return b.Value
		}
	}
	return false
}

// Line returns the 1-based line of a byte offset.
func (f *File) Line(off int) int { return f.Pos(off).Line }

// Pos returns the position of a byte offset (clamped to the file): a binary search in the table
// of line starts Parse builds, not a scan of the file.
func (f *File) Pos(off int) Pos {
	off = min(max(off, 0), len(f.Src))
	if f.lines == nil { // a File not made by Parse
		f.lines = lineStarts(f.Src)
	}
	// the last line start <= off
	i := sort.Search(len(f.lines), func(i int) bool { return f.lines[i] > off }) - 1
	return Pos{Offset: off, Line: i + 1, Col: off - f.lines[i] + 1}
}

// Strings evaluates a value expected to be a list of strings (or a string): literals, "+"
// concatenation and variables assigned earlier in the file. ok is false when the value holds
// anything else (a select, an unknown variable).
func (f *File) Strings(e Expr) ([]string, bool) {
	steps := 0
	return f.strs(e, 0, &steps)
}

// maxStringsSteps bounds the work of one Strings call: "b = a + a", "c = b + b", ... doubles.
const maxStringsSteps = 100000

func (f *File) strs(e Expr, depth int, steps *int) ([]string, bool) {
	*steps++
	if depth > 32 || *steps > maxStringsSteps {
		return nil, false
	}
	switch v := e.(type) {
	case *String:
		return []string{v.Value}, true
	case *List:
		var out []string
		ok := true
		for _, x := range v.Values {
			s, k := f.strs(x, depth+1, steps)
			out = append(out, s...)
			ok = ok && k
		}
		return out, ok
	case *Operator:
		a, ok1 := f.strs(v.Left, depth+1, steps)
		b, ok2 := f.strs(v.Right, depth+1, steps)
		return append(a, b...), ok1 && ok2
	case *Variable:
		var out []string
		found := false
		ok := true
		for _, a := range f.Assignments {
			if a.Name != v.Name || a.Start >= v.start {
				continue
			}
			s, k := f.strs(a.Value, depth+1, steps)
			if a.Op == "=" {
				out = nil
			}
			out = append(out, s...)
			found, ok = true, ok && k
		}
		return out, found && ok
	}
	return nil, false
}

type parser struct {
	name string
	src  string
	pos  int
	file *File
}

// maxDepth bounds the nesting of lists and maps.
const maxDepth = 200

// Parse parses src, naming it name in errors.
func Parse(name string, src []byte) (*File, error) {
	p := &parser{name: name, src: string(src), file: &File{Name: name, Src: src, lines: lineStarts(src)}}
	if err := p.parseFile(); err != nil {
		return nil, err
	}
	return p.file, nil
}

func (p *parser) position(off int) Pos { return p.file.Pos(off) }

func (p *parser) errorf(off int, format string, args ...any) error {
	return &SyntaxError{File: p.name, Pos: p.position(off), Msg: fmt.Sprintf(format, args...)}
}

// skip skips whitespace and comments, recording comments.
func (p *parser) skip() error {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.pos++
		case strings.HasPrefix(p.src[p.pos:], "//"):
			end := strings.IndexByte(p.src[p.pos:], '\n')
			if end < 0 {
				end = len(p.src) - p.pos
			}
			p.file.Comments = append(p.file.Comments, Comment{Start: p.pos, End: p.pos + end, Text: p.src[p.pos : p.pos+end]})
			p.pos += end
		case strings.HasPrefix(p.src[p.pos:], "/*"):
			end := strings.Index(p.src[p.pos+2:], "*/")
			if end < 0 {
				return p.errorf(p.pos, "unterminated /* comment: expected */")
			}
			e := p.pos + 2 + end + 2
			p.file.Comments = append(p.file.Comments, Comment{Start: p.pos, End: e, Text: p.src[p.pos:e]})
			p.pos = e
		default:
			return nil
		}
	}
	return nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdent(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func (p *parser) ident() string {
	start := p.pos
	if p.pos < len(p.src) && isIdentStart(p.src[p.pos]) {
		p.pos++
		for p.pos < len(p.src) && isIdent(p.src[p.pos]) {
			p.pos++
		}
	}
	return p.src[start:p.pos]
}

func (p *parser) describe() string {
	if p.pos >= len(p.src) {
		return "end of file"
	}
	c := p.src[p.pos]
	if isIdentStart(c) {
		save := p.pos
		id := p.ident()
		p.pos = save
		return fmt.Sprintf("%q", id)
	}
	return fmt.Sprintf("%q", string(c))
}

func (p *parser) expect(c byte, what string) error {
	if err := p.skip(); err != nil {
		return err
	}
	if p.pos >= len(p.src) || p.src[p.pos] != c {
		return p.errorf(p.pos, "expected %s, found %s", what, p.describe())
	}
	p.pos++
	return nil
}

func (p *parser) parseFile() error {
	for {
		if err := p.skip(); err != nil {
			return err
		}
		if p.pos >= len(p.src) {
			return nil
		}
		start := p.pos
		if !isIdentStart(p.src[p.pos]) {
			return p.errorf(p.pos, "expected a module type or a variable name, found %s", p.describe())
		}
		name := p.ident()
		namePos := p.position(start)
		if err := p.skip(); err != nil {
			return err
		}
		switch {
		case p.pos < len(p.src) && p.src[p.pos] == '{':
			m := &Module{Type: name, TypePos: namePos, Start: start}
			p.pos++
			props, err := p.parseProps('}', 0)
			if err != nil {
				return err
			}
			m.Props = props
			m.RBrace = p.pos - 1
			m.End = p.pos
			p.file.Modules = append(p.file.Modules, m)
			p.file.Defs = append(p.file.Defs, m)
		case strings.HasPrefix(p.src[p.pos:], "+="), p.pos < len(p.src) && p.src[p.pos] == '=':
			op := "="
			if p.src[p.pos] == '+' {
				op = "+="
			}
			p.pos += len(op)
			v, err := p.parseExpr(0)
			if err != nil {
				return err
			}
			_, end := v.Span()
			a := &Assignment{Name: name, NamePos: namePos, Op: op, Value: v, Start: start, End: end}
			if op == "=" {
				for _, prev := range p.file.Assignments {
					if prev.Name == name {
						return p.errorf(start, "variable %q is already assigned at line %d; use += to append", name, prev.NamePos.Line)
					}
				}
			}
			p.file.Assignments = append(p.file.Assignments, a)
			p.file.Defs = append(p.file.Defs, a)
		default:
			return p.errorf(p.pos, "expected '{' to start module %q or '=' / '+=' to assign variable %q, found %s", name, name, p.describe())
		}
	}
}

// parseProps parses "name: value," pairs up to the closing byte (consumed).
func (p *parser) parseProps(close byte, depth int) ([]*Property, error) {
	var props []*Property
	seen := map[string]int{}
	for {
		if err := p.skip(); err != nil {
			return nil, err
		}
		if p.pos < len(p.src) && p.src[p.pos] == close {
			p.pos++
			return props, nil
		}
		if p.pos >= len(p.src) || !isIdentStart(p.src[p.pos]) {
			return nil, p.errorf(p.pos, "expected a property name or %q, found %s", string(close), p.describe())
		}
		start := p.pos
		name := p.ident()
		if line, dup := seen[name]; dup {
			return nil, p.errorf(start, "property %q is already set at line %d", name, line)
		}
		seen[name] = p.position(start).Line
		if err := p.expect(':', fmt.Sprintf("':' after property %q", name)); err != nil {
			return nil, err
		}
		v, err := p.parseExpr(depth + 1)
		if err != nil {
			return nil, err
		}
		props = append(props, &Property{Name: name, NamePos: p.position(start), Value: v})
		if err := p.skip(); err != nil {
			return nil, err
		}
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.src) && p.src[p.pos] == close {
			p.pos++
			return props, nil
		}
		return nil, p.errorf(p.pos, "expected ',' or %q after the value of %q, found %s", string(close), name, p.describe())
	}
}

func (p *parser) parseExpr(depth int) (Expr, error) {
	if depth > maxDepth {
		return nil, p.errorf(p.pos, "values nested deeper than %d", maxDepth)
	}
	left, err := p.parseOperand(depth)
	if err != nil {
		return nil, err
	}
	for {
		if err := p.skip(); err != nil {
			return nil, err
		}
		if p.pos >= len(p.src) || p.src[p.pos] != '+' || strings.HasPrefix(p.src[p.pos:], "+=") {
			return left, nil
		}
		p.pos++
		right, err := p.parseOperand(depth)
		if err != nil {
			return nil, err
		}
		s, _ := left.Span()
		_, e := right.Span()
		left = &Operator{span: span{s, e}, Left: left, Right: right}
	}
}

func (p *parser) parseOperand(depth int) (Expr, error) {
	if depth > maxDepth {
		return nil, p.errorf(p.pos, "values nested deeper than %d", maxDepth)
	}
	if err := p.skip(); err != nil {
		return nil, err
	}
	if p.pos >= len(p.src) {
		return nil, p.errorf(p.pos, "expected a value, found end of file")
	}
	start := p.pos
	c := p.src[p.pos]
	switch {
	case c == '"':
		s, err := p.parseString()
		if err != nil {
			return nil, err
		}
		return &String{span: span{start, p.pos}, Value: s}, nil
	case c == '`':
		// Raw strings: newer Blueprint accepts them (Debian's 2020 bpfmt does not); reading is
		// lenient so that a tree using them can still be scanned. provkit never writes one.
		end := strings.IndexByte(p.src[p.pos+1:], '`')
		if end < 0 {
			return nil, p.errorf(start, "unterminated raw string: expected `")
		}
		p.pos += end + 2
		return &String{span: span{start, p.pos}, Value: p.src[start+1 : p.pos-1]}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		p.pos++
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
		}
		n, err := strconv.ParseInt(p.src[start:p.pos], 10, 64)
		if err != nil {
			return nil, p.errorf(start, "expected an integer, found %q", p.src[start:p.pos])
		}
		return &Int{span: span{start, p.pos}, Value: n}, nil
	case c == '[':
		p.pos++
		l := &List{}
		for {
			if err := p.skip(); err != nil {
				return nil, err
			}
			if p.pos < len(p.src) && p.src[p.pos] == ']' {
				p.pos++
				break
			}
			v, err := p.parseExpr(depth + 1)
			if err != nil {
				return nil, err
			}
			l.Values = append(l.Values, v)
			if err := p.skip(); err != nil {
				return nil, err
			}
			if p.pos < len(p.src) && p.src[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.pos < len(p.src) && p.src[p.pos] == ']' {
				p.pos++
				break
			}
			return nil, p.errorf(p.pos, "expected ',' or ']' in the list, found %s", p.describe())
		}
		l.span = span{start, p.pos}
		return l, nil
	case c == '{':
		p.pos++
		props, err := p.parseProps('}', depth+1)
		if err != nil {
			return nil, err
		}
		return &Map{span: span{start, p.pos}, Props: props}, nil
	case isIdentStart(c):
		id := p.ident()
		switch id {
		case "true", "false":
			return &Bool{span: span{start, p.pos}, Value: id == "true"}, nil
		case "unset":
			return &Unset{span{start, p.pos}}, nil
		case "select":
			save := p.pos
			if err := p.skip(); err != nil {
				return nil, err
			}
			if p.pos < len(p.src) && p.src[p.pos] == '(' {
				return p.parseSelect(start, depth)
			}
			p.pos = save
		}
		return &Variable{span: span{start, p.pos}, Name: id}, nil
	}
	return nil, p.errorf(start, "expected a value (string, integer, bool, list, map or variable), found %s", p.describe())
}

func (p *parser) parseString() (string, error) {
	start := p.pos
	p.pos++
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case '\\':
			p.pos += 2
		case '"':
			p.pos++
			s, err := strconv.Unquote(p.src[start:p.pos])
			if err != nil {
				return "", p.errorf(start, "invalid string literal %s: %v", p.src[start:p.pos], err)
			}
			return s, nil
		case '\n':
			return "", p.errorf(start, "unterminated string: expected '\"' before the end of the line")
		default:
			p.pos++
		}
	}
	return "", p.errorf(start, "unterminated string: expected '\"'")
}

// parseSelect parses select(condition, { pattern: value, ... }) after the word "select".
func (p *parser) parseSelect(start, depth int) (Expr, error) {
	p.pos++ // (
	if err := p.parseCondition(depth); err != nil {
		return nil, err
	}
	if err := p.expect(',', "',' after the select condition"); err != nil {
		return nil, err
	}
	if err := p.expect('{', "'{' to start the select cases"); err != nil {
		return nil, err
	}
	sel := &Select{}
	for {
		if err := p.skip(); err != nil {
			return nil, err
		}
		if p.pos < len(p.src) && p.src[p.pos] == '}' {
			p.pos++
			break
		}
		if err := p.parsePattern(depth); err != nil {
			return nil, err
		}
		if err := p.expect(':', "':' after a select pattern"); err != nil {
			return nil, err
		}
		v, err := p.parseExpr(depth + 1)
		if err != nil {
			return nil, err
		}
		sel.Cases = append(sel.Cases, v)
		if err := p.skip(); err != nil {
			return nil, err
		}
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.src) && p.src[p.pos] == '}' {
			p.pos++
			break
		}
		return nil, p.errorf(p.pos, "expected ',' or '}' in the select cases, found %s", p.describe())
	}
	if err := p.skip(); err != nil {
		return nil, err
	}
	if p.pos < len(p.src) && p.src[p.pos] == ',' {
		p.pos++
	}
	if err := p.expect(')', "')' to close select"); err != nil {
		return nil, err
	}
	sel.span = span{start, p.pos}
	return sel, nil
}

// parseCondition parses a select condition: a call like arch() or soong_config_variable("a", "b"),
// or a tuple of them in parentheses.
func (p *parser) parseCondition(depth int) error {
	if depth > maxDepth {
		return p.errorf(p.pos, "select nested deeper than %d", maxDepth)
	}
	if err := p.skip(); err != nil {
		return err
	}
	if p.pos < len(p.src) && p.src[p.pos] == '(' {
		p.pos++
		return p.tuple(depth, p.parseCondition, "')' to close the condition tuple")
	}
	if p.pos >= len(p.src) || !isIdentStart(p.src[p.pos]) {
		return p.errorf(p.pos, "expected a select condition such as arch() or soong_config_variable(\"ns\", \"var\"), found %s", p.describe())
	}
	p.ident()
	if err := p.expect('(', "'(' after the condition name"); err != nil {
		return err
	}
	for {
		if err := p.skip(); err != nil {
			return err
		}
		if p.pos < len(p.src) && p.src[p.pos] == ')' {
			p.pos++
			return nil
		}
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return p.errorf(p.pos, "expected a string argument or ')', found %s", p.describe())
		}
		if _, err := p.parseString(); err != nil {
			return err
		}
		if err := p.skip(); err != nil {
			return err
		}
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
		}
	}
}

// tuple parses the items of a select condition or pattern tuple "(a, b, ...)", after its '(', up to
// and including the ')'; a trailing comma is allowed, an empty tuple is not.
func (p *parser) tuple(depth int, item func(depth int) error, closing string) error {
	for {
		if err := item(depth + 1); err != nil {
			return err
		}
		if err := p.skip(); err != nil {
			return err
		}
		if p.pos >= len(p.src) || p.src[p.pos] != ',' {
			return p.expect(')', closing)
		}
		p.pos++
		if err := p.skip(); err != nil {
			return err
		}
		if p.pos < len(p.src) && p.src[p.pos] == ')' {
			p.pos++
			return nil
		}
	}
}

// parsePattern parses a select pattern: a string, true/false, default, any [@ name], or a tuple.
func (p *parser) parsePattern(depth int) error {
	if depth > maxDepth {
		return p.errorf(p.pos, "select nested deeper than %d", maxDepth)
	}
	if err := p.skip(); err != nil {
		return err
	}
	if p.pos >= len(p.src) {
		return p.errorf(p.pos, "expected a select pattern, found end of file")
	}
	switch c := p.src[p.pos]; {
	case c == '"':
		_, err := p.parseString()
		return err
	case c == '(':
		p.pos++
		return p.tuple(depth, p.parsePattern, "')' to close the pattern tuple")
	case isIdentStart(c):
		start := p.pos
		id := p.ident()
		switch id {
		case "default", "true", "false":
			return nil
		case "any":
			if err := p.skip(); err != nil {
				return err
			}
			if p.pos < len(p.src) && p.src[p.pos] == '@' {
				p.pos++
				if err := p.skip(); err != nil {
					return err
				}
				if p.ident() == "" {
					return p.errorf(p.pos, "expected a name after '@', found %s", p.describe())
				}
			}
			return nil
		}
		return p.errorf(start, "expected a select pattern (a string, true, false, default or any), found %q", id)
	}
	return p.errorf(p.pos, "expected a select pattern, found %s", p.describe())
}
