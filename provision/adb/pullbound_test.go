package adb_test

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/adb/adbtest"
)

// countingWriter counts what a pull wrote, keeping nothing.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// A device that answers RECV with endless data (here the peer serves /dev/zero as the APK) is
// stopped at once: a pull never exceeds the size the device declared for the file.
func TestPullStopsAtDeclaredSize(t *testing.T) {
	p := adbtest.StartPeer(t, adbtest.PeerOptions{})
	dir := filepath.Join(p.Root, "data", "app")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "endless.apk")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ok.apk"), bytes.Repeat([]byte("apk!"), 100000), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := adb.Dial(ctxT(t, 10*time.Second), p.Addr, &adb.DialOptions{Keys: []*rsa.PrivateKey{hostKey(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var w countingWriter
	_, err = c.Device().Pull(ctxT(t, 30*time.Second), "/data/app/endless.apk", &w)
	if !errors.Is(err, adb.ErrPullTooLarge) {
		t.Fatalf("pulling an endless file: %v after %d bytes, want ErrPullTooLarge", err, w.n)
	}
	if w.n > 0 {
		t.Fatalf("%d bytes written from a file declared empty (a character device)", w.n)
	}
	// A real file of the declared size pulls whole.
	var buf bytes.Buffer
	n, err := c.Device().Pull(ctxT(t, 30*time.Second), "/data/app/ok.apk", &buf)
	if err != nil || n != 400000 {
		t.Fatalf("pulling a 400000-byte file: %d bytes, %v", n, err)
	}
	// A ceiling below the declared size refuses before any byte is read.
	var w2 countingWriter
	_, err = c.Device().PullAtMost(ctxT(t, 10*time.Second), "/data/app/ok.apk", &w2, 1000)
	if !errors.Is(err, adb.ErrPullTooLarge) || w2.n != 0 {
		t.Fatalf("ceiling 1000 on a 400000-byte file: %v, %d bytes", err, w2.n)
	}
}
