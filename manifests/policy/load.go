package policy

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/safeopen"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// ErrInvalid is wrapped by every error that rejects a policy's content (as opposed to failing to
// read the file).
var ErrInvalid = errors.New("invalid policy")

// Problem is one thing wrong with a policy file, at a line.
type Problem struct {
	File string
	Line int    // 1-based; 0 when the problem is about the whole document
	Path string // e.g. "apps[0].signers[1].sha256"
	Msg  string // what is wrong and what to do
}

func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	if p.Path != "" {
		return fmt.Sprintf("%s: %s: %s", loc, p.Path, p.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, p.Msg)
}

// ValidationError lists every problem found in a policy file. It wraps ErrInvalid.
type ValidationError struct{ Problems []Problem }

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	if len(lines) == 1 {
		return "invalid policy: " + lines[0]
	}
	return fmt.Sprintf("invalid policy (%s):\n  %s", count(len(lines), "problem", "problems"), strings.Join(lines, "\n  "))
}

func (e *ValidationError) Unwrap() error { return ErrInvalid }

// maxPolicySize bounds what Load reads: a policy is a small hand-written file.
const maxPolicySize = 4 << 20

// Load reads, parses and validates the policy file at path. Relative APK paths are resolved
// against the file's directory.
func Load(path string) (*Policy, error) {
	f, err := safeopen.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(f, maxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("reading policy %s: %w", path, err)
	}
	if n > maxPolicySize {
		return nil, &ValidationError{Problems: []Problem{{File: path, Msg: fmt.Sprintf("file is larger than %d bytes; is this really a policy?", maxPolicySize)}}}
	}
	p, err := Parse(buf.Bytes(), path)
	if err != nil {
		return nil, err
	}
	p.Dir = filepath.Dir(path)
	return p, nil
}

// Parse parses and validates a policy document. name is used in messages (a file path).
func Parse(data []byte, name string) (*Policy, error) {
	if name == "" {
		name = "policy"
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &ValidationError{Problems: []Problem{yamlProblem(name, err)}}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &ValidationError{Problems: []Problem{{File: name, Msg: "the file is empty; a policy starts with 'apiVersion: " + APIVersion + "' and 'kind: " + Kind + "'"}}}
	}
	root := doc.Content[0]
	v := &validator{file: name, lines: map[string]int{}, walked: map[walkKey]bool{}}
	if root.Kind != yaml.MappingNode {
		v.addf(root.Line, "", "the document must be a mapping (apiVersion, kind, metadata, apps, devices), not a %s", kindName(root))
		return nil, v.err()
	}
	v.walk(root, reflect.TypeOf(Policy{}), "")
	var p Policy
	if err := root.Decode(&p); err != nil {
		// Shape problems found by walk explain a failed decode better than yaml's message.
		if len(v.problems) == 0 {
			v.problems = append(v.problems, yamlProblem(name, err))
		}
		return nil, v.err()
	}
	p.Source = name
	for i := range p.Apps {
		p.Apps[i].Line = v.line(fmt.Sprintf("apps[%d]", i))
	}
	v.validate(&p)
	if len(v.problems) > 0 {
		return nil, v.err()
	}
	return &p, nil
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

// yamlProblem turns a yaml.v3 error ("yaml: line 7: ...") into a Problem at that line.
func yamlProblem(file string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = strings.TrimSpace(msg)
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		line, _ := strconv.Atoi(msg[m[2]:m[3]])
		return Problem{File: file, Line: line, Msg: strings.TrimSpace(msg[:m[0]] + msg[m[1]:])}
	}
	return Problem{File: file, Msg: msg}
}

type validator struct {
	file     string
	problems []Problem
	lines    map[string]int // path -> line of the key (or item)
	// walked marks the nodes an alias led to that were already checked against a type: a node
	// aliased a thousand times is checked once, so anchors cannot make the walk explode.
	walked map[walkKey]bool
}

type walkKey struct {
	n *yaml.Node
	t reflect.Type
}

func (v *validator) addf(line int, path, format string, args ...any) {
	v.problems = append(v.problems, Problem{File: v.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) line(path string) int {
	for path != "" {
		if l, ok := v.lines[path]; ok {
			return l
		}
		// fall back to the enclosing element
		if i := strings.LastIndexAny(path, ".["); i > 0 {
			path = path[:i]
		} else {
			break
		}
	}
	return 0
}

// maxProblems bounds the problems one error lists: past it, a file is more likely not a policy at
// all than a policy with that many mistakes.
const maxProblems = 50

func (v *validator) err() error {
	sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].Line < v.problems[j].Line })
	if n := len(v.problems); n > maxProblems {
		v.problems = append(v.problems[:maxProblems:maxProblems], Problem{File: v.file, Msg: "and " + count(n-maxProblems, "more problem", "more problems") + "; fix these first"})
	}
	return &ValidationError{Problems: v.problems}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

// walk checks the node tree against the Go type: unknown keys (with a suggestion), wrong shapes
// (a list where a mapping belongs), and records the line of every path.
func (v *validator) walk(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
		if k := (walkKey{n, t}); v.walked[k] {
			return
		} else {
			v.walked[k] = true
		}
	}
	if path != "" {
		if _, ok := v.lines[path]; !ok {
			v.lines[path] = n.Line
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return
			}
			v.addf(n.Line, path, "expected a mapping of %s, found a %s", strings.Join(fieldNames(t), ", "), kindName(n))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := k.Value
			sub := joinPath(path, key)
			if prev, dup := seen[key]; dup {
				v.addf(k.Line, sub, "duplicate key (first at line %d)", prev)
				continue
			}
			seen[key] = k.Line
			f, ok := fieldByTag(t, key)
			if !ok {
				msg := fmt.Sprintf("unknown field %q", key)
				if s := suggest(key, fieldNames(t)); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				} else {
					msg += "; known fields: " + strings.Join(fieldNames(t), ", ")
				}
				v.addf(k.Line, path, "%s", msg)
				continue
			}
			v.lines[sub] = k.Line
			v.walk(val, f.Type, sub)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if n.Tag == "!!null" {
				return
			}
			v.addf(n.Line, path, "expected a list, found a %s", kindName(n))
			return
		}
		for i, item := range n.Content {
			sub := fmt.Sprintf("%s[%d]", path, i)
			v.lines[sub] = item.Line
			v.walk(item, t.Elem(), sub)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			v.addf(n.Line, path, "expected a single value, found a %s", kindName(n))
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == key && name != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func fieldNames(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// suggest returns the known name closest to key when it is a likely typo.
func suggest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if strings.EqualFold(k, key) {
			return k
		}
		if d := editDistance(strings.ToLower(key), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// validate checks the decoded policy's values.
func (v *validator) validate(p *Policy) {
	if p.APIVersion != APIVersion {
		v.addf(v.line("apiVersion"), "apiVersion", "must be %q, found %q", APIVersion, p.APIVersion)
	}
	if p.Kind != Kind {
		v.addf(v.line("kind"), "kind", "must be %q, found %q", Kind, p.Kind)
	}
	// Strings that land in build files, XML, reports and terminals: a strict character set for the
	// name (it is written into makefile, Blueprint and XML comments), no control or format
	// characters anywhere else.
	if n := p.Metadata.Name; n != "" && !policyName.MatchString(n) {
		v.addf(v.line("metadata.name"), "metadata.name", "%q: use letters, digits, spaces and . _ + - (at most 128, starting with a letter or digit); the name is written into build files", n)
	}
	for _, ft := range []struct{ path, val string }{
		{"metadata.authority", p.Metadata.Authority}, {"metadata.description", p.Metadata.Description}, {"metadata.version", p.Metadata.Version},
	} {
		v.freeText(ft.path, ft.val)
	}
	if len(p.Apps) == 0 {
		v.addf(v.line("apps"), "apps", "the policy mandates no app; list at least one under 'apps:' with its package and signers")
	}
	seen := map[string]string{}
	for i := range p.Apps {
		a := &p.Apps[i]
		at := fmt.Sprintf("apps[%d]", i)
		f := func(field string) (int, string) { return v.line(at + "." + field), at + "." + field }
		switch {
		case a.Package == "":
			l, pth := f("package")
			v.addf(l, pth, "missing: every app needs its Android package name, e.g. 'package: ru.oneme.app'")
		case !packageName.MatchString(a.Package):
			l, pth := f("package")
			v.addf(l, pth, "%q is not a valid Android package name (dot-separated identifiers, at least two)", a.Package)
		default:
			if prev, dup := seen[a.Package]; dup {
				l, pth := f("package")
				v.addf(l, pth, "%q is listed twice (also at %s); merge the two entries", a.Package, prev)
			}
			seen[a.Package] = at
		}
		if len(a.Signers) == 0 {
			l, pth := f("signers")
			v.addf(l, pth, "no signer pinned: add 'signers: [{sha256: <64 hex digits>}]' (the digest 'provkit apk verify' prints)")
		}
		v.freeText(at+".apk", a.APK)
		for j, s := range a.Signers {
			v.freeText(fmt.Sprintf("%s.signers[%d].name", at, j), s.Name)
			pth := fmt.Sprintf("%s.signers[%d].sha256", at, j)
			if !hexDigest.MatchString(NormalizeDigest(s.SHA256)) {
				v.addf(v.line(pth), pth, "%q is not a SHA-256 digest (64 hex digits, colons allowed)", s.SHA256)
			}
		}
		if a.MinVersionCode < 0 {
			l, pth := f("minVersionCode")
			v.addf(l, pth, "must not be negative")
		}
		if a.Partition != "" && !contains(Partitions, a.Partition) {
			l, pth := f("partition")
			v.addf(l, pth, "%q is not a partition provkit knows; use one of %s", a.Partition, strings.Join(Partitions, ", "))
		}
		if a.Module != "" && !moduleName.MatchString(a.Module) {
			l, pth := f("module")
			v.addf(l, pth, "%q is not a valid build module name (letters, digits, _ . + -)", a.Module)
		}
		if !a.Privileged && len(a.PrivappPermissions) > 0 {
			l, pth := f("privappPermissions")
			v.addf(l, pth, "privileged permissions are only granted to privileged apps; set 'privileged: true' or remove them")
		}
		for _, list := range []struct {
			field string
			vals  []string
		}{{"grantPermissions", a.GrantPermissions}, {"privappPermissions", a.PrivappPermissions}, {"denyPrivappPermissions", a.DenyPrivappPermissions}} {
			for j, perm := range list.vals {
				if !permission.MatchString(perm) {
					pth := fmt.Sprintf("%s.%s[%d]", at, list.field, j)
					v.addf(v.line(pth), pth, "%q is not a permission name (e.g. android.permission.POST_NOTIFICATIONS)", perm)
				}
			}
		}
		for _, perm := range a.DenyPrivappPermissions {
			if contains(a.PrivappPermissions, perm) {
				l, pth := f("denyPrivappPermissions")
				v.addf(l, pth, "%q is both granted and denied", perm)
			}
		}
		for j, o := range a.Overrides {
			if !moduleName.MatchString(o) && !packageName.MatchString(o) {
				pth := fmt.Sprintf("%s.overrides[%d]", at, j)
				v.addf(v.line(pth), pth, "%q is not a module or package name (letters, digits, _ . + -)", o)
			}
		}
	}
	for i, fp := range p.Devices.Fingerprints {
		pth := fmt.Sprintf("devices.fingerprints[%d]", i)
		if !fingerprintChars.MatchString(fp) || !strings.Contains(fp, "/") || !strings.Contains(fp, ":") {
			v.addf(v.line(pth), pth, "%q does not look like a build fingerprint (brand/product/device:release/id/incremental:type/tags)", fp)
		}
	}
}

// freeText reports a human text field (authority, signer name, APK path) holding a control or
// format character: such text ends up on terminals, in reports and next to build files, where a
// newline or an escape sequence would change what a reader sees or what a tool parses.
func (v *validator) freeText(path, s string) {
	if len(s) > maxFreeText {
		v.addf(v.line(path), path, "longer than %d bytes", maxFreeText)
		return
	}
	for i, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == 0x2028 || r == 0x2029 {
			v.addf(v.line(path), path, "holds a control character (%U at byte %d); write the text on one line, without escape sequences", r, i)
			return
		}
	}
}

// maxFreeText bounds a free-text field.
const maxFreeText = 1024

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// count is n with the noun that agrees with it: "1 problem", "2 problems".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
