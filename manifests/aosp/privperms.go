package aosp

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// privpermFS holds one table per Android API level: privperms/api<N>.txt lists the permissions
// whose protectionLevel in that release's frameworks/base/core/res/AndroidManifest.xml carries the
// privileged flag ("privileged", or the legacy "signatureOrSystem"/"system"). A privileged app that
// requests one of them must have it granted or denied in a privapp-permissions allowlist, or the
// device refuses to boot (ro.control_privapp_permissions=enforce) or silently drops the grant.
//
// Each file starts with '#' lines; the one that starts "# source:" names the repository, path and
// commit the table was read from. Then one permission name a line, optionally followed by " # "
// and a note (the android:featureFlag that guards the declaration). Permissions outside the
// platform's manifest (an OEM's, Google's) are not in the tables and are not checked.
//
//go:embed privperms/api*.txt
var privpermFS embed.FS

// privTable is one API level's table.
type privTable struct {
	api    int
	perms  map[string]bool
	source string
}

var (
	privTablesOnce sync.Once
	privTables     map[int]*privTable
)

var (
	tableFileRe = regexp.MustCompile(`^api([0-9]{2})\.txt$`)
	permNameRe  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$`)
)

// loadPrivTables parses the embedded tables once. They are provkit's own data, checked by its
// tests, so a malformed one is a build defect and panics.
func loadPrivTables() map[int]*privTable {
	privTablesOnce.Do(func() {
		tables, err := parsePrivTables()
		if err != nil {
			panic(err)
		}
		privTables = tables
	})
	return privTables
}

func parsePrivTables() (map[int]*privTable, error) {
	ents, err := privpermFS.ReadDir("privperms")
	if err != nil {
		return nil, fmt.Errorf("reading the built-in privileged permission tables: %w", err)
	}
	tables := map[int]*privTable{}
	for _, e := range ents {
		m := tableFileRe.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		api, _ := strconv.Atoi(m[1])
		src, err := privpermFS.ReadFile("privperms/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("reading privperms/%s: %w", e.Name(), err)
		}
		t, err := parsePrivTable(api, e.Name(), src)
		if err != nil {
			return nil, err
		}
		tables[api] = t
	}
	if len(tables) == 0 {
		return nil, fmt.Errorf("no built-in privileged permission table (privperms/api<N>.txt)")
	}
	return tables, nil
}

func parsePrivTable(api int, name string, src []byte) (*privTable, error) {
	t := &privTable{api: api, perms: map[string]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, " #"); i > 0 {
			line = strings.TrimSpace(line[:i]) // a trailing note, e.g. the featureFlag guarding it
		}
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			if s, ok := strings.CutPrefix(line, "# source:"); ok {
				t.source = strings.TrimSpace(s)
			}
		case !permNameRe.MatchString(line):
			return nil, fmt.Errorf("privperms/%s:%d: %q is not a permission name", name, n, line)
		case t.perms[line]:
			return nil, fmt.Errorf("privperms/%s:%d: %s listed twice", name, n, line)
		default:
			t.perms[line] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading privperms/%s: %w", name, err)
	}
	if t.source == "" {
		return nil, fmt.Errorf("privperms/%s: no '# source:' line naming where the table comes from", name)
	}
	if len(t.perms) == 0 {
		return nil, fmt.Errorf("privperms/%s: no permission", name)
	}
	return t, nil
}

// PrivilegedLevels returns the API levels provkit has a built-in table for, ascending.
func PrivilegedLevels() []int {
	var out []int
	for api := range loadPrivTables() {
		out = append(out, api)
	}
	sort.Ints(out)
	return out
}

// PrivilegedPermissions returns the privileged platform permissions of API level api (a copy), with
// where the table was read from. ok is false when provkit has no table for that level.
func PrivilegedPermissions(api int) (set map[string]bool, source string, ok bool) {
	t, found := loadPrivTables()[api]
	if !found {
		return nil, "", false
	}
	set = make(map[string]bool, len(t.perms))
	for p := range t.perms {
		set[p] = true
	}
	return set, t.source, true
}

// tableFor picks the table for api: its own, else the nearest level provkit has (the oldest below
// the first table, the newest above the last, the next older one in a gap), or the newest when api
// is 0 (unknown). why says what was chosen and why when it is not api's own table.
func tableFor(api int) (t *privTable, why string) {
	tables := loadPrivTables()
	if t, ok := tables[api]; ok {
		return t, ""
	}
	levels := PrivilegedLevels()
	newest := levels[len(levels)-1]
	switch {
	case api <= 0:
		return tables[newest], fmt.Sprintf("the tree's Android API level is unknown, so the newest built-in table (API %d) was used; pass the level to use another", newest)
	case api > newest:
		return tables[newest], fmt.Sprintf("provkit has no privileged permission table for API %d; the newest (API %d) was used", api, newest)
	case api < levels[0]:
		return tables[levels[0]], fmt.Sprintf("provkit has no privileged permission table for API %d; the oldest (API %d) was used", api, levels[0])
	}
	i, _ := slices.BinarySearch(levels, api)
	return tables[levels[i-1]], fmt.Sprintf("provkit has no privileged permission table for API %d; API %d's was used", api, levels[i-1])
}

// IsPrivilegedPermission reports whether perm is a platform permission with the privileged
// protection flag in the newest built-in table.
func IsPrivilegedPermission(perm string) bool {
	t, _ := tableFor(0)
	return t.perms[perm]
}

// UncoveredPrivileged returns the privileged platform permissions (of the newest built-in table)
// among requested that are neither granted nor denied, sorted: what a privapp-permissions
// allowlist must still decide. The patcher uses the tree's own declarations, or the table of the
// tree's API level, instead.
func UncoveredPrivileged(requested, granted, denied []string) []string {
	return UncoveredPrivilegedAt(0, requested, granted, denied)
}

// UncoveredPrivilegedAt is UncoveredPrivileged with the table of API level api (0: the newest; a
// level without a table: the nearest, as the patcher chooses).
func UncoveredPrivilegedAt(api int, requested, granted, denied []string) []string {
	c, _ := builtinCatalog(api)
	return c.uncovered(requested, granted, denied)
}
