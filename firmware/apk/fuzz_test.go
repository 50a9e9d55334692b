package apk

// Fuzzing: the seeds are whole APKs, and Go's default 60 s minimisation of each new input then
// dominates a short run; use for example
//
//	go test ./firmware/apk -run '^$' -fuzz '^FuzzVerify$' -fuzztime 60s -fuzzminimizetime 1s

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// suiteSeeds returns a few small APKs of the apksig suite as fuzz seeds.
func suiteSeeds(f *testing.F, n int) [][]byte {
	f.Helper()
	names := []string{
		"v2-only-with-rsa-pkcs1-sha256-2048.apk", "v3-only-with-ecdsa-sha256-p256.apk",
		"v1v2v3-with-rsa-2048-lineage-3-signers.apk", "v31-rsa-2048_2-tgt-33-1-tgt-28.apk",
		"v2-only-max-sized-eocd-comment.apk", "weird-compression-method.apk",
		"v3-only-with-stamp.apk", "v2-only-garbage-between-cd-and-eocd.apk",
	}
	var out [][]byte
	for _, nm := range names {
		b, err := os.ReadFile(filepath.Join("testdata/apksig/files", nm))
		if err == nil && len(out) < n {
			out = append(out, b)
		}
	}
	return out
}

func fixtureBytes(f *testing.F) []byte {
	p := signedFixture(f, newTestKey(f, "fuzz", "ec"), signConf{v2: true, v3: true})
	b, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzZipReader: any input either fails with a *FormatError or yields entries with unique names
// whose records lie before the central directory; reading entries never exceeds their declared
// size.
func FuzzZipReader(f *testing.F) {
	for _, s := range suiteSeeds(f, 8) {
		f.Add(s)
	}
	f.Add(fixtureBytes(f))
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	f.Fuzz(func(t *testing.T, data []byte) {
		z, err := openZip(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if _, ok := err.(*FormatError); !ok {
				t.Fatalf("non-format error %T: %v", err, err)
			}
			return
		}
		errs, _, ioErr := z.checkLocalHeaders(z.cdOffset)
		if ioErr != nil {
			t.Fatalf("I/O error from a byte slice: %v", ioErr)
		}
		seen := map[string]bool{}
		for _, e := range z.all {
			if seen[e.name] {
				t.Fatalf("duplicate %q accepted", e.name)
			}
			seen[e.name] = true
			if e.broken == nil && e.recordEnd > z.cdOffset {
				t.Fatalf("entry %q ends at %d past the CD at %d", e.name, e.recordEnd, z.cdOffset)
			}
		}
		_ = errs
		for _, e := range z.entries {
			rc, err := e.Open()
			if err != nil {
				continue
			}
			n, _ := io.Copy(io.Discard, io.LimitReader(rc, 4<<20))
			rc.Close()
			if uint64(n) > e.usize {
				t.Fatalf("entry %q yielded %d bytes, declared %d", e.name, n, e.usize)
			}
		}
	})
}

// wrapBlock builds a minimal archive whose APK Signing Block holds pairs.
func wrapBlock(pairs []byte) []byte {
	le := binary.LittleEndian
	sz := make([]byte, 8)
	le.PutUint64(sz, uint64(len(pairs)+24))
	block := cat(sz, pairs, sz, u64(sigBlockMagicLo), u64(sigBlockMagicHi))
	eocd := make([]byte, 22)
	le.PutUint32(eocd, eocdSig)
	le.PutUint32(eocd[16:], uint32(len(block)))
	return cat(block, eocd)
}

// FuzzSigningBlock: the signing block parser and the v2/v3 scheme parsers never panic, and a signer
// they accept has a certificate matching its public key.
func FuzzSigningBlock(f *testing.F) {
	for _, s := range append(suiteSeeds(f, 4), fixtureBytes(f)) {
		z, err := openZip(bytes.NewReader(s), int64(len(s)))
		if err != nil {
			continue
		}
		sb, err := findSigningBlock(bytes.NewReader(s), z)
		if err != nil {
			continue
		}
		f.Add(s[sb.offset+8 : sb.offset+sb.size-24])
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, pairs []byte) {
		apk := wrapBlock(pairs)
		z, err := openZip(bytes.NewReader(apk), int64(len(apk)))
		if err != nil {
			return
		}
		sb, err := findSigningBlock(bytes.NewReader(apk), z)
		if err != nil {
			return
		}
		for id, v := range sb.pairs {
			for _, scheme := range []int{schemeV2, schemeV3, schemeV31} {
				r := parseSchemeBlock(scheme, v, 24, 40, v3Params{minSDK: 28, maxSDK: 40, full: true}, map[int]bool{2: true, 3: true}, map[int]bool{})
				for _, s := range r.signers {
					if len(s.errors) == 0 && len(s.certs) == 0 {
						t.Fatalf("block 0x%x scheme %d: signer without certificate and without error", id, scheme)
					}
				}
				if !r.containsErrors() {
					finishV3(r, 28, 40, 0)
				}
			}
			st := &SourceStamp{}
			verifyStampBlock(st, v, make([]byte, 32), map[uint32][]byte{2: {1}}, 30, 40)
		}
	})
}

// FuzzV4Signature: parsing and verifying a hostile .idsig never panics and never verifies a
// signature it could not check.
func FuzzV4Signature(f *testing.F) {
	apk := []byte("not really an APK, the v4 tree covers any bytes")
	for _, nm := range []string{"v41-digest-mismatched-with-v31.apk.idsig", "v31-rsa-2048_2-tgt-10000-dev-release.apk.idsig"} {
		if b, err := os.ReadFile(filepath.Join("testdata/apksig/files", nm)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, idsig []byte) {
		res, err := verifyV4(context.Background(), bytes.NewReader(apk), int64(len(apk)), V4Source{Name: "f.idsig", R: bytes.NewReader(idsig), Size: int64(len(idsig))})
		if err != nil {
			return
		}
		if res.verified && res.containsErrors() {
			t.Fatalf("verified with errors: %+v", res.errors)
		}
	})
}

// FuzzVerify: the whole verifier (and Inspect) on arbitrary bytes returns a Result (never a Go
// error for bytes in memory) and never calls an APK with errors verified.
func FuzzVerify(f *testing.F) {
	for _, s := range suiteSeeds(f, 8) {
		f.Add(s)
	}
	f.Add(fixtureBytes(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Verify(context.Background(), bytes.NewReader(data), int64(len(data)), Options{MinSDK: 24})
		if err != nil {
			t.Fatalf("error on in-memory input: %v", err)
		}
		if res.Verified && len(res.Errors) > 0 {
			t.Fatalf("verified with errors: %v", res.Errors)
		}
		if res.Verified && len(res.Signers) == 0 {
			t.Fatalf("verified without signers")
		}
		info, err := Inspect(context.Background(), bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("Inspect error on in-memory input: %v", err)
		}
		if res.Verified && (info.Package != res.Package || len(info.Signers) == 0) {
			t.Fatalf("Inspect disagrees with Verify: %+v vs %+v", info, res)
		}
	})
}
