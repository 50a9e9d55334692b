package aosp

import (
	"fmt"
	"strings"
)

// presignedVerdict is what the build will do with a presigned APK, decided from the APK's layout
// the way Android 14's build does:
//
//   - Soong runs build/soong/scripts/check_prebuilt_presigned_apk.py on every presigned
//     android_app_import. Without `preprocessed: true` it requires targetSdkVersion < 30 (a
//     v2+-signed APK must not be rewritten by the build). With it, it requires that
//     `zipalign -c -p 4` passes, that no lib/*.so is compressed and, for a privileged app, that no
//     .dex is compressed.
//   - PackageManager refuses an APK targeting SDK 30 or later whose resources.arsc is compressed or
//     not 4-byte aligned: the build succeeds and the app is missing on the phone.
//   - Make's app_prebuilt_internal.mk realigns a PRESIGNED APK and uncompresses its JNI libraries
//     (and, for a privileged app, its dex) when they are not already so, which breaks an APK
//     Signature Scheme v2+ signature; LOCAL_REPLACE_PREBUILT_APK_INSTALLED installs the APK
//     without any processing.
type presignedVerdict struct {
	// Qualifies: the APK can be installed byte for byte (preprocessed: true /
	// LOCAL_REPLACE_PREBUILT_APK_INSTALLED).
	Qualifies bool
	// Problems name the entries that keep it from qualifying.
	Problems []string
	// CompressedDex names compressed .dex entries of a non-privileged app (allowed; a note).
	CompressedDex []string
	// Blocker is why the module would fail to build or the app would fail to install; "" when none.
	Blocker string
	// Note is a remark for the user; "" when none.
	Note string
}

// maxNamedEntries bounds how many entries a message names.
const maxNamedEntries = 8

func nameEntries(list []string) string {
	if len(list) <= maxNamedEntries {
		return strings.Join(list, "; ")
	}
	return strings.Join(list[:maxNamedEntries], "; ") + fmt.Sprintf("; and %d more", len(list)-maxNamedEntries)
}

// judgePresigned decides how the APK must be declared. forced is --preprocessed: the user wants it
// installed byte for byte whatever its target SDK.
func judgePresigned(f *APKFacts, privileged, forced bool, format string) presignedVerdict {
	var v presignedVerdict
	var misaligned, compressedLibs, compressedPrivDex []string
	for _, e := range f.Layout {
		if need, bad := e.Misaligned(); bad {
			misaligned = append(misaligned, fmt.Sprintf("%s (stored at offset %d, not a multiple of %d)", e.Name, e.DataOffset, need))
		}
		if e.Stored {
			continue
		}
		switch {
		case strings.HasPrefix(e.Name, "lib/") && strings.HasSuffix(e.Name, ".so"):
			compressedLibs = append(compressedLibs, e.Name+" (compressed JNI library)")
		case strings.HasSuffix(e.Name, ".dex") && privileged:
			compressedPrivDex = append(compressedPrivDex, e.Name+" (compressed dex in a privileged app)")
		case strings.HasSuffix(e.Name, ".dex"):
			v.CompressedDex = append(v.CompressedDex, e.Name)
		case e.Name == "resources.arsc" && f.TargetSDK >= 30:
			v.Problems = append(v.Problems, "resources.arsc (compressed; Android 11+ refuses to install an app targeting SDK 30+ with a compressed resources.arsc)")
		}
	}
	v.Problems = append(append(append(misaligned, compressedLibs...), compressedPrivDex...), v.Problems...)
	v.Qualifies = len(v.Problems) == 0
	if v.Qualifies {
		return v
	}
	var supply []string
	if len(compressedLibs) > 0 {
		supply = append(supply, "native libraries stored uncompressed (Android Gradle Plugin: packaging.jniLibs.useLegacyPackaging = false)")
	}
	if len(compressedPrivDex) > 0 || len(v.CompressedDex) > 0 {
		supply = append(supply, "dex stored uncompressed (packaging.dex.useLegacyPackaging = false)")
	}
	supply = append(supply, "aligned with `zipalign -p 4` before it is signed with apksigner")
	ask := "ask the app's vendor for an APK with " + strings.Join(supply, ", ") + "; provkit cannot fix the APK itself without breaking its signature"
	what := nameEntries(v.Problems)
	switch {
	case format == FormatBp && (f.TargetSDK >= 30 || f.TargetSDK <= 0 || forced):
		why := fmt.Sprintf("targetSdkVersion %d is 30 or later, so Soong's check_prebuilt_presigned_apk.py requires `preprocessed: true`", f.TargetSDK)
		if f.TargetSDK < 30 && forced {
			why = "--preprocessed was asked for"
		}
		v.Blocker = fmt.Sprintf("%s, and a preprocessed APK must pass `zipalign -c -p 4` with uncompressed JNI libraries (and, when privileged, uncompressed dex); the build would fail on: %s; %s", why, what, ask)
	case f.SignedV2Plus:
		v.Blocker = fmt.Sprintf("the build would rewrite this APK (realign it or uncompress entries) and so break its APK Signature Scheme v2+ signature; it would have to be rewritten because of: %s; %s", what, ask)
	default:
		v.Note = fmt.Sprintf("the build will realign or uncompress this APK (%s); its v1 (JAR) signature survives that", what)
	}
	return v
}
