package imagepatch

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/provkit/provkit/firmware/erofs"
	"github.com/provkit/provkit/firmware/ext4"
	"github.com/provkit/provkit/firmware/fsconfig"
	"github.com/provkit/provkit/firmware/image"
)

// newAttrs is what a new file or directory gets: the SELinux label file_contexts gives it, and the
// mode, owner and capabilities of the firmware's fs_config (AOSP's defaults when it has none).
type newAttrs struct {
	label    string
	xattrs   map[string][]byte
	perm     uint16 // permission bits, set-id and sticky included
	uid, gid uint32
	source   string // the fs_config record used ("" for AOSP's defaults)
}

// attrsFor gives device path dp ("product/app/X/X.apk") its attributes.
// The label is stored with a trailing NUL when nul is set (as e2fsdroid and libselinux write it),
// without one otherwise (as mkfs.erofs 1.5 writes it): the kernel takes either.
func attrsFor(c *fsconfig.Config, dp string, dir bool, label string, nul bool) newAttrs {
	e := c.Lookup(dp, dir)
	value := []byte(label)
	if nul {
		value = append(value, 0)
	}
	a := newAttrs{label: label, perm: e.Mode & 0o7777, uid: uint32(e.UID), gid: uint32(e.GID), source: e.Source,
		xattrs: map[string][]byte{"security.selinux": value}}
	if e.Capabilities != 0 && !dir {
		a.xattrs["security.capability"] = capabilityXattr(e.Capabilities)
	}
	return a
}

// capabilityXattr encodes file capabilities as the kernel's vfs_cap_data revision 2 (what
// e2fsdroid and mkfs.erofs write for an fs_config record with capabilities): permitted and
// effective, nothing inheritable.
func capabilityXattr(caps uint64) []byte {
	const revision2, effective = 0x02000000, 0x1
	b := make([]byte, 20)
	le := binary.LittleEndian
	le.PutUint32(b[0:], revision2|effective)
	le.PutUint32(b[4:], uint32(caps))      // permitted, low word
	le.PutUint32(b[8:], 0)                 // inheritable, low word
	le.PutUint32(b[12:], uint32(caps>>32)) // permitted, high word
	le.PutUint32(b[16:], 0)                // inheritable, high word
	return b
}

func (a newAttrs) ext4(mtime time.Time) ext4.Meta {
	return ext4.Meta{Perm: a.perm, UID: a.uid, GID: a.gid, Mtime: mtime, Xattrs: a.xattrs}
}

func (a newAttrs) file(path string, size int64, sum string) File {
	return File{Path: path, Size: size, Mode: fmt.Sprintf("%04o", a.perm), UID: a.uid, GID: a.gid, Label: a.label, SHA256: sum, FSConfig: a.source}
}

// loadFSConfig reads the fs_config files of the firmware (system, vendor, oem, odm, product,
// system_ext), the patched partition's from its own file system src.
func loadFSConfig(im *image.Image, name string, src fs.FS) (*fsconfig.Config, error) {
	parts := map[string]fs.FS{name: src}
	for _, pn := range fsconfig.Partitions {
		if pn == name {
			continue
		}
		if p := im.Lookup(pn); p != nil && p.Err == nil {
			if fsys, err := p.FS(); err == nil {
				parts[pn] = fsys
			}
		}
	}
	c, err := fsconfig.Load(parts)
	if err != nil {
		return nil, fmt.Errorf("reading the firmware's fs_config (the modes and owners its build gives paths): %w", err)
	}
	return c, nil
}

// labelsEndInNUL reports how the image stores its labels, from its root directory's: with a
// trailing NUL (e2fsdroid, and the default when the root has no label) or without (mkfs.erofs
// 1.5), so that new files are stored as the image's own are.
func labelsEndInNUL(src fs.FS, root string) bool {
	dir := strings.TrimSuffix(root, "/")
	if dir == "" {
		dir = "."
	}
	fi, err := fs.Stat(src, dir)
	if err != nil {
		return true
	}
	var x map[string][]byte
	switch in := fi.Sys().(type) {
	case *erofs.Inode:
		x = in.Xattrs()
	case *ext4.Inode:
		x = in.Xattrs()
	}
	v, ok := x["security.selinux"]
	return !ok || len(v) == 0 || v[len(v)-1] == 0
}
