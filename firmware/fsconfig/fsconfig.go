package fsconfig

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// MaxFileSize bounds an fs_config file: AOSP's are a few KiB.
const MaxFileSize = 1 << 20

// headerSize is the fixed part of a record: len, mode, uid, gid (16 bits each), capabilities (64).
const headerSize = 16

// ErrCorrupt is wrapped by every parse error.
var ErrCorrupt = errors.New("corrupt fs_config file")

// Entry is one record.
type Entry struct {
	Mode         uint16 // permission bits (with set-uid/gid and sticky), no file type
	UID, GID     uint16
	Capabilities uint64
	Prefix       string
	// Source names the file and record offset ("product:etc/fs_config_files@48"); empty for the
	// built-in defaults.
	Source string
}

// Parse reads one fs_config file. name is used in errors and in each Entry's Source.
func Parse(b []byte, name string) ([]Entry, error) {
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%s: %w: %d bytes, more than the %d an fs_config file may have", name, ErrCorrupt, len(b), MaxFileSize)
	}
	var out []Entry
	for off := 0; off < len(b); {
		if len(b)-off < headerSize {
			return nil, fmt.Errorf("%s: %w: %d stray bytes at offset %d, less than a record header", name, ErrCorrupt, len(b)-off, off)
		}
		n := int(binary.LittleEndian.Uint16(b[off:]))
		if n < headerSize+1 || n > len(b)-off {
			return nil, fmt.Errorf("%s: %w: record at offset %d claims %d bytes (%d left, at least %d needed)", name, ErrCorrupt, off, n, len(b)-off, headerSize+1)
		}
		rec := b[off : off+n]
		prefix, _, ok := strings.Cut(string(rec[headerSize:]), "\x00")
		if !ok {
			return nil, fmt.Errorf("%s: %w: the path of the record at offset %d has no terminating NUL", name, ErrCorrupt, off)
		}
		out = append(out, Entry{
			Mode:         binary.LittleEndian.Uint16(rec[2:]),
			UID:          binary.LittleEndian.Uint16(rec[4:]),
			GID:          binary.LittleEndian.Uint16(rec[6:]),
			Capabilities: binary.LittleEndian.Uint64(rec[8:]),
			Prefix:       prefix,
			Source:       fmt.Sprintf("%s@%d", name, off),
		})
		off += n
	}
	return out, nil
}

// Encode writes entries in the record format (each record padded to 8 bytes, as AOSP's
// fs_config_generate does); the tests use it to make inputs.
func Encode(entries []Entry) []byte {
	var out []byte
	for _, e := range entries {
		n := (headerSize + len(e.Prefix) + 1 + 7) &^ 7
		rec := make([]byte, n)
		binary.LittleEndian.PutUint16(rec[0:], uint16(n))
		binary.LittleEndian.PutUint16(rec[2:], e.Mode)
		binary.LittleEndian.PutUint16(rec[4:], e.UID)
		binary.LittleEndian.PutUint16(rec[6:], e.GID)
		binary.LittleEndian.PutUint64(rec[8:], e.Capabilities)
		copy(rec[headerSize:], e.Prefix)
		out = append(out, rec...)
	}
	return out
}

// Partitions are the partitions whose etc/fs_config_* files libcutils reads, in its order.
var Partitions = []string{"system", "vendor", "oem", "odm", "product", "system_ext"}

// Config is the fs_config files of one firmware.
type Config struct {
	dirs, files []Entry
	// Files lists the fs_config files read ("/product/etc/fs_config_dirs").
	Files []string
}

// Load reads the fs_config files of the partitions in parts (partition name -> its file system, as
// mounted: "etc/fs_config_dirs" at its root; a system-as-root system image holds them under
// "system/etc/"). A partition without them is skipped; a corrupt one is an error.
func Load(parts map[string]fs.FS) (*Config, error) {
	c := &Config{}
	for _, p := range Partitions {
		fsys, ok := parts[p]
		if !ok {
			continue
		}
		for _, kind := range []string{"dirs", "files"} {
			for _, rel := range []string{"etc/fs_config_" + kind, "system/etc/fs_config_" + kind} {
				if p != "system" && strings.HasPrefix(rel, "system/") {
					continue
				}
				b, err := readBounded(fsys, rel)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					return nil, fmt.Errorf("reading %s:%s: %w", p, rel, err)
				}
				es, err := Parse(b, p+":"+rel)
				if err != nil {
					return nil, err
				}
				if kind == "dirs" {
					c.dirs = append(c.dirs, es...)
				} else {
					c.files = append(c.files, es...)
				}
				c.Files = append(c.Files, "/"+p+"/"+strings.TrimPrefix(rel, "system/"))
				break
			}
		}
	}
	return c, nil
}

func readBounded(fsys fs.FS, name string) ([]byte, error) {
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", ErrCorrupt)
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d an fs_config file may have", ErrCorrupt, fi.Size(), MaxFileSize)
	}
	return fs.ReadFile(fsys, name)
}

// Defaults are AOSP's built-in modes for what no record names, for the paths image patch writes
// (app and priv-app directories, etc/ XMLs): directories 0755, files 0644, root:root.
var (
	DefaultDir  = Entry{Mode: 0o755}
	DefaultFile = Entry{Mode: 0o644}
)

// Lookup returns the entry that gives the device path p ("product/app/Foo/Foo.apk", no leading
// slash) its mode and owner: the first matching record of the fs_config files, else the
// default. A nil Config gives the defaults.
func (c *Config) Lookup(p string, dir bool) Entry {
	p = strings.TrimPrefix(p, "/")
	if c != nil {
		list := c.files
		if dir {
			list = c.dirs
		}
		for _, e := range list {
			if matches(e.Prefix, p, dir) {
				return e
			}
		}
	}
	if dir {
		return DefaultDir
	}
	return DefaultFile
}

func matches(prefix, p string, dir bool) bool {
	if prefix == "" {
		return false // an empty prefix is the table's end marker in AOSP's built-in lists
	}
	if dir {
		return strings.HasPrefix(p, prefix)
	}
	if !strings.Contains(prefix, "*") {
		return p == prefix
	}
	return glob(prefix, p)
}

// glob matches pattern against s, '*' standing for any run of characters ('/' included) and
// every other byte for itself.
func glob(pattern, s string) bool {
	// iterative matcher with one backtrack point, linear in practice
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(pattern) && pattern[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}
