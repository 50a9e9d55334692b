package pkcs7_test

import (
	"archive/zip"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/apk/cert"
	d "github.com/provkit/provkit/firmware/apk/internal/dertest"
	"github.com/provkit/provkit/firmware/apk/pkcs7"
)

type block struct {
	apk, name string
	data, sf  []byte
}

// suiteBlocks returns the signature blocks of the suite's APKs with their signature files.
func suiteBlocks(t testing.TB) []block {
	files, _ := filepath.Glob("../testdata/apksig/*.apk")
	var out []block
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			continue
		}
		read := func(name string) []byte {
			for _, f := range zr.File {
				if f.Name == name {
					rc, err := f.Open()
					if err != nil {
						return nil
					}
					data, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
					rc.Close()
					return data
				}
			}
			return nil
		}
		for _, f := range zr.File {
			n := f.Name
			if !strings.HasPrefix(n, "META-INF/") || !(strings.HasSuffix(n, ".RSA") || strings.HasSuffix(n, ".DSA") || strings.HasSuffix(n, ".EC")) {
				continue
			}
			data := read(n)
			if data == nil {
				continue
			}
			out = append(out, block{filepath.Base(p), n, data, read(n[:strings.LastIndexByte(n, '.')] + ".SF")})
		}
	}
	return out
}

// TestSuiteBlocks parses every signature block of the suite and verifies its first SignerInfo
// at an API level range where apksig accepts its algorithms.
func TestSuiteBlocks(t *testing.T) {
	blocks := suiteBlocks(t)
	if len(blocks) < 150 {
		t.Fatalf("only %d signature blocks in the suite copy", len(blocks))
	}
	verified := 0
	for _, b := range blocks {
		sd, err := pkcs7.Parse(b.data)
		if err != nil {
			t.Errorf("%s %s: %v", b.apk, b.name, err)
			continue
		}
		if sd.ContentType != pkcs7.OIDData || len(sd.SignerInfos) == 0 || len(sd.Certificates) == 0 || sd.Content != nil {
			t.Errorf("%s %s: content type %s, %d signer infos, %d certificates", b.apk, b.name, sd.ContentType, len(sd.SignerInfos), len(sd.Certificates))
			continue
		}
		certs, err := sd.ParseCertificates()
		if err != nil {
			t.Errorf("%s %s: %v", b.apk, b.name, err)
			continue
		}
		for i := range certs {
			if !bytes.Equal(certs[i].Raw, sd.Certificates[i]) || !bytes.Contains(b.data, certs[i].Raw) {
				t.Errorf("%s %s: certificate %d is not the bytes in the block", b.apk, b.name, i)
			}
		}
		si := &sd.SignerInfos[0]
		levels := pkcs7.SupportedSDKs(si.DigestAlgorithm.OID, si.SignatureAlgorithm.OID)
		if len(levels) == 0 || b.sf == nil {
			continue
		}
		r := levels[len(levels)-1]
		hi := r.Max
		if hi == math.MaxInt {
			hi = r.Min + 10
		}
		c, err := sd.Verify(si, certs, b.sf, pkcs7.VerifyOptions{MinSDK: max(r.Min, 19), MaxSDK: hi})
		if err == nil && c != nil {
			verified++
			if si.FindCertificate(certs) != c {
				t.Errorf("%s %s: verified by a certificate FindCertificate does not return", b.apk, b.name)
			}
		}
	}
	// Most blocks are good signatures; the hostile ones are a minority.
	if verified < len(blocks)*3/4 {
		t.Errorf("only %d of %d signature blocks verify", verified, len(blocks))
	}
	t.Logf("%d of %d signature blocks verify", verified, len(blocks))
}

func TestUncovered(t *testing.T) {
	cases := []struct {
		min, max int
		rs       []pkcs7.Range
		want     []pkcs7.Range
	}{
		{0, math.MaxInt, []pkcs7.Range{{0, math.MaxInt}}, nil},
		{18, 30, []pkcs7.Range{{0, 8}, {18, math.MaxInt}}, nil},
		{1, 30, []pkcs7.Range{{0, 8}, {18, math.MaxInt}}, []pkcs7.Range{{9, 17}}},
		{1, math.MaxInt, []pkcs7.Range{{21, 23}}, []pkcs7.Range{{1, 20}, {24, math.MaxInt}}},
		{22, 22, []pkcs7.Range{{21, 23}}, nil},
		{5, 10, nil, []pkcs7.Range{{5, 10}}},
		{9, 9, []pkcs7.Range{{0, 8}, {21, math.MaxInt}}, []pkcs7.Range{{9, 9}}},
	}
	for _, tc := range cases {
		if got := pkcs7.Uncovered(tc.min, tc.max, tc.rs); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Uncovered(%d, %d, %v) = %v, want %v", tc.min, tc.max, tc.rs, got, tc.want)
		}
	}
}

func TestSupportedSDKs(t *testing.T) {
	// Spot checks against apksig's OidConstants table.
	cases := []struct {
		digest, sig string
		want        []pkcs7.Range
	}{
		{pkcs7.OIDDigestSHA256, pkcs7.OIDSigRSA, []pkcs7.Range{{0, 8}, {18, math.MaxInt}}},
		{pkcs7.OIDDigestSHA1, pkcs7.OIDSigSHA1WithRSA, []pkcs7.Range{{0, math.MaxInt}}},
		{pkcs7.OIDDigestSHA224, pkcs7.OIDSigSHA256WithRSA, []pkcs7.Range{{21, 21}}},
		{pkcs7.OIDDigestSHA256, pkcs7.OIDSigDSA, []pkcs7.Range{{22, math.MaxInt}}},
		{pkcs7.OIDDigestSHA1, pkcs7.OIDSigSHA1WithDSA, []pkcs7.Range{{9, math.MaxInt}}},
		{pkcs7.OIDDigestSHA256, pkcs7.OIDSigSHA256WithECDSA, []pkcs7.Range{{21, math.MaxInt}}},
		{pkcs7.OIDDigestSHA1, pkcs7.OIDSigSHA1WithECDSA, []pkcs7.Range{{18, math.MaxInt}}},
		{pkcs7.OIDDigestMD5, pkcs7.OIDSigSHA384WithECDSA, []pkcs7.Range{{21, 23}}},
		{pkcs7.OIDDigestSHA512, pkcs7.OIDSigSHA384WithRSA, []pkcs7.Range{{21, 21}}},
		{pkcs7.OIDDigestSHA384, pkcs7.OIDSigSHA384WithDSA, nil},
		{pkcs7.OIDDigestSHA256, "1.2.840.113549.1.1.10", nil}, // RSASSA-PSS: not for JAR signatures
	}
	for _, tc := range cases {
		if got := pkcs7.SupportedSDKs(tc.digest, tc.sig); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s with %s: %v, want %v", pkcs7.FriendlyName(tc.digest), pkcs7.FriendlyName(tc.sig), got, tc.want)
		}
	}
}

// signedData builds a SignedData block with one SignerInfo by key over content.
func signedData(key *rsa.PrivateKey, certDER []byte, digestOID, sigOID string, h crypto.Hash, content []byte, mutate func(sig []byte) []byte) []byte {
	c, err := cert.Parse(certDER)
	if err != nil {
		panic(err)
	}
	sig := d.Sign(key, h, content)
	if mutate != nil {
		sig = mutate(sig)
	}
	si := d.Seq(d.SmallInt(1), d.Seq(c.Issuer.Raw, d.Int(c.SerialNumber)), d.AlgID(digestOID, d.Null()), d.AlgID(sigOID, d.Null()), d.Octets(sig))
	sd := d.Seq(d.SmallInt(1), d.Set(d.AlgID(digestOID, d.Null())), d.Seq(d.OID(pkcs7.OIDData)), d.Tag(0xa0, certDER), d.Set(si))
	return d.Seq(d.OID(pkcs7.OIDSignedData), d.Explicit(0, sd))
}

func TestVerifyRSA(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	certDER := d.Cert(d.CertSpec{Key: key, Serial: big.NewInt(7)})
	content := []byte("Signature-Version: 1.0\r\n\r\n")
	opts := pkcs7.VerifyOptions{MinSDK: 21, MaxSDK: 30}
	cases := []struct {
		name              string
		digestOID, sigOID string
		h                 crypto.Hash
		mutate            func([]byte) []byte
		verifies          bool
		errIs             error
		maxSDK            int // default 30
	}{
		{"SHA-256 with rsaEncryption", pkcs7.OIDDigestSHA256, pkcs7.OIDSigRSA, crypto.SHA256, nil, true, nil, 0},
		{"MD5 with md5WithRSA", pkcs7.OIDDigestMD5, pkcs7.OIDSigMD5WithRSA, crypto.MD5, nil, true, nil, 0},
		{"SHA-512 with sha512WithRSA", pkcs7.OIDDigestSHA512, pkcs7.OIDSigSHA512WithRSA, crypto.SHA512, nil, true, nil, 0},
		// The signature OID's hash wins over the digest algorithm (apksig's JCA name).
		{"SHA-1 digest with sha256WithRSA", pkcs7.OIDDigestSHA1, pkcs7.OIDSigSHA256WithRSA, crypto.SHA256, nil, true, nil, 23},
		{"flipped bit", pkcs7.OIDDigestSHA256, pkcs7.OIDSigRSA, crypto.SHA256, func(s []byte) []byte { s[10] ^= 1; return s }, false, nil, 0},
		{"signature too short", pkcs7.OIDDigestSHA256, pkcs7.OIDSigRSA, crypto.SHA256, func(s []byte) []byte { return s[1:] }, false, pkcs7.ErrVerification, 0},
		{"ECDSA OID with an RSA key", pkcs7.OIDDigestSHA256, pkcs7.OIDSigECPublicKey, crypto.SHA256, nil, false, pkcs7.ErrVerification, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sd, err := pkcs7.Parse(signedData(key, certDER, tc.digestOID, tc.sigOID, tc.h, content, tc.mutate))
			if err != nil {
				t.Fatal(err)
			}
			certs, err := sd.ParseCertificates()
			if err != nil {
				t.Fatal(err)
			}
			o := opts
			if tc.maxSDK != 0 {
				o.MaxSDK = tc.maxSDK
			}
			c, err := sd.Verify(&sd.SignerInfos[0], certs, content, o)
			if (c != nil) != tc.verifies || (tc.errIs == nil) != (err == nil) || (tc.errIs != nil && !errors.Is(err, tc.errIs)) {
				t.Fatalf("cert %v err %v; want verifies=%v err %v", c != nil, err, tc.verifies, tc.errIs)
			}
		})
	}
	// An algorithm pair Android rejects on part of the range.
	sd, _ := pkcs7.Parse(signedData(key, certDER, pkcs7.OIDDigestSHA256, pkcs7.OIDSigSHA1WithRSA, crypto.SHA1, content, nil))
	certs, _ := sd.ParseCertificates()
	_, err = sd.Verify(&sd.SignerInfos[0], certs, content, pkcs7.VerifyOptions{MinSDK: 18, MaxSDK: 22})
	var ue *pkcs7.UnsupportedAlgorithmError
	if !errors.As(err, &ue) || !reflect.DeepEqual(ue.Unsupported, []pkcs7.Range{{18, 20}, {22, 22}}) {
		t.Fatalf("want unsupported on 18-20 and 22, got %v", err)
	}
}

// TestVerifySmallRSAKey checks that 512-bit RSA keys, which crypto/rsa refuses and old APKs
// still use, verify.
func TestVerifySmallRSAKey(t *testing.T) {
	t.Setenv("GODEBUG", "rsa1024min=0") // only to generate the test key
	key, err := rsa.GenerateKey(rand.Reader, 512)
	if err != nil {
		t.Fatal(err)
	}
	certDER := d.Cert(d.CertSpec{Key: key})
	content := []byte("content")
	sd, err := pkcs7.Parse(signedData(key, certDER, pkcs7.OIDDigestSHA1, pkcs7.OIDSigRSA, crypto.SHA1, content, nil))
	if err != nil {
		t.Fatal(err)
	}
	certs, _ := sd.ParseCertificates()
	if c, err := sd.Verify(&sd.SignerInfos[0], certs, content, pkcs7.VerifyOptions{MinSDK: 1, MaxSDK: 30}); c == nil || err != nil {
		t.Fatalf("512-bit key: cert %v err %v", c, err)
	}
}

func TestParseRejects(t *testing.T) {
	good := suiteBlocks(t)[0].data
	sd := func(parts ...[]byte) []byte {
		return d.Seq(d.OID(pkcs7.OIDSignedData), d.Explicit(0, d.Seq(parts...)))
	}
	algs := d.Set(d.AlgID(pkcs7.OIDDigestSHA256, d.Null()))
	encap := d.Seq(d.OID(pkcs7.OIDData))
	cases := map[string][]byte{
		"empty":                  nil,
		"truncated":              good[:len(good)/2],
		"not SignedData":         d.Seq(d.OID(pkcs7.OIDData), d.Explicit(0, d.Octets([]byte("x")))),
		"content not [0]":        d.Seq(d.OID(pkcs7.OIDSignedData), d.Seq()),
		"too few fields":         sd(d.SmallInt(1), algs, encap),
		"version not integer":    sd(d.Octets([]byte{1}), algs, encap, d.Set()),
		"signer infos not a set": sd(d.SmallInt(1), algs, encap, d.Seq()),
		"short signer info":      sd(d.SmallInt(1), algs, encap, d.Set(d.Seq(d.SmallInt(1)))),
		"bad signer identifier":  sd(d.SmallInt(1), algs, encap, d.Set(d.Seq(d.SmallInt(1), d.Null(), d.AlgID(pkcs7.OIDDigestSHA256, nil), d.AlgID(pkcs7.OIDSigRSA, nil), d.Octets(nil)))),
		"too many signer infos":  sd(d.SmallInt(1), algs, encap, d.Set(bytes.Repeat([]byte{0x30, 0x00}, pkcs7.MaxSignerInfos+1))),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := pkcs7.Parse(in); !errors.Is(err, pkcs7.ErrDecoding) {
				t.Fatalf("want ErrDecoding, got %v", err)
			}
		})
	}
	// Bytes after the ContentInfo are ignored, as by apksig.
	if _, err := pkcs7.Parse(append(append([]byte{}, good...), 0, 0, 0)); err != nil {
		t.Errorf("trailing bytes: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for i, b := range suiteBlocks(f) {
		if i%4 == 0 && len(b.data) < 3000 {
			f.Add(b.data, b.sf)
		}
	}
	f.Fuzz(func(t *testing.T, data, sf []byte) {
		sd, err := pkcs7.Parse(data)
		if err != nil {
			if !errors.Is(err, pkcs7.ErrDecoding) {
				t.Fatalf("error does not wrap ErrDecoding: %v", err)
			}
			return
		}
		for _, c := range sd.Certificates {
			if !bytes.Contains(data, c) {
				t.Fatal("certificate is not a slice of the input")
			}
		}
		certs, err := sd.ParseCertificates()
		if err != nil {
			return
		}
		for i := range sd.SignerInfos {
			si := &sd.SignerInfos[i]
			if (si.Issuer == nil) == (si.SubjectKeyID == nil) && si.Issuer != nil {
				t.Fatal("both signer identifier forms set")
			}
			c, err := sd.Verify(si, certs, sf, pkcs7.VerifyOptions{MinSDK: 24, MaxSDK: 30})
			var ue *pkcs7.UnsupportedAlgorithmError
			if err != nil && !errors.Is(err, pkcs7.ErrDecoding) && !errors.Is(err, pkcs7.ErrVerification) && !errors.As(err, &ue) {
				t.Fatalf("unclassified error %v", err)
			}
			if c != nil && err != nil {
				t.Fatal("certificate and error both returned")
			}
		}
	})
}
