package demoapk

import (
	"archive/zip"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math/big"
	"sort"
	"time"
	"unicode/utf16"
)

// Key is a signing key and its self-signed certificate.
type Key struct {
	Private *rsa.PrivateKey
	Cert    []byte // DER
}

// CertSHA256 is the hex SHA-256 of the certificate: the digest a policy pins.
func (k *Key) CertSHA256() string {
	d := sha256.Sum256(k.Cert)
	return hex.EncodeToString(d[:])
}

// NewKey generates a 2048-bit RSA key with a self-signed certificate named cn.
func NewKey(cn string) (*Key, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating a key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"provkit demo"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(20 * 365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, fmt.Errorf("making a certificate: %w", err)
	}
	return &Key{Private: priv, Cert: der}, nil
}

// Spec describes an APK.
type Spec struct {
	Package     string
	VersionCode int32
	VersionName string
	MinSDK      int32 // at least 24, so that a v2 signature alone is enough
	TargetSDK   int32
	Permissions []string
	// Declares are <permission> elements (name -> protectionLevel as text, "signature|privileged"),
	// as framework-res.apk declares the platform's permissions. The protectionLevel attribute is
	// written as a string without a resource ID: provkit's reader takes it, Android would not.
	Declares map[string]string
	// Asset is stored (uncompressed) as assets/demo.bin; nil: a short text.
	Asset []byte
}

// Build returns a signed APK.
func Build(spec Spec, key *Key) ([]byte, error) {
	if spec.MinSDK < 24 {
		spec.MinSDK = 24
	}
	if spec.TargetSDK == 0 {
		spec.TargetSDK = 34
	}
	if spec.VersionName == "" {
		spec.VersionName = fmt.Sprint(spec.VersionCode)
	}
	if spec.Asset == nil {
		spec.Asset = []byte("provkit demo app\n")
	}
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for _, e := range []struct {
		name string
		data []byte
	}{{"AndroidManifest.xml", Manifest(spec)}, {"assets/demo.bin", spec.Asset}} {
		h := &zip.FileHeader{Name: e.name, Method: zip.Store, CRC32: crc32.ChecksumIEEE(e.data),
			CompressedSize64: uint64(len(e.data)), UncompressedSize64: uint64(len(e.data))}
		h.Modified = time.Date(2008, 1, 1, 0, 0, 0, 0, time.UTC)
		w, err := zw.CreateRaw(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return SignV2(zb.Bytes(), key)
}

// AssetOffset returns where assets/demo.bin's bytes start in apk (to make tampered copies).
func AssetOffset(apk []byte) (int64, error) {
	zr, err := zip.NewReader(bytes.NewReader(apk), int64(len(apk)))
	if err != nil {
		return 0, err
	}
	for _, f := range zr.File {
		if f.Name == "assets/demo.bin" {
			return f.DataOffset()
		}
	}
	return 0, errors.New("no assets/demo.bin")
}

// Attribute resource IDs of the android framework.
const (
	attrName             = 0x01010003
	attrMinSdkVersion    = 0x0101020c
	attrVersionCode      = 0x0101021b
	attrVersionName      = 0x0101021c
	attrTargetSdkVersion = 0x01010270
)

const (
	typeString = 0x03
	typeIntDec = 0x10
)

type attr struct {
	ns, name int32 // string indexes (ns -1: none)
	raw      int32 // string index of the raw value, -1 for integers
	dataType uint8
	data     uint32
}

// Manifest compiles the APK's AndroidManifest.xml to binary XML.
func Manifest(spec Spec) []byte {
	// Attribute names with resource IDs come first, in the order of the resource map.
	strs := []string{"name", "minSdkVersion", "versionCode", "versionName", "targetSdkVersion",
		"android", "http://schemas.android.com/apk/res/android", "package", "manifest", "uses-sdk", "uses-permission",
		spec.Package, spec.VersionName}
	resIDs := []uint32{attrName, attrMinSdkVersion, attrVersionCode, attrVersionName, attrTargetSdkVersion}
	idx := func(s string) int32 {
		for i, x := range strs {
			if x == s {
				return int32(i)
			}
		}
		strs = append(strs, s)
		return int32(len(strs) - 1)
	}
	for _, p := range spec.Permissions {
		idx(p)
	}
	const (
		sName, sMin, sVC, sVN, sTarget = 0, 1, 2, 3, 4
		sAndroid, sURI, sPackage       = 5, 6, 7
		sManifest, sUsesSdk, sUsesPerm = 8, 9, 10
	)
	var body bytes.Buffer
	le := binary.LittleEndian
	put := func(v any) { _ = binary.Write(&body, le, v) }
	node := func(typ uint16, size uint32) {
		put(typ)
		put(uint16(16))
		put(size)
		put(uint32(1))          // line number
		put(uint32(0xffffffff)) // comment
	}
	startNS := func() { node(0x0100, 24); put(uint32(sAndroid)); put(uint32(sURI)) }
	endNS := func() { node(0x0101, 24); put(uint32(sAndroid)); put(uint32(sURI)) }
	start := func(name int32, attrs []attr) {
		node(0x0102, uint32(16+20+20*len(attrs)))
		put(int32(-1))
		put(name)
		put(uint16(20))
		put(uint16(20))
		put(uint16(len(attrs)))
		put(uint16(0))
		put(uint16(0))
		put(uint16(0))
		for _, a := range attrs {
			put(a.ns)
			put(a.name)
			put(a.raw)
			put(uint16(8))
			put(uint8(0))
			put(a.dataType)
			put(a.data)
		}
	}
	end := func(name int32) { node(0x0103, 24); put(int32(-1)); put(name) }
	intAttr := func(name int32, v int32) attr {
		return attr{ns: sURI, name: name, raw: -1, dataType: typeIntDec, data: uint32(v)}
	}
	strAttr := func(ns, name, val int32) attr {
		return attr{ns: ns, name: name, raw: val, dataType: typeString, data: uint32(val)}
	}
	startNS()
	start(sManifest, []attr{intAttr(sVC, spec.VersionCode), strAttr(sURI, sVN, idx(spec.VersionName)), strAttr(-1, sPackage, idx(spec.Package))})
	start(sUsesSdk, []attr{intAttr(sMin, spec.MinSDK), intAttr(sTarget, spec.TargetSDK)})
	end(sUsesSdk)
	for _, p := range spec.Permissions {
		start(sUsesPerm, []attr{strAttr(sURI, sName, idx(p))})
		end(sUsesPerm)
	}
	declared := make([]string, 0, len(spec.Declares))
	for p := range spec.Declares {
		declared = append(declared, p)
	}
	sort.Strings(declared)
	for _, p := range declared {
		el, lvl := idx("permission"), idx("protectionLevel")
		start(el, []attr{strAttr(sURI, sName, idx(p)), strAttr(sURI, lvl, idx(spec.Declares[p]))})
		end(el)
	}
	end(sManifest)
	endNS()

	pool := stringPool(strs)
	var rm bytes.Buffer
	_ = binary.Write(&rm, le, uint16(0x0180))
	_ = binary.Write(&rm, le, uint16(8))
	_ = binary.Write(&rm, le, uint32(8+4*len(resIDs)))
	for _, id := range resIDs {
		_ = binary.Write(&rm, le, id)
	}
	var out bytes.Buffer
	total := 8 + len(pool) + rm.Len() + body.Len()
	_ = binary.Write(&out, le, uint16(0x0003))
	_ = binary.Write(&out, le, uint16(8))
	_ = binary.Write(&out, le, uint32(total))
	out.Write(pool)
	out.Write(rm.Bytes())
	out.Write(body.Bytes())
	return out.Bytes()
}

// stringPool encodes strings as a UTF-16 string pool chunk.
func stringPool(strs []string) []byte {
	le := binary.LittleEndian
	var data bytes.Buffer
	offsets := make([]uint32, len(strs))
	for i, s := range strs {
		offsets[i] = uint32(data.Len())
		u := utf16.Encode([]rune(s))
		_ = binary.Write(&data, le, uint16(len(u)))
		_ = binary.Write(&data, le, u)
		_ = binary.Write(&data, le, uint16(0))
	}
	for data.Len()%4 != 0 {
		data.WriteByte(0)
	}
	const header = 28
	stringsStart := header + 4*len(strs)
	var out bytes.Buffer
	_ = binary.Write(&out, le, uint16(0x0001))
	_ = binary.Write(&out, le, uint16(header))
	_ = binary.Write(&out, le, uint32(stringsStart+data.Len()))
	_ = binary.Write(&out, le, uint32(len(strs)))
	_ = binary.Write(&out, le, uint32(0)) // styles
	_ = binary.Write(&out, le, uint32(0)) // flags: UTF-16, unsorted
	_ = binary.Write(&out, le, uint32(stringsStart))
	_ = binary.Write(&out, le, uint32(0))
	for _, o := range offsets {
		_ = binary.Write(&out, le, o)
	}
	out.Write(data.Bytes())
	return out.Bytes()
}

func lp(b []byte) []byte {
	out := make([]byte, 4, 4+len(b))
	binary.LittleEndian.PutUint32(out, uint32(len(b)))
	return append(out, b...)
}

func u32(v uint32) []byte { b := make([]byte, 4); binary.LittleEndian.PutUint32(b, v); return b }

const (
	sigRSAPKCS1SHA256 = 0x0103
	blockIDV2         = 0x7109871a
	chunkSize         = 1 << 20
)

// chunkedSHA256 is the v2 content digest over the given sections.
func chunkedSHA256(sections ...[]byte) []byte {
	var digests []byte
	n := 0
	for _, s := range sections {
		for off := 0; off < len(s); off += chunkSize {
			end := min(off+chunkSize, len(s))
			h := sha256.New()
			h.Write([]byte{0xa5})
			h.Write(u32(uint32(end - off)))
			h.Write(s[off:end])
			digests = h.Sum(digests)
			n++
		}
	}
	h := sha256.New()
	h.Write([]byte{0x5a})
	h.Write(u32(uint32(n)))
	h.Write(digests)
	return h.Sum(nil)
}

// SignV2 signs a ZIP (with no comment and no signing block) with APK Signature Scheme v2.
func SignV2(z []byte, key *Key) ([]byte, error) {
	if len(z) < 22 || binary.LittleEndian.Uint32(z[len(z)-22:]) != 0x06054b50 {
		return nil, errors.New("signing: the ZIP must end with an end of central directory record and no comment")
	}
	eocd := append([]byte(nil), z[len(z)-22:]...)
	cdSize := int(binary.LittleEndian.Uint32(eocd[12:]))
	cdOff := int(binary.LittleEndian.Uint32(eocd[16:]))
	if cdOff+cdSize != len(z)-22 {
		return nil, errors.New("signing: the central directory does not end where the record says")
	}
	entries, cd := z[:cdOff], z[cdOff:cdOff+cdSize]
	digest := chunkedSHA256(entries, cd, eocd)

	var digests, certs []byte
	digests = append(digests, lp(append(u32(sigRSAPKCS1SHA256), lp(digest)...))...)
	certs = append(certs, lp(key.Cert)...)
	signedData := append(append(lp(digests), lp(certs)...), lp(nil)...)
	h := sha256.Sum256(signedData)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key.Private, crypto.SHA256, h[:])
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.Private.PublicKey)
	if err != nil {
		return nil, err
	}
	sigs := lp(append(u32(sigRSAPKCS1SHA256), lp(sig)...))
	signer := append(append(lp(signedData), lp(sigs)...), lp(spki)...)
	v2 := lp(lp(signer))

	var pair bytes.Buffer
	_ = binary.Write(&pair, binary.LittleEndian, uint64(4+len(v2)))
	pair.Write(u32(blockIDV2))
	pair.Write(v2)
	size := uint64(pair.Len() + 8 + 16)
	var block bytes.Buffer
	_ = binary.Write(&block, binary.LittleEndian, size)
	block.Write(pair.Bytes())
	_ = binary.Write(&block, binary.LittleEndian, size)
	block.WriteString("APK Sig Block 42")

	binary.LittleEndian.PutUint32(eocd[16:], uint32(cdOff+block.Len()))
	out := make([]byte, 0, len(z)+block.Len())
	out = append(out, entries...)
	out = append(out, block.Bytes()...)
	out = append(out, cd...)
	return append(out, eocd...), nil
}
