package jarsig

import "fmt"

// Issue codes, named as apksig's ApkVerifier.Issue constants (including apksig's spelling of
// UNNNAMED).
const (
	NoSignatures               = "JAR_SIG_NO_SIGNATURES"
	MaxSignaturesExceeded      = "JAR_SIG_MAX_SIGNATURES_EXCEEDED"
	NoSignedZipEntries         = "JAR_SIG_NO_SIGNED_ZIP_ENTRIES"
	DuplicateZipEntry          = "JAR_SIG_DUPLICATE_ZIP_ENTRY"
	DuplicateManifestSection   = "JAR_SIG_DUPLICATE_MANIFEST_SECTION"
	UnnamedManifestSection     = "JAR_SIG_UNNNAMED_MANIFEST_SECTION"
	UnnamedSigFileSection      = "JAR_SIG_UNNNAMED_SIG_FILE_SECTION"
	NoManifest                 = "JAR_SIG_NO_MANIFEST"
	MissingZipEntryInManifest  = "JAR_SIG_MISSING_ZIP_ENTRY_REFERENCED_IN_MANIFEST"
	NoZipEntryDigestInManifest = "JAR_SIG_NO_ZIP_ENTRY_DIGEST_IN_MANIFEST"
	NoZipEntryDigestInSigFile  = "JAR_SIG_NO_ZIP_ENTRY_DIGEST_IN_SIG_FILE"
	ZipEntryNotSigned          = "JAR_SIG_ZIP_ENTRY_NOT_SIGNED"
	ZipEntrySignersMismatch    = "JAR_SIG_ZIP_ENTRY_SIGNERS_MISMATCH"
	ZipEntryDigestDidNotVerify = "JAR_SIG_ZIP_ENTRY_DIGEST_DID_NOT_VERIFY"
	ManifestMainSectionDigest  = "JAR_SIG_MANIFEST_MAIN_SECTION_DIGEST_DID_NOT_VERIFY"
	ManifestSectionDigest      = "JAR_SIG_MANIFEST_SECTION_DIGEST_DID_NOT_VERIFY"
	NoManifestDigestInSigFile  = "JAR_SIG_NO_MANIFEST_DIGEST_IN_SIG_FILE"
	UnsupportedSigAlg          = "JAR_SIG_UNSUPPORTED_SIG_ALG"
	ParseException             = "JAR_SIG_PARSE_EXCEPTION"
	VerifyException            = "JAR_SIG_VERIFY_EXCEPTION"
	DidNotVerify               = "JAR_SIG_DID_NOT_VERIFY"
	NoSigners                  = "JAR_SIG_NO_SIGNERS"
	DuplicateSigFileSection    = "JAR_SIG_DUPLICATE_SIG_FILE_SECTION"
	MissingVersionAttr         = "JAR_SIG_MISSING_VERSION_ATTR_IN_SIG_FILE"
	UnknownAPKSigSchemeID      = "JAR_SIG_UNKNOWN_APK_SIG_SCHEME_ID"
	MissingAPKSigReferenced    = "JAR_SIG_MISSING_APK_SIG_REFERENCED"
	NoAPKSigStripProtection    = "JAR_SIG_NO_APK_SIG_STRIP_PROTECTION"
	MissingFile                = "JAR_SIG_MISSING_FILE"
	UnprotectedZipEntry        = "JAR_SIG_UNPROTECTED_ZIP_ENTRY"
)

// Issue is an error or a warning found during verification.
type Issue struct{ Code, Message string }

func (i Issue) String() string { return i.Code + ": " + i.Message }

func issue(code, format string, args ...any) Issue {
	return Issue{Code: code, Message: fmt.Sprintf(format, args...)}
}

// issues collects errors and warnings.
type issues struct{ errors, warnings []Issue }

func (s *issues) addError(code, format string, args ...any) {
	s.errors = append(s.errors, issue(code, format, args...))
}

func (s *issues) addWarning(code, format string, args ...any) {
	s.warnings = append(s.warnings, issue(code, format, args...))
}
