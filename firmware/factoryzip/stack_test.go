package factoryzip

import (
	"archive/zip"
	"bytes"
	"io/fs"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/ext4"
	"github.com/provkit/provkit/firmware/sparse"
)

// TestSparseExt4InsideFactoryZip reads a file out of the sparse ext4 system image inside a deflated
// image zip inside a factory zip: factoryzip → sparse → ext4, each through io.ReaderAt.
func TestSparseExt4InsideFactoryZip(t *testing.T) {
	imgs := realImages(t)
	z := factoryZip(t, imgs, zip.Deflate, zip.Store)
	a, err := Open(bytes.NewReader(z), int64(len(z)), &Options{TempDir: t.TempDir(), MemoryLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rd, err := a.OpenImage("system")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sparse.Open(rd, rd.Size())
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ext4.Open(sp, sp.Size())
	if err != nil {
		t.Fatal(err)
	}
	prop, err := fs.ReadFile(fsys, "build.prop")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(prop), "ro.build.fingerprint=google/oriole") {
		t.Fatalf("build.prop = %q", prop)
	}
	apk, err := fs.ReadFile(fsys, "app/Messenger/Messenger.apk")
	if err != nil || len(apk) != 150000 {
		t.Fatalf("Messenger.apk: %d bytes, %v", len(apk), err)
	}
}
