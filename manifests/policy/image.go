package policy

import (
	"fmt"
	"sort"
	"strings"
)

// Image-level rule IDs: what a firmware image must say about each mandated app. They appear in
// JSON output and reports; scripts match on them, so they never change. Placement is judged with
// the device rules' IDs (RuleSystemApp: on the policy's partition, RulePrivileged: a priv-app when
// required), so an image report and a device report name the same requirement the same way.
const (
	RuleAppPresent     = "app-present"            // an APK on the image declares the package
	RulePrivapp        = "privapp-allowlisted"    // privileged permissions requested are decided by a privapp-permissions file of its partition
	RuleDefaultGrants  = "permissions-pregranted" // grantPermissions are in a default-permissions exception for the package
	RuleInstalledUsers = "installed-for-users"    // sysconfig install-in-user-type does not exclude it
	RuleNotOverridden  = "not-overridden"         // no other copy of the package shadows it; what it overrides is gone
)

// Android user types (UserManager.USER_TYPE_*) and the base types sysconfig files may name.
const (
	UserTypeSystem   = "android.os.usertype.full.SYSTEM"
	userTypeFull     = "android.os.usertype.full."
	userTypeProfile  = "android.os.usertype.profile."
	userTypeHeadless = "android.os.usertype.system.HEADLESS"
)

// baseTypes expands the base user types of sysconfig files to the concrete AOSP user types.
var baseTypes = map[string][]string{
	"FULL":    {UserTypeSystem, userTypeFull + "SECONDARY", userTypeFull + "GUEST", userTypeFull + "DEMO", userTypeFull + "RESTRICTED"},
	"SYSTEM":  {UserTypeSystem, userTypeHeadless},
	"PROFILE": {userTypeProfile + "MANAGED", userTypeProfile + "CLONE", userTypeProfile + "PRIVATE"},
}

// coversUserType reports whether a sysconfig user-type entry applies to the concrete type t.
func coversUserType(entry, t string) bool {
	switch entry {
	case t:
		return true
	case "FULL":
		return strings.HasPrefix(t, userTypeFull)
	case "SYSTEM":
		return t == UserTypeSystem || t == userTypeHeadless
	case "PROFILE":
		return strings.HasPrefix(t, userTypeProfile)
	}
	return false
}

// APKCopy is one APK on the image that declares a package.
type APKCopy struct {
	Partition string `json:"partition"`
	Path      string `json:"path"` // device path: /product/app/X/X.apk
	// ScanDir is the directory the platform scans it from (/product/app); copies in one
	// directory are parsed in parallel, so which one wins is not determined.
	ScanDir     string `json:"scanDir"`
	Privileged  bool   `json:"privileged"` // in a priv-app directory
	VersionCode int64  `json:"versionCode"`
}

// Located is a fact with the file and line that state it.
type Located struct {
	Name  string `json:"name"`
	Where string `json:"where"` // file:line
}

// UserTypeFacts is what sysconfig install-in-user-type entries say about a package.
type UserTypeFacts struct {
	InstallIn      []Located `json:"installIn,omitempty"`
	DoNotInstallIn []Located `json:"doNotInstallIn,omitempty"`
}

// ImageAppFacts is what a firmware image says about one mandated app.
type ImageAppFacts struct {
	// Copies are the APKs that declare the package, in the order the platform scans them
	// (PackageManager keeps the first and skips the others as duplicates).
	Copies []APKCopy `json:"copies"`
	// APK is the verification of Copies[0] (nil without copies).
	APK                  *APKFacts `json:"-"`
	RequestedPermissions []string  `json:"-"`
	TargetSDK            int       `json:"-"`
	// PrivilegedRequested are the requested permissions the platform defines as privileged
	// (read from framework-res.apk); PlatformPermissionsKnown is false when that was not possible.
	PrivilegedRequested      []string `json:"-"`
	PlatformPermissionsKnown bool     `json:"-"`
	// PrivappAllow and PrivappDeny are the privapp-permissions entries for the package on the
	// partition of Copies[0], keyed by permission.
	PrivappAllow map[string]string `json:"-"`
	PrivappDeny  map[string]string `json:"-"`
	// PrivappControl is ro.control_privapp_permissions (enforce, log, disable or "").
	PrivappControl string `json:"-"`
	// DefaultGrants are the default-permissions exceptions for the package, keyed by permission.
	DefaultGrants map[string]string `json:"-"`
	// UserTypes is nil when no install-in-user-type entry names the package.
	UserTypes *UserTypeFacts `json:"-"`
	// OverriddenPresent are packages the app's overrides names that are still on the image, with
	// where.
	OverriddenPresent []Located `json:"-"`
}

// CheckImage judges what an image says about the app: present, on its partition, privileged
// when required, signature, pin and version (CheckAPK on the copy the platform uses), privileged
// permissions allowlisted, permissions pre-granted, installed for the required user types, not
// shadowed by another copy and not left beside what it overrides. Without a copy, only the failed
// app-present check is returned.
func (a *App) CheckImage(f ImageAppFacts) []Check {
	if len(f.Copies) == 0 {
		where := "any partition"
		if a.Partition != "" {
			where = "/" + a.Partition
		}
		return []Check{{Rule: RuleAppPresent, Pass: false, Detail: fmt.Sprintf("no APK on the image declares package %s (searched the app and priv-app directories of every partition; expected on %s)", a.Package, where)}}
	}
	used := f.Copies[0]
	checks := []Check{{Rule: RuleAppPresent, Pass: true, Detail: fmt.Sprintf("%s declares %s (versionCode %d)", used.Path, a.Package, used.VersionCode)}}
	switch {
	case a.Partition == "":
		checks = append(checks, Check{Rule: RuleSystemApp, Pass: true, Detail: fmt.Sprintf("on %s; the policy accepts any partition", used.Partition)})
	case used.Partition == a.Partition:
		checks = append(checks, Check{Rule: RuleSystemApp, Pass: true, Detail: fmt.Sprintf("on %s as required", used.Partition)})
	default:
		checks = append(checks, Check{Rule: RuleSystemApp, Pass: false, Detail: fmt.Sprintf("the copy Android uses is %s, on %s; the policy requires %s", used.Path, used.Partition, a.Partition)})
	}
	switch {
	case a.Privileged && !used.Privileged:
		checks = append(checks, Check{Rule: RulePrivileged, Pass: false, Detail: fmt.Sprintf("%s is not in a priv-app directory; the policy requires a privileged app", used.Path)})
	case a.Privileged:
		checks = append(checks, Check{Rule: RulePrivileged, Pass: true, Detail: "in a priv-app directory as required"})
	default:
		what := "an app directory"
		if used.Privileged {
			what = "a priv-app directory"
		}
		checks = append(checks, Check{Rule: RulePrivileged, Pass: true, Detail: "in " + what + "; the policy does not require a privileged app"})
	}
	if f.APK != nil {
		checks = append(checks, a.CheckAPK(*f.APK)...)
	}
	checks = append(checks, a.checkPrivapp(f, used), a.checkDefaultGrants(f), a.checkUserTypes(f), a.checkOverrides(f))
	return checks
}

func (a *App) checkPrivapp(f ImageAppFacts, used APKCopy) Check {
	c := Check{Rule: RulePrivapp}
	if !used.Privileged {
		c.Pass, c.Detail = true, "not a privileged app: privapp-permissions do not apply"
		return c
	}
	requested := map[string]bool{}
	for _, p := range f.RequestedPermissions {
		requested[p] = true
	}
	var missing, wrong []string
	decided := 0
	need := map[string]bool{}
	for _, p := range f.PrivilegedRequested {
		need[p] = true
	}
	for _, p := range a.PrivappPermissions {
		if _, ok := f.PrivappAllow[p]; !ok {
			if w, denied := f.PrivappDeny[p]; denied {
				wrong = append(wrong, fmt.Sprintf("%s is denied at %s but the policy grants it", p, w))
			} else {
				missing = append(missing, p)
			}
		} else {
			decided++
		}
		delete(need, p)
	}
	for _, p := range a.DenyPrivappPermissions {
		_, denied := f.PrivappDeny[p]
		if w, ok := f.PrivappAllow[p]; ok {
			wrong = append(wrong, fmt.Sprintf("%s is granted at %s but the policy denies it", p, w))
		} else if denied {
			decided++
		} else if requested[p] {
			missing = append(missing, p+" (as deny-permission)")
		}
		delete(need, p)
	}
	for p := range need {
		_, allow := f.PrivappAllow[p]
		_, deny := f.PrivappDeny[p]
		if allow || deny {
			decided++
		} else {
			missing = append(missing, p)
		}
	}
	sort.Strings(missing)
	control := f.PrivappControl
	if control == "" {
		control = "unset"
	}
	note := ""
	if !f.PlatformPermissionsKnown {
		note = "; the platform's permission definitions (framework-res.apk) were not read, so only the policy's privappPermissions and denyPrivappPermissions were checked"
	}
	switch {
	case len(wrong) > 0:
		c.Detail = strings.Join(wrong, "; ") + note
	case len(missing) > 0:
		c.Detail = fmt.Sprintf("privileged permissions requested but in no privapp-permissions file of /%s for %s: %s (ro.control_privapp_permissions=%s: with enforce the device does not boot)%s",
			used.Partition, a.Package, strings.Join(missing, ", "), control, note)
	default:
		c.Pass = true
		c.Detail = fmt.Sprintf("%s decided by privapp-permissions files of /%s%s", count(decided, "privileged permission", "privileged permissions"), used.Partition, note)
	}
	return c
}

func (a *App) checkDefaultGrants(f ImageAppFacts) Check {
	c := Check{Rule: RuleDefaultGrants}
	if len(a.GrantPermissions) == 0 {
		c.Pass, c.Detail = true, "the policy requires no pre-granted permission"
		return c
	}
	if f.TargetSDK > 0 && f.TargetSDK <= 22 {
		c.Pass, c.Detail = true, fmt.Sprintf("targets SDK %d: runtime permissions are granted at install", f.TargetSDK)
		return c
	}
	requested := map[string]bool{}
	for _, p := range f.RequestedPermissions {
		requested[p] = true
	}
	var missing, notRequested, where []string
	for _, p := range a.GrantPermissions {
		w, ok := f.DefaultGrants[p]
		switch {
		case !ok:
			missing = append(missing, p)
		case !requested[p]:
			notRequested = append(notRequested, p)
		default:
			where = append(where, p+" at "+w)
		}
	}
	switch {
	case len(missing) > 0:
		c.Detail = fmt.Sprintf("no default-permissions exception grants %s to %s (etc/default-permissions/*.xml of system, vendor, odm, product, system_ext)", strings.Join(missing, ", "), a.Package)
	case len(notRequested) > 0:
		c.Detail = fmt.Sprintf("granted by default-permissions but not requested by the APK, so never granted: %s", strings.Join(notRequested, ", "))
	default:
		c.Pass, c.Detail = true, "pre-granted: "+strings.Join(where, "; ")
	}
	return c
}

func (a *App) checkUserTypes(f ImageAppFacts) Check {
	c := Check{Rule: RuleInstalledUsers}
	required := a.InstallInUserTypes
	if len(required) == 0 {
		required = []string{UserTypeSystem}
	}
	var concrete []string
	for _, r := range required {
		if exp, ok := baseTypes[r]; ok {
			concrete = append(concrete, exp...)
		} else {
			concrete = append(concrete, r)
		}
	}
	u := f.UserTypes
	if u == nil {
		c.Pass = true
		c.Detail = "no install-in-user-type entry names the package: installed for every user type unless the device enforces the preinstalled-packages allowlist without implicit allowlisting (config_userTypePackageWhitelistMode, a framework resource provkit does not read)"
		return c
	}
	var excluded []string
	for _, t := range concrete {
		var in, out []string
		for _, e := range u.InstallIn {
			if coversUserType(e.Name, t) {
				in = append(in, e.Name+" at "+e.Where)
			}
		}
		for _, e := range u.DoNotInstallIn {
			if coversUserType(e.Name, t) {
				out = append(out, e.Name+" at "+e.Where)
			}
		}
		switch {
		case len(out) > 0:
			excluded = append(excluded, fmt.Sprintf("%s excluded by do-not-install-in %s", t, strings.Join(out, ", ")))
		case len(in) == 0:
			excluded = append(excluded, fmt.Sprintf("%s not among the install-in user types (%s)", t, locatedNames(u.InstallIn)))
		}
	}
	if len(excluded) > 0 {
		c.Detail = "sysconfig preinstalled-packages keep the app from users: " + strings.Join(excluded, "; ")
		return c
	}
	c.Pass = true
	c.Detail = fmt.Sprintf("installed for %s (install-in %s)", strings.Join(required, ", "), locatedNames(u.InstallIn))
	return c
}

func locatedNames(l []Located) string {
	if len(l) == 0 {
		return "none"
	}
	var out []string
	for _, e := range l {
		out = append(out, e.Name+" at "+e.Where)
	}
	return strings.Join(out, ", ")
}

func (a *App) checkOverrides(f ImageAppFacts) Check {
	c := Check{Rule: RuleNotOverridden}
	used := f.Copies[0]
	var problems []string
	// The policy's copy: the first on the policy's partition (any copy when none is named).
	mine := -1
	for i, cp := range f.Copies {
		if a.Partition == "" || cp.Partition == a.Partition {
			mine = i
			break
		}
	}
	switch {
	case mine > 0:
		problems = append(problems, fmt.Sprintf("%s is shadowed by %s, which the platform scans first (the later copy is skipped as a duplicate)", f.Copies[mine].Path, used.Path))
	case len(f.Copies) > 1 && f.Copies[1].ScanDir == used.ScanDir:
		problems = append(problems, fmt.Sprintf("%s and %s declare the same package in one directory: which one the platform keeps is not determined", used.Path, f.Copies[1].Path))
	}
	for _, o := range f.OverriddenPresent {
		problems = append(problems, fmt.Sprintf("the app overrides %s but it is still on the image at %s", o.Name, o.Where))
	}
	if len(problems) > 0 {
		c.Detail = strings.Join(problems, "; ")
		return c
	}
	c.Pass = true
	if len(f.Copies) > 1 {
		var others []string
		for _, cp := range f.Copies[1:] {
			others = append(others, cp.Path)
		}
		c.Detail = fmt.Sprintf("%s is the copy the platform keeps; skipped duplicates: %s", used.Path, strings.Join(others, ", "))
	} else {
		c.Detail = "no other APK declares the package"
	}
	return c
}
