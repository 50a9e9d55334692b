package payload

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Errors callers can test with errors.Is.
var (
	ErrNotPayload   = errors.New("not an OTA payload: no CrAU magic")
	ErrCorrupt      = errors.New("corrupt OTA payload")
	ErrUnsupported  = errors.New("unsupported OTA payload")
	ErrDeltaPayload = errors.New("delta payload: needs the source build")
	ErrNoPartition  = errors.New("no such partition in the payload")
	ErrHashMismatch = errors.New("SHA-256 mismatch")
	// ErrVerityOnDevice marks bytes the payload does not carry because update_engine computes them
	// on the device: the dm-verity hash tree and the FEC of a partition.
	ErrVerityOnDevice = errors.New("verity hash tree/FEC is computed on the device and not carried by the payload")
)

// Limits on sizes read from the header before allocating.
const (
	// MaxManifestSize bounds the manifest; full OTAs of real devices have manifests of a few MiB.
	MaxManifestSize = 64 << 20
	// maxMetadataSignature bounds the metadata signature blob.
	maxMetadataSignature = 1 << 20
	// maxSignaturesSize bounds the payload signatures blob.
	maxSignaturesSize = 1 << 20
)

// Payload is an opened payload.bin.
type Payload struct {
	r    io.ReaderAt
	size int64

	MajorVersion          uint64
	ManifestSize          uint64
	MetadataSignatureSize uint32
	Manifest              *Manifest
	// HeaderSize is 24 for major version 2 (20 for version 1).
	HeaderSize int64
	// DataOffset is where the data blobs start: header + manifest + metadata signature.
	DataOffset int64

	// CacheBytes bounds the decoded operations each PartitionReader keeps (default 64 MiB).
	CacheBytes int64
}

// Size returns the payload size in bytes.
func (p *Payload) Size() int64 { return p.size }

// MetadataSize returns the size of header + manifest (METADATA_SIZE of payload_properties.txt).
func (p *Payload) MetadataSize() int64 { return p.HeaderSize + int64(p.ManifestSize) }

// Open reads the header and manifest of a payload of the given size and checks that every operation's
// data blob lies inside the payload and every destination extent inside its partition.
func Open(r io.ReaderAt, size int64) (*Payload, error) {
	h := make([]byte, 24)
	if size < 20 {
		return nil, ErrNotPayload
	}
	if _, err := r.ReadAt(h[:20], 0); err != nil {
		return nil, fmt.Errorf("reading payload header: %w", err)
	}
	if string(h[:4]) != "CrAU" {
		return nil, ErrNotPayload
	}
	p := &Payload{r: r, size: size, CacheBytes: 64 << 20}
	p.MajorVersion = binary.BigEndian.Uint64(h[4:])
	p.ManifestSize = binary.BigEndian.Uint64(h[12:])
	switch p.MajorVersion {
	case 1:
		p.HeaderSize = 20
	case 2:
		p.HeaderSize = 24
		if size < 24 {
			return nil, fmt.Errorf("reading payload header: %d bytes, need 24: %w", size, ErrCorrupt)
		}
		if _, err := r.ReadAt(h[20:24], 20); err != nil {
			return nil, fmt.Errorf("reading payload header: %w", err)
		}
		p.MetadataSignatureSize = binary.BigEndian.Uint32(h[20:])
	default:
		return nil, fmt.Errorf("reading payload header: major version %d is not 1 or 2: %w", p.MajorVersion, ErrUnsupported)
	}
	if p.ManifestSize > MaxManifestSize || int64(p.ManifestSize) > size-p.HeaderSize {
		return nil, fmt.Errorf("reading payload header: manifest of %d bytes exceeds the payload (%d bytes) or the %d-byte limit: %w", p.ManifestSize, size, MaxManifestSize, ErrCorrupt)
	}
	if p.MetadataSignatureSize > maxMetadataSignature || p.HeaderSize+int64(p.ManifestSize)+int64(p.MetadataSignatureSize) > size {
		return nil, fmt.Errorf("reading payload header: metadata signature of %d bytes at offset %d runs past the payload end %d: %w", p.MetadataSignatureSize, p.HeaderSize+int64(p.ManifestSize), size, ErrCorrupt)
	}
	p.DataOffset = p.HeaderSize + int64(p.ManifestSize) + int64(p.MetadataSignatureSize)
	mb := make([]byte, p.ManifestSize)
	if _, err := r.ReadAt(mb, p.HeaderSize); err != nil {
		return nil, fmt.Errorf("reading payload manifest at offset %d: %w", p.HeaderSize, err)
	}
	m, err := parseManifest(mb, p.HeaderSize)
	if err != nil {
		return nil, err
	}
	p.Manifest = m
	dataSize := uint64(size - p.DataOffset)
	bs := uint64(m.BlockSize)
	seen := map[string]bool{}
	for pi := range m.Partitions {
		pu := &m.Partitions[pi]
		if seen[pu.Name] {
			return nil, fmt.Errorf("reading payload manifest: partition %q appears twice: %w", pu.Name, ErrCorrupt)
		}
		seen[pu.Name] = true
		var blocks uint64
		if pu.New != nil {
			if pu.New.Size > 1<<62 {
				return nil, fmt.Errorf("reading partition %q: new size %d is absurd: %w", pu.Name, pu.New.Size, ErrCorrupt)
			}
			blocks = (pu.New.Size + bs - 1) / bs
		}
		for oi, op := range pu.Operations {
			where := fmt.Sprintf("operation %d (%s) of partition %q", oi, op.Type, pu.Name)
			if op.DataLength > 0 && (op.DataOffset > dataSize || op.DataLength > dataSize-op.DataOffset) {
				return nil, fmt.Errorf("reading %s: data blob %d+%d (payload offset %d) runs past the payload end %d: %w", where, op.DataOffset, op.DataLength, p.DataOffset+int64(op.DataOffset), size, ErrCorrupt)
			}
			for _, e := range op.DstExtents {
				if e.NumBlocks == 0 || e.StartBlock > maxBlocks(bs) || e.NumBlocks > maxBlocks(bs)-e.StartBlock {
					return nil, fmt.Errorf("reading %s: destination extent %+v is empty or absurd: %w", where, e, ErrCorrupt)
				}
				if pu.New != nil && e.StartBlock+e.NumBlocks > blocks {
					return nil, fmt.Errorf("reading %s: destination blocks %d..%d run past the %d-byte partition: %w", where, e.StartBlock, e.StartBlock+e.NumBlocks, pu.New.Size, ErrCorrupt)
				}
			}
		}
	}
	return p, nil
}

// Partition returns the update of the partition called name.
func (p *Payload) Partition(name string) (*PartitionUpdate, bool) {
	for i := range p.Manifest.Partitions {
		if p.Manifest.Partitions[i].Name == name {
			return &p.Manifest.Partitions[i], true
		}
	}
	return nil, false
}

// IsDelta reports whether any partition needs a source build.
func (p *Payload) IsDelta() bool {
	for i := range p.Manifest.Partitions {
		if p.Manifest.Partitions[i].IsDelta() || p.Manifest.Partitions[i].Old != nil {
			return true
		}
	}
	return false
}

// MetadataSHA256 returns the SHA-256 of header + manifest (METADATA_HASH).
func (p *Payload) MetadataSHA256() ([]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(p.r, 0, p.MetadataSize())); err != nil {
		return nil, fmt.Errorf("hashing payload metadata: %w", err)
	}
	return h.Sum(nil), nil
}

// Signatures decodes the payload signatures blob (none for an unsigned payload).
func (p *Payload) Signatures() ([]Signature, error) {
	m := p.Manifest
	if !m.HasSignatures || m.SignaturesSize == 0 {
		return nil, nil
	}
	if m.SignaturesSize > maxSignaturesSize || m.SignaturesOffset > uint64(p.size-p.DataOffset) || m.SignaturesSize > uint64(p.size-p.DataOffset)-m.SignaturesOffset {
		return nil, fmt.Errorf("reading payload signatures: %d bytes at data offset %d lie outside the payload: %w", m.SignaturesSize, m.SignaturesOffset, ErrCorrupt)
	}
	b := make([]byte, m.SignaturesSize)
	off := p.DataOffset + int64(m.SignaturesOffset)
	if _, err := p.r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("reading payload signatures at offset %d: %w", off, err)
	}
	return parseSignatures(b, off)
}

// MetadataSignatures decodes the metadata signature blob that follows the manifest.
func (p *Payload) MetadataSignatures() ([]Signature, error) {
	if p.MetadataSignatureSize == 0 {
		return nil, nil
	}
	b := make([]byte, p.MetadataSignatureSize)
	off := p.MetadataSize()
	if _, err := p.r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("reading payload metadata signature at offset %d: %w", off, err)
	}
	return parseSignatures(b, off)
}

// VerifyPartition reads the whole partition through its operations and compares its SHA-256 with
// new_partition_info. It returns ErrHashMismatch (wrapped) when they differ. When the partition's
// hash tree or FEC is computed on the device (see PartitionReader.OnDevice), the whole-partition hash
// cannot be reproduced: VerifyPartition then checks every operation's data hash and returns
// ErrVerityOnDevice (wrapped) if those all pass.
func (p *Payload) VerifyPartition(ctx context.Context, name string) error {
	pr, err := p.OpenPartition(name)
	if err != nil {
		return err
	}
	if len(pr.onDevice) > 0 {
		for i := range pr.pu.Operations {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := pr.checkOp(i); err != nil {
				return fmt.Errorf("verifying partition %q: %w", name, err)
			}
		}
		return fmt.Errorf("verifying partition %q: every operation's data hash matches, but the partition hash covers %s: %w", name, pr.onDeviceText(), ErrVerityOnDevice)
	}
	pu, _ := p.Partition(name)
	if pu.New == nil || len(pu.New.Hash) == 0 {
		return fmt.Errorf("verifying partition %q: the payload declares no hash for it: %w", name, ErrUnsupported)
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < pr.Size(); {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := pr.ReadAt(buf[:min(int64(len(buf)), pr.Size()-off)], off)
		h.Write(buf[:n])
		off += int64(n)
		if err != nil && !(err == io.EOF && off == pr.Size()) {
			return fmt.Errorf("verifying partition %q: %w", name, err)
		}
	}
	if sum := h.Sum(nil); string(sum) != string(pu.New.Hash) {
		return fmt.Errorf("verifying partition %q: content hashes to %x, the payload declares %x: %w", name, sum, pu.New.Hash, ErrHashMismatch)
	}
	return nil
}

// maxBlocks bounds block numbers so that byte offsets (blocks × block size) stay below 2^62.
func maxBlocks(blockSize uint64) uint64 { return (1 << 62) / blockSize }
