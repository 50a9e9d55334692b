package avb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Sizes and limits.
const (
	HeaderSize = 256
	FooterSize = 64
	// MaxVBMetaSize is the largest vbmeta image accepted (libavb's limit for a vbmeta partition).
	MaxVBMetaSize = 64 << 10
	// maxDescriptors bounds the number of descriptors decoded from one image.
	maxDescriptors = 4096
)

// Vbmeta header flags.
const (
	FlagHashtreeDisabled     = 1 << 0
	FlagVerificationDisabled = 1 << 1
)

// Errors callers can test with errors.Is.
var (
	ErrNotVBMeta = errors.New("not a vbmeta image: no AVB0 magic")
	ErrNoFooter  = errors.New("no AVBf footer")
	ErrCorrupt   = errors.New("corrupt AVB data")
)

// Algorithm is a vbmeta signing algorithm.
type Algorithm uint32

// Algorithms defined by libavb.
const (
	AlgNone Algorithm = iota
	AlgSHA256RSA2048
	AlgSHA256RSA4096
	AlgSHA256RSA8192
	AlgSHA512RSA2048
	AlgSHA512RSA4096
	AlgSHA512RSA8192
)

var algNames = []string{"NONE", "SHA256_RSA2048", "SHA256_RSA4096", "SHA256_RSA8192", "SHA512_RSA2048", "SHA512_RSA4096", "SHA512_RSA8192"}

func (a Algorithm) String() string {
	if int(a) < len(algNames) {
		return algNames[a]
	}
	return fmt.Sprintf("UNKNOWN(%d)", uint32(a))
}

// params returns the digest size in bytes, the hash name and the RSA key size in bits.
func (a Algorithm) params() (hashLen int, hash string, bits int) {
	switch a {
	case AlgSHA256RSA2048:
		return 32, "sha256", 2048
	case AlgSHA256RSA4096:
		return 32, "sha256", 4096
	case AlgSHA256RSA8192:
		return 32, "sha256", 8192
	case AlgSHA512RSA2048:
		return 64, "sha512", 2048
	case AlgSHA512RSA4096:
		return 64, "sha512", 4096
	case AlgSHA512RSA8192:
		return 64, "sha512", 8192
	}
	return 0, "", 0
}

// VBMeta is a decoded vbmeta image.
type VBMeta struct {
	Offset int64 // where the image starts in its source

	RequiredMajor, RequiredMinor uint32
	AuthBlockSize, AuxBlockSize  uint64
	Algorithm                    Algorithm
	HashOffset, HashSize         uint64
	SignatureOffset, SigSize     uint64
	PublicKeyOffset              uint64
	PublicKeySize                uint64
	PublicKeyMetadataOffset      uint64
	PublicKeyMetadataSize        uint64
	DescriptorsOffset            uint64
	DescriptorsSize              uint64
	RollbackIndex                uint64
	Flags                        uint32
	RollbackIndexLocation        uint32
	ReleaseString                string

	PublicKey         []byte
	PublicKeyMetadata []byte
	Hash              []byte // stored in the authentication block
	Signature         []byte
	Descriptors       []Descriptor

	raw []byte // header + authentication block + auxiliary block
}

// Size returns the vbmeta image size: header plus both blocks.
func (v *VBMeta) Size() int64 { return int64(len(v.raw)) }

// Raw returns the vbmeta image bytes.
func (v *VBMeta) Raw() []byte { return v.raw }

// RequiredVersion returns "major.minor" of the libavb version the image needs.
func (v *VBMeta) RequiredVersion() string {
	return fmt.Sprintf("%d.%d", v.RequiredMajor, v.RequiredMinor)
}

// HashtreeDisabled reports the vbmeta flag that turns dm-verity off.
func (v *VBMeta) HashtreeDisabled() bool { return v.Flags&FlagHashtreeDisabled != 0 }

// VerificationDisabled reports the vbmeta flag that turns descriptor verification off.
func (v *VBMeta) VerificationDisabled() bool { return v.Flags&FlagVerificationDisabled != 0 }

// ParseVBMeta decodes the vbmeta image at off in r; avail is how many bytes from off may belong to it.
func ParseVBMeta(r io.ReaderAt, off, avail int64) (*VBMeta, error) {
	if avail < HeaderSize {
		return nil, fmt.Errorf("reading vbmeta header at offset %d: %d bytes, need %d: %w", off, avail, HeaderSize, ErrNotVBMeta)
	}
	h := make([]byte, HeaderSize)
	if _, err := r.ReadAt(h, off); err != nil {
		return nil, fmt.Errorf("reading vbmeta header at offset %d: %w", off, err)
	}
	if string(h[:4]) != "AVB0" {
		return nil, fmt.Errorf("reading vbmeta header at offset %d: %w", off, ErrNotVBMeta)
	}
	be := binary.BigEndian
	v := &VBMeta{
		Offset:                  off,
		RequiredMajor:           be.Uint32(h[4:]),
		RequiredMinor:           be.Uint32(h[8:]),
		AuthBlockSize:           be.Uint64(h[12:]),
		AuxBlockSize:            be.Uint64(h[20:]),
		Algorithm:               Algorithm(be.Uint32(h[28:])),
		HashOffset:              be.Uint64(h[32:]),
		HashSize:                be.Uint64(h[40:]),
		SignatureOffset:         be.Uint64(h[48:]),
		SigSize:                 be.Uint64(h[56:]),
		PublicKeyOffset:         be.Uint64(h[64:]),
		PublicKeySize:           be.Uint64(h[72:]),
		PublicKeyMetadataOffset: be.Uint64(h[80:]),
		PublicKeyMetadataSize:   be.Uint64(h[88:]),
		DescriptorsOffset:       be.Uint64(h[96:]),
		DescriptorsSize:         be.Uint64(h[104:]),
		RollbackIndex:           be.Uint64(h[112:]),
		Flags:                   be.Uint32(h[120:]),
		RollbackIndexLocation:   be.Uint32(h[124:]),
	}
	rs := h[128:176]
	if i := bytes.IndexByte(rs, 0); i >= 0 {
		rs = rs[:i]
	}
	v.ReleaseString = strings.ToValidUTF8(string(rs), "?")
	where := fmt.Sprintf("vbmeta at offset %d", off)
	if v.RequiredMajor != 1 {
		return nil, fmt.Errorf("reading %s: requires libavb %s, only 1.x is defined: %w", where, v.RequiredVersion(), ErrCorrupt)
	}
	if v.AuthBlockSize%64 != 0 || v.AuxBlockSize%64 != 0 {
		return nil, fmt.Errorf("reading %s: block sizes %d/%d are not multiples of 64: %w", where, v.AuthBlockSize, v.AuxBlockSize, ErrCorrupt)
	}
	if v.AuthBlockSize > MaxVBMetaSize || v.AuxBlockSize > MaxVBMetaSize || HeaderSize+v.AuthBlockSize+v.AuxBlockSize > MaxVBMetaSize {
		return nil, fmt.Errorf("reading %s: blocks of %d+%d bytes exceed the %d-byte vbmeta limit: %w", where, v.AuthBlockSize, v.AuxBlockSize, MaxVBMetaSize, ErrCorrupt)
	}
	total := int64(HeaderSize + v.AuthBlockSize + v.AuxBlockSize)
	if total > avail {
		return nil, fmt.Errorf("reading %s: %d bytes declared, only %d available: %w", where, total, avail, ErrCorrupt)
	}
	v.raw = make([]byte, total)
	if _, err := r.ReadAt(v.raw, off); err != nil {
		return nil, fmt.Errorf("reading %s: %w", where, err)
	}
	auth := v.raw[HeaderSize : HeaderSize+v.AuthBlockSize]
	aux := v.raw[HeaderSize+v.AuthBlockSize:]
	slice := func(block []byte, name string, o, n uint64) ([]byte, error) {
		if o > uint64(len(block)) || n > uint64(len(block))-o {
			return nil, fmt.Errorf("reading %s: %s at block offset %d+%d lies outside its %d-byte block: %w", where, name, o, n, len(block), ErrCorrupt)
		}
		return block[o : o+n : o+n], nil
	}
	var err error
	if v.Hash, err = slice(auth, "hash", v.HashOffset, v.HashSize); err != nil {
		return nil, err
	}
	if v.Signature, err = slice(auth, "signature", v.SignatureOffset, v.SigSize); err != nil {
		return nil, err
	}
	if v.PublicKey, err = slice(aux, "public key", v.PublicKeyOffset, v.PublicKeySize); err != nil {
		return nil, err
	}
	if v.PublicKeyMetadata, err = slice(aux, "public key metadata", v.PublicKeyMetadataOffset, v.PublicKeyMetadataSize); err != nil {
		return nil, err
	}
	desc, err := slice(aux, "descriptors", v.DescriptorsOffset, v.DescriptorsSize)
	if err != nil {
		return nil, err
	}
	descBase := off + HeaderSize + int64(v.AuthBlockSize) + int64(v.DescriptorsOffset)
	if v.Descriptors, err = parseDescriptors(desc, descBase); err != nil {
		return nil, err
	}
	return v, nil
}

// Footer is the AVBf footer at the end of a partition.
type Footer struct {
	VersionMajor, VersionMinor uint32
	OriginalImageSize          uint64
	VBMetaOffset               uint64
	VBMetaSize                 uint64
}

// Version returns "major.minor".
func (f *Footer) Version() string { return fmt.Sprintf("%d.%d", f.VersionMajor, f.VersionMinor) }

// ReadFooter reads the footer in the last 64 bytes of a partition of the given size.
func ReadFooter(r io.ReaderAt, size int64) (*Footer, error) {
	if size < FooterSize {
		return nil, ErrNoFooter
	}
	b := make([]byte, FooterSize)
	if _, err := r.ReadAt(b, size-FooterSize); err != nil {
		return nil, fmt.Errorf("reading AVB footer at offset %d: %w", size-FooterSize, err)
	}
	if string(b[:4]) != "AVBf" {
		return nil, ErrNoFooter
	}
	be := binary.BigEndian
	f := &Footer{
		VersionMajor:      be.Uint32(b[4:]),
		VersionMinor:      be.Uint32(b[8:]),
		OriginalImageSize: be.Uint64(b[12:]),
		VBMetaOffset:      be.Uint64(b[20:]),
		VBMetaSize:        be.Uint64(b[28:]),
	}
	limit := uint64(size - FooterSize)
	if f.VersionMajor != 1 {
		return nil, fmt.Errorf("reading AVB footer at offset %d: version %s, only 1.x is defined: %w", size-FooterSize, f.Version(), ErrCorrupt)
	}
	if f.OriginalImageSize > limit || f.VBMetaOffset > limit || f.VBMetaSize > limit-f.VBMetaOffset {
		return nil, fmt.Errorf("reading AVB footer at offset %d: original size %d or vbmeta %d+%d lie outside the %d-byte partition: %w",
			size-FooterSize, f.OriginalImageSize, f.VBMetaOffset, f.VBMetaSize, size, ErrCorrupt)
	}
	return f, nil
}

// Image is a partition or file holding AVB data: a bare vbmeta image, or any partition with a footer.
type Image struct {
	R      io.ReaderAt
	Size   int64
	Footer *Footer // nil for a bare vbmeta image
	VBMeta *VBMeta
}

// Open reads AVB data from r: a footer at the end when present, else a vbmeta image at offset 0.
func Open(r io.ReaderAt, size int64) (*Image, error) {
	im := &Image{R: r, Size: size}
	f, err := ReadFooter(r, size)
	switch {
	case err == nil:
		im.Footer = f
		if im.VBMeta, err = ParseVBMeta(r, int64(f.VBMetaOffset), int64(f.VBMetaSize)); err != nil {
			return nil, err
		}
		return im, nil
	case !errors.Is(err, ErrNoFooter):
		return nil, err
	}
	if im.VBMeta, err = ParseVBMeta(r, 0, min(size, MaxVBMetaSize)); err != nil {
		if errors.Is(err, ErrNotVBMeta) {
			return nil, fmt.Errorf("reading AVB data: %w and %w", ErrNoFooter, ErrNotVBMeta)
		}
		return nil, err
	}
	return im, nil
}
