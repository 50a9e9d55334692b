package imagepatch

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzDropExtra: any extra-field bytes; never panics, never grows, and no field of the dropped id
// is left in the well-formed part.
func FuzzDropExtra(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x01, 0x00, 0x08, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 0x55, 0x54, 0x05, 0x00, 1, 1, 2, 3, 4})
	f.Add([]byte{0x55, 0x54, 0x05, 0x00, 1, 1, 2, 3, 4, 0x01, 0x00, 0xff, 0xff, 0})
	f.Add([]byte{0x01})
	f.Fuzz(func(t *testing.T, extra []byte) {
		out := dropExtra(extra, 0x0001)
		if len(out) > len(extra) {
			t.Fatalf("grew from %d to %d bytes", len(extra), len(out))
		}
		for b := out; len(b) >= 4; {
			n := int(b[2]) | int(b[3])<<8
			if 4+n > len(b) {
				break
			}
			if b[0] == 1 && b[1] == 0 {
				t.Fatalf("zip64 field kept in %x", out)
			}
			b = b[4+n:]
		}
	})
}

// FuzzZipInput: any bytes as a firmware zip are opened, their names checked, and their image
// zip unpacked under a small budget and rebuilt, or refused with an error; never a panic, never a
// file outside the work directory.
func FuzzZipInput(f *testing.F) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range []string{"android-info.txt", "product.img", "../x.img"} {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate, Modified: time.Unix(1e9, 0)})
		w.Write(bytes.Repeat([]byte(n), 50))
	}
	zw.Close()
	f.Add(buf.Bytes())
	var outer bytes.Buffer
	zw = zip.NewWriter(&outer)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "d/image-a-b.zip", Method: zip.Store})
	w.Write(buf.Bytes())
	zw.Close()
	f.Add(outer.Bytes())
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		in := filepath.Join(dir, "fw.zip")
		if err := os.WriteFile(in, data, 0o644); err != nil {
			t.Fatal(err)
		}
		work := filepath.Join(dir, "work")
		if err := os.Mkdir(work, 0o755); err != nil {
			t.Fatal(err)
		}
		budget := int64(1 << 20)
		z, err := openZipInput(context.Background(), in, work, &budget)
		if err != nil {
			return
		}
		defer z.close()
		stage := filepath.Join(work, "in")
		os.Mkdir(stage, 0o755)
		for _, e := range z.inner.File {
			if err := extractEntry(context.Background(), in, e, filepath.Join(stage, e.Name), &budget); err != nil {
				if !errors.Is(err, ErrBadZip) && !errors.Is(err, os.ErrExist) {
					t.Fatalf("%s: %v", e.Name, err)
				}
				return
			}
		}
		if err := rebuildZip(context.Background(), filepath.Join(work, "out.zip"), z.inner, map[string]bool{}, stage, in); err != nil {
			return
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.Name() != "fw.zip" && e.Name() != "work" {
				t.Fatalf("%s written outside the work directory", e.Name())
			}
		}
	})
}
