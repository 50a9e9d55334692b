package avb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// Descriptor tags.
const (
	TagProperty       = 0
	TagHashtree       = 1
	TagHash           = 2
	TagKernelCmdline  = 3
	TagChainPartition = 4
)

// Descriptor flags.
const (
	HashDescriptorDoNotUseAB         = 1 << 0
	HashtreeDoNotUseAB               = 1 << 0
	HashtreeCheckAtMostOnce          = 1 << 1
	CmdlineOnlyIfHashtreeNotDisabled = 1 << 0
	CmdlineOnlyIfHashtreeDisabled    = 1 << 1
	ChainDoNotUseAB                  = 1 << 0
)

// Descriptor is one decoded descriptor: *Property, *Hashtree, *Hash, *KernelCmdline, *ChainPartition or
// *Unknown.
type Descriptor interface {
	Tag() uint64
	// Offset is where the descriptor starts in the source the vbmeta was read from.
	Offset() int64
}

type at struct{ off int64 }

func (a at) Offset() int64 { return a.off }

// Property is a key=value descriptor. Value may be binary.
type Property struct {
	at
	Key   string
	Value []byte
}

// Hashtree describes a dm-verity protected partition.
type Hashtree struct {
	at
	DMVerityVersion uint32
	ImageSize       uint64
	TreeOffset      uint64
	TreeSize        uint64
	DataBlockSize   uint32
	HashBlockSize   uint32
	FECNumRoots     uint32
	FECOffset       uint64
	FECSize         uint64
	HashAlgorithm   string
	PartitionName   string
	Salt            []byte
	RootDigest      []byte
	Flags           uint32
}

// Hash describes a partition verified whole: digest = H(salt || partition[:ImageSize]).
type Hash struct {
	at
	ImageSize     uint64
	HashAlgorithm string
	PartitionName string
	Salt          []byte
	Digest        []byte
	Flags         uint32
}

// KernelCmdline is a kernel command-line fragment.
type KernelCmdline struct {
	at
	Flags   uint32
	Cmdline string
}

// ChainPartition delegates a partition to its own vbmeta signed by PublicKey.
type ChainPartition struct {
	at
	RollbackIndexLocation uint32
	PartitionName         string
	PublicKey             []byte
	Flags                 uint32
}

// Unknown is a descriptor with a tag this package does not know.
type Unknown struct {
	at
	TagValue uint64
	Data     []byte
}

func (*Property) Tag() uint64       { return TagProperty }
func (*Hashtree) Tag() uint64       { return TagHashtree }
func (*Hash) Tag() uint64           { return TagHash }
func (*KernelCmdline) Tag() uint64  { return TagKernelCmdline }
func (*ChainPartition) Tag() uint64 { return TagChainPartition }
func (u *Unknown) Tag() uint64      { return u.TagValue }

// parseDescriptors decodes the descriptor area b found at byte offset base of the source.
func parseDescriptors(b []byte, base int64) ([]Descriptor, error) {
	var out []Descriptor
	be := binary.BigEndian
	for pos := 0; pos < len(b); {
		off := base + int64(pos)
		if len(b)-pos < 16 {
			return nil, fmt.Errorf("reading AVB descriptor at offset %d: %d trailing bytes, need a 16-byte header: %w", off, len(b)-pos, ErrCorrupt)
		}
		if len(out) >= maxDescriptors {
			return nil, fmt.Errorf("reading AVB descriptor at offset %d: more than %d descriptors: %w", off, maxDescriptors, ErrCorrupt)
		}
		tag := be.Uint64(b[pos:])
		n := be.Uint64(b[pos+8:])
		if n%8 != 0 || n > uint64(len(b)-pos-16) {
			return nil, fmt.Errorf("reading AVB descriptor at offset %d: num_bytes_following %d is not a multiple of 8 within the %d remaining bytes: %w", off, n, len(b)-pos-16, ErrCorrupt)
		}
		body := b[pos+16 : pos+16+int(n)]
		d, err := parseDescriptor(tag, body, off)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
		pos += 16 + int(n)
	}
	return out, nil
}

// fields reads consecutive variable-length fields after a fixed part.
type fields struct {
	b   []byte
	pos int
	off int64
	typ string
	err error
}

func (f *fields) take(n uint64, what string) []byte {
	if f.err != nil {
		return nil
	}
	if n > uint64(len(f.b)-f.pos) {
		f.err = fmt.Errorf("reading AVB %s descriptor at offset %d: %s of %d bytes runs past the descriptor's %d bytes: %w", f.typ, f.off, what, n, len(f.b)+16, ErrCorrupt)
		return nil
	}
	s := f.b[f.pos : f.pos+int(n) : f.pos+int(n)]
	f.pos += int(n)
	return s
}

func parseDescriptor(tag uint64, b []byte, off int64) (Descriptor, error) {
	be := binary.BigEndian
	short := func(typ string, need int) error {
		return fmt.Errorf("reading AVB %s descriptor at offset %d: %d bytes, need at least %d: %w", typ, off, len(b)+16, need+16, ErrCorrupt)
	}
	switch tag {
	case TagProperty:
		if len(b) < 16 {
			return nil, short("property", 16)
		}
		f := &fields{b: b, pos: 16, off: off, typ: "property"}
		kl, vl := be.Uint64(b), be.Uint64(b[8:])
		if kl > uint64(len(b)) || vl > uint64(len(b)) {
			return nil, fmt.Errorf("reading AVB property descriptor at offset %d: key/value lengths %d/%d exceed the descriptor: %w", off, kl, vl, ErrCorrupt)
		}
		k := f.take(kl+1, "key")
		v := f.take(vl+1, "value")
		if f.err != nil {
			return nil, f.err
		}
		return &Property{at: at{off}, Key: strings.ToValidUTF8(string(k[:kl]), "?"), Value: v[:vl]}, nil
	case TagHashtree:
		const fixed = 164
		if len(b) < fixed {
			return nil, short("hashtree", fixed)
		}
		d := &Hashtree{
			at:              at{off},
			DMVerityVersion: be.Uint32(b),
			ImageSize:       be.Uint64(b[4:]),
			TreeOffset:      be.Uint64(b[12:]),
			TreeSize:        be.Uint64(b[20:]),
			DataBlockSize:   be.Uint32(b[28:]),
			HashBlockSize:   be.Uint32(b[32:]),
			FECNumRoots:     be.Uint32(b[36:]),
			FECOffset:       be.Uint64(b[40:]),
			FECSize:         be.Uint64(b[48:]),
			HashAlgorithm:   cstr(b[56:88]),
			Flags:           be.Uint32(b[100:]),
		}
		f := &fields{b: b, pos: fixed, off: off, typ: "hashtree"}
		d.PartitionName = strings.ToValidUTF8(string(f.take(uint64(be.Uint32(b[88:])), "partition name")), "?")
		d.Salt = f.take(uint64(be.Uint32(b[92:])), "salt")
		d.RootDigest = f.take(uint64(be.Uint32(b[96:])), "root digest")
		return d, f.err
	case TagHash:
		const fixed = 116
		if len(b) < fixed {
			return nil, short("hash", fixed)
		}
		d := &Hash{at: at{off}, ImageSize: be.Uint64(b), HashAlgorithm: cstr(b[8:40]), Flags: be.Uint32(b[52:])}
		f := &fields{b: b, pos: fixed, off: off, typ: "hash"}
		d.PartitionName = strings.ToValidUTF8(string(f.take(uint64(be.Uint32(b[40:])), "partition name")), "?")
		d.Salt = f.take(uint64(be.Uint32(b[44:])), "salt")
		d.Digest = f.take(uint64(be.Uint32(b[48:])), "digest")
		return d, f.err
	case TagKernelCmdline:
		if len(b) < 8 {
			return nil, short("kernel cmdline", 8)
		}
		f := &fields{b: b, pos: 8, off: off, typ: "kernel cmdline"}
		c := f.take(uint64(be.Uint32(b[4:])), "command line")
		return &KernelCmdline{at: at{off}, Flags: be.Uint32(b), Cmdline: strings.ToValidUTF8(string(c), "?")}, f.err
	case TagChainPartition:
		const fixed = 76
		if len(b) < fixed {
			return nil, short("chain partition", fixed)
		}
		d := &ChainPartition{at: at{off}, RollbackIndexLocation: be.Uint32(b), Flags: be.Uint32(b[12:])}
		f := &fields{b: b, pos: fixed, off: off, typ: "chain partition"}
		d.PartitionName = strings.ToValidUTF8(string(f.take(uint64(be.Uint32(b[4:])), "partition name")), "?")
		d.PublicKey = f.take(uint64(be.Uint32(b[8:])), "public key")
		return d, f.err
	}
	return &Unknown{at: at{off}, TagValue: tag, Data: b}, nil
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.ToValidUTF8(string(b), "?")
}
