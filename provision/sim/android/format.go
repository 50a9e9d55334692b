package android

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// This file generates every piece of text a simulated device prints, for each API level. The
// formats follow AOSP's Settings.dumpPackageLPr, PackageManagerShellCommand and toybox, checked
// against public captures from Android 11, 13 and 14 devices.

const dumpTimeLayout = "2006-01-02 15:04:05"

var epochSystem = time.Date(2009, 1, 1, 0, 0, 0, 0, time.UTC)

// GetpropAll formats `getprop` without arguments: "[name]: [value]" per property, sorted.
func GetpropAll(w io.Writer, props []Prop) {
	for _, p := range props {
		fmt.Fprintf(w, "[%s]: [%s]\n", p.Name, p.Value)
	}
}

// PartitionOf returns the partition a code path lives on: system, system_ext, product, vendor,
// odm, apex or data ("" for anything else). /system/product/... counts as product.
func PartitionOf(codePath string) string {
	p := strings.TrimPrefix(codePath, "/")
	first, rest, _ := strings.Cut(p, "/")
	if first == "system" {
		if second, _, _ := strings.Cut(rest, "/"); second == "product" || second == "system_ext" || second == "vendor" {
			return second
		}
	}
	switch first {
	case "system", "system_ext", "product", "vendor", "odm", "apex", "data":
		return first
	}
	return ""
}

// flagNames returns the ApplicationInfo flags of an install in FLAG_DUMP_SPEC order.
func flagNames(p *Package, in *Install, hidden bool) []string {
	var f []string
	if in == p.System {
		f = append(f, "SYSTEM")
	} else if p.System != nil && !hidden {
		f = append(f, "SYSTEM")
	}
	f = append(f, "HAS_CODE", "ALLOW_CLEAR_USER_DATA")
	if p.System != nil && p.Update != nil && in == p.Update {
		f = append(f, "UPDATED_SYSTEM_APP")
	}
	return append(f, "ALLOW_BACKUP")
}

// privateFlagNames returns the private flags in PRIVATE_FLAG_DUMP_SPEC order.
func privateFlagNames(sdk int, p *Package) []string {
	f := []string{"PRIVATE_FLAG_ACTIVITIES_RESIZE_MODE_RESIZEABLE_VIA_SDK_VERSION", "ALLOW_AUDIO_PLAYBACK_CAPTURE"}
	if p.System != nil && p.Privileged {
		f = append(f, "PRIVILEGED")
	}
	if p.System != nil {
		switch PartitionOf(p.System.CodePath) {
		case "vendor":
			f = append(f, "VENDOR")
		case "product":
			f = append(f, "PRODUCT")
		case "system_ext":
			f = append(f, "SYSTEM_EXT")
		case "odm":
			f = append(f, "ODM")
		}
	}
	if sdk >= 30 {
		f = append(f, "PRIVATE_FLAG_ALLOW_NATIVE_HEAP_POINTER_TAGGING")
	}
	return f
}

func bracket(names []string) string {
	if len(names) == 0 {
		return "[ ]"
	}
	return "[ " + strings.Join(names, " ") + " ]"
}

// DumpsysPackage formats `dumpsys package <name>` for the device's API level. found is false when
// the package does not exist (the output then says so, as on a phone).
func DumpsysPackage(w io.Writer, d *Device, name string) (found bool) {
	d.snapshot(func() {
		p := d.packages[name]
		if p == nil {
			return
		}
		found = true
		sdk := d.sdk
		fmt.Fprintf(w, "Key Set Manager:\n  [%s]\n      Signing KeySets: %d\n\n", name, 1+p.AppID%50)
		fmt.Fprintln(w, "Packages:")
		dumpPackageBlock(w, sdk, d.users, p, p.Active(), false)
		if p.System != nil && p.Update != nil {
			fmt.Fprintln(w)
			fmt.Fprintln(w, "Hidden system packages:")
			dumpPackageBlock(w, sdk, d.users, p, p.System, true)
		}
		if sdk >= 30 {
			fmt.Fprintf(w, "\nQueries:\n  system apps queryable: false\n  queries via package name:\n  queries via intent:\n  queryable via interaction:\n    User 0:\n")
		}
		in := p.Active()
		fmt.Fprintf(w, "\nDexopt state:\n  [%s]\n    path: %s\n", name, in.APKPath())
		if in == p.System {
			fmt.Fprintf(w, "      arm64: [status=verify] [reason=vdex]\n")
		} else {
			fmt.Fprintf(w, "      arm64: [status=speed-profile] [reason=install]\n")
		}
	})
	if !found {
		fmt.Fprintf(w, "\nDexopt state:\n  Unable to find package: %s\n", name)
	}
	return found
}

// dumpPackageBlock writes one "  Package [name] (hash):" block as Settings.dumpPackageLPr does.
func dumpPackageBlock(w io.Writer, sdk int, users []int, p *Package, in *Install, hidden bool) {
	key := p.Name + in.CodePath
	fmt.Fprintf(w, "  Package [%s] (%s):\n", p.Name, identityHash(key))
	if sdk >= 34 {
		fmt.Fprintf(w, "    appId=%d\n", p.AppID)
	} else {
		fmt.Fprintf(w, "    userId=%d\n", p.AppID)
	}
	fmt.Fprintf(w, "    pkg=Package{%s %s}\n", identityHash(key+"pkg"), p.Name)
	fmt.Fprintf(w, "    codePath=%s\n", in.CodePath)
	fmt.Fprintf(w, "    resourcePath=%s\n", in.CodePath)
	fmt.Fprintf(w, "    legacyNativeLibraryDir=%s/lib\n", in.CodePath)
	if sdk >= 30 {
		fmt.Fprintf(w, "    extractNativeLibs=false\n")
	}
	fmt.Fprintf(w, "    primaryCpuAbi=null\n    secondaryCpuAbi=null\n")
	if sdk >= 30 {
		fmt.Fprintf(w, "    cpuAbiOverride=null\n")
	}
	fmt.Fprintf(w, "    versionCode=%d minSdk=%d targetSdk=%d\n", in.VersionCode, in.MinSDK, in.TargetSDK)
	if sdk >= 30 {
		fmt.Fprintf(w, "    minExtensionVersions=[]\n")
	}
	fmt.Fprintf(w, "    versionName=%s\n", in.VersionName)
	if sdk >= 30 {
		fmt.Fprintf(w, "    usesNonSdkApi=false\n")
	}
	fmt.Fprintf(w, "    splits=[base]\n    apkSigningVersion=2\n")
	switch {
	case sdk == 29:
		fmt.Fprintf(w, "    applicationInfo=ApplicationInfo{%s %s}\n", identityHash(key+"ai"), p.Name)
	case sdk <= 33:
		fmt.Fprintf(w, "    applicationInfo=PackageImpl{%s %s}\n", identityHash(key+"pkg"), p.Name)
	}
	flags := bracket(flagNames(p, in, hidden))
	priv := bracket(privateFlagNames(sdk, p))
	fmt.Fprintf(w, "    flags=%s\n", flags)
	fmt.Fprintf(w, "    privateFlags=%s\n", priv)
	if sdk >= 30 {
		fmt.Fprintf(w, "    forceQueryable=false\n")
	}
	if sdk >= 30 && sdk <= 33 {
		fmt.Fprintf(w, "    queriesPackages=[]\n")
	}
	dataDir := "/data/user/0/" + p.Name
	fmt.Fprintf(w, "    dataDir=%s\n", dataDir)
	fmt.Fprintf(w, "    supportsScreens=[small, medium, large, xlarge, resizeable, anyDensity]\n")
	t := in.Time
	if t.IsZero() {
		t = epochSystem
	}
	fmt.Fprintf(w, "    timeStamp=%s\n", t.Format(dumpTimeLayout))
	if sdk < 34 {
		fmt.Fprintf(w, "    firstInstallTime=%s\n", t.Format(dumpTimeLayout))
	}
	fmt.Fprintf(w, "    lastUpdateTime=%s\n", t.Format(dumpTimeLayout))
	installer := in.Installer
	if sdk >= 34 {
		fmt.Fprintf(w, "    installerPackageName=%s\n", orNull(installer))
		fmt.Fprintf(w, "    installerPackageUid=%d\n", map[bool]int{true: -1, false: 10042}[installer == ""])
		fmt.Fprintf(w, "    initiatingPackageName=%s\n    originatingPackageName=null\n", orNull(installer))
		fmt.Fprintf(w, "    packageSource=0\n    appMetadataFilePath=null\n")
	} else if installer != "" {
		fmt.Fprintf(w, "    installerPackageName=%s\n", installer)
	}
	fmt.Fprintf(w, "    signatures=PackageSignatures{%s version:2, signatures:[%s], past signatures:[]}\n",
		identityHash(key+"sig"), identityHash(p.Name+"cert"))
	fmt.Fprintf(w, "    installPermissionsFixed=true\n")
	fmt.Fprintf(w, "    pkgFlags=%s\n", flags)
	if sdk >= 34 {
		fmt.Fprintf(w, "    privatePkgFlags=%s\n", priv)
		fmt.Fprintf(w, "    apexModuleName=null\n")
	}
	var runtime []string
	var install []string
	for _, perm := range p.Requested {
		if isRuntimePermission(perm) {
			runtime = append(runtime, perm)
		} else {
			install = append(install, perm)
		}
	}
	if len(p.Requested) > 0 {
		fmt.Fprintf(w, "    requested permissions:\n")
		for _, perm := range p.Requested {
			fmt.Fprintf(w, "      %s\n", perm)
		}
	}
	if len(install) > 0 {
		fmt.Fprintf(w, "    install permissions:\n")
		for _, perm := range install {
			fmt.Fprintf(w, "      %s: granted=true\n", perm)
		}
	}
	for _, user := range users {
		u := p.Users[user]
		if u == nil {
			u = &UserState{}
		}
		inode := 0
		if u.Installed {
			inode = 100000 + p.AppID*7 + user
		}
		fmt.Fprintf(w, "    User %d: ceDataInode=%d ", user, inode)
		if sdk >= 35 {
			fmt.Fprintf(w, "deDataInode=%d ", inode/2)
		}
		fmt.Fprintf(w, "installed=%t hidden=false suspended=false distractionFlags=0 stopped=%t notLaunched=%t enabled=%d instant=false virtual=false",
			u.Installed, !u.Installed, !u.Installed, u.Enabled)
		if sdk >= 35 {
			fmt.Fprintf(w, " quarantined=false")
		}
		fmt.Fprintln(w)
		if sdk >= 34 {
			reason := 0
			if u.Installed && in != p.System {
				reason = 4
			}
			fmt.Fprintf(w, "      installReason=%d\n", reason)
			if sdk >= 35 {
				fmt.Fprintf(w, "      dataDir=/data/user/%d/%s\n", user, p.Name)
			}
			fmt.Fprintf(w, "      firstInstallTime=%s\n", t.Format(dumpTimeLayout))
			fmt.Fprintf(w, "      uninstallReason=0\n")
		}
		if u.Installed {
			fmt.Fprintf(w, "      gids=[3003]\n")
		}
		if len(runtime) > 0 || len(u.Granted) > 0 {
			fmt.Fprintf(w, "      runtime permissions:\n")
			names := append([]string(nil), runtime...)
			for perm := range u.Granted {
				if !contains(names, perm) {
					names = append(names, perm)
				}
			}
			for _, perm := range names {
				if u.Granted[perm] {
					fmt.Fprintf(w, "        %s: granted=true, flags=[ USER_SET|USER_SENSITIVE_WHEN_GRANTED|USER_SENSITIVE_WHEN_DENIED]\n", perm)
				} else {
					fmt.Fprintf(w, "        %s: granted=false, flags=[ USER_SENSITIVE_WHEN_GRANTED|USER_SENSITIVE_WHEN_DENIED]\n", perm)
				}
			}
		}
	}
}

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// runtimePermissions are the dangerous permissions the simulator treats as runtime ones.
var runtimePermissions = map[string]bool{
	"android.permission.POST_NOTIFICATIONS": true, "android.permission.CAMERA": true,
	"android.permission.RECORD_AUDIO": true, "android.permission.READ_CONTACTS": true,
	"android.permission.WRITE_CONTACTS": true, "android.permission.ACCESS_FINE_LOCATION": true,
	"android.permission.ACCESS_COARSE_LOCATION": true, "android.permission.READ_PHONE_STATE": true,
	"android.permission.CALL_PHONE": true, "android.permission.READ_SMS": true,
	"android.permission.RECEIVE_SMS": true, "android.permission.SEND_SMS": true,
	"android.permission.READ_EXTERNAL_STORAGE": true, "android.permission.WRITE_EXTERNAL_STORAGE": true,
	"android.permission.READ_MEDIA_IMAGES": true, "android.permission.READ_MEDIA_VIDEO": true,
	"android.permission.READ_MEDIA_AUDIO": true, "android.permission.READ_CALENDAR": true,
	"android.permission.WRITE_CALENDAR": true, "android.permission.BLUETOOTH_CONNECT": true,
	"android.permission.NEARBY_WIFI_DEVICES": true, "android.permission.READ_CALL_LOG": true,
}

func isRuntimePermission(p string) bool { return runtimePermissions[p] }

// ListOptions are the filters and columns of `pm list packages`.
type ListOptions struct {
	ShowPath, ShowUID, ShowVersion, ShowInstaller bool
	System, ThirdParty, Disabled, Enabled         bool
	IncludeUninstalled                            bool
	User                                          int
	Filter                                        string
}

// PmListPackages formats `pm list packages` as PackageManagerShellCommand.runListPackages does.
func PmListPackages(w io.Writer, d *Device, o ListOptions) {
	d.snapshot(func() {
		names := make([]string, 0, len(d.packages))
		for n := range d.packages {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			p := d.packages[n]
			if o.Filter != "" && !strings.Contains(n, o.Filter) {
				continue
			}
			if !p.InstalledFor(o.User) && !o.IncludeUninstalled {
				continue
			}
			isSystem := p.System != nil
			enabled := p.EnabledFor(o.User)
			if (o.Disabled && enabled) || (o.Enabled && !enabled) || (o.System && !isSystem) || (o.ThirdParty && isSystem) {
				continue
			}
			in := p.Active()
			var b strings.Builder
			b.WriteString("package:")
			if o.ShowPath {
				b.WriteString(in.APKPath())
				b.WriteByte('=')
			}
			b.WriteString(n)
			if o.ShowVersion {
				fmt.Fprintf(&b, " versionCode:%d", in.VersionCode)
			}
			if o.ShowInstaller {
				fmt.Fprintf(&b, "  installer=%s", orNull(in.Installer))
			}
			if o.ShowUID {
				fmt.Fprintf(&b, " uid:%d", o.User*100000+p.AppID)
			}
			fmt.Fprintln(w, b.String())
		}
	})
}

// PmPath formats `pm path <pkg>`: "package:<apk>", or nothing and false when the package is not
// installed for user.
func PmPath(w io.Writer, d *Device, name string, user int) bool {
	ok := false
	d.snapshot(func() {
		p := d.packages[name]
		if p == nil || !p.InstalledFor(user) {
			return
		}
		ok = true
		fmt.Fprintf(w, "package:%s\n", p.Active().APKPath())
	})
	return ok
}

// LsLong formats one `ls -l` line as toybox does.
func LsLong(fi FileInfo) string {
	typ := "-"
	links := 1
	if fi.Mode.IsDir() {
		typ = "d"
		links = 2
	}
	perm := fi.Mode.Perm().String()[1:]
	owner := "root"
	if strings.HasPrefix(fi.Path, "/data/local/tmp") || strings.HasPrefix(fi.Path, "/sdcard") {
		owner = "shell"
	}
	size := fi.Size
	if fi.Mode.IsDir() {
		size = 4096
	}
	mt := fi.MTime
	if mt.IsZero() {
		mt = epochSystem
	}
	return fmt.Sprintf("%s%s %d %s %s %d %s %s", typ, perm, links, owner, owner, size, mt.Format("2006-01-02 15:04"), fi.Name())
}

// ShellID is the `id` output of the adb shell user.
const ShellID = "uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),1011(adb),1015(sdcard_rw),1028(sdcard_r),1078(ext_data_rw),1079(ext_obb_rw),3001(net_bt_admin),3002(net_bt),3003(inet),3006(net_bw_stats),3009(readproc),3011(uhid) context=u:r:shell:s0"

// NotFound is what mksh prints for an unknown command (exit status 127).
func NotFound(cmd string) string {
	return fmt.Sprintf("/system/bin/sh: %s: inaccessible or not found\n", cmd)
}
