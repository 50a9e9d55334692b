package check

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrParse is wrapped by every error about device output that does not say what it must.
var ErrParse = errors.New("unexpected device output")

// Bounds on the device output each parser accepts; the check asks the device for no more
// (adb.ShellLimit stops a command that prints more), so a hostile phone costs at most this much
// memory per command. `dumpsys package <pkg>` of one package is a few KiB on real phones (the
// samples in testdata/real are 3-8 KiB), 4 MiB leaves a thousandfold margin; `pm path` and
// `pm list packages <pkg>` print a line or a few.
const (
	MaxDumpsysOutput = 4 << 20
	MaxPmOutput      = 1 << 20
)

// PackageDump is what `dumpsys package <pkg>` says about one package.
type PackageDump struct {
	// Active is the package's block under "Packages:" (nil when the package is unknown).
	Active *PackageBlock
	// Hidden is the block under "Hidden system packages:": the system copy under an update.
	Hidden *PackageBlock
}

// PackageBlock is one "Package [name] (hash):" block (Settings.dumpPackageLPr).
type PackageBlock struct {
	Name         string
	AppID        int // userId= up to Android 13, appId= from 14; -1 when absent
	CodePath     string
	VersionCode  int64 // -1 when absent
	VersionName  string
	Flags        []string // flags=[ ... ] (or pkgFlags=)
	PrivateFlags []string // privateFlags=[ ... ] (or privatePkgFlags=)
	// InstallPermissions are the package-wide install-time permissions and whether each is granted.
	InstallPermissions map[string]bool
	// Users holds the per-user state lines, by user id.
	Users map[int]*UserState
}

// UserState is one "User <n>: ..." line of a package block and the lists under it.
type UserState struct {
	Installed bool
	Hidden    bool
	Suspended bool
	Enabled   int // 0 default, 1 enabled, 2 disabled, 3 disabled-user, 4 disabled-until-used
	// Runtime holds the user's runtime permissions and whether each is granted.
	Runtime map[string]bool
	// InstallPermissions are per-user install permissions (some releases list them under the user).
	InstallPermissions map[string]bool
}

// HasFlag reports whether the block's flags or private flags hold name.
func (b *PackageBlock) HasFlag(name string) bool {
	for _, f := range b.Flags {
		if f == name {
			return true
		}
	}
	for _, f := range b.PrivateFlags {
		if f == name {
			return true
		}
	}
	return false
}

// Granted reports whether perm is granted to user (as a runtime permission of that user, or an
// install permission).
func (b *PackageBlock) Granted(user int, perm string) bool {
	if u := b.Users[user]; u != nil {
		if g, ok := u.Runtime[perm]; ok {
			return g
		}
		if g, ok := u.InstallPermissions[perm]; ok {
			return g
		}
	}
	return b.InstallPermissions[perm]
}

func indentOf(line string) int {
	n := 0
	for _, r := range line {
		switch r {
		case ' ':
			n++
		case '\t':
			n += 8
		default:
			return n
		}
	}
	return n
}

// ParseDumpsysPackage extracts pkg's blocks from `dumpsys package <pkg>` output, for Android 10 to
// 15 (and tolerant of what later releases and OEMs add). Sections and fields it does not know are
// skipped; the facts it extracts are checked: a block without codePath, a User line without
// installed= or enabled=, two different values for one fact, or two blocks for the package in
// one section are errors. A package the device does not know gives a dump with Active nil.
func ParseDumpsysPackage(out, pkg string) (*PackageDump, error) {
	if len(out) > MaxDumpsysOutput {
		return nil, fmt.Errorf("%w: dumpsys output of %d bytes, max %d", ErrParse, len(out), MaxDumpsysOutput)
	}
	d := &PackageDump{}
	var (
		section     string
		cur         *PackageBlock
		blockIndent = -1
		fieldIndent = -1
		field       string // the last field-level header ("install permissions:", "User 0:")
		user        *UserState
		userSub     string
		subIndent   = -1
	)
	finish := func(lineNo int) error {
		if cur == nil {
			return nil
		}
		b := cur
		cur = nil
		if b.CodePath == "" {
			return fmt.Errorf("%w: the %q block of %s (ending line %d) has no codePath", ErrParse, section, b.Name, lineNo)
		}
		if b.Users[0] == nil {
			return fmt.Errorf("%w: the %q block of %s (ending line %d) has no \"User 0:\" line", ErrParse, section, b.Name, lineNo)
		}
		return nil
	}
	lines := strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n")
	for i, raw := range lines {
		lineNo := i + 1
		t := strings.TrimSpace(raw)
		if t == "" {
			continue
		}
		ind := indentOf(raw)
		if ind == 0 {
			if err := finish(lineNo); err != nil {
				return nil, err
			}
			section = t
			continue
		}
		if section != "Packages:" && section != "Hidden system packages:" {
			continue
		}
		if strings.HasPrefix(t, "Package [") && (cur == nil || ind <= blockIndent) {
			if err := finish(lineNo); err != nil {
				return nil, err
			}
			name, _, ok := strings.Cut(t[len("Package ["):], "]")
			if !ok || name != pkg {
				continue
			}
			b := &PackageBlock{Name: name, AppID: -1, VersionCode: -1, InstallPermissions: map[string]bool{}, Users: map[int]*UserState{}}
			slot := &d.Active
			if section == "Hidden system packages:" {
				slot = &d.Hidden
			}
			if *slot != nil {
				return nil, fmt.Errorf("%w: line %d: a second %q block for %s", ErrParse, lineNo, section, pkg)
			}
			*slot = b
			cur, blockIndent, fieldIndent, field, user = b, ind, -1, "", nil
			continue
		}
		if cur == nil {
			continue
		}
		if ind <= blockIndent {
			if err := finish(lineNo); err != nil {
				return nil, err
			}
			continue
		}
		if fieldIndent < 0 {
			fieldIndent = ind
		}
		if ind <= fieldIndent {
			// A field of the package.
			field, user, userSub = "", nil, ""
			if err := parseField(cur, t, lineNo); err != nil {
				return nil, err
			}
			if strings.HasPrefix(t, "User ") {
				u, err := parseUserLine(cur, t, lineNo)
				if err != nil {
					return nil, err
				}
				user, field = u, "user"
			} else if strings.HasSuffix(t, ":") && !strings.Contains(t, "=") {
				field = strings.TrimSuffix(t, ":")
			}
			continue
		}
		// Deeper than a field: an item of the last field-level list.
		switch {
		case user != nil:
			if userSub == "" || ind <= subIndent {
				userSub = ""
				if strings.HasSuffix(t, ":") && !strings.Contains(t, "=") {
					userSub, subIndent = strings.TrimSuffix(t, ":"), ind
				}
				continue
			}
			switch userSub {
			case "runtime permissions":
				if err := addPermission(user.Runtime, t, lineNo); err != nil {
					return nil, err
				}
			case "install permissions":
				if err := addPermission(user.InstallPermissions, t, lineNo); err != nil {
					return nil, err
				}
			}
		case field == "install permissions":
			if err := addPermission(cur.InstallPermissions, t, lineNo); err != nil {
				return nil, err
			}
		}
	}
	if err := finish(len(lines)); err != nil {
		return nil, err
	}
	return d, nil
}

// setOnce records a fact, refusing two different values for it.
func setOnce(dst *string, val, what string, lineNo int) error {
	if *dst != "" && *dst != val {
		return fmt.Errorf("%w: line %d: %s %q, but earlier %q", ErrParse, lineNo, what, val, *dst)
	}
	*dst = val
	return nil
}

func parseField(b *PackageBlock, t string, lineNo int) error {
	key, val, ok := strings.Cut(t, "=")
	if !ok || strings.ContainsAny(key, " :") {
		return nil
	}
	switch key {
	case "userId", "appId":
		f := strings.Fields(val)
		if len(f) == 0 {
			return nil
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n < 0 {
			return fmt.Errorf("%w: line %d: %s=%q is not a number", ErrParse, lineNo, key, val)
		}
		b.AppID = n
	case "codePath":
		if !strings.HasPrefix(val, "/") {
			return fmt.Errorf("%w: line %d: codePath %q is not an absolute path", ErrParse, lineNo, val)
		}
		return setOnce(&b.CodePath, val, "codePath", lineNo)
	case "versionCode":
		f := strings.Fields(val)
		if len(f) == 0 {
			return fmt.Errorf("%w: line %d: empty versionCode", ErrParse, lineNo)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: line %d: versionCode %q is not a number", ErrParse, lineNo, f[0])
		}
		if b.VersionCode >= 0 && b.VersionCode != n {
			return fmt.Errorf("%w: line %d: versionCode %d, but earlier %d", ErrParse, lineNo, n, b.VersionCode)
		}
		b.VersionCode = n
	case "versionName":
		b.VersionName = val
	case "flags", "pkgFlags":
		if b.Flags == nil || key == "flags" {
			b.Flags = bracketList(val)
		}
	case "privateFlags", "privatePkgFlags":
		if b.PrivateFlags == nil || key == "privateFlags" {
			b.PrivateFlags = bracketList(val)
		}
	}
	return nil
}

func bracketList(v string) []string {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "[")
	v = strings.TrimSuffix(v, "]")
	f := strings.Fields(v)
	if f == nil {
		f = []string{}
	}
	return f
}

// parseUserLine reads "User 0: ceDataInode=... installed=true hidden=false ... enabled=0 ...".
func parseUserLine(b *PackageBlock, t string, lineNo int) (*UserState, error) {
	head, rest, ok := strings.Cut(t, ":")
	if !ok {
		return nil, fmt.Errorf("%w: line %d: %q: want \"User <n>: ...\"", ErrParse, lineNo, t)
	}
	id, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "User ")))
	if err != nil || id < 0 {
		return nil, fmt.Errorf("%w: line %d: %q: bad user id", ErrParse, lineNo, head)
	}
	u := &UserState{Enabled: -1, Runtime: map[string]bool{}, InstallPermissions: map[string]bool{}}
	haveInstalled := false
	for _, kv := range strings.Fields(rest) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch k {
		case "installed", "hidden", "suspended":
			bv, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %s=%q is not true or false", ErrParse, lineNo, k, v)
			}
			switch k {
			case "installed":
				u.Installed, haveInstalled = bv, true
			case "hidden":
				u.Hidden = bv
			case "suspended":
				u.Suspended = bv
			}
		case "enabled":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 4 {
				return nil, fmt.Errorf("%w: line %d: enabled=%q is not an enabled state (0-4)", ErrParse, lineNo, v)
			}
			u.Enabled = n
		}
	}
	if !haveInstalled || u.Enabled < 0 {
		return nil, fmt.Errorf("%w: line %d: %q lacks installed= or enabled=", ErrParse, lineNo, truncate(t, 120))
	}
	if old := b.Users[id]; old != nil {
		if old.Installed != u.Installed || old.Enabled != u.Enabled {
			return nil, fmt.Errorf("%w: line %d: a second \"User %d:\" line that disagrees with the first", ErrParse, lineNo, id)
		}
		return old, nil
	}
	b.Users[id] = u
	return u, nil
}

// addPermission reads "android.permission.X: granted=true[, flags=[ ... ]]". Lines of another shape
// (elisions, notes) are skipped. A permission listed twice counts as granted only if granted both
// times.
func addPermission(m map[string]bool, t string, lineNo int) error {
	name, rest, ok := strings.Cut(t, ": ")
	if !ok || strings.ContainsAny(name, " \t") {
		return nil
	}
	_, g, ok := strings.Cut(rest, "granted=")
	if !ok {
		return nil
	}
	g, _, _ = strings.Cut(g, ",")
	g = strings.TrimSpace(g)
	granted, err := strconv.ParseBool(g)
	if err != nil {
		return fmt.Errorf("%w: line %d: permission %s granted=%q is not true or false", ErrParse, lineNo, name, g)
	}
	if old, seen := m[name]; seen {
		granted = granted && old
	}
	m[name] = granted
	return nil
}

// ParsePmPath parses `pm path <pkg>`: one "package:<apk path>" line per APK (base first, then
// splits). An app not installed for the user prints nothing (and pm exits 1).
func ParsePmPath(out string) ([]string, error) {
	if len(out) > MaxPmOutput {
		return nil, fmt.Errorf("%w: pm path output of %d bytes", ErrParse, len(out))
	}
	var paths []string
	for i, line := range strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n") {
		t := strings.TrimSpace(line)
		if t == "" {
			continue
		}
		p, ok := strings.CutPrefix(t, "package:")
		if !ok || !strings.HasPrefix(p, "/") || strings.Contains(p, "/../") {
			return nil, fmt.Errorf("%w: pm path line %d %q: want \"package:/path/to.apk\"", ErrParse, i+1, truncate(t, 120))
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// ListEntry is one line of `pm list packages [-f] [-U] [--show-versioncode] [-i]`.
type ListEntry struct {
	Package     string
	Path        string // with -f: the base APK
	VersionCode int64  // with --show-versioncode; -1 otherwise
	UID         int    // with -U: the first uid listed; -1 otherwise
	UIDs        []int  // with -U: every uid listed (one per user on builds that print several)
	Installer   string // with -i
}

// ParsePmList parses `pm list packages` output with any of -f, -U, --show-versioncode and -i. The
// path and package of -f are split at the last "=" (a /data/app path holds "==" of its own).
// Unknown extra columns are ignored; a line that does not start with "package:" is an error.
func ParsePmList(out string) ([]ListEntry, error) {
	if len(out) > MaxPmOutput {
		return nil, fmt.Errorf("%w: pm list output of %d bytes", ErrParse, len(out))
	}
	var list []ListEntry
	for i, line := range strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n") {
		t := strings.TrimSpace(line)
		if t == "" {
			continue
		}
		fields := strings.Fields(t)
		first, ok := strings.CutPrefix(fields[0], "package:")
		if !ok || first == "" {
			return nil, fmt.Errorf("%w: pm list line %d %q: want \"package:...\"", ErrParse, i+1, truncate(t, 120))
		}
		e := ListEntry{Package: first, VersionCode: -1, UID: -1}
		if j := strings.LastIndexByte(first, '='); j >= 0 {
			e.Path, e.Package = first[:j], first[j+1:]
			if !strings.HasPrefix(e.Path, "/") || e.Package == "" {
				return nil, fmt.Errorf("%w: pm list line %d %q: want \"package:/path=name\"", ErrParse, i+1, truncate(t, 120))
			}
		}
		for _, f := range fields[1:] {
			switch {
			case strings.HasPrefix(f, "versionCode:"):
				n, err := strconv.ParseInt(f[len("versionCode:"):], 10, 64)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("%w: pm list line %d: bad %q", ErrParse, i+1, f)
				}
				e.VersionCode = n
			case strings.HasPrefix(f, "uid:"):
				// One uid; some builds list one per user ("uid:10301,1010301") for --user all.
				for k, u := range strings.Split(f[len("uid:"):], ",") {
					n, err := strconv.Atoi(u)
					if err != nil || n < 0 {
						return nil, fmt.Errorf("%w: pm list line %d: bad %q", ErrParse, i+1, f)
					}
					if k == 0 {
						e.UID = n
					}
					e.UIDs = append(e.UIDs, n)
				}
			case strings.HasPrefix(f, "installer="):
				e.Installer = f[len("installer="):]
			}
		}
		list = append(list, e)
	}
	return list, nil
}

// ParseSha256sum reads toybox `sha256sum <file>` output ("<64 hex>  <file>") and returns the digest
// in lowercase.
func ParseSha256sum(out string) (string, error) {
	f := strings.Fields(out)
	if len(f) < 1 || len(f[0]) != 64 {
		return "", fmt.Errorf("%w: sha256sum printed %q", ErrParse, truncate(out, 120))
	}
	d := strings.ToLower(f[0])
	for _, c := range d {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("%w: sha256sum printed %q", ErrParse, truncate(out, 120))
		}
	}
	return d, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
