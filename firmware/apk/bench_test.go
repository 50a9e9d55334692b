package apk

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkVerify verifies one APK per iteration: the one PROVKIT_BENCH_APK names (for example
// one built by scripts/bench-apk.sh with KEEP=1), else a 64 MiB v2+v3-signed fixture.
func BenchmarkVerify(b *testing.B) {
	p := os.Getenv("PROVKIT_BENCH_APK")
	opts := Options{NoV4AutoDetect: true}
	if p == "" {
		p = filepath.Join(b.TempDir(), "bench.apk")
		writeTestZip(b, p, []zipIn{
			{Name: "AndroidManifest.xml", Data: sampleManifest(b), Deflate: true},
			{Name: "assets/blob.bin", Data: pseudoRandom(64<<20, 5)},
		})
		signTestAPK(b, p, newTestKey(b, "bench", "ec"), signConf{v2: true, v3: true})
		opts.MinSDK = 24
	}
	st, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	for b.Loop() {
		res, err := VerifyFile(context.Background(), p, opts)
		if err != nil {
			b.Fatal(err)
		}
		if !res.Verified {
			b.Fatalf("not verified: %v", res.Errors)
		}
	}
}
