package aosp

import (
	"context"

	"github.com/provkit/provkit/firmware/apk"
	"github.com/provkit/provkit/manifests/policy"
)

// APKFacts is what the patcher needs to know about an APK, as established by the APK engine
// (firmware/apk) after verifying it. Digests are SHA-256 of signer certificates, lowercase hex.
type APKFacts struct {
	// APKFacts are what the policy judges (package, version, verdict, signers, lineage).
	policy.APKFacts
	// RequestedPermissions are the uses-permission names of the manifest.
	RequestedPermissions []string
	// TargetSDK is the manifest's targetSdkVersion (0 when absent).
	TargetSDK int
	// SignedV2Plus: the APK carries an APK Signature Scheme v2 or v3 signature, which any rewrite
	// of the archive breaks.
	SignedV2Plus bool
	// Layout is how each ZIP entry is stored; nil when the inspector did not read it (then provkit
	// decides nothing about preprocessing and keeps to what --preprocessed says).
	Layout []apk.EntryLayout
}

// Inspector establishes an APK's facts. The command layer implements it with firmware/apk; tests
// may supply facts directly. An APK that cannot be read or parsed is an error; one whose signature
// does not verify is facts with Verified false.
type Inspector interface {
	InspectAPK(ctx context.Context, path string) (*APKFacts, error)
}

// PackageNamer is an optional faster path of an Inspector: the package name of an APK without
// verifying its signatures. The conflict scan uses it for the other prebuilt APKs of the tree,
// where only the package matters.
type PackageNamer interface {
	APKPackage(ctx context.Context, path string) (string, error)
}
