package layout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/provkit/provkit/firmware/buildprop"
)

// MountOrder lists the partitions a device mounts read-only, in the order init loads their
// build.prop files (later ones override earlier ones).
var MountOrder = []string{"system", "system_ext", "system_dlkm", "vendor", "vendor_dlkm", "odm_dlkm", "odm", "product", "oem"}

var mountable = map[string]bool{}

func init() {
	for _, p := range MountOrder {
		mountable[p] = true
	}
}

// ErrNotMounted is returned by Resolve for a path under no partition of the tree.
var ErrNotMounted = errors.New("no partition mounted there")

// Mount says where one partition's files come from.
type Mount struct {
	Partition string `json:"partition"`
	// From is the partition file system that holds it ("system" for a nested /system/product).
	From string `json:"from"`
	// Dir is the directory of From that is mounted ("." for a partition's root, "system" for a
	// system-as-root system partition, "system/product" for a nested product).
	Dir string `json:"dir"`
}

// Tree is a set of partitions placed at their mount points.
type Tree struct {
	roots  map[string]fs.FS
	Mounts []Mount
}

// New places the partition file systems parts (keyed by partition name) at their mount points.
// Partitions that a device does not mount (boot, vbmeta, ...) are kept under their own name.
func New(parts map[string]fs.FS) *Tree {
	t := &Tree{roots: map[string]fs.FS{}}
	add := func(name, from, dir string, fsys fs.FS) {
		t.roots[name] = fsys
		t.Mounts = append(t.Mounts, Mount{Partition: name, From: from, Dir: dir})
	}
	names := make([]string, 0, len(parts))
	for n := range parts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fsys := parts[n]
		if n == "system" {
			if sar(fsys) {
				if sub, err := fs.Sub(fsys, "system"); err == nil {
					add(n, n, "system", sub)
					continue
				}
			}
		}
		add(n, n, ".", fsys)
	}
	// Nested partitions of devices that do not have them as partitions of their own.
	for _, nest := range []struct{ part, in string }{{"system_ext", "system"}, {"product", "system"}, {"vendor", "system"}, {"odm", "vendor"}} {
		if _, ok := t.roots[nest.part]; ok {
			continue
		}
		parent, ok := t.roots[nest.in]
		if !ok || !isDir(parent, nest.part) {
			continue
		}
		sub, err := fs.Sub(parent, nest.part)
		if err != nil {
			continue
		}
		pm := t.mount(nest.in)
		add(nest.part, pm.From, path.Join(pm.Dir, nest.part), sub)
	}
	sort.Slice(t.Mounts, func(i, j int) bool { return t.Mounts[i].Partition < t.Mounts[j].Partition })
	return t
}

func (t *Tree) mount(name string) Mount {
	for _, m := range t.Mounts {
		if m.Partition == name {
			return m
		}
	}
	return Mount{}
}

// Mount returns where a partition's files come from.
func (t *Tree) Mount(name string) (Mount, bool) {
	m := t.mount(name)
	return m, m.Partition != ""
}

// sar reports whether a system partition is system-as-root.
func sar(fsys fs.FS) bool {
	if fi, err := fs.Stat(fsys, "system/build.prop"); err == nil && fi.Mode().IsRegular() {
		return true
	}
	if _, err := fs.Stat(fsys, "build.prop"); err == nil {
		return false
	}
	return isDir(fsys, "system")
}

// isDir reports whether name is a directory of fsys, not a symbolic link to one.
func isDir(fsys fs.FS, name string) bool {
	if l, ok := fsys.(fs.ReadLinkFS); ok {
		fi, err := l.Lstat(name)
		return err == nil && fi.IsDir()
	}
	fi, err := fs.Stat(fsys, name)
	return err == nil && fi.IsDir()
}

// FS returns the file system mounted at /name.
func (t *Tree) FS(name string) (fs.FS, bool) {
	f, ok := t.roots[name]
	return f, ok
}

// Names returns the partitions of the tree, sorted.
func (t *Tree) Names() []string {
	out := make([]string, 0, len(t.roots))
	for n := range t.roots {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Resolve maps a device path ("/product/app/X/X.apk") to its partition and the path inside the
// partition's mount point ("app/X/X.apk", "." for the mount point itself).
func (t *Tree) Resolve(devicePath string) (partition, inner string, err error) {
	if !strings.HasPrefix(devicePath, "/") {
		return "", "", fmt.Errorf("resolving %q: device paths are absolute (e.g. /system/app)", devicePath)
	}
	p := path.Clean(devicePath)
	first, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if _, ok := t.roots[first]; !ok || first == "" {
		return "", "", fmt.Errorf("resolving %s: %w (partitions: %s)", devicePath, ErrNotMounted, strings.Join(t.Names(), ", "))
	}
	if rest == "" {
		rest = "."
	}
	return first, rest, nil
}

// Props loads the build.prop files of the tree in init's order (PropertyLoadBootDefaults):
// /system/build.prop, then <partition>/etc/build.prop of system_ext, system_dlkm, vendor
// (/vendor/default.prop and /vendor/build.prop), vendor_dlkm, odm_dlkm, odm and product, each
// falling back to the legacy <partition>/default.prop and <partition>/build.prop. It returns the
// merged set and the problems of every file (file:line).
func (t *Tree) Props() (*buildprop.Set, []string, error) {
	set := buildprop.NewSet()
	var problems []string
	load := func(devicePath string) (bool, error) {
		part, inner, err := t.Resolve(devicePath)
		if err != nil {
			return false, nil
		}
		data, err := readSmall(t.roots[part], inner, buildprop.MaxFileSize)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("reading %s: %w", devicePath, err)
		}
		f, err := buildprop.Parse(devicePath, data)
		if err != nil {
			return false, err
		}
		set.Add(f)
		problems = append(problems, f.Problems...)
		return true, nil
	}
	for _, p := range MountOrder {
		var files [][]string
		switch p {
		case "system":
			files = [][]string{{"/system/build.prop"}}
		case "vendor":
			files = [][]string{{"/vendor/default.prop", "/vendor/build.prop"}}
		case "system_dlkm", "vendor_dlkm", "odm_dlkm":
			files = [][]string{{"/" + p + "/etc/build.prop"}}
		case "oem":
			continue
		default:
			files = [][]string{{"/" + p + "/etc/build.prop"}, {"/" + p + "/default.prop", "/" + p + "/build.prop"}}
		}
		for _, alt := range files {
			found := false
			for _, f := range alt {
				ok, err := load(f)
				if err != nil {
					return nil, nil, err
				}
				found = found || ok
			}
			if found {
				break
			}
		}
	}
	return set, problems, nil
}

// readSmall reads a whole file of at most limit bytes.
func readSmall(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%d bytes: %w (limit %d)", fi.Size(), buildprop.ErrTooLarge, limit)
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	return b, nil
}
