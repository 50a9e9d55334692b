package pkcs7

import (
	"bytes"
	"crypto"
	"crypto/dsa" //nolint:staticcheck // JAR signatures still use DSA.
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/provkit/provkit/firmware/apk/cert"
	"github.com/provkit/provkit/firmware/apk/internal/ber"
)

// ErrVerification is wrapped by errors that stop verification of a signature block outright
// (apksig: JAR_SIG_VERIFY_EXCEPTION): the signing certificate is missing or unusable, the key
// does not fit the algorithm, signed attributes are missing or malformed.
var ErrVerification = errors.New("verifying PKCS#7 SignerInfo")

// Android API levels that change the rules.
const (
	sdkKitKat = 19
	sdkN      = 24
)

// VerifyOptions gives the range of Android API levels the signature must verify on.
type VerifyOptions struct {
	MinSDK, MaxSDK int
}

func verifyErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrVerification, fmt.Sprintf(format, args...))
}

// Verify checks one SignerInfo of sd against content (the detached content: the .SF file),
// following apksig's V1SchemeVerifier. It returns:
//   - the signing certificate and nil when the SignerInfo verifies;
//   - nil, nil when it does not verify (a wrong signature or digest: another SignerInfo may);
//   - an *UnsupportedAlgorithmError, or an error wrapping ErrDecoding or ErrVerification, when
//     the whole signature block must be rejected.
//
// certs are the parsed certificates of sd (ParseCertificates).
func (sd *SignedData) Verify(si *SignerInfo, certs []*cert.Certificate, content []byte, opts VerifyOptions) (*cert.Certificate, error) {
	digestOID, sigOID := si.DigestAlgorithm.OID, si.SignatureAlgorithm.OID
	if gaps := Uncovered(opts.MinSDK, opts.MaxSDK, SupportedSDKs(digestOID, sigOID)); len(gaps) > 0 {
		return nil, &UnsupportedAlgorithmError{DigestOID: digestOID, SignatureOID: sigOID, Unsupported: gaps}
	}
	signer := si.FindCertificate(certs)
	if signer == nil {
		return nil, verifyErr("signing certificate referenced in SignerInfo not found in SignedData")
	}
	if signer.HasUnsupportedCriticalExtension() {
		return nil, verifyErr("signing certificate %q has unsupported critical extensions", signer.Subject)
	}
	if ku := signer.KeyUsage; ku != nil && !ku[0] && !ku[1] {
		return nil, verifyErr("signing certificate %q is not authorized for digital signatures: its key usage lacks digitalSignature and nonRepudiation", signer.Subject)
	}
	alg := sigAlgs[sigOID] // present: the table only holds known OIDs
	sigHash := alg.hash
	digestHash := digestHashes[digestOID]
	if sigHash == 0 {
		sigHash = digestHash
	}
	if err := keyFits(signer, alg.key); err != nil {
		return nil, err
	}

	signed := content
	if si.RawSignedAttrs != nil {
		if opts.MinSDK < sdkKitKat {
			// Before KitKat, Android verified the signature over the [0] IMPLICIT encoding and
			// never checked the digest in the attributes: such APKs are unprotected there.
			return nil, verifyErr("signed attributes are broken on API levels below %d", sdkKitKat)
		}
		attrs, err := ParseAttributes(si.RawSignedAttrs)
		if err != nil {
			return nil, verifyErr("parsing signed attributes: %v", err)
		}
		byType := make(map[string][]ber.TLV, len(attrs))
		for _, a := range attrs {
			if _, dup := byType[a.OID]; dup {
				return nil, fmt.Errorf("%w: duplicate signed attribute %s", ErrDecoding, a.OID)
			}
			byType[a.OID] = a.Values
		}
		if opts.MaxSDK >= sdkN {
			// Android N and later check the content type attribute.
			v, err := single(byType, oidContentTyp)
			if err != nil {
				return nil, err
			}
			if v == nil {
				return nil, verifyErr("no content type in signed attributes")
			}
			ct, err := v.ReadOID()
			if err != nil {
				return nil, fmt.Errorf("%w: content type attribute: %w", ErrDecoding, err)
			}
			if ct != sd.ContentType {
				return nil, nil
			}
		}
		v, err := single(byType, oidMsgDigest)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, verifyErr("no content digest in signed attributes")
		}
		if err := v.Expect(ber.TagOctetString); err != nil {
			return nil, fmt.Errorf("%w: message digest attribute: %w", ErrDecoding, err)
		}
		h := digestHash.New()
		h.Write(content)
		if !bytes.Equal(h.Sum(nil), v.Content) {
			return nil, nil
		}
		// PKCS#7 signs the DER re-encoding of the attributes as a SET; Android (and apksig) only
		// swap the [0] tag for SET's and keep the rest of the encoding as is.
		signed = make([]byte, len(si.RawSignedAttrs))
		copy(signed, si.RawSignedAttrs)
		signed[0] = 0x31
	}
	h := sigHash.New()
	h.Write(signed)
	ok, err := verifySignature(signer.PublicKey, alg.key, sigHash, h.Sum(nil), si.Signature)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	return signer, nil
}

// single returns the only value of a signed attribute, nil when absent; several values are a
// decoding error, as in apksig.
func single(attrs map[string][]ber.TLV, oid string) (*ber.TLV, error) {
	vals := attrs[oid]
	switch len(vals) {
	case 0:
		return nil, nil
	case 1:
		return &vals[0], nil
	}
	return nil, fmt.Errorf("%w: signed attribute %s has %d values", ErrDecoding, oid, len(vals))
}

// keyFits checks that the certificate's key can verify with the algorithm (Java's
// Signature.initVerify would throw otherwise).
func keyFits(c *cert.Certificate, want keyType) error {
	var got keyType
	switch c.PublicKey.(type) {
	case *rsa.PublicKey:
		got = keyRSA
	case *dsa.PublicKey:
		got = keyDSA
	case *ecdsa.PublicKey:
		got = keyEC
	default:
		return verifyErr("signing certificate %q has an unusable %s key: %v", c.Subject, c.KeyAlgorithm, c.PublicKeyErr)
	}
	if got != want {
		return verifyErr("signing certificate %q has a %s key, the signature algorithm needs %s", c.Subject, got, want)
	}
	return nil
}

// verifySignature verifies sig over a message whose digest (with hash h) is digest. Malformed
// signatures that Java's providers reject with an exception rather than "false" (a wrong RSA
// signature length, an ECDSA/DSA signature that is not SEQUENCE { r, s }) are errors.
func verifySignature(pub crypto.PublicKey, kt keyType, h crypto.Hash, digest, sig []byte) (bool, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return verifyRSA(k, h, digest, sig)
	case *ecdsa.PublicKey:
		r, s, err := parseRS(sig)
		if err != nil {
			return false, err
		}
		return ecdsa.Verify(k, digest, r, s), nil
	case *dsa.PublicKey:
		r, s, err := parseRS(sig)
		if err != nil {
			return false, err
		}
		return verifyDSA(k, digest, r, s), nil
	}
	return false, verifyErr("unsupported %s key %T", kt, pub)
}

// parseRS reads a DSA/ECDSA signature SEQUENCE { r INTEGER, s INTEGER } in DER.
func parseRS(sig []byte) (*big.Int, *big.Int, error) {
	v, err := ber.ReadOne(sig)
	if err == nil {
		err = v.Expect(ber.TagSequence)
	}
	var kids []ber.TLV
	if err == nil {
		kids, err = v.Children()
	}
	if err == nil && (len(kids) != 2 || kids[0].Expect(ber.TagInteger) != nil || kids[1].Expect(ber.TagInteger) != nil) {
		err = errors.New("not SEQUENCE { r, s }")
	}
	if err != nil || v.Indefinite || len(v.Raw) != len(sig) {
		return nil, nil, verifyErr("invalid encoding for signature: %v", err)
	}
	r, err1 := ber.Integer(kids[0].Content)
	s, err2 := ber.Integer(kids[1].Content)
	if err1 != nil || err2 != nil {
		return nil, nil, verifyErr("invalid encoding for signature")
	}
	return r, s, nil
}

// digestInfoPrefix returns the DER DigestInfo header (with NULL parameters) for h.
func digestInfoPrefix(h crypto.Hash) []byte {
	oid := map[crypto.Hash][]byte{
		crypto.MD5:    {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05},
		crypto.SHA1:   {0x2b, 0x0e, 0x03, 0x02, 0x1a},
		crypto.SHA224: {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04},
		crypto.SHA256: {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01},
		crypto.SHA384: {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02},
		crypto.SHA512: {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03},
	}[h]
	algID := append([]byte{0x30, byte(len(oid) + 4), 0x06, byte(len(oid))}, oid...)
	algID = append(algID, 0x05, 0x00)
	inner := len(algID) + 2 + h.Size()
	out := append([]byte{0x30, byte(inner)}, algID...)
	return append(out, 0x04, byte(h.Size()))
}

// verifyRSA checks an RSASSA-PKCS1-v1_5 signature with arbitrary key sizes and exponents
// (crypto/rsa refuses keys under 1024 bits, which old APKs still carry). Verification uses only
// public values, so plain big.Int arithmetic is fine.
func verifyRSA(k *rsa.PublicKey, h crypto.Hash, digest, sig []byte) (bool, error) {
	size := (k.N.BitLen() + 7) / 8
	if len(sig) != size {
		return false, verifyErr("bad RSA signature length: got %d bytes, the %d-bit key needs %d", len(sig), k.N.BitLen(), size)
	}
	s := new(big.Int).SetBytes(sig)
	if s.Cmp(k.N) >= 0 {
		return false, nil
	}
	m := new(big.Int).Exp(s, big.NewInt(int64(k.E)), k.N)
	em := m.FillBytes(make([]byte, size))
	t := append(digestInfoPrefix(h), digest...)
	if size < len(t)+11 {
		return false, verifyErr("%d-bit RSA key too short for a %v signature", k.N.BitLen(), h)
	}
	want := make([]byte, size)
	want[1] = 0x01
	for i := 2; i < size-len(t)-1; i++ {
		want[i] = 0xff
	}
	copy(want[size-len(t):], t)
	return bytes.Equal(em, want), nil
}

// verifyDSA checks a DSA signature (FIPS 186-3 4.7), truncating the digest to the bit length of
// Q as Java and Android do (crypto/dsa does not truncate).
func verifyDSA(k *dsa.PublicKey, digest []byte, r, s *big.Int) bool {
	q := k.Q
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(q) >= 0 || s.Cmp(q) >= 0 || q.Sign() <= 0 || k.P.Sign() <= 0 {
		return false
	}
	z := new(big.Int).SetBytes(digest)
	if excess := len(digest)*8 - q.BitLen(); excess > 0 {
		z.Rsh(z, uint(excess))
	}
	w := new(big.Int).ModInverse(s, q)
	if w == nil {
		return false
	}
	u1 := new(big.Int).Mul(z, w)
	u1.Mod(u1, q)
	u2 := new(big.Int).Mul(r, w)
	u2.Mod(u2, q)
	v := new(big.Int).Exp(k.G, u1, k.P)
	v.Mul(v, new(big.Int).Exp(k.Y, u2, k.P))
	v.Mod(v, k.P)
	v.Mod(v, q)
	return v.Cmp(r) == 0
}
