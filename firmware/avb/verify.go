package avb

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/big"
	"strings"
)

// PublicKey is a decoded AVB public key.
type PublicKey struct {
	Bits  int
	N0Inv uint32
	N     *big.Int
	RR    *big.Int
}

// ParsePublicKey decodes AVB's public key encoding and checks that n0inv and rr agree with n.
func ParsePublicKey(b []byte) (*PublicKey, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("reading AVB public key: %d bytes, need an 8-byte header: %w", len(b), ErrCorrupt)
	}
	bits := binary.BigEndian.Uint32(b)
	if bits != 2048 && bits != 4096 && bits != 8192 {
		return nil, fmt.Errorf("reading AVB public key: %d-bit keys are not defined (2048, 4096, 8192): %w", bits, ErrCorrupt)
	}
	n := int(bits / 8)
	if len(b) != 8+2*n {
		return nil, fmt.Errorf("reading AVB public key: %d bytes, want %d for a %d-bit key: %w", len(b), 8+2*n, bits, ErrCorrupt)
	}
	k := &PublicKey{Bits: int(bits), N0Inv: binary.BigEndian.Uint32(b[4:]), N: new(big.Int).SetBytes(b[8 : 8+n]), RR: new(big.Int).SetBytes(b[8+n:])}
	if k.N.Bit(0) == 0 || k.N.BitLen() != int(bits) {
		return nil, fmt.Errorf("reading AVB public key: modulus is even or not %d bits long: %w", bits, ErrCorrupt)
	}
	// n0inv = -1/n mod 2^32
	m32 := new(big.Int).Lsh(big.NewInt(1), 32)
	inv := new(big.Int).ModInverse(new(big.Int).Mod(k.N, m32), m32)
	want := new(big.Int).Sub(m32, inv).Uint64()
	if uint64(k.N0Inv) != want {
		return nil, fmt.Errorf("reading AVB public key: n0inv %#x does not match the modulus (want %#x): %w", k.N0Inv, want, ErrCorrupt)
	}
	rr := new(big.Int).Lsh(big.NewInt(1), uint(2*bits))
	rr.Mod(rr, k.N)
	if rr.Cmp(k.RR) != 0 {
		return nil, fmt.Errorf("reading AVB public key: rr does not equal R² mod n: %w", ErrCorrupt)
	}
	return k, nil
}

// RSA returns the key as an rsa.PublicKey (AVB keys use exponent 65537).
func (k *PublicKey) RSA() *rsa.PublicKey { return &rsa.PublicKey{N: k.N, E: 65537} }

// KeyDigests returns the hex SHA-1 and SHA-256 of an AVB public key blob, as avbtool and
// bootloaders print them to identify a signer.
func KeyDigests(key []byte) (sha1Hex, sha256Hex string) {
	s1 := sha1.Sum(key)
	s2 := sha256.Sum256(key)
	return hex.EncodeToString(s1[:]), hex.EncodeToString(s2[:])
}

// SignatureResult says whether a vbmeta image is authentic.
type SignatureResult struct {
	Algorithm     string `json:"algorithm"`
	Signed        bool   `json:"signed"` // false for algorithm NONE
	KeyBits       int    `json:"key_bits,omitempty"`
	KeySHA1       string `json:"key_sha1,omitempty"`
	KeySHA256     string `json:"key_sha256,omitempty"`
	AuthHashOK    bool   `json:"auth_hash_ok"`    // the stored hash equals H(header || auxiliary block)
	SignatureOK   bool   `json:"signature_ok"`    // the RSA PKCS#1 v1.5 signature over that hash verifies
	Error         string `json:"error,omitempty"` // why the signature is not OK
	computedHash  []byte
	publicKeyBlob []byte
}

// VerifySignature checks the authentication block: the hash over header and auxiliary block and the
// RSA signature, with the public key embedded in the image. It says nothing about whether that key
// is trusted: compare KeySHA256 with the expected signer.
func (v *VBMeta) VerifySignature() SignatureResult {
	res := SignatureResult{Algorithm: v.Algorithm.String(), publicKeyBlob: v.PublicKey}
	if v.Algorithm == AlgNone {
		res.Error = "vbmeta is not signed (algorithm NONE)"
		return res
	}
	hlen, hname, bits := v.Algorithm.params()
	if hlen == 0 {
		res.Error = fmt.Sprintf("unknown algorithm %d", uint32(v.Algorithm))
		return res
	}
	res.Signed = true
	res.KeySHA1, res.KeySHA256 = KeyDigests(v.PublicKey)
	var h hash.Hash
	var ch crypto.Hash
	if hname == "sha256" {
		h, ch = sha256.New(), crypto.SHA256
	} else {
		h, ch = sha512.New(), crypto.SHA512
	}
	h.Write(v.raw[:HeaderSize])
	h.Write(v.raw[HeaderSize+v.AuthBlockSize:])
	res.computedHash = h.Sum(nil)
	res.AuthHashOK = bytes.Equal(res.computedHash, v.Hash)
	key, err := ParsePublicKey(v.PublicKey)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.KeyBits = key.Bits
	if key.Bits != bits {
		res.Error = fmt.Sprintf("algorithm %s needs a %d-bit key, the image holds a %d-bit key", v.Algorithm, bits, key.Bits)
		return res
	}
	if err := rsa.VerifyPKCS1v15(key.RSA(), ch, res.computedHash, v.Signature); err != nil {
		res.Error = fmt.Sprintf("RSA signature does not verify: %v", err)
		return res
	}
	res.SignatureOK = true
	if !res.AuthHashOK {
		res.Error = "stored hash differs from the hash of the image"
	}
	return res
}

func newHash(name string) (hash.Hash, error) {
	switch name {
	case "sha1":
		return sha1.New(), nil
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unsupported hash algorithm %q", name)
}

// VerifyHash recomputes a hash descriptor's digest, H(salt || r[:ImageSize]), from a partition of
// the given size. It returns whether it matches and the digest computed.
func VerifyHash(ctx context.Context, d *Hash, r io.ReaderAt, size int64) (bool, []byte, error) {
	h, err := newHash(d.HashAlgorithm)
	if err != nil {
		return false, nil, fmt.Errorf("verifying hash descriptor of %q: %w", d.PartitionName, err)
	}
	if d.ImageSize > uint64(size) {
		return false, nil, fmt.Errorf("verifying hash descriptor of %q: image_size %d exceeds the %d-byte partition", d.PartitionName, d.ImageSize, size)
	}
	h.Write(d.Salt)
	if err := copyRange(ctx, h, r, 0, int64(d.ImageSize)); err != nil {
		return false, nil, fmt.Errorf("verifying hash descriptor of %q: %w", d.PartitionName, err)
	}
	sum := h.Sum(nil)
	return bytes.Equal(sum, d.Digest), sum, nil
}

func copyRange(ctx context.Context, w io.Writer, r io.ReaderAt, off, n int64) error {
	buf := make([]byte, 1<<20)
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := buf[:min(int64(len(buf)), n)]
		if m, err := r.ReadAt(c, off); m < len(c) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading offset %d: %w", off+int64(m), err)
		}
		w.Write(c)
		off += int64(len(c))
		n -= int64(len(c))
	}
	return nil
}

// HashtreeResult is the outcome of recomputing a dm-verity hash tree.
type HashtreeResult struct {
	RootDigest   []byte // recomputed
	RootOK       bool   // equals the descriptor's root digest
	StoredTreeOK bool   // the tree stored at TreeOffset equals the recomputed tree
	// FirstBadTreeOffset is the partition offset of the first stored tree block that differs, or -1.
	FirstBadTreeOffset int64
	// StoredTreeErr says why the stored tree could not be read (e.g. an OTA payload partition whose
	// tree is computed on the device); the root digest is still checked.
	StoredTreeErr error
}

// HashtreeLevels returns the offset within the tree and the size of each level, level 0 (the hashes
// of the data blocks) first, as avbtool and dm-verity lay them out (top level first in the tree).
// digestSize is the digest size padded to a power of two. An image of one data block has no levels:
// its root digest is the hash of that block.
func HashtreeLevels(imageSize uint64, dataBlockSize, hashBlockSize uint32, digestSize int) (offsets, sizes []uint64, treeSize uint64) {
	hbs, dbs := uint64(hashBlockSize), uint64(dataBlockSize)
	if hbs < 2*uint64(digestSize) || dbs == 0 {
		return nil, nil, 0 // no tree: levels would not shrink
	}
	if imageSize <= dbs {
		return nil, nil, 0
	}
	blocks := (imageSize + dbs - 1) / dbs
	for {
		level := (blocks*uint64(digestSize) + hbs - 1) / hbs * hbs
		sizes = append(sizes, level)
		treeSize += level
		if level <= hbs {
			break
		}
		blocks = level / hbs
	}
	offsets = make([]uint64, len(sizes))
	for i := range sizes {
		for j := i + 1; j < len(sizes); j++ {
			offsets[i] += sizes[j]
		}
	}
	return offsets, sizes, treeSize
}

// VerifyHashtree recomputes the hash tree of the first ImageSize bytes of a partition of the given
// size, compares its root with the descriptor and, when the partition holds the tree (TreeSize > 0
// within the partition), every stored tree block with the recomputed one. Memory stays one block per
// tree level whatever the partition size.
func VerifyHashtree(ctx context.Context, d *Hashtree, r io.ReaderAt, size int64) (*HashtreeResult, error) {
	fail := func(err error) (*HashtreeResult, error) {
		return nil, fmt.Errorf("verifying hashtree descriptor of %q: %w", d.PartitionName, err)
	}
	if d.ImageSize > uint64(size) {
		return fail(fmt.Errorf("image_size %d exceeds the %d-byte partition", d.ImageSize, size))
	}
	res := &HashtreeResult{FirstBadTreeOffset: -1}
	checkStored := d.TreeSize > 0 && d.TreeOffset <= uint64(size) && d.TreeSize <= uint64(size)-d.TreeOffset
	res.StoredTreeOK = checkStored
	stored := make([]byte, d.HashBlockSize)
	root, _, err := walkHashtree(ctx, d.HashAlgorithm, d.Salt, d.DataBlockSize, d.HashBlockSize, r, d.ImageSize,
		func(treeSize uint64) error {
			if checkStored && d.TreeSize != treeSize {
				return fmt.Errorf("descriptor tree_size %d, recomputed layout needs %d", d.TreeSize, treeSize)
			}
			return nil
		},
		func(treeOff uint64, block []byte) {
			if !checkStored || res.FirstBadTreeOffset >= 0 || res.StoredTreeErr != nil {
				return
			}
			at := int64(d.TreeOffset + treeOff)
			if _, err := r.ReadAt(stored, at); err != nil {
				// The data can still be checked against the root digest; say why the tree was not.
				res.StoredTreeOK = false
				res.StoredTreeErr = fmt.Errorf("reading stored hash tree at offset %d: %w", at, err)
			} else if !bytes.Equal(stored, block) {
				res.StoredTreeOK = false
				res.FirstBadTreeOffset = at
			}
		})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return fail(err)
	}
	res.RootDigest = root
	res.RootOK = bytes.Equal(root, d.RootDigest)
	return res, nil
}

// VerifyFEC rebuilds the FEC a hashtree descriptor declares over the data and tree (the partition up
// to FECOffset) and compares it with the stored FEC. It returns nil when they are equal. The FEC is
// not signed: a difference breaks dm-verity's error correction, not the vbmeta.
func VerifyFEC(ctx context.Context, d *Hashtree, r io.ReaderAt, size int64) error {
	if d.FECNumRoots == 0 || d.FECSize == 0 {
		return fmt.Errorf("the hashtree descriptor of %q declares no FEC", d.PartitionName)
	}
	if d.FECOffset > uint64(size) || d.FECSize > uint64(size)-d.FECOffset || d.FECOffset%uint64(d.DataBlockSize) != 0 {
		return fmt.Errorf("FEC at %d+%d does not fit the %d-byte partition", d.FECOffset, d.FECSize, size)
	}
	if want := FECSize(d.FECOffset, int(d.FECNumRoots), d.DataBlockSize); want != d.FECSize {
		return fmt.Errorf("FEC size %d, libfec's layout needs %d for %d roots over %d bytes", d.FECSize, want, d.FECNumRoots, d.FECOffset)
	}
	fec, err := BuildFEC(ctx, r, d.FECOffset, int(d.FECNumRoots), d.DataBlockSize)
	if err != nil {
		return err
	}
	stored := make([]byte, 1<<20)
	for off := 0; off < len(fec); off += len(stored) {
		c := stored[:min(len(stored), len(fec)-off)]
		if _, err := r.ReadAt(c, int64(d.FECOffset)+int64(off)); err != nil {
			return fmt.Errorf("reading stored FEC at offset %d: %w", int64(d.FECOffset)+int64(off), err)
		}
		if !bytes.Equal(c, fec[off:off+len(c)]) {
			for i := range c {
				if c[i] != fec[off+i] {
					return fmt.Errorf("stored FEC differs from the FEC of the data at offset %d", int64(d.FECOffset)+int64(off+i))
				}
			}
		}
	}
	return nil
}

// MaxBuiltHashtree bounds the tree BuildHashtree keeps in memory (a 4 GiB partition with sha256 and
// 4 KiB blocks has a 32 MiB tree).
const MaxBuiltHashtree = 256 << 20

// BuildHashtree computes the dm-verity hash tree (avbtool and veritysetup layout: levels top first,
// digests padded to a power of two, the salt before every block) of the first imageSize bytes of r,
// and returns its root digest and the tree bytes.
func BuildHashtree(ctx context.Context, alg string, salt []byte, dataBlockSize, hashBlockSize uint32, r io.ReaderAt, imageSize uint64) (root, tree []byte, err error) {
	root, _, err = walkHashtree(ctx, alg, salt, dataBlockSize, hashBlockSize, r, imageSize,
		func(treeSize uint64) error {
			if treeSize > MaxBuiltHashtree {
				return fmt.Errorf("a hash tree of %d bytes exceeds the %d kept in memory", treeSize, MaxBuiltHashtree)
			}
			tree = make([]byte, treeSize)
			return nil
		},
		func(treeOff uint64, block []byte) { copy(tree[treeOff:], block) })
	if err != nil {
		return nil, nil, fmt.Errorf("building %s hash tree: %w", alg, err)
	}
	return root, tree, nil
}

// walkHashtree streams the data blocks of r[:imageSize], builds the tree level by level with one
// block of memory per level, calls layout with the tree size before any block, calls block with each
// finished tree block and its offset in the tree, and returns the root digest.
func walkHashtree(ctx context.Context, alg string, salt []byte, dataBlockSize, hashBlockSize uint32, r io.ReaderAt, imageSize uint64,
	layout func(treeSize uint64) error, block func(treeOff uint64, b []byte)) ([]byte, uint64, error) {
	if _, err := newHash(alg); err != nil {
		return nil, 0, err
	}
	if dataBlockSize < 512 || hashBlockSize < 512 || dataBlockSize > 1<<20 || hashBlockSize > 1<<20 ||
		dataBlockSize&(dataBlockSize-1) != 0 || hashBlockSize&(hashBlockSize-1) != 0 {
		return nil, 0, fmt.Errorf("block sizes %d/%d are not powers of two from 512 bytes to 1 MiB", dataBlockSize, hashBlockSize)
	}
	if imageSize%uint64(dataBlockSize) != 0 || imageSize > 1<<62 {
		return nil, 0, fmt.Errorf("image size %d is not a multiple of the data block size %d", imageSize, dataBlockSize)
	}
	hnew := func() hash.Hash { h, _ := newHash(alg); return h }
	digestSize := hnew().Size()
	padded := 1
	for padded < digestSize {
		padded <<= 1
	}
	offsets, sizes, treeSize := HashtreeLevels(imageSize, dataBlockSize, hashBlockSize, padded)
	if err := layout(treeSize); err != nil {
		return nil, 0, err
	}
	hbs := int(hashBlockSize)
	type level struct {
		buf     []byte
		n       int
		emitted uint64
	}
	levels := make([]level, len(sizes))
	for i := range levels {
		levels[i].buf = make([]byte, hbs)
	}
	// One hasher and digest buffer per level, reused for every block.
	dataHash, dataSum := hnew(), make([]byte, 0, digestSize)
	levelHash := make([]hash.Hash, len(levels))
	levelSum := make([][]byte, len(levels))
	for i := range levels {
		levelHash[i], levelSum[i] = hnew(), make([]byte, 0, digestSize)
	}
	var top []byte
	var emit func(i int, b []byte)
	push := func(i int, digest []byte) {
		l := &levels[i]
		copy(l.buf[l.n:], digest)
		clear(l.buf[l.n+len(digest) : l.n+padded])
		l.n += padded
		if l.n == hbs {
			l.n = 0
			emit(i, l.buf)
		}
	}
	emit = func(i int, b []byte) {
		l := &levels[i]
		block(offsets[i]+l.emitted*uint64(hbs), b)
		l.emitted++
		if i == len(levels)-1 {
			top = append(top[:0], b...)
			return
		}
		h := levelHash[i]
		h.Reset()
		h.Write(salt)
		h.Write(b)
		push(i+1, h.Sum(levelSum[i][:0]))
	}
	dbs := int64(dataBlockSize)
	chunk := make([]byte, max(dbs, 1<<20/dbs*dbs))
	var single []byte
	for off := int64(0); off < int64(imageSize); {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		c := chunk[:min(int64(len(chunk)), int64(imageSize)-off)]
		if m, err := r.ReadAt(c, off); m < len(c) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, 0, fmt.Errorf("reading data at offset %d: %w", off+int64(m), err)
		}
		for b := int64(0); b < int64(len(c)); b += dbs {
			dataHash.Reset()
			dataHash.Write(salt)
			dataHash.Write(c[b : b+dbs])
			if len(levels) == 0 {
				single = dataHash.Sum(nil)
				continue
			}
			push(0, dataHash.Sum(dataSum[:0]))
		}
		off += int64(len(c))
	}
	// Flush partial blocks level by level (each level is zero-padded to a whole block).
	for i := range levels {
		if levels[i].n > 0 {
			clear(levels[i].buf[levels[i].n:])
			levels[i].n = 0
			emit(i, levels[i].buf)
		}
	}
	if len(levels) == 0 {
		return single, 0, nil
	}
	h := hnew()
	h.Write(salt)
	h.Write(top)
	return h.Sum(nil), treeSize, nil
}

// Status is the outcome of checking one descriptor.
type Status string

// Descriptor check outcomes.
const (
	StatusVerified   Status = "verified"    // the partition's bytes match the descriptor
	StatusMismatch   Status = "mismatch"    // the partition no longer matches its vbmeta
	StatusNotPresent Status = "not-present" // the partition was not supplied; nothing was checked
	StatusError      Status = "error"       // the check could not run (unreadable, malformed)
	StatusInfo       Status = "info"        // nothing to verify (property, kernel cmdline)
)

// DescriptorResult reports one descriptor.
type DescriptorResult struct {
	Index     int    `json:"index"`
	Kind      string `json:"kind"` // property, hashtree, hash, kernel_cmdline, chain_partition, unknown
	Partition string `json:"partition,omitempty"`
	Status    Status `json:"status"`
	Detail    string `json:"detail,omitempty"`
	// Source says which bytes were checked: "partition <name>" or "this image".
	Source string `json:"source,omitempty"`
}

// Report is the structured result of verifying a vbmeta image and the partitions it describes.
type Report struct {
	Signature             SignatureResult    `json:"signature"`
	RequiredLibAVB        string             `json:"required_libavb"`
	ReleaseString         string             `json:"release_string"`
	RollbackIndex         uint64             `json:"rollback_index"`
	RollbackIndexLocation uint32             `json:"rollback_index_location"`
	Flags                 uint32             `json:"flags"`
	HashtreeDisabled      bool               `json:"hashtree_disabled"`
	VerificationDisabled  bool               `json:"verification_disabled"`
	Descriptors           []DescriptorResult `json:"descriptors"`
	// Mismatched names every partition whose bytes no longer match this vbmeta (or, for a chain
	// partition, whose vbmeta is not signed by the chained key).
	Mismatched []string `json:"mismatched,omitempty"`
	// NotPresent names described partitions that were not supplied and so were not checked.
	NotPresent []string `json:"not_present,omitempty"`
	// Chained holds the reports of chained partitions' own vbmeta images, by partition name.
	Chained map[string]*Report `json:"chained,omitempty"`
}

// OK reports whether the vbmeta is signed, its signature and hash verify, and no partition
// mismatches (partitions not supplied do not count against it).
func (r *Report) OK() bool {
	if !r.Signature.SignatureOK || !r.Signature.AuthHashOK || len(r.Mismatched) > 0 {
		return false
	}
	for _, c := range r.Chained {
		if !c.OK() {
			return false
		}
	}
	return true
}

// PartitionLookup returns the bytes of a named partition, ok=false when it is not available.
type PartitionLookup func(name string) (r io.ReaderAt, size int64, ok bool)

// VerifyOptions controls Image.Verify.
type VerifyOptions struct {
	// Partitions finds the partitions descriptors name. May be nil.
	Partitions PartitionLookup
	// SkipHashtree skips recomputing hash trees (they read the whole partition).
	SkipHashtree bool
	// SkipFEC skips rebuilding the FEC of hashtree partitions (a second pass over the partition;
	// the FEC is not signed, so it never changes whether a partition matches its vbmeta).
	SkipFEC bool
	depth   int
}

// Verify checks the image's vbmeta signature and every descriptor against the partitions available.
// For an image with a footer, a hash or hashtree descriptor with an empty partition name, or the only
// such descriptor when Partitions does not know its name, is checked against the image itself.
// The error is non-nil only when ctx is done; every other problem is recorded in the report.
func (im *Image) Verify(ctx context.Context, opts *VerifyOptions) (*Report, error) {
	if opts == nil {
		opts = &VerifyOptions{}
	}
	v := im.VBMeta
	rep := &Report{
		Signature:             v.VerifySignature(),
		RequiredLibAVB:        v.RequiredVersion(),
		ReleaseString:         v.ReleaseString,
		RollbackIndex:         v.RollbackIndex,
		RollbackIndexLocation: v.RollbackIndexLocation,
		Flags:                 v.Flags,
		HashtreeDisabled:      v.HashtreeDisabled(),
		VerificationDisabled:  v.VerificationDisabled(),
	}
	content := 0
	for _, d := range v.Descriptors {
		if d.Tag() == TagHash || d.Tag() == TagHashtree {
			content++
		}
	}
	lookup := func(name string) (io.ReaderAt, int64, string, bool) {
		if name != "" && opts.Partitions != nil {
			if r, size, ok := opts.Partitions(name); ok {
				return r, size, "partition " + name, true
			}
		}
		if im.Footer != nil && (name == "" || content == 1) {
			return im.R, im.Size, "this image", true
		}
		return nil, 0, "", false
	}
	for i, d := range v.Descriptors {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dr := DescriptorResult{Index: i, Status: StatusInfo}
		switch d := d.(type) {
		case *Property:
			dr.Kind, dr.Detail = "property", d.Key
		case *KernelCmdline:
			dr.Kind, dr.Detail = "kernel_cmdline", d.Cmdline
		case *Unknown:
			dr.Kind, dr.Detail = "unknown", fmt.Sprintf("tag %d, %d bytes", d.TagValue, len(d.Data))
		case *Hash:
			dr.Kind, dr.Partition = "hash", d.PartitionName
			r, size, src, ok := lookup(d.PartitionName)
			if !ok {
				dr.Status = StatusNotPresent
				break
			}
			dr.Source = src
			match, sum, err := VerifyHash(ctx, d, r, size)
			switch {
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case err != nil:
				dr.Status, dr.Detail = StatusError, err.Error()
			case match:
				dr.Status = StatusVerified
			default:
				dr.Status = StatusMismatch
				dr.Detail = fmt.Sprintf("digest of the partition is %x, vbmeta says %x", sum, d.Digest)
			}
		case *Hashtree:
			dr.Kind, dr.Partition = "hashtree", d.PartitionName
			r, size, src, ok := lookup(d.PartitionName)
			if !ok {
				dr.Status = StatusNotPresent
				break
			}
			dr.Source = src
			if opts.SkipHashtree {
				dr.Status, dr.Detail = StatusNotPresent, "hash tree not recomputed (skipped)"
				break
			}
			res, err := VerifyHashtree(ctx, d, r, size)
			switch {
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case err != nil:
				dr.Status, dr.Detail = StatusError, err.Error()
			case !res.RootOK:
				dr.Status = StatusMismatch
				dr.Detail = fmt.Sprintf("recomputed root digest %x, vbmeta says %x", res.RootDigest, d.RootDigest)
			case res.StoredTreeErr != nil:
				dr.Status = StatusVerified
				dr.Detail = fmt.Sprintf("root digest of the data matches; stored hash tree not compared: %v", res.StoredTreeErr)
			case d.TreeSize > 0 && !res.StoredTreeOK:
				dr.Status = StatusMismatch
				dr.Detail = fmt.Sprintf("root digest matches but the stored hash tree differs from the data (first bad tree block at offset %d)", res.FirstBadTreeOffset)
			default:
				dr.Status = StatusVerified
			}
			if dr.Status == StatusVerified && d.FECNumRoots > 0 && d.FECSize > 0 && !opts.SkipFEC {
				fec := "stored FEC matches the data"
				if err := VerifyFEC(ctx, d, r, size); err != nil {
					if ctx.Err() != nil {
						return nil, ctx.Err()
					}
					fec = "FEC not usable: " + err.Error()
				}
				dr.Detail = strings.TrimPrefix(dr.Detail+"; "+fec, "; ")
			}
		case *ChainPartition:
			dr.Kind, dr.Partition = "chain_partition", d.PartitionName
			r, size, ok := io.ReaderAt(nil), int64(0), false
			if opts.Partitions != nil {
				r, size, ok = opts.Partitions(d.PartitionName)
			}
			if !ok {
				dr.Status = StatusNotPresent
				break
			}
			dr.Source = "partition " + d.PartitionName
			if opts.depth >= 4 {
				dr.Status, dr.Detail = StatusError, "chain deeper than 4 levels"
				break
			}
			sub, err := Open(r, size)
			if err != nil {
				dr.Status, dr.Detail = StatusError, err.Error()
				break
			}
			subOpts := *opts
			subOpts.depth++
			subRep, err := sub.Verify(ctx, &subOpts)
			if err != nil {
				return nil, err
			}
			if rep.Chained == nil {
				rep.Chained = map[string]*Report{}
			}
			rep.Chained[d.PartitionName] = subRep
			switch {
			case !bytes.Equal(sub.VBMeta.PublicKey, d.PublicKey):
				dr.Status, dr.Detail = StatusMismatch, "the partition's vbmeta is signed with a different key than the chain descriptor names"
			case !subRep.Signature.SignatureOK || !subRep.Signature.AuthHashOK:
				dr.Status, dr.Detail = StatusMismatch, "the partition's vbmeta signature does not verify: "+subRep.Signature.Error
			case len(subRep.Mismatched) > 0:
				dr.Status, dr.Detail = StatusMismatch, fmt.Sprintf("partitions under the chained vbmeta mismatch: %v", subRep.Mismatched)
			default:
				dr.Status = StatusVerified
			}
		}
		switch dr.Status {
		case StatusMismatch:
			rep.Mismatched = append(rep.Mismatched, partName(dr.Partition))
		case StatusNotPresent:
			rep.NotPresent = append(rep.NotPresent, partName(dr.Partition))
		}
		rep.Descriptors = append(rep.Descriptors, dr)
	}
	return rep, nil
}

func partName(s string) string {
	if s == "" {
		return "(this image)"
	}
	return s
}

// Problems returns one plain sentence for each finding that makes the image fail verification:
// an unsigned or badly signed vbmeta, a partition that no longer matches it, a descriptor that
// could not be checked, and the same for chained partitions. Partitions that were not supplied are
// not problems; see NotPresent.
func (r *Report) Problems() []string {
	var out []string
	s := r.Signature
	switch {
	case !s.Signed:
		out = append(out, "the vbmeta is not signed ("+s.Error+")")
	case !s.SignatureOK || !s.AuthHashOK:
		out = append(out, "the vbmeta signature does not verify: "+s.Error)
	}
	for _, d := range r.Descriptors {
		switch d.Status {
		case StatusMismatch:
			out = append(out, fmt.Sprintf("partition %s no longer matches its vbmeta (%s descriptor %d): %s", partName(d.Partition), d.Kind, d.Index, d.Detail))
		case StatusError:
			out = append(out, fmt.Sprintf("partition %s could not be checked (%s descriptor %d): %s", partName(d.Partition), d.Kind, d.Index, d.Detail))
		}
	}
	for name, c := range r.Chained {
		for _, p := range c.Problems() {
			out = append(out, "chained partition "+name+": "+p)
		}
	}
	return out
}
