package apk

import (
	"crypto"
	"crypto/dsa" //nolint:staticcheck // APKs signed with DSA keys exist; apksig verifies them, so must we
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// digestAlg is a content digest algorithm of the v2/v3 schemes.
type digestAlg int

const (
	chunkedSHA256 digestAlg = iota + 1
	chunkedSHA512
	verityChunkedSHA256
)

func (d digestAlg) String() string {
	switch d {
	case chunkedSHA256:
		return "CHUNKED_SHA256"
	case chunkedSHA512:
		return "CHUNKED_SHA512"
	case verityChunkedSHA256:
		return "VERITY_CHUNKED_SHA256"
	}
	return fmt.Sprintf("digest(%d)", int(d))
}

// preference orders digest algorithms as apksig does: SHA-512 over verity over SHA-256.
func (d digestAlg) preference() int {
	switch d {
	case chunkedSHA512:
		return 3
	case verityChunkedSHA256:
		return 2
	case chunkedSHA256:
		return 1
	}
	return 0
}

// sigAlg is one of the signature algorithm IDs of the APK Signature Schemes.
type sigAlg struct {
	id     uint32
	name   string
	key    string // "RSA", "EC", "DSA"
	hash   crypto.Hash
	pss    bool
	digest digestAlg
	minSDK int // first platform that verifies it in v2/v3 blocks
	jcaSDK int // first platform whose JCA has the algorithm (lineage, stamps)
}

var sigAlgs = []sigAlg{
	{0x0101, "RSA_PSS_WITH_SHA256", "RSA", crypto.SHA256, true, chunkedSHA256, 24, 23},
	{0x0102, "RSA_PSS_WITH_SHA512", "RSA", crypto.SHA512, true, chunkedSHA512, 24, 23},
	{0x0103, "RSA_PKCS1_V1_5_WITH_SHA256", "RSA", crypto.SHA256, false, chunkedSHA256, 24, 1},
	{0x0104, "RSA_PKCS1_V1_5_WITH_SHA512", "RSA", crypto.SHA512, false, chunkedSHA512, 24, 1},
	{0x0201, "ECDSA_WITH_SHA256", "EC", crypto.SHA256, false, chunkedSHA256, 24, 11},
	{0x0202, "ECDSA_WITH_SHA512", "EC", crypto.SHA512, false, chunkedSHA512, 24, 11},
	{0x0301, "DSA_WITH_SHA256", "DSA", crypto.SHA256, false, chunkedSHA256, 24, 1},
	{0x0421, "VERITY_RSA_PKCS1_V1_5_WITH_SHA256", "RSA", crypto.SHA256, false, verityChunkedSHA256, 28, 1},
	{0x0423, "VERITY_ECDSA_WITH_SHA256", "EC", crypto.SHA256, false, verityChunkedSHA256, 28, 11},
	{0x0425, "VERITY_DSA_WITH_SHA256", "DSA", crypto.SHA256, false, verityChunkedSHA256, 28, 1},
}

func findSigAlg(id uint32) *sigAlg {
	for i := range sigAlgs {
		if sigAlgs[i].id == id {
			return &sigAlgs[i]
		}
	}
	return nil
}

// sdkDevRelease and sdkProdRelease: a signature algorithm introduced in a development release is
// written with the last production release as its minimum SDK and the dev-release attribute.
const (
	sdkDevRelease  = 10000
	sdkProdRelease = 34
)

type supportedSig struct {
	alg *sigAlg
	sig []byte
}

var errNoSupportedSignatures = errors.New("no supported signatures")

// signaturesToVerify mimics what each platform in [minSDK, maxSDK] does: it verifies the strongest
// signature whose algorithm it knows. It returns the set of signatures those platforms check,
// sorted by algorithm ID, or errNoSupportedSignatures when some platform in range knows none.
func signaturesToVerify(sigs []supportedSig, minSDK, maxSDK int, jca bool) ([]supportedSig, error) {
	best := map[int]supportedSig{}
	minProvided := int(^uint(0) >> 1)
	for _, s := range sigs {
		v := s.alg.minSDK
		if jca {
			v = s.alg.jcaSDK
		}
		if v == sdkDevRelease {
			v = sdkProdRelease
		}
		if v > maxSDK {
			continue
		}
		if v < minProvided {
			minProvided = v
		}
		if c, ok := best[v]; !ok || s.alg.digest.preference() > c.alg.digest.preference() {
			best[v] = s
		}
	}
	if minSDK < minProvided {
		return nil, fmt.Errorf("%w: minimum provided signature version %d > minSdkVersion %d", errNoSupportedSignatures, minProvided, minSDK)
	}
	if len(best) == 0 {
		return nil, errNoSupportedSignatures
	}
	out := make([]supportedSig, 0, len(best))
	for _, s := range best {
		out = append(out, s)
	}
	for i := 1; i < len(out); i++ { // insertion sort by ID: a handful of elements
		for j := i; j > 0 && out[j].alg.id < out[j-1].alg.id; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

// errKeyMismatch: the public key is not of the kind the algorithm needs.
var errKeyMismatch = errors.New("public key does not match the signature algorithm")

// verifySignature checks sig over data with pub. ok=false, err=nil means the signature is wrong; err
// means it could not be checked (wrong key type, malformed signature encoding). It never panics.
func verifySignature(alg *sigAlg, pub any, data, sig []byte) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("verifying %s signature: %v", alg.name, r)
		}
	}()
	var digest []byte
	switch alg.hash {
	case crypto.SHA256:
		d := sha256.Sum256(data)
		digest = d[:]
	case crypto.SHA512:
		d := sha512.Sum512(data)
		digest = d[:]
	default:
		return false, fmt.Errorf("unsupported digest for %s", alg.name)
	}
	return verifyDigest(alg.key, alg.hash, alg.pss, pub, digest, sig)
}

// verifyDigest checks a signature over a precomputed digest.
func verifyDigest(keyAlg string, h crypto.Hash, pss bool, pub any, digest, sig []byte) (bool, error) {
	switch keyAlg {
	case "RSA":
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return false, fmt.Errorf("%w: want RSA, have %T", errKeyMismatch, pub)
		}
		if pss {
			err := rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: h.Size(), Hash: h})
			return err == nil, nil
		}
		return rsa.VerifyPKCS1v15(k, h, digest, sig) == nil, nil
	case "EC":
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return false, fmt.Errorf("%w: want EC, have %T", errKeyMismatch, pub)
		}
		return ecdsa.VerifyASN1(k, digest, sig), nil
	case "DSA":
		k, ok := pub.(*dsa.PublicKey)
		if !ok {
			return false, fmt.Errorf("%w: want DSA, have %T", errKeyMismatch, pub)
		}
		return verifyDSA(k, digest, sig)
	}
	return false, fmt.Errorf("unsupported key algorithm %s", keyAlg)
}

type dsaSig struct{ R, S *big.Int }

func verifyDSA(k *dsa.PublicKey, digest, sig []byte) (bool, error) {
	if k.P == nil || k.Q == nil || k.G == nil || k.Y == nil || k.P.BitLen() > 16384 || k.Q.BitLen() > 512 || k.Q.Sign() <= 0 {
		return false, errors.New("DSA key parameters out of range")
	}
	var s dsaSig
	rest, err := asn1.Unmarshal(sig, &s)
	if err != nil {
		return false, fmt.Errorf("malformed DSA signature: %w", err)
	}
	if len(rest) != 0 {
		return false, errors.New("malformed DSA signature: trailing data")
	}
	// FIPS 186-3 4.6: use the leftmost min(N, outlen) bits of the digest. Go's dsa.Verify does not
	// truncate; Java does.
	if n := k.Q.BitLen(); n%8 == 0 && len(digest)*8 > n {
		digest = digest[:n/8]
	}
	return dsa.Verify(k, digest, s.R, s.S), nil
}

// Android SDK levels named in apksig's rules.
const (
	sdkM = 23
	sdkN = 24
	sdkO = 26
	sdkP = 28
	sdkR = 30
	sdkT = 33
)
