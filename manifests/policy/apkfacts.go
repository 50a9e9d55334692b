package policy

import "github.com/provkit/provkit/firmware/apk"

// APKFactsOf takes what the policy judges from the APK engine's verdict: package and versionCode,
// the verdict with the codes of its errors, the signers' certificate digests (signers[0] first) and
// the verified lineage's, oldest first. Every command that judges an APK (apk verify, patch, check,
// image audit) goes through it, so one APK gets one set of facts wherever it is judged.
func APKFactsOf(r *apk.Result) APKFacts {
	f := APKFacts{Package: r.Package, VersionCode: r.VersionCode, Verified: r.Verified, Lineage: r.LineageSHA256()}
	for _, e := range r.Errors {
		f.VerifyErrors = append(f.VerifyErrors, e.Code)
	}
	for _, s := range r.Signers {
		f.Signers = append(f.Signers, s.SHA256)
	}
	return f
}
