package jarsig_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"math"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/provkit/provkit/firmware/apk/internal/dertest"
	"github.com/provkit/provkit/firmware/apk/internal/jartest"
	"github.com/provkit/provkit/firmware/apk/jarsig"
)

var (
	keysOnce       sync.Once
	rsaA, rsaB     *rsa.PrivateKey
	ecKey          *ecdsa.PrivateKey
	certA, certB   []byte
	certEC         []byte
	certNoSigUsage []byte
)

func keys(t testing.TB) {
	keysOnce.Do(func() {
		var err error
		if rsaA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaB, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		certA = jartest.SelfSigned(rsaA, "signer-a", 1)
		certB = jartest.SelfSigned(rsaB, "signer-b", 2)
		certEC = jartest.SelfSigned(ecKey, "signer-ec", 3)
		certNoSigUsage = dertest.Cert(dertest.CertSpec{Key: rsaA, Subject: dertest.CN("no-sig-usage"), Serial: big.NewInt(4),
			Extensions: [][]byte{dertest.Extension("2.5.29.15", true, dertest.Bits([]byte{0x20}))}})
	})
}

func files() []jartest.File {
	long := "assets/" + strings.Repeat("very-long-directory-name/", 5) + "file-with-a-name-that-wraps.bin"
	return []jartest.File{
		{Name: "AndroidManifest.xml", Data: []byte("<manifest/>")},
		{Name: "classes.dex", Data: bytes.Repeat([]byte("dex\n"), 5000)},
		{Name: "assets/"},
		{Name: "assets/stored.bin", Data: []byte("stored data"), Stored: true},
		{Name: long, Data: []byte("long name")},
		{Name: "res/raw/ünïcödé.txt", Data: []byte("utf-8 name")},
	}
}

func signerA() jartest.Signer { return jartest.Signer{Name: "CERT", Key: rsaA, Cert: certA} }
func signerB() jartest.Signer { return jartest.Signer{Name: "B", Key: rsaB, Cert: certB} }

// sha1Signer signs with SHA-1 everywhere, which every API level accepts.
func sha1Signer() jartest.Signer {
	s := signerA()
	s.DigestOID = "1.3.14.3.2.26"
	s.SFDigests = []string{"SHA1"}
	return s
}

func replaceSF(old, new string) func([]byte) []byte {
	return func(b []byte) []byte { return bytes.Replace(b, []byte(old), []byte(new), 1) }
}

type verifyCase struct {
	name     string
	spec     jartest.Spec
	min, max int
	found    map[int]bool
	verified bool
	errors   []string // codes that must be among the errors (result or signers)
	warnings []string // codes that must be among the warnings
	ignored  int      // number of ignored signers
}

// craftedCases are v1-signed APKs built by jartest with one variation or defect each, and the
// verdict apksig reaches on them.
func craftedCases(t testing.TB) []verifyCase {
	keys(t)
	ghost := func(b []byte) []byte {
		return append(b, []byte("Name: ghost.txt\r\nSHA-256-Digest: AAAA\r\n\r\n")...)
	}
	dup := func(b []byte) []byte {
		return append(b, []byte("Name: classes.dex\r\nSHA-256-Digest: AAAA\r\n\r\n")...)
	}
	skip := func(names ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	all := map[string]bool{}
	for _, f := range files() {
		all[f.Name] = true
	}
	other := signerB()
	otherInfo := jartest.SignerInfo(other, []byte("some other content"))
	cases := []verifyCase{
		{name: "SHA-256 RSA", spec: jartest.Spec{Signers: []jartest.Signer{signerA()}}, min: 18, max: math.MaxInt, verified: true},
		{name: "SHA-256 below JB MR2 has no digest Android reads", spec: jartest.Spec{Signers: []jartest.Signer{signerA()}}, min: 10, max: math.MaxInt,
			errors: []string{jarsig.UnsupportedSigAlg}},
		{name: "SHA-1 everywhere from API 1", spec: jartest.Spec{ManifestDigests: []string{"SHA1"}, Signers: []jartest.Signer{sha1Signer()}}, min: 1, max: math.MaxInt, verified: true},
		{name: "MD5 through Digest-Algorithms before JB MR2", spec: jartest.Spec{ManifestDigests: []string{"MD5"}, DigestAlgorithms: "MD5", Signers: []jartest.Signer{sha1Signer()}},
			min: 1, max: 17, verified: true},
		{name: "MD5 only, but JB MR2 reads SHA digests only", spec: jartest.Spec{ManifestDigests: []string{"MD5"}, DigestAlgorithms: "MD5", Signers: []jartest.Signer{sha1Signer()}},
			min: 1, max: 18, verified: true}, // pre-18 finds MD5, 18+ finds nothing more: MD5 alone is checked
		{name: "SHA-1 and SHA-256, min 18 checks only SHA-256", spec: jartest.Spec{ManifestDigests: []string{"SHA1", "SHA-256"}, Signers: []jartest.Signer{sha1Signer()}},
			min: 18, max: math.MaxInt, verified: true},
		{name: "LF line endings", spec: jartest.Spec{Signers: []jartest.Signer{signerA()}, EditManifest: func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }},
			min: 18, max: math.MaxInt, verified: true},
		{name: "tampered entry", spec: jartest.Spec{Signers: []jartest.Signer{signerA()}, Replace: map[string][]byte{"classes.dex": []byte("evil")}},
			min: 18, max: math.MaxInt, errors: []string{jarsig.ZipEntryDigestDidNotVerify}},
		{name: "entry not in manifest", spec: jartest.Spec{Signers: []jartest.Signer{signerA()}, Extra: []jartest.File{{Name: "lib/x86/evil.so", Data: []byte("x")}}},
			min: 18, max: math.MaxInt, errors: []string{jarsig.NoZipEntryDigestInManifest}},
		{name: "unprotected META-INF file", spec: jartest.Spec{Signers: []jartest.Signer{signerA()}, Extra: []jartest.File{{Name: "META-INF/services/x", Data: []byte("x")}}},
			min: 18, max: math.MaxInt, verified: true, warnings: []string{jarsig.UnprotectedZipEntry}},
		{name: "manifest names a missing entry", spec: jartest.Spec{Signers: []jartest.Signer{signerA()}, EditManifest: ghost},
			min: 18, max: math.MaxInt, errors: []string{jarsig.MissingZipEntryInManifest}},
		{name: "duplicate manifest section", spec: jartest.Spec{Signers: []jartest.Signer{signerA()}, EditManifest: dup},
			min: 18, max: math.MaxInt, errors: []string{jarsig.DuplicateManifestSection}},
		{name: "entry left out of the signature file", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer { s := signerA(); s.Skip = skip("classes.dex"); return s }()}},
			min: 18, max: math.MaxInt, errors: []string{jarsig.ZipEntryNotSigned}},
		{name: "signers disagree on an entry", spec: jartest.Spec{Signers: []jartest.Signer{signerA(), func() jartest.Signer { s := signerB(); s.Skip = skip("classes.dex"); return s }()}},
			min: 18, max: math.MaxInt, errors: []string{jarsig.ZipEntrySignersMismatch}},
		{name: "two signers", spec: jartest.Spec{Signers: []jartest.Signer{signerA(), signerB()}}, min: 18, max: math.MaxInt, verified: true},
		{name: "a signer that signs nothing is ignored", spec: jartest.Spec{Signers: []jartest.Signer{signerA(), func() jartest.Signer { s := signerB(); s.Skip = all; return s }()}},
			min: 18, max: math.MaxInt, verified: true, ignored: 1},
		{name: "signature file without Signature-Version", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer {
			s := signerA()
			s.EditSF = replaceSF("Signature-Version", "Signature-Versio")
			return s
		}()}},
			min: 18, max: math.MaxInt, errors: []string{jarsig.NoSignatures}, ignored: 1},
		{name: "unusable second signer is ignored", spec: jartest.Spec{Signers: []jartest.Signer{signerA(), func() jartest.Signer { s := signerB(); s.EditSF = replaceSF("Signature-Version", "X"); return s }()}},
			min: 18, max: math.MaxInt, verified: true, ignored: 1},
		{name: "signature file changed after signing", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer { s := signerA(); s.EditSignedSF = replaceSF("1.0", "1.1"); return s }()}},
			min: 18, max: math.MaxInt, errors: []string{jarsig.DidNotVerify}},
		{name: "signed attributes before KitKat", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer { s := signerA(); s.SignedAttrs = true; return s }()}},
			min: 18, max: math.MaxInt, errors: []string{jarsig.VerifyException}},
		{name: "signed attributes", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer { s := signerA(); s.SignedAttrs = true; return s }()}},
			min: 19, max: math.MaxInt, verified: true},
		{name: "signed attributes with two message digests", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer {
			s := signerA()
			s.Attrs = [][]byte{jartest.Attribute("1.2.840.113549.1.9.3", dertest.OID("1.2.840.113549.1.7.1")), jartest.Attribute("1.2.840.113549.1.9.4", dertest.Octets([]byte{1}), dertest.Octets([]byte{2}))}
			return s
		}()}}, min: 24, max: math.MaxInt, errors: []string{jarsig.ParseException}},
		{name: "wrong whole-manifest digest falls back to sections", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer {
			s := signerA()
			s.EditSF = func(b []byte) []byte {
				return bytes.Replace(b, []byte("SHA-256-Digest-Manifest: "), []byte("SHA-256-Digest-Manifest: AAAA"), 1)
			}
			return s
		}()}}, min: 18, max: math.MaxInt, verified: true, warnings: []string{jarsig.ZipEntryDigestDidNotVerify}},
		{name: "wrong main attributes digest", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer {
			s := signerA()
			s.EditSF = func(b []byte) []byte {
				return bytes.Replace(b, []byte("SHA-256-Digest-Manifest-Main-Attributes: "), []byte("SHA-256-Digest-Manifest-Main-Attributes: AAAA"), 1)
			}
			return s
		}()}}, min: 18, max: math.MaxInt, errors: []string{jarsig.ManifestMainSectionDigest}},
		{name: "stripped v2 signature", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer { s := signerA(); s.APKSigned = "2"; return s }()}},
			min: 18, max: math.MaxInt, errors: []string{jarsig.MissingAPKSigReferenced}},
		{name: "v2 present", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer { s := signerA(); s.APKSigned = "2, 1000"; return s }()}},
			min: 18, max: math.MaxInt, found: map[int]bool{2: true}, verified: true, warnings: []string{jarsig.UnknownAPKSigSchemeID}},
		{name: "stripping not checked before N", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer { s := signerA(); s.APKSigned = "2,3"; return s }()}},
			min: 18, max: 23, verified: true},
		{name: "v3 unknown before P", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer { s := signerA(); s.APKSigned = "3"; return s }()}},
			min: 18, max: 27, verified: true, warnings: []string{jarsig.UnknownAPKSigSchemeID}},
		{name: "stripped v3 signature", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer { s := signerA(); s.APKSigned = "2,3"; return s }()}},
			min: 18, max: 28, found: map[int]bool{2: true}, errors: []string{jarsig.MissingAPKSigReferenced}},
		{name: "no stripping protection", spec: jartest.Spec{Signers: []jartest.Signer{signerA()}},
			min: 18, max: math.MaxInt, found: map[int]bool{2: true}, verified: true, warnings: []string{jarsig.NoAPKSigStripProtection}},
		{name: "ECDSA with ecPublicKey OID", spec: jartest.Spec{Signers: []jartest.Signer{{Name: "EC", Key: ecKey, Cert: certEC}}}, min: 18, max: math.MaxInt, verified: true},
		{name: "SHA256withECDSA OID needs API 21", spec: jartest.Spec{Signers: []jartest.Signer{{Name: "EC", Key: ecKey, Cert: certEC, SigOID: "1.2.840.10045.4.3.2"}}},
			min: 18, max: math.MaxInt, errors: []string{jarsig.UnsupportedSigAlg}},
		{name: "key usage without digitalSignature", spec: jartest.Spec{Signers: []jartest.Signer{{Name: "CERT", Key: rsaA, Cert: certNoSigUsage}}},
			min: 18, max: math.MaxInt, errors: []string{jarsig.VerifyException}},
		{name: "signing certificate missing from the bag", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer { s := signerA(); s.Bag = [][]byte{certB}; return s }()}},
			min: 18, max: math.MaxInt, errors: []string{jarsig.VerifyException}},
		{name: "unrelated first certificate in the bag", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer { s := signerA(); s.ExtraCerts = [][]byte{certB, certEC}; return s }()}},
			min: 18, max: math.MaxInt, verified: true},
		{name: "bad first SignerInfo before N", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer {
			s := signerA()
			s.ExtraCerts = [][]byte{certB}
			s.LeadingSignerInfos = [][]byte{otherInfo}
			return s
		}()}}, min: 23, max: math.MaxInt, errors: []string{jarsig.DidNotVerify}},
		{name: "bad first SignerInfo from N", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer {
			s := signerA()
			s.ExtraCerts = [][]byte{certB}
			s.LeadingSignerInfos = [][]byte{otherInfo}
			return s
		}()}}, min: 24, max: math.MaxInt, verified: true},
		{name: "signature block in BER with indefinite lengths", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer {
			s := signerA()
			s.EditBlock = func(b []byte) []byte {
				// Re-wrap the outer ContentInfo SEQUENCE with an indefinite length.
				return dertest.Indefinite(0x30, b[4:])
			}
			return s
		}()}}, min: 18, max: math.MaxInt, verified: true},
		{name: "garbage signature block", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer {
			s := signerA()
			s.EditBlock = func(b []byte) []byte { return b[:len(b)/2] }
			return s
		}()}}, min: 18, max: math.MaxInt, errors: []string{jarsig.ParseException}},
		{name: "signature block without signature file", spec: jartest.Spec{Signers: []jartest.Signer{signerA()},
			Extra: []jartest.File{{Name: "META-INF/LONELY.RSA", Data: []byte{0x30, 0}}}},
			min: 18, max: math.MaxInt, verified: true, warnings: []string{jarsig.MissingFile, jarsig.UnprotectedZipEntry}},
		{name: "unnamed signature file section", spec: jartest.Spec{Signers: []jartest.Signer{func() jartest.Signer {
			s := signerA()
			s.EditSF = func(b []byte) []byte { return append(b, []byte("Foo: bar\r\n\r\n")...) }
			return s
		}()}}, min: 18, max: math.MaxInt, errors: []string{jarsig.NoSignatures}, ignored: 1},
		{name: "no signers at all", spec: jartest.Spec{}, min: 18, max: math.MaxInt, errors: []string{jarsig.NoSignatures}},
	}
	return cases
}

func TestVerifyCrafted(t *testing.T) {
	for _, tc := range craftedCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			if tc.spec.Files == nil {
				tc.spec.Files = files()
			}
			apk := jartest.Build(tc.spec)
			res, err := jarsig.Verify(context.Background(), openZip(t, apk), jarsig.Options{MinSDK: tc.min, MaxSDK: tc.max, FoundSchemeIDs: tc.found})
			if err != nil {
				t.Fatal(err)
			}
			if res.Verified != tc.verified {
				t.Fatalf("verified=%v, want %v:%s", res.Verified, tc.verified, allIssues(res))
			}
			for _, code := range tc.errors {
				if !hasIssue(res, code, false) && !ignoredHas(res, code) {
					t.Errorf("missing error %s:%s", code, allIssues(res))
				}
			}
			for _, code := range tc.warnings {
				if !hasIssue(res, code, true) {
					t.Errorf("missing warning %s:%s", code, allIssues(res))
				}
			}
			if len(res.IgnoredSigners) != tc.ignored {
				t.Errorf("%d ignored signers, want %d", len(res.IgnoredSigners), tc.ignored)
			}
			if tc.verified {
				if len(res.Errors) > 0 || len(res.Signers) == 0 {
					t.Fatalf("verified with errors or no signers:%s", allIssues(res))
				}
				for _, s := range res.Signers {
					if len(s.Certs) == 0 || len(s.Errors) > 0 {
						t.Errorf("signer %s: %d certs, errors %v", s.Name, len(s.Certs), s.Errors)
					}
				}
			}
		})
	}
}

func ignoredHas(res *jarsig.Result, code string) bool {
	for _, s := range res.IgnoredSigners {
		for _, i := range s.Errors {
			if i.Code == code {
				return true
			}
		}
	}
	return false
}

// TestSignerCertificates checks that a signer's certificate is returned exactly as encoded in
// the signature block, with its chain, even when it is BER.
func TestSignerCertificates(t *testing.T) {
	keys(t)
	// A certificate encoded with padded long-form lengths: not DER.
	c := dertest.LongLen(0x30, 2, certA[4:])
	s := jartest.Signer{Name: "CERT", Key: rsaA, Cert: c}
	apk := jartest.Build(jartest.Spec{Files: files(), Signers: []jartest.Signer{s}})
	res, err := jarsig.Verify(context.Background(), openZip(t, apk), jarsig.Options{MinSDK: 18, MaxSDK: math.MaxInt})
	if err != nil || !res.Verified {
		t.Fatalf("err %v verified %v:%s", err, res != nil && res.Verified, allIssues(res))
	}
	if got := res.Signers[0].Certs[0]; !bytes.Equal(got, c) || sha256.Sum256(got) == sha256.Sum256(certA) {
		t.Fatal("signer certificate is not the BER encoding from the signature block")
	}
}

func TestVerifyBounds(t *testing.T) {
	keys(t)
	good := jartest.Build(jartest.Spec{Files: files(), Signers: []jartest.Signer{signerA()}})
	opts := jarsig.Options{MinSDK: 18, MaxSDK: math.MaxInt}

	t.Run("manifest declaring gigabytes", func(t *testing.T) {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.CreateRaw(&zip.FileHeader{Name: "META-INF/MANIFEST.MF", Method: zip.Store, UncompressedSize64: 2016310387, CompressedSize64: 4, CRC32: 0})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("abcd"))
		zw.Close()
		_, err = jarsig.Verify(context.Background(), openZip(t, buf.Bytes()), opts)
		if !errors.Is(err, jarsig.ErrFormat) || !strings.Contains(err.Error(), "META-INF/MANIFEST.MF") {
			t.Fatalf("want ErrFormat naming the manifest, got %v", err)
		}
	})
	t.Run("entry longer than declared", func(t *testing.T) {
		r := openZip(t, good)
		for _, f := range r.r.File {
			if f.Name == "classes.dex" {
				f.UncompressedSize64 = 10 // lie: the data inflates to 20000 bytes
			}
		}
		_, err := jarsig.Verify(context.Background(), r, opts)
		if err == nil || !strings.Contains(err.Error(), "classes.dex") {
			t.Fatalf("want an error naming classes.dex, got %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := jarsig.Verify(ctx, openZip(t, good), opts); !errors.Is(err, context.Canceled) {
			t.Fatalf("want context.Canceled, got %v", err)
		}
	})
	t.Run("min above max", func(t *testing.T) {
		if _, err := jarsig.Verify(context.Background(), openZip(t, good), jarsig.Options{MinSDK: 30, MaxSDK: 20}); err == nil {
			t.Fatal("accepted min SDK above max SDK")
		}
	})
	t.Run("no manifest", func(t *testing.T) {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("classes.dex")
		w.Write([]byte("x"))
		zw.Close()
		res, err := jarsig.Verify(context.Background(), openZip(t, buf.Bytes()), opts)
		if err != nil || res.Verified || !hasIssue(res, jarsig.NoManifest, false) {
			t.Fatalf("err %v:%s", err, allIssues(res))
		}
	})
}

// TestMetadataBudget checks that signature files declaring more than MaxMetadataSize together
// are refused before they are read, even when each is under MaxManifestSize.
func TestMetadataBudget(t *testing.T) {
	keys(t)
	apk := jartest.Build(jartest.Spec{Files: files(), Signers: []jartest.Signer{signerA(), signerB(), func() jartest.Signer { s := signerA(); s.Name = "C"; return s }()}})
	r := openZip(t, apk)
	for _, f := range r.r.File {
		if strings.HasSuffix(f.Name, ".SF") {
			f.UncompressedSize64 = jarsig.MaxManifestSize // each allowed, together too much
		}
	}
	_, err := jarsig.Verify(context.Background(), r, jarsig.Options{MinSDK: 18, MaxSDK: math.MaxInt})
	if !errors.Is(err, jarsig.ErrFormat) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("want ErrFormat for the metadata budget, got %v", err)
	}
}

// TestDirectoryEntries checks that directory entries are invisible, as in apksig: a manifest
// section naming one names a missing entry.
func TestDirectoryEntries(t *testing.T) {
	keys(t)
	dirSection := func(b []byte) []byte {
		return append(b, []byte("Name: assets/\r\nSHA-256-Digest: 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\r\n\r\n")...)
	}
	apk := jartest.Build(jartest.Spec{Files: files(), Signers: []jartest.Signer{signerA()}, EditManifest: dirSection})
	res, err := jarsig.Verify(context.Background(), openZip(t, apk), jarsig.Options{MinSDK: 18, MaxSDK: math.MaxInt})
	if err != nil || res.Verified || !hasIssue(res, jarsig.MissingZipEntryInManifest, false) {
		t.Fatalf("err %v:%s", err, allIssues(res))
	}
}
