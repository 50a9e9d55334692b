package patch

import (
	"context"

	"github.com/provkit/provkit/firmware/apk"
	"github.com/provkit/provkit/manifests/aosp"
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
	f := &aosp.APKFacts{
		Package:              res.Package,
		VersionCode:          res.VersionCode,
		Verified:             res.Verified,
		Lineage:              res.LineageSHA256(),
		RequestedPermissions: info.RequestedPermissions,
	}
	if f.Package == "" {
		f.Package = info.Package
		f.VersionCode = info.VersionCode
	}
	for _, s := range res.Signers {
		f.Signers = append(f.Signers, s.SHA256)
	}
	for _, e := range res.Errors {
		f.VerifyErrors = append(f.VerifyErrors, e.String())
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
