package cert

import (
	"crypto"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/provkit/provkit/firmware/apk/internal/ber"
)

// ErrMalformed is wrapped by every error Parse returns for bytes that are not a certificate.
var ErrMalformed = errors.New("malformed certificate")

// MaxSize bounds the encoded size of a certificate Parse accepts. Real signing certificates are
// a few KiB (a 16384-bit RSA key makes about 4.5 KiB).
const MaxSize = 1 << 20

// Certificate is a parsed X.509 certificate. Every byte slice aliases the input given to Parse.
type Certificate struct {
	// Raw is the whole certificate exactly as encoded (BER or DER): the bytes to digest.
	Raw []byte
	// RawTBS is the to-be-signed part, as encoded.
	RawTBS []byte

	Version      int      // 1, 2 or 3
	SerialNumber *big.Int // may be zero or negative
	// SignatureAlgorithm is the OID of the certificate's own signature algorithm.
	SignatureAlgorithm string

	Issuer, Subject Name

	NotBefore, NotAfter time.Time

	// RawSubjectPublicKeyInfo is the SubjectPublicKeyInfo as encoded.
	RawSubjectPublicKeyInfo []byte
	// PublicKeyAlgorithmOID is the OID in the SubjectPublicKeyInfo.
	PublicKeyAlgorithmOID string
	// KeyAlgorithm is "RSA", "EC" or "DSA", or the OID for other algorithms.
	KeyAlgorithm string
	// KeySize is the key size in bits (RSA modulus, EC field, DSA prime), 0 when unknown.
	KeySize int
	// PublicKey is a *rsa.PublicKey, *ecdsa.PublicKey or *dsa.PublicKey, or nil when the key's
	// algorithm or parameters are not supported (PublicKeyErr then says why).
	PublicKey    crypto.PublicKey
	PublicKeyErr error

	Extensions []Extension
	// KeyUsage holds the key usage bits (index 0 digitalSignature, 1 nonRepudiation, ...), nil
	// when the certificate has no key usage extension.
	KeyUsage []bool
	// SubjectKeyID is the subject key identifier extension's value, nil when absent.
	SubjectKeyID []byte
}

// Extension is one X.509v3 extension.
type Extension struct {
	OID      string
	Critical bool
	Value    []byte // contents of the extnValue OCTET STRING
}

// SHA256 returns the SHA-256 digest of the certificate as encoded.
func (c *Certificate) SHA256() [32]byte { return sha256.Sum256(c.Raw) }

// SHA1 returns the SHA-1 digest of the certificate as encoded.
func (c *Certificate) SHA1() [20]byte { return sha1.Sum(c.Raw) }

// MD5 returns the MD5 digest of the certificate as encoded.
func (c *Certificate) MD5() [16]byte { return md5.Sum(c.Raw) }

// Extension OIDs.
const (
	oidSubjectKeyID = "2.5.29.14"
	oidKeyUsage     = "2.5.29.15"
)

// supportedExtensions lists the extensions Java's certificate implementation understands; a
// critical extension outside this set makes the certificate unusable for JAR signing
// (X509Certificate.hasUnsupportedCriticalExtension, checked by apksig and Android).
var supportedExtensions = map[string]bool{
	"2.5.29.14":             true, // subject key identifier
	"2.5.29.15":             true, // key usage
	"2.5.29.16":             true, // private key usage period
	"2.5.29.17":             true, // subject alternative name
	"2.5.29.18":             true, // issuer alternative name
	"2.5.29.19":             true, // basic constraints
	"2.5.29.20":             true, // CRL number
	"2.5.29.21":             true, // CRL reason
	"2.5.29.24":             true, // invalidity date
	"2.5.29.27":             true, // delta CRL indicator
	"2.5.29.28":             true, // issuing distribution point
	"2.5.29.29":             true, // certificate issuer
	"2.5.29.30":             true, // name constraints
	"2.5.29.31":             true, // CRL distribution points
	"2.5.29.32":             true, // certificate policies
	"2.5.29.33":             true, // policy mappings
	"2.5.29.35":             true, // authority key identifier
	"2.5.29.36":             true, // policy constraints
	"2.5.29.37":             true, // extended key usage
	"2.5.29.46":             true, // freshest CRL
	"2.5.29.54":             true, // inhibit any policy
	"1.3.6.1.5.5.7.1.1":     true, // authority info access
	"1.3.6.1.5.5.7.1.11":    true, // subject info access
	"1.3.6.1.5.5.7.48.1.5":  true, // OCSP no check
	"2.16.840.1.113730.1.1": true, // Netscape certificate type
}

// HasUnsupportedCriticalExtension reports whether a critical extension is one that Java's
// certificate implementation does not understand.
func (c *Certificate) HasUnsupportedCriticalExtension() bool {
	for _, e := range c.Extensions {
		if e.Critical && !supportedExtensions[e.OID] {
			return true
		}
	}
	return false
}

func malformed(off int, format string, args ...any) error {
	return fmt.Errorf("%w: at offset %d: %s", ErrMalformed, off, fmt.Sprintf(format, args...))
}

func wrap(what string, err error) error {
	if errors.Is(err, ErrMalformed) {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	return fmt.Errorf("%w: reading %s: %w", ErrMalformed, what, err)
}

// Parse parses one encoded certificate. raw must hold exactly the certificate: trailing bytes
// are an error (apksig's certificate factory would ignore them, but a digest that does not cover
// every byte of what was signed invites confusion).
func Parse(raw []byte) (*Certificate, error) {
	if len(raw) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d-byte limit", ErrMalformed, len(raw), MaxSize)
	}
	top, err := ber.ReadOne(raw)
	if err != nil {
		return nil, wrap("certificate", err)
	}
	if err := top.Expect(ber.TagSequence); err != nil {
		return nil, wrap("certificate", err)
	}
	parts, err := top.Children()
	if err != nil {
		return nil, wrap("certificate", err)
	}
	if len(parts) != 3 {
		return nil, malformed(top.Offset, "certificate has %d elements, want 3 (tbsCertificate, signatureAlgorithm, signature)", len(parts))
	}
	c := &Certificate{Raw: top.Raw, RawTBS: parts[0].Raw}
	outerAlg, _, err := algorithm(parts[1])
	if err != nil {
		return nil, wrap("signature algorithm", err)
	}
	if err := parts[2].Expect(ber.TagBitString); err != nil {
		return nil, wrap("signature", err)
	}
	if err := c.parseTBS(parts[0]); err != nil {
		return nil, err
	}
	if outerAlg != c.SignatureAlgorithm {
		return nil, malformed(parts[1].Offset, "signature algorithm %s differs from the TBS certificate's %s", outerAlg, c.SignatureAlgorithm)
	}
	return c, nil
}

// algorithm reads an AlgorithmIdentifier: its OID and its parameters (nil when absent).
func algorithm(v ber.TLV) (string, *ber.TLV, error) {
	if err := v.Expect(ber.TagSequence); err != nil {
		return "", nil, err
	}
	kids, err := v.Children()
	if err != nil {
		return "", nil, err
	}
	if len(kids) < 1 || len(kids) > 2 {
		return "", nil, malformed(v.Offset, "AlgorithmIdentifier has %d elements", len(kids))
	}
	oid, err := kids[0].ReadOID()
	if err != nil {
		return "", nil, err
	}
	if len(kids) == 2 {
		return oid, &kids[1], nil
	}
	return oid, nil, nil
}

func (c *Certificate) parseTBS(tbs ber.TLV) error {
	if err := tbs.Expect(ber.TagSequence); err != nil {
		return wrap("TBS certificate", err)
	}
	f, err := tbs.Children()
	if err != nil {
		return wrap("TBS certificate", err)
	}
	i := 0
	c.Version = 1
	if i < len(f) && f[i].Is(ber.ClassContext, 0) {
		if !f[i].Constructed {
			return malformed(f[i].Offset, "version is not an explicit [0]")
		}
		inner, err := ber.ReadOne(f[i].Content)
		if err != nil {
			return wrap("version", err)
		}
		if err := inner.Expect(ber.TagInteger); err != nil {
			return wrap("version", err)
		}
		v, err := ber.SmallInt(inner.Content)
		if err != nil {
			return wrap("version", err)
		}
		if v < 0 || v > 2 {
			return malformed(f[i].Offset, "unsupported version %d", v+1)
		}
		c.Version = v + 1
		i++
	}
	if len(f)-i < 6 {
		return malformed(tbs.Offset, "TBS certificate has %d elements, want at least %d", len(f), i+6)
	}
	if err := f[i].Expect(ber.TagInteger); err != nil {
		return wrap("serial number", err)
	}
	if c.SerialNumber, err = ber.Integer(f[i].Content); err != nil {
		return wrap("serial number", err)
	}
	if c.SignatureAlgorithm, _, err = algorithm(f[i+1]); err != nil {
		return wrap("TBS signature algorithm", err)
	}
	if c.Issuer, err = ParseName(f[i+2]); err != nil {
		return wrap("issuer", err)
	}
	if err := c.parseValidity(f[i+3]); err != nil {
		return err
	}
	if c.Subject, err = ParseName(f[i+4]); err != nil {
		return wrap("subject", err)
	}
	if err := c.parseSPKI(f[i+5]); err != nil {
		return err
	}
	i += 6
	// Optional issuerUniqueID [1], subjectUniqueID [2] (v2 and v3) and extensions [3] (v3), in order.
	for _, want := range []uint32{1, 2} {
		if i < len(f) && f[i].Is(ber.ClassContext, want) {
			if c.Version < 2 {
				return malformed(f[i].Offset, "unique identifier in a version %d certificate", c.Version)
			}
			i++
		}
	}
	if i < len(f) && f[i].Is(ber.ClassContext, 3) {
		if c.Version < 3 {
			return malformed(f[i].Offset, "extensions in a version %d certificate", c.Version)
		}
		if err := c.parseExtensions(f[i]); err != nil {
			return err
		}
		i++
	}
	if i != len(f) {
		return malformed(f[i].Offset, "unexpected %s in TBS certificate", f[i])
	}
	return nil
}

func (c *Certificate) parseValidity(v ber.TLV) error {
	if err := v.Expect(ber.TagSequence); err != nil {
		return wrap("validity", err)
	}
	kids, err := v.Children()
	if err != nil {
		return wrap("validity", err)
	}
	if len(kids) != 2 {
		return malformed(v.Offset, "validity has %d elements, want 2", len(kids))
	}
	if c.NotBefore, err = parseTime(kids[0]); err != nil {
		return wrap("notBefore", err)
	}
	if c.NotAfter, err = parseTime(kids[1]); err != nil {
		return wrap("notAfter", err)
	}
	return nil
}

// parseTime reads a UTCTime (YYMMDDhhmm[ss]Z or with a +hhmm/-hhmm offset) or a GeneralizedTime
// (YYYYMMDDhhmm[ss[.fff]] with Z or an offset), the forms Java's DER reader accepts.
func parseTime(v ber.TLV) (time.Time, error) {
	if v.Class != ber.ClassUniversal || v.Constructed || (v.Tag != ber.TagUTCTime && v.Tag != ber.TagGeneralizedTime) {
		return time.Time{}, malformed(v.Offset, "expected UTCTime or GeneralizedTime, found %s", v)
	}
	s := string(v.Content)
	year := 0
	if v.Tag == ber.TagUTCTime {
		if len(s) < 2 {
			return time.Time{}, malformed(v.Offset, "UTCTime %q too short", s)
		}
		yy, ok := digits(s[:2])
		if !ok {
			return time.Time{}, malformed(v.Offset, "bad UTCTime %q", s)
		}
		year = 1900 + yy
		if yy < 50 {
			year = 2000 + yy
		}
		s = s[2:]
	} else {
		if len(s) < 4 {
			return time.Time{}, malformed(v.Offset, "GeneralizedTime %q too short", s)
		}
		y, ok := digits(s[:4])
		if !ok {
			return time.Time{}, malformed(v.Offset, "bad GeneralizedTime %q", s)
		}
		year = y
		s = s[4:]
	}
	bad := func() (time.Time, error) {
		return time.Time{}, malformed(v.Offset, "bad time %q", string(v.Content))
	}
	if len(s) < 8 {
		return bad()
	}
	var f [4]int
	for k := range f {
		n, ok := digits(s[2*k : 2*k+2])
		if !ok {
			return bad()
		}
		f[k] = n
	}
	s = s[8:]
	sec, nsec := 0, 0
	if len(s) >= 2 && s[0] >= '0' && s[0] <= '9' {
		n, ok := digits(s[:2])
		if !ok {
			return bad()
		}
		sec = n
		s = s[2:]
		if v.Tag == ber.TagGeneralizedTime && len(s) > 0 && (s[0] == '.' || s[0] == ',') {
			s = s[1:]
			scale := 100000000
			k := 0
			for k < len(s) && s[k] >= '0' && s[k] <= '9' {
				if scale > 0 {
					nsec += int(s[k]-'0') * scale
					scale /= 10
				}
				k++
			}
			if k == 0 {
				return bad()
			}
			s = s[k:]
		}
	}
	loc := time.UTC
	switch {
	case s == "Z":
	case len(s) == 5 && (s[0] == '+' || s[0] == '-'):
		hh, ok1 := digits(s[1:3])
		mm, ok2 := digits(s[3:5])
		if !ok1 || !ok2 || hh > 23 || mm > 59 {
			return bad()
		}
		off := hh*3600 + mm*60
		if s[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	default:
		return bad()
	}
	if f[0] < 1 || f[0] > 12 || f[1] < 1 || f[1] > 31 || f[2] > 23 || f[3] > 59 || sec > 59 {
		return bad()
	}
	return time.Date(year, time.Month(f[0]), f[1], f[2], f[3], sec, nsec, loc).UTC(), nil
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func (c *Certificate) parseExtensions(v ber.TLV) error {
	if !v.Constructed {
		return malformed(v.Offset, "extensions are not an explicit [3]")
	}
	seq, err := ber.ReadOne(v.Content)
	if err != nil {
		return wrap("extensions", err)
	}
	if err := seq.Expect(ber.TagSequence); err != nil {
		return wrap("extensions", err)
	}
	exts, err := seq.Children()
	if err != nil {
		return wrap("extensions", err)
	}
	seen := make(map[string]bool, len(exts))
	for _, e := range exts {
		if err := e.Expect(ber.TagSequence); err != nil {
			return wrap("extension", err)
		}
		kids, err := e.Children()
		if err != nil {
			return wrap("extension", err)
		}
		if len(kids) < 2 || len(kids) > 3 {
			return malformed(e.Offset, "extension has %d elements", len(kids))
		}
		oid, err := kids[0].ReadOID()
		if err != nil {
			return wrap("extension", err)
		}
		ext := Extension{OID: oid}
		k := 1
		if len(kids) == 3 {
			if err := kids[1].Expect(ber.TagBoolean); err != nil || len(kids[1].Content) != 1 {
				return malformed(kids[1].Offset, "extension %s: critical is not a BOOLEAN", oid)
			}
			ext.Critical = kids[1].Content[0] != 0
			k = 2
		}
		if err := kids[k].Expect(ber.TagOctetString); err != nil {
			return wrap("extension "+oid, err)
		}
		ext.Value = kids[k].Content
		if seen[oid] {
			return malformed(e.Offset, "duplicate extension %s", oid)
		}
		seen[oid] = true
		c.Extensions = append(c.Extensions, ext)
		switch oid {
		case oidKeyUsage:
			if c.KeyUsage, err = parseKeyUsage(ext.Value); err != nil {
				if ext.Critical {
					return wrap("key usage extension", err)
				}
				c.KeyUsage = nil
			}
		case oidSubjectKeyID:
			if id, err := ber.ReadOne(ext.Value); err == nil && id.Expect(ber.TagOctetString) == nil {
				c.SubjectKeyID = id.Content
			} else if ext.Critical {
				return malformed(kids[k].Offset, "malformed critical subject key identifier")
			}
		}
	}
	return nil
}

// parseKeyUsage decodes a KeyUsage BIT STRING into one bool per named bit.
func parseKeyUsage(b []byte) ([]bool, error) {
	v, err := ber.ReadOne(b)
	if err != nil {
		return nil, err
	}
	bits, err := bitString(v)
	if err != nil {
		return nil, err
	}
	n := len(bits.bytes)*8 - bits.unused
	out := make([]bool, max(n, 9))
	for i := 0; i < n; i++ {
		out[i] = bits.bytes[i/8]&(0x80>>(i%8)) != 0
	}
	return out, nil
}

type bitStr struct {
	bytes  []byte
	unused int
}

func bitString(v ber.TLV) (bitStr, error) {
	if err := v.Expect(ber.TagBitString); err != nil {
		return bitStr{}, err
	}
	if len(v.Content) == 0 || v.Content[0] > 7 || (len(v.Content) == 1 && v.Content[0] != 0) {
		return bitStr{}, malformed(v.Offset, "bad BIT STRING")
	}
	return bitStr{bytes: v.Content[1:], unused: int(v.Content[0])}, nil
}
