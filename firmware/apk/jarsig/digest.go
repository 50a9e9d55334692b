package jarsig

import (
	"bytes"
	"crypto"
	"crypto/md5"  //nolint:gosec // JAR manifests of old APKs use MD5; Android accepts it.
	"crypto/sha1" //nolint:gosec // SHA-1 is the most common JAR digest.
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"strings"
)

// Android API levels that change which digests are read.
const (
	sdkGingerbread  = 9
	sdkJellyBeanMR2 = 18
	sdkN            = 24
	sdkP            = 28
)

// namedDigest is an expected digest read from a manifest or signature file.
type namedDigest struct {
	alg    string // JCA name: "SHA-256"
	hash   crypto.Hash
	digest []byte
}

var digestAlgs = map[string]crypto.Hash{
	"MD5": crypto.MD5, "SHA-1": crypto.SHA1, "SHA-256": crypto.SHA256,
	"SHA-384": crypto.SHA384, "SHA-512": crypto.SHA512,
}

// canonicalDigest maps a name from a Digest-Algorithms attribute to a JCA digest name, "" when
// unknown (MD5, SHA, SHA1, SHA-1, SHA-256, SHA-384, SHA-512, any case).
func canonicalDigest(name string) string {
	switch strings.ToUpper(name) {
	case "MD5":
		return "MD5"
	case "SHA", "SHA1", "SHA-1":
		return "SHA-1"
	case "SHA-256":
		return "SHA-256"
	case "SHA-384":
		return "SHA-384"
	case "SHA-512":
		return "SHA-512"
	}
	return ""
}

// minSDKInManifest is the first API level that reads a digest algorithm in a manifest or
// signature file.
func minSDKInManifest(alg string) int {
	switch alg {
	case "SHA-384", "SHA-512":
		return sdkGingerbread
	}
	return 0
}

// newestFirst is the order in which Android JB MR2 and later pick the digest to check.
var newestFirst = []string{"SHA-512", "SHA-384", "SHA-256", "SHA-1"}

// decodeBase64 decodes a digest value; padding is optional, as with Java's decoder. Invalid
// input yields nil, which matches no digest.
func decodeBase64(s string) []byte {
	if strings.ContainsAny(s, "\r\n") {
		return nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b
	}
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b
	}
	return nil
}

// isTokenSpace reports the delimiters of Java's default StringTokenizer.
func isTokenSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f'
}

// digestsToVerify returns the digests Android checks, on some level of [minSDK, maxSDK], among
// the attributes of s ending with suffix ("-Digest", "-Digest-Manifest", ...), as apksig's
// getDigestsToVerify: before JB MR2 the first algorithm of Digest-Algorithms (default "SHA
// SHA1") that has an attribute; from JB MR2 the strongest of SHA-512, SHA-384, SHA-256, SHA-1.
// An empty result means the levels before JB MR2 find no digest.
func digestsToVerify(s *section, suffix string, minSDK, maxSDK int) []namedDigest {
	var out []namedDigest
	if minSDK < sdkJellyBeanMR2 {
		algs, ok := s.get("Digest-Algorithms")
		if !ok {
			algs = "SHA SHA1"
		}
		for _, tok := range strings.FieldsFunc(algs, isTokenSpace) {
			v, ok := s.get(tok + suffix)
			if !ok {
				continue
			}
			alg := canonicalDigest(tok)
			if alg == "" || minSDKInManifest(alg) > minSDK {
				continue
			}
			out = append(out, namedDigest{alg: alg, hash: digestAlgs[alg], digest: decodeBase64(v)})
			break
		}
		if len(out) == 0 {
			return out
		}
	}
	if maxSDK >= sdkJellyBeanMR2 {
		for _, alg := range newestFirst {
			attr := alg + suffix
			if alg == "SHA-1" {
				attr = "SHA1" + suffix
			}
			v, ok := s.get(attr)
			if !ok {
				continue
			}
			d := decodeBase64(v)
			if prev := findDigest(out, alg); prev == nil || !bytes.Equal(prev, d) {
				out = append(out, namedDigest{alg: alg, hash: digestAlgs[alg], digest: d})
			}
			break
		}
	}
	return out
}

func findDigest(ds []namedDigest, alg string) []byte {
	for _, d := range ds {
		if strings.EqualFold(d.alg, alg) {
			return d.digest
		}
	}
	return nil
}

func newHash(h crypto.Hash) hash.Hash {
	switch h {
	case crypto.MD5:
		return md5.New() //nolint:gosec // see import
	case crypto.SHA1:
		return sha1.New() //nolint:gosec // see import
	case crypto.SHA256:
		return sha256.New()
	case crypto.SHA384:
		return sha512.New384()
	}
	return sha512.New()
}

func sum(h crypto.Hash, b []byte) []byte {
	d := newHash(h)
	d.Write(b)
	return d.Sum(nil)
}
