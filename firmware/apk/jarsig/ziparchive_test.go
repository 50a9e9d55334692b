package jarsig_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/provkit/provkit/firmware/apk/jarsig"
)

// zipArchive adapts archive/zip to jarsig.Archive for tests (the strict ZIP reader lives in
// package apk). archive/zip checks each entry's size and CRC-32 when it is read to the end.
type zipArchive struct{ r *zip.Reader }

type zipEntry struct{ f *zip.File }

func (a zipArchive) Entries() []jarsig.Entry {
	out := make([]jarsig.Entry, len(a.r.File))
	for i, f := range a.r.File {
		out[i] = zipEntry{f}
	}
	return out
}

func (e zipEntry) Name() string                 { return e.f.Name }
func (e zipEntry) UncompressedSize() uint64     { return e.f.UncompressedSize64 }
func (e zipEntry) Open() (io.ReadCloser, error) { return e.f.Open() }
func (e zipEntry) LocalHeaderOffset() uint64 {
	off, err := e.f.DataOffset()
	if err != nil {
		return 0
	}
	return uint64(off)
}

func openZip(t testing.TB, b []byte) zipArchive {
	t.Helper()
	r, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("archive/zip: %v", err)
	}
	return zipArchive{r}
}

// signingBlockIDs returns the IDs of the pairs in the APK Signing Block of apk (nil when there
// is none or it is malformed, as apksig then falls back to JAR signing). Test-only: the real
// parser is in package apk.
func signingBlockIDs(apk []byte) map[uint32]bool {
	// End of central directory: the last "PK\x05\x06" with a consistent comment length.
	eocd := -1
	for i := len(apk) - 22; i >= 0 && i >= len(apk)-22-0xffff; i-- {
		if binary.LittleEndian.Uint32(apk[i:]) == 0x06054b50 && i+22+int(binary.LittleEndian.Uint16(apk[i+20:])) == len(apk) {
			eocd = i
			break
		}
	}
	if eocd < 0 {
		return nil
	}
	cdSize := int(binary.LittleEndian.Uint32(apk[eocd+12:]))
	cdOff := int(binary.LittleEndian.Uint32(apk[eocd+16:]))
	if cdOff+cdSize != eocd || cdOff < 32 || string(apk[cdOff-16:cdOff]) != "APK Sig Block 42" {
		return nil
	}
	size := int(binary.LittleEndian.Uint64(apk[cdOff-24:]))
	start := cdOff - size - 8
	if size < 24 || start < 0 || int(binary.LittleEndian.Uint64(apk[start:])) != size {
		return nil
	}
	ids := map[uint32]bool{}
	pairs := apk[start+8 : cdOff-24]
	for len(pairs) >= 12 {
		n := int(binary.LittleEndian.Uint64(pairs))
		if n < 4 || n > len(pairs)-8 {
			return nil
		}
		ids[binary.LittleEndian.Uint32(pairs[8:])] = true
		pairs = pairs[8+n:]
	}
	return ids
}

const (
	blockV2 = 0x7109871a
	blockV3 = 0xf05368c0
)

// foundSchemes mirrors how apksig fills foundApkSigSchemeIds before JAR verification, assuming
// the blocks present verify, and reports whether JAR verification runs at all.
func foundSchemes(ids map[uint32]bool, minSDK, maxSDK int) (map[int]bool, bool) {
	found := map[int]bool{}
	if maxSDK >= 28 && ids[blockV3] {
		found[3] = true
	}
	if maxSDK >= 24 && (minSDK < 28 || len(found) == 0) && ids[blockV2] {
		found[2] = true
	}
	return found, minSDK < 24 || len(found) == 0
}

var (
	aaptMu    sync.Mutex
	aaptCache = map[string]int{}
	sdkRE     = regexp.MustCompile(`(?m)^sdkVersion:'(\d+)'`)
)

// manifestMinSDK returns the APK's minSdkVersion as Debian's aapt reads it (1 without
// uses-sdk), ok false when aapt cannot read the manifest.
func manifestMinSDK(t testing.TB, aapt, path string) (int, bool) {
	aaptMu.Lock()
	defer aaptMu.Unlock()
	if v, ok := aaptCache[path]; ok {
		return v, v >= 0
	}
	out, err := exec.Command(aapt, "dump", "badging", path).Output()
	v := -1
	if err == nil {
		v = 1
		if m := sdkRE.FindSubmatch(out); m != nil {
			v, _ = strconv.Atoi(string(m[1]))
		}
	}
	aaptCache[path] = v
	return v, v >= 0
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// zipNewReader opens a ZIP; like apksig it inflates every method other than stored (the suite's
// weird-compression-method.apk uses method 21 for deflated data).
func zipNewReader(b []byte) (*zip.Reader, error) {
	r, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	r.RegisterDecompressor(21, func(rd io.Reader) io.ReadCloser { return flate.NewReader(rd) })
	return r, nil
}
