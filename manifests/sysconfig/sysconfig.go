package sysconfig

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Limits on what a file may make the reader hold.
const (
	MaxFileSize = 8 << 20
	MaxDepth    = 64
)

// ErrTooLarge is returned for a file over MaxFileSize.
var ErrTooLarge = errors.New("configuration file too large")

// Entry is a name read from an element, with where it was read.
type Entry struct {
	Name string `json:"name"`
	File string `json:"file"`
	Line int    `json:"line"`
}

// Where returns "file:line".
func (e Entry) Where() string { return fmt.Sprintf("%s:%d", e.File, e.Line) }

// Privapp is one <privapp-permissions> element.
type Privapp struct {
	Package string  `json:"package"`
	Allow   []Entry `json:"allow,omitempty"`
	Deny    []Entry `json:"deny,omitempty"`
	File    string  `json:"file"`
	Line    int     `json:"line"`
}

// UserTypes is one <install-in-user-type> element.
type UserTypes struct {
	Package        string  `json:"package"`
	InstallIn      []Entry `json:"installIn,omitempty"`
	DoNotInstallIn []Entry `json:"doNotInstallIn,omitempty"`
	File           string  `json:"file"`
	Line           int     `json:"line"`
}

// Config is what one SystemConfig file says.
type Config struct {
	Privapp   []Privapp   `json:"privapp,omitempty"`
	UserTypes []UserTypes `json:"userTypes,omitempty"`
	Problems  []string    `json:"problems,omitempty"`
}

// Grant is one <permission> of a default-permissions <exception>.
type Grant struct {
	Package     string `json:"package"`
	Permission  string `json:"permission"`
	Fixed       bool   `json:"fixed,omitempty"`
	Whitelisted bool   `json:"whitelisted,omitempty"`
	File        string `json:"file"`
	Line        int    `json:"line"`
}

// decoder walks an XML document keeping line numbers and depth.
type decoder struct {
	name  string
	data  []byte
	dec   *xml.Decoder
	nl    []int // offsets of '\n'
	depth int
	// closed is set once the root element has ended: anything but white space, comments and
	// processing instructions after it is an error, as in any XML parser.
	closed bool
}

func newDecoder(name string, data []byte) (*decoder, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("reading %s: %d bytes: %w (limit %d)", name, len(data), ErrTooLarge, MaxFileSize)
	}
	d := &decoder{name: name, data: data, dec: xml.NewDecoder(bytes.NewReader(data))}
	d.dec.Strict = true
	// Android's parsers accept any declared encoding of ASCII-compatible text; encoding/xml
	// only knows UTF-8, so other declared charsets are read as UTF-8 bytes.
	d.dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	for i, c := range data {
		if c == '\n' {
			d.nl = append(d.nl, i)
		}
	}
	return d, nil
}

// line returns the 1-based line of byte offset off.
func (d *decoder) line(off int64) int {
	return sort.SearchInts(d.nl, int(off)) + 1
}

// next returns the next start or end element, with the line its tag starts on. io.EOF at the end.
func (d *decoder) next() (xml.Token, int, error) {
	for {
		before := d.dec.InputOffset()
		tok, err := d.dec.Token()
		if err != nil {
			if err == io.EOF {
				return nil, 0, io.EOF
			}
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, 0, fmt.Errorf("%s:%d: not well-formed XML: %s", d.name, se.Line, se.Msg)
			}
			return nil, 0, fmt.Errorf("%s:%d: %v", d.name, d.line(d.dec.InputOffset()), err)
		}
		start := before
		if i := bytes.IndexByte(d.data[before:], '<'); i >= 0 {
			start = before + int64(i)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if d.closed && len(bytes.TrimSpace(t)) > 0 {
				return nil, 0, fmt.Errorf("%s:%d: not well-formed XML: extra content at the end of the document", d.name, d.line(before+int64(bytes.IndexFunc(t, func(r rune) bool { return r > ' ' }))))
			}
		case xml.StartElement:
			if d.closed {
				return nil, 0, fmt.Errorf("%s:%d: not well-formed XML: extra content at the end of the document", d.name, d.line(start))
			}
			d.depth++
			if d.depth > MaxDepth {
				return nil, 0, fmt.Errorf("%s:%d: elements nested deeper than %d", d.name, d.line(start), MaxDepth)
			}
			return t.Copy(), d.line(start), nil
		case xml.EndElement:
			d.depth--
			if d.depth == 0 {
				d.closed = true
			}
			return t, d.line(start), nil
		}
	}
}

// skip consumes the rest of the current element.
func (d *decoder) skip() error {
	depth := 1
	for depth > 0 {
		tok, _, err := d.next()
		if err != nil {
			return err
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

func attr(se xml.StartElement, name string) (string, bool) {
	for _, a := range se.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// ParseConfig reads a SystemConfig file (etc/permissions/*.xml, etc/sysconfig/*.xml). name is
// used in entries and problems (a device path such as /product/etc/permissions/x.xml).
func ParseConfig(name string, data []byte) (*Config, error) {
	d, err := newDecoder(name, data)
	if err != nil {
		return nil, err
	}
	c := &Config{}
	problem := func(line int, format string, args ...any) {
		c.Problems = append(c.Problems, fmt.Sprintf("%s:%d: ", name, line)+fmt.Sprintf(format, args...))
	}
	tok, line, err := d.next()
	if err == io.EOF {
		problem(1, "no start tag found; the platform skips this file")
		return c, nil
	}
	if err != nil {
		c.Problems = append(c.Problems, err.Error())
		return c, nil
	}
	root, _ := tok.(xml.StartElement)
	if root.Name.Local != "permissions" && root.Name.Local != "config" {
		problem(line, "root element <%s>, not <permissions> or <config>; the platform skips this file", root.Name.Local)
		return c, nil
	}
	for {
		tok, line, err := d.next()
		if err != nil {
			if err != io.EOF {
				c.Problems = append(c.Problems, err.Error()+" (the platform stops reading the file here)")
			}
			return c, nil
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue // the root's end
		}
		switch se.Name.Local {
		case "privapp-permissions":
			pkg, _ := attr(se, "package")
			if pkg == "" {
				problem(line, "<privapp-permissions> without package; the platform ignores it")
			}
			p := Privapp{Package: pkg, File: name, Line: line}
			if err := d.children(func(ce xml.StartElement, cl int) {
				n, _ := attr(ce, "name")
				switch ce.Name.Local {
				case "permission", "deny-permission":
					if n == "" {
						problem(cl, "<%s> without name in <privapp-permissions>; the platform ignores it", ce.Name.Local)
						return
					}
					e := Entry{Name: n, File: name, Line: cl}
					if ce.Name.Local == "permission" {
						p.Allow = append(p.Allow, e)
					} else {
						p.Deny = append(p.Deny, e)
					}
				}
			}); err != nil {
				// SystemConfig stores a package's new allowlist only after reading the whole
				// element, so an error inside it loses the element's entries.
				c.Problems = append(c.Problems, err.Error()+" (the platform stops reading the file here; the entries of <privapp-permissions package=\""+pkg+"\"> are lost)")
				return c, nil
			}
			if pkg != "" {
				c.Privapp = append(c.Privapp, p)
			}
		case "install-in-user-type":
			pkg, _ := attr(se, "package")
			if pkg == "" {
				problem(line, "<install-in-user-type> without package; the platform ignores it")
			}
			u := UserTypes{Package: pkg, File: name, Line: line}
			err := d.children(func(ce xml.StartElement, cl int) {
				ut, _ := attr(ce, "user-type")
				switch ce.Name.Local {
				case "install-in", "do-not-install-in":
					if ut == "" {
						problem(cl, "<%s> without user-type; the platform ignores it", ce.Name.Local)
						return
					}
					e := Entry{Name: ut, File: name, Line: cl}
					if ce.Name.Local == "install-in" {
						u.InstallIn = append(u.InstallIn, e)
					} else {
						u.DoNotInstallIn = append(u.DoNotInstallIn, e)
					}
				default:
					problem(cl, "unrecognized <%s> in <install-in-user-type>", ce.Name.Local)
				}
			})
			if pkg != "" {
				c.UserTypes = append(c.UserTypes, u)
			}
			if err != nil {
				c.Problems = append(c.Problems, err.Error()+" (the platform stops reading the file here)")
				return c, nil
			}
		default:
			if err := d.skip(); err != nil {
				c.Problems = append(c.Problems, err.Error()+" (the platform stops reading the file here)")
				return c, nil
			}
		}
	}
}

// children calls fn for every element inside the current one (at any depth, as the platform's
// nextElementWithin does) and consumes its end.
func (d *decoder) children(fn func(xml.StartElement, int)) error {
	depth := 1
	for depth > 0 {
		tok, line, err := d.next()
		if err != nil {
			if err == io.EOF {
				return fmt.Errorf("%s: unexpected end of file inside an element", d.name)
			}
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			fn(t, line)
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

// ParseDefaultPermissions reads a default-permissions file (etc/default-permissions/*.xml): every
// <permission> of every <exception package> inside an <exceptions> element.
func ParseDefaultPermissions(name string, data []byte) ([]Grant, []string, error) {
	d, err := newDecoder(name, data)
	if err != nil {
		return nil, nil, err
	}
	var grants []Grant
	var problems []string
	problem := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: ", name, line)+fmt.Sprintf(format, args...))
	}
	// Element stack: the platform looks for <exceptions> anywhere, <exception> directly inside
	// it and <permission> inside <exception>.
	var stack []string
	pkg := ""
	for {
		tok, line, err := d.next()
		if err != nil {
			if err != io.EOF {
				problems = append(problems, err.Error()+" (the platform stops reading the file here)")
			}
			return grants, problems, nil
		}
		switch t := tok.(type) {
		case xml.StartElement:
			parent := ""
			if len(stack) > 0 {
				parent = stack[len(stack)-1]
			}
			switch {
			case t.Name.Local == "exception" && parent == "exceptions":
				pkg, _ = attr(t, "package")
				if pkg == "" {
					problem(line, "<exception> without package")
				}
			case t.Name.Local == "permission" && parent == "exception":
				n, _ := attr(t, "name")
				if n == "" {
					problem(line, "<permission> without name; the platform ignores it")
					break
				}
				if pkg == "" {
					break
				}
				fixed, _ := attr(t, "fixed")
				wl, _ := attr(t, "whitelisted")
				grants = append(grants, Grant{Package: pkg, Permission: n, Fixed: strings.EqualFold(fixed, "true"),
					Whitelisted: strings.EqualFold(wl, "true"), File: name, Line: line})
			case parent == "exceptions" && t.Name.Local != "exception":
				problem(line, "unknown <%s> under <exceptions>", t.Name.Local)
			}
			stack = append(stack, t.Name.Local)
		case xml.EndElement:
			if len(stack) > 0 {
				if stack[len(stack)-1] == "exception" {
					pkg = ""
				}
				stack = stack[:len(stack)-1]
			}
		}
	}
}

// PackageRef is an element of a permission file that names a package: <privapp-permissions> or
// <install-in-user-type> (SystemConfig files), or a default-permissions <exception>.
type PackageRef struct {
	Element string `json:"element"` // "privapp-permissions", "install-in-user-type" or "exception"
	Package string `json:"package"`
	File    string `json:"file"`
	Line    int    `json:"line"`
}

// Where returns "file:line".
func (r PackageRef) Where() string { return fmt.Sprintf("%s:%d", r.File, r.Line) }

// Packages lists the elements of a permission file (of either kind, wherever they sit) that name a
// package. Unlike ParseConfig and ParseDefaultPermissions, which read as the platform does and keep
// what precedes a syntax error, it reads strictly: a file that is not well-formed XML is an error
// naming file:line, for a caller that must not judge a file it cannot read whole (provkit patch,
// about to add its own file for the same package).
func Packages(name string, data []byte) ([]PackageRef, error) {
	d, err := newDecoder(name, data)
	if err != nil {
		return nil, err
	}
	var out []PackageRef
	for {
		tok, line, err := d.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "privapp-permissions", "install-in-user-type", "exception":
			if pkg, ok := attr(se, "package"); ok {
				out = append(out, PackageRef{Element: se.Name.Local, Package: pkg, File: name, Line: line})
			}
		}
	}
}
