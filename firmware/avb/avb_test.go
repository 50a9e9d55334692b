package avb

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/internal/samplefacts"
)

func readSample(t testing.TB, name string) []byte {
	b, err := os.ReadFile(samplefacts.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTamperedPartitionIsReportedAsMismatch(t *testing.T) {
	boot := readSample(t, "aosp-gbl/android/boot_v2_a.img")
	vb := readSample(t, "aosp-gbl/android/vbmeta_v2_a.img")
	im, err := Open(bytes.NewReader(vb), int64(len(vb)))
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), boot...)
	tampered[5000] ^= 1
	rep, err := im.Verify(context.Background(), &VerifyOptions{Partitions: func(name string) (io.ReaderAt, int64, bool) {
		if name == "boot" {
			return bytes.NewReader(tampered), int64(len(tampered)), true
		}
		return nil, 0, false
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Signature.SignatureOK || len(rep.Mismatched) != 1 || rep.Mismatched[0] != "boot" || rep.OK() {
		t.Fatalf("report = %+v", rep)
	}
	if strings.Join(rep.NotPresent, ",") != "dtb,dtbo" {
		t.Fatalf("not present = %v", rep.NotPresent)
	}
	if rep.Descriptors[0].Status != StatusMismatch || !strings.Contains(rep.Descriptors[0].Detail, "digest of the partition") {
		t.Fatalf("descriptor 0 = %+v", rep.Descriptors[0])
	}
	if p := rep.Problems(); len(p) != 1 || !strings.HasPrefix(p[0], "partition boot no longer matches its vbmeta (hash descriptor 0)") {
		t.Fatalf("problems = %q", p)
	}
}

func TestTamperedVBMetaFailsSignature(t *testing.T) {
	vb := readSample(t, "aosp-gbl/android/vbmeta_v2_a.img")
	// Flip a byte of a descriptor digest (auxiliary block): the hash no longer matches, nor the signature.
	im, _ := Open(bytes.NewReader(vb), int64(len(vb)))
	d := im.VBMeta.Descriptors[0].(*Hash)
	pos := bytes.Index(vb, d.Digest)
	bad := append([]byte(nil), vb...)
	bad[pos] ^= 0x80
	im, err := Open(bytes.NewReader(bad), int64(len(bad)))
	if err != nil {
		t.Fatal(err)
	}
	sig := im.VBMeta.VerifySignature()
	if sig.AuthHashOK || sig.SignatureOK || sig.Error == "" {
		t.Fatalf("tampered vbmeta verified: %+v", sig)
	}
	// Flip a signature byte only: the hash still matches but the RSA check fails.
	bad = append([]byte(nil), vb...)
	bad[HeaderSize+int(im.VBMeta.SignatureOffset)+10] ^= 1
	im, _ = Open(bytes.NewReader(bad), int64(len(bad)))
	sig = im.VBMeta.VerifySignature()
	if !sig.AuthHashOK || sig.SignatureOK {
		t.Fatalf("bad signature: %+v", sig)
	}
}

func TestHashtreeTamperedDataAndTree(t *testing.T) {
	img := readSample(t, "aosp-build/foo.apex.apex_payload.img")
	im, err := Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	ht := im.VBMeta.Descriptors[0].(*Hashtree)
	offs, sizes, total := HashtreeLevels(ht.ImageSize, ht.DataBlockSize, ht.HashBlockSize, 32)
	if total != ht.TreeSize || len(sizes) != 2 || offs[0] != 4096 || offs[1] != 0 {
		t.Fatalf("levels %v %v %d", offs, sizes, total)
	}
	// Tampered data block: the root digest no longer matches.
	bad := append([]byte(nil), img...)
	bad[123456] ^= 1
	rep, err := mustOpen(t, bad).Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Descriptors[0].Status != StatusMismatch || rep.Mismatched[0] != "(this image)" {
		t.Fatalf("tampered data: %+v", rep.Descriptors[0])
	}
	// Tampered stored tree, data intact: root matches but dm-verity would fail reading.
	bad = append([]byte(nil), img...)
	bad[int(ht.TreeOffset)+4096+40] ^= 1
	res, err := VerifyHashtree(context.Background(), ht, bytes.NewReader(bad), int64(len(bad)))
	if err != nil {
		t.Fatal(err)
	}
	if !res.RootOK || res.StoredTreeOK || res.FirstBadTreeOffset != int64(ht.TreeOffset)+4096 {
		t.Fatalf("tampered tree: %+v", res)
	}
	rep, _ = mustOpen(t, bad).Verify(context.Background(), nil)
	if rep.Descriptors[0].Status != StatusMismatch || !strings.Contains(rep.Descriptors[0].Detail, "stored hash tree") {
		t.Fatalf("tampered tree report: %+v", rep.Descriptors[0])
	}
	// A stored tree that cannot be read (an OTA partition whose tree is built on the device): the data
	// is still checked against the root digest.
	holey := &failingRange{r: bytes.NewReader(img), from: int64(ht.TreeOffset), to: int64(ht.TreeOffset + ht.TreeSize)}
	rep, _ = (&Image{R: holey, Size: int64(len(img)), Footer: im.Footer, VBMeta: im.VBMeta}).Verify(context.Background(), nil)
	if rep.Descriptors[0].Status != StatusVerified || !strings.Contains(rep.Descriptors[0].Detail, "stored hash tree not compared") {
		t.Fatalf("unreadable tree: %+v", rep.Descriptors[0])
	}
	// Cancelled context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := VerifyHashtree(ctx, ht, bytes.NewReader(img), int64(len(img))); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func mustOpen(t *testing.T, b []byte) *Image {
	t.Helper()
	im, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func TestFlagsAndUnsigned(t *testing.T) {
	im := mustOpen(t, readSample(t, "aosp-external-avb-change-969943/vbmeta/test_vbmeta_hashtree_disabled.img"))
	rep, _ := im.Verify(context.Background(), nil)
	if !rep.HashtreeDisabled || rep.VerificationDisabled || !rep.OK() {
		t.Fatalf("hashtree-disabled report: %+v", rep)
	}
	im = mustOpen(t, readSample(t, "aosp-external-avb-change-969943/empty_images/system.img"))
	rep, _ = im.Verify(context.Background(), nil)
	if rep.Signature.Signed || rep.OK() || rep.Descriptors[0].Status != StatusVerified {
		t.Fatalf("unsigned image: %+v", rep)
	}
}

func TestChainPartition(t *testing.T) {
	im := mustOpen(t, readSample(t, "aosp-external-avb-change-969943/vbmeta/test_vbmeta_chain_partition.img"))
	rep, _ := im.Verify(context.Background(), nil)
	if rep.Descriptors[0].Status != StatusNotPresent || rep.NotPresent[0] != "system" {
		t.Fatalf("chain without partition: %+v", rep.Descriptors[0])
	}
	// A "system" partition signed with another key is reported as a mismatch.
	other := readSample(t, "aosp-external-avb-change-969943/vbmeta/test_vbmeta_key.img")
	rep, _ = im.Verify(context.Background(), &VerifyOptions{Partitions: func(n string) (io.ReaderAt, int64, bool) {
		return bytes.NewReader(other), int64(len(other)), n == "system"
	}})
	if rep.Descriptors[0].Status != StatusMismatch || !strings.Contains(rep.Descriptors[0].Detail, "different key") || rep.Chained["system"] == nil {
		t.Fatalf("chain to other key: %+v", rep.Descriptors[0])
	}
}

// avbKey encodes an RSA public key in AVB's format.
func avbKey(pub *rsa.PublicKey) []byte {
	bits := pub.N.BitLen()
	n := bits / 8
	b := make([]byte, 8+2*n)
	binary.BigEndian.PutUint32(b, uint32(bits))
	m32 := new(big.Int).Lsh(big.NewInt(1), 32)
	inv := new(big.Int).ModInverse(new(big.Int).Mod(pub.N, m32), m32)
	binary.BigEndian.PutUint32(b[4:], uint32(new(big.Int).Sub(m32, inv).Uint64()))
	pub.N.FillBytes(b[8 : 8+n])
	rr := new(big.Int).Lsh(big.NewInt(1), uint(2*bits))
	rr.Mod(rr, pub.N).FillBytes(b[8+n:])
	return b
}

// signVBMeta builds a SHA256_RSA2048 vbmeta with the given descriptors (test-only writer, from the
// header layout of avb_vbmeta_image.h).
func signVBMeta(t *testing.T, key *rsa.PrivateKey, descs []byte) []byte {
	return signVBMetaAlg(t, key, descs, AlgSHA256RSA2048)
}

func signVBMetaAlg(t *testing.T, key *rsa.PrivateKey, descs []byte, alg Algorithm) []byte {
	hlen, _, _ := alg.params()
	pub := avbKey(&key.PublicKey)
	pad := func(b []byte) []byte { return append(b, make([]byte, (64-len(b)%64)%64)...) }
	aux := pad(append(append([]byte(nil), descs...), pub...))
	sigLen := key.PublicKey.Size()
	authSize := (hlen + sigLen + 63) / 64 * 64
	h := make([]byte, HeaderSize)
	copy(h, "AVB0")
	be := binary.BigEndian
	be.PutUint32(h[4:], 1)
	be.PutUint64(h[12:], uint64(authSize))
	be.PutUint64(h[20:], uint64(len(aux)))
	be.PutUint32(h[28:], uint32(alg))
	be.PutUint64(h[32:], 0)
	be.PutUint64(h[40:], uint64(hlen))
	be.PutUint64(h[48:], uint64(hlen))
	be.PutUint64(h[56:], uint64(sigLen))
	be.PutUint64(h[64:], uint64(len(descs)))
	be.PutUint64(h[72:], uint64(len(pub)))
	be.PutUint64(h[80:], uint64(len(descs)+len(pub)))
	be.PutUint64(h[96:], 0)
	be.PutUint64(h[104:], uint64(len(descs)))
	be.PutUint64(h[112:], 7)
	copy(h[128:], "provkit test")
	signed := append(append([]byte(nil), h...), aux...)
	var sum []byte
	ch := crypto.SHA256
	if hlen == 64 {
		s := sha512.Sum512(signed)
		sum, ch = s[:], crypto.SHA512
	} else {
		s := sha256.Sum256(signed)
		sum = s[:]
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, ch, sum)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, authSize)
	copy(auth, sum)
	copy(auth[hlen:], sig)
	return append(append(h, auth...), aux...)
}

func hashDescriptor(name string, salt, data []byte) []byte {
	sum := sha256.Sum256(append(append([]byte(nil), salt...), data...))
	body := make([]byte, 116)
	be := binary.BigEndian
	be.PutUint64(body, uint64(len(data)))
	copy(body[8:], "sha256")
	be.PutUint32(body[40:], uint32(len(name)))
	be.PutUint32(body[44:], uint32(len(salt)))
	be.PutUint32(body[48:], 32)
	body = append(append(append(body, name...), salt...), sum[:]...)
	body = append(body, make([]byte, (8-len(body)%8)%8)...)
	hdr := make([]byte, 16)
	be.PutUint64(hdr, TagHash)
	be.PutUint64(hdr[8:], uint64(len(body)))
	return append(hdr, body...)
}

func TestSHA256RSA2048RoundTrip(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("vendor"), 1000)
	vb := signVBMeta(t, key, hashDescriptor("vendor_boot", []byte("salt"), data))
	im := mustOpen(t, vb)
	rep, err := im.Verify(context.Background(), &VerifyOptions{Partitions: func(n string) (io.ReaderAt, int64, bool) {
		return bytes.NewReader(data), int64(len(data)), n == "vendor_boot"
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Signature.KeyBits != 2048 || rep.Signature.Algorithm != "SHA256_RSA2048" || rep.RollbackIndex != 7 || rep.Descriptors[0].Status != StatusVerified {
		t.Fatalf("report = %+v", rep)
	}
	// The same key with SHA-512.
	vb = signVBMetaAlg(t, key, hashDescriptor("vendor_boot", []byte("salt"), data), AlgSHA512RSA2048)
	if sig := mustOpen(t, vb).VBMeta.VerifySignature(); !sig.SignatureOK || !sig.AuthHashOK || sig.Algorithm != "SHA512_RSA2048" {
		t.Fatalf("SHA512_RSA2048: %+v", sig)
	}
	// A 2048-bit key under an algorithm that needs 4096 bits is refused.
	vb = signVBMetaAlg(t, key, nil, AlgSHA256RSA2048)
	binary.BigEndian.PutUint32(vb[28:], uint32(AlgSHA256RSA4096))
	if sig := mustOpen(t, vb).VBMeta.VerifySignature(); sig.SignatureOK || !strings.Contains(sig.Error, "needs a 4096-bit key") {
		t.Fatalf("wrong key size: %+v", sig)
	}
	// A key whose n0inv disagrees with its modulus is refused.
	pub := avbKey(&key.PublicKey)
	pub[4] ^= 1
	if _, err := ParsePublicKey(pub); err == nil || !strings.Contains(err.Error(), "n0inv") {
		t.Fatalf("bad n0inv: %v", err)
	}
}

func TestHostileInput(t *testing.T) {
	vb := readSample(t, "aosp-gbl/vbmeta_a.bin")
	be := binary.BigEndian
	cases := []struct {
		name string
		mut  func([]byte)
		want string
	}{
		{"huge aux block", func(b []byte) { be.PutUint64(b[20:], 1<<40) }, "exceed"},
		{"descriptors outside block", func(b []byte) { be.PutUint64(b[96:], 1<<20) }, "outside"},
		{"signature outside block", func(b []byte) { be.PutUint64(b[56:], 1<<62) }, "outside"},
		{"bad version", func(b []byte) { be.PutUint32(b[4:], 2) }, "libavb 2"},
		{"odd block size", func(b []byte) { be.PutUint64(b[12:], 577) }, "multiples of 64"},
	}
	for _, c := range cases {
		b := append([]byte(nil), vb...)
		c.mut(b)
		if _, err := Open(bytes.NewReader(b), int64(len(b))); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// A descriptor whose length runs past the descriptor area.
	im := mustOpen(t, vb)
	b := append([]byte(nil), vb...)
	doff := im.VBMeta.Descriptors[0].Offset()
	be.PutUint64(b[doff+8:], 1<<50)
	if _, err := Open(bytes.NewReader(b), int64(len(b))); err == nil || !strings.Contains(err.Error(), "num_bytes_following") {
		t.Errorf("long descriptor: %v", err)
	}
	// Footer pointing outside the partition.
	f := make([]byte, 4096)
	copy(f[4096-64:], "AVBf")
	be.PutUint32(f[4096-60:], 1)
	be.PutUint64(f[4096-64+20:], 1<<40)
	if _, err := Open(bytes.NewReader(f), int64(len(f))); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("footer: %v", err)
	}
	if _, err := Open(bytes.NewReader(make([]byte, 300)), 300); !errors.Is(err, ErrNotVBMeta) || !errors.Is(err, ErrNoFooter) {
		t.Errorf("zeros: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	for _, s := range []string{
		"aosp-gbl/vbmeta_a.bin", "aosp-gbl/android/vbmeta_v4_v4_init_boot_a.img",
		"aosp-external-avb-change-969943/vbmeta/test_vbmeta_prop.img",
		"aosp-external-avb-change-969943/vbmeta/test_vbmeta_chain_partition.img",
		"aosp-external-avb-change-969943/vbmeta/test_vbmeta_kernel_cmdline.img",
		"aosp-external-avb-change-969943/empty_images/boot.img",
	} {
		f.Add(readSample(f, s))
	}
	apex := readSample(f, "aosp-build/foo.apex.apex_payload.img")
	// The apex's vbmeta plus footer, with a small data area, keeps the seed small.
	small := append(append(make([]byte, 8192), apex[3276800:3276800+2176]...), apex[len(apex)-64:]...)
	binary.BigEndian.PutUint64(small[len(small)-64+20:], 8192)
	f.Add(small)
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if im.VBMeta.Size() > MaxVBMetaSize {
			t.Fatalf("vbmeta of %d bytes accepted", im.VBMeta.Size())
		}
		sig := im.VBMeta.VerifySignature()
		if sig.SignatureOK && im.VBMeta.Algorithm == AlgNone {
			t.Fatal("unsigned image verified")
		}
		rep, err := im.Verify(context.Background(), nil)
		if err != nil || len(rep.Descriptors) != len(im.VBMeta.Descriptors) {
			t.Fatalf("Verify = %v, %d descriptors", err, len(rep.Descriptors))
		}
	})
}

// failingRange fails reads that touch [from, to).
type failingRange struct {
	r        io.ReaderAt
	from, to int64
}

func (f *failingRange) ReadAt(b []byte, off int64) (int, error) {
	if off < f.to && off+int64(len(b)) > f.from {
		return 0, errors.New("bytes computed on the device")
	}
	return f.r.ReadAt(b, off)
}

func TestRSA8192(t *testing.T) {
	pemBytes, err := os.ReadFile("testdata/rsa8192-test-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatal("no PEM block")
	}
	var key *rsa.PrivateKey
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		key, _ = k.(*rsa.PrivateKey)
	} else if key, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
		t.Fatal(err)
	}
	for _, alg := range []Algorithm{AlgSHA256RSA8192, AlgSHA512RSA8192} {
		vb := signVBMetaAlg(t, key, nil, alg)
		sig := mustOpen(t, vb).VBMeta.VerifySignature()
		if !sig.SignatureOK || !sig.AuthHashOK || sig.KeyBits != 8192 || sig.Algorithm != alg.String() {
			t.Fatalf("%s: %+v", alg, sig)
		}
	}
}
