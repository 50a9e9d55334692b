package apk

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/shogo82148/androidbinary"
)

const maxManifestBytes = 16 << 20 // a binary AndroidManifest.xml larger than this is refused

// Manifest is what provkit reads from the binary AndroidManifest.xml.
type Manifest struct {
	Package              string   `json:"package"`
	VersionCode          int64    `json:"versionCode"`
	VersionName          string   `json:"versionName,omitempty"`
	MinSDK               int      `json:"minSdk"`
	TargetSDK            int      `json:"targetSdk"`
	TargetSandbox        int      `json:"targetSandboxVersion,omitempty"`
	RequestedPermissions []string `json:"requestedPermissions,omitempty"`
}

type xmlManifest struct {
	Package           androidbinary.String `xml:"package,attr"`
	VersionCode       androidbinary.String `xml:"http://schemas.android.com/apk/res/android versionCode,attr"`
	VersionCodeMajor  androidbinary.String `xml:"http://schemas.android.com/apk/res/android versionCodeMajor,attr"`
	VersionName       androidbinary.String `xml:"http://schemas.android.com/apk/res/android versionName,attr"`
	TargetSandbox     androidbinary.String `xml:"http://schemas.android.com/apk/res/android targetSandboxVersion,attr"`
	UsesSDK           []xmlUsesSDK         `xml:"uses-sdk"`
	UsesPermission    []xmlPermission      `xml:"uses-permission"`
	UsesPermissionS23 []xmlPermission      `xml:"uses-permission-sdk-23"`
}

type xmlUsesSDK struct {
	Min    androidbinary.String `xml:"http://schemas.android.com/apk/res/android minSdkVersion,attr"`
	Target androidbinary.String `xml:"http://schemas.android.com/apk/res/android targetSdkVersion,attr"`
}

type xmlPermission struct {
	Name androidbinary.String `xml:"http://schemas.android.com/apk/res/android name,attr"`
}

// parseManifest decodes a binary AndroidManifest.xml. androidbinary is not hardened against hostile
// input, so its panics become errors.
func parseManifest(data []byte) (m *Manifest, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("malformed binary AndroidManifest.xml: %v", r)
		}
	}()
	f, err := androidbinary.NewXMLFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("malformed binary AndroidManifest.xml: %w", err)
	}
	var x xmlManifest
	if err := f.Decode(&x, nil, nil); err != nil {
		return nil, fmt.Errorf("decoding AndroidManifest.xml: %w", err)
	}
	m = &Manifest{MinSDK: 1}
	m.Package = rawString(x.Package)
	m.VersionName = rawString(x.VersionName)
	vc, _ := parseIntAttr(rawString(x.VersionCode))
	major, _ := parseIntAttr(rawString(x.VersionCodeMajor))
	m.VersionCode = major<<32 | int64(uint32(vc))
	if v, ok := parseIntAttr(rawString(x.TargetSandbox)); ok {
		m.TargetSandbox = int(v)
	}
	minSet := false
	target := 0
	for _, s := range x.UsesSDK {
		if v := rawString(s.Min); v != "" {
			sdk, err := sdkValue(v)
			if err != nil {
				return nil, err
			}
			if !minSet || sdk > m.MinSDK {
				m.MinSDK = sdk
			}
			minSet = true
		}
		if v := rawString(s.Target); v != "" {
			if sdk, err := sdkValue(v); err == nil {
				target = sdk
			}
		}
	}
	m.TargetSDK = m.MinSDK
	if target > 0 {
		m.TargetSDK = target
	}
	for _, p := range append(x.UsesPermission, x.UsesPermissionS23...) {
		if n := rawString(p.Name); n != "" {
			m.RequestedPermissions = append(m.RequestedPermissions, n)
		}
	}
	return m, nil
}

// rawString is the attribute's text without resolving resource references (no resource table).
func rawString(s androidbinary.String) string {
	v, err := s.WithTableFile(nil).String()
	if err != nil {
		return ""
	}
	return v
}

func parseIntAttr(s string) (int64, bool) {
	if s == "" || strings.HasPrefix(s, "@") {
		return 0, false
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		v, err := strconv.ParseUint(s[2:], 16, 32)
		return int64(int32(uint32(v))), err == nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return int64(int32(uint32(v))), true
}

// sdkValue reads a minSdkVersion/targetSdkVersion: a number, or a platform codename that apksig
// maps pessimistically to the API level before the release.
func sdkValue(s string) (int, error) {
	if v, ok := parseIntAttr(s); ok {
		return int(v), nil
	}
	if s == "Baklava" {
		return 34, nil
	}
	c := s[0]
	if c < 'A' || c > 'Z' {
		return 0, fmt.Errorf("unsupported codename %q in AndroidManifest.xml's uses-sdk", s)
	}
	table := []struct {
		c   byte
		sdk int
	}{{'C', 2}, {'D', 3}, {'E', 4}, {'F', 7}, {'G', 8}, {'H', 10}, {'I', 13}, {'J', 15}, {'K', 18}, {'L', 20}, {'M', 22}, {'N', 23}, {'O', 25}}
	if c < 'C' {
		return 1, nil
	}
	prev := table[0]
	for _, t := range table {
		if t.c == c {
			return t.sdk, nil
		}
		if t.c < c {
			prev = t
		}
	}
	return prev.sdk + int(c-prev.c), nil
}
