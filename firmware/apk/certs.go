package apk

import (
	"crypto/dsa" //nolint:staticcheck // DSA signer certificates exist in the wild
	"crypto/ecdsa"
	"crypto/md5"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
)

// certInfo is what provkit needs of a signer certificate. Raw is the certificate exactly as encoded
// in the signature: every digest is taken over it, never over a re-encoding.
type certInfo struct {
	Raw          []byte
	RawSPKI      []byte // SubjectPublicKeyInfo as encoded in the certificate
	PublicKey    any
	Subject      string
	KeyAlgorithm string // "RSA", "EC", "DSA"
	KeySize      int    // bits: modulus (RSA), curve (EC), P (DSA)
}

func (c *certInfo) sha256Hex() string { s := sha256.Sum256(c.Raw); return hex.EncodeToString(s[:]) }
func (c *certInfo) sha1Hex() string   { s := sha1.Sum(c.Raw); return hex.EncodeToString(s[:]) }
func (c *certInfo) md5Hex() string    { s := md5.Sum(c.Raw); return hex.EncodeToString(s[:]) }

// parseCertificate is the one place that decodes signer certificates; it is swapped for the
// tolerant parser of package cert when that lands.
var parseCertificate = parseCertificateX509

func parseCertificateX509(der []byte) (*certInfo, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate: %w", err)
	}
	ci := &certInfo{Raw: der, RawSPKI: c.RawSubjectPublicKeyInfo, PublicKey: c.PublicKey, Subject: c.Subject.String()}
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		ci.KeyAlgorithm, ci.KeySize = "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		ci.KeyAlgorithm, ci.KeySize = "EC", k.Curve.Params().BitSize
	case *dsa.PublicKey:
		ci.KeyAlgorithm, ci.KeySize = "DSA", k.P.BitLen()
	default:
		ci.KeyAlgorithm = fmt.Sprintf("%T", c.PublicKey)
	}
	return ci, nil
}

// parsePublicKey decodes a DER SubjectPublicKeyInfo.
func parsePublicKey(spki []byte) (pub any, err error) {
	defer func() {
		if r := recover(); r != nil {
			pub, err = nil, fmt.Errorf("parsing public key: %v", r)
		}
	}()
	return x509.ParsePKIXPublicKey(spki)
}

// keyAlgOf names a parsed public key's algorithm as apksig's JCA key algorithms do.
func keyAlgOf(pub any) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "EC"
	case *dsa.PublicKey:
		return "DSA"
	}
	return fmt.Sprintf("%T", pub)
}
