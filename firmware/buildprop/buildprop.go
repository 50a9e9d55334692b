package buildprop

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// MaxFileSize bounds one property file. Real build.prop files are a few KiB to ~100 KiB.
const MaxFileSize = 4 << 20

// ErrTooLarge is returned for a property file over MaxFileSize.
var ErrTooLarge = errors.New("property file too large")

// Prop is one property as written in a file.
type Prop struct {
	Key, Value string
	File       string // the file it comes from (a device path such as /system/build.prop)
	Line       int
}

// File is one parsed property file.
type File struct {
	Name    string
	Props   []Prop   // in file order; a key may repeat (the last one wins)
	Imports []string // "import" lines, as written
	// Problems are lines init would skip: not key=value, an illegal property name.
	Problems []string
}

// Parse reads a property file. name is used in Prop.File and in problems (file:line).
func Parse(name string, data []byte) (*File, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("reading %s: %d bytes: %w (limit %d)", name, len(data), ErrTooLarge, MaxFileSize)
	}
	f := &File{Name: name}
	line := 0
	for len(data) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		s := strings.TrimSpace(string(l))
		if s == "" || s[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(s, "import"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			f.Imports = append(f.Imports, strings.TrimSpace(rest))
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			f.Problems = append(f.Problems, fmt.Sprintf("%s:%d: not key=value: %q", name, line, clip(s)))
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !LegalName(k) {
			f.Problems = append(f.Problems, fmt.Sprintf("%s:%d: illegal property name %q", name, line, clip(k)))
			continue
		}
		f.Props = append(f.Props, Prop{Key: k, Value: v, File: name, Line: line})
	}
	return f, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// LegalName reports whether init accepts key as a property name: non-empty, no leading, trailing
// or doubled dot, only letters, digits and "_-.@:".
func LegalName(key string) bool {
	if key == "" || key[0] == '.' || key[len(key)-1] == '.' || strings.Contains(key, "..") {
		return false
	}
	for _, c := range []byte(key) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.', c == '@', c == ':':
		default:
			return false
		}
	}
	return true
}

// Set is the properties of several files loaded in order: a later file overrides an earlier one.
type Set struct {
	props map[string]Prop
	// Files are the files loaded, in order.
	Files []string
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{props: map[string]Prop{}} }

// Add loads a parsed file on top of what the set holds.
func (s *Set) Add(f *File) {
	s.Files = append(s.Files, f.Name)
	for _, p := range f.Props {
		s.props[p.Key] = p
	}
}

// Get returns a property and where it was set.
func (s *Set) Get(key string) (Prop, bool) {
	p, ok := s.props[key]
	return p, ok
}

// Value returns a property's value, "" when unset.
func (s *Set) Value(key string) string { return s.props[key].Value }

// Keys returns the property names, sorted.
func (s *Set) Keys() []string {
	out := make([]string, 0, len(s.props))
	for k := range s.props {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DefaultSourceOrder is init's default ro.product.property_source_order.
const DefaultSourceOrder = "product,odm,vendor,system_ext,system"

var productSources = map[string]bool{"odm": true, "product": true, "system_ext": true, "system": true, "vendor": true}

// Fingerprint is the device build fingerprint and how it was found.
type Fingerprint struct {
	Value string `json:"value"`
	// Source says where the value comes from: "ro.build.fingerprint at /system/build.prop:12",
	// or "derived by init's rule from ro.product.* and ro.build.*".
	Source  string `json:"source"`
	Derived bool   `json:"derived"`
	// Unknown lists the properties a derived fingerprint needed and did not find ("unknown" in
	// their place, as init writes).
	Unknown []string `json:"unknown,omitempty"`
}

// DeviceFingerprint returns ro.build.fingerprint as init would set it: the property when a file
// sets it, else derived from its parts (property_derive_build_fingerprint).
func (s *Set) DeviceFingerprint() Fingerprint {
	if p, ok := s.Get("ro.build.fingerprint"); ok && p.Value != "" {
		return Fingerprint{Value: p.Value, Source: fmt.Sprintf("ro.build.fingerprint at %s:%d", p.File, p.Line)}
	}
	var unknown []string
	get := func(keys ...string) string {
		for _, k := range keys {
			if v := s.Value(k); v != "" {
				return v
			}
		}
		unknown = append(unknown, keys[0])
		return "unknown"
	}
	product := func(prop string) string {
		if v := s.Value("ro.product." + prop); v != "" {
			return v
		}
		order := s.Value("ro.product.property_source_order")
		srcs := strings.Split(order, ",")
		for _, src := range srcs {
			if !productSources[src] {
				srcs = strings.Split(DefaultSourceOrder, ",")
				break
			}
		}
		if order == "" {
			srcs = strings.Split(DefaultSourceOrder, ",")
		}
		for _, src := range srcs {
			if v := s.Value("ro.product." + src + "." + prop); v != "" {
				return v
			}
		}
		unknown = append(unknown, "ro.product."+prop)
		return "unknown"
	}
	brand, name, device := product("brand"), product("name"), product("device")
	release := get("ro.build.version.release_or_codename", "ro.build.version.release")
	id := s.Value("ro.build.id")
	if id == "" {
		// Since Android 14 a device may set only ro.build.legacy.id; init appends the vbmeta digest
		// at boot, which an offline reader cannot know.
		id = "unknown"
		unknown = append(unknown, "ro.build.id")
	}
	incremental := get("ro.build.version.incremental")
	typ := get("ro.build.type")
	tags := get("ro.build.tags")
	v := fmt.Sprintf("%s/%s/%s:%s/%s/%s:%s/%s", brand, name, device, release, id, incremental, typ, tags)
	return Fingerprint{Value: v, Derived: true, Unknown: unknown,
		Source: "derived by init's rule (brand/name/device:release/id/incremental:type/tags) from ro.product.* and ro.build.*"}
}

// PartitionFingerprints returns ro.<partition>.build.fingerprint for every partition that sets one.
func (s *Set) PartitionFingerprints() map[string]string {
	out := map[string]string{}
	for k, p := range s.props {
		part, ok := strings.CutPrefix(k, "ro.")
		if !ok {
			continue
		}
		part, ok = strings.CutSuffix(part, ".build.fingerprint")
		if !ok || part == "" || part == "build" || strings.Contains(part, ".") {
			continue
		}
		out[part] = p.Value
	}
	return out
}
