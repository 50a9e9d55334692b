package jarsig_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/provkit/provkit/firmware/apk/internal/jartest"
	"github.com/provkit/provkit/firmware/apk/jarsig"
)

// benchAPK builds a v1-signed APK with one large stored asset (random bytes, as in
// scripts/bench-apk.sh) and many small deflated entries, with the manifest digests given.
func benchAPK(b *testing.B, digests []string) ([]byte, int64) {
	keys(b)
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 48<<20)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	fs := []jartest.File{{Name: "AndroidManifest.xml", Data: []byte("<manifest/>")}, {Name: "assets/big.bin", Data: big, Stored: true}}
	total := int64(len(big))
	for i := 0; i < 2000; i++ {
		data := []byte(fmt.Sprintf("resource %d %s", i, make([]byte, 200)))
		fs = append(fs, jartest.File{Name: fmt.Sprintf("res/raw/r%04d.txt", i), Data: data})
		total += int64(len(data))
	}
	s := signerA()
	s.DigestOID = "1.3.14.3.2.26"
	s.SFDigests = digests
	return jartest.Build(jartest.Spec{Files: fs, ManifestDigests: digests, Signers: []jartest.Signer{s}}), total
}

// BenchmarkVerify measures JAR verification of a 48 MiB APK; SetBytes counts the uncompressed
// entry bytes, so MB/s compares with BenchmarkSHA256 (one SHA-256 pass over the same bytes).
func BenchmarkVerify(b *testing.B) {
	for _, tc := range []struct {
		name    string
		digests []string
		min     int
	}{
		{"SHA-256", []string{"SHA-256"}, 18},
		{"SHA-1+SHA-256", []string{"SHA1", "SHA-256"}, 9},
	} {
		b.Run(tc.name, func(b *testing.B) {
			apk, total := benchAPK(b, tc.digests)
			a := openZip(b, apk)
			b.SetBytes(total)
			b.ResetTimer()
			for b.Loop() {
				res, err := jarsig.Verify(context.Background(), a, jarsig.Options{MinSDK: tc.min, MaxSDK: math.MaxInt})
				if err != nil || !res.Verified {
					b.Fatalf("err %v:%s", err, allIssues(res))
				}
			}
		})
	}
}

func BenchmarkSHA256(b *testing.B) {
	buf := make([]byte, 48<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		sha256.Sum256(buf)
	}
}
