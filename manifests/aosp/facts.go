package aosp

import (
	"context"

	"github.com/provkit/provkit/manifests/policy"
)

// APKFacts is what the patcher needs to know about an APK, as established by the APK engine
// (firmware/apk) after verifying it. Digests are SHA-256 of signer certificates, lowercase hex.
type APKFacts struct {
	Package     string
	VersionCode int64
	// Verified is the signature verdict; VerifyErrors says why not when false.
	Verified     bool
	VerifyErrors []string
	// Signers are the current signer certificates' digests, signers[0] first.
	Signers []string
	// Lineage is the verified proof-of-rotation lineage, oldest certificate first.
	Lineage []string
	// RequestedPermissions are the uses-permission names of the manifest.
	RequestedPermissions []string
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

// PolicyFacts converts to the facts the policy judges.
func (f *APKFacts) PolicyFacts() policy.APKFacts {
	return policy.APKFacts{
		Package:      f.Package,
		VersionCode:  f.VersionCode,
		Verified:     f.Verified,
		VerifyErrors: f.VerifyErrors,
		Signers:      f.Signers,
		Lineage:      f.Lineage,
	}
}
