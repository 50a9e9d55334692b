package policy

import (
	"fmt"
	"sort"
	"strings"
)

// Device-level rule IDs, next to the APK rules in check.go. They appear in `provkit check` JSON
// output; scripts match on them, so they never change.
const (
	RuleInstalled   = "app-installed"        // the package is on the device and installed for user 0 (or removed by the user where the policy allows it)
	RuleSystemApp   = "system-app"           // a preinstalled app whose system copy lives on the policy's partition
	RuleSystemCopy  = "system-copy-verified" // an update in /data sits on an intact, genuine, pinned system copy
	RulePrivileged  = "privileged"           // a priv-app when the policy requires one
	RuleEnabled     = "app-enabled"          // enabled for user 0 (state 0 default or 1 enabled)
	RulePermissions = "permissions-granted"  // the policy's grantPermissions are granted for user 0
)

// DeviceRules lists every rule a device check can report, in report order.
var DeviceRules = []string{RuleFingerprint, RuleInstalled, RuleSystemApp, RuleSystemCopy, RulePrivileged,
	RuleEnabled, RulePermissions, RuleSignature, RuleSignerPin, RuleMinVersion}

// Enabled states of an app for a user (PackageManager COMPONENT_ENABLED_STATE_*).
const (
	EnabledDefault          = 0
	EnabledEnabled          = 1
	EnabledDisabled         = 2
	EnabledDisabledUser     = 3
	EnabledDisabledUntilUse = 4
)

// EnabledStateName names an enabled state as `pm` does.
func EnabledStateName(s int) string {
	switch s {
	case EnabledDefault:
		return "default"
	case EnabledEnabled:
		return "enabled"
	case EnabledDisabled:
		return "disabled"
	case EnabledDisabledUser:
		return "disabled-user"
	case EnabledDisabledUntilUse:
		return "disabled-until-used"
	}
	return fmt.Sprintf("unknown state %d", s)
}

// DeviceAppFacts is what provision/check established about one mandated app on a live device. The
// device's own words (paths, flags, user state) come from its package manager; everything about
// the APK bytes (signers, versionCode) comes from files pulled and verified on the host.
type DeviceAppFacts struct {
	Package string
	// Present: the device knows the package at all (dumpsys shows it).
	Present bool
	// InstalledUser0: installed for user 0 (pm path names an APK, dumpsys says installed=true).
	InstalledUser0 bool
	// CodePath is the active code path (a directory, or an APK on old layouts).
	CodePath string
	// SystemCodePath is the code path of the system copy: the active one for a system app, the
	// hidden one (under "Hidden system packages") when an update in /data is active; "" when there
	// is none.
	SystemCodePath string
	// Updated: the active copy is an update over a system copy (UPDATED_SYSTEM_APP or a hidden
	// system package).
	Updated bool
	// Privileged: the system copy is a priv-app (privateFlags PRIVILEGED, or a priv-app path).
	Privileged bool
	// EnabledState for user 0 (0..4).
	EnabledState int
	// Granted lists the permissions granted to user 0 (runtime and install permissions).
	Granted map[string]bool
	// DeviceVersionCode is what the device reports (-1 when unknown).
	DeviceVersionCode int64
	// APK is the verified active APK (base); nil when it could not be pulled and verified.
	APK *APKFacts
	// APKError says why APK is nil.
	APKError string
	// Splits are the verified split APKs of the active install (each must verify and carry the base's signers).
	Splits []APKFacts
	// System is the verified system copy when Updated (nil when absent or not verified).
	System *APKFacts
	// SystemError says why System is nil when Updated.
	SystemError string
}

// PartitionOf returns the partition a device path lives on: system, system_ext, product, vendor,
// odm, apex or data; "" for anything else. /system/product/..., /system/system_ext/... and
// /system/vendor/... count as product, system_ext and vendor (the layout of devices without
// separate partitions).
func PartitionOf(p string) string {
	p = strings.TrimPrefix(p, "/")
	first, rest, _ := strings.Cut(p, "/")
	if first == "system" {
		if second, _, _ := strings.Cut(rest, "/"); second == PartitionProduct || second == PartitionSystemExt || second == PartitionVendor {
			return second
		}
	}
	switch first {
	case PartitionSystem, PartitionSystemExt, PartitionProduct, PartitionVendor, "odm", "apex", "data":
		return first
	}
	return ""
}

// isPrivAppPath reports whether a code path sits in a priv-app directory.
func isPrivAppPath(p string) bool { return strings.Contains(p+"/", "/priv-app/") }

// CheckDeviceApp judges one app's facts from a device. Checks that cannot be judged because an
// earlier one failed (nothing installed, nothing verified) are reported as failed with the reason,
// so the evidence always lists the same rules in the same order.
func (a *App) CheckDeviceApp(f DeviceAppFacts) []Check {
	var checks []Check
	add := func(rule string, pass bool, format string, args ...any) {
		checks = append(checks, Check{Rule: rule, Pass: pass, Detail: fmt.Sprintf(format, args...)})
	}

	// app-installed, with the removable policy.
	removedByUser := false
	switch {
	case !f.Present:
		add(RuleInstalled, false, "%s is not on the device (the package manager does not know it); install the mandated app", a.Package)
		return checks
	case f.InstalledUser0:
		add(RuleInstalled, true, "%s is installed for user 0", a.Package)
	case a.Removable:
		removedByUser = true
		add(RuleInstalled, true, "%s is uninstalled for user 0, which the policy allows (removable: true); the system copy remains", a.Package)
	default:
		add(RuleInstalled, false, "%s is on the device but uninstalled for user 0, and the policy says removable: false; restore it with 'adb shell pm install-existing --user 0 %s'", a.Package, a.Package)
	}

	// system-app: the system copy is on the right partition.
	want := a.Partition
	switch {
	case f.SystemCodePath == "":
		add(RuleSystemApp, false, "%s is not a preinstalled system app: its only copy is %s; it must ship in the firmware on %s", a.Package, orUnknown(f.CodePath), partitionWanted(want))
	default:
		got := PartitionOf(f.SystemCodePath)
		okPart := got == want || (want == "" && (got == PartitionSystem || got == PartitionSystemExt || got == PartitionProduct || got == PartitionVendor))
		if okPart {
			add(RuleSystemApp, true, "system copy at %s (partition %s)", f.SystemCodePath, got)
		} else {
			add(RuleSystemApp, false, "system copy at %s is on partition %q, the policy wants %s", f.SystemCodePath, got, partitionWanted(want))
		}
	}

	// system-copy-verified: only for an update on top of a system copy.
	if f.Updated {
		switch {
		case f.System == nil:
			why := f.SystemError
			if why == "" {
				why = "it could not be read"
			}
			add(RuleSystemCopy, false, "the app runs an update from %s over the system copy %s, which could not be verified: %s", orUnknown(f.CodePath), orUnknown(f.SystemCodePath), why)
		default:
			sc := f.System
			var bad []string
			if sc.Package != a.Package {
				bad = append(bad, fmt.Sprintf("it is package %q", sc.Package))
			}
			for _, c := range a.CheckAPK(*sc) {
				if !c.Pass && c.Rule != RuleMinVersion {
					bad = append(bad, c.Rule+": "+c.Detail)
				}
			}
			if len(bad) > 0 {
				add(RuleSystemCopy, false, "the update in %s sits on a system copy at %s that is not genuine: %s", orUnknown(f.CodePath), f.SystemCodePath, strings.Join(bad, "; "))
			} else {
				add(RuleSystemCopy, true, "the update in %s sits on an intact system copy at %s signed by pinned %s", orUnknown(f.CodePath), f.SystemCodePath, strings.Join(normalizeAll(sc.Signers), ", "))
			}
		}
	} else {
		add(RuleSystemCopy, true, "no update over the system copy")
	}

	// privileged.
	switch {
	case !a.Privileged:
		add(RulePrivileged, true, "the policy does not require a priv-app")
	case f.Privileged || (f.SystemCodePath != "" && isPrivAppPath(f.SystemCodePath)):
		add(RulePrivileged, true, "a priv-app (%s)", f.SystemCodePath)
	default:
		add(RulePrivileged, false, "the policy requires a priv-app, but the system copy %s is not privileged", orUnknown(f.SystemCodePath))
	}

	// app-enabled.
	switch {
	case !a.IsEnabled():
		add(RuleEnabled, true, "the policy does not require the app enabled (state %s)", EnabledStateName(f.EnabledState))
	case removedByUser:
		add(RuleEnabled, true, "not applicable: uninstalled for user 0 (removable: true)")
	case f.EnabledState == EnabledDefault || f.EnabledState == EnabledEnabled:
		add(RuleEnabled, true, "enabled for user 0 (state %d, %s)", f.EnabledState, EnabledStateName(f.EnabledState))
	default:
		add(RuleEnabled, false, "disabled for user 0 (state %d, %s); enable it with 'adb shell pm enable --user 0 %s'", f.EnabledState, EnabledStateName(f.EnabledState), a.Package)
	}

	// permissions-granted.
	switch {
	case len(a.GrantPermissions) == 0:
		add(RulePermissions, true, "the policy pre-grants no permission")
	case removedByUser:
		add(RulePermissions, true, "not applicable: uninstalled for user 0 (removable: true)")
	default:
		var missing []string
		for _, p := range a.GrantPermissions {
			if !f.Granted[p] {
				missing = append(missing, p)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			add(RulePermissions, false, "not granted for user 0: %s", strings.Join(missing, ", "))
		} else {
			add(RulePermissions, true, "granted for user 0: %s", strings.Join(a.GrantPermissions, ", "))
		}
	}

	// The APK rules, on the verified active APK.
	if f.APK == nil {
		why := f.APKError
		if why == "" {
			why = "no APK was pulled"
		}
		add(RuleSignature, false, "the installed APK could not be verified: %s", why)
		add(RuleSignerPin, false, "signer unknown: the installed APK could not be verified")
		add(RuleMinVersion, false, "versionCode unknown: the installed APK could not be verified")
		return checks
	}
	apkChecks := a.CheckAPK(*f.APK)
	if f.APK.Package != a.Package {
		apkChecks[0] = Check{Rule: RuleSignature, Pass: false, Detail: fmt.Sprintf("the APK at the app's path is package %q, not %q", f.APK.Package, a.Package)}
	}
	for i, s := range f.Splits {
		if !s.Verified {
			apkChecks[0] = Check{Rule: RuleSignature, Pass: false, Detail: fmt.Sprintf("split APK %d does not verify: %s", i+1, strings.Join(s.VerifyErrors, "; "))}
			break
		}
		if strings.Join(normalizeAll(s.Signers), ",") != strings.Join(normalizeAll(f.APK.Signers), ",") {
			apkChecks[0] = Check{Rule: RuleSignature, Pass: false, Detail: fmt.Sprintf("split APK %d is signed by %s, the base by %s", i+1, strings.Join(normalizeAll(s.Signers), ", "), strings.Join(normalizeAll(f.APK.Signers), ", "))}
			break
		}
	}
	for i, c := range apkChecks {
		if c.Rule == RuleMinVersion && f.DeviceVersionCode >= 0 && f.DeviceVersionCode != f.APK.VersionCode {
			apkChecks[i] = Check{Rule: RuleMinVersion, Pass: false,
				Detail: fmt.Sprintf("the device reports versionCode %d but the APK it runs says %d: the device's package state does not match its files", f.DeviceVersionCode, f.APK.VersionCode)}
		}
	}
	return append(checks, apkChecks...)
}

func partitionWanted(p string) string {
	if p == "" {
		return "a system partition (system, system_ext, product or vendor)"
	}
	return "the " + p + " partition"
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}
