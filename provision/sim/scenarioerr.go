package sim

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// A scenario problem is reported as "<file>:<line>: <field path>: what is wrong; what is
// allowed", like a policy problem: the user never sees a Go type name.

// problem is one thing wrong in a scenario file.
type problem struct {
	line int
	msg  string
}

// ScenarioError lists every problem found in a scenario file, each with its line.
type ScenarioError struct {
	File     string // empty for a scenario parsed from memory
	Problems []string
}

func (e *ScenarioError) Error() string { return strings.Join(e.Problems, "\n") }

func newScenarioError(file string, ps []problem) *ScenarioError {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].line < ps[j].line })
	e := &ScenarioError{File: file}
	for _, p := range ps {
		where := "line " + strconv.Itoa(p.line)
		if file != "" {
			where = file + ":" + strconv.Itoa(p.line)
		}
		if p.line == 0 {
			where = file
			if where == "" {
				where = "scenario"
			}
		}
		e.Problems = append(e.Problems, where+": "+p.msg)
	}
	return e
}

// yamlFields lists the YAML keys of struct type t, in declaration order.
func yamlFields(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if n, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); n != "" && n != "-" {
			names = append(names, n)
		}
	}
	return names
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if n, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); n == key && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// describe says, in a user's words, what a value of type t looks like.
func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.Uint32, reflect.Uint64, reflect.Uint:
		return "a non-negative whole number (a file mode may be octal, e.g. 0644)"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a text value"
	case reflect.Slice:
		return "a list of " + plural(describe(t.Elem()))
	case reflect.Map:
		return "a mapping of keys to " + plural(describe(t.Elem()))
	case reflect.Struct:
		return "a mapping with the fields " + strings.Join(yamlFields(t), ", ")
	}
	return "a value"
}

func plural(s string) string {
	switch {
	case strings.HasPrefix(s, "a mapping with the fields "):
		return "mappings with the fields " + strings.TrimPrefix(s, "a mapping with the fields ")
	case strings.HasPrefix(s, "a "):
		s = strings.TrimPrefix(s, "a ")
		if strings.HasSuffix(s, "value") || strings.HasSuffix(s, "number") || strings.HasSuffix(s, "mapping") {
			return s + "s"
		}
		return s
	}
	return s
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return strconv.Quote(n.Value)
}

// checkNode compares the YAML tree under n with the Go type t that will receive it and reports
// every unknown field and every value of the wrong shape, with its line and field path.
func checkNode(n *yaml.Node, t reflect.Type, path string, out *[]problem) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	label := path
	if label == "" {
		label = "the scenario"
	}
	bad := func() {
		*out = append(*out, problem{n.Line, fmt.Sprintf("%s: %s is not %s", label, kindName(n), describe(t))})
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			bad()
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fieldByKey(t, k.Value)
			sub := join(path, k.Value)
			if !ok {
				*out = append(*out, problem{k.Line, fmt.Sprintf("%s: unknown field; allowed here: %s", sub, strings.Join(yamlFields(t), ", "))})
				continue
			}
			checkNode(v, f.Type, sub, out)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			bad()
			return
		}
		for i, item := range n.Content {
			checkNode(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), out)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			bad()
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := join(path, k.Value)
			if err := k.Decode(reflect.New(t.Key()).Interface()); err != nil {
				*out = append(*out, problem{k.Line, fmt.Sprintf("%s: key %q is not %s", path, k.Value, describe(t.Key()))})
				continue
			}
			checkNode(v, t.Elem(), sub, out)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			bad()
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			bad()
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// lineOf finds the line of the field a validation message starts with ("auth: ...",
// "packages[1]: system: ...") inside the device template node dev; the device's own line when it
// cannot tell.
func lineOf(dev *yaml.Node, msg string) int {
	line := dev.Line
	n := dev
	for _, part := range strings.SplitN(msg, ": ", 4) {
		name, idx, hasIdx := strings.Cut(part, "[")
		if n.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				line, next = n.Content[i].Line, n.Content[i+1]
			}
		}
		if next == nil {
			break
		}
		n = next
		if hasIdx {
			j, err := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			if err != nil || n.Kind != yaml.SequenceNode || j < 0 || j >= len(n.Content) {
				break
			}
			n = n.Content[j]
			line = n.Line
		}
	}
	return line
}
