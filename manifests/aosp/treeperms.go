package aosp

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// frameworkManifest is where the platform declares its permissions.
const frameworkManifest = "frameworks/base/core/res/AndroidManifest.xml"

// permDeclDirs are where the tree's other packages that declare permissions live (their
// AndroidManifest.xml files are read, to a bounded depth).
var permDeclDirs = []string{"frameworks/base/packages", "packages/apps", "packages/services", "packages/providers", "packages/modules", "vendor", "device"}

// maxPermManifestDepth bounds how deep under permDeclDirs manifests are read.
const maxPermManifestDepth = 6

// permCatalog says which permissions are privileged: read from the tree when it has the platform's
// manifest, else provkit's built-in list.
type permCatalog struct {
	// privileged maps a privileged permission to where it is declared ("" for the built-in list).
	privileged map[string]Loc
	// declared holds every permission the tree declares, privileged or not.
	declared map[string]bool
	// fromTree: the catalog was read from the tree.
	fromTree bool
	// Source says where the catalog comes from, for the report.
	Source string
	// API is the level of the built-in table used (0 when read from the tree).
	API int
}

// builtinCatalog is the built-in table for API level api (0: unknown), with a note when it is not
// api's own table.
func builtinCatalog(api int) (*permCatalog, string) {
	t, why := tableFor(api)
	c := &permCatalog{privileged: map[string]Loc{}, declared: map[string]bool{}, API: t.api,
		Source: fmt.Sprintf("provkit's built-in table of the %d privileged platform permissions of API %d (%s), as the tree has no %s", len(t.perms), t.api, t.source, frameworkManifest)}
	for p := range t.perms {
		c.privileged[p] = Loc{}
		c.declared[p] = true
	}
	return c, why
}

// loadPermCatalog reads the privileged permissions of the tree: those the platform's manifest
// declares with the privileged flag in their protectionLevel, and those other packages of the tree
// declare so. Without the platform's manifest it uses the built-in table of api (the --api-level
// given, when not 0), else of the tree's own API level, else the newest table; notes say which
// level was chosen when it was not read from the tree or the table is another level's.
func loadPermCatalog(t *tree, api int) (c *permCatalog, notes []string, err error) {
	if !t.exists(frameworkManifest) {
		where := "--api-level"
		if api == 0 {
			var why string
			if api, why = treeSDKLevel(t); api == 0 {
				notes = append(notes, why)
			}
			where = why
		}
		c, why := builtinCatalog(api)
		if why != "" {
			notes = append(notes, why)
		}
		if api != 0 {
			c.Source += fmt.Sprintf("; API level %d from %s", api, where)
		}
		return c, notes, nil
	}
	c = &permCatalog{privileged: map[string]Loc{}, declared: map[string]bool{}, fromTree: true}
	src, err := t.read(frameworkManifest)
	if err != nil {
		return nil, nil, err
	}
	if err := c.add(frameworkManifest, src); err != nil {
		return nil, nil, err
	}
	platform := len(c.privileged)
	others := 0
	err = t.walk(permDeclDirs, func(rel string) error {
		if path.Base(rel) != "AndroidManifest.xml" || strings.Count(rel, "/") > maxPermManifestDepth || rel == frameworkManifest {
			return nil
		}
		src, err := t.read(rel)
		if err != nil {
			return nil // an unreadable app manifest only means fewer known permissions
		}
		before := len(c.privileged)
		if c.add(rel, src) == nil {
			others += len(c.privileged) - before
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	c.Source = fmt.Sprintf("%s (%d privileged permissions) and the tree's other AndroidManifest.xml files (%d more)", frameworkManifest, platform, others)
	return c, nil, nil
}

// add reads the <permission> declarations of one manifest.
func (c *permCatalog) add(rel string, src []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(src))
	dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	depth := 0
	for {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			line, _ := dec.InputPos()
			return fmt.Errorf("%s:%d: reading permission declarations: %w", rel, line, err)
		}
		switch se := tok.(type) {
		case xml.StartElement:
			depth++
			if depth != 2 || se.Name.Local != "permission" {
				continue
			}
			var name, level string
			for _, a := range se.Attr {
				switch a.Name.Local {
				case "name":
					name = a.Value
				case "protectionLevel":
					level = a.Value
				}
			}
			if name == "" {
				continue
			}
			c.declared[name] = true
			if privilegedLevel(level) {
				if _, ok := c.privileged[name]; !ok {
					// The line of the element's '<' (the decoder's position is its end).
					start := before + int64(bytes.IndexByte(src[before:], '<'))
					c.privileged[name] = Loc{rel, 1 + bytes.Count(src[:start], []byte("\n"))}
				}
			}
		case xml.EndElement:
			depth--
		}
	}
}

// privilegedLevel reports whether a protectionLevel carries the privileged flag ("system" and
// "signatureOrSystem" are its older names).
func privilegedLevel(level string) bool {
	for _, f := range strings.Split(level, "|") {
		switch strings.TrimSpace(f) {
		case "privileged", "system", "signatureOrSystem":
			return true
		}
	}
	return false
}

func (c *permCatalog) isPrivileged(p string) bool {
	_, ok := c.privileged[p]
	return ok
}

// uncovered returns the privileged permissions among requested that are neither granted nor
// denied, sorted.
func (c *permCatalog) uncovered(requested, granted, denied []string) []string {
	return Uncovered(c.isPrivileged, requested, granted, denied)
}

// Uncovered returns the permissions among requested that privileged says are privileged and that
// are neither granted nor denied, sorted and without repeats: what a privapp-permissions
// allowlist must still decide.
func Uncovered(privileged func(string) bool, requested, granted, denied []string) []string {
	decided := map[string]bool{}
	for _, p := range append(append([]string{}, granted...), denied...) {
		decided[p] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range requested {
		if privileged(p) && !decided[p] && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}
