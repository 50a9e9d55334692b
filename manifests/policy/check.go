package policy

import (
	"fmt"
	"strings"
)

// Rule IDs. They appear in JSON output and reports; scripts match on them, so they never change.
const (
	RuleAppListed   = "app-listed"          // the APK's package is one the policy names
	RuleSignature   = "signature-verified"  // the APK's signatures verify (all schemes required for its SDK range)
	RuleSignerPin   = "signer-pinned"       // every signer is pinned, directly or through a verified rotation lineage
	RuleMinVersion  = "min-version-code"    // versionCode >= minVersionCode
	RuleFingerprint = "fingerprint-allowed" // the build fingerprint is certified (or the policy certifies any)
)

// Rules lists every rule ID of every verdict (APK, device, image), each once; README's rule table
// lists the same, which a test checks.
var Rules = []string{RuleAppListed, RuleSignature, RuleSignerPin, RuleMinVersion, RuleFingerprint,
	RuleInstalled, RuleSystemApp, RuleSystemCopy, RulePrivileged, RuleEnabled, RulePermissions,
	RuleAppPresent, RulePrivapp, RuleDefaultGrants, RuleInstalledUsers, RuleNotOverridden}

// Check is the result of one rule.
type Check struct {
	Rule   string `json:"rule"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

func (c Check) String() string {
	verdict := "PASS"
	if !c.Pass {
		verdict = "FAIL"
	}
	return fmt.Sprintf("%s %s: %s", verdict, c.Rule, c.Detail)
}

// AllPass reports whether every check passed (true for none).
func AllPass(checks []Check) bool {
	for _, c := range checks {
		if !c.Pass {
			return false
		}
	}
	return true
}

// Failed returns the checks that did not pass.
func Failed(checks []Check) []Check {
	var out []Check
	for _, c := range checks {
		if !c.Pass {
			out = append(out, c)
		}
	}
	return out
}

// APKFacts is what a verified APK says about itself. Signer and lineage digests are SHA-256 over the
// certificate bytes as encoded in the signature, lowercase hex.
type APKFacts struct {
	Package     string
	VersionCode int64
	// Verified is the signature verdict; VerifyErrors says why not when false.
	Verified     bool
	VerifyErrors []string
	// Signers are the certificates the APK is signed with now (signers[0] first). When Verified is
	// false they are, if known, the signers the failed signature claims: named in the verdict, never
	// trusted.
	Signers []string
	// Lineage is the verified proof-of-rotation lineage, oldest certificate first (empty when the
	// key was never rotated).
	Lineage []string
}

// CheckAPK judges an APK's facts against the policy: the package must be listed, the signature must
// verify, every signer must be pinned (a pin on an older key of a verified lineage counts), and the
// versionCode must reach the minimum. It returns the app entry (nil when the package is not listed)
// and every check, in that order; checks after a failed app-listed check are not run.
func (p *Policy) CheckAPK(f APKFacts) (*App, []Check) {
	app, ok := p.App(f.Package)
	if !ok {
		return nil, []Check{{Rule: RuleAppListed, Pass: false,
			Detail: fmt.Sprintf("package %q is not named in %s (it names %s)", f.Package, p.displaySource(), strings.Join(p.Packages(), ", "))}}
	}
	return app, p.CheckAPKFor(app, f)
}

// CheckAPKFor judges an APK meant to be app's (patch takes it from the app's apk: path): app-listed
// passes when the APK declares the app's package; then the app's rules, as CheckAPK.
func (p *Policy) CheckAPKFor(app *App, f APKFacts) []Check {
	listed := Check{Rule: RuleAppListed, Pass: true, Detail: fmt.Sprintf("package %q is named at %s", f.Package, p.Where(app))}
	if f.Package != app.Package {
		listed = Check{Rule: RuleAppListed, Pass: false, Detail: fmt.Sprintf("the APK is package %q, but the policy entry at %s is for %q", f.Package, p.Where(app), app.Package)}
	}
	return append([]Check{listed}, app.CheckAPK(f)...)
}

// CheckAPK judges an APK's facts against this app's rules (signature, pin, version), not whether
// the package matches.
func (a *App) CheckAPK(f APKFacts) []Check {
	var checks []Check
	if f.Verified {
		checks = append(checks, Check{Rule: RuleSignature, Pass: true, Detail: "signatures verify"})
	} else {
		why := "signatures do not verify"
		if len(f.VerifyErrors) > 0 {
			why += ": " + strings.Join(f.VerifyErrors, "; ")
		}
		checks = append(checks, Check{Rule: RuleSignature, Pass: false, Detail: why})
	}
	checks = append(checks, a.checkPin(f))
	if f.VersionCode >= a.MinVersionCode {
		checks = append(checks, Check{Rule: RuleMinVersion, Pass: true, Detail: fmt.Sprintf("versionCode %d >= %d", f.VersionCode, a.MinVersionCode)})
	} else {
		checks = append(checks, Check{Rule: RuleMinVersion, Pass: false, Detail: fmt.Sprintf("versionCode %d is below the minimum %d", f.VersionCode, a.MinVersionCode)})
	}
	return checks
}

func (a *App) checkPin(f APKFacts) Check {
	pins := map[string]bool{}
	for _, d := range a.PinnedDigests() {
		pins[d] = true
	}
	if !f.Verified {
		if len(f.Signers) == 0 {
			return Check{Rule: RuleSignerPin, Pass: false, Detail: "no signer is proven (the signatures do not verify), so none can be compared with the pinned keys"}
		}
		claimed := make([]string, len(f.Signers))
		for i, s := range f.Signers {
			s = NormalizeDigest(s)
			if pins[s] {
				claimed[i] = s + " (pinned)"
			} else {
				claimed[i] = s + " (not pinned)"
			}
		}
		return Check{Rule: RuleSignerPin, Pass: false, Detail: fmt.Sprintf("the signature claims signer %s but does not verify, so the signer is not proven", strings.Join(claimed, ", "))}
	}
	if len(f.Signers) == 0 {
		return Check{Rule: RuleSignerPin, Pass: false, Detail: "the APK has no signer to compare with the pinned keys"}
	}
	var unpinned []string
	var via []string
	for _, s := range f.Signers {
		s = NormalizeDigest(s)
		if pins[s] {
			continue
		}
		// A rotated key: the current signer is trusted when an older certificate of its verified
		// lineage is pinned. Lineages exist only for single-signer APKs (v3 rotation).
		found := ""
		if len(f.Signers) == 1 {
			for _, l := range f.Lineage {
				if pins[NormalizeDigest(l)] {
					found = NormalizeDigest(l)
					break
				}
			}
		}
		if found != "" {
			via = append(via, fmt.Sprintf("signer %s rotated from pinned %s (verified lineage)", s, found))
			continue
		}
		unpinned = append(unpinned, s)
	}
	if len(unpinned) > 0 {
		return Check{Rule: RuleSignerPin, Pass: false,
			Detail: fmt.Sprintf("signer %s is not pinned (pinned: %s)", strings.Join(unpinned, ", "), strings.Join(a.PinnedDigests(), ", "))}
	}
	if len(via) > 0 {
		return Check{Rule: RuleSignerPin, Pass: true, Detail: strings.Join(via, "; ")}
	}
	return Check{Rule: RuleSignerPin, Pass: true, Detail: fmt.Sprintf("signer %s is pinned", strings.Join(normalizeAll(f.Signers), ", "))}
}

// CheckFingerprint judges a build fingerprint: allowed when the policy lists none, or lists it.
func (p *Policy) CheckFingerprint(fp string) Check {
	if len(p.Devices.Fingerprints) == 0 {
		return Check{Rule: RuleFingerprint, Pass: true, Detail: "the policy allows any build"}
	}
	for _, allowed := range p.Devices.Fingerprints {
		if fp == allowed {
			return Check{Rule: RuleFingerprint, Pass: true, Detail: fmt.Sprintf("build %s is certified", fp)}
		}
	}
	if fp == "" {
		return Check{Rule: RuleFingerprint, Pass: false, Detail: "the build fingerprint is unknown (no ro.build.fingerprint)"}
	}
	return Check{Rule: RuleFingerprint, Pass: false, Detail: fmt.Sprintf("build %s is not among the %d certified fingerprints", fp, len(p.Devices.Fingerprints))}
}

func (p *Policy) displaySource() string {
	if p.Source == "" {
		return "the policy"
	}
	return p.Source
}

func normalizeAll(ds []string) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = NormalizeDigest(d)
	}
	return out
}
