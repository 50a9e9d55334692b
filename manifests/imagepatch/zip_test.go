package imagepatch

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provkit/provkit/firmware/avb"
	"github.com/provkit/provkit/firmware/image"
	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/manifests/policy"
)

// zipMember is one entry a test zip is built from.
type zipMember struct {
	name   string
	data   []byte
	method uint16
	mode   os.FileMode
	when   time.Time
	extTS  bool // an extended timestamp extra field (what Info-ZIP and the Go writer add)
	cmt    string
}

// buildZip writes the members, in order, with archive/zip.
func buildZip(t *testing.T, dst string, members []zipMember, comment string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	// not the Go writer's default level, so an entry recompressed by the patch differs
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, flate.BestCompression) })
	for _, m := range members {
		fh := &zip.FileHeader{Name: m.name, Method: m.method, Comment: m.cmt}
		if m.extTS {
			fh.Modified = m.when
		} else {
			fh.ModifiedDate, fh.ModifiedTime = dosTime(m.when)
		}
		fh.SetMode(m.mode)
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.SetComment(comment); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	write(t, dst, buf.Bytes())
}

func dosTime(tm time.Time) (date, tim uint16) {
	return uint16((tm.Year()-1980)<<9 | int(tm.Month())<<5 | tm.Day()), uint16(tm.Hour()<<11 | tm.Minute()<<5 | tm.Second()/2)
}

var zipT0 = time.Date(2024, 3, 1, 12, 30, 10, 0, time.UTC)

// imageMembers lists the firmware directory's files as image zip members: android-info.txt
// first, then every file of dir (sorted), and a stored dtbo.img of random bytes that no patch
// touches.
func imageMembers(t *testing.T, dir string) []zipMember {
	t.Helper()
	ms := []zipMember{{name: "android-info.txt", data: []byte("require board=acme\nrequire version-bootloader=1.0\n"), method: zip.Deflate, mode: 0o644, when: zipT0, cmt: "fastboot checks this"}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, zipMember{name: e.Name(), data: b, method: zip.Deflate, mode: 0o644, when: zipT0.Add(time.Duration(i+1) * time.Hour), extTS: i%2 == 0})
	}
	rnd := make([]byte, 64<<10)
	rand.Read(rnd)
	// compressible but not trivially: deflate levels give different bytes for it
	words := []string{"dtb", "overlay", "fragment", "target", "status", "okay", "compatible", "acme,board", "0x1f", "\n"}
	var salad bytes.Buffer
	for salad.Len() < 256<<10 {
		salad.WriteString(words[int(rnd[salad.Len()%len(rnd)])%len(words)])
		salad.WriteByte(' ')
	}
	return append(ms, zipMember{name: "dtbo.img", data: salad.Bytes(), method: zip.Deflate, mode: 0o600, when: zipT0.Add(-time.Hour)},
		zipMember{name: "boot.img", data: rnd, method: zip.Store, mode: 0o644, when: zipT0.Add(-2 * time.Hour), extTS: true})
}

// factoryZip wraps an image zip into a factory zip: a directory entry, bootloader and radio
// images, flash-all.sh, and the image zip stored or deflated.
func factoryZip(t *testing.T, dst, imageZip string, method uint16) {
	t.Helper()
	iz, err := os.ReadFile(imageZip)
	if err != nil {
		t.Fatal(err)
	}
	boot := bytes.Repeat([]byte("bootloader"), 5000)
	radio := make([]byte, 32<<10)
	rand.Read(radio)
	buildZip(t, dst, []zipMember{
		{name: "acme-up1a/", mode: os.ModeDir | 0o755, when: zipT0},
		{name: "acme-up1a/bootloader-acme-1.0.img", data: boot, method: zip.Deflate, mode: 0o644, when: zipT0, extTS: true},
		{name: "acme-up1a/radio-acme-2.0.img", data: radio, method: zip.Store, mode: 0o644, when: zipT0},
		{name: "acme-up1a/flash-all.sh", data: []byte("#!/bin/sh\nfastboot flash bootloader bootloader-acme-1.0.img\nfastboot -w update image-acme-up1a.zip\n"), method: zip.Deflate, mode: 0o755, when: zipT0, cmt: "run me"},
		{name: "acme-up1a/image-acme-up1a.zip", data: iz, method: method, mode: 0o644, when: zipT0.Add(time.Minute)},
	}, "acme factory image")
}

func openZip(t *testing.T, p string) *zip.ReadCloser {
	t.Helper()
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zr.Close() })
	return zr
}

func rawBytes(t *testing.T, f *zip.File) []byte {
	t.Helper()
	r, err := f.OpenRaw()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func content(t *testing.T, f *zip.File) []byte {
	t.Helper()
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("%s: %v", f.Name, err)
	}
	return b
}

// sameShape checks that out has in's entries in in's order with the same names, methods, times,
// attributes and comments, and the unchanged ones (all but changed) with identical raw bytes.
// It returns out's entries by name.
func sameShape(t *testing.T, in, out *zip.Reader, changed map[string]bool) map[string]*zip.File {
	t.Helper()
	if in.Comment != out.Comment {
		t.Errorf("archive comment %q, want %q", out.Comment, in.Comment)
	}
	if len(in.File) != len(out.File) {
		t.Fatalf("%d entries, want %d", len(out.File), len(in.File))
	}
	byName := map[string]*zip.File{}
	for i, a := range in.File {
		b := out.File[i]
		byName[b.Name] = b
		if a.Name != b.Name || a.Method != b.Method || !a.Modified.Equal(b.Modified) || a.ModifiedDate != b.ModifiedDate ||
			a.ModifiedTime != b.ModifiedTime || a.ExternalAttrs != b.ExternalAttrs || a.Comment != b.Comment {
			t.Errorf("entry %d: %s method %d %v attrs %#x %q, want %s method %d %v attrs %#x %q", i, b.Name, b.Method, b.Modified, b.ExternalAttrs, b.Comment,
				a.Name, a.Method, a.Modified, a.ExternalAttrs, a.Comment)
		}
		if changed[a.Name] {
			if a.CRC32 == b.CRC32 {
				t.Errorf("%s: unchanged, but the patch should have rewritten it", a.Name)
			}
			continue
		}
		if a.CRC32 != b.CRC32 || !bytes.Equal(rawBytes(t, a), rawBytes(t, b)) {
			t.Errorf("%s: raw bytes differ, want a raw copy", a.Name)
		}
	}
	return byName
}

func unzipTest(t *testing.T, p string) {
	t.Helper()
	testtool.Require(t, "unzip")
	if out, err := exec.Command("unzip", "-t", p).CombinedOutput(); err != nil {
		t.Errorf("unzip -t %s: %v\n%s", p, err, out)
	}
}

// verifyExtracted writes product.img (the expanded partition as provkit reads it from the
// image) and vbmeta.img of the patched firmware into a directory and runs avbtool verify_image.
func verifyExtracted(t *testing.T, fx *fixture, fw string) {
	t.Helper()
	im, err := image.Open(context.Background(), fw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	check := t.TempDir()
	for _, name := range []string{"product", "vbmeta"} {
		p := im.Lookup(name)
		if p == nil {
			t.Fatalf("%s: no %s partition", fw, name)
		}
		if err := im.Load(name); err != nil {
			t.Fatal(err)
		}
		r, size, err := p.ReaderAt()
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		if _, err := r.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(check, name+".img"), b)
	}
	if v := testtool.Avbtool(t, fx.ref, "verify_image", "--image", filepath.Join(check, "vbmeta.img")); !strings.Contains(v, "Successfully verified sha256 hashtree") {
		t.Errorf("verify_image:\n%s", v)
	}
}

// onlyFiles fails unless dir holds exactly the named files (no temporary leftovers).
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

func sparseFile(t *testing.T, dir, name string) {
	t.Helper()
	testtool.Require(t, "img2simg", "simg2img")
	p := filepath.Join(dir, name)
	if out, err := exec.Command("img2simg", p, p+".s").CombinedOutput(); err != nil {
		t.Fatalf("img2simg: %v\n%s", err, out)
	}
	if err := os.Rename(p+".s", p); err != nil {
		t.Fatal(err)
	}
}

// TestPatchZip patches an image zip alone and factory zips (nested image zip stored or
// deflated; product.img raw, sparse, or inside a sparse super.img) into zips of the same shape:
// same entries, order, methods, times, attributes and comments, unchanged entries copied raw;
// unzip -t accepts the output, the audit passes on it where it failed on the input, avbtool
// verifies the patched product against the re-signed vbmeta, and nothing is left beside it.
func TestPatchZip(t *testing.T) {
	cases := []struct {
		name    string
		factory bool
		method  uint16 // of the nested image zip
		layout  string // "raw", "sparse" (product.img), "super" (sparse super.img)
	}{
		{"image zip", false, 0, "raw"},
		{"factory zip stored, sparse product", true, zip.Store, "sparse"},
		{"factory zip deflated, sparse super", true, zip.Deflate, "super"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fx := newFirmware(t, false, 0)
			switch c.layout {
			case "sparse":
				sparseFile(t, fx.fw, "product.img")
			case "super":
				superFirmware(t, fx, 32<<20)
				sparseFile(t, fx.fw, "super.img")
			}
			pol, err := policy.Load(fx.policyPath)
			if err != nil {
				t.Fatal(err)
			}
			zips := filepath.Join(fx.dir, "zips")
			imageZip := filepath.Join(zips, "image-acme-up1a.zip")
			buildZip(t, imageZip, imageMembers(t, fx.fw), "")
			in, label := imageZip, "image-acme-up1a.zip"
			if c.factory {
				in, label = filepath.Join(zips, "acme-up1a-factory.zip"), "acme-up1a/image-acme-up1a.zip"
				factoryZip(t, in, imageZip, c.method)
			}
			if auditDir(t, pol, in).Compliant {
				t.Fatal("the input already passes")
			}
			outDir := filepath.Join(fx.dir, "outdir")
			os.Mkdir(outDir, 0o755)
			out := filepath.Join(outDir, "patched.zip")
			rep, err := Run(context.Background(), Options{Policy: pol, Input: in, Out: out, Signer: signer(t, fx.ref, "testkey_rsa2048.pem"), Inspector: inspector{}})
			if err != nil {
				t.Fatal(err)
			}
			onlyFiles(t, outDir, "patched.zip")
			if rep.Input != in || rep.Output != out {
				t.Errorf("report input/output %q %q", rep.Input, rep.Output)
			}
			changedImgs := map[string]bool{"vbmeta.img": true}
			want := map[string]bool{label + "!vbmeta.img": true}
			if c.layout == "super" {
				changedImgs["super.img"], want[label+"!super.img!product_a"] = true, true
			} else {
				changedImgs["product.img"], want[label+"!product.img"] = true, true
			}
			for _, p := range rep.Partitions {
				if !want[p.File] {
					t.Errorf("report names %q", p.File)
				}
				if p.Sparse != (c.layout != "raw" && p.Name == "product") {
					t.Errorf("%s: sparse %v", p.File, p.Sparse)
				}
			}
			if len(rep.Partitions) != 2 {
				t.Errorf("partitions: %+v", rep.Partitions)
			}

			inZ, outZ := openZip(t, in), openZip(t, out)
			var inImg, outImg *zip.Reader
			if c.factory {
				outer := sameShape(t, &inZ.Reader, &outZ.Reader, map[string]bool{label: true})
				nested := outer[label]
				if nested.Method != c.method {
					t.Errorf("nested image zip stored with method %d, want %d", nested.Method, c.method)
				}
				b := content(t, nested)
				if outImg, err = zip.NewReader(bytes.NewReader(b), int64(len(b))); err != nil {
					t.Fatal(err)
				}
				ib, _ := os.ReadFile(imageZip)
				inImg, _ = zip.NewReader(bytes.NewReader(ib), int64(len(ib)))
				write(t, filepath.Join(fx.dir, "check", "image.zip"), b)
				unzipTest(t, filepath.Join(fx.dir, "check", "image.zip"))
			} else {
				inImg, outImg = &inZ.Reader, &outZ.Reader
			}
			unzipTest(t, out)
			files := sameShape(t, inImg, outImg, changedImgs)
			for name := range changedImgs {
				b := content(t, files[name])
				if c.layout != "raw" && name != "vbmeta.img" && !bytes.HasPrefix(b, []byte{0x3a, 0xff, 0x26, 0xed}) {
					t.Errorf("%s is no longer a sparse image", name)
				}
			}
			if a := auditDir(t, pol, out); !a.Compliant {
				t.Fatalf("the patched zip fails the audit: %+v", a.Apps)
			}
			verifyExtracted(t, fx, out)

			if c.layout == "super" {
				// the sparse output super, expanded, is the raw super patched by the directory path
				rawDir := filepath.Join(fx.dir, "rawfw")
				os.Mkdir(rawDir, 0o755)
				write(t, filepath.Join(rawDir, "super.img"), unsparse(t, filepath.Join(fx.fw, "super.img")))
				vb, _ := os.ReadFile(filepath.Join(fx.fw, "vbmeta.img"))
				write(t, filepath.Join(rawDir, "vbmeta.img"), vb)
				rawOut := filepath.Join(fx.dir, "rawout")
				if _, err := Run(context.Background(), Options{Policy: pol, Input: rawDir, Out: rawOut, Signer: signer(t, fx.ref, "testkey_rsa2048.pem"), Inspector: inspector{}}); err != nil {
					t.Fatal(err)
				}
				want, _ := os.ReadFile(filepath.Join(rawOut, "super.img"))
				sp := filepath.Join(fx.dir, "check", "super.simg")
				write(t, sp, content(t, files["super.img"]))
				if got := unsparse(t, sp); !bytes.Equal(got, want) {
					t.Errorf("simg2img of the output super.img (%d bytes) differs from the raw patch (%d bytes)", len(got), len(want))
				}
			}
		})
	}
}

// TestPatchZipToDirAndDryRun: a factory zip patched into a directory gives the image zip's
// members, which audit and verify; a dry run on the zip reports the same partitions and writes
// nothing; a directory input with a .zip --out is refused.
func TestPatchZipToDirAndDryRun(t *testing.T) {
	fx := newFirmware(t, false, 0)
	pol, err := policy.Load(fx.policyPath)
	if err != nil {
		t.Fatal(err)
	}
	zips := filepath.Join(fx.dir, "zips")
	imageZip := filepath.Join(zips, "image-acme-up1a.zip")
	buildZip(t, imageZip, imageMembers(t, fx.fw), "")
	in := filepath.Join(zips, "factory.zip")
	factoryZip(t, in, imageZip, zip.Deflate)
	s := signer(t, fx.ref, "testkey_rsa2048.pem")

	outDir := filepath.Join(fx.dir, "outdir")
	os.Mkdir(outDir, 0o755)
	dry, err := Run(context.Background(), Options{Policy: pol, Input: in, Out: filepath.Join(outDir, "p.zip"), Signer: s, Inspector: inspector{}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	onlyFiles(t, outDir)
	out := filepath.Join(outDir, "images")
	rep, err := Run(context.Background(), Options{Policy: pol, Input: in, Out: out, Signer: s, Inspector: inspector{}})
	if err != nil {
		t.Fatal(err)
	}
	onlyFiles(t, outDir, "images")
	onlyFiles(t, out, "android-info.txt", "boot.img", "dtbo.img", "product.img", "vbmeta.img")
	if len(dry.Partitions) != len(rep.Partitions) {
		t.Fatalf("dry run %d partitions, run %d", len(dry.Partitions), len(rep.Partitions))
	}
	for i := range rep.Partitions {
		if dry.Partitions[i].File != rep.Partitions[i].File || dry.Partitions[i].SHA256Before != rep.Partitions[i].SHA256Before {
			t.Errorf("dry run %+v, run %+v", dry.Partitions[i], rep.Partitions[i])
		}
	}
	if a := auditDir(t, pol, out); !a.Compliant {
		t.Fatalf("the patched directory fails the audit: %+v", a.Apps)
	}
	verifyExtracted(t, fx, out)
	ai, _ := os.ReadFile(filepath.Join(out, "android-info.txt"))
	if !strings.Contains(string(ai), "require board=acme") {
		t.Errorf("android-info.txt: %q", ai)
	}

	_, err = Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: filepath.Join(outDir, "x.zip"), Signer: s, Inspector: inspector{}})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("directory to zip: %v", err)
	}
	_, err = Run(context.Background(), Options{Policy: pol, Input: in, Out: out, Signer: s, Inspector: inspector{}})
	if err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("existing --out: %v", err)
	}
	onlyFiles(t, outDir, "images")
}

// countdownCtx is cancelled after its Err has been asked n times: it stops a run at every
// point that checks the context.
type countdownCtx struct {
	context.Context
	n *atomic.Int64
}

func (c countdownCtx) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// TestPatchZipHostile: a corrupt zip, a truncated entry, a zip bomb (more data than declared, or a
// declared size over the limit), names with ../, an absolute path or a directory, a CRC mismatch,
// and a cancelled context each stop the patch with an error naming the zip (and the entry), with
// nothing left beside --out.
func TestPatchZipHostile(t *testing.T) {
	fx := newFirmware(t, false, 0)
	pol, err := policy.Load(fx.policyPath)
	if err != nil {
		t.Fatal(err)
	}
	s := signer(t, fx.ref, "testkey_rsa2048.pem")
	zips := filepath.Join(fx.dir, "zips")
	good := imageMembers(t, fx.fw)
	goodZip := filepath.Join(zips, "image-acme-up1a.zip")
	buildZip(t, goodZip, good, "")
	goodBytes, _ := os.ReadFile(goodZip)

	// cdPatch rewrites a field of entry name's central directory header (off: 16 CRC, 20
	// compressed size, 24 uncompressed size).
	cdPatch := func(b []byte, name string, off int, v uint32) []byte {
		b = bytes.Clone(b)
		i := bytes.Index(b, append([]byte("PK\x01\x02"), []byte{}...))
		for i >= 0 {
			nl := int(b[i+28]) | int(b[i+29])<<8
			if string(b[i+46:i+46+nl]) == name {
				b[i+off], b[i+off+1], b[i+off+2], b[i+off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
				return b
			}
			j := bytes.Index(b[i+4:], []byte("PK\x01\x02"))
			if j < 0 {
				break
			}
			i += 4 + j
		}
		t.Fatalf("no central directory entry %s", name)
		return nil
	}
	var productSize uint32
	var bootOff int
	{
		zr, _ := zip.NewReader(bytes.NewReader(goodBytes), int64(len(goodBytes)))
		for _, f := range zr.File {
			if f.Name == "product.img" {
				productSize = uint32(f.UncompressedSize64)
			}
			if f.Name == "boot.img" {
				o, _ := f.DataOffset()
				bootOff = int(o)
			}
		}
	}
	crcBad := bytes.Clone(goodBytes)
	crcBad[bootOff+100] ^= 0xff
	renamed := func(old, name string) []zipMember {
		ms := append([]zipMember{}, good...)
		for i := range ms {
			if ms[i].name == old {
				ms[i].name = name
			}
		}
		return ms
	}
	cases := []struct {
		name   string
		data   []byte
		member []zipMember
		limit  int64
		want   []string
	}{
		{name: "corrupt", data: append([]byte("PK\x03\x04"), bytes.Repeat([]byte{0xa5}, 4000)...), want: []string{"bad firmware zip"}},
		{name: "truncated zip", data: goodBytes[:len(goodBytes)/2], want: []string{"bad firmware zip"}},
		{name: "truncated entry", data: cdPatch(goodBytes, "product.img", 24, productSize+4096), want: []string{"product.img", "unexpected EOF"}},
		{name: "bomb", data: cdPatch(goodBytes, "product.img", 24, productSize-4096), want: []string{"product.img", "bad firmware zip"}},
		{name: "over the limit", data: goodBytes, limit: 1 << 20, want: []string{"product.img", "MaxExtract"}},
		{name: "crc", data: crcBad, want: []string{"boot.img", "checksum"}},
		{name: "dotdot", member: renamed("dtbo.img", "../dtbo.img"), want: []string{"../dtbo.img", `".."`}},
		{name: "absolute", member: renamed("dtbo.img", "/etc/dtbo.img"), want: []string{"/etc/dtbo.img", "absolute"}},
		{name: "directory", member: renamed("dtbo.img", "sub/dtbo.img"), want: []string{"sub/dtbo.img", "top level"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(fx.dir, "hostile-"+c.name)
			in := filepath.Join(dir, "image-acme-up1a.zip")
			if c.member != nil {
				buildZip(t, in, c.member, "")
			} else {
				write(t, in, c.data)
			}
			for _, dry := range []bool{false, true} {
				_, err := Run(context.Background(), Options{Policy: pol, Input: in, Out: filepath.Join(dir, "out.zip"), Signer: s, Inspector: inspector{}, MaxExtract: c.limit, DryRun: dry})
				if err == nil {
					t.Fatal("patched")
				}
				msg := err.Error()
				for _, w := range append(c.want, in) {
					if !strings.Contains(msg, w) {
						t.Errorf("dry run %v: error %q does not say %q", dry, msg, w)
					}
				}
				onlyFiles(t, dir, "image-acme-up1a.zip")
			}
		})
	}

	// the same bad image zip nested in a factory zip: the error names the factory zip and the entry
	dir := filepath.Join(fx.dir, "hostile-nested")
	bad := filepath.Join(fx.dir, "hostile-crc", "image-acme-up1a.zip")
	in := filepath.Join(dir, "factory.zip")
	factoryZip(t, in, bad, zip.Store)
	_, err = Run(context.Background(), Options{Policy: pol, Input: in, Out: filepath.Join(dir, "out.zip"), Signer: s, Inspector: inspector{}})
	if err == nil || !strings.Contains(err.Error(), in+"!acme-up1a/image-acme-up1a.zip!boot.img") || !errors.Is(err, ErrBadZip) {
		t.Errorf("nested: %v", err)
	}
	onlyFiles(t, dir, "factory.zip")

	// a disk without the room for the unpacked image zip: refused before unpacking
	dir = filepath.Join(fx.dir, "hostile-full")
	in = filepath.Join(dir, "image-acme-up1a.zip")
	write(t, in, goodBytes)
	saved := freeBytes
	freeBytes = func(string) (int64, error) { return 1 << 20, nil }
	_, err = Run(context.Background(), Options{Policy: pol, Input: in, Out: filepath.Join(dir, "out.zip"), Signer: s, Inspector: inspector{}})
	freeBytes = saved
	if err == nil || !strings.Contains(err.Error(), "not enough free space in "+dir) || !strings.Contains(err.Error(), "1 MiB are free") {
		t.Errorf("full disk: %v", err)
	}
	onlyFiles(t, dir, "image-acme-up1a.zip")

	// an error of the directory patch names the zip, not the temporary directory
	dir = filepath.Join(fx.dir, "hostile-noproduct")
	in = filepath.Join(dir, "image-acme-up1a.zip")
	var noProduct []zipMember
	for _, m := range good {
		if m.name != "product.img" {
			noProduct = append(noProduct, m)
		}
	}
	buildZip(t, in, noProduct, "")
	_, err = Run(context.Background(), Options{Policy: pol, Input: in, Out: filepath.Join(dir, "out.zip"), Signer: s, Inspector: inspector{}})
	if err == nil || !strings.Contains(err.Error(), "patching "+in+": the policy puts apps on product") || strings.Contains(err.Error(), ".tmp-") {
		t.Errorf("no product: %v", err)
	}
	onlyFiles(t, dir, "image-acme-up1a.zip")

	// Ctrl-C at every point the run checks: a cancellation error, nothing left behind
	dir = filepath.Join(fx.dir, "cancel")
	in = filepath.Join(dir, "factory.zip")
	factoryZip(t, in, goodZip, zip.Deflate)
	cancelEverywhere(t, pol, s, in)
}

// cancelEverywhere runs the patch of the zip in with a context cancelled after 0, 1, 2, ...
// checks, until it completes: each run fails with context.Canceled and leaves nothing beside in.
func cancelEverywhere(t *testing.T, pol *policy.Policy, s avb.Signer, in string) {
	t.Helper()
	dir := filepath.Dir(in)
	completed := false
	runs := 0
	for n := int64(0); n < 1e6; n += max(1, n/5) {
		runs++
		var left atomic.Int64
		left.Store(n)
		_, err := Run(countdownCtx{Context: context.Background(), n: &left}, Options{Policy: pol, Input: in, Out: filepath.Join(dir, "out.zip"), Signer: s, Inspector: inspector{}})
		if err == nil {
			completed = true
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled after %d checks: %v", n, err)
		}
		onlyFiles(t, dir, filepath.Base(in))
	}
	if !completed || runs < 10 {
		t.Errorf("completed %v after %d runs: the countdown does not stop the run at enough points", completed, runs)
	}
	t.Logf("cancelled at %d points before the run completed", runs-1)
}

// TestPatchZipCancelSparseSuper: Ctrl-C at every point of patching a factory zip whose super.img
// is sparse (unpacking, expanding, writing into super, making it sparse again, rebuilding both
// zips) stops cleanly.
func TestPatchZipCancelSparseSuper(t *testing.T) {
	fx := newFirmware(t, false, 0)
	superFirmware(t, fx, 32<<20)
	sparseFile(t, fx.fw, "super.img")
	pol, err := policy.Load(fx.policyPath)
	if err != nil {
		t.Fatal(err)
	}
	imageZip := filepath.Join(fx.dir, "zips", "image-acme-up1a.zip")
	buildZip(t, imageZip, imageMembers(t, fx.fw), "")
	in := filepath.Join(fx.dir, "cancel", "factory.zip")
	factoryZip(t, in, imageZip, zip.Store)
	cancelEverywhere(t, pol, signer(t, fx.ref, "testkey_rsa2048.pem"), in)
}
