package dertest

import (
	"bytes"
	"crypto"
	"crypto/dsa" //nolint:staticcheck // tests build DSA-signed fixtures like those in the wild.
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Tag encodes one TLV with the identifier octet id and a minimal definite length.
func Tag(id byte, parts ...[]byte) []byte {
	content := bytes.Join(parts, nil)
	return append(append([]byte{id}, length(len(content), 0)...), content...)
}

// LongLen encodes a TLV whose length is in long form with pad extra leading zero octets.
func LongLen(id byte, pad int, parts ...[]byte) []byte {
	content := bytes.Join(parts, nil)
	l := length(len(content), 0)
	if l[0] < 0x80 {
		l = []byte{0x81, l[0]}
	}
	n := int(l[0] & 0x7f)
	out := []byte{id, 0x80 | byte(n+pad)}
	out = append(out, make([]byte, pad)...)
	out = append(out, l[1:]...)
	return append(out, content...)
}

// Indefinite encodes a constructed TLV with an indefinite length.
func Indefinite(id byte, parts ...[]byte) []byte {
	out := []byte{id | 0x20, 0x80}
	out = append(out, bytes.Join(parts, nil)...)
	return append(out, 0, 0)
}

func length(n, _ int) []byte {
	if n < 0x80 {
		return []byte{byte(n)}
	}
	var b []byte
	for x := n; x > 0; x >>= 8 {
		b = append([]byte{byte(x)}, b...)
	}
	return append([]byte{0x80 | byte(len(b))}, b...)
}

// Seq encodes a SEQUENCE.
func Seq(parts ...[]byte) []byte { return Tag(0x30, parts...) }

// Set encodes a SET (elements in the given order).
func Set(parts ...[]byte) []byte { return Tag(0x31, parts...) }

// Explicit encodes a context-specific constructed [n].
func Explicit(n byte, parts ...[]byte) []byte { return Tag(0xa0|n, parts...) }

// Null encodes NULL.
func Null() []byte { return []byte{0x05, 0x00} }

// Octets encodes an OCTET STRING.
func Octets(b []byte) []byte { return Tag(0x04, b) }

// Bits encodes a BIT STRING with no unused bits.
func Bits(b []byte) []byte { return Tag(0x03, []byte{0}, b) }

// UTF8 encodes a UTF8String.
func UTF8(s string) []byte { return Tag(0x0c, []byte(s)) }

// Printable encodes a PrintableString.
func Printable(s string) []byte { return Tag(0x13, []byte(s)) }

// Bool encodes a BOOLEAN.
func Bool(v bool) []byte {
	if v {
		return []byte{0x01, 0x01, 0xff}
	}
	return []byte{0x01, 0x01, 0x00}
}

// Int encodes an INTEGER in minimal two's complement.
func Int(n *big.Int) []byte {
	if n.Sign() == 0 {
		return []byte{0x02, 0x01, 0x00}
	}
	if n.Sign() > 0 {
		b := n.Bytes()
		if b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return Tag(0x02, b)
	}
	// Negative: two's complement over enough bytes.
	nb := (n.BitLen() + 8) / 8
	mod := new(big.Int).Lsh(big.NewInt(1), uint(nb*8))
	v := new(big.Int).Add(mod, n).Bytes()
	for len(v) < nb {
		v = append([]byte{0xff}, v...)
	}
	// Trim redundant leading 0xff.
	for len(v) > 1 && v[0] == 0xff && v[1]&0x80 != 0 {
		v = v[1:]
	}
	return Tag(0x02, v)
}

// SmallInt encodes a small INTEGER.
func SmallInt(n int64) []byte { return Int(big.NewInt(n)) }

// OID encodes an OBJECT IDENTIFIER given in dotted form.
func OID(dotted string) []byte {
	parts := strings.Split(dotted, ".")
	var arcs []uint64
	for _, p := range parts {
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			panic(fmt.Sprintf("dertest: bad OID %q", dotted))
		}
		arcs = append(arcs, v)
	}
	body := base128(arcs[0]*40 + arcs[1])
	for _, a := range arcs[2:] {
		body = append(body, base128(a)...)
	}
	return Tag(0x06, body)
}

func base128(v uint64) []byte {
	out := []byte{byte(v & 0x7f)}
	for v >>= 7; v > 0; v >>= 7 {
		out = append([]byte{byte(v&0x7f) | 0x80}, out...)
	}
	return out
}

// AlgID encodes an AlgorithmIdentifier; params may be nil (absent).
func AlgID(oid string, params []byte) []byte {
	if params == nil {
		return Seq(OID(oid))
	}
	return Seq(OID(oid), params)
}

// AVA is one attribute of a Name: an OID and an already-encoded value.
type AVA struct {
	OID   string
	Value []byte
}

// Name encodes a Name from RDNs, least specific first.
func Name(rdns ...[]AVA) []byte {
	var out [][]byte
	for _, r := range rdns {
		var avas [][]byte
		for _, a := range r {
			avas = append(avas, Seq(OID(a.OID), a.Value))
		}
		out = append(out, Set(avas...))
	}
	return Seq(out...)
}

// CN is a one-RDN name CN=cn.
func CN(cn string) []byte { return Name([]AVA{{"2.5.4.3", UTF8(cn)}}) }

// CertSpec describes a certificate for Cert to build.
type CertSpec struct {
	Serial     *big.Int // default 1
	Issuer     []byte   // encoded Name; default Subject
	Subject    []byte   // encoded Name; default CN=test
	SPKI       []byte   // encoded SubjectPublicKeyInfo; default from Key
	Key        crypto.Signer
	Extensions [][]byte // encoded Extension SEQUENCEs; version 3 when set
	SigAlg     string   // default sha256WithRSAEncryption's OID
}

// Extension encodes one Extension.
func Extension(oid string, critical bool, value []byte) []byte {
	if critical {
		return Seq(OID(oid), Bool(true), Octets(value))
	}
	return Seq(OID(oid), Octets(value))
}

// SPKI returns the SubjectPublicKeyInfo of a key.
func SPKI(pub crypto.PublicKey) []byte {
	if k, ok := pub.(*dsa.PublicKey); ok {
		params := Seq(Int(k.P), Int(k.Q), Int(k.G))
		return Seq(AlgID("1.2.840.10040.4.1", params), Bits(Int(k.Y)))
	}
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return b
}

// TBS returns the TBSCertificate of spec.
func TBS(spec CertSpec) []byte {
	serial := spec.Serial
	if serial == nil {
		serial = big.NewInt(1)
	}
	subject := spec.Subject
	if subject == nil {
		subject = CN("test")
	}
	issuer := spec.Issuer
	if issuer == nil {
		issuer = subject
	}
	spki := spec.SPKI
	if spki == nil {
		spki = SPKI(spec.Key.Public())
	}
	sigAlg := spec.SigAlg
	if sigAlg == "" {
		sigAlg = "1.2.840.113549.1.1.11"
	}
	validity := Seq(Tag(0x17, []byte("160101000000Z")), Tag(0x18, []byte("20491231235959Z")))
	parts := [][]byte{}
	if spec.Extensions != nil {
		parts = append(parts, Explicit(0, SmallInt(2)))
	}
	parts = append(parts, Int(serial), AlgID(sigAlg, Null()), issuer, validity, subject, spki)
	if spec.Extensions != nil {
		parts = append(parts, Explicit(3, Seq(spec.Extensions...)))
	}
	return Seq(parts...)
}

// Cert builds a certificate. Its own signature is random bytes: nothing in APK verification
// checks a signing certificate's self-signature.
func Cert(spec CertSpec) []byte {
	sigAlg := spec.SigAlg
	if sigAlg == "" {
		sigAlg = "1.2.840.113549.1.1.11"
	}
	sig := make([]byte, 64)
	_, _ = rand.Read(sig)
	return Seq(TBS(spec), AlgID(sigAlg, Null()), Bits(sig))
}

// SignDSA signs digest with a DSA key (truncating it to the size of Q as FIPS 186-3 says) and
// returns the DER SEQUENCE { r, s }.
func SignDSA(k *dsa.PrivateKey, digest []byte) []byte {
	if n := (k.Q.BitLen() + 7) / 8; len(digest) > n {
		digest = digest[:n]
	}
	r, s, err := dsa.Sign(rand.Reader, k, digest)
	if err != nil {
		panic(err)
	}
	b, _ := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	return b
}

// Sign signs data with key using hash: PKCS#1 v1.5 for RSA, ASN.1 (r, s) for ECDSA and DSA.
func Sign(key crypto.Signer, h crypto.Hash, data []byte) []byte {
	d := h.New()
	d.Write(data)
	digest := d.Sum(nil)
	switch k := key.(type) {
	case *rsa.PrivateKey:
		s, err := rsa.SignPKCS1v15(rand.Reader, k, h, digest)
		if err != nil {
			panic(err)
		}
		return s
	case *ecdsa.PrivateKey:
		s, err := ecdsa.SignASN1(rand.Reader, k, digest)
		if err != nil {
			panic(err)
		}
		return s
	}
	panic(fmt.Sprintf("dertest: cannot sign with %T", key))
}
