package flash

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func zipBytes(t *testing.T, method uint16, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for n, c := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(c)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFactoryZipReadInPlace(t *testing.T) {
	for _, method := range []uint16{zip.Store, zip.Deflate} {
		inner := zipBytes(t, zip.Store, map[string][]byte{
			"android-info.txt": []byte("require board=oriole\n"),
			"boot.img":         bytes.Repeat([]byte("B"), 10000),
			"system.img":       []byte("SYSTEM"),
		})
		outer := zipBytes(t, method, map[string][]byte{
			"oriole-1/bootloader-oriole-1.2.img": []byte("BL"),
			"oriole-1/flash-all.sh":              []byte("#!/bin/sh\n"),
			"oriole-1/image-oriole-1.zip":        inner,
		})
		tmp := t.TempDir()
		path := filepath.Join(t.TempDir(), "oriole-factory.zip")
		os.WriteFile(path, outer, 0o644)
		fw, err := OpenFirmware(path, FirmwareOptions{TempDir: tmp})
		if err != nil {
			t.Fatalf("method %d: %v", method, err)
		}
		if fw.Info.Board() != "oriole" {
			t.Errorf("board %q", fw.Info.Board())
		}
		var parts []string
		for _, im := range fw.Images {
			parts = append(parts, im.Partition)
		}
		if got := fmtList(parts); got != "bootloader,boot,system" && got != "boot,bootloader,system" {
			t.Errorf("method %d: partitions %s", method, got)
		}
		im, _ := fw.Image("boot")
		r, err := im.Open()
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 3)
		if _, err := r.ReadAt(b, 9997); err != nil || string(b) != "BBB" {
			t.Errorf("method %d: read %q %v", method, b, err)
		}
		r.Close()
		if err := fw.Close(); err != nil {
			t.Error(err)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Errorf("method %d: %d temporary files left after Close", method, len(ents))
		}
	}
}

func fmtList(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}
