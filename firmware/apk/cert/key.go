package cert

import (
	"crypto"
	"crypto/dsa" //nolint:staticcheck // APKs are still signed with DSA keys; verifying them needs the type.
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/provkit/provkit/firmware/apk/internal/ber"
)

// Public key algorithm OIDs.
const (
	OIDKeyRSA = "1.2.840.113549.1.1.1"
	OIDKeyEC  = "1.2.840.10045.2.1"
	OIDKeyDSA = "1.2.840.10040.4.1"
)

var namedCurves = map[string]elliptic.Curve{
	"1.2.840.10045.3.1.7": elliptic.P256(),
	"1.3.132.0.34":        elliptic.P384(),
	"1.3.132.0.35":        elliptic.P521(),
}

// ErrUnsupportedKey is wrapped by Certificate.PublicKeyErr when the key cannot be used.
var ErrUnsupportedKey = errors.New("unsupported public key")

// MaxRSABits bounds RSA moduli; apksig's test suite goes up to 16384 bits.
const MaxRSABits = 16384

func (c *Certificate) parseSPKI(v ber.TLV) error {
	if err := v.Expect(ber.TagSequence); err != nil {
		return wrap("subject public key info", err)
	}
	c.RawSubjectPublicKeyInfo = v.Raw
	kids, err := v.Children()
	if err != nil {
		return wrap("subject public key info", err)
	}
	if len(kids) != 2 {
		return malformed(v.Offset, "subject public key info has %d elements, want 2", len(kids))
	}
	oid, params, err := algorithm(kids[0])
	if err != nil {
		return wrap("public key algorithm", err)
	}
	c.PublicKeyAlgorithmOID = oid
	bits, err := bitString(kids[1])
	if err != nil {
		return wrap("public key", err)
	}
	if bits.unused != 0 {
		return malformed(kids[1].Offset, "public key BIT STRING has %d unused bits", bits.unused)
	}
	switch oid {
	case OIDKeyRSA:
		c.KeyAlgorithm = "RSA"
		k, size, err := parseRSA(bits.bytes)
		c.setKey(k, size, err)
	case OIDKeyEC:
		c.KeyAlgorithm = "EC"
		k, size, err := parseEC(params, bits.bytes)
		c.setKey(k, size, err)
	case OIDKeyDSA:
		c.KeyAlgorithm = "DSA"
		k, size, err := parseDSA(params, bits.bytes)
		c.setKey(k, size, err)
	default:
		c.KeyAlgorithm = oid
		c.PublicKeyErr = fmt.Errorf("%w: algorithm %s", ErrUnsupportedKey, oid)
	}
	return nil
}

// setKey stores a parsed key, keeping PublicKey a nil interface (not a typed nil) on error.
func (c *Certificate) setKey(k crypto.PublicKey, size int, err error) {
	c.KeySize = size
	if err != nil {
		c.PublicKeyErr = err
		return
	}
	c.PublicKey = k
}

// parseRSA reads an RSAPublicKey. The modulus is read as unsigned: some certificates encode it
// without the leading zero octet, which makes it negative as an INTEGER; Android (Conscrypt)
// and apksig accept such keys.
func parseRSA(b []byte) (*rsa.PublicKey, int, error) {
	seq, err := ber.ReadOne(b)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: RSA key: %w", ErrUnsupportedKey, err)
	}
	if err := seq.Expect(ber.TagSequence); err != nil {
		return nil, 0, fmt.Errorf("%w: RSA key: %w", ErrUnsupportedKey, err)
	}
	kids, err := seq.Children()
	if err != nil || len(kids) != 2 || kids[0].Expect(ber.TagInteger) != nil || kids[1].Expect(ber.TagInteger) != nil {
		return nil, 0, fmt.Errorf("%w: RSA key is not SEQUENCE { modulus, exponent }", ErrUnsupportedKey)
	}
	n := new(big.Int).SetBytes(kids[0].Content)
	size := n.BitLen()
	if size == 0 {
		return nil, 0, fmt.Errorf("%w: RSA modulus is zero", ErrUnsupportedKey)
	}
	if size > MaxRSABits {
		return nil, size, fmt.Errorf("%w: %d-bit RSA modulus, more than %d bits", ErrUnsupportedKey, size, MaxRSABits)
	}
	e, err := ber.Integer(kids[1].Content)
	if err != nil || e.Sign() <= 0 || !e.IsInt64() || e.Int64() > 1<<31-1 {
		return nil, size, fmt.Errorf("%w: RSA public exponent out of range", ErrUnsupportedKey)
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, size, nil
}

func parseEC(params *ber.TLV, point []byte) (*ecdsa.PublicKey, int, error) {
	if params == nil {
		return nil, 0, fmt.Errorf("%w: EC key without curve parameters", ErrUnsupportedKey)
	}
	if params.Expect(ber.TagOID) != nil {
		return nil, 0, fmt.Errorf("%w: EC key with explicit curve parameters", ErrUnsupportedKey)
	}
	oid, err := params.ReadOID()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: EC curve: %w", ErrUnsupportedKey, err)
	}
	curve, ok := namedCurves[oid]
	if !ok {
		return nil, 0, fmt.Errorf("%w: EC curve %s", ErrUnsupportedKey, oid)
	}
	size := curve.Params().BitSize
	k, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, size, fmt.Errorf("%w: EC point: %w", ErrUnsupportedKey, err)
	}
	return k, size, nil
}

// MaxDSABits bounds DSA primes, MaxDSAQBits the subprime q (FIPS 186-3 uses at most 256 bits;
// Java accepts up to the 512 bits of SHA-512). Bounding q bounds the cost of a verification.
const (
	MaxDSABits  = 4096
	MaxDSAQBits = 512
)

func parseDSA(params *ber.TLV, y []byte) (*dsa.PublicKey, int, error) {
	if params == nil || params.Expect(ber.TagSequence) != nil {
		return nil, 0, fmt.Errorf("%w: DSA key without domain parameters", ErrUnsupportedKey)
	}
	kids, err := params.Children()
	if err != nil || len(kids) != 3 {
		return nil, 0, fmt.Errorf("%w: DSA parameters are not SEQUENCE { p, q, g }", ErrUnsupportedKey)
	}
	var pqg [3]*big.Int
	for i, k := range kids {
		if k.Expect(ber.TagInteger) != nil {
			return nil, 0, fmt.Errorf("%w: DSA parameter is not an INTEGER", ErrUnsupportedKey)
		}
		if pqg[i], err = ber.Integer(k.Content); err != nil || pqg[i].Sign() <= 0 {
			return nil, 0, fmt.Errorf("%w: DSA parameter out of range", ErrUnsupportedKey)
		}
	}
	size := pqg[0].BitLen()
	if size > MaxDSABits {
		return nil, size, fmt.Errorf("%w: %d-bit DSA prime, more than %d bits", ErrUnsupportedKey, size, MaxDSABits)
	}
	if n := pqg[1].BitLen(); n > MaxDSAQBits {
		return nil, size, fmt.Errorf("%w: %d-bit DSA subprime, more than %d bits", ErrUnsupportedKey, n, MaxDSAQBits)
	}
	yv, err := ber.ReadOne(y)
	if err != nil || yv.Expect(ber.TagInteger) != nil {
		return nil, size, fmt.Errorf("%w: DSA public value is not an INTEGER", ErrUnsupportedKey)
	}
	yi, err := ber.Integer(yv.Content)
	if err != nil || yi.Sign() <= 0 {
		return nil, size, fmt.Errorf("%w: DSA public value out of range", ErrUnsupportedKey)
	}
	return &dsa.PublicKey{Parameters: dsa.Parameters{P: pqg[0], Q: pqg[1], G: pqg[2]}, Y: yi}, size, nil
}
