package pkcs7

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/provkit/provkit/firmware/apk/cert"
	"github.com/provkit/provkit/firmware/apk/internal/ber"
)

// OIDs of the content types.
const (
	OIDData       = "1.2.840.113549.1.7.1"
	OIDSignedData = "1.2.840.113549.1.7.2"
	oidContentTyp = "1.2.840.113549.1.9.3"
	oidMsgDigest  = "1.2.840.113549.1.9.4"
)

// MaxSize bounds the size of a signature block Parse accepts. Real blocks are a few KiB; a block
// holding a long certificate chain stays far below this.
const MaxSize = 4 << 20

// MaxSignerInfos and MaxCertificates bound the counts Parse accepts.
const (
	MaxSignerInfos  = 64
	MaxCertificates = 256
)

// ErrDecoding is wrapped by errors for input that is not a well-formed SignedData, or whose
// signed attributes are ambiguous (apksig: JAR_SIG_PARSE_EXCEPTION).
var ErrDecoding = errors.New("malformed PKCS#7 SignedData")

// AlgorithmIdentifier is an algorithm OID with its parameters as encoded (nil when absent).
type AlgorithmIdentifier struct {
	OID    string
	Params []byte
}

// SignedData is a parsed PKCS#7 SignedData. Byte slices alias the input.
type SignedData struct {
	Version          int
	DigestAlgorithms []AlgorithmIdentifier
	ContentType      string // encapContentInfo.eContentType
	Content          []byte // encapContentInfo.eContent, nil when detached (always, in APKs)
	// Certificates holds each certificate of the bag exactly as encoded, in order.
	Certificates [][]byte
	SignerInfos  []SignerInfo
}

// SignerInfo is one signer of a SignedData.
type SignerInfo struct {
	Version int
	// Issuer and SerialNumber identify the signing certificate (issuerAndSerialNumber form).
	Issuer       *cert.Name
	SerialNumber *big.Int
	// SubjectKeyID identifies it instead in the subjectKeyIdentifier form (CMS version 3).
	SubjectKeyID       []byte
	DigestAlgorithm    AlgorithmIdentifier
	SignatureAlgorithm AlgorithmIdentifier
	// RawSignedAttrs is the [0] IMPLICIT signed attributes exactly as encoded, nil when absent.
	RawSignedAttrs []byte
	Signature      []byte
}

func decodingErr(off int, format string, args ...any) error {
	return fmt.Errorf("%w: at offset %d: %s", ErrDecoding, off, fmt.Sprintf(format, args...))
}

func wrapDecoding(what string, err error) error {
	if errors.Is(err, ErrDecoding) {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	return fmt.Errorf("%w: reading %s: %w", ErrDecoding, what, err)
}

// Parse parses a signature block: a ContentInfo whose content is a SignedData. Bytes after the
// ContentInfo are ignored, as apksig ignores them (nothing signs them).
func Parse(b []byte) (*SignedData, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d-byte limit", ErrDecoding, len(b), MaxSize)
	}
	ci, _, err := ber.Read(b)
	if err != nil {
		return nil, wrapDecoding("ContentInfo", err)
	}
	if err := ci.Expect(ber.TagSequence); err != nil {
		return nil, wrapDecoding("ContentInfo", err)
	}
	f, err := ci.Children()
	if err != nil {
		return nil, wrapDecoding("ContentInfo", err)
	}
	if len(f) != 2 {
		return nil, decodingErr(ci.Offset, "ContentInfo has %d elements, want 2", len(f))
	}
	typ, err := f[0].ReadOID()
	if err != nil {
		return nil, wrapDecoding("content type", err)
	}
	if typ != OIDSignedData {
		return nil, decodingErr(f[0].Offset, "content type %s is not SignedData (%s)", typ, OIDSignedData)
	}
	if !f[1].Is(ber.ClassContext, 0) || !f[1].Constructed {
		return nil, decodingErr(f[1].Offset, "content is %s, want [0] EXPLICIT", f[1])
	}
	sd, err := ber.ReadOne(f[1].Content)
	if err != nil {
		return nil, wrapDecoding("SignedData", err)
	}
	return parseSignedData(sd)
}

func parseSignedData(v ber.TLV) (*SignedData, error) {
	if err := v.Expect(ber.TagSequence); err != nil {
		return nil, wrapDecoding("SignedData", err)
	}
	f, err := v.Children()
	if err != nil {
		return nil, wrapDecoding("SignedData", err)
	}
	if len(f) < 4 {
		return nil, decodingErr(v.Offset, "SignedData has %d elements, want at least 4", len(f))
	}
	sd := &SignedData{}
	if err := f[0].Expect(ber.TagInteger); err != nil {
		return nil, wrapDecoding("SignedData version", err)
	}
	if sd.Version, err = ber.SmallInt(f[0].Content); err != nil {
		return nil, wrapDecoding("SignedData version", err)
	}
	if err := f[1].Expect(ber.TagSet); err != nil {
		return nil, wrapDecoding("digest algorithms", err)
	}
	algs, err := f[1].Children()
	if err != nil {
		return nil, wrapDecoding("digest algorithms", err)
	}
	for _, a := range algs {
		alg, err := algorithm(a)
		if err != nil {
			return nil, wrapDecoding("digest algorithm", err)
		}
		sd.DigestAlgorithms = append(sd.DigestAlgorithms, alg)
	}
	if err := sd.parseEncapContentInfo(f[2]); err != nil {
		return nil, err
	}
	i := 3
	if i < len(f) && f[i].Is(ber.ClassContext, 0) {
		if !f[i].Constructed {
			return nil, decodingErr(f[i].Offset, "certificates [0] is not constructed")
		}
		certs, err := f[i].Children()
		if err != nil {
			return nil, wrapDecoding("certificates", err)
		}
		if len(certs) > MaxCertificates {
			return nil, decodingErr(f[i].Offset, "%d certificates, more than %d", len(certs), MaxCertificates)
		}
		for _, c := range certs {
			sd.Certificates = append(sd.Certificates, c.Raw)
		}
		i++
	}
	if i < len(f) && f[i].Is(ber.ClassContext, 1) {
		i++ // CRLs: Android ignores them.
	}
	if i != len(f)-1 {
		return nil, decodingErr(f[min(i, len(f)-1)].Offset, "unexpected %s in SignedData", f[min(i, len(f)-1)])
	}
	if err := f[i].Expect(ber.TagSet); err != nil {
		return nil, wrapDecoding("signer infos", err)
	}
	infos, err := f[i].Children()
	if err != nil {
		return nil, wrapDecoding("signer infos", err)
	}
	if len(infos) > MaxSignerInfos {
		return nil, decodingErr(f[i].Offset, "%d SignerInfos, more than %d", len(infos), MaxSignerInfos)
	}
	for n, si := range infos {
		info, err := parseSignerInfo(si)
		if err != nil {
			return nil, wrapDecoding(fmt.Sprintf("SignerInfo #%d", n+1), err)
		}
		sd.SignerInfos = append(sd.SignerInfos, info)
	}
	return sd, nil
}

func (sd *SignedData) parseEncapContentInfo(v ber.TLV) error {
	if err := v.Expect(ber.TagSequence); err != nil {
		return wrapDecoding("encapsulated content info", err)
	}
	f, err := v.Children()
	if err != nil {
		return wrapDecoding("encapsulated content info", err)
	}
	if len(f) < 1 || len(f) > 2 {
		return decodingErr(v.Offset, "encapsulated content info has %d elements", len(f))
	}
	if sd.ContentType, err = f[0].ReadOID(); err != nil {
		return wrapDecoding("encapsulated content type", err)
	}
	if len(f) == 2 {
		if !f[1].Is(ber.ClassContext, 0) || !f[1].Constructed {
			return decodingErr(f[1].Offset, "encapsulated content is %s, want [0] EXPLICIT", f[1])
		}
		c, err := ber.ReadOne(f[1].Content)
		if err != nil {
			return wrapDecoding("encapsulated content", err)
		}
		if err := c.Expect(ber.TagOctetString); err != nil {
			return wrapDecoding("encapsulated content", err)
		}
		sd.Content = c.Content
	}
	return nil
}

func algorithm(v ber.TLV) (AlgorithmIdentifier, error) {
	if err := v.Expect(ber.TagSequence); err != nil {
		return AlgorithmIdentifier{}, err
	}
	kids, err := v.Children()
	if err != nil {
		return AlgorithmIdentifier{}, err
	}
	if len(kids) < 1 || len(kids) > 2 {
		return AlgorithmIdentifier{}, decodingErr(v.Offset, "AlgorithmIdentifier has %d elements", len(kids))
	}
	oid, err := kids[0].ReadOID()
	if err != nil {
		return AlgorithmIdentifier{}, err
	}
	a := AlgorithmIdentifier{OID: oid}
	if len(kids) == 2 {
		a.Params = kids[1].Raw
	}
	return a, nil
}

func parseSignerInfo(v ber.TLV) (SignerInfo, error) {
	var si SignerInfo
	if err := v.Expect(ber.TagSequence); err != nil {
		return si, err
	}
	f, err := v.Children()
	if err != nil {
		return si, err
	}
	if len(f) < 5 || len(f) > 7 {
		return si, decodingErr(v.Offset, "SignerInfo has %d elements, want 5 to 7", len(f))
	}
	if err := f[0].Expect(ber.TagInteger); err != nil {
		return si, err
	}
	if si.Version, err = ber.SmallInt(f[0].Content); err != nil {
		return si, err
	}
	switch sid := f[1]; {
	case sid.Is(ber.ClassUniversal, ber.TagSequence):
		kids, err := sid.Children()
		if err != nil {
			return si, err
		}
		if len(kids) != 2 {
			return si, decodingErr(sid.Offset, "issuerAndSerialNumber has %d elements, want 2", len(kids))
		}
		name, err := cert.ParseName(kids[0])
		if err != nil {
			return si, fmt.Errorf("reading signer's issuer: %w", err)
		}
		si.Issuer = &name
		if err := kids[1].Expect(ber.TagInteger); err != nil {
			return si, err
		}
		if si.SerialNumber, err = ber.Integer(kids[1].Content); err != nil {
			return si, err
		}
	case sid.Is(ber.ClassContext, 0) && !sid.Constructed:
		si.SubjectKeyID = sid.Content
	default:
		return si, decodingErr(sid.Offset, "signer identifier is %s, want issuerAndSerialNumber or [0] subjectKeyIdentifier", sid)
	}
	if si.DigestAlgorithm, err = algorithm(f[2]); err != nil {
		return si, err
	}
	i := 3
	if f[i].Is(ber.ClassContext, 0) {
		if !f[i].Constructed {
			return si, decodingErr(f[i].Offset, "signed attributes [0] are not constructed")
		}
		si.RawSignedAttrs = f[i].Raw
		i++
	}
	if len(f)-i < 2 {
		return si, decodingErr(v.Offset, "SignerInfo lacks signature algorithm or signature")
	}
	if si.SignatureAlgorithm, err = algorithm(f[i]); err != nil {
		return si, err
	}
	if err := f[i+1].Expect(ber.TagOctetString); err != nil {
		return si, err
	}
	si.Signature = f[i+1].Content
	i += 2
	if i < len(f) && f[i].Is(ber.ClassContext, 1) {
		i++ // unsigned attributes: ignored, as Android does.
	}
	if i != len(f) {
		return si, decodingErr(f[i].Offset, "unexpected %s in SignerInfo", f[i])
	}
	return si, nil
}

// attrErr reports malformed signed attributes. apksig classifies these as a verification failure
// (JAR_SIG_VERIFY_EXCEPTION), not a decoding one, so they do not wrap ErrDecoding.
func attrErr(off int, format string, args ...any) error {
	return fmt.Errorf("%w: signed attributes at offset %d: %s", ber.ErrMalformed, off, fmt.Sprintf(format, args...))
}

// Attribute is one signed attribute: its type and its values, each as encoded.
type Attribute struct {
	OID    string
	Values []ber.TLV
}

// ParseAttributes decodes signed attributes (an IMPLICIT SET OF Attribute, as in
// SignerInfo.RawSignedAttrs), whatever the outer tag.
func ParseAttributes(raw []byte) ([]Attribute, error) {
	set, err := ber.ReadOne(raw)
	if err != nil {
		return nil, err
	}
	if !set.Constructed {
		return nil, attrErr(set.Offset, "attributes are not constructed")
	}
	items, err := set.Children()
	if err != nil {
		return nil, err
	}
	out := make([]Attribute, 0, len(items))
	for _, it := range items {
		if err := it.Expect(ber.TagSequence); err != nil {
			return nil, err
		}
		kids, err := it.Children()
		if err != nil {
			return nil, err
		}
		if len(kids) != 2 {
			return nil, attrErr(it.Offset, "attribute has %d elements, want 2", len(kids))
		}
		oid, err := kids[0].ReadOID()
		if err != nil {
			return nil, err
		}
		if err := kids[1].Expect(ber.TagSet); err != nil {
			return nil, err
		}
		vals, err := kids[1].Children()
		if err != nil {
			return nil, err
		}
		out = append(out, Attribute{OID: oid, Values: vals})
	}
	return out, nil
}

// ParseCertificates parses every certificate of the bag, in order.
func (sd *SignedData) ParseCertificates() ([]*cert.Certificate, error) {
	out := make([]*cert.Certificate, 0, len(sd.Certificates))
	for i, raw := range sd.Certificates {
		c, err := cert.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate #%d: %w", ErrDecoding, i+1, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// FindCertificate returns the certificate si names by issuer and serial number, as apksig and
// Android look it up, or nil. A SignerInfo in the subjectKeyIdentifier form finds nothing, as in
// apksig (whose lookup supports only issuer and serial number).
func (si *SignerInfo) FindCertificate(certs []*cert.Certificate) *cert.Certificate {
	if si.Issuer == nil {
		return nil
	}
	for _, c := range certs {
		if c.SerialNumber.Cmp(si.SerialNumber) == 0 && c.Issuer.Equal(*si.Issuer) {
			return c
		}
	}
	return nil
}

// Chain returns leaf followed by the certificates that issued it, found among certs by matching
// issuer and subject names, as apksig builds a signer's chain (each certificate used once).
func Chain(certs []*cert.Certificate, leaf *cert.Certificate) []*cert.Certificate {
	out := []*cert.Certificate{leaf}
	used := make([]bool, len(certs))
	for i, c := range certs {
		if c == leaf {
			used[i] = true
			break
		}
	}
	for cur := leaf; !cur.Subject.Equal(cur.Issuer); {
		found := false
		for i, c := range certs {
			if !used[i] && cur.Issuer.Equal(c.Subject) {
				used[i] = true
				out = append(out, c)
				cur = c
				found = true
				break
			}
		}
		if !found {
			break
		}
	}
	return out
}
