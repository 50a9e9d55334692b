package wire

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// The adb public key structure (libcrypto_utils android_pubkey.c): 2048-bit RSA only.
const (
	// PublicKeyModulusSize is the modulus size in bytes (2048 bits).
	PublicKeyModulusSize = 256
	// PublicKeyEncodedSize is the size of the binary structure before base64.
	PublicKeyEncodedSize = 4 + 4 + PublicKeyModulusSize + PublicKeyModulusSize + 4
	// KeyBits is the RSA key size adb uses.
	KeyBits = PublicKeyModulusSize * 8
)

// ErrBadPublicKey is wrapped by ParsePublicKey errors.
var ErrBadPublicKey = errors.New("malformed adb public key")

// ErrBadSignature is returned by VerifyToken when the signature does not match.
var ErrBadSignature = errors.New("token signature does not verify")

// EncodePublicKey returns pub in adb's adbkey.pub format: base64 of the binary structure, a space
// and comment (conventionally "user@host"). An empty comment omits the space. The AUTH packet that
// carries it appends a NUL.
func EncodePublicKey(pub *rsa.PublicKey, comment string) (string, error) {
	bin, err := MarshalPublicKey(pub)
	if err != nil {
		return "", err
	}
	s := base64.StdEncoding.EncodeToString(bin)
	if comment != "" {
		s += " " + comment
	}
	return s, nil
}

// MarshalPublicKey returns the 524-byte binary structure for pub: modulus size in words, n0inv,
// modulus and R^2 mod n (both little-endian), exponent.
func MarshalPublicKey(pub *rsa.PublicKey) ([]byte, error) {
	if pub == nil || pub.N == nil {
		return nil, fmt.Errorf("encoding adb public key: no key")
	}
	if pub.N.BitLen() != KeyBits {
		return nil, fmt.Errorf("encoding adb public key: modulus has %d bits, adb uses %d", pub.N.BitLen(), KeyBits)
	}
	b := make([]byte, 0, PublicKeyEncodedSize)
	b = binary.LittleEndian.AppendUint32(b, PublicKeyModulusSize/4)
	b = binary.LittleEndian.AppendUint32(b, n0inv(pub.N))
	b = append(b, littleEndian(pub.N, PublicKeyModulusSize)...)
	b = append(b, littleEndian(rr(pub.N), PublicKeyModulusSize)...)
	b = binary.LittleEndian.AppendUint32(b, uint32(pub.E))
	return b, nil
}

// ParsePublicKey decodes adbkey.pub text (or the payload of an AUTH RSAPUBLICKEY packet, with its
// trailing NUL): base64 then an optional " comment". It checks the structure's redundant fields
// (word count, n0inv, R^2 mod n) so that a corrupted key is rejected rather than half-trusted.
func ParsePublicKey(s string) (*rsa.PublicKey, string, error) {
	s = strings.TrimRight(s, "\x00\r\n")
	b64, comment, _ := strings.Cut(s, " ")
	if len(b64) > 2*PublicKeyEncodedSize {
		return nil, "", fmt.Errorf("parsing adb public key: %d base64 characters, want %d: %w",
			len(b64), base64.StdEncoding.EncodedLen(PublicKeyEncodedSize), ErrBadPublicKey)
	}
	bin, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, "", fmt.Errorf("parsing adb public key: base64: %w: %w", ErrBadPublicKey, err)
	}
	pub, err := UnmarshalPublicKey(bin)
	if err != nil {
		return nil, "", err
	}
	return pub, comment, nil
}

// UnmarshalPublicKey decodes the 524-byte binary structure.
func UnmarshalPublicKey(bin []byte) (*rsa.PublicKey, error) {
	if len(bin) != PublicKeyEncodedSize {
		return nil, fmt.Errorf("parsing adb public key: %d bytes, want %d: %w", len(bin), PublicKeyEncodedSize, ErrBadPublicKey)
	}
	if w := binary.LittleEndian.Uint32(bin[0:]); w != PublicKeyModulusSize/4 {
		return nil, fmt.Errorf("parsing adb public key: modulus of %d words, want %d: %w", w, PublicKeyModulusSize/4, ErrBadPublicKey)
	}
	n := fromLittleEndian(bin[8 : 8+PublicKeyModulusSize])
	if n.BitLen() != KeyBits || n.Bit(0) == 0 {
		return nil, fmt.Errorf("parsing adb public key: modulus is not an odd %d-bit number: %w", KeyBits, ErrBadPublicKey)
	}
	if got, want := binary.LittleEndian.Uint32(bin[4:]), n0inv(n); got != want {
		return nil, fmt.Errorf("parsing adb public key: n0inv 0x%08x does not match the modulus (want 0x%08x): %w", got, want, ErrBadPublicKey)
	}
	if got := fromLittleEndian(bin[8+PublicKeyModulusSize : 8+2*PublicKeyModulusSize]); got.Cmp(rr(n)) != 0 {
		return nil, fmt.Errorf("parsing adb public key: R^2 mod n does not match the modulus: %w", ErrBadPublicKey)
	}
	e := binary.LittleEndian.Uint32(bin[8+2*PublicKeyModulusSize:])
	if e < 3 || e%2 == 0 || e > 1<<31-1 {
		return nil, fmt.Errorf("parsing adb public key: exponent %d: %w", e, ErrBadPublicKey)
	}
	return &rsa.PublicKey{N: n, E: int(e)}, nil
}

// SignToken signs an AUTH token the way adb does: PKCS#1 v1.5 with the token taken as a SHA-1
// digest (so it must be exactly TokenSize bytes).
func SignToken(key *rsa.PrivateKey, token []byte) ([]byte, error) {
	if len(token) != TokenSize {
		return nil, fmt.Errorf("signing adb auth token: %d bytes, want %d", len(token), TokenSize)
	}
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA1, token)
	if err != nil {
		return nil, fmt.Errorf("signing adb auth token: %w", err)
	}
	return sig, nil
}

// VerifyToken checks an AUTH signature against token and pub; it wraps ErrBadSignature on mismatch.
func VerifyToken(pub *rsa.PublicKey, token, sig []byte) error {
	if len(token) != TokenSize {
		return fmt.Errorf("verifying adb auth token: %d bytes, want %d: %w", len(token), TokenSize, ErrBadSignature)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA1, token, sig); err != nil {
		return fmt.Errorf("verifying adb auth token: %w: %w", ErrBadSignature, err)
	}
	return nil
}

// NewToken returns a fresh random AUTH token.
func NewToken() ([]byte, error) {
	t := make([]byte, TokenSize)
	if _, err := rand.Read(t); err != nil {
		return nil, fmt.Errorf("generating adb auth token: %w", err)
	}
	return t, nil
}

// GenerateKey returns a new 2048-bit RSA key with exponent 65537, as adb generates for adbkey.
func GenerateKey() (*rsa.PrivateKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return nil, fmt.Errorf("generating adb key: %w", err)
	}
	return k, nil
}

// MarshalPrivateKey encodes key as adb writes the adbkey file: PEM "PRIVATE KEY" (PKCS#8).
func MarshalPrivateKey(key *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding adb private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey decodes an adbkey file: PEM "PRIVATE KEY" (PKCS#8, current adb) or
// "RSA PRIVATE KEY" (PKCS#1, older adb). The key must be 2048-bit RSA.
func ParsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("parsing adb private key: no PEM block")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing adb private key: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("parsing adb private key: %T is not an RSA key", k)
		}
		key = rk
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing adb private key: %w", err)
		}
		key = k
	default:
		return nil, fmt.Errorf("parsing adb private key: PEM block %q, want PRIVATE KEY", block.Type)
	}
	if key.N.BitLen() != KeyBits {
		return nil, fmt.Errorf("parsing adb private key: %d-bit modulus, adb uses %d", key.N.BitLen(), KeyBits)
	}
	return key, nil
}

// n0inv returns -1/n mod 2^32 (n odd).
func n0inv(n *big.Int) uint32 {
	r32 := new(big.Int).Lsh(big.NewInt(1), 32)
	n0 := new(big.Int).Mod(n, r32)
	inv := new(big.Int).ModInverse(n0, r32)
	if inv == nil {
		return 0
	}
	return uint32(new(big.Int).Sub(r32, inv).Uint64())
}

// rr returns (2^(8*PublicKeyModulusSize))^2 mod n, the Montgomery constant adb stores.
func rr(n *big.Int) *big.Int {
	r := new(big.Int).Lsh(big.NewInt(1), 2*8*PublicKeyModulusSize)
	return r.Mod(r, n)
}

func littleEndian(x *big.Int, size int) []byte {
	b := x.FillBytes(make([]byte, size))
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return b
}

func fromLittleEndian(le []byte) *big.Int {
	b := make([]byte, len(le))
	for i := range le {
		b[len(le)-1-i] = le[i]
	}
	return new(big.Int).SetBytes(b)
}
