package factoryzip

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/internal/samplefacts"
	"github.com/provkit/provkit/internal/testtool"
)

const androidInfo = "require board=oriole|raven\nrequire version-bootloader=slider-1.2-9152140\nrequire version-baseband=g5123b-107485-220831-B-9026839\n"

// realImages builds partition images with the reference tools: an ext4 system image made by
// mke2fs -d from an Android-like tree and turned into a sparse image by img2simg (as factory zips
// ship them), plus real vbmeta, boot and super_empty samples.
func realImages(t testing.TB) map[string][]byte {
	testtool.Require(t, "mke2fs", "img2simg")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "app", "Messenger"), 0o755)
	os.WriteFile(filepath.Join(tree, "build.prop"), []byte("ro.build.fingerprint=google/oriole/oriole:14/UP1A/1:user/release-keys\n"), 0o644)
	os.WriteFile(filepath.Join(tree, "app", "Messenger", "Messenger.apk"), bytes.Repeat([]byte("apk"), 50000), 0o644)
	raw := filepath.Join(dir, "system.raw")
	if out, err := exec.Command("mke2fs", "-q", "-t", "ext4", "-b", "4096", "-d", tree, raw, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	sparse := filepath.Join(dir, "system.img")
	if out, err := exec.Command("img2simg", raw, sparse).CombinedOutput(); err != nil {
		t.Fatalf("img2simg: %v\n%s", err, out)
	}
	imgs := map[string][]byte{}
	imgs["system.img"], _ = os.ReadFile(sparse)
	imgs["vbmeta.img"], _ = os.ReadFile(samplefacts.Path("aosp-gbl/android/vbmeta_v4_v4_a.img"))
	imgs["boot.img"], _ = os.ReadFile(samplefacts.Path("aosp-gbl/android/boot_v4_a.img"))
	imgs["super_empty.img"], _ = os.ReadFile(samplefacts.Path("aosp-system-core/super_empty.img"))
	return imgs
}

func writeZip(t testing.TB, entries map[string][]byte, method uint16) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range sortedKeys(entries) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(entries[n])
	}
	zw.Close()
	return buf.Bytes()
}

func sortedKeys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func factoryZip(t testing.TB, imgs map[string][]byte, innerMethod, outerMethod uint16) []byte {
	inner := map[string][]byte{"android-info.txt": []byte(androidInfo)}
	for k, v := range imgs {
		inner[k] = v
	}
	innerZip := writeZip(t, inner, innerMethod)
	outer := map[string][]byte{
		"oriole-up1a.220901.001/image-oriole-up1a.220901.001.zip":         innerZip,
		"oriole-up1a.220901.001/bootloader-oriole-slider-1.2-9152140.img": []byte("bootloader bytes"),
		"oriole-up1a.220901.001/radio-oriole-g5123b-107485.img":           []byte("radio bytes"),
		"oriole-up1a.220901.001/flash-all.sh":                             []byte("#!/bin/sh\nfastboot update image-oriole-up1a.220901.001.zip\n"),
	}
	return writeZip(t, outer, outerMethod)
}

func tempEntries(t *testing.T, dir string) int {
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestFactoryZipLayouts(t *testing.T) {
	imgs := realImages(t)
	for _, c := range []struct {
		name         string
		inner, outer uint16
	}{
		{"stored in stored", zip.Store, zip.Store},
		{"deflated in stored", zip.Deflate, zip.Store},
		{"stored in deflated", zip.Store, zip.Deflate},
		{"deflated in deflated", zip.Deflate, zip.Deflate},
	} {
		t.Run(c.name, func(t *testing.T) {
			z := factoryZip(t, imgs, c.inner, c.outer)
			tmp := t.TempDir()
			a, err := Open(bytes.NewReader(z), int64(len(z)), &Options{TempDir: tmp, MemoryLimit: 1024})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if a.Device != "oriole" || a.Build != "up1a.220901.001" || a.AndroidInfo.Board() != "oriole" ||
				strings.Join(a.AndroidInfo.Require["board"], ",") != "oriole,raven" || a.AndroidInfo.Require["version-baseband"][0] != "g5123b-107485-220831-B-9026839" {
				t.Fatalf("archive %+v info %+v", a, a.AndroidInfo)
			}
			var names []string
			for _, e := range a.Images {
				names = append(names, e.Name+"="+e.Partition)
				if e.Compressed != (c.inner == zip.Deflate || c.outer == zip.Deflate) {
					t.Errorf("%s compressed = %v", e.Name, e.Compressed)
				}
			}
			if strings.Join(names, " ") != "boot.img=boot super_empty.img=super_empty system.img=system vbmeta.img=vbmeta" {
				t.Fatalf("images %v", names)
			}
			var parts []string
			for _, f := range a.Files {
				parts = append(parts, f.Partition)
			}
			if strings.Join(parts, ",") != "bootloader,,radio" {
				t.Fatalf("files %+v", a.Files)
			}
			for name, want := range imgs {
				rd, err := a.OpenImage(strings.TrimSuffix(name, ".img"))
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(io.NewSectionReader(rd, 0, rd.Size()))
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s: %d bytes, %v; want the %d bytes that went in", name, len(got), err, len(want))
				}
			}
			// Extracted data lives in unlinked files: nothing is visible in the temp dir, even now.
			if n := tempEntries(t, tmp); n != 0 {
				t.Fatalf("%d files left in the temp dir", n)
			}
			if c.outer == zip.Deflate || c.inner == zip.Deflate {
				if len(a.temps) == 0 {
					t.Fatal("no temporary file used for entries above the memory limit")
				}
			}
		})
	}
}

func TestBareImageZip(t *testing.T) {
	z := writeZip(t, map[string][]byte{"android-info.txt": []byte(androidInfo), "vbmeta.img": []byte("AVB0 not really")}, zip.Deflate)
	a, err := Open(bytes.NewReader(z), int64(len(z)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.ImageZip != "" || len(a.Images) != 1 || a.Images[0].Partition != "vbmeta" {
		t.Fatalf("bare image zip: %+v", a)
	}
	z = writeZip(t, map[string][]byte{"payload.bin": []byte("CrAU")}, zip.Store)
	if _, err := Open(bytes.NewReader(z), int64(len(z)), nil); !errors.Is(err, ErrNotFactoryZip) {
		t.Fatalf("OTA zip: %v", err)
	}
}

// rawEntry writes an entry whose header declares size bytes but whose deflate data expands to data.
func bombZip(t *testing.T, declared uint64, data []byte) []byte {
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	fw.Write(data)
	fw.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "android-info.txt", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(androidInfo))
	w, err = zw.CreateRaw(&zip.FileHeader{Name: "system.img", Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(data),
		CompressedSize64: uint64(comp.Len()), UncompressedSize64: declared})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(comp.Bytes())
	zw.Close()
	return buf.Bytes()
}

func TestZipBombs(t *testing.T) {
	// 64 MiB of zeros declared as 4 KiB: extraction stops at the declared size.
	z := bombZip(t, 4096, make([]byte, 64<<20))
	a, err := Open(bytes.NewReader(z), int64(len(z)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.OpenImage("system"); err == nil || !strings.Contains(err.Error(), "system.img") {
		t.Fatalf("bomb: %v", err)
	}
	// A declared size above the extraction limit is refused before any work.
	z = bombZip(t, 8<<20, make([]byte, 8<<20))
	a, err = Open(bytes.NewReader(z), int64(len(z)), &Options{MaxExtract: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.OpenImage("system.img"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("limit: %v", err)
	}
	// Honest entries pass.
	z = bombZip(t, 8<<20, make([]byte, 8<<20))
	a, _ = Open(bytes.NewReader(z), int64(len(z)), &Options{TempDir: t.TempDir()})
	defer a.Close()
	if rd, err := a.OpenImage("system.img"); err != nil || rd.Size() != 8<<20 {
		t.Fatalf("honest entry: %v", err)
	}
}

func TestAndroidInfo(t *testing.T) {
	ai, err := ParseAndroidInfo([]byte("# comment\nrequire board=sargo\nrequire-for-product:sargo version-bootloader=b1c1-0.3\nrequire version-baseband=g670\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ai.Board() != "sargo" || ai.Require["version-bootloader"][0] != "b1c1-0.3" || len(ai.Lines) != 3 {
		t.Fatalf("%+v", ai)
	}
	if _, err := ParseAndroidInfo([]byte("require nonsense\n")); err == nil {
		t.Fatal("malformed line accepted")
	}
}

func FuzzOpen(f *testing.F) {
	small := map[string][]byte{"boot.img": []byte("ANDROID!"), "vbmeta.img": []byte("AVB0")}
	f.Add(factoryZip(f, small, zip.Store, zip.Store))
	f.Add(factoryZip(f, small, zip.Deflate, zip.Deflate))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Open(bytes.NewReader(data), int64(len(data)), &Options{TempDir: t.TempDir(), MaxExtract: 1 << 20})
		if err != nil {
			return
		}
		defer a.Close()
		for _, e := range a.Images {
			rd, err := a.OpenImage(e.Name)
			if err != nil {
				continue
			}
			if rd.Size() != e.Size {
				t.Fatalf("reader size %d != entry size %d", rd.Size(), e.Size)
			}
		}
	})
}

func FuzzParseAndroidInfo(f *testing.F) {
	f.Add([]byte(androidInfo))
	f.Add([]byte("require board=a|b\r\n# c\n  require-for-product:x version-bootloader=1\nrequire =x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ai, err := ParseAndroidInfo(data)
		if err != nil {
			return
		}
		if ai.Require == nil {
			t.Fatal("nil map")
		}
		// Lines are the kept lines as written: trimmed, non-empty, not comments, one line each.
		for _, l := range ai.Lines {
			if l == "" || l != strings.TrimSpace(l) || strings.HasPrefix(l, "#") || strings.ContainsAny(l, "\n") {
				t.Fatalf("line %q kept", l)
			}
		}
		n := 0
		for k, vs := range ai.Require {
			if k == "" || len(vs) == 0 {
				t.Fatalf("require %q=%q", k, vs)
			}
			n++
		}
		if n > len(ai.Lines) {
			t.Fatalf("%d required names from %d lines", n, len(ai.Lines))
		}
		// Parsing the kept lines again gives the same result.
		again, err := ParseAndroidInfo([]byte(strings.Join(ai.Lines, "\n")))
		if err != nil || !reflect.DeepEqual(again, ai) {
			t.Fatalf("reparsing the kept lines: %v, %+v vs %+v", err, again, ai)
		}
	})
}
