package jartest

import (
	"archive/zip"
	"bytes"
	"crypto"
	"crypto/dsa" //nolint:staticcheck // DSA-signed JARs exist in the wild.
	"crypto/ecdsa"
	"crypto/md5" //nolint:gosec // old manifests use MD5
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the common JAR digest
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
	"math/big"
	"strings"

	"github.com/provkit/provkit/firmware/apk/cert"
	d "github.com/provkit/provkit/firmware/apk/internal/dertest"
)

// File is one ZIP entry.
type File struct {
	Name   string
	Data   []byte
	Stored bool // store instead of deflate
}

// Signer describes one JAR signer.
type Signer struct {
	Name string // base name: META-INF/<Name>.SF and .RSA/.DSA/.EC
	// Key is a *rsa.PrivateKey, *ecdsa.PrivateKey or *dsa.PrivateKey.
	Key  any
	Cert []byte // the signer's certificate (DER or BER)
	// BlockExt overrides the signature block extension (default from the key: RSA, EC, DSA).
	BlockExt string
	// DigestOID and SigOID are the SignerInfo algorithms (default SHA-256 and the key's
	// algorithm OID).
	DigestOID, SigOID string
	// SignedAttrs adds content-type and message-digest signed attributes.
	SignedAttrs bool
	// Attrs, when set, replaces the signed attributes (each an encoded Attribute).
	Attrs [][]byte
	// ExtraCerts are put in the certificate bag before Cert.
	ExtraCerts [][]byte
	// ExtraSignerInfos are appended after this signer's SignerInfo (encoded);
	// LeadingSignerInfos come before it.
	ExtraSignerInfos, LeadingSignerInfos [][]byte
	// Bag, when set, replaces the certificate bag (ExtraCerts and Cert).
	Bag [][]byte
	// EditBlock edits the encoded signature block.
	EditBlock func([]byte) []byte
	// SFDigests lists the digest algorithms of the .SF ("SHA-256", "SHA1", "SHA-1" means SHA1
	// attribute name, "MD5"); default {"SHA-256"}.
	SFDigests []string
	// NoManifestDigest and NoMainAttributesDigest leave those attributes out of the .SF.
	NoManifestDigest, NoMainAttributesDigest bool
	// APKSigned is the X-Android-APK-Signed value ("" leaves it out).
	APKSigned string
	// CreatedBy is the .SF Created-By value (default "1.0 (provkit jartest)").
	CreatedBy string
	// Skip lists entries left out of the .SF.
	Skip map[string]bool
	// EditSF edits the .SF after it is built and before it is signed; EditSignedSF after.
	EditSF, EditSignedSF func([]byte) []byte
}

// Spec describes a v1-signed APK.
type Spec struct {
	Files []File
	// ManifestDigests lists the per-entry digest algorithms of the manifest, default
	// {"SHA-256"}.
	ManifestDigests []string
	// DigestAlgorithms, when set, adds a Digest-Algorithms attribute to every manifest section.
	DigestAlgorithms string
	// SkipInManifest lists entries left out of the manifest.
	SkipInManifest map[string]bool
	// EditManifest edits the manifest after it is built and before the .SF files digest it.
	EditManifest func([]byte) []byte
	// EditSignedManifest edits the manifest after signing.
	EditSignedManifest func([]byte) []byte
	Signers            []Signer
	// Extra are entries added after signing (not in the manifest).
	Extra []File
	// Replace replaces the data of entries after signing.
	Replace map[string][]byte
}

func hasher(alg string) (hash.Hash, string) {
	switch strings.ToUpper(alg) {
	case "SHA1", "SHA-1":
		return sha1.New(), "SHA1" //nolint:gosec // see import
	case "SHA-256":
		return sha256.New(), "SHA-256"
	case "SHA-384":
		return sha512.New384(), "SHA-384"
	case "SHA-512":
		return sha512.New(), "SHA-512"
	case "MD5":
		return md5.New(), "MD5" //nolint:gosec // see import
	}
	panic("jartest: unknown digest " + alg)
}

func digestB64(alg string, b []byte) (string, string) {
	h, name := hasher(alg)
	h.Write(b)
	return name, base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// writeAttr writes "name: value" wrapped at 72 bytes per line, as JAR tools do.
func writeAttr(w *bytes.Buffer, name, value string) {
	line := []byte(name + ": " + value)
	first := true
	for len(line) > 0 {
		n := 72
		if !first {
			w.WriteByte(' ')
			n = 71
		}
		if n > len(line) {
			n = len(line)
		}
		w.Write(line[:n])
		w.WriteString("\r\n")
		line = line[n:]
		first = false
	}
}

// manifestSections returns the manifest and the byte range of each named section.
func buildManifest(spec Spec) ([]byte, map[string][2]int) {
	var w bytes.Buffer
	writeAttr(&w, "Manifest-Version", "1.0")
	writeAttr(&w, "Created-By", "1.0 (provkit jartest)")
	w.WriteString("\r\n")
	algs := spec.ManifestDigests
	if algs == nil {
		algs = []string{"SHA-256"}
	}
	ranges := map[string][2]int{}
	for _, f := range spec.Files {
		// Like JAR signers, leave directories and the signature's own files out.
		if spec.SkipInManifest[f.Name] || strings.HasSuffix(f.Name, "/") || strings.HasPrefix(f.Name, "META-INF/") && isSigFile(f.Name) {
			continue
		}
		start := w.Len()
		writeAttr(&w, "Name", f.Name)
		if spec.DigestAlgorithms != "" {
			writeAttr(&w, "Digest-Algorithms", spec.DigestAlgorithms)
		}
		for _, a := range algs {
			name, v := digestB64(a, f.Data)
			writeAttr(&w, name+"-Digest", v)
		}
		w.WriteString("\r\n")
		ranges[f.Name] = [2]int{start, w.Len()}
	}
	return w.Bytes(), ranges
}

func isSigFile(n string) bool {
	return n == "META-INF/MANIFEST.MF" || strings.HasSuffix(n, ".SF") || strings.HasSuffix(n, ".RSA") || strings.HasSuffix(n, ".DSA") || strings.HasSuffix(n, ".EC")
}

// sectionRanges finds the main section's end and the named sections of a (possibly edited)
// manifest: lines end with CRLF or LF, a blank line ends a section, a line starting with a space
// continues the previous one.
func sectionRanges(mf []byte) (mainEnd int, ranges map[string][2]int) {
	ranges = map[string][2]int{}
	start, pos := 0, 0
	var first string
	inMain, inFirst := true, false
	for pos < len(mf) {
		end := bytes.IndexByte(mf[pos:], '\n')
		next := len(mf)
		line := mf[pos:]
		if end >= 0 {
			next = pos + end + 1
			line = mf[pos : pos+end]
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case len(line) == 0:
			if inMain {
				mainEnd, inMain = next, false
			} else if strings.HasPrefix(first, "Name: ") {
				ranges[first[len("Name: "):]] = [2]int{start, next}
			}
			start, first, inFirst = next, "", false
		case line[0] == ' ' && inFirst:
			first += string(line[1:])
		case first == "":
			first, inFirst = string(line), true
		default:
			inFirst = false
		}
		pos = next
	}
	if inMain {
		mainEnd = len(mf)
	}
	return mainEnd, ranges
}

func buildSF(s Signer, mf []byte) []byte {
	var w bytes.Buffer
	writeAttr(&w, "Signature-Version", "1.0")
	createdBy := s.CreatedBy
	if createdBy == "" {
		createdBy = "1.0 (provkit jartest)"
	}
	writeAttr(&w, "Created-By", createdBy)
	algs := s.SFDigests
	if algs == nil {
		algs = []string{"SHA-256"}
	}
	mainEnd, ranges := sectionRanges(mf)
	for _, a := range algs {
		if !s.NoManifestDigest {
			name, v := digestB64(a, mf)
			writeAttr(&w, name+"-Digest-Manifest", v)
		}
		if !s.NoMainAttributesDigest {
			name, v := digestB64(a, mf[:mainEnd])
			writeAttr(&w, name+"-Digest-Manifest-Main-Attributes", v)
		}
	}
	if s.APKSigned != "" {
		writeAttr(&w, "X-Android-APK-Signed", s.APKSigned)
	}
	w.WriteString("\r\n")
	// Sections in manifest order.
	type sec struct {
		name string
		r    [2]int
	}
	var secs []sec
	for n, r := range ranges {
		secs = append(secs, sec{n, r})
	}
	for i := range secs {
		for j := i + 1; j < len(secs); j++ {
			if secs[j].r[0] < secs[i].r[0] {
				secs[i], secs[j] = secs[j], secs[i]
			}
		}
	}
	for _, sc := range secs {
		if s.Skip[sc.name] {
			continue
		}
		writeAttr(&w, "Name", sc.name)
		for _, a := range algs {
			name, v := digestB64(a, mf[sc.r[0]:sc.r[1]])
			writeAttr(&w, name+"-Digest", v)
		}
		w.WriteString("\r\n")
	}
	return w.Bytes()
}

var digestOIDs = map[string]crypto.Hash{
	"1.2.840.113549.2.5":     crypto.MD5,
	"1.3.14.3.2.26":          crypto.SHA1,
	"2.16.840.1.101.3.4.2.4": crypto.SHA224,
	"2.16.840.1.101.3.4.2.1": crypto.SHA256,
	"2.16.840.1.101.3.4.2.2": crypto.SHA384,
	"2.16.840.1.101.3.4.2.3": crypto.SHA512,
}

var sigOIDHashes = map[string]crypto.Hash{
	"1.2.840.113549.1.1.4": crypto.MD5, "1.2.840.113549.1.1.5": crypto.SHA1,
	"1.2.840.113549.1.1.14": crypto.SHA224, "1.2.840.113549.1.1.11": crypto.SHA256,
	"1.2.840.113549.1.1.12": crypto.SHA384, "1.2.840.113549.1.1.13": crypto.SHA512,
	"1.2.840.10040.4.3": crypto.SHA1, "2.16.840.1.101.3.4.3.1": crypto.SHA224,
	"2.16.840.1.101.3.4.3.2": crypto.SHA256,
	"1.2.840.10045.4.1":      crypto.SHA1, "1.2.840.10045.4.3.1": crypto.SHA224,
	"1.2.840.10045.4.3.2": crypto.SHA256, "1.2.840.10045.4.3.3": crypto.SHA384,
	"1.2.840.10045.4.3.4": crypto.SHA512,
}

// Attribute encodes one signed attribute with the given values.
func Attribute(oid string, values ...[]byte) []byte {
	return d.Seq(d.OID(oid), d.Set(values...))
}

// SignerInfo builds the SignerInfo of s over content (the .SF bytes).
func SignerInfo(s Signer, content []byte) []byte {
	c, err := cert.Parse(s.Cert)
	if err != nil {
		panic(fmt.Sprintf("jartest: signer certificate: %v", err))
	}
	digestOID, sigOID := s.DigestOID, s.SigOID
	if digestOID == "" {
		digestOID = "2.16.840.1.101.3.4.2.1"
	}
	if sigOID == "" {
		sigOID = c.PublicKeyAlgorithmOID
	}
	dh := digestOIDs[digestOID]
	sh, ok := sigOIDHashes[sigOID]
	if !ok {
		sh = dh
	}
	signed := content
	var attrsField []byte
	if s.SignedAttrs || s.Attrs != nil {
		attrs := s.Attrs
		if attrs == nil {
			h := dh.New()
			h.Write(content)
			attrs = [][]byte{
				Attribute("1.2.840.113549.1.9.3", d.OID("1.2.840.113549.1.7.1")),
				Attribute("1.2.840.113549.1.9.4", d.Octets(h.Sum(nil))),
			}
		}
		attrsField = d.Tag(0xa0, attrs...)
		signed = append([]byte{0x31}, attrsField[1:]...)
	}
	var sig []byte
	switch k := s.Key.(type) {
	case *rsa.PrivateKey:
		sig = d.Sign(k, sh, signed)
	case *ecdsa.PrivateKey:
		sig = d.Sign(k, sh, signed)
	case *dsa.PrivateKey:
		h := sh.New()
		h.Write(signed)
		sig = d.SignDSA(k, h.Sum(nil))
	default:
		panic(fmt.Sprintf("jartest: key %T", s.Key))
	}
	parts := [][]byte{
		d.SmallInt(1),
		d.Seq(c.Issuer.Raw, d.Int(c.SerialNumber)),
		d.AlgID(digestOID, d.Null()),
	}
	if attrsField != nil {
		parts = append(parts, attrsField)
	}
	parts = append(parts, d.AlgID(sigOID, d.Null()), d.Octets(sig))
	return d.Seq(parts...)
}

// Block builds the PKCS#7 signature block of s over content.
func Block(s Signer, content []byte) []byte {
	certs := append(append([][]byte{}, s.ExtraCerts...), s.Cert)
	if s.Bag != nil {
		certs = s.Bag
	}
	digestOID := s.DigestOID
	if digestOID == "" {
		digestOID = "2.16.840.1.101.3.4.2.1"
	}
	infos := append(append(append([][]byte{}, s.LeadingSignerInfos...), SignerInfo(s, content)), s.ExtraSignerInfos...)
	sd := d.Seq(
		d.SmallInt(1),
		d.Set(d.AlgID(digestOID, d.Null())),
		d.Seq(d.OID("1.2.840.113549.1.7.1")),
		d.Tag(0xa0, certs...),
		d.Set(infos...),
	)
	return d.Seq(d.OID("1.2.840.113549.1.7.2"), d.Explicit(0, sd))
}

func blockExt(s Signer) string {
	if s.BlockExt != "" {
		return s.BlockExt
	}
	switch s.Key.(type) {
	case *ecdsa.PrivateKey:
		return "EC"
	case *dsa.PrivateKey:
		return "DSA"
	}
	return "RSA"
}

// Build returns the signed APK (a ZIP) described by spec.
func Build(spec Spec) []byte {
	mf, _ := buildManifest(spec)
	if spec.EditManifest != nil {
		mf = spec.EditManifest(mf)
	}
	type meta struct {
		name string
		data []byte
	}
	var metas []meta
	for _, s := range spec.Signers {
		sf := buildSF(s, mf)
		if s.EditSF != nil {
			sf = s.EditSF(sf)
		}
		block := Block(s, sf)
		if s.EditBlock != nil {
			block = s.EditBlock(block)
		}
		if s.EditSignedSF != nil {
			sf = s.EditSignedSF(sf)
		}
		metas = append(metas, meta{"META-INF/" + s.Name + ".SF", sf}, meta{"META-INF/" + s.Name + "." + blockExt(s), block})
	}
	if spec.EditSignedManifest != nil {
		mf = spec.EditSignedManifest(mf)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, data []byte, stored bool) {
		m := zip.Deflate
		if stored {
			m = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: m})
		if err != nil {
			panic(err)
		}
		if _, err := w.Write(data); err != nil {
			panic(err)
		}
	}
	add("META-INF/MANIFEST.MF", mf, false)
	for _, m := range metas {
		add(m.name, m.data, false)
	}
	for _, f := range spec.Files {
		data := f.Data
		if r, ok := spec.Replace[f.Name]; ok {
			data = r
		}
		add(f.Name, data, f.Stored)
	}
	for _, f := range spec.Extra {
		add(f.Name, f.Data, f.Stored)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// SelfSigned returns a certificate for key with subject CN=cn.
func SelfSigned(key any, cn string, serial int64) []byte {
	var pub crypto.PublicKey
	switch k := key.(type) {
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	case *dsa.PrivateKey:
		pub = &k.PublicKey
	}
	return d.Cert(d.CertSpec{SPKI: d.SPKI(pub), Subject: d.CN(cn), Serial: big.NewInt(serial)})
}
