package apk

import "fmt"

// Issue is one error or warning. Code is the name apksig's ApkVerifier.Issue gives it (for example
// "JAR_SIG_NO_MANIFEST", "V2_SIG_APK_DIGEST_DID_NOT_VERIFY"); provkit's own checks use
// "MALFORMED_APK" for structural defects, with the offset in the message.
type Issue struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (i Issue) String() string { return i.Code + ": " + i.Message }

// Schemes tells which signature schemes verified.
type Schemes struct {
	V1  bool `json:"v1"`
	V2  bool `json:"v2"`
	V3  bool `json:"v3"`
	V31 bool `json:"v31"`
	V4  bool `json:"v4"`
}

// Signer is a signing certificate. Digests are over the certificate exactly as encoded in the
// signature.
type Signer struct {
	SHA256       string `json:"sha256"`
	SHA1         string `json:"sha1"`
	MD5          string `json:"md5"`
	Subject      string `json:"subject"`
	KeyAlgorithm string `json:"keyAlgorithm"`
	KeySize      int    `json:"keySize"`
	// PublicKeySHA256 is the SHA-256 of the SubjectPublicKeyInfo as encoded in the certificate.
	PublicKeySHA256 string `json:"publicKeySha256"`
	MinSDK          int    `json:"minSdk"`
	MaxSDK          int    `json:"maxSdk"`
	Scheme          string `json:"scheme"` // the scheme this signer comes from: v1, v2, v3, v3.1
	// DevRelease: a v3.1 signer that targets a platform still in development (its minSdk is the
	// last released SDK level, but it applies only to the release after it).
	DevRelease bool `json:"devRelease,omitempty"`
}

// Capabilities are what an older key of a lineage may still do.
type Capabilities struct {
	InstalledData bool `json:"installedData"`
	SharedUID     bool `json:"sharedUid"`
	Permission    bool `json:"permission"`
	Rollback      bool `json:"rollback"`
	Auth          bool `json:"auth"`
}

// LineageNode is one certificate of a proof-of-rotation lineage.
type LineageNode struct {
	SHA256       string       `json:"sha256"`
	Subject      string       `json:"subject"`
	Capabilities Capabilities `json:"capabilities"`
}

// SourceStamp reports an APK's source stamp, which is checked but never decides the verdict.
type SourceStamp struct {
	Verified  bool          `json:"verified"`
	Status    string        `json:"status"`           // apksig's SourceStampVerificationStatus name
	SHA256    string        `json:"sha256,omitempty"` // the stamp certificate
	Subject   string        `json:"subject,omitempty"`
	Timestamp int64         `json:"timestamp,omitempty"` // seconds since the epoch, when signed
	Lineage   []LineageNode `json:"lineage,omitempty"`
	Errors    []Issue       `json:"errors,omitempty"`
	Warnings  []Issue       `json:"warnings,omitempty"`
}

// SDKRange is the platform range an APK was verified for.
type SDKRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// Result is the verdict on one APK and the facts behind it.
type Result struct {
	File     string  `json:"file"`
	SHA256   string  `json:"sha256"` // of the whole file
	Size     int64   `json:"size"`
	Verified bool    `json:"verified"`
	Schemes  Schemes `json:"schemes"`
	// Signers are the certificates Android associates with the APK, in apksigner's order:
	// Signers[0] is apksigner's "Signer #1" (the newest key of a rotated app). Empty unless verified.
	Signers []Signer `json:"signers"`
	// SDKSigners are the v3/v3.1 signers with the platform range each serves, when there is more
	// than one key (rotation targeted at an SDK level).
	SDKSigners  []Signer      `json:"sdkSigners,omitempty"`
	Lineage     []LineageNode `json:"lineage,omitempty"`
	SourceStamp *SourceStamp  `json:"sourceStamp,omitempty"`
	Package     string        `json:"package"`
	VersionCode int64         `json:"versionCode"`
	VersionName string        `json:"versionName"`
	MinSDK      int           `json:"minSdk"`
	TargetSDK   int           `json:"targetSdk"`
	CheckedSDK  SDKRange      `json:"checkedSdk"`
	V4File      string        `json:"v4File,omitempty"`
	Errors      []Issue       `json:"errors"`
	Warnings    []Issue       `json:"warnings"`

	lineage *lineage // the verified lineage, for pin checks
}

func (r *Result) addError(code, format string, args ...any) {
	r.Errors = append(r.Errors, Issue{Code: code, Message: fmt.Sprintf(format, args...)})
}

func (r *Result) addWarning(code, format string, args ...any) {
	r.Warnings = append(r.Warnings, Issue{Code: code, Message: fmt.Sprintf(format, args...)})
}

// HasError reports whether an error with that code was reported.
func (r *Result) HasError(code string) bool {
	for _, e := range r.Errors {
		if e.Code == code {
			return true
		}
	}
	return false
}

// LineageSHA256 returns the SHA-256 of every certificate of the verified lineage, oldest first
// (nil when the APK has no verified lineage).
func (r *Result) LineageSHA256() []string {
	out := make([]string, 0, len(r.Lineage))
	for _, n := range r.Lineage {
		out = append(out, n.SHA256)
	}
	return out
}

func signerOf(c *certInfo, minSDK, maxSDK int, scheme string) Signer {
	return Signer{
		SHA256: c.sha256Hex(), SHA1: c.sha1Hex(), MD5: c.md5Hex(),
		Subject: c.Subject, KeyAlgorithm: c.KeyAlgorithm, KeySize: c.KeySize,
		PublicKeySHA256: c.spkiSHA256Hex(),
		MinSDK:          minSDK, MaxSDK: maxSDK, Scheme: scheme,
	}
}

func lineageNodes(l *lineage) []LineageNode {
	if l == nil {
		return nil
	}
	out := make([]LineageNode, 0, len(l.nodes))
	for _, n := range l.nodes {
		out = append(out, LineageNode{
			SHA256:  n.cert.sha256Hex(),
			Subject: n.cert.Subject,
			Capabilities: Capabilities{
				InstalledData: n.flags&CapInstalledData != 0,
				SharedUID:     n.flags&CapSharedUID != 0,
				Permission:    n.flags&CapPermission != 0,
				Rollback:      n.flags&CapRollback != 0,
				Auth:          n.flags&CapAuth != 0,
			},
		})
	}
	return out
}
