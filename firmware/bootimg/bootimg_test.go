package bootimg

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/internal/samplefacts"
	"github.com/provkit/provkit/internal/testtool"
)

// unpackFields runs Debian's unpack_bootimg and returns its "name: value" lines.
func unpackFields(t *testing.T, img string) map[string]string {
	t.Helper()
	out, err := exec.Command("unpack_bootimg", "--boot_img", img, "--out", t.TempDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("unpack_bootimg: %v\n%s", err, out)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			m[k] = v
		}
	}
	return m
}

func randFile(t *testing.T, dir, name string, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAgainstMkbootimg builds boot images v0-v3 and a vendor_boot v3 with Debian's mkbootimg and
// checks every header field and section against what went in and what unpack_bootimg reads.
func TestAgainstMkbootimg(t *testing.T) {
	testtool.Require(t, "mkbootimg", "unpack_bootimg")
	dir := t.TempDir()
	kernel := randFile(t, dir, "kernel", 5000)
	ramdisk := randFile(t, dir, "ramdisk", 3000)
	dtb := randFile(t, dir, "dtb", 700)
	for v := 0; v <= 3; v++ {
		t.Run("boot v"+strconv.Itoa(v), func(t *testing.T) {
			out := filepath.Join(dir, "boot"+strconv.Itoa(v)+".img")
			args := []string{"--kernel", filepath.Join(dir, "kernel"), "--ramdisk", filepath.Join(dir, "ramdisk"),
				"--cmdline", "console=ttyS0 androidboot.x=y", "--os_version", "13.1.2", "--os_patch_level", "2023-07",
				"--header_version", strconv.Itoa(v), "-o", out}
			if v == 2 {
				args = append(args, "--dtb", filepath.Join(dir, "dtb"))
			}
			if b, err := exec.Command("mkbootimg", args...).CombinedOutput(); err != nil {
				t.Fatalf("mkbootimg: %v\n%s", err, b)
			}
			data, _ := os.ReadFile(out)
			im, err := Open(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			ref := unpackFields(t, out)
			check := func(field string, got any) {
				t.Helper()
				if want, ok := ref[field]; !ok || want != strings.TrimSpace(toString(got)) {
					t.Errorf("%s: provkit %v, unpack_bootimg %q", field, got, ref[field])
				}
			}
			check("kernel_size", im.KernelSize)
			check("ramdisk size", im.RamdiskSize)
			check("boot image header version", im.HeaderVersion)
			check("os version", strings.Split(im.OSVersion.String(), " ")[0])
			check("os patch level", im.OSVersion.String()[len(im.OSVersion.String())-7:])
			check("command line args", im.Cmdline)
			if v < 3 {
				check("page size", im.PageSize)
			}
			if v >= 1 && v <= 2 {
				check("boot header size", im.HeaderSize)
			}
			if v == 2 {
				check("dtb size", im.DTBSize)
				assertSection(t, im, "dtb", dtb)
			}
			assertSection(t, im, "kernel", kernel)
			assertSection(t, im, "ramdisk", ramdisk)
		})
	}
	t.Run("vendor_boot v3", func(t *testing.T) {
		out := filepath.Join(dir, "vendor_boot.img")
		if b, err := exec.Command("mkbootimg", "--header_version", "3", "--vendor_boot", out, "--vendor_ramdisk", filepath.Join(dir, "ramdisk"),
			"--dtb", filepath.Join(dir, "dtb"), "--vendor_cmdline", "androidboot.hardware=provkit", "--pagesize", "4096").CombinedOutput(); err != nil {
			t.Fatalf("mkbootimg: %v\n%s", err, b)
		}
		data, _ := os.ReadFile(out)
		im, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		ref := unpackFields(t, out)
		if ref["vendor command line args"] != im.Cmdline || ref["vendor ramdisk size"] != toString(im.VendorRamdiskSize) {
			t.Fatalf("provkit %+v, unpack_bootimg %v", im, ref)
		}
		assertSection(t, im, "vendor_ramdisk", ramdisk)
		assertSection(t, im, "dtb", dtb)
	})
}

func toString(v any) string {
	switch v := v.(type) {
	case uint32:
		return strconv.FormatUint(uint64(v), 10)
	case string:
		return v
	}
	return ""
}

func assertSection(t *testing.T, im *Image, name string, want []byte) {
	t.Helper()
	s, err := im.Section(name)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(s)
	if !bytes.Equal(got, want) {
		t.Errorf("section %s: %d bytes differ from the %d bytes given to mkbootimg", name, len(got), len(want))
	}
}

func TestVendorBootV4Table(t *testing.T) {
	data, _ := os.ReadFile(samplefacts.Path("aosp-gbl/android/vendor_boot_v4_a.img"))
	im, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(im.VendorRamdisks) != 1 || im.VendorRamdisks[0].Size != im.VendorRamdiskSize || im.VendorRamdisks[0].Type != RamdiskTypePlatform {
		t.Fatalf("ramdisk table %+v", im.VendorRamdisks)
	}
	if !strings.Contains(im.Bootconfig, "=") {
		t.Fatalf("bootconfig %q", im.Bootconfig)
	}
	// A table entry pointing outside the vendor ramdisk is refused with its offset.
	tab := im.Sections[2].Offset
	bad := append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(bad[tab+4:], 1<<30)
	if _, err := Open(bytes.NewReader(bad), int64(len(bad))); err == nil || !strings.Contains(err.Error(), "runs past") {
		t.Fatalf("bad table entry: %v", err)
	}
	// An absurd entry count.
	bad = append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(bad[2116:], 1<<31)
	if _, err := Open(bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("absurd count: %v", err)
	}
}

func TestHostileHeaders(t *testing.T) {
	data, _ := os.ReadFile(samplefacts.Path("aosp-gbl/android/boot_v2_a.img"))
	bad := append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(bad[8:], 1<<31) // kernel size
	if _, err := Open(bytes.NewReader(bad), int64(len(bad))); err == nil || !strings.Contains(err.Error(), "kernel section") {
		t.Fatalf("huge kernel: %v", err)
	}
	bad = append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(bad[36:], 3) // page size
	if _, err := Open(bytes.NewReader(bad), int64(len(bad))); err == nil || !strings.Contains(err.Error(), "page size 3") {
		t.Fatalf("bad page size: %v", err)
	}
	if _, err := Open(bytes.NewReader(data[:100]), 100); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := Open(bytes.NewReader([]byte("hello world")), 11); !errors.Is(err, ErrNotBootImage) {
		t.Fatalf("text: %v", err)
	}
	dt, _ := os.ReadFile(samplefacts.Path("aosp-gbl/android/dtbo_a.img"))
	bad = append([]byte(nil), dt...)
	binary.BigEndian.PutUint32(bad[16:], 1<<20)
	if _, err := OpenDTTable(bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("dt count: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	for _, s := range []string{"boot_v0_a.img", "boot_v1_a.img", "boot_v2_a.img", "boot_v3_a.img", "boot_v4_a.img", "vendor_boot_v3_a.img", "vendor_boot_v4_a.img", "dtbo_a.img", "dtb_a.img"} {
		b, err := os.ReadFile(samplefacts.Path("aosp-gbl/android/" + s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if im, err := Open(bytes.NewReader(data), int64(len(data))); err == nil {
			for _, s := range im.Sections {
				if s.Offset < 0 || s.Offset+s.Size > int64(len(data)) {
					t.Fatalf("section %+v outside %d bytes", s, len(data))
				}
			}
		}
		if dt, err := OpenDTTable(bytes.NewReader(data), int64(len(data))); err == nil {
			for _, e := range dt.Entries {
				if int64(e.Offset)+int64(e.Size) > int64(len(data)) {
					t.Fatalf("entry %+v outside %d bytes", e, len(data))
				}
			}
		}
	})
}

// zeroTail reads head, then zeros up to size, without holding the zeros in memory.
type zeroTail struct {
	head []byte
	size int64
}

func (z zeroTail) ReadAt(p []byte, off int64) (int, error) {
	if off >= z.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > z.size-off {
		n = int(z.size - off)
	}
	clear(p[:n])
	if off < int64(len(z.head)) {
		copy(p, z.head[off:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestDTTableHugeEntrySize: a DT table whose entries claim to be 1 GiB each inside a 4 GiB image
// is read with memory for the 32 bytes of each entry that are decoded, not for the entry size.
func TestDTTableHugeEntrySize(t *testing.T) {
	h := make([]byte, dtHeaderSize)
	be := binary.BigEndian
	be.PutUint32(h, dtTableMagic)
	be.PutUint32(h[4:], 1<<32-1) // total_size
	be.PutUint32(h[8:], dtHeaderSize)
	be.PutUint32(h[12:], 1<<30) // dt_entry_size
	be.PutUint32(h[16:], 2)     // dt_entry_count
	be.PutUint32(h[20:], dtHeaderSize)
	r := zeroTail{head: h, size: 1<<32 - 1}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	dt, err := OpenDTTable(r, r.size)
	runtime.ReadMemStats(&after)
	if err != nil || len(dt.Entries) != 2 {
		t.Fatalf("OpenDTTable = %v, %v", dt, err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("reading two entry headers allocated %d bytes", n)
	}
}
