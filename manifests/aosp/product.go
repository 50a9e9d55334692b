package aosp

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/provkit/provkit/manifests/aosp/makefile"
)

// Loc is a place in the tree, for messages: a file (relative to the tree root) and a line.
type Loc struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

func (l Loc) String() string {
	if l.Line == 0 {
		return l.File
	}
	return fmt.Sprintf("%s:%d", l.File, l.Line)
}

// Product variables the chain evaluation follows.
const (
	varPackages   = "PRODUCT_PACKAGES"
	varNamespaces = "PRODUCT_SOONG_NAMESPACES"
	varCopyFiles  = "PRODUCT_COPY_FILES"

	varEnforceArtifacts = "PRODUCT_ENFORCE_ARTIFACT_PATH_REQUIREMENTS"
)

var productVars = []string{varPackages, varNamespaces, varCopyFiles}

// certainty of a statement's effect: it runs, it may run (an unknown condition), it never runs.
type certainty int

const (
	never certainty = iota
	maybe
	always
)

// item is one word of a product list variable, or a placeholder for what an inherited makefile
// contributes (tag), as build/make/core/product.mk models it with "@inherit:<file>".
type item struct {
	word string
	tag  string
	sure bool
	at   Loc
}

type drop struct {
	items []item
	by    Loc
	sure  bool
}

type node struct {
	file    string
	vars    map[string][]item
	dropped map[string][]drop
}

// Chain is the evaluated inheritance graph of one product makefile: which makefiles it inherits
// and includes, and what each adds to PRODUCT_PACKAGES and friends.
type Chain struct {
	Product string // the product makefile, relative to the tree root
	nodes   map[string]*node
	order   []string
	files   map[string]*makefile.File
	// Assignments lists every PRODUCT_PACKAGES assignment met, in evaluation order.
	Assignments []ListAssign
	// Notes are things the evaluation could not resolve (a missing inherited file, a path with an
	// unknown variable) or found suspicious; they do not stop the patch.
	Notes []string
	// Unresolved are the product list entries that could not be expanded (reported grouped).
	Unresolved []string
	// undecided are the conditionals provkit could not decide, by location.
	undecided map[Loc]Undecided
	// Enforce are the assignments to PRODUCT_ENFORCE_ARTIFACT_PATH_REQUIREMENTS, in evaluation order.
	Enforce []ScalarAssign
	// ArtifactReqs are the calls of require-artifacts-in-path, in evaluation order.
	ArtifactReqs []ArtifactReq
}

// Undecided is a conditional whose outcome provkit cannot know, and the variables that would
// decide it.
type Undecided struct {
	Text string   // "ifeq ($(WITH_GMS),true)"
	Loc  Loc      // where it is
	Vars []string // the unknown variables it tests
}

// Hint says how to decide it: the --var flags to pass.
func (u Undecided) Hint() string {
	if len(u.Vars) == 0 {
		return fmt.Sprintf("%s at %s, which provkit cannot decide", u.Text, u.Loc)
	}
	var flags []string
	for _, v := range u.Vars {
		flags = append(flags, "--var "+v+"=<value>")
	}
	return fmt.Sprintf("%s at %s, which provkit cannot decide; decide it with %s", u.Text, u.Loc, strings.Join(flags, " "))
}

// ScalarAssign is one assignment to a single-value variable.
type ScalarAssign struct {
	Value string // expanded; "" with Known false when it cannot be
	Known bool
	Loc   Loc
	Sure  bool // not under an undecided condition
}

// ArtifactReq is a call of require-artifacts-in-path: the product may install files only under
// Paths (when enforced).
type ArtifactReq struct {
	Paths []string // expanded; nil when they cannot be
	Loc   Loc
	Sure  bool
}

// condVarRe finds the variables a condition refers to.
var condVarRe = regexp.MustCompile(`\$[({]([A-Za-z_][A-Za-z0-9_.-]*)[)}]`)

// undecidedAt records a conditional that could not be decided, with the variables it tests that
// are unknown.
func (e *evaluator) undecidedAt(loc Loc, word, args string) {
	u := Undecided{Text: strings.TrimSpace(word + " " + args), Loc: loc}
	names := condVarRe.FindAllStringSubmatch(args, -1)
	if word == "ifdef" || word == "ifndef" {
		names = append(names, []string{"", strings.TrimSpace(args)})
	}
	for _, m := range names {
		if v, ok := e.vars[m[1]]; (!ok || v == unknownVar) && !contains(u.Vars, m[1]) {
			u.Vars = append(u.Vars, m[1])
		}
	}
	if e.chain.undecided == nil {
		e.chain.undecided = map[Loc]Undecided{}
	}
	e.chain.undecided[loc] = u
}

// Why returns the undecided conditionals around the statement at loc, outermost first.
func (c *Chain) Why(loc Loc) []Undecided {
	f := c.files[loc.File]
	if f == nil {
		return nil
	}
	var out []Undecided
	for i := range f.Stmts {
		s := &f.Stmts[i]
		if s.Line != loc.Line {
			continue
		}
		for _, ref := range s.Cond {
			if ref.If < 0 || ref.If >= len(f.Stmts) {
				continue
			}
			if u, ok := c.undecided[Loc{loc.File, f.Stmts[ref.If].Line}]; ok {
				out = append(out, u)
			}
		}
		break
	}
	return out
}

// whyInherited finds the undecided conditionals around the inherit-product or include lines that
// bring file into the product, following the chain up a few levels.
func (c *Chain) whyInherited(file string, depth int, seen map[string]bool) []Undecided {
	if depth > 8 || seen[file] {
		return nil
	}
	seen[file] = true
	for _, name := range c.Files() {
		f := c.files[name]
		for i := range f.Stmts {
			st := &f.Stmts[i]
			if !strings.Contains(st.Text, file) {
				continue
			}
			if _, _, ok := makefile.Call(st.Text); !ok && st.Kind != makefile.Directive {
				continue
			}
			if us := c.Why(Loc{name, st.Line}); len(us) > 0 {
				return us
			}
			if us := c.whyInherited(name, depth+1, seen); len(us) > 0 {
				return us
			}
		}
	}
	return nil
}

// CondHint says why a statement at loc is uncertain and how to decide it.
func (c *Chain) CondHint(loc Loc) string {
	us := c.Why(loc)
	if len(us) == 0 {
		us = c.whyInherited(loc.File, 0, map[string]bool{})
	}
	if len(us) == 0 {
		return "under a condition provkit cannot decide (in a makefile that is inherited or included conditionally)"
	}
	var parts []string
	for _, u := range us {
		parts = append(parts, u.Hint())
	}
	return "only when " + strings.Join(parts, ", and ")
}

// ListAssign is one assignment to a product list variable.
type ListAssign struct {
	Var         string
	Loc         Loc
	Op          string
	Words       []string
	Conditional bool // under a condition provkit could not decide
	Stmt        int  // index in the file's statements
}

type evaluator struct {
	t     *tree
	vars  map[string]string // global make variables (unexpanded values); unknownVar marks unknown
	chain *Chain
	depth int
	steps int // statements evaluated, bounded by maxEvalSteps
}

// maxEvalSteps bounds the statements one evaluation visits. Includes are evaluated where they
// appear, as make does, so makefiles that each include the next one twice double the work per
// level: twenty small files took minutes, thirty would take hours. A real product chain (AOSP's
// build/make/target/product and a device tree) visits a few tens of thousands, blank lines counted.
const maxEvalSteps = 250_000

const unknownVar = "\x00unknown"

// maxIncludeDepth bounds include/inherit recursion (a makefile that includes itself).
const maxIncludeDepth = 64

// evalChain evaluates the product makefile product (relative path) and everything it inherits.
func evalChain(t *tree, product string, preset map[string]string) (*Chain, error) {
	e := &evaluator{t: t, vars: map[string]string{}, chain: &Chain{Product: product, nodes: map[string]*node{}, files: map[string]*makefile.File{}}}
	for k, v := range defaultVars {
		e.vars[k] = v
	}
	for k, v := range preset {
		e.vars[k] = v
	}
	if err := e.importNode(product); err != nil {
		return nil, err
	}
	return e.chain, nil
}

// defaultVars are the build system's own variables product makefiles use in paths.
var defaultVars = map[string]string{
	"SRC_TARGET_DIR":             "build/make/target",
	"TARGET_COPY_OUT_ROOT":       "root",
	"TARGET_COPY_OUT_SYSTEM":     "system",
	"TARGET_COPY_OUT_SYSTEM_EXT": "system_ext",
	"TARGET_COPY_OUT_PRODUCT":    "product",
	"TARGET_COPY_OUT_VENDOR":     "vendor",
	"TARGET_COPY_OUT_ODM":        "odm",
	// The rest of build/make/core/envsetup.mk's install paths, as device.mk files use them.
	"TARGET_COPY_OUT_VENDOR_DLKM":    "vendor_dlkm",
	"TARGET_COPY_OUT_ODM_DLKM":       "odm_dlkm",
	"TARGET_COPY_OUT_SYSTEM_DLKM":    "system_dlkm",
	"TARGET_COPY_OUT_RECOVERY":       "recovery",
	"TARGET_COPY_OUT_VENDOR_RAMDISK": "vendor_ramdisk",
	"TARGET_COPY_OUT_DATA":           "data",
	"TARGET_COPY_OUT_SYSTEM_OTHER":   "system_other",
}

func (e *evaluator) importNode(file string) error {
	if _, done := e.chain.nodes[file]; done {
		return nil
	}
	e.depth++
	defer func() { e.depth-- }()
	if e.depth > maxIncludeDepth {
		return fmt.Errorf("evaluating %s: makefiles inherit each other more than %d levels deep", file, maxIncludeDepth)
	}
	n := &node{file: file, vars: map[string][]item{}, dropped: map[string][]drop{}}
	e.chain.nodes[file] = n
	e.chain.order = append(e.chain.order, file)
	var children []string
	if err := e.evalFile(n, file, always, &children); err != nil {
		return err
	}
	for _, c := range children {
		if err := e.importNode(c); err != nil {
			return err
		}
	}
	return nil
}

func (e *evaluator) parse(file string) (*makefile.File, error) {
	if f, ok := e.chain.files[file]; ok {
		return f, nil
	}
	src, err := e.t.read(file)
	if err != nil {
		return nil, err
	}
	f, err := makefile.Parse(file, src)
	if err != nil {
		return nil, fmt.Errorf("parsing product makefile: %w", err)
	}
	e.chain.files[file] = f
	e.chain.Notes = append(e.chain.Notes, f.Warnings...)
	return f, nil
}

type mkEnv struct {
	e   *evaluator
	dir string
}

func (m mkEnv) Lookup(name string) (string, bool) {
	v, ok := m.e.vars[name]
	if !ok || v == unknownVar {
		return "", false
	}
	return v, true
}
func (m mkEnv) MyDir() string                      { return m.dir }
func (m mkEnv) Wildcard(p string) ([]string, bool) { return m.e.t.glob(p) }

// Find lists the files under dir whose base name matches pattern (find-copy-subdir-files).
func (m mkEnv) Find(dir, pattern string) ([]string, bool) {
	dir = path.Clean(dir)
	if !inTree(dir) || !m.e.t.isDir(dir) {
		return nil, inTree(dir) // a missing directory finds nothing, as find does
	}
	files, err := m.e.t.list(dir)
	if err != nil {
		return nil, false
	}
	var out []string
	for _, f := range files {
		if ok, err := path.Match(pattern, path.Base(f)); err == nil && ok {
			out = append(out, f)
		}
	}
	return out, true
}

// branchState remembers, for one if/else chain, whether an earlier branch was surely or maybe taken.
type branchState struct {
	taken   bool // an earlier branch was certainly taken
	mayBe   bool // an earlier branch may have been taken
	current certainty
}

func (e *evaluator) evalFile(n *node, file string, ctx certainty, children *[]string) error {
	e.depth++
	defer func() { e.depth-- }()
	if e.depth > maxIncludeDepth {
		return fmt.Errorf("evaluating %s: includes nested more than %d levels deep", file, maxIncludeDepth)
	}
	f, err := e.parse(file)
	if err != nil {
		return err
	}
	env := mkEnv{e: e, dir: path.Dir(file)}
	branches := map[int]*branchState{}
	for i := range f.Stmts {
		s := &f.Stmts[i]
		if e.steps++; e.steps > maxEvalSteps {
			return fmt.Errorf("evaluating the product makefiles: stopped at %s:%d after %d statements: the makefiles include each other over and over", file, s.Line, maxEvalSteps)
		}
		// The certainty of this statement: the context's, lowered by each enclosing branch.
		c := ctx
		for _, ref := range s.Cond {
			if b := branches[ref.If]; b != nil {
				c = min(c, b.current)
			}
		}
		// Conditionals decide the branches that follow.
		if s.IsIf() || (s.Kind == makefile.Directive && s.Word == "else") {
			if s.IsIf() {
				b := &branchState{}
				branches[i] = b
				d := e.decide(s.Word, s.Args, env)
				if d == maybe && c != never {
					e.undecidedAt(Loc{file, s.Line}, s.Word, s.Args)
				}
				b.current = min(c, d)
				b.taken, b.mayBe = b.current == always, b.current == maybe
				continue
			}
			b := e.enclosingIf(f, i, branches)
			if b == nil {
				continue
			}
			cond := always
			if s.ElseIf != "" {
				cond = e.decide(s.ElseIf, s.Args, env)
				if cond == maybe && c != never {
					e.undecidedAt(Loc{file, s.Line}, s.ElseIf, s.Args)
				}
			}
			switch {
			case b.taken:
				b.current = never
			case b.mayBe:
				b.current = min(cond, maybe)
			default:
				b.current = cond
			}
			b.current = min(b.current, c)
			b.taken = b.taken || b.current == always
			b.mayBe = b.mayBe || b.current == maybe
			continue
		}
		if c == never {
			continue
		}
		loc := Loc{File: file, Line: s.Line}
		switch s.Kind {
		case makefile.Assign:
			e.assign(n, f, i, s, c, env, loc)
		case makefile.Expr:
			name, args, ok := makefile.Call(s.Text)
			if ok && (name == "require-artifacts-in-path" || name == "require-artifacts-in-path-relaxed") && len(args) > 0 {
				r := ArtifactReq{Loc: loc, Sure: c == always}
				if x, known := makefile.Expand(args[0], env); known {
					r.Paths = strings.Fields(x)
				}
				e.chain.ArtifactReqs = append(e.chain.ArtifactReqs, r)
				continue
			}
			if !ok || (name != "inherit-product" && name != "inherit-product-if-exists") || len(args) == 0 {
				continue
			}
			p, known := makefile.Expand(args[0], env)
			p = strings.TrimSpace(p)
			if !known || p == "" || strings.ContainsAny(p, " \t") {
				e.chain.Notes = append(e.chain.Notes, fmt.Sprintf("%s: cannot resolve the path of %s %q; what it adds is not followed", loc, name, args[0]))
				continue
			}
			p = path.Clean(p)
			if !inTree(p) {
				e.chain.Notes = append(e.chain.Notes, fmt.Sprintf("%s: inherited makefile %s is outside the tree; what it adds is not followed, and provkit does not edit it", loc, p))
				continue
			}
			if !e.t.exists(p) {
				if name == "inherit-product" {
					e.chain.Notes = append(e.chain.Notes, fmt.Sprintf("%s: inherited makefile %s is not in the tree; what it adds is not followed", loc, p))
				}
				continue
			}
			for _, v := range productVars {
				n.vars[v] = append(n.vars[v], item{tag: p, sure: c == always, at: loc})
			}
			*children = append(*children, p)
		case makefile.Directive:
			if s.Word != "include" && s.Word != "-include" && s.Word != "sinclude" {
				continue
			}
			ps, known := makefile.Expand(s.Args, env)
			if !known {
				e.chain.Notes = append(e.chain.Notes, fmt.Sprintf("%s: cannot resolve the path of include %q; what it sets is not followed", loc, s.Args))
				continue
			}
			for _, p := range strings.Fields(ps) {
				p = path.Clean(p)
				if !inTree(p) {
					e.chain.Notes = append(e.chain.Notes, fmt.Sprintf("%s: included makefile %s is outside the tree; what it sets is not followed, and provkit does not edit it", loc, p))
					continue
				}
				if !e.t.exists(p) {
					if s.Word == "include" {
						e.chain.Notes = append(e.chain.Notes, fmt.Sprintf("%s: included makefile %s is not in the tree; what it sets is not followed", loc, p))
					}
					continue
				}
				if err := e.evalFile(n, p, c, children); err != nil {
					if errors.Is(err, fs.ErrNotExist) {
						continue
					}
					return err
				}
			}
		}
	}
	return nil
}

// enclosingIf finds the branch state of the if that an else at index i belongs to: the nearest
// earlier if at the same nesting depth.
func (e *evaluator) enclosingIf(f *makefile.File, i int, branches map[int]*branchState) *branchState {
	depth := len(f.Stmts[i].Cond)
	for j := i - 1; j >= 0; j-- {
		s := &f.Stmts[j]
		if s.IsIf() && len(s.Cond) == depth {
			// make sure no endif at this depth closed it in between
			closed := false
			for k := j + 1; k < i; k++ {
				if f.Stmts[k].Kind == makefile.Directive && f.Stmts[k].Word == "endif" && len(f.Stmts[k].Cond) == depth {
					closed = true
					break
				}
			}
			if !closed {
				return branches[j]
			}
		}
	}
	return nil
}

// decide evaluates a conditional: always when true, never when false, maybe when it depends on
// something unknown.
func (e *evaluator) decide(word, args string, env mkEnv) certainty {
	var res bool
	switch word {
	case "ifdef", "ifndef":
		name, known := makefile.Expand(strings.TrimSpace(args), env)
		if !known {
			return maybe
		}
		v, ok := e.vars[strings.TrimSpace(name)]
		if v == unknownVar {
			return maybe
		}
		if !ok {
			// A variable the tree never sets may still come from the environment or the board
			// configuration: unknown.
			return maybe
		}
		res = v != ""
		if word == "ifndef" {
			res = !res
		}
	default:
		a, b, ok := makefile.SplitCondArgs(args)
		if !ok {
			return maybe
		}
		av, k1 := makefile.Expand(a, env)
		bv, k2 := makefile.Expand(b, env)
		if !k1 || !k2 {
			return maybe
		}
		res = av == bv
		if word == "ifneq" {
			res = !res
		}
	}
	if res {
		return always
	}
	return never
}

func (e *evaluator) assign(n *node, f *makefile.File, idx int, s *makefile.Stmt, c certainty, env mkEnv, loc Loc) {
	name, known := makefile.Expand(s.Name, env)
	if !known {
		return
	}
	if contains(productVars, name) {
		var words []item
		var raw []string
		for _, w := range makefile.Words(s.Value) {
			x, ok := makefile.Expand(w, env)
			if !ok {
				e.chain.Unresolved = append(e.chain.Unresolved, fmt.Sprintf("%s: %s entry %q uses a variable or function provkit cannot resolve", loc, name, w))
			}
			for _, xw := range strings.Fields(x) {
				words = append(words, item{word: xw, sure: c == always, at: loc})
				raw = append(raw, xw)
			}
		}
		if name == varPackages || name == varNamespaces {
			e.chain.Assignments = append(e.chain.Assignments, ListAssign{Var: name, Loc: loc, Op: s.Op, Words: raw, Conditional: c != always, Stmt: idx})
		}
		switch s.Op {
		case "+=":
		case "?=":
			if len(n.vars[name]) > 0 {
				return
			}
		default:
			old := n.vars[name]
			if len(old) > 0 {
				n.dropped[name] = append(n.dropped[name], drop{items: old, by: loc, sure: c == always})
			}
			if c == always {
				n.vars[name] = nil
			} else {
				kept := make([]item, len(old))
				for k, it := range old {
					it.sure = false
					kept[k] = it
				}
				n.vars[name] = kept
			}
		}
		n.vars[name] = append(n.vars[name], words...)
		return
	}
	if name == varEnforceArtifacts {
		v, known := makefile.Expand(s.Value, env)
		e.chain.Enforce = append(e.chain.Enforce, ScalarAssign{Value: strings.TrimSpace(v), Known: known, Loc: loc, Sure: c == always})
	}
	if c != always {
		e.vars[name] = unknownVar
		return
	}
	switch s.Op {
	case ":=", "::=", ":::=":
		v, ok := makefile.Expand(s.Value, env)
		if !ok {
			e.vars[name] = unknownVar
			return
		}
		e.vars[name] = strings.ReplaceAll(v, "$", "$$")
	case "=":
		e.vars[name] = s.Value
	case "+=":
		old, ok := e.vars[name]
		switch {
		case old == unknownVar:
		case !ok || old == "":
			e.vars[name] = s.Value
		default:
			e.vars[name] = old + " " + s.Value
		}
	case "?=":
		if _, ok := e.vars[name]; !ok {
			e.vars[name] = s.Value
		}
	case "!=":
		e.vars[name] = unknownVar
	}
}

// Entry is one word of a product list as the build will see it, with where it was added and
// whether it is certain (not under an undecided condition anywhere along the way).
type Entry struct {
	Word string
	Sure bool
	At   Loc
}

// List returns the final value of a product list variable (PRODUCT_PACKAGES, ...) for the product,
// with inherited contributions expanded in place.
func (c *Chain) List(v string) []Entry {
	return c.resolve(c.Product, v, map[string][]Entry{}, map[string]bool{})
}

// maxListEntries bounds a resolved list: a makefile graph that inherits the same files along many
// paths (a diamond, repeated) must not make the expansion explode.
const maxListEntries = 200000

// resolve expands file's list v; entries are Sure relative to file (the caller ANDs its own
// certainty). memo holds each file's expansion, visiting guards against inheritance cycles.
func (c *Chain) resolve(file, v string, memo map[string][]Entry, visiting map[string]bool) []Entry {
	if r, ok := memo[file]; ok {
		return r
	}
	n := c.nodes[file]
	if n == nil || visiting[file] {
		return nil
	}
	visiting[file] = true
	defer delete(visiting, file)
	var out []Entry
	for _, it := range n.vars[v] {
		if len(out) > maxListEntries {
			break
		}
		if it.tag != "" {
			for _, e := range c.resolve(it.tag, v, memo, visiting) {
				e.Sure = e.Sure && it.sure
				out = append(out, e)
			}
			continue
		}
		out = append(out, Entry{Word: it.word, Sure: it.sure, At: it.at})
	}
	memo[file] = out
	return out
}

// Has reports whether word is in the product's list v: surely, or only under some condition.
func (c *Chain) Has(v, word string) (sure, maybe bool, at []Loc) {
	for _, e := range c.List(v) {
		if e.Word != word {
			continue
		}
		at = append(at, e.At)
		if e.Sure {
			sure = true
		} else {
			maybe = true
		}
	}
	return sure, maybe, at
}

// Drop is an assignment with := or = that throws away a word added before it.
type Drop struct {
	By   Loc  // the assignment
	Sure bool // false when the assignment is under an undecided condition
	Was  Loc  // where the dropped word (or the inherit-product that brought it) was
}

// Drops returns the assignments that throw away word from list v somewhere in the chain.
func (c *Chain) Drops(v, word string) []Drop {
	var out []Drop
	memo := map[string][]Entry{}
	for _, f := range c.order {
		n := c.nodes[f]
		for _, d := range n.dropped[v] {
			for _, it := range d.items {
				if it.tag == "" && it.word == word {
					out = append(out, Drop{By: d.by, Sure: d.sure, Was: it.at})
					continue
				}
				if it.tag != "" {
					for _, e := range c.resolve(it.tag, v, memo, map[string]bool{}) {
						if e.Word == word {
							out = append(out, Drop{By: d.by, Sure: d.sure, Was: it.at})
							break
						}
					}
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].By.String() < out[j].By.String() })
	return out
}

// Files returns the makefiles the evaluation read, in order.
func (c *Chain) Files() []string {
	var out []string
	for f := range c.files {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// File returns the scanned makefile (nil when it was not read).
func (c *Chain) File(name string) *makefile.File { return c.files[name] }
