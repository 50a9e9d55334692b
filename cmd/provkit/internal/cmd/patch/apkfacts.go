package patch

import (
	"context"

	"github.com/provkit/provkit/firmware/apk"
	"github.com/provkit/provkit/manifests/aosp"
	"github.com/provkit/provkit/manifests/policy"
)

// newInspector returns the APK inspector the command uses (tests replace Options.Inspector instead).
var newInspector = func() aosp.Inspector { return apkInspector{} }

// apkInspector fills aosp.APKFacts from firmware/apk: the verdict, package, versionCode, signers
// and lineage from Verify, the requested permissions from Inspect.
type apkInspector struct{}

func (apkInspector) InspectAPK(ctx context.Context, path string) (*aosp.APKFacts, error) {
	res, err := apk.VerifyFile(ctx, path, apk.Options{})
	if err != nil {
		return nil, err
	}
	info, err := apk.InspectFile(ctx, path)
	if err != nil {
		return nil, err
	}
	layout, err := apk.LayoutFile(ctx, path)
	if err != nil {
		return nil, err
	}
	f := &aosp.APKFacts{APKFacts: policy.APKFactsOf(res), RequestedPermissions: info.RequestedPermissions,
		TargetSDK: info.TargetSDK, SignedV2Plus: info.Schemes.V2 || info.Schemes.V3 || info.Schemes.V31, Layout: layout}
	if f.Package == "" {
		f.Package = info.Package
		f.VersionCode = info.VersionCode
	}
	return f, nil
}

// APKPackage reads only the package name (no signature verification): the conflict scan needs
// nothing else from the tree's other prebuilt APKs.
func (apkInspector) APKPackage(ctx context.Context, path string) (string, error) {
	info, err := apk.InspectFile(ctx, path)
	if err != nil {
		return "", err
	}
	return info.Package, nil
}

// NewInspector is the APK inspector `provkit patch` verifies APKs with; `provkit image patch`
// uses the same one, so an APK is judged alike whichever way it is installed.
func NewInspector() aosp.Inspector { return newInspector() }
