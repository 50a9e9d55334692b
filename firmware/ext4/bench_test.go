package ext4

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/provkit/provkit/firmware/sparse"
)

var benchImg struct {
	once       sync.Once
	dir        string
	img, simg  string
	err        error
	apkSize    int64
	skipReason string
}

// benchImage builds, once per run, a 512 MiB ext4 image like a system partition: 3000 small
// files in one htree directory, a 32 MiB APK, and its img2simg sparse form.
func benchImage(b *testing.B) (string, string) {
	b.Helper()
	benchImg.once.Do(func() {
		for _, tool := range []string{"mke2fs", "e2fsck", "img2simg", "debugfs"} {
			if _, err := exec.LookPath(tool); err != nil {
				benchImg.skipReason = tool + " not installed"
				return
			}
		}
		dir, err := os.MkdirTemp("", "provkit-ext4-bench-")
		if err != nil {
			benchImg.err = err
			return
		}
		benchImg.dir = dir
		src := filepath.Join(dir, "src")
		rng := rand.New(rand.NewPCG(9, 9))
		os.MkdirAll(filepath.Join(src, "system/lib64"), 0o755)
		os.MkdirAll(filepath.Join(src, "system/app/Messenger"), 0o755)
		for i := 0; i < 3000; i++ {
			os.WriteFile(filepath.Join(src, "system/lib64", "lib"+formatInt(i)+".so"), make([]byte, rng.IntN(20000)), 0o644)
		}
		apk := make([]byte, 32<<20)
		for i := range apk {
			apk[i] = byte(rng.Uint32())
		}
		os.WriteFile(filepath.Join(src, "system/app/Messenger/Messenger.apk"), apk, 0o644)
		benchImg.apkSize = int64(len(apk))
		benchImg.img = filepath.Join(dir, "system.img")
		benchImg.simg = filepath.Join(dir, "system.simg")
		for _, c := range [][]string{
			{"mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-O", "^has_journal", "-d", src, benchImg.img, "512M"},
			{"e2fsck", "-fyD", benchImg.img},
			{"img2simg", benchImg.img, benchImg.simg},
		} {
			if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil && c[0] != "e2fsck" {
				benchImg.err = &exec.Error{Name: string(out), Err: err}
				return
			}
		}
		os.RemoveAll(src)
	})
	if benchImg.skipReason != "" {
		b.Skip(benchImg.skipReason)
	}
	if benchImg.err != nil {
		b.Fatal(benchImg.err)
	}
	return benchImg.img, benchImg.simg
}

func formatInt(i int) string {
	return string([]byte{byte('0' + i/1000%10), byte('0' + i/100%10), byte('0' + i/10%10), byte('0' + i%10)})
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchImg.dir != "" {
		os.RemoveAll(benchImg.dir)
	}
	os.Exit(code)
}

// openFindRead opens the file system in r, looks up the APK and hashes it: what an audit does.
func openFindRead(b *testing.B, r io.ReaderAt, size int64) {
	fsys, err := Open(r, size)
	if err != nil {
		b.Fatal(err)
	}
	f, err := fsys.Open("system/app/Messenger/Messenger.apk")
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkOpenFindReadRaw: open a 512 MiB raw image, find the APK, read and hash its 32 MiB.
func BenchmarkOpenFindReadRaw(b *testing.B) {
	img, _ := benchImage(b)
	f, _ := os.Open(img)
	defer f.Close()
	st, _ := f.Stat()
	b.SetBytes(benchImg.apkSize)
	for b.Loop() {
		openFindRead(b, f, st.Size())
	}
}

// BenchmarkOpenFindReadSparse: the same through the img2simg sparse image, never expanded.
func BenchmarkOpenFindReadSparse(b *testing.B) {
	_, simg := benchImage(b)
	f, _ := os.Open(simg)
	defer f.Close()
	st, _ := f.Stat()
	b.SetBytes(benchImg.apkSize)
	for b.Loop() {
		sp, err := sparse.Open(f, st.Size())
		if err != nil {
			b.Fatal(err)
		}
		openFindRead(b, sp, sp.Size())
	}
}

// BenchmarkDebugfsDump is the reference: debugfs dumping the same APK from the raw image (what a
// lab does after simg2img), hashed the same way.
func BenchmarkDebugfsDump(b *testing.B) {
	img, _ := benchImage(b)
	out := filepath.Join(b.TempDir(), "apk")
	b.SetBytes(benchImg.apkSize)
	for b.Loop() {
		if o, err := exec.Command("debugfs", "-R", "dump /system/app/Messenger/Messenger.apk "+out, img).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, o)
		}
		data, err := os.ReadFile(out)
		if err != nil || int64(len(data)) != benchImg.apkSize {
			b.Fatalf("debugfs dump: %v", err)
		}
		sha256.Sum256(data)
	}
}

// BenchmarkLookupHtree: path lookup in a 3000-entry htree directory on an opened file system.
func BenchmarkLookupHtree(b *testing.B) {
	img, _ := benchImage(b)
	f, _ := os.Open(img)
	defer f.Close()
	st, _ := f.Stat()
	fsys, err := Open(f, st.Size())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := fsys.Stat("system/lib64/lib2999.so"); err != nil {
			b.Fatal(err)
		}
	}
}
