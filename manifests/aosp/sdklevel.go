package aosp

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// versionDefaults is where the build system defines the platform's API level (Android 10 to 14
// spell the number there; Android 15 takes it from the release configuration's
// RELEASE_PLATFORM_SDK_VERSION flag).
const versionDefaults = "build/make/core/version_defaults.mk"

// releaseDir holds the release configurations and their flag values (Android 14 QPR and later).
const releaseDir = "build/release"

var (
	sdkAssignRe     = regexp.MustCompile(`(?m)^[ \t]*PLATFORM_SDK_VERSION[ \t]*[:?]?=[ \t]*(\S+)`)
	releaseSdkRe    = regexp.MustCompile(`RELEASE_PLATFORM_SDK_VERSION`)
	releaseSdkValRe = regexp.MustCompile(`(?:string_value|int_value|value)\s*[:=]\s*"?([0-9]{2,3})"?|RELEASE_PLATFORM_SDK_VERSION"?\s*,\s*[A-Z_]+\s*,\s*"?([0-9]{2,3})"?`)
)

// maxReleaseFiles bounds how many release-configuration files are read looking for the level.
const maxReleaseFiles = 4000

// treeSDKLevel reads the tree's Android API level: PLATFORM_SDK_VERSION in version_defaults.mk,
// or, when that defers to the release configuration, the RELEASE_PLATFORM_SDK_VERSION values under
// build/release (used only when they agree). It returns 0 and why when the level cannot be told.
func treeSDKLevel(t *tree) (api int, where string) {
	src, err := t.read(versionDefaults)
	if err != nil {
		return 0, fmt.Sprintf("the tree has no readable %s", versionDefaults)
	}
	var deferred bool
	for _, m := range sdkAssignRe.FindAllSubmatchIndex(src, -1) {
		v := string(src[m[2]:m[3]])
		if n, err := strconv.Atoi(v); err == nil && n >= 1 && n < 1000 {
			return n, fmt.Sprintf("%s:%d", versionDefaults, 1+bytes.Count(src[:m[0]], []byte("\n")))
		}
		if strings.Contains(v, "RELEASE_PLATFORM_SDK_VERSION") {
			deferred = true
		}
	}
	if !deferred {
		return 0, fmt.Sprintf("%s sets no PLATFORM_SDK_VERSION number", versionDefaults)
	}
	values := map[int][]string{}
	n := 0
	_ = t.walk([]string{releaseDir}, func(rel string) error {
		ext := path.Ext(rel)
		if ext != ".textproto" && ext != ".scl" && ext != ".mk" {
			return nil
		}
		if n++; n > maxReleaseFiles {
			return errStopWalk
		}
		b, err := t.read(rel)
		if err != nil || !releaseSdkRe.Match(b) {
			return nil
		}
		for _, m := range releaseSdkValRe.FindAllSubmatch(b, -1) {
			s := string(m[1]) + string(m[2])
			if v, err := strconv.Atoi(s); err == nil {
				values[v] = append(values[v], rel)
			}
		}
		return nil
	})
	switch len(values) {
	case 0:
		return 0, fmt.Sprintf("%s takes PLATFORM_SDK_VERSION from RELEASE_PLATFORM_SDK_VERSION, and no value of it was found under %s", versionDefaults, releaseDir)
	case 1:
		for v, files := range values {
			return v, files[0]
		}
	}
	var vs []string
	for v := range values {
		vs = append(vs, strconv.Itoa(v))
	}
	sort.Strings(vs)
	return 0, fmt.Sprintf("the release configurations under %s disagree on RELEASE_PLATFORM_SDK_VERSION (%s)", releaseDir, strings.Join(vs, ", "))
}

// errStopWalk ends a walk early; it is never returned to a caller.
var errStopWalk = fmt.Errorf("enough files read")
