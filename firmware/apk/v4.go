package apk

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// V4Source is an APK Signature Scheme v4 signature file (.idsig) read through an io.ReaderAt.
type V4Source struct {
	Name string // for messages
	R    io.ReaderAt
	Size int64
}

const (
	v4Version        = 2
	v4HashSHA256     = 1
	v4Log2Block      = 12
	maxV4HeaderBytes = 1 << 20 // hashing info and signing infos are a few KiB
)

// v4Signer is one signing info of a v4 file: the main one (for the v3/v2 signer) or a v4.1 block
// for the v3.1 signer.
type v4Signer struct {
	blockID   uint32 // 0 for the main signing info
	cert      *certInfo
	apkDigest []byte
	errors    []Issue
}

type v4Result struct {
	signers  []*v4Signer
	errors   []Issue
	warnings []Issue
	verified bool
	rootHash []byte
}

func (r *v4Result) addError(code, format string, args ...any) {
	r.errors = append(r.errors, Issue{Code: code, Message: fmt.Sprintf(format, args...)})
}

func (r *v4Result) containsErrors() bool {
	if len(r.errors) > 0 {
		return true
	}
	for _, s := range r.signers {
		if len(s.errors) > 0 {
			return true
		}
	}
	return false
}

// v4File is the parsed header of an .idsig file.
type v4File struct {
	version      uint32
	hashAlg      uint32
	log2Block    byte
	salt         []byte
	rootHash     []byte
	hashingInfo  []byte
	main         []byte // signing info
	blocks       []attribute
	treeOffset   int64 // offset of the Merkle tree in the file, -1 when absent
	treeSize     int64
	signingInfos []byte
}

// parseV4Header reads an .idsig file's version, hashing info and signing infos, and locates the
// Merkle tree that follows without reading it. Layout (little endian):
//
//	int32 version (2)
//	length-prefixed hashing info: int32 hash algorithm (1 = SHA-256), byte log2(block size) (12),
//	    length-prefixed salt, length-prefixed raw root hash
//	length-prefixed signing infos: a signing info, then v4.1 blocks (int32 block ID, length-prefixed signing info)
//	length-prefixed Merkle tree (optional)
func parseV4Header(src V4Source) (*v4File, error) {
	head := make([]byte, 4)
	if _, err := src.R.ReadAt(head, 0); err != nil {
		return nil, fmt.Errorf("%w: %s: too short for a v4 signature", errV4Malformed, src.Name)
	}
	f := &v4File{version: binary.LittleEndian.Uint32(head), treeOffset: -1}
	if f.version != v4Version {
		return f, fmt.Errorf("%w: %s: unsupported v4 signature version %d", errV4Malformed, src.Name, f.version)
	}
	off := int64(4)
	readLP := func(what string) ([]byte, error) {
		var n [4]byte
		if _, err := src.R.ReadAt(n[:], off); err != nil {
			return nil, fmt.Errorf("%w: %s: %s length at offset %d: file ends early", errV4Malformed, src.Name, what, off)
		}
		l := int64(binary.LittleEndian.Uint32(n[:]))
		if l > maxV4HeaderBytes || off+4+l > src.Size {
			return nil, fmt.Errorf("%w: %s: %s of %d bytes at offset %d is out of range", errV4Malformed, src.Name, what, l, off)
		}
		b := make([]byte, l)
		if _, err := src.R.ReadAt(b, off+4); err != nil && !(errors.Is(err, io.EOF) && l == 0) {
			return nil, fmt.Errorf("reading %s of %s: %w", what, src.Name, err)
		}
		off += 4 + l
		return b, nil
	}
	var err error
	if f.hashingInfo, err = readLP("hashing info"); err != nil {
		return nil, err
	}
	if f.signingInfos, err = readLP("signing infos"); err != nil {
		return nil, err
	}
	hp := &lp{b: f.hashingInfo}
	f.hashAlg = hp.u32()
	if len(hp.b) > 0 {
		f.log2Block = hp.b[0]
		hp.b = hp.b[1:]
	} else {
		hp.err = errShort
	}
	f.salt = hp.bytes()
	f.rootHash = hp.bytes()
	if hp.err != nil {
		return nil, fmt.Errorf("%w: %s: malformed hashing info: %v", errV4Malformed, src.Name, hp.err)
	}
	sp := &lp{b: f.signingInfos}
	start := len(sp.b)
	skipSigningInfo(sp)
	if sp.err != nil {
		return nil, fmt.Errorf("%w: %s: malformed signing info: %v", errV4Malformed, src.Name, sp.err)
	}
	f.main = f.signingInfos[:start-len(sp.b)]
	for sp.remaining() > 0 {
		id := sp.u32()
		b := sp.bytes()
		if sp.err != nil {
			return nil, fmt.Errorf("%w: %s: malformed v4.1 signing info block: %v", errV4Malformed, src.Name, sp.err)
		}
		f.blocks = append(f.blocks, attribute{id: id, value: b})
	}
	if off+4 <= src.Size {
		var n [4]byte
		if _, err := src.R.ReadAt(n[:], off); err != nil {
			return nil, fmt.Errorf("reading Merkle tree size of %s: %w", src.Name, err)
		}
		l := int64(binary.LittleEndian.Uint32(n[:]))
		if off+4+l != src.Size {
			return nil, fmt.Errorf("%w: %s: Merkle tree of %d bytes at offset %d does not end at the end of the file (%d bytes)", errV4Malformed, src.Name, l, off, src.Size)
		}
		f.treeOffset, f.treeSize = off+4, l
	} else if off != src.Size {
		return nil, fmt.Errorf("%w: %s: %d stray bytes after the signing infos", errV4Malformed, src.Name, src.Size-off)
	}
	return f, nil
}

var errV4Malformed = errors.New("malformed v4 signature file")

func skipSigningInfo(p *lp) {
	p.bytes() // apk digest
	p.bytes() // certificate
	p.bytes() // additional data
	p.bytes() // public key
	p.u32()   // signature algorithm
	p.bytes() // signature
}

// v4SignedData is what a v4 signing info's signature covers.
func v4SignedData(fileSize int64, f *v4File, apkDigest, cert, additional []byte) []byte {
	var b bytes.Buffer
	put32 := func(v uint32) { binary.Write(&b, binary.LittleEndian, v) }
	putLP := func(x []byte) { put32(uint32(len(x))); b.Write(x) }
	size := 4 + 8 + 4 + 1 + 4 + len(f.salt) + 4 + len(f.rootHash) + 4 + len(apkDigest) + 4 + len(cert) + 4 + len(additional)
	put32(uint32(size))
	binary.Write(&b, binary.LittleEndian, uint64(fileSize))
	put32(f.hashAlg)
	b.WriteByte(f.log2Block)
	putLP(f.salt)
	putLP(f.rootHash)
	putLP(apkDigest)
	putLP(cert)
	putLP(additional)
	return b.Bytes()
}

// verifyV4 checks a v4 signature file against the APK r of size bytes: the signatures of its signing
// infos, then the Merkle tree root (and the stored tree, when present) over the whole APK.
func verifyV4(ctx context.Context, r io.ReaderAt, size int64, src V4Source) (*v4Result, error) {
	res := &v4Result{}
	f, err := parseV4Header(src)
	if err != nil {
		if errors.Is(err, errV4Malformed) {
			res.addError("V4_SIG_MALFORMED_SIGNERS", "%v", err)
			return res, nil
		}
		return nil, err
	}
	if f.hashAlg != v4HashSHA256 || f.log2Block != v4Log2Block {
		res.addError("V4_SIG_MALFORMED_SIGNERS", "%s: unsupported hashing algorithm %d or block size 2^%d", src.Name, f.hashAlg, f.log2Block)
		return res, nil
	}
	res.signers = append(res.signers, verifyV4SigningInfo(f, size, 0, f.main))
	for _, b := range f.blocks {
		if b.id != BlockV31 {
			res.addError("V4_SIG_MALFORMED_SIGNERS", "%s: signing info block for unknown scheme block 0x%08x", src.Name, b.id)
			continue
		}
		res.signers = append(res.signers, verifyV4SigningInfo(f, size, b.id, b.value))
	}
	if res.containsErrors() {
		return res, nil
	}
	var salt []byte
	if len(f.salt) > 0 {
		salt = f.salt
	}
	root, tree, err := verityTree(ctx, []segment{{r: r, size: size}}, salt)
	if err != nil {
		return nil, err
	}
	res.rootHash = root
	if !bytes.Equal(root, f.rootHash) {
		res.addError("V4_SIG_APK_ROOT_DID_NOT_VERIFY", "the Merkle tree root of the APK is %x, the v4 signature names %x", root, f.rootHash)
		return res, nil
	}
	if f.treeOffset >= 0 && f.treeSize > 0 {
		if f.treeSize != int64(len(tree)) {
			res.addError("V4_SIG_APK_TREE_DID_NOT_VERIFY", "the v4 signature's Merkle tree has %d bytes, the APK's has %d", f.treeSize, len(tree))
			return res, nil
		}
		buf := make([]byte, 64<<10)
		for off := int64(0); off < f.treeSize; off += int64(len(buf)) {
			n := min(int64(len(buf)), f.treeSize-off)
			if _, err := src.R.ReadAt(buf[:n], f.treeOffset+off); err != nil {
				return nil, fmt.Errorf("reading Merkle tree of %s at offset %d: %w", src.Name, f.treeOffset+off, err)
			}
			if !bytes.Equal(buf[:n], tree[off:off+n]) {
				res.addError("V4_SIG_APK_TREE_DID_NOT_VERIFY", "the v4 signature's Merkle tree differs from the APK's at tree offset %d", off)
				return res, nil
			}
		}
	}
	res.verified = true
	return res, nil
}

func verifyV4SigningInfo(f *v4File, apkSize int64, blockID uint32, info []byte) *v4Signer {
	s := &v4Signer{blockID: blockID}
	add := func(code, format string, args ...any) {
		s.errors = append(s.errors, Issue{Code: code, Message: fmt.Sprintf(format, args...)})
	}
	p := &lp{b: info}
	s.apkDigest = p.bytes()
	certDER := p.bytes()
	additional := p.bytes()
	pubKey := p.bytes()
	algID := p.u32()
	sig := p.bytes()
	if p.err != nil {
		add("V4_SIG_MALFORMED_SIGNERS", "malformed v4 signing info: %v", p.err)
		return s
	}
	alg := findSigAlg(algID)
	if alg == nil {
		add("V4_SIG_UNKNOWN_SIG_ALGORITHM", "unknown v4 signature algorithm 0x%08x", algID)
		return s
	}
	pub, err := parsePublicKey(pubKey)
	if err == nil && keyAlgOf(pub) != alg.key {
		err = fmt.Errorf("%w: %s key for %s", errKeyMismatch, keyAlgOf(pub), alg.name)
	}
	if err != nil {
		add("V4_SIG_MALFORMED_PUBLIC_KEY", "malformed v4 public key: %v", err)
		return s
	}
	ok, err := verifySignature(alg, pub, v4SignedData(apkSize, f, s.apkDigest, certDER, additional), sig)
	if err != nil {
		add("V4_SIG_VERIFY_EXCEPTION", "failed to verify the v4 signature: %v", err)
		return s
	}
	if !ok {
		add("V4_SIG_DID_NOT_VERIFY", "the v4 %s signature did not verify", alg.name)
		return s
	}
	c, err := parseCertificate(certDER)
	if err != nil {
		add("V4_SIG_MALFORMED_CERTIFICATE", "malformed v4 certificate: %v", err)
		return s
	}
	s.cert = c
	if !samePublicKey(pubKey, c) {
		add("V4_SIG_PUBLIC_KEY_MISMATCH_BETWEEN_CERTIFICATE_AND_SIGNATURES_RECORD", "the v4 certificate's public key differs from the signing info's")
	}
	return s
}
