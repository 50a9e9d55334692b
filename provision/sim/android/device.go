package android

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shogo82148/androidbinary"
	"github.com/shogo82148/androidbinary/apk"

	"github.com/provkit/provkit/manifests/policy"
)

// MinSDK and MaxSDK bound the API levels whose formats the simulator knows (Android 10 to 15).
const (
	MinSDK = 29
	MaxSDK = 35
)

// Install is one copy of a package's code: a directory on a partition holding the APK.
type Install struct {
	CodePath    string // directory, e.g. /product/app/Messenger or /data/app/~~x==/pkg-y==
	APK         string // file name inside CodePath, e.g. Messenger.apk or base.apk
	VersionCode int64
	VersionName string
	MinSDK      int
	TargetSDK   int
	Installer   string // installerPackageName; empty prints null
	Time        time.Time
}

// APKPath is the path `pm path` prints: CodePath/APK.
func (in *Install) APKPath() string { return path.Join(in.CodePath, in.APK) }

// UserState is a package's state for one Android user.
type UserState struct {
	Installed bool
	Enabled   int
	Granted   map[string]bool // runtime permissions: name -> granted
}

// Package is one application known to the package manager.
type Package struct {
	Name       string
	AppID      int
	System     *Install // the copy on a read-only partition, nil for a user app
	Update     *Install // the copy under /data/app, nil when none
	Privileged bool
	Requested  []string // requested permissions, in manifest order
	Users      map[int]*UserState
}

// Active returns the install the package runs from.
func (p *Package) Active() *Install {
	if p.Update != nil {
		return p.Update
	}
	return p.System
}

// User returns the state for user, creating a default (not installed) one.
func (p *Package) User(user int) *UserState {
	if p.Users == nil {
		p.Users = map[int]*UserState{}
	}
	u, ok := p.Users[user]
	if !ok {
		u = &UserState{Granted: map[string]bool{}}
		p.Users[user] = u
	}
	if u.Granted == nil {
		u.Granted = map[string]bool{}
	}
	return u
}

// InstalledFor reports whether the package is installed for user.
func (p *Package) InstalledFor(user int) bool {
	u, ok := p.Users[user]
	return ok && u.Installed
}

// Enabled reports whether the package counts as enabled for user (state 0 or 1).
func (p *Package) EnabledFor(user int) bool {
	u, ok := p.Users[user]
	return !ok || u.Enabled == policy.EnabledDefault || u.Enabled == policy.EnabledEnabled
}

// Prop is one system property.
type Prop struct{ Name, Value string }

// Device is the Android-side state of one simulated device. Its methods are safe for concurrent
// use.
type Device struct {
	mu       sync.Mutex
	sdk      int
	props    map[string]string
	packages map[string]*Package
	settings map[string]map[string]string
	users    []int
	nextApp  int
	fs       *FS

	recovery bool

	// OnReboot, when set, is called by the shell's reboot command with the target ("" for a
	// normal reboot, "bootloader", "recovery").
	OnReboot func(target string)
}

// frameworkCommands are the shell commands that talk to the Android framework, absent in
// recovery.
var frameworkCommands = map[string]bool{"pm": true, "cmd": true, "dumpsys": true, "settings": true}

// bootProps are the properties set once Android has booted, absent in recovery.
var bootProps = map[string]bool{"sys.boot_completed": true}

// SetRecovery says whether the device runs recovery rather than Android: the shell then lacks
// the framework's commands (pm, cmd, dumpsys, settings: "inaccessible or not found") and getprop
// lacks sys.boot_completed. Files and other properties stay as they are.
func (d *Device) SetRecovery(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recovery = on
}

// InRecovery reports what SetRecovery set.
func (d *Device) InRecovery() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.recovery
}

// NewDevice returns a device of the given API level with an empty package list, user 0 only and a
// fresh file system.
func NewDevice(sdk int) (*Device, error) {
	if sdk < MinSDK || sdk > MaxSDK {
		return nil, fmt.Errorf("creating simulated device: API level %d, supported %d (Android 10) to %d (Android 15)", sdk, MinSDK, MaxSDK)
	}
	return &Device{
		sdk:      sdk,
		props:    map[string]string{"ro.build.version.sdk": fmt.Sprint(sdk), "ro.build.version.release": releaseOf(sdk)},
		packages: map[string]*Package{},
		settings: map[string]map[string]string{"global": {}, "secure": {}, "system": {}},
		users:    []int{0},
		nextApp:  10100,
		fs:       NewFS(),
	}, nil
}

func releaseOf(sdk int) string {
	return map[int]string{29: "10", 30: "11", 31: "12", 32: "12", 33: "13", 34: "14", 35: "15"}[sdk]
}

// SDK returns the device's API level.
func (d *Device) SDK() int { return d.sdk }

// FS returns the device's file system.
func (d *Device) FS() *FS { return d.fs }

// SetProp sets a system property.
func (d *Device) SetProp(name, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.props[name] = value
}

// Prop returns a system property ("" when unset).
func (d *Device) Prop(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.props[name]
}

// Props returns every property sorted by name.
func (d *Device) Props() []Prop {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Prop, 0, len(d.props))
	for k, v := range d.props {
		out = append(out, Prop{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SetSetting sets a settings value in namespace ns (global, secure, system).
func (d *Device) SetSetting(ns, key, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.settings[ns] == nil {
		d.settings[ns] = map[string]string{}
	}
	d.settings[ns][key] = value
}

// Setting returns a settings value and whether it is set.
func (d *Device) Setting(ns, key string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.settings[ns][key]
	return v, ok
}

// SetUsers sets the Android users that exist (0 is always included).
func (d *Device) SetUsers(users []int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[int]bool{0: true}
	d.users = []int{0}
	for _, u := range users {
		if !seen[u] {
			seen[u] = true
			d.users = append(d.users, u)
		}
	}
	sort.Ints(d.users)
}

// Users returns the Android users that exist.
func (d *Device) Users() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]int(nil), d.users...)
}

// AddPackage registers p (replacing a package of the same name). A zero AppID is assigned.
func (d *Device) AddPackage(p *Package) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p.AppID == 0 {
		p.AppID = d.nextApp
		d.nextApp++
	}
	d.packages[p.Name] = p
}

// Package returns a copy-free pointer to the named package, or nil. Callers that modify it must
// hold no assumptions about concurrent shell commands; use the Device methods for changes.
func (d *Device) Package(name string) *Package {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.packages[name]
}

// PackageNames returns the names of all packages, sorted.
func (d *Device) PackageNames() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.packages))
	for n := range d.packages {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// APKInfo is what the package manager reads from an APK's manifest.
type APKInfo struct {
	Package     string
	VersionCode int64
	VersionName string
	MinSDK      int
	TargetSDK   int
	Permissions []string
}

// maxManifestSize bounds the AndroidManifest.xml the simulator reads from an APK.
const maxManifestSize = 4 << 20

// ReadAPKInfo parses the binary manifest of the APK in r (a zip archive of size bytes).
func ReadAPKInfo(r io.ReaderAt, size int64) (info APKInfo, err error) {
	defer func() {
		// The manifest decoder is third-party code fed untrusted bytes: never let it take the
		// simulator down.
		if p := recover(); p != nil {
			err = fmt.Errorf("parsing APK manifest: %v", p)
		}
	}()
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return APKInfo{}, fmt.Errorf("parsing APK: %w", err)
	}
	var mf *zip.File
	for _, f := range zr.File {
		if f.Name == "AndroidManifest.xml" {
			mf = f
			break
		}
	}
	if mf == nil {
		return APKInfo{}, errors.New("parsing APK: no AndroidManifest.xml")
	}
	if mf.UncompressedSize64 > maxManifestSize {
		return APKInfo{}, fmt.Errorf("parsing APK: AndroidManifest.xml of %d bytes, max %d", mf.UncompressedSize64, maxManifestSize)
	}
	rc, err := mf.Open()
	if err != nil {
		return APKInfo{}, fmt.Errorf("parsing APK: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	rc.Close()
	if err != nil {
		return APKInfo{}, fmt.Errorf("parsing APK: reading AndroidManifest.xml: %w", err)
	}
	xf, err := androidbinary.NewXMLFile(bytes.NewReader(raw))
	if err != nil {
		return APKInfo{}, fmt.Errorf("parsing APK: AndroidManifest.xml: %w", err)
	}
	var m apk.Manifest
	if err := xf.Decode(&m, nil, nil); err != nil {
		return APKInfo{}, fmt.Errorf("parsing APK: AndroidManifest.xml: %w", err)
	}
	info.Package, _ = m.Package.String()
	if info.Package == "" {
		return APKInfo{}, errors.New("parsing APK: manifest has no package name")
	}
	vc, _ := m.VersionCode.Int32()
	info.VersionCode = int64(vc)
	info.VersionName, _ = m.VersionName.String()
	minSDK, _ := m.SDK.Min.Int32()
	target, _ := m.SDK.Target.Int32()
	info.MinSDK, info.TargetSDK = int(minSDK), int(target)
	if info.MinSDK == 0 {
		info.MinSDK = 1
	}
	if info.TargetSDK == 0 {
		info.TargetSDK = info.MinSDK
	}
	for _, p := range m.UsesPermissions {
		if s, err := p.Name.String(); err == nil && s != "" {
			info.Permissions = append(info.Permissions, s)
		}
	}
	return info, nil
}

// InstallError is a package manager failure: Code is the INSTALL_FAILED_* or DELETE_FAILED_*
// name printed in "Failure [CODE: message]".
type InstallError struct{ Code, Msg string }

func (e *InstallError) Error() string {
	if e.Msg == "" {
		return e.Code
	}
	return e.Code + ": " + e.Msg
}

// dataAppDir returns a /data/app directory in Android 11+'s randomised layout (stable per package
// and version so outputs are reproducible).
func (d *Device) dataAppDir(pkg string, version int64) string {
	h := hashString(fmt.Sprintf("%s/%d", pkg, version))
	if d.sdk < 30 {
		return fmt.Sprintf("/data/app/%s-%s", pkg, b64ish(h, 22))
	}
	return fmt.Sprintf("/data/app/~~%s==/%s-%s==", b64ish(h, 22), pkg, b64ish(h>>7|h<<57, 22))
}

// InstallAPK installs the APK bytes as `pm install` does: a new package, an update of an
// installed one (same package name; versionCode may not go down unless allowDowngrade), or an
// update on top of a system app (the system copy stays, hidden). It returns the package name.
func (d *Device) InstallAPK(data []byte, user int, allowDowngrade bool, installer string) (string, error) {
	info, err := ReadAPKInfo(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", &InstallError{Code: "INSTALL_PARSE_FAILED_NOT_APK", Msg: "Failed to parse APK: " + err.Error()}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.packages[info.Package]
	if p != nil {
		if cur := p.Active(); cur != nil && info.VersionCode < cur.VersionCode && !allowDowngrade {
			return "", &InstallError{Code: "INSTALL_FAILED_VERSION_DOWNGRADE", Msg: fmt.Sprintf("Downgrade detected: Update version code %d is older than current %d", info.VersionCode, cur.VersionCode)}
		}
	} else {
		p = &Package{Name: info.Package, AppID: d.nextApp}
		d.nextApp++
		d.packages[info.Package] = p
	}
	now := time.Now().UTC().Truncate(time.Second)
	dir := d.dataAppDir(info.Package, info.VersionCode)
	if p.Update != nil {
		_ = d.fs.Remove(p.Update.CodePath, true)
	}
	if err := d.fs.WriteFile(path.Join(dir, "base.apk"), data, 0o644, now); err != nil {
		return "", &InstallError{Code: "INSTALL_FAILED_INTERNAL_ERROR", Msg: err.Error()}
	}
	if installer == "" {
		installer = "com.android.shell"
	}
	p.Update = &Install{CodePath: dir, APK: "base.apk", VersionCode: info.VersionCode, VersionName: info.VersionName,
		MinSDK: info.MinSDK, TargetSDK: info.TargetSDK, Installer: installer, Time: now}
	p.Requested = info.Permissions
	p.User(user).Installed = true
	return info.Package, nil
}

// Uninstall removes a package as `pm uninstall [--user N]` does. With forUser >= 0 only that
// user's install is removed (a system app stays on the partition); without a user, an updated
// system app loses its update and a user app is deleted; a plain system app cannot be removed.
func (d *Device) Uninstall(name string, forUser int, keepData bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.packages[name]
	if p == nil {
		return &InstallError{Code: "DELETE_FAILED_INTERNAL_ERROR"}
	}
	if forUser >= 0 {
		if !p.InstalledFor(forUser) {
			return &InstallError{Code: "DELETE_FAILED_INTERNAL_ERROR"}
		}
		p.User(forUser).Installed = false
		anyLeft := false
		for _, u := range p.Users {
			anyLeft = anyLeft || u.Installed
		}
		if !anyLeft && p.System == nil {
			d.removeUpdate(p)
			delete(d.packages, name)
		}
		return nil
	}
	switch {
	case p.System != nil && p.Update != nil:
		d.removeUpdate(p)
	case p.System != nil:
		return &InstallError{Code: "DELETE_FAILED_INTERNAL_ERROR"}
	default:
		d.removeUpdate(p)
		delete(d.packages, name)
	}
	return nil
}

func (d *Device) removeUpdate(p *Package) {
	if p.Update != nil {
		_ = d.fs.Remove(p.Update.CodePath, true)
		p.Update = nil
	}
}

// SetEnabled sets the enabled state of a package for user.
func (d *Device) SetEnabled(name string, user, state int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.packages[name]
	if p == nil {
		return fmt.Errorf("Unknown package: %s", name)
	}
	p.User(user).Enabled = state
	return nil
}

// InstallExisting re-installs a package for user (pm install-existing).
func (d *Device) InstallExisting(name string, user int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.packages[name]
	if p == nil {
		return &InstallError{Code: "INSTALL_FAILED_INVALID_URI", Msg: "Package " + name + " doesn't exist"}
	}
	p.User(user).Installed = true
	return nil
}

// Grant sets a runtime permission's grant state for user.
func (d *Device) Grant(name string, user int, perm string, granted bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.packages[name]
	if p == nil {
		return fmt.Errorf("Unknown package: %s", name)
	}
	p.User(user).Granted[perm] = granted
	return nil
}

// snapshot runs f with the device locked, for consistent reads by the formatters.
func (d *Device) snapshot(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f()
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// identityHash imitates Java's System.identityHashCode in hex: 7 or 8 hex digits, stable per key.
func identityHash(key string) string {
	return fmt.Sprintf("%x", uint32(hashString(key))>>1|0x1000000)
}

const b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func b64ish(h uint64, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteByte(b64chars[h%64])
		h = h/64 ^ (h * 0x9e3779b97f4a7c15 >> 13)
	}
	return b.String()
}
