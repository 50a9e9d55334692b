package payload

import (
	"fmt"
	"sort"
	"strings"
)

// OpType is an install operation type (InstallOperation.Type).
type OpType uint32

// Operation types of update_metadata.proto.
const (
	OpReplace         OpType = 0
	OpReplaceBZ       OpType = 1
	OpMove            OpType = 2
	OpBSDiff          OpType = 3
	OpSourceCopy      OpType = 4
	OpSourceBSDiff    OpType = 5
	OpZero            OpType = 6
	OpDiscard         OpType = 7
	OpReplaceXZ       OpType = 8
	OpPuffDiff        OpType = 9
	OpBrotliBSDiff    OpType = 10
	OpZucchini        OpType = 11
	OpLZ4DiffBSDiff   OpType = 12
	OpLZ4DiffPuffDiff OpType = 13
	OpZstd            OpType = 14 // REPLACE with zstd data (newer payloads)
)

var opNames = map[OpType]string{
	OpReplace: "REPLACE", OpReplaceBZ: "REPLACE_BZ", OpMove: "MOVE", OpBSDiff: "BSDIFF",
	OpSourceCopy: "SOURCE_COPY", OpSourceBSDiff: "SOURCE_BSDIFF", OpZero: "ZERO", OpDiscard: "DISCARD",
	OpReplaceXZ: "REPLACE_XZ", OpPuffDiff: "PUFFDIFF", OpBrotliBSDiff: "BROTLI_BSDIFF",
	OpZucchini: "ZUCCHINI", OpLZ4DiffBSDiff: "LZ4DIFF_BSDIFF", OpLZ4DiffPuffDiff: "LZ4DIFF_PUFFDIFF",
	OpZstd: "ZSTD",
}

func (t OpType) String() string {
	if s, ok := opNames[t]; ok {
		return s
	}
	return fmt.Sprintf("UNKNOWN(%d)", uint32(t))
}

// Full reports whether the operation needs no source partition and this package can apply it.
func (t OpType) Full() bool {
	switch t {
	case OpReplace, OpReplaceBZ, OpReplaceXZ, OpZstd, OpZero, OpDiscard:
		return true
	}
	return false
}

// Delta reports whether the operation reads the source partition (a delta payload's operation).
func (t OpType) Delta() bool {
	switch t {
	case OpMove, OpBSDiff, OpSourceCopy, OpSourceBSDiff, OpPuffDiff, OpBrotliBSDiff, OpZucchini, OpLZ4DiffBSDiff, OpLZ4DiffPuffDiff:
		return true
	}
	return false
}

// Extent is a run of blocks.
type Extent struct {
	StartBlock, NumBlocks uint64
}

// Operation is one InstallOperation.
type Operation struct {
	Type       OpType
	DataOffset uint64 // from the start of the data blobs
	DataLength uint64
	SrcExtents []Extent
	DstExtents []Extent
	DataSHA256 []byte
	SrcSHA256  []byte
}

// PartitionInfo is a partition's size and SHA-256.
type PartitionInfo struct {
	Size uint64
	Hash []byte
}

// PartitionUpdate is one partition of the payload.
type PartitionUpdate struct {
	Name       string
	Old        *PartitionInfo // set in delta payloads
	New        *PartitionInfo
	Operations []Operation
	Version    string

	// Verity computed on the device: when set, update_engine builds the dm-verity hash tree over
	// HashTreeData into HashTree, and Reed-Solomon FEC over FECData into FEC, after writing the
	// operations; the payload does not need to carry those blocks.
	HashTreeData, HashTree *Extent
	HashTreeAlgorithm      string
	HashTreeSalt           []byte
	FECData, FEC           *Extent
	FECRoots               uint32
}

// OpCounts returns "TYPE:count" for each operation type, sorted by type name.
func (p *PartitionUpdate) OpCounts() string {
	c := map[string]int{}
	for _, op := range p.Operations {
		c[op.Type.String()]++
	}
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%s:%d", k, c[k])
	}
	return strings.Join(keys, ",")
}

// IsDelta reports whether the partition has any operation that needs the source partition.
func (p *PartitionUpdate) IsDelta() bool {
	for _, op := range p.Operations {
		if op.Type.Delta() {
			return true
		}
	}
	return false
}

// DynamicGroup is one dynamic partition group.
type DynamicGroup struct {
	Name       string
	Size       uint64
	Partitions []string
}

// DynamicPartitionMetadata describes the super partition layout the update wants.
type DynamicPartitionMetadata struct {
	Groups               []DynamicGroup
	SnapshotEnabled      bool
	VABCEnabled          bool
	VABCCompressionParam string
	COWVersion           uint32
}

// Manifest is the decoded DeltaArchiveManifest.
type Manifest struct {
	BlockSize          uint32
	SignaturesOffset   uint64
	SignaturesSize     uint64
	HasSignatures      bool
	MinorVersion       uint32
	Partitions         []PartitionUpdate
	MaxTimestamp       int64
	Dynamic            *DynamicPartitionMetadata
	PartialUpdate      bool
	SecurityPatchLevel string
}

// Field numbers of update_metadata.proto used here.
const (
	mBlockSize          = 3
	mSignaturesOffset   = 4
	mSignaturesSize     = 5
	mMinorVersion       = 12
	mPartitions         = 13
	mMaxTimestamp       = 14
	mDynamic            = 15
	mPartialUpdate      = 16
	mSecurityPatchLevel = 18
	mInstallOps         = 1 // deprecated top-level operations (Chrome OS major version 1)
	mKernelOps          = 2
)

// Decoding budget: the manifest is untrusted and decoded structures are larger than their encoding,
// so the number of operations and extents is bounded (a full OTA of a real device has a few thousand
// 2 MiB operations).
const (
	maxOperations = 1 << 20
	maxExtents    = 4 << 20
)

type budget struct{ ops, extents int }

func parseManifest(b []byte, base int64) (*Manifest, error) {
	m := &Manifest{BlockSize: 4096}
	bud := &budget{}
	err := walkProto(b, base, func(f field) error {
		switch f.num {
		case mBlockSize, mSignaturesOffset, mSignaturesSize, mMinorVersion, mMaxTimestamp, mPartialUpdate:
			if err := f.want(wireVarint, "manifest"); err != nil {
				return err
			}
		case mPartitions, mDynamic, mSecurityPatchLevel:
			if err := f.want(wireBytes, "manifest"); err != nil {
				return err
			}
		}
		switch f.num {
		case mInstallOps, mKernelOps:
			return fmt.Errorf("decoding manifest at offset %d: top-level install operations (a major-version-1 Chrome OS payload) are not supported: %w", f.off, ErrUnsupported)
		case mBlockSize:
			m.BlockSize = uint32(f.v)
		case mSignaturesOffset:
			m.SignaturesOffset, m.HasSignatures = f.v, true
		case mSignaturesSize:
			m.SignaturesSize = f.v
		case mMinorVersion:
			m.MinorVersion = uint32(f.v)
		case mMaxTimestamp:
			m.MaxTimestamp = int64(f.v)
		case mPartialUpdate:
			m.PartialUpdate = f.v != 0
		case mSecurityPatchLevel:
			m.SecurityPatchLevel = string(f.b)
		case mPartitions:
			p, err := parsePartition(f.b, f.off, bud)
			if err != nil {
				return err
			}
			m.Partitions = append(m.Partitions, *p)
		case mDynamic:
			d, err := parseDynamic(f.b, f.off)
			if err != nil {
				return err
			}
			m.Dynamic = d
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if m.BlockSize < 512 || m.BlockSize > 1<<20 || m.BlockSize&(m.BlockSize-1) != 0 {
		return nil, fmt.Errorf("decoding manifest: block size %d is not a power of two from 512 to 1 MiB: %w", m.BlockSize, ErrCorrupt)
	}
	return m, nil
}

func parsePartition(b []byte, base int64, bud *budget) (*PartitionUpdate, error) {
	p := &PartitionUpdate{FECRoots: 2} // proto2 default of fec_roots
	err := walkProto(b, base, func(f field) error {
		switch f.num {
		case 1: // partition_name
			if err := f.want(wireBytes, "partition"); err != nil {
				return err
			}
			p.Name = strings.ToValidUTF8(string(f.b), "?")
		case 6, 7: // old_partition_info, new_partition_info
			if err := f.want(wireBytes, "partition"); err != nil {
				return err
			}
			info, err := parseInfo(f.b, f.off)
			if err != nil {
				return err
			}
			if f.num == 6 {
				p.Old = info
			} else {
				p.New = info
			}
		case 8: // operations
			if err := f.want(wireBytes, "partition"); err != nil {
				return err
			}
			if bud.ops++; bud.ops > maxOperations {
				return fmt.Errorf("decoding operation at offset %d: more than %d operations in the manifest: %w", f.off, maxOperations, ErrCorrupt)
			}
			op, err := parseOp(f.b, f.off, bud)
			if err != nil {
				return fmt.Errorf("decoding operation %d of partition %q: %w", len(p.Operations), p.Name, err)
			}
			p.Operations = append(p.Operations, *op)
		case 17: // version
			if err := f.want(wireBytes, "partition"); err != nil {
				return err
			}
			p.Version = string(f.b)
		case 10, 11, 14, 15: // hash_tree_data_extent, hash_tree_extent, fec_data_extent, fec_extent
			if err := f.want(wireBytes, "partition"); err != nil {
				return err
			}
			e, err := parseExtent(f.b, f.off)
			if err != nil {
				return err
			}
			switch f.num {
			case 10:
				p.HashTreeData = &e
			case 11:
				p.HashTree = &e
			case 14:
				p.FECData = &e
			case 15:
				p.FEC = &e
			}
		case 12, 13: // hash_tree_algorithm, hash_tree_salt
			if err := f.want(wireBytes, "partition"); err != nil {
				return err
			}
			if f.num == 12 {
				p.HashTreeAlgorithm = string(f.b)
			} else {
				p.HashTreeSalt = f.b
			}
		case 16: // fec_roots
			if err := f.want(wireVarint, "partition"); err != nil {
				return err
			}
			p.FECRoots = uint32(f.v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if p.Name == "" {
		return nil, fmt.Errorf("decoding partition update at offset %d: no partition name: %w", base, ErrCorrupt)
	}
	return p, nil
}

func parseInfo(b []byte, base int64) (*PartitionInfo, error) {
	info := &PartitionInfo{}
	err := walkProto(b, base, func(f field) error {
		switch f.num {
		case 1:
			if err := f.want(wireVarint, "partition info"); err != nil {
				return err
			}
			info.Size = f.v
		case 2:
			if err := f.want(wireBytes, "partition info"); err != nil {
				return err
			}
			info.Hash = f.b
		}
		return nil
	})
	return info, err
}

func parseExtent(b []byte, base int64) (Extent, error) {
	var e Extent
	err := walkProto(b, base, func(f field) error {
		if f.num == 1 || f.num == 2 {
			if err := f.want(wireVarint, "extent"); err != nil {
				return err
			}
			if f.num == 1 {
				e.StartBlock = f.v
			} else {
				e.NumBlocks = f.v
			}
		}
		return nil
	})
	return e, err
}

func parseOp(b []byte, base int64, bud *budget) (*Operation, error) {
	op := &Operation{}
	hasType := false
	err := walkProto(b, base, func(f field) error {
		switch f.num {
		case 1, 2, 3:
			if err := f.want(wireVarint, "operation"); err != nil {
				return err
			}
			switch f.num {
			case 1:
				op.Type, hasType = OpType(f.v), true
			case 2:
				op.DataOffset = f.v
			case 3:
				op.DataLength = f.v
			}
		case 4, 6:
			if err := f.want(wireBytes, "operation"); err != nil {
				return err
			}
			if bud.extents++; bud.extents > maxExtents {
				return fmt.Errorf("decoding extent at offset %d: more than %d extents in the manifest: %w", f.off, maxExtents, ErrCorrupt)
			}
			e, err := parseExtent(f.b, f.off)
			if err != nil {
				return err
			}
			if f.num == 4 {
				op.SrcExtents = append(op.SrcExtents, e)
			} else {
				op.DstExtents = append(op.DstExtents, e)
			}
		case 8, 9:
			if err := f.want(wireBytes, "operation"); err != nil {
				return err
			}
			if f.num == 8 {
				op.DataSHA256 = f.b
			} else {
				op.SrcSHA256 = f.b
			}
		}
		return nil
	})
	if err == nil && !hasType {
		err = fmt.Errorf("decoding operation at offset %d: no type: %w", base, ErrCorrupt)
	}
	return op, err
}

func parseDynamic(b []byte, base int64) (*DynamicPartitionMetadata, error) {
	d := &DynamicPartitionMetadata{}
	err := walkProto(b, base, func(f field) error {
		switch f.num {
		case 1:
			if err := f.want(wireBytes, "dynamic partition metadata"); err != nil {
				return err
			}
			g := DynamicGroup{}
			err := walkProto(f.b, f.off, func(gf field) error {
				switch gf.num {
				case 1, 3:
					if err := gf.want(wireBytes, "dynamic partition group"); err != nil {
						return err
					}
					if gf.num == 1 {
						g.Name = string(gf.b)
					} else {
						g.Partitions = append(g.Partitions, string(gf.b))
					}
				case 2:
					if err := gf.want(wireVarint, "dynamic partition group"); err != nil {
						return err
					}
					g.Size = gf.v
				}
				return nil
			})
			if err != nil {
				return err
			}
			d.Groups = append(d.Groups, g)
		case 2, 3, 5:
			if err := f.want(wireVarint, "dynamic partition metadata"); err != nil {
				return err
			}
			switch f.num {
			case 2:
				d.SnapshotEnabled = f.v != 0
			case 3:
				d.VABCEnabled = f.v != 0
			case 5:
				d.COWVersion = uint32(f.v)
			}
		case 4:
			if err := f.want(wireBytes, "dynamic partition metadata"); err != nil {
				return err
			}
			d.VABCCompressionParam = string(f.b)
		}
		return nil
	})
	return d, err
}

// Signature is one payload or metadata signature.
type Signature struct {
	Data                  []byte
	UnpaddedSignatureSize uint32
}

func parseSignatures(b []byte, base int64) ([]Signature, error) {
	var out []Signature
	err := walkProto(b, base, func(f field) error {
		if f.num != 1 {
			return nil
		}
		if err := f.want(wireBytes, "signatures"); err != nil {
			return err
		}
		var s Signature
		err := walkProto(f.b, f.off, func(sf field) error {
			switch sf.num {
			case 2:
				if err := sf.want(wireBytes, "signature"); err != nil {
					return err
				}
				s.Data = sf.b
			case 3:
				if err := sf.want(wireFixed32, "signature"); err != nil {
					return err
				}
				s.UnpaddedSignatureSize = uint32(sf.v)
			}
			return nil
		})
		out = append(out, s)
		return err
	})
	return out, err
}
