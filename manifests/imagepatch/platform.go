package imagepatch

import (
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"github.com/provkit/provkit/firmware/apk"
	"github.com/provkit/provkit/firmware/buildprop"
	"github.com/provkit/provkit/firmware/image"
	"github.com/provkit/provkit/manifests/aosp"
)

// maxFrameworkRes bounds the framework-res.apk read for the platform's permissions (tens of MiB
// in real builds).
const maxFrameworkRes = 256 << 20

// privilegedCheck decides which permissions a privileged app requests that the policy must grant
// or deny: the firmware's own platform declarations (framework-res.apk) when it has them, else
// provkit's built-in table for the firmware's API level (ro.build.version.sdk), else the newest
// table. source says which, for the report's notes.
type privilegedCheck struct {
	platform map[string]bool // from framework-res.apk; nil when not read
	api      int             // the table's level when platform is nil (0: newest)
	source   string
}

func (c *privilegedCheck) uncovered(requested, granted, denied []string) []string {
	if c.platform == nil {
		return aosp.UncoveredPrivilegedAt(c.api, requested, granted, denied)
	}
	return aosp.Uncovered(func(p string) bool { return c.platform[p] }, requested, granted, denied)
}

// platformPrivileged reads what the firmware says about its platform's privileged permissions.
// A firmware without a readable system partition falls back to the built-in tables; a corrupt
// framework-res.apk is an error (the firmware is damaged, and guessing would hide it).
func platformPrivileged(im *image.Image) (*privilegedCheck, error) {
	sys := im.Lookup("system")
	var sfs fs.FS
	if sys != nil && sys.Err == nil {
		sfs, _ = sys.FS()
	}
	if sfs != nil {
		for _, p := range []string{"system/framework/framework-res.apk", "framework/framework-res.apk"} {
			decls, err := readPlatformPermissions(sfs, p)
			if err == fs.ErrNotExist {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("reading the platform's permissions in system:%s: %w", p, err)
			}
			c := &privilegedCheck{platform: decls, source: fmt.Sprintf("the firmware's own /system/%s (%d privileged permissions)", strings.TrimPrefix(p, "system/"), len(decls))}
			return c, nil
		}
		for _, p := range []string{"system/build.prop", "build.prop"} {
			b, err := readSmall(sfs, p, 1<<20)
			if err != nil {
				continue
			}
			f, err := buildprop.Parse("system:"+p, b)
			if err != nil {
				continue
			}
			s := buildprop.NewSet()
			s.Add(f)
			if v := s.Value("ro.build.version.sdk"); v != "" {
				if api, err := strconv.Atoi(v); err == nil && api > 0 && api < 1000 {
					return &privilegedCheck{api: api, source: fmt.Sprintf("provkit's built-in table for API %d (ro.build.version.sdk in /system/%s; the firmware has no framework-res.apk)", api, strings.TrimPrefix(p, "system/"))}, nil
				}
			}
		}
	}
	levels := aosp.PrivilegedLevels()
	return &privilegedCheck{source: fmt.Sprintf("provkit's newest built-in table (API %d): the firmware has neither framework-res.apk nor ro.build.version.sdk in a system build.prop", levels[len(levels)-1])}, nil
}

func readPlatformPermissions(fsys fs.FS, p string) (map[string]bool, error) {
	fi, err := fs.Stat(fsys, p)
	if err != nil {
		return nil, fs.ErrNotExist
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxFrameworkRes {
		return nil, fmt.Errorf("not a regular file of at most %d bytes (%d bytes, %v)", maxFrameworkRes, fi.Size(), fi.Mode())
	}
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ra, ok := f.(io.ReaderAt)
	if !ok {
		b, err := io.ReadAll(io.LimitReader(f, maxFrameworkRes))
		if err != nil {
			return nil, err
		}
		ra = strings.NewReader(string(b))
	}
	pkg, decls, err := apk.ReadDeclaredPermissions(ra, fi.Size())
	if err != nil {
		return nil, err
	}
	if pkg != "android" {
		return nil, fmt.Errorf("it declares package %q, not android", pkg)
	}
	out := map[string]bool{}
	for _, d := range decls {
		if d.Privileged() {
			out[d.Name] = true
		}
	}
	return out, nil
}

func readSmall(fsys fs.FS, p string, limit int64) ([]byte, error) {
	fi, err := fs.Stat(fsys, p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > limit {
		return nil, fmt.Errorf("%s: not a regular file of at most %d bytes", p, limit)
	}
	return fs.ReadFile(fsys, p)
}
