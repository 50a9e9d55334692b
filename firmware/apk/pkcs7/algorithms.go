package pkcs7

import (
	"crypto"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Digest algorithm OIDs.
const (
	OIDDigestMD5    = "1.2.840.113549.2.5"
	OIDDigestSHA1   = "1.3.14.3.2.26"
	OIDDigestSHA224 = "2.16.840.1.101.3.4.2.4"
	OIDDigestSHA256 = "2.16.840.1.101.3.4.2.1"
	OIDDigestSHA384 = "2.16.840.1.101.3.4.2.2"
	OIDDigestSHA512 = "2.16.840.1.101.3.4.2.3"
)

// Signature algorithm OIDs as they appear in SignerInfo.signatureAlgorithm: either a key
// algorithm (the digest then comes from SignerInfo.digestAlgorithm) or a combined one.
const (
	OIDSigRSA             = "1.2.840.113549.1.1.1"
	OIDSigMD5WithRSA      = "1.2.840.113549.1.1.4"
	OIDSigSHA1WithRSA     = "1.2.840.113549.1.1.5"
	OIDSigSHA224WithRSA   = "1.2.840.113549.1.1.14"
	OIDSigSHA256WithRSA   = "1.2.840.113549.1.1.11"
	OIDSigSHA384WithRSA   = "1.2.840.113549.1.1.12"
	OIDSigSHA512WithRSA   = "1.2.840.113549.1.1.13"
	OIDSigDSA             = "1.2.840.10040.4.1"
	OIDSigSHA1WithDSA     = "1.2.840.10040.4.3"
	OIDSigSHA224WithDSA   = "2.16.840.1.101.3.4.3.1"
	OIDSigSHA256WithDSA   = "2.16.840.1.101.3.4.3.2"
	OIDSigSHA384WithDSA   = "2.16.840.1.101.3.4.3.3"
	OIDSigSHA512WithDSA   = "2.16.840.1.101.3.4.3.4"
	OIDSigECPublicKey     = "1.2.840.10045.2.1"
	OIDSigSHA1WithECDSA   = "1.2.840.10045.4.1"
	OIDSigSHA224WithECDSA = "1.2.840.10045.4.3.1"
	OIDSigSHA256WithECDSA = "1.2.840.10045.4.3.2"
	OIDSigSHA384WithECDSA = "1.2.840.10045.4.3.3"
	OIDSigSHA512WithECDSA = "1.2.840.10045.4.3.4"
)

// Range is an inclusive range of Android API levels; Max is math.MaxInt for "and later".
type Range struct{ Min, Max int }

func (r Range) String() string {
	switch {
	case r.Min == r.Max:
		return strconv.Itoa(r.Min)
	case r.Max == math.MaxInt:
		return strconv.Itoa(r.Min) + "+"
	}
	return strconv.Itoa(r.Min) + "-" + strconv.Itoa(r.Max)
}

func from(n int) Range      { return Range{n, math.MaxInt} }
func fromTo(a, b int) Range { return Range{a, b} }

// digestHashes maps digest OIDs to hash functions.
var digestHashes = map[string]crypto.Hash{
	OIDDigestMD5:    crypto.MD5,
	OIDDigestSHA1:   crypto.SHA1,
	OIDDigestSHA224: crypto.SHA224,
	OIDDigestSHA256: crypto.SHA256,
	OIDDigestSHA384: crypto.SHA384,
	OIDDigestSHA512: crypto.SHA512,
}

// DigestHash returns the hash function of a digest algorithm OID.
func DigestHash(oid string) (crypto.Hash, bool) {
	h, ok := digestHashes[oid]
	return h, ok
}

type keyType int

const (
	keyRSA keyType = iota + 1
	keyDSA
	keyEC
)

func (k keyType) String() string {
	return [...]string{"", "RSA", "DSA", "ECDSA"}[k]
}

// sigAlg says how a signature OID verifies: the key type, and the hash when the OID names one
// (0 means the SignerInfo's digest algorithm decides).
type sigAlg struct {
	key  keyType
	hash crypto.Hash
}

var sigAlgs = map[string]sigAlg{
	OIDSigRSA:             {keyRSA, 0},
	OIDSigMD5WithRSA:      {keyRSA, crypto.MD5},
	OIDSigSHA1WithRSA:     {keyRSA, crypto.SHA1},
	OIDSigSHA224WithRSA:   {keyRSA, crypto.SHA224},
	OIDSigSHA256WithRSA:   {keyRSA, crypto.SHA256},
	OIDSigSHA384WithRSA:   {keyRSA, crypto.SHA384},
	OIDSigSHA512WithRSA:   {keyRSA, crypto.SHA512},
	OIDSigDSA:             {keyDSA, 0},
	OIDSigSHA1WithDSA:     {keyDSA, crypto.SHA1},
	OIDSigSHA224WithDSA:   {keyDSA, crypto.SHA224},
	OIDSigSHA256WithDSA:   {keyDSA, crypto.SHA256},
	OIDSigECPublicKey:     {keyEC, 0},
	OIDSigSHA1WithECDSA:   {keyEC, crypto.SHA1},
	OIDSigSHA224WithECDSA: {keyEC, crypto.SHA224},
	OIDSigSHA256WithECDSA: {keyEC, crypto.SHA256},
	OIDSigSHA384WithECDSA: {keyEC, crypto.SHA384},
	OIDSigSHA512WithECDSA: {keyEC, crypto.SHA512},
}

// supported is apksig's table of the API levels on which Android's JAR verifier accepts each
// (digest algorithm, signature algorithm) pair in a SignerInfo (OidConstants). A pair absent
// from the table is accepted nowhere.
var supported = map[[2]string][]Range{}

func add(digest, sig string, r ...Range) { supported[[2]string{digest, sig}] = r }

func init() {
	l21to23 := fromTo(21, 23)
	// RSA.
	add(OIDDigestMD5, OIDSigRSA, from(0))
	add(OIDDigestMD5, OIDSigMD5WithRSA, fromTo(0, 8), from(21))
	for _, s := range []string{OIDSigSHA1WithRSA, OIDSigSHA224WithRSA, OIDSigSHA256WithRSA, OIDSigSHA384WithRSA, OIDSigSHA512WithRSA} {
		add(OIDDigestMD5, s, l21to23)
	}
	add(OIDDigestSHA1, OIDSigRSA, from(0))
	add(OIDDigestSHA1, OIDSigMD5WithRSA, l21to23)
	add(OIDDigestSHA1, OIDSigSHA1WithRSA, from(0))
	for _, s := range []string{OIDSigSHA224WithRSA, OIDSigSHA256WithRSA, OIDSigSHA384WithRSA, OIDSigSHA512WithRSA} {
		add(OIDDigestSHA1, s, l21to23)
	}
	add(OIDDigestSHA224, OIDSigRSA, fromTo(0, 8), from(21))
	add(OIDDigestSHA224, OIDSigMD5WithRSA, l21to23)
	add(OIDDigestSHA224, OIDSigSHA1WithRSA, l21to23)
	add(OIDDigestSHA224, OIDSigSHA224WithRSA, fromTo(0, 8), from(21))
	add(OIDDigestSHA224, OIDSigSHA256WithRSA, fromTo(21, 21))
	add(OIDDigestSHA224, OIDSigSHA384WithRSA, l21to23)
	add(OIDDigestSHA224, OIDSigSHA512WithRSA, l21to23)
	add(OIDDigestSHA256, OIDSigRSA, fromTo(0, 8), from(18))
	add(OIDDigestSHA256, OIDSigMD5WithRSA, l21to23)
	add(OIDDigestSHA256, OIDSigSHA1WithRSA, fromTo(21, 21))
	add(OIDDigestSHA256, OIDSigSHA224WithRSA, l21to23)
	add(OIDDigestSHA256, OIDSigSHA256WithRSA, fromTo(0, 8), from(18))
	add(OIDDigestSHA256, OIDSigSHA384WithRSA, l21to23)
	add(OIDDigestSHA256, OIDSigSHA512WithRSA, l21to23)
	add(OIDDigestSHA384, OIDSigRSA, from(18))
	for _, s := range []string{OIDSigMD5WithRSA, OIDSigSHA1WithRSA, OIDSigSHA224WithRSA, OIDSigSHA256WithRSA, OIDSigSHA512WithRSA} {
		add(OIDDigestSHA384, s, l21to23)
	}
	add(OIDDigestSHA384, OIDSigSHA384WithRSA, from(21))
	add(OIDDigestSHA512, OIDSigRSA, from(18))
	for _, s := range []string{OIDSigMD5WithRSA, OIDSigSHA1WithRSA, OIDSigSHA224WithRSA, OIDSigSHA256WithRSA} {
		add(OIDDigestSHA512, s, l21to23)
	}
	add(OIDDigestSHA512, OIDSigSHA384WithRSA, fromTo(21, 21))
	add(OIDDigestSHA512, OIDSigSHA512WithRSA, from(21))

	// DSA.
	for _, s := range []string{OIDSigSHA1WithDSA, OIDSigSHA224WithDSA, OIDSigSHA256WithDSA} {
		add(OIDDigestMD5, s, l21to23)
	}
	add(OIDDigestSHA1, OIDSigDSA, from(0))
	add(OIDDigestSHA1, OIDSigSHA1WithDSA, from(9))
	add(OIDDigestSHA1, OIDSigSHA224WithDSA, l21to23)
	add(OIDDigestSHA1, OIDSigSHA256WithDSA, l21to23)
	add(OIDDigestSHA224, OIDSigDSA, from(22))
	add(OIDDigestSHA224, OIDSigSHA1WithDSA, l21to23)
	add(OIDDigestSHA224, OIDSigSHA224WithDSA, from(21))
	add(OIDDigestSHA224, OIDSigSHA256WithDSA, l21to23)
	add(OIDDigestSHA256, OIDSigDSA, from(22))
	add(OIDDigestSHA256, OIDSigSHA1WithDSA, l21to23)
	add(OIDDigestSHA256, OIDSigSHA224WithDSA, l21to23)
	add(OIDDigestSHA256, OIDSigSHA256WithDSA, from(21))
	for _, d := range []string{OIDDigestSHA384, OIDDigestSHA512} {
		for _, s := range []string{OIDSigSHA1WithDSA, OIDSigSHA224WithDSA, OIDSigSHA256WithDSA} {
			add(d, s, l21to23)
		}
	}

	// ECDSA.
	add(OIDDigestSHA1, OIDSigECPublicKey, from(18))
	add(OIDDigestSHA224, OIDSigECPublicKey, from(21))
	add(OIDDigestSHA256, OIDSigECPublicKey, from(18))
	add(OIDDigestSHA384, OIDSigECPublicKey, from(18))
	add(OIDDigestSHA512, OIDSigECPublicKey, from(18))
	ecdsaSigs := []string{OIDSigSHA1WithECDSA, OIDSigSHA224WithECDSA, OIDSigSHA256WithECDSA, OIDSigSHA384WithECDSA, OIDSigSHA512WithECDSA}
	for _, s := range ecdsaSigs {
		add(OIDDigestMD5, s, l21to23)
	}
	digests := []string{OIDDigestSHA1, OIDDigestSHA224, OIDDigestSHA256, OIDDigestSHA384, OIDDigestSHA512}
	for i, d := range digests {
		for j, s := range ecdsaSigs {
			if i == j {
				if d == OIDDigestSHA1 {
					add(d, s, from(18))
				} else {
					add(d, s, from(21))
				}
			} else {
				add(d, s, l21to23)
			}
		}
	}
}

// SupportedSDKs returns the API level ranges on which Android accepts a SignerInfo with these
// digest and signature algorithm OIDs (empty: none).
func SupportedSDKs(digestOID, sigOID string) []Range {
	return supported[[2]string{digestOID, sigOID}]
}

// Uncovered returns the parts of [min, max] that no range in rs covers.
func Uncovered(min, max int, rs []Range) []Range {
	var out []Range
	for lo := min; lo <= max; {
		// Find a range covering lo.
		covered := false
		for _, r := range rs {
			if r.Min <= lo && lo <= r.Max {
				if r.Max >= max {
					return out
				}
				lo = r.Max + 1
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		// lo is uncovered: extend to the start of the next covering range.
		hi := max
		for _, r := range rs {
			if r.Min > lo && r.Min-1 < hi {
				hi = r.Min - 1
			}
		}
		out = append(out, Range{lo, hi})
		if hi == max {
			break
		}
		lo = hi + 1
	}
	return out
}

var friendlyNames = map[string]string{
	OIDDigestMD5: "MD5", OIDDigestSHA1: "SHA-1", OIDDigestSHA224: "SHA-224", OIDDigestSHA256: "SHA-256",
	OIDDigestSHA384: "SHA-384", OIDDigestSHA512: "SHA-512",
	OIDSigRSA: "RSA", OIDSigMD5WithRSA: "MD5 with RSA", OIDSigSHA1WithRSA: "SHA-1 with RSA",
	OIDSigSHA224WithRSA: "SHA-224 with RSA", OIDSigSHA256WithRSA: "SHA-256 with RSA",
	OIDSigSHA384WithRSA: "SHA-384 with RSA", OIDSigSHA512WithRSA: "SHA-512 with RSA",
	OIDSigDSA: "DSA", OIDSigSHA1WithDSA: "SHA-1 with DSA", OIDSigSHA224WithDSA: "SHA-224 with DSA",
	OIDSigSHA256WithDSA: "SHA-256 with DSA", OIDSigSHA384WithDSA: "SHA-384 with DSA",
	OIDSigSHA512WithDSA: "SHA-512 with DSA",
	OIDSigECPublicKey:   "ECDSA", OIDSigSHA1WithECDSA: "SHA-1 with ECDSA",
	OIDSigSHA224WithECDSA: "SHA-224 with ECDSA", OIDSigSHA256WithECDSA: "SHA-256 with ECDSA",
	OIDSigSHA384WithECDSA: "SHA-384 with ECDSA", OIDSigSHA512WithECDSA: "SHA-512 with ECDSA",
}

// FriendlyName returns a readable name for an algorithm OID ("SHA-256 with RSA"), or the OID.
func FriendlyName(oid string) string {
	if n, ok := friendlyNames[oid]; ok {
		return n
	}
	return oid
}

// UnsupportedAlgorithmError reports a SignerInfo whose algorithms Android rejects on some of the
// API levels asked for (apksig: JAR_SIG_UNSUPPORTED_SIG_ALG).
type UnsupportedAlgorithmError struct {
	DigestOID, SignatureOID string
	Unsupported             []Range
}

func (e *UnsupportedAlgorithmError) Error() string {
	levels := make([]string, len(e.Unsupported))
	for i, r := range e.Unsupported {
		levels[i] = r.String()
	}
	return fmt.Sprintf("digest algorithm %s and signature algorithm %s are not supported on API level(s) %s (%s with %s)",
		e.DigestOID, e.SignatureOID, strings.Join(levels, ", "), FriendlyName(e.DigestOID), FriendlyName(e.SignatureOID))
}
