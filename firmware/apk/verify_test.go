package apk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sampleEntries are the entries of the fixture APKs: the manifest, a deflated file and a stored one.
func sampleEntries(t testing.TB) []zipIn {
	return []zipIn{
		{Name: "AndroidManifest.xml", Data: sampleManifest(t), Deflate: true},
		{Name: "classes.dex", Data: bytes.Repeat([]byte("dex\n035\x00provkit"), 4000), Deflate: true},
		{Name: "assets/blob.bin", Data: pseudoRandom(300_000, 1)},
		{Name: "lib/arm64-v8a/libx.so", Data: []byte("ELF"), Deflate: true},
	}
}

func pseudoRandom(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// signedFixture writes a v2+v3 signed APK and returns its path.
func signedFixture(t testing.TB, key *testKey, c signConf) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.apk")
	writeTestZip(t, p, sampleEntries(t))
	signTestAPK(t, p, key, c)
	return p
}

var opts24 = Options{MinSDK: 24, NoV4AutoDetect: true}

func mustVerify(t *testing.T, path string, o Options) *Result {
	t.Helper()
	res, err := VerifyFile(context.Background(), path, o)
	if err != nil {
		t.Fatalf("VerifyFile(%s): %v", path, err)
	}
	return res
}

func TestVerifyV2V3Signed(t *testing.T) {
	key := newTestKey(t, "app", "rsa")
	p := signedFixture(t, key, signConf{v2: true, v3: true})
	res := mustVerify(t, p, opts24)
	if !res.Verified || !res.Schemes.V2 || !res.Schemes.V3 || res.Schemes.V1 {
		t.Fatalf("want verified with v2+v3: %+v", res)
	}
	want := sha256.Sum256(key.cert)
	if len(res.Signers) != 1 || res.Signers[0].SHA256 != hex.EncodeToString(want[:]) {
		t.Fatalf("signers %+v, want %x", res.Signers, want)
	}
	if res.Package != "dev.provkit.sample" || res.VersionCode != 7 || res.VersionName != "1.7" || res.MinSDK != 21 || res.TargetSDK != 33 {
		t.Fatalf("manifest facts: %+v", res)
	}
	data, _ := os.ReadFile(p)
	if sum := sha256.Sum256(data); res.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("file sha256 %s, want %x", res.SHA256, sum)
	}
	// Below SDK 24 a JAR signature is required and there is none.
	if res := mustVerify(t, p, Options{NoV4AutoDetect: true}); res.Verified || !res.HasError("JAR_SIG_NO_MANIFEST") {
		t.Fatalf("want JAR_SIG_NO_MANIFEST for minSdk 21: %+v", res.Errors)
	}
}

func TestVerifyECDSA(t *testing.T) {
	key := newTestKey(t, "ec app", "ec")
	res := mustVerify(t, signedFixture(t, key, signConf{v2: true, v3: true}), opts24)
	if !res.Verified || res.Signers[0].KeyAlgorithm != "EC" || res.Signers[0].KeySize != 256 {
		t.Fatalf("want verified EC signer: %+v", res)
	}
}

func TestVerifyRotation(t *testing.T) {
	old, cur := newTestKey(t, "old", "rsa"), newTestKey(t, "new", "ec")
	p := signedFixture(t, cur, signConf{v2: true, v3: true, lineage: []*testKey{old, cur}})
	res := mustVerify(t, p, opts24)
	if !res.Verified {
		t.Fatalf("rotated APK: %+v", res)
	}
	so, sn := sha256.Sum256(old.cert), sha256.Sum256(cur.cert)
	if res.Signers[0].SHA256 != hex.EncodeToString(sn[:]) {
		t.Fatalf("signer #1 %s, want the new key %x", res.Signers[0].SHA256, sn)
	}
	got := strings.Join(res.LineageSHA256(), ",")
	if want := hex.EncodeToString(so[:]) + "," + hex.EncodeToString(sn[:]); got != want {
		t.Fatalf("lineage %s, want %s", got, want)
	}
	if !res.Lineage[0].Capabilities.Rollback {
		t.Fatalf("capabilities not reported: %+v", res.Lineage)
	}

	// The v2 signer must be the root of the v3 lineage.
	other := newTestKey(t, "other", "rsa")
	p = signedFixture(t, cur, signConf{v2: true, v3: true, lineage: []*testKey{old, cur}, v2Key: other})
	if res := mustVerify(t, p, opts24); res.Verified || !res.HasError("V3_SIG_PAST_SIGNERS_MISMATCH") {
		t.Fatalf("want V3_SIG_PAST_SIGNERS_MISMATCH: %+v", res.Errors)
	}
	// A lineage that does not end with the signer.
	p = signedFixture(t, cur, signConf{v2: true, v3: true, lineage: []*testKey{cur, old}, v2Key: cur})
	if res := mustVerify(t, p, opts24); res.Verified || !res.HasError("V3_SIG_POR_CERT_MISMATCH") {
		t.Fatalf("want V3_SIG_POR_CERT_MISMATCH: %+v", res.Errors)
	}
}

func TestVerifyDigestMismatch(t *testing.T) {
	key := newTestKey(t, "app", "rsa")
	res := mustVerify(t, signedFixture(t, key, signConf{v2: true, v3: true, corruptDigest: true}), opts24)
	if res.Verified || !res.HasError("V3_SIG_APK_DIGEST_DID_NOT_VERIFY") {
		t.Fatalf("want V3_SIG_APK_DIGEST_DID_NOT_VERIFY: %+v", res.Errors)
	}
	res = mustVerify(t, signedFixture(t, key, signConf{v2: true, corruptDigest: true}), opts24)
	if res.Verified || !res.HasError("V2_SIG_APK_DIGEST_DID_NOT_VERIFY") {
		t.Fatalf("want V2_SIG_APK_DIGEST_DID_NOT_VERIFY: %+v", res.Errors)
	}
}

// TestTamperedVariants: every modification of a valid APK must fail cleanly: a Result with
// verified=false and an error, never a Go error or a panic.
func TestTamperedVariants(t *testing.T) {
	key := newTestKey(t, "app", "rsa")
	p := signedFixture(t, key, signConf{v2: true, v3: true})
	good, _ := os.ReadFile(p)
	if res := mustVerify(t, p, opts24); !res.Verified {
		t.Fatalf("fixture does not verify: %+v", res.Errors)
	}
	z, err := openZip(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := findSigningBlock(bytes.NewReader(good), z)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(off int64) []byte {
		b := append([]byte(nil), good...)
		b[off] ^= 0x01
		return b
	}
	variants := map[string][]byte{
		"empty":            {},
		"random":           pseudoRandom(5000, 7),
		"trailing byte":    append(append([]byte(nil), good...), 0),
		"trailing garbage": append(append([]byte(nil), good...), pseudoRandom(100, 3)...),
		"entry data flip":  flip(z.entry("assets/blob.bin").dataOffset + 1000),
		"manifest flip":    flip(z.entry("AndroidManifest.xml").dataOffset + 3),
		"lfh name flip":    flip(z.entry("classes.dex").lfhOffset + 31),
		"cd flip":          flip(z.cdOffset + 50),
		"cd attr flip":     flip(z.cdOffset + 38),
		"eocd flip":        flip(z.eocdOffset + 8),
		"block size flip":  flip(sb.offset),
		"block magic flip": flip(sb.offset + sb.size - 3),
	}
	for off := sb.offset + 8; off < sb.offset+sb.size-24; off += 97 {
		variants["block flip @"+itoa(off)] = flip(off)
	}
	for off := int64(0); off < int64(len(good)); off += int64(len(good)) / 61 {
		variants["truncated @"+itoa(off)] = good[:off]
	}
	for _, cut := range []int64{1, 2, 21, 22, 23, 100} {
		variants["truncated end -"+itoa(cut)] = good[:int64(len(good))-cut]
	}
	for name, data := range variants {
		res, err := Verify(context.Background(), bytes.NewReader(data), int64(len(data)), opts24)
		if err != nil {
			t.Errorf("%s: Go error %v (want a failed Result)", name, err)
			continue
		}
		if res.Verified || len(res.Errors) == 0 {
			t.Errorf("%s: verified=%v errors=%v", name, res.Verified, res.Errors)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestZipStrictness(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.apk")
	entries := sampleEntries(t)
	entries = append(entries, zipIn{Name: "classes.dex", Data: []byte("second")})
	writeTestZip(t, p, entries)
	res := mustVerify(t, p, opts24)
	if res.Verified || !res.HasError("MALFORMED_APK") || !strings.Contains(res.Errors[0].Message, "duplicate entry") {
		t.Fatalf("duplicate entry accepted: %+v", res.Errors)
	}
}

func TestVerifyCancelled(t *testing.T) {
	key := newTestKey(t, "app", "ec")
	p := signedFixture(t, key, signConf{v2: true, v3: true})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := VerifyFile(ctx, p, opts24)
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Fatalf("cancelled verification: result %v, error %v (want context.Canceled)", res, err)
	}
}

// TestVerifyZip64: an APK whose End of Central Directory is ZIP64 verifies (newer apksig reads
// ZIP64), with the ZIP64 record's CD offset and the locator patched for the content digest.
func TestVerifyZip64(t *testing.T) {
	p := filepath.Join(t.TempDir(), "zip64.apk")
	writeTestZipOpts(t, p, sampleEntries(t), true)
	key := newTestKey(t, "zip64", "ec")
	signTestAPK(t, p, key, signConf{v2: true, v3: true})
	res := mustVerify(t, p, opts24)
	if !res.Verified {
		t.Fatalf("ZIP64 APK: %+v", res.Errors)
	}
	// The same file with a flipped byte in the ZIP64 record fails.
	data, _ := os.ReadFile(p)
	data[len(data)-22-20-56+40] ^= 1 // CD size in the ZIP64 record
	if res, err := Verify(context.Background(), bytes.NewReader(data), int64(len(data)), opts24); err != nil || res.Verified {
		t.Fatalf("tampered ZIP64 record: verified=%v err=%v", res != nil && res.Verified, err)
	}
}

// TestDecompressionBomb: an entry that inflates beyond its declared size is cut off at the
// declared size plus one byte and reported, and a declared size is never allocated blindly.
func TestDecompressionBomb(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bomb.apk")
	entries := []zipIn{{Name: "bomb.bin", Data: make([]byte, 64<<20), Deflate: true}}
	writeTestZip(t, p, entries)
	data, _ := os.ReadFile(p)
	z, err := openZip(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	e := z.entries[0]
	// Rewrite the declared size (in both headers) to 1000 bytes: 64 MiB of zeros deflate to ~64 KiB.
	binary.LittleEndian.PutUint32(data[e.cdOffset+24:], 1000)
	binary.LittleEndian.PutUint32(data[e.lfhOffset+22:], 1000)
	z, err = openZip(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if errs, _, err := z.checkLocalHeaders(z.cdOffset); err != nil || len(errs) != 0 {
		t.Fatalf("headers: %v %v", errs, err)
	}
	rc, err := z.entries[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	if err == nil || !errors.Is(err, ErrMalformed) || n > 1000 {
		t.Fatalf("bomb read %d bytes, error %v (want a format error at 1000 bytes)", n, err)
	}
	if _, err := z.entries[0].readAll(maxManifestBytes); !errors.Is(err, ErrMalformed) {
		t.Fatalf("readAll of the bomb: %v", err)
	}
	// A manifest declaring 2 GiB is refused before any allocation.
	e = z.entries[0]
	e.usize = 2 << 30
	if _, err := e.readAll(maxManifestBytes); !errors.Is(err, ErrMalformed) {
		t.Fatalf("2 GiB declared size: %v", err)
	}
}
