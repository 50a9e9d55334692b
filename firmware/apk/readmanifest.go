package apk

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/shogo82148/androidbinary"
)

// ReadManifest reads only what identifying an APK needs: the End of Central Directory, the central
// directory and the AndroidManifest.xml entry (its local header checked against the central
// directory). It verifies nothing and reads no other entry, so scanning the hundreds of APKs of a
// firmware image for a package name costs a few small reads each. A malformed APK gives an error
// matching ErrMalformed that names the offset.
func ReadManifest(r io.ReaderAt, size int64) (*Manifest, error) {
	data, err := readManifestBytes(r, size)
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(data)
	if err != nil {
		return nil, &FormatError{Offset: -1, Msg: err.Error()}
	}
	return m, nil
}

// DeclaredPermission is a <permission> element of a manifest: a permission the package defines.
type DeclaredPermission struct {
	Name string `json:"name"`
	// ProtectionLevel is the android:protectionLevel bits (PermissionInfo): the base type in the
	// low 4 bits (0 normal, 1 dangerous, 2 signature, 3 signatureOrSystem, 4 internal), flags above
	// (ProtectionFlagPrivileged, ...).
	ProtectionLevel uint32 `json:"protectionLevel"`
}

// Protection levels of PermissionInfo.
const (
	ProtectionDangerous       = 1
	ProtectionSignature       = 2
	ProtectionSignatureSystem = 3 // signatureOrSystem: privileged since Android 6
	ProtectionMaskBase        = 0xf
	ProtectionFlagPrivileged  = 0x10
)

// Privileged reports whether a privileged app needs an allowlist entry to be granted the
// permission: the privileged flag, or the legacy signatureOrSystem base type that implies it.
func (d DeclaredPermission) Privileged() bool {
	return d.ProtectionLevel&ProtectionFlagPrivileged != 0 || d.ProtectionLevel&ProtectionMaskBase == ProtectionSignatureSystem
}

// Dangerous reports whether the permission is a runtime (dangerous) permission.
func (d DeclaredPermission) Dangerous() bool {
	return d.ProtectionLevel&ProtectionMaskBase == ProtectionDangerous
}

type xmlDeclared struct {
	Package     androidbinary.String `xml:"package,attr"`
	Permissions []struct {
		Name  androidbinary.String `xml:"http://schemas.android.com/apk/res/android name,attr"`
		Level androidbinary.String `xml:"http://schemas.android.com/apk/res/android protectionLevel,attr"`
	} `xml:"permission"`
}

// ReadDeclaredPermissions reads the <permission> elements of an APK's manifest, e.g. the platform's
// own permissions in /system/framework/framework-res.apk, with their protection levels. It returns
// the manifest's package name too.
func ReadDeclaredPermissions(r io.ReaderAt, size int64) (pkg string, perms []DeclaredPermission, err error) {
	data, err := readManifestBytes(r, size)
	if err != nil {
		return "", nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			pkg, perms, err = "", nil, &FormatError{Offset: -1, Msg: fmt.Sprintf("malformed binary AndroidManifest.xml: %v", p)}
		}
	}()
	f, err := androidbinary.NewXMLFile(bytes.NewReader(data))
	if err != nil {
		return "", nil, &FormatError{Offset: -1, Msg: fmt.Sprintf("malformed binary AndroidManifest.xml: %v", err)}
	}
	var x xmlDeclared
	if err := f.Decode(&x, nil, nil); err != nil {
		return "", nil, &FormatError{Offset: -1, Msg: fmt.Sprintf("decoding AndroidManifest.xml: %v", err)}
	}
	for _, p := range x.Permissions {
		name := rawString(p.Name)
		if name == "" {
			continue
		}
		perms = append(perms, DeclaredPermission{Name: name, ProtectionLevel: protectionLevel(rawString(p.Level))})
	}
	return rawString(x.Package), perms, nil
}

// protectionLevel decodes android:protectionLevel: compiled manifests hold the flag bits as an
// integer; a textual manifest holds names joined by '|'.
func protectionLevel(s string) uint32 {
	if s == "" {
		return 0
	}
	if v, ok := parseIntAttr(s); ok {
		return uint32(v)
	}
	if v, err := strconv.ParseUint(s, 0, 32); err == nil {
		return uint32(v)
	}
	names := map[string]uint32{
		"normal": 0, "dangerous": 1, "signature": 2, "signatureOrSystem": 3, "internal": 4,
		"privileged": 0x10, "system": 0x10, "development": 0x20, "appop": 0x40, "pre23": 0x80,
		"installer": 0x100, "verifier": 0x200, "preinstalled": 0x400, "setup": 0x800,
		"instant": 0x1000, "runtime": 0x2000, "oem": 0x4000, "vendorPrivileged": 0x8000,
		"textClassifier": 0x10000, "configurator": 0x80000, "incidentReportApprover": 0x100000,
		"appPredictor": 0x200000, "companion": 0x800000, "retailDemo": 0x1000000,
		"recents": 0x2000000, "role": 0x4000000, "knownSigner": 0x8000000, "module": 0x400000,
	}
	var v uint32
	for _, n := range strings.Split(s, "|") {
		v |= names[strings.TrimSpace(n)]
	}
	return v
}

// readManifestBytes returns the uncompressed AndroidManifest.xml of the APK.
func readManifestBytes(r io.ReaderAt, size int64) ([]byte, error) {
	z, err := openZip(r, size)
	if err != nil {
		return nil, err
	}
	e := z.entry("AndroidManifest.xml")
	if e == nil {
		return nil, formatErr(z.cdOffset, "the APK has no AndroidManifest.xml")
	}
	fault, _, ioErr := z.checkLocalHeader(e, z.cdOffset)
	if ioErr != nil {
		return nil, ioErr
	}
	if fault != nil {
		return nil, fault
	}
	return e.readAll(maxManifestBytes)
}
