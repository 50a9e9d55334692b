package makefile

import (
	"path"
	"strings"
)

// Env is what Expand needs to know: variable values and, for the few functions that touch the
// file system, answers about it.
type Env interface {
	// Lookup returns a variable's value (unexpanded, as assigned) and whether it is known. An
	// unknown variable makes the expansion unknown; a variable known to be empty is ("", true).
	Lookup(name string) (string, bool)
	// MyDir is what $(call my-dir) returns in the current file.
	MyDir() string
	// Wildcard expands a glob relative to the tree root; ok is false when it cannot.
	Wildcard(pattern string) (matches []string, ok bool)
}

// maxExpandDepth bounds recursive expansion (a self-referencing recursive variable).
const maxExpandDepth = 64

// maxExpandSteps and maxExpandLen bound the work and the output of one Expand, so that a hostile
// makefile ("X = $(X)$(X)") cannot make it run for ever or fill memory.
const (
	maxExpandSteps = 100000
	maxExpandLen   = 1 << 20
)

type budget struct{ steps int }

func (b *budget) spend() bool {
	b.steps++
	return b.steps <= maxExpandSteps
}

// Expand expands references in s. known is false when anything it depends on is unknown (an
// unknown variable, a function Expand does not implement, a shell call); the returned text then
// holds what could be expanded, with unknown parts dropped, and must not be trusted.
func Expand(s string, env Env) (string, bool) {
	b := &budget{}
	out, ok := expand(s, envBudget{env, b}, 0)
	if b.steps > maxExpandSteps || len(out) > maxExpandLen {
		return "", false
	}
	return out, ok
}

// envBudget carries the budget of one Expand through the recursion.
type envBudget struct {
	Env
	b *budget
}

func (e envBudget) Find(dir, pattern string) ([]string, bool) {
	if f, ok := e.Env.(Finder); ok {
		return f.Find(dir, pattern)
	}
	return nil, false
}

func expand(s string, env Env, depth int) (string, bool) {
	if depth > maxExpandDepth {
		return "", false
	}
	if eb, ok := env.(envBudget); ok && !eb.b.spend() {
		return "", false
	}
	if !strings.Contains(s, "$") {
		return s, true
	}
	var b strings.Builder
	known := true
	for i := 0; i < len(s); {
		if b.Len() > maxExpandLen {
			return "", false
		}
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(s) {
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
			continue
		case '(', '{':
			end := refEnd(s, i)
			if !closed(s, i, end) {
				// an unterminated reference: make would reject the line
				return "", false
			}
			inner := s[i+2 : end-1]
			v, ok := expandRef(inner, env, depth)
			b.WriteString(v)
			known = known && ok
			i = end
		default:
			v, ok := lookup(string(s[i+1]), env, depth)
			b.WriteString(v)
			known = known && ok
			i += 2
		}
	}
	return b.String(), known
}

func lookup(name string, env Env, depth int) (string, bool) {
	v, ok := env.Lookup(name)
	if !ok {
		return "", false
	}
	return expand(v, env, depth+1)
}

func expandRef(inner string, env Env, depth int) (string, bool) {
	// A function call is "name args" with a space or tab after a known function name.
	fn, rest := "", ""
	if i := strings.IndexAny(inner, " \t"); i > 0 {
		fn, rest = inner[:i], strings.TrimLeft(inner[i+1:], " \t")
	}
	arg := func(n int) []string {
		parts := splitArgs(rest)
		for len(parts) < n {
			parts = append(parts, "")
		}
		if len(parts) > n {
			// the last argument keeps its commas
			parts = append(parts[:n-1], strings.Join(parts[n-1:], ","))
		}
		return parts
	}
	ex := func(s string) (string, bool) { return expand(s, env, depth+1) }
	switch fn {
	case "":
		name, ok := ex(inner)
		if !ok {
			return "", false
		}
		// Substitution references $(VAR:a=b) are not needed by product makefiles.
		if strings.ContainsAny(name, ":=") {
			return "", false
		}
		return lookup(name, env, depth)
	case "strip":
		v, ok := ex(rest)
		return strings.Join(strings.Fields(v), " "), ok
	case "call":
		parts := splitArgs(rest)
		name := strings.TrimSpace(parts[0])
		if name == "my-dir" {
			return env.MyDir(), true
		}
		return callBuiltin(name, parts[1:], env, depth)
	case "subst":
		a := arg(3)
		from, ok1 := ex(a[0])
		to, ok2 := ex(a[1])
		text, ok3 := ex(a[2])
		if from == "" {
			return text, ok1 && ok2 && ok3
		}
		return strings.ReplaceAll(text, from, to), ok1 && ok2 && ok3
	case "patsubst":
		a := arg(3)
		pat, ok1 := ex(a[0])
		rep, ok2 := ex(a[1])
		text, ok3 := ex(a[2])
		var out []string
		for _, w := range strings.Fields(text) {
			out = append(out, patsubst(pat, rep, w))
		}
		return strings.Join(out, " "), ok1 && ok2 && ok3
	case "filter", "filter-out":
		a := arg(2)
		pats, ok1 := ex(a[0])
		text, ok2 := ex(a[1])
		var out []string
		for _, w := range strings.Fields(text) {
			m := false
			for _, p := range strings.Fields(pats) {
				if patMatch(p, w) {
					m = true
					break
				}
			}
			if m == (fn == "filter") {
				out = append(out, w)
			}
		}
		return strings.Join(out, " "), ok1 && ok2
	case "findstring":
		a := arg(2)
		find, ok1 := ex(a[0])
		in, ok2 := ex(a[1])
		if strings.Contains(in, find) {
			return find, ok1 && ok2
		}
		return "", ok1 && ok2
	case "firstword":
		v, ok := ex(rest)
		if f := strings.Fields(v); len(f) > 0 {
			return f[0], ok
		}
		return "", ok
	case "dir", "notdir":
		v, ok := ex(rest)
		var out []string
		for _, w := range strings.Fields(v) {
			d, base := path.Split(w)
			if fn == "dir" {
				if d == "" {
					d = "./"
				}
				out = append(out, d)
			} else {
				out = append(out, base)
			}
		}
		return strings.Join(out, " "), ok
	case "addprefix", "addsuffix":
		a := arg(2)
		fix, ok1 := ex(a[0])
		v, ok2 := ex(a[1])
		var out []string
		for _, w := range strings.Fields(v) {
			if fn == "addprefix" {
				out = append(out, fix+w)
			} else {
				out = append(out, w+fix)
			}
		}
		return strings.Join(out, " "), ok1 && ok2
	case "if":
		a := arg(3)
		cond, ok := ex(a[0])
		if !ok {
			return "", false
		}
		if strings.TrimSpace(cond) != "" {
			return ex(a[1])
		}
		return ex(a[2])
	case "wildcard":
		v, ok := ex(rest)
		if !ok {
			return "", false
		}
		var out []string
		for _, p := range strings.Fields(v) {
			m, ok := env.Wildcard(p)
			if !ok {
				return "", false
			}
			out = append(out, m...)
		}
		return strings.Join(out, " "), true
	case "foreach":
		a := arg(3)
		name, ok1 := ex(a[0])
		list, ok2 := ex(a[1])
		if !ok1 || !ok2 {
			return "", false
		}
		var out []string
		for _, w := range strings.Fields(list) {
			var bound Env = boundEnv{env, strings.TrimSpace(name), strings.ReplaceAll(w, "$", "$$")}
			if eb, isB := env.(envBudget); isB {
				bound = envBudget{boundEnv{eb.Env, strings.TrimSpace(name), strings.ReplaceAll(w, "$", "$$")}, eb.b}
			}
			v, ok := expand(a[2], bound, depth+1)
			if !ok {
				return "", false
			}
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
		return strings.Join(out, " "), true
	case "sort":
		v, ok := ex(rest)
		ws := strings.Fields(v)
		seen := map[string]bool{}
		var out []string
		for _, w := range ws {
			if !seen[w] {
				seen[w] = true
				out = append(out, w)
			}
		}
		sortStrings(out)
		return strings.Join(out, " "), ok
	}
	if strings.ContainsAny(inner, " \t,") {
		// an unknown function
		return "", false
	}
	return lookup(inner, env, depth)
}

// closed reports whether the reference starting at s[i] really ends at end (with its closing
// parenthesis or brace) rather than running off the end of s.
func closed(s string, i, end int) bool {
	if end-1 < i+2 || end > len(s) {
		return false
	}
	want := byte(')')
	if s[i+1] == '{' {
		want = '}'
	}
	return s[end-1] == want
}

func patMatch(pat, w string) bool {
	i := strings.IndexByte(pat, '%')
	if i < 0 {
		return pat == w
	}
	return len(w) >= len(pat)-1 && strings.HasPrefix(w, pat[:i]) && strings.HasSuffix(w, pat[i+1:])
}

func patsubst(pat, rep, w string) string {
	i := strings.IndexByte(pat, '%')
	if i < 0 {
		if pat == w {
			return rep
		}
		return w
	}
	if !patMatch(pat, w) {
		return w
	}
	stem := w[i : len(w)-(len(pat)-i-1)]
	if j := strings.IndexByte(rep, '%'); j >= 0 {
		return rep[:j] + stem + rep[j+1:]
	}
	return rep
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Finder is an optional part of an Env: the files under a directory (relative to the tree root)
// whose base name matches a glob, for find-copy-subdir-files. ok is false when it cannot tell.
type Finder interface {
	Find(dir, namePattern string) (files []string, ok bool)
}

// boundEnv is an Env with one variable bound (the variable of a foreach).
type boundEnv struct {
	Env
	name, value string
}

func (b boundEnv) Lookup(name string) (string, bool) {
	if name == b.name {
		return b.value, true
	}
	return b.Env.Lookup(name)
}

func (b boundEnv) Find(dir, pattern string) ([]string, bool) {
	if f, ok := b.Env.(Finder); ok {
		return f.Find(dir, pattern)
	}
	return nil, false
}

// callBuiltin evaluates the functions of build/make/core/product.mk and definitions.mk that
// product makefiles call for their values. Any other $(call ...) is unknown.
func callBuiltin(name string, args []string, env Env, depth int) (string, bool) {
	ex := func(i int) (string, bool) {
		if i >= len(args) {
			return "", true
		}
		return expand(args[i], env, depth+1)
	}
	switch name {
	case "add-to-product-copy-files-if-exists":
		// $(call add-to-product-copy-files-if-exists, src:dest ...): the pairs whose src exists.
		list, ok := ex(0)
		if !ok {
			return "", false
		}
		var out []string
		for _, w := range strings.Fields(list) {
			src, _, _ := strings.Cut(w, ":")
			m, ok := env.Wildcard(src)
			if !ok {
				return "", false
			}
			if len(m) > 0 {
				out = append(out, w)
			}
		}
		return strings.Join(out, " "), true
	case "find-copy-subdir-files":
		// $(call find-copy-subdir-files, pattern, srcdir, destdir): srcdir/x:destdir/x for every
		// file under srcdir whose name matches pattern.
		pat, ok1 := ex(0)
		src, ok2 := ex(1)
		dst, ok3 := ex(2)
		f, isFinder := env.(Finder)
		if !ok1 || !ok2 || !ok3 || !isFinder {
			return "", false
		}
		src, dst = strings.TrimSuffix(strings.TrimSpace(src), "/"), strings.TrimSuffix(strings.TrimSpace(dst), "/")
		files, ok := f.Find(src, strings.TrimSpace(pat))
		if !ok {
			return "", false
		}
		var out []string
		for _, file := range files {
			out = append(out, file+":"+dst+"/"+strings.TrimPrefix(file, src+"/"))
		}
		sortStrings(out)
		return strings.Join(out, " "), true
	}
	return "", false
}
