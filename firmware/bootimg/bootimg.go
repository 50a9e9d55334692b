package bootimg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Errors callers can test with errors.Is.
var (
	ErrNotBootImage = errors.New("not an Android boot image: no ANDROID! or VNDRBOOT magic")
	ErrCorrupt      = errors.New("corrupt boot image")
)

// Kind tells a boot image from a vendor_boot image.
type Kind string

// Image kinds.
const (
	KindBoot       Kind = "boot"
	KindVendorBoot Kind = "vendor_boot"
)

// Header sizes.
const (
	bootV0Size   = 1632
	bootV1Size   = 1648
	bootV2Size   = 1660
	bootV3Size   = 1580
	bootV4Size   = 1584
	vendorV3Size = 2112
	vendorV4Size = 2128
	v3PageSize   = 4096
	// maxBootconfig bounds the bootconfig read into memory.
	maxBootconfig = 1 << 20
	// maxRamdiskEntries bounds the vendor ramdisk table.
	maxRamdiskEntries = 1024
)

// Vendor ramdisk types.
const (
	RamdiskTypeNone     = 0
	RamdiskTypePlatform = 1
	RamdiskTypeRecovery = 2
	RamdiskTypeDLKM     = 3
)

// OSVersion is the packed os_version field: Android version and security patch level.
type OSVersion struct {
	Major, Minor, Patch int
	Year, Month         int
}

func decodeOSVersion(v uint32) *OSVersion {
	if v == 0 {
		return nil
	}
	ver, lvl := v>>11, v&0x7ff
	return &OSVersion{Major: int(ver >> 14 & 0x7f), Minor: int(ver >> 7 & 0x7f), Patch: int(ver & 0x7f), Year: int(lvl>>4) + 2000, Month: int(lvl & 0xf)}
}

// String returns e.g. "12.0.0 patch 2022-05".
func (o *OSVersion) String() string {
	return fmt.Sprintf("%d.%d.%d patch %d-%02d", o.Major, o.Minor, o.Patch, o.Year, o.Month)
}

// Section is a named byte range of the image.
type Section struct {
	Name   string
	Offset int64
	Size   int64
}

// VendorRamdisk is one entry of the vendor ramdisk table (vendor_boot v4).
type VendorRamdisk struct {
	Name    string
	Type    uint32
	Offset  uint32 // within the vendor ramdisk section
	Size    uint32
	BoardID [16]uint32
}

// Image is a decoded boot or vendor_boot header.
type Image struct {
	Kind          Kind
	HeaderVersion uint32
	HeaderSize    uint32 // as stored (v1+), or the size of the version's header struct
	PageSize      uint32

	KernelSize, RamdiskSize, SecondSize    uint32
	KernelAddr, RamdiskAddr, SecondAddr    uint32
	TagsAddr                               uint32
	RecoveryDTBOSize                       uint32
	RecoveryDTBOOffset                     uint64
	DTBSize                                uint32
	DTBAddr                                uint64
	OSVersion                              *OSVersion // nil when unset
	Name                                   string
	Cmdline                                string // boot: cmdline + extra_cmdline; vendor_boot: vendor cmdline
	SignatureSize                          uint32 // boot v4
	VendorRamdiskSize                      uint32
	RamdiskTableSize, RamdiskTableEntryNum uint32
	RamdiskTableEntrySize, BootconfigSize  uint32
	VendorRamdisks                         []VendorRamdisk
	Bootconfig                             string
	Sections                               []Section
	// Notes records oddities that did not stop decoding.
	Notes []string

	r io.ReaderAt
}

// Open decodes the header of a boot or vendor_boot image of the given size.
func Open(r io.ReaderAt, size int64) (*Image, error) {
	hdr := make([]byte, vendorV4Size)
	n, err := r.ReadAt(hdr, 0)
	if n < 8 {
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("reading boot image header: %w", err)
		}
		return nil, ErrNotBootImage
	}
	hdr = hdr[:n]
	switch string(hdr[:8]) {
	case "ANDROID!":
		return openBoot(r, size, hdr)
	case "VNDRBOOT":
		return openVendor(r, size, hdr)
	}
	return nil, ErrNotBootImage
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.ToValidUTF8(string(b), "?")
}

func pages(size, page uint32) int64 {
	return (int64(size) + int64(page) - 1) / int64(page) * int64(page)
}

func need(hdr []byte, n int, what string) error {
	if len(hdr) < n {
		return fmt.Errorf("reading %s header: %d bytes, need %d: %w", what, len(hdr), n, ErrCorrupt)
	}
	return nil
}

func openBoot(r io.ReaderAt, size int64, hdr []byte) (*Image, error) {
	le := binary.LittleEndian
	if err := need(hdr, 44, "boot image"); err != nil {
		return nil, err
	}
	im := &Image{Kind: KindBoot, r: r, HeaderVersion: le.Uint32(hdr[40:])}
	if im.HeaderVersion >= 3 && im.HeaderVersion <= 4 {
		want := bootV3Size
		if im.HeaderVersion == 4 {
			want = bootV4Size
		}
		if err := need(hdr, want, "boot image v3/v4"); err != nil {
			return nil, err
		}
		im.PageSize = v3PageSize
		im.KernelSize = le.Uint32(hdr[8:])
		im.RamdiskSize = le.Uint32(hdr[12:])
		im.OSVersion = decodeOSVersion(le.Uint32(hdr[16:]))
		im.HeaderSize = le.Uint32(hdr[20:])
		im.Cmdline = cstr(hdr[44 : 44+1536])
		if im.HeaderVersion == 4 {
			im.SignatureSize = le.Uint32(hdr[1580:])
		}
		if im.HeaderSize != uint32(want) {
			im.Notes = append(im.Notes, fmt.Sprintf("header_size field is %d, v%d headers are %d bytes", im.HeaderSize, im.HeaderVersion, want))
		}
		off := int64(v3PageSize)
		im.add("kernel", &off, im.KernelSize)
		im.add("ramdisk", &off, im.RamdiskSize)
		if im.HeaderVersion == 4 {
			im.add("signature", &off, im.SignatureSize)
		}
		return im, im.checkSections(size)
	}
	if im.HeaderVersion > 4 {
		im.Notes = append(im.Notes, fmt.Sprintf("header_version field is %d (a legacy dt_size?); read as a v0 header", im.HeaderVersion))
		im.HeaderVersion = 0
	}
	want := []int{bootV0Size, bootV1Size, bootV2Size}[im.HeaderVersion]
	if err := need(hdr, want, fmt.Sprintf("boot image v%d", im.HeaderVersion)); err != nil {
		return nil, err
	}
	im.KernelSize, im.KernelAddr = le.Uint32(hdr[8:]), le.Uint32(hdr[12:])
	im.RamdiskSize, im.RamdiskAddr = le.Uint32(hdr[16:]), le.Uint32(hdr[20:])
	im.SecondSize, im.SecondAddr = le.Uint32(hdr[24:]), le.Uint32(hdr[28:])
	im.TagsAddr = le.Uint32(hdr[32:])
	im.PageSize = le.Uint32(hdr[36:])
	im.OSVersion = decodeOSVersion(le.Uint32(hdr[44:]))
	im.Name = cstr(hdr[48:64])
	im.Cmdline = cstr(hdr[64:576]) + cstr(hdr[608:1632])
	im.HeaderSize = uint32(want)
	if im.HeaderVersion >= 1 {
		im.RecoveryDTBOSize = le.Uint32(hdr[1632:])
		im.RecoveryDTBOOffset = le.Uint64(hdr[1636:])
		im.HeaderSize = le.Uint32(hdr[1644:])
	}
	if im.HeaderVersion == 2 {
		im.DTBSize = le.Uint32(hdr[1648:])
		im.DTBAddr = le.Uint64(hdr[1652:])
	}
	if err := checkPage(im.PageSize, "boot image"); err != nil {
		return nil, err
	}
	off := int64(im.PageSize)
	im.add("kernel", &off, im.KernelSize)
	im.add("ramdisk", &off, im.RamdiskSize)
	im.add("second", &off, im.SecondSize)
	if im.HeaderVersion >= 1 {
		im.add("recovery_dtbo", &off, im.RecoveryDTBOSize)
	}
	if im.HeaderVersion == 2 {
		im.add("dtb", &off, im.DTBSize)
	}
	return im, im.checkSections(size)
}

func checkPage(p uint32, what string) error {
	if p < 2048 || p > 1<<20 || p&(p-1) != 0 {
		return fmt.Errorf("reading %s header: page size %d at offset 36 is not a power of two from 2048 to 1 MiB: %w", what, p, ErrCorrupt)
	}
	return nil
}

// add appends a section at *off and advances *off by its page-aligned size.
func (im *Image) add(name string, off *int64, size uint32) {
	im.Sections = append(im.Sections, Section{Name: name, Offset: *off, Size: int64(size)})
	*off += pages(size, im.PageSize)
}

func (im *Image) checkSections(size int64) error {
	for _, s := range im.Sections {
		if s.Offset+s.Size > size {
			return fmt.Errorf("reading %s image: %s section at offset %d+%d runs past the image end %d: %w", im.Kind, s.Name, s.Offset, s.Size, size, ErrCorrupt)
		}
	}
	return nil
}

func openVendor(r io.ReaderAt, size int64, hdr []byte) (*Image, error) {
	le := binary.LittleEndian
	if err := need(hdr, vendorV3Size, "vendor_boot"); err != nil {
		return nil, err
	}
	im := &Image{Kind: KindVendorBoot, r: r, HeaderVersion: le.Uint32(hdr[8:])}
	if im.HeaderVersion != 3 && im.HeaderVersion != 4 {
		return nil, fmt.Errorf("reading vendor_boot header: version %d at offset 8, only 3 and 4 exist: %w", im.HeaderVersion, ErrCorrupt)
	}
	im.PageSize = le.Uint32(hdr[12:])
	im.KernelAddr = le.Uint32(hdr[16:])
	im.RamdiskAddr = le.Uint32(hdr[20:])
	im.VendorRamdiskSize = le.Uint32(hdr[24:])
	im.Cmdline = cstr(hdr[28:2076])
	im.TagsAddr = le.Uint32(hdr[2076:])
	im.Name = cstr(hdr[2080:2096])
	im.HeaderSize = le.Uint32(hdr[2096:])
	im.DTBSize = le.Uint32(hdr[2100:])
	im.DTBAddr = le.Uint64(hdr[2104:])
	if err := checkPage(im.PageSize, "vendor_boot"); err != nil {
		return nil, fmt.Errorf("%w (page size is at offset 12 in vendor_boot)", err)
	}
	if im.HeaderVersion == 4 {
		if err := need(hdr, vendorV4Size, "vendor_boot v4"); err != nil {
			return nil, err
		}
		im.RamdiskTableSize = le.Uint32(hdr[2112:])
		im.RamdiskTableEntryNum = le.Uint32(hdr[2116:])
		im.RamdiskTableEntrySize = le.Uint32(hdr[2120:])
		im.BootconfigSize = le.Uint32(hdr[2124:])
	}
	off := pages(im.HeaderSize, im.PageSize)
	im.add("vendor_ramdisk", &off, im.VendorRamdiskSize)
	im.add("dtb", &off, im.DTBSize)
	if im.HeaderVersion == 4 {
		im.add("vendor_ramdisk_table", &off, im.RamdiskTableSize)
		im.add("bootconfig", &off, im.BootconfigSize)
	}
	if err := im.checkSections(size); err != nil {
		return nil, err
	}
	if im.HeaderVersion == 4 {
		if err := im.readRamdiskTable(); err != nil {
			return nil, err
		}
		if im.BootconfigSize > maxBootconfig {
			return nil, fmt.Errorf("reading vendor_boot bootconfig: %d bytes exceed %d: %w", im.BootconfigSize, maxBootconfig, ErrCorrupt)
		}
		bc := make([]byte, im.BootconfigSize)
		s := im.Sections[3]
		if _, err := r.ReadAt(bc, s.Offset); err != nil {
			return nil, fmt.Errorf("reading vendor_boot bootconfig at offset %d: %w", s.Offset, err)
		}
		im.Bootconfig = strings.ToValidUTF8(string(bc), "?")
	}
	return im, nil
}

func (im *Image) readRamdiskTable() error {
	const entrySize = 108
	t := im.Sections[2]
	if im.RamdiskTableEntryNum == 0 {
		return nil
	}
	if im.RamdiskTableEntrySize < entrySize || im.RamdiskTableEntryNum > maxRamdiskEntries ||
		uint64(im.RamdiskTableEntryNum)*uint64(im.RamdiskTableEntrySize) > uint64(im.RamdiskTableSize) {
		return fmt.Errorf("reading vendor ramdisk table at offset %d: %d entries of %d bytes do not fit its %d bytes (entries are at least %d bytes, at most %d of them): %w",
			t.Offset, im.RamdiskTableEntryNum, im.RamdiskTableEntrySize, im.RamdiskTableSize, entrySize, maxRamdiskEntries, ErrCorrupt)
	}
	// Only the first entrySize bytes of each entry are decoded: read those, so that a hostile
	// entry size (bounded by the table size only) cannot make the table cost its size in memory.
	e := make([]byte, entrySize)
	le := binary.LittleEndian
	for i := 0; i < int(im.RamdiskTableEntryNum); i++ {
		at := t.Offset + int64(i)*int64(im.RamdiskTableEntrySize)
		if _, err := im.r.ReadAt(e, at); err != nil {
			return fmt.Errorf("reading vendor ramdisk table entry %d at offset %d: %w", i, at, err)
		}
		vr := VendorRamdisk{Size: le.Uint32(e), Offset: le.Uint32(e[4:]), Type: le.Uint32(e[8:]), Name: cstr(e[12:44])}
		for j := range vr.BoardID {
			vr.BoardID[j] = le.Uint32(e[44+4*j:])
		}
		if uint64(vr.Offset)+uint64(vr.Size) > uint64(im.VendorRamdiskSize) {
			return fmt.Errorf("reading vendor ramdisk table entry %d (%q) at offset %d: fragment %d+%d runs past the %d-byte vendor ramdisk: %w",
				i, vr.Name, at, vr.Offset, vr.Size, im.VendorRamdiskSize, ErrCorrupt)
		}
		im.VendorRamdisks = append(im.VendorRamdisks, vr)
	}
	return nil
}

// Section returns a reader over the named section (kernel, ramdisk, second, recovery_dtbo, dtb,
// signature, vendor_ramdisk, vendor_ramdisk_table, bootconfig).
func (im *Image) Section(name string) (*io.SectionReader, error) {
	for _, s := range im.Sections {
		if s.Name == name {
			return io.NewSectionReader(im.r, s.Offset, s.Size), nil
		}
	}
	return nil, fmt.Errorf("opening %s image section %q: no such section in a v%d image", im.Kind, name, im.HeaderVersion)
}
