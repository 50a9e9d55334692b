package selinux

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"
)

// MaxFileSize bounds a file_contexts file; the largest real ones (plat_file_contexts) are well under
// 1 MiB.
const MaxFileSize = 16 << 20

// maxSpecs bounds how many specs one Contexts holds.
const maxSpecs = 200000

// None is the context that means "no label".
const None = "<<none>>"

// FileType is a spec's file-type restriction; 0 means any type.
type FileType uint32

// File types as fs.FileMode type bits (fs.ModeDir etc.); Regular is its own value since a regular file
// has no type bits in fs.FileMode.
const (
	Any      FileType = 0
	Regular  FileType = 1 << 0
	Dir      FileType = 1 << 1
	Symlink  FileType = 1 << 2
	CharDev  FileType = 1 << 3
	BlockDev FileType = 1 << 4
	Socket   FileType = 1 << 5
	FIFO     FileType = 1 << 6
)

var typeFlags = map[string]FileType{
	"--": Regular, "-d": Dir, "-l": Symlink, "-c": CharDev, "-b": BlockDev, "-s": Socket, "-p": FIFO,
}

// TypeOf maps an fs.FileMode to the FileType specs are matched against.
func TypeOf(m fs.FileMode) FileType {
	switch {
	case m&fs.ModeDir != 0:
		return Dir
	case m&fs.ModeSymlink != 0:
		return Symlink
	case m&fs.ModeCharDevice != 0:
		return CharDev
	case m&fs.ModeDevice != 0:
		return BlockDev
	case m&fs.ModeSocket != 0:
		return Socket
	case m&fs.ModeNamedPipe != 0:
		return FIFO
	}
	return Regular
}

// Spec is one parsed file_contexts line.
type Spec struct {
	Regex   string   // as written
	Type    FileType // Any when the line has no type field
	Context string   // e.g. "u:object_r:system_file:s0", or None
	Source  string   // file name the spec came from
	Line    int      // 1-based line number in Source
	Literal bool     // the regex has no meta characters

	re *regexp.Regexp
}

// Contexts is an ordered set of specs, ready for Lookup.
type Contexts struct {
	specs  []*Spec // in load order
	sorted []*Spec // regex specs, then literal specs (each in load order)
}

// Specs returns the specs in load order.
func (c *Contexts) Specs() []*Spec { return c.specs }

// hasMeta reports whether a file_contexts regex has meta characters, as libselinux's
// spec_hasMetaChars decides it.
func hasMeta(re string) bool {
	for i := 0; i < len(re); i++ {
		switch re[i] {
		case '.', '^', '$', '?', '*', '+', '|', '[', '(', '{':
			return true
		case '\\':
			i++ // the escaped character is literal
		}
	}
	return false
}

// Parse reads one file_contexts file and appends its specs to c (later files win over earlier ones,
// as when libselinux loads several). name is used in errors.
func (c *Contexts) Parse(r io.Reader, name string) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return fmt.Errorf("reading %s: larger than %d bytes", name, MaxFileSize)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxFileSize)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		f := strings.Fields(text)
		sp := &Spec{Source: name, Line: line}
		switch len(f) {
		case 2:
			sp.Regex, sp.Context = f[0], f[1]
		case 3:
			t, ok := typeFlags[f[1]]
			if !ok {
				return fmt.Errorf("parsing %s line %d: unknown file type %q (want one of -- -d -l -c -b -s -p)", name, line, f[1])
			}
			sp.Regex, sp.Type, sp.Context = f[0], t, f[2]
		default:
			return fmt.Errorf("parsing %s line %d: want \"<regex> [<type>] <context>\", got %d fields", name, line, len(f))
		}
		if sp.Context != None && strings.Count(sp.Context, ":") < 3 {
			return fmt.Errorf("parsing %s line %d: context %q is not user:role:type:level", name, line, sp.Context)
		}
		re, err := regexp.Compile(`^(?:` + sp.Regex + `)$`)
		if err != nil {
			return fmt.Errorf("parsing %s line %d: regex %q: %w", name, line, sp.Regex, err)
		}
		sp.re = re
		sp.Literal = !hasMeta(sp.Regex)
		if len(c.specs) >= maxSpecs {
			return fmt.Errorf("parsing %s line %d: more than %d specs", name, line, maxSpecs)
		}
		c.specs = append(c.specs, sp)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	c.sort()
	return nil
}

func (c *Contexts) sort() {
	c.sorted = c.sorted[:0]
	for _, s := range c.specs {
		if !s.Literal {
			c.sorted = append(c.sorted, s)
		}
	}
	for _, s := range c.specs {
		if s.Literal {
			c.sorted = append(c.sorted, s)
		}
	}
}

// Lookup returns the spec that labels path (an absolute path as the device sees it, e.g.
// "/product/app/Foo/Foo.apk") for a file of type t (Any matches every spec), or nil when no spec
// matches.
func (c *Contexts) Lookup(path string, t FileType) *Spec {
	for i := len(c.sorted) - 1; i >= 0; i-- {
		s := c.sorted[i]
		if s.Type != Any && t != Any && s.Type != t {
			continue
		}
		if s.re.MatchString(path) {
			return s
		}
	}
	return nil
}

// Label returns the context for path, and false when no spec matches or the match is <<none>>.
func (c *Contexts) Label(path string, t FileType) (string, bool) {
	s := c.Lookup(path, t)
	if s == nil || s.Context == None {
		return "", false
	}
	return s.Context, true
}

// Load reads every etc/selinux/*file_contexts file of a partition's file system, in name order,
// into one Contexts. It returns an error naming the files tried when there are none.
func Load(fsys fs.FS, dir string) (*Contexts, []string, error) {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	c := &Contexts{}
	var names []string
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), "file_contexts") {
			continue
		}
		p := dir + "/" + e.Name()
		f, err := fsys.Open(p)
		if err != nil {
			return nil, nil, fmt.Errorf("opening %s: %w", p, err)
		}
		err = c.Parse(f, p)
		f.Close()
		if err != nil {
			return nil, nil, err
		}
		names = append(names, p)
	}
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("no *file_contexts file in %s", dir)
	}
	return c, names, nil
}
