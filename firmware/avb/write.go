package avb

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
)

// Writing: vbmeta images, descriptors, public keys and footers in libavb's format, so a partition
// that changed can be given a new hashtree or hash footer and its vbmeta re-signed.

// ErrPartitionTooSmall means an image and its AVB metadata do not fit the partition size asked for.
var ErrPartitionTooSmall = errors.New("partition too small")

// AlgorithmByName returns the algorithm avbtool calls name (e.g. "SHA256_RSA4096").
func AlgorithmByName(name string) (Algorithm, error) {
	for i, n := range algNames {
		if strings.EqualFold(n, name) {
			return Algorithm(i), nil
		}
	}
	return 0, fmt.Errorf("unknown AVB algorithm %q (want one of %s)", name, strings.Join(algNames, ", "))
}

// Signer signs vbmeta images: Algorithm with Key (nil only for AlgNone).
type Signer struct {
	Algorithm Algorithm
	Key       *rsa.PrivateKey
}

// NewSigner checks that key fits alg; an empty alg picks SHA256 with the key's size.
func NewSigner(key *rsa.PrivateKey, alg string) (Signer, error) {
	if key == nil {
		return Signer{}, errors.New("no signing key")
	}
	bits := key.N.BitLen()
	if alg == "" {
		alg = fmt.Sprintf("SHA256_RSA%d", bits)
	}
	a, err := AlgorithmByName(alg)
	if err != nil {
		return Signer{}, err
	}
	_, _, want := a.params()
	if a == AlgNone {
		return Signer{}, errors.New("algorithm NONE signs nothing: pick SHA256_RSA2048/4096/8192 or SHA512_RSA2048/4096/8192")
	}
	if want != bits {
		return Signer{}, fmt.Errorf("algorithm %s needs a %d-bit RSA key, the key has %d bits", a, want, bits)
	}
	if key.E != 65537 {
		return Signer{}, fmt.Errorf("AVB keys use exponent 65537, the key has %d", key.E)
	}
	return Signer{Algorithm: a, Key: key}, nil
}

// ParsePrivateKeyPEM reads an RSA private key in PEM (PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE
// KEY"), as avbtool's --key takes it.
func ParsePrivateKeyPEM(b []byte) (*rsa.PrivateKey, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no RSA PRIVATE KEY or PRIVATE KEY PEM block")
		}
		switch blk.Type {
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, err
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("the key is a %T, AVB needs RSA", k)
			}
			return rk, nil
		}
	}
}

// EncodePublicKey encodes pub in AVB's public key format (bits, n0inv, n, rr).
func EncodePublicKey(pub *rsa.PublicKey) ([]byte, error) {
	bits := pub.N.BitLen()
	if bits != 2048 && bits != 4096 && bits != 8192 {
		return nil, fmt.Errorf("encoding AVB public key: %d-bit keys are not defined (2048, 4096, 8192)", bits)
	}
	n := bits / 8
	out := make([]byte, 8+2*n)
	binary.BigEndian.PutUint32(out, uint32(bits))
	m32 := new(big.Int).Lsh(big.NewInt(1), 32)
	inv := new(big.Int).ModInverse(new(big.Int).Mod(pub.N, m32), m32)
	binary.BigEndian.PutUint32(out[4:], uint32(new(big.Int).Sub(m32, inv).Uint64()))
	pub.N.FillBytes(out[8 : 8+n])
	rr := new(big.Int).Lsh(big.NewInt(1), uint(2*bits))
	rr.Mod(rr, pub.N)
	rr.FillBytes(out[8+n:])
	return out, nil
}

// PublicKeyBlob returns the signer's public key in AVB's encoding (nil for AlgNone).
func (s Signer) PublicKeyBlob() ([]byte, error) {
	if s.Key == nil {
		return nil, nil
	}
	return EncodePublicKey(&s.Key.PublicKey)
}

type enc struct{ b bytes.Buffer }

func (e *enc) u32(v uint32) { e.b.Write(binary.BigEndian.AppendUint32(nil, v)) }
func (e *enc) u64(v uint64) { e.b.Write(binary.BigEndian.AppendUint64(nil, v)) }
func (e *enc) str(s string, n int) {
	b := make([]byte, n)
	copy(b, s)
	e.b.Write(b)
}

// EncodeDescriptor encodes one descriptor (tag, length, body padded to 8 bytes).
func EncodeDescriptor(d Descriptor) ([]byte, error) {
	var e enc
	var tag uint64
	switch d := d.(type) {
	case *Property:
		tag = TagProperty
		e.u64(uint64(len(d.Key)))
		e.u64(uint64(len(d.Value)))
		e.b.WriteString(d.Key)
		e.b.WriteByte(0)
		e.b.Write(d.Value)
		e.b.WriteByte(0)
	case *Hashtree:
		tag = TagHashtree
		if len(d.HashAlgorithm) >= 32 {
			return nil, fmt.Errorf("encoding hashtree descriptor: hash algorithm name %q too long", d.HashAlgorithm)
		}
		e.u32(d.DMVerityVersion)
		e.u64(d.ImageSize)
		e.u64(d.TreeOffset)
		e.u64(d.TreeSize)
		e.u32(d.DataBlockSize)
		e.u32(d.HashBlockSize)
		e.u32(d.FECNumRoots)
		e.u64(d.FECOffset)
		e.u64(d.FECSize)
		e.str(d.HashAlgorithm, 32)
		e.u32(uint32(len(d.PartitionName)))
		e.u32(uint32(len(d.Salt)))
		e.u32(uint32(len(d.RootDigest)))
		e.u32(d.Flags)
		e.str("", 60)
		e.b.WriteString(d.PartitionName)
		e.b.Write(d.Salt)
		e.b.Write(d.RootDigest)
	case *Hash:
		tag = TagHash
		if len(d.HashAlgorithm) >= 32 {
			return nil, fmt.Errorf("encoding hash descriptor: hash algorithm name %q too long", d.HashAlgorithm)
		}
		e.u64(d.ImageSize)
		e.str(d.HashAlgorithm, 32)
		e.u32(uint32(len(d.PartitionName)))
		e.u32(uint32(len(d.Salt)))
		e.u32(uint32(len(d.Digest)))
		e.u32(d.Flags)
		e.str("", 60)
		e.b.WriteString(d.PartitionName)
		e.b.Write(d.Salt)
		e.b.Write(d.Digest)
	case *KernelCmdline:
		tag = TagKernelCmdline
		e.u32(d.Flags)
		e.u32(uint32(len(d.Cmdline)))
		e.b.WriteString(d.Cmdline)
	case *ChainPartition:
		tag = TagChainPartition
		e.u32(d.RollbackIndexLocation)
		e.u32(uint32(len(d.PartitionName)))
		e.u32(uint32(len(d.PublicKey)))
		e.u32(d.Flags)
		e.str("", 60)
		e.b.WriteString(d.PartitionName)
		e.b.Write(d.PublicKey)
	case *Unknown:
		tag = d.TagValue
		e.b.Write(d.Data)
	default:
		return nil, fmt.Errorf("encoding descriptor: unknown type %T", d)
	}
	body := e.b.Bytes()
	pad := (8 - len(body)%8) % 8
	out := make([]byte, 16, 16+len(body)+pad)
	binary.BigEndian.PutUint64(out, tag)
	binary.BigEndian.PutUint64(out[8:], uint64(len(body)+pad))
	out = append(out, body...)
	return append(out, make([]byte, pad)...), nil
}

// VBMetaOptions is what a vbmeta image holds besides its signature.
type VBMetaOptions struct {
	Descriptors           []Descriptor
	RollbackIndex         uint64
	RollbackIndexLocation uint32
	Flags                 uint32
	RequiredMinor         uint32
	ReleaseString         string // at most 47 bytes; "provkit" when empty
	PublicKeyMetadata     []byte
}

// OptionsOf returns v's content as options, so that a vbmeta can be rebuilt with some descriptors
// replaced and every other descriptor, property, flag and rollback index kept.
func OptionsOf(v *VBMeta) VBMetaOptions {
	return VBMetaOptions{
		Descriptors:           append([]Descriptor(nil), v.Descriptors...),
		RollbackIndex:         v.RollbackIndex,
		RollbackIndexLocation: v.RollbackIndexLocation,
		Flags:                 v.Flags,
		RequiredMinor:         v.RequiredMinor,
		ReleaseString:         v.ReleaseString,
		PublicKeyMetadata:     v.PublicKeyMetadata,
	}
}

// Replace swaps the hash or hashtree descriptor of d's partition for d (appending d when there is
// none) and reports whether one was replaced.
func (o *VBMetaOptions) Replace(d Descriptor) bool {
	name := descName(d)
	for i, old := range o.Descriptors {
		if old.Tag() == d.Tag() && descName(old) == name {
			o.Descriptors[i] = d
			return true
		}
	}
	o.Descriptors = append(o.Descriptors, d)
	return false
}

func descName(d Descriptor) string {
	switch d := d.(type) {
	case *Hashtree:
		return d.PartitionName
	case *Hash:
		return d.PartitionName
	case *ChainPartition:
		return d.PartitionName
	}
	return ""
}

func pad64(n int) int { return (n + 63) &^ 63 }

// BuildVBMeta encodes and signs a vbmeta image.
func BuildVBMeta(o VBMetaOptions, s Signer) ([]byte, error) {
	var descs []byte
	for i, d := range o.Descriptors {
		b, err := EncodeDescriptor(d)
		if err != nil {
			return nil, fmt.Errorf("building vbmeta: descriptor %d: %w", i, err)
		}
		descs = append(descs, b...)
	}
	pk, err := s.PublicKeyBlob()
	if err != nil {
		return nil, fmt.Errorf("building vbmeta: %w", err)
	}
	hashLen, hashName, bits := s.Algorithm.params()
	if s.Algorithm != AlgNone && (hashLen == 0 || s.Key == nil || s.Key.N.BitLen() != bits) {
		return nil, fmt.Errorf("building vbmeta: algorithm %s does not fit the key", s.Algorithm)
	}
	pkm := o.PublicKeyMetadata
	if s.Algorithm == AlgNone {
		pkm = nil
	}
	aux := make([]byte, 0, pad64(len(descs)+len(pk)+len(pkm)))
	aux = append(aux, descs...)
	aux = append(aux, pk...)
	aux = append(aux, pkm...)
	aux = append(aux, make([]byte, pad64(len(aux))-len(aux))...)
	sigLen := bits / 8
	authSize := 0
	if s.Algorithm != AlgNone {
		authSize = pad64(hashLen + sigLen)
	}
	if HeaderSize+authSize+len(aux) > MaxVBMetaSize {
		return nil, fmt.Errorf("building vbmeta: %d bytes exceed the %d-byte limit", HeaderSize+authSize+len(aux), MaxVBMetaSize)
	}
	rel := o.ReleaseString
	if rel == "" {
		rel = "provkit"
	}
	if len(rel) > 47 {
		rel = rel[:47]
	}
	minor := o.RequiredMinor
	if o.RollbackIndexLocation > 0 && minor < 1 {
		minor = 1 // libavb 1.1 introduced rollback index locations other than 0
	}
	h := make([]byte, HeaderSize)
	be := binary.BigEndian
	copy(h, "AVB0")
	be.PutUint32(h[4:], 1)
	be.PutUint32(h[8:], minor)
	be.PutUint64(h[12:], uint64(authSize))
	be.PutUint64(h[20:], uint64(len(aux)))
	be.PutUint32(h[28:], uint32(s.Algorithm))
	if s.Algorithm != AlgNone {
		be.PutUint64(h[32:], 0)
		be.PutUint64(h[40:], uint64(hashLen))
		be.PutUint64(h[48:], uint64(hashLen))
		be.PutUint64(h[56:], uint64(sigLen))
	}
	be.PutUint64(h[64:], uint64(len(descs)))
	be.PutUint64(h[72:], uint64(len(pk)))
	be.PutUint64(h[80:], uint64(len(descs)+len(pk)))
	be.PutUint64(h[88:], uint64(len(pkm)))
	be.PutUint64(h[96:], 0)
	be.PutUint64(h[104:], uint64(len(descs)))
	be.PutUint64(h[112:], o.RollbackIndex)
	be.PutUint32(h[120:], o.Flags)
	be.PutUint32(h[124:], o.RollbackIndexLocation)
	copy(h[128:175], rel)

	auth := make([]byte, authSize)
	if s.Algorithm != AlgNone {
		var digest []byte
		var ch crypto.Hash
		if hashName == "sha256" {
			d := sha256.New()
			d.Write(h)
			d.Write(aux)
			digest, ch = d.Sum(nil), crypto.SHA256
		} else {
			d := sha512.New()
			d.Write(h)
			d.Write(aux)
			digest, ch = d.Sum(nil), crypto.SHA512
		}
		sig, err := rsa.SignPKCS1v15(rand.Reader, s.Key, ch, digest)
		if err != nil {
			return nil, fmt.Errorf("building vbmeta: signing: %w", err)
		}
		copy(auth, digest)
		copy(auth[hashLen:], sig)
	}
	out := make([]byte, 0, HeaderSize+authSize+len(aux))
	out = append(out, h...)
	out = append(out, auth...)
	return append(out, aux...), nil
}

// EncodeFooter encodes an AVBf footer (version 1.0).
func EncodeFooter(f Footer) []byte {
	b := make([]byte, FooterSize)
	copy(b, "AVBf")
	binary.BigEndian.PutUint32(b[4:], 1)
	binary.BigEndian.PutUint32(b[8:], 0)
	binary.BigEndian.PutUint64(b[12:], f.OriginalImageSize)
	binary.BigEndian.PutUint64(b[20:], f.VBMetaOffset)
	binary.BigEndian.PutUint64(b[28:], f.VBMetaSize)
	return b
}

// ReadWriterAt is a file being given a footer, e.g. an *os.File.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// FooterOptions says how AddHashtreeFooter and AddHashFooter lay a partition out.
type FooterOptions struct {
	PartitionName string
	// PartitionSize is the size the partition ends up with (a multiple of BlockSize); 0 makes it as
	// small as the image and its metadata allow.
	PartitionSize int64
	HashAlgorithm string // "sha256" when empty
	Salt          []byte
	BlockSize     uint32 // data and hash block size; 4096 when 0
	Flags         uint32 // descriptor flags
	// FECRoots, when not 0, adds forward error correction data (libfec's Reed-Solomon layout
	// with this many parity roots, 2 in AOSP builds) after the hash tree, covering the data and
	// the tree, as avbtool add_hashtree_footer without --do_not_generate_fec does.
	FECRoots int
	// VBMeta is the content of the vbmeta embedded behind the footer, less the descriptor this
	// function computes (which is added to it).
	VBMeta VBMetaOptions
}

func (o *FooterOptions) defaults() {
	if o.HashAlgorithm == "" {
		o.HashAlgorithm = "sha256"
	}
	if o.BlockSize == 0 {
		o.BlockSize = 4096
	}
}

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }

// zero writes n zero bytes at off.
func zero(ctx context.Context, w io.WriterAt, off, n int64) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(n, int64(len(buf)))
		if _, err := w.WriteAt(buf[:k], off); err != nil {
			return err
		}
		off += k
		n -= k
	}
	return nil
}

// place writes vbmeta and the footer behind the data that ends at end, and returns the partition size.
func place(ctx context.Context, f ReadWriterAt, end int64, vb []byte, origSize int64, o *FooterOptions) (int64, error) {
	bs := int64(o.BlockSize)
	vbOff := end
	vbEnd := vbOff + roundUp(int64(len(vb)), bs)
	size := vbEnd + bs // the footer lives in the last block
	if o.PartitionSize > 0 {
		if o.PartitionSize%bs != 0 {
			return 0, fmt.Errorf("partition size %d is not a multiple of the %d-byte block", o.PartitionSize, bs)
		}
		if size > o.PartitionSize {
			return 0, fmt.Errorf("image of %d bytes with its metadata needs %d bytes, the %s partition holds %d: %w", origSize, size, o.PartitionName, o.PartitionSize, ErrPartitionTooSmall)
		}
		size = o.PartitionSize
	}
	if _, err := f.WriteAt(vb, vbOff); err != nil {
		return 0, err
	}
	if err := zero(ctx, f, vbOff+int64(len(vb)), size-FooterSize-vbOff-int64(len(vb))); err != nil {
		return 0, err
	}
	ft := EncodeFooter(Footer{OriginalImageSize: uint64(origSize), VBMetaOffset: uint64(vbOff), VBMetaSize: uint64(len(vb))})
	if _, err := f.WriteAt(ft, size-FooterSize); err != nil {
		return 0, err
	}
	return size, nil
}

// AddHashtreeFooter appends to the imageSize-byte file system in f its dm-verity hash tree, a
// vbmeta image holding the hashtree descriptor (plus o.VBMeta's descriptors) signed by s, and an
// AVBf footer, as avbtool add_hashtree_footer lays them out (with FEC data when o.FECRoots is set,
// as with --do_not_generate_fec otherwise). It returns the
// descriptor (to copy into the vbmeta partition) and the partition's final size; the caller
// truncates f to it.
func AddHashtreeFooter(ctx context.Context, f ReadWriterAt, imageSize int64, o FooterOptions, s Signer) (*Hashtree, int64, error) {
	o.defaults()
	bs := int64(o.BlockSize)
	padded := roundUp(imageSize, bs)
	if err := zero(ctx, f, imageSize, padded-imageSize); err != nil {
		return nil, 0, fmt.Errorf("padding %s image: %w", o.PartitionName, err)
	}
	root, tree, err := BuildHashtree(ctx, o.HashAlgorithm, o.Salt, o.BlockSize, o.BlockSize, f, uint64(padded))
	if err != nil {
		return nil, 0, fmt.Errorf("adding hashtree footer to %s: %w", o.PartitionName, err)
	}
	d := &Hashtree{
		DMVerityVersion: 1, ImageSize: uint64(padded), TreeOffset: uint64(padded), TreeSize: uint64(len(tree)),
		DataBlockSize: o.BlockSize, HashBlockSize: o.BlockSize, HashAlgorithm: o.HashAlgorithm,
		PartitionName: o.PartitionName, Salt: o.Salt, RootDigest: root, Flags: o.Flags,
	}
	if _, err := f.WriteAt(tree, padded); err != nil {
		return nil, 0, fmt.Errorf("writing %s hash tree: %w", o.PartitionName, err)
	}
	treeEnd := padded + roundUp(int64(len(tree)), bs)
	if err := zero(ctx, f, padded+int64(len(tree)), treeEnd-padded-int64(len(tree))); err != nil {
		return nil, 0, err
	}
	end := treeEnd
	if o.FECRoots > 0 {
		// libfec's parity over the data and the tree; avbtool keeps the parity bytes only (no
		// fec header) and pads them to a block.
		fec, err := BuildFEC(ctx, f, uint64(treeEnd), o.FECRoots, o.BlockSize)
		if err != nil {
			return nil, 0, fmt.Errorf("adding hashtree footer to %s: %w", o.PartitionName, err)
		}
		if _, err := f.WriteAt(fec, treeEnd); err != nil {
			return nil, 0, fmt.Errorf("writing %s FEC data: %w", o.PartitionName, err)
		}
		end = treeEnd + roundUp(int64(len(fec)), bs)
		if err := zero(ctx, f, treeEnd+int64(len(fec)), end-treeEnd-int64(len(fec))); err != nil {
			return nil, 0, err
		}
		d.FECNumRoots, d.FECOffset, d.FECSize = uint32(o.FECRoots), uint64(treeEnd), uint64(len(fec))
	}
	vo := o.VBMeta
	vo.Descriptors = append(append([]Descriptor(nil), vo.Descriptors...), d)
	vb, err := BuildVBMeta(vo, s)
	if err != nil {
		return nil, 0, fmt.Errorf("adding hashtree footer to %s: %w", o.PartitionName, err)
	}
	size, err := place(ctx, f, end, vb, imageSize, &o)
	if err != nil {
		return nil, 0, fmt.Errorf("adding hashtree footer to %s: %w", o.PartitionName, err)
	}
	return d, size, nil
}

// AddHashFooter is AddHashtreeFooter for partitions verified whole (boot, dtbo, ...): the digest is
// H(salt || image), the vbmeta follows the image at the next block boundary.
func AddHashFooter(ctx context.Context, f ReadWriterAt, imageSize int64, o FooterOptions, s Signer) (*Hash, int64, error) {
	o.defaults()
	h, err := newHash(o.HashAlgorithm)
	if err != nil {
		return nil, 0, fmt.Errorf("adding hash footer to %s: %w", o.PartitionName, err)
	}
	h.Write(o.Salt)
	if err := copyRange(ctx, h, f, 0, imageSize); err != nil {
		return nil, 0, fmt.Errorf("adding hash footer to %s: %w", o.PartitionName, err)
	}
	d := &Hash{ImageSize: uint64(imageSize), HashAlgorithm: o.HashAlgorithm, PartitionName: o.PartitionName, Salt: o.Salt, Digest: h.Sum(nil), Flags: o.Flags}
	vo := o.VBMeta
	vo.Descriptors = append(append([]Descriptor(nil), vo.Descriptors...), d)
	vb, err := BuildVBMeta(vo, s)
	if err != nil {
		return nil, 0, fmt.Errorf("adding hash footer to %s: %w", o.PartitionName, err)
	}
	end := roundUp(imageSize, int64(o.BlockSize))
	if err := zero(ctx, f, imageSize, end-imageSize); err != nil {
		return nil, 0, err
	}
	size, err := place(ctx, f, end, vb, imageSize, &o)
	if err != nil {
		return nil, 0, fmt.Errorf("adding hash footer to %s: %w", o.PartitionName, err)
	}
	return d, size, nil
}
