package erofs

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// benchImage returns an lz4hc image holding an APK among thousands of files, and the APK's path
// in it. PROVKIT_EROFS_BENCH_IMAGE and PROVKIT_EROFS_BENCH_PATH select an existing image instead
// (scripts/bench-erofs.sh uses them to time the same image as fsck.erofs).
func benchImage(b *testing.B) (img, apk string) {
	b.Helper()
	if img := os.Getenv("PROVKIT_EROFS_BENCH_IMAGE"); img != "" {
		return img, os.Getenv("PROVKIT_EROFS_BENCH_PATH")
	}
	testtool.Require(b, "mkfs.erofs")
	src := b.TempDir()
	r := rand.New(rand.NewSource(9))
	for d := 0; d < 30; d++ {
		dir := filepath.Join(src, "system", "lib", fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < 100; i++ {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.so", i)), mixedBytes(r, 500+r.Intn(4000)), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	apk = "system/app/Messenger/Messenger.apk"
	if err := os.MkdirAll(filepath.Join(src, filepath.Dir(apk)), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, apk), mixedBytes(r, 24<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	return mkfs(b, src, "-zlz4hc"), apk
}

// BenchmarkOpenFindRead opens the image, looks the APK up and reads it whole (SHA-256), as an
// audit does: the MB/s figure is of the APK's decompressed bytes.
func BenchmarkOpenFindRead(b *testing.B) {
	img, apk := benchImage(b)
	fh, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	for b.Loop() {
		f, err := Open(fh, st.Size())
		if err != nil {
			b.Fatal(err)
		}
		file, err := f.OpenFile(apk)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, file)
		if err != nil {
			b.Fatal(err)
		}
		size = n
	}
	b.SetBytes(size)
}

// BenchmarkLookup resolves a path three directories deep among 3000 files.
func BenchmarkLookup(b *testing.B) {
	img, _ := benchImage(b)
	f := openImage(b, img, Options{})
	if os.Getenv("PROVKIT_EROFS_BENCH_IMAGE") != "" {
		b.Skip("lookup benchmark needs the generated tree")
	}
	for b.Loop() {
		if _, err := f.Stat("system/lib/d17/f042.so"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadAtRandom reads 4 KiB at random offsets of the APK, the access pattern of a zip
// reader jumping between entries.
func BenchmarkReadAtRandom(b *testing.B) {
	img, apk := benchImage(b)
	f := openImage(b, img, Options{})
	file, err := f.OpenFile(apk)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewSource(1))
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := file.ReadAt(buf, r.Int63n(file.in.size-int64(len(buf)))); err != nil {
			b.Fatal(err)
		}
	}
}
