package cert_test

import (
	"bytes"
	"crypto"
	"crypto/dsa" //nolint:staticcheck // DSA keys still sign APKs.
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/provkit/provkit/firmware/apk/cert"
	d "github.com/provkit/provkit/firmware/apk/internal/dertest"
)

const suiteDir = "../testdata/apksig"

func readCert(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(suiteDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		return blk.Bytes
	}
	return b
}

// TestSuiteCertificates parses every certificate file of apksig's test suite and checks the
// key algorithm and size named in the file name, the DN, and agreement with crypto/x509.
func TestSuiteCertificates(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(suiteDir, "*.x509.*"))
	if len(files) < 15 {
		t.Fatalf("found %d certificate files in %s", len(files), suiteDir)
	}
	nameRE := regexp.MustCompile(`^(rsa|ec|dsa)-p?(\d+)`)
	for _, f := range files {
		base := filepath.Base(f)
		t.Run(base, func(t *testing.T) {
			raw := readCert(t, base)
			c, err := cert.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c.Raw, raw) {
				t.Fatal("Raw is not the input")
			}
			if c.SHA256() != sha256.Sum256(raw) {
				t.Fatal("SHA256 is not over the input")
			}
			m := nameRE.FindStringSubmatch(base)
			if m == nil {
				t.Fatalf("cannot tell the key from %s", base)
			}
			wantAlg := map[string]string{"rsa": "RSA", "ec": "EC", "dsa": "DSA"}[m[1]]
			wantSize, _ := strconv.Atoi(m[2])
			if c.KeyAlgorithm != wantAlg || c.KeySize != wantSize {
				t.Errorf("key %s %d bits, want %s %d", c.KeyAlgorithm, c.KeySize, wantAlg, wantSize)
			}
			if c.PublicKey == nil {
				t.Fatalf("no public key: %v", c.PublicKeyErr)
			}
			if got := c.Subject.String(); !strings.HasPrefix(got, "CN="+m[1]) {
				t.Errorf("subject %q", got)
			}
			if !strings.HasPrefix(c.Issuer.String(), "CN=") {
				t.Errorf("issuer %q", c.Issuer)
			}
			std, err := x509.ParseCertificate(raw)
			if err != nil {
				t.Logf("crypto/x509 rejects it (%v); cert accepts it", err)
				return
			}
			if c.SerialNumber.Cmp(std.SerialNumber) != 0 || c.Subject.String() != "CN="+std.Subject.CommonName {
				t.Errorf("serial %v subject %q; crypto/x509: %v %q", c.SerialNumber, c.Subject, std.SerialNumber, std.Subject.CommonName)
			}
			type equaler interface {
				Equal(crypto.PublicKey) bool
			}
			if k, ok := c.PublicKey.(*dsa.PublicKey); ok {
				sk := std.PublicKey.(*dsa.PublicKey)
				if k.P.Cmp(sk.P) != 0 || k.Q.Cmp(sk.Q) != 0 || k.G.Cmp(sk.G) != 0 || k.Y.Cmp(sk.Y) != 0 {
					t.Errorf("DSA key differs from crypto/x509's")
				}
			} else if k, ok := c.PublicKey.(equaler); !ok || !k.Equal(std.PublicKey) {
				t.Errorf("public key differs from crypto/x509's")
			}
			if !c.NotBefore.Equal(std.NotBefore) || !c.NotAfter.Equal(std.NotAfter) {
				t.Errorf("validity %v..%v, crypto/x509 %v..%v", c.NotBefore, c.NotAfter, std.NotBefore, std.NotAfter)
			}
			if !bytes.Equal(c.RawSubjectPublicKeyInfo, std.RawSubjectPublicKeyInfo) || !bytes.Equal(c.RawTBS, std.RawTBSCertificate) {
				t.Errorf("raw parts differ from crypto/x509's")
			}
		})
	}
}

var (
	keyOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func testKey(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKey
}

// TestTolerantEncodings checks that certificates apksig accepts and crypto/x509 rejects parse,
// and that their digests cover the bytes exactly as encoded.
func TestTolerantEncodings(t *testing.T) {
	key := testKey(t)
	spki := d.SPKI(&key.PublicKey)
	n := key.N.Bytes() // high bit set: encoded without a leading zero it reads as negative
	negModSPKI := d.Seq(d.AlgID(cert.OIDKeyRSA, d.Null()), d.Bits(d.Seq(d.Tag(0x02, n), d.SmallInt(65537))))
	tbs := d.TBS(d.CertSpec{Key: key, SPKI: spki})
	sig := d.Bits([]byte{1, 2, 3})
	alg := d.AlgID("1.2.840.113549.1.1.11", d.Null())
	cases := []struct {
		name string
		der  []byte
		x509 bool // whether crypto/x509 accepts it too
	}{
		{"plain DER", d.Seq(tbs, alg, sig), true},
		{"negative serial", d.Cert(d.CertSpec{Key: key, Serial: big.NewInt(-12345)}), false},
		{"zero serial", d.Cert(d.CertSpec{Key: key, Serial: big.NewInt(0)}), false},
		{"long-form lengths padded with zeros", d.LongLen(0x30, 2, tbs, d.LongLen(0x30, 1, d.OID("1.2.840.113549.1.1.11"), d.Null()), sig), false},
		{"indefinite length outer sequence", d.Indefinite(0x30, tbs, alg, sig), false},
		{"negative RSA modulus", d.Cert(d.CertSpec{Key: key, SPKI: negModSPKI}), false},
		{"unknown key algorithm", d.Cert(d.CertSpec{Key: key, SPKI: d.Seq(d.AlgID("1.3.101.112", nil), d.Bits(make([]byte, 32)))}), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cert.Parse(tc.der)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c.Raw, tc.der) || c.SHA256() != sha256.Sum256(tc.der) {
				t.Fatal("digest is not over the bytes as encoded")
			}
			if _, err := x509.ParseCertificate(tc.der); (err == nil) != tc.x509 {
				t.Logf("note: crypto/x509 accepts=%v (err %v)", err == nil, err)
			}
			switch tc.name {
			case "negative serial":
				if c.SerialNumber.Int64() != -12345 {
					t.Errorf("serial %v", c.SerialNumber)
				}
			case "negative RSA modulus":
				pk, ok := c.PublicKey.(*rsa.PublicKey)
				if !ok || pk.N.Cmp(key.N) != 0 || c.KeySize != 2048 {
					t.Errorf("key %v size %d: %v", pk, c.KeySize, c.PublicKeyErr)
				}
			case "unknown key algorithm":
				if c.PublicKey != nil || !errors.Is(c.PublicKeyErr, cert.ErrUnsupportedKey) || c.KeyAlgorithm != "1.3.101.112" {
					t.Errorf("key %T %v %q", c.PublicKey, c.PublicKeyErr, c.KeyAlgorithm)
				}
			default:
				if pk, ok := c.PublicKey.(*rsa.PublicKey); !ok || !pk.Equal(&key.PublicKey) {
					t.Errorf("public key %T: %v", c.PublicKey, c.PublicKeyErr)
				}
			}
		})
	}
}

func TestRejects(t *testing.T) {
	key := testKey(t)
	good := d.Cert(d.CertSpec{Key: key})
	tbs := d.TBS(d.CertSpec{Key: key})
	alg := d.AlgID("1.2.840.113549.1.1.11", d.Null())
	sig := d.Bits([]byte{1})
	v1WithExt := d.Seq(d.Int(big.NewInt(1)), alg, d.CN("a"), d.Seq(d.Tag(0x17, []byte("160101000000Z")), d.Tag(0x17, []byte("160101000000Z"))), d.CN("a"), d.SPKI(&key.PublicKey), d.Explicit(3, d.Seq()))
	v4 := d.Seq(d.Explicit(0, d.SmallInt(3)), d.Int(big.NewInt(1)), alg, d.CN("a"), d.Seq(d.Tag(0x17, []byte("160101000000Z")), d.Tag(0x17, []byte("160101000000Z"))), d.CN("a"), d.SPKI(&key.PublicKey))
	cases := map[string][]byte{
		"empty":                   nil,
		"trailing byte":           append(append([]byte{}, good...), 0),
		"truncated":               good[:len(good)-1],
		"not a sequence":          d.Octets(good),
		"two elements":            d.Seq(tbs, alg),
		"algorithm mismatch":      d.Seq(tbs, d.AlgID("1.2.840.113549.1.1.5", d.Null()), sig),
		"extensions in v1":        d.Seq(v1WithExt, alg, sig),
		"version 4":               d.Seq(v4, alg, sig),
		"primitive indefinite":    {0x30, 0x80, 0x04, 0x80, 0x00, 0x00, 0x00, 0x00},
		"deep indefinite nesting": bytes.Repeat([]byte{0x30, 0x80}, 200),
		"bad time":                d.Seq(d.Seq(d.Int(big.NewInt(1)), alg, d.CN("a"), d.Seq(d.Tag(0x17, []byte("1601010000")), d.Tag(0x17, []byte("16010100000X"))), d.CN("a"), d.SPKI(&key.PublicKey)), alg, sig),
	}
	for name, der := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := cert.Parse(der)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !errors.Is(err, cert.ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

// names used by the DN tests: each with the string apksigner prints for it.
var dnCases = []struct {
	name string
	dn   []byte
	want string
}{
	{"simple", d.CN("rsa-2048"), "CN=rsa-2048"},
	{"apksigner order and quoting", d.Name(
		[]d.AVA{{OID: "2.5.4.6", Value: d.Printable("RU")}},
		[]d.AVA{{OID: "2.5.4.8", Value: d.UTF8("Moscow Obl")}},
		[]d.AVA{{OID: "2.5.4.7", Value: d.UTF8("Moscow")}},
		[]d.AVA{{OID: "2.5.4.10", Value: d.UTF8("Example, Inc.")}},
		[]d.AVA{{OID: "2.5.4.11", Value: d.UTF8("Dev")}, {OID: "2.5.4.11", Value: d.UTF8("Sec")}},
		[]d.AVA{{OID: "2.5.4.3", Value: d.UTF8(`  John "Q" Doe`)}},
		[]d.AVA{{OID: "1.2.840.113549.1.9.1", Value: d.Tag(0x16, []byte("j@x.org"))}},
		[]d.AVA{{OID: "2.5.4.5", Value: d.Printable("123")}},
		[]d.AVA{{OID: "0.9.2342.19200300.100.1.25", Value: d.Tag(0x16, []byte("com"))}},
		[]d.AVA{{OID: "2.5.4.12", Value: d.UTF8("T1")}},
	), `T=T1, DC=com, SERIALNUMBER=123, EMAILADDRESS=j@x.org, CN="  John \"Q\" Doe", OU=Dev + OU=Sec, O="Example, Inc.", L=Moscow, ST=Moscow Obl, C=RU`},
	{"string types", d.Name(
		[]d.AVA{{OID: "2.5.4.3", Value: d.Tag(0x1e, []byte{0x04, 0x1f, 0x04, 0x40, 0x00, 0x20, 0x00, 0x41})}}, // BMPString "Пр A"
		[]d.AVA{{OID: "2.5.4.10", Value: d.Tag(0x14, []byte{'C', 'a', 'f', 0xe9})}},                           // T61String, Latin-1
		[]d.AVA{{OID: "2.5.4.11", Value: d.Tag(0x16, []byte("ia5"))}},
		[]d.AVA{{OID: "2.5.4.7", Value: d.Tag(0x1c, []byte{0, 0, 0, 'u', 0, 1, 0xf6, 0x00})}}, // UniversalString "u😀"
		[]d.AVA{{OID: "2.5.4.8", Value: d.Tag(0x1b, []byte("gen"))}},                          // GeneralString
	), "ST=gen, L=u\U0001F600, OU=ia5, O=Caf\u00e9, CN=\u041f\u0440 A"},
	{"non-string values and unknown attributes", d.Name(
		[]d.AVA{{OID: "1.2.3.4", Value: d.UTF8("x")}},
		[]d.AVA{{OID: "2.5.4.3", Value: d.SmallInt(5)}},
		[]d.AVA{{OID: "2.5.4.11", Value: d.Tag(0x12, []byte("123"))}}, // NumericString
		[]d.AVA{{OID: "2.5.4.10", Value: d.Tag(0x1a, []byte("vis"))}}, // VisibleString
	), "O=#1a03766973, OU=#1203313233, CN=#020105, OID.1.2.3.4=x"},
	{"multi-valued RDN in unsorted order", d.Name(
		[]d.AVA{{OID: "2.5.4.11", Value: d.UTF8("Zed")}, {OID: "2.5.4.3", Value: d.UTF8("Abc")}, {OID: "2.5.4.11", Value: d.Printable("Mid")}},
	), "OU=Zed + CN=Abc + OU=Mid"},
	{"special characters", d.Name(
		[]d.AVA{{OID: "2.5.4.3", Value: d.UTF8("a+b")}},
		[]d.AVA{{OID: "2.5.4.3", Value: d.UTF8("#hash")}},
		[]d.AVA{{OID: "2.5.4.3", Value: d.UTF8("trailing ")}},
		[]d.AVA{{OID: "2.5.4.3", Value: d.UTF8("two  spaces")}},
		[]d.AVA{{OID: "2.5.4.3", Value: d.UTF8(`back\slash`)}},
		[]d.AVA{{OID: "2.5.4.3", Value: d.UTF8(`"quoted"`)}},
		[]d.AVA{{OID: "2.5.4.3", Value: d.UTF8("new\nline")}},
		[]d.AVA{{OID: "2.5.4.3", Value: d.UTF8("semi;colon<>")}},
		[]d.AVA{{OID: "2.5.4.3", Value: d.UTF8("at@under_score*")}},
		[]d.AVA{{OID: "2.5.4.3", Value: d.UTF8("")}},
	), `CN=, CN=at@under_score*, CN="semi;colon<>", CN="new` + "\n" + `line", CN="quoted", CN="back\\slash", CN="two  spaces", CN="trailing ", CN="#hash", CN="a+b"`},
}

func TestNameString(t *testing.T) {
	for _, tc := range dnCases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cert.Parse(d.Cert(d.CertSpec{Key: testKey(t), Subject: tc.dn}))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Subject.String(); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestNameEqual(t *testing.T) {
	parse := func(n []byte) cert.Name {
		c, err := cert.Parse(d.Cert(d.CertSpec{Key: testKey(t), Subject: n}))
		if err != nil {
			t.Fatal(err)
		}
		return c.Subject
	}
	a := parse(d.Name([]d.AVA{{OID: "2.5.4.6", Value: d.Printable("RU")}}, []d.AVA{{OID: "2.5.4.3", Value: d.UTF8("Some  Name")}}))
	b := parse(d.Name([]d.AVA{{OID: "2.5.4.6", Value: d.UTF8("ru")}}, []d.AVA{{OID: "2.5.4.3", Value: d.Printable(" some name ")}}))
	c := parse(d.Name([]d.AVA{{OID: "2.5.4.6", Value: d.Printable("RU")}}, []d.AVA{{OID: "2.5.4.3", Value: d.UTF8("Other")}}))
	e := parse(d.Name([]d.AVA{{OID: "2.5.4.3", Value: d.UTF8("Some Name")}}))
	if !a.Equal(b) || !b.Equal(a) {
		t.Error("names differing in case, white space and string type should be equal")
	}
	if a.Equal(c) || a.Equal(e) {
		t.Error("different names compare equal")
	}
}

func TestKeys(t *testing.T) {
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	var dk dsa.PrivateKey
	if err := dsa.GenerateParameters(&dk.Parameters, rand.Reader, dsa.L1024N160); err != nil {
		t.Fatal(err)
	}
	if err := dsa.GenerateKey(&dk, rand.Reader); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		spki []byte
		alg  string
		size int
	}{
		{d.SPKI(&testKey(t).PublicKey), "RSA", 2048},
		{d.SPKI(&ec256.PublicKey), "EC", 256},
		{d.SPKI(&ec521.PublicKey), "EC", 521},
		{d.SPKI(&dk.PublicKey), "DSA", 1024},
	}
	for _, tc := range cases {
		c, err := cert.Parse(d.Cert(d.CertSpec{Key: testKey(t), SPKI: tc.spki}))
		if err != nil {
			t.Fatal(err)
		}
		if c.KeyAlgorithm != tc.alg || c.KeySize != tc.size || c.PublicKey == nil {
			t.Errorf("%s %d (%v), want %s %d", c.KeyAlgorithm, c.KeySize, c.PublicKeyErr, tc.alg, tc.size)
		}
		if !bytes.Equal(c.RawSubjectPublicKeyInfo, tc.spki) {
			t.Error("RawSubjectPublicKeyInfo is not the SPKI as encoded")
		}
	}
	// An EC key on a curve Android does not support, and a point off the curve.
	bad := [][]byte{
		d.Seq(d.AlgID(cert.OIDKeyEC, d.OID("1.3.132.0.10")), d.Bits(append([]byte{4}, make([]byte, 64)...))),
		d.Seq(d.AlgID(cert.OIDKeyEC, d.OID("1.2.840.10045.3.1.7")), d.Bits(append([]byte{4}, make([]byte, 64)...))),
		d.Seq(d.AlgID(cert.OIDKeyRSA, d.Null()), d.Bits(d.Seq(d.SmallInt(0), d.SmallInt(3)))),
	}
	for i, spki := range bad {
		c, err := cert.Parse(d.Cert(d.CertSpec{Key: testKey(t), SPKI: spki}))
		if err != nil {
			t.Fatal(err)
		}
		if c.PublicKey != nil || !errors.Is(c.PublicKeyErr, cert.ErrUnsupportedKey) {
			t.Errorf("bad key %d accepted: %T %v", i, c.PublicKey, c.PublicKeyErr)
		}
	}
}

func TestExtensions(t *testing.T) {
	key := testKey(t)
	ku := func(b byte) []byte { return d.Bits([]byte{b}) } // first octet of the key usage bits
	c, err := cert.Parse(d.Cert(d.CertSpec{Key: key, Extensions: [][]byte{
		d.Extension("2.5.29.15", true, ku(0x20)), // keyEncipherment only
		d.Extension("2.5.29.14", false, d.Octets([]byte{1, 2, 3})),
		d.Extension("1.2.3.4.5", false, []byte{5}),
	}}))
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyUsage == nil || c.KeyUsage[0] || c.KeyUsage[1] || !c.KeyUsage[2] {
		t.Errorf("key usage %v", c.KeyUsage)
	}
	if !bytes.Equal(c.SubjectKeyID, []byte{1, 2, 3}) || c.HasUnsupportedCriticalExtension() || c.Version != 3 {
		t.Errorf("ski %x unsupported-critical %v version %d", c.SubjectKeyID, c.HasUnsupportedCriticalExtension(), c.Version)
	}
	c, err = cert.Parse(d.Cert(d.CertSpec{Key: key, Extensions: [][]byte{d.Extension("1.2.3.4.5", true, []byte{5})}}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.HasUnsupportedCriticalExtension() || c.KeyUsage != nil {
		t.Error("unknown critical extension not reported")
	}
	if _, err := cert.Parse(d.Cert(d.CertSpec{Key: key, Extensions: [][]byte{d.Extension("2.5.29.14", false, nil), d.Extension("2.5.29.14", false, nil)}})); err == nil {
		t.Error("duplicate extension accepted")
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(suiteDir, "*.x509.*"))
	for _, p := range files {
		// The 8192- and 16384-bit RSA certificates make minimization crawl; smaller ones cover
		// the same structure.
		if b := readCert(f, filepath.Base(p)); len(b) < 1500 {
			f.Add(b)
		}
	}
	// Crafted seeds reuse a suite key: generating one in every fuzz worker is slow.
	suite, err := cert.Parse(readCert(f, "ec-p256.x509.pem"))
	if err != nil {
		f.Fatal(err)
	}
	spki := suite.RawSubjectPublicKeyInfo
	for _, tc := range dnCases {
		f.Add(d.Cert(d.CertSpec{SPKI: spki, Subject: tc.dn}))
	}
	f.Add(d.Cert(d.CertSpec{SPKI: spki, Serial: big.NewInt(-1), Extensions: [][]byte{d.Extension("2.5.29.15", true, d.Bits([]byte{0x80}))}}))
	f.Add(d.Indefinite(0x30, d.TBS(d.CertSpec{SPKI: spki}), d.AlgID("1.2.840.113549.1.1.11", d.Null()), d.Bits([]byte{1})))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := cert.Parse(b)
		if err != nil {
			if !errors.Is(err, cert.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if !bytes.Equal(c.Raw, b) {
			t.Fatal("Raw is not the whole input")
		}
		if c.Version < 1 || c.Version > 3 || c.SerialNumber == nil {
			t.Fatalf("version %d serial %v", c.Version, c.SerialNumber)
		}
		if (c.PublicKey == nil) == (c.PublicKeyErr == nil) {
			t.Fatalf("public key %T and error %v disagree", c.PublicKey, c.PublicKeyErr)
		}
		_ = c.Subject.String()
		_ = c.Issuer.String()
		_ = c.Subject.Equal(c.Issuer)
		_ = c.HasUnsupportedCriticalExtension()
	})
}
