package policy

import (
	"fmt"
	"regexp"
	"strings"
)

// APIVersion and Kind identify a policy document.
const (
	APIVersion = "provkit.dev/v1"
	Kind       = "PreinstallPolicy"
)

// Partitions an app may be placed on, as named in a policy.
const (
	PartitionSystem    = "system"
	PartitionSystemExt = "system_ext"
	PartitionProduct   = "product"
	PartitionVendor    = "vendor"
)

// Partitions lists the valid values of App.Partition.
var Partitions = []string{PartitionSystem, PartitionSystemExt, PartitionProduct, PartitionVendor}

// DefaultPatchPartition is where `provkit patch` places an app whose policy names no partition: the
// product partition is where AOSP wants OEM-added apps since Android 10.
const DefaultPatchPartition = PartitionProduct

// Policy is one preinstall policy document.
type Policy struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Apps       []App    `yaml:"apps" json:"apps"`
	Devices    Devices  `yaml:"devices" json:"devices"`

	// Source is the file the policy was loaded from ("" when parsed from bytes without a name).
	Source string `yaml:"-" json:"source,omitempty"`
	// Dir is the directory relative paths (App.APK) are resolved against.
	Dir string `yaml:"-" json:"-"`
}

// Metadata names the policy and the authority that issued it.
type Metadata struct {
	Name        string `yaml:"name" json:"name"`
	Authority   string `yaml:"authority,omitempty" json:"authority,omitempty"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	Version     string `yaml:"version,omitempty" json:"version,omitempty"`
}

// App is one mandated application.
type App struct {
	// Package is the Android package name (the manifest's package attribute).
	Package string `yaml:"package" json:"package"`
	// APK is the path of the APK file (relative to the policy file's directory), used by patch and
	// provisioning. Optional for checks.
	APK string `yaml:"apk,omitempty" json:"apk,omitempty"`
	// Module is the build module name patch uses; derived from Package when empty.
	Module string `yaml:"module,omitempty" json:"module,omitempty"`
	// Signers are the pinned signer certificates. An APK matches when each of its signers is
	// pinned, or (for a rotated key) a certificate of its verified lineage is pinned.
	Signers []Signer `yaml:"signers" json:"signers"`
	// MinVersionCode is the lowest acceptable versionCode (0: any).
	MinVersionCode int64 `yaml:"minVersionCode,omitempty" json:"minVersionCode,omitempty"`
	// Partition is where the app must live: system, system_ext, product or vendor. Empty means any
	// of them for checks (it must be a preinstalled app), and DefaultPatchPartition for patch.
	Partition string `yaml:"partition,omitempty" json:"partition,omitempty"`
	// Privileged requires a priv-app (and privapp-permissions allowlisting).
	Privileged bool `yaml:"privileged,omitempty" json:"privileged"`
	// Removable allows the user to uninstall the app for user 0. A mandated app usually is not.
	Removable bool `yaml:"removable,omitempty" json:"removable"`
	// Enabled requires the app to be enabled (default true).
	Enabled *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// GrantPermissions are runtime permissions that must be pre-granted (default-permissions XML).
	GrantPermissions []string `yaml:"grantPermissions,omitempty" json:"grantPermissions,omitempty"`
	// PrivappPermissions are privileged permissions to allowlist (privileged apps only).
	PrivappPermissions []string `yaml:"privappPermissions,omitempty" json:"privappPermissions,omitempty"`
	// DenyPrivappPermissions are privileged permissions the app requests but must not get; they are
	// written as deny-permission entries.
	DenyPrivappPermissions []string `yaml:"denyPrivappPermissions,omitempty" json:"denyPrivappPermissions,omitempty"`
	// Overrides lists packages or modules this app replaces (Android.bp `overrides`).
	Overrides []string `yaml:"overrides,omitempty" json:"overrides,omitempty"`
	// InstallInUserTypes lists the user types the app is installed for (sysconfig
	// preinstalled-packages); empty means the platform default (installed for every user type).
	InstallInUserTypes []string `yaml:"installInUserTypes,omitempty" json:"installInUserTypes,omitempty"`

	// Line is where this app's entry starts in the policy file (0 when unknown).
	Line int `yaml:"-" json:"-"`
}

// Signer is one pinned signer certificate.
type Signer struct {
	// SHA256 is the certificate digest: 64 hex digits, colons allowed, case-insensitive.
	SHA256 string `yaml:"sha256" json:"sha256"`
	// Name is a free-form label (e.g. "release key 2024").
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
}

// Devices holds device-level requirements.
type Devices struct {
	// Fingerprints lists certified ro.build.fingerprint values; empty means any build.
	Fingerprints []string `yaml:"fingerprints,omitempty" json:"fingerprints,omitempty"`
}

// IsEnabled reports whether the app must be enabled (the default).
func (a *App) IsEnabled() bool { return a.Enabled == nil || *a.Enabled }

// PatchPartition is the partition patch places the app on.
func (a *App) PatchPartition() string {
	if a.Partition == "" {
		return DefaultPatchPartition
	}
	return a.Partition
}

// ModuleName is the build module name for the app: Module, or Package with its dots turned into
// an upper-camel name ("ru.oneme.app" -> "RuOnemeApp").
func (a *App) ModuleName() string {
	if a.Module != "" {
		return a.Module
	}
	var b strings.Builder
	for _, part := range strings.FieldsFunc(a.Package, func(r rune) bool { return r == '.' || r == '_' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// PinnedDigests returns the app's pins normalised (lowercase hex, no colons).
func (a *App) PinnedDigests() []string {
	out := make([]string, 0, len(a.Signers))
	for _, s := range a.Signers {
		out = append(out, NormalizeDigest(s.SHA256))
	}
	return out
}

// App returns the policy's entry for pkg.
func (p *Policy) App(pkg string) (*App, bool) {
	for i := range p.Apps {
		if p.Apps[i].Package == pkg {
			return &p.Apps[i], true
		}
	}
	return nil, false
}

// Packages returns the package names the policy mandates, in file order.
func (p *Policy) Packages() []string {
	out := make([]string, len(p.Apps))
	for i, a := range p.Apps {
		out[i] = a.Package
	}
	return out
}

// Where returns "file:line" for an app entry, for messages.
func (p *Policy) Where(a *App) string {
	src := p.Source
	if src == "" {
		src = "policy"
	}
	if a != nil && a.Line > 0 {
		return fmt.Sprintf("%s:%d", src, a.Line)
	}
	return src
}

// NormalizeDigest lowercases a hex digest and drops colons and spaces, so pins copied from
// keytool ("AB:CD:...") or apksigner ("abcd...") compare equal.
func NormalizeDigest(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.NewReplacer(":", "", " ", "").Replace(s)
}

var (
	hexDigest   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	packageName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$`)
	permission  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$`)
	moduleName  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.+-]*$`)
	// policyName is what metadata.name may hold: it is written into makefile, Blueprint and XML
	// comments, so no newline, '$', '#', quote, '<' or '-->' can reach them.
	policyName = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._+-]{0,127}$`)
	// fingerprintChars are the characters of a build fingerprint (brand/product/device:release/
	// id/incremental:type/tags).
	fingerprintChars = regexp.MustCompile(`^[A-Za-z0-9._/:,+=~@%-]+$`)
)
