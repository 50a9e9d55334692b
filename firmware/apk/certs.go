package apk

import (
	"bytes"
	"crypto/dsa" //nolint:staticcheck // DSA signer certificates exist in the wild
	"crypto/ecdsa"
	"crypto/md5"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"

	"github.com/provkit/provkit/firmware/apk/cert"
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
func (c *certInfo) spkiSHA256Hex() string {
	s := sha256.Sum256(c.RawSPKI)
	return hex.EncodeToString(s[:])
}
func (c *certInfo) md5Hex() string { s := md5.Sum(c.Raw); return hex.EncodeToString(s[:]) }

// parseCertificate is the one place that decodes signer certificates: tolerantly, as apksig does
// (package cert), keeping the bytes exactly as encoded.
func parseCertificate(der []byte) (*certInfo, error) {
	c, err := cert.Parse(der)
	if err != nil {
		return nil, err
	}
	return &certInfo{
		Raw: c.Raw, RawSPKI: c.RawSubjectPublicKeyInfo, PublicKey: c.PublicKey,
		Subject: c.Subject.String(), KeyAlgorithm: c.KeyAlgorithm, KeySize: c.KeySize,
	}, nil
}

// samePublicKey reports whether a signer record's public key (DER SubjectPublicKeyInfo) is the
// certificate's. apksig compares the record with the certificate key re-encoded by Java, which
// normalises the encoding (an RSA modulus written as a negative INTEGER gains its zero octet), so
// equal bytes or equal parsed keys both count.
func samePublicKey(record []byte, c *certInfo) bool {
	if bytes.Equal(record, c.RawSPKI) {
		return true
	}
	if c.PublicKey == nil {
		return false
	}
	k, err := parsePublicKey(record)
	if err != nil {
		return false
	}
	switch a := k.(type) {
	case *rsa.PublicKey:
		b, ok := c.PublicKey.(*rsa.PublicKey)
		return ok && a.Equal(b)
	case *ecdsa.PublicKey:
		b, ok := c.PublicKey.(*ecdsa.PublicKey)
		return ok && a.Equal(b)
	case *dsa.PublicKey:
		b, ok := c.PublicKey.(*dsa.PublicKey)
		return ok && a.Y.Cmp(b.Y) == 0 && a.P.Cmp(b.P) == 0 && a.Q.Cmp(b.Q) == 0 && a.G.Cmp(b.G) == 0
	}
	return false
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
