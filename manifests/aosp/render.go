package aosp

import (
	"encoding/xml"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/provkit/provkit/manifests/policy"
)

// appSpec is everything needed to write one app's module directory.
type appSpec struct {
	app       *policy.App
	facts     *APKFacts
	module    string
	partition string
	dir       string // module directory, relative to the tree root
	apkName   string // file name of the APK in dir
	apkPath   string // the verified APK
	apkSHA256 string // its digest
	dexPreopt bool
	preproc   bool
}

func (s *appSpec) privappName() string   { return "privapp-permissions-" + s.app.Package + ".xml" }
func (s *appSpec) defaultName() string   { return "default-permissions-" + s.app.Package + ".xml" }
func (s *appSpec) sysconfigName() string { return "preinstalled-packages-" + s.app.Package + ".xml" }

// etcFiles are the permission XMLs of the app: file name (also its module name) -> etc subdir.
func (s *appSpec) etcFiles() [][2]string {
	var out [][2]string
	if s.app.Privileged {
		out = append(out, [2]string{s.privappName(), "permissions"})
	}
	if len(s.app.GrantPermissions) > 0 {
		out = append(out, [2]string{s.defaultName(), "default-permissions"})
	}
	out = append(out, [2]string{s.sysconfigName(), "sysconfig"})
	return out
}

// commentText returns s with every character that could end or escape a comment replaced by '_':
// only letters, digits, spaces and . _ + - are kept. The policy loader already refuses names
// outside this set; this is the second line of defence where a policy string meets a makefile
// (a newline, or a backslash that continues the comment onto the next line), a Blueprint file
// or an XML comment ("--").
func commentText(s string) string {
	var b strings.Builder
	prevDash := false
	for _, r := range s {
		ok := unicode.IsLetter(r) || unicode.IsDigit(r) || r == ' ' || r == '.' || r == '_' || r == '+' || r == '-'
		if !ok || (r == '-' && prevDash) {
			r = '_'
		}
		prevDash = r == '-'
		b.WriteRune(r)
	}
	return b.String()
}

func header(comment, policyName string) string {
	return fmt.Sprintf("%s %s from policy \"%s\".\n%s Do not edit: re-run `provkit patch` to update it, `provkit patch --revert` to remove it.\n",
		comment, generatedMarker, commentText(policyName), comment)
}

// blockHead and blockTail frame text provkit adds to a file it does not own.
func blockHead(comment, policyName string) string {
	return fmt.Sprintf("%s %s %s: added by `provkit patch`; `provkit patch --revert` removes it\n", comment, blockBegin, commentText(policyName))
}

func blockTail(comment string) string { return comment + " " + blockEnd + "\n" }

func bpString(s string) string { return fmt.Sprintf("%q", s) }

// bpList formats a string list the way bpfmt does: inline for one element, one per line otherwise.
func bpList(indent string, vals []string) string {
	if len(vals) == 1 {
		return "[" + bpString(vals[0]) + "]"
	}
	var b strings.Builder
	b.WriteString("[\n")
	for _, v := range vals {
		b.WriteString(indent + "    " + bpString(v) + ",\n")
	}
	b.WriteString(indent + "]")
	return b.String()
}

// partitionFlags names, for each partition but system, the Android.bp property and the Android.mk
// variable that install a module there.
var partitionFlags = map[string]struct{ bp, mk string }{
	policy.PartitionProduct:   {"product_specific", "LOCAL_PRODUCT_MODULE"},
	policy.PartitionSystemExt: {"system_ext_specific", "LOCAL_SYSTEM_EXT_MODULE"},
	policy.PartitionVendor:    {"vendor", "LOCAL_VENDOR_MODULE"},
}

func bpPartition(p string) string {
	if f, ok := partitionFlags[p]; ok {
		return "    " + f.bp + ": true,\n"
	}
	return ""
}

func mkPartition(p string) string {
	if f, ok := partitionFlags[p]; ok {
		return f.mk + " := true\n"
	}
	return ""
}

// etcModules are the module names of the app's permission XMLs, which the app module requires.
func (s *appSpec) etcModules() []string {
	var out []string
	for _, e := range s.etcFiles() {
		out = append(out, e[0])
	}
	return out
}

// bpModules renders the app's Android.bp modules (without a file header).
func (s *appSpec) bpModules() string {
	var b strings.Builder
	b.WriteString("android_app_import {\n")
	fmt.Fprintf(&b, "    name: %s,\n", bpString(s.module))
	fmt.Fprintf(&b, "    apk: %s,\n", bpString(s.apkName))
	b.WriteString("    presigned: true,\n")
	if s.preproc {
		b.WriteString("    preprocessed: true,\n")
	}
	if s.app.Privileged {
		b.WriteString("    privileged: true,\n")
	}
	b.WriteString(bpPartition(s.partition))
	if !s.dexPreopt {
		b.WriteString("    dex_preopt: {\n        enabled: false,\n    },\n")
	}
	if len(s.app.Overrides) > 0 {
		fmt.Fprintf(&b, "    overrides: %s,\n", bpList("    ", s.app.Overrides))
	}
	fmt.Fprintf(&b, "    required: %s,\n", bpList("    ", s.etcModules()))
	b.WriteString("}\n")
	for _, e := range s.etcFiles() {
		b.WriteString("\nprebuilt_etc {\n")
		fmt.Fprintf(&b, "    name: %s,\n", bpString(e[0]))
		fmt.Fprintf(&b, "    src: %s,\n", bpString(e[0]))
		fmt.Fprintf(&b, "    sub_dir: %s,\n", bpString(e[1]))
		b.WriteString(bpPartition(s.partition))
		b.WriteString("}\n")
	}
	return b.String()
}

// mkModules renders the app's Android.mk modules (without the header and LOCAL_PATH line).
func (s *appSpec) mkModules() string {
	var b strings.Builder
	for _, e := range s.etcFiles() {
		b.WriteString("include $(CLEAR_VARS)\n")
		fmt.Fprintf(&b, "LOCAL_MODULE := %s\n", e[0])
		b.WriteString("LOCAL_MODULE_CLASS := ETC\nLOCAL_MODULE_TAGS := optional\n")
		fmt.Fprintf(&b, "LOCAL_MODULE_RELATIVE_PATH := %s\n", e[1])
		fmt.Fprintf(&b, "LOCAL_SRC_FILES := %s\n", e[0])
		b.WriteString(mkPartition(s.partition))
		b.WriteString("include $(BUILD_PREBUILT)\n\n")
	}
	b.WriteString("include $(CLEAR_VARS)\n")
	fmt.Fprintf(&b, "LOCAL_MODULE := %s\n", s.module)
	b.WriteString("LOCAL_MODULE_CLASS := APPS\nLOCAL_MODULE_TAGS := optional\n")
	b.WriteString("LOCAL_MODULE_SUFFIX := $(COMMON_ANDROID_PACKAGE_SUFFIX)\n")
	fmt.Fprintf(&b, "LOCAL_SRC_FILES := %s\n", s.apkName)
	b.WriteString("LOCAL_CERTIFICATE := PRESIGNED\n")
	if s.preproc {
		// Installed as is: app_prebuilt_internal.mk neither realigns it nor uncompresses entries.
		fmt.Fprintf(&b, "LOCAL_REPLACE_PREBUILT_APK_INSTALLED := $(LOCAL_PATH)/%s\n", s.apkName)
	}
	if s.app.Privileged {
		b.WriteString("LOCAL_PRIVILEGED_MODULE := true\n")
	}
	b.WriteString(mkPartition(s.partition))
	if !s.dexPreopt {
		b.WriteString("LOCAL_DEX_PREOPT := false\n")
	}
	if len(s.app.Overrides) > 0 {
		fmt.Fprintf(&b, "LOCAL_OVERRIDES_PACKAGES := %s\n", strings.Join(s.app.Overrides, " "))
	}
	fmt.Fprintf(&b, "LOCAL_REQUIRED_MODULES := %s\n", strings.Join(s.etcModules(), " "))
	b.WriteString("include $(BUILD_PREBUILT)\n")
	return b.String()
}

func xmlAttr(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), `"`, "&#34;")
}

func xmlHeader(policyName string) string {
	// "--" is not allowed inside an XML comment, so the revert flag is named in words.
	return "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n" +
		fmt.Sprintf("<!-- %s from policy \"%s\".\n     Do not edit: provkit patch rewrites it, and removes it when reverting. -->\n",
			generatedMarker, commentText(policyName))
}

// privappPermissionsXML allowlists the app's privileged permissions (and denies the ones the
// policy denies), as frameworks/base/data/etc/privapp-permissions-platform.xml does.
func (s *appSpec) privappPermissionsXML(policyName string) string {
	var b strings.Builder
	b.WriteString(xmlHeader(policyName))
	b.WriteString("<permissions>\n")
	fmt.Fprintf(&b, "    <privapp-permissions package=\"%s\">\n", xmlAttr(s.app.Package))
	for _, p := range sorted(s.app.PrivappPermissions) {
		fmt.Fprintf(&b, "        <permission name=\"%s\"/>\n", xmlAttr(p))
	}
	for _, p := range sorted(s.app.DenyPrivappPermissions) {
		fmt.Fprintf(&b, "        <deny-permission name=\"%s\"/>\n", xmlAttr(p))
	}
	b.WriteString("    </privapp-permissions>\n</permissions>\n")
	return b.String()
}

// colonDigest formats a hex digest the way default-permissions files write sha256-cert-digest:
// upper case, bytes separated by colons.
func colonDigest(hex string) string {
	hex = strings.ToUpper(policy.NormalizeDigest(hex))
	var parts []string
	for i := 0; i+2 <= len(hex); i += 2 {
		parts = append(parts, hex[i:i+2])
	}
	return strings.Join(parts, ":")
}

// defaultPermissionsXML pre-grants runtime permissions to the app, bound to its signer certificate
// so a same-named package signed by anyone else gets nothing.
func (s *appSpec) defaultPermissionsXML(policyName string) string {
	var b strings.Builder
	b.WriteString(xmlHeader(policyName))
	b.WriteString("<exceptions>\n")
	digest := ""
	if len(s.facts.Signers) > 0 {
		digest = s.facts.Signers[0]
	}
	fmt.Fprintf(&b, "    <exception package=\"%s\" sha256-cert-digest=\"%s\">\n", xmlAttr(s.app.Package), colonDigest(digest))
	for _, p := range sorted(s.app.GrantPermissions) {
		fmt.Fprintf(&b, "        <permission name=\"%s\" fixed=\"false\"/>\n", xmlAttr(p))
	}
	b.WriteString("    </exception>\n</exceptions>\n")
	return b.String()
}

// DefaultUserTypes is what the sysconfig file lists when the policy names no user types: the three
// base user types, i.e. every user.
var DefaultUserTypes = []string{"FULL", "PROFILE", "SYSTEM"}

// sysconfigXML declares which user types the app is installed for (used when the device enforces
// config_userTypePackageWhitelistMode; harmless otherwise).
func (s *appSpec) sysconfigXML(policyName string) string {
	types := s.app.InstallInUserTypes
	if len(types) == 0 {
		types = DefaultUserTypes
	}
	var b strings.Builder
	b.WriteString(xmlHeader(policyName))
	b.WriteString("<config>\n")
	fmt.Fprintf(&b, "    <install-in-user-type package=\"%s\">\n", xmlAttr(s.app.Package))
	for _, u := range sorted(types) {
		fmt.Fprintf(&b, "        <install-in user-type=\"%s\"/>\n", xmlAttr(u))
	}
	b.WriteString("    </install-in-user-type>\n</config>\n")
	return b.String()
}

func sorted(s []string) []string {
	out := append([]string{}, s...)
	sort.Strings(out)
	return out
}

// EtcFile is one of an app's permission XMLs as `provkit patch` writes it, and where the platform
// reads it: /<partition>/etc/<Dir>/<Name>.
type EtcFile struct {
	Dir  string // permissions, default-permissions or sysconfig
	Name string
	Data []byte
}

// AppEtcFiles renders the privapp-permissions (privileged apps), default-permissions (apps with
// grantPermissions) and sysconfig XMLs of app, with the same renderers `provkit patch` uses, so
// that a built image patched by `provkit image patch` holds the same files as one built from a
// patched tree. facts are the verified APK's (the default-permissions file binds the grants to
// its first signer).
func AppEtcFiles(policyName string, app *policy.App, facts *APKFacts) []EtcFile {
	s := &appSpec{app: app, facts: facts}
	var out []EtcFile
	for _, e := range s.etcFiles() {
		var data string
		switch e[1] {
		case "permissions":
			data = s.privappPermissionsXML(policyName)
		case "default-permissions":
			data = s.defaultPermissionsXML(policyName)
		default:
			data = s.sysconfigXML(policyName)
		}
		out = append(out, EtcFile{Dir: e[1], Name: e[0], Data: []byte(data)})
	}
	return out
}
