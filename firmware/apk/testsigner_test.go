package apk

// A small APK writer and v2/v3 signer for tests: it builds fixtures without Java, including huge
// sparse APKs and rotation lineages. It writes what the format documents, independently of the
// verifier's code paths (its own length-prefix encoding, its own chunk digests).

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math/big"
	"os"
	"testing"
	"time"
)

type testKey struct {
	signer crypto.Signer
	cert   []byte
	algID  uint32 // v2/v3 signature algorithm
}

// newTestKey makes a self-signed certificate; kind is "rsa" or "ec".
func newTestKey(t testing.TB, cn, kind string) *testKey {
	t.Helper()
	var s crypto.Signer
	var alg uint32
	switch kind {
	case "ec":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, alg = k, 0x0201
	default:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		s, alg = k, 0x0103
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"provkit tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour * 365),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Public(), s)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{signer: s, cert: der, algID: alg}
}

func (k *testKey) sign(t testing.TB, data []byte) []byte {
	t.Helper()
	d := sha256.Sum256(data)
	sig, err := k.signer.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func (k *testKey) spki(t testing.TB) []byte {
	b, err := x509.MarshalPKIXPublicKey(k.signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// zipIn is an entry to write. Size > len(Data) with Data nil writes Size zero bytes as a hole
// (the file stays sparse).
type zipIn struct {
	Name     string
	Data     []byte
	Size     int64
	Deflate  bool
	crc      uint32
	lfhOff   int64
	csize    int64
	usize    int64
	method   uint16
	compData []byte
}

// writeTestZip writes a ZIP archive (no data descriptors) to path.
func writeTestZip(t testing.TB, path string, entries []zipIn) {
	writeTestZipOpts(t, path, entries, false)
}

// writeTestZipOpts writes a ZIP archive, with a ZIP64 End of Central Directory when zip64.
func writeTestZipOpts(t testing.TB, path string, entries []zipIn, zip64 bool) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	le := binary.LittleEndian
	var off int64
	for i := range entries {
		e := &entries[i]
		e.lfhOff = off
		if e.Data == nil && e.Size > 0 {
			e.crc = zeroCRC(e.Size)
			e.usize, e.csize = e.Size, e.Size
		} else {
			e.crc = crc32.ChecksumIEEE(e.Data)
			e.usize = int64(len(e.Data))
			e.compData = e.Data
			if e.Deflate {
				var b bytes.Buffer
				w, _ := flate.NewWriter(&b, flate.BestCompression)
				w.Write(e.Data)
				w.Close()
				e.compData, e.method = b.Bytes(), 8
			}
			e.csize = int64(len(e.compData))
		}
		h := make([]byte, 30)
		le.PutUint32(h, lfhSig)
		le.PutUint16(h[4:], 20)
		le.PutUint16(h[8:], e.method)
		le.PutUint32(h[14:], e.crc)
		le.PutUint32(h[18:], uint32(e.csize))
		le.PutUint32(h[22:], uint32(e.usize))
		le.PutUint16(h[26:], uint16(len(e.Name)))
		f.WriteAt(h, off)
		f.WriteAt([]byte(e.Name), off+30)
		off += 30 + int64(len(e.Name))
		if e.compData != nil {
			f.WriteAt(e.compData, off)
		}
		off += e.csize
	}
	var cd bytes.Buffer
	for _, e := range entries {
		r := make([]byte, 46)
		le.PutUint32(r, cdRecordSig)
		le.PutUint16(r[4:], 20)
		le.PutUint16(r[6:], 20)
		le.PutUint16(r[10:], e.method)
		le.PutUint32(r[16:], e.crc)
		le.PutUint32(r[20:], uint32(e.csize))
		le.PutUint32(r[24:], uint32(e.usize))
		le.PutUint16(r[28:], uint16(len(e.Name)))
		le.PutUint32(r[42:], uint32(e.lfhOff))
		cd.Write(r)
		cd.WriteString(e.Name)
	}
	eocd := make([]byte, 22)
	le.PutUint32(eocd, eocdSig)
	le.PutUint16(eocd[8:], uint16(len(entries)))
	le.PutUint16(eocd[10:], uint16(len(entries)))
	le.PutUint32(eocd[12:], uint32(cd.Len()))
	le.PutUint32(eocd[16:], uint32(off))
	f.WriteAt(cd.Bytes(), off)
	if zip64 {
		recOff := off + int64(cd.Len())
		rec := make([]byte, 56)
		le.PutUint32(rec, zip64EOCDSig)
		le.PutUint64(rec[4:], 44)
		le.PutUint16(rec[12:], 45)
		le.PutUint16(rec[14:], 45)
		le.PutUint64(rec[24:], uint64(len(entries)))
		le.PutUint64(rec[32:], uint64(len(entries)))
		le.PutUint64(rec[40:], uint64(cd.Len()))
		le.PutUint64(rec[48:], uint64(off))
		loc := make([]byte, 20)
		le.PutUint32(loc, zip64LocatorSig)
		le.PutUint64(loc[8:], uint64(recOff))
		le.PutUint32(loc[16:], 1)
		le.PutUint16(eocd[8:], 0xffff)
		le.PutUint16(eocd[10:], 0xffff)
		le.PutUint32(eocd[12:], 0xffffffff)
		le.PutUint32(eocd[16:], 0xffffffff)
		f.WriteAt(cat(rec, loc), recOff)
		off += 76
	}
	if _, err := f.WriteAt(eocd, off+int64(cd.Len())); err != nil {
		t.Fatal(err)
	}
}

func zeroCRC(n int64) uint32 {
	buf := make([]byte, 1<<20)
	var c uint32
	for n > 0 {
		k := min(n, int64(len(buf)))
		c = crc32.Update(c, crc32.IEEETable, buf[:k])
		n -= k
	}
	return c
}

// encoding helpers, written apart from the verifier's reader
func u32(v uint32) []byte { b := make([]byte, 4); binary.LittleEndian.PutUint32(b, v); return b }
func pfx(parts ...[]byte) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		b.Write(p)
	}
	return append(u32(uint32(b.Len())), b.Bytes()...)
}
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

type signConf struct {
	v2, v3         bool
	v3Min, v3Max   uint32
	lineage        []*testKey // v3 rotation: oldest first, ending with the signing key
	v2Key          *testKey   // defaults to the oldest lineage key or the signing key
	extraV3Attrs   [][]byte
	corruptDigest  bool
	tamperAfterSig func(f *os.File)
}

// signTestAPK adds an APK Signing Block with v2 and/or v3 signatures to the ZIP at path, in place.
func signTestAPK(t testing.TB, path string, key *testKey, c signConf) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	size := st.Size()
	le := binary.LittleEndian
	eocd := make([]byte, 22)
	f.ReadAt(eocd, size-22)
	cdOff, cdSize := int64(le.Uint32(eocd[16:])), int64(le.Uint32(eocd[12:]))
	zip64 := cdOff == 0xffffffff
	if zip64 {
		loc := make([]byte, 20)
		f.ReadAt(loc, size-22-20)
		rec := make([]byte, 56)
		f.ReadAt(rec, int64(le.Uint64(loc[8:])))
		cdOff, cdSize = int64(le.Uint64(rec[48:])), int64(le.Uint64(rec[40:]))
	}
	cd := make([]byte, cdSize)
	f.ReadAt(cd, cdOff)
	// Everything after the CD (the EOCD, or the ZIP64 record, locator and EOCD). Before signing its
	// offsets already point where the signing block will start, as the digest wants them.
	tail := make([]byte, size-cdOff-cdSize)
	f.ReadAt(tail, cdOff+cdSize)
	digest := testChunkedSHA256(t, f, cdOff, cd, tail)
	if c.corruptDigest {
		digest[0] ^= 1
	}
	v2key := c.v2Key
	if v2key == nil {
		v2key = key
		if len(c.lineage) > 0 {
			v2key = c.lineage[0]
		}
	}
	signer := func(k *testKey, v3 bool) []byte {
		digests := pfx(pfx(u32(k.algID), pfx(digest)))
		certs := pfx(pfx(k.cert))
		var attrs []byte
		if v3 {
			for _, a := range c.extraV3Attrs {
				attrs = append(attrs, pfx(a)...)
			}
			if len(c.lineage) > 1 {
				attrs = append(attrs, pfx(u32(attrProofOfRotation), testLineage(t, c.lineage))...)
			}
		} else if c.v3 {
			attrs = pfx(u32(attrStrippingProtection), u32(3))
		}
		var sd []byte
		if v3 {
			sd = cat(digests, certs, u32(c.v3Min), u32(c.v3Max), pfx(attrs))
		} else {
			sd = cat(digests, certs, pfx(attrs))
		}
		sigs := pfx(pfx(u32(k.algID), pfx(k.sign(t, sd))))
		if v3 {
			return pfx(pfx(sd), u32(c.v3Min), u32(c.v3Max), sigs, pfx(k.spki(t)))
		}
		return pfx(pfx(sd), sigs, pfx(k.spki(t)))
	}
	var pairs []byte
	pair := func(id uint32, v []byte) []byte {
		b := make([]byte, 8)
		le.PutUint64(b, uint64(4+len(v)))
		return cat(b, u32(id), v)
	}
	if c.v2 {
		pairs = append(pairs, pair(BlockV2, pfx(signer(v2key, false)))...)
	}
	if c.v3 {
		if c.v3Max == 0 {
			c.v3Min, c.v3Max = 28, 0x7fffffff
		}
		pairs = append(pairs, pair(BlockV3, pfx(signer(key, true)))...)
	}
	sz := make([]byte, 8)
	le.PutUint64(sz, uint64(len(pairs)+24))
	block := cat(sz, pairs, sz, u64(sigBlockMagicLo), u64(sigBlockMagicHi))
	if zip64 {
		le.PutUint64(tail[48:], uint64(cdOff+int64(len(block))))             // ZIP64 record: CD offset
		le.PutUint64(tail[56+8:], le.Uint64(tail[56+8:])+uint64(len(block))) // locator: record offset
	} else {
		le.PutUint32(tail[16:], uint32(cdOff+int64(len(block))))
	}
	if _, err := f.WriteAt(cat(block, cd, tail), cdOff); err != nil {
		t.Fatal(err)
	}
	if c.tamperAfterSig != nil {
		c.tamperAfterSig(f)
	}
}

func u64(v uint64) []byte { b := make([]byte, 8); binary.LittleEndian.PutUint64(b, v); return b }

// testChunkedSHA256 is a plain sequential implementation of the v2 content digest.
func testChunkedSHA256(t testing.TB, f io.ReaderAt, entriesEnd int64, cd, eocd []byte) []byte {
	var chunkDigests []byte
	n := 0
	add := func(b []byte) {
		h := sha256.New()
		h.Write([]byte{0xa5})
		h.Write(u32(uint32(len(b))))
		h.Write(b)
		chunkDigests = h.Sum(chunkDigests)
		n++
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < entriesEnd; off += 1 << 20 {
		k := min(int64(1<<20), entriesEnd-off)
		if _, err := f.ReadAt(buf[:k], off); err != nil {
			t.Fatal(err)
		}
		add(buf[:k])
	}
	for _, seg := range [][]byte{cd, eocd} {
		for len(seg) > 0 {
			k := min(len(seg), 1<<20)
			add(seg[:k])
			seg = seg[k:]
		}
	}
	h := sha256.New()
	h.Write([]byte{0x5a})
	h.Write(u32(uint32(n)))
	h.Write(chunkDigests)
	return h.Sum(nil)
}

// testLineage encodes a proof-of-rotation lineage, each node signed by the previous key.
func testLineage(t testing.TB, keys []*testKey) []byte {
	out := u32(1)
	var prev *testKey
	for i, k := range keys {
		parentAlg := uint32(0)
		if prev != nil {
			parentAlg = prev.algID
		}
		signed := pfx(pfx(k.cert), u32(parentAlg))
		var sig []byte
		if prev != nil {
			sig = prev.sign(t, signed[4:])
		}
		nextAlg := uint32(0)
		if i < len(keys)-1 {
			nextAlg = k.algID
		}
		out = append(out, pfx(signed, u32(CapInstalledData|CapSharedUID|CapPermission|CapRollback|CapAuth), u32(nextAlg), pfx(sig))...)
		prev = k
	}
	return out
}

// sampleManifest is the binary AndroidManifest.xml in testdata/sample (package
// dev.provkit.sample, versionCode 7, minSdk 21, targetSdk 33), compiled once with aapt from the
// AndroidManifest.xml beside it, so that fixtures need no tools.
func sampleManifest(t testing.TB) []byte {
	b, err := os.ReadFile("testdata/sample/AndroidManifest.bin")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
