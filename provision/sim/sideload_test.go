package sim

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testimage"
)

// testOTA writes an A/B OTA zip whose payload carries a partition of pseudo-random bytes (so
// the package spans many 64 KiB blocks) and returns its path and SHA-256.
func testOTA(t *testing.T, dir, name string, metadata map[string]string) (string, string) {
	t.Helper()
	img := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range img {
		img[i] = byte(r.UintN(256))
	}
	path := filepath.Join(dir, name)
	testimage.OTAZip(t, path, testimage.FullPayload(t, map[string][]byte{"boot": img}), metadata)
	return path, fileSHA(t, path)
}

func fileSHA(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// corruptPayload flips a byte inside payload.bin's data, so FILE_HASH no longer matches while
// the zip stays well-formed.
func corruptPayload(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name == "payload.bin" {
			off, _ := f.DataOffset()
			b[off+int64(f.CompressedSize64)-100] ^= 0xff
		}
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRealADBSideload: Debian's adb sideloads an OTA package onto a phone in sideload mode: the
// simulator receives the same bytes (SHA-256), installs and reboots to Android; a corrupt
// package makes adb fail and the phone stay; a legacy device gets the pre-KitKat fallback.
func TestRealADBSideload(t *testing.T) {
	h := newADB(t)
	s := startSim(t, scenario(t, `
devices:
  - serial: SIDE1
    device: sim
    mode: sideload
    faults: {rebootDelay: 300ms}
  - serial: OLD1
    mode: sideload
    sideload: {legacy: true, stay: true}
`), 2)
	dev, old := s.Devices()[0], s.Devices()[1]
	dir := t.TempDir()
	ota, sum := testOTA(t, dir, "ota.zip", map[string]string{"pre-device": "sim"})
	bad := filepath.Join(dir, "bad.zip")
	corruptPayload(t, ota, bad)

	h.connect(dev.ADBAddr(), "sideload")
	// The corrupt package: adb serves it, the device rejects it and ends with FAILFAIL.
	out, errOut, err := h.run(60*time.Second, "-s", dev.ADBAddr(), "sideload", bad)
	if err == nil {
		t.Fatalf("adb sideload of a corrupt package succeeded: %s %s", out, errOut)
	}
	recs := dev.Sideloaded()
	if len(recs) != 1 || recs[0].OK || recs[0].SHA256 != fileSHA(t, bad) || !strings.Contains(recs[0].Reason, "hash mismatch") {
		t.Fatalf("after the corrupt package: %+v", recs)
	}
	if dev.Mode() != ModeSideload || dev.Reboots() != 0 {
		t.Fatalf("after a failed install the device is in %s after %d reboots, want to stay in sideload", dev.Mode(), dev.Reboots())
	}

	// The good package: adb succeeds, the device has the same bytes and reboots to Android.
	out, errOut, err = h.run(60*time.Second, "-s", dev.ADBAddr(), "sideload", ota)
	if err != nil || !strings.Contains(out, "Total xfer") {
		t.Fatalf("adb sideload: %v\n%s%s", err, out, errOut)
	}
	recs = dev.Sideloaded()
	if len(recs) != 2 || !recs[1].OK || recs[1].SHA256 != sum || recs[1].Service != "sideload-host" {
		t.Fatalf("after the good package: %+v (want sha256 %s)", recs, sum)
	}
	// Not strictly in order: the zip's end first, then the rest; every block at least once.
	fi, _ := os.Stat(ota)
	if blocks := int((fi.Size() + 65535) / 65536); recs[1].Requests < blocks {
		t.Errorf("%d block requests for %d blocks", recs[1].Requests, blocks)
	}
	deadline := time.Now().Add(20 * time.Second)
	for dev.Mode() != ModeAndroid || !dev.Up() {
		if time.Now().After(deadline) {
			t.Fatalf("device in %s (up %v) after a good sideload, want Android", dev.Mode(), dev.Up())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A legacy device refuses sideload-host; adb falls back to sideload:<size>.
	h.connect(old.ADBAddr(), "sideload")
	out, errOut, err = h.run(60*time.Second, "-s", old.ADBAddr(), "sideload", ota)
	if err != nil || !strings.Contains(errOut, "pre-KitKat") {
		t.Fatalf("legacy adb sideload: %v\n%s%s", err, out, errOut)
	}
	if recs := old.Sideloaded(); len(recs) != 1 || !recs[0].OK || recs[0].Service != "sideload" || recs[0].SHA256 != sum {
		t.Fatalf("legacy device: %+v", recs)
	}
	if old.Mode() != ModeSideload {
		t.Errorf("stay: true device went to %s", old.Mode())
	}
}

// TestSideloadDoneOnFailure: like a real recovery in sideload mode, a device with doneOnFailure
// ends a failed install with DONEDONE: adb reports success although nothing was installed, and
// only the device's record (its screen) says otherwise.
func TestSideloadDoneOnFailure(t *testing.T) {
	h := newADB(t)
	s := startSim(t, scenario(t, "devices: [{serial: REAL1, mode: sideload, sideload: {doneOnFailure: true}}]"), 1)
	dev := s.Devices()[0]
	dir := t.TempDir()
	ota, _ := testOTA(t, dir, "ota.zip", nil)
	bad := filepath.Join(dir, "bad.zip")
	corruptPayload(t, ota, bad)
	h.connect(dev.ADBAddr(), "sideload")
	if out, errOut, err := h.run(60*time.Second, "-s", dev.ADBAddr(), "sideload", bad); err != nil {
		t.Fatalf("adb sideload: %v %s %s", err, out, errOut)
	}
	if recs := dev.Sideloaded(); len(recs) != 1 || recs[0].OK || dev.Mode() != ModeSideload {
		t.Fatalf("%+v in %s", recs, dev.Mode())
	}
}

func TestCheckOTA(t *testing.T) {
	dir := t.TempDir()
	ota, _ := testOTA(t, dir, "ota.zip", map[string]string{"pre-device": "oriole,sim"})
	good, _ := os.ReadFile(ota)
	bad := filepath.Join(dir, "bad.zip")
	corruptPayload(t, ota, bad)
	corrupt, _ := os.ReadFile(bad)
	zipOf := func(entries ...testimage.ZipEntry) []byte {
		p := filepath.Join(t.TempDir(), "z.zip")
		testimage.Zip(t, p, entries)
		b, _ := os.ReadFile(p)
		return b
	}
	tests := []struct {
		name    string
		pkg     []byte
		device  string
		wantErr string
	}{
		{"good", good, "sim", ""},
		{"other device", good, "husky", "Package is for product oriole,sim but expected husky"},
		{"corrupt payload", corrupt, "sim", "hash mismatch"},
		{"not a zip", []byte("hello, recovery"), "sim", "footer is wrong"},
		{"truncated", good[:len(good)-10], "sim", "footer is wrong"},
		{"empty zip", zipOf(), "sim", "Can't find payload.bin nor update-binary"},
		{"non-A/B", zipOf(testimage.ZipEntry{Name: "META-INF/com/google/android/update-binary", Data: []byte("#!/sbin/sh")}), "sim", ""},
		{"no properties", zipOf(testimage.ZipEntry{Name: "payload.bin", Data: []byte("CrAU....")}), "sim", "payload_properties.txt"},
		{"bad magic", zipOf(testimage.ZipEntry{Name: "payload.bin", Data: []byte("XXXX....")}, testimage.ZipEntry{Name: "payload_properties.txt", Data: []byte("FILE_SIZE=8\n")}), "sim", "bad magic"},
		{"wrong size", zipOf(testimage.ZipEntry{Name: "payload.bin", Data: []byte("CrAU....")}, testimage.ZipEntry{Name: "payload_properties.txt", Data: []byte("FILE_SIZE=9\n")}), "sim", "FILE_SIZE says \"9\""},
		{"compressed payload", zipOf(testimage.ZipEntry{Name: "payload.bin", Data: []byte("CrAU...."), Deflate: true}, testimage.ZipEntry{Name: "payload_properties.txt", Data: []byte("FILE_SIZE=8\n")}), "sim", "compressed"},
	}
	for _, tt := range tests {
		err := checkOTA(tt.pkg, tt.device)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

// FuzzCheckOTA: the simulated recovery's package check never panics on what a host sends.
func FuzzCheckOTA(f *testing.F) {
	dir := f.TempDir()
	p := filepath.Join(dir, "z.zip")
	testimage.Zip(f, p, []testimage.ZipEntry{
		{Name: "payload.bin", Data: []byte("CrAU\x00\x00\x00\x00\x00\x00\x00\x02")},
		{Name: "payload_properties.txt", Data: []byte("FILE_SIZE=12\nFILE_HASH=x\n")},
		{Name: "META-INF/com/android/metadata", Data: []byte("pre-device=sim\n")},
	})
	b, _ := os.ReadFile(p)
	f.Add(b)
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, pkg []byte) {
		_ = checkOTA(pkg, "sim")
		centralDirectory(pkg, int64(len(pkg)))
	})
}

func TestSideloadScenarioErrors(t *testing.T) {
	for _, doc := range []string{
		"devices: [{sideload: {maxSize: 2G}}]",
		"devices: [{sideload: {maxSize: lots}}]",
		"devices: [{sideload: {nonsense: true}}]",
	} {
		if _, err := ParseScenario([]byte(doc), t.TempDir()); err == nil || !strings.Contains(err.Error(), "sideload") {
			t.Errorf("%s: %v", doc, err)
		}
	}
}
